//! An open repository as an operation holds it: the repository, its
//! catalog brought up to date, and the lock the operation needs.
//!
//! [`Opened`] is the repository unlocked, with its catalog synced. An
//! operation turns it into a [`Session`] of the access it needs, and the
//! session holds the matching lock for as long as it lives:
//!
//! | access | lock | for |
//! | --- | --- | --- |
//! | [`Read`] | shared, or none when the caller says so (a read-only repository) | restore, check, ls, dump |
//! | [`Write`] | shared | backup, forget |
//! | [`Maintenance`] | maintenance (one at a time, beside shared locks) | prune |
//! | [`Exclusive`] | exclusive | repair |
//!
//! The operations take `&Session<A>` with the access they need as a bound
//! ([`Reads`], [`Writes`], or `Exclusive` itself), so that no entry point
//! can run one without its lock. Taking a lock syncs the catalog again: a
//! prune or repair that finished between the first sync and the lock must
//! not leave the catalog offering what it deleted.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::lock::LockKind;
use crate::store::blob_reader::BlobReader;
use crate::store::catalog::{Catalog, SyncStats};
use crate::store::lock::{Lock, LockEntry, LockTiming, LockWatch};
use crate::store::repo::Repository;

/// A reading operation's access.
#[derive(Debug)]
pub struct Read;
/// An operation that adds objects (and deletes nothing others need).
#[derive(Debug)]
pub struct Write;
/// Prune: deletes, beside running backups, by a protocol that does not
/// rest on locks (the lock only keeps two prunes apart).
#[derive(Debug)]
pub struct Maintenance;
/// An operation that rewrites or deletes what others may be using.
#[derive(Debug)]
pub struct Exclusive;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Read {}
    impl Sealed for super::Write {}
    impl Sealed for super::Maintenance {}
    impl Sealed for super::Exclusive {}
}

/// An access a session can have.
pub trait Access: sealed::Sealed {}
impl Access for Read {}
impl Access for Write {}
impl Access for Maintenance {}
impl Access for Exclusive {}

/// Accesses that may read the repository's data (all of them).
pub trait Reads: Access {}
impl Reads for Read {}
impl Reads for Write {}
impl Reads for Maintenance {}
impl Reads for Exclusive {}

/// Accesses that may add objects.
pub trait Writes: Reads {}
impl Writes for Write {}
impl Writes for Maintenance {}
impl Writes for Exclusive {}

/// An open repository whose catalog is up to date; no lock yet.
pub struct Opened {
    repo: Repository,
    catalog: Arc<Catalog>,
    sync: SyncStats,
    timing: LockTiming,
}

impl Opened {
    /// Brings `catalog` up to date with `repo`.
    pub fn new(repo: Repository, catalog: Arc<Catalog>) -> Result<Self> {
        let sync = catalog.sync(&repo)?;
        Ok(Self {
            repo,
            catalog,
            sync,
            timing: LockTiming::default(),
        })
    }

    /// Locks taken from here refresh and go stale on `timing` (tests; the
    /// default is `LockTiming::default()`).
    pub fn with_lock_timing(mut self, timing: LockTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// What the catalog's sync read.
    pub fn sync(&self) -> &SyncStats {
        &self.sync
    }

    /// For a reading operation: under a shared lock, or with none when
    /// `lock` is false (a repository on read-only media).
    pub fn for_reading(self, operation: &str, lock: bool) -> Result<Session<Read>> {
        if lock {
            self.lock(LockKind::Shared, operation).map_err(|e| match e {
                e @ (Error::Locked { .. } | Error::Transient { .. }) => e,
                e => Error::Stopped {
                    operation: "taking a lock",
                    cause: Box::new(e),
                    detail: "a repository on read-only media is read without one: add --no-lock"
                        .into(),
                },
            })
        } else {
            Ok(Session {
                repo: self.repo,
                catalog: self.catalog,
                lock: None,
                access: PhantomData,
            })
        }
    }

    /// For an operation that adds objects: under a shared lock.
    pub fn for_writing(self, operation: &str) -> Result<Session<Write>> {
        self.lock(LockKind::Shared, operation)
    }

    /// For prune: under a maintenance lock.
    pub fn maintenance(self, operation: &str) -> Result<Session<Maintenance>> {
        self.lock(LockKind::Maintenance, operation)
    }

    /// For an operation that rewrites or deletes: under an exclusive lock.
    pub fn exclusive(self, operation: &str) -> Result<Session<Exclusive>> {
        self.lock(LockKind::Exclusive, operation)
    }

    fn lock<A: Access>(self, kind: LockKind, operation: &str) -> Result<Session<A>> {
        let lock = Lock::acquire(&self.repo, kind, operation, self.timing)?;
        // under the lock, what was committed before it is in the catalog
        self.catalog.sync(&self.repo)?;
        Ok(Session {
            repo: self.repo,
            catalog: self.catalog,
            lock: Some(lock),
            access: PhantomData,
        })
    }
}

/// An open repository held with access `A` (and its lock, released when
/// the session is dropped or [`Session::release`]d).
pub struct Session<A: Access> {
    repo: Repository,
    catalog: Arc<Catalog>,
    lock: Option<Lock>,
    access: PhantomData<A>,
}

impl<A: Access> Session<A> {
    /// The repository.
    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// A blob reader over the catalog.
    pub fn reader(&self) -> BlobReader {
        BlobReader::new(self.repo.clone(), self.catalog.clone())
    }

    /// A handle on the lock for commit points (`None` without a lock).
    pub fn watch(&self) -> Option<LockWatch> {
        self.lock.as_ref().map(|l| l.watch())
    }

    /// `Ok` while the lock is held (always, without one).
    pub fn check_lock(&self) -> Result<()> {
        match &self.lock {
            Some(l) => l.check(),
            None => Ok(()),
        }
    }

    /// Stale locks seen while taking this one (others' leftovers that
    /// `arca unlock` removes).
    pub fn stale_locks(&self) -> &[LockEntry] {
        self.lock.as_ref().map_or(&[], |l| l.stale_locks())
    }

    /// Whether a lock is held.
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Releases the lock, reporting a failure to remove it (dropping the
    /// session does the same, silently).
    pub fn release(self) -> Result<()> {
        match self.lock {
            Some(l) => l.release(),
            None => Ok(()),
        }
    }
}
