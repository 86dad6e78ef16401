//! The blob writer: dedup, compress, seal, pack, upload, index.
//!
//! [`BlobWriter::add`] may be called from many threads at once. A blob
//! already in the catalog, or already added in this session, costs one
//! keyed hash and one or two lookups (by kind and id: a data blob and a
//! tree blob with the same plaintext are different blobs): first in the
//! set of blobs this writer added that no catalog segment holds yet (in
//! open, queued or unindexed packs), then in the catalog. That set is
//! emptied of a segment's blobs once the segment is in the catalog, so it
//! holds at most about one segment's entries ([`SEGMENT_ENTRIES`] plus the
//! packs in flight), however many chunks a backup reads or adds.
//!
//! A new blob is compressed and sealed by the calling thread and appended
//! to the open pack of its kind; a full pack is handed to an idle uploader
//! thread (a rendezvous: no queue), so memory is bounded by `uploaders + 2`
//! packs, whatever the number of uploaders: a remote store gets more
//! uploaders to hide latency, not a longer queue.
//!
//! Write order (the safety rules of DESIGN.md): a pack is uploaded, its size
//! checked and its header read back and compared before its entries may go
//! into an index segment; segments are written by [`BlobWriter::flush`]
//! (and every `SEGMENT_PACKS` packs or `SEGMENT_ENTRIES` blobs, so that an
//! interrupted backup's uploads still dedup next time); the caller writes
//! the snapshot only after `flush` returned.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{BackendFailure, Error, Result};
use crate::format::compress::{CompressionMode, compress};
use crate::format::id::{BlobId, IndexId};
use crate::format::index::{IndexSegment, IndexedPack};
use crate::format::pack::{BlobKind, FinishedPack, MAX_BLOB_LEN, PackBuilder, buffer_capacity};
use crate::format::prune::Base;
use crate::store::backend::ObjectKey;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// Packs per index segment written during a long backup.
const SEGMENT_PACKS: usize = 256;

/// Blob entries per index segment written during a long backup (about 13
/// MiB of plaintext): with small chunks 256 packs could hold millions of
/// blobs, and every reader of a segment holds all of it at once.
const SEGMENT_ENTRIES: usize = 1 << 18;

/// What an abandoned writer left in the repository.
#[derive(Debug)]
pub struct Abandoned {
    /// The first upload that failed, if one did.
    pub upload_error: Option<Error>,
    /// Packs uploaded (and checked) before it stopped.
    pub packs: u64,
    /// Their bytes, and the index segments'.
    pub bytes: u64,
    /// Why the last index segment could not be written, if it could not.
    pub unindexed: Option<String>,
}

impl Abandoned {
    /// "3 packs (48.0 MiB) were uploaded and indexed: the next run reuses
    /// them", or what else is true.
    pub fn describe(&self) -> String {
        if self.packs == 0 {
            return "no pack had been uploaded and checked".into();
        }
        let what = format!(
            "{} pack(s) ({}) had been uploaded",
            self.packs,
            crate::error::human_bytes(self.bytes)
        );
        match &self.unindexed {
            None => format!("{what} and are indexed: the next run reuses them"),
            Some(e) => format!(
                "{what}, but the last of them could not be indexed ({e}): `arca repair index` indexes them"
            ),
        }
    }
}

/// Counters of what the writer did.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// New blobs stored.
    pub blobs_added: AtomicU64,
    /// Their plaintext bytes.
    pub bytes_added: AtomicU64,
    /// Bytes uploaded (packs and index segments).
    pub bytes_uploaded: AtomicU64,
    /// Packs uploaded and checked.
    pub packs_uploaded: AtomicU64,
    /// Blobs that were already stored.
    pub blobs_deduped: AtomicU64,
}

struct Shared {
    repo: Repository,
    /// The prune generation the catalog was based on when the writer
    /// started: recorded in every segment it writes.
    base: Base,
    /// Data pack buffers to reuse (a fresh 16 MiB buffer per pack costs
    /// 4096 page faults and the kernel zeroing it).
    spare: Mutex<Vec<Vec<u8>>>,
    catalog: Arc<Catalog>,
    /// Blobs added by this writer that the catalog does not hold yet.
    pending: Mutex<HashSet<(BlobKind, BlobId)>>,
    /// [`SEGMENT_ENTRIES`], smaller in tests.
    segment_entries: usize,
    uploaded: Mutex<Vec<IndexedPack>>,
    segments: Mutex<Vec<IndexId>>,
    error: Mutex<Option<Error>>,
    stats: WriterStats,
}

/// Writes blobs into packs and packs into the repository.
pub struct BlobWriter {
    shared: Arc<Shared>,
    compression: CompressionMode,
    open: [Mutex<PackBuilder>; 2],
    queue: Mutex<Option<Sender<FinishedPack>>>,
    uploaders: Mutex<Vec<JoinHandle<()>>>,
}

impl BlobWriter {
    /// Starts `uploaders` upload threads.
    pub fn new(
        repo: Repository,
        catalog: Arc<Catalog>,
        compression: CompressionMode,
        uploaders: usize,
    ) -> Self {
        Self::with_segment_entries(repo, catalog, compression, uploaders, SEGMENT_ENTRIES)
    }

    fn with_segment_entries(
        repo: Repository,
        catalog: Arc<Catalog>,
        compression: CompressionMode,
        uploaders: usize,
        segment_entries: usize,
    ) -> Self {
        let pack_size = repo.config().pack_size as usize;
        let shared = Arc::new(Shared {
            base: catalog.base(),
            repo,
            spare: Mutex::new(Vec::new()),
            catalog,
            pending: Mutex::new(HashSet::new()),
            segment_entries,
            uploaded: Mutex::new(vec![]),
            segments: Mutex::new(vec![]),
            error: Mutex::new(None),
            stats: WriterStats::default(),
        });
        let (tx, rx) = bounded::<FinishedPack>(0);
        let handles = (0..uploaders.max(1))
            .map(|i| {
                let rx: Receiver<FinishedPack> = rx.clone();
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("arca-upload-{i}"))
                    .spawn(move || {
                        for pack in rx {
                            if let Err(e) = upload(&shared, pack) {
                                shared.error.lock().unwrap().get_or_insert(e);
                            }
                        }
                    })
                    .expect("spawn uploader thread")
            })
            .collect();
        Self {
            shared,
            compression,
            open: [
                Mutex::new(PackBuilder::new(
                    BlobKind::Data,
                    buffer_capacity(pack_size as u32),
                )),
                Mutex::new(PackBuilder::new(
                    BlobKind::Tree,
                    buffer_capacity(pack_size as u32),
                )),
            ],
            queue: Mutex::new(Some(tx)),
            uploaders: Mutex::new(handles),
        }
    }

    /// The prune generation its segments record (see `format::prune`):
    /// the catalog's when the writer started.
    pub fn base(&self) -> Base {
        self.shared.base
    }

    /// Counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// The repository key (for callers that compute ids themselves).
    pub fn key(&self) -> &crate::format::crypto::MasterKey {
        self.shared.repo.key()
    }

    /// Whether a blob is stored or was added in this session (counts as
    /// deduplicated when true).
    pub fn is_stored(&self, kind: BlobKind, id: &BlobId) -> bool {
        let known =
            self.pending(kind, id) || self.shared.catalog.contains(kind, id).unwrap_or(false);
        if known {
            self.shared
                .stats
                .blobs_deduped
                .fetch_add(1, Ordering::Relaxed);
        }
        known
    }

    /// Stores a blob unless it is already stored. Returns its id.
    pub fn add(&self, kind: BlobKind, plain: &[u8]) -> Result<BlobId> {
        let id = self.shared.repo.key().blob_id(plain);
        self.add_with_id(kind, id, plain)?;
        Ok(id)
    }

    /// Like [`Self::add`] when the caller already computed the id.
    pub fn add_with_id(&self, kind: BlobKind, id: BlobId, plain: &[u8]) -> Result<()> {
        if let Some(e) = self.shared.error.lock().unwrap().as_ref() {
            return Err(Error::Backend {
                op: "upload",
                object: "pack".into(),
                message: format!("an earlier upload failed: {e}"),
                kind: BackendFailure::Other,
            });
        }
        if plain.len() > MAX_BLOB_LEN as usize {
            return Err(Error::Invalid(format!(
                "a {} blob of {} bytes exceeds the format's limit",
                kind.name(),
                plain.len()
            )));
        }
        // Pending first, then the catalog: a segment's blobs leave the
        // pending set only after the catalog has them, so a blob added in
        // this session is always found in one of the two. Claiming it in
        // the pending set last lets one thread of several that add the
        // same new blob at once store it.
        if self.pending(kind, &id)
            || self.shared.catalog.contains(kind, &id)?
            || !self.shared.pending.lock().unwrap().insert((kind, id))
        {
            self.shared
                .stats
                .blobs_deduped
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mode = match kind {
            // trees compress well and are small: always compress them
            BlobKind::Tree if self.compression == CompressionMode::Off => CompressionMode::Auto,
            _ => self.compression,
        };
        let (stored, how) = compress(plain, mode);
        let sealed = self.shared.repo.key().seal(kind.label(), &stored);
        drop(stored);
        let pack_size = self.shared.repo.config().pack_size as usize;
        // a pack is finished before a blob that would outgrow its buffer,
        // and once it reaches the pack size
        let (before, after) = {
            let mut open = self.open[kind as usize].lock().unwrap();
            let before = (!open.fits(sealed.len()))
                .then(|| std::mem::replace(&mut *open, self.next_pack(kind)));
            open.add(id, how, plain.len() as u32, &sealed);
            let after = (open.len() >= pack_size)
                .then(|| std::mem::replace(&mut *open, self.next_pack(kind)));
            (before, after)
        };
        let s = &self.shared.stats;
        s.blobs_added.fetch_add(1, Ordering::Relaxed);
        s.bytes_added
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        for p in [before, after].into_iter().flatten() {
            self.send(p)?;
        }
        Ok(())
    }

    fn pending(&self, kind: BlobKind, id: &BlobId) -> bool {
        self.shared.pending.lock().unwrap().contains(&(kind, *id))
    }

    /// How many added blobs the catalog does not hold yet.
    #[cfg(test)]
    fn pending_len(&self) -> usize {
        self.shared.pending.lock().unwrap().len()
    }

    /// An empty pack to fill next, on a returned buffer when there is one
    /// (only data packs return theirs: see `upload`).
    fn next_pack(&self, kind: BlobKind) -> PackBuilder {
        let spare = match kind {
            BlobKind::Data => self.shared.spare.lock().unwrap().pop(),
            BlobKind::Tree => None,
        };
        match spare {
            Some(buf) => PackBuilder::with_buffer(kind, buf),
            None => PackBuilder::new(kind, buffer_capacity(self.shared.repo.config().pack_size)),
        }
    }

    fn send(&self, p: PackBuilder) -> Result<()> {
        let finished = p.finish(self.shared.repo.key());
        let q = self.queue.lock().unwrap().clone();
        match q {
            Some(tx) => tx
                .send(finished)
                .map_err(|_| Error::Invalid("the upload queue closed early".into())),
            None => Err(Error::Invalid(
                "blob added after the writer was flushed".into(),
            )),
        }
    }

    /// Uploads the open packs, waits for every upload, and writes index
    /// segments for everything uploaded. After this returns `Ok`, every
    /// blob added is durable and indexed. Returns all segments written.
    pub fn flush(&self) -> Result<Vec<IndexId>> {
        for kind in [BlobKind::Data, BlobKind::Tree] {
            let p = {
                let mut open = self.open[kind as usize].lock().unwrap();
                std::mem::replace(&mut *open, PackBuilder::new(kind, 0))
            };
            if !p.is_empty() {
                self.send(p)?;
            }
        }
        self.queue.lock().unwrap().take();
        for h in self.uploaders.lock().unwrap().drain(..) {
            let _ = h.join();
        }
        if let Some(e) = self.shared.error.lock().unwrap().take() {
            // what did upload is still indexed, so a retry dedups against it
            let _ = write_segment(&self.shared);
            return Err(e);
        }
        write_segment(&self.shared)?;
        Ok(self.shared.segments.lock().unwrap().clone())
    }

    /// Stops without flushing the open packs, but indexes what was already
    /// uploaded (used when a backup is interrupted or fails). Says what it
    /// left behind, and the first upload failure (the usual reason to
    /// abandon).
    pub fn abandon(&self) -> Abandoned {
        self.queue.lock().unwrap().take();
        for h in self.uploaders.lock().unwrap().drain(..) {
            let _ = h.join();
        }
        let indexed = write_segment(&self.shared).err().map(|e| e.to_string());
        let st = &self.shared.stats;
        Abandoned {
            upload_error: self.shared.error.lock().unwrap().take(),
            packs: st.packs_uploaded.load(Ordering::Relaxed),
            bytes: st.bytes_uploaded.load(Ordering::Relaxed),
            unindexed: indexed,
        }
    }
}

fn upload(shared: &Shared, pack: FinishedPack) -> Result<()> {
    let key = ObjectKey::of(pack.id);
    let size = pack.bytes.len() as u64;
    shared.repo.put_checked(&key, pack.bytes.clone())?;
    // Read the header back: the entries are committed only if the stored
    // pack says what we meant to write.
    let back = shared.repo.read_pack_header(&pack.id, size)?;
    if back != pack.entries {
        return Err(Error::damaged(
            key,
            "header read back differs from what was written",
        ));
    }
    shared
        .stats
        .bytes_uploaded
        .fetch_add(size, Ordering::Relaxed);
    shared.stats.packs_uploaded.fetch_add(1, Ordering::Relaxed);
    // The store has the bytes now; keep the buffer for the next pack.
    if pack.kind == BlobKind::Data
        && let Ok(buf) = pack.bytes.try_into_mut()
    {
        let mut spare = shared.spare.lock().unwrap();
        if spare.len() < 2 {
            spare.push(Vec::from(buf));
        }
    }
    let due = {
        let mut up = shared.uploaded.lock().unwrap();
        up.push(IndexedPack {
            id: pack.id,
            size,
            entries: pack.entries,
        });
        up.len() >= SEGMENT_PACKS
            || up.iter().map(|p| p.entries.len()).sum::<usize>() >= shared.segment_entries
    };
    if due {
        write_segment(shared)?;
    }
    Ok(())
}

/// Writes a segment for the uploaded packs not yet indexed.
fn write_segment(shared: &Shared) -> Result<()> {
    let packs = std::mem::take(&mut *shared.uploaded.lock().unwrap());
    if packs.is_empty() {
        return Ok(());
    }
    let seg = IndexSegment {
        packs,
        supersedes: vec![],
        base: shared.base,
    };
    let bytes = shared.repo.encode_index(&seg)?;
    let len = bytes.len() as u64;
    let id: IndexId = shared.repo.write_object(Bytes::from(bytes))?;
    shared.catalog.add_segment(&id, &seg)?;
    {
        // the catalog has them now (see the module comment)
        let mut pending = shared.pending.lock().unwrap();
        for e in seg.packs.iter().flat_map(|p| &p.entries) {
            pending.remove(&(e.kind, e.id));
        }
    }
    shared
        .stats
        .bytes_uploaded
        .fetch_add(len, Ordering::Relaxed);
    shared.segments.lock().unwrap().push(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::random_bytes;

    #[test]
    fn added_blobs_leave_the_pending_set_once_indexed() {
        let repo = crate::store::repo::memory_repo(1 << 20);
        let catalog = Arc::new(Catalog::in_memory(&repo.config().id).unwrap());
        let w =
            BlobWriter::with_segment_entries(repo, catalog.clone(), CompressionMode::Off, 1, 256);
        // 4 KiB blobs: about 256 to a 1 MiB pack. In flight at any time:
        // the open pack, one waiting to be handed over, one uploading,
        // and fewer than a segment's entries uploaded but not indexed.
        let bound = 5 * 256;
        let mut ids = vec![];
        let mut most = 0;
        for _ in 0..20_000 {
            let mut b = vec![0u8; 4096];
            random_bytes(&mut b);
            let id = w.add(BlobKind::Data, &b).unwrap();
            // the same new blob again, still pending: not stored twice
            assert_eq!(w.add(BlobKind::Data, &b).unwrap(), id);
            most = most.max(w.pending_len());
            ids.push(id);
        }
        assert!(
            most <= bound,
            "{most} blobs pending at once, more than {bound}"
        );
        assert_eq!(w.stats().blobs_added.load(Ordering::Relaxed), 20_000);
        assert_eq!(w.stats().blobs_deduped.load(Ordering::Relaxed), 20_000);
        assert!(!w.flush().unwrap().is_empty());
        assert_eq!(w.pending_len(), 0);
        for id in &ids {
            assert!(catalog.contains(BlobKind::Data, id).unwrap());
            assert!(w.is_stored(BlobKind::Data, id));
            assert!(!w.is_stored(BlobKind::Tree, id));
        }
    }
}
