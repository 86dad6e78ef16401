//! A backend wrapper that injects faults, for tests.
//!
//! Each [`Fault`] applies to the n-th matching call (counting from 0) or to
//! every call after it, so a test can say "the third pack upload fails" or
//! "every upload from now on is truncated but reported as a success".

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::{Error, Result};

/// One injected fault.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `put` of objects of `kind` number `nth` and later fails.
    PutError { kind: ObjectKind, nth: u64 },
    /// `put` of objects of `kind` number `nth` and later stores only the
    /// first half of the bytes but reports success.
    PutTruncated { kind: ObjectKind, nth: u64 },
    /// Reads of objects of `kind` fail from the `nth` read on.
    GetError { kind: ObjectKind, nth: u64 },
    /// Listing returns only every other object (a lost LIST page).
    ShortList { kind: ObjectKind },
}

/// Wraps a backend and applies faults.
pub struct FaultyBackend<B> {
    inner: B,
    faults: Mutex<Vec<Fault>>,
    puts: [AtomicU64; 8],
    gets: [AtomicU64; 8],
}

fn slot(kind: ObjectKind) -> usize {
    kind as usize
}

impl<B: Backend> FaultyBackend<B> {
    /// Wraps `inner` with no faults yet.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            faults: Mutex::new(vec![]),
            puts: Default::default(),
            gets: Default::default(),
        }
    }

    /// Adds a fault.
    pub fn inject(&self, f: Fault) {
        self.faults.lock().unwrap().push(f);
    }

    /// Removes all faults.
    pub fn heal(&self) {
        self.faults.lock().unwrap().clear();
    }

    fn injected(op: &'static str, key: &ObjectKey) -> Error {
        Error::Backend {
            op,
            object: key.path(),
            message: "injected fault".into(),
            not_found: false,
        }
    }

    fn check_get(&self, key: &ObjectKey) -> Result<()> {
        let n = self.gets[slot(key.kind)].fetch_add(1, Ordering::SeqCst);
        for f in self.faults.lock().unwrap().iter() {
            if let Fault::GetError { kind, nth } = f
                && *kind == key.kind
                && n >= *nth
            {
                return Err(Self::injected("get", key));
            }
        }
        Ok(())
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.check_get(key)?;
        self.inner.get(key)
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        self.check_get(key)?;
        self.inner.get_range(key, range)
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        let n = self.puts[slot(key.kind)].fetch_add(1, Ordering::SeqCst);
        let mut data = data;
        for f in self.faults.lock().unwrap().iter() {
            match f {
                Fault::PutError { kind, nth } if *kind == key.kind && n >= *nth => {
                    return Err(Self::injected("put", key));
                }
                Fault::PutTruncated { kind, nth } if *kind == key.kind && n >= *nth => {
                    data = data.slice(..data.len() / 2);
                }
                _ => {}
            }
        }
        self.inner.put(key, data, mode)
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        self.inner.head(key)
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        let mut all = self.inner.list(kind)?;
        let short = self
            .faults
            .lock()
            .unwrap()
            .iter()
            .any(|f| matches!(f, Fault::ShortList { kind: k } if *k == kind));
        if short {
            all = all.into_iter().step_by(2).collect();
        }
        Ok(all)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.inner.delete(key)
    }
}
