//! The repository config: format version, repository id, chunker limits.
//!
//! ```text
//! object = "ACF\x01" seal(label "ACF\x01", json)      stored at `config`
//! ```
//! It is written once by `init`. Each key file carries a copy of these
//! bytes, so a damaged `config` can be rewritten from any key.

use crate::format::DecodeError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::chunker::ChunkerParams;
use crate::format::crypto::{MasterKey, label};
use crate::format::id::RepoId;

/// The repository format version this build writes. Version 2 is
/// version 1 made prune-aware (prune records, seals, index segments and
/// snapshots that record their base): a build that reads only version 1
/// ignores prune records, and could deduplicate against a pack a prune is
/// about to delete, so it must refuse the repository. `init` writes 2;
/// prune raises a version-1 repository to 2 before it writes anything.
pub const FORMAT_VERSION: u32 = 2;

/// The versions this build reads.
pub const READ_VERSIONS: std::ops::RangeInclusive<u32> = 1..=2;

/// Default target size of a packfile.
pub const DEFAULT_PACK_SIZE: u32 = 16 << 20;

/// The decoded config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Repository format version.
    pub version: u32,
    /// Random id chosen at init; names the local cache directory.
    pub id: RepoId,
    /// When the repository was created.
    pub created: DateTime<Utc>,
    /// Chunk size limits.
    pub chunker: ChunkerParams,
    /// Target packfile size in bytes.
    pub pack_size: u32,
}

impl Config {
    /// A fresh config with a random id.
    pub fn new(chunker: ChunkerParams, pack_size: u32) -> Self {
        let mut id = [0u8; 32];
        crate::format::crypto::random_bytes(&mut id);
        Self {
            version: FORMAT_VERSION,
            id: RepoId(id),
            created: Utc::now(),
            chunker,
            pack_size,
        }
    }

    /// The stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("config serializes");
        let mut out = label::CONFIG.to_vec();
        out.extend_from_slice(&key.seal(label::CONFIG, &json));
        out
    }

    /// Decodes and validates a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::CONFIG, "config")?;
        Self::decode_json(&json)
    }

    /// Decodes and validates the plaintext JSON.
    pub fn decode_json(json: &[u8]) -> Result<Self, DecodeError> {
        let c: Config = serde_json::from_slice(json).map_err(|e| format!("config JSON: {e}"))?;
        if !READ_VERSIONS.contains(&c.version) {
            return Err(DecodeError::UnsupportedVersion {
                what: "repository config",
                found: c.version,
                supported: FORMAT_VERSION,
            });
        }
        c.chunker.validate()?;
        if !(1 << 20..=1 << 30).contains(&c.pack_size) {
            return Err(format!("pack size {} out of range", c.pack_size).into());
        }
        Ok(c)
    }
}
