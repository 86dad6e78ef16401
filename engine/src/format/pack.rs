//! Packfiles: many sealed blobs, then a sealed header that lists them.
//!
//! ```text
//! pack    = blob* header trailer
//! blob    = seal(label DATA_BLOB | TREE_BLOB, maybe-zstd(plaintext))
//! header  = seal(label PACK_HEADER, count:u32le entry*count)
//! entry   = kind:u8 compression:u8 id:[32] offset:u64le length:u32le raw_length:u32le
//! trailer = header_length:u32le "APK\x01"
//! ```
//! The pack id is the plain BLAKE3 of all its bytes. A pack holds one kind
//! of blob (data or tree), so that restoring metadata never reads data.
//! The header repeats what the index says about the pack, which is how
//! `repair index` rebuilds a lost index from packs alone.

use crate::error::{Error, Result};
use crate::format::DecodeError;
use crate::format::compress::Compression;
use crate::format::crypto::{MasterKey, SEAL_OVERHEAD, label};
use crate::format::id::{BlobId, PackId, content_hash};
use crate::format::wire::{Put, Reader};

/// Trailer magic: pack format version 1.
pub const TRAILER_MAGIC: &[u8; 4] = b"APK\x01";
/// Trailer length in bytes.
pub const TRAILER_LEN: usize = 8;
/// Bytes per header entry.
pub const ENTRY_LEN: usize = 1 + 1 + 32 + 8 + 4 + 4;
/// The largest plaintext blob arca writes or accepts (trees of huge
/// directories are the largest).
pub const MAX_BLOB_LEN: u32 = 256 << 20;
/// The most entries a header may claim (bounds allocation when decoding).
pub const MAX_ENTRIES: u32 = 1 << 22;

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BlobKind {
    /// A chunk of file content.
    Data = 0,
    /// A serialized directory (see `tree`).
    Tree = 1,
}

impl BlobKind {
    /// Decodes the on-disk byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Data),
            1 => Some(Self::Tree),
            _ => None,
        }
    }
    /// The associated-data label a blob of this kind is sealed with.
    pub fn label(self) -> &'static [u8; 4] {
        match self {
            Self::Data => label::DATA_BLOB,
            Self::Tree => label::TREE_BLOB,
        }
    }
    /// Lower-case name for messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Tree => "tree",
        }
    }
}

/// One blob's place in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// How the plaintext is stored.
    pub compression: Compression,
    /// Keyed hash of the plaintext.
    pub id: BlobId,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u64,
    /// Length of the sealed blob (nonce, ciphertext, tag).
    pub length: u32,
    /// Length of the plaintext after decompression.
    pub raw_length: u32,
}

impl PackEntry {
    /// The byte range of the sealed blob in its pack.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.length as u64
    }

    /// Appends the 50-byte encoding.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.push(self.compression as u8);
        out.extend_from_slice(&self.id.0);
        out.put_u64(self.offset);
        out.put_u32(self.length);
        out.put_u32(self.raw_length);
    }

    /// Decodes one entry.
    pub fn decode(r: &mut Reader<'_>) -> std::result::Result<Self, DecodeError> {
        let kind = r.u8()?;
        let kind = BlobKind::from_byte(kind).ok_or_else(|| format!("unknown blob kind {kind}"))?;
        let compression = r.u8()?;
        let compression = Compression::from_byte(compression)
            .ok_or_else(|| format!("unknown compression {compression}"))?;
        let id = BlobId(r.array32()?);
        let offset = r.u64()?;
        let length = r.u32()?;
        let raw_length = r.u32()?;
        if (length as usize) < SEAL_OVERHEAD {
            return Err(format!(
                "blob {} length {length} is shorter than its envelope",
                id.short()
            )
            .into());
        }
        if raw_length > MAX_BLOB_LEN {
            return Err(format!("blob {} claims {raw_length} bytes", id.short()).into());
        }
        if compression == Compression::None
            && raw_length as usize + SEAL_OVERHEAD != length as usize
        {
            return Err(
                format!("uncompressed blob {} has inconsistent lengths", id.short()).into(),
            );
        }
        Ok(Self {
            kind,
            compression,
            id,
            offset,
            length,
            raw_length,
        })
    }
}

/// Encodes a list of entries as `count:u32le entry*`.
pub fn encode_entries(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.len() * ENTRY_LEN);
    out.put_u32(entries.len() as u32);
    for e in entries {
        e.encode_into(&mut out);
    }
    out
}

/// Decodes `count:u32le entry*`.
pub fn decode_entries(r: &mut Reader<'_>) -> std::result::Result<Vec<PackEntry>, DecodeError> {
    let n = r.u32()?;
    if n > MAX_ENTRIES || n as usize * ENTRY_LEN > r.remaining() {
        return Err(format!("{n} entries do not fit in {} bytes", r.remaining()).into());
    }
    (0..n).map(|_| PackEntry::decode(r)).collect()
}

/// Checks that entries tile `0..data_end` in order without overlap.
pub fn check_layout(entries: &[PackEntry], data_end: u64) -> std::result::Result<(), DecodeError> {
    let mut pos = 0u64;
    for e in entries {
        if e.offset != pos {
            return Err(format!(
                "blob {} at offset {} but the previous blob ends at {pos}",
                e.id.short(),
                e.offset
            )
            .into());
        }
        pos += e.length as u64;
    }
    if pos != data_end {
        return Err(format!("blobs end at {pos} but the header starts at {data_end}").into());
    }
    Ok(())
}

/// Parses the trailer, returning the header length.
pub fn parse_trailer(trailer: &[u8]) -> std::result::Result<u32, DecodeError> {
    if trailer.len() != TRAILER_LEN {
        return Err("pack shorter than its trailer".into());
    }
    if &trailer[4..] != TRAILER_MAGIC {
        if trailer[4..7] == TRAILER_MAGIC[..3] {
            return Err(DecodeError::UnsupportedVersion {
                what: "pack",
                found: u32::from(trailer[7]),
                supported: u32::from(TRAILER_MAGIC[3]),
            });
        }
        return Err("no pack trailer magic (not an arca v1 pack, or truncated)".into());
    }
    Ok(u32::from_le_bytes(trailer[..4].try_into().unwrap()))
}

/// Decodes and authenticates a pack header, given the pack's total size and
/// the sealed header bytes. Checks that the entries tile the pack.
pub fn decode_header(
    key: &MasterKey,
    pack_size: u64,
    sealed_header: &[u8],
) -> std::result::Result<Vec<PackEntry>, DecodeError> {
    let plain = key
        .open(label::PACK_HEADER, sealed_header)
        .map_err(|e| format!("header: {e}"))?;
    let data_end = pack_size
        .checked_sub(sealed_header.len() as u64 + TRAILER_LEN as u64)
        .ok_or("header longer than the pack")?;
    decode_header_plain(&plain, data_end)
}

/// Decodes a header's plaintext and checks that its entries tile
/// `0..data_end` (the bytes before the sealed header).
pub fn decode_header_plain(
    plain: &[u8],
    data_end: u64,
) -> std::result::Result<Vec<PackEntry>, DecodeError> {
    let mut r = Reader::new(plain);
    let entries = decode_entries(&mut r)?;
    r.finish()?;
    check_layout(&entries, data_end)?;
    Ok(entries)
}

/// Reads the header out of a whole pack in memory, checking the pack's id.
pub fn read_header_from_bytes(
    key: &MasterKey,
    id: &PackId,
    bytes: &[u8],
) -> Result<Vec<PackEntry>> {
    let object = format!("pack {id}");
    if content_hash(bytes) != id.0 {
        return Err(Error::damaged(
            &object,
            "content does not match its name (BLAKE3)",
        ));
    }
    read_header_from_bytes_unchecked(key, bytes).map_err(|e| Error::decode(&object, e))
}

/// Reads the header out of a whole pack in memory, without checking the
/// pack's name (for salvaging what a damaged pack still holds).
pub fn read_header_from_bytes_unchecked(
    key: &MasterKey,
    bytes: &[u8],
) -> std::result::Result<Vec<PackEntry>, DecodeError> {
    let n = bytes.len();
    if n < TRAILER_LEN {
        return Err("shorter than a pack trailer".into());
    }
    let hlen = parse_trailer(&bytes[n - TRAILER_LEN..])? as usize;
    let hstart = n
        .checked_sub(TRAILER_LEN + hlen)
        .ok_or("header length exceeds the pack")?;
    decode_header(key, n as u64, &bytes[hstart..n - TRAILER_LEN])
}

/// Opens one sealed blob and returns its plaintext, checking its id.
pub fn open_blob(
    key: &MasterKey,
    entry: &PackEntry,
    sealed: &[u8],
) -> std::result::Result<Vec<u8>, DecodeError> {
    let mut plain = vec![];
    open_blob_into(key, entry, sealed, &mut vec![], &mut plain)?;
    Ok(plain)
}

/// [`open_blob`] into caller-held buffers (contents replaced, capacity
/// reused): `plain` receives the plaintext, `stored` is scratch for a
/// compressed blob's decrypted bytes.
pub fn open_blob_into(
    key: &MasterKey,
    entry: &PackEntry,
    sealed: &[u8],
    stored: &mut Vec<u8>,
    plain: &mut Vec<u8>,
) -> std::result::Result<(), DecodeError> {
    if sealed.len() != entry.length as usize {
        return Err(format!(
            "blob is {} bytes, index says {}",
            sealed.len(),
            entry.length
        )
        .into());
    }
    let label = entry.kind.label();
    let raw_len = entry.raw_length as usize;
    match entry.compression {
        Compression::None => {
            key.open_into(label, sealed, plain)
                .map_err(|e| e.to_string())?;
            crate::format::compress::check_stored_len(plain.len(), raw_len)?;
        }
        Compression::Zstd => {
            key.open_into(label, sealed, stored)
                .map_err(|e| e.to_string())?;
            crate::format::compress::decompress_zstd_into(stored, raw_len, plain)?;
        }
    }
    if key.blob_id(plain) != entry.id {
        return Err("content does not match the blob id".into());
    }
    Ok(())
}

/// The most scratch capacity [`verify_blob`] keeps per thread and buffer.
const SCRATCH_KEPT: usize = 1 << 20;

/// Checks one blob as [`open_blob`] does, keeping no plaintext: the
/// buffers are per thread and reused, so verifying many blobs allocates
/// nothing after the first (what prune, check and repair use).
pub fn verify_blob(
    key: &MasterKey,
    entry: &PackEntry,
    sealed: &[u8],
) -> std::result::Result<(), DecodeError> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with(|cell| {
        let (stored, plain) = &mut *cell.borrow_mut();
        let verified = open_blob_into(key, entry, sealed, stored, plain);
        // what most blobs need stays allocated; a rare large blob's
        // buffers are freed again rather than held by every thread
        for b in [stored, plain] {
            if b.capacity() > SCRATCH_KEPT {
                *b = Vec::new();
            }
        }
        verified
    })
}

/// Opens every blob that `entries` places in a pack's `bytes` (each is
/// authenticated, decompressed and checked against its id, in parallel):
/// for each entry, the range of its sealed bytes, or why it does not open.
/// Entries are taken from the index, not the pack's header, so a damaged
/// header hides nothing. What `check --read-data` and `repair index
/// --read-data` judge a whole pack by.
pub fn verify_entries(
    key: &MasterKey,
    bytes: &[u8],
    entries: &[PackEntry],
) -> Vec<std::result::Result<std::ops::Range<usize>, DecodeError>> {
    use rayon::prelude::*;
    entries
        .par_iter()
        .map(|e| {
            let range = e.offset as usize..(e.offset + e.length as u64) as usize;
            match bytes.get(range.clone()) {
                Some(sealed) => verify_blob(key, e, sealed).map(|_| range),
                None => Err("beyond the end of the pack".into()),
            }
        })
        .collect()
}

/// The buffer a pack is filled in when packs are cut at `pack_size`: a
/// MiB of slack above it for the header. Only what is written becomes
/// resident, so a tree pack that stays small costs no more than its bytes.
pub fn buffer_capacity(pack_size: u32) -> usize {
    pack_size as usize + (1 << 20)
}

/// A pack being filled in memory.
pub struct PackBuilder {
    kind: BlobKind,
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

/// A finished pack, ready to upload.
pub struct FinishedPack {
    /// The pack's id (BLAKE3 of `bytes`).
    pub id: PackId,
    /// The whole pack.
    pub bytes: bytes::Bytes,
    /// What it holds.
    pub entries: Vec<PackEntry>,
    /// Data or tree.
    pub kind: BlobKind,
}

impl PackBuilder {
    /// An empty pack that fills `buf` (cleared; its capacity is reused).
    pub fn with_buffer(kind: BlobKind, mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self {
            kind,
            buf,
            entries: Vec::new(),
        }
    }

    /// An empty pack for blobs of one kind, with room for `capacity` bytes.
    pub fn new(kind: BlobKind, capacity: usize) -> Self {
        Self {
            kind,
            buf: Vec::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    /// The kind of blob it holds.
    pub fn kind(&self) -> BlobKind {
        self.kind
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a sealed blob of `len` bytes, with the header and trailer
    /// that [`finish`](Self::finish) appends, still fits in the buffer as
    /// allocated. An empty pack takes any blob. Callers finish the pack
    /// first when it does not: a buffer that grew would be copied into one
    /// twice its size, and stay that size when it is reused.
    pub fn fits(&self, len: usize) -> bool {
        let finished =
            4 + (self.entries.len() + 1) * ENTRY_LEN + SEAL_OVERHEAD + 4 + TRAILER_MAGIC.len();
        self.is_empty() || self.buf.len() + len + finished <= self.buf.capacity()
    }

    /// Appends a sealed blob.
    pub fn add(&mut self, id: BlobId, compression: Compression, raw_length: u32, sealed: &[u8]) {
        self.entries.push(PackEntry {
            kind: self.kind,
            compression,
            id,
            offset: self.buf.len() as u64,
            length: sealed.len() as u32,
            raw_length,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Seals the header, appends it and the trailer, and names the pack.
    pub fn finish(mut self, key: &MasterKey) -> FinishedPack {
        let header = key.seal(label::PACK_HEADER, &encode_entries(&self.entries));
        self.buf.extend_from_slice(&header);
        self.buf
            .extend_from_slice(&(header.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(TRAILER_MAGIC);
        FinishedPack {
            id: PackId(content_hash(&self.buf)),
            bytes: bytes::Bytes::from(self.buf),
            entries: self.entries,
            kind: self.kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_read_back() {
        let key = MasterKey::generate();
        let mut b = PackBuilder::new(BlobKind::Data, 1024);
        let mut ids = vec![];
        for i in 0..5u8 {
            let plain = vec![i; 100 + i as usize];
            let id = key.blob_id(&plain);
            let sealed = key.seal(label::DATA_BLOB, &plain);
            b.add(id, Compression::None, plain.len() as u32, &sealed);
            ids.push((id, plain));
        }
        let p = b.finish(&key);
        let entries = read_header_from_bytes(&key, &p.id, &p.bytes).unwrap();
        assert_eq!(entries, p.entries);
        for (e, (id, plain)) in entries.iter().zip(&ids) {
            assert_eq!(&e.id, id);
            let r = e.range();
            let got = open_blob(&key, e, &p.bytes[r.start as usize..r.end as usize]).unwrap();
            assert_eq!(&got, plain);
        }
        // any flipped byte is caught by the id check
        let mut bad = p.bytes.to_vec();
        bad[3] ^= 1;
        assert!(read_header_from_bytes(&key, &p.id, &bad).is_err());
        // a blob opened with the wrong kind fails
        let mut e = entries[0];
        e.kind = BlobKind::Tree;
        assert!(open_blob(&key, &e, &p.bytes[..e.length as usize]).is_err());
    }

    #[test]
    fn a_pack_never_outgrows_its_buffer_and_verify_blob_needs_the_right_bytes() {
        let key = MasterKey::generate();
        let mut b = PackBuilder::new(BlobKind::Data, 4096);
        // an empty pack takes any blob
        assert!(b.fits(10_000));
        b.add(key.blob_id(b"a"), Compression::None, 1, &[0u8; 3000]);
        assert!(b.fits(500));
        assert!(
            !b.fits(1100),
            "3000 + 1100 + header and trailer exceed 4096"
        );

        let plain = b"some plaintext".repeat(100);
        let mut p = PackBuilder::new(BlobKind::Data, 1 << 16);
        let sealed = key.seal(BlobKind::Data.label(), &plain);
        p.add(
            key.blob_id(&plain),
            Compression::None,
            plain.len() as u32,
            &sealed,
        );
        let f = p.finish(&key);
        let e = f.entries[0];
        let bytes = &f.bytes[e.offset as usize..(e.offset + e.length as u64) as usize];
        verify_blob(&key, &e, bytes).unwrap();
        let mut bad = bytes.to_vec();
        bad[30] ^= 1;
        assert!(verify_blob(&key, &e, &bad).is_err());
        let mut other = e;
        other.id = key.blob_id(b"another");
        assert!(verify_blob(&key, &other, bytes).is_err());
    }
}
