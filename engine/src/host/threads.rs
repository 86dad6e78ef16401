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

/// An ordered parallel map between a producer and a consumer: `produce`
/// (on the calling thread) hands items to its callback, `f` runs on
/// `workers` threads of its own, and `consume` (on one more thread) gets
/// the results in the order the items were produced. At most `in_flight`
/// items are between the callback and `consume` at once, so memory is
/// bounded by that many results. The first error stops every stage and
/// is returned; `consume`'s and `f`'s come before `produce`'s (a producer
/// told to stop answers "stopped", which is not the cause). On `Ok`,
/// every item was consumed.
pub fn ordered_map<I: Send, O: Send>(
    workers: usize,
    in_flight: usize,
    produce: impl FnOnce(&mut dyn FnMut(I) -> crate::error::Result<()>) -> crate::error::Result<()>,
    f: impl Fn(I) -> crate::error::Result<O> + Sync,
    consume: impl FnMut(O) -> crate::error::Result<()> + Send,
) -> crate::error::Result<()> {
    use crate::error::{Error, Result};
    let in_flight = in_flight.max(1);
    let (jobs, jobs_rx) = crossbeam_channel::bounded::<(u64, I)>(0);
    let (results_tx, results) = crossbeam_channel::unbounded::<(u64, Result<O>)>();
    // a token per item allowed in flight: the consumer hands one back for
    // each result it consumes, and closes the channel when it stops
    let (tokens_back, tokens) = crossbeam_channel::bounded::<()>(in_flight);
    for _ in 0..in_flight {
        tokens_back.send(()).expect("room for every token");
    }
    let (f, mut consume) = (&f, consume);
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            let (jobs_rx, results_tx) = (jobs_rx.clone(), results_tx.clone());
            s.spawn(move || {
                for (seq, item) in jobs_rx {
                    if results_tx.send((seq, f(item))).is_err() {
                        return;
                    }
                }
            });
        }
        drop((jobs_rx, results_tx));
        let consumer = s.spawn(move || -> Result<u64> {
            let mut waiting = std::collections::BTreeMap::new();
            let mut next = 0u64;
            for (seq, r) in results {
                waiting.insert(seq, r?);
                while let Some(out) = waiting.remove(&next) {
                    consume(out)?;
                    next += 1;
                    let _ = tokens_back.send(());
                }
            }
            Ok(next)
        });
        let stopped = || Error::Invalid("stopped: a later stage failed".into());
        let mut produced = 0u64;
        let result = produce(&mut |item| {
            tokens.recv().map_err(|_| stopped())?;
            jobs.send((produced, item)).map_err(|_| stopped())?;
            produced += 1;
            Ok(())
        });
        drop(jobs);
        let consumed = consumer.join().expect("the consumer does not panic")?;
        result?;
        debug_assert_eq!(consumed, produced);
        Ok(())
    })
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

    #[test]
    fn ordered_map_keeps_the_order_and_bounds_what_is_in_flight() {
        use std::sync::atomic::AtomicIsize;
        let held = AtomicIsize::new(0);
        let most = AtomicIsize::new(0);
        let mut got = vec![];
        ordered_map(
            3,
            4,
            |emit| (0..200u64).try_for_each(&mut *emit),
            |i| {
                let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // later items finish first now and then
                if i % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Ok(i * 2)
            },
            |o| {
                held.fetch_sub(1, Ordering::SeqCst);
                got.push(o);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, (0..200u64).map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 4, "{:?}", most);
    }

    #[test]
    fn ordered_map_stops_at_the_first_error_and_reports_it() {
        use crate::error::Error;
        let consumed = AtomicUsize::new(0);
        // a worker fails: its error, not the producer's "stopped"
        let e = ordered_map(
            2,
            3,
            |emit| (0..10_000u64).try_for_each(&mut *emit),
            |i| {
                if i == 50 {
                    Err(Error::Invalid("item 50 is bad".into()))
                } else {
                    Ok(i)
                }
            },
            |_| {
                consumed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("item 50 is bad"), "{e}");
        assert!(consumed.load(Ordering::SeqCst) <= 50);
        // the consumer fails
        let e = ordered_map(
            2,
            3,
            |emit| (0..10_000u64).try_for_each(&mut *emit),
            Ok,
            |i| {
                if i == 5 {
                    Err(Error::Invalid("cannot take 5".into()))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot take 5"), "{e}");
        // the producer fails: everything it produced was consumed
        let consumed = AtomicUsize::new(0);
        let e = ordered_map(
            2,
            3,
            |emit| {
                (0..20u64).try_for_each(&mut *emit)?;
                Err(Error::Invalid("listing broke".into()))
            },
            Ok,
            |_| {
                consumed.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("listing broke"), "{e}");
        assert_eq!(consumed.load(Ordering::SeqCst), 20);
    }
}
