//! `arca backup`: one backup of the paths or stream given, or every
//! source of a profile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use arca_engine::format::chunker::ChunkerParams;
use arca_engine::format::compress::CompressionMode;
use arca_engine::format::id::SnapshotId;
use arca_engine::ops::backup::dumps::DumpKind;
use arca_engine::ops::backup::{self, BackupOptions, Source};
use arca_engine::ops::select;

use arca_engine::store::session::Write;

use crate::args::{BackupArgs, Global};
use crate::context::{self, Held};
use crate::hooks::{self, Saved, Scope};
use crate::output::{self, Out, Ticker};
use crate::profile::{self, Loaded, SourceSection};

/// `arca backup`: the paths or stream given, or with `--profile` and
/// none given, the profile's sources (each between its hooks, in one
/// session: the repository is opened once).
pub fn run(
    g: &Global,
    out: &Out,
    a: &BackupArgs,
    cancel: Arc<AtomicBool>,
    profile: Option<&Loaded>,
    saved: &Saved,
) -> Result<i32> {
    let named = !a.paths.is_empty() || a.stdin || a.stdin_from_command;
    match profile {
        Some(p) if !named => return run_sources(g, out, a, cancel, p, saved),
        _ if !a.source.sources.is_empty() => {
            bail!(
                "--source picks sources of a profile: give --profile NAME, and no paths or --stdin"
            )
        }
        _ => {}
    }
    let a = match profile {
        Some(p) => with_defaults(a, p),
        None => a.clone(),
    };
    let opts = options(&a, cancel)?;
    // A shared lock: backups run side by side, never beside repair.
    let h = context::open(g)?.writing(g, "backup")?;
    h.note_stale_locks(out);
    let result = save(&h, out, opts, a.parent.as_deref(), None);
    h.note_metrics(out);
    release(out, h);
    let (code, id) = result?;
    saved.push(id.to_hex());
    Ok(code)
}

/// Every source of the profile (or those `--source` names), in the
/// file's order. A source that fails (its `before` hook, an unreadable
/// path, a failed dump check) does not stop the others: exit 1 if any
/// failed, else 3 if any was partial.
fn run_sources(
    g: &Global,
    out: &Out,
    a: &BackupArgs,
    cancel: Arc<AtomicBool>,
    p: &Loaded,
    saved: &Saved,
) -> Result<i32> {
    let sources = p.sources(&a.source.sources)?;
    if sources.is_empty() {
        bail!(
            "profile {} has no [sources.NAME]: give paths to back up, or add a source",
            p.path.display()
        );
    }
    if a.parent.is_some() && sources.len() > 1 {
        bail!("--parent names one snapshot: pick one source with --source");
    }
    // every source's options are checked before the first is read
    let prepared: Vec<(&str, &SourceSection, BackupArgs)> = sources
        .into_iter()
        .map(|(name, s)| (name, s, source_args(p, name, s, a)))
        .collect();
    let h = context::open(g)?.writing(g, "backup")?;
    h.note_stale_locks(out);
    let mut code = 0;
    let mut failed = vec![];
    for (name, s, sa) in &prepared {
        if cancel.load(Ordering::SeqCst) {
            failed.push(format!("{name}: not started (interrupted)"));
            break;
        }
        let mine = Saved::default();
        let error_code = || {
            if cancel.load(Ordering::SeqCst) {
                130
            } else {
                1
            }
        };
        let scope = Scope {
            profile: &p.name,
            command: "backup",
            source: Some(name),
            error_code: &error_code,
        };
        out.say(format!("source {name}:"));
        let r = hooks::around(s.hooks.as_ref(), &scope, out, &mine, || {
            let (c, id) = options(sa, cancel.clone())
                .and_then(|opts| save(&h, out, opts, sa.parent.as_deref(), Some(name)))
                .with_context(|| format!("source {name}"))?;
            mine.push(id.to_hex());
            Ok(c)
        });
        for id in mine.ids() {
            saved.push(id);
        }
        match r {
            Ok(c) => code = code.max(c),
            Err(e) => {
                let m = crate::render_error(&e);
                if !out.json {
                    eprintln!("arca: {m}");
                }
                failed.push(m);
            }
        }
    }
    h.note_metrics(out);
    release(out, h);
    if !failed.is_empty() {
        bail!(
            "{} of {} source(s) failed: {}",
            failed.len(),
            prepared.len(),
            failed.join("; ")
        );
    }
    Ok(code)
}

/// `a` with the profile's `[backup]` defaults where it gives none.
fn with_defaults(a: &BackupArgs, p: &Loaded) -> BackupArgs {
    let d = &p.profile.backup;
    let mut a = a.clone();
    a.host = a.host.or_else(|| d.host.clone());
    a.tags = d.tags.iter().cloned().chain(a.tags).collect();
    a.excludes = d.excludes.iter().cloned().chain(a.excludes).collect();
    a.compression = a
        .compression
        .or_else(|| d.compression.as_ref().map(|c| c.0.clone()));
    a.chunk_size = a
        .chunk_size
        .or_else(|| d.chunk_size.as_ref().map(|c| c.0.clone()));
    a.with_atime |= d.with_atime;
    a
}

/// The arguments that back up source `name`: the source's settings over
/// `[backup]`'s, with what the command line gives on top.
fn source_args(p: &Loaded, name: &str, s: &SourceSection, a: &BackupArgs) -> BackupArgs {
    let d = &p.profile.backup;
    let mut sa = a.clone();
    sa.source = Default::default();
    sa.paths = s.paths.clone();
    sa.stdin = false;
    sa.stdin_from_command = s.command.is_some();
    sa.command = s
        .command
        .as_ref()
        .map(|c| c.argv().into_iter().map(Into::into).collect())
        .unwrap_or_default();
    sa.stdin_filename = profile::stdin_filename(name, s);
    sa.check = s.check.as_ref().map(|c| c.0.clone());
    sa.check_command = s.check_command.clone();
    sa.allow_empty |= s.allow_empty;
    sa.host = a.host.clone().or_else(|| Some(p.host_of(s)));
    sa.tags = d
        .tags
        .iter()
        .chain(&s.tags)
        .chain(&a.tags)
        .cloned()
        .collect();
    sa.excludes = d
        .excludes
        .iter()
        .chain(&s.excludes)
        .chain(&a.excludes)
        .cloned()
        .collect();
    sa.compression = pick(&a.compression, &s.compression, &d.compression);
    sa.chunk_size = pick(&a.chunk_size, &s.chunk_size, &d.chunk_size);
    sa.with_atime = a.with_atime || s.with_atime.unwrap_or(d.with_atime);
    sa
}

/// The command line's value, else the source's, else `[backup]`'s.
fn pick<K>(
    cli: &Option<String>,
    own: &Option<profile::Checked<K>>,
    default: &Option<profile::Checked<K>>,
) -> Option<String> {
    cli.clone()
        .or_else(|| own.as_ref().or(default.as_ref()).map(|c| c.0.clone()))
}

/// The chunker `--chunk-size SIZE` asks for.
pub fn chunker(s: &str) -> Result<ChunkerParams> {
    let avg = u32::try_from(output::parse_size(s)?)
        .map_err(|_| anyhow::anyhow!("--chunk-size {s} is too large"))?;
    let p = ChunkerParams::around(avg);
    p.validate()
        .map_err(|e| anyhow::anyhow!("--chunk-size {s}: {e}"))?;
    Ok(p)
}

/// The engine's options for `a` (all but the parent, which needs the
/// catalog, and the uploaders, which the connection sets).
fn options(a: &BackupArgs, cancel: Arc<AtomicBool>) -> Result<BackupOptions> {
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
    let mut opts = BackupOptions::new(source);
    opts.compression = match &a.compression {
        Some(c) => c.parse().map_err(anyhow::Error::msg)?,
        None => CompressionMode::Auto,
    };
    opts.chunker = a.chunk_size.as_deref().map(chunker).transpose()?;
    opts.force = a.force;
    opts.allow_empty = a.allow_empty;
    opts.with_atime = a.with_atime;
    opts.excludes = a.excludes.clone();
    opts.tags = super::tag_list(&a.tags);
    if let Some(h) = &a.host {
        opts.host = h.clone();
    }
    if let Some(t) = &a.time {
        opts.time = Some(select::parse_time(t)?);
    }
    opts.cancel = cancel;
    Ok(opts)
}

fn release(out: &Out, h: Held<Write>) {
    if let Err(e) = h.session.release() {
        out.note(format!(
            "warning: could not remove this backup's lock ({e}); it goes stale by itself, or run `arca unlock`"
        ));
    }
}

/// Runs one backup in the held session and renders what it saved (with
/// `source`, the profile source it is of); its exit code (0, or 3 for a
/// partial snapshot) and the snapshot's id.
fn save(
    h: &Held<Write>,
    out: &Out,
    mut opts: BackupOptions,
    parent: Option<&str>,
    source: Option<&str>,
) -> Result<(i32, SnapshotId)> {
    opts.uploaders = h.uploads;
    if let Some(p) = parent {
        let (id, _) = super::pick(h.session.catalog(), Some(p), None, &Default::default())?;
        opts.parent = Some(id);
    }
    let progress = opts.progress.clone();
    let ticker = Ticker::start(out, move || {
        let read = progress.bytes_read.load(Ordering::Relaxed)
            + progress.bytes_sparse.load(Ordering::Relaxed);
        let skipped = progress.bytes_unmodified.load(Ordering::Relaxed);
        output::Status {
            // unchanged files count as done (the parent's size is the
            // estimate of the whole), but not towards the rate
            bytes_done: read + skipped,
            bytes_instant: skipped,
            bytes_total: progress.bytes_expected.load(Ordering::Relaxed),
            files_done: progress.files.load(Ordering::Relaxed),
            files_total: 0,
            errors: progress.errors.load(Ordering::Relaxed),
            message: format!("{} unchanged", output::size(skipped)),
        }
    });
    let result = backup::backup(&h.session, opts);
    drop(ticker);
    let done = result?;
    let s = &done.snapshot;
    let sm = &s.summary;
    if out.json {
        let mut v = serde_json::json!({
            "snapshot_id": done.id,
            "parent": s.parent,
            "time": s.time,
            "paths": s.paths,
            "partial": s.partial,
            "errors": s.errors,
            "warnings": s.warnings,
            "checks": s.checks,
            "summary": sm,
        });
        if let Some(name) = source {
            v["source"] = name.into();
        }
        output::summary(out, v);
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
    Ok((if s.partial { 3 } else { 0 }, done.id))
}
