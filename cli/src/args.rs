//! The command line: every command, option and environment variable.
//! Names and flags here are a stable interface: scripts and cron jobs call
//! them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// arca: encrypted, deduplicating backups for disaster recovery.
#[derive(Parser, Debug)]
#[command(name = "arca", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Read defaults, sources and hooks from the profile NAME.toml (in
    /// $ARCA_CONFIG_DIR, $XDG_CONFIG_HOME/arca or /etc/arca), or from
    /// this file when NAME has a `/` or ends in `.toml`; the command line
    /// and the environment win over it (docs/profiles.md).
    #[arg(
        short = 'P',
        long,
        env = "ARCA_PROFILE",
        global = true,
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Repository address: a directory path, file:///path, s3://bucket/prefix,
    /// gs://bucket/prefix or az://container/prefix (credentials from the
    /// store's usual environment variables, e.g. AWS_ACCESS_KEY_ID).
    #[arg(short = 'r', long = "repo", env = "ARCA_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the password from this file (first line).
    #[arg(long, env = "ARCA_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and read the password from its output.
    #[arg(long, env = "ARCA_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Accept an empty password (refused otherwise: an unset variable or an
    /// empty file must not open or create an unprotected repository).
    #[arg(long, global = true)]
    pub insecure_empty_password: bool,
    /// Take no lock (reading commands only: restore, check, ls, dump), for
    /// a repository on read-only media; nothing then keeps a prune or a
    /// repair from deleting what is being read.
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// Local cache directory (default: $XDG_CACHE_HOME/arca or ~/.cache/arca).
    #[arg(long, env = "ARCA_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Keep the catalog in memory only; nothing is written locally.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Backend option KEY=VALUE (repeatable), e.g. `-o s3.path-style=true`,
    /// `-o s3.allow-http=true`, `-o connections=16`; an unknown key is an
    /// error that lists them all.
    #[arg(short = 'o', long = "option", global = true, value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// After backup, check, forget or prune: write the repository's
    /// metrics and the run's outcome to this node_exporter textfile
    /// (atomically).
    #[arg(
        long,
        env = "ARCA_METRICS_TEXTFILE",
        global = true,
        value_name = "PATH"
    )]
    pub metrics_textfile: Option<PathBuf>,
    /// After backup, check, forget or prune: push them to this Pushgateway
    /// (http://host:9091), replacing the group job/JOB/repository/ID.
    #[arg(long, env = "ARCA_METRICS_PUSH", global = true, value_name = "URL")]
    pub metrics_push: Option<String>,
    /// The job name for --metrics-push (default arca).
    #[arg(long, global = true, value_name = "JOB")]
    pub metrics_job: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files, directories, standard input or a command's output.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// Restore a snapshot (or part of it) into a directory.
    Restore(RestoreArgs),
    /// Write one file of a snapshot to standard output.
    Dump(DumpArgs),
    /// Restore drill: restore a snapshot into scratch space, check it, time
    /// it against an RTO, record the result in the repository, clean up.
    Drill(DrillArgs),
    /// List the files in a snapshot.
    Ls(LsArgs),
    /// Print a repository object (config, snapshot, index, pack header, key, tree).
    Cat(CatArgs),
    /// Manage passwords (key files).
    Key(KeyArgs),
    /// Verify the repository: structure, and with --read-data every byte.
    Check(CheckArgs),
    /// Rebuild the index from packs, or rewrite snapshots around lost data.
    Repair(RepairArgs),
    /// Remove stale locks (locks whose owner stopped refreshing them).
    Unlock(UnlockArgs),
    /// Remove snapshots, by id or by a retention policy (restic's rules);
    /// the data they alone used is freed by `prune`.
    Forget(ForgetArgs),
    /// Delete the packs no snapshot needs, beside running backups.
    Prune(PruneArgs),
    /// Copy snapshots from another repository (--from-repo) into this one.
    ///
    /// The two repositories have their own keys and chunker parameters.
    /// Every blob is read and verified from the source and stored only if
    /// this repository does not have it yet; blobs are copied as they are,
    /// not chunked again with this repository's chunker parameters. A
    /// snapshot that already has a copy here is skipped, so running copy
    /// twice copies nothing the second time.
    Copy(CopyArgs),
    /// Archive and restore PostgreSQL WAL (archive_command, restore_command).
    Wal(WalArgs),
    /// The repository's metrics in the Prometheus text format: snapshots per
    /// source, size, check coverage, the last restore drill.
    Metrics(MetricsArgs),
    /// Each source's last backup against its RPO, its last drill against
    /// the RTO, check coverage, and anomalies; exit 5 when an objective is
    /// breached.
    Status(StatusArgs),
    /// What changed between two snapshots: added, removed, modified,
    /// metadata-only and type changes, with sizes.
    Diff(DiffArgs),
    /// Restore size, stored size, deduplication and compression of
    /// snapshots or of the whole repository.
    Stats(StatsArgs),
    /// Paths matching patterns across snapshots (exit 1 when none does, 2 when it could not run).
    Find(FindArgs),
    /// Browse the snapshots as a read-only filesystem (FUSE) until it is
    /// unmounted (`umount DIR`) or Ctrl-C.
    Mount(MountArgs),
    /// Add, remove or set snapshots' tags (each changed snapshot is
    /// written again with a new id; `original` names the first).
    Tag(TagArgs),
    /// Print the profile that --profile names (where it was found, its
    /// repository, sources, retention, objectives and hooks), or the
    /// error, with its line, that keeps it from being used.
    Profile,
}

impl Command {
    /// The command's name, as hooks and metrics call it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Init(_) => "init",
            Self::Backup(_) => "backup",
            Self::Snapshots(_) => "snapshots",
            Self::Restore(_) => "restore",
            Self::Dump(_) => "dump",
            Self::Drill(_) => "drill",
            Self::Ls(_) => "ls",
            Self::Cat(_) => "cat",
            Self::Key(_) => "key",
            Self::Check(_) => "check",
            Self::Repair(_) => "repair",
            Self::Unlock(_) => "unlock",
            Self::Forget(_) => "forget",
            Self::Prune(_) => "prune",
            Self::Copy(_) => "copy",
            Self::Wal(_) => "wal",
            Self::Metrics(_) => "metrics",
            Self::Status(_) => "status",
            Self::Diff(_) => "diff",
            Self::Stats(_) => "stats",
            Self::Find(_) => "find",
            Self::Tag(_) => "tag",
            Self::Mount(_) => "mount",
            Self::Profile => "profile",
        }
    }
}

/// `--source`: which of the profile's sources a command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// With --profile: only this source of the profile (repeatable;
    /// default every source).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WalArgs {
    #[command(subcommand)]
    pub action: WalAction,
}

#[derive(Subcommand, Debug)]
pub enum WalAction {
    /// Archive one WAL file: `archive_command = 'arca wal push %p'`.
    ///
    /// The file's name must be a WAL file's (segment, .partial, .backup or
    /// .history). Archiving a name again with the same bytes succeeds;
    /// with other bytes it fails (exit 1) and changes nothing. The files
    /// PostgreSQL has marked ready beside it are archived at the same time
    /// (--parallel), so that its next calls return at once. Give the
    /// repository and an access token (`arca key add --token-file`) in
    /// PostgreSQL's environment or on the command line: with a token no
    /// Argon2id runs.
    Push {
        /// The WAL file (PostgreSQL's %p).
        path: PathBuf,
        /// Files archived at once: this one and the next ready ones.
        #[arg(long, default_value_t = 4, value_name = "N")]
        parallel: usize,
        /// zstd level, `auto` (3), `max` or `off`. The default, 1, stored
        /// 64 pgbench segments in 0.5% more bytes than level 3 with 30%
        /// less CPU (docs/benchmarks.md): the archiver keeping up matters
        /// more for WAL.
        #[arg(long, default_value = "1", value_name = "LEVEL")]
        compression: String,
        /// Push in the background: a detached pusher (one per spool)
        /// archives every ready file, --parallel at once, continuously,
        /// and this call returns as soon as its file is archived, so
        /// archiving never waits between PostgreSQL's calls.
        #[arg(long = "async")]
        background: bool,
        /// With --async: fail if the file is not archived within this
        /// many seconds.
        #[arg(long, default_value_t = 120, value_name = "SECS")]
        timeout: u64,
        /// Run as the background pusher (started by --async).
        #[arg(long, hide = true)]
        pusher: bool,
    },
    /// Restore one WAL file: `restore_command = 'arca wal fetch %f %p'`.
    ///
    /// Exit 0 with the file written whole to DEST; exit 1 at once when the
    /// archive does not hold it (PostgreSQL asks for files that may not
    /// exist). The next segments are read at the same time (--prefetch)
    /// into the local spool, for PostgreSQL's next calls.
    Fetch {
        /// The WAL file's name (PostgreSQL's %f).
        name: String,
        /// Where to write it (PostgreSQL's %p).
        dest: PathBuf,
        /// Segments read ahead.
        #[arg(long, default_value_t = 4, value_name = "N")]
        prefetch: usize,
    },
    /// List the archived WAL files.
    List,
    /// Check that the archived WAL is continuous: gaps per timeline, and
    /// for each base backup (its .backup file) whether its WAL is all
    /// there and how far it can be recovered. Exit 1 on any gap.
    Verify,
    /// Set up a restored data directory to recover from this archive:
    /// recovery.signal, and in postgresql.auto.conf a restore_command
    /// running this arca on this repository, the target, and
    /// archive_mode = off (the restored server must not archive into
    /// production's archive). Then start the server.
    Recover {
        /// The data directory (a base backup restored by `arca restore`).
        data: PathBuf,
        /// Stop at this time (PostgreSQL timestamp, e.g. '2026-12-03 08:00:00+00').
        #[arg(long, value_name = "TIME", group = "target")]
        target_time: Option<String>,
        /// Stop at this LSN (X/X).
        #[arg(long, value_name = "LSN", group = "target")]
        target_lsn: Option<String>,
        /// Stop at this restore point (pg_create_restore_point).
        #[arg(long, value_name = "NAME", group = "target")]
        target_name: Option<String>,
        /// Stop after this transaction id.
        #[arg(long, value_name = "XID", group = "target")]
        target_xid: Option<String>,
        /// At the target: promote, pause or shutdown.
        #[arg(long, default_value = "promote", value_parser = ["promote", "pause", "shutdown"])]
        target_action: String,
        /// The recovered server becomes the new primary: keep archiving on,
        /// into this repository (archive_command = this arca's `wal push
        /// %p`), so that its new timeline is archived and `wal verify`
        /// follows it. Without it archiving is turned off (a drill or an
        /// inspection copy must not archive).
        #[arg(long)]
        archive: bool,
    },
    /// Delete archived WAL that no snapshot's base backup needs (older than
    /// the oldest one's start), or that comes before a given segment.
    /// History files are kept.
    Forget {
        /// The oldest segment to keep (a 24-digit segment name); default:
        /// the start of the oldest base backup a snapshot records.
        #[arg(long, value_name = "SEGMENT")]
        before: Option<String>,
        /// Only list what would be deleted.
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy (id prefixes or `latest`, within the filters);
    /// default: every snapshot that passes the filters.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// The repository to copy from (the destination is -r/--repo).
    #[arg(long, env = "ARCA_FROM_REPOSITORY", value_name = "ADDR")]
    pub from_repo: String,
    /// Read the source's password from this file (first line).
    #[arg(long, env = "ARCA_FROM_PASSWORD_FILE", value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this shell command and read the source's password from its
    /// output (ARCA_FROM_PASSWORD holds the password itself).
    #[arg(long, env = "ARCA_FROM_PASSWORD_COMMAND", value_name = "COMMAND")]
    pub from_password_command: Option<String>,
    /// Accept an empty password for the source.
    #[arg(long)]
    pub from_insecure_empty_password: bool,
    /// Backend option KEY=VALUE for the source (repeatable); without any,
    /// the source takes the -o options too.
    #[arg(long = "from-option", value_name = "KEY=VALUE")]
    pub from_options: Vec<String>,
    /// Take no lock on the source (a repository on read-only media).
    #[arg(long)]
    pub from_no_lock: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// zstd level of the blobs stored here, `auto`, `max` or `off`.
    #[arg(long, default_value = "auto", value_name = "LEVEL")]
    pub compression: String,
    /// Only list what would be copied and what is already here.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to remove (id prefixes or `latest`), whatever the policy says.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots.
    #[arg(
        short = 'l',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_last: i64,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(
        short = 'H',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_hourly: i64,
    /// Keep the newest snapshot of each of the N newest days that have one.
    #[arg(
        short = 'd',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_daily: i64,
    /// Keep the newest snapshot of each of the N newest ISO weeks that have one.
    #[arg(
        short = 'w',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_weekly: i64,
    /// Keep the newest snapshot of each of the N newest months that have one.
    #[arg(
        short = 'm',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_monthly: i64,
    /// Keep the newest snapshot of each of the N newest years that have one.
    #[arg(
        short = 'y',
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub keep_yearly: i64,
    /// Keep every snapshot within this span of the newest (e.g. 1y5m7d2h).
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<String>,
    /// Keep hourly snapshots within this span of the newest.
    #[arg(long, value_name = "SPAN")]
    pub keep_within_hourly: Option<String>,
    /// Keep daily snapshots within this span of the newest.
    #[arg(long, value_name = "SPAN")]
    pub keep_within_daily: Option<String>,
    /// Keep weekly snapshots within this span of the newest.
    #[arg(long, value_name = "SPAN")]
    pub keep_within_weekly: Option<String>,
    /// Keep monthly snapshots within this span of the newest.
    #[arg(long, value_name = "SPAN")]
    pub keep_within_monthly: Option<String>,
    /// Keep yearly snapshots within this span of the newest.
    #[arg(long, value_name = "SPAN")]
    pub keep_within_yearly: Option<String>,
    /// Keep snapshots with all these tags (`a,b`; repeatable: any list).
    #[arg(long = "keep-tag", value_name = "TAGS")]
    pub keep_tags: Vec<String>,
    /// Apply the policy to each group of snapshots with the same
    /// `host`, `paths` and/or `tags` (comma-separated, or `` for one group).
    #[arg(short = 'g', long, default_value = "host,paths", value_name = "FIELDS")]
    pub group_by: String,
    /// Allow the policy to remove every snapshot of the repository.
    #[arg(long)]
    pub keep_none: bool,
    /// Also delete the archived PostgreSQL WAL that no remaining
    /// snapshot's base backup needs (as `arca wal forget` does).
    #[arg(long)]
    pub wal: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only show what would be removed.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Run `prune` afterwards.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub prune_opts: PruneOpts,
}

/// What a prune may repack (shared by `prune` and `forget --prune`).
#[derive(Args, Debug, Clone)]
pub struct PruneOpts {
    /// Unused space the kept packs may hold before more are repacked: a
    /// share of the repository after the run (`5%`), a size (`500M`; `0`
    /// repacks every pack with unused blobs), or `unlimited` (as restic);
    /// default 5%.
    #[arg(long, value_name = "LIMIT")]
    pub max_unused: Option<String>,
    /// Repack at most this much in one run (e.g. `10G`, `500M`).
    #[arg(long, value_name = "SIZE")]
    pub max_repack_size: Option<String>,
    /// Free now what this run condemns (two generations in one run); any
    /// backup that overlaps the run must then be run again.
    #[arg(long)]
    pub now: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Only show what would be done.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// With --dry-run: list every pack and its fate.
    #[arg(long, requires = "dry_run")]
    pub packs: bool,
    #[command(flatten)]
    pub opts: PruneOpts,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also download every pack and verify every blob.
    #[arg(long, conflicts_with_all = ["read_data_subset", "rolling"])]
    pub read_data: bool,
    /// Verify part of the data: `N/M` (the N-th of M parts) or `P%` (a random sample).
    #[arg(long, value_name = "N/M|P%", conflicts_with = "rolling")]
    pub read_data_subset: Option<String>,
    /// Verify the next P% of packs not verified recently; coverage is kept
    /// in the repository, so any host continues where another stopped.
    #[arg(long, value_name = "P%")]
    pub rolling: Option<String>,
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(subcommand)]
    pub what: RepairWhat,
}

#[derive(Subcommand, Debug)]
pub enum RepairWhat {
    /// Rebuild the index (and the catalog) from the pack headers alone;
    /// also rewrites a damaged config from the key files' copy.
    Index {
        /// Read every pack and index only the blobs that verify (so that the
        /// next backup re-uploads, and `repair snapshots` sees, what is lost).
        #[arg(long)]
        read_data: bool,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite snapshots that refer to lost data so the rest stays
    /// restorable; every damaged file is listed.
    Snapshots {
        /// Delete the original snapshots once their repaired versions exist.
        #[arg(long)]
        forget: bool,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Also remove locks that are not stale (dangerous: only when no other
    /// arca process uses the repository).
    #[arg(long)]
    pub remove_all: bool,
}

/// Snapshot filters shared by the commands that select snapshots.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots from this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags: `a,b` needs both, repeating is "or".
    #[arg(long = "tag", value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Only snapshots that include this path (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

impl FilterArgs {
    /// Whether no filter was given (every snapshot passes).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.tags.is_empty() && self.paths.is_empty()
    }
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// An existing, empty directory.
    #[arg(value_name = "DIR")]
    pub mountpoint: PathBuf,
    /// Only the snapshots the filters select.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Let other users read the mount (FUSE's allow_other).
    #[arg(long)]
    pub allow_other: bool,
    /// Data blobs kept in memory for reads.
    #[arg(long, default_value = "64M", value_name = "SIZE")]
    pub cache_size: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// Snapshots (id prefixes or `latest`); default: every snapshot the
    /// filters select (as restic's `tag`).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Add these tags (repeatable, or comma-separated).
    #[arg(long, value_name = "TAGS")]
    pub add: Vec<String>,
    /// Remove these tags (repeatable, or comma-separated).
    #[arg(long, value_name = "TAGS")]
    pub remove: Vec<String>,
    /// Replace every tag with these (repeatable, or comma-separated; an
    /// empty value removes them all).
    #[arg(long, value_name = "TAGS", conflicts_with_all = ["add", "remove"])]
    pub set: Option<Vec<String>>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only show what would change.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The first snapshot: an id prefix or `latest`.
    #[arg(value_name = "SNAPSHOT1")]
    pub first: String,
    /// The second.
    #[arg(value_name = "SNAPSHOT2")]
    pub second: String,
    /// Also list paths whose metadata alone changed (`U`).
    #[arg(long)]
    pub metadata: bool,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// Globs (`*` stops at `/`): with a `/` matched against the full path,
    /// without one against the name (`*.conf`, `/etc/**/ssh*`).
    #[arg(value_name = "PATTERN", required = true)]
    pub patterns: Vec<String>,
    /// Only the N newest of the selected snapshots.
    #[arg(long, value_name = "N")]
    pub newest: Option<usize>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Snapshots (id prefixes or `latest`); default: every snapshot the
    /// filters select, the whole repository without filters.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Recovery point objective: each source's newest snapshot at most this
    /// old (`90m`, `26h`, `1d12h`; units s, m, h, d, w).
    #[arg(long, value_name = "AGE")]
    pub rpo: Option<String>,
    /// Recovery time objective: each source's newest restore drill passed
    /// within it.
    #[arg(long, value_name = "AGE")]
    pub rto: Option<String>,
    /// Each source's newest drill at most this old (`35d`).
    #[arg(long, value_name = "AGE")]
    pub drill_age: Option<String>,
    /// Every pack verified by `check --read-data` at most this long ago.
    #[arg(long, value_name = "AGE")]
    pub check_age: Option<String>,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    /// Write them to this node_exporter textfile (atomically) instead of
    /// standard output. Without --textfile and --push, the global
    /// --metrics-textfile and --metrics-push (or a profile's [metrics])
    /// are used; standard output only when none is given.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    /// Push them to this Pushgateway (http://host:9091), replacing the
    /// group job/JOB/repository/ID.
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,
    /// The job name for --push (default: --metrics-job, or arca).
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Argon2id memory in KiB for the first key (default 65536).
    #[arg(long, value_name = "KIB")]
    pub kdf_memory: Option<u32>,
    /// Chunker sizes as MIN,AVG,MAX bytes (default chosen by measurement).
    #[arg(long, value_name = "MIN,AVG,MAX")]
    pub chunker: Option<String>,
    /// Target pack size in MiB (default 16).
    #[arg(long, value_name = "MIB")]
    pub pack_size: Option<u32>,
}

#[derive(Args, Debug, Clone)]
pub struct BackupArgs {
    /// Files and directories to back up (with --profile and none of these:
    /// the profile's sources).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Tag the snapshot (repeatable, or comma-separated).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Exclude paths matching this glob (repeatable). Without a `/` it
    /// matches names anywhere; with one, absolute paths.
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Back up standard input as one file.
    #[arg(long, conflicts_with = "paths")]
    pub stdin: bool,
    /// File name for --stdin and --stdin-from-command.
    #[arg(long, default_value = "stdin", value_name = "NAME")]
    pub stdin_filename: String,
    /// Back up the standard output of a command (given after `--`). A
    /// non-zero exit status saves no snapshot. An argument containing
    /// `{file}` makes the command write that file instead (a private
    /// temporary one, removed afterwards): for tools that cannot write to a
    /// pipe, such as `etcdctl snapshot save {file}`.
    #[arg(long, requires = "command", conflicts_with_all = ["paths", "stdin"])]
    pub stdin_from_command: bool,
    /// The command for --stdin-from-command.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
    /// Check the stream as a dump of this kind while it is stored, and
    /// save no snapshot if it fails: postgres (pg_dump output, read by
    /// pg_restore), redis (an RDB, read by redis-check-rdb) or etcd (a
    /// snapshot: its SHA-256 trailer, then `etcdctl snapshot status`).
    #[arg(long, value_name = "KIND", value_parser = ["postgres", "redis", "etcd"])]
    pub check: Option<String>,
    /// Check the stream with this shell command, given a private copy's
    /// path in $ARCA_CHECK_FILE; a non-zero exit saves no snapshot.
    #[arg(long, value_name = "COMMAND", conflicts_with = "check")]
    pub check_command: Option<String>,
    /// Save a stream (--stdin, --stdin-from-command) of 0 bytes; without
    /// it an empty stream is refused and no snapshot is saved.
    #[arg(long)]
    pub allow_empty: bool,
    /// zstd level, `auto` (the default), `max` or `off`.
    #[arg(long, value_name = "LEVEL")]
    pub compression: Option<String>,
    /// Average chunk size for this backup (`8K`, `64K`; minimum a quarter
    /// of it, maximum eight times) instead of the repository's: smaller
    /// chunks store less of a dump changed in scattered places each day.
    /// Give a source the same size every time: only backups chunked alike
    /// share chunks.
    #[arg(long, value_name = "SIZE")]
    pub chunk_size: Option<String>,
    /// Read every file, even those unchanged since the parent snapshot.
    #[arg(long)]
    pub force: bool,
    /// Record access times too.
    #[arg(long)]
    pub with_atime: bool,
    /// Use this snapshot as the parent instead of the latest matching one.
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Record this time instead of now (RFC 3339 or YYYY-MM-DD HH:MM:SS).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only the latest snapshot at or before this time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Snapshot: an id prefix or `latest` (may be omitted with --at).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: Option<String>,
    /// Directory to restore into.
    #[arg(long, short = 't', value_name = "DIR")]
    pub target: PathBuf,
    /// Restore only this path of the snapshot and what is below it (repeatable).
    #[arg(long = "include", short = 'i', value_name = "PATH")]
    pub include: Vec<String>,
    /// The latest snapshot at or before this time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// Snapshot: an id prefix or `latest` (the default).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: Option<String>,
    /// The latest snapshot at or before this time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Where to restore (a scratch directory is made inside; default TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// Shell command that proves the restored copy works, run with
    /// ARCA_DRILL_DIR (the restored tree) and ARCA_DRILL_SNAPSHOT.
    #[arg(long, value_name = "COMMAND")]
    pub validate: Option<String>,
    /// Recovery time objective: the drill fails (exit 4) when restoring
    /// and validating take longer (30s, 15m, 2h).
    #[arg(long, value_name = "DURATION")]
    pub rto: Option<String>,
    /// Keep the restored copy and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Run the snapshot's --check-command checks again (shell commands
    /// read from the repository: off unless you trust who writes it).
    #[arg(long)]
    pub recorded_commands: bool,
    /// List the recorded drills instead of running one.
    #[arg(long, conflicts_with_all = ["snapshot", "validate", "rto", "keep", "scratch"])]
    pub list: bool,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Snapshot: an id prefix or `latest`.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
    /// The file's path in the snapshot.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// The latest snapshot at or before this time (SNAPSHOT must be `latest`).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot: an id prefix or `latest`.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
    /// Directory or file in the snapshot (default: everything).
    #[arg(value_name = "PATH", default_value = "/")]
    pub path: String,
    /// Show type, mode, owner, size and time.
    #[arg(long, short = 'l')]
    pub long: bool,
    /// Only the entries directly in PATH.
    #[arg(long)]
    pub no_recursive: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// config, snapshot, index, pack, key, tree or blob.
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// The object's id (a snapshot may be a prefix or `latest`).
    #[arg(value_name = "ID")]
    pub id: Option<String>,
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(Subcommand, Debug)]
pub enum KeyAction {
    /// List key files.
    List,
    /// Add a password, or with --token-file an access token.
    Add(KeyAddArgs),
    /// Change the password of the key in use.
    Passwd(NewPasswordArgs),
    /// Remove a key file (not the one in use).
    Remove {
        /// Key id (or a unique prefix).
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct KeyAddArgs {
    #[command(flatten)]
    pub password: NewPasswordArgs,
    /// Add an access token instead of a password, and write it to this
    /// new file (mode 0600; never overwritten). A token is 256 random bits,
    /// so it opens the repository without Argon2id, in milliseconds: give
    /// it wherever a password goes (`--password-file`, ARCA_PASSWORD_FILE)
    /// for `arca wal push` and other frequent short runs.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["new_password_file", "kdf_memory"])]
    pub token_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// Read the new password from this file.
    #[arg(long, env = "ARCA_NEW_PASSWORD_FILE", value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// Argon2id memory in KiB (default 65536).
    #[arg(long, value_name = "KIB")]
    pub kdf_memory: Option<u32>,
}
