//! `arca tag`: add, remove or set the tags of snapshots (named, or every
//! one the filters select), under the maintenance lock (backups go on,
//! no prune runs beside it).

use anyhow::{Result, bail};
use arca_engine::format::id::SnapshotId;
use arca_engine::ops::select::{self, Selector};
use arca_engine::ops::tag::{self, TagChange};

use crate::args::{Global, TagArgs};
use crate::context;
use crate::output::{self, Out};

fn split(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

pub fn run(g: &Global, out: &Out, a: &TagArgs) -> Result<i32> {
    let change = TagChange {
        set: a.set.as_deref().map(split),
        add: split(&a.add),
        remove: split(&a.remove),
    };
    if change.is_empty() {
        bail!("nothing to change: give --add, --remove or --set");
    }
    let h = context::open(g)?.maintenance(g, "tag")?;
    h.note_stale_locks(out);
    let all = h.session.catalog().snapshots()?;
    let filter = super::filter(&a.filter);
    let mut selected: Vec<SnapshotId> = if a.snapshots.is_empty() {
        all.iter()
            .filter(|(_, s)| filter.matches(s))
            .map(|(id, _)| *id)
            .collect()
    } else {
        let mut v = vec![];
        for s in &a.snapshots {
            v.push(select::select(&all, &Selector::parse(s)?, &filter)?.0);
        }
        v
    };
    selected.sort();
    selected.dedup();
    if selected.is_empty() {
        bail!("no snapshot matches the filters: nothing was changed");
    }
    let plan = tag::plan(&all, &selected, &change, &h.session.catalog().prune_state())?;
    let done = if a.dry_run {
        vec![]
    } else {
        tag::execute(&h.session, &plan)?
    };
    h.note_metrics(out);
    h.session.release()?;
    if out.json {
        let changed: Vec<serde_json::Value> = plan
            .changed
            .iter()
            .map(|r| {
                serde_json::json!({
                    "old": r.old,
                    "new": done.iter().find(|(o, _)| *o == r.old).map(|(_, n)| n),
                    "old_tags": r.old_tags,
                    "tags": r.tags,
                })
            })
            .collect();
        output::json(&serde_json::json!({
            "dry_run": a.dry_run,
            "changed": changed,
            "unchanged": plan.unchanged,
        }));
        return Ok(0);
    }
    for r in &plan.changed {
        let new = done
            .iter()
            .find(|(o, _)| *o == r.old)
            .map_or("(dry run)".to_string(), |(_, n)| n.short());
        out.say(format!(
            "{} -> {new}: [{}] -> [{}]",
            r.old.short(),
            r.old_tags.join(","),
            r.tags.join(",")
        ));
    }
    out.say(format!(
        "{} {} snapshot(s), {} already tagged so",
        if a.dry_run { "would change" } else { "changed" },
        plan.changed.len(),
        plan.unchanged.len()
    ));
    Ok(0)
}
