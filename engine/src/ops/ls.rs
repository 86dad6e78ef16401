//! Listing a snapshot's tree, and finding a path in it.

use crate::error::{Error, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::tree::{Node, NodeKind};
use crate::store::blob_reader::BlobReader;

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
pub fn find(
    reader: &BlobReader,
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

/// Every node at and below `path` (depth-first, sorted), calling `f` for each.
pub fn walk(
    reader: &BlobReader,
    root: &BlobId,
    snapshot: &SnapshotId,
    path: &str,
    recursive: bool,
    f: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<()> {
    let base = format!(
        "/{}",
        split(path)
            .iter()
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join("/")
    );
    let start = match find(reader, root, snapshot, path)? {
        None => *root,
        Some(n) if n.kind == NodeKind::Dir => {
            let sub = n.subtree();
            f(Entry {
                path: base.clone(),
                node: n,
            })?;
            match sub {
                Some(s) => s,
                None => return Ok(()),
            }
        }
        Some(n) => {
            return f(Entry {
                path: base,
                node: n,
            });
        }
    };
    walk_tree(reader, &start, &base, recursive, f)
}

fn walk_tree(
    reader: &BlobReader,
    tree: &BlobId,
    dir: &str,
    recursive: bool,
    f: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<()> {
    let t = reader.tree(tree, &|| format!("directory {dir}"))?;
    for n in &t.nodes {
        let path = if dir == "/" {
            format!("/{}", n.display_name())
        } else {
            format!("{dir}/{}", n.display_name())
        };
        let sub = n.subtree();
        f(Entry {
            path: path.clone(),
            node: n.clone(),
        })?;
        if recursive && let Some(s) = sub {
            walk_tree(reader, &s, &path, recursive, f)?;
        }
    }
    Ok(())
}
