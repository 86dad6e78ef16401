use anyhow::Result;
use arca_engine::ops::prune::{self, MaxUnused, PruneOptions, PrunePlan};
use arca_engine::store::session::{Maintenance, Session};
use std::sync::atomic::Ordering;

use crate::args::{Global, PruneArgs, PruneOpts};
use crate::context;
use crate::output::{self, Out, Ticker};
use crate::profile::Loaded;

pub fn run(g: &Global, out: &Out, a: &PruneArgs, profile: Option<&Loaded>) -> Result<i32> {
    let opts = with_profile(&a.opts, profile);
    let h = context::open(g)?.maintenance(g, "prune")?;
    h.note_stale_locks(out);
    let code = prune_in(g, &h.session, out, &opts, a.dry_run, a.packs)?;
    h.note_metrics(out);
    h.session.release()?;
    Ok(code)
}

/// `o` with the profile's `[prune]` settings where the command line
/// gives none.
pub fn with_profile(o: &PruneOpts, profile: Option<&Loaded>) -> PruneOpts {
    let mut o = o.clone();
    if let Some(p) = profile {
        let d = &p.profile.prune;
        o.max_unused = o
            .max_unused
            .or_else(|| d.max_unused.as_ref().map(|v| v.0.clone()));
        o.max_repack_size = o
            .max_repack_size
            .or_else(|| d.max_repack_size.as_ref().map(|v| v.0.clone()));
    }
    o
}

/// Prune settings from the command line.
fn options(g: &Global, session: &Session<Maintenance>, o: &PruneOpts) -> Result<PruneOptions> {
    Ok(PruneOptions {
        max_unused: MaxUnused::parse(o.max_unused.as_deref().unwrap_or("5%"), |s| {
            output::parse_size(s).ok()
        })?,
        max_repack_bytes: o
            .max_repack_size
            .as_deref()
            .map(output::parse_size)
            .transpose()?,
        now: o.now,
        // the working set goes beside the catalog (in memory with --no-cache)
        scratch_dir: (!g.no_cache)
            .then(|| session.catalog().path().parent().map(|p| p.to_path_buf()))
            .flatten(),
        ..PruneOptions::default()
    })
}

/// Prunes under a maintenance session (also `forget --prune`).
pub fn prune_in(
    g: &Global,
    session: &Session<Maintenance>,
    out: &Out,
    o: &PruneOpts,
    dry_run: bool,
    packs: bool,
) -> Result<i32> {
    let opts = options(g, session, o)?;
    if dry_run {
        let mut plan = prune::plan(session, &opts)?;
        if out.json {
            if !packs {
                plan.packs.clear();
            }
            output::json(&plan);
            return Ok(0);
        }
        show(out, &plan);
        if packs {
            let rows: Vec<Vec<String>> = plan
                .packs
                .iter()
                .map(|p| {
                    vec![
                        p.pack.short(),
                        output::size(p.size),
                        output::size(p.used),
                        format!("{:?}", p.fate).to_lowercase(),
                    ]
                })
                .collect();
            output::table(&["Pack", "Size", "Used", "Fate"], &rows);
        }
        out.say("dry run: nothing was changed");
        return Ok(0);
    }
    let p = opts.progress.clone();
    let ticker = Ticker::start(out, move || {
        let total = p.copy_total.load(Ordering::Relaxed);
        let step = *p.step.lock().unwrap_or_else(|e| e.into_inner());
        let deleted = p.packs_deleted.load(Ordering::Relaxed);
        output::Status {
            bytes_done: p.copied.load(Ordering::Relaxed),
            bytes_total: total,
            message: match deleted {
                0 => step.to_string(),
                n => format!("{step}, {n} packs deleted"),
            },
            ..Default::default()
        }
    });
    let r = prune::run(session, &opts);
    drop(ticker);
    let r = r?;
    if out.json {
        output::summary(out, serde_json::to_value(&r).expect("serializable"));
        return Ok(0);
    }
    for p in &r.generations {
        show(out, p);
    }
    if r.leftovers_removed > 0 {
        out.say(format!(
            "removed {} leftover(s) of interrupted writes",
            r.leftovers_removed
        ));
    }
    if r.records.is_empty() {
        out.say("nothing to prune");
    } else {
        out.say(format!(
            "deleted {} packs ({}) and {} void snapshot(s); wrote {} packs ({}); condemned {} packs, freed by the next prune",
            r.packs_deleted,
            output::size(r.bytes_deleted),
            r.snapshots_deleted,
            r.packs_written,
            output::size(r.bytes_written),
            r.packs_condemned,
        ));
    }
    Ok(0)
}

fn show(out: &Out, p: &PrunePlan) {
    let sweeps = match p.sweeps {
        Some(g) => format!(", sweeping generation {g}"),
        None => String::new(),
    };
    out.say(format!(
        "prune generation {}{sweeps}: {} snapshot(s) walked",
        p.generation, p.snapshots
    ));
    let line = |what: &str, b: &prune::Bytes3, tail: &str| {
        out.say(format!(
            "  {what:<8} {:>6} packs {:>12} ({} used){tail}",
            b.packs,
            output::size(b.bytes),
            output::size(b.used)
        ))
    };
    line("keep", &p.keep, "");
    line(
        "condemn",
        &p.condemn,
        ": nothing used, freed by the next generation",
    );
    line("repack", &p.repack, ": used blobs copied, then condemned");
    line(
        "delete",
        &p.delete,
        ": condemned by the previous generation",
    );
    if p.copy_blobs > 0 {
        out.say(format!(
            "  copy {} blobs ({}) into new packs",
            p.copy_blobs,
            output::size(p.copy_bytes)
        ));
    }
    if !p.void_snapshots.is_empty() {
        out.say(format!(
            "  {} void snapshot(s) deleted (their backups were told to run again)",
            p.void_snapshots.len()
        ));
    }
    out.say(format!(
        "  frees {} now, {} at the next generation",
        output::size(p.freed_now),
        output::size(p.freed_next)
    ));
}
