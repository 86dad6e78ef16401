use anyhow::Result;
use arca_engine::ops::repair;
use arca_engine::store::lock::Lock;

use crate::args::{Global, RepairArgs, RepairWhat};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &RepairArgs) -> Result<i32> {
    let o = context::open(g)?;
    // Repair deletes objects: no backup may run meanwhile. Under the lock,
    // sync again so that the catalog includes everything committed before.
    let lock = Lock::exclusive(&o.repo, "repair")?;
    o.catalog.sync(&o.repo)?;
    match &a.what {
        RepairWhat::Index { read_data } => {
            let r = repair::repair_index(&o.repo, &o.catalog, *read_data)?;
            if out.json {
                output::json(&r);
                return Ok(0);
            }
            for (p, why) in &r.packs_unreadable {
                eprintln!("pack {p} cannot be indexed: {why}");
            }
            for (old, new) in &r.packs_rewritten {
                eprintln!(
                    "damaged pack {} rewritten as {} and removed",
                    old.short(),
                    new.iter().map(|p| p.short()).collect::<Vec<_>>().join(", ")
                );
            }
            for p in &r.packs_needing_read_data {
                eprintln!(
                    "pack {} has a damaged header and stays indexed from the old index; `--read-data` rewrites it",
                    p.short()
                );
            }
            for (b, p, why) in &r.blobs_dropped {
                eprintln!(
                    "blob {b} in pack {} is damaged and was left out: {why}",
                    p.short()
                );
            }
            for k in &r.keys_refiled {
                out.say(format!(
                    "key file re-filed under its own name {}",
                    k.short()
                ));
            }
            if r.config_rewritten {
                out.say("config rewritten from the copy in the key files");
            }
            if r.unchanged {
                out.say(format!(
                    "the index matches the {} packs; nothing to do",
                    r.packs_indexed
                ));
            } else {
                out.say(format!(
                    "index rebuilt: {} packs in {} new segment(s), {} old segment(s) removed",
                    r.packs_indexed,
                    r.segments_written.len(),
                    r.segments_removed.len()
                ));
            }
        }
        RepairWhat::Snapshots { forget, dry_run } => {
            let r = repair::repair_snapshots(&o.repo, &o.catalog, *forget, *dry_run)?;
            if out.json {
                output::json(&r);
                return Ok(0);
            }
            for id in &r.refiled {
                out.say(format!(
                    "snapshot re-filed under its own name {}",
                    id.short()
                ));
            }
            for (old, new) in &r.recovered {
                match new {
                    Some(n) => out.say(format!(
                        "snapshot {} was unreadable in the repository and was written again from the local catalog's copy as {}{}",
                        old.short(),
                        n.short(),
                        if *forget { " (the damaged object was deleted)" } else { "" }
                    )),
                    None => out.say(format!(
                        "snapshot {} is unreadable in the repository; the local catalog's copy {}",
                        old.short(),
                        if *dry_run { "would be written again" } else { "was used to repair it" }
                    )),
                }
            }
            for (id, why) in &r.unreadable {
                eprintln!(
                    "snapshot {} is unreadable ({why}){}",
                    id.short(),
                    if r.unreadable_deleted {
                        "; deleted"
                    } else {
                        "; `--forget` deletes it"
                    }
                );
            }
            for s in &r.repaired {
                match s.repaired {
                    Some(n) => out.say(format!(
                        "snapshot {} rewritten as {}{}:",
                        s.original.short(),
                        n.short(),
                        if s.forgotten {
                            " (original deleted)"
                        } else {
                            " (original kept)"
                        }
                    )),
                    None => out.say(format!(
                        "snapshot {} would be rewritten:",
                        s.original.short()
                    )),
                }
                for d in &s.damaged {
                    out.say(format!("    damaged: {}: {}", d.path, d.detail));
                }
            }
            out.say(format!(
                "{} snapshots examined, {} {}",
                r.snapshots,
                r.repaired.len(),
                if *dry_run {
                    "would be rewritten"
                } else {
                    "rewritten"
                }
            ));
        }
    }
    lock.release()?;
    Ok(0)
}
