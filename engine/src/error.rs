//! The engine's error type.
//!
//! Every variant names what it happened to (a file, an object, a snapshot)
//! and, where there is one, the fix. The CLI prints `Display` as is, so the
//! messages are written for the person running the command.

use std::io;
use std::path::PathBuf;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No key file opened with the password given.
    #[error(
        "wrong password or no key: none of the {keys} key(s) in the repository opens with this password"
    )]
    WrongPassword { keys: usize },

    /// There is no repository at the address (no `config` object).
    #[error(
        "no repository at {location}: run `arca init` to create one, or check --repo / ARCA_REPOSITORY"
    )]
    NoRepository { location: String },

    /// `init` found an existing repository.
    #[error("a repository already exists at {location}")]
    AlreadyExists { location: String },

    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// The object store refused or failed an operation.
    #[error("object store: {op} {object}: {message}")]
    Backend {
        op: &'static str,
        object: String,
        message: String,
        /// The object does not exist (as opposed to a transport failure).
        not_found: bool,
    },

    /// An object read from the repository failed authentication, its
    /// content hash, or parsing.
    #[error("damaged object {object}: {detail}")]
    Damaged { object: String, detail: String },

    /// A blob a tree refers to is not in the index.
    #[error(
        "blob {blob} is not in the index (needed by {needed_by}); run `arca check` and `arca repair index`"
    )]
    MissingBlob { blob: String, needed_by: String },

    /// The repository uses a format this build does not read.
    #[error(
        "unsupported repository format {found} in {object} (this arca reads version {supported}); upgrade arca"
    )]
    UnsupportedVersion {
        object: String,
        found: u32,
        supported: u32,
    },

    /// The local catalog (SQLite cache) failed.
    #[error("catalog {}: {message}; it is a cache: delete it and it is rebuilt", path.display())]
    Catalog { path: PathBuf, message: String },

    /// No snapshot matched a selection.
    #[error("no snapshot matches {0}")]
    NoSnapshot(String),

    /// A snapshot id prefix matched more than one snapshot.
    #[error(
        "snapshot prefix {prefix} is ambiguous: it matches {count} snapshots; give more digits"
    )]
    AmbiguousSnapshot { prefix: String, count: usize },

    /// A path was not found inside a snapshot.
    #[error("{path} is not in snapshot {snapshot}")]
    NotInSnapshot { path: String, snapshot: String },

    /// Bad input from the caller: a malformed option, an impossible request.
    #[error("{0}")]
    Invalid(String),

    /// A restored file did not match its recorded content hash.
    #[error("restored {} does not match its recorded BLAKE3 hash (expected {expected}, got {actual}); the repository or the target disk is damaged", path.display())]
    FileHashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A command that produced the backup's input failed.
    #[error("command {command} failed: {status}; the snapshot was not saved")]
    CommandFailed { command: String, status: String },

    /// The operation was interrupted (Ctrl-C); nothing half-done was committed.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// The object store failed in a way that may pass when tried again: a
    /// timeout, a reset connection, throttling (HTTP 429, 503), a server
    /// error. Retried with backoff before it reaches the caller.
    #[error(
        "object store: {op} {object}: {message} (a transient failure that persisted through retries: check the network and the store, then run the command again)"
    )]
    Transient {
        op: &'static str,
        object: String,
        message: String,
    },

    /// Another operation holds a lock that conflicts with the one asked for.
    #[error(
        "the repository is locked: {holders}; wait for it to finish, or if it is no longer running, run `arca unlock` (stale locks only) once it is stale"
    )]
    Locked { holders: String },

    /// The lock this operation held was lost (removed, or not refreshed in
    /// time); it stopped rather than continue unprotected.
    #[error(
        "lost the repository lock: {0}; the operation stopped and committed nothing further; run it again"
    )]
    LockLost(String),

    /// Several restore failures, each naming its file.
    #[error("{} file(s) failed:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),
}

impl Error {
    /// An I/O error on a local path.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A damaged repository object.
    pub fn damaged(object: impl std::fmt::Display, detail: impl Into<String>) -> Self {
        Error::Damaged {
            object: object.to_string(),
            detail: detail.into(),
        }
    }

    /// True for a failure worth retrying (see [`Error::Transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// True for a conditional `put` that found the object already there.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::Backend { message, .. } if message == ALREADY_EXISTS)
    }

    /// True for a backend "object does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                not_found: true,
                ..
            }
        )
    }
}

/// The message of an [`Error::Backend`] for a conditional `put` that found
/// the object already there.
pub const ALREADY_EXISTS: &str = "already exists";

/// Adds the path to a bare `io::Error`.
pub trait IoContext<T> {
    /// Attaches `path` to the error.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
