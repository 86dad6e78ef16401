//! `repair snapshots`: rewrite snapshots around blobs that have no intact
//! copy, and write again manifests that are damaged in the repository but
//! intact in the local catalog.
//!
//! [`plan`] reads everything and computes the new trees and snapshots
//! (the same ids a real run writes, so `--dry-run` shows what will be);
//! [`execute`] writes the new trees (packs, then a segment) before any new
//! snapshot, and deletes an original only after its replacement is
//! durable, and only with `forget`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use super::{Misnamed, find_misnamed, index_complete, refile};
use crate::error::{Error, Result};
use crate::format::compress::CompressionMode;
use crate::format::id::{BlobId, PackId, SnapshotId};
use crate::format::layout::ObjectKey;
use crate::format::pack::BlobKind;
use crate::format::snapshot::{Snapshot, SourceError};
use crate::format::tree::{Content, Extent, FLAG_INCOMPLETE, Node, NodeKind, Tree, hash_zeros};
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::blob_writer::BlobWriter;
use crate::store::repo_index::RepoIndex;
use crate::store::session::{Exclusive, Session};
use crate::store::tree_walk;

/// One file or directory that a repaired snapshot no longer has whole.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedPath {
    /// Path in the snapshot.
    pub path: String,
    /// What was lost.
    pub detail: String,
}

/// A snapshot the plan rewrites.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRewrite {
    /// The snapshot as it is.
    pub original: SnapshotId,
    /// What it loses (empty when only its manifest is written again).
    pub damaged: Vec<DamagedPath>,
    /// Its manifest is damaged in the repository and comes from the local
    /// catalog's copy.
    pub from_catalog: bool,
    #[serde(skip)]
    snapshot: Snapshot,
}

/// What `repair snapshots` will do; nothing is written until [`execute`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotsRepairPlan {
    /// Snapshots examined.
    pub snapshots: usize,
    /// Manifests stored under the wrong name.
    pub refile: Vec<Misnamed<SnapshotId>>,
    /// Snapshots to rewrite.
    pub rewrite: Vec<SnapshotRewrite>,
    /// Manifests that cannot be read and that the local catalog has no copy
    /// of (their root tree is unknown: nothing can be rewritten), with why.
    pub unreadable: Vec<(SnapshotId, String)>,
    /// New tree blobs, bottom-up (plaintexts).
    #[serde(skip)]
    trees: Vec<Vec<u8>>,
}

/// One snapshot that was (or would be) rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedSnapshot {
    /// The original.
    pub original: SnapshotId,
    /// The repaired snapshot (absent in a dry run).
    pub repaired: Option<SnapshotId>,
    /// Everything it lost.
    pub damaged: Vec<DamagedPath>,
    /// The original was deleted.
    pub forgotten: bool,
}

/// What `repair snapshots` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotsRepair {
    /// Snapshots examined.
    pub snapshots: usize,
    /// Snapshots rewritten.
    pub repaired: Vec<RepairedSnapshot>,
    /// Snapshot manifests that cannot be read and that the local catalog
    /// has no copy of (their root tree is unknown, so nothing can be
    /// rewritten); deleted with `forget`.
    pub unreadable: Vec<(SnapshotId, String)>,
    /// Unreadable manifests written again from the local catalog's copy
    /// (damaged id, new id); the damaged object is deleted with `forget`.
    pub recovered: Vec<(SnapshotId, Option<SnapshotId>)>,
    /// Whether the unreadable manifests were deleted.
    pub unreadable_deleted: bool,
    /// Manifests stored under the wrong name, re-filed under their own.
    pub refiled: Vec<SnapshotId>,
}

impl SnapshotsRepair {
    /// The report of a plan that was not executed.
    pub fn dry_run(plan: &SnapshotsRepairPlan) -> Self {
        Self {
            snapshots: plan.snapshots,
            repaired: plan
                .rewrite
                .iter()
                .filter(|r| !r.damaged.is_empty())
                .map(|r| RepairedSnapshot {
                    original: r.original,
                    repaired: None,
                    damaged: r.damaged.clone(),
                    forgotten: false,
                })
                .collect(),
            unreadable: plan.unreadable.clone(),
            recovered: plan
                .rewrite
                .iter()
                .filter(|r| r.from_catalog)
                .map(|r| (r.original, None))
                .collect(),
            unreadable_deleted: false,
            refiled: vec![],
        }
    }
}

/// A tree as the repair rewrites it: its new id and what it lost (paths
/// relative to the tree; empty for the tree itself).
#[derive(Debug, Clone)]
struct Rewritten {
    id: BlobId,
    damaged: Vec<DamagedPath>,
}

/// Plans the rewrite. Refuses while the index is incomplete (see
/// [`index_complete`]).
pub fn plan(session: &Session<Exclusive>) -> Result<SnapshotsRepairPlan> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let index = RepoIndex::load(repo)?;
    let (listed, _) = repo.list_packs_confirmed(index.packs.keys().copied())?;
    let unindexed = index_complete(repo, &index, &listed)?;
    let listed: HashSet<PackId> = listed.into_keys().collect();
    let key = repo.key().clone();
    let mut plan = SnapshotsRepairPlan {
        refile: find_misnamed::<SnapshotId>(repo, &|b| Snapshot::from_object(&key, b).is_ok())?,
        ..Default::default()
    };
    // What the local catalog remembers of manifests that no longer read.
    let cached: HashMap<SnapshotId, Snapshot> = catalog.snapshots()?.into_iter().collect();
    let misnamed: HashSet<SnapshotId> = plan.refile.iter().map(|m| m.stored_as).collect();
    let mut snaps: Vec<(SnapshotId, Snapshot, bool)> = vec![];
    for m in &plan.refile {
        let s = Snapshot::from_object(&key, &m.bytes)
            .map_err(|e| Error::decode(ObjectKey::of(m.stored_as), e))?;
        snaps.push((m.own_name, s, false));
    }
    // A name that held another snapshot's bytes loses its own manifest to
    // the re-filing (it is deleted, or overwritten by its rightful owner):
    // what the catalog remembers of it is written again.
    let own: HashSet<SnapshotId> = plan.refile.iter().map(|m| m.own_name).collect();
    for m in &plan.refile {
        if !own.contains(&m.stored_as)
            && let Some(s) = cached.get(&m.stored_as)
        {
            snaps.push((m.stored_as, s.clone(), true));
        }
    }
    let mut ids = repo.list::<SnapshotId>()?;
    ids.sort();
    for id in ids.into_iter().filter(|i| !misnamed.contains(i)) {
        match repo.load_snapshot(&id) {
            // void (a backup that overlapped a prune): the next prune deletes it
            Ok(s) if !index.prune.snapshot_valid(&id, &s.base) => {}
            Ok(s) => snaps.push((id, s, false)),
            Err(e) if e.is_not_found() => {}
            Err(e) if e.is_damage() => match cached.get(&id) {
                // the manifest is damaged, but this cache read it intact
                Some(s) => snaps.push((id, s.clone(), true)),
                None => plan.unreadable.push((id, e.to_string())),
            },
            Err(e) => return Err(e),
        }
    }
    let reader = BlobReader::new(repo.clone(), index.view(|p, _| listed.contains(p)));
    let available = |b: &BlobId| index.has_data(b, |p| listed.contains(p));
    let mut memo: HashMap<BlobId, Rewritten> = HashMap::new();
    let mut trees: Vec<Vec<u8>> = vec![];
    let mut lost: Vec<(BlobKind, BlobId)> = vec![];
    for (id, snap, from_catalog) in snaps {
        plan.snapshots += 1;
        tree_walk::fold(&reader, &snap.tree, &mut memo, &mut |id, tree, below| {
            rewrite_tree(&reader, &available, &mut trees, &mut lost, id, tree, &below)
        })?;
        // a blob this snapshot would lose that an unindexed pack holds: the
        // index is what is incomplete, not the data
        if let Some((kind, b)) = lost.iter().find(|l| unindexed.contains(l)) {
            return Err(Error::NeedsRepairIndex(format!(
                "snapshot {} needs {} blob {b}, which is in a pack no index segment lists",
                id.short(),
                kind.name()
            )));
        }
        lost.clear();
        let root = &memo[&snap.tree];
        if root.damaged.is_empty() && !from_catalog {
            continue;
        }
        let damaged: Vec<DamagedPath> = root
            .damaged
            .iter()
            .map(|d| DamagedPath {
                path: if d.path.is_empty() {
                    "/".into()
                } else {
                    d.path.clone()
                },
                detail: d.detail.clone(),
            })
            .collect();
        let mut s = snap.clone();
        s.tree = root.id;
        s.original = Some(id);
        s.base = index.prune.rebased(&s.base);
        if !damaged.is_empty() {
            if !s.tags.iter().any(|t| t == "repaired") {
                s.tags.push("repaired".into());
                s.tags.sort();
            }
            s.errors.extend(damaged.iter().map(|d| SourceError {
                path: d.path.clone(),
                error: format!("damaged in the repository, repaired: {}", d.detail),
            }));
            s.partial = true;
        }
        plan.rewrite.push(SnapshotRewrite {
            original: id,
            damaged,
            from_catalog,
            snapshot: s,
        });
    }
    plan.trees = trees;
    Ok(plan)
}

/// One step of the bottom-up rewrite: the tree with its subdirectories'
/// new ids and its files without their lost chunks; a lost tree becomes an
/// empty one. New trees are appended to `trees`.
fn rewrite_tree<L: Locator>(
    reader: &BlobReader<L>,
    available: &dyn Fn(&BlobId) -> bool,
    trees: &mut Vec<Vec<u8>>,
    lost: &mut Vec<(BlobKind, BlobId)>,
    id: &BlobId,
    tree: Result<Arc<Tree>>,
    below: &[Option<&Rewritten>],
) -> Result<Rewritten> {
    let key = reader.repo().key();
    let mut store = |t: &mut Tree| {
        t.sort();
        let enc = t.encode();
        let id = key.blob_id(&enc);
        trees.push(enc);
        id
    };
    let t = match tree {
        Ok(t) => t,
        Err(e) if e.is_damage() => {
            lost.push((BlobKind::Tree, *id));
            return Ok(Rewritten {
                id: store(&mut Tree::default()),
                damaged: vec![DamagedPath {
                    path: String::new(),
                    detail: format!("directory lost ({e}); restored as empty"),
                }],
            });
        }
        Err(e) => return Err(e),
    };
    let mut t = (*t).clone();
    let mut damaged = vec![];
    let mut changed = false;
    for (n, sub) in t.nodes.iter_mut().zip(below) {
        let rel = format!("/{}", n.display_name());
        match (n.kind, sub) {
            (NodeKind::Dir, Some(r)) => {
                if Some(r.id) != n.subtree() {
                    n.content = Content::Dir { subtree: r.id };
                    if !r.damaged.is_empty() {
                        n.flags |= FLAG_INCOMPLETE;
                    }
                    changed = true;
                }
                damaged.extend(r.damaged.iter().map(|d| DamagedPath {
                    path: format!("{rel}{}", d.path),
                    detail: d.detail.clone(),
                }));
            }
            (NodeKind::File, _) => {
                lost.extend(
                    n.extents()
                        .iter()
                        .filter(|e| !available(&e.blob))
                        .map(|e| (BlobKind::Data, e.blob)),
                );
                if let Some(detail) = repair_file(reader, available, n)? {
                    damaged.push(DamagedPath { path: rel, detail });
                    changed = true;
                }
            }
            _ => {}
        }
    }
    let id = if changed { store(&mut t) } else { *id };
    Ok(Rewritten { id, damaged })
}

/// Drops a file's lost chunks and recomputes its hash (kept chunks as
/// they are, lost ones as zeros); `None` if the file is intact.
fn repair_file<L: Locator>(
    reader: &BlobReader<L>,
    available: &dyn Fn(&BlobId) -> bool,
    n: &mut Node,
) -> Result<Option<String>> {
    let extents = n.extents().to_vec();
    let lost: Vec<&Extent> = extents.iter().filter(|e| !available(&e.blob)).collect();
    if lost.is_empty() {
        return Ok(None);
    }
    let lost_bytes: u64 = lost.iter().map(|e| e.length as u64).sum();
    let detail = format!(
        "{} of {} chunks lost ({lost_bytes} of {} bytes now read as zeros)",
        lost.len(),
        extents.len(),
        n.size
    );
    let keep: Vec<Extent> = extents
        .iter()
        .filter(|e| available(&e.blob))
        .copied()
        .collect();
    let mut h = blake3::Hasher::new();
    let mut pos = 0u64;
    let path = n.display_name();
    for e in &keep {
        hash_zeros(&mut h, e.offset - pos);
        let b = reader.read(&e.blob, BlobKind::Data, &|| path.clone())?;
        h.update(&b);
        pos = e.offset + e.length as u64;
    }
    hash_zeros(&mut h, n.size - pos);
    n.content = Content::File {
        hash: *h.finalize().as_bytes(),
        extents: keep,
    };
    n.flags |= FLAG_INCOMPLETE;
    Ok(Some(detail))
}

/// Carries out a plan: new trees (durable first), new snapshots, then the
/// re-filing of misnamed manifests; with `forget`, the originals and the
/// unreadable manifests are deleted last, once their replacements are
/// durable.
pub fn execute(
    session: &Session<Exclusive>,
    plan: SnapshotsRepairPlan,
    forget: bool,
) -> Result<SnapshotsRepair> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let mut out = SnapshotsRepair {
        snapshots: plan.snapshots,
        unreadable: plan.unreadable.clone(),
        refiled: plan.refile.iter().map(|m| m.own_name).collect(),
        ..Default::default()
    };
    // New trees are durable before any snapshot refers to them.
    let writer = BlobWriter::new(repo.clone(), catalog.clone(), CompressionMode::Auto, 2);
    for t in &plan.trees {
        writer.add(BlobKind::Tree, t)?;
    }
    writer.flush()?;
    // New snapshots before anything is deleted or re-filed: a manifest
    // whose only intact copy is the catalog's is in the repository again
    // before the re-filing removes the name it was under.
    let mut written = vec![];
    for rw in plan.rewrite {
        let new_id = repo.save_snapshot(&rw.snapshot)?;
        catalog.add_snapshot(&new_id, &rw.snapshot)?;
        written.push((rw, new_id));
    }
    refile(repo, &plan.refile)?;
    if !plan.refile.is_empty() {
        catalog.sync(repo)?;
    }
    if forget && !plan.unreadable.is_empty() {
        for (id, _) in &plan.unreadable {
            repo.backend().delete(&ObjectKey::of(*id))?;
        }
        out.unreadable_deleted = true;
    }
    for (rw, new_id) in written {
        if forget {
            repo.backend().delete(&ObjectKey::of(rw.original))?;
            catalog.remove_snapshot(&rw.original)?;
        }
        if rw.from_catalog {
            out.recovered.push((rw.original, Some(new_id)));
        }
        if !rw.damaged.is_empty() {
            out.repaired.push(RepairedSnapshot {
                original: rw.original,
                repaired: Some(new_id),
                damaged: rw.damaged,
                forgotten: forget,
            });
        }
    }
    Ok(out)
}
