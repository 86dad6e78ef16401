//! Two small synchronisation primitives the pipelines share.

use std::sync::{Condvar, Mutex};

/// A value that one thread sets once and any number of threads wait for.
pub struct Pending<T> {
    slot: Mutex<Option<T>>,
    cv: Condvar,
    /// Threads blocked in `wait` (so `set` wakes only when someone waits).
    waiters: std::sync::atomic::AtomicUsize,
}

impl<T: Clone> Pending<T> {
    /// Not set yet.
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(None),
            cv: Condvar::new(),
            waiters: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Sets the value (the first set wins) and wakes the waiters.
    pub fn set(&self, v: T) {
        use std::sync::atomic::Ordering;
        let mut s = self.slot.lock().unwrap();
        if s.is_none() {
            *s = Some(v);
        }
        // waiters only change under the lock, so this read is exact
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.cv.notify_all();
        }
    }

    /// Blocks until the value is set, then returns a copy.
    pub fn wait(&self) -> T {
        use std::sync::atomic::Ordering;
        let mut s = self.slot.lock().unwrap();
        loop {
            if let Some(v) = s.as_ref() {
                return v.clone();
            }
            self.waiters.fetch_add(1, Ordering::Relaxed);
            s = self.cv.wait(s).unwrap();
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<T: Clone> Default for Pending<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A counting budget of bytes in flight: `acquire` blocks while the budget
/// is spent. A single request larger than the whole budget is let through
/// when nothing else is in flight, so progress is always possible.
pub struct Budget {
    used: Mutex<u64>,
    cv: Condvar,
    limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            used: Mutex::new(0),
            cv: Condvar::new(),
            limit,
        }
    }

    /// Takes `n` bytes, waiting for room.
    pub fn acquire(&self, n: u64) {
        let mut used = self.used.lock().unwrap();
        while *used > 0 && *used + n > self.limit {
            used = self.cv.wait(used).unwrap();
        }
        *used += n;
    }

    /// Returns `n` bytes.
    pub fn release(&self, n: u64) {
        let mut used = self.used.lock().unwrap();
        *used = used.saturating_sub(n);
        self.cv.notify_all();
    }
}
