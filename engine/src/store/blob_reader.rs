//! The one blob reader: where a blob's copies are (a [`Locator`]: the
//! local catalog, or the repository's own index through a filter), its
//! sealed bytes from the pack, then authentication, decompression and id
//! verification ([`BlobReader::open`], the one place a copy is opened).
//! A copy that is missing or damaged is passed over for the next one; a
//! store that fails to answer stops the read (it is not damage).
//!
//! Used for trees (backup parents, ls, restore planning, check, repair,
//! prune) and for `dump`. Restore's bulk data path fetches coalesced
//! ranges itself and opens each blob in them with [`BlobReader::open`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId};
use crate::format::layout::ObjectKey;
use crate::format::pack::{self, BlobKind, PackEntry};
use crate::format::tree::{Node, Tree};
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// Trees kept decoded in memory: at most this many...
const TREE_CACHE: usize = 8192;
/// ...holding at most this many bytes of plaintext (a decoded tree takes
/// about as much). A tree of more than a quarter of it is not kept: a
/// directory of a few large files with small chunks can be megabytes of
/// extents, and a cache bounded by count alone grew with the repository
/// (260 MB of prune's peak at 10M blobs).
const TREE_CACHE_BYTES: usize = 32 << 20;
/// A tree is read with this much of its pack before it and
/// [`WINDOW_AFTER`] after it, and the window is kept: a directory's tree is
/// stored just after its subdirectories' trees, which a walk reads next.
/// Reading trees one ranged read at a time cost more than decoding them
/// on a tree of many small directories.
const WINDOW_BEFORE: u64 = 768 << 10;
const WINDOW_AFTER: u64 = 256 << 10;
/// Windows kept (at most 1 MiB each).
const WINDOWS: usize = 4;

/// Where one copy of a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// That pack's size in bytes, as indexed.
    pub pack_size: u64,
    /// Its entry in that pack.
    pub entry: PackEntry,
}

/// Where the copies of blobs are.
pub trait Locator: Send + Sync {
    /// Every known copy of the blob of `kind` named `id`, the preferred
    /// first; empty when there is none. (A data blob and a tree blob may
    /// have the same id: ids are keyed hashes of the plaintext.)
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>>;
}

impl Locator for Catalog {
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        self.locations(kind, id)
    }
}

impl<L: Locator + ?Sized> Locator for Arc<L> {
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        (**self).copies(kind, id)
    }
}

impl<L: Locator + ?Sized> Locator for &L {
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        (**self).copies(kind, id)
    }
}

/// A stretch of a tree pack read ahead.
struct Window {
    pack: PackId,
    start: u64,
    bytes: Bytes,
}

/// Decoded trees, bounded by count and by bytes; emptied when full (a
/// walk's next trees are mostly new ones, and shared subtrees are found
/// again soon after).
#[derive(Default)]
struct TreeCache {
    trees: HashMap<BlobId, Arc<Tree>>,
    bytes: usize,
}

impl TreeCache {
    fn keep(&mut self, id: BlobId, tree: &Arc<Tree>, bytes: usize) {
        if bytes > TREE_CACHE_BYTES / 4 {
            return;
        }
        if self.trees.len() >= TREE_CACHE || self.bytes + bytes > TREE_CACHE_BYTES {
            self.trees.clear();
            self.bytes = 0;
        }
        if self.trees.insert(id, tree.clone()).is_none() {
            self.bytes += bytes;
        }
    }
}

/// Reads and verifies blobs; caches decoded trees and windows of tree
/// packs. Memory: at most `TREE_CACHE` decoded trees of
/// `TREE_CACHE_BYTES` in all, and `WINDOWS` MiB.
pub struct BlobReader<L = Arc<Catalog>> {
    repo: Repository,
    locator: L,
    trees: Mutex<TreeCache>,
    windows: Mutex<VecDeque<Window>>,
}

impl<L: Locator> BlobReader<L> {
    /// A reader over `repo` that finds copies through `locator`.
    pub fn new(repo: Repository, locator: L) -> Self {
        Self {
            repo,
            locator,
            trees: Mutex::new(TreeCache::default()),
            windows: Mutex::new(VecDeque::with_capacity(WINDOWS)),
        }
    }

    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// Where it finds copies.
    pub fn locator(&self) -> &L {
        &self.locator
    }

    /// Where the preferred copy of a blob is; an error naming `needed_by`
    /// if it has none.
    pub fn locate(
        &self,
        kind: BlobKind,
        id: &BlobId,
        needed_by: &dyn Fn() -> String,
    ) -> Result<BlobLocation> {
        self.locator
            .copies(kind, id)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::MissingBlob {
                blob: id.to_hex(),
                needed_by: needed_by(),
            })
    }

    /// Opens one sealed copy read from its pack: authenticates, decompresses
    /// and checks the id; the error names the blob, its pack and who needs it.
    pub fn open(
        &self,
        loc: &BlobLocation,
        sealed: &[u8],
        needed_by: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        pack::open_blob(self.repo.key(), &loc.entry, sealed).map_err(|e| {
            Error::damaged(
                format!("blob {} in pack {}", loc.entry.id, loc.pack),
                format!("{e} (needed by {})", needed_by()),
            )
        })
    }

    /// Reads one blob's plaintext, verified, from the first copy that
    /// reads and verifies.
    pub fn read(
        &self,
        id: &BlobId,
        kind: BlobKind,
        needed_by: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let copies = self.locator.copies(kind, id)?;
        if copies.is_empty() {
            return Err(Error::MissingBlob {
                blob: id.to_hex(),
                needed_by: needed_by(),
            });
        }
        let mut failures: Vec<Error> = vec![];
        for loc in &copies {
            let sealed = match self.sealed(kind, loc) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    failures.push(Error::damaged(
                        format!("blob {id} in pack {}", loc.pack),
                        format!("the pack is missing (needed by {})", needed_by()),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self.open(loc, &sealed, needed_by) {
                Ok(plain) => return Ok(plain),
                Err(e) => failures.push(e),
            }
        }
        if failures.len() == 1 {
            return Err(failures.pop().expect("one failure"));
        }
        Err(Error::damaged(
            format!("blob {id}"),
            format!(
                "none of its {} copies is intact: {}",
                failures.len(),
                failures
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }

    /// A copy's sealed bytes: trees through the windows, data exactly.
    fn sealed(&self, kind: BlobKind, loc: &BlobLocation) -> Result<Bytes> {
        match kind {
            BlobKind::Tree => self.tree_bytes(loc),
            BlobKind::Data => self
                .repo
                .backend()
                .get_range(&ObjectKey::of(loc.pack), loc.entry.range()),
        }
    }

    /// A tree blob's sealed bytes, from a kept window of its pack or from
    /// a new window read around it. (The bytes are authenticated by the
    /// caller like any others: a window only saves round trips.)
    fn tree_bytes(&self, loc: &BlobLocation) -> Result<Bytes> {
        let r = loc.entry.range();
        let inside = |w: &Window| {
            w.pack == loc.pack && r.start >= w.start && r.end <= w.start + w.bytes.len() as u64
        };
        if let Some(w) = self.windows.lock().unwrap().iter().find(|w| inside(w)) {
            let at = (r.start - w.start) as usize;
            return Ok(w.bytes.slice(at..at + loc.entry.length as usize));
        }
        let start = r.start.saturating_sub(WINDOW_BEFORE);
        let end = (r.end + WINDOW_AFTER).min(loc.pack_size).max(r.end);
        let key = ObjectKey::of(loc.pack);
        let bytes = match self.repo.backend().get_range(&key, start..end) {
            Ok(b) if b.len() as u64 == end - start => b,
            // A pack shorter than indexed (damaged) may still hold this
            // blob: read exactly it, as without a window.
            _ => return self.repo.backend().get_range(&key, r),
        };
        let at = (r.start - start) as usize;
        let blob = bytes.slice(at..at + loc.entry.length as usize);
        let mut ws = self.windows.lock().unwrap();
        if ws.len() >= WINDOWS {
            ws.pop_front();
        }
        ws.push_back(Window {
            pack: loc.pack,
            start,
            bytes,
        });
        Ok(blob)
    }

    /// Loads and decodes a tree blob.
    pub fn tree(&self, id: &BlobId, needed_by: &dyn Fn() -> String) -> Result<Arc<Tree>> {
        if let Some(t) = self.trees.lock().unwrap().trees.get(id) {
            return Ok(t.clone());
        }
        let plain = self.read(id, BlobKind::Tree, needed_by)?;
        let tree = Arc::new(Tree::decode(&plain).map_err(|e| match e {
            crate::format::DecodeError::Malformed(why) => Error::damaged(
                format!("tree {id}"),
                format!("{why} (needed by {})", needed_by()),
            ),
            e => Error::decode(format!("{id}"), e),
        })?);
        self.trees.lock().unwrap().keep(*id, &tree, plain.len());
        Ok(tree)
    }

    /// Finds the node at `path` (components) below the tree `root`.
    /// An empty path has no node; callers treat it as the root itself.
    pub fn find(&self, root: &BlobId, path: &[&[u8]], context: &str) -> Result<Option<Node>> {
        let mut tree = self.tree(root, &|| context.to_string())?;
        for (i, comp) in path.iter().enumerate() {
            let Some(node) = tree.get(comp).cloned() else {
                return Ok(None);
            };
            if i + 1 == path.len() {
                return Ok(Some(node));
            }
            match node.subtree() {
                Some(sub) => tree = self.tree(&sub, &|| context.to_string())?,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tree_cache_tests {
    use super::*;

    #[test]
    fn the_tree_cache_is_bounded_by_bytes_as_well_as_by_count() {
        let mut c = TreeCache::default();
        let t = Arc::new(Tree { nodes: vec![] });
        let id = |i: u32| BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes());
        // a tree of more than a quarter of the budget is never kept
        c.keep(id(0), &t, TREE_CACHE_BYTES / 4 + 1);
        assert!(c.trees.is_empty());
        // trees of a fifth each: the fifth one empties the cache first
        for i in 1..=4 {
            c.keep(id(i), &t, TREE_CACHE_BYTES / 5);
        }
        assert_eq!(c.trees.len(), 4);
        c.keep(id(5), &t, TREE_CACHE_BYTES / 5);
        assert!(c.bytes <= TREE_CACHE_BYTES);
        assert!(c.trees.contains_key(&id(5)));
        // the same tree twice counts once
        c.keep(id(5), &t, TREE_CACHE_BYTES / 5);
        assert_eq!((c.trees.len(), c.bytes), (1, TREE_CACHE_BYTES / 5));
        // and the count bound holds for small trees
        for i in 0..(TREE_CACHE as u32 + 10) {
            c.keep(id(100 + i), &t, 10);
        }
        assert!(c.trees.len() <= TREE_CACHE);
    }
}
