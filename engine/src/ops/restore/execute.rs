//! Executing a restore plan: the runtime state of every file (extents
//! left, its hash so far, its write handle, why it failed), preparing the
//! target (new files preallocated as holes, existing files reused where
//! their bytes are already in place), fetching the reads the plan gives
//! for what is still missing `fetchers` at a time, and finishing each file
//! when its last extent lands: its BLAKE3 is compared with the recorded
//! one, and only then does it get its metadata. A file that cannot be
//! completed or verified is removed and reported by name: a restore never
//! leaves wrong bytes behind.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::plan::{RangeRead, RestorePlan, reads};
use super::{RestoreOptions, RestoreSummary};
use crate::error::{Error, IoContext, Result};
use crate::format::layout::ObjectKey;
use crate::format::pack::BlobKind;
use crate::format::tree::{Node, NodeKind, hash_zeros};
use crate::host::fsmeta;
use crate::store::blob_reader::{BlobLocation, BlobReader, Locator};

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

/// One regular file of the plan, while it is being restored.
struct FileState<'p> {
    path: &'p PathBuf,
    node: &'p Node,
    remaining: AtomicUsize,
    /// Open while blobs are being written; closed when complete.
    handle: Mutex<Option<Arc<File>>>,
    /// The content hash so far.
    cursor: Mutex<HashCursor>,
    failed: Mutex<Option<Failure>>,
}

/// The runtime state of a plan being executed.
struct Run<'p> {
    plan: &'p RestorePlan,
    files: Vec<FileState<'p>>,
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

impl<'p> Run<'p> {
    fn new(plan: &'p RestorePlan) -> Self {
        let files = plan
            .files
            .iter()
            .map(|(path, node)| FileState {
                path,
                node,
                remaining: AtomicUsize::new(node.extents().len()),
                handle: Mutex::new(None),
                cursor: Mutex::new(HashCursor::new(node.extents().len())),
                // a file that needs a blob with no copy cannot be restored
                failed: Mutex::new(
                    node.extents()
                        .iter()
                        .find_map(|e| plan.missing.get(&e.blob))
                        .map(|why| Failure::Repository(why.clone())),
                ),
            })
            .collect();
        Self {
            plan,
            files,
            halt: AtomicBool::new(false),
            open_handles: AtomicUsize::new(0),
            handle_budget: handle_budget(),
        }
    }

    /// Records why file `idx` failed (the first reason wins).
    fn record(&self, idx: usize, why: Failure) {
        if why.stops_restore() {
            self.halt.store(true, Ordering::Relaxed);
        }
        self.files[idx].failed.lock().unwrap().get_or_insert(why);
    }

    /// The reads for every extent not already in place, of files that have
    /// not failed.
    fn reads(&self) -> Vec<RangeRead> {
        let written: Vec<Option<Vec<bool>>> = self
            .files
            .iter()
            .map(|f| {
                if f.failed.lock().unwrap().is_some() {
                    None
                } else {
                    Some(f.cursor.lock().unwrap().written.clone())
                }
            })
            .collect();
        reads(self.plan, &|file, extent| {
            written[file].as_ref().is_some_and(|w| !w[extent])
        })
    }
}

/// Makes the target file ready: a new file preallocated as holes, or an
/// existing one reused: every extent whose bytes are already in place (same
/// keyed id) is kept and needs no fetch; gaps are punched back into holes.
/// Returns how many extents still need writing.
fn prepare_file(
    f: &FileState<'_>,
    key: &crate::format::crypto::MasterKey,
) -> std::result::Result<usize, Failure> {
    use std::os::unix::fs::MetadataExt;
    let existing = std::fs::symlink_metadata(f.path);
    // A file with other hard links is replaced, not written through (that
    // would change the other names too).
    let reuse = matches!(&existing, Ok(md) if md.is_file() && md.len() > 0 && md.nlink() == 1);
    match existing {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(f.path)
            .map_err(|e| Failure::target("replace a directory", e))?,
        Ok(_) if !reuse => {
            std::fs::remove_file(f.path).map_err(|e| Failure::target("replace", e))?
        }
        _ => {}
    }
    let h = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!reuse)
        .open(f.path)
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

/// Carries out `plan` on the target.
pub(super) fn execute<L: Locator>(
    reader: &BlobReader<L>,
    plan: RestorePlan,
    opts: &RestoreOptions,
) -> Result<RestoreSummary> {
    let plan = Run::new(&plan);
    let as_root = nix::unistd::geteuid().is_root();
    let mut summary = RestoreSummary::default();
    let warnings = Mutex::new(vec![]);
    for (path, _) in &plan.plan.dirs {
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
        plan.reads()
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
            let _ = std::fs::remove_file(f.path);
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
    for (path, first) in &plan.plan.links {
        let target = &plan.files[*first].path;
        let _ = std::fs::remove_file(path);
        match std::fs::hard_link(target, path) {
            Ok(()) => summary.others += 1,
            Err(e) => failures.push((path.clone(), format!("hard link: {e}"))),
        }
    }
    for (path, node) in &plan.plan.others {
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
    let mut dirs: Vec<&(PathBuf, Node)> = plan.plan.dirs.iter().collect();
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, node) in dirs {
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

fn do_read<L: Locator>(
    reader: &BlobReader<L>,
    plan: &Run<'_>,
    read: &RangeRead,
    finish: &(dyn Fn(usize) + Sync),
    opts: &RestoreOptions,
    fetched: &AtomicU64,
) -> Result<()> {
    let key = ObjectKey::of(read.pack);
    let bytes = reader
        .repo()
        .backend()
        .get_range(&key, read.start..read.end);
    if let Ok(b) = &bytes {
        fetched.fetch_add(b.len() as u64, Ordering::Relaxed);
    }
    for (entry, targets) in &read.blobs {
        let needed_by = || plan.files[targets[0].0].path.display().to_string();
        let loc = BlobLocation {
            pack: read.pack,
            pack_size: 0,
            entry: *entry,
        };
        let opened = match &bytes {
            Ok(b) => {
                let a = (entry.offset - read.start) as usize;
                reader.open(&loc, &b[a..a + entry.length as usize], &needed_by)
            }
            Err(e) => Err(Error::damaged(
                format!("pack {}", read.pack),
                format!("unreadable: {e}"),
            )),
        };
        // another copy may be intact: the reader tries each in turn
        let opened = opened.or_else(|first| {
            reader
                .read(&entry.id, BlobKind::Data, &needed_by)
                .map_err(|_| first)
        });
        let plain = match opened {
            Ok(p) => p,
            Err(e) => {
                let why = Failure::Repository(e.to_string());
                for &(idx, _) in targets {
                    fail(plan, idx, why.clone());
                }
                continue;
            }
        };
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
    Ok(())
}

/// The file's write handle, opened on first use and kept while the
/// budget of open handles allows (see [`Run::handle_budget`]).
fn open_for_write(plan: &Run<'_>, f: &FileState<'_>) -> std::result::Result<Arc<File>, Failure> {
    let mut h = f.handle.lock().unwrap();
    if let Some(h) = h.as_ref() {
        return Ok(h.clone());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.path)
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
    f: &FileState<'_>,
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
fn catch_up_hash(f: &FileState<'_>) {
    use std::os::unix::fs::FileExt;
    let ext = f.node.extents();
    let mut c = f.cursor.lock().unwrap();
    let Ok(h) = File::open(f.path) else { return };
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
fn fail(plan: &Run<'_>, idx: usize, why: Failure) {
    plan.record(idx, why);
    plan.files[idx].remaining.fetch_sub(1, Ordering::AcqRel);
}

/// Compares a complete file's hash with the recorded one, then applies its
/// metadata. Returns metadata warnings, or why the file is bad.
fn finish_file(f: &FileState<'_>, as_root: bool) -> std::result::Result<Vec<String>, Failure> {
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
    Ok(fsmeta::apply(f.path, f.node, as_root))
}

/// Lets a restore keep many files open at once.
pub(super) fn raise_fd_limit() {
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
