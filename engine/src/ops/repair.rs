//! Repair: rebuild what can be rebuilt, and rewrite snapshots around what
//! cannot, always saying what was lost.
//!
//! - [`repair_index`] rebuilds the index from the pack headers alone (and,
//!   with `read_data`, indexes only blobs that verify), supersedes every old
//!   segment and deletes them; it also rewrites a missing or damaged
//!   `config` from the copy in the key files. On a repository whose index
//!   already matches its packs it writes nothing.
//! - [`repair_snapshots`] rewrites every snapshot that needs a blob with no
//!   intact copy: a file loses the lost chunks (they read back as zeros,
//!   the node is flagged incomplete and its hash recomputed), a directory
//!   whose tree is lost becomes empty. The new snapshot records the
//!   original; the original is deleted only when asked. Every damaged file
//!   is listed in the result.
//!
//! Both plan first (pure), then write; both are no-ops on a healthy
//! repository.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::compress::CompressionMode;
use crate::format::id::{BlobId, IndexId, KeyId, PackId, SnapshotId, content_hash};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::pack::{self, BlobKind, PackEntry};
use crate::format::snapshot::Snapshot;
use crate::format::tree::hash_zeros;
use crate::format::tree::{Content, Extent, FLAG_INCOMPLETE, Node, NodeKind, Tree};
use crate::ops::check::RepoIndex;
use crate::store::backend::{ObjectKey, ObjectKind, PutMode};
use crate::store::blob_writer::BlobWriter;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// Packs per rebuilt index segment.
const PACKS_PER_SEGMENT: usize = 4096;

/// What `repair index` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexRepair {
    /// Packs examined.
    pub packs_read: usize,
    /// Packs indexed in the new segments.
    pub packs_indexed: usize,
    /// Packs that could not be indexed at all, with why.
    pub packs_unreadable: Vec<(PackId, String)>,
    /// Damaged packs whose intact blobs were copied into new packs (old, new).
    pub packs_rewritten: Vec<(PackId, Vec<PackId>)>,
    /// Packs whose header is damaged but which stay indexed from the old
    /// index (run with `read_data` to rewrite them).
    pub packs_needing_read_data: Vec<PackId>,
    /// Blobs left out because they did not verify (with `read_data`).
    pub blobs_dropped: Vec<(BlobId, PackId, String)>,
    /// New segments written.
    pub segments_written: Vec<IndexId>,
    /// Old segments removed.
    pub segments_removed: Vec<IndexId>,
    /// The config was rewritten from a key file's copy.
    pub config_rewritten: bool,
    /// Key files that were stored under the wrong name and were re-filed.
    pub keys_refiled: Vec<KeyId>,
    /// Nothing needed changing.
    pub unchanged: bool,
}

/// Re-files objects whose bytes are valid but whose name is not the hash
/// of their bytes (swapped or copied objects). `valid` says whether bytes
/// are a valid object of the kind. Returns the new names.
fn refile(
    repo: &Repository,
    kind: ObjectKind,
    valid: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<[u8; 32]>> {
    // Read every misnamed object before writing anything: two objects
    // swapped with each other are each other's destination.
    let mut fixes = vec![];
    for l in repo.backend().list(kind)? {
        let b = repo.backend().get(&l.key)?;
        let id = content_hash(&b);
        if id != l.key.id && valid(&b) {
            fixes.push((l.key, b, id));
        }
    }
    let written: HashSet<[u8; 32]> = fixes.iter().map(|(_, _, id)| *id).collect();
    for (_, b, _) in &fixes {
        repo.write_object(kind, b.clone())?;
    }
    for (old, _, _) in &fixes {
        if !written.contains(&old.id) {
            repo.backend().delete(old)?;
        }
    }
    Ok(fixes.into_iter().map(|(_, _, id)| id).collect())
}

/// What one pack contributes to the rebuilt index.
enum Salvage {
    /// Intact: index these entries.
    Keep(Vec<PackEntry>),
    /// Damaged: copy these sealed blobs into new packs; drop the rest.
    Rewrite(Vec<(PackEntry, Bytes)>, Vec<(BlobId, String)>),
    /// Header unreadable, not read in full: keep the old index's entries
    /// that lie inside the pack as it is now; the rest are lost.
    KeepOld(Vec<PackEntry>, Vec<(BlobId, String)>),
    /// Nothing can be recovered.
    Lost(String),
}

/// Rebuilds the index from the packs. With `read_data`, every pack is read
/// and verified: blobs that fail are left out, and a pack with any damage
/// (a bad blob, header or name) has its intact blobs copied into new packs
/// and is removed once the new index is durable.
pub fn repair_index(repo: &Repository, catalog: &Catalog, read_data: bool) -> Result<IndexRepair> {
    let mut out = IndexRepair::default();
    if !repo.config_object_intact()? {
        repo.backend().put(
            &ObjectKey::CONFIG,
            Bytes::from(repo.config_bytes().to_vec()),
            PutMode::Overwrite,
        )?;
        out.config_rewritten = true;
    }
    out.keys_refiled = refile(repo, ObjectKind::Key, &|b| {
        crate::format::keyfile::KeyFile::parse(b).is_ok()
    })?
    .into_iter()
    .map(KeyId)
    .collect();
    let current = RepoIndex::load(repo)?;
    let (listed, _) = repo.list_packs_confirmed(current.packs.keys().copied())?;
    let listed: Vec<(PackId, u64)> = listed.into_iter().collect();
    out.packs_read = listed.len();
    let salvaged: Vec<(PackId, u64, Salvage)> = listed
        .par_iter()
        .with_max_len(1)
        .map(|&(id, size)| {
            let old = current.packs.get(&id).map(|(_, e)| e.as_slice());
            salvage_pack(repo, &id, size, old, read_data).map(|s| (id, size, s))
        })
        .collect::<Result<_>>()?;

    // Plan: what the new index lists.
    let mut packs: Vec<IndexedPack> = vec![];
    let mut rewrite: Vec<(PackId, Vec<(PackEntry, Bytes)>)> = vec![];
    for (id, size, s) in salvaged {
        match s {
            Salvage::Keep(entries) => packs.push(IndexedPack { id, size, entries }),
            Salvage::KeepOld(entries, lost) => {
                out.packs_needing_read_data.push(id);
                out.blobs_dropped
                    .extend(lost.into_iter().map(|(b, why)| (b, id, why)));
                packs.push(IndexedPack { id, size, entries });
            }
            Salvage::Rewrite(good, dropped) => {
                out.blobs_dropped
                    .extend(dropped.into_iter().map(|(b, why)| (b, id, why)));
                rewrite.push((id, good));
            }
            Salvage::Lost(why) => out.packs_unreadable.push((id, why)),
        }
    }
    let want: HashMap<PackId, (u64, &Vec<PackEntry>)> =
        packs.iter().map(|p| (p.id, (p.size, &p.entries))).collect();
    let same = rewrite.is_empty()
        && current.damaged_segments.is_empty()
        && current.superseded.is_empty()
        && current.packs.len() == want.len()
        && current
            .packs
            .iter()
            .all(|(id, (size, entries))| want.get(id) == Some(&(*size, entries)));
    if same {
        out.packs_indexed = packs.len();
        out.unchanged = !out.config_rewritten && out.keys_refiled.is_empty();
        return Ok(out);
    }

    // Execute: new packs first, then the index, then removals.
    for (old, good) in &rewrite {
        let mut new_ids = vec![];
        for kind in [BlobKind::Data, BlobKind::Tree] {
            let mut b = pack::PackBuilder::new(kind, 1 << 20);
            for (e, sealed) in good.iter().filter(|(e, _)| e.kind == kind) {
                b.add(e.id, e.compression, e.raw_length, sealed);
            }
            if b.is_empty() {
                continue;
            }
            let f = b.finish(repo.key());
            let size = f.bytes.len() as u64;
            repo.put_checked(&ObjectKey::new(ObjectKind::Pack, f.id.0), f.bytes.clone())?;
            if repo.read_pack_header(&f.id, size)? != f.entries {
                return Err(Error::damaged(
                    format!("pack {}", f.id),
                    "header read back differs from what was written",
                ));
            }
            new_ids.push(f.id);
            packs.push(IndexedPack {
                id: f.id,
                size,
                entries: f.entries,
            });
        }
        out.packs_rewritten.push((*old, new_ids));
    }
    packs.sort_by_key(|p| p.id);
    out.packs_indexed = packs.len();
    let old: Vec<IndexId> = current
        .segments
        .iter()
        .chain(current.superseded.iter())
        .chain(current.damaged_segments.iter().map(|(id, _)| id))
        .copied()
        .collect();
    let chunks: Vec<&[IndexedPack]> = if packs.is_empty() {
        vec![&[]]
    } else {
        packs.chunks(PACKS_PER_SEGMENT).collect()
    };
    for chunk in chunks {
        let seg = IndexSegment {
            packs: chunk.to_vec(),
            supersedes: old.clone(),
        };
        out.segments_written.push(repo.save_index(&seg)?);
    }
    // Only after every new segment is durable are old objects removed.
    for id in &old {
        if !out.segments_written.contains(id) {
            repo.backend()
                .delete(&ObjectKey::new(ObjectKind::Index, id.0))?;
            out.segments_removed.push(*id);
        }
    }
    for (old_pack, _) in &out.packs_rewritten {
        repo.backend()
            .delete(&ObjectKey::new(ObjectKind::Pack, old_pack.0))?;
    }
    catalog.rebuild(repo)?;
    Ok(out)
}

/// Decides what to keep of one pack of `size` bytes (as the store lists
/// it). `old` is what the current index says it holds. A pack that cannot
/// be read because of the store (not because its bytes are damaged) stops
/// the repair: concluding "lost" from a failed request would drop a
/// healthy pack from the index.
fn salvage_pack(
    repo: &Repository,
    id: &PackId,
    size: u64,
    old: Option<&[PackEntry]>,
    read_data: bool,
) -> Result<Salvage> {
    if !read_data {
        return match repo.read_pack_header(id, size) {
            Ok(e) => Ok(Salvage::Keep(e)),
            Err(e) if e.is_not_found() => Ok(Salvage::Lost("deleted while being repaired".into())),
            Err(e @ Error::Damaged { .. }) => Ok(match old {
                Some(o) => keep_old(o, size),
                None => Salvage::Lost(format!("{e}, and no index entry describes it")),
            }),
            Err(e) => Err(e),
        };
    }
    let key = ObjectKey::new(ObjectKind::Pack, id.0);
    let bytes = match repo.backend().get(&key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Ok(Salvage::Lost("deleted while being repaired".into()));
        }
        Err(e) => return Err(e),
    };
    let name_ok = content_hash(&bytes) == id.0;
    let (entries, header_ok) = match pack::read_header_from_bytes_unchecked(repo.key(), &bytes) {
        Ok(e) => (e, true),
        Err(why) => match old {
            Some(o) => (o.to_vec(), false),
            None => {
                return Ok(Salvage::Lost(format!(
                    "header: {why}, and no index entry describes it"
                )));
            }
        },
    };
    let mut good = vec![];
    let mut dropped = vec![];
    for e in entries {
        let r = bytes
            .get(e.offset as usize..(e.offset + e.length as u64) as usize)
            .ok_or_else(|| "beyond the end of the pack".to_string())
            .and_then(|sealed| pack::open_blob(repo.key(), &e, sealed).map(|_| sealed));
        match r {
            Ok(sealed) => good.push((e, bytes.slice_ref(sealed))),
            Err(why) => dropped.push((e.id, why)),
        }
    }
    Ok(if name_ok && header_ok && dropped.is_empty() {
        Salvage::Keep(good.into_iter().map(|(e, _)| e).collect())
    } else if good.is_empty() && !dropped.is_empty() && !header_ok {
        Salvage::Lost("header unreadable and no blob verifies".into())
    } else {
        Salvage::Rewrite(good, dropped)
    })
}

/// A pack whose header is unreadable, not read in full: the old index's
/// entries that still lie inside the pack's `size` bytes stay indexed
/// (they may be intact: `--read-data` tells), those beyond it are lost.
/// The pack is indexed at its present size, so that the new segment is
/// one that readers accept (a segment may not list blobs beyond a pack's
/// end).
fn keep_old(old: &[PackEntry], size: u64) -> Salvage {
    let (inside, beyond): (Vec<PackEntry>, Vec<PackEntry>) =
        old.iter().partition(|e| e.offset + e.length as u64 <= size);
    let lost: Vec<(BlobId, String)> = beyond
        .iter()
        .map(|e| {
            (
                e.id,
                format!("beyond the end of the pack (truncated to {size} bytes)"),
            )
        })
        .collect();
    if inside.is_empty() {
        return Salvage::Lost(format!(
            "truncated to {size} bytes: its {} indexed blob(s) are lost",
            old.len()
        ));
    }
    Salvage::KeepOld(inside, lost)
}

/// One file or directory that a repaired snapshot no longer has whole.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedPath {
    /// Path in the snapshot.
    pub path: String,
    /// What was lost.
    pub detail: String,
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

/// Rewrites snapshots around blobs that have no indexed copy.
pub fn repair_snapshots(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    forget: bool,
    dry_run: bool,
) -> Result<SnapshotsRepair> {
    let index = RepoIndex::load(repo)?;
    let (listed, _) = repo.list_packs_confirmed(index.packs.keys().copied())?;
    index_complete(repo, &index, &listed)?;
    let listed: HashSet<PackId> = listed.into_keys().collect();
    let available = |b: &BlobId| {
        index.blobs.get(b).is_some_and(|c| {
            c.iter()
                .any(|(p, e)| e.kind == BlobKind::Data && listed.contains(p))
        })
    };
    let writer = BlobWriter::new(repo.clone(), catalog.clone(), CompressionMode::Auto, 2);
    let mut rw = Rewriter {
        repo,
        index: &index,
        listed: &listed,
        available: &available,
        writer: &writer,
        dry_run,
        memo: HashMap::new(),
    };
    let mut out = SnapshotsRepair::default();
    if !dry_run {
        let key = repo.key().clone();
        out.refiled = refile(repo, ObjectKind::Snapshot, &|b| {
            crate::format::snapshot::Snapshot::from_object(&key, b).is_ok()
        })?
        .into_iter()
        .map(SnapshotId)
        .collect();
        if !out.refiled.is_empty() {
            catalog.sync(repo)?;
        }
    }
    let mut ids: Vec<SnapshotId> = repo
        .list_ids(ObjectKind::Snapshot)?
        .into_iter()
        .map(SnapshotId)
        .collect();
    ids.sort();
    // What the local catalog remembers of manifests that no longer read.
    let cached: HashMap<SnapshotId, Snapshot> = catalog.snapshots()?.into_iter().collect();
    let mut pending = vec![];
    let mut recover = vec![];
    for id in ids {
        let snap = match repo.load_snapshot(&id) {
            Ok(s) => s,
            Err(e) if e.is_not_found() => continue,
            Err(e) => match cached.get(&id) {
                // the manifest is damaged, but this cache read it intact
                Some(s) => {
                    recover.push(id);
                    s.clone()
                }
                None => {
                    out.unreadable.push((id, e.to_string()));
                    continue;
                }
            },
        };
        out.snapshots += 1;
        let mut damaged = vec![];
        let new_root = rw.tree(&snap.tree, "/", &mut damaged)?;
        if damaged.is_empty() && !recover.contains(&id) {
            continue;
        }
        pending.push((id, snap, new_root, damaged));
    }
    if dry_run {
        writer.abandon();
        out.recovered = recover.iter().map(|id| (*id, None)).collect();
        out.repaired = pending
            .into_iter()
            .filter(|(_, _, _, damaged)| !damaged.is_empty())
            .map(|(id, _, _, damaged)| RepairedSnapshot {
                original: id,
                repaired: None,
                damaged,
                forgotten: false,
            })
            .collect();
        return Ok(out);
    }
    // New trees are durable before any snapshot refers to them.
    writer.flush()?;
    if forget && !out.unreadable.is_empty() {
        for (id, _) in &out.unreadable {
            repo.backend()
                .delete(&ObjectKey::new(ObjectKind::Snapshot, id.0))?;
        }
        out.unreadable_deleted = true;
    }
    for (id, snap, new_root, damaged) in pending {
        let mut s = snap.clone();
        s.tree = new_root;
        s.original = Some(id);
        if damaged.is_empty() {
            // only the manifest was damaged: the same snapshot, written
            // again from the catalog's copy
            let new_id = repo.save_snapshot(&s)?;
            catalog.add_snapshot(&new_id, &s)?;
            if forget {
                repo.backend()
                    .delete(&ObjectKey::new(ObjectKind::Snapshot, id.0))?;
                catalog.remove_snapshot(&id)?;
            }
            out.recovered.push((id, Some(new_id)));
            continue;
        }
        if recover.contains(&id) {
            out.recovered.push((id, None));
        }
        if !s.tags.iter().any(|t| t == "repaired") {
            s.tags.push("repaired".into());
            s.tags.sort();
        }
        s.errors.extend(
            damaged
                .iter()
                .map(|d| crate::format::snapshot::SourceError {
                    path: d.path.clone(),
                    error: format!("damaged in the repository, repaired: {}", d.detail),
                }),
        );
        s.partial = true;
        let new_id = repo.save_snapshot(&s)?;
        catalog.add_snapshot(&new_id, &s)?;
        if forget {
            repo.backend()
                .delete(&ObjectKey::new(ObjectKind::Snapshot, id.0))?;
            catalog.remove_snapshot(&id)?;
        }
        out.repaired.push(RepairedSnapshot {
            original: id,
            repaired: Some(new_id),
            damaged,
            forgotten: forget,
        });
    }
    Ok(out)
}

/// Refuses to rewrite snapshots while the index may be missing blobs that
/// the store still has: a damaged or superseded segment, a pack that no
/// segment lists but whose header is readable, or a pack whose size
/// differs from the index's. Rewriting then would drop data that `repair
/// index` can still find, and `--forget` would delete the only snapshots
/// that refer to it. (An unindexed pack whose header is unreadable holds
/// nothing `repair index` can recover, and does not block.)
fn index_complete(
    repo: &Repository,
    index: &RepoIndex,
    listed: &HashMap<PackId, u64>,
) -> Result<()> {
    let mut why = vec![];
    if !index.damaged_segments.is_empty() {
        why.push(format!(
            "{} index segment(s) are damaged",
            index.damaged_segments.len()
        ));
    }
    if !index.superseded.is_empty() {
        why.push(format!(
            "{} superseded index segment(s) are still there",
            index.superseded.len()
        ));
    }
    let mut unindexed = 0;
    for (p, size) in listed.iter().filter(|(p, _)| !index.packs.contains_key(p)) {
        match repo.read_pack_header(p, *size) {
            Ok(_) => unindexed += 1,
            Err(Error::Damaged { .. }) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if unindexed > 0 {
        why.push(format!("{unindexed} pack(s) are not in the index"));
    }
    let resized = index
        .packs
        .iter()
        .filter(|(p, (size, _))| listed.get(p).is_some_and(|s| s != size))
        .count();
    if resized > 0 {
        why.push(format!(
            "{resized} pack(s) have a size that differs from the index's"
        ));
    }
    if why.is_empty() {
        return Ok(());
    }
    Err(Error::NeedsRepairIndex(why.join(", ")))
}

/// Rewrites trees bottom-up, memoised by tree id.
struct Rewriter<'a> {
    repo: &'a Repository,
    index: &'a RepoIndex,
    listed: &'a HashSet<PackId>,
    available: &'a dyn Fn(&BlobId) -> bool,
    writer: &'a BlobWriter,
    dry_run: bool,
    /// tree id -> (new id, damage below it relative to the tree)
    memo: HashMap<BlobId, (BlobId, Vec<DamagedPath>)>,
}

impl Rewriter<'_> {
    fn read(&self, id: &BlobId, kind: BlobKind) -> std::result::Result<Vec<u8>, String> {
        let copies = self.index.blobs.get(id).ok_or("not in the index")?;
        let mut last = "no copy in an existing pack".to_string();
        for (p, e) in copies {
            if !self.listed.contains(p) || e.kind != kind {
                continue;
            }
            let key = ObjectKey::new(ObjectKind::Pack, p.0);
            match self
                .repo
                .backend()
                .get_range(&key, e.range())
                .map_err(|e| e.to_string())
                .and_then(|s| pack::open_blob(self.repo.key(), e, &s))
            {
                Ok(b) => return Ok(b),
                Err(why) => last = why,
            }
        }
        Err(last)
    }

    /// The repaired id of tree `id` at `path`, appending what was lost.
    fn tree(&mut self, id: &BlobId, path: &str, damaged: &mut Vec<DamagedPath>) -> Result<BlobId> {
        if let Some((new, d)) = self.memo.get(id) {
            let base = path.trim_end_matches('/');
            damaged.extend(d.iter().map(|x| DamagedPath {
                path: format!("{base}{}", x.path),
                detail: x.detail.clone(),
            }));
            return Ok(*new);
        }
        let mut local: Vec<DamagedPath> = vec![];
        let tree = match self.read(id, BlobKind::Tree).and_then(|b| Tree::decode(&b)) {
            Ok(t) => Some(t),
            Err(why) => {
                local.push(DamagedPath {
                    path: String::new(),
                    detail: format!("directory lost ({why}); restored as empty"),
                });
                None
            }
        };
        let new_id = match tree {
            None => self.store(&Tree::default())?,
            Some(mut t) => {
                let mut changed = false;
                for n in &mut t.nodes {
                    let rel = format!("/{}", n.display_name());
                    match n.kind {
                        NodeKind::Dir => {
                            if let Some(sub) = n.subtree() {
                                let mut d = vec![];
                                let new_sub = self.tree(&sub, &rel, &mut d)?;
                                if new_sub != sub {
                                    n.content = Content::Dir { subtree: new_sub };
                                    if !d.is_empty() {
                                        n.flags |= FLAG_INCOMPLETE;
                                    }
                                    changed = true;
                                }
                                local.extend(d);
                            }
                        }
                        NodeKind::File => {
                            if let Some(detail) = self.file(n)? {
                                local.push(DamagedPath { path: rel, detail });
                                changed = true;
                            }
                        }
                        _ => {}
                    }
                }
                if changed { self.store(&t)? } else { *id }
            }
        };
        let base = path.trim_end_matches('/');
        damaged.extend(local.iter().map(|x| DamagedPath {
            path: if x.path.is_empty() {
                if path.is_empty() {
                    "/".into()
                } else {
                    path.into()
                }
            } else {
                format!("{base}{}", x.path)
            },
            detail: x.detail.clone(),
        }));
        self.memo.insert(*id, (new_id, local));
        Ok(new_id)
    }

    /// Drops a file's lost chunks and recomputes its hash; `None` if intact.
    fn file(&mut self, n: &mut Node) -> Result<Option<String>> {
        let extents = n.extents().to_vec();
        let lost: Vec<&Extent> = extents
            .iter()
            .filter(|e| !(self.available)(&e.blob))
            .collect();
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
            .filter(|e| (self.available)(&e.blob))
            .copied()
            .collect();
        // The new hash: kept chunks as they are, lost ones as zeros.
        let mut h = blake3::Hasher::new();
        let mut pos = 0u64;
        if !self.dry_run {
            for e in &keep {
                hash_zeros(&mut h, e.offset - pos);
                let b = self
                    .read(&e.blob, BlobKind::Data)
                    .map_err(|why| Error::damaged(format!("blob {}", e.blob), why))?;
                h.update(&b);
                pos = e.offset + e.length as u64;
            }
            hash_zeros(&mut h, n.size - pos);
        }
        n.content = Content::File {
            hash: *h.finalize().as_bytes(),
            extents: keep,
        };
        n.flags |= FLAG_INCOMPLETE;
        Ok(Some(detail))
    }

    fn store(&self, t: &Tree) -> Result<BlobId> {
        let mut t = t.clone();
        t.sort();
        let enc = t.encode();
        if self.dry_run {
            return Ok(self.repo.key().blob_id(&enc));
        }
        self.writer.add(BlobKind::Tree, &enc)
    }
}
