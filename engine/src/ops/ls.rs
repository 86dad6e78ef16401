//! Listing a snapshot's tree, and finding a path in it, through the one
//! tree walker.

use crate::error::{Error, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::tree::{Node, NodeKind};
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::session::{Reads, Session};
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// A node and its full path in the snapshot.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Absolute path inside the snapshot (lossy UTF-8 for display).
    pub path: String,
    /// The node.
    pub node: Node,
}

/// Splits a snapshot path into components.
pub fn split(path: &str) -> Vec<&[u8]> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| c.as_bytes())
        .collect()
}

/// The node at `path`; `None` for the root itself.
pub fn find<L: Locator>(
    reader: &BlobReader<L>,
    root: &BlobId,
    snapshot: &SnapshotId,
    path: &str,
) -> Result<Option<Node>> {
    let parts = split(path);
    if parts.is_empty() {
        return Ok(None);
    }
    reader
        .find(root, &parts, &format!("snapshot {}", snapshot.short()))?
        .map(Some)
        .ok_or_else(|| Error::NotInSnapshot {
            path: path.to_string(),
            snapshot: snapshot.short(),
        })
}

/// Every node at and below `path` (depth-first, sorted), calling `f` for
/// each; with `recursive` false, only `path` and what is directly in it.
pub fn walk<A: Reads>(
    session: &Session<A>,
    root: &BlobId,
    snapshot: &SnapshotId,
    path: &str,
    recursive: bool,
    f: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<()> {
    let reader = session.reader();
    let base = TreePath::parse(path);
    let start = match find(&reader, root, snapshot, path)? {
        None => *root,
        Some(n) if n.kind == NodeKind::Dir => {
            let sub = n.subtree();
            f(Entry {
                path: base.to_string(),
                node: n,
            })?;
            match sub {
                Some(s) => s,
                None => return Ok(()),
            }
        }
        Some(n) => {
            return f(Entry {
                path: base.to_string(),
                node: n,
            });
        }
    };
    let mut v = Lister { recursive, f };
    tree_walk::walk(&reader, &start, &base, &mut v)
}

struct Lister<'a> {
    recursive: bool,
    f: &'a mut dyn FnMut(Entry) -> Result<()>,
}

impl Visitor for Lister<'_> {
    fn node(&mut self, path: &TreePath, node: &Node) -> Result<Step> {
        (self.f)(Entry {
            path: path.to_string(),
            node: node.clone(),
        })?;
        Ok(if self.recursive {
            Step::Descend
        } else {
            Step::Skip
        })
    }
}
