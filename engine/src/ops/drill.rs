//! Restore drills: restore a snapshot into scratch space, prove the copy
//! works, measure how long that took, record it in the repository
//! (`drills/`, `format::drill`), and clean up.
//!
//! A drill restores the whole snapshot (every file verified, as `restore`
//! does), then re-runs each dump check the snapshot recorded
//! (`backup --check`) on the restored file, then runs the user's validator
//! (`sh -c`, with `ARCA_DRILL_DIR` the restored tree and
//! `ARCA_DRILL_SNAPSHOT` the snapshot id; for PostgreSQL: start a server on
//! the restored data and query it). The recovery time is from the start to
//! the end of the validator. A drill that fails is recorded too: a failed
//! drill is a result the plan needs to see.
//!
//! Costs: the snapshot's full size in scratch space (`TMPDIR` unless given)
//! while it runs; one small object written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;

use crate::error::{Error, Result};
use crate::format::drill::DrillRecord;
use crate::format::id::{DrillId, SnapshotId};
use crate::format::layout::ObjectKey;
use crate::format::snapshot::Snapshot;
use crate::ops::backup::dumps::{self, DumpKind};
use crate::ops::restore::{self, RestoreOptions};
use crate::store::repo::Repository;
use crate::store::session::{Session, Writes};

/// Drill settings.
#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// Where the scratch directory goes (default: the temporary directory).
    pub scratch: Option<PathBuf>,
    /// A shell command that proves the restored copy works.
    pub validate: Option<String>,
    /// The recovery time objective to hold the drill against.
    pub rto: Option<Duration>,
    /// Keep the restored copy (its path is returned) instead of removing it.
    pub keep: bool,
    /// Run the snapshot's `command` checks again. Off by default: such a
    /// check is a shell command read from the repository, and whoever can
    /// write snapshots should not choose what a drill host runs.
    pub recorded_commands: bool,
    /// Concurrent pack reads for the restore (0: restore's default).
    pub fetchers: usize,
    /// Set to stop (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
}

/// What a drill did.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// The record written.
    pub id: DrillId,
    /// What it says.
    pub record: DrillRecord,
    /// The restored copy, when kept.
    pub kept: Option<PathBuf>,
}

/// Runs a drill of snapshot `id` and records it. `Err` only when the drill
/// could not run or its record could not be written; a restore or a check
/// that fails is a record with `ok: false`.
pub fn drill<A: Writes>(
    session: &Session<A>,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &DrillOptions,
) -> Result<DrillOutcome> {
    let scratch = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("arca-drill-")
        .tempdir_in(&scratch)
        .map_err(|e| Error::io(&scratch, e))?;
    let started = Utc::now();
    let t0 = Instant::now();
    let mut ropts = RestoreOptions::new(dir.path().to_path_buf());
    if opts.fetchers > 0 {
        ropts.fetchers = opts.fetchers;
    }
    ropts.cancel = opts.cancel.clone();
    let restored = restore::restore(session, id, snapshot, &ropts);
    let restore_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut checks = vec![];
    let mut error = String::new();
    let (mut files, mut bytes) = (0, 0);
    match restored {
        Err(e) => error = format!("the restore failed: {e}"),
        Ok(sum) => {
            files = sum.files;
            bytes = sum.bytes;
            match run_checks(dir.path(), id, snapshot, opts) {
                Ok(c) => checks = c,
                Err((c, why)) => {
                    checks = c;
                    error = why;
                }
            }
        }
    }
    let check_seconds = t1.elapsed().as_secs_f64();
    if opts.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        // stopped, not failed: nothing is recorded
        return Err(Error::Interrupted("the drill was stopped".into()));
    }
    let record = DrillRecord {
        snapshot: *id,
        paths: snapshot.paths.clone(),
        source_host: snapshot.host.clone(),
        host: crate::host::facts::hostname(),
        username: crate::host::facts::username(),
        started,
        restore_seconds,
        check_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
        files,
        bytes,
        checks,
        ok: error.is_empty(),
        error,
        rto_seconds: opts.rto.map(|d| d.as_secs().max(1)),
    };
    let rid: DrillId = session
        .repo()
        .write_object(Bytes::from(record.to_object(session.repo().key())))?;
    let kept = if opts.keep {
        Some(dir.keep())
    } else {
        let path = dir.path().to_path_buf();
        dir.close().map_err(|e| Error::io(path, e))?;
        None
    };
    Ok(DrillOutcome {
        id: rid,
        record,
        kept,
    })
}

/// The snapshot's dump checks on the restored files, then the validator;
/// one line per check, or the lines so far and why one failed.
fn run_checks(
    root: &Path,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &DrillOptions,
) -> std::result::Result<Vec<String>, (Vec<String>, String)> {
    let mut lines = vec![];
    for c in &snapshot.checks {
        let kind = match c.kind.as_str() {
            "command" if !opts.recorded_commands => {
                lines.push(format!(
                    "{} (command): not run again: `{}` comes from the snapshot (--recorded-commands runs it)",
                    c.path, c.validator
                ));
                continue;
            }
            "command" => DumpKind::Command(c.validator.clone()),
            k => match DumpKind::parse(k) {
                Ok(k) => k,
                Err(_) => {
                    lines.push(format!(
                        "{}: a {} check this build does not know: skipped",
                        c.path, c.kind
                    ));
                    continue;
                }
            },
        };
        let file = root.join(c.path.trim_start_matches('/'));
        match dumps::check_file(&file, &c.path, kind) {
            Ok(d) => lines.push(format!("{} ({}): {}", c.path, c.kind, d.result)),
            Err(e) => return Err((lines, e.to_string())),
        }
    }
    if let Some(cmd) = opts.validate.as_deref() {
        let (status, text) = crate::host::process::run_to_end(
            Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("ARCA_DRILL_DIR", root)
                .env("ARCA_DRILL_SNAPSHOT", id.to_hex()),
        )
        .map_err(|e| {
            (
                lines.clone(),
                format!("could not run the validator {cmd}: {e}"),
            )
        })?;
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .chars()
            .take(200)
            .collect::<String>();
        if !status.success() {
            return Err((lines, format!("the validator failed ({status}): {last}")));
        }
        lines.push(format!("validator `{cmd}`: {last}"));
    }
    Ok(lines)
}

/// A drill record as listed: its id and what it says, or why it cannot be
/// read.
pub type Listed = (DrillId, std::result::Result<DrillRecord, String>);

/// Every drill record, oldest first (unreadable ones last).
pub fn list(repo: &Repository) -> Result<Vec<Listed>> {
    let mut out = vec![];
    for id in repo.list::<DrillId>()? {
        let key = ObjectKey::of(id);
        let r = match repo.read_object(&key) {
            Ok(b) => DrillRecord::from_object(repo.key(), &b).map_err(|e| e.to_string()),
            Err(e) if e.is_not_found() => continue,
            Err(e) => Err(e.to_string()),
        };
        out.push((id, r));
    }
    out.sort_by_key(|(_, r)| {
        r.as_ref()
            .map(|r| r.started)
            .ok()
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
    });
    Ok(out)
}
