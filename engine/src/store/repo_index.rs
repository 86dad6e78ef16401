//! The repository's index as `index/` says it, built in memory from the
//! segments themselves, never from the local catalog: what `check`
//! compares everything with, what `repair` rebuilds from, and where a
//! [`BlobReader`](super::blob_reader::BlobReader) over the repository
//! itself looks blobs up (through an [`IndexView`]).
//!
//! It applies the prune records' rules as the catalog does (`format::prune`,
//! `format-spec` §15): the heads' condemned packs are indexed but not live
//! (readable for the snapshots that still need them, never deduplicated
//! against), the packs they delete are not indexed, a segment a head
//! supersedes or voids counts for nothing.
//!
//! Costs: every segment is read once (in parallel); memory is about 150
//! bytes per indexed blob copy (an issue for 100M blobs, noted in the scale
//! issue; the catalog is the on-disk alternative).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::Result;
use crate::format::id::{BlobId, IndexId, PackId, PruneId};
use crate::format::index::{IndexSegment, superseded};
use crate::format::pack::{BlobKind, PackEntry};
use crate::format::prune::{PruneRecord, PruneState};
use crate::store::blob_reader::{BlobLocation, Locator};
use crate::store::repo::Repository;

/// The copies of one blob: (pack, entry).
pub type Copies = smallvec::SmallVec<[(PackId, PackEntry); 1]>;

/// The repository's index, built from `index/`.
#[derive(Debug, Default)]
pub struct RepoIndex {
    /// Every indexed pack: size and entries.
    pub packs: HashMap<PackId, (u64, Vec<PackEntry>)>,
    /// Every blob and each of its copies (one, almost always: kept inline,
    /// as a separate allocation per blob tripled the index's memory).
    pub blobs: HashMap<BlobId, Copies>,
    /// Segments that load and count.
    pub segments: Vec<IndexId>,
    /// Segments that do not load, with why.
    pub damaged_segments: Vec<(IndexId, String)>,
    /// Segments that a newer segment or a prune head supersedes (ignored;
    /// the next prune or repair removes them).
    pub superseded: Vec<IndexId>,
    /// Segments written on a base a prune's sweep voided (ignored: their
    /// packs may be gone; the packs that exist are unindexed).
    pub void_segments: Vec<IndexId>,
    /// The prune heads.
    pub prune: PruneState,
    /// Prune records that do not load, with why.
    pub damaged_records: Vec<(PruneId, String)>,
    /// Packs a head condemned: in `packs` and `blobs` (readable), not live.
    pub condemned: HashSet<PackId>,
    /// Condemned packs whose header did not read (missing or damaged),
    /// with why.
    pub condemned_unreadable: Vec<(PackId, String)>,
    /// Packs a head decided to delete: not indexed.
    pub to_delete: HashSet<PackId>,
}

impl RepoIndex {
    /// Loads every index segment (in parallel), applying the supersedes
    /// rule ([`superseded`]).
    pub fn load(repo: &Repository) -> Result<Self> {
        let mut idx = RepoIndex::default();
        // the prune records first: their marks win over every segment
        let rids = repo.list::<PruneId>()?;
        let records: Vec<(PruneId, Result<PruneRecord>)> = rids
            .par_iter()
            .map(|id| (*id, repo.load_prune(id)))
            .collect();
        let mut good_records = vec![];
        for (id, r) in records {
            match r {
                Ok(rec) => good_records.push((id, rec)),
                Err(e) if e.is_not_found() => {}
                Err(e) if e.is_damage() => idx.damaged_records.push((id, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        idx.prune = PruneState::from_records(good_records);
        let condemned: Vec<_> = idx
            .prune
            .heads
            .iter()
            .flat_map(|(_, r)| r.info.condemned.iter().copied())
            .collect();
        idx.to_delete = idx
            .prune
            .heads
            .iter()
            .flat_map(|(_, r)| r.info.to_delete.packs.iter().map(|(p, _)| *p))
            .collect();
        let head_supersedes = idx.prune.superseded_segments();

        let ids = repo.list::<IndexId>()?;
        let loaded: Vec<(IndexId, Result<IndexSegment>)> = ids
            .par_iter()
            .map(|id| (*id, repo.load_index(id)))
            .collect();
        let mut good = vec![];
        for (id, r) in loaded {
            match r {
                Ok(seg) => good.push((id, seg)),
                Err(e) if e.is_not_found() => {} // deleted while we listed
                Err(e) if e.is_damage() => idx.damaged_segments.push((id, e.to_string())),
                // an unknown version, a store that does not answer: stop
                Err(e) => return Err(e),
            }
        }
        let mut gone: HashSet<IndexId> = superseded(good.iter().map(|(_, s)| s));
        gone.extend(head_supersedes);
        idx.damaged_segments.retain(|(id, _)| !gone.contains(id));
        // sized once: growing a table of a million blobs holds the old
        // and the new table at once
        let kept = || good.iter().filter(|(id, _)| !gone.contains(id));
        idx.blobs.reserve(
            kept()
                .flat_map(|(_, s)| s.packs.iter().map(|p| p.entries.len()))
                .sum(),
        );
        idx.packs.reserve(kept().map(|(_, s)| s.packs.len()).sum());
        let marked = idx.prune.marked_packs();
        for (id, seg) in good {
            if gone.contains(&id) {
                idx.superseded.push(id);
                continue;
            }
            if !idx.prune.base_valid(&seg.base) {
                idx.void_segments.push(id);
                continue;
            }
            idx.segments.push(id);
            for p in seg.packs {
                if !marked.contains(&p.id) {
                    idx.insert(p.id, p.size, p.entries);
                }
            }
        }
        // a condemned pack's entries are its header's (the record names
        // it by id and size); one that is gone or unreadable is left for
        // check to report
        let headers: Vec<(PackId, u64, Result<Vec<PackEntry>>)> = condemned
            .par_iter()
            .map(|(p, size)| (*p, *size, repo.read_pack_header(p, *size)))
            .collect();
        for (id, size, entries) in headers {
            idx.condemned.insert(id);
            match entries {
                Ok(entries) => idx.insert(id, size, entries),
                Err(e) if e.is_not_found() || e.is_damage() => {
                    idx.condemned_unreadable.push((id, e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(idx)
    }

    fn insert(&mut self, pack: PackId, size: u64, entries: Vec<PackEntry>) {
        for e in &entries {
            let copies = self.blobs.entry(e.id).or_default();
            if !copies
                .iter()
                .any(|(pk, ce)| *pk == pack && ce.kind == e.kind)
            {
                copies.push((pack, *e));
            }
        }
        self.packs.insert(pack, (size, entries));
    }

    /// Whether a pack is live: indexed and not condemned.
    pub fn is_live(&self, pack: &PackId) -> bool {
        self.packs.contains_key(pack) && !self.condemned.contains(pack)
    }

    /// A view that offers only the copies `usable` accepts (for example:
    /// in packs that exist and were not found damaged).
    pub fn view<'a>(
        &'a self,
        usable: impl Fn(&PackId, &BlobId) -> bool + Send + Sync + 'a,
    ) -> IndexView<'a> {
        IndexView {
            index: self,
            usable: Box::new(usable),
        }
    }

    /// Whether some copy of data blob `id` passes `usable`.
    pub fn has_data(&self, id: &BlobId, usable: impl Fn(&PackId) -> bool) -> bool {
        self.blobs.get(id).is_some_and(|copies| {
            copies
                .iter()
                .any(|(p, e)| e.kind == BlobKind::Data && usable(p))
        })
    }
}

/// The index through a filter on copies: a [`Locator`] for the blob
/// reader, so that check and repair read through the same reader as
/// everything else, from the repository's own index.
pub struct IndexView<'a> {
    index: &'a RepoIndex,
    usable: Box<Usable<'a>>,
}

/// Which copies an [`IndexView`] offers: (pack, blob) -> usable.
type Usable<'a> = dyn Fn(&PackId, &BlobId) -> bool + Send + Sync + 'a;

impl Locator for IndexView<'_> {
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        let Some(copies) = self.index.blobs.get(id) else {
            return Ok(vec![]);
        };
        Ok(copies
            .iter()
            .filter(|(p, e)| e.kind == kind && (self.usable)(p, id))
            .filter_map(|(p, e)| {
                self.index.packs.get(p).map(|(size, _)| BlobLocation {
                    pack: *p,
                    pack_size: *size,
                    entry: *e,
                })
            })
            .collect())
    }
}
