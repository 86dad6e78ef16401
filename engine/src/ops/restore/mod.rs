//! Restore: a snapshot (or part of it) back onto a filesystem.
//!
//! The plan is computed first ([`plan`]): which files and directories to
//! create and where the blobs they need are; grouped by pack and sorted by
//! offset, the byte ranges to fetch follow from it (neighbouring blobs are
//! coalesced into one ranged read, so each needed pack range is fetched
//! once). Then the plan is executed (`execute`): fetcher threads read ranges concurrently, open every
//! blob (authenticate, decompress, verify its keyed id) and write it with
//! positional writes into files preallocated to their size (holes stay
//! holes). Each file's BLAKE3 is computed as its extents complete in
//! order (from the blob in hand; an extent that completed before the ones
//! before it is read back from the target), and when the last blob is
//! written it is compared with the recorded hash; only then does the file
//! get its metadata. A file that cannot be completed or verified is
//! removed and reported by name: a restore never leaves wrong bytes behind.

mod execute;
pub mod plan;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

pub use execute::Failure;
use plan::RestorePlan;

use crate::error::{Error, IoContext, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::session::{Reads, Session};

/// Restore settings.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Restore only these snapshot paths (absolute, as `ls` shows them)
    /// and what is below them; empty means everything.
    pub include: Vec<String>,
    /// Concurrent pack reads.
    pub fetchers: usize,
    /// Set to stop (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
    /// Live counters.
    pub progress: Arc<RestoreProgress>,
}

impl RestoreOptions {
    /// Defaults for a target.
    pub fn new(target: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            target,
            include: vec![],
            fetchers: (cores + 1).clamp(3, 16),
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(RestoreProgress::default()),
        }
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    /// Bytes planned.
    pub bytes_total: AtomicU64,
    /// Bytes written.
    pub bytes_done: AtomicU64,
    /// Files finished.
    pub files_done: AtomicU64,
}

/// What a restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    /// Regular files restored and verified.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs, hard links.
    pub others: u64,
    /// Logical bytes of restored files.
    pub bytes: u64,
    /// Bytes fetched from the repository.
    pub bytes_fetched: u64,
    /// Ranged reads issued.
    pub reads: u64,
    /// Metadata that could not be applied (ownership as non-root, ...).
    pub warnings: Vec<String>,
}

/// Plans the restore of `snapshot` (whose id is `id`) per `opts`, without
/// touching the target.
pub fn plan<L: Locator>(
    reader: &BlobReader<L>,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    plan::plan(reader, id, snapshot, &opts.include, &opts.target)
}

/// Restores `snapshot` (whose id is `id`) per `opts`: plans, then executes.
/// The session's lock keeps what it reads from being deleted meanwhile.
pub fn restore<A: Reads>(
    session: &Session<A>,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
) -> Result<RestoreSummary> {
    let reader = session.reader();
    if let Ok(md) = std::fs::metadata(&opts.target)
        && !md.is_dir()
    {
        return Err(Error::Invalid(format!(
            "the restore target {} is a file, not a directory",
            opts.target.display()
        )));
    }
    let p = plan(&reader, id, snapshot, opts)?;
    for (_, n) in &p.files {
        opts.progress
            .bytes_total
            .fetch_add(n.size, std::sync::atomic::Ordering::Relaxed);
    }
    std::fs::create_dir_all(&opts.target).at(&opts.target)?;
    execute::raise_fd_limit();
    execute::execute(&reader, p, opts)
}
