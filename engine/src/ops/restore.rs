//! Restore: a snapshot (or part of it) back onto a filesystem.
//!
//! The plan is computed first, purely: which files and directories to
//! create, which blobs they need, and, grouped by pack and sorted by
//! offset, the byte ranges to fetch (neighbouring blobs are coalesced into
//! one ranged read, so each needed pack range is fetched once). Then the
//! plan is executed: fetcher threads read ranges concurrently, open every
//! blob (authenticate, decompress, verify its keyed id) and write it with
//! positional writes into files preallocated to their size (holes stay
//! holes). Each file's BLAKE3 is computed as its extents complete in
//! order (from the blob in hand; an extent that completed before the ones
//! before it is read back from the target), and when the last blob is
//! written it is compared with the recorded hash; only then does the file
//! get its metadata. A file that cannot be completed or verified is
//! removed and reported by name: a restore never leaves wrong bytes behind.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, IoContext, Result};
use crate::format::id::{BlobId, PackId, SnapshotId};
use crate::format::pack::{self, BlobKind, PackEntry};
use crate::format::snapshot::Snapshot;
use crate::format::tree::hash_zeros;
use crate::format::tree::{Node, NodeKind};
use crate::host::fsmeta;
use crate::store::backend::{ObjectKey, ObjectKind};
use crate::store::blob_reader::BlobReader;
use rayon::prelude::*;

/// Blobs closer than this in a pack are fetched in one read.
const COALESCE_GAP: u64 = 256 << 10;
/// The longest single ranged read.
const MAX_RANGE: u64 = 8 << 20;

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

/// One regular file to restore.
struct PlannedFile {
    path: PathBuf,
    node: Node,
    remaining: AtomicUsize,
    /// Open while blobs are being written; closed when complete.
    handle: Mutex<Option<Arc<File>>>,
    /// The content hash so far.
    cursor: Mutex<HashCursor>,
    failed: Mutex<Option<Failure>>,
}

/// Why a file could not be restored: the repository's side (a blob lost or
/// damaged, a verification that failed) or the target's (a write refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The repository could not supply the file's content intact.
    Repository(String),
    /// The target could not take it: what was being done, and the error.
    Target {
        /// "create", "write", ...
        what: &'static str,
        /// The error's text.
        error: String,
        /// Its errno, if it has one.
        errno: Option<i32>,
    },
}

impl Failure {
    fn target(what: &'static str, e: std::io::Error) -> Self {
        Failure::Target {
            what,
            error: e.to_string(),
            errno: e.raw_os_error(),
        }
    }

    /// A target error that every later write would hit too (a full disk,
    /// a read-only or over-quota filesystem, no file descriptors left):
    /// the restore stops at once instead of failing file after file.
    fn stops_restore(&self) -> bool {
        matches!(self, Failure::Target { errno: Some(e), .. }
            if [libc::ENOSPC, libc::EDQUOT, libc::EROFS, libc::EMFILE, libc::ENFILE].contains(e))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Repository(why) => write!(f, "{why}"),
            Failure::Target { what, error, .. } => write!(f, "{what} on the target: {error}"),
        }
    }
}

/// A file's BLAKE3, advanced over its extents in order as they complete.
///
/// The hasher (about 2 KiB) exists only from a file's first hashed byte
/// until it is finished, so a plan of many small files costs a few dozen
/// bytes per file that is not being written.
struct HashCursor {
    hasher: Option<Box<blake3::Hasher>>,
    /// Index of the first extent not yet hashed.
    next: usize,
    /// Bytes hashed so far.
    pos: u64,
    written: Vec<bool>,
}

impl HashCursor {
    fn new(extents: usize) -> Self {
        Self {
            hasher: None,
            next: 0,
            pos: 0,
            written: vec![false; extents],
        }
    }

    fn hasher(&mut self) -> &mut blake3::Hasher {
        self.hasher.get_or_insert_with(Default::default)
    }

    /// Hashes the zeros between what is hashed and `offset`, then `data`,
    /// which is the extent at `offset`.
    fn extend(&mut self, offset: u64, data: &[u8]) {
        let gap = offset - self.pos;
        let h = self.hasher();
        hash_zeros(h, gap);
        h.update(data);
        self.pos = offset + data.len() as u64;
        self.next += 1;
    }
}

/// Everything to do, computed before anything is written.
struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    files: Vec<PlannedFile>,
    others: Vec<(PathBuf, Node)>,
    /// (link path, index of the file it is a hard link of)
    links: Vec<(PathBuf, usize)>,
    /// Set when a file failed in a way every later file would too (see
    /// [`Failure::stops_restore`]).
    halt: AtomicBool,
    /// Write handles kept open between writes, and how many may be: a file
    /// written by several reads keeps its handle, unless that would take
    /// more than half the file descriptors the process may have (under
    /// `ulimit -n 64` a restore still works, opening per write).
    open_handles: AtomicUsize,
    handle_budget: usize,
}

impl Plan {
    /// Records why file `idx` failed (the first reason wins).
    fn record(&self, idx: usize, why: Failure) {
        if why.stops_restore() {
            self.halt.store(true, Ordering::Relaxed);
        }
        self.files[idx].failed.lock().unwrap().get_or_insert(why);
    }
}

/// A blob and every (file index, offset) it is written to.
type BlobTargets = (PackEntry, Vec<(usize, u64)>);

struct RangeRead {
    pack: PackId,
    start: u64,
    end: u64,
    blobs: Vec<(PackEntry, Vec<(usize, u64)>)>,
}

/// Restores `snapshot` per `opts`.
pub fn restore(
    reader: &BlobReader,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
) -> Result<RestoreSummary> {
    if let Ok(md) = std::fs::metadata(&opts.target)
        && !md.is_dir()
    {
        return Err(Error::Invalid(format!(
            "the restore target {} is a file, not a directory",
            opts.target.display()
        )));
    }
    std::fs::create_dir_all(&opts.target).at(&opts.target)?;
    raise_fd_limit();
    let plan = make_plan(reader, id, snapshot, opts)?;
    execute(reader, plan, opts)
}

/// Path components of an include path.
fn components(p: &str) -> Vec<&[u8]> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| c.as_bytes())
        .collect()
}

/// Where a node at snapshot path `parts` stands against the includes.
fn included(parts: &[&[u8]], includes: &[Vec<&[u8]>]) -> (bool, bool) {
    if includes.is_empty() {
        return (true, true);
    }
    // (restore this node, descend into it)
    let mut take = false;
    let mut descend = false;
    for inc in includes {
        if parts.len() >= inc.len() && parts[..inc.len()] == inc[..] {
            take = true;
            descend = true;
        } else if inc.len() > parts.len() && inc[..parts.len()] == parts[..] {
            // an ancestor of an included path: create it, look inside
            take = true;
            descend = true;
        }
    }
    (take, descend)
}

fn make_plan(
    reader: &BlobReader,
    id: &SnapshotId,
    snapshot: &Snapshot,
    opts: &RestoreOptions,
) -> Result<Plan> {
    let includes: Vec<Vec<&[u8]>> = opts.include.iter().map(|p| components(p)).collect();
    let mut plan = Plan {
        dirs: vec![],
        files: vec![],
        others: vec![],
        links: vec![],
        halt: AtomicBool::new(false),
        open_handles: AtomicUsize::new(0),
        handle_budget: handle_budget(),
    };
    let mut hardlinks: HashMap<(u64, u64), usize> = HashMap::new();
    let mut stack: Vec<(BlobId, PathBuf, Vec<Vec<u8>>)> =
        vec![(snapshot.tree, opts.target.clone(), vec![])];
    let mut matched = vec![false; includes.len()];
    while let Some((tree_id, dir, parts)) = stack.pop() {
        let shown = || {
            format!(
                "/{}",
                parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>()
                    .join("/")
            )
        };
        let tree = reader.tree(&tree_id, &|| format!("directory {}", shown()))?;
        for node in &tree.nodes {
            let mut p: Vec<Vec<u8>> = parts.clone();
            p.push(node.name.clone());
            let refs: Vec<&[u8]> = p.iter().map(|v| v.as_slice()).collect();
            let (take, descend) = included(&refs, &includes);
            if !take {
                continue;
            }
            for (i, inc) in includes.iter().enumerate() {
                if refs.len() >= inc.len() && refs[..inc.len()] == inc[..] {
                    matched[i] = true;
                }
            }
            let path = dir.join(OsStr::from_bytes(&node.name));
            match node.kind {
                NodeKind::Dir => {
                    plan.dirs.push((path.clone(), node.clone()));
                    if descend && let Some(sub) = node.subtree() {
                        stack.push((sub, path, p));
                    }
                }
                NodeKind::File => {
                    let key = (node.device, node.inode);
                    if node.nlink > 1
                        && let Some(&first) = hardlinks.get(&key)
                    {
                        plan.links.push((path, first));
                        continue;
                    }
                    let idx = plan.files.len();
                    if node.nlink > 1 {
                        hardlinks.insert(key, idx);
                    }
                    opts.progress
                        .bytes_total
                        .fetch_add(node.size, Ordering::Relaxed);
                    plan.files.push(PlannedFile {
                        path,
                        remaining: AtomicUsize::new(node.extents().len()),
                        node: node.clone(),
                        handle: Mutex::new(None),
                        cursor: Mutex::new(HashCursor::new(node.extents().len())),
                        failed: Mutex::new(None),
                    });
                }
                _ => plan.others.push((path, node.clone())),
            }
        }
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        return Err(Error::NotInSnapshot {
            path: opts.include[i].clone(),
            snapshot: id.short(),
        });
    }
    Ok(plan)
}

/// The ranged reads for every extent not already in place, grouped by pack
/// in pack order, neighbours coalesced. A blob missing from the index fails
/// the files that need it (named), not the whole restore.
fn plan_reads(reader: &BlobReader, plan: &Plan) -> Vec<RangeRead> {
    // blob -> every (file, offset) it goes to
    let mut needs: HashMap<BlobId, Vec<(usize, u64)>> = HashMap::new();
    for (idx, f) in plan.files.iter().enumerate() {
        if f.failed.lock().unwrap().is_some() {
            continue;
        }
        let done = f.cursor.lock().unwrap().written.clone();
        for (i, e) in f.node.extents().iter().enumerate() {
            if !done[i] {
                needs.entry(e.blob).or_default().push((idx, e.offset));
            }
        }
    }
    let mut by_pack: BTreeMap<PackId, Vec<BlobTargets>> = BTreeMap::new();
    for (blob, targets) in needs {
        match reader.catalog().lookup(BlobKind::Data, &blob) {
            Ok(Some(loc)) => by_pack
                .entry(loc.pack)
                .or_default()
                .push((loc.entry, targets)),
            other => {
                let why = Failure::Repository(match other {
                    Err(e) => e.to_string(),
                    _ => format!("blob {blob} is not in the index (run `arca check`)"),
                });
                for (idx, _) in targets {
                    plan.record(idx, why.clone());
                }
            }
        }
    }
    let mut reads = vec![];
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
                        reads.push(c);
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
        reads.extend(cur);
    }
    reads
}

/// Makes the target file ready: a new file preallocated as holes, or an
/// existing one reused: every extent whose bytes are already in place (same
/// keyed id) is kept and needs no fetch; gaps are punched back into holes.
/// Returns how many extents still need writing.
fn prepare_file(
    f: &PlannedFile,
    key: &crate::format::crypto::MasterKey,
) -> std::result::Result<usize, Failure> {
    use std::os::unix::fs::MetadataExt;
    let existing = std::fs::symlink_metadata(&f.path);
    // A file with other hard links is replaced, not written through (that
    // would change the other names too).
    let reuse = matches!(&existing, Ok(md) if md.is_file() && md.len() > 0 && md.nlink() == 1);
    match existing {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(&f.path)
            .map_err(|e| Failure::target("replace a directory", e))?,
        Ok(_) if !reuse => {
            std::fs::remove_file(&f.path).map_err(|e| Failure::target("replace", e))?
        }
        _ => {}
    }
    let h = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!reuse)
        .open(&f.path)
        .map_err(|e| Failure::target("create", e))?;
    let old_len = if reuse {
        h.metadata().map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    h.set_len(f.node.size)
        .map_err(|e| Failure::target("set the size", e))?;
    let ext = f.node.extents();
    let mut todo = ext.len();
    if reuse {
        use std::os::unix::fs::FileExt;
        let mut c = f.cursor.lock().unwrap();
        let mut buf = vec![];
        let mut pos = 0u64;
        for (i, e) in ext.iter().enumerate() {
            // what was between extents must read back as zeros (a hole)
            if e.offset > pos && pos < old_len {
                punch_hole(&h, pos, e.offset - pos);
            }
            pos = e.offset + e.length as u64;
            if pos > old_len {
                continue;
            }
            buf.resize(e.length as usize, 0);
            if h.read_exact_at(&mut buf, e.offset).is_err() || key.blob_id(&buf) != e.blob {
                continue;
            }
            c.written[i] = true;
            todo -= 1;
            if c.next == i {
                c.extend(e.offset, &buf);
            }
        }
        if f.node.size > pos && pos < old_len {
            punch_hole(&h, pos, f.node.size - pos);
        }
    }
    f.remaining.store(todo, Ordering::Relaxed);
    Ok(todo)
}

/// Turns a byte range of a file into a hole (zeros, no blocks).
fn punch_hole(h: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: fallocate on a file descriptor we own; failure leaves data
    // that the file hash check then reports.
    let rc = unsafe {
        libc::fallocate(
            h.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc != 0 {
        // no hole punching (some filesystems): write zeros instead
        use std::os::unix::fs::FileExt;
        let zeros = vec![0u8; 1 << 16];
        let mut at = offset;
        while at < offset + len {
            let n = (offset + len - at).min(zeros.len() as u64) as usize;
            if h.write_all_at(&zeros[..n], at).is_err() {
                return;
            }
            at += n as u64;
        }
    }
}

fn execute(reader: &BlobReader, plan: Plan, opts: &RestoreOptions) -> Result<RestoreSummary> {
    let as_root = nix::unistd::geteuid().is_root();
    let mut summary = RestoreSummary::default();
    let warnings = Mutex::new(vec![]);
    for (path, _) in &plan.dirs {
        std::fs::create_dir_all(path).at(path)?;
    }
    let completed = AtomicU64::new(0);
    let finish = |idx: usize| {
        let f = &plan.files[idx];
        if f.handle.lock().unwrap().take().is_some() {
            plan.open_handles.fetch_sub(1, Ordering::Relaxed);
        }
        let r = finish_file(f, as_root);
        match r {
            Ok(w) => {
                warnings.lock().unwrap().extend(w);
                completed.fetch_add(1, Ordering::Relaxed);
                opts.progress.files_done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => plan.record(idx, e),
        }
    };
    // Files: create and preallocate (as holes), or reuse what an existing
    // file already holds, before any data is fetched (in parallel: this
    // reads existing files). A file with nothing left to write (empty, all
    // holes, or already in place) is complete: it is verified at once, so
    // that its hasher is gone before the next file's is made (restoring
    // over 200,000 files in place otherwise held 200,000 hashers).
    let key = reader.repo().key();
    plan.files
        .par_iter()
        .enumerate()
        .for_each(|(i, f)| match prepare_file(f, key) {
            Err(e) => plan.record(i, e),
            // nothing left to write: every extent is in place
            Ok(0) => {
                catch_up_hash(f);
                finish(i);
            }
            Ok(_) => {}
        });
    let reads = if plan.halt.load(Ordering::Relaxed) {
        vec![]
    } else {
        plan_reads(reader, &plan)
    };
    // Fetch and write, `fetchers` ranges at a time.
    let next = AtomicUsize::new(0);
    let fetched = AtomicU64::new(0);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.fetchers.max(1) {
            s.spawn(|| {
                loop {
                    if opts.cancel.load(Ordering::Relaxed)
                        || plan.halt.load(Ordering::Relaxed)
                        || fatal.lock().unwrap().is_some()
                    {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(read) = reads.get(i) else {
                        return;
                    };
                    if let Err(e) = do_read(reader, &plan, read, &finish, opts, &fetched) {
                        fatal.lock().unwrap().get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().unwrap() {
        return Err(e);
    }
    if opts.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted(
            "restore stopped; the target holds incomplete files".into(),
        ));
    }
    // Failed files: removed, and named.
    let mut failures: Vec<(PathBuf, String)> = vec![];
    let mut stopped_by: Option<(PathBuf, Failure)> = None;
    for f in &plan.files {
        if let Some(why) = f.failed.lock().unwrap().take() {
            let _ = std::fs::remove_file(&f.path);
            if why.stops_restore() && stopped_by.is_none() {
                stopped_by = Some((f.path.clone(), why.clone()));
            }
            failures.push((f.path.clone(), why.to_string()));
        } else {
            summary.files += 1;
            summary.bytes += f.node.size;
        }
    }
    if let Some((path, why)) = stopped_by {
        let Failure::Target { what, errno, .. } = why else {
            unreachable!("only target failures stop a restore")
        };
        let restored = summary.files;
        return Err(Error::Stopped {
            operation: "restore",
            cause: Box::new(Error::io(
                path,
                std::io::Error::other(format!(
                    "{what}: {}",
                    std::io::Error::from_raw_os_error(errno.unwrap_or(0))
                )),
            )),
            detail: format!(
                "{restored} of {} files were restored and verified before it stopped, the files not restored were removed; fix the target (free space) and run the restore again: files already in place are verified and kept",
                plan.files.len()
            ),
        });
    }
    let mut warnings = warnings.into_inner().unwrap();
    for (path, first) in &plan.links {
        let target = &plan.files[*first].path;
        let _ = std::fs::remove_file(path);
        match std::fs::hard_link(target, path) {
            Ok(()) => summary.others += 1,
            Err(e) => failures.push((path.clone(), format!("hard link: {e}"))),
        }
    }
    for (path, node) in &plan.others {
        let _ = std::fs::remove_file(path);
        let r = match node.kind {
            NodeKind::Symlink => std::os::unix::fs::symlink(OsStr::from_bytes(&node.target), path),
            NodeKind::Socket => {
                warnings.push(format!("{}: sockets are not restored", path.display()));
                continue;
            }
            _ => fsmeta::make_special(path, node),
        };
        match r {
            Ok(()) => {
                summary.others += 1;
                warnings.extend(fsmeta::apply(path, node, as_root));
            }
            Err(e) => warnings.push(format!(
                "{}: cannot create {}: {e}",
                path.display(),
                node.kind.name()
            )),
        }
    }
    // Directories last, deepest first, so their times stick.
    let mut dirs = plan.dirs;
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, node) in &dirs {
        warnings.extend(fsmeta::apply(path, node, as_root));
        summary.dirs += 1;
    }
    summary.warnings = warnings;
    summary.bytes_fetched = fetched.load(Ordering::Relaxed);
    summary.reads = reads.len() as u64;
    if !failures.is_empty() {
        return Err(Error::RestoreIncomplete {
            restored: summary.files,
            failed: failures,
        });
    }
    Ok(summary)
}

fn do_read(
    reader: &BlobReader,
    plan: &Plan,
    read: &RangeRead,
    finish: &(dyn Fn(usize) + Sync),
    opts: &RestoreOptions,
    fetched: &AtomicU64,
) -> Result<()> {
    let key = ObjectKey::new(ObjectKind::Pack, read.pack.0);
    let bytes = match reader
        .repo()
        .backend()
        .get_range(&key, read.start..read.end)
    {
        Ok(b) => b,
        Err(e) => {
            // The pack is unreadable: every file that needed it fails.
            for (_, targets) in &read.blobs {
                for &(idx, _) in targets {
                    fail(
                        plan,
                        idx,
                        Failure::Repository(format!("pack {} unreadable: {e}", read.pack)),
                    );
                }
            }
            return Ok(());
        }
    };
    fetched.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    for (entry, targets) in &read.blobs {
        let a = (entry.offset - read.start) as usize;
        let sealed = &bytes[a..a + entry.length as usize];
        match pack::open_blob(reader.repo().key(), entry, sealed) {
            Ok(plain) => {
                for &(idx, offset) in targets {
                    let f = &plan.files[idx];
                    let w = open_for_write(plan, f).and_then(|h| {
                        h.write_all_at(&plain, offset)
                            .map_err(|e| Failure::target("write", e))?;
                        advance_hash(f, &h, offset, &plain)
                    });
                    match w {
                        Ok(()) => {
                            opts.progress
                                .bytes_done
                                .fetch_add(plain.len() as u64, Ordering::Relaxed);
                            if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                                && f.failed.lock().unwrap().is_none()
                            {
                                finish(idx);
                            }
                        }
                        Err(e) => fail(plan, idx, e),
                    }
                }
            }
            Err(e) => {
                let why = Failure::Repository(format!(
                    "blob {} in pack {} is damaged: {e}",
                    entry.id, read.pack
                ));
                for &(idx, _) in targets {
                    fail(plan, idx, why.clone());
                }
            }
        }
    }
    Ok(())
}

/// The file's write handle, opened on first use and kept while the
/// budget of open handles allows (see [`Plan::handle_budget`]).
fn open_for_write(plan: &Plan, f: &PlannedFile) -> std::result::Result<Arc<File>, Failure> {
    let mut h = f.handle.lock().unwrap();
    if let Some(h) = h.as_ref() {
        return Ok(h.clone());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&f.path)
        .map_err(|e| Failure::target("open", e))?;
    let file = Arc::new(file);
    if plan.open_handles.fetch_add(1, Ordering::Relaxed) < plan.handle_budget {
        *h = Some(file.clone());
    } else {
        plan.open_handles.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(file)
}

/// Half the file descriptors this process may still open (after raising
/// its soft limit to the hard one), at least 4.
fn handle_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid struct pointer.
    let cur = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        1024
    };
    ((cur.min(1 << 20) as usize).saturating_sub(64) / 2).max(4)
}

/// Marks the extent at `offset` written and hashes every extent that is
/// now next in order.
fn advance_hash(
    f: &PlannedFile,
    h: &File,
    offset: u64,
    plain: &[u8],
) -> std::result::Result<(), Failure> {
    let ext = f.node.extents();
    let i = ext
        .binary_search_by_key(&offset, |e| e.offset)
        .map_err(|_| {
            Failure::Repository("a write at an offset that is not an extent (a bug in arca)".into())
        })?;
    let mut c = f.cursor.lock().unwrap();
    c.written[i] = true;
    let mut buf = vec![];
    while c.next < ext.len() && c.written[c.next] {
        let e = ext[c.next];
        if e.offset == offset {
            c.extend(e.offset, plain);
        } else {
            buf.resize(e.length as usize, 0);
            h.read_exact_at(&mut buf, e.offset)
                .map_err(|e| Failure::target("read back", e))?;
            c.extend(e.offset, &buf);
        }
    }
    Ok(())
}

/// Hashes every extent that is written but not yet hashed, reading it back
/// (for files whose extents were all found in place).
fn catch_up_hash(f: &PlannedFile) {
    use std::os::unix::fs::FileExt;
    let ext = f.node.extents();
    let mut c = f.cursor.lock().unwrap();
    let Ok(h) = File::open(&f.path) else { return };
    let mut buf = vec![];
    while c.next < ext.len() && c.written[c.next] {
        let e = ext[c.next];
        buf.resize(e.length as usize, 0);
        if h.read_exact_at(&mut buf, e.offset).is_err() {
            return;
        }
        c.extend(e.offset, &buf);
    }
}

/// Marks a file failed; it counts its blob as done so the count still ends.
fn fail(plan: &Plan, idx: usize, why: Failure) {
    plan.record(idx, why);
    plan.files[idx].remaining.fetch_sub(1, Ordering::AcqRel);
}

/// Compares a complete file's hash with the recorded one, then applies its
/// metadata. Returns metadata warnings, or why the file is bad.
fn finish_file(f: &PlannedFile, as_root: bool) -> std::result::Result<Vec<String>, Failure> {
    let expected = match &f.node.content {
        crate::format::tree::Content::File { hash, .. } => *hash,
        _ => return Err(Failure::Repository("not a file node".into())),
    };
    let actual = {
        let mut c = f.cursor.lock().unwrap();
        if c.next != c.written.len() {
            return Err(Failure::Repository(
                "not every extent could be read back from the target".into(),
            ));
        }
        let tail = f.node.size - c.pos;
        let mut h = c.hasher.take().unwrap_or_default();
        hash_zeros(&mut h, tail);
        *h.finalize().as_bytes()
    };
    if actual != expected {
        return Err(Failure::Repository(format!(
            "BLAKE3 mismatch after restore (expected {}, got {}): the repository or the target disk is damaged",
            hex::encode(expected),
            hex::encode(actual)
        )));
    }
    Ok(fsmeta::apply(&f.path, &f.node, as_root))
}

/// Lets a restore keep many files open at once.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
