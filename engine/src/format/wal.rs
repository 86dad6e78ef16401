//! Archived PostgreSQL WAL files: their names and their objects.
//!
//! PostgreSQL hands an archive four kinds of file, each named by where it
//! sits in the WAL stream: segments (`TTTTTTTTLLLLLLLLSSSSSSSS`: timeline,
//! log, segment, 24 uppercase hex digits), partial segments (a segment's
//! name and `.partial`, left by a promotion), backup history files (a
//! segment's name, `.`, the 8-hex-digit offset of the backup's start, and
//! `.backup`) and timeline history files (`TTTTTTTT.history`).
//!
//! Each archived file is one object `wal/<id>` whose 32-byte id **is** the
//! file's name, packed (`format-spec` §14.4): so `wal fetch` reads one
//! object by name without an index, `wal push` refuses a second, different
//! file of one name with a create-only put, and a listing of `wal/`
//! yields every name in WAL order without reading any object. The name is
//! also sealed inside the object, so that an object moved to another name
//! never opens as that name's file.
//!
//! Object bytes: `AWL\x01 || seal(AWL\x01, id[32] || size:u64 ||
//! blake3(plaintext)[32] || compression:u8 || body)`, the body zstd or raw.
//! A decoder refuses more than [`MAX_FILE`] bytes of plaintext (PostgreSQL's
//! largest segment size), so a hostile object cannot demand unbounded memory.

use crate::format::DecodeError;
use crate::format::compress::{Compression, CompressionMode};
use crate::format::crypto::{MasterKey, label};
use crate::format::id::WalId;
use crate::format::wire::Reader;

/// The largest archived file arca stores: 1 GiB, PostgreSQL's largest WAL
/// segment size (`initdb --wal-segsize`); history and backup files are
/// a few hundred bytes.
pub const MAX_FILE: u64 = 1 << 30;

/// One archived WAL file, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WalFile {
    /// `TTTTTTTTLLLLLLLLSSSSSSSS`: a whole segment.
    Segment(SegmentNo),
    /// `TTTTTTTTLLLLLLLLSSSSSSSS.partial`: a timeline's last, incomplete
    /// segment, archived when a standby is promoted.
    Partial(SegmentNo),
    /// `TTTTTTTTLLLLLLLLSSSSSSSS.OOOOOOOO.backup`: a base backup's history
    /// file (its start and stop locations), named by the segment and
    /// offset where the backup started.
    Backup(SegmentNo, u32),
    /// `TTTTTTTT.history`: the history of timeline `TTTTTTTT`.
    History(u32),
}

/// A segment's position: timeline, log and segment number, as in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentNo {
    /// The timeline.
    pub timeline: u32,
    /// The high 32 bits of the segment's start location.
    pub log: u32,
    /// The segment within the log (below `2^32 / segment size`).
    pub seg: u32,
}

impl SegmentNo {
    /// Its 24-digit name.
    pub fn name(&self) -> String {
        format!("{:08X}{:08X}{:08X}", self.timeline, self.log, self.seg)
    }

    /// The segment after this one on the same timeline, for segments of
    /// `segment_size` bytes (a power of two from 1 MiB to 1 GiB).
    pub fn next(&self, segment_size: u64) -> SegmentNo {
        let per_log = ((1u64 << 32) / segment_size.max(1)) as u32;
        if self.seg + 1 >= per_log {
            SegmentNo {
                log: self.log + 1,
                seg: 0,
                ..*self
            }
        } else {
            SegmentNo {
                seg: self.seg + 1,
                ..*self
            }
        }
    }

    /// This segment's place in the WAL stream, counting segments of
    /// `segment_size` bytes from the stream's start (ignoring the
    /// timeline).
    pub fn index(&self, segment_size: u64) -> u64 {
        let per_log = (1u64 << 32) / segment_size.max(1);
        u64::from(self.log) * per_log + u64::from(self.seg)
    }

    fn parse(h: &str) -> Option<Self> {
        if h.len() != 24 {
            return None;
        }
        Some(Self {
            timeline: hex8(&h[..8])?,
            log: hex8(&h[8..16])?,
            seg: hex8(&h[16..])?,
        })
    }
}

/// Eight uppercase hex digits, as PostgreSQL writes them.
fn hex8(s: &str) -> Option<u32> {
    (s.len() == 8
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
    .then(|| u32::from_str_radix(s, 16).ok())
    .flatten()
}

/// The kind byte that starts a WAL id.
mod kind {
    pub const SEGMENT: u8 = 1;
    pub const PARTIAL: u8 = 2;
    pub const BACKUP: u8 = 3;
    pub const HISTORY: u8 = 4;
}

impl WalFile {
    /// The file PostgreSQL names `name`; `None` for anything else (a
    /// lowercase name, a path, another file).
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(t) = name.strip_suffix(".history") {
            return hex8(t).map(Self::History);
        }
        if let Some(s) = name.strip_suffix(".partial") {
            return SegmentNo::parse(s).map(Self::Partial);
        }
        if let Some(b) = name.strip_suffix(".backup") {
            let (s, off) = b.split_once('.')?;
            return Some(Self::Backup(SegmentNo::parse(s)?, hex8(off)?));
        }
        SegmentNo::parse(name).map(Self::Segment)
    }

    /// The file's name, as PostgreSQL writes it.
    pub fn name(&self) -> String {
        match self {
            Self::Segment(s) => s.name(),
            Self::Partial(s) => format!("{}.partial", s.name()),
            Self::Backup(s, off) => format!("{}.{off:08X}.backup", s.name()),
            Self::History(t) => format!("{t:08X}.history"),
        }
    }

    /// The timeline it belongs to.
    pub fn timeline(&self) -> u32 {
        match self {
            Self::Segment(s) | Self::Partial(s) | Self::Backup(s, _) => s.timeline,
            Self::History(t) => *t,
        }
    }

    /// Its object id: `kind || timeline || log || seg || offset`, each
    /// big-endian, then zeros (so ids sort in WAL order within a kind).
    pub fn id(&self) -> WalId {
        let (k, s, off) = match *self {
            Self::Segment(s) => (kind::SEGMENT, s, 0),
            Self::Partial(s) => (kind::PARTIAL, s, 0),
            Self::Backup(s, off) => (kind::BACKUP, s, off),
            Self::History(t) => (
                kind::HISTORY,
                SegmentNo {
                    timeline: t,
                    log: 0,
                    seg: 0,
                },
                0,
            ),
        };
        let mut id = [0u8; 32];
        id[0] = k;
        id[1..5].copy_from_slice(&s.timeline.to_be_bytes());
        id[5..9].copy_from_slice(&s.log.to_be_bytes());
        id[9..13].copy_from_slice(&s.seg.to_be_bytes());
        id[13..17].copy_from_slice(&off.to_be_bytes());
        WalId(id)
    }

    /// The file an id names; `None` for an id no file has.
    pub fn from_id(id: &WalId) -> Option<Self> {
        let b = &id.0;
        if b[17..].iter().any(|&x| x != 0) {
            return None;
        }
        let u = |r: std::ops::Range<usize>| u32::from_be_bytes(b[r].try_into().unwrap());
        let s = SegmentNo {
            timeline: u(1..5),
            log: u(5..9),
            seg: u(9..13),
        };
        let off = u(13..17);
        let f = match b[0] {
            kind::SEGMENT => Self::Segment(s),
            kind::PARTIAL => Self::Partial(s),
            kind::BACKUP => Self::Backup(s, off),
            kind::HISTORY if s.log == 0 && s.seg == 0 => Self::History(s.timeline),
            _ => return None,
        };
        // one encoding per file: no stray offset on other kinds
        (f.id() == *id).then_some(f)
    }
}

/// An archived file as it comes out of its object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalObject {
    /// The file it holds.
    pub file: WalFile,
    /// Its bytes.
    pub data: Vec<u8>,
    /// BLAKE3 of `data`.
    pub hash: [u8; 32],
}

/// BLAKE3 of a file's bytes, as a WAL object records it.
pub fn file_hash(data: &[u8]) -> [u8; 32] {
    blake3::hash(data).into()
}

/// The object for `file` holding `data`, whose [`file_hash`] is `hash`
/// (the caller has it already: hashing 16 MiB twice costs milliseconds
/// per segment), compressed with `mode` when that pays. Errors for a file
/// larger than [`MAX_FILE`].
pub fn encode(
    key: &MasterKey,
    file: WalFile,
    data: &[u8],
    hash: &[u8; 32],
    mode: CompressionMode,
) -> Result<Vec<u8>, String> {
    if data.len() as u64 > MAX_FILE {
        return Err(format!(
            "{} is {} bytes: arca archives WAL files of at most {MAX_FILE} bytes",
            file.name(),
            data.len()
        ));
    }
    let (body, how) = crate::format::compress::compress(data, mode);
    let mut p = Vec::with_capacity(32 + 8 + 32 + 1 + body.len());
    p.extend_from_slice(&file.id().0);
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(hash);
    p.push(how as u8);
    p.extend_from_slice(&body);
    let mut out = Vec::with_capacity(4 + p.len() + crate::format::crypto::SEAL_OVERHEAD);
    out.extend_from_slice(label::WAL);
    out.extend_from_slice(&key.seal(label::WAL, &p));
    Ok(out)
}

/// Opens the object stored as `wal/<id>`: authenticates it, checks that
/// it holds the file that id names, decompresses and checks the size and
/// hash.
pub fn decode(key: &MasterKey, id: &WalId, bytes: &[u8]) -> Result<WalObject, DecodeError> {
    let file = WalFile::from_id(id).ok_or("not the id of a WAL file")?;
    let p = crate::format::open_object(key, bytes, label::WAL, "WAL object")?;
    let mut r = Reader::new(&p);
    let inner = WalId(r.array32()?);
    if inner != *id {
        return Err(match WalFile::from_id(&inner) {
            Some(f) => format!("holds {}, not {}", f.name(), file.name()).into(),
            None => "holds no WAL file's name".into(),
        });
    }
    let size = r.u64()?;
    if size > MAX_FILE {
        return Err(format!("claims {size} bytes, more than {MAX_FILE}").into());
    }
    let hash = r.array32()?;
    let how = Compression::from_byte(r.u8()?).ok_or("unknown compression")?;
    let body = r.bytes(r.remaining())?;
    let data = crate::format::compress::decompress(body.to_vec(), how, size as usize)?;
    if file_hash(&data) != hash {
        return Err("content does not match its recorded hash".into());
    }
    Ok(WalObject { file, data, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_ids() {
        for n in [
            "000000010000000000000001",
            "0000000A00000003000000FF",
            "000000020000000100000000.partial",
            "000000010000000000000002.00000028.backup",
            "00000002.history",
        ] {
            let f = WalFile::parse(n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(f.name(), n);
            assert_eq!(WalFile::from_id(&f.id()), Some(f));
        }
        for bad in [
            "00000001000000000000000",
            "0000000100000000000000010",
            "00000001000000000000000a",
            "000000010000000000000001.backup",
            "0000001.history",
            "../000000010000000000000001",
            "archive_status",
        ] {
            assert_eq!(WalFile::parse(bad), None, "{bad}");
        }
        let mut id = WalFile::parse("00000002.history").unwrap().id();
        id.0[13] = 1; // an offset on a history file
        assert_eq!(WalFile::from_id(&id), None);
        id.0[13] = 0;
        id.0[31] = 1;
        assert_eq!(WalFile::from_id(&id), None);
    }

    #[test]
    fn ids_sort_in_wal_order() {
        let a = WalFile::parse("0000000100000000000000FF").unwrap();
        let b = WalFile::parse("000000010000000100000000").unwrap();
        let c = WalFile::parse("000000020000000000000000").unwrap();
        assert!(a.id() < b.id() && b.id() < c.id());
        let s = SegmentNo {
            timeline: 1,
            log: 0,
            seg: 0xFF,
        };
        assert_eq!(s.next(16 << 20).name(), "000000010000000100000000");
        assert_eq!(s.next(1 << 20).name(), "000000010000000000000100");
        assert_eq!(s.next(16 << 20).index(16 << 20), 256);
    }

    #[test]
    fn objects_round_trip_and_refuse_another_name() {
        let k = MasterKey::generate();
        let f = WalFile::parse("000000010000000000000003").unwrap();
        let mut data = vec![0u8; 1 << 20];
        data[..5].copy_from_slice(b"hello");
        let obj = encode(&k, f, &data, &file_hash(&data), CompressionMode::Auto).unwrap();
        assert!(obj.len() < 10_000, "a mostly-zero segment compresses");
        let d = decode(&k, &f.id(), &obj).unwrap();
        assert_eq!((d.file, &d.data, d.hash), (f, &data, file_hash(&data)));
        // the same bytes filed under another name do not open as it
        let g = WalFile::parse("000000010000000000000004").unwrap();
        let e = decode(&k, &g.id(), &obj).unwrap_err().to_string();
        assert!(e.contains("holds 000000010000000000000003"), "{e}");
        // tampering and another key are refused
        let mut bad = obj.clone();
        let n = bad.len();
        bad[n - 20] ^= 1;
        assert!(decode(&k, &f.id(), &bad).is_err());
        assert!(decode(&MasterKey::generate(), &f.id(), &obj).is_err());
        let raw = encode(&k, f, b"x", &file_hash(b"x"), CompressionMode::Off).unwrap();
        assert_eq!(decode(&k, &f.id(), &raw).unwrap().data, b"x");
    }
}
