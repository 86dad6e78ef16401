//! Reading file content into chunks.
//!
//! A reader thread reads a file's data regions block by block (holes found
//! with SEEK_DATA/SEEK_HOLE are skipped, never read), finds chunk
//! boundaries (in parallel for large blocks), hashes the logical content
//! with BLAKE3, and hands every chunk to the rayon pool, where the blob
//! writer ids, dedups, compresses and seals it. The reader does not wait
//! for its chunks: the file is complete when the last of them is stored,
//! and whoever finishes last fills in the file's [`Pending`] outcome. Bytes
//! in flight are bounded by a [`Budget`]; block buffers come from a
//! [`BufferPool`] and go back to it when their last chunk is stored.
//!
//! A changed file is read whole, but where its content did not move (an
//! image with a few rewritten blocks, a database file with a few changed
//! pages, an appended log) the parent snapshot's chunks are recognised by
//! their keyed ids at their old offsets and their boundaries reused, which
//! skips the boundary search. A parent chunk is accepted only when the
//! chunk after it also matches: the cut at a boundary depends on the byte
//! that follows it. The boundaries are therefore exactly those a search
//! would find.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::Progress;
use crate::error::Error;
use crate::format::chunker::Chunker;
use crate::format::id::BlobId;
use crate::format::pack::BlobKind;
use crate::format::tree::Extent;
use crate::format::tree::hash_zeros;
use crate::host::fsmeta;
use crate::host::threads::{Budget, Pending};
use crate::store::blob_writer::BlobWriter;

/// Bytes read per block (plus up to one chunk carried over): 2 MiB per
/// thread, at least 4 MiB and at most 64 MiB, so that on many cores a block
/// holds a slice per thread for parallel chunking (see
/// `Chunker::boundaries_parallel`, which chunks sequentially when a block
/// is too small to split, as on 2 cores).
fn block_size() -> usize {
    (rayon::current_num_threads() * (2 << 20)).clamp(4 << 20, 64 << 20)
}

/// A file's stored content.
#[derive(Debug, Clone)]
pub struct FileContent {
    /// BLAKE3 of the logical content.
    pub hash: [u8; 32],
    /// Data chunks.
    pub extents: Vec<Extent>,
    /// Logical size (what was read, holes included).
    pub size: u64,
    /// Why the stored content may not be a consistent copy (the file
    /// changed size or mtime while it was read; the device is mounted):
    /// a warning for the snapshot.
    pub unsure: Option<String>,
}

/// How reading a file ended.
#[derive(Debug, Clone)]
pub enum FileOutcome {
    /// Stored.
    Stored(FileContent),
    /// The file could not be read; the backup goes on without it.
    Unreadable(String),
    /// The file was gone when it was opened (deleted or renamed since its
    /// directory was listed, as a database's temporary files are): it is
    /// left out, with a warning, since the tree no longer has it.
    Vanished,
    /// Storing failed; the backup must stop.
    Fatal(Arc<Error>),
}

/// What the reader learned by the end of a file: content hash, logical
/// size, and why the copy may not be consistent.
type ReadEnd = ([u8; 32], u64, Option<String>);

/// Why a source's content was not read to its end.
enum ReadFailure {
    /// Not found when opened.
    Vanished,
    /// Any other error, as text.
    Io(String),
}

impl From<io::Error> for ReadFailure {
    fn from(e: io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// Per-file bookkeeping shared by the reader and the chunk tasks.
struct FileState {
    chunks: Mutex<Vec<(u64, u32, Option<BlobId>)>>,
    outstanding: AtomicUsize,
    fatal: Mutex<Option<Arc<Error>>>,
    end: Mutex<Option<Result<ReadEnd, ReadFailure>>>,
    pending: Arc<Pending<FileOutcome>>,
}

impl FileState {
    /// Appends the chunk at `offset`, with its id if already known, and
    /// returns its slot for [`FileState::fill`].
    fn record(&self, offset: u64, len: u64, id: Option<BlobId>) -> usize {
        let mut c = self.chunks.lock().unwrap();
        c.push((offset, len as u32, id));
        c.len() - 1
    }

    /// Sets the outcome of storing the chunk in `slot`; a failure fails
    /// the backup.
    fn fill(&self, slot: usize, r: crate::error::Result<BlobId>) {
        match r {
            Ok(id) => self.chunks.lock().unwrap()[slot].2 = Some(id),
            Err(e) => {
                self.fatal.lock().unwrap().get_or_insert(Arc::new(e));
            }
        }
    }

    fn done_one(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pending.set(self.outcome());
        }
    }

    fn outcome(&self) -> FileOutcome {
        if let Some(e) = self.fatal.lock().unwrap().take() {
            return FileOutcome::Fatal(e);
        }
        match self.end.lock().unwrap().take() {
            Some(Ok((hash, size, unsure))) => {
                let chunks = std::mem::take(&mut *self.chunks.lock().unwrap());
                let extents = chunks
                    .into_iter()
                    .map(|(offset, length, id)| Extent {
                        offset,
                        length,
                        blob: id.expect("every chunk task stored its id"),
                    })
                    .collect();
                FileOutcome::Stored(FileContent {
                    hash,
                    extents,
                    size,
                    unsure,
                })
            }
            Some(Err(ReadFailure::Vanished)) => FileOutcome::Vanished,
            Some(Err(ReadFailure::Io(e))) => FileOutcome::Unreadable(e),
            None => FileOutcome::Unreadable("reading stopped early".into()),
        }
    }
}

/// Read buffers of a whole block, reused once every chunk cut from them
/// is stored. A fresh block-sized buffer is a fresh mapping: page faults
/// and page clearing as it is filled and an munmap when its last chunk is
/// dropped, about a quarter of the CPU of an incremental backup of a big
/// changed file (perf; 8 MiB buffers on 2 cores). Small buffers come
/// from the allocator as before. At most [`BufferPool::KEEP`] idle
/// buffers are kept, all their pages resident: two (an incremental of a
/// 1 GiB file: 90 MiB peak RSS against 85 MiB unpooled, 100 MiB with
/// eight kept, the same CPU with two as with eight).
#[derive(Debug)]
pub struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
    /// Capacity of a pooled buffer: a block and the largest carry.
    capacity: usize,
}

impl BufferPool {
    /// Idle buffers kept (more are freed).
    const KEEP: usize = 2;

    /// A pool of buffers for blocks of [`block_size`] plus `carry_max`.
    pub fn new(carry_max: usize) -> Self {
        Self {
            idle: Mutex::new(vec![]),
            capacity: block_size() + carry_max,
        }
    }

    /// An empty buffer with room for `n` bytes: pooled when `n` is more
    /// than half a pooled buffer's capacity.
    fn take(&self, n: usize) -> Vec<u8> {
        if n <= self.capacity / 2 || n > self.capacity {
            return Vec::with_capacity(n);
        }
        self.idle
            .lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// `buf` as shared bytes that return it to the pool when the last
    /// slice of them is dropped (a buffer not of the pool's size is
    /// simply freed).
    fn share(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        if buf.capacity() != self.capacity {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Pooled {
            buf,
            pool: self.clone(),
        })
    }
}

/// A pooled buffer lent to [`Bytes`]: back to its pool on drop.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut idle = self.pool.idle.lock().unwrap();
        if idle.len() < BufferPool::KEEP {
            idle.push(buf);
        }
    }
}

/// Chunks up to this size are stored by the reader thread itself.
const INLINE_MAX: u64 = 64 << 10;

/// A stretch of a source to read: from `start`, at most `limit` bytes (to
/// EOF when `None`); `expect` bytes are likely (it sizes the buffers; more
/// are read if they come).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    limit: Option<u64>,
    expect: u64,
}

/// Reads sources and feeds chunks to the blob writer.
pub struct ContentReader {
    pub(super) writer: Arc<BlobWriter>,
    pub(super) chunker: Chunker,
    pub(super) budget: Arc<Budget>,
    pub(super) progress: Arc<Progress>,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) buffers: Arc<BufferPool>,
}

impl ContentReader {
    /// Reads the file at `path` and sets `pending` when it is stored.
    /// `parent` are the file's chunks in the parent snapshot, if any.
    pub fn read_file(
        &self,
        path: &Path,
        pending: Arc<Pending<FileOutcome>>,
        parent: Option<&[Extent]>,
    ) {
        let state = self.new_state(pending);
        // "Not found" from the open is a file deleted since it was listed;
        // from anything later (a FUSE or network filesystem's read) it is
        // an error like any other.
        let r = match open_noatime(path) {
            Ok(f) => self
                .read_file_inner(f, &state, parent)
                .map_err(ReadFailure::from),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ReadFailure::Vanished),
            Err(e) => Err(e.into()),
        };
        *state.end.lock().unwrap() = Some(r);
        state.done_one();
    }

    /// Reads the block device at `path` whole, its zero runs of at least
    /// [`HOLE_MIN`] as holes (see [`Device`]); sets `pending` when it is
    /// stored. `parent`: its chunks in the parent snapshot.
    pub fn read_device(
        &self,
        path: &Path,
        pending: Arc<Pending<FileOutcome>>,
        parent: Option<&[Extent]>,
    ) {
        let state = self.new_state(pending);
        let r = (|| {
            let mut dev = Device::open(path)?;
            let size = dev.size;
            let mut hasher = blake3::Hasher::new();
            let mut logical = 0u64;
            while let Some(start) = dev.next_data()? {
                self.hole(&mut hasher, start - logical);
                let n = self.chunk_region(
                    &mut dev,
                    Span {
                        start,
                        limit: None,
                        expect: size - start,
                    },
                    &state,
                    &mut hasher,
                    parent,
                )?;
                logical = start + n;
            }
            self.hole(&mut hasher, size.saturating_sub(logical));
            let unsure = crate::host::fsmeta::mounted(path).map(|at| {
                format!("the device is mounted at {at}: what was read may mix old and new blocks (unmount it, or back up a snapshot of it: an LVM or ZFS snapshot, or the database's own)")
            });
            Ok((*hasher.finalize().as_bytes(), size.max(logical), unsure))
        })();
        *state.end.lock().unwrap() = Some(r.map_err(|e: io::Error| e.into()));
        state.done_one();
    }

    /// Reads a stream (stdin, a command's output) to its end.
    pub fn read_stream(&self, src: &mut dyn Read, pending: Arc<Pending<FileOutcome>>) {
        let state = self.new_state(pending);
        let mut hasher = blake3::Hasher::new();
        let r = self
            .chunk_region(
                src,
                Span {
                    start: 0,
                    limit: None,
                    expect: block_size() as u64,
                },
                &state,
                &mut hasher,
                None,
            )
            .map(|n| (*hasher.finalize().as_bytes(), n, None));
        *state.end.lock().unwrap() = Some(r.map_err(ReadFailure::from));
        state.done_one();
    }

    fn new_state(&self, pending: Arc<Pending<FileOutcome>>) -> Arc<FileState> {
        Arc::new(FileState {
            chunks: Mutex::new(vec![]),
            outstanding: AtomicUsize::new(1),
            fatal: Mutex::new(None),
            end: Mutex::new(None),
            pending,
        })
    }

    fn read_file_inner(
        &self,
        mut f: File,
        state: &Arc<FileState>,
        parent: Option<&[Extent]>,
    ) -> io::Result<ReadEnd> {
        let md = f.metadata()?;
        if !md.is_file() {
            return Err(io::Error::other("no longer a regular file"));
        }
        let size = md.size();
        // Only a file with fewer blocks than its size can have holes.
        let regions = if md.blocks() * 512 < size {
            fsmeta::data_regions(&f, size)?
        } else {
            std::iter::once(0..size).collect()
        };
        let mut hasher = blake3::Hasher::new();
        let mut logical = 0u64;
        for region in &regions {
            self.hole(&mut hasher, region.start - logical);
            f.seek(SeekFrom::Start(region.start))?;
            // A region that reaches the end of the file is read to EOF:
            // the file may have grown since it was opened.
            let limit = (region.end < size).then(|| region.end - region.start);
            let n = self.chunk_region(
                &mut f,
                Span {
                    start: region.start,
                    limit,
                    expect: region.end - region.start,
                },
                state,
                &mut hasher,
                parent,
            )?;
            logical = region.start + n;
        }
        let after = f.metadata()?;
        // A trailing hole: the last data region ended before the size seen
        // at open. (Growth after that is not a hole: it was never read.)
        if logical < size && regions.last().is_none_or(|r| r.end < size) {
            self.hole(&mut hasher, size - logical);
            logical = size;
        }
        let changed = after.size() != size
            || after.mtime() != md.mtime()
            || after.mtime_nsec() != md.mtime_nsec();
        let unsure = changed.then(|| {
            "changed while it was read: the stored content is what was read, which may mix old and new data".to_string()
        });
        Ok((*hasher.finalize().as_bytes(), logical, unsure))
    }

    /// A hole of `n` bytes: hashed as zeros, counted as progress (a sparse
    /// image's holes are most of what it covers).
    fn hole(&self, hasher: &mut blake3::Hasher, n: u64) {
        hash_zeros(hasher, n);
        self.progress.bytes_sparse.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads `region` from `src` (positioned at its start) until its limit
    /// or EOF, dispatching chunks. Returns the bytes read.
    fn chunk_region(
        &self,
        src: &mut dyn Read,
        region: Span,
        state: &Arc<FileState>,
        hasher: &mut blake3::Hasher,
        parent: Option<&[Extent]>,
    ) -> io::Result<u64> {
        let Span {
            start,
            limit,
            expect,
        } = region;
        let dispatch = |offset: u64, chunk: Bytes, id: Option<BlobId>| {
            self.dispatch(state, offset, chunk, id);
        };
        let mut carry = Bytes::new();
        let mut total = 0u64;
        // an id computed ahead for the parent chunk at this offset
        let mut ahead: Option<(u64, BlobId)> = None;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let want = match limit {
                Some(l) => (l - total).min(block_size() as u64) as usize,
                None => block_size(),
            };
            // Sized for what is expected (plus one page to see EOF), so a
            // small file costs a small buffer.
            let likely = (expect.saturating_sub(total) as usize + 4096).min(want);
            let mut buf = self.buffers.take(carry.len() + likely);
            buf.extend_from_slice(&carry);
            let got = read_full(src, &mut buf, want)?;
            total += got as u64;
            self.progress
                .bytes_read
                .fetch_add(got as u64, Ordering::Relaxed);
            let eof = got < want || limit == Some(total);
            let data = self.buffers.share(buf);
            let new = &data[carry.len()..];
            if new.len() >= 1 << 20 {
                hasher.update_rayon(new);
            } else {
                hasher.update(new);
            }
            let base = start + total - data.len() as u64;
            let mut s = 0;
            match parent {
                None => {
                    for e in self.chunker.boundaries_parallel(&data, eof) {
                        dispatch(base + s as u64, data.slice(s..e), None);
                        s = e;
                    }
                }
                Some(p) => {
                    let max = self.chunker.max_size();
                    while s < data.len() && (eof || s + max <= data.len()) {
                        let at = base + s as u64;
                        let (n, id) = match self.reuse(p, &data[s..], at, &mut ahead) {
                            Some((n, id)) => (n, Some(id)),
                            None => (self.chunker.cut(&data[s..]), None),
                        };
                        dispatch(at, data.slice(s..s + n), id);
                        s += n;
                    }
                }
            }
            carry = data.slice(s..);
            if eof {
                debug_assert!(carry.is_empty());
                return Ok(total);
            }
        }
    }

    /// If the parent's chunk at `at` and the one after it are both still
    /// there, byte for byte, the first one's length and id.
    fn reuse(
        &self,
        parent: &[Extent],
        data: &[u8],
        at: u64,
        ahead: &mut Option<(u64, BlobId)>,
    ) -> Option<(usize, BlobId)> {
        let find = |off: u64| {
            parent
                .binary_search_by_key(&off, |e| e.offset)
                .ok()
                .map(|i| parent[i])
        };
        let e1 = find(at)?;
        // A chunk this chunker could not have cut (the parent was chunked
        // with other sizes, `backup --chunk-size`) is not reused: the file
        // is chunked afresh, so a source's chunks follow its sizes.
        if !(self.chunker.min_size()..=self.chunker.max_size()).contains(&(e1.length as usize)) {
            return None;
        }
        let e2 = find(at + e1.length as u64)?;
        let (l1, l2) = (e1.length as usize, e2.length as usize);
        if data.len() < l1 + l2 {
            return None;
        }
        let key = self.writer.key();
        let id1 = match ahead.take() {
            Some((off, id)) if off == at => id,
            _ => key.blob_id(&data[..l1]),
        };
        if id1 != e1.blob {
            return None;
        }
        let id2 = key.blob_id(&data[l1..l1 + l2]);
        if id2 != e2.blob {
            return None;
        }
        *ahead = Some((at + l1 as u64, id2));
        Some((l1, id1))
    }

    /// Queues one chunk for storing (`id`: already computed). A chunk whose
    /// id is known and indexed needs nothing more.
    fn dispatch(&self, state: &Arc<FileState>, offset: u64, chunk: Bytes, id: Option<BlobId>) {
        let len = chunk.len() as u64;
        if let Some(id) = id
            && self.writer.is_stored(BlobKind::Data, &id)
        {
            state.record(offset, len, Some(id));
            return;
        }
        // A small chunk (a small file, a file's tail) is cheaper to store
        // here than to hand over: with many small files, waking a worker
        // per file costs more than the work.
        if len <= INLINE_MAX {
            let slot = state.record(offset, len, None);
            state.fill(slot, store(&self.writer, id, &chunk));
            return;
        }
        let slot = state.record(offset, len, None);
        self.budget.acquire(len);
        state.outstanding.fetch_add(1, Ordering::AcqRel);
        let state = state.clone();
        let writer = self.writer.clone();
        let budget = self.budget.clone();
        rayon::spawn(move || {
            let r = store(&writer, id, &chunk);
            drop(chunk);
            budget.release(len);
            state.fill(slot, r);
            state.done_one();
        });
    }
}

/// Stores a data chunk whose id may already be known; returns the id.
fn store(writer: &BlobWriter, id: Option<BlobId>, chunk: &[u8]) -> crate::error::Result<BlobId> {
    match id {
        Some(id) => writer.add_with_id(BlobKind::Data, id, chunk).map(|_| id),
        None => writer.add(BlobKind::Data, chunk),
    }
}

/// Opens for reading without updating the access time where allowed.
fn open_noatime(path: &Path) -> io::Result<File> {
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        r => r,
    }
}

/// Block size of the zero scan of a device.
const ZBLOCK: usize = 64 << 10;
/// Bytes per read from a device: small reads are slow on some devices (a
/// loop device reads 345 MB/s in 64 KiB reads, 10 GB/s in 4 MiB ones).
const DEVICE_READ: usize = 4 << 20;
/// The shortest zero run of a device that is stored as a hole.
pub const HOLE_MIN: usize = 1 << 20;

/// A block device read as data runs separated by holes. A device cannot
/// say where its holes are (SEEK_DATA sees data everywhere), so it is read
/// in [`DEVICE_READ`] reads and judged in [`ZBLOCK`] blocks: a run of at
/// least [`HOLE_MIN`] zero bytes (whole blocks) ends a data run; it is
/// skipped, not chunked, and restores as a hole. Shorter zero runs stay
/// data (served as zeros: they are counted, not kept). Data is copied once,
/// from the read buffer into the caller's.
///
/// Used as: `next_data` gives the offset of the next data run, then reading
/// yields that run to its end (0 at its end), then `next_data` again.
struct Device {
    f: File,
    size: u64,
    /// The last read from the device; `pos` is the next block in it.
    raw: Vec<u8>,
    pos: usize,
    /// The device offset of the next byte served.
    at: u64,
    /// Bytes of the current data block still to serve, from `raw[pos..]`.
    data_left: usize,
    /// Zeros of a short zero run still to serve.
    zeros_left: usize,
    /// Zeros already scanned past the end of the current run (a hole).
    hole: u64,
    /// The current run ended.
    ended: bool,
}

impl Device {
    fn open(path: &Path) -> io::Result<Self> {
        let mut f = open_noatime(path)?;
        let size = f.seek(SeekFrom::End(0))?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Self {
            f,
            size,
            raw: vec![],
            pos: 0,
            at: 0,
            data_left: 0,
            zeros_left: 0,
            hole: 0,
            ended: true,
        })
    }

    /// The block at `pos` (not consumed): its length and whether it is all
    /// zeros; `None` at the end of the device.
    fn peek_block(&mut self) -> io::Result<Option<(usize, bool)>> {
        if self.pos == self.raw.len() {
            // whole-buffer reads: `read_to_end` starts small and grows,
            // and a small read costs a loop device as much as a large one
            self.raw.resize(DEVICE_READ, 0);
            self.pos = 0;
            let mut n = 0;
            while n < DEVICE_READ {
                match self.f.read(&mut self.raw[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.raw.truncate(n);
            if n == 0 {
                return Ok(None);
            }
        }
        let len = ZBLOCK.min(self.raw.len() - self.pos);
        Ok(Some((len, is_zero(&self.raw[self.pos..self.pos + len]))))
    }

    /// Skips zeros; the offset where the next data run starts, or `None`
    /// at the end of the device.
    fn next_data(&mut self) -> io::Result<Option<u64>> {
        self.at += self.hole;
        self.hole = 0;
        loop {
            match self.peek_block()? {
                None => return Ok(None),
                Some((len, true)) => {
                    self.pos += len;
                    self.at += len as u64;
                }
                Some((len, false)) => {
                    self.data_left = len;
                    self.ended = false;
                    return Ok(Some(self.at));
                }
            }
        }
    }
}

impl Read for Device {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.zeros_left > 0 {
                let n = buf.len().min(self.zeros_left);
                buf[..n].fill(0);
                self.zeros_left -= n;
                self.at += n as u64;
                return Ok(n);
            }
            if self.data_left > 0 {
                let n = buf.len().min(self.data_left);
                buf[..n].copy_from_slice(&self.raw[self.pos..self.pos + n]);
                self.pos += n;
                self.data_left -= n;
                self.at += n as u64;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.peek_block()? {
                None => self.ended = true,
                Some((len, false)) => self.data_left = len,
                Some((_, true)) => {
                    // a zero run: a hole if long enough or to the end
                    let mut zeros = 0;
                    let data_follows = loop {
                        match self.peek_block()? {
                            Some((len, true)) => {
                                self.pos += len;
                                zeros += len;
                                if zeros >= HOLE_MIN {
                                    break false;
                                }
                            }
                            Some((_, false)) => break true,
                            None => break false,
                        }
                    };
                    if data_follows {
                        self.zeros_left = zeros;
                    } else {
                        self.hole = zeros as u64;
                        self.ended = true;
                    }
                }
            }
        }
    }
}

/// Whether every byte of `b` is zero (a page at a time: the OR of a page
/// vectorises, and the first non-zero page ends the scan).
fn is_zero(b: &[u8]) -> bool {
    b.chunks(4096)
        .all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
}

/// Appends up to `want` bytes to `buf`, stopping early only at EOF. (No
/// zero-filling: the buffer grows as data arrives.)
fn read_full(src: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
    // read_to_end on a Take stops at the limit or at EOF, retrying EINTR
    src.take(want as u64).read_to_end(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_buffer_returns_to_the_pool_when_its_last_chunk_drops() {
        let pool = Arc::new(BufferPool::new(1 << 20));
        let mut buf = pool.take(block_size());
        buf.extend_from_slice(&[7u8; 1000]);
        let at = buf.as_ptr();
        let data = pool.share(buf);
        let (a, b) = (data.slice(0..10), data.slice(10..1000));
        drop(data);
        drop(a);
        assert!(
            pool.idle.lock().unwrap().is_empty(),
            "a chunk still holds it"
        );
        drop(b);
        let again = pool.take(block_size());
        assert_eq!(again.as_ptr(), at, "the same buffer, reused");
        assert!(again.is_empty());
        // small requests, and buffers beyond the kept number, are not pooled
        assert_ne!(pool.take(4096).capacity(), pool.capacity);
        let many: Vec<Bytes> = (0..5)
            .map(|_| pool.share(pool.take(block_size())))
            .collect();
        drop(many);
        assert_eq!(pool.idle.lock().unwrap().len(), BufferPool::KEEP);
    }

    /// The data runs a [`Device`] yields: (offset, bytes).
    fn runs(content: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), content).unwrap();
        let mut d = Device::open(f.path()).unwrap();
        let mut out = vec![];
        while let Some(at) = d.next_data().unwrap() {
            let mut b = vec![];
            // small reads: runs must not depend on the reader's sizes
            let mut buf = [0u8; 3000];
            loop {
                let n = d.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                b.extend_from_slice(&buf[..n]);
            }
            out.push((at, b));
        }
        out
    }

    #[test]
    fn a_device_is_data_runs_between_long_zero_runs() {
        let z = ZBLOCK;
        let mut c = vec![0u8; 40 * z];
        c[z..z + 100].fill(1); // a run in block 1
        c[2 * z + 5] = 2; // a short zero gap (block 2 is data, block 3.. data)
        c[4 * z] = 3; // one zero block between: still one run
        c[40 * z - 1] = 4; // the last byte, after a hole of 35 blocks
        let r = runs(&c);
        assert_eq!(
            r.len(),
            2,
            "{:?}",
            r.iter().map(|(a, b)| (a, b.len())).collect::<Vec<_>>()
        );
        assert_eq!(r[0].0, z as u64);
        assert_eq!(r[0].1, c[z..5 * z]);
        assert_eq!(r[1].0, 39 * z as u64);
        assert_eq!(r[1].1, c[39 * z..]);
        // zeros only: no run; a trailing short zero run ends the last run
        assert!(runs(&vec![0u8; 3 * z + 17]).is_empty());
        let mut t = vec![0u8; 3 * z];
        t[0] = 9;
        let r = runs(&t);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, t[..z]);
        // exactly HOLE_MIN of zeros between data is a hole; one block less is not
        for (gap, want) in [(HOLE_MIN / z, 2), (HOLE_MIN / z - 1, 1)] {
            let mut g = vec![0u8; (gap + 2) * z];
            g[0] = 1;
            g[(gap + 1) * z] = 1;
            assert_eq!(runs(&g).len(), want, "a gap of {gap} blocks");
        }
    }
}
