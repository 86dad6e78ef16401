//! A backend wrapper that retries transient failures with exponential
//! backoff and full jitter.
//!
//! Only [`Error::Transient`] is retried (timeouts, resets, throttling,
//! server errors that outlived the store client's own retries); "not
//! found", "already exists", permission and damage errors pass through at
//! once. Every call but `put` is idempotent and simply tried again.
//!
//! A failed `put` is ambiguous: the store may have stored the object and
//! lost only the answer. A retry never turns that into a reported success
//! by guessing:
//! - `Overwrite` puts (content-addressed objects: the same name always
//!   carries the same bytes) are sent again in full, and succeed only when
//!   the store acknowledges one of them;
//! - `Create` puts (locks, `config`, key files) first `head` the object: if
//!   it is absent the put is sent again; if it is there, it is read back and
//!   the put counts as done only when the stored bytes are exactly the ones
//!   we sent (ours landed); any other content is "already exists".
//!
//! Cost: nothing on success; on failure, sleeps of `base * 2^n` (random
//! between zero and that, capped at `cap`) between attempts.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::{BackendFailure, Error, Result};

/// When and how often to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff's upper bound.
    pub base: Duration,
    /// The largest backoff.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: super::options::DEFAULT_RETRIES,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The sleep before retry number `n` (from 0): uniformly random in
    /// `[0, min(cap, base * 2^n)]` ("full jitter"), so that many clients
    /// throttled at once do not come back at once.
    pub fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << n.min(16))
            .min(self.cap)
            .as_nanos() as u64;
        let mut r = [0u8; 8];
        crate::format::crypto::random_bytes(&mut r);
        Duration::from_nanos(u64::from_le_bytes(r) % ceiling.max(1))
    }
}

/// Retries transient failures of the backend it wraps.
pub struct RetryBackend<B> {
    inner: B,
    policy: RetryPolicy,
    retried: AtomicU64,
}

impl<B: Backend> RetryBackend<B> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        Self {
            inner,
            policy,
            retried: AtomicU64::new(0),
        }
    }

    /// Attempts made after a transient failure, so far.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    fn run<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut n = 0;
        loop {
            match f() {
                Err(e) if e.is_transient() && n < self.policy.retries => {
                    std::thread::sleep(self.policy.backoff(n));
                    n += 1;
                    self.retried.fetch_add(1, Ordering::Relaxed);
                }
                r => return r,
            }
        }
    }

    /// After an ambiguous create-only put: did ours land?
    fn landed(&self, key: &ObjectKey, data: &Bytes) -> Result<Option<bool>> {
        match self.run(|| self.inner.head(key)) {
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
            Ok(size) if size != data.len() as u64 => Ok(Some(false)),
            Ok(_) => match self.run(|| self.inner.get(key)) {
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
                Ok(stored) => Ok(Some(stored == *data)),
            },
        }
    }
}

impl<B: Backend> Backend for RetryBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.run(|| self.inner.get(key))
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        self.run(|| self.inner.get_range(key, range.clone()))
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        let mut n = 0;
        loop {
            let e = match self.inner.put(key, data.clone(), mode) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && n < self.policy.retries => e,
                Err(e) => return Err(e),
            };
            std::thread::sleep(self.policy.backoff(n));
            n += 1;
            self.retried.fetch_add(1, Ordering::Relaxed);
            if mode == PutMode::Create {
                match self.landed(key, &data) {
                    Ok(None) => continue,
                    Ok(Some(true)) => return Ok(()),
                    Ok(Some(false)) => {
                        return Err(Error::Backend {
                            op: "put",
                            object: key.path(),
                            message: "already exists".into(),
                            kind: BackendFailure::AlreadyExists,
                        });
                    }
                    // could not find out: report the put's own failure
                    Err(_) => return Err(e),
                }
            }
        }
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        self.run(|| self.inner.head(key))
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        self.run(|| self.inner.list(kind))
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.run(|| self.inner.delete(key))
    }
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64> {
        self.inner.sweep_leftovers(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let p = RetryPolicy {
            retries: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for n in 0..20 {
            let d = p.backoff(n);
            assert!(
                d <= Duration::from_millis(100 << n.min(4)).min(p.cap),
                "{n} {d:?}"
            );
        }
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| p.backoff(3)).collect();
        assert!(samples.len() > 10, "jitter: {samples:?}");
    }
}
