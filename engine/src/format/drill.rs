//! Drill records: one restore drill's outcome (the bytes of `drills/<id>`).
//!
//! ```text
//! object = "ADR\x01" seal(label "ADR\x01", json)        stored at drills/<id>
//! ```
//! The JSON fields are those of [`DrillRecord`]. A record is written once
//! and never changed, so it is named by the BLAKE3 of its bytes like every
//! content-addressed object. Running a drill is `ops::drill`'s; this module
//! only says what a record says.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::DecodeError;
use crate::format::crypto::{MasterKey, label};
use crate::format::id::SnapshotId;

/// What one restore drill did and found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    /// The snapshot restored.
    pub snapshot: SnapshotId,
    /// Its paths and host, so that a record names its source without the
    /// snapshot (which retention may have forgotten since).
    pub paths: Vec<String>,
    /// The snapshot's host.
    pub source_host: String,
    /// Where the drill ran.
    pub host: String,
    /// Who ran it.
    pub username: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// Seconds spent restoring (every file verified).
    pub restore_seconds: f64,
    /// Seconds spent in the checks and the validator.
    pub check_seconds: f64,
    /// Seconds from start to a restored, validated copy: the recovery time
    /// this drill measured.
    pub total_seconds: f64,
    /// Files and bytes restored.
    pub files: u64,
    /// Logical bytes restored.
    pub bytes: u64,
    /// The checks run, one line each (the snapshot's dump checks again, on
    /// the restored files, and the validator).
    #[serde(default)]
    pub checks: Vec<String>,
    /// Whether the restore and every check passed.
    pub ok: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The recovery time objective it was held against, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<u64>,
}

impl DrillRecord {
    /// Whether it passed and, if it had an objective, met it.
    pub fn met(&self) -> bool {
        self.ok
            && self
                .rto_seconds
                .is_none_or(|rto| self.total_seconds <= rto as f64)
    }

    /// Encodes the stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("drill record serializes");
        let mut out = label::DRILL.to_vec();
        out.extend_from_slice(&key.seal(label::DRILL, &json));
        out
    }

    /// Decodes a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> std::result::Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::DRILL, "drill record")?;
        let r: Self =
            serde_json::from_slice(&json).map_err(|e| format!("drill record JSON: {e}"))?;
        let finite = [r.restore_seconds, r.check_seconds, r.total_seconds]
            .iter()
            .all(|s| s.is_finite() && *s >= 0.0);
        if !finite {
            return Err("drill record: a duration is negative or not a number".into());
        }
        Ok(r)
    }
}
