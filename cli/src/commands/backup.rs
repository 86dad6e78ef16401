use std::sync::atomic::Ordering;

use anyhow::{Result, bail};
use arca_engine::format::chunker::ChunkerParams;
use arca_engine::format::compress::CompressionMode;
use arca_engine::ops::backup::dumps::DumpKind;
use arca_engine::ops::backup::{self, BackupOptions, Source};
use arca_engine::ops::select;

use crate::args::{BackupArgs, Global};
use crate::context;
use crate::output::{self, Out, Ticker};

pub fn run(
    g: &Global,
    out: &Out,
    a: &BackupArgs,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<i32> {
    let source = if a.stdin_from_command {
        if a.command.is_empty() {
            bail!("--stdin-from-command needs the command after `--`");
        }
        Source::command(a.stdin_filename.clone(), a.command.clone())
    } else if a.stdin {
        Source::reader(a.stdin_filename.clone(), std::io::stdin())
    } else {
        if a.paths.is_empty() {
            bail!("nothing to back up: give paths, --stdin, or --stdin-from-command -- CMD");
        }
        if !a.command.is_empty() {
            bail!("a command after `--` needs --stdin-from-command");
        }
        Source::Paths(a.paths.clone())
    };
    let source = match (&a.check, &a.check_command) {
        (None, None) => source,
        _ if !(a.stdin || a.stdin_from_command) => {
            bail!(
                "--check and --check-command check a stream: use them with --stdin or --stdin-from-command"
            )
        }
        (Some(k), _) => source.checked(DumpKind::parse(k)?),
        (None, Some(c)) => source.checked(DumpKind::Command(c.clone())),
    };
    let compression: CompressionMode = a.compression.parse().map_err(anyhow::Error::msg)?;
    let chunker = match &a.chunk_size {
        None => None,
        Some(s) => {
            let avg = u32::try_from(output::parse_size(s)?)
                .map_err(|_| anyhow::anyhow!("--chunk-size {s} is too large"))?;
            let p = ChunkerParams::around(avg);
            p.validate()
                .map_err(|e| anyhow::anyhow!("--chunk-size {s}: {e}"))?;
            Some(p)
        }
    };
    // A shared lock: backups run side by side, never beside repair.
    let h = context::open(g)?.writing(g, "backup")?;
    h.note_stale_locks(out);
    let mut opts = BackupOptions::new(source);
    opts.uploaders = h.uploads;
    opts.compression = compression;
    opts.chunker = chunker;
    opts.force = a.force;
    opts.allow_empty = a.allow_empty;
    opts.with_atime = a.with_atime;
    opts.excludes = a.excludes.clone();
    opts.tags = a
        .tags
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    if let Some(h) = &a.host {
        opts.host = h.clone();
    }
    if let Some(t) = &a.time {
        opts.time = Some(select::parse_time(t)?);
    }
    if let Some(p) = &a.parent {
        let (id, _) = super::pick(h.session.catalog(), Some(p), None, &Default::default())?;
        opts.parent = Some(id);
    }
    opts.cancel = cancel;
    let progress = opts.progress.clone();
    let ticker = Ticker::start(out, move || {
        let read = progress.bytes_read.load(Ordering::Relaxed);
        let skipped = progress.bytes_unmodified.load(Ordering::Relaxed);
        let files = progress.files.load(Ordering::Relaxed);
        let errors = progress.errors.load(Ordering::Relaxed);
        let msg = format!(
            "{files} files, {} unchanged, {errors} errors",
            output::size(skipped)
        );
        (read, 0, msg)
    });
    let result = backup::backup(&h.session, opts);
    drop(ticker);
    h.note_metrics(out);
    let released = h.session.release();
    let done = result?;
    if let Err(e) = released {
        out.note(format!(
            "warning: could not remove this backup's lock ({e}); it goes stale by itself, or run `arca unlock`"
        ));
    }
    let s = &done.snapshot;
    let sm = &s.summary;
    if out.json {
        output::json(&serde_json::json!({
            "snapshot_id": done.id,
            "parent": s.parent,
            "time": s.time,
            "paths": s.paths,
            "partial": s.partial,
            "errors": s.errors,
            "warnings": s.warnings,
            "checks": s.checks,
            "summary": sm,
        }));
    } else {
        for e in &s.errors {
            eprintln!("error: {}: {}", e.path, e.error);
        }
        for w in &s.warnings {
            eprintln!("warning: {}: {}", w.path, w.error);
        }
        for c in &s.checks {
            let what: Vec<&str> = [c.format.as_str(), c.validator.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            out.say(format!(
                "checked {} as {}: {}: {}",
                c.path,
                c.kind,
                what.join("; "),
                c.result
            ));
            for w in &c.warnings {
                eprintln!("warning: {}: {w}", c.path);
            }
        }
        let secs = match (sm.backup_start, sm.backup_end) {
            (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        out.say(format!(
            "Files: {} new, {} changed, {} unmodified; {} dirs",
            sm.files_new, sm.files_changed, sm.files_unmodified, sm.dirs
        ));
        out.say(format!(
            "Added to the repository: {} ({} stored) from {} read, {} total",
            output::size(sm.data_added),
            output::size(sm.data_added_packed),
            output::size(sm.bytes_read),
            output::size(sm.total_bytes)
        ));
        out.say(format!(
            "snapshot {} saved in {secs:.2} s{}",
            done.id.short(),
            if s.partial {
                " (partial: some sources could not be read)"
            } else {
                ""
            }
        ));
    }
    Ok(if s.partial { 3 } else { 0 })
}
