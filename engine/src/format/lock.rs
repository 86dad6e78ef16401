//! Lock records: who is using a repository (the bytes of `locks/<id>`).
//!
//! ```text
//! object = "ALK\x01" seal(label "ALK\x01", json)
//! ```
//! The JSON fields are those of [`LockInfo`]. A lock removed by anyone but
//! its holder leaves a notice at `removed-locks/<lock id>`:
//! ```text
//! object = "ALR\x01" seal(label "ALR\x01", json)
//! ```
//! with the JSON of [`LockRemoval`]. The protocol that takes, refreshes,
//! judges and removes locks is `store::lock`'s; this module only says what
//! a lock and a notice say.

use crate::format::DecodeError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::crypto::{MasterKey, label};

/// Shared, maintenance or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Many at once (backup, restore, check); excludes exclusive locks.
    Shared,
    /// One at a time (prune), beside any number of shared locks: prune's
    /// safety beside backups does not rest on locks (`format-spec` §15),
    /// this only keeps two prunes apart.
    Maintenance,
    /// Alone (repair); excludes every other lock.
    Exclusive,
}

impl LockKind {
    /// Whether a lock of this kind excludes one of `other`.
    pub fn conflicts_with(self, other: LockKind) -> bool {
        use LockKind::*;
        matches!(
            (self, other),
            (Exclusive, _) | (_, Exclusive) | (Maintenance, Maintenance)
        )
    }
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockKind::Shared => "shared",
            LockKind::Maintenance => "maintenance",
            LockKind::Exclusive => "exclusive",
        })
    }
}

/// What a lock object says (its sealed JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// The host of the process holding it.
    pub host: String,
    /// That process's id.
    pub pid: u32,
    /// The user running it.
    pub username: String,
    /// What it is doing (`backup`, `prune`, `repair index`, ...).
    pub operation: String,
    /// When it was taken.
    pub created: DateTime<Utc>,
    /// When it was last refreshed.
    pub refreshed: DateTime<Utc>,
    /// Where `pid` means something: the kernel's boot id and the process's
    /// pid namespace (see [`process_space`]). Empty in locks written
    /// before it existed, and where it cannot be read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub process_space: String,
}

impl LockInfo {
    /// Encodes the stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("lock serializes");
        let mut out = label::LOCK.to_vec();
        out.extend_from_slice(&key.seal(label::LOCK, &json));
        out
    }

    /// Decodes a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> std::result::Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::LOCK, "lock")?;
        serde_json::from_slice(&json).map_err(|e| format!("lock JSON: {e}").into())
    }

    /// "exclusive lock of prune by alice@db-1 (pid 42), taken ..., refreshed ...".
    pub fn describe(&self) -> String {
        format!(
            "{} lock of {} by {}@{} (pid {}), taken {}, last refreshed {}",
            self.kind,
            self.operation,
            self.username,
            self.host,
            self.pid,
            self.created.format("%Y-%m-%d %H:%M:%S UTC"),
            self.refreshed.format("%Y-%m-%d %H:%M:%S UTC"),
        )
    }
}

/// What a lock-removal notice says: who removed the lock, when and why.
/// Its holder, finding it, knows its lock is lost even if its own refresh
/// wrote the lock again after the removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRemoval {
    /// When the lock was removed (by the remover's clock): the notice may
    /// itself be removed once it is older than the lock's staleness.
    pub removed: DateTime<Utc>,
    /// The host of the process that removed it.
    pub host: String,
    /// That process's id.
    pub pid: u32,
    /// The user running it.
    pub username: String,
    /// Why: `unlock` (the lock was stale) or `unlock --remove-all`.
    pub operation: String,
}

impl LockRemoval {
    /// Encodes the stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("lock removal serializes");
        let mut out = label::LOCK_REMOVAL.to_vec();
        out.extend_from_slice(&key.seal(label::LOCK_REMOVAL, &json));
        out
    }

    /// Decodes a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> std::result::Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::LOCK_REMOVAL, "lock removal")?;
        serde_json::from_slice(&json).map_err(|e| format!("lock removal JSON: {e}").into())
    }

    /// "`unlock --remove-all` by alice@db-1 (pid 42) at ...".
    pub fn describe(&self) -> String {
        format!(
            "`{}` by {}@{} (pid {}) at {}",
            self.operation,
            self.username,
            self.host,
            self.pid,
            self.removed.format("%Y-%m-%d %H:%M:%S UTC"),
        )
    }
}
