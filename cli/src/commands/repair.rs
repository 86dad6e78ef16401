use anyhow::Result;
use arca_engine::ops::repair;

use crate::args::{Global, RepairArgs, RepairWhat};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &RepairArgs) -> Result<i32> {
    // Repair deletes objects: nothing else may run meanwhile.
    let h = context::open(g)?.exclusive(g, "repair")?;
    match &a.what {
        RepairWhat::Index { read_data, dry_run } => {
            let plan = repair::index::plan(&h.session, *read_data)?;
            if *dry_run {
                if out.json {
                    output::json(&plan);
                } else {
                    show_index_plan(out, &plan);
                }
                h.session.release()?;
                return Ok(0);
            }
            let r = repair::index::execute(&h.session, plan)?;
            if out.json {
                output::json(&r);
                h.session.release()?;
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
                    "pack {} has a damaged header; its blobs inside the pack stay indexed from the old index; `--read-data` rewrites it",
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
            let plan = repair::snapshots::plan(&h.session)?;
            let r = if *dry_run {
                repair::snapshots::SnapshotsRepair::dry_run(&plan)
            } else {
                repair::snapshots::execute(&h.session, plan, *forget)?
            };
            if out.json {
                output::json(&r);
                h.session.release()?;
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
    h.session.release()?;
    Ok(0)
}

/// What `repair index --dry-run` prints.
fn show_index_plan(out: &Out, p: &repair::index::IndexRepairPlan) {
    if p.is_empty() {
        out.say(format!(
            "the index matches the {} packs; nothing to do",
            p.packs_read
        ));
        return;
    }
    if p.rewrite_config {
        out.say("would rewrite the config from the copy in the key files");
    }
    for k in &p.refile_keys {
        out.say(format!(
            "would re-file key file {} under its own name {}",
            k.stored_as.short(),
            k.own_name.short()
        ));
    }
    for r in &p.packs_rewritten {
        out.say(format!(
            "would copy the {} intact blobs of damaged pack {} into new packs and remove it",
            r.blobs_kept,
            r.pack.short()
        ));
    }
    for (pack, why) in &p.packs_unreadable {
        out.say(format!("pack {} cannot be indexed: {why}", pack.short()));
    }
    for (b, pack, why) in &p.blobs_dropped {
        out.say(format!(
            "would leave out blob {b} of pack {}: {why}",
            pack.short()
        ));
    }
    if !p.index_unchanged {
        out.say(format!(
            "would write a new index of {} packs superseding {} segment(s)",
            p.packs_indexed(),
            p.segments_superseded.len()
        ));
    }
}
