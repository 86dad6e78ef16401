//! The one tree walker: every way of going through a snapshot's trees.
//!
//! - [`walk`]: depth-first, parents before children, names in order (the
//!   order trees store them in). A [`Visitor`] sees each tree before it is
//!   read (and may skip it: a tree seen before, a subtree that does not
//!   matter) and each node; it chooses what to do with a tree that cannot
//!   be read. `ls`, restore planning, check's naming of affected files and
//!   prune's used-blob set walk this way.
//! - [`fold`]: bottom-up, memoised by tree id: a value per tree computed
//!   from the tree and its subdirectories' values (each distinct tree once,
//!   across any number of roots). Check's "does anything below need lost
//!   data" and repair's rewriting of trees fold this way.
//!
//! Both keep an explicit stack (a tree thousands of directories deep needs
//! no deep call stack) and read trees through the one
//! [`BlobReader`](super::blob_reader::BlobReader). Memory: the stack (one
//! decoded tree per level), plus the fold's memo (one value per distinct
//! tree).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::id::BlobId;
use crate::format::tree::{Node, Tree};
use crate::store::blob_reader::{BlobReader, Locator};

/// A path inside a snapshot: its raw name components (names are bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreePath(Vec<Vec<u8>>);

impl TreePath {
    /// The root.
    pub fn root() -> Self {
        Self::default()
    }

    /// A path from `/a/b` (empty and `.` components are dropped).
    pub fn parse(s: &str) -> Self {
        Self(
            s.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(|c| c.as_bytes().to_vec())
                .collect(),
        )
    }

    /// The components.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path with `name` appended.
    pub fn child(&self, name: &[u8]) -> Self {
        let mut c = self.0.clone();
        c.push(name.to_vec());
        Self(c)
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &TreePath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// The path below `base`: `base.join(self)` on the local filesystem.
    pub fn under(&self, base: &Path) -> PathBuf {
        let mut p = base.to_path_buf();
        for c in &self.0 {
            p.push(OsStr::from_bytes(c));
        }
        p
    }
}

impl std::fmt::Display for TreePath {
    /// `/a/b` (lossy UTF-8), `/` for the root.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for c in &self.0 {
            write!(f, "/{}", String::from_utf8_lossy(c))?;
        }
        Ok(())
    }
}

/// Whether to go into a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read it and visit what it holds.
    Descend,
    /// Leave it out.
    Skip,
}

/// What a [`walk`] calls.
pub trait Visitor {
    /// Before tree `id` (the directory at `path`) is read; `Skip` leaves it
    /// out. Called for the root too.
    fn tree(&mut self, _path: &TreePath, _id: &BlobId) -> Result<Step> {
        Ok(Step::Descend)
    }

    /// Every node, parents before children; `Skip` on a directory leaves
    /// its subtree out.
    fn node(&mut self, path: &TreePath, node: &Node) -> Result<Step>;

    /// A tree that cannot be read (lost, damaged). The default stops the
    /// walk with the error; a visitor that reports damage notes it and
    /// returns `Ok` to go on.
    fn unreadable(&mut self, _path: &TreePath, _id: &BlobId, error: Error) -> Result<()> {
        Err(error)
    }
}

/// Walks the tree `root`, found at `at` in its snapshot, depth-first.
pub fn walk<L: Locator>(
    reader: &BlobReader<L>,
    root: &BlobId,
    at: &TreePath,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    // (tree, its path, the next node to visit)
    let mut stack: Vec<(Arc<Tree>, TreePath, usize)> = vec![];
    let enter = |id: &BlobId,
                 path: TreePath,
                 stack: &mut Vec<(Arc<Tree>, TreePath, usize)>,
                 visitor: &mut dyn Visitor|
     -> Result<()> {
        if visitor.tree(&path, id)? == Step::Skip {
            return Ok(());
        }
        match reader.tree(id, &|| format!("directory {path}")) {
            Ok(t) => stack.push((t, path, 0)),
            Err(e) => visitor.unreadable(&path, id, e)?,
        }
        Ok(())
    };
    enter(root, at.clone(), &mut stack, visitor)?;
    loop {
        let (tree, idx, child) = {
            let Some((tree, path, i)) = stack.last_mut() else {
                return Ok(());
            };
            if *i >= tree.nodes.len() {
                stack.pop();
                continue;
            }
            *i += 1;
            (tree.clone(), *i - 1, path.child(&tree.nodes[*i - 1].name))
        };
        let node = &tree.nodes[idx];
        if visitor.node(&child, node)? == Step::Descend
            && let Some(sub) = node.subtree()
        {
            enter(&sub, child, &mut stack, visitor)?;
        }
    }
}

/// What [`fold`] calls for each tree: its id, the tree (or why it could not
/// be read), and for each of its nodes the value of its subtree (`None` for
/// a node that is not a directory).
pub type Combine<'a, R> = dyn FnMut(&BlobId, Result<Arc<Tree>>, Vec<Option<&R>>) -> Result<R> + 'a;

/// Computes a value for the tree `root` and every tree below it,
/// bottom-up: `combine(id, tree, values of its subdirectories)`. Values
/// are memoised in `memo` by tree id, so a tree shared by many snapshots
/// (or directories) is read and combined once; pass the same memo for
/// several roots. An unreadable tree is combined with its error (and no
/// children): `combine` decides what it means.
pub fn fold<L: Locator, R>(
    reader: &BlobReader<L>,
    root: &BlobId,
    memo: &mut HashMap<BlobId, R>,
    combine: &mut Combine<'_, R>,
) -> Result<()> {
    if memo.contains_key(root) {
        return Ok(());
    }
    // (tree id, the tree or why not, the next node whose subtree to do)
    let mut stack: Vec<(BlobId, Result<Arc<Tree>>, usize)> = vec![];
    let read = |id: &BlobId| reader.tree(id, &|| format!("tree {id}"));
    stack.push((*root, read(root), 0));
    loop {
        // the next subdirectory of the top tree that has no value yet
        let next = {
            let Some((_, tree, i)) = stack.last_mut() else {
                return Ok(());
            };
            match tree {
                Ok(t) => {
                    let k = t.nodes[*i..]
                        .iter()
                        .position(|n| n.subtree().is_some_and(|s| !memo.contains_key(&s)));
                    k.map(|k| {
                        *i += k + 1;
                        t.nodes[*i - 1].subtree().expect("a subdirectory")
                    })
                }
                Err(_) => None,
            }
        };
        if let Some(sub) = next {
            // a tree that (corruptly) contains itself further up
            if stack.iter().any(|(s, _, _)| *s == sub) {
                let e = Error::damaged(format!("tree {sub}"), "it contains itself");
                let v = combine(&sub, Err(e), vec![])?;
                memo.insert(sub, v);
                continue;
            }
            stack.push((sub, read(&sub), 0));
            continue;
        }
        let (id, tree, _) = stack.pop().expect("a frame");
        let children: Vec<Option<&R>> = match &tree {
            Ok(t) => t
                .nodes
                .iter()
                .map(|n| n.subtree().and_then(|s| memo.get(&s)))
                .collect(),
            Err(_) => vec![],
        };
        let v = combine(&id, tree, children)?;
        memo.insert(id, v);
    }
}
