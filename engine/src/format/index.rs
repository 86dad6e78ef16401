//! Index segments: which blob is in which pack, at which offset.
//!
//! ```text
//! object  = "AIX\x01" seal(label "AIX\x01", zstd(plain))
//! plain   = pack_count:u32le pack* superseded_count:u32le index_id[32]*
//! pack    = pack_id[32] pack_size:u64le entry_count:u32le entry*   (entry as in a pack header)
//! ```
//! A backup writes one segment per batch of packs it uploaded, after the
//! packs and before the snapshot. A segment lists a pack's blobs in pack
//! order; it may leave some out (a repair drops blobs that do not verify).
//! A segment may name older segments it supersedes (written by `repair
//! index`, and later by prune): readers ignore a superseded segment when a
//! segment superseding it exists, so a crash between writing the new
//! segment and deleting the old ones leaves a consistent index.

use crate::format::DecodeError;
use crate::format::crypto::{MasterKey, label};
use crate::format::id::{IndexId, PackId, PruneId};
use crate::format::pack::{self, PackEntry};
use crate::format::prune::Base;
use crate::format::wire::{Put, Reader};

/// Most packs one segment may list (bounds allocation when decoding).
const MAX_PACKS: u32 = 1 << 20;
/// Most bytes a decompressed segment may have.
const MAX_PLAIN: usize = 1 << 30;

/// The supersedes rule, the one place it is written: of the segments that
/// load, every segment that one of them names in its `supersedes` list is
/// ignored (whether or not it is still there). A writer that replaces
/// segments (repair, prune) writes the new ones first, naming the old,
/// then deletes the old: a crash between the two leaves a consistent index.
/// Returns the ids to ignore.
pub fn superseded<'a>(
    loaded: impl IntoIterator<Item = &'a IndexSegment>,
) -> std::collections::HashSet<IndexId> {
    loaded
        .into_iter()
        .flat_map(|s| s.supersedes.iter().copied())
        .collect()
}

/// One pack as an index segment describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack's id.
    pub id: PackId,
    /// Its size in bytes, header and trailer included.
    pub size: u64,
    /// Its blobs, in pack order.
    pub entries: Vec<PackEntry>,
}

/// A decoded index segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexSegment {
    /// The packs it describes.
    pub packs: Vec<IndexedPack>,
    /// Older segments this one replaces.
    pub supersedes: Vec<IndexId>,
    /// The prune generation its writer was based on (version 2; a
    /// version-1 segment reads as generation 0).
    pub base: Base,
}

impl IndexSegment {
    /// The plaintext encoding (before compression and sealing).
    pub fn encode_plain(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u32(self.packs.len() as u32);
        for p in &self.packs {
            out.extend_from_slice(&p.id.0);
            out.put_u64(p.size);
            out.extend_from_slice(&pack::encode_entries(&p.entries));
        }
        out.put_u32(self.supersedes.len() as u32);
        for s in &self.supersedes {
            out.extend_from_slice(&s.0);
        }
        out
    }

    /// Decodes the plaintext encoding.
    pub fn decode_plain(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let count = r.u32()?;
        if count > MAX_PACKS {
            return Err(format!("{count} packs is more than a segment may list").into());
        }
        let mut packs = Vec::with_capacity(count.min(4096) as usize);
        for _ in 0..count {
            let id = PackId(r.array32()?);
            let size = r.u64()?;
            let entries =
                pack::decode_entries(&mut r).map_err(|e| format!("pack {}: {e}", id.short()))?;
            // An index may list a subset of a pack's blobs (repair leaves out
            // damaged ones), but in pack order, without overlap, inside it.
            let mut end = 0u64;
            for e in &entries {
                if e.offset < end {
                    return Err(
                        format!("pack {}: blobs out of order or overlapping", id.short()).into(),
                    );
                }
                end = e
                    .offset
                    .checked_add(e.length as u64)
                    .ok_or_else(|| format!("pack {}: blob offset overflows", id.short()))?;
            }
            if end > size {
                return Err(format!("pack {}: blobs beyond the pack's size", id.short()).into());
            }
            packs.push(IndexedPack { id, size, entries });
        }
        let n = r.u32()?;
        if n as usize > r.remaining() / 32 {
            return Err(format!("{n} superseded segments do not fit").into());
        }
        let supersedes = (0..n)
            .map(|_| r.array32().map(IndexId))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            packs,
            supersedes,
            base: Base::default(),
        })
    }

    /// The stored object (version 2): magic, then the sealed, compressed
    /// `base_gen:u64le base_mark[32] plain` (an all-zero mark: none).
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let mut v2 = Vec::new();
        v2.put_u64(self.base.generation);
        v2.extend_from_slice(&self.base.mark.map_or([0; 32], |m| m.0));
        v2.extend_from_slice(&self.encode_plain());
        let z = zstd::bulk::compress(&v2, 3).expect("in-memory zstd");
        let mut out = label::INDEX_V2.to_vec();
        out.extend_from_slice(&key.seal(label::INDEX_V2, &z));
        out
    }

    /// Decodes a stored object of version 1 or 2 (its name was already
    /// checked by the caller).
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.starts_with(label::INDEX) {
            let z = crate::format::open_object(key, bytes, label::INDEX, "index segment")?;
            let plain = crate::format::compress::decompress_bounded(&z, MAX_PLAIN)?;
            return Self::decode_plain(&plain);
        }
        let z = crate::format::open_object(key, bytes, label::INDEX_V2, "index segment")?;
        let plain = crate::format::compress::decompress_bounded(&z, MAX_PLAIN)?;
        let mut r = Reader::new(&plain);
        let generation = r.u64()?;
        let mark = r.array32()?;
        let mut seg = Self::decode_plain(&plain[r.pos()..])?;
        seg.base = Base {
            generation,
            mark: (mark != [0; 32]).then_some(PruneId(mark)),
        };
        Ok(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::compress::Compression;
    use crate::format::id::BlobId;
    use crate::format::pack::BlobKind;

    #[test]
    fn round_trip() {
        let key = MasterKey::generate();
        let seg = IndexSegment {
            packs: vec![IndexedPack {
                id: PackId([1; 32]),
                size: 1000,
                entries: vec![
                    PackEntry {
                        kind: BlobKind::Data,
                        compression: Compression::Zstd,
                        id: BlobId([2; 32]),
                        offset: 0,
                        length: 100,
                        raw_length: 400,
                    },
                    PackEntry {
                        kind: BlobKind::Data,
                        compression: Compression::None,
                        id: BlobId([3; 32]),
                        offset: 100,
                        length: 240,
                        raw_length: 200,
                    },
                ],
            }],
            supersedes: vec![IndexId([9; 32])],
            base: crate::format::prune::Base {
                generation: 3,
                mark: Some(crate::format::id::PruneId([4; 32])),
            },
        };
        let obj = seg.to_object(&key);
        assert_eq!(IndexSegment::from_object(&key, &obj).unwrap(), seg);
        let mut bad = obj.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(IndexSegment::from_object(&key, &bad).is_err());
        assert!(IndexSegment::decode_plain(&seg.encode_plain()[..20]).is_err());
    }
}
