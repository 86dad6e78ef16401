//! A backend wrapper that injects faults, for tests.
//!
//! Counted faults apply to the n-th matching call of a kind (counting from
//! 0) and every call after it, so a test can say "the third pack upload
//! fails" or "every upload from now on is truncated but reported as a
//! success". Transient faults (timeouts, throttling) apply to the first
//! tries of each object, so that a retry passes whatever the threads do:
//! "every pack's first upload times out after storing it".
//!
//! A test can also run code of its own just before a call reaches the
//! store ([`FaultyBackend::before`]), to make a race happen at one exact
//! point: "another process removes the lock between the refresher's head
//! and its put".
//!
//! Injected transient failures are [`Error::Transient`], as the real store
//! reports them; permanent ones are [`Error::Backend`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::metrics::Op;
use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::{BackendFailure, Error, Result};

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
    /// The first `tries` puts of each object of `kind` time out: the
    /// store keeps the object when `stored` (only the answer was lost) or
    /// not; either way the caller gets a transient error.
    PutTimeout {
        kind: ObjectKind,
        stored: bool,
        tries: u32,
    },
    /// The first `tries` calls of `op` on each object of `kind` (on the
    /// kind, for `list`) fail with a transient error (throttling, a reset
    /// connection) and change nothing.
    Transient {
        kind: ObjectKind,
        op: Op,
        tries: u32,
    },
}

/// Wraps a backend and applies faults.
pub struct FaultyBackend<B> {
    inner: B,
    faults: Mutex<Vec<Fault>>,
    puts: [AtomicU64; KINDS],
    gets: [AtomicU64; KINDS],
    /// Calls so far per (op, object) for the per-object faults.
    tries: Mutex<HashMap<(u8, ObjectKey), u32>>,
    injected: AtomicU64,
    hook: Mutex<Option<Hook>>,
}

/// Code run before a call: the operation and the object (the listing key
/// for `list`). It may call the backend itself; it runs again for those
/// calls, so it must decide for itself when to act.
pub type Hook = std::sync::Arc<dyn Fn(Op, &ObjectKey) + Send + Sync>;

/// How many object kinds there are (one get counter each).
const KINDS: usize = ObjectKind::Drill as usize + 1;

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
            tries: Mutex::new(HashMap::new()),
            injected: AtomicU64::new(0),
            hook: Mutex::new(None),
        }
    }

    /// Runs `hook` before every later call (replacing an earlier hook).
    pub fn before(&self, hook: Hook) {
        *self.hook.lock().unwrap() = Some(hook);
    }

    fn run_hook(&self, op: Op, key: &ObjectKey) {
        let hook = self.hook.lock().unwrap().clone();
        if let Some(h) = hook {
            h(op, key);
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

    /// How many faults were injected so far (a test that expects faults
    /// checks that some actually happened).
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    fn injected_error(&self, op: &'static str, key: &ObjectKey) -> Error {
        self.injected.fetch_add(1, Ordering::Relaxed);
        Error::Backend {
            op,
            object: key.path(),
            message: "injected fault".into(),
            kind: BackendFailure::Other,
        }
    }

    fn transient(&self, op: &'static str, key: &ObjectKey, what: &str) -> Error {
        self.injected.fetch_add(1, Ordering::Relaxed);
        Error::Transient {
            op,
            object: key.path(),
            message: format!("injected {what}"),
        }
    }

    /// Counts a call of `op` on `key`; returns the count before it.
    fn tried(&self, op: Op, key: &ObjectKey) -> u32 {
        let mut t = self.tries.lock().unwrap();
        let n = t.entry((op as u8, *key)).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// A transient fault for this call, if one applies.
    fn flaky(&self, op: Op, key: &ObjectKey) -> Option<u32> {
        self.faults.lock().unwrap().iter().find_map(|f| match f {
            Fault::Transient { kind, op: o, tries } if *kind == key.kind() && *o == op => {
                Some(*tries)
            }
            _ => None,
        })
    }

    fn check_flaky(&self, op: Op, key: &ObjectKey) -> Result<()> {
        self.run_hook(op, key);
        if let Some(tries) = self.flaky(op, key)
            && self.tried(op, key) < tries
        {
            return Err(self.transient(op.name(), key, "throttling (HTTP 503 SlowDown)"));
        }
        Ok(())
    }

    fn check_get(&self, op: Op, key: &ObjectKey) -> Result<()> {
        self.check_flaky(op, key)?;
        let n = self.gets[slot(key.kind())].fetch_add(1, Ordering::SeqCst);
        let hit = self.faults.lock().unwrap().iter().any(
            |f| matches!(f, Fault::GetError { kind, nth } if *kind == key.kind() && n >= *nth),
        );
        if hit {
            return Err(self.injected_error("get", key));
        }
        Ok(())
    }
}

impl<B: Backend> Backend for FaultyBackend<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.check_get(Op::Get, key)?;
        self.inner.get(key)
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        self.check_get(Op::GetRange, key)?;
        self.inner.get_range(key, range)
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        self.check_flaky(Op::Put, key)?;
        let n = self.puts[slot(key.kind())].fetch_add(1, Ordering::SeqCst);
        let mut data = data;
        let mut timeout = None;
        let faults = self.faults.lock().unwrap().clone();
        for f in &faults {
            match f {
                Fault::PutError { kind, nth } if *kind == key.kind() && n >= *nth => {
                    return Err(self.injected_error("put", key));
                }
                Fault::PutTruncated { kind, nth } if *kind == key.kind() && n >= *nth => {
                    self.injected.fetch_add(1, Ordering::Relaxed);
                    data = data.slice(..data.len() / 2);
                }
                Fault::PutTimeout {
                    kind,
                    stored,
                    tries,
                } if *kind == key.kind() && timeout.is_none() => {
                    // counted separately from the throttling tries
                    let mut t = self.tries.lock().unwrap();
                    let c = t.entry((u8::MAX, *key)).or_insert(0);
                    *c += 1;
                    if *c <= *tries {
                        timeout = Some(*stored);
                    }
                }
                _ => {}
            }
        }
        match timeout {
            Some(true) => {
                self.inner.put(key, data, mode)?;
                Err(self.transient("put", key, "timeout after the object was stored"))
            }
            Some(false) => Err(self.transient("put", key, "timeout before the object was stored")),
            None => self.inner.put(key, data, mode),
        }
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        self.check_flaky(Op::Head, key)?;
        self.inner.head(key)
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        self.check_flaky(Op::List, &ObjectKey::listing(kind))?;
        let mut all = self.inner.list(kind)?;
        let short = self
            .faults
            .lock()
            .unwrap()
            .iter()
            .any(|f| matches!(f, Fault::ShortList { kind: k } if *k == kind));
        if short && all.len() > 1 {
            self.injected.fetch_add(1, Ordering::Relaxed);
            all = all.into_iter().step_by(2).collect();
        }
        Ok(all)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.check_flaky(Op::Delete, key)?;
        self.inner.delete(key)
    }
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64> {
        self.inner.sweep_leftovers(age)
    }
}

/// Ends the process, as `kill -9` would (no destructor runs, no lock is
/// released, nothing is flushed), when the store operation after the
/// `limit`-th is about to start: what a crash between any two store
/// operations leaves behind. The binary enables it with the hidden
/// environment variable [`CRASH_ENV`] (tests only), read by
/// [`super::connect`].
pub struct CrashAfter<B> {
    inner: B,
    limit: u64,
    done: AtomicU64,
    stop: bool,
}

/// `ARCA_TEST_CRASH_AFTER_OPS=N`: end the process before store operation
/// N + 1 (counting from 1).
pub const CRASH_ENV: &str = "ARCA_TEST_CRASH_AFTER_OPS";

/// The exit status of a process ended by [`CrashAfter`].
pub const CRASH_EXIT: i32 = 86;

/// `ARCA_TEST_STOP_AFTER_OPS=N`: stop the process (`SIGSTOP`, as a
/// suspended laptop or a stalled VM) before store operation N + 1; it goes
/// on when sent `SIGCONT`. Tests only.
pub const STOP_ENV: &str = "ARCA_TEST_STOP_AFTER_OPS";

impl<B: Backend> CrashAfter<B> {
    /// Wraps `inner`; the process ends before operation `limit + 1`.
    pub fn new(inner: B, limit: u64) -> Self {
        Self {
            inner,
            limit,
            done: AtomicU64::new(0),
            stop: false,
        }
    }

    /// Wraps `inner`; the process stops itself (once) before operation
    /// `limit + 1`, and carries on when continued.
    pub fn stopping(inner: B, limit: u64) -> Self {
        Self {
            stop: true,
            ..Self::new(inner, limit)
        }
    }

    fn tick(&self, op: &str, key: &str) {
        let n = self.done.fetch_add(1, Ordering::SeqCst);
        if self.stop {
            if n == self.limit {
                eprintln!(
                    "arca: test stop before store operation {} ({op} {key})",
                    self.limit + 1
                );
                // SAFETY: raise only sends a signal to this process.
                unsafe {
                    libc::raise(libc::SIGSTOP);
                }
            }
            return;
        }
        if n >= self.limit {
            eprintln!(
                "arca: test crash before store operation {} ({op} {key})",
                self.limit + 1
            );
            // SAFETY: _exit ends the process at once; that is the point.
            unsafe { libc::_exit(CRASH_EXIT) }
        }
    }
}

impl<B: Backend> Backend for CrashAfter<B> {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        self.tick("get", &key.path());
        self.inner.get(key)
    }
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        self.tick("get range", &key.path());
        self.inner.get_range(key, range)
    }
    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        self.tick("put", &key.path());
        self.inner.put(key, data, mode)
    }
    fn head(&self, key: &ObjectKey) -> Result<u64> {
        self.tick("head", &key.path());
        self.inner.head(key)
    }
    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        self.tick("list", kind.prefix());
        self.inner.list(kind)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.tick("delete", &key.path());
        self.inner.delete(key)
    }
    fn sweep_leftovers(&self, age: std::time::Duration) -> Result<u64> {
        self.tick("sweep", "leftovers");
        self.inner.sweep_leftovers(age)
    }
}
