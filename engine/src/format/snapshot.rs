//! Snapshot manifests: what was backed up, when, from where, and its root tree.
//!
//! ```text
//! object = "ASN\x01" seal(label "ASN\x01", json)
//! ```
//! The JSON fields are those of [`Snapshot`]; unknown fields are ignored so
//! that later versions can add some. Times are RFC 3339 with nanoseconds.

use crate::format::DecodeError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::crypto::{MasterKey, label};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::prune::Base;

/// Figures about one backup run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// When the backup started.
    pub backup_start: Option<DateTime<Utc>>,
    /// When the snapshot was written.
    pub backup_end: Option<DateTime<Utc>>,
    /// Files seen for the first time (no parent node).
    pub files_new: u64,
    /// Files read again because their metadata changed.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Other nodes (symlinks, devices, fifos).
    pub others: u64,
    /// Logical bytes of all files in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from the sources in this run.
    pub bytes_read: u64,
    /// Blobs this run added to the repository.
    pub blobs_added: u64,
    /// Plaintext bytes of the blobs this run added.
    pub data_added: u64,
    /// Bytes this run added to the repository (packs and index).
    pub data_added_packed: u64,
}

/// A PostgreSQL base backup in a snapshot: one source directory with a
/// `backup_label` at its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgBaseBackup {
    /// The source directory (as in `paths`).
    pub path: String,
    /// `START TIMELINE`.
    pub timeline: u32,
    /// `START WAL LOCATION`, an LSN as PostgreSQL prints it (`X/Y`).
    pub start_lsn: String,
    /// The WAL segment recovery starts from (24 hexadecimal digits).
    pub start_wal: String,
    /// Where the backup stopped (the `End-LSN` of `backup_manifest`'s
    /// `WAL-Ranges`), when there is a manifest: replay must reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_lsn: Option<String>,
    /// `LABEL`.
    #[serde(default)]
    pub label: String,
}

/// A dump whose bytes were checked while they were stored (see
/// `ops::backup::dumps`): what they were found to be and what proved it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpCheck {
    /// The file in the snapshot.
    pub path: String,
    /// What it was checked as: `postgres`, `redis`, `etcd` or `command`.
    pub kind: String,
    /// What its bytes are (`pg_dump custom archive`, `Redis RDB version 10`);
    /// empty where arca does not know the format (`command`).
    #[serde(default)]
    pub format: String,
    /// The validator that read it (`pg_restore --verbose --file=/dev/null`);
    /// empty where arca's own checks are all there is.
    #[serde(default)]
    pub validator: String,
    /// What the validator found, in one line.
    #[serde(default)]
    pub result: String,
    /// What passed but deserves a look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A source that could not be read; the snapshot is then partial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceError {
    /// The path (lossy UTF-8).
    pub path: String,
    /// What went wrong.
    pub error: String,
}

/// A snapshot manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started.
    pub time: DateTime<Utc>,
    /// Host name.
    pub host: String,
    /// User running the backup.
    #[serde(default)]
    pub username: String,
    /// Paths given to the backup, absolute (for stdin: the stdin file name).
    pub paths: Vec<String>,
    /// Tags, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The root tree blob.
    pub tree: BlobId,
    /// The snapshot used as parent for change detection, if any.
    #[serde(default)]
    pub parent: Option<SnapshotId>,
    /// Snapshots this one replaces (set by `repair snapshots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<SnapshotId>,
    /// Program that wrote it.
    #[serde(default)]
    pub program_version: String,
    /// Some sources could not be read.
    #[serde(default)]
    pub partial: bool,
    /// The sources that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SourceError>,
    /// Sources that were saved but deserve a look (changed while read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SourceError>,
    /// Figures about the run.
    #[serde(default)]
    pub summary: Summary,
    /// PostgreSQL base backups among the sources, with the WAL their
    /// recovery needs (see `ops::wal::base`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postgres: Vec<PgBaseBackup>,
    /// Dumps whose bytes were checked at backup time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<DumpCheck>,
    /// The prune generation the backup's catalog was based on (absent:
    /// generation 0, before any prune). See `format::prune`.
    #[serde(default, skip_serializing_if = "base_is_zero")]
    pub base: Base,
}

fn base_is_zero(b: &Base) -> bool {
    *b == Base::default()
}

impl Snapshot {
    /// The stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("snapshot serializes");
        let mut out = label::SNAPSHOT.to_vec();
        out.extend_from_slice(&key.seal(label::SNAPSHOT, &json));
        out
    }

    /// Decodes a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::SNAPSHOT, "snapshot")?;
        Self::decode_json(&json)
    }

    /// Decodes the plaintext JSON.
    pub fn decode_json(json: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(json).map_err(|e| format!("snapshot JSON: {e}").into())
    }
}
