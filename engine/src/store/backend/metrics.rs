//! A backend wrapper that counts requests, bytes and failures per
//! operation, for `-v` output and for tests that assert on traffic.
//!
//! Placed directly around the store (inside the retry wrapper), it counts
//! what was actually sent, retries included. Cost: a few relaxed atomic
//! additions per call.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::Result;

/// The operations counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `get`
    Get,
    /// `get_range`
    GetRange,
    /// `put`
    Put,
    /// `head`
    Head,
    /// `list`
    List,
    /// `delete`
    Delete,
}

impl Op {
    /// Every operation, in display order.
    pub const ALL: [Op; 6] = [
        Op::Get,
        Op::GetRange,
        Op::Put,
        Op::Head,
        Op::List,
        Op::Delete,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetRange => "get_range",
            Op::Put => "put",
            Op::Head => "head",
            Op::List => "list",
            Op::Delete => "delete",
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// Shared counters; cheap to clone through an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: [Counter; 6],
}

/// One operation's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpTotals {
    /// Calls made.
    pub requests: u64,
    /// Bytes moved (sent for `put`, received for reads; objects for `list`).
    pub bytes: u64,
    /// Calls that failed (including "not found").
    pub errors: u64,
}

impl Metrics {
    fn count(&self, op: Op, bytes: u64, ok: bool) {
        let c = &self.ops[op as usize];
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        if !ok {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Totals of one operation.
    pub fn get(&self, op: Op) -> OpTotals {
        let c = &self.ops[op as usize];
        OpTotals {
            requests: c.requests.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Totals of every operation, by name.
    pub fn totals(&self) -> Vec<(&'static str, OpTotals)> {
        Op::ALL
            .iter()
            .map(|op| (op.name(), self.get(*op)))
            .collect()
    }
}

/// Counts the calls to the backend it wraps.
pub struct MetricsBackend<B> {
    inner: B,
    metrics: Arc<Metrics>,
}

impl<B: Backend> MetricsBackend<B> {
    /// Wraps `inner`; the counters are shared with the caller.
    pub fn new(inner: B, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl<B: Backend> Backend for MetricsBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let r = self.inner.get(key);
        let n = r.as_ref().map_or(0, |b| b.len() as u64);
        self.metrics.count(Op::Get, n, r.is_ok());
        r
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        let r = self.inner.get_range(key, range);
        let n = r.as_ref().map_or(0, |b| b.len() as u64);
        self.metrics.count(Op::GetRange, n, r.is_ok());
        r
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        let n = data.len() as u64;
        let r = self.inner.put(key, data, mode);
        self.metrics.count(Op::Put, n, r.is_ok());
        r
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        let r = self.inner.head(key);
        self.metrics.count(Op::Head, 0, r.is_ok());
        r
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        let r = self.inner.list(kind);
        let n = r.as_ref().map_or(0, |v| v.len() as u64);
        self.metrics.count(Op::List, n, r.is_ok());
        r
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let r = self.inner.delete(key);
        self.metrics.count(Op::Delete, 0, r.is_ok());
        r
    }
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64> {
        self.inner.sweep_leftovers(age)
    }
}
