//! The restore plan: a plain value computed before anything is written.
//!
//! Which directories, files, links and special files to create where, and
//! where the preferred copy of every data blob they need is (one catalog
//! probe per distinct blob). It does not look at the target: which extents
//! are already in place there is the executor's business, and the reads
//! for the rest come from [`reads`], a pure function of the plan.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId, SnapshotId};
use crate::format::pack::{BlobKind, PackEntry};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind};
use crate::store::blob_reader::{BlobLocation, BlobReader, Locator};
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// Blobs closer than this in a pack are fetched in one read.
const COALESCE_GAP: u64 = 256 << 10;
/// The longest single ranged read.
const MAX_RANGE: u64 = 8 << 20;

/// Everything a restore will create, and where the data comes from.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    /// The snapshot restored.
    pub snapshot: SnapshotId,
    /// Directories, parents first.
    pub dirs: Vec<(PathBuf, Node)>,
    /// Regular files.
    pub files: Vec<(PathBuf, Node)>,
    /// Symlinks, devices, FIFOs, sockets.
    pub others: Vec<(PathBuf, Node)>,
    /// Hard links: (path, index in `files` of the file it links to).
    pub links: Vec<(PathBuf, usize)>,
    /// The preferred copy of every data blob the files need.
    pub locations: HashMap<BlobId, BlobLocation>,
    /// Data blobs with no indexed copy, and why: the files that need them
    /// cannot be restored (the others are).
    pub missing: HashMap<BlobId, String>,
}

/// What a plan amounts to (what `restore --dry-run` prints).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Regular files to restore.
    pub files: usize,
    /// Their logical bytes.
    pub bytes: u64,
    /// Directories.
    pub dirs: usize,
    /// Symlinks, devices, FIFOs, sockets and hard links.
    pub others: usize,
    /// Distinct data blobs needed.
    pub blobs: usize,
    /// Packs they are in.
    pub packs: usize,
    /// Bytes to fetch, if nothing is in place on the target yet.
    pub bytes_to_fetch: u64,
    /// Data blobs with no indexed copy.
    pub missing_blobs: usize,
    /// Files that need a missing blob.
    pub files_incomplete: usize,
}

impl RestorePlan {
    /// The figures of the plan.
    pub fn summary(&self) -> PlanSummary {
        let packs: std::collections::HashSet<PackId> =
            self.locations.values().map(|l| l.pack).collect();
        PlanSummary {
            snapshot: self.snapshot,
            files: self.files.len(),
            bytes: self.files.iter().map(|(_, n)| n.size).sum(),
            dirs: self.dirs.len(),
            others: self.others.len() + self.links.len(),
            blobs: self.locations.len(),
            packs: packs.len(),
            bytes_to_fetch: self.locations.values().map(|l| l.entry.length as u64).sum(),
            missing_blobs: self.missing.len(),
            files_incomplete: self
                .files
                .iter()
                .filter(|(_, n)| {
                    n.extents()
                        .iter()
                        .any(|e| self.missing.contains_key(&e.blob))
                })
                .count(),
        }
    }
}

/// A blob and every (file index, offset) it is written to.
pub(super) type BlobTargets = (PackEntry, Vec<(usize, u64)>);

/// One ranged read of a pack: the blobs in it, each with every (file
/// index, offset) it is written to.
#[derive(Debug, Clone)]
pub(super) struct RangeRead {
    pub(super) pack: PackId,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) blobs: Vec<BlobTargets>,
}

/// Plans the restore of `snapshot` (whose id is `id`) into `target`: the
/// whole snapshot, or only `include` (snapshot paths, as `ls` shows them)
/// and what is below them, with their ancestors. An include that matches
/// nothing is an error naming it.
pub fn plan<L: Locator>(
    reader: &BlobReader<L>,
    id: &SnapshotId,
    snapshot: &Snapshot,
    include: &[String],
    target: &std::path::Path,
) -> Result<RestorePlan> {
    let mut v = Planner {
        target: target.to_path_buf(),
        includes: include.iter().map(|p| TreePath::parse(p)).collect(),
        matched: vec![false; include.len()],
        hardlinks: HashMap::new(),
        plan: RestorePlan {
            snapshot: *id,
            dirs: vec![],
            files: vec![],
            others: vec![],
            links: vec![],
            locations: HashMap::new(),
            missing: HashMap::new(),
        },
    };
    tree_walk::walk(reader, &snapshot.tree, &TreePath::root(), &mut v)?;
    if let Some(i) = v.matched.iter().position(|m| !m) {
        return Err(Error::NotInSnapshot {
            path: include[i].clone(),
            snapshot: id.short(),
        });
    }
    let mut plan = v.plan;
    for (_, node) in &plan.files {
        for e in node.extents() {
            if plan.locations.contains_key(&e.blob) || plan.missing.contains_key(&e.blob) {
                continue;
            }
            match reader.locator().copies(BlobKind::Data, &e.blob) {
                Ok(copies) if !copies.is_empty() => {
                    plan.locations.insert(e.blob, copies[0]);
                }
                Ok(_) => {
                    plan.missing.insert(
                        e.blob,
                        format!("blob {} is not in the index (run `arca check`)", e.blob),
                    );
                }
                Err(err) => {
                    plan.missing.insert(e.blob, err.to_string());
                }
            }
        }
    }
    Ok(plan)
}

/// Collects the plan while the walker goes through the snapshot.
struct Planner {
    target: PathBuf,
    includes: Vec<TreePath>,
    matched: Vec<bool>,
    /// (device, inode) of a file with several links -> its index in `files`.
    hardlinks: HashMap<(u64, u64), usize>,
    plan: RestorePlan,
}

impl Visitor for Planner {
    fn node(&mut self, path: &TreePath, node: &Node) -> Result<Step> {
        // restored if it is at or below an include, or an ancestor of one
        // (created so that the include has somewhere to go)
        let below: Vec<usize> = (0..self.includes.len())
            .filter(|&i| path.starts_with(&self.includes[i]))
            .collect();
        let ancestor = self.includes.iter().any(|inc| inc.starts_with(path));
        if !self.includes.is_empty() && below.is_empty() && !ancestor {
            return Ok(Step::Skip);
        }
        for i in below {
            self.matched[i] = true;
        }
        let to = path.under(&self.target);
        match node.kind {
            NodeKind::Dir => {
                self.plan.dirs.push((to, node.clone()));
                return Ok(Step::Descend);
            }
            NodeKind::File => {
                let key = (node.device, node.inode);
                if node.nlink > 1
                    && let Some(&first) = self.hardlinks.get(&key)
                {
                    self.plan.links.push((to, first));
                    return Ok(Step::Skip);
                }
                if node.nlink > 1 {
                    self.hardlinks.insert(key, self.plan.files.len());
                }
                self.plan.files.push((to, node.clone()));
            }
            _ => self.plan.others.push((to, node.clone())),
        }
        Ok(Step::Skip)
    }
}

/// The ranged reads for every extent for which `needed(file, extent)`
/// holds and whose blob has a location, grouped by pack in pack order,
/// neighbours coalesced (so each needed pack range is fetched once).
pub(super) fn reads(plan: &RestorePlan, needed: &dyn Fn(usize, usize) -> bool) -> Vec<RangeRead> {
    // blob -> every (file, offset) it goes to
    let mut needs: HashMap<BlobId, Vec<(usize, u64)>> = HashMap::new();
    for (idx, (_, node)) in plan.files.iter().enumerate() {
        for (i, e) in node.extents().iter().enumerate() {
            if needed(idx, i) && plan.locations.contains_key(&e.blob) {
                needs.entry(e.blob).or_default().push((idx, e.offset));
            }
        }
    }
    let mut by_pack: BTreeMap<PackId, Vec<BlobTargets>> = BTreeMap::new();
    for (blob, targets) in needs {
        let loc = plan.locations[&blob];
        by_pack
            .entry(loc.pack)
            .or_default()
            .push((loc.entry, targets));
    }
    let mut out = vec![];
    for (pack, mut blobs) in by_pack {
        blobs.sort_by_key(|(e, _)| e.offset);
        let mut cur: Option<RangeRead> = None;
        for (e, t) in blobs {
            let r = e.range();
            match cur.as_mut() {
                Some(c) if r.start <= c.end + COALESCE_GAP && r.end - c.start <= MAX_RANGE => {
                    c.end = c.end.max(r.end);
                    c.blobs.push((e, t));
                }
                _ => {
                    if let Some(c) = cur.take() {
                        out.push(c);
                    }
                    cur = Some(RangeRead {
                        pack,
                        start: r.start,
                        end: r.end,
                        blobs: vec![(e, t)],
                    });
                }
            }
        }
        out.extend(cur);
    }
    out
}
