//! Check, the snapshots: every manifest loads, every tree it reaches
//! decodes, every blob a tree refers to has an intact copy; and for what
//! does not, the files and directories of each snapshot that need it.
//!
//! Two passes over the trees, both through the one tree walker and a blob
//! reader over the repository's own index (copies in damaged packs left
//! out): a fold that marks, once per distinct tree, whether anything below
//! it is unavailable; then, only in snapshots whose root is marked, a walk
//! into the marked trees that names every affected path.

use std::collections::HashMap;

use rayon::prelude::*;

use super::{Affected, Damage, Findings};
use crate::error::{Error, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::layout::ObjectKey;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::store::blob_reader::BlobReader;
use crate::store::repo::Repository;
use crate::store::repo_index::RepoIndex;
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// Checks every snapshot. Returns how many loaded and how many distinct
/// trees were read.
pub(super) fn snapshots(
    repo: &Repository,
    index: &RepoIndex,
    damage: &Damage,
    found: &mut Findings,
) -> Result<(usize, usize)> {
    let mut ids = repo.list::<SnapshotId>()?;
    ids.sort();
    let loaded: Vec<(SnapshotId, Result<Snapshot>)> = ids
        .par_iter()
        .map(|id| (*id, repo.load_snapshot(id)))
        .collect();
    let mut snaps = vec![];
    for (id, r) in loaded {
        match r {
            // void: written by a backup that overlapped a prune's sweep, which
            // may have deleted what it refers to; it was told to run again
            Ok(s) if !index.prune.snapshot_valid(&id, &s.base) => {
                found.warnings.push(format!(
                    "snapshot {} is void: its backup overlapped a prune and was told to run again (the next prune deletes it)",
                    id.short()
                ));
            }
            Ok(s) => snaps.push((id, s)),
            Err(e) if e.is_not_found() => {}
            Err(e) if !e.is_damage() => return Err(e),
            Err(e) => {
                found.problem(
                    "snapshot",
                    ObjectKey::of(id).path(),
                    format!(
                        "{e}; the snapshot is lost (the data it refers to may still be in other snapshots)"
                    ),
                );
            }
        }
    }
    let reader = BlobReader::new(repo.clone(), index.view(|p, b| damage.usable(p, b)));
    let available = |b: &BlobId| index.has_data(b, |p| damage.usable(p, b));
    // Pass 1: which trees (transitively) need something unavailable.
    let mut bad: HashMap<BlobId, bool> = HashMap::new();
    for (_, s) in &snaps {
        tree_walk::fold(&reader, &s.tree, &mut bad, &mut |_, tree, below| {
            let t = match tree {
                Ok(t) => t,
                Err(e) if e.is_damage() => return Ok(true),
                Err(e) => return Err(e),
            };
            Ok(below.iter().any(|b| b.is_some_and(|b| *b))
                || t.nodes.iter().any(|n| {
                    n.kind == NodeKind::File && n.extents().iter().any(|e| !available(&e.blob))
                }))
        })?;
    }
    // Pass 2: name what is affected, in the snapshots that need it.
    let mut naming = Naming {
        bad: &bad,
        available: &available,
        index,
        damage,
        found,
        snapshot: SnapshotId::default(),
        blob_problem: HashMap::new(),
    };
    for (id, s) in &snaps {
        if bad.get(&s.tree).copied().unwrap_or(true) {
            naming.snapshot = *id;
            tree_walk::walk(&reader, &s.tree, &TreePath::root(), &mut naming)?;
        }
    }
    Ok((snaps.len(), bad.len()))
}

/// Names the files and directories of one snapshot that need what is
/// unavailable, walking only into trees that pass 1 marked.
struct Naming<'a, 'f> {
    bad: &'a HashMap<BlobId, bool>,
    available: &'a dyn Fn(&BlobId) -> bool,
    index: &'a RepoIndex,
    damage: &'a Damage,
    found: &'f mut Findings,
    snapshot: SnapshotId,
    /// Problems made here for blobs with no intact copy, by blob.
    blob_problem: HashMap<BlobId, usize>,
}

impl Naming<'_, '_> {
    /// The problem that explains why `blob` is unavailable: its damaged
    /// copy's, its damaged pack's, or a new one for the blob itself.
    fn problem_for(&mut self, blob: &BlobId, kind: &'static str) -> usize {
        for (pack, _) in self.index.copies(blob) {
            if let Some(i) = self.damage.copies.get(&(pack, *blob)) {
                return *i;
            }
            if let Some(i) = self.damage.packs.get(&pack) {
                return *i;
            }
        }
        if let Some(i) = self.blob_problem.get(blob) {
            return *i;
        }
        let detail = if self.index.has_blob(blob) {
            "no intact copy".into()
        } else {
            "not in the index (lost, or its index segment is damaged: try `arca repair index`)"
                .into()
        };
        let i = self
            .found
            .problem(kind, format!("{kind} blob {blob}"), detail);
        self.blob_problem.insert(*blob, i);
        i
    }

    fn affects(&mut self, i: usize, path: &TreePath) {
        self.found.problems[i].affects.push(Affected {
            snapshot: self.snapshot,
            path: path.to_string(),
        });
    }
}

impl Visitor for Naming<'_, '_> {
    fn tree(&mut self, _path: &TreePath, id: &BlobId) -> Result<Step> {
        Ok(if self.bad.get(id).copied().unwrap_or(true) {
            Step::Descend
        } else {
            Step::Skip
        })
    }

    fn node(&mut self, path: &TreePath, n: &Node) -> Result<Step> {
        if n.kind == NodeKind::File {
            let lost: Vec<BlobId> = n
                .extents()
                .iter()
                .map(|e| e.blob)
                .filter(|b| !(self.available)(b))
                .collect();
            for b in lost {
                let i = self.problem_for(&b, "data");
                self.affects(i, path);
            }
        }
        Ok(Step::Descend)
    }

    fn unreadable(&mut self, path: &TreePath, id: &BlobId, why: Error) -> Result<()> {
        if !why.is_damage() {
            return Err(why);
        }
        let i = self.problem_for(id, "tree");
        let p = &mut self.found.problems[i];
        if p.object_kind == "tree" && p.affects.is_empty() {
            p.detail = format!("{why}; everything below {path} is lost in this snapshot");
        }
        self.affects(i, path);
        Ok(())
    }
}
