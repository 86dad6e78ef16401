//! Prune records and seals: the bytes of `prune/<id>` and `seals/<name>`,
//! and the rules that say, given the records a reader sees, which packs
//! are live, which snapshots and index segments are valid (`format-spec`
//! §14.3 and §15). Pure: which records exist is the caller's business.
//!
//! ```text
//! record = "APR\x01" seal(label "APR\x01", zstd(json))         prune/<BLAKE3 of the object>
//! seal   = "ASL\x01" seal(label "ASL\x01", json)               seals/<seal_name(repo id, generation)>
//! ```

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::DecodeError;
use crate::format::crypto::{MasterKey, label};
use crate::format::id::{IndexId, PackId, PruneId, RepoId, SealId, SnapshotId};

/// Most bytes a decompressed record may have.
const MAX_PLAIN: usize = 256 << 20;

/// Most packs one record may condemn.
const MAX_CONDEMNED: usize = 1 << 20;

/// The prune generation a writer's view was based on: the head record its
/// catalog had when it started (generation 0 and no record before any
/// prune). Recorded in snapshots and index segments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Base {
    /// The head's generation (0: none).
    pub generation: u64,
    /// The head record (`None` for generation 0). Prune's own segments
    /// carry the base of the head they were planned on, like a backup's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<PruneId>,
}

impl Base {
    /// Whether something written on this base is safe from the sweep of
    /// `swept`'s mark: it started after that mark was committed (a later
    /// generation, or that very record), so it never deduplicated against
    /// what that mark condemned.
    pub fn honours(&self, swept: &Swept) -> bool {
        self.generation > swept.generation
            || (self.generation == swept.generation && self.mark == Some(swept.mark))
    }
}

/// The mark a record sweeps, and the snapshots it protects although they
/// were based before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swept {
    /// The swept generation.
    pub generation: u64,
    /// The record whose condemned packs are swept.
    pub mark: PruneId,
    /// Snapshots based before `mark` that prune saw and protected (their
    /// blobs were copied out of the packs it deletes).
    #[serde(default)]
    pub accepted: Vec<SnapshotId>,
}

/// What a record deletes (packs with their sizes, to confirm them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDelete {
    /// Packs: the swept mark's condemned packs.
    #[serde(default)]
    pub packs: Vec<(PackId, u64)>,
    /// Void snapshots.
    #[serde(default)]
    pub snapshots: Vec<SnapshotId>,
}

/// The JSON part of a prune record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInfo {
    /// This record's generation (1 for the first).
    pub generation: u64,
    /// The head record this one builds on.
    #[serde(default)]
    pub previous: Option<PruneId>,
    /// When it was written (for messages; safety never depends on it).
    pub created: DateTime<Utc>,
    /// The host that wrote it.
    #[serde(default)]
    pub host: String,
    /// The mark this record sweeps, if any.
    #[serde(default)]
    pub swept: Option<Swept>,
    /// The packs it condemns, with their sizes: still readable (their
    /// headers say what they hold), no longer live; swept by the next
    /// generation. Ids and sizes only, so that a record stays small
    /// however many blobs those packs hold.
    #[serde(default)]
    pub condemned: Vec<(PackId, u64)>,
    /// What it deletes.
    #[serde(default)]
    pub to_delete: ToDelete,
    /// Index segments it replaces (ignored while it is the head).
    #[serde(default)]
    pub supersedes_index: Vec<IndexId>,
    /// Older prune records it replaces.
    #[serde(default)]
    pub supersedes_prune: Vec<PruneId>,
}

/// A prune record: the commit point of one prune generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRecord {
    /// What it says.
    pub info: RecordInfo,
}

impl PruneRecord {
    /// The plaintext: the JSON.
    pub fn encode_plain(&self) -> Vec<u8> {
        serde_json::to_vec(&self.info).expect("record serializes")
    }

    /// Decodes the plaintext.
    pub fn decode_plain(b: &[u8]) -> Result<Self, DecodeError> {
        let info: RecordInfo =
            serde_json::from_slice(b).map_err(|e| format!("prune record JSON: {e}"))?;
        if info.generation == 0 {
            return Err("prune record of generation 0".into());
        }
        if info.condemned.len() > MAX_CONDEMNED {
            return Err(format!(
                "prune record condemns {} packs, more than {MAX_CONDEMNED}",
                info.condemned.len()
            )
            .into());
        }
        Ok(Self { info })
    }

    /// The packs it condemns.
    pub fn condemned(&self) -> impl Iterator<Item = PackId> + '_ {
        self.info.condemned.iter().map(|(p, _)| *p)
    }

    /// The stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let z = zstd::bulk::compress(&self.encode_plain(), 3).expect("in-memory zstd");
        let mut out = label::PRUNE.to_vec();
        out.extend_from_slice(&key.seal(label::PRUNE, &z));
        out
    }

    /// Decodes a stored object (its name was already checked by the caller).
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> Result<Self, DecodeError> {
        let z = crate::format::open_object(key, bytes, label::PRUNE, "prune record")?;
        let plain = crate::format::compress::decompress_bounded(&z, MAX_PLAIN)?;
        Self::decode_plain(&plain)
    }

    /// Every pack the record marks: condemned or to delete.
    pub fn marked(&self) -> impl Iterator<Item = PackId> + '_ {
        self.condemned()
            .chain(self.info.to_delete.packs.iter().map(|(p, _)| *p))
    }
}

/// What a seal says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The generation being swept.
    pub generation: u64,
    /// The record whose mark is swept.
    pub mark: PruneId,
    /// The host of the prune that wrote it (for messages).
    #[serde(default)]
    pub host: String,
    /// When (for messages).
    pub created: DateTime<Utc>,
}

impl Seal {
    /// The stored object.
    pub fn to_object(&self, key: &MasterKey) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("seal serializes");
        let mut out = label::SEAL.to_vec();
        out.extend_from_slice(&key.seal(label::SEAL, &json));
        out
    }

    /// Decodes a stored object.
    pub fn from_object(key: &MasterKey, bytes: &[u8]) -> Result<Self, DecodeError> {
        let json = crate::format::open_object(key, bytes, label::SEAL, "seal")?;
        serde_json::from_slice(&json).map_err(|e| format!("seal JSON: {e}").into())
    }
}

/// The name of the seal of generation `generation`: computable by every reader
/// (it is read by name, never listed), and not the hash of the seal's
/// bytes (a second prune sealing the same generation writes the same name).
pub fn seal_name(repo: &RepoId, generation: u64) -> SealId {
    let mut h = blake3::Hasher::new();
    h.update(b"arca 2026-12 seal v1");
    h.update(&repo.0);
    h.update(&generation.to_le_bytes());
    SealId(*h.finalize().as_bytes())
}

/// The prune state a reader derives from the records it sees.
#[derive(Debug, Clone, Default)]
pub struct PruneState {
    /// The head record(s): records no loaded record supersedes. More than
    /// one is a fork (overlapping prunes).
    pub heads: Vec<(PruneId, PruneRecord)>,
}

impl PruneState {
    /// The state from every record that loads (`records`).
    pub fn from_records(records: Vec<(PruneId, PruneRecord)>) -> Self {
        let superseded: HashSet<PruneId> = records
            .iter()
            .flat_map(|(_, r)| r.info.supersedes_prune.iter().copied())
            .collect();
        let mut heads: Vec<(PruneId, PruneRecord)> = records
            .into_iter()
            .filter(|(id, _)| !superseded.contains(id))
            .collect();
        heads.sort_by_key(|(id, r)| (std::cmp::Reverse(r.info.generation), *id));
        Self { heads }
    }

    /// The head, when there is exactly one.
    pub fn head(&self) -> Option<&(PruneId, PruneRecord)> {
        match self.heads.as_slice() {
            [h] => Some(h),
            _ => None,
        }
    }

    /// Whether overlapping prunes left two heads.
    pub fn is_fork(&self) -> bool {
        self.heads.len() > 1
    }

    /// The base a writer starting now records: the head (during a fork,
    /// the highest generation, which honours less and so is protected
    /// more).
    pub fn base(&self) -> Base {
        match self.heads.first() {
            Some((id, r)) => Base {
                generation: r.info.generation,
                mark: Some(*id),
            },
            None => Base::default(),
        }
    }

    /// The packs no writer may deduplicate against: every head's condemned
    /// and to-be-deleted packs (marks win over any index segment).
    pub fn marked_packs(&self) -> HashSet<PackId> {
        self.heads.iter().flat_map(|(_, r)| r.marked()).collect()
    }

    /// Index segments the heads replace.
    pub fn superseded_segments(&self) -> HashSet<IndexId> {
        self.heads
            .iter()
            .flat_map(|(_, r)| r.info.supersedes_index.iter().copied())
            .collect()
    }

    /// Whether something written on `base` is still valid: no head swept a
    /// mark it does not honour (snapshots the head accepted are valid
    /// whatever their base: see [`Self::snapshot_valid`]).
    pub fn base_valid(&self, base: &Base) -> bool {
        self.heads.iter().all(|(_, r)| match &r.info.swept {
            None => true,
            Some(s) => base.honours(s),
        })
    }

    /// The base a rewritten copy of a valid snapshot records (repair
    /// snapshots): its own when that is valid; otherwise (it is valid only
    /// because a sweep accepted it by id) the swept mark itself, which the
    /// copy honours and the next sweep protects it from.
    pub fn rebased(&self, base: &Base) -> Base {
        if self.base_valid(base) {
            return *base;
        }
        self.heads
            .iter()
            .filter_map(|(_, r)| r.info.swept.as_ref())
            .map(|s| Base {
                generation: s.generation,
                mark: Some(s.mark),
            })
            .next()
            .unwrap_or(*base)
    }

    /// Whether a snapshot is valid: its base is, or every head that swept a
    /// mark it does not honour accepted it.
    pub fn snapshot_valid(&self, id: &SnapshotId, base: &Base) -> bool {
        self.heads.iter().all(|(_, r)| match &r.info.swept {
            None => true,
            Some(s) => base.honours(s) || s.accepted.contains(id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(generation: u64, previous: Option<PruneId>, swept: Option<Swept>) -> PruneRecord {
        PruneRecord {
            info: RecordInfo {
                generation,
                previous,
                created: Utc::now(),
                host: "h".into(),
                swept,
                to_delete: ToDelete {
                    packs: vec![(PackId([3; 32]), 100)],
                    snapshots: vec![],
                },
                supersedes_index: vec![IndexId([4; 32])],
                supersedes_prune: previous.into_iter().collect(),
                condemned: vec![(PackId([5; 32]), 10)],
            },
        }
    }

    #[test]
    fn round_trip_and_rules() {
        let k = MasterKey::generate();
        let r1 = record(1, None, None);
        let o = r1.to_object(&k);
        assert_eq!(PruneRecord::from_object(&k, &o).unwrap(), r1);
        let id1 = PruneId([1; 32]);
        let swept = Swept {
            generation: 1,
            mark: id1,
            accepted: vec![SnapshotId([9; 32])],
        };
        let r2 = record(2, Some(id1), Some(swept));
        let id2 = PruneId([2; 32]);
        let st = PruneState::from_records(vec![(id1, r1), (id2, r2)]);
        assert_eq!(st.head().unwrap().0, id2, "r2 supersedes r1");
        assert_eq!(
            st.base(),
            Base {
                generation: 2,
                mark: Some(id2)
            }
        );
        assert!(st.marked_packs().contains(&PackId([5; 32])));
        assert!(st.marked_packs().contains(&PackId([3; 32])));
        // based on r1 (the swept mark itself): valid
        let on_r1 = Base {
            generation: 1,
            mark: Some(id1),
        };
        assert!(st.base_valid(&on_r1));
        // based before r1: void, unless accepted
        let before = Base::default();
        assert!(!st.base_valid(&before));
        assert!(st.snapshot_valid(&SnapshotId([9; 32]), &before));
        assert!(!st.snapshot_valid(&SnapshotId([8; 32]), &before));
        // based on a retracted sibling of r1 (same generation, another mark): void
        let sibling = Base {
            generation: 1,
            mark: Some(PruneId([7; 32])),
        };
        assert!(!st.base_valid(&sibling));
        let s = Seal {
            generation: 1,
            mark: id1,
            host: "h".into(),
            created: Utc::now(),
        };
        assert_eq!(Seal::from_object(&k, &s.to_object(&k)).unwrap(), s);
        assert_ne!(
            seal_name(&RepoId([1; 32]), 1),
            seal_name(&RepoId([1; 32]), 2)
        );
    }
}
