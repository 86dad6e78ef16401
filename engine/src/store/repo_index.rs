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
//! Costs: every segment is read once (in parallel); memory is each pack's
//! entry list (56 bytes per blob copy) plus a table from blob id to an
//! 8-byte position of its copy in those lists (40-byte slots, at the
//! table's load): about 100 bytes per indexed blob in all as measured at
//! 1.68M blobs, not flat in the number of blobs (the scale issue; the
//! catalog is the on-disk alternative).

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::Result;
use crate::format::id::{BlobId, IndexId, PackId, PruneId};
use crate::format::index::{IndexSegment, superseded};
use crate::format::pack::{BlobKind, PackEntry};
use crate::format::prune::{PruneRecord, PruneState};
use crate::store::blob_reader::{BlobLocation, Locator};
use crate::store::repo::Repository;

/// The repository's index, built from `index/`.
#[derive(Debug, Default)]
pub struct RepoIndex {
    /// Every indexed pack: size and entries.
    pub packs: HashMap<PackId, (u64, Vec<PackEntry>)>,
    /// Where every blob's copies are in `packs`.
    blobs: BlobCopies,
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
        idx.blobs.first.reserve(
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

    /// Indexes a pack. A pack that two segments both list keeps the
    /// entries it was first indexed with (a pack's entries are its header's,
    /// which check compares them with).
    fn insert(&mut self, pack: PackId, size: u64, entries: Vec<PackEntry>) {
        if self.packs.contains_key(&pack) {
            return;
        }
        let no = u32::try_from(self.blobs.pack_ids.len()).expect("fewer than 2^32 packs");
        for (i, e) in entries.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^31 blobs in a pack");
            // a pack that lists a blob twice holds one copy of it
            self.blobs.add(e.id, Position::new(no, e.kind, i), |at| {
                at.pack() == no as usize && at.kind() == e.kind
            });
        }
        self.blobs.pack_ids.push(pack);
        self.packs.insert(pack, (size, entries));
    }

    /// The copies of blob `id` (of either kind): (pack, entry).
    pub fn copies<'a>(&'a self, id: &BlobId) -> impl Iterator<Item = (PackId, &'a PackEntry)> {
        self.blobs.positions(id).map(|at| self.resolve(at))
    }

    /// The pack of every copy of every blob, one item per copy.
    pub fn all_copy_packs(&self) -> impl Iterator<Item = PackId> + '_ {
        let b = &self.blobs;
        b.first
            .values()
            .chain(b.more.values().flatten())
            .map(|at| b.pack_ids[at.pack()])
    }

    /// Whether any copy of `id` is indexed.
    pub fn has_blob(&self, id: &BlobId) -> bool {
        self.blobs.first.contains_key(id)
    }

    /// How many distinct blob ids are indexed.
    pub fn blob_count(&self) -> usize {
        self.blobs.first.len()
    }

    fn resolve(&self, at: Position) -> (PackId, &PackEntry) {
        let pack = self.blobs.pack_ids[at.pack()];
        (pack, &self.packs[&pack].1[at.entry()])
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
        let b = &self.blobs;
        b.positions(id)
            .any(|at| at.kind() == BlobKind::Data && usable(&b.pack_ids[at.pack()]))
    }
}

/// A blob copy's place in one word: pack number (in
/// `BlobCopies::pack_ids`, 32 bits), the blob's kind (1 bit: a lookup by
/// kind need not fetch the entry) and entry number in that pack's entry
/// list (31 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position(u64);

impl Position {
    const TREE: u64 = 1 << 31;

    fn new(pack: u32, kind: BlobKind, entry: u32) -> Self {
        assert!(
            u64::from(entry) < Self::TREE,
            "fewer than 2^31 blobs in a pack"
        );
        let kind = if kind == BlobKind::Tree {
            Self::TREE
        } else {
            0
        };
        Position(u64::from(pack) << 32 | kind | u64::from(entry))
    }
    fn pack(self) -> usize {
        (self.0 >> 32) as usize
    }
    fn kind(self) -> BlobKind {
        if self.0 & Self::TREE != 0 {
            BlobKind::Tree
        } else {
            BlobKind::Data
        }
    }
    fn entry(self) -> usize {
        (self.0 & (Self::TREE - 1)) as usize
    }
}

/// From blob id to its copies' positions: 40 bytes a blob in the table
/// (the entries themselves are in `RepoIndex::packs` once), where a table
/// of whole copies took about 130. Most blobs have one copy; the others'
/// further copies are in `more`.
#[derive(Debug, Default)]
struct BlobCopies {
    /// Pack numbers' ids, in the order the packs were indexed.
    pack_ids: Vec<PackId>,
    first: HashMap<BlobId, Position>,
    more: HashMap<BlobId, Vec<Position>>,
}

impl BlobCopies {
    /// Adds a copy at `at` unless `same` says a copy already known is it.
    fn add(&mut self, id: BlobId, at: Position, same: impl Fn(Position) -> bool) {
        use std::collections::hash_map::Entry;
        match self.first.entry(id) {
            Entry::Vacant(v) => {
                v.insert(at);
            }
            Entry::Occupied(o) if same(*o.get()) => {}
            Entry::Occupied(_) => {
                let more = self.more.entry(id).or_default();
                if !more.iter().any(|m| same(*m)) {
                    more.push(at);
                }
            }
        }
    }

    fn positions(&self, id: &BlobId) -> impl Iterator<Item = Position> + '_ {
        let first = self.first.get(id).copied();
        // one hash lookup for the usual blob, which has one copy
        let more = first
            .filter(|_| !self.more.is_empty())
            .and_then(|_| self.more.get(id))
            .into_iter()
            .flatten()
            .copied();
        first.into_iter().chain(more)
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
        Ok(self
            .index
            .copies(id)
            .filter(|(p, e)| e.kind == kind && (self.usable)(p, id))
            .map(|(p, e)| BlobLocation {
                pack: p,
                pack_size: self.index.packs[&p].0,
                entry: *e,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::compress::Compression;

    fn entry(id: u8, kind: BlobKind, offset: u64) -> PackEntry {
        PackEntry {
            kind,
            compression: Compression::None,
            id: BlobId([id; 32]),
            offset,
            length: 100,
            raw_length: 60,
        }
    }

    #[test]
    fn copies_are_found_by_position_once_per_pack_and_kind() {
        let (p1, p2) = (PackId([1; 32]), PackId([2; 32]));
        let mut idx = RepoIndex::default();
        // blob 7 twice in p1 (one copy), as a tree too (another blob), and
        // again in p2 (a second copy); blob 8 only in p2
        idx.insert(
            p1,
            1000,
            vec![
                entry(7, BlobKind::Data, 0),
                entry(7, BlobKind::Data, 100),
                entry(7, BlobKind::Tree, 200),
            ],
        );
        idx.insert(
            p2,
            2000,
            vec![entry(8, BlobKind::Data, 0), entry(7, BlobKind::Data, 100)],
        );
        // a pack listed again (a second segment naming it) changes nothing
        idx.insert(p2, 2000, vec![entry(9, BlobKind::Data, 0)]);

        let seven = BlobId([7; 32]);
        let got: Vec<(PackId, PackEntry)> = idx.copies(&seven).map(|(p, e)| (p, *e)).collect();
        assert_eq!(
            got,
            vec![
                (p1, entry(7, BlobKind::Data, 0)),
                (p1, entry(7, BlobKind::Tree, 200)),
                (p2, entry(7, BlobKind::Data, 100)),
            ]
        );
        assert_eq!(idx.blob_count(), 2);
        assert!(!idx.has_blob(&BlobId([9; 32])));
        assert_eq!(idx.all_copy_packs().count(), 4);
        assert!(idx.has_data(&seven, |p| *p == p2));
        assert!(!idx.has_data(&BlobId([8; 32]), |p| *p == p1));

        let view = idx.view(|p, _| *p == p2);
        let trees = view.copies(BlobKind::Tree, &seven).unwrap();
        assert!(trees.is_empty(), "the tree copy is in p1 only");
        let data = view.copies(BlobKind::Data, &seven).unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!((data[0].pack, data[0].pack_size), (p2, 2000));
        assert_eq!(data[0].entry, entry(7, BlobKind::Data, 100));
    }
}
