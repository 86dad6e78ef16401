//! Typed 256-bit identifiers.
//!
//! Every id in a repository is 32 bytes, shown as 64 lowercase hex digits.
//! One macro defines a distinct type per kind so that a pack id can never be
//! passed where a blob id is expected. How each id is computed (keyed or plain
//! BLAKE3, over which bytes) is the business of the module that mints it and
//! is written down in `format-spec/`.

use std::fmt;
use std::str::FromStr;

/// Error for a string that is not a 64-digit hex id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a 64-digit hexadecimal id")]
pub struct ParseIdError(pub String);

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The id as 64 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hex digits, as shown in tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// Builds an id from a 32-byte slice; `None` for any other length.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(b).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                let mut out = [0u8; 32];
                if s.len() != 64 {
                    return Err(ParseIdError(s.to_string()));
                }
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseIdError(s.to_string()))?;
                Ok(Self(out))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A blob: keyed BLAKE3 (the repository's id key) of its plaintext.
    BlobId
);
define_id!(
    /// A packfile: plain BLAKE3 of the pack's bytes as stored.
    PackId
);
define_id!(
    /// An index segment: plain BLAKE3 of the object's bytes as stored.
    IndexId
);
define_id!(
    /// A snapshot manifest: plain BLAKE3 of the object's bytes as stored.
    SnapshotId
);
define_id!(
    /// A key file: plain BLAKE3 of the key file's bytes.
    KeyId
);
define_id!(
    /// A lock object: 32 random bytes chosen by its holder (a lock is
    /// rewritten in place, so it cannot be named by its bytes).
    LockId
);
define_id!(
    /// A lock-removal notice: the id of the lock it says was removed
    /// (`format-spec` §14.1).
    LockRemovalId
);
define_id!(
    /// A check record: plain BLAKE3 of the record's bytes.
    CheckId
);
define_id!(
    /// A prune record: plain BLAKE3 of the record's bytes.
    PruneId
);
define_id!(
    /// A seal: named by the repository and the generation it seals (see
    /// `format::prune::seal_name`), not by its bytes.
    SealId
);
define_id!(
    /// An archived WAL file: its name, packed (`format::wal::WalFile::id`),
    /// not its bytes.
    WalId
);
define_id!(
    /// A drill record: plain BLAKE3 of the record's bytes.
    DrillId
);
define_id!(
    /// A repository, chosen at random by `init`.
    RepoId
);

/// Plain (unkeyed) BLAKE3 of stored bytes: how every object but `config`
/// is named, so that damage is visible without the key.
pub fn content_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let id = PackId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<PackId>().unwrap(), id);
        assert!("abc".parse::<PackId>().is_err());
        assert!("zz".repeat(32).parse::<PackId>().is_err());
        assert_eq!(id.short(), "abababab");
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<PackId>(&j).unwrap(), id);
    }
}
