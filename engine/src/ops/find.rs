//! Find: the paths matching patterns, in every selected snapshot.
//!
//! Each snapshot's tree is walked whole with the one tree walker (a
//! pattern with a `/` matches the full path, so a subtree's matches depend
//! on where it is): the cost is the sum of the selected snapshots' tree
//! sizes; select fewer with the filters.

use crate::error::Result;
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Node;
use crate::ops::patterns::Patterns;
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// Calls `f(snapshot id, snapshot, path, node)` for every node of every
/// snapshot in `snapshots` (in the order given) whose path matches
/// `patterns`. Returns how many matched.
pub fn find<L: Locator>(
    reader: &BlobReader<L>,
    snapshots: &[(SnapshotId, Snapshot)],
    patterns: &Patterns,
    f: &mut dyn FnMut(&SnapshotId, &Snapshot, &str, &Node) -> Result<()>,
) -> Result<u64> {
    struct Matcher<'a> {
        patterns: &'a Patterns,
        id: &'a SnapshotId,
        snap: &'a Snapshot,
        found: u64,
        f: &'a mut dyn FnMut(&SnapshotId, &Snapshot, &str, &Node) -> Result<()>,
    }
    impl Visitor for Matcher<'_> {
        fn node(&mut self, path: &TreePath, node: &Node) -> Result<Step> {
            let p = path.to_string();
            if self.patterns.matches(std::path::Path::new(&p)) {
                self.found += 1;
                (self.f)(self.id, self.snap, &p, node)?;
            }
            Ok(Step::Descend)
        }
    }
    let mut found = 0;
    for (id, snap) in snapshots {
        let mut m = Matcher {
            patterns,
            id,
            snap,
            found: 0,
            f: &mut *f,
        };
        tree_walk::walk(reader, &snap.tree, &TreePath::root(), &mut m)?;
        found += m.found;
    }
    Ok(found)
}
