//! Backup: sources in, snapshot out.
//!
//! Threads and what bounds them:
//! - the walker (the calling thread) lists directories and decides what
//!   must be read, running ahead of the rest by at most `EVENTS` entries;
//! - reader threads read files and find chunk boundaries;
//! - the rayon pool ids, dedups, compresses and seals chunks, with at most
//!   `IN_FLIGHT` bytes of chunks between readers and packs;
//! - uploader threads (in the blob writer) upload packs;
//! - the tree builder assembles directories in order as files complete,
//!   and stores each directory as a tree blob.
//!
//! Peak memory is those bounds plus the packs being filled and uploaded:
//! it does not grow with the size of the input.
//!
//! The snapshot is written last, after the blob writer has flushed every
//! pack and index segment: a snapshot never refers to anything that is not
//! durable. An interrupted or failed backup leaves no snapshot; what it
//! uploaded is indexed and dedups the next run.
//!
//! Locking: the backup runs in a session that holds a shared lock (see
//! `store::session`). A watcher thread stops the pipeline as soon as
//! the lock is lost, and the lock is checked again before the index is
//! flushed and before the snapshot is written: a backup whose lock expired
//! (so that a prune may have deleted what it deduplicated against) never
//! commits a snapshot.

pub mod dumps;
mod read;
mod scan;
mod source;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, bounded};

use read::{BufferPool, ContentReader};
pub use read::{FileContent, FileOutcome};
use scan::{Event, FileJob, Leaf, SourceTrie, Walker};
pub use source::{CommandSource, ReaderSource, Source, StreamSource};

use crate::error::{Error, Result};
use crate::format::chunker::{Chunker, ChunkerParams};
use crate::format::compress::CompressionMode;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::pack::BlobKind;
use crate::format::snapshot::{DumpCheck, Snapshot, SourceError, Summary};
use crate::format::tree::{Content, Node, NodeKind, Timestamp, Tree};
use crate::host::threads::{Budget, Pending};
use crate::store::blob_reader::BlobReader;
use crate::store::blob_writer::BlobWriter;
use crate::store::catalog::Catalog;
use crate::store::lock::LockWatch;
use crate::store::repo::Repository;
use crate::store::session::{Session, Writes};

/// Walker look-ahead, in entries.
const EVENTS: usize = 8192;
/// Chunk bytes between readers and packs.
const IN_FLIGHT: u64 = 16 << 20;

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files finished (read or unmodified).
    pub files: AtomicU64,
    /// Directories finished.
    pub dirs: AtomicU64,
    /// Bytes read from sources.
    pub bytes_read: AtomicU64,
    /// Bytes of files taken from the parent without reading.
    pub bytes_unmodified: AtomicU64,
    /// Bytes of holes in the files read (skipped, not read).
    pub bytes_sparse: AtomicU64,
    /// Sources that could not be read.
    pub errors: AtomicU64,
    /// What the run is expected to cover: the parent's size (0 without a
    /// parent), for an estimate of the time left.
    pub bytes_expected: AtomicU64,
}

/// Backup settings.
pub struct BackupOptions {
    /// What to back up.
    pub source: Source,
    /// Host name recorded in the snapshot.
    pub host: String,
    /// Tags recorded in the snapshot.
    pub tags: Vec<String>,
    /// Exclusion globs.
    pub excludes: Vec<String>,
    /// Compression.
    pub compression: CompressionMode,
    /// Chunk sizes for this backup instead of the repository's (borg's
    /// per-archive `--chunker-params`). Smaller chunks dedup more of a file
    /// changed in many scattered places (a database dump) at the cost of
    /// more index entries and slightly worse compression. Restore never
    /// needs them (a file is its list of blobs), but only backups chunked
    /// alike share chunks: give a source the same sizes every time.
    pub chunker: Option<ChunkerParams>,
    /// Read every file even if unchanged.
    pub force: bool,
    /// Save a stream that ends before its first byte. Off by default: an
    /// empty dump is almost always a dump that failed upstream of a pipe
    /// (`pg_dump nosuchdb | arca backup --stdin`), and a snapshot of it
    /// would look like a good backup.
    pub allow_empty: bool,
    /// Record access times (off by default: reading a tree changes them,
    /// so recording them makes every backup store new tree blobs).
    pub with_atime: bool,
    /// Use this parent instead of the latest matching snapshot.
    pub parent: Option<SnapshotId>,
    /// Snapshot time (default: now).
    pub time: Option<DateTime<Utc>>,
    /// Reader threads.
    pub readers: usize,
    /// Upload threads (concurrent pack uploads; memory holds about
    /// `uploaders + 4` packs).
    pub uploaders: usize,
    /// Set to stop the backup (Ctrl-C).
    pub cancel: Arc<AtomicBool>,
    /// Counters for a progress display.
    pub progress: Arc<Progress>,
}

impl BackupOptions {
    /// Defaults for a source.
    pub fn new(source: Source) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            source,
            host: crate::host::facts::hostname(),
            tags: vec![],
            excludes: vec![],
            compression: CompressionMode::Auto,
            chunker: None,
            force: false,
            allow_empty: false,
            with_atime: false,
            parent: None,
            time: None,
            readers: cores.clamp(2, 8),
            uploaders: 2,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Progress::default()),
        }
    }
}

/// The warning for an entry that was listed but gone when read.
pub(crate) const VANISHED: &str = "vanished before it was read (deleted or renamed since its directory was listed): not in the snapshot";

/// A finished backup.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// The snapshot.
    pub snapshot: Snapshot,
}

/// Lexically normalised absolute path (no `.`, `..` resolved textually).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The paths a backup of `paths` records in its snapshot: made absolute
/// (lexically), sorted, without duplicates. A source's snapshots are
/// found by these and the host.
pub fn recorded_paths(paths: &[PathBuf]) -> Result<Vec<String>> {
    let mut v: Vec<String> = paths
        .iter()
        .map(|p| absolute(p).map(|a| a.display().to_string()))
        .collect::<Result<_>>()?;
    v.sort();
    v.dedup();
    Ok(v)
}

/// The path a backup of a stream stored as `name` records: `/name`.
pub fn stream_path(name: &str) -> Result<String> {
    crate::format::tree::check_name(name.as_bytes())
        .map_err(|e| Error::Invalid(format!("--stdin-filename: {e}")))?;
    Ok(format!("/{name}"))
}

/// Runs a backup and writes its snapshot.
pub fn backup<A: Writes>(session: &Session<A>, mut opts: BackupOptions) -> Result<BackupOutcome> {
    let repo = session.repo();
    let catalog = session.catalog().clone();
    let lock = session.watch();
    let start = Utc::now();
    let time = opts.time.unwrap_or(start);
    let mut tags = std::mem::take(&mut opts.tags);
    tags.sort();
    tags.dedup();
    let source = std::mem::replace(&mut opts.source, Source::Paths(vec![]));
    let is_paths = matches!(source, Source::Paths(_));
    let paths: Vec<String> = match &source {
        Source::Paths(ps) => {
            if ps.is_empty() {
                return Err(Error::Invalid(
                    "nothing to back up: give at least one path".into(),
                ));
            }
            let abs: Vec<PathBuf> = ps.iter().map(|p| absolute(p)).collect::<Result<_>>()?;
            // A backup of nothing is a mistake (a typo, an unmounted
            // volume), not an empty snapshot that would become `latest`.
            let missing = unreadable_sources(&abs);
            if missing.len() == abs.len() {
                return Err(Error::NoSources(missing));
            }
            recorded_paths(ps)?
        }
        Source::Stream(src) => vec![stream_path(src.name())?],
    };

    // The parent: given, or the latest snapshot of the same paths and host.
    let snapshots = catalog.snapshots()?;
    let parent = match opts.parent {
        Some(id) => Some(
            snapshots
                .iter()
                .find(|(i, _)| *i == id)
                .cloned()
                .ok_or_else(|| Error::NoSnapshot(format!("parent {id}")))?,
        ),
        None => snapshots
            .iter()
            .filter(|(_, s)| s.host == opts.host && s.paths == paths)
            .max_by_key(|(_, s)| s.time)
            .cloned(),
    };
    if let Some((_, p)) = &parent {
        opts.progress
            .bytes_expected
            .store(p.summary.total_bytes, Ordering::Relaxed);
    }

    // The pipeline stops on one flag, which the watcher sets on Ctrl-C
    // (the caller's flag) or when the lock is lost, and which the first
    // failure inside the pipeline sets too. What stopped it is decided at
    // the end (see `stopped`), so that the error names the cause.
    let user_cancel = std::mem::replace(&mut opts.cancel, Arc::new(AtomicBool::new(false)));
    let watcher = Watcher::start(lock.clone(), user_cancel.clone(), opts.cancel.clone());
    let check_lock = || match &lock {
        Some(l) => l.check(),
        None => Ok(()),
    };

    let writer = Arc::new(BlobWriter::new(
        repo.clone(),
        catalog.clone(),
        opts.compression,
        opts.uploaders,
    ));
    let chunker = match opts.chunker {
        None => repo.chunker().clone(),
        Some(p) => {
            p.validate().map_err(Error::Invalid)?;
            Chunker::new(p, repo.key().chunker_key())
        }
    };
    let reader = Arc::new(ContentReader {
        writer: writer.clone(),
        buffers: Arc::new(BufferPool::new(chunker.max_size())),
        chunker,
        budget: Arc::new(Budget::new(IN_FLIGHT)),
        progress: opts.progress.clone(),
        cancel: opts.cancel.clone(),
    });

    let built = match source {
        Source::Paths(ps) => {
            let abs: Vec<PathBuf> = ps.iter().map(|p| absolute(p)).collect::<Result<_>>()?;
            backup_paths(
                repo,
                &catalog,
                &writer,
                &reader,
                &opts,
                &abs,
                parent.as_ref(),
            )
        }
        Source::Stream(mut src) => backup_stream(&writer, &reader, &opts, &mut *src, time),
    };
    drop(watcher);
    let lock = check_lock();
    let built = match built {
        Ok(b) if lock.is_ok() && !user_cancel.load(Ordering::Relaxed) => b,
        other => {
            return Err(stopped(
                &writer,
                other.err(),
                lock.err(),
                user_cancel.load(Ordering::Relaxed),
            ));
        }
    };
    // Every source vanished between the first look and the walk.
    if is_paths
        && paths
            .iter()
            .all(|p| built.errors.iter().any(|e| &e.path == p))
    {
        writer.abandon();
        return Err(Error::NoSources(built.errors));
    }
    if let Err(e) = writer.flush() {
        return Err(stopped(&writer, Some(e), None, false));
    }

    let st = writer.stats();
    let mut summary = built.summary;
    summary.backup_start = Some(start);
    summary.bytes_read = opts.progress.bytes_read.load(Ordering::Relaxed);
    summary.blobs_added = st.blobs_added.load(Ordering::Relaxed);
    summary.data_added = st.bytes_added.load(Ordering::Relaxed);
    summary.data_added_packed = st.bytes_uploaded.load(Ordering::Relaxed);
    summary.backup_end = Some(Utc::now());
    // PostgreSQL base backups among the sources, and the WAL they need
    let (postgres, pg_warnings) = if is_paths {
        crate::ops::wal::base::detect(&paths)
    } else {
        (vec![], vec![])
    };
    let mut warnings = built.warnings;
    warnings.extend(pg_warnings);
    let snapshot = Snapshot {
        time,
        host: opts.host.clone(),
        username: crate::host::facts::username(),
        paths,
        tags,
        tree: built.root,
        parent: parent.map(|(id, _)| id),
        original: None,
        program_version: format!("arca {}", env!("CARGO_PKG_VERSION")),
        partial: !built.errors.is_empty(),
        errors: built.errors,
        warnings,
        summary,
        postgres,
        checks: built.checks,
        base: writer.base(),
    };
    // The commit point: only under a lock that is still held.
    if let Err(lost) = check_lock() {
        return Err(stopped(&writer, None, Some(lost), false));
    }
    let id = repo
        .save_snapshot(&snapshot)
        .map_err(|e| stopped(&writer, Some(e), None, false))?;
    // The handshake with prune (format-spec §15): a prune that swept a
    // mark this backup was based before either listed this snapshot and
    // protected it, or wrote its seal before this read sees it.
    crate::store::prune_seals::confirm_saved(repo, &id, &snapshot.base)?;
    catalog.add_snapshot(&id, &snapshot)?;
    Ok(BackupOutcome { id, snapshot })
}

/// The sources that cannot even be looked at (missing, or a parent
/// directory not searchable), with why.
fn unreadable_sources(paths: &[PathBuf]) -> Vec<SourceError> {
    paths
        .iter()
        .filter_map(|p| {
            std::fs::symlink_metadata(p).err().map(|e| SourceError {
                path: p.display().to_string(),
                error: e.to_string(),
            })
        })
        .collect()
}

/// The error for a backup that stopped before its snapshot was saved:
/// the first cause (an upload that failed, then a lost lock, then any other
/// failure, then Ctrl-C), and what was left in the repository. A part of
/// the pipeline that only stopped because another part had failed reports
/// [`Error::Interrupted`], which is never taken for the cause.
fn stopped(writer: &BlobWriter, failure: Option<Error>, lock: Option<Error>, user: bool) -> Error {
    let mut left = writer.abandon();
    let upload = left.upload_error.take();
    let detail = left.describe();
    let wrap = |cause: Error| {
        // an object the backup read (its parent's trees, a pack it had
        // just uploaded) vanished: only a prune deletes, so one ran beside
        let why = if cause.is_not_found() {
            "; the object was deleted while this backup ran, by a prune beside it (it frees what forgotten snapshots used): run the backup again"
        } else {
            ""
        };
        Error::Stopped {
            operation: "backup",
            cause: Box::new(cause),
            detail: format!("no snapshot was saved; {detail}{why}"),
        }
    };
    if user && upload.is_none() {
        return Error::Interrupted(format!(
            "backup stopped before its snapshot was written; {detail}"
        ));
    }
    let (real, secondary): (Option<Error>, Option<Error>) = match failure {
        Some(e @ Error::Interrupted(_)) => (None, Some(e)),
        other => (other, None),
    };
    match (upload, real, lock, secondary) {
        (Some(upload), ..) => wrap(upload),
        // a lost lock stops the pipeline, and what then fails is its echo
        (None, _, Some(lost), _) => lost,
        (None, Some(e), ..) => wrap(e),
        (None, None, None, Some(e)) => wrap(e),
        (None, None, None, None) => wrap(Error::Interrupted("backup stopped".into())),
    }
}

/// Sets `stop` when the user cancels or the lock (if any) is lost; stops
/// watching when dropped.
struct Watcher {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(lock: Option<LockWatch>, user: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let thread = std::thread::Builder::new()
            .name("arca-watch".into())
            .spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    if user.load(Ordering::Relaxed)
                        || lock.as_ref().is_some_and(|l| l.check().is_err())
                    {
                        stop.store(true, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            })
            .ok();
        Self { done, thread }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the tree builder produced.
struct Built {
    root: BlobId,
    summary: Summary,
    errors: Vec<SourceError>,
    warnings: Vec<SourceError>,
    /// What checked a streamed dump.
    checks: Vec<DumpCheck>,
}

fn backup_paths(
    repo: &Repository,
    catalog: &Arc<Catalog>,
    writer: &Arc<BlobWriter>,
    reader: &Arc<ContentReader>,
    opts: &BackupOptions,
    paths: &[PathBuf],
    parent: Option<&(SnapshotId, Snapshot)>,
) -> Result<Built> {
    let blob_reader = BlobReader::new(repo.clone(), catalog.clone());
    let parent_root = match parent {
        Some((id, s)) => blob_reader.tree(&s.tree, &|| format!("snapshot {id}")).ok(),
        None => None,
    };
    let (ev_tx, ev_rx) = bounded::<Vec<Event>>(EVENTS / scan::EVENT_BATCH);
    let (job_tx, job_rx) = bounded::<Vec<FileJob>>(opts.readers * 2);
    let readers: Vec<_> = (0..opts.readers.max(1))
        .map(|i| {
            let rx: Receiver<Vec<FileJob>> = job_rx.clone();
            let reader = reader.clone();
            std::thread::Builder::new()
                .name(format!("arca-read-{i}"))
                .spawn(move || {
                    for batch in rx {
                        for job in batch {
                            if job.device {
                                reader.read_device(&job.path, job.pending, job.parent.as_deref());
                            } else {
                                reader.read_file(&job.path, job.pending, job.parent.as_deref());
                            }
                        }
                    }
                })
                .expect("spawn reader thread")
        })
        .collect();
    drop(job_rx);
    let builder = {
        let writer = writer.clone();
        let cancel = opts.cancel.clone();
        let progress = opts.progress.clone();
        let roots: std::collections::HashSet<String> =
            paths.iter().map(|p| p.display().to_string()).collect();
        std::thread::Builder::new()
            .name("arca-trees".into())
            .spawn(move || build_trees(ev_rx, &writer, &cancel, &progress, &roots))
            .expect("spawn tree builder")
    };
    let walked = {
        let mut walker = Walker::new(
            ev_tx,
            job_tx,
            parent.map(|_| &blob_reader),
            catalog,
            crate::ops::patterns::Patterns::new(&opts.excludes, "--exclude")?,
            opts.force,
            opts.with_atime,
            opts.cancel.clone(),
            opts.progress.clone(),
        );
        let trie = SourceTrie::new(paths);
        walker
            .walk_trie(Path::new("/"), &trie, parent_root)
            .and_then(|()| walker.finish())
        // the walker drops its channel ends here, which ends the readers and the builder
    };
    for r in readers {
        let _ = r.join();
    }
    let built = builder
        .join()
        .map_err(|_| Error::Interrupted("the tree builder panicked".into()))?;
    // The part that failed first names the cause; the other one then only
    // saw the pipeline stop.
    match (walked, built) {
        (Ok(()), b) => b,
        (Err(Error::Interrupted(_)), Err(b)) => Err(b),
        (Err(w), _) => Err(w),
    }
}

/// Consumes walker events in order, waits for file contents, and stores
/// each directory as a tree blob. Returns the root tree.
/// `roots`: the source paths the user named; one of them that vanishes is
/// an error, not a warning (there is then nothing of it to back up).
fn build_trees(
    events: Receiver<Vec<Event>>,
    writer: &BlobWriter,
    cancel: &AtomicBool,
    progress: &Progress,
    roots: &std::collections::HashSet<String>,
) -> Result<Built> {
    let mut stack: Vec<(Node, Vec<Node>)> = vec![];
    let mut root: Vec<Node> = vec![];
    let mut summary = Summary::default();
    let mut errors = vec![];
    let mut warnings = vec![];
    let mut failed: Option<Error> = None;
    for ev in events.into_iter().flatten() {
        if failed.is_some() {
            continue; // drain so the walker can finish
        }
        let r: Result<()> = (|| {
            match ev {
                Event::Enter(node) => stack.push((node, vec![])),
                Event::Leave => {
                    let (mut dir, children) = stack.pop().expect("Leave matches an Enter");
                    dir.content = Content::Dir {
                        subtree: store_tree(writer, children)?,
                    };
                    summary.dirs += 1;
                    stack.last_mut().map_or(&mut root, |t| &mut t.1).push(dir);
                }
                Event::Leaf(mut node, leaf) => {
                    match leaf {
                        Leaf::Ready => {
                            if node.kind == NodeKind::File {
                                summary.files_unmodified += 1;
                                summary.total_bytes += node.size;
                            } else {
                                summary.others += 1;
                            }
                        }
                        Leaf::Reading(pending, is_new, path) => match pending.wait() {
                            FileOutcome::Stored(c) => {
                                node.size = c.size;
                                if let Some(why) = &c.unsure {
                                    warnings.push(SourceError {
                                        path: path.display().to_string(),
                                        error: why.clone(),
                                    });
                                }
                                node.content = Content::File {
                                    hash: c.hash,
                                    extents: c.extents,
                                };
                                if is_new {
                                    summary.files_new += 1;
                                } else {
                                    summary.files_changed += 1;
                                }
                                summary.total_bytes += node.size;
                                progress.files.fetch_add(1, Ordering::Relaxed);
                            }
                            FileOutcome::Unreadable(e) => {
                                progress.errors.fetch_add(1, Ordering::Relaxed);
                                errors.push(SourceError {
                                    path: path.display().to_string(),
                                    error: e,
                                });
                                return Ok(());
                            }
                            FileOutcome::Vanished => {
                                let path = path.display().to_string();
                                // a named source is what the user asked for;
                                // a hard link's other names share this
                                // outcome, though they may still be there
                                if roots.contains(&path) || node.nlink > 1 {
                                    progress.errors.fetch_add(1, Ordering::Relaxed);
                                    errors.push(SourceError {
                                        path,
                                        error: if node.nlink > 1 {
                                            "not found when opened (a file with several hard links: \
                                             its other names are left out too)"
                                                .into()
                                        } else {
                                            "not found when opened (deleted or renamed since it was \
                                             looked at)"
                                                .into()
                                        },
                                    });
                                } else {
                                    warnings.push(SourceError {
                                        path,
                                        error: VANISHED.into(),
                                    });
                                }
                                return Ok(());
                            }
                            FileOutcome::Fatal(e) => {
                                return Err(Error::Shared(e));
                            }
                        },
                    }
                    stack.last_mut().map_or(&mut root, |t| &mut t.1).push(node);
                }
                Event::Error(e) => errors.push(e),
                Event::Warning(w) if roots.contains(&w.path) => {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    errors.push(w)
                }
                Event::Warning(w) => warnings.push(w),
            }
            Ok(())
        })();
        if let Err(e) = r {
            cancel.store(true, Ordering::Relaxed);
            failed = Some(e);
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !stack.is_empty() {
        // the walker stopped early (interrupted): there is no valid tree
        return Err(Error::Interrupted("backup stopped".into()));
    }
    Ok(Built {
        root: store_tree(writer, root)?,
        summary,
        errors,
        warnings,
        checks: vec![],
    })
}

fn store_tree(writer: &BlobWriter, mut nodes: Vec<Node>) -> Result<BlobId> {
    let mut t = Tree {
        nodes: std::mem::take(&mut nodes),
    };
    t.sort();
    writer.add(BlobKind::Tree, &t.encode())
}

/// A node for a streamed file.
fn stream_node(name: &str, time: DateTime<Utc>) -> Node {
    let mut n = Node::new(name.as_bytes().to_vec(), NodeKind::File);
    n.mode = 0o644;
    n.uid = nix::unistd::geteuid().as_raw();
    n.gid = nix::unistd::getegid().as_raw();
    n.user = crate::host::facts::username().into_bytes();
    let ts = Timestamp {
        sec: time.timestamp(),
        nsec: time.timestamp_subsec_nanos(),
    };
    n.mtime = ts;
    n.atime = ts;
    n.ctime = ts;
    n
}

fn finish_stream(
    writer: &BlobWriter,
    name: &str,
    time: DateTime<Utc>,
    outcome: FileOutcome,
) -> Result<Built> {
    let mut node = stream_node(name, time);
    let unreadable = |e: String| Error::Io {
        path: format!("input stream {name}").into(),
        source: std::io::Error::other(e),
    };
    let c = match outcome {
        FileOutcome::Stored(c) => c,
        FileOutcome::Unreadable(e) => return Err(unreadable(e)),
        // a stream is read from an open descriptor: never "not found"
        FileOutcome::Vanished => return Err(unreadable("not found".into())),
        FileOutcome::Fatal(e) => return Err(Error::Shared(e)),
    };
    node.size = c.size;
    let summary = Summary {
        files_new: 1,
        total_bytes: c.size,
        ..Default::default()
    };
    node.content = Content::File {
        hash: c.hash,
        extents: c.extents,
    };
    Ok(Built {
        root: store_tree(writer, vec![node])?,
        summary,
        errors: vec![],
        warnings: vec![],
        checks: vec![],
    })
}

fn backup_stream(
    writer: &BlobWriter,
    reader: &ContentReader,
    opts: &BackupOptions,
    src: &mut dyn StreamSource,
    time: DateTime<Utc>,
) -> Result<Built> {
    let mut input = src.open()?;
    let pending = Arc::new(Pending::new());
    reader.read_stream(&mut input, pending.clone());
    drop(input);
    let outcome = pending.wait();
    // a stream that could not be read to its end is not checked: its
    // read error is the cause to report, not what a check makes of a part
    let complete = matches!(outcome, FileOutcome::Stored(_));
    let finished = src.finish(opts.cancel.load(Ordering::Relaxed) || !complete);
    if complete {
        finished?;
    }
    if let FileOutcome::Stored(c) = &outcome
        && c.size == 0
        && !opts.allow_empty
    {
        return Err(Error::Invalid(format!(
            "the input stream {} was empty (0 bytes): no snapshot was saved. A dump that fails before a pipe leaves it empty (`set -o pipefail` makes the shell report that, and --stdin-from-command reports the command's exit status); pass --allow-empty to save an empty stream",
            src.name()
        )));
    }
    let mut built = finish_stream(writer, src.name(), time, outcome)?;
    built.checks.extend(src.check());
    Ok(built)
}
