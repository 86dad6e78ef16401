//! `repair index`: rebuild the index from the packs themselves.
//!
//! [`plan`] reads (the config, the key files, the index, every pack's
//! header, and with `read_data` every pack in full) and decides what the
//! new index lists; [`execute`] writes it: the config, re-filed keys, new
//! packs holding the intact blobs of damaged ones, then the new segments
//! (superseding every old one), and only then deletes the old segments and
//! the damaged packs.

use std::collections::HashMap;

use bytes::Bytes;
use rayon::prelude::*;
use serde::Serialize;

use super::{Misnamed, find_misnamed, refile};
use crate::error::{Error, Result};
use crate::format::id::{BlobId, IndexId, KeyId, PackId, PruneId, content_hash};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::keyfile::KeyFile;
use crate::format::layout::ObjectKey;
use crate::format::pack::{self, BlobKind, PackEntry};
use crate::store::backend::PutMode;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;
use crate::store::repo_index::RepoIndex;
use crate::store::session::{Exclusive, Session};

/// Packs per rebuilt index segment.
const PACKS_PER_SEGMENT: usize = 4096;

/// A damaged pack whose intact blobs are copied into new packs.
#[derive(Debug, Clone, Serialize)]
pub struct PackRewrite {
    /// The damaged pack (deleted once the new index is durable).
    pub pack: PackId,
    /// How many of its blobs are intact and copied.
    pub blobs_kept: usize,
    #[serde(skip)]
    blobs: Vec<(PackEntry, Bytes)>,
}

/// What `repair index` will do; nothing is written until [`execute`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexRepairPlan {
    /// The config object is missing or damaged and is written from the key
    /// files' copy.
    pub rewrite_config: bool,
    /// Key files stored under the wrong name.
    pub refile_keys: Vec<Misnamed<KeyId>>,
    /// Packs examined.
    pub packs_read: usize,
    /// Packs whose header is damaged but which stay indexed from the old
    /// index (`read_data` rewrites them).
    pub packs_needing_read_data: Vec<PackId>,
    /// Damaged packs rewritten (with `read_data`).
    pub packs_rewritten: Vec<PackRewrite>,
    /// Packs nothing can be recovered from, with why.
    pub packs_unreadable: Vec<(PackId, String)>,
    /// Blobs left out of the new index, with their pack and why.
    pub blobs_dropped: Vec<(BlobId, PackId, String)>,
    /// Segments the new index supersedes (and that are then deleted).
    pub segments_superseded: Vec<IndexId>,
    /// Prune records that do not load (their marks are unknown): removed
    /// once the new index lists every pack that exists.
    pub prune_records_removed: Vec<PruneId>,
    /// The index already says what the packs say.
    pub index_unchanged: bool,
    /// The new index's packs (without the rewritten packs' replacements,
    /// which exist only once they are written).
    #[serde(skip)]
    index: Vec<IndexedPack>,
}

impl IndexRepairPlan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        !self.rewrite_config && self.refile_keys.is_empty() && self.index_unchanged
    }

    /// Packs the new index lists, before rewritten packs are replaced.
    pub fn packs_indexed(&self) -> usize {
        self.index.len()
    }
}

/// What `repair index` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexRepair {
    /// Seals withdrawn with the damaged prune records they sealed.
    pub seals_withdrawn: usize,
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

/// Plans the rebuild. With `read_data`, every pack is read and verified:
/// blobs that fail are left out, and a pack with any damage (a bad blob,
/// header or name) has its intact blobs copied into new packs.
pub fn plan(session: &Session<Exclusive>, read_data: bool) -> Result<IndexRepairPlan> {
    let repo = session.repo();
    let mut plan = IndexRepairPlan {
        rewrite_config: !repo.config_object_intact()?,
        refile_keys: find_misnamed::<KeyId>(repo, &|b| KeyFile::parse(b).is_ok())?,
        ..Default::default()
    };
    let current = RepoIndex::load(repo)?;
    let (listed, _) = repo.list_packs_confirmed(current.packs.keys().copied())?;
    // what a prune head condemned or decided to delete is not live: it is
    // never indexed here (the record keeps the condemned readable)
    let mut listed: Vec<(PackId, u64)> = listed
        .into_iter()
        .filter(|(id, _)| !current.condemned.contains(id) && !current.to_delete.contains(id))
        .collect();
    plan.prune_records_removed = current.damaged_records.iter().map(|(id, _)| *id).collect();
    listed.sort();
    plan.packs_read = listed.len();
    let salvaged: Vec<(PackId, u64, Salvage)> = listed
        .par_iter()
        .with_max_len(1)
        .map(|&(id, size)| {
            let old = current.packs.get(&id).map(|(_, e)| e.as_slice());
            salvage_pack(repo, &id, size, old, read_data).map(|s| (id, size, s))
        })
        .collect::<Result<_>>()?;
    for (id, size, s) in salvaged {
        match s {
            Salvage::Keep(entries) => plan.index.push(IndexedPack { id, size, entries }),
            Salvage::KeepOld(entries, lost) => {
                plan.packs_needing_read_data.push(id);
                plan.blobs_dropped
                    .extend(lost.into_iter().map(|(b, why)| (b, id, why)));
                plan.index.push(IndexedPack { id, size, entries });
            }
            Salvage::Rewrite(good, dropped) => {
                plan.blobs_dropped
                    .extend(dropped.into_iter().map(|(b, why)| (b, id, why)));
                plan.packs_rewritten.push(PackRewrite {
                    pack: id,
                    blobs_kept: good.len(),
                    blobs: good,
                });
            }
            Salvage::Lost(why) => plan.packs_unreadable.push((id, why)),
        }
    }
    let want: HashMap<PackId, (u64, &Vec<PackEntry>)> = plan
        .index
        .iter()
        .map(|p| (p.id, (p.size, &p.entries)))
        .collect();
    let live = || {
        current
            .packs
            .iter()
            .filter(|(id, _)| !current.condemned.contains(id))
    };
    plan.index_unchanged = plan.packs_rewritten.is_empty()
        && current.damaged_segments.is_empty()
        && current.damaged_records.is_empty()
        && current.superseded.is_empty()
        && current.void_segments.is_empty()
        && live().count() == want.len()
        && live().all(|(id, (size, entries))| want.get(id) == Some(&(*size, entries)));
    if !plan.index_unchanged {
        plan.segments_superseded = current
            .segments
            .iter()
            .chain(current.superseded.iter())
            .chain(current.void_segments.iter())
            .chain(current.damaged_segments.iter().map(|(id, _)| id))
            .copied()
            .collect();
        plan.segments_superseded.sort();
    }
    Ok(plan)
}

/// Carries out a plan: config, keys, new packs, new segments, then the
/// deletions, then the catalog is rebuilt.
pub fn execute(session: &Session<Exclusive>, plan: IndexRepairPlan) -> Result<IndexRepair> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let mut out = IndexRepair {
        packs_read: plan.packs_read,
        packs_unreadable: plan.packs_unreadable,
        packs_needing_read_data: plan.packs_needing_read_data,
        blobs_dropped: plan.blobs_dropped,
        config_rewritten: plan.rewrite_config,
        keys_refiled: plan.refile_keys.iter().map(|m| m.own_name).collect(),
        ..Default::default()
    };
    if plan.rewrite_config {
        repo.backend().put(
            &ObjectKey::CONFIG,
            Bytes::from(repo.config_bytes().to_vec()),
            PutMode::Overwrite,
        )?;
    }
    refile(repo, &plan.refile_keys)?;
    let mut packs = plan.index;
    if plan.index_unchanged {
        out.packs_indexed = packs.len();
        out.unchanged = !out.config_rewritten && out.keys_refiled.is_empty();
        // the catalog is read again all the same (the headers of condemned
        // packs with it), and seals left by a repair that stopped after
        // removing records are withdrawn
        out.seals_withdrawn = resync(repo, catalog)?;
        return Ok(out);
    }
    // New packs first, then the index, then removals.
    for rw in &plan.packs_rewritten {
        let mut new_ids = vec![];
        for kind in [BlobKind::Data, BlobKind::Tree] {
            let mut b = pack::PackBuilder::new(kind, 1 << 20);
            for (e, sealed) in rw.blobs.iter().filter(|(e, _)| e.kind == kind) {
                b.add(e.id, e.compression, e.raw_length, sealed);
            }
            if b.is_empty() {
                continue;
            }
            let f = b.finish(repo.key());
            let size = f.bytes.len() as u64;
            repo.put_checked(&ObjectKey::of(f.id), f.bytes.clone())?;
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
        out.packs_rewritten.push((rw.pack, new_ids));
    }
    packs.sort_by_key(|p| p.id);
    out.packs_indexed = packs.len();
    let old = plan.segments_superseded;
    let chunks: Vec<&[IndexedPack]> = if packs.is_empty() {
        vec![&[]]
    } else {
        packs.chunks(PACKS_PER_SEGMENT).collect()
    };
    for chunk in chunks {
        let seg = IndexSegment {
            packs: chunk.to_vec(),
            supersedes: old.clone(),
            base: catalog.base(),
        };
        out.segments_written.push(repo.save_index(&seg)?);
    }
    // Only after every new segment is durable are old objects removed.
    for id in &plan.prune_records_removed {
        repo.backend().delete(&ObjectKey::of(*id))?;
    }
    for id in &old {
        if !out.segments_written.contains(id) {
            repo.backend().delete(&ObjectKey::of(*id))?;
            out.segments_removed.push(*id);
        }
    }
    for (old_pack, _) in &out.packs_rewritten {
        repo.backend().delete(&ObjectKey::of(*old_pack))?;
    }
    out.seals_withdrawn = resync(repo, catalog)?;
    Ok(out)
}

/// Rebuilds the catalog from the repository, then withdraws the seals no
/// record stands behind (left by records removed now, or by a repair that
/// stopped after removing them), which would refuse every later backup;
/// the head is the one the rebuilt catalog found. Returns how many seals
/// were withdrawn.
fn resync(repo: &Repository, catalog: &Catalog) -> Result<usize> {
    catalog.rebuild(repo)?;
    let head = catalog
        .prune_state()
        .head()
        .map(|(id, r)| (*id, r.info.generation));
    crate::store::prune_seals::withdraw_beyond(repo, head)
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
            Err(e) if e.is_damage() => Ok(match old {
                Some(o) => keep_old(o, size),
                None => Salvage::Lost(format!("{e}, and no index entry describes it")),
            }),
            Err(e) => Err(e),
        };
    }
    let bytes = match repo.backend().get(&ObjectKey::of(*id)) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Ok(Salvage::Lost("deleted while being repaired".into()));
        }
        Err(e) => return Err(e),
    };
    let name_ok = content_hash(&bytes) == id.0;
    let (entries, header_ok) = match pack::read_header_from_bytes_unchecked(repo.key(), &bytes) {
        Ok(e) => (e, true),
        // written by a newer arca (its name checks out): not damage
        Err(why) if why.is_unsupported_version() && name_ok => {
            return Err(Error::decode(ObjectKey::of(*id), why));
        }
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
    for (e, r) in entries
        .iter()
        .zip(pack::verify_entries(repo.key(), &bytes, &entries))
    {
        match r {
            Ok(range) => good.push((*e, bytes.slice(range))),
            Err(why) => dropped.push((e.id, why.to_string())),
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
