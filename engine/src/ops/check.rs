//! `check`: proves that the repository is intact, or names what is not.
//!
//! Structure (always): the config and every key file decode; every index
//! segment authenticates; every indexed pack exists with the indexed size
//! and its header (read back with two ranged reads) says what the index
//! says; every snapshot loads and every tree it reaches decodes; every blob
//! a tree refers to has at least one intact copy. The index used is built
//! here from `index/`, never taken from the local catalog; the catalog is
//! compared with it and rebuilt if it differs.
//!
//! Data (`--read-data`, a subset, or a rolling share): selected packs are
//! downloaded whole, their names checked against their BLAKE3, and every
//! blob authenticated, decompressed and checked against its keyed id.
//! Packs that verify are recorded in the repository's coverage records
//! (see `coverage`), which is what lets a rolling check reach 100%.
//!
//! Every problem names the damaged object and, for lost or damaged blobs,
//! the snapshots and files that need them. Costs: structure reads every
//! index segment, snapshot and tree once, and two small ranges per pack;
//! data reads the selected packs once, `fetchers` at a time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::coverage::Coverage;
use crate::format::id::{BlobId, IndexId, KeyId, PackId, SnapshotId, content_hash};
use crate::format::keyfile::KeyFile;
use crate::format::pack::{self, BlobKind, PackEntry};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Tree};
use crate::store::backend::{ObjectKey, ObjectKind};
use crate::store::catalog::Catalog;
use crate::store::coverage;
use crate::store::repo::Repository;

/// Which packs to download and verify.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataSelection {
    /// Structure only.
    None,
    /// Every pack.
    All,
    /// Part `n` (1-based) of `m`: packs whose id, read as a number, is
    /// `n - 1` modulo `m`.
    Part { n: u32, m: u32 },
    /// A random sample of this percentage of the packs.
    Sample(f64),
    /// This percentage of the packs, least recently verified first.
    Rolling(f64),
}

impl DataSelection {
    /// Parses `N/M` or `P%` (for `--read-data-subset`).
    pub fn parse_subset(s: &str) -> Result<Self> {
        if let Some(p) = s.strip_suffix('%') {
            return Ok(Self::Sample(parse_percent(p)?));
        }
        let bad = || {
            Error::Invalid(format!(
                "bad subset '{s}': use N/M (1 <= N <= M) or P% (0 < P <= 100)"
            ))
        };
        let (n, m) = s.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let m: u32 = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || m == 0 || n > m {
            return Err(bad());
        }
        Ok(Self::Part { n, m })
    }

    /// Parses `P%` (for `--rolling`).
    pub fn parse_rolling(s: &str) -> Result<Self> {
        let p = s.strip_suffix('%').unwrap_or(s);
        Ok(Self::Rolling(parse_percent(p)?))
    }
}

fn parse_percent(p: &str) -> Result<f64> {
    match p.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(Error::Invalid(format!(
            "bad percentage '{p}%': use a number in (0, 100]"
        ))),
    }
}

/// Check settings.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Which packs to read.
    pub data: DataSelection,
    /// Concurrent pack reads.
    pub fetchers: usize,
    /// Live counters.
    pub progress: Arc<CheckProgress>,
    /// Set to stop.
    pub cancel: Arc<AtomicBool>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            data: DataSelection::None,
            fetchers: (cores + 1).clamp(3, 16),
            progress: Arc::new(CheckProgress::default()),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct CheckProgress {
    /// Bytes of packs to read.
    pub bytes_total: AtomicU64,
    /// Bytes of packs read.
    pub bytes_done: AtomicU64,
}

/// A file or directory that needs a damaged object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash)]
pub struct Affected {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The path in it.
    pub path: String,
}

/// One thing that is wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind of object: config, key, index, pack, snapshot, tree, blob.
    pub object_kind: &'static str,
    /// The object (a path in the repository, or a blob id).
    pub object: String,
    /// What is wrong with it, and the fix where there is one.
    pub detail: String,
    /// Snapshots and files that are affected.
    pub affects: Vec<Affected>,
}

/// What data verification did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataReport {
    /// Packs downloaded and verified.
    pub packs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs authenticated and checked.
    pub blobs: u64,
    /// Seconds spent.
    pub seconds: f64,
}

/// Verification coverage, as recorded in the repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CoverageReport {
    /// Packs in the index.
    pub packs_total: usize,
    /// Packs with a recorded verification.
    pub packs_verified: usize,
    /// `packs_verified / packs_total`, in percent.
    pub percent: f64,
    /// The oldest last-verification among verified packs (RFC 3339).
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
    /// The newest.
    pub newest: Option<chrono::DateTime<chrono::Utc>>,
    /// When each pack was last verified (absent: never).
    pub packs: Vec<PackCoverage>,
}

/// One pack's verification time.
#[derive(Debug, Clone, Serialize)]
pub struct PackCoverage {
    /// The pack.
    pub pack: PackId,
    /// Last verified, if ever.
    pub verified: Option<chrono::DateTime<chrono::Utc>>,
}

/// The result of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Damage found. Empty means the repository is intact (as far as checked).
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not damage (unindexed packs, a cache
    /// that was rebuilt, duplicate copies).
    pub warnings: Vec<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Distinct trees checked.
    pub trees: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Distinct blobs in the index.
    pub blobs: usize,
    /// Data verification, when requested.
    pub data: Option<DataReport>,
    /// Coverage of data verification.
    pub coverage: CoverageReport,
}

impl CheckReport {
    /// No damage found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The copies of one blob: (pack, entry).
pub type Copies = smallvec::SmallVec<[(PackId, PackEntry); 1]>;

/// The repository's index, built from `index/` (not from the catalog).
#[derive(Debug, Default)]
pub struct RepoIndex {
    /// Every indexed pack: size, entries, and the segment that listed it.
    pub packs: HashMap<PackId, (u64, Vec<PackEntry>)>,
    /// Every blob and each of its copies (one, almost always: kept inline,
    /// as a separate allocation per blob tripled the index's memory).
    pub blobs: HashMap<BlobId, Copies>,
    /// Segments that load.
    pub segments: Vec<IndexId>,
    /// Segments that do not, with why.
    pub damaged_segments: Vec<(IndexId, String)>,
    /// Segments that a newer segment supersedes (ignored; repair removes them).
    pub superseded: Vec<IndexId>,
}

impl RepoIndex {
    /// Loads every index segment (in parallel). Segments superseded by a
    /// segment that loaded are set aside (see `superseded`).
    pub fn load(repo: &Repository) -> Result<Self> {
        let ids: Vec<IndexId> = repo
            .list_ids(ObjectKind::Index)?
            .into_iter()
            .map(IndexId)
            .collect();
        let loaded: Vec<(IndexId, Result<crate::format::index::IndexSegment>)> = ids
            .par_iter()
            .map(|id| (*id, repo.load_index(id)))
            .collect();
        let mut idx = RepoIndex::default();
        let mut good = vec![];
        for (id, r) in loaded {
            match r {
                Ok(seg) => good.push((id, seg)),
                Err(e) if e.is_not_found() => {} // deleted while we listed
                Err(e) => idx.damaged_segments.push((id, e.to_string())),
            }
        }
        let superseded: HashSet<IndexId> = good
            .iter()
            .flat_map(|(_, s)| s.supersedes.iter().copied())
            .collect();
        idx.damaged_segments
            .retain(|(id, _)| !superseded.contains(id));
        // sized once: growing a table of a million blobs holds the old
        // and the new table at once
        let kept = || good.iter().filter(|(id, _)| !superseded.contains(id));
        idx.blobs.reserve(
            kept()
                .flat_map(|(_, s)| s.packs.iter().map(|p| p.entries.len()))
                .sum(),
        );
        idx.packs.reserve(kept().map(|(_, s)| s.packs.len()).sum());
        for (id, seg) in good {
            if superseded.contains(&id) {
                idx.superseded.push(id);
                continue;
            }
            idx.segments.push(id);
            for p in seg.packs {
                for e in &p.entries {
                    let copies = idx.blobs.entry(e.id).or_default();
                    if !copies
                        .iter()
                        .any(|(pk, ce)| *pk == p.id && ce.kind == e.kind)
                    {
                        copies.push((p.id, *e));
                    }
                }
                idx.packs.insert(p.id, (p.size, p.entries));
            }
        }
        Ok(idx)
    }
}

/// Runs a check. `catalog`, if given, is compared with the repository's
/// index and rebuilt when it differs.
pub fn check(
    repo: &Repository,
    catalog: Option<&Catalog>,
    opts: &CheckOptions,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut problems: Vec<Problem> = vec![];

    // Config and keys.
    if !repo.config_object_intact()? {
        problems.push(Problem {
            object_kind: "config",
            object: "config".into(),
            detail:
                "missing or damaged; the repository opened with the copy kept in the key files. \
                     Run `arca repair index` to rewrite it"
                    .into(),
            affects: vec![],
        });
    }
    for l in repo.backend().list(ObjectKind::Key)? {
        let id = KeyId(l.key.id);
        let r = repo
            .read_object(&l.key)
            .and_then(|b| KeyFile::parse(&b).map_err(|e| Error::damaged(l.key, e)));
        if let Err(e) = r {
            problems.push(Problem {
                object_kind: "key",
                object: l.key.path(),
                detail: format!(
                    "{e}; the password of this key no longer opens the repository: remove it with \
                     `arca key remove {}` and add a new one with `arca key add`",
                    id.short()
                ),
                affects: vec![],
            });
        }
    }

    // Index.
    let index = RepoIndex::load(repo)?;
    for (id, why) in &index.damaged_segments {
        problems.push(Problem {
            object_kind: "index",
            object: ObjectKey::new(ObjectKind::Index, id.0).path(),
            detail: format!("{why}; run `arca repair index` to rebuild the index from the packs"),
            affects: vec![],
        });
    }
    for id in &index.superseded {
        report.warnings.push(format!(
            "index segment {id} is superseded by a newer one and ignored (`arca repair index` removes it)"
        ));
    }
    report.packs = index.packs.len();
    report.blobs = index.blobs.len();

    // Packs: present, right size, header agrees (unless read in full below).
    let (listed, short) = repo.list_packs_confirmed(index.packs.keys().copied())?;
    if short > 0 {
        report.warnings.push(format!(
            "the store's listing of packs/ left out {short} pack(s) that exist (a short LIST page?)"
        ));
    }
    let mut bad_packs: HashSet<PackId> = HashSet::new();
    let mut pack_problem: HashMap<PackId, usize> = HashMap::new();
    let (coverage, folded, damaged_records) = coverage::load(repo)?;
    for d in damaged_records {
        report
            .warnings
            .push(format!("check record unreadable (ignored): {d}"));
    }
    let to_read = select_packs(&opts.data, &index, &coverage);
    let to_read_set: HashSet<PackId> = to_read.iter().copied().collect();
    let mut header_checks = vec![];
    for (id, (size, _)) in &index.packs {
        let key = ObjectKey::new(ObjectKind::Pack, id.0);
        match listed.get(id) {
            None => {
                bad_packs.insert(*id);
                pack_problem.insert(*id, problems.len());
                problems.push(Problem {
                    object_kind: "pack",
                    object: key.path(),
                    detail: "missing: the index lists it but the store does not have it".into(),
                    affects: vec![],
                });
            }
            Some(s) if s != size => {
                bad_packs.insert(*id);
                pack_problem.insert(*id, problems.len());
                problems.push(Problem {
                    object_kind: "pack",
                    object: key.path(),
                    detail: format!(
                        "size {s} bytes, the index says {size} (truncated or replaced)"
                    ),
                    affects: vec![],
                });
            }
            Some(_) if !to_read_set.contains(id) => header_checks.push(*id),
            Some(_) => {}
        }
    }
    for (id, size) in &listed {
        if !index.packs.contains_key(id) {
            report.warnings.push(format!(
                "pack {id} ({size} bytes) is not in the index: left by an interrupted backup, or its index segment was lost (`arca repair index` adds it)"
            ));
        }
    }
    let header_results: Vec<(PackId, std::result::Result<(), String>)> = header_checks
        .par_iter()
        .with_max_len(1)
        .map(|id| {
            let (size, entries) = &index.packs[id];
            let r = match repo.read_pack_header(id, *size) {
                Ok(h) if &h == entries => Ok(()),
                Ok(_) => Err("its header disagrees with the index".to_string()),
                Err(e) => Err(format!("header unreadable: {e}")),
            };
            (*id, r)
        })
        .collect();
    for (id, r) in header_results {
        if let Err(why) = r {
            bad_packs.insert(id);
            pack_problem.insert(id, problems.len());
            problems.push(Problem {
                object_kind: "pack",
                object: ObjectKey::new(ObjectKind::Pack, id.0).path(),
                detail: format!(
                    "{why}; `arca check --read-data` tells which blobs are still intact"
                ),
                affects: vec![],
            });
        }
    }

    // Data.
    let mut bad_copies: HashMap<(PackId, BlobId), usize> = HashMap::new();
    let mut new_coverage = coverage.clone();
    if opts.data != DataSelection::None {
        let started = std::time::Instant::now();
        let total: u64 = to_read.iter().map(|p| index.packs[p].0).sum();
        opts.progress.bytes_total.store(total, Ordering::Relaxed);
        let results = read_packs(repo, &index, &to_read, opts)?;
        let mut dr = DataReport::default();
        let now = chrono::Utc::now().timestamp();
        for r in results {
            dr.packs += 1;
            dr.bytes += r.bytes;
            dr.blobs += r.blobs_ok;
            let key = ObjectKey::new(ObjectKind::Pack, r.pack.0);
            if r.problems.is_empty() && r.bad_blobs.is_empty() {
                new_coverage.verified.insert(r.pack, now);
                continue;
            }
            let at = problems.len();
            problems.push(Problem {
                object_kind: "pack",
                object: key.path(),
                detail: format!(
                    "{}{}",
                    r.problems.join("; "),
                    if r.bad_blobs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "{}{} of {} blobs damaged (`arca repair index --read-data` drops them, then `arca repair snapshots`)",
                            if r.problems.is_empty() { "" } else { "; " },
                            r.bad_blobs.len(),
                            index.packs[&r.pack].1.len()
                        )
                    }
                ),
                affects: vec![],
            });
            for (b, why) in &r.bad_blobs {
                bad_copies.insert((r.pack, *b), at);
                let _ = why;
            }
        }
        dr.seconds = started.elapsed().as_secs_f64();
        report.data = Some(dr);
        // Record what verified, folding the records read.
        new_coverage
            .verified
            .retain(|p, _| index.packs.contains_key(p));
        if new_coverage != coverage {
            // Verification stands even if it cannot be recorded (a
            // read-only repository): the next rolling check repeats it.
            if let Err(e) = coverage::save(repo, &new_coverage, &folded) {
                report.warnings.push(format!(
                    "the verified packs could not be recorded in checks/ ({e}); a rolling check will read them again"
                ));
            }
        }
    }
    report.coverage = coverage_report(&index, &new_coverage);

    // Snapshots and trees.
    // A data blob is available if some intact copy of it, as data, exists.
    let available = |b: &BlobId| -> bool {
        index.blobs.get(b).is_some_and(|copies| {
            copies.iter().any(|(p, e)| {
                e.kind == BlobKind::Data
                    && !bad_packs.contains(p)
                    && !bad_copies.contains_key(&(*p, *b))
            })
        })
    };
    let snap_ids: Vec<SnapshotId> = repo
        .list_ids(ObjectKind::Snapshot)?
        .into_iter()
        .map(SnapshotId)
        .collect();
    let snaps: Vec<(SnapshotId, Result<Snapshot>)> = snap_ids
        .par_iter()
        .map(|id| (*id, repo.load_snapshot(id)))
        .collect();
    let mut good_snaps = vec![];
    for (id, r) in snaps {
        match r {
            Ok(s) => good_snaps.push((id, s)),
            Err(e) if e.is_not_found() => {}
            Err(e) => problems.push(Problem {
                object_kind: "snapshot",
                object: ObjectKey::new(ObjectKind::Snapshot, id.0).path(),
                detail: format!("{e}; the snapshot is lost (the data it refers to may still be in other snapshots)"),
                affects: vec![],
            }),
        }
    }
    report.snapshots = good_snaps.len();
    let reader = TreeReader {
        repo,
        index: &index,
        bad_packs: &bad_packs,
        bad_copies: &bad_copies,
    };
    // Pass 1: which trees (transitively) need something unavailable.
    let memo: Mutex<HashMap<BlobId, bool>> = Mutex::new(HashMap::new());
    let trees_seen = AtomicUsize::new(0);
    good_snaps.par_iter().for_each(|(_, s)| {
        subtree_bad(&reader, &s.tree, &available, &memo, &trees_seen);
    });
    report.trees = trees_seen.load(Ordering::Relaxed);
    let memo = memo.into_inner().unwrap();
    // Pass 2: name the files and directories affected, per snapshot.
    let mut blob_problem: HashMap<BlobId, usize> = HashMap::new();
    for (sid, s) in &good_snaps {
        if memo.get(&s.tree).copied().unwrap_or(true) {
            let mut ctx = Pass2 {
                reader: &reader,
                memo: &memo,
                available: &available,
                snapshot: *sid,
                problems: &mut problems,
                blob_problem: &mut blob_problem,
                pack_problem: &pack_problem,
                bad_copies: &bad_copies,
                index: &index,
            };
            ctx.walk(&s.tree, "/", true);
        }
    }
    for p in &mut problems {
        p.affects
            .sort_by(|a, b| (a.snapshot, &a.path).cmp(&(b.snapshot, &b.path)));
        p.affects.dedup();
    }

    // The local catalog must say what the repository says.
    if let Some(cat) = catalog {
        if cat.recreated() {
            report.warnings.push(format!(
                "the local catalog {} was unreadable and was rebuilt from the repository",
                cat.path().display()
            ));
        }
        let rows = cat.blob_locations()?;
        let mut same = rows.len() == index.blobs.values().map(|v| v.len()).sum::<usize>();
        if same {
            same = rows.iter().all(|(b, p, e)| {
                index
                    .blobs
                    .get(b)
                    .is_some_and(|c| c.iter().any(|(pp, ee)| pp == p && ee == e))
            });
        }
        if !same {
            report.warnings.push(format!(
                "the local catalog {} disagreed with the repository's index; it was rebuilt",
                cat.path().display()
            ));
            cat.rebuild(repo)?;
        }
    }
    report.problems = problems;
    Ok(report)
}

/// Chooses the packs to read.
fn select_packs(sel: &DataSelection, index: &RepoIndex, cov: &Coverage) -> Vec<PackId> {
    let mut all: Vec<PackId> = index.packs.keys().copied().collect();
    all.sort();
    match *sel {
        DataSelection::None => vec![],
        DataSelection::All => all,
        DataSelection::Part { n, m } => all
            .into_iter()
            .filter(|p| {
                let v = u64::from_be_bytes(p.0[..8].try_into().unwrap());
                v % m as u64 == (n - 1) as u64
            })
            .collect(),
        DataSelection::Sample(pct) => {
            let k = ((all.len() as f64) * pct / 100.0).ceil() as usize;
            // a random rotation of a random order
            let mut keyed: Vec<([u8; 8], PackId)> = all
                .into_iter()
                .map(|p| {
                    let mut r = [0u8; 8];
                    crate::format::crypto::random_bytes(&mut r);
                    (r, p)
                })
                .collect();
            keyed.sort();
            keyed.into_iter().take(k).map(|(_, p)| p).collect()
        }
        DataSelection::Rolling(pct) => {
            let k = ((all.len() as f64) * pct / 100.0).ceil() as usize;
            // never verified first, then the oldest verification
            all.sort_by_key(|p| (cov.verified.get(p).copied().unwrap_or(i64::MIN), *p));
            all.into_iter().take(k).collect()
        }
    }
}

fn coverage_report(index: &RepoIndex, cov: &Coverage) -> CoverageReport {
    let ts = |t: i64| chrono::DateTime::from_timestamp(t, 0);
    let mut packs: Vec<PackCoverage> = index
        .packs
        .keys()
        .map(|p| PackCoverage {
            pack: *p,
            verified: cov.verified.get(p).and_then(|t| ts(*t)),
        })
        .collect();
    packs.sort_by_key(|p| (p.verified, p.pack));
    let times: Vec<i64> = index
        .packs
        .keys()
        .filter_map(|p| cov.verified.get(p).copied())
        .collect();
    let total = index.packs.len();
    CoverageReport {
        packs_total: total,
        packs_verified: times.len(),
        percent: if total == 0 {
            100.0
        } else {
            times.len() as f64 * 100.0 / total as f64
        },
        oldest: times.iter().min().and_then(|t| ts(*t)),
        newest: times.iter().max().and_then(|t| ts(*t)),
        packs,
    }
}

struct PackResult {
    pack: PackId,
    bytes: u64,
    blobs_ok: u64,
    problems: Vec<String>,
    bad_blobs: Vec<(BlobId, String)>,
}

/// Downloads and verifies packs, `fetchers` at a time.
fn read_packs(
    repo: &Repository,
    index: &RepoIndex,
    packs: &[PackId],
    opts: &CheckOptions,
) -> Result<Vec<PackResult>> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(packs.len()));
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.fetchers.max(1).min(packs.len().max(1)) {
            s.spawn(|| {
                loop {
                    if opts.cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = packs.get(i) else { return };
                    match verify_pack(repo, index, p) {
                        Ok(r) => {
                            opts.progress
                                .bytes_done
                                .fetch_add(r.bytes, Ordering::Relaxed);
                            out.lock().unwrap().push(r);
                        }
                        Err(e) => {
                            fatal.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().unwrap() {
        return Err(e);
    }
    if opts.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted("check stopped".into()));
    }
    Ok(out.into_inner().unwrap())
}

/// Reads one pack whole and checks its name, header and every blob.
fn verify_pack(repo: &Repository, index: &RepoIndex, id: &PackId) -> Result<PackResult> {
    let key = ObjectKey::new(ObjectKind::Pack, id.0);
    let (size, entries) = &index.packs[id];
    let mut r = PackResult {
        pack: *id,
        bytes: 0,
        blobs_ok: 0,
        problems: vec![],
        bad_blobs: vec![],
    };
    let bytes = match repo.backend().get(&key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            r.problems.push("missing".into());
            return Ok(r);
        }
        Err(e) => return Err(e),
    };
    r.bytes = bytes.len() as u64;
    if bytes.len() as u64 != *size {
        r.problems
            .push(format!("{} bytes, the index says {size}", bytes.len()));
    }
    if content_hash(&bytes) != id.0 {
        r.problems
            .push("content does not match its name (BLAKE3)".into());
    }
    match pack::read_header_from_bytes_unchecked(repo.key(), &bytes) {
        Ok(h) if &h == entries => {}
        Ok(_) => r.problems.push("header disagrees with the index".into()),
        Err(e) => r.problems.push(format!("header: {e}")),
    }
    // Blobs, located by the index (so a damaged header does not hide them).
    let results: Vec<(BlobId, std::result::Result<(), String>)> = entries
        .par_iter()
        .map(|e| {
            let range = e.offset as usize..(e.offset + e.length as u64) as usize;
            let res = match bytes.get(range) {
                Some(sealed) => pack::open_blob(repo.key(), e, sealed).map(|_| ()),
                None => Err("beyond the end of the pack".into()),
            };
            (e.id, res)
        })
        .collect();
    for (b, res) in results {
        match res {
            Ok(()) => r.blobs_ok += 1,
            Err(why) => r.bad_blobs.push((b, why)),
        }
    }
    Ok(r)
}

/// Reads trees through the repository's own index, trying every intact copy.
struct TreeReader<'a> {
    repo: &'a Repository,
    index: &'a RepoIndex,
    bad_packs: &'a HashSet<PackId>,
    bad_copies: &'a HashMap<(PackId, BlobId), usize>,
}

impl TreeReader<'_> {
    fn tree(&self, id: &BlobId) -> std::result::Result<Tree, String> {
        let copies = self.index.blobs.get(id).ok_or("not in the index")?;
        let mut last = String::from("no intact copy");
        for (p, e) in copies {
            if self.bad_packs.contains(p) || self.bad_copies.contains_key(&(*p, *id)) {
                continue;
            }
            if e.kind != BlobKind::Tree {
                last = "indexed as a data blob".into();
                continue;
            }
            let key = ObjectKey::new(ObjectKind::Pack, p.0);
            let r = self
                .repo
                .backend()
                .get_range(&key, e.range())
                .map_err(|e| e.to_string())
                .and_then(|sealed| pack::open_blob(self.repo.key(), e, &sealed))
                .and_then(|plain| Tree::decode(&plain));
            match r {
                Ok(t) => return Ok(t),
                Err(why) => last = format!("in pack {}: {why}", p.short()),
            }
        }
        Err(last)
    }
}

/// Whether anything below tree `id` is unavailable (memoised).
fn subtree_bad(
    r: &TreeReader<'_>,
    id: &BlobId,
    available: &(dyn Fn(&BlobId) -> bool + Sync),
    memo: &Mutex<HashMap<BlobId, bool>>,
    seen: &AtomicUsize,
) -> bool {
    if let Some(b) = memo.lock().unwrap().get(id) {
        return *b;
    }
    seen.fetch_add(1, Ordering::Relaxed);
    let bad = match r.tree(id) {
        Err(_) => true,
        Ok(t) => {
            let mut bad = false;
            for n in &t.nodes {
                match n.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = n.subtree()
                            && subtree_bad(r, &sub, available, memo, seen)
                        {
                            bad = true;
                        }
                    }
                    NodeKind::File if n.extents().iter().any(|e| !available(&e.blob)) => {
                        bad = true;
                    }
                    _ => {}
                }
            }
            bad
        }
    };
    memo.lock().unwrap().insert(*id, bad);
    bad
}

/// Names what is affected below a bad tree.
struct Pass2<'a, 'b> {
    reader: &'a TreeReader<'a>,
    memo: &'a HashMap<BlobId, bool>,
    available: &'a (dyn Fn(&BlobId) -> bool + Sync),
    snapshot: SnapshotId,
    problems: &'b mut Vec<Problem>,
    blob_problem: &'b mut HashMap<BlobId, usize>,
    pack_problem: &'a HashMap<PackId, usize>,
    bad_copies: &'a HashMap<(PackId, BlobId), usize>,
    index: &'a RepoIndex,
}

impl Pass2<'_, '_> {
    /// The problem that explains why `blob` is unavailable.
    fn problem_for(&mut self, blob: &BlobId, kind: &'static str) -> usize {
        if let Some(copies) = self.index.blobs.get(blob) {
            for (p, _) in copies {
                if let Some(i) = self.bad_copies.get(&(*p, *blob)) {
                    return *i;
                }
                if let Some(i) = self.pack_problem.get(p) {
                    return *i;
                }
            }
        }
        if let Some(i) = self.blob_problem.get(blob) {
            return *i;
        }
        let i = self.problems.len();
        self.problems.push(Problem {
            object_kind: kind,
            object: format!("{kind} blob {blob}"),
            detail: if self.index.blobs.contains_key(blob) {
                "no intact copy".into()
            } else {
                "not in the index (lost, or its index segment is damaged: try `arca repair index`)"
                    .into()
            },
            affects: vec![],
        });
        self.blob_problem.insert(*blob, i);
        i
    }

    fn walk(&mut self, tree: &BlobId, path: &str, root: bool) {
        let t = match self.reader.tree(tree) {
            Ok(t) => t,
            Err(why) => {
                let i = self.problem_for(tree, "tree");
                if self.problems[i].object_kind == "tree" && self.problems[i].affects.is_empty() {
                    self.problems[i].detail =
                        format!("{why}; everything below {path} is lost in this snapshot");
                }
                self.problems[i].affects.push(Affected {
                    snapshot: self.snapshot,
                    path: if root { "/".into() } else { path.into() },
                });
                return;
            }
        };
        for n in &t.nodes {
            let child = if path == "/" {
                format!("/{}", n.display_name())
            } else {
                format!("{path}/{}", n.display_name())
            };
            self.node(n, &child);
        }
    }

    fn node(&mut self, n: &Node, path: &str) {
        match n.kind {
            NodeKind::Dir => {
                if let Some(sub) = n.subtree()
                    && self.memo.get(&sub).copied().unwrap_or(true)
                {
                    self.walk(&sub, path, false);
                }
            }
            NodeKind::File => {
                let lost: Vec<BlobId> = n
                    .extents()
                    .iter()
                    .map(|e| e.blob)
                    .filter(|b| !(self.available)(b))
                    .collect();
                for b in lost {
                    let i = self.problem_for(&b, "data");
                    self.problems[i].affects.push(Affected {
                        snapshot: self.snapshot,
                        path: path.into(),
                    });
                }
            }
            _ => {}
        }
    }
}
