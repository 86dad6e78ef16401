//! Two small synchronisation primitives the pipelines share.

use std::sync::{Condvar, Mutex};

/// A value that one thread sets once and any number of threads wait for.
pub struct Pending<T> {
    /// The value, and how many threads are blocked in `wait` (so that
    /// `set` wakes only when someone waits: with many small files most
    /// values are set before anyone asks).
    slot: Mutex<(Option<T>, usize)>,
    cv: Condvar,
}

impl<T: Clone> Pending<T> {
    /// Not set yet.
    pub fn new() -> Self {
        Self {
            slot: Mutex::new((None, 0)),
            cv: Condvar::new(),
        }
    }

    /// Sets the value (the first set wins) and wakes the waiters.
    pub fn set(&self, v: T) {
        let mut s = self.slot.lock().unwrap();
        if s.0.is_none() {
            s.0 = Some(v);
        }
        if s.1 > 0 {
            self.cv.notify_all();
        }
    }

    /// Blocks until the value is set, then returns a copy.
    pub fn wait(&self) -> T {
        let mut s = self.slot.lock().unwrap();
        loop {
            if let Some(v) = s.0.as_ref() {
                return v.clone();
            }
            s.1 += 1;
            s = self.cv.wait(s).unwrap();
            s.1 -= 1;
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
