//! Where objects live in a repository, and their typed names.
//!
//! Every object but `config` is named by 32 bytes (64 hex digits) under
//! the prefix of its kind (`format-spec` §3). An id type knows its kind
//! ([`ObjectId`]), so that an [`ObjectKey`] is made only from an id of the
//! right type, and a listing of packs can never yield an index id.

use crate::format::id::{
    CheckId, DrillId, IndexId, KeyId, LockId, LockRemovalId, PackId, PruneId, SealId, SnapshotId,
    WalId,
};

/// The kinds of object in a repository, each with its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `config`
    Config,
    /// `keys/<id>`
    Key,
    /// `packs/<first two hex digits>/<id>`
    Pack,
    /// `index/<id>`
    Index,
    /// `snapshots/<id>`
    Snapshot,
    /// `locks/<id>`
    Lock,
    /// `removed-locks/<lock id>`: notices that a lock was removed by
    /// someone other than its holder
    LockRemoval,
    /// `checks/<id>`: records of which packs `check` verified, and when
    Check,
    /// `prune/<id>`: prune records, one per prune generation
    Prune,
    /// `seals/<name>`: a prune's seal of the generation it sweeps
    Seal,
    /// `wal/<name>`: archived PostgreSQL WAL files, named by their file name
    Wal,
    /// `drills/<id>`: records of restore drills
    Drill,
}

impl ObjectKind {
    /// The directory prefix under which objects of this kind are listed.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Key => "keys",
            Self::Pack => "packs",
            Self::Index => "index",
            Self::Snapshot => "snapshots",
            Self::Lock => "locks",
            Self::LockRemoval => "removed-locks",
            Self::Check => "checks",
            Self::Prune => "prune",
            Self::Seal => "seals",
            Self::Wal => "wal",
            Self::Drill => "drills",
        }
    }
}

/// The id of an object of one kind.
pub trait ObjectId: Copy + Eq + std::hash::Hash + Ord + std::fmt::Debug + Send + Sync {
    /// The kind of object it names.
    const KIND: ObjectKind;
    /// The id from its 32 bytes.
    fn from_raw(raw: [u8; 32]) -> Self;
    /// Its 32 bytes.
    fn raw(&self) -> [u8; 32];
    /// The object's address.
    fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: Self::KIND,
            id: self.raw(),
        }
    }
}

macro_rules! object_id {
    ($($t:ty => $k:ident),*) => {$(
        impl ObjectId for $t {
            const KIND: ObjectKind = ObjectKind::$k;
            fn from_raw(raw: [u8; 32]) -> Self {
                Self(raw)
            }
            fn raw(&self) -> [u8; 32] {
                self.0
            }
        }
    )*};
}
object_id!(
    PackId => Pack,
    IndexId => Index,
    SnapshotId => Snapshot,
    KeyId => Key,
    LockId => Lock,
    LockRemovalId => LockRemoval,
    CheckId => Check,
    PruneId => Prune,
    SealId => Seal,
    WalId => Wal,
    DrillId => Drill
);

/// The address of one object: its kind and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    kind: ObjectKind,
    /// all zero for `config`
    id: [u8; 32],
}

impl ObjectKey {
    /// The `config` object.
    pub const CONFIG: ObjectKey = ObjectKey {
        kind: ObjectKind::Config,
        id: [0; 32],
    };

    /// The address of the object `id` names.
    pub fn of<I: ObjectId>(id: I) -> Self {
        id.key()
    }

    /// The key that stands for a listing of `kind` (an all-zero name) in
    /// per-object bookkeeping such as fault injection; no object has it.
    pub fn listing(kind: ObjectKind) -> Self {
        Self { kind, id: [0; 32] }
    }

    /// What kind of object it is.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// Its name as an id of type `I`; `None` if it is another kind.
    pub fn id<I: ObjectId>(&self) -> Option<I> {
        (self.kind == I::KIND).then(|| I::from_raw(self.id))
    }

    /// Its 32-byte name, whatever its kind (for content checks).
    pub fn raw(&self) -> [u8; 32] {
        self.id
    }

    /// The path below the repository prefix.
    pub fn path(&self) -> String {
        let h = hex::encode(self.id);
        match self.kind {
            ObjectKind::Config => "config".to_string(),
            ObjectKind::Pack => format!("packs/{}/{h}", &h[..2]),
            k => format!("{}/{h}", k.prefix()),
        }
    }

    /// Parses a path as returned by a listing of `kind`; `None` for
    /// anything that is not one of ours (temporary files, strangers).
    pub fn parse(kind: ObjectKind, path: &str) -> Option<Self> {
        if kind == ObjectKind::Config {
            return (path == "config").then_some(Self::CONFIG);
        }
        let rest = path.strip_prefix(kind.prefix())?.strip_prefix('/')?;
        let name = if kind == ObjectKind::Pack {
            let (dir, name) = rest.split_once('/')?;
            if dir.len() != 2 || !name.starts_with(dir) {
                return None;
            }
            name
        } else {
            rest
        };
        let mut id = [0u8; 32];
        if name.len() != 64 || hex::decode_to_slice(name, &mut id).is_err() {
            return None;
        }
        (name == hex::encode(id)).then_some(Self { kind, id })
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_round_trip() {
        let keys = [
            ObjectKey::of(KeyId([0xa5; 32])),
            ObjectKey::of(PackId([0xa5; 32])),
            ObjectKey::of(IndexId([0xa5; 32])),
            ObjectKey::of(SnapshotId([0xa5; 32])),
            ObjectKey::of(LockId([0xa5; 32])),
            ObjectKey::of(LockRemovalId([0xa5; 32])),
            ObjectKey::of(CheckId([0xa5; 32])),
            ObjectKey::of(PruneId([0xa5; 32])),
            ObjectKey::of(SealId([0xa5; 32])),
            ObjectKey::of(WalId([0xa5; 32])),
            ObjectKey::of(DrillId([0xa5; 32])),
        ];
        for k in keys {
            assert_eq!(ObjectKey::parse(k.kind(), &k.path()), Some(k));
        }
        assert_eq!(
            ObjectKey::of(PackId([0xa5; 32])).path(),
            format!("packs/a5/{}", "a5".repeat(32))
        );
        assert_eq!(
            ObjectKey::parse(ObjectKind::Config, "config"),
            Some(ObjectKey::CONFIG)
        );
        assert_eq!(ObjectKey::parse(ObjectKind::Index, "index/xyz"), None);
        assert_eq!(
            ObjectKey::parse(ObjectKind::Pack, &format!("packs/00/{}", "a5".repeat(32))),
            None
        );
        assert_eq!(
            ObjectKey::parse(ObjectKind::Index, &format!("index/{}", "A5".repeat(32))),
            None
        );
        // a key knows its kind: a pack's name is not an index id
        let p = ObjectKey::of(PackId([1; 32]));
        assert_eq!(p.id::<PackId>(), Some(PackId([1; 32])));
        assert_eq!(p.id::<IndexId>(), None);
    }
}
