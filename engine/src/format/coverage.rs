//! Check coverage: which packs `check` verified by reading them, and when.
//!
//! ```text
//! object = "ACV\x01" seal(label "ACV\x01", zstd(plain))       stored at checks/<id>
//! plain  = count:u32le (pack_id[32] verified_at:i64le)*       unix seconds, sorted by pack id
//! ```
//! Records live in the repository, not only in a local cache, so a rolling
//! check on any host continues where another stopped. Each new record folds
//! in every record its writer read, and then those are deleted; two hosts
//! writing at once each keep the union of what they read, so nothing is
//! lost. Names are the BLAKE3 of the stored bytes, like every object but
//! `config`.

use crate::format::DecodeError;
use std::collections::HashMap;

use crate::format::crypto::label;
use crate::format::id::PackId;
use crate::format::wire::{Put, Reader};

/// Most entries a record may hold (bounds allocation when decoding).
const MAX_ENTRIES: u32 = 1 << 26;

/// When each pack was last verified (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Pack id to last verification time.
    pub verified: HashMap<PackId, i64>,
}

impl Coverage {
    /// The plaintext encoding.
    pub fn encode_plain(&self) -> Vec<u8> {
        let mut v: Vec<(&PackId, &i64)> = self.verified.iter().collect();
        v.sort();
        let mut out = Vec::with_capacity(4 + v.len() * 40);
        out.put_u32(v.len() as u32);
        for (p, t) in v {
            out.extend_from_slice(&p.0);
            out.put_i64(*t);
        }
        out
    }

    /// Decodes the plaintext encoding.
    pub fn decode_plain(b: &[u8]) -> std::result::Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let n = r.u32()?;
        if n > MAX_ENTRIES || n as usize > r.remaining() / 40 {
            return Err(format!("{n} entries do not fit").into());
        }
        let mut verified = HashMap::with_capacity(n as usize);
        for _ in 0..n {
            let p = PackId(r.array32()?);
            let t = r.i64()?;
            verified.insert(p, t);
        }
        r.finish()?;
        Ok(Self { verified })
    }

    /// The stored object.
    pub fn to_object(&self, key: &crate::format::crypto::MasterKey) -> Vec<u8> {
        let z = zstd::bulk::compress(&self.encode_plain(), 3).expect("in-memory zstd");
        let mut out = label::COVERAGE.to_vec();
        out.extend_from_slice(&key.seal(label::COVERAGE, &z));
        out
    }

    /// Decodes a stored object (its name was already checked by the caller).
    pub fn from_object(
        key: &crate::format::crypto::MasterKey,
        bytes: &[u8],
    ) -> std::result::Result<Self, DecodeError> {
        let z = crate::format::open_object(key, bytes, label::COVERAGE, "check record")?;
        let plain = crate::format::compress::decompress_bounded(&z, 1 << 30)?;
        Self::decode_plain(&plain)
    }

    /// Merges another record: the later time wins.
    pub fn merge(&mut self, other: &Coverage) {
        for (p, t) in &other.verified {
            let e = self.verified.entry(*p).or_insert(*t);
            *e = (*e).max(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_merge() {
        let mut a = Coverage::default();
        a.verified.insert(PackId([1; 32]), 10);
        a.verified.insert(PackId([2; 32]), 20);
        let b = Coverage::decode_plain(&a.encode_plain()).unwrap();
        assert_eq!(a, b);
        let mut c = Coverage::default();
        c.verified.insert(PackId([1; 32]), 30);
        c.verified.insert(PackId([3; 32]), 5);
        a.merge(&c);
        assert_eq!(a.verified[&PackId([1; 32])], 30);
        assert_eq!(a.verified.len(), 3);
        assert!(Coverage::decode_plain(&[1, 0, 0, 0]).is_err());
    }
}
