//! Diff: what changed between two snapshots, path by path.
//!
//! The two root trees are compared name by name (trees store their nodes
//! sorted); a directory whose subtree id is the same on both sides is the
//! same all the way down and is not read, so the cost is the changed part
//! of the trees, not their size. What is only on one side is listed with
//! everything below it, through the one tree walker.
//!
//! Kinds of change, as restic's `diff` names them: `+` added, `-` removed,
//! `M` content modified (a file's content hash, a symlink's target, a
//! device's number), `U` metadata only (mode, owner, times, xattrs), `T`
//! the type changed (a file became a directory: listed once, as `T`, with
//! what is below the new or old directory as `+` / `-`).

use serde::Serialize;

use crate::error::Result;
use crate::format::id::BlobId;
use crate::format::tree::{Content, Node, NodeKind, Tree};
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Modifier {
    /// Only in the second snapshot.
    #[serde(rename = "+")]
    Added,
    /// Only in the first.
    #[serde(rename = "-")]
    Removed,
    /// Content differs.
    #[serde(rename = "M")]
    Modified,
    /// Same content, other metadata.
    #[serde(rename = "U")]
    Metadata,
    /// Another kind of node.
    #[serde(rename = "T")]
    Type,
}

impl Modifier {
    /// The one-character code.
    pub fn code(self) -> char {
        match self {
            Self::Added => '+',
            Self::Removed => '-',
            Self::Modified => 'M',
            Self::Metadata => 'U',
            Self::Type => 'T',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The path in the snapshots (lossy UTF-8), `/` for a directory's own
    /// metadata at the root.
    pub path: String,
    /// What happened.
    pub modifier: Modifier,
    /// The node's kind on the side that has it (the second, for `T`).
    pub kind: NodeKind,
    /// A file's size in the first snapshot (absent where it is not there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_before: Option<u64>,
    /// In the second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_after: Option<u64>,
}

/// Counts and bytes per kind of change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffStats {
    /// Paths added (files, directories, links, others).
    pub added: u64,
    /// Paths removed.
    pub removed: u64,
    /// Files (links, devices) whose content changed.
    pub modified: u64,
    /// Paths whose metadata alone changed.
    pub metadata_only: u64,
    /// Paths whose type changed.
    pub type_changed: u64,
    /// Bytes of files added (and of the new side of modified files).
    pub bytes_added: u64,
    /// Bytes of files removed (and of the old side of modified files).
    pub bytes_removed: u64,
}

/// Compares the trees `a` and `b` (roots of two snapshots), calling `f`
/// with every change in path order; returns the totals.
pub fn diff<L: Locator>(
    reader: &BlobReader<L>,
    a: &BlobId,
    b: &BlobId,
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<DiffStats> {
    let mut stats = DiffStats::default();
    let mut emit = |c: Change, stats: &mut DiffStats| -> Result<()> {
        match c.modifier {
            Modifier::Added => {
                stats.added += 1;
                stats.bytes_added += c.size_after.unwrap_or(0);
            }
            Modifier::Removed => {
                stats.removed += 1;
                stats.bytes_removed += c.size_before.unwrap_or(0);
            }
            Modifier::Modified => {
                stats.modified += 1;
                stats.bytes_added += c.size_after.unwrap_or(0);
                stats.bytes_removed += c.size_before.unwrap_or(0);
            }
            Modifier::Metadata => stats.metadata_only += 1,
            Modifier::Type => {
                stats.type_changed += 1;
                stats.bytes_added += c.size_after.unwrap_or(0);
                stats.bytes_removed += c.size_before.unwrap_or(0);
            }
        }
        f(c)
    };
    // Depth-first with an explicit stack: each frame is two trees that
    // differ, their path, their nodes paired by name, and the next pair.
    struct Frame {
        x: std::sync::Arc<Tree>,
        y: std::sync::Arc<Tree>,
        path: TreePath,
        pairs: Vec<(Option<usize>, Option<usize>)>,
        next: usize,
    }
    let open = |ta: &BlobId, tb: &BlobId, path: TreePath| -> Result<Frame> {
        let need = || format!("directory {path}");
        let (x, y) = (reader.tree(ta, &need)?, reader.tree(tb, &need)?);
        let pairs = merge(&x, &y);
        Ok(Frame {
            x,
            y,
            path,
            pairs,
            next: 0,
        })
    };
    let mut stack = vec![];
    if a != b {
        stack.push(open(a, b, TreePath::root())?);
    }
    while let Some(top) = stack.last_mut() {
        let Some(&(i, j)) = top.pairs.get(top.next) else {
            stack.pop();
            continue;
        };
        top.next += 1;
        let (x, y) = (top.x.clone(), top.y.clone());
        let (m, n) = (i.map(|i| &x.nodes[i]), j.map(|j| &y.nodes[j]));
        let name = m.or(n).map(|n| n.name.as_slice()).unwrap_or_default();
        let p = top.path.child(name);
        match (m, n) {
            (Some(m), None) => one_side(reader, m, &p, Modifier::Removed, &mut |c| {
                emit(c, &mut stats)
            })?,
            (None, Some(n)) => {
                one_side(reader, n, &p, Modifier::Added, &mut |c| emit(c, &mut stats))?
            }
            (Some(m), Some(n)) if m.kind != n.kind => {
                emit(
                    Change {
                        path: p.to_string(),
                        modifier: Modifier::Type,
                        kind: n.kind,
                        size_before: file_size(m),
                        size_after: file_size(n),
                    },
                    &mut stats,
                )?;
                below(reader, m, &p, Modifier::Removed, &mut |c| {
                    emit(c, &mut stats)
                })?;
                below(reader, n, &p, Modifier::Added, &mut |c| emit(c, &mut stats))?;
            }
            (Some(m), Some(n)) => {
                let modifier = if content_differs(m, n) {
                    Some(Modifier::Modified)
                } else if metadata_differs(m, n) {
                    Some(Modifier::Metadata)
                } else {
                    None
                };
                if let Some(modifier) = modifier {
                    emit(
                        Change {
                            path: p.to_string(),
                            modifier,
                            kind: n.kind,
                            size_before: file_size(m),
                            size_after: file_size(n),
                        },
                        &mut stats,
                    )?;
                }
                if let (Some(sa), Some(sb)) = (m.subtree(), n.subtree())
                    && sa != sb
                {
                    stack.push(open(&sa, &sb, p)?);
                }
            }
            (None, None) => unreachable!("a pair has a side"),
        }
    }
    Ok(stats)
}

/// The nodes of two trees paired by name (indices), in name order.
fn merge(x: &Tree, y: &Tree) -> Vec<(Option<usize>, Option<usize>)> {
    let (mut i, mut j, mut out) = (0, 0, vec![]);
    while i < x.nodes.len() || j < y.nodes.len() {
        let order = match (x.nodes.get(i), y.nodes.get(j)) {
            (Some(a), Some(b)) => a.name.cmp(&b.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Equal => {
                out.push((Some(i), Some(j)));
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                out.push((Some(i), None));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push((None, Some(j)));
                j += 1;
            }
        }
    }
    out
}

fn file_size(n: &Node) -> Option<u64> {
    (n.kind == NodeKind::File).then_some(n.size)
}

fn content_differs(a: &Node, b: &Node) -> bool {
    match (&a.content, &b.content) {
        (Content::File { hash: x, .. }, Content::File { hash: y, .. }) => {
            x != y || a.size != b.size
        }
        _ => a.target != b.target || a.rdev != b.rdev,
    }
}

/// Metadata a user set or a program changed: not ctime, inode, device or
/// link count (they change when a file is merely copied or moved).
fn metadata_differs(a: &Node, b: &Node) -> bool {
    a.mode != b.mode
        || a.uid != b.uid
        || a.gid != b.gid
        || a.user != b.user
        || a.group != b.group
        || a.mtime != b.mtime
        || a.xattrs != b.xattrs
        || a.flags != b.flags
}

/// `n` (found on one side only) and everything below it.
fn one_side<L: Locator>(
    reader: &BlobReader<L>,
    n: &Node,
    path: &TreePath,
    modifier: Modifier,
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    f(side_change(path, n, modifier))?;
    below(reader, n, path, modifier, f)
}

fn side_change(path: &TreePath, n: &Node, modifier: Modifier) -> Change {
    let size = file_size(n);
    Change {
        path: path.to_string(),
        modifier,
        kind: n.kind,
        size_before: if modifier == Modifier::Removed {
            size
        } else {
            None
        },
        size_after: if modifier == Modifier::Added {
            size
        } else {
            None
        },
    }
}

/// Everything below the directory `n` (nothing for other nodes).
fn below<L: Locator>(
    reader: &BlobReader<L>,
    n: &Node,
    path: &TreePath,
    modifier: Modifier,
    f: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    let Some(sub) = n.subtree() else {
        return Ok(());
    };
    struct All<'a> {
        modifier: Modifier,
        f: &'a mut dyn FnMut(Change) -> Result<()>,
    }
    impl Visitor for All<'_> {
        fn node(&mut self, path: &TreePath, node: &Node) -> Result<Step> {
            (self.f)(side_change(path, node, self.modifier))?;
            Ok(Step::Descend)
        }
    }
    tree_walk::walk(reader, &sub, path, &mut All { modifier, f })
}
