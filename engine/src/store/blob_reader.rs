//! Reading blobs back: location from the catalog, bytes from the pack,
//! then authentication, decompression and id verification.
//!
//! Used for trees (backup parents, ls, restore planning) and for `dump`.
//! Bulk data restore plans its own pack reads (see `restore`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId};
use crate::format::pack::{self, BlobKind};
use crate::format::tree::{Node, Tree};
use crate::store::backend::{ObjectKey, ObjectKind};
use crate::store::catalog::{BlobLocation, Catalog};
use crate::store::repo::Repository;

/// Trees kept decoded in memory.
const TREE_CACHE: usize = 8192;
/// A tree is read with this much of its pack before it and
/// [`WINDOW_AFTER`] after it, and the window is kept: a directory's tree is
/// stored just after its subdirectories' trees, which a walk reads next.
/// Reading trees one ranged read at a time cost more than decoding them
/// on a tree of many small directories.
const WINDOW_BEFORE: u64 = 768 << 10;
const WINDOW_AFTER: u64 = 256 << 10;
/// Windows kept (at most 1 MiB each).
const WINDOWS: usize = 4;

/// A stretch of a tree pack read ahead.
struct Window {
    pack: PackId,
    start: u64,
    bytes: Bytes,
}

/// Reads and verifies blobs; caches decoded trees and windows of tree
/// packs. Memory: at most `TREE_CACHE` decoded trees and `WINDOWS` MiB.
pub struct BlobReader {
    repo: Repository,
    catalog: Arc<Catalog>,
    trees: Mutex<HashMap<BlobId, Arc<Tree>>>,
    windows: Mutex<VecDeque<Window>>,
}

impl BlobReader {
    /// A reader over `repo` using `catalog` for locations.
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> Self {
        Self {
            repo,
            catalog,
            trees: Mutex::new(HashMap::new()),
            windows: Mutex::new(VecDeque::with_capacity(WINDOWS)),
        }
    }

    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Where a blob is; an error naming `needed_by` if it is not indexed.
    pub fn locate(
        &self,
        kind: BlobKind,
        id: &BlobId,
        needed_by: &dyn Fn() -> String,
    ) -> Result<BlobLocation> {
        self.catalog
            .lookup(kind, id)?
            .ok_or_else(|| Error::MissingBlob {
                blob: id.to_hex(),
                needed_by: needed_by(),
            })
    }

    /// Reads one blob's plaintext, verified.
    pub fn read(
        &self,
        id: &BlobId,
        kind: BlobKind,
        needed_by: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let loc = self.locate(kind, id, needed_by)?;
        let sealed = if kind == BlobKind::Tree {
            self.tree_bytes(&loc)?
        } else {
            let key = ObjectKey::new(ObjectKind::Pack, loc.pack.0);
            self.repo.backend().get_range(&key, loc.entry.range())?
        };
        pack::open_blob(self.repo.key(), &loc.entry, &sealed).map_err(|e| {
            Error::damaged(
                format!("blob {} in pack {}", id, loc.pack),
                format!("{e} (needed by {})", needed_by()),
            )
        })
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
        let key = ObjectKey::new(ObjectKind::Pack, loc.pack.0);
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
        if let Some(t) = self.trees.lock().unwrap().get(id) {
            return Ok(t.clone());
        }
        let plain = self.read(id, BlobKind::Tree, needed_by)?;
        let tree = Arc::new(Tree::decode(&plain).map_err(|e| {
            Error::damaged(
                format!("tree {id}"),
                format!("{e} (needed by {})", needed_by()),
            )
        })?);
        let mut cache = self.trees.lock().unwrap();
        if cache.len() >= TREE_CACHE {
            cache.clear();
        }
        cache.insert(*id, tree.clone());
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
