use std::sync::atomic::Ordering;

use anyhow::Result;
use arca_engine::ops::check::{self, CheckOptions, DataSelection};

use crate::args::{CheckArgs, Global};
use crate::context;
use crate::output::{self, Out, Ticker};
use crate::profile::Loaded;

/// Exit codes: 0 clean, 1 damage found, 2 could not run (any error).
pub fn run(g: &Global, out: &Out, a: &CheckArgs, profile: Option<&Loaded>) -> Result<i32> {
    // the profile's [check] applies when the command line selects no data
    let given = a.read_data || a.read_data_subset.is_some() || a.rolling.is_some();
    let a = match profile {
        Some(p) if !given => {
            let c = &p.profile.check;
            &CheckArgs {
                read_data: c.read_data,
                read_data_subset: c.read_data_subset.as_ref().map(|v| v.0.clone()),
                rolling: c.rolling.as_ref().map(|v| v.0.clone()),
            }
        }
        _ => a,
    };
    let data = if a.read_data {
        DataSelection::All
    } else if let Some(s) = &a.read_data_subset {
        DataSelection::parse_subset(s)?
    } else if let Some(r) = &a.rolling {
        DataSelection::parse_rolling(r)?
    } else {
        DataSelection::None
    };
    let h = context::open(g)?.reading(g, "check")?;
    let mut opts = CheckOptions {
        data,
        ..CheckOptions::default()
    };
    if let Some(n) = h.downloads {
        opts.fetchers = n;
    }
    let p = opts.progress.clone();
    let ticker = Ticker::start(out, move || output::Status {
        bytes_done: p.bytes_done.load(Ordering::Relaxed),
        bytes_total: p.bytes_total.load(Ordering::Relaxed),
        message: "verifying packs".into(),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let report = check::check(&h.session, &opts);
    drop(ticker);
    let report = report?;
    if out.json {
        output::summary(
            out,
            serde_json::json!({
                "clean": report.is_clean(),
                "seconds": started.elapsed().as_secs_f64(),
                "report": report,
            }),
        );
    } else {
        for w in &report.warnings {
            out.note(format!("warning: {w}"));
        }
        for p in &report.problems {
            eprintln!("damaged {} {}: {}", p.object_kind, p.object, p.detail);
            for a in p
                .affects
                .iter()
                .take(if out.verbose > 0 { usize::MAX } else { 20 })
            {
                eprintln!("    needed by snapshot {} {}", a.snapshot.short(), a.path);
            }
            if out.verbose == 0 && p.affects.len() > 20 {
                eprintln!("    ... and {} more (-v lists all)", p.affects.len() - 20);
            }
        }
        let c = &report.coverage;
        out.say(format!(
            "{} snapshots, {} trees, {} packs, {} blobs checked",
            report.snapshots, report.trees, report.packs, report.blobs
        ));
        if let Some(d) = &report.data {
            out.say(format!(
                "read {} packs ({}), {} blobs verified in {:.2} s ({}/s)",
                d.packs,
                output::size(d.bytes),
                d.blobs,
                d.seconds,
                output::size((d.bytes as f64 / d.seconds.max(1e-9)) as u64)
            ));
        }
        if report.wal_files > 0 {
            out.say(format!(
                "WAL: {} archived file(s), {} read and authenticated{}",
                report.wal_files,
                report.wal_verified,
                if report.data.is_none() {
                    " (--read-data reads them)"
                } else {
                    ""
                }
            ));
        }
        out.say(format!(
            "data verified: {}/{} packs ({:.1}%){}",
            c.packs_verified,
            c.packs_total,
            c.percent,
            match (c.oldest, c.newest) {
                (Some(a), Some(b)) =>
                    format!(", between {} and {}", output::time(&a), output::time(&b)),
                _ => String::new(),
            }
        ));
        if report.is_clean() {
            out.say("no damage found");
        } else {
            eprintln!("{} problem(s) found", report.problems.len());
        }
    }
    Ok(if report.is_clean() { 0 } else { 1 })
}
