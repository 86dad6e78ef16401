//! Reading blobs back: location from the catalog, bytes from the pack,
//! then authentication, decompression and id verification.
//!
//! Used for trees (backup parents, ls, restore planning) and for `dump`.
//! Bulk data restore plans its own pack reads (see `restore`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{ObjectKey, ObjectKind};
use crate::catalog::{BlobLocation, Catalog};
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::pack::{self, BlobKind};
use crate::repo::Repository;
use crate::tree::{Node, Tree};

/// Trees kept decoded in memory.
const TREE_CACHE: usize = 8192;

/// Reads and verifies blobs; caches decoded trees.
pub struct BlobReader {
    repo: Repository,
    catalog: Arc<Catalog>,
    trees: Mutex<HashMap<BlobId, Arc<Tree>>>,
}

impl BlobReader {
    /// A reader over `repo` using `catalog` for locations.
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> Self {
        Self {
            repo,
            catalog,
            trees: Mutex::new(HashMap::new()),
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
        let key = ObjectKey::new(ObjectKind::Pack, loc.pack.0);
        let sealed = self.repo.backend().get_range(&key, loc.entry.range())?;
        pack::open_blob(self.repo.key(), &loc.entry, &sealed).map_err(|e| {
            Error::damaged(
                format!("blob {} in pack {}", id, loc.pack),
                format!("{e} (needed by {})", needed_by()),
            )
        })
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
