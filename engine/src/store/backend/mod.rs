//! Where repository objects live: one small trait, and its implementations.
//!
//! The engine sees only [`Backend`]: six blocking calls on whole objects or
//! byte ranges, addressed by typed [`ObjectKey`]s. The object_store crate
//! supplies the real stores (a local directory, S3 and S3-compatible stores,
//! GCS, Azure: [`ObjectStoreBackend`]). Behaviour is added by wrappers that
//! implement the same trait: [`RetryBackend`] (transient failures, with
//! backoff and jitter), [`MetricsBackend`] (requests and bytes per
//! operation), [`FaultyBackend`] (fault injection, for tests). [`open`]
//! stacks them: retry over metrics over the store.
//!
//! Contract: `put` is atomic (readers see the whole object or nothing);
//! `list` sees every object whose `put` returned (a store whose listing
//! misses objects is survived, not trusted: see `Catalog::sync`);
//! `get_range` returns exactly the bytes asked for or an error; a call that
//! failed transiently returns [`crate::Error::Transient`], and an ambiguous
//! `put` (the store may have kept it) is never reported as a success
//! without confirmation.

mod fault;
mod metrics;
mod object_stores;
mod options;
mod retry;

use std::ops::Range;

use bytes::Bytes;

pub use fault::{CRASH_ENV, CRASH_EXIT, CrashAfter, Fault, FaultyBackend};
pub use metrics::{Metrics, MetricsBackend, Op, OpTotals};
pub use object_stores::ObjectStoreBackend;
pub use options::{
    AzureOptions, BackendOptions, GcsOptions, Location, OPTION_KEYS, S3Options, parse_duration,
};
pub use retry::{RetryBackend, RetryPolicy};

use crate::error::Result;

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
    /// `checks/<id>`: records of which packs `check` verified, and when
    Check,
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
            Self::Check => "checks",
        }
    }
}

/// The address of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// What it is.
    pub kind: ObjectKind,
    /// Its 32-byte name (all zero for `config`).
    pub id: [u8; 32],
}

impl ObjectKey {
    /// The `config` object.
    pub const CONFIG: ObjectKey = ObjectKey {
        kind: ObjectKind::Config,
        id: [0; 32],
    };

    /// An object of `kind` named `id`.
    pub fn new(kind: ObjectKind, id: [u8; 32]) -> Self {
        Self { kind, id }
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

/// Whether a `put` may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Fail with `AlreadyExists` if the object exists (conditional write).
    Create,
}

/// A listed object and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
}

/// A store of repository objects. Implementations are cheap to share
/// between threads; every call blocks the calling thread.
pub trait Backend: Send + Sync + 'static {
    /// A human-readable address, for messages.
    fn location(&self) -> String;
    /// The whole object.
    fn get(&self, key: &ObjectKey) -> Result<Bytes>;
    /// Bytes `range` of the object.
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes>;
    /// Stores an object atomically.
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()>;
    /// The size of an object (errors with `not_found` if absent).
    fn head(&self, key: &ObjectKey) -> Result<u64>;
    /// Every object of a kind.
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>>;
    /// Removes an object; removing an absent object is not an error.
    fn delete(&self, key: &ObjectKey) -> Result<()>;
}

impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn location(&self) -> String {
        (**self).location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        (**self).get(key)
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        (**self).get_range(key, range)
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        (**self).put(key, data, mode)
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        (**self).head(key)
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        (**self).list(kind)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        (**self).delete(key)
    }
}

/// A store, connected: the backend stack and what the caller tunes by it.
pub struct Connected {
    /// Retry over metrics over the store.
    pub backend: std::sync::Arc<dyn Backend>,
    /// Requests and bytes per operation, as sent to the store.
    pub metrics: std::sync::Arc<Metrics>,
    /// Where it is.
    pub location: Location,
    /// Concurrent uploads to use (packs in flight).
    pub uploads: usize,
    /// Concurrent ranged reads for a restore (`None`: the engine default).
    pub downloads: Option<usize>,
}

/// Connects to the store at `location` (`s3://bucket/prefix`,
/// `gs://bucket/prefix`, `az://container/prefix`, `file:///path` or a
/// path) with `options`: the store, counted by [`MetricsBackend`], retried
/// by [`RetryBackend`].
pub fn connect(location: &str, options: &BackendOptions) -> Result<Connected> {
    let loc = Location::parse(location)?;
    let store = ObjectStoreBackend::connect(&loc, options)?;
    let metrics = std::sync::Arc::new(Metrics::default());
    let policy = RetryPolicy {
        retries: options.retries(),
        ..RetryPolicy::default()
    };
    // tests only: a crash between two store operations (see `CrashAfter`)
    let crash = std::env::var(CRASH_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let backend: std::sync::Arc<dyn Backend> = match crash {
        Some(n) => std::sync::Arc::new(RetryBackend::new(
            MetricsBackend::new(CrashAfter::new(store, n), metrics.clone()),
            policy,
        )),
        None => std::sync::Arc::new(RetryBackend::new(
            MetricsBackend::new(store, metrics.clone()),
            policy,
        )),
    };
    Ok(Connected {
        backend,
        metrics,
        uploads: options.uploads(&loc),
        downloads: options.downloads(&loc),
        location: loc,
    })
}

/// Opens the store named by `location` with `options` (see [`connect`]).
pub fn open(location: &str, options: &BackendOptions) -> Result<std::sync::Arc<dyn Backend>> {
    Ok(connect(location, options)?.backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_round_trip() {
        for kind in [
            ObjectKind::Key,
            ObjectKind::Pack,
            ObjectKind::Index,
            ObjectKind::Snapshot,
            ObjectKind::Lock,
            ObjectKind::Check,
        ] {
            let k = ObjectKey::new(kind, [0xa5; 32]);
            assert_eq!(ObjectKey::parse(kind, &k.path()), Some(k));
        }
        assert_eq!(
            ObjectKey::new(ObjectKind::Pack, [0xa5; 32]).path(),
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
    }
}
