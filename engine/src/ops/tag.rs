//! `tag`: change snapshots' tags. A snapshot manifest is content-addressed,
//! so a change is a new manifest (the same tree, time, paths and summary,
//! the new tags, `original` naming the first snapshot of the chain) and the
//! deletion of the old one: format-spec §15.9 gives the protocol and what
//! a crash between its steps leaves.
//!
//! [`plan`] is pure: it decides, from the listed snapshots and the prune
//! state, each selected snapshot's new tags and manifest, and recognises a
//! replacement an interrupted run already wrote (so that running the same
//! command again only deletes the old manifest, and never leaves two
//! copies). [`execute`] writes each new manifest before it deletes the old.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::layout::ObjectKey;
use crate::format::prune::PruneState;
use crate::format::snapshot::Snapshot;
use crate::store::session::{Maintenance, Session};

/// What to do to the tags. `set` replaces them all (with nothing:
/// removes every tag); `add` and `remove` may be given together.
#[derive(Debug, Clone, Default)]
pub struct TagChange {
    pub set: Option<Vec<String>>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl TagChange {
    /// Whether it changes anything at all.
    pub fn is_empty(&self) -> bool {
        self.set.is_none() && self.add.is_empty() && self.remove.is_empty()
    }

    /// The tags `old` becomes: sorted, without duplicates or empty tags.
    pub fn apply(&self, old: &[String]) -> Vec<String> {
        let mut tags: Vec<String> = match &self.set {
            Some(s) => s.clone(),
            None => old.to_vec(),
        };
        tags.extend(self.add.iter().cloned());
        tags.retain(|t| !t.is_empty() && !self.remove.contains(t));
        tags.sort();
        tags.dedup();
        tags
    }
}

/// One snapshot whose tags change.
#[derive(Debug, Clone, Serialize)]
pub struct Retag {
    /// The snapshot as it is.
    pub old: SnapshotId,
    /// Its tags now.
    pub old_tags: Vec<String>,
    /// Its tags after.
    pub tags: Vec<String>,
    /// A replacement an interrupted run already wrote: only `old` is
    /// left to delete.
    pub written: Option<SnapshotId>,
    #[serde(skip)]
    snapshot: Snapshot,
}

/// What `tag` will do; nothing is written until [`execute`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct TagPlan {
    pub changed: Vec<Retag>,
    /// Selected snapshots that already have the tags asked for.
    pub unchanged: Vec<SnapshotId>,
}

/// The manifest that replaces `old` (id `id`) with `tags`: `original`
/// names the first snapshot of the chain (as restic's `tag` does); the
/// base stays the old one's while it is valid, and otherwise becomes the
/// sweep that accepted the old snapshot by id (a new manifest has a new id,
/// which no sweep lists), as `repair snapshots` does.
fn replacement(id: SnapshotId, old: &Snapshot, tags: Vec<String>, prune: &PruneState) -> Snapshot {
    let mut s = old.clone();
    s.tags = tags;
    s.original = Some(old.original.unwrap_or(id));
    s.base = prune.rebased(&old.base);
    s
}

/// Plans the change of `selected` (ids among `all`, every snapshot of the
/// repository as listed) under the prune state `prune`.
pub fn plan(
    all: &[(SnapshotId, Snapshot)],
    selected: &[SnapshotId],
    change: &TagChange,
    prune: &PruneState,
) -> Result<TagPlan> {
    if change.is_empty() {
        return Err(Error::Invalid(
            "nothing to change: give --add, --remove or --set".into(),
        ));
    }
    let mut plan = TagPlan::default();
    for id in selected {
        let (_, old) = all
            .iter()
            .find(|(i, _)| i == id)
            .ok_or_else(|| Error::NoSnapshot(format!("snapshot {id}")))?;
        let tags = change.apply(&old.tags);
        if tags == old.tags {
            plan.unchanged.push(*id);
            continue;
        }
        let snapshot = replacement(*id, old, tags.clone(), prune);
        // a replacement already written by a run that stopped before its
        // delete: the same manifest under another id
        let written = all
            .iter()
            .find(|(i, s)| i != id && *s == snapshot)
            .map(|(i, _)| *i);
        plan.changed.push(Retag {
            old: *id,
            old_tags: old.tags.clone(),
            tags,
            written,
            snapshot,
        });
    }
    Ok(plan)
}

/// Writes each replacement, then deletes the snapshot it replaces; returns
/// (old, new) for each. Under the maintenance lock: no prune runs between
/// the plan's reading of the prune state and the last delete.
pub fn execute(
    session: &Session<Maintenance>,
    plan: &TagPlan,
) -> Result<Vec<(SnapshotId, SnapshotId)>> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let mut done = vec![];
    for r in &plan.changed {
        session.check_lock()?;
        let new = match r.written {
            Some(id) => id,
            None => {
                let id = repo.save_snapshot(&r.snapshot)?;
                catalog.add_snapshot(&id, &r.snapshot)?;
                id
            }
        };
        session.check_lock()?;
        repo.backend().delete(&ObjectKey::of(r.old))?;
        catalog.remove_snapshot(&r.old)?;
        done.push((r.old, new));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(tags: &[&str]) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "time": "2026-12-01T00:00:00Z",
            "host": "db1",
            "paths": ["/pg"],
            "tags": tags,
            "tree": "00".repeat(32),
        }))
        .unwrap()
    }

    fn id(n: u8) -> SnapshotId {
        SnapshotId([n; 32])
    }

    #[test]
    fn changes_are_applied_sorted_and_deduplicated() {
        let c = TagChange {
            set: None,
            add: vec!["b".into(), "a".into(), "a".into()],
            remove: vec!["old".into()],
        };
        assert_eq!(c.apply(&["old".into(), "z".into()]), ["a", "b", "z"]);
        let set = TagChange {
            set: Some(vec!["x".into()]),
            ..Default::default()
        };
        assert_eq!(set.apply(&["y".into()]), ["x"]);
        let clear = TagChange {
            set: Some(vec![]),
            ..Default::default()
        };
        assert!(clear.apply(&["y".into()]).is_empty());
    }

    #[test]
    fn a_replacement_already_written_is_recognised_and_unchanged_ones_skipped() {
        let prune = PruneState::default();
        let change = TagChange {
            add: vec!["keep".into()],
            ..Default::default()
        };
        let old = snap(&["daily"]);
        let already = snap(&["keep"]);
        let mut all = vec![(id(1), old.clone()), (id(2), already)];
        let p = plan(&all, &[id(1), id(2)], &change, &prune).unwrap();
        assert_eq!(p.unchanged, [id(2)]);
        let [r] = &p.changed[..] else { panic!() };
        assert_eq!(r.tags, ["daily", "keep"]);
        assert_eq!(r.snapshot.original, Some(id(1)));
        assert_eq!(r.written, None);
        // the run stopped after writing the replacement as id 3
        all.push((id(3), r.snapshot.clone()));
        let again = plan(&all, &[id(1)], &change, &prune).unwrap();
        assert_eq!(again.changed[0].written, Some(id(3)));
        // a second change of the replacement keeps the chain's first id
        let twice = plan(
            &all,
            &[id(3)],
            &TagChange {
                add: vec!["x".into()],
                ..Default::default()
            },
            &prune,
        )
        .unwrap();
        assert_eq!(twice.changed[0].snapshot.original, Some(id(1)));
        assert!(plan(&all, &[id(1)], &TagChange::default(), &prune).is_err());
    }
}
