//! The engine's error type.
//!
//! Every variant names what it happened to (a file, an object, a snapshot)
//! and, where there is one, the fix. The CLI prints `Display` as is, so the
//! messages are written for the person running the command.

use std::io;
use std::path::PathBuf;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key file opened with the password given.
    #[error(
        "wrong password or no key: none of the {keys} key(s) in the repository opens with this password"
    )]
    WrongPassword { keys: usize },

    /// The secret given is an access token, and no token key file opened
    /// with it.
    #[error(
        "wrong token: none of the {keys} token key(s) in the repository opens with this token (it was removed, or belongs to another repository); `arca key add --token-file PATH` makes a new one"
    )]
    WrongToken { keys: usize },

    /// The repository has a config but no key file: no password can open it.
    #[error(
        "the repository at {location} has no key files (keys/ is empty or missing): no password can open it without one; restore keys/ from a copy of the repository (the data is encrypted under the key they hold)"
    )]
    NoKeys { location: String },

    /// There is no repository at the address (no `config` object).
    #[error(
        "no repository at {location}: run `arca init` to create one, or check --repo / ARCA_REPOSITORY"
    )]
    NoRepository { location: String },

    /// `init` found an existing repository.
    #[error("a repository already exists at {location}")]
    AlreadyExists { location: String },

    /// `wal push` of a name the archive already holds with other bytes.
    #[error(
        "WAL file {name} is already archived with different content ({stored} archived, {given} given): refusing to replace it. Two clusters may be archiving into one repository, or a restored or promoted server is writing on a timeline it does not own; give each cluster its own repository or let the server choose a new timeline"
    )]
    WalConflict {
        name: String,
        stored: String,
        given: String,
    },

    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// The object store refused or failed an operation.
    #[error("object store: {op} {object}: {message}")]
    Backend {
        op: &'static str,
        object: String,
        message: String,
        /// What the failure means for the caller.
        kind: BackendFailure,
    },

    /// An object read from the repository failed authentication, its
    /// content hash, or parsing.
    #[error("damaged object {object}: {detail}")]
    Damaged { object: String, detail: String },

    /// A blob a tree refers to is not in the index.
    #[error(
        "blob {blob} is not in the index (needed by {needed_by}); run `arca check` and `arca repair index`"
    )]
    MissingBlob { blob: String, needed_by: String },

    /// `repair snapshots` found an index that may lack blobs the store
    /// still holds.
    #[error(
        "the index is incomplete: {0}; run `arca repair index` first (rewriting snapshots now could drop data that is only missing from the index)"
    )]
    NeedsRepairIndex(String),

    /// A prune swept what a backup was based on before the backup's
    /// snapshot was safe: the snapshot was removed.
    #[error(
        "a prune (generation {generation}, on {host}) that ran while this backup did removed data the backup may refer to, so its snapshot was not kept; nothing is lost from the source: run the backup again (it reuses everything still stored)"
    )]
    PruneConflict { generation: u64, host: String },

    /// The same for a copy: the copy of `snapshot` was removed.
    #[error(
        "a prune (generation {generation}, on {host}) ran beside this copy and removed data the copy of snapshot {snapshot} may refer to, so that copy was not kept; nothing is lost: run copy again (it copies only what is missing)"
    )]
    CopyPruneConflict {
        snapshot: String,
        generation: u64,
        host: String,
    },

    /// The repository uses a format this build does not read.
    #[error(
        "unsupported repository format {found} in {object} (this arca reads version {supported}); upgrade arca"
    )]
    UnsupportedVersion {
        object: String,
        found: u32,
        supported: u32,
    },

    /// The local catalog (SQLite cache) failed.
    #[error("catalog {}: {message}; it is a cache: delete it and it is rebuilt", path.display())]
    Catalog { path: PathBuf, message: String },

    /// No snapshot matched a selection.
    #[error("no snapshot matches {0}")]
    NoSnapshot(String),

    /// A snapshot id prefix matched more than one snapshot.
    #[error(
        "snapshot prefix {prefix} is ambiguous: it matches {count} snapshots; give more digits"
    )]
    AmbiguousSnapshot { prefix: String, count: usize },

    /// A path was not found inside a snapshot.
    #[error("{path} is not in snapshot {snapshot}")]
    NotInSnapshot { path: String, snapshot: String },

    /// Bad input from the caller: a malformed option, an impossible request.
    #[error("{0}")]
    Invalid(String),

    /// Every source of a backup was missing or unreadable; nothing was saved.
    #[error("nothing to back up: {}; no snapshot was saved", describe_sources(.0))]
    NoSources(Vec<crate::format::snapshot::SourceError>),

    /// A restored file did not match its recorded content hash.
    #[error("restored {} does not match its recorded BLAKE3 hash (expected {expected}, got {actual}); the repository or the target disk is damaged", path.display())]
    FileHashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A command that produced the backup's input failed.
    #[error("command {command} failed: {status}")]
    CommandFailed { command: String, status: String },

    /// A dump's bytes did not pass their check (`ops::backup::dumps`).
    #[error("the dump {name} did not pass its {kind} check: {why}")]
    DumpRejected {
        name: String,
        kind: &'static str,
        why: String,
    },

    /// The operation was interrupted (Ctrl-C); nothing half-done was committed.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// The object store failed in a way that may pass when tried again: a
    /// timeout, a reset connection, throttling (HTTP 429, 503), a server
    /// error. Retried with backoff before it reaches the caller.
    #[error(
        "object store: {op} {object}: {message} (a transient failure that persisted through retries: check the network and the store, then run the command again)"
    )]
    Transient {
        op: &'static str,
        object: String,
        message: String,
    },

    /// Another operation holds a lock that conflicts with the one asked for.
    #[error(
        "the repository is locked: {holders}; wait for it to finish, or if it is no longer running, run `arca unlock` (stale locks only) once it is stale"
    )]
    Locked { holders: String },

    /// The lock this operation held was lost (removed, or not refreshed in
    /// time); it stopped rather than continue unprotected.
    #[error(
        "lost the repository lock: {0}; the operation stopped and committed nothing further; run it again"
    )]
    LockLost(String),

    /// An operation stopped before it committed: the cause, and what it
    /// left behind.
    #[error("{operation} failed: {cause}; {detail}")]
    Stopped {
        /// The operation: `backup`, `restore`, ...
        operation: &'static str,
        /// What failed first.
        cause: Box<Error>,
        /// What was committed or left behind, and what to do.
        detail: String,
    },

    /// An error seen by several threads of a pipeline.
    #[error("{0}")]
    Shared(std::sync::Arc<Error>),

    /// Some files of a restore could not be restored (each with why); the
    /// others were restored and verified.
    #[error("{}", describe_failures(*.restored, .failed))]
    RestoreIncomplete {
        /// Files restored and verified.
        restored: u64,
        /// Files not restored (removed from the target), with why.
        failed: Vec<(PathBuf, String)>,
    },
}

impl Error {
    /// An I/O error on a local path.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An object whose bytes do not decode: an unknown format version
    /// stops the command ([`Error::UnsupportedVersion`]: never skipped or
    /// repaired as damage), anything else is damage.
    pub fn decode(object: impl std::fmt::Display, e: crate::format::DecodeError) -> Self {
        match e {
            crate::format::DecodeError::UnsupportedVersion {
                what,
                found,
                supported,
            } => Error::UnsupportedVersion {
                object: format!("{what} {object}"),
                found,
                supported,
            },
            crate::format::DecodeError::Malformed(why) => Error::damaged(object, why),
        }
    }

    /// A damaged repository object.
    pub fn damaged(object: impl std::fmt::Display, detail: impl Into<String>) -> Self {
        Error::Damaged {
            object: object.to_string(),
            detail: detail.into(),
        }
    }

    /// The error itself, seen through [`Error::Shared`].
    fn inner(&self) -> &Error {
        match self {
            Error::Shared(e) => e.inner(),
            e => e,
        }
    }

    /// True for what the repository's contents say (an object damaged,
    /// a blob not indexed), as opposed to a failure to reach them: the
    /// difference between "this is lost" and "try again".
    pub fn is_damage(&self) -> bool {
        matches!(
            self.inner(),
            Error::Damaged { .. } | Error::MissingBlob { .. }
        )
    }

    /// True for a backup or a copy whose snapshot a prune's seal voided.
    pub fn is_prune_conflict(&self) -> bool {
        matches!(
            self.inner(),
            Error::PruneConflict { .. } | Error::CopyPruneConflict { .. }
        )
    }

    /// True for a failure worth retrying (see [`Error::Transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self.inner(), Error::Transient { .. })
    }

    /// True for a conditional `put` that found the object already there.
    pub fn is_already_exists(&self) -> bool {
        matches!(
            self.inner(),
            Error::Backend {
                kind: BackendFailure::AlreadyExists,
                ..
            }
        )
    }

    /// True for a backend "object does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.inner(),
            Error::Backend {
                kind: BackendFailure::NotFound,
                ..
            }
        )
    }
}

/// 1536 -> "1.5 KiB", for messages.
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// "3 of 120 files could not be restored ...", the causes grouped (a full
/// disk is one cause, not one line per file).
fn describe_failures(restored: u64, failed: &[(PathBuf, String)]) -> String {
    let mut by_cause: Vec<(&str, Vec<&PathBuf>)> = vec![];
    for (p, why) in failed {
        match by_cause.iter_mut().find(|(w, _)| *w == why.as_str()) {
            Some((_, v)) => v.push(p),
            None => by_cause.push((why, vec![p])),
        }
    }
    by_cause.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut out = format!(
        "{} of {} files could not be restored and were removed from the target (the other {restored} were restored and verified):",
        failed.len(),
        failed.len() as u64 + restored
    );
    const CAUSES: usize = 5;
    const EXAMPLES: usize = 3;
    for (why, paths) in by_cause.iter().take(CAUSES) {
        let shown: Vec<String> = paths
            .iter()
            .take(EXAMPLES)
            .map(|p| p.display().to_string())
            .collect();
        let more = if paths.len() > EXAMPLES {
            format!(" and {} more", paths.len() - EXAMPLES)
        } else {
            String::new()
        };
        out += &format!(
            "\n  {} file(s): {why}: {}{more}",
            paths.len(),
            shown.join(", ")
        );
    }
    if by_cause.len() > CAUSES {
        out += &format!("\n  ... and {} other cause(s)", by_cause.len() - CAUSES);
    }
    out
}

fn describe_sources(v: &[crate::format::snapshot::SourceError]) -> String {
    let each: Vec<String> = v
        .iter()
        .map(|e| format!("{}: {}", e.path, e.error))
        .collect();
    if v.len() == 1 {
        format!("the source {} cannot be read", each[0])
    } else {
        format!(
            "none of the {} sources can be read ({})",
            v.len(),
            each.join("; ")
        )
    }
}

/// What a failed store operation means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFailure {
    /// The object does not exist.
    NotFound,
    /// A create-only `put` found the object already there.
    AlreadyExists,
    /// Anything else: refused, failed, not what was asked for.
    Other,
}

/// Adds the path to a bare `io::Error`.
pub trait IoContext<T> {
    /// Attaches `path` to the error.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
