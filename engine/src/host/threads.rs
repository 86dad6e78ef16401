//! Small synchronisation primitives the pipelines share.

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

/// Runs `f` on every item, `workers` at a time (on threads of its own, not
/// the rayon pool: for blocking store calls, whose latency, not the CPU,
/// bounds them). Stops handing out items at the first error and returns
/// it; items already started finish.
pub fn for_each_concurrent<T: Sync>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> crate::error::Result<()> + Sync,
) -> crate::error::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if items.len() <= 1 {
        return items.iter().try_for_each(&f);
    }
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<crate::error::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len()) {
            s.spawn(|| {
                while failed.lock().unwrap().is_none() {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    if let Err(e) = f(item) {
                        failed.lock().unwrap().get_or_insert(e);
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn for_each_concurrent_visits_each_item_once_and_stops_at_an_error() {
        let items: Vec<usize> = (0..100).collect();
        let seen = Mutex::new(vec![]);
        for_each_concurrent(&items, 8, |i| {
            seen.lock().unwrap().push(*i);
            Ok(())
        })
        .unwrap();
        let mut v = seen.into_inner().unwrap();
        v.sort();
        assert_eq!(v, items);

        let ran = AtomicUsize::new(0);
        let r = for_each_concurrent(&items, 4, |i| {
            ran.fetch_add(1, Ordering::Relaxed);
            if *i == 10 {
                Err(crate::error::Error::Invalid("stop".into()))
            } else {
                Ok(())
            }
        });
        assert!(matches!(r, Err(crate::error::Error::Invalid(m)) if m == "stop"));
        // the workers stop soon after the failure, not at the end
        assert!(ran.load(Ordering::Relaxed) < 100);
    }
}
