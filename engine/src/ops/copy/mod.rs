//! Copy: snapshots from one repository into another that has its own keys
//! and chunker parameters (the off-site or offline copy a recovery plan
//! asks for).
//!
//! Blob ids are keyed hashes, so the same content has another id in the
//! destination. For each snapshot, the source's trees are folded bottom-up
//! (`store::tree_walk::fold`): each data blob a tree's files refer to is
//! read from the source and verified (`store::blob_reader`), its
//! destination id computed under the destination's key, and it is stored
//! through the destination's `store::blob_writer`, which stores it only
//! if the destination does not have it yet; then the tree is rewritten
//! with the destination ids of its files' blobs and of its subtrees and
//! stored the same way. Blobs are copied as they are: files are not
//! chunked again with the destination's chunker parameters (so a copied
//! file dedups against the source's later snapshots copied after it, not
//! against a backup of the same file made into the destination directly).
//!
//! [`plan`] reads the two catalogs only and is what `--dry-run` shows;
//! [`execute`] takes the source held for reading and the destination for
//! writing (`Writes`: a shared lock, beside backups and prunes).
//!
//! Which destination id holds a source blob is kept in `store::id_map`, a
//! cache beside the destination's catalog: a blob mapped by this run or an
//! earlier one whose destination id the destination's catalog still lists
//! is not read from the source again. So a second copy of a new snapshot
//! reads from the source only its new blobs (and its trees, which are
//! always read: they are small, and rewriting them is what proves every
//! blob below is in the destination).
//!
//! Idempotence: a snapshot stands for its `original` if it has one, else
//! for itself. A source snapshot is skipped when a valid destination
//! snapshot stands for the same one with the same time, host, paths and
//! tags (a snapshot a prune's sweep voided is not valid: it is copied
//! again). A copy records the snapshot it stands for as its `original`,
//! so running copy twice copies nothing the second time, and copying back
//! and forth makes no duplicates. Two copies running at once into the same
//! repository may both copy a snapshot.
//!
//! Commit order, per snapshot, as in a backup: its packs and index
//! segments (the writer's `flush`), then, under a destination lock still
//! held, the snapshot, then the handshake with prune
//! (`store::prune_seals::confirm_saved`, which removes the snapshot again
//! if a prune swept what it was based on). A failure stops the run; the
//! snapshots copied before it stay, and the next run copies the rest.
//!
//! Costs: one ranged read from the source per data blob that is not
//! mapped and in the destination, `concurrency` at a time (not coalesced
//! by pack as a restore's reads are); every tree of every copied snapshot
//! read once per run; the skip test is a hash lookup by the snapshot a
//! destination snapshot stands for. Memory: `concurrency` blobs in flight, the blob
//! writer's packs, and the fold's memo of one destination id per distinct
//! source tree, cleared between snapshots beyond `MEMO_MAX` trees.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::compress::CompressionMode;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Content, Tree};
use crate::ops::select::{self, Filter, Selector};
use crate::store::blob_reader::BlobReader;
use crate::store::blob_writer::BlobWriter;
use crate::store::catalog::Catalog;
use crate::store::id_map::IdMap;
use crate::store::lock::LockWatch;
use crate::store::repo::Repository;
use crate::store::session::{Reads, Session, Writes};
use crate::store::tree_walk;

/// Distinct trees whose destination ids are remembered across snapshots
/// (about 100 bytes each).
const MEMO_MAX: usize = 1 << 20;

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Snapshots done (copied or skipped).
    pub snapshots: AtomicU64,
    /// Data blobs read from the source.
    pub blobs_read: AtomicU64,
    /// Their plaintext bytes.
    pub bytes_read: AtomicU64,
}

/// How to copy.
pub struct CopyOptions {
    /// Data blobs read from the source at once.
    pub concurrency: usize,
    /// Concurrent pack uploads into the destination.
    pub uploaders: usize,
    /// Compression of the blobs stored in the destination.
    pub compression: CompressionMode,
    /// Set to stop (Ctrl-C): the snapshot being copied is not saved.
    pub cancel: Arc<AtomicBool>,
    /// Counters for a progress display.
    pub progress: Arc<Progress>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            uploaders: 2,
            compression: CompressionMode::Auto,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Progress::default()),
        }
    }
}

/// One source snapshot the plan considers.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// Its id in the source.
    pub source: SnapshotId,
    /// The destination snapshot that is already a copy of it (it is then
    /// skipped).
    pub existing: Option<SnapshotId>,
    /// The snapshot.
    #[serde(skip)]
    pub snapshot: Snapshot,
}

/// What a copy will do: the selected source snapshots, oldest first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyPlan {
    /// The snapshots, oldest first (so that a parent is copied before the
    /// snapshots that name it).
    pub snapshots: Vec<Planned>,
}

impl CopyPlan {
    /// How many snapshots will be copied (not skipped).
    pub fn to_copy(&self) -> usize {
        self.snapshots
            .iter()
            .filter(|p| p.existing.is_none())
            .count()
    }
}

/// One snapshot copied, or skipped because the destination has it.
#[derive(Debug, Clone, Serialize)]
pub struct CopiedSnapshot {
    /// Its id in the source.
    pub source: SnapshotId,
    /// Its id in the destination: the new copy, or the existing one.
    pub destination: SnapshotId,
    /// The destination already had a copy: nothing was written.
    pub skipped: bool,
    /// Data blobs read from the source.
    pub blobs_read: u64,
    /// Their plaintext bytes.
    pub bytes_read: u64,
    /// Blobs (data and trees) stored in the destination: those it did not have.
    pub blobs_copied: u64,
    /// Their plaintext bytes.
    pub bytes_copied: u64,
    /// Bytes uploaded to the destination (packs and index segments).
    pub bytes_uploaded: u64,
}

/// Picks the source snapshots to copy: those named by `ids` (id prefixes
/// or `latest`, each within `filter`), or every one that passes `filter`;
/// and marks those the destination already has a copy of. Reads only the
/// two catalogs.
pub fn plan<A: Reads, B: Reads>(
    source: &Session<A>,
    dest: &Session<B>,
    ids: &[String],
    filter: &Filter,
) -> Result<CopyPlan> {
    let (from, to) = (&source.repo().config().id, &dest.repo().config().id);
    if from == to {
        return Err(Error::Invalid(format!(
            "the source and the destination are the same repository ({}): copy needs another repository to copy into (-r/--repo) than the one it reads (--from-repo)",
            from.short()
        )));
    }
    let all = source.catalog().snapshots()?;
    let mut chosen: Vec<(SnapshotId, Snapshot)> = if ids.is_empty() {
        all.iter()
            .filter(|(_, s)| filter.matches(s))
            .cloned()
            .collect()
    } else {
        let mut v = vec![];
        let mut seen = HashSet::new();
        for i in ids {
            let (id, s) =
                select::select(&all, &Selector::parse(i)?, filter).map_err(|e| match e {
                    Error::NoSnapshot(what) => {
                        Error::NoSnapshot(format!("{what} in the source repository"))
                    }
                    e => e,
                })?;
            if seen.insert(*id) {
                v.push((*id, s.clone()));
            }
        }
        v
    };
    chosen.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    let existing = Copies::new(dest.catalog().snapshots()?);
    Ok(CopyPlan {
        snapshots: chosen
            .into_iter()
            .map(|(id, s)| Planned {
                source: id,
                existing: existing.of(&id, &s),
                snapshot: s,
            })
            .collect(),
    })
}

/// The snapshot `s` (named `id`) stands for: the one it was copied or
/// repaired from, or itself.
fn stands_for(id: &SnapshotId, s: &Snapshot) -> SnapshotId {
    s.original.unwrap_or(*id)
}

/// The destination's snapshots by the snapshot each stands for.
struct Copies(HashMap<SnapshotId, Vec<(SnapshotId, Snapshot)>>);

impl Copies {
    fn new(all: Vec<(SnapshotId, Snapshot)>) -> Self {
        let mut c = Self(HashMap::new());
        for (id, s) in all {
            c.add(id, s);
        }
        c
    }

    fn add(&mut self, id: SnapshotId, s: Snapshot) {
        self.0.entry(stands_for(&id, &s)).or_default().push((id, s));
    }

    /// A snapshot that is a copy of `s` (named `id`): it stands for the
    /// same snapshot, with the same time, host, paths and tags.
    fn of(&self, id: &SnapshotId, s: &Snapshot) -> Option<SnapshotId> {
        self.0
            .get(&stands_for(id, s))?
            .iter()
            .find(|(_, d)| {
                d.time == s.time && d.host == s.host && d.paths == s.paths && d.tags == s.tags
            })
            .map(|(d_id, _)| *d_id)
    }
}

/// Carries out `plan`: copies each snapshot not skipped, calling `done`
/// after each snapshot (copied or skipped) so that a caller can show it as
/// it happens. A failure stops the run with an error naming the snapshot;
/// those copied before it stay.
pub fn execute<A: Reads, B: Writes>(
    source: &Session<A>,
    dest: &Session<B>,
    plan: CopyPlan,
    opts: &CopyOptions,
    done: &mut dyn FnMut(&CopiedSnapshot),
) -> Result<Vec<CopiedSnapshot>> {
    let reader = source.reader();
    let map = IdMap::beside(dest.catalog(), source.repo(), dest.repo())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.concurrency.max(1))
        .thread_name(|i| format!("arca-copy-{i}"))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the copy's threads: {e}")))?;
    let sources = source.catalog().snapshots()?;
    let mut existing = Copies::new(dest.catalog().snapshots()?);
    let mut memo: HashMap<BlobId, BlobId> = HashMap::new();
    let mut out: Vec<CopiedSnapshot> = vec![];
    for p in plan.snapshots {
        // what this run copied counts too (a snapshot selected twice, or
        // a repaired snapshot beside its original)
        if let Some(d) = existing.of(&p.source, &p.snapshot) {
            let c = CopiedSnapshot {
                source: p.source,
                destination: d,
                skipped: true,
                blobs_read: 0,
                bytes_read: 0,
                blobs_copied: 0,
                bytes_copied: 0,
                bytes_uploaded: 0,
            };
            opts.progress.snapshots.fetch_add(1, Ordering::Relaxed);
            done(&c);
            out.push(c);
            continue;
        }
        if memo.len() > MEMO_MAX {
            memo.clear();
        }
        let job = Job {
            dest: dest.repo(),
            catalog: dest.catalog(),
            locks: [dest.watch(), source.watch()],
            reader: &reader,
            map: &map,
            pool: &pool,
            opts,
            id: p.source,
        };
        let mut left = None;
        let copied = job.copy(&p.snapshot, &sources, &existing, &mut memo, &mut left);
        let (c, snap) = match copied {
            Ok(v) => v,
            Err(e) => {
                let _ = map.flush();
                return Err(stopped(&p.source, out.len(), left, e));
            }
        };
        map.flush()?;
        existing.add(c.destination, snap);
        opts.progress.snapshots.fetch_add(1, Ordering::Relaxed);
        done(&c);
        out.push(c);
    }
    Ok(out)
}

/// The error of a run stopped while copying `id`, after `copied`
/// snapshots, with what the blob writer left behind (`left`).
fn stopped(id: &SnapshotId, copied: usize, left: Option<String>, cause: Error) -> Error {
    if cause.is_prune_conflict() {
        return cause; // it says what happened and what to do
    }
    let left = left.map(|l| format!(" ({l})")).unwrap_or_default();
    if let Error::Interrupted(_) = cause {
        return Error::Interrupted(format!(
            "copy stopped before snapshot {} was saved{left}; the {copied} snapshot(s) before it are in the destination, and a new run copies the rest",
            id.short()
        ));
    }
    let fix = if cause.is_not_found() {
        // an object of the destination (a pack just uploaded) vanished:
        // only a prune deletes, so one ran beside (`--now` frees at once)
        "; the object was deleted while this copy ran, by a prune beside it: run copy again, it copies only what is missing"
    } else if cause.is_damage() {
        "; the source is damaged: `arca check --read-data` on it names what is lost, and `arca repair snapshots` there rewrites the snapshot around it"
    } else {
        "; run copy again: it copies only what is missing"
    };
    Error::Stopped {
        operation: "copy",
        detail: format!(
            "snapshot {} was not copied{left}; the {copied} snapshot(s) before it are in the destination{fix}",
            id.short()
        ),
        cause: Box::new(cause),
    }
}

/// The copy of one snapshot.
struct Job<'a> {
    /// The destination and its catalog.
    dest: &'a Repository,
    catalog: &'a Arc<Catalog>,
    /// The locks held on the destination and the source.
    locks: [Option<LockWatch>; 2],
    reader: &'a BlobReader,
    map: &'a IdMap,
    pool: &'a rayon::ThreadPool,
    opts: &'a CopyOptions,
    id: SnapshotId,
}

impl Job<'_> {
    /// Copies the snapshot: its blobs and trees, then the snapshot itself.
    /// When it stops before the snapshot's packs are flushed, `left` says
    /// what the blob writer left in the destination.
    fn copy(
        &self,
        snap: &Snapshot,
        sources: &[(SnapshotId, Snapshot)],
        existing: &Copies,
        memo: &mut HashMap<BlobId, BlobId>,
        left: &mut Option<String>,
    ) -> Result<(CopiedSnapshot, Snapshot)> {
        let dest = self.dest;
        let writer = BlobWriter::new(
            dest.clone(),
            self.catalog.clone(),
            self.opts.compression,
            self.opts.uploaders,
        );
        let read = (AtomicU64::new(0), AtomicU64::new(0));
        let root = tree_walk::fold(
            self.reader,
            &snap.tree,
            memo,
            &mut |tree_id, tree, below| self.tree(&writer, &read, tree_id, tree, &below),
        )
        .and_then(|()| {
            memo.get(&snap.tree)
                .copied()
                .ok_or_else(|| Error::Invalid("the root tree has no copy".into()))
        })
        .and_then(|root| self.checkpoint().map(|()| root));
        let root = match root.and_then(|r| writer.flush().map(|_| r)) {
            Ok(r) => r,
            Err(e) => {
                // what was uploaded is indexed: the next run reuses it
                let mut abandoned = writer.abandon();
                let first = abandoned.upload_error.take();
                *left = Some(abandoned.describe());
                return Err(first.unwrap_or(e));
            }
        };
        // The parent, where the destination has a copy of it.
        let parent = snap.parent.and_then(|p| {
            let (pid, ps) = sources.iter().find(|(i, _)| *i == p)?;
            existing.of(pid, ps)
        });
        let copy = Snapshot {
            tree: root,
            parent,
            original: Some(stands_for(&self.id, snap)),
            base: writer.base(),
            ..snap.clone()
        };
        // The commit point, as a backup's: under a lock still held, then
        // the handshake with prune.
        self.check_locks()?;
        let new_id = dest.save_snapshot(&copy)?;
        crate::store::prune_seals::confirm_saved(dest, &new_id, &copy.base).map_err(
            |e| match e {
                Error::PruneConflict { generation, host } => Error::CopyPruneConflict {
                    snapshot: self.id.short(),
                    generation,
                    host,
                },
                e => e,
            },
        )?;
        self.catalog.add_snapshot(&new_id, &copy)?;
        let st = writer.stats();
        Ok((
            CopiedSnapshot {
                source: self.id,
                destination: new_id,
                skipped: false,
                blobs_read: read.0.load(Ordering::Relaxed),
                bytes_read: read.1.load(Ordering::Relaxed),
                blobs_copied: st.blobs_added.load(Ordering::Relaxed),
                bytes_copied: st.bytes_added.load(Ordering::Relaxed),
                bytes_uploaded: st.bytes_uploaded.load(Ordering::Relaxed),
            },
            copy,
        ))
    }

    /// Stops on Ctrl-C or a lost lock (of either repository: a prune of
    /// the source could then delete what is still to be read).
    fn checkpoint(&self) -> Result<()> {
        if self.opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted("copy stopped".into()));
        }
        self.check_locks()
    }

    fn check_locks(&self) -> Result<()> {
        self.locks.iter().flatten().try_for_each(|l| l.check())
    }

    /// One step of the fold: the data blobs of the tree's files copied,
    /// the tree rewritten with the destination's ids and stored.
    fn tree(
        &self,
        writer: &BlobWriter,
        read: &(AtomicU64, AtomicU64),
        tree_id: &BlobId,
        tree: Result<Arc<Tree>>,
        below: &[Option<&BlobId>],
    ) -> Result<BlobId> {
        self.checkpoint()?;
        let mut t = (*tree?).clone();
        let ids = self.blobs(writer, read, tree_id, &t)?;
        for (n, sub) in t.nodes.iter_mut().zip(below) {
            match &mut n.content {
                // the fold gives every subdirectory its value first
                Content::Dir { subtree } => {
                    *subtree = *sub.ok_or_else(|| {
                        Error::Invalid(format!(
                            "a directory in tree {} has no copy",
                            tree_id.short()
                        ))
                    })?;
                }
                Content::File { extents, .. } => {
                    for e in extents {
                        e.blob = ids[&e.blob];
                    }
                }
                Content::None => {}
            }
        }
        writer.add(BlobKind::Tree, &t.encode())
    }

    /// The destination ids of the data blobs of the files in `t`: from the
    /// map where the destination has them, else read from the source
    /// (verified), stored, and mapped; `concurrency` at a time.
    fn blobs(
        &self,
        writer: &BlobWriter,
        read: &(AtomicU64, AtomicU64),
        tree_id: &BlobId,
        t: &Tree,
    ) -> Result<HashMap<BlobId, BlobId>> {
        let mut ids: HashMap<BlobId, BlobId> = HashMap::new();
        // each blob not yet in the destination, with the node needing it
        let mut todo: Vec<(BlobId, usize)> = vec![];
        let mut asked: HashSet<BlobId> = HashSet::new();
        for (i, n) in t.nodes.iter().enumerate() {
            for e in n.extents() {
                if !asked.insert(e.blob) {
                    continue;
                }
                match self.map.get(&e.blob)? {
                    Some(d) if writer.is_stored(BlobKind::Data, &d) => {
                        ids.insert(e.blob, d);
                    }
                    _ => todo.push((e.blob, i)),
                }
            }
        }
        if todo.is_empty() {
            return Ok(ids);
        }
        let key = self.dest.key();
        let progress = &self.opts.progress;
        let copied: Vec<(BlobId, BlobId)> = self.pool.install(|| {
            todo.par_iter()
                .map(|(b, i)| {
                    self.checkpoint()?;
                    let plain = self.reader.read(b, BlobKind::Data, &|| {
                        format!(
                            "file {} in tree {} of snapshot {}",
                            t.nodes[*i].display_name(),
                            tree_id.short(),
                            self.id.short()
                        )
                    })?;
                    let d = key.blob_id(&plain);
                    writer.add_with_id(BlobKind::Data, d, &plain)?;
                    self.map.insert(b, &d)?;
                    let n = plain.len() as u64;
                    read.0.fetch_add(1, Ordering::Relaxed);
                    read.1.fetch_add(n, Ordering::Relaxed);
                    progress.blobs_read.fetch_add(1, Ordering::Relaxed);
                    progress.bytes_read.fetch_add(n, Ordering::Relaxed);
                    Ok((*b, d))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        ids.extend(copied);
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(original: Option<SnapshotId>, tags: &[&str]) -> Snapshot {
        Snapshot {
            time: select::parse_time("2026-01-01T00:00:00Z").unwrap(),
            host: "h".into(),
            username: String::new(),
            paths: vec!["/data".into()],
            tags: tags.iter().map(|s| s.to_string()).collect(),
            tree: BlobId::default(),
            parent: None,
            original,
            program_version: String::new(),
            partial: false,
            errors: vec![],
            warnings: vec![],
            summary: Default::default(),
            postgres: vec![],
            checks: vec![],
            base: Default::default(),
        }
    }

    #[test]
    fn a_copy_is_recognised_both_ways() {
        let (a, b, c) = (
            SnapshotId([1; 32]),
            SnapshotId([2; 32]),
            SnapshotId([3; 32]),
        );
        // b in the destination is a copy of a
        let dest = Copies::new(vec![(b, snap(Some(a), &[]))]);
        assert_eq!(dest.of(&a, &snap(None, &[])), Some(b));
        // other tags, or another snapshot: not a copy
        assert_eq!(dest.of(&a, &snap(None, &["x"])), None);
        assert_eq!(dest.of(&c, &snap(None, &[])), None);
        // copying b back where a is: a stands for itself, b for a
        let back = Copies::new(vec![(a, snap(None, &[]))]);
        assert_eq!(back.of(&b, &snap(Some(a), &[])), Some(a));
        // a copy of a copy
        assert_eq!(dest.of(&c, &snap(Some(a), &[])), Some(b));
    }
}
