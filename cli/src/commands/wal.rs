//! `arca wal push|fetch|list|verify|forget`: PostgreSQL WAL archiving.
//!
//! push and fetch are PostgreSQL's `archive_command` and
//! `restore_command`: silent on success (PostgreSQL logs what they print)
//! unless -v, one line on stderr and exit 1 on failure.

use anyhow::{Result, bail};
use arca_engine::format::compress::CompressionMode;
use arca_engine::format::wal::WalFile;
use arca_engine::ops::wal::{self, Fetched, spool::Spool};
use arca_engine::store::repo::Repository;

use crate::args::{Global, WalAction, WalArgs};
use crate::context;
use crate::output::{self, Out};

fn spool(g: &Global) -> Result<Spool> {
    let cache = g
        .cache_dir
        .clone()
        .unwrap_or_else(arca_engine::host::facts::default_cache_dir);
    Ok(Spool::new(&cache, &context::repo_location(g)?))
}

/// Opens the repository on `c` with the password (or token), only when
/// an operation needs it: a push answered from the spool never does.
fn open_with(
    g: &Global,
    c: &arca_engine::store::backend::Connected,
) -> arca_engine::Result<Repository> {
    let pw = context::password(g, false)
        .map_err(|e| arca_engine::Error::Invalid(format!("reading the password: {e:#}")))?;
    Repository::open(c.backend.clone(), &pw)
}

pub fn run(g: &Global, out: &Out, a: &WalArgs) -> Result<i32> {
    match &a.action {
        WalAction::Push {
            path,
            parallel,
            compression,
            background,
            timeout,
            pusher,
        } => {
            let mode: CompressionMode = compression.parse().map_err(anyhow::Error::msg)?;
            let c = context::connect(g)?;
            let open = || open_with(g, &c);
            if *pusher {
                let dir = path.parent().unwrap_or(std::path::Path::new("."));
                let n = wal::run_pusher(
                    open,
                    &spool(g)?,
                    dir,
                    *parallel,
                    std::time::Duration::from_secs(2),
                    mode,
                )?;
                out.note(format!("background pusher: {n} file(s) archived"));
                return Ok(0);
            }
            // the pusher: this very command line, detached, with --pusher
            let spawn = || -> arca_engine::Result<()> {
                use std::os::unix::process::CommandExt;
                let exe = std::env::current_exe()
                    .map_err(|e| arca_engine::Error::io("the arca executable", e))?;
                std::process::Command::new(&exe)
                    .args(std::env::args_os().skip(1))
                    .arg("--pusher")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .process_group(0)
                    .spawn()
                    .map_err(|e| arca_engine::Error::io(&exe, e))?;
                Ok(())
            };
            let ahead = if *background {
                wal::Ahead::Background {
                    spawn: &spawn,
                    timeout: std::time::Duration::from_secs(*timeout),
                }
            } else {
                wal::Ahead::Batch(*parallel)
            };
            let r = wal::archive_command(&*c.backend, open, &spool(g)?, path, ahead, mode)?;
            if out.verbose > 0 {
                match r.pushed {
                    None => out.note(format!("{}: archived earlier (spool)", r.file.name())),
                    Some(p) => out.note(format!(
                        "{}: {} ({})",
                        r.file.name(),
                        match p {
                            wal::Pushed::Stored { .. } => "archived",
                            wal::Pushed::AlreadyArchived { .. } => "already archived, identical",
                        },
                        output::size(p.stored())
                    )),
                }
                for (f, res) in &r.ahead {
                    match res {
                        Ok(p) => out.note(format!(
                            "{}: archived ahead ({})",
                            f.name(),
                            output::size(p.stored())
                        )),
                        Err(e) => out.note(format!(
                            "{}: not archived ahead ({e}); it is pushed when PostgreSQL asks",
                            f.name()
                        )),
                    }
                }
            }
            Ok(0)
        }
        WalAction::Fetch {
            name,
            dest,
            prefetch,
        } => {
            let c = context::connect(g)?;
            let open = || open_with(g, &c);
            match wal::restore_command(open, &spool(g)?, name, dest, *prefetch)? {
                Fetched::Restored {
                    from_spool,
                    prefetched,
                } => {
                    if out.verbose > 0 {
                        out.note(format!(
                            "{name}: restored{}{}",
                            if from_spool { " from the spool" } else { "" },
                            if prefetched > 0 {
                                format!(", {prefetched} next segment(s) read ahead")
                            } else {
                                String::new()
                            }
                        ));
                    }
                    Ok(0)
                }
                Fetched::Missing => {
                    out.note(format!("{name}: not in the WAL archive"));
                    Ok(1)
                }
            }
        }
        WalAction::List => {
            let (repo, _) = context::open_repo(g)?;
            let files = wal::list(&repo)?;
            if out.json {
                output::json(
                    &files
                        .iter()
                        .map(|(f, size)| serde_json::json!({"name": f.name(), "stored": size}))
                        .collect::<Vec<_>>(),
                );
            } else {
                for (f, size) in &files {
                    out.say(format!("{}  {}", f.name(), output::size(*size)));
                }
                let total: u64 = files.iter().map(|(_, s)| s).sum();
                out.say(format!(
                    "{} file(s), {} stored",
                    files.len(),
                    output::size(total)
                ));
            }
            Ok(0)
        }
        WalAction::Verify => {
            let o = context::open(g)?;
            let r = wal::verify(o.repo(), &o.catalog().snapshots()?)?;
            if out.json {
                output::json(&serde_json::json!({
                    "continuous": r.is_continuous(),
                    "report": r,
                }));
            } else {
                for t in &r.timelines {
                    out.say(format!(
                        "timeline {}: {} segment(s), {} .. {}",
                        t.timeline, t.segments, t.first, t.last
                    ));
                    for gap in &t.gaps {
                        out.say(format!(
                            "  GAP: {} segment(s) missing, {} .. {}",
                            gap.segments, gap.first, gap.last
                        ));
                    }
                }
                for b in &r.backups {
                    let state = replay_state(
                        b.consistent,
                        &b.recoverable_to,
                        &b.timelines,
                        &b.first_gap,
                        "WAL between its start and stop",
                    );
                    out.say(format!(
                        "base backup {} ({}, start {} in {}, stop {}): {state}",
                        b.backup.file,
                        b.backup.start_time,
                        b.backup.start_lsn,
                        b.backup.start_segment.name(),
                        b.backup.stop_lsn,
                    ));
                }
                for c in &r.snapshots {
                    let state = replay_state(
                        c.consistent,
                        &c.recoverable_to,
                        &c.timelines,
                        &c.first_gap,
                        &format!("WAL from {} to {}", c.backup.start_wal, c.stop_wal),
                    );
                    out.say(format!(
                        "snapshot {} ({}, {}: start {} in {}): {state}",
                        c.snapshot.short(),
                        output::time(&c.time),
                        c.backup.path,
                        c.backup.start_lsn,
                        c.backup.start_wal,
                    ));
                }
                for b in &r.branches {
                    out.say(format!(
                        "timeline {} branched from timeline {} at {:X}/{:X}",
                        b.timeline,
                        b.parent,
                        b.lsn >> 32,
                        b.lsn & 0xFFFF_FFFF
                    ));
                }
                for u in &r.unreadable {
                    out.say(format!("UNREADABLE history file {u}"));
                }
                out.say(if r.is_continuous() {
                    "the WAL archive is continuous"
                } else {
                    "the WAL archive has gaps"
                });
            }
            Ok(if r.is_continuous() { 0 } else { 1 })
        }
        WalAction::Recover {
            data,
            target_time,
            target_lsn,
            target_name,
            target_xid,
            target_action,
            archive,
        } => {
            use arca_engine::ops::wal::recovery::{self, Action, Target, shell_word};
            let target = match (target_time, target_lsn, target_name, target_xid) {
                (Some(t), ..) => Target::Time(t.clone()),
                (_, Some(l), ..) => Target::Lsn(l.clone()),
                (_, _, Some(n), _) => Target::Name(n.clone()),
                (.., Some(x)) => Target::Xid(x.clone()),
                _ => Target::Latest,
            };
            let action = match target_action.as_str() {
                "pause" => Action::Pause,
                "shutdown" => Action::Shutdown,
                _ => Action::Promote,
            };
            // the command PostgreSQL runs: this arca, this repository
            let exe = std::env::current_exe()?;
            let mut cmd = format!(
                "{} --repo {}",
                shell_word(&exe.display().to_string()),
                shell_word(&context::repo_location(g)?)
            );
            for o in &g.options {
                cmd.push_str(&format!(" -o {}", shell_word(o)));
            }
            match &g.password_file {
                Some(f) => {
                    let f = std::path::absolute(f)?;
                    cmd.push_str(&format!(" --password-file {}", shell_word(&f.display().to_string())));
                }
                None => out.note(
                    "note: restore_command carries no password: give the server ARCA_PASSWORD_FILE (a token file is best) in its environment, or run this with --password-file",
                ),
            }
            let push = format!("{cmd} wal push %p");
            cmd.push_str(" wal fetch %f %p");
            let now = chrono::Utc::now().to_rfc3339();
            let settings = recovery::settings(
                &cmd,
                archive.then_some(push.as_str()),
                &target,
                action,
                &now,
            );
            recovery::prepare(data, &settings)?;
            if out.json {
                output::json(&serde_json::json!({
                    "data": data,
                    "restore_command": cmd,
                    "settings": settings,
                }));
            } else {
                out.say(format!(
                    "{} is set up to recover from the WAL archive ({}{}); start the server on it",
                    data.display(),
                    match &target {
                        Target::Latest => "to the end of the archive".to_string(),
                        Target::Time(t) => format!("to {t}, then {target_action}"),
                        Target::Lsn(l) => format!("to LSN {l}, then {target_action}"),
                        Target::Name(n) => format!("to restore point {n}, then {target_action}"),
                        Target::Xid(x) => format!("to transaction {x}, then {target_action}"),
                    },
                    if *archive {
                        "; its new timeline is archived into this repository"
                    } else {
                        "; archiving off"
                    }
                ));
            }
            Ok(0)
        }
        WalAction::Forget { before, dry_run } => {
            let o = context::open(g)?;
            let oldest = match before {
                Some(b) => match WalFile::parse(b) {
                    Some(WalFile::Segment(s)) => s,
                    _ => bail!("--before {b}: not a 24-digit WAL segment name"),
                },
                None => match wal::oldest_needed(&o.catalog().snapshots()?) {
                    Some(s) => s,
                    None => bail!(
                        "no snapshot records a PostgreSQL base backup, so nothing says which WAL is needed: back up a base backup (a directory with its backup_label) first, or give --before SEGMENT"
                    ),
                },
            };
            let before = oldest.name();
            let gone = wal::forget_before(o.repo(), oldest, *dry_run)?;
            if out.json {
                output::json(&serde_json::json!({
                    "dry_run": dry_run,
                    "removed": gone.iter().map(|f| f.name()).collect::<Vec<_>>(),
                }));
            } else {
                out.say(format!(
                    "{} {} archived WAL file(s) before {before}",
                    if *dry_run { "would remove" } else { "removed" },
                    gone.len()
                ));
            }
            Ok(0)
        }
    }
}

/// How far a base backup recovers, in words.
fn replay_state(
    consistent: bool,
    recoverable_to: &Option<String>,
    timelines: &[u32],
    first_gap: &Option<wal::Gap>,
    needed: &str,
) -> String {
    let via = if timelines.len() > 1 {
        let path: Vec<String> = timelines.iter().map(|t| t.to_string()).collect();
        format!(" (timelines {})", path.join(" -> "))
    } else {
        String::new()
    };
    let recoverable_to = &recoverable_to.as_ref().map(|t| format!("{t}{via}"));
    match (recoverable_to, first_gap) {
        _ if !consistent => format!("NOT RESTORABLE: {needed} is missing"),
        (Some(to), Some(g)) => format!(
            "recoverable up to {to}; replay stops at the gap {} .. {}",
            g.first, g.last
        ),
        (Some(to), None) => format!("recoverable up to {to}"),
        (None, _) => "not recoverable".to_string(),
    }
}
