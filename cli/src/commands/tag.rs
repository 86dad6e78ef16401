//! `arca tag`: add, remove or set the tags of snapshots (named, or every
//! one the filters select), under the maintenance lock (backups go on;
//! no prune, forget or other tag runs beside it).

use anyhow::{Result, bail};
use arca_engine::format::id::SnapshotId;
use arca_engine::format::snapshot::Snapshot;
use arca_engine::ops::select::{self, Selector};
use arca_engine::ops::tag::{self, TagChange};

use crate::args::{Global, TagArgs};
use crate::context;
use crate::output::{self, Out};

/// For a full snapshot id that is not in `all`: `Some` of the snapshot
/// that replaced it (whose `original` it is), if one did; `None` for
/// anything else (a prefix, `latest`, an id that is there).
fn gone(all: &[(SnapshotId, Snapshot)], s: &str) -> Option<Option<SnapshotId>> {
    let id: SnapshotId = s.parse().ok()?;
    if all.iter().any(|(i, _)| *i == id) {
        return None;
    }
    Some(
        all.iter()
            .find(|(_, snap)| snap.original == Some(id))
            .map(|(i, _)| *i),
    )
}

pub fn run(g: &Global, out: &Out, a: &TagArgs) -> Result<i32> {
    let change = TagChange {
        set: a.set.as_deref().map(super::tag_list),
        add: super::tag_list(&a.add),
        remove: super::tag_list(&a.remove),
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
            match gone(&all, s) {
                // a full id that is no longer there: an earlier run that
                // stopped after its step 2 replaced it (format-spec §15.9)
                Some(Some(new)) => {
                    out.note(format!(
                        "snapshot {s} was replaced by {} (an earlier tag run): changing that",
                        new.short()
                    ));
                    v.push(new);
                }
                Some(None) => out.note(format!(
                    "snapshot {s} is not in the repository (forgotten, or replaced by an \
                     earlier tag run): nothing to do for it"
                )),
                None => v.push(select::select(&all, &Selector::parse(s)?, &filter)?.0),
            }
        }
        if v.is_empty() {
            h.session.release()?;
            return Ok(0);
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
