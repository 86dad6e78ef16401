use std::sync::atomic::Ordering;

use anyhow::Result;
use arca_engine::ops::restore::{self, RestoreOptions};

use crate::args::{Global, RestoreArgs};
use crate::context;
use crate::output::{self, Out, Ticker};

pub fn run(
    g: &Global,
    out: &Out,
    a: &RestoreArgs,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<i32> {
    let h = context::open(g)?.reading(g, "restore")?;
    let (id, snap) = super::pick(
        h.session.catalog(),
        a.snapshot.as_deref(),
        a.at.as_deref(),
        &a.filter,
    )?;
    let mut opts = RestoreOptions::new(a.target.clone());
    opts.include = a.include.clone();
    if let Some(n) = h.downloads {
        opts.fetchers = n;
    }
    opts.cancel = cancel;
    let p = opts.progress.clone();
    let ticker = Ticker::start(out, move || output::Status {
        bytes_done: p.bytes_done.load(Ordering::Relaxed),
        bytes_total: p.bytes_total.load(Ordering::Relaxed),
        files_done: p.files_done.load(Ordering::Relaxed),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let r = restore::restore(&h.session, &id, &snap, &opts);
    drop(ticker);
    h.note_metrics(out);
    let sum = r?;
    if out.verbose > 0 || !out.json {
        for w in &sum.warnings {
            out.note(format!("warning: {w}"));
        }
    }
    if out.json {
        output::summary(
            out,
            serde_json::json!({
                "snapshot_id": id,
                "target": a.target,
                "summary": sum,
                "seconds": started.elapsed().as_secs_f64(),
            }),
        );
    } else {
        out.say(format!(
            "restored snapshot {} to {}: {} files ({}), {} dirs, {} others, verified, in {:.2} s",
            id.short(),
            a.target.display(),
            sum.files,
            output::size(sum.bytes),
            sum.dirs,
            sum.others,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(0)
}
