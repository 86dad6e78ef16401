//! `arca copy`: snapshots from `--from-repo` into `--repo`. The source is
//! opened for reading (its own password sources, its own catalog in the
//! cache directory), the destination for writing; the engine's
//! `ops::copy` plans and copies, this module renders.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use arca_engine::format::compress::CompressionMode;
use arca_engine::ops::copy::{self, CopiedSnapshot, CopyOptions, CopyPlan};
use serde_json::json;

use crate::args::{CopyArgs, Global};
use crate::context::{self, PasswordSources};
use crate::output::{self, Out, Ticker};

pub fn run(g: &Global, out: &Out, a: &CopyArgs, cancel: Arc<AtomicBool>) -> Result<i32> {
    let compression: CompressionMode = a.compression.parse().map_err(anyhow::Error::msg)?;
    if a.from_repo.is_empty() {
        bail!("no source repository given: use --from-repo or set ARCA_FROM_REPOSITORY");
    }
    let password = PasswordSources {
        file: a.from_password_file.clone(),
        command: a.from_password_command.clone(),
        var: "ARCA_FROM_PASSWORD",
        names: "--from-password-file, --from-password-command, ARCA_FROM_PASSWORD_FILE, ARCA_FROM_PASSWORD_COMMAND or ARCA_FROM_PASSWORD",
        allow_empty: a.from_insecure_empty_password,
        allow_empty_flag: "--from-insecure-empty-password",
        what: "source repository",
    };
    let options = if a.from_options.is_empty() {
        &g.options
    } else {
        &a.from_options
    };
    // The source first: a wrong source password stops before the
    // destination is touched.
    let source = context::open_at(g, &a.from_repo, options, &password)
        .and_then(|o| o.reading_locked(!a.from_no_lock, "copy (source)"))
        .with_context(|| format!("source repository {}", a.from_repo))?;
    source.note_stale_locks(out);
    let dest = context::open(g).with_context(|| destination(g))?;
    let filter = super::filter(&a.filter);

    if a.dry_run {
        let dest = dest
            .reading(g, "copy --dry-run")
            .with_context(|| destination(g))?;
        dest.note_stale_locks(out);
        let plan = copy::plan(&source.session, &dest.session, &a.snapshots, &filter)?;
        render_plan(out, &plan);
        return Ok(0);
    }

    let dest = dest.writing(g, "copy").with_context(|| destination(g))?;
    dest.note_stale_locks(out);
    let plan = copy::plan(&source.session, &dest.session, &a.snapshots, &filter)?;
    let total = plan.snapshots.len();
    if total == 0 {
        if out.json {
            output::json(&report(&[]));
        } else {
            out.say("nothing to copy: no snapshot of the source matches");
        }
        return Ok(0);
    }
    let opts = CopyOptions {
        concurrency: source.downloads.unwrap_or(4),
        uploaders: dest.uploads,
        compression,
        cancel,
        ..Default::default()
    };
    let p = opts.progress.clone();
    let ticker = Ticker::start(out, move || output::Status {
        bytes_done: p.bytes_read.load(Ordering::Relaxed),
        message: format!(
            "{} of {total} snapshots, {} blobs read",
            p.snapshots.load(Ordering::Relaxed),
            p.blobs_read.load(Ordering::Relaxed)
        ),
        ..Default::default()
    });
    let r = copy::execute(&source.session, &dest.session, plan, &opts, &mut |c| {
        if !out.json {
            out.say(line(c));
        }
    });
    drop(ticker);
    source.note_metrics(out);
    dest.note_metrics(out);
    let released = (dest.session.release(), source.session.release());
    let done = r?;
    for e in [released.0, released.1].into_iter().filter_map(|r| r.err()) {
        out.note(format!(
            "warning: could not remove this copy's lock ({e}); it goes stale by itself, or run `arca unlock`"
        ));
    }
    if out.json {
        output::summary(out, report(&done));
    } else {
        let t = totals(&done);
        out.say(format!(
            "copied {} snapshot(s), skipped {} already in the destination: {} blobs ({}) new, {} uploaded, {} read from the source",
            t.copied,
            t.skipped,
            t.blobs_copied,
            output::size(t.bytes_copied),
            output::size(t.bytes_uploaded),
            output::size(t.bytes_read),
        ));
    }
    Ok(0)
}

fn destination(g: &Global) -> String {
    format!(
        "destination repository {}",
        g.repo.as_deref().unwrap_or_default()
    )
}

/// One snapshot's line, as it is done.
fn line(c: &CopiedSnapshot) -> String {
    if c.skipped {
        format!(
            "snapshot {} skipped: already in the destination as {}",
            c.source.short(),
            c.destination.short()
        )
    } else {
        format!(
            "snapshot {} copied as {}: {} blobs ({}) new, {} uploaded; {} blobs ({}) read from the source",
            c.source.short(),
            c.destination.short(),
            c.blobs_copied,
            output::size(c.bytes_copied),
            output::size(c.bytes_uploaded),
            c.blobs_read,
            output::size(c.bytes_read),
        )
    }
}

#[derive(Default)]
struct Totals {
    copied: u64,
    skipped: u64,
    blobs_read: u64,
    bytes_read: u64,
    blobs_copied: u64,
    bytes_copied: u64,
    bytes_uploaded: u64,
}

fn totals(done: &[CopiedSnapshot]) -> Totals {
    let mut t = Totals::default();
    for c in done {
        if c.skipped {
            t.skipped += 1;
        } else {
            t.copied += 1;
        }
        t.blobs_read += c.blobs_read;
        t.bytes_read += c.bytes_read;
        t.blobs_copied += c.blobs_copied;
        t.bytes_copied += c.bytes_copied;
        t.bytes_uploaded += c.bytes_uploaded;
    }
    t
}

fn report(done: &[CopiedSnapshot]) -> serde_json::Value {
    let t = totals(done);
    json!({
        "snapshots": done,
        "totals": {
            "snapshots_copied": t.copied,
            "snapshots_skipped": t.skipped,
            "blobs_read": t.blobs_read,
            "bytes_read": t.bytes_read,
            "blobs_copied": t.blobs_copied,
            "bytes_copied": t.bytes_copied,
            "bytes_uploaded": t.bytes_uploaded,
        },
    })
}

fn render_plan(out: &Out, plan: &CopyPlan) {
    if out.json {
        let v: Vec<_> = plan
            .snapshots
            .iter()
            .map(|p| {
                let mut v = output::snapshot_json(&p.source, &p.snapshot);
                v["copy"] = json!(p.existing.is_none());
                v["existing"] = json!(p.existing);
                v
            })
            .collect();
        output::json(&json!({
            "dry_run": true,
            "to_copy": plan.to_copy(),
            "skipped": plan.snapshots.len() - plan.to_copy(),
            "snapshots": v,
        }));
        return;
    }
    if out.quiet {
        return;
    }
    let rows: Vec<Vec<String>> = plan
        .snapshots
        .iter()
        .map(|p| {
            vec![
                match p.existing {
                    None => "copy".into(),
                    Some(d) => format!("skip (here as {})", d.short()),
                },
                p.source.short(),
                output::time(&p.snapshot.time),
                p.snapshot.host.clone(),
                p.snapshot.tags.join(","),
                p.snapshot.paths.join(" "),
                output::size(p.snapshot.summary.total_bytes),
            ]
        })
        .collect();
    output::table(
        &["Action", "ID", "Time", "Host", "Tags", "Paths", "Size"],
        &rows,
    );
    println!(
        "would copy {} snapshot(s); {} already in the destination (dry run: nothing was written)",
        plan.to_copy(),
        plan.snapshots.len() - plan.to_copy()
    );
}
