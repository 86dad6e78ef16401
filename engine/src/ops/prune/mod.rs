//! Prune: delete what no valid snapshot needs, safely beside backups that
//! keep running on any number of hosts (the protocol, its steps and the
//! crash analysis are in `format-spec` §15; the record bytes in
//! `format::prune`).
//!
//! One generation: [`plan`] reads (the catalog, the packs no segment
//! lists, every valid snapshot's trees into an on-disk used set) and
//! decides each pack's fate; [`execute`] finishes the previous
//! generation's deletions, seals the mark it sweeps, copies the used blobs
//! out of the packs it deletes or repacks, writes the new live index, then
//! the record (the commit point), checks for a sibling prune, and deletes.
//! `--now` runs a second generation at once, so that what the first one
//! condemned is freed too.
//!
//! Memory does not grow with the number of blobs: the working set (every
//! copy of every blob, the used set, the fates) is a scratch SQLite file
//! (`db`), the walk keeps one tree per level, and copying holds two packs
//! and a fixed number of runs of blobs.

mod db;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub use db::{Fate, PackUse};
use db::{Origin, PlanDb};

use crate::error::{Error, Result};
use crate::format::id::{IndexId, PackId, PruneId, SnapshotId};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::layout::ObjectKey;
use crate::format::pack::{self, BlobKind, PackBuilder};
use crate::format::prune::{PruneRecord, RecordInfo, Seal, Swept, ToDelete};
use crate::format::tree::{Node, NodeKind};
use crate::host::threads::for_each_concurrent;
use crate::store::blob_reader::{BlobLocation, BlobReader};
use crate::store::prune_seals;
use crate::store::session::{Maintenance, Session};
use crate::store::tree_walk::{self, Step, TreePath, Visitor};

/// Deletes in flight at once.
const DELETERS: usize = 8;

/// Most packs in one index segment prune writes.
const PACKS_PER_SEGMENT: usize = 4096;

/// Most blob entries in one index segment prune writes (about 13 MiB of
/// plaintext): what bounds prune's memory while it writes the index.
const ENTRIES_PER_SEGMENT: usize = 1 << 18;

/// Writes index segments of at most [`PACKS_PER_SEGMENT`] packs and
/// [`ENTRIES_PER_SEGMENT`] entries (a pack with more entries gets a
/// segment of its own), each under the lock, all on one base.
struct SegmentWriter<'a> {
    session: &'a Session<Maintenance>,
    base: crate::format::prune::Base,
    packs: Vec<IndexedPack>,
    entries: usize,
}

impl<'a> SegmentWriter<'a> {
    fn new(session: &'a Session<Maintenance>, base: crate::format::prune::Base) -> Self {
        Self {
            session,
            base,
            packs: vec![],
            entries: 0,
        }
    }

    fn add(&mut self, p: IndexedPack) -> Result<()> {
        if !self.packs.is_empty()
            && (self.packs.len() >= PACKS_PER_SEGMENT
                || self.entries + p.entries.len() > ENTRIES_PER_SEGMENT)
        {
            self.flush()?;
        }
        self.entries += p.entries.len();
        self.packs.push(p);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.packs.is_empty() {
            return Ok(());
        }
        self.session.check_lock()?;
        self.session.repo().save_index(&IndexSegment {
            packs: std::mem::take(&mut self.packs),
            supersedes: vec![],
            base: self.base,
        })?;
        self.entries = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.flush()
    }
}

/// How much unused space the packs kept may hold before more are
/// repacked (restic's `--max-unused`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxUnused {
    /// This percentage of the repository as it is after the run (so that
    /// unused ≤ p/(100-p) × used, as restic computes it).
    Percent(f64),
    /// This many bytes.
    Bytes(u64),
    /// Never repack for unused space (`unlimited`).
    Unlimited,
}

impl MaxUnused {
    /// `5%`, `unlimited`, or a size in bytes that the caller parsed
    /// (`size`: restic takes `500M`, and a bare `0` for "repack all").
    pub fn parse(s: &str, size: impl FnOnce(&str) -> Option<u64>) -> Result<Self> {
        if s == "unlimited" {
            return Ok(Self::Unlimited);
        }
        let bad = || {
            Error::Invalid(format!(
                "bad --max-unused '{s}': give a percentage (5%), a size (500M, 0) or unlimited"
            ))
        };
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(Self::Percent(v)),
                _ => Err(bad()),
            },
            None => size(s).map(Self::Bytes).ok_or_else(bad),
        }
    }

    /// The unused bytes a run may leave in the packs it keeps, when they
    /// hold `used` bytes that snapshots use.
    pub fn budget(self, used: u64) -> u64 {
        match self {
            Self::Unlimited => u64::MAX,
            Self::Percent(p) if p >= 100.0 => u64::MAX,
            Self::Percent(p) => (used as f64 * p / (100.0 - p)) as u64,
            Self::Bytes(b) => b,
        }
    }
}

/// Prune settings.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Unused space tolerated in live packs before they are repacked.
    pub max_unused: MaxUnused,
    /// At most this many bytes of packs are repacked in one run.
    pub max_repack_bytes: Option<u64>,
    /// Packs smaller than this share of the target pack size are merged
    /// (when there are at least two).
    pub small_pack_share: f64,
    /// Run a second generation at once (free what this one condemns).
    pub now: bool,
    /// Where the working set lives (`None`: in memory).
    pub scratch_dir: Option<std::path::PathBuf>,
    /// Live counters for a progress display.
    pub progress: std::sync::Arc<PruneProgress>,
}

/// Live counters of a prune, for a progress display: the step it is in,
/// and the bytes of used blobs it copies out of repacked packs.
#[derive(Debug, Default)]
pub struct PruneProgress {
    /// The step now running, in words.
    pub step: std::sync::Mutex<&'static str>,
    /// Bytes of the used blobs to copy (the plan's `copy_bytes`, set once
    /// planned).
    pub copy_total: AtomicU64,
    /// Of those, the bytes in new packs uploaded so far.
    pub copied: AtomicU64,
    /// Packs deleted so far.
    pub packs_deleted: AtomicU64,
}

impl PruneProgress {
    fn step(&self, what: &'static str) {
        *self.step.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused: MaxUnused::Percent(5.0),
            max_repack_bytes: None,
            small_pack_share: 0.25,
            now: false,
            scratch_dir: None,
            progress: Default::default(),
        }
    }
}

/// Figures of a set of packs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Bytes3 {
    /// Packs.
    pub packs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The bytes of their blobs that valid snapshots use.
    pub used: u64,
}

impl Bytes3 {
    fn add(&mut self, p: &PackUse) {
        self.packs += 1;
        self.bytes += p.size;
        self.used += p.used;
    }
}

/// What one prune generation will do (what `--dry-run` prints), or did.
#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    /// The generation the record will have.
    pub generation: u64,
    /// The head it builds on.
    pub previous: Option<PruneId>,
    /// The generation whose mark it sweeps, if any.
    pub sweeps: Option<u64>,
    /// Snapshots walked (valid ones).
    pub snapshots: usize,
    /// Snapshots based before the swept mark that it protects.
    pub accepted: Vec<SnapshotId>,
    /// Void snapshots it deletes.
    pub void_snapshots: Vec<SnapshotId>,
    /// Packs kept as they are.
    pub keep: Bytes3,
    /// Packs with nothing used: condemned now, deleted by the next
    /// generation (or now with `--now`).
    pub condemn: Bytes3,
    /// Packs whose used blobs are copied into new packs, then condemned.
    pub repack: Bytes3,
    /// Packs the previous generation condemned: deleted now.
    pub delete: Bytes3,
    /// Used blobs copied into new packs.
    pub copy_blobs: u64,
    /// Their bytes.
    pub copy_bytes: u64,
    /// Every pack prune decides on, with its fate (empty in a report).
    pub packs: Vec<PackUse>,
    /// Bytes freed by this generation's deletions.
    pub freed_now: u64,
    /// Bytes freed when the next generation sweeps what this one condemns.
    pub freed_next: u64,
}

/// What the plan carries to the execution.
struct Planned {
    db: PlanDb,
    sweep: Option<Swept>,
    segments: Vec<IndexId>,
    records: Vec<PruneId>,
}

/// What a prune did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Each generation run, as planned (a generation with nothing to do
    /// writes no record).
    pub generations: Vec<PrunePlan>,
    /// The records written, one per generation that changed something.
    pub records: Vec<PruneId>,
    /// Packs deleted.
    pub packs_deleted: u64,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Packs written (copies of used blobs).
    pub packs_written: u64,
    /// Their bytes.
    pub bytes_written: u64,
    /// Packs condemned (deleted by the next generation).
    pub packs_condemned: u64,
    /// Void snapshots deleted.
    pub snapshots_deleted: u64,
    /// Index segments and older records deleted.
    pub index_objects_deleted: u64,
    /// Sibling records withdrawn to resolve a fork.
    pub withdrawn: Vec<PruneId>,
    /// Leftovers of interrupted writes removed (local staging files).
    pub leftovers_removed: u64,
}

/// How long a leftover of an interrupted write (a local staging file) is
/// left alone: a writer touches its file while it writes, and one that
/// has not for a day lost its lock long ago (a backup stopped that long
/// fails at its next store operation, and one whose staging file went
/// fails its rename: either way nothing it wrote is trusted).
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Refuses to build on a prune state that may hide marks: a record that
/// does not load, or two heads.
fn refuse_unsafe_state(session: &Session<Maintenance>) -> Result<()> {
    let catalog = session.catalog();
    if let Some(id) = catalog.prune_damaged().first() {
        return Err(Error::damaged(
            ObjectKey::of(*id),
            "a prune record does not load, and it may hide packs it condemned; prune cannot run: `arca check` shows it, `arca repair index` removes it (indexing every pack that is still there, so nothing it hid is lost)",
        ));
    }
    let state = catalog.prune_state();
    if state.is_fork() {
        return Err(Error::Invalid(format!(
            "two prunes overlapped and left {} prune records as heads; run `arca prune` again once the other prune has finished (it removes the record that lost)",
            state.heads.len()
        )));
    }
    Ok(())
}

/// Plans one generation on the catalog as last synced, and writes
/// nothing (`--dry-run`). Stops on a fork, an unreadable prune record, or
/// a used blob without a copy.
pub fn plan(session: &Session<Maintenance>, opts: &PruneOptions) -> Result<PrunePlan> {
    plan_inner(session, opts).map(|(p, _)| p)
}

fn plan_inner(session: &Session<Maintenance>, opts: &PruneOptions) -> Result<(PrunePlan, Planned)> {
    let repo = session.repo();
    let catalog = session.catalog();
    refuse_unsafe_state(session)?;
    let head = catalog.prune_state().head().cloned();
    // The mark this generation sweeps: the head's, when it condemned
    // anything (otherwise its sweep carries on unchanged).
    let sweep = head.as_ref().and_then(|(id, r)| {
        (!r.info.condemned.is_empty()).then(|| Swept {
            generation: r.info.generation,
            mark: *id,
            accepted: vec![],
        })
    });

    // P4: the view to decide on.
    let db = PlanDb::create(opts.scratch_dir.as_deref())?;
    let condemned: HashSet<PackId> = head.iter().flat_map(|(_, r)| r.condemned()).collect();
    catalog.each_pack(&mut |pack, size, live, entries| {
        let origin = if !live && condemned.contains(&pack) {
            Origin::Pending
        } else {
            Origin::Live
        };
        db.add_pack(&pack, size, origin, &entries)
    })?;
    // a condemned pack whose header no longer reads (it is gone) is still
    // retired by this generation: deleted (a no-op) and named in the new
    // record, so that no head goes on claiming it
    for (_, r) in head.iter() {
        for (pack, size) in &r.info.condemned {
            if !db.has_pack(pack)? {
                db.add_pack(pack, *size, Origin::Pending, &[])?;
            }
        }
    }
    let to_delete: HashSet<PackId> = head
        .iter()
        .flat_map(|(_, r)| r.info.to_delete.packs.iter().map(|(p, _)| *p))
        .collect();
    // the segments first, then the packs: a segment listed here names
    // packs uploaded before it, so the pack listing holds them all (the
    // other order could supersede a backup's new segment whose pack it
    // had not seen)
    let segments = repo.list::<IndexId>()?;
    let records: Vec<PruneId> = repo.list::<PruneId>()?;
    // packs no counting segment lists: adopted from their headers
    let listed = repo.list_sized::<PackId>()?;
    let in_store: HashSet<PackId> = listed.iter().map(|(p, _)| *p).collect();
    for (pack, size) in listed {
        if db.has_pack(&pack)? || to_delete.contains(&pack) {
            continue;
        }
        match repo.read_pack_header(&pack, size) {
            Ok(entries) => db.add_pack(&pack, size, Origin::Adopted, &entries)?,
            // a pack whose header does not read holds nothing prune can
            // index; it is left for `repair index` and `check` to report
            Err(e) if e.is_damage() || e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }

    // P5: what valid snapshots use.
    db.index_sources()?;
    let all = catalog.all_snapshots()?;
    let reader = BlobReader::new(repo.clone(), &db);
    let mut accepted = vec![];
    let mut void = vec![];
    let mut walked = 0;
    for (id, snap, valid) in &all {
        if !valid {
            void.push(*id);
            continue;
        }
        if let Some(s) = &sweep
            && !snap.base.honours(s)
        {
            accepted.push(*id);
        }
        let mut v = Used {
            db: &db,
            pending: vec![],
        };
        tree_walk::walk(&reader, &snap.tree, &TreePath::root(), &mut v).map_err(|e| {
            Error::Stopped {
                operation: "prune",
                cause: Box::new(e),
                detail: format!(
                    "snapshot {} cannot be read whole, so what it uses is unknown; nothing was deleted (run `arca check`)",
                    id.short()
                ),
            }
        })?;
        v.flush()?;
        walked += 1;
    }
    if let Some((kind, b)) = db.missing()? {
        return Err(Error::Stopped {
            operation: "prune",
            cause: Box::new(Error::MissingBlob {
                blob: b.to_hex(),
                needed_by: format!("a valid snapshot ({} blob)", kind.name()),
            }),
            detail: "nothing was deleted; run `arca check` and `arca repair index`".into(),
        });
    }

    // P6: fates.
    db.tally()?;
    let packs = db.packs()?;
    // an indexed pack that holds used blobs and is not in the store is
    // damage: repack and rescue would fail on it, and what else it held
    // is unknown; the listing may be short, so ask for it by name first
    for p in packs
        .iter()
        .filter(|p| p.used > 0 && !in_store.contains(&p.pack))
    {
        match repo.backend().head(&ObjectKey::of(p.pack)) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Err(Error::Stopped {
                    operation: "prune",
                    cause: Box::new(Error::damaged(
                        ObjectKey::of(p.pack),
                        "missing: the index lists it but the store does not have it",
                    )),
                    detail: format!(
                        "it holds {} that valid snapshots use; nothing was deleted: run `arca check` to see which snapshots need it, then `arca repair index` and `arca repair snapshots`",
                        crate::error::human_bytes(p.used)
                    ),
                });
            }
            Err(e) => return Err(e),
        }
    }
    let pack_size = repo.config().pack_size as u64;
    let mut plan = PrunePlan {
        generation: head.as_ref().map_or(1, |(_, r)| r.info.generation + 1),
        previous: head.as_ref().map(|(id, _)| *id),
        sweeps: sweep.as_ref().map(|s| s.generation),
        snapshots: walked,
        accepted: accepted.clone(),
        void_snapshots: void,
        keep: Bytes3::default(),
        condemn: Bytes3::default(),
        repack: Bytes3::default(),
        delete: Bytes3::default(),
        copy_blobs: 0,
        copy_bytes: 0,
        packs: vec![],
        freed_now: 0,
        freed_next: 0,
    };
    let planned = Planned {
        db,
        sweep: sweep.map(|mut s| {
            s.accepted = accepted;
            s
        }),
        segments,
        records,
    };
    let db = &planned.db;
    // unused space a run may leave (see `MaxUnused`)
    let used_after: u64 = packs
        .iter()
        .filter(|p| p.origin != Origin::Pending)
        .map(|p| p.used)
        .sum();
    let budget = opts.max_unused.budget(used_after);
    let mut unused_left: u64 = 0;
    let mut repack_candidates = vec![];
    let mut small = vec![];
    for p in &packs {
        let fate = match p.origin {
            Origin::Pending => Fate::Delete,
            _ if p.used == 0 => Fate::Condemn,
            Origin::Adopted => Fate::Keep,
            Origin::Live => {
                unused_left += p.size - p.used;
                if p.used < p.blobs {
                    repack_candidates.push(*p);
                }
                if (p.size as f64) < pack_size as f64 * opts.small_pack_share {
                    small.push(*p);
                }
                Fate::Keep
            }
        };
        db.set_fate(&p.pack, fate)?;
    }
    // repack the least used packs first until the unused space left is
    // within the budget (and the repack size within its limit)
    repack_candidates.sort_by(|a, b| {
        (a.used as f64 / a.size as f64).total_cmp(&(b.used as f64 / b.size as f64))
    });
    let mut repacked: HashSet<PackId> = HashSet::new();
    let mut repack_bytes = 0u64;
    let limit = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for p in repack_candidates {
        if unused_left <= budget || repack_bytes + p.size > limit {
            break;
        }
        unused_left -= p.size - p.used;
        repack_bytes += p.size;
        repacked.insert(p.pack);
        db.set_fate(&p.pack, Fate::Repack)?;
    }
    // small packs (each backup leaves one or two) are merged once there
    // are enough of them to fill half a pack, or more than 32
    let small: Vec<PackUse> = small
        .into_iter()
        .filter(|p| !repacked.contains(&p.pack))
        .collect();
    let small_bytes: u64 = small.iter().map(|p| p.used).sum();
    if small.len() >= 2 && (small_bytes >= pack_size / 2 || small.len() > 32) {
        for p in small {
            if repack_bytes + p.size > limit {
                break;
            }
            repack_bytes += p.size;
            db.set_fate(&p.pack, Fate::Repack)?;
        }
    }
    db.each_to_copy(&mut |loc| {
        plan.copy_blobs += 1;
        plan.copy_bytes += loc.entry.length as u64;
        Ok(())
    })?;
    plan.packs = db.packs()?;
    for p in &plan.packs {
        match p.fate {
            Fate::Keep => plan.keep.add(p),
            Fate::Condemn => plan.condemn.add(p),
            Fate::Repack => plan.repack.add(p),
            Fate::Delete => plan.delete.add(p),
        }
    }
    plan.freed_now = plan.delete.bytes;
    plan.freed_next = plan.condemn.bytes + plan.repack.bytes;
    Ok((plan, planned))
}

/// Marks what a walk reaches used; a tree seen before is not walked again.
struct Used<'a> {
    db: &'a PlanDb,
    pending: Vec<crate::format::id::BlobId>,
}

impl Used<'_> {
    fn flush(&mut self) -> Result<()> {
        self.db.mark_data_used(&self.pending)?;
        self.pending.clear();
        Ok(())
    }
}

impl Visitor for Used<'_> {
    fn tree(&mut self, _path: &TreePath, id: &crate::format::id::BlobId) -> Result<Step> {
        Ok(if self.db.mark_used(BlobKind::Tree, id)? {
            Step::Descend
        } else {
            Step::Skip
        })
    }

    fn node(&mut self, _path: &TreePath, n: &Node) -> Result<Step> {
        if n.kind == NodeKind::File {
            self.pending.extend(n.extents().iter().map(|e| e.blob));
            if self.pending.len() >= 10_000 {
                self.flush()?;
            }
        }
        Ok(Step::Descend)
    }
}

/// Runs one generation (two with `opts.now`): the store operations of
/// `format-spec` §15, P2 to P12. The plan is made after the seal is
/// written, on a catalog synced after it, so that the snapshots it
/// protects are listed after the seal (the handshake with backups).
pub fn run(session: &Session<Maintenance>, opts: &PruneOptions) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    session.check_lock()?;
    session.repo().upgrade_format()?;
    report.leftovers_removed = session.repo().backend().sweep_leftovers(LEFTOVER_AGE)?;
    run_generation(session, opts, &mut report)?;
    if opts.now && !report.records.is_empty() {
        run_generation(session, opts, &mut report)?;
    }
    Ok(report)
}

fn run_generation(
    session: &Session<Maintenance>,
    opts: &PruneOptions,
    report: &mut PruneReport,
) -> Result<()> {
    let repo = session.repo();
    let catalog = session.catalog();
    let progress = &opts.progress;
    progress.step("reading the repository's index");
    catalog.sync(repo)?;
    if resolve_fork(session, report)? {
        catalog.sync(repo)?;
    }
    refuse_unsafe_state(session)?;
    let head = catalog.prune_state().head().cloned();

    // P2: finish what the head decided to delete (a run that stopped).
    if let Some((_, h)) = &head
        && !(h.info.to_delete.packs.is_empty()
            && h.info.to_delete.snapshots.is_empty()
            && h.info.supersedes_index.is_empty()
            && h.info.supersedes_prune.is_empty())
    {
        // only what is still there (a store's delete of a missing object
        // succeeds, and the report counts what this run freed)
        let present: HashSet<PackId> = repo.list::<PackId>()?.into_iter().collect();
        let mut rest = h.info.clone();
        rest.to_delete.packs.retain(|(p, _)| present.contains(p));
        progress.step("deleting what the previous generation condemned");
        delete_listed(session, &rest, report, progress)?;
    }
    // P3: the seal of the head's generation, before the listing.
    if let Some((id, h)) = &head {
        session.check_lock()?;
        prune_seals::write(
            repo,
            &Seal {
                generation: h.info.generation,
                mark: *id,
                host: crate::host::facts::hostname(),
                created: chrono::Utc::now(),
            },
        )?;
    }
    // P4: the listing the plan decides on.
    catalog.sync(repo)?;
    let now_head = catalog.prune_state().head().map(|(id, _)| *id);
    if now_head != head.as_ref().map(|(id, _)| *id) {
        return Err(Error::Invalid(
            "another prune committed while this one started (its lock was lost or removed); nothing was deleted: run prune again".into(),
        ));
    }
    // P5, P6
    progress.step("walking the snapshots");
    let (mut plan, planned) = plan_inner(session, opts)?;
    if plan.is_empty() {
        plan.packs.clear();
        report.generations.push(plan);
        return Ok(());
    }
    let Planned {
        db,
        sweep,
        segments,
        records,
    } = planned;

    // P7: copy the used blobs out of packs that are deleted or repacked.
    progress.step("repacking");
    // per generation: a `--now` run's second one counts from zero again
    progress.copied.store(0, Ordering::Relaxed);
    progress
        .copy_total
        .store(plan.copy_bytes, Ordering::Relaxed);
    let new_packs = copy_used(session, &db, report, progress)?;
    progress.step("writing the index");
    // P8: the new live index: kept packs and the new ones, a segment at
    // a time (one segment's entries in memory, never the whole index).
    let mut segments_out = SegmentWriter::new(session, catalog.base());
    let mut condemned: Vec<(PackId, u64)> = vec![];
    let mut to_delete: Vec<(PackId, u64)> = vec![];
    for p in &plan.packs {
        match p.fate {
            Fate::Keep => segments_out.add(IndexedPack {
                id: p.pack,
                size: p.size,
                entries: db.entries(&p.pack)?,
            })?,
            Fate::Condemn | Fate::Repack => condemned.push((p.pack, p.size)),
            Fate::Delete => to_delete.push((p.pack, p.size)),
        }
    }
    for (id, size) in new_packs {
        // the header was read back and compared when the pack was
        // uploaded; it is read again here so that the copied blobs'
        // entries need not stay in memory
        let entries = repo.read_pack_header(&id, size)?;
        segments_out.add(IndexedPack { id, size, entries })?;
    }
    segments_out.finish()?;
    // P9: the commit point.
    let record = PruneRecord {
        info: RecordInfo {
            generation: plan.generation,
            previous: plan.previous,
            created: chrono::Utc::now(),
            host: crate::host::facts::hostname(),
            swept: sweep.or_else(|| head.as_ref().and_then(|(_, h)| h.info.swept.clone())),
            condemned,
            to_delete: ToDelete {
                packs: to_delete,
                snapshots: plan.void_snapshots.clone(),
            },
            supersedes_index: segments,
            supersedes_prune: records,
        },
    };
    session.check_lock()?;
    let id = repo.save_prune(&record)?;
    report.records.push(id);
    // what the last generation condemned waits for the next prune
    report.packs_condemned = record.info.condemned.len() as u64;
    // P10: the sibling check (two prunes that overlapped past their locks).
    for other in repo.list::<PruneId>()? {
        if other == id || record.info.supersedes_prune.contains(&other) {
            continue;
        }
        match repo.load_prune(&other) {
            Ok(o)
                if o.info.previous == record.info.previous
                    && !o.info.supersedes_prune.contains(&id) =>
            {
                repo.backend().delete(&ObjectKey::of(id))?;
                return Err(Error::Invalid(format!(
                    "another prune ({} on {}) committed generation {} at the same time; this one withdrew its record and deleted nothing: run prune again",
                    other.short(),
                    o.info.host,
                    o.info.generation
                )));
            }
            _ => {}
        }
    }
    // P11: reclaim space.
    progress.step("deleting");
    delete_listed(session, &record.info, report, progress)?;
    plan.packs.clear();
    report.generations.push(plan);
    catalog.sync(repo)?;
    Ok(())
}

/// Two heads (prunes that overlapped past their locks, one of which
/// stopped before withdrawing): keeps one and withdraws the others. Both
/// were built on the same previous record, so they delete the same packs;
/// the one kept is one that already deleted some (it went past its
/// sibling check), or else the first by id. Withdrawing a record is safe:
/// what it condemned was not deleted (only the next generation deletes),
/// the packs and segments it wrote stay (their base is the common
/// previous record), and a backup based on it is judged by the kept
/// record's sweep like any other. Returns whether it withdrew anything.
fn resolve_fork(session: &Session<Maintenance>, report: &mut PruneReport) -> Result<bool> {
    let state = session.catalog().prune_state();
    if !state.is_fork() {
        return Ok(false);
    }
    let repo = session.repo();
    let listed: HashSet<PackId> = repo.list::<PackId>()?.into_iter().collect();
    let mut heads = state.heads.clone();
    // keep the head whose deletions began (the others may still count
    // those packs live), else the highest generation (a backup based on it
    // avoided what every lower head condemned, not the reverse), else the
    // smallest id
    heads.sort_by_key(|(id, r)| {
        let started = r
            .info
            .to_delete
            .packs
            .iter()
            .any(|(p, _)| !listed.contains(p));
        (!started, std::cmp::Reverse(r.info.generation), *id)
    });
    for (id, _) in &heads[1..] {
        session.check_lock()?;
        repo.backend().delete(&ObjectKey::of(*id))?;
        report.withdrawn.push(*id);
    }
    Ok(true)
}

/// Reads at most this much waste between two blobs to copy from one pack
/// in a single ranged read.
const COALESCE_GAP: u64 = 256 << 10;

/// The longest ranged read (unless one blob is longer). Runs are the unit
/// the copy's workers share out, so they are kept short enough that both
/// cores have one while a third waits to be packed (4 MiB runs left one
/// core idle half the time on the retention benchmark).
const RUN_MAX: u64 = 1 << 20;

/// P7: copies every used blob that no kept pack holds into new packs
/// (each blob verified before it is copied: prune never spreads damage),
/// reading neighbours in one ranged read, reading and verifying runs on
/// every core (see [`fill_packs`]); a thread of its own uploads each pack
/// and reads its header back while the next one is filled (memory stays
/// at two packs and a few runs).
/// Returns the new packs with their sizes.
fn copy_used(
    session: &Session<Maintenance>,
    db: &PlanDb,
    report: &mut PruneReport,
    progress: &PruneProgress,
) -> Result<Vec<(PackId, u64)>> {
    let repo = session.repo();
    let target = repo.config().pack_size as usize;
    // a rendezvous: the filler hands a full pack over when the uploader
    // is free, so at most two pack buffers exist (filling, uploading),
    // and the one uploaded is handed back for the next pack (a fresh 17
    // MiB buffer costs its page faults and zeroing again: 15% of a
    // repack's samples)
    let (tx, rx) = crossbeam_channel::bounded::<pack::FinishedPack>(0);
    let spare: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);
    let spare = &spare;
    std::thread::scope(|scope| {
        let uploader = scope.spawn(move || -> Result<Vec<(PackId, u64)>> {
            let mut out = vec![];
            for done in rx {
                let size = done.bytes.len() as u64;
                session.check_lock()?;
                repo.put_checked(&ObjectKey::of(done.id), done.bytes.clone())?;
                if repo.read_pack_header(&done.id, size)? != done.entries {
                    return Err(Error::damaged(
                        ObjectKey::of(done.id),
                        "the header read back differs from what was written; nothing was deleted",
                    ));
                }
                if done.kind == BlobKind::Data
                    && let Ok(buf) = done.bytes.try_into_mut()
                {
                    *spare.lock().unwrap() = Some(Vec::from(buf));
                }
                let copied: u64 = done.entries.iter().map(|e| e.length as u64).sum();
                progress.copied.fetch_add(copied, Ordering::Relaxed);
                out.push((done.id, size));
            }
            Ok(out)
        });
        let filled = fill_packs(repo, db, target, &tx, spare);
        drop(tx);
        let uploaded = uploader.join().expect("the uploader does not panic");
        // an upload's error is the cause when both failed (filling stops
        // once the uploader is gone)
        let uploaded = uploaded?;
        filled?;
        report.packs_written += uploaded.len() as u64;
        report.bytes_written += uploaded.iter().map(|(_, s)| s).sum::<u64>();
        Ok(uploaded)
    })
}

/// One ranged read of blobs to copy: their locations (never empty) and
/// the bytes from the first's offset to the last's end, every blob
/// verified.
struct VerifiedRun {
    run: Vec<BlobLocation>,
    bytes: bytes::Bytes,
}

/// `loc`'s sealed bytes in `bytes`, a read that starts at `run[0]`.
fn sealed_in<'b>(bytes: &'b [u8], run: &[BlobLocation], loc: &BlobLocation) -> Result<&'b [u8]> {
    let at = (loc.entry.offset - run[0].entry.offset) as usize;
    bytes
        .get(at..at + loc.entry.length as usize)
        .ok_or_else(|| Error::damaged(ObjectKey::of(loc.pack), "shorter than its index says"))
}

/// The copying half of [`copy_used`], a pipeline: this thread groups the
/// blobs to copy into runs (neighbours in one pack, one ranged read
/// each), a worker per core reads and verifies runs, and a packer adds
/// them to the new packs in order and hands each full pack to `tx`. At
/// most [`RUNS_IN_FLIGHT`] runs are held at once.
fn fill_packs(
    repo: &crate::store::repo::Repository,
    db: &PlanDb,
    target: usize,
    tx: &crossbeam_channel::Sender<pack::FinishedPack>,
    spare: &std::sync::Mutex<Option<Vec<u8>>>,
) -> Result<()> {
    let mut builders = [
        PackBuilder::new(BlobKind::Data, pack::buffer_capacity(target as u32)),
        PackBuilder::new(BlobKind::Tree, pack::buffer_capacity(target as u32)),
    ];
    let flush = |b: &mut PackBuilder| -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        let kind = b.kind();
        let done = std::mem::replace(b, PackBuilder::new(kind, 0)).finish(repo.key());
        tx.send(done).map_err(|_| {
            Error::Invalid("the upload of a repacked pack stopped; nothing was deleted".into())
        })?;
        // the send returns once the uploader took this pack, after it put
        // the previous one's buffer back: two buffers, never a third
        let recycled = match kind {
            BlobKind::Data => spare.lock().unwrap().take(),
            BlobKind::Tree => None,
        };
        *b = match recycled {
            Some(buf) => PackBuilder::with_buffer(kind, buf),
            None => PackBuilder::new(kind, pack::buffer_capacity(target as u32)),
        };
        Ok(())
    };
    let produce = |emit: &mut dyn FnMut(Vec<BlobLocation>) -> Result<()>| -> Result<()> {
        let mut run: Vec<BlobLocation> = vec![];
        db.each_to_copy(&mut |loc| {
            if let Some(last) = run.last()
                && (last.pack != loc.pack
                    || loc.entry.offset
                        > last.entry.offset + last.entry.length as u64 + COALESCE_GAP
                    || loc.entry.offset + loc.entry.length as u64 - run[0].entry.offset > RUN_MAX)
            {
                emit(std::mem::take(&mut run))?;
            }
            run.push(loc);
            Ok(())
        })?;
        if run.is_empty() {
            return Ok(());
        }
        emit(run)
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let packer = |verified: VerifiedRun| -> Result<()> {
        // the run's bytes are freed once they are packed
        for loc in &verified.run {
            let k = loc.entry.kind as usize;
            let sealed = sealed_in(&verified.bytes, &verified.run, loc)?;
            if !builders[k].fits(sealed.len()) {
                flush(&mut builders[k])?;
            }
            builders[k].add(
                loc.entry.id,
                loc.entry.compression,
                loc.entry.raw_length,
                sealed,
            );
            if builders[k].len() >= target {
                flush(&mut builders[k])?;
            }
        }
        Ok(())
    };
    crate::host::threads::ordered_map(
        workers,
        RUNS_IN_FLIGHT,
        produce,
        |run| read_run(repo, run),
        packer,
    )?;
    let [data, tree] = &mut builders;
    flush(data)?;
    flush(tree)
}

/// Runs read, verified or waiting to be packed at once (each at most
/// [`RUN_MAX`]): with the two pack buffers, what copying holds.
const RUNS_IN_FLIGHT: usize = 6;

/// Reads one run in a single ranged read and verifies each of its blobs:
/// prune never spreads damage.
fn read_run(repo: &crate::store::repo::Repository, run: Vec<BlobLocation>) -> Result<VerifiedRun> {
    let (first, last) = (&run[0], &run[run.len() - 1]);
    let start = first.entry.offset;
    let end = last.entry.offset + last.entry.length as u64;
    let bytes = repo
        .backend()
        .get_range(&ObjectKey::of(first.pack), start..end)?;
    for loc in &run {
        pack::verify_blob(repo.key(), &loc.entry, sealed_in(&bytes, &run, loc)?).map_err(|e| {
            Error::damaged(
                ObjectKey::of(loc.pack),
                format!(
                    "blob {} does not verify ({e}); nothing was deleted: run `arca check --read-data` and `arca repair`",
                    loc.entry.id
                ),
            )
        })?;
    }
    Ok(VerifiedRun { run, bytes })
}

/// Deletes what a committed record lists (packs, void snapshots, the
/// segments and records it supersedes); objects already gone are fine.
fn delete_listed(
    session: &Session<Maintenance>,
    info: &RecordInfo,
    report: &mut PruneReport,
    progress: &PruneProgress,
) -> Result<()> {
    let repo = session.repo();
    let gone = |e: Error| if e.is_not_found() { Ok(()) } else { Err(e) };
    let delete = |key: ObjectKey| repo.backend().delete(&key).or_else(gone);
    // a phase at a time (the packs before the objects that name them), the
    // deletes of one phase concurrently: their order does not matter
    // (each leaves a state the next prune finishes), and one at a time an
    // S3 store spends a round trip, a file system a journal commit, on each
    let (deleted, freed) = (AtomicU64::new(0), AtomicU64::new(0));
    for_each_concurrent(&info.to_delete.packs, DELETERS, |(p, size)| {
        session.check_lock()?;
        // counted only when this run removed it
        match repo.backend().delete(&ObjectKey::of(*p)) {
            Ok(()) => {
                deleted.fetch_add(1, Ordering::Relaxed);
                progress.packs_deleted.fetch_add(1, Ordering::Relaxed);
                freed.fetch_add(*size, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => gone(e),
        }
    })?;
    report.packs_deleted += deleted.into_inner();
    report.bytes_deleted += freed.into_inner();
    for_each_concurrent(&info.to_delete.snapshots, DELETERS, |s| {
        delete(ObjectKey::of(*s))
    })?;
    report.snapshots_deleted += info.to_delete.snapshots.len() as u64;
    for_each_concurrent(&info.supersedes_index, DELETERS, |s| {
        delete(ObjectKey::of(*s))
    })?;
    for_each_concurrent(&info.supersedes_prune, DELETERS, |r| {
        delete(ObjectKey::of(*r))
    })?;
    report.index_objects_deleted +=
        (info.supersedes_index.len() + info.supersedes_prune.len()) as u64;
    Ok(())
}

impl PrunePlan {
    /// Whether the generation would change nothing (no pack to delete,
    /// condemn, repack or copy, no void snapshot).
    pub fn is_empty(&self) -> bool {
        self.condemn.packs == 0
            && self.repack.packs == 0
            && self.delete.packs == 0
            && self.void_snapshots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_unused_is_a_share_of_the_repository_after_the_run() {
        let size = |s: &str| s.parse::<u64>().ok();
        let five = MaxUnused::parse("5%", size).unwrap();
        // 95 used + 5 unused: 5% of what is left
        assert_eq!(five.budget(95_000), 5_000);
        assert_eq!(MaxUnused::parse("0", size).unwrap().budget(95_000), 0);
        assert_eq!(MaxUnused::parse("0%", size).unwrap().budget(95_000), 0);
        assert_eq!(MaxUnused::parse("1234", size).unwrap().budget(1), 1234);
        assert_eq!(
            MaxUnused::parse("unlimited", size).unwrap().budget(1),
            u64::MAX
        );
        assert_eq!(MaxUnused::parse("100%", size).unwrap().budget(1), u64::MAX);
        for bad in ["101%", "x%", "lots"] {
            assert!(MaxUnused::parse(bad, size).is_err(), "{bad}");
        }
    }
}
