//! Where repository objects live: one small trait, and its implementations.
//!
//! The engine sees only [`Backend`]: six blocking calls on whole objects or
//! byte ranges, addressed by typed [`ObjectKey`]s. The object_store crate
//! supplies the real stores (a local directory, S3 and S3-compatible stores,
//! GCS, Azure: [`ObjectStoreBackend`]; into a local directory, objects of
//! a MiB and more are written with `O_DIRECT` by `direct`). Behaviour is
//! added by wrappers that implement the same trait: [`RetryBackend`] (transient failures, with
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

mod direct;
mod fault;
mod metrics;
mod object_stores;
mod options;
mod retry;

use std::ops::Range;

use bytes::Bytes;

pub use fault::{CRASH_ENV, CRASH_EXIT, CrashAfter, Fault, FaultyBackend, Hook, STOP_ENV};
pub use metrics::{Metrics, MetricsBackend, Op, OpTotals};
pub use object_stores::ObjectStoreBackend;
pub use options::{
    AzureOptions, BackendOptions, GcsOptions, Location, OPTION_KEYS, S3Options, parse_duration,
};
pub use retry::{RetryBackend, RetryPolicy};

use crate::error::Result;
pub use crate::format::layout::{ObjectKey, ObjectKind};

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
    /// Removes what interrupted writes left where no listing shows it (a
    /// local directory's `NAME#N` staging files, after a kill -9 or a power
    /// cut) once older than `age`, and returns how many. Stores whose
    /// writes are atomic on the server (S3, GCS, Azure) have none.
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64>;
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
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64> {
        (**self).sweep_leftovers(age)
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
    let limit = |var| std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok());
    let backend: std::sync::Arc<dyn Backend> = match (limit(CRASH_ENV), limit(STOP_ENV)) {
        (Some(n), _) => std::sync::Arc::new(RetryBackend::new(
            MetricsBackend::new(CrashAfter::new(store, n), metrics.clone()),
            policy,
        )),
        (None, Some(n)) => std::sync::Arc::new(RetryBackend::new(
            MetricsBackend::new(CrashAfter::stopping(store, n), metrics.clone()),
            policy,
        )),
        (None, None) => std::sync::Arc::new(RetryBackend::new(
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
