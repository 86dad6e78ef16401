//! The repository's index as `index/` says it, built in memory from the
//! segments themselves, never from the local catalog: what `check`
//! compares everything with, what `repair` rebuilds from, and where a
//! [`BlobReader`](super::blob_reader::BlobReader) over the repository
//! itself looks blobs up (through an [`IndexView`]).
//!
//! Costs: every segment is read once (in parallel); memory is about 150
//! bytes per indexed blob copy (an issue for 100M blobs, noted in the scale
//! issue; the catalog is the on-disk alternative).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::Result;
use crate::format::id::{BlobId, IndexId, PackId};
use crate::format::index::{IndexSegment, superseded};
use crate::format::pack::{BlobKind, PackEntry};
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
    /// Segments that a newer segment supersedes (ignored; repair removes them).
    pub superseded: Vec<IndexId>,
}

impl RepoIndex {
    /// Loads every index segment (in parallel), applying the supersedes
    /// rule ([`superseded`]).
    pub fn load(repo: &Repository) -> Result<Self> {
        let ids = repo.list::<IndexId>()?;
        let loaded: Vec<(IndexId, Result<IndexSegment>)> = ids
            .par_iter()
            .map(|id| (*id, repo.load_index(id)))
            .collect();
        let mut idx = RepoIndex::default();
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
        let gone: HashSet<IndexId> = superseded(good.iter().map(|(_, s)| s));
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
        for (id, seg) in good {
            if gone.contains(&id) {
                idx.superseded.push(id);
                continue;
            }
            idx.segments.push(id);
            for p in seg.packs {
                for e in &p.entries {
                    let copies = idx.blobs.entry(e.id).or_default();
                    if !copies
                        .iter()
                        .any(|(pk, ce)| *pk == p.id && ce.kind == e.kind)
                    {
                        copies.push((p.id, *e));
                    }
                }
                idx.packs.insert(p.id, (p.size, p.entries));
            }
        }
        Ok(idx)
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
