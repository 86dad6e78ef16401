//! The bytes of every repository object. Pure: no file, network or store
//! I/O happens here (the key derivation is CPU work, the nonces come from
//! the operating system's random source). `format-spec/` is the normative
//! description; the test vectors there are decoded by these modules.

use std::fmt;

/// Why bytes read from a repository are not a valid object. The one error
/// of every decoder here; the store turns it into [`crate::Error`] with
/// the object's name: an unknown version stops the command (`format-spec`
/// §17: never guessed, skipped or repaired as damage), anything else is
/// damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A kind of object this build knows, in a format version it does not.
    UnsupportedVersion {
        /// What kind of object ("index segment", "pack trailer", ...).
        what: &'static str,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Anything else that breaks the format: a wrong magic, truncation, a
    /// failed authentication, a value out of range.
    Malformed(String),
}

impl DecodeError {
    /// Whether this is an unknown version (not damage).
    pub fn is_unsupported_version(&self) -> bool {
        matches!(self, DecodeError::UnsupportedVersion { .. })
    }
}

/// Opens a stored object `label || seal(label, plain)` (format-spec §5)
/// and returns its plaintext. A known magic with another version byte is
/// an unknown version only if the body authenticates under that version's
/// label, which proves a newer arca wrote it with this repository's key;
/// otherwise the magic is damaged like any other byte.
pub fn open_object(
    key: &crypto::MasterKey,
    bytes: &[u8],
    label: &[u8; 4],
    what: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let (magic, body) = match bytes.split_first_chunk::<4>() {
        Some(x) => x,
        None => return Err(DecodeError::Malformed(format!("not a {what} (too short)"))),
    };
    if magic == label {
        return key
            .open(label, body)
            .map_err(|e| DecodeError::Malformed(e.to_string()));
    }
    if magic[..3] == label[..3] && key.open(magic, body).is_ok() {
        return Err(DecodeError::UnsupportedVersion {
            what,
            found: u32::from(magic[3]),
            supported: u32::from(label[3]),
        });
    }
    Err(DecodeError::Malformed(format!("not a {what} (bad magic)")))
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnsupportedVersion {
                what,
                found,
                supported,
            } => write!(
                f,
                "{what} of format version {found} (this arca reads version {supported}); upgrade arca"
            ),
            DecodeError::Malformed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<String> for DecodeError {
    fn from(s: String) -> Self {
        DecodeError::Malformed(s)
    }
}

impl From<&str> for DecodeError {
    fn from(s: &str) -> Self {
        DecodeError::Malformed(s.to_string())
    }
}

impl From<DecodeError> for String {
    fn from(e: DecodeError) -> Self {
        e.to_string()
    }
}

pub mod chunker;
pub mod compress;
pub mod config;
pub mod coverage;
pub mod crypto;
pub mod drill;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod layout;
pub mod lock;
pub mod pack;
pub mod prune;
pub mod snapshot;
pub mod tree;
pub mod wal;
pub(crate) mod wire;
