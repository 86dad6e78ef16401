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
//!
//! The phases, in order, each in its own module: [`structure`] (config,
//! keys, index segments, packs and their headers), [`data`] (the packs
//! read in full, and the coverage records), [`trees`] (every snapshot's
//! trees, and the files that need what is damaged). A phase adds to the
//! [`Findings`] and to the [`Damage`] the later phases judge blobs by.

mod data;
mod structure;
mod trees;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId, SnapshotId};
use crate::store::session::{Reads, Session};

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
    /// Archived WAL files (`wal/`) listed, and how many were read and
    /// authenticated (all of them with `--read-data`, none otherwise).
    pub wal_files: usize,
    /// WAL files read and authenticated.
    pub wal_verified: usize,
}

impl CheckReport {
    /// No damage found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the phases found so far.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Findings {
    /// Records a problem; returns its index (to attach affected paths).
    fn problem(&mut self, object_kind: &'static str, object: String, detail: String) -> usize {
        self.problems.push(Problem {
            object_kind,
            object,
            detail,
            affects: vec![],
        });
        self.problems.len() - 1
    }
}

/// What is known to be unusable, and which problem explains it.
#[derive(Debug, Default)]
struct Damage {
    /// Packs that are missing, of the wrong size, or whose header is bad.
    packs: HashMap<PackId, usize>,
    /// Copies that did not verify when their pack was read.
    copies: HashMap<(PackId, BlobId), usize>,
}

impl Damage {
    /// Whether the copy of `blob` in `pack` may be read.
    fn usable(&self, pack: &PackId, blob: &BlobId) -> bool {
        !self.packs.contains_key(pack) && !self.copies.contains_key(&(*pack, *blob))
    }
}

/// Runs a check. The session's catalog is compared with the repository's
/// index and rebuilt when it differs.
/// Lists `wal/`; with every pack to be read (`--read-data`), reads and
/// authenticates every archived WAL file too (`format-spec` §14.4), a
/// bounded number at a time. Returns (listed, verified).
fn wal_files(
    repo: &crate::store::repo::Repository,
    opts: &CheckOptions,
    found: &mut Findings,
) -> Result<(usize, usize)> {
    use crate::format::wal::WalFile;
    let files = crate::ops::wal::list(repo)?;
    if opts.data != DataSelection::All {
        return Ok((files.len(), 0));
    }
    let bad: std::sync::Mutex<Vec<(String, String)>> = Default::default();
    let names: Vec<WalFile> = files.iter().map(|(f, _)| *f).collect();
    crate::host::threads::for_each_concurrent(&names, opts.fetchers, |f| {
        if opts.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(crate::Error::Interrupted("check".into()));
        }
        match crate::ops::wal::fetch(repo, *f) {
            Ok(Some(_)) => {}
            Ok(None) => bad
                .lock()
                .unwrap()
                .push((f.name(), "listed, but gone when read".into())),
            Err(e) if matches!(e, crate::Error::Damaged { .. }) => {
                bad.lock().unwrap().push((f.name(), e.to_string()))
            }
            Err(e) => return Err(e),
        }
        Ok(())
    })?;
    let bad = bad.into_inner().unwrap();
    for (name, why) in &bad {
        found.problem("WAL file", name.clone(), why.clone());
    }
    Ok((files.len(), files.len() - bad.len()))
}

pub fn check<A: Reads>(session: &Session<A>, opts: &CheckOptions) -> Result<CheckReport> {
    let repo = session.repo();
    let catalog = Some(&**session.catalog());
    let mut report = CheckReport::default();
    let mut found = Findings::default();
    structure::config_and_keys(repo, &mut found)?;
    let index = structure::index(repo, &mut found)?;
    report.packs = index.packs.len();
    report.blobs = index.blob_count();
    let (coverage, folded) = data::coverage(repo, &mut found)?;
    let to_read = data::select_packs(&opts.data, &index, &coverage);
    let mut damage = structure::packs(repo, &index, &to_read, &mut found)?;
    if opts.data != DataSelection::None {
        let (dr, verified) = data::verify(repo, &index, &to_read, opts, &mut found, &mut damage)?;
        report.data = Some(dr);
        let now = data::record(repo, &index, &coverage, verified, &folded, &mut found);
        report.coverage = data::coverage_report(&index, &now);
    } else {
        report.coverage = data::coverage_report(&index, &coverage);
    }
    (report.wal_files, report.wal_verified) = wal_files(repo, opts, &mut found)?;
    let (snapshots, trees) = trees::snapshots(repo, &index, &damage, &mut found)?;
    report.snapshots = snapshots;
    report.trees = trees;
    if let Some(cat) = catalog {
        structure::catalog_agrees(repo, cat, &index, &mut found)?;
    }
    for p in &mut found.problems {
        p.affects
            .sort_by(|a, b| (a.snapshot, &a.path).cmp(&(b.snapshot, &b.path)));
        p.affects.dedup();
    }
    report.problems = found.problems;
    report.warnings.extend(found.warnings);
    Ok(report)
}
