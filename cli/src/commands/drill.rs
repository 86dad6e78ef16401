//! `arca drill`: a restore drill, recorded in the repository; `--list`
//! shows the records. Exit 0 when the drill passed (and met its RTO), 1
//! when the restore or a check failed, 4 when it passed but took longer
//! than the RTO.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use arca_engine::format::drill::DrillRecord;
use arca_engine::ops::drill::{self, DrillOptions};
use arca_engine::store::backend::parse_duration;

use crate::args::{DrillArgs, Global};
use crate::context;
use crate::output::{self, Out};

/// Exit status of a drill that passed but missed its RTO.
pub const RTO_MISSED: i32 = 4;

pub fn run(g: &Global, out: &Out, a: &DrillArgs, cancel: Arc<AtomicBool>) -> Result<i32> {
    if a.list {
        return list(g, out);
    }
    let rto = a
        .rto
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--rto: {e}"))?;
    // a shared lock: the drill reads snapshots and adds its record
    let h = context::open(g)?.writing(g, "drill")?;
    let (id, snap) = super::pick(
        h.session.catalog(),
        Some(a.snapshot.as_deref().unwrap_or("latest")),
        a.at.as_deref(),
        &a.filter,
    )?;
    let opts = DrillOptions {
        scratch: a.scratch.clone(),
        validate: a.validate.clone(),
        rto,
        keep: a.keep,
        recorded_commands: a.recorded_commands,
        fetchers: h.downloads.unwrap_or(0),
        cancel,
    };
    let r = drill::drill(&h.session, &id, &snap, &opts);
    let released = h.session.release();
    let done = r?;
    if let Err(e) = released {
        out.note(format!(
            "warning: could not remove this drill's lock ({e}); it goes stale by itself, or run `arca unlock`"
        ));
    }
    let rec = &done.record;
    if out.json {
        output::json(&serde_json::json!({
            "drill_id": done.id,
            "record": rec,
            "met": rec.met(),
            "kept": done.kept,
        }));
    } else {
        for c in &rec.checks {
            out.say(format!("checked {c}"));
        }
        if !rec.ok {
            eprintln!("drill FAILED: {}", rec.error);
        }
        out.say(format!(
            "drill {} of snapshot {}: {} files, {} restored in {:.2} s, checked in {:.2} s: recovery time {:.2} s{}; {}",
            done.id.short(),
            id.short(),
            rec.files,
            output::size(rec.bytes),
            rec.restore_seconds,
            rec.check_seconds,
            rec.total_seconds,
            rto_text(rec),
            if rec.met() { "passed" } else { "FAILED" },
        ));
        if let Some(k) = &done.kept {
            out.say(format!("the restored copy is kept in {}", k.display()));
        }
    }
    Ok(if !rec.ok {
        1
    } else if !rec.met() {
        RTO_MISSED
    } else {
        0
    })
}

fn rto_text(r: &DrillRecord) -> String {
    match r.rto_seconds {
        Some(s) => format!(" (RTO {s} s)"),
        None => String::new(),
    }
}

fn list(g: &Global, out: &Out) -> Result<i32> {
    let (repo, _) = context::open_repo(g)?;
    let all = drill::list(&repo)?;
    if out.json {
        let v: Vec<_> = all
            .iter()
            .map(|(id, r)| match r {
                Ok(r) => serde_json::json!({"id": id, "record": r, "met": r.met()}),
                Err(e) => serde_json::json!({"id": id, "error": e}),
            })
            .collect();
        output::json(&v);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(id, r)| match r {
            Ok(r) => vec![
                id.short(),
                output::time(&r.started),
                r.snapshot.short(),
                r.paths.join(" "),
                format!("{:.1} s", r.total_seconds),
                r.rto_seconds.map_or("-".into(), |s| format!("{s} s")),
                if r.met() {
                    "passed".into()
                } else if r.ok {
                    "RTO missed".into()
                } else {
                    "FAILED".into()
                },
            ],
            Err(e) => vec![id.short(), format!("unreadable: {e}")],
        })
        .collect();
    if !out.quiet {
        output::table(
            &[
                "ID", "Started", "Snapshot", "Paths", "Recovery", "RTO", "Result",
            ],
            &rows,
        );
        println!("{} drills", rows.len());
    }
    Ok(0)
}
