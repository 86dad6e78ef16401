//! Repository locks: who is using a repository, so that an operation that
//! deletes (prune, repair) never runs while another may depend on what it
//! would delete.
//!
//! Owns the `locks/` objects. A lock is `ALK\x01 || seal(ALK\x01, JSON)`
//! with the JSON of [`LockInfo`] (kind, host, pid, user, operation,
//! created, refreshed), named by a **random** 32-byte id: a lock changes
//! when it is refreshed, so, unlike every other object, it cannot be named
//! by its content hash.
//!
//! Kinds: [`LockKind::Shared`] (backup) excludes only exclusive locks;
//! [`LockKind::Exclusive`] (prune, repair) excludes every other lock.
//!
//! Taking a lock: write our lock object with a create-only put (S3
//! `If-None-Match: *`, GCS and Azure preconditions, `O_EXCL`-like on a local
//! directory; on a store without create-only writes the backend falls back
//! to head-then-write), then list `locks/` and read every other lock. If a
//! conflicting lock that is not stale is there, delete ours, back off (with
//! jitter) and try again a few times, then fail with [`Error::Locked`]
//! naming the holders. This "write, then list" protocol is what excludes:
//! of two lockers racing, at least the later one to list sees the other,
//! on any store whose listings show every completed put (S3, GCS, Azure and
//! Garage do). Both may see each other and both back off; the jitter lets
//! one win the next round. The create-only put guarantees that a lock
//! object, once written, is never silently replaced by another writer.
//!
//! Holding a lock: a background thread rewrites it every `refresh` (5 min)
//! with a new `refreshed` time: `head` (is it still there?), an
//! overwriting `put`, then a `get` of `removed-locks/<id>`. Others treat a
//! lock as **stale** when its `refreshed` time is older than `stale`
//! (30 min), or when it names this host and a process that no longer runs;
//! stale locks neither block nor are kept by `arca unlock`. The holder
//! treats its lock as **lost** when it was removed (the head finds nothing,
//! or the removal notice is there) or when no refresh has succeeded for
//! `stale - refresh` (25 min, one refresh interval before anyone else may
//! call it stale, leaving that much room for clock skew between hosts).
//! Operations call [`LockWatch::check`] at their commit points and stop
//! with [`Error::LockLost`] rather than continue unprotected.
//!
//! Removing someone else's lock ([`remove_lock`], used by `unlock`) writes
//! the notice `removed-locks/<id>` first and deletes the lock second. The
//! head alone cannot see a removal that lands between it and the put: the
//! put would write the lock again and its holder would go on, believing it
//! held while the remover and whoever locks next believe it gone. The
//! notice closes that gap: a put that lands after the delete is followed
//! by the get of a notice written before the delete, which finds it; the
//! holder then deletes the lock it wrote again and the notice, and stops.
//! A notice whose lock's holder never came back is removed by `unlock` once
//! it is older than twice the staleness, when no refresh that started
//! before the removal can still be in flight (format-spec §14.1).
//!
//! Tests shorten the times with the hidden environment variable
//! `ARCA_LOCK_TIMING=REFRESH_SECS,STALE_SECS` (fractions allowed), read by
//! [`LockTiming::default`].
//!
//! Costs: taking a lock is one put, one list and one get per other lock;
//! a refresh is a head, a put and a get; releasing is one delete; removing
//! another's lock is a put and a delete.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::crypto::random_bytes;
use crate::format::id::{LockId, LockRemovalId};
use crate::format::layout::ObjectId;
use crate::format::lock::{LockInfo, LockKind, LockRemoval};
use crate::store::backend::{ObjectKey, PutMode};
use crate::store::repo::Repository;

/// How often a held lock is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// How long after its last refresh a lock is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// The hidden test override of both: `REFRESH_SECS,STALE_SECS`.
pub const TIMING_ENV: &str = "ARCA_LOCK_TIMING";

/// Attempts to take a lock while a conflicting one is fresh.
const ATTEMPTS: u32 = 4;
/// Backoff between attempts (doubled each time, jittered).
const BACKOFF: Duration = Duration::from_millis(400);

/// Refresh and staleness intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// How often a held lock is rewritten.
    pub refresh: Duration,
    /// After how long without a refresh a lock is stale.
    pub stale: Duration,
}

impl Default for LockTiming {
    /// [`REFRESH_EVERY`] and [`STALE_AFTER`], unless `ARCA_LOCK_TIMING`
    /// (tests only) says otherwise.
    fn default() -> Self {
        let d = Self {
            refresh: REFRESH_EVERY,
            stale: STALE_AFTER,
        };
        let Ok(v) = std::env::var(TIMING_ENV) else {
            return d;
        };
        let parsed: Option<(f64, f64)> = v
            .split_once(',')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some((r, s)) if r > 0.0 && s > r && s.is_finite() => Self {
                refresh: Duration::from_secs_f64(r),
                stale: Duration::from_secs_f64(s),
            },
            _ => d,
        }
    }
}

impl LockTiming {
    /// How long the holder may go without a successful refresh before it
    /// must consider its lock lost.
    pub fn expiry(&self) -> Duration {
        self.stale
            .checked_sub(self.refresh)
            .filter(|d| !d.is_zero())
            .unwrap_or(self.stale / 2)
    }
}

impl LockInfo {
    /// A new lock of this process.
    pub(crate) fn new(kind: LockKind, operation: &str) -> Self {
        let now = Utc::now();
        Self {
            kind,
            host: crate::host::facts::hostname(),
            pid: std::process::id(),
            username: crate::host::facts::username(),
            operation: operation.to_string(),
            created: now,
            refreshed: now,
            process_space: process_space(),
        }
    }

    /// Whether others may ignore and remove this lock: not refreshed for
    /// `timing.stale`, or held by a process that is gone (see
    /// [`Self::holder_is_gone`]).
    pub fn is_stale(&self, timing: &LockTiming, now: DateTime<Utc>) -> bool {
        let age = (now - self.refreshed).to_std().unwrap_or(Duration::ZERO);
        age > timing.stale || self.holder_is_gone()
    }

    /// Whether the process that holds this lock is known not to run: it
    /// ran on this host, in this boot and this pid namespace (so that its
    /// pid means what it means here: two containers share a host name but
    /// not their pids), and no process has that pid. A lock that does not
    /// say where it ran is never judged by its pid, only by its age.
    pub fn holder_is_gone(&self) -> bool {
        !self.process_space.is_empty()
            && self.host == crate::host::facts::hostname()
            && self.process_space == process_space()
            && !process_alive(self.pid)
    }
}

/// This process's kernel boot id and pid namespace, as
/// `<boot id>/<namespace inode>`; empty where they cannot be read.
pub fn process_space() -> String {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::metadata("/proc/self/ns/pid");
    match (boot, ns) {
        (Ok(b), Ok(m)) if !b.trim().is_empty() => format!("{}/{}", b.trim(), m.ino()),
        _ => String::new(),
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true, // EPERM: it exists, owned by someone else
    }
}

/// A lock found in the repository.
#[derive(Debug, Clone)]
pub struct LockEntry {
    /// Its object id.
    pub id: LockId,
    /// What it says, or why it could not be read.
    pub info: std::result::Result<LockInfo, String>,
    /// Whether it is stale (an unreadable lock counts as stale: no arca
    /// process can honour it).
    pub stale: bool,
}

impl LockEntry {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match &self.info {
            Ok(i) => format!("{} [{}]", i.describe(), self.id.short()),
            Err(e) => format!("unreadable lock {}: {e}", self.id.short()),
        }
    }
}

/// Every lock in the repository (locks removed while listing are skipped).
pub fn list_locks(repo: &Repository, timing: &LockTiming) -> Result<Vec<LockEntry>> {
    let now = Utc::now();
    let mut out = vec![];
    for id in repo.list::<LockId>()? {
        let bytes = match repo.backend().get(&id.key()) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let info = LockInfo::from_object(repo.key(), &bytes).map_err(|e| e.to_string());
        let stale = info.as_ref().map_or(true, |i| i.is_stale(timing, now));
        out.push(LockEntry { id, info, stale });
    }
    out.sort_by_key(|e| e.info.as_ref().map(|i| i.created).ok());
    Ok(out)
}

/// What `unlock` did.
#[derive(Debug, Clone, Default)]
pub struct UnlockReport {
    /// Locks removed.
    pub removed: Vec<LockEntry>,
    /// Locks kept (not stale).
    pub kept: Vec<LockEntry>,
    /// Old removal notices deleted (see the module comment).
    pub notices_swept: usize,
}

/// Removes stale locks, or every lock with `all` (only safe when no arca
/// process uses the repository), each with [`remove_lock`]; then deletes
/// removal notices older than twice `timing.stale`.
pub fn unlock(repo: &Repository, all: bool, timing: &LockTiming) -> Result<UnlockReport> {
    let mut r = UnlockReport::default();
    for e in list_locks(repo, timing)? {
        if e.stale || all {
            let why = if e.stale {
                "unlock"
            } else {
                "unlock --remove-all"
            };
            remove_lock(repo, e.id, why)?;
            r.removed.push(e);
        } else {
            r.kept.push(e);
        }
    }
    r.notices_swept = sweep_notices(repo, timing)?;
    Ok(r)
}

/// Removes another process's lock so that its holder, if it still runs,
/// learns that it lost it: puts the notice `removed-locks/<id>` (saying who
/// removes it, when, and `why`), then deletes the lock. A crash between
/// the two leaves the lock with its notice: its holder stops at its next
/// refresh, and the next `unlock` removes it again.
pub fn remove_lock(repo: &Repository, id: LockId, why: &str) -> Result<()> {
    let notice = LockRemoval {
        removed: Utc::now(),
        host: crate::host::facts::hostname(),
        pid: std::process::id(),
        username: crate::host::facts::username(),
        operation: why.to_string(),
    };
    repo.backend().put(
        &ObjectKey::of(LockRemovalId(id.0)),
        Bytes::from(notice.to_object(repo.key())),
        PutMode::Overwrite,
    )?;
    repo.backend().delete(&ObjectKey::of(id))
}

/// Deletes the removal notices older than twice `timing.stale`; returns
/// how many. A notice that cannot be read is kept: its age is unknown, and
/// deleting it early would reopen the race it closes.
fn sweep_notices(repo: &Repository, timing: &LockTiming) -> Result<usize> {
    let keep_for =
        chrono::Duration::from_std(timing.stale.saturating_mul(2)).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let mut swept = 0;
    for id in repo.list::<LockRemovalId>()? {
        let key = ObjectKey::of(id);
        let bytes = match repo.backend().get(&key) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let old =
            LockRemoval::from_object(repo.key(), &bytes).is_ok_and(|n| now - n.removed > keep_for);
        if old {
            repo.backend().delete(&key)?;
            swept += 1;
        }
    }
    Ok(swept)
}

/// The removal notice of lock `id`, if there is one: `Ok(None)` when there
/// is none, `Err` when the store could not say.
fn removal_notice(repo: &Repository, id: LockId) -> Result<Option<String>> {
    match repo.backend().get(&ObjectKey::of(LockRemovalId(id.0))) {
        Ok(b) => Ok(Some(match LockRemoval::from_object(repo.key(), &b) {
            Ok(n) => format!("it was removed by {}", n.describe()),
            Err(_) => {
                "it was removed by another process (its removal notice cannot be read)".to_string()
            }
        })),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A point in time to measure a lock's age from, on a clock that keeps
/// counting while the machine is suspended. `Instant` is CLOCK_MONOTONIC on
/// Linux, which stops during suspend: a laptop that slept for two hours
/// would wake up believing its lock fresh while every other host already
/// treats it as stale (restic #2715). CLOCK_BOOTTIME counts the suspend;
/// the wall clock is read too, and the larger of the two ages wins (a wall
/// clock that jumps back never makes a lock look younger than it is).
#[derive(Debug, Clone, Copy)]
struct Since {
    boot: Duration,
    wall: std::time::SystemTime,
}

impl Since {
    fn now() -> Self {
        Self {
            boot: boottime(),
            wall: std::time::SystemTime::now(),
        }
    }

    fn elapsed(&self) -> Duration {
        let boot = boottime().saturating_sub(self.boot);
        let wall = self.wall.elapsed().unwrap_or(Duration::ZERO);
        boot.max(wall)
    }
}

/// CLOCK_BOOTTIME: monotonic, and counting time spent suspended.
fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid clock id and timespec pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct State {
    timing: LockTiming,
    /// When the lock was last written, on the [`Since`] clock.
    last_ok: Mutex<Since>,
    lost: Mutex<Option<String>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl State {
    fn check(&self) -> Result<()> {
        if let Some(why) = self.lost.lock().unwrap().clone() {
            return Err(Error::LockLost(why));
        }
        let since = self.last_ok.lock().unwrap().elapsed();
        if since > self.timing.expiry() {
            let why = format!(
                "it could not be refreshed for {} s (others may treat it as stale after {} s)",
                since.as_secs(),
                self.timing.stale.as_secs()
            );
            self.lost.lock().unwrap().get_or_insert(why.clone());
            return Err(Error::LockLost(why));
        }
        Ok(())
    }
}

/// A handle that tells whether a lock is still held; cheap to clone and to
/// call (no I/O).
#[derive(Clone)]
pub struct LockWatch {
    state: Arc<State>,
}

impl LockWatch {
    /// `Ok` while the lock is held; [`Error::LockLost`] once it was removed
    /// or could not be refreshed in time.
    pub fn check(&self) -> Result<()> {
        self.state.check()
    }
}

/// A held lock. Refreshed in the background; removed when dropped.
pub struct Lock {
    repo: Repository,
    id: LockId,
    info: LockInfo,
    state: Arc<State>,
    refresher: Option<JoinHandle<()>>,
    stale: Vec<LockEntry>,
}

impl Lock {
    /// Takes a lock of `kind` (see the module comment for the protocol).
    pub fn acquire(
        repo: &Repository,
        kind: LockKind,
        operation: &str,
        timing: LockTiming,
    ) -> Result<Lock> {
        let mut raw = [0u8; 32];
        random_bytes(&mut raw);
        let id = LockId(raw);
        let key = ObjectKey::of(id);
        let mut attempt = 0;
        loop {
            // the lock's age counts from before it is written
            let written = Since::now();
            let info = LockInfo::new(kind, operation);
            repo.backend().put(
                &key,
                Bytes::from(info.to_object(repo.key())),
                PutMode::Create,
            )?;
            let others = match list_locks(repo, &timing) {
                Ok(v) => v,
                Err(e) => {
                    let _ = repo.backend().delete(&key);
                    return Err(e);
                }
            };
            let mut conflicts = vec![];
            let mut stale = vec![];
            for e in others.into_iter().filter(|e| e.id != id) {
                match &e.info {
                    // left by a process of ours that died (kill -9, a
                    // crash): nothing can still depend on it
                    Ok(i) if i.holder_is_gone() => {
                        let _ = repo.backend().delete(&ObjectKey::of(e.id));
                    }
                    _ if e.stale => stale.push(e),
                    Ok(i) if kind.conflicts_with(i.kind) => conflicts.push(e),
                    _ => {}
                }
            }
            if conflicts.is_empty() {
                let state = Arc::new(State {
                    timing,
                    last_ok: Mutex::new(written),
                    lost: Mutex::new(None),
                    stop: Mutex::new(false),
                    wake: Condvar::new(),
                });
                let refresher = {
                    let (repo, state, info) = (repo.clone(), state.clone(), info.clone());
                    std::thread::Builder::new()
                        .name("arca-lock".into())
                        .spawn(move || refresh_loop(&repo, id, info, &state))
                        .map_err(|e| Error::io("lock refresh thread", e))?
                };
                return Ok(Lock {
                    repo: repo.clone(),
                    id,
                    info,
                    state,
                    refresher: Some(refresher),
                    stale,
                });
            }
            repo.backend().delete(&key)?;
            attempt += 1;
            if attempt >= ATTEMPTS {
                return Err(Error::Locked {
                    holders: conflicts
                        .iter()
                        .map(|e| e.describe())
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            let ceiling = BACKOFF.saturating_mul(1 << attempt).as_millis() as u64;
            let mut r = [0u8; 8];
            random_bytes(&mut r);
            let ms = ceiling / 2 + u64::from_le_bytes(r) % (ceiling / 2).max(1);
            std::thread::sleep(Duration::from_millis(ms));
        }
    }

    /// This lock's id.
    pub fn id(&self) -> LockId {
        self.id
    }

    /// What this lock says.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Stale locks seen while taking this one (to report: `arca unlock`
    /// removes them).
    pub fn stale_locks(&self) -> &[LockEntry] {
        &self.stale
    }

    /// A handle for the operation's commit points.
    pub fn watch(&self) -> LockWatch {
        LockWatch {
            state: self.state.clone(),
        }
    }

    /// See [`LockWatch::check`].
    pub fn check(&self) -> Result<()> {
        self.state.check()
    }

    /// Stops refreshing and removes the lock, reporting a failure to
    /// remove it (dropping does the same, silently).
    pub fn release(mut self) -> Result<()> {
        self.stop();
        self.repo.backend().delete(&ObjectKey::of(self.id))
    }

    fn stop(&mut self) {
        *self.state.stop.lock().unwrap() = true;
        self.state.wake.notify_all();
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.refresher.is_some() {
            self.stop();
            let _ = self.repo.backend().delete(&ObjectKey::of(self.id));
        }
    }
}

fn refresh_loop(repo: &Repository, id: LockId, mut info: LockInfo, state: &State) {
    let key = ObjectKey::of(id);
    let lost = |why: String| {
        state.lost.lock().unwrap().get_or_insert(why);
    };
    loop {
        {
            let stop = state.stop.lock().unwrap();
            let (stop, _) = state
                .wake
                .wait_timeout_while(stop, state.timing.refresh, |s| !*s)
                .unwrap();
            if *stop {
                return;
            }
        }
        if state.check().is_err() {
            return; // lost: nothing to refresh; the operation stops
        }
        let started = Since::now();
        match repo.backend().head(&key) {
            Err(e) if e.is_not_found() => {
                let why = match removal_notice(repo, id) {
                    Ok(Some(why)) => {
                        // read by the one it was for; this holder writes no more
                        let _ = repo.backend().delete(&ObjectKey::of(LockRemovalId(id.0)));
                        why
                    }
                    _ => "it was removed by another process (`arca unlock --remove-all`, or `arca unlock` after it went stale)".into(),
                };
                lost(why);
                return;
            }
            Err(_) => continue, // retried next round; expiry decides
            Ok(_) => {}
        }
        info.refreshed = Utc::now();
        let bytes = Bytes::from(info.to_object(repo.key()));
        if repo.backend().put(&key, bytes, PutMode::Overwrite).is_err() {
            continue;
        }
        // A removal between the head and the put was undone by the put;
        // its notice, written before the removal, says so.
        match removal_notice(repo, id) {
            Ok(None) => {}
            Ok(Some(why)) => {
                lost(why);
                let _ = repo.backend().delete(&key);
                let _ = repo.backend().delete(&ObjectKey::of(LockRemovalId(id.0)));
                return;
            }
            Err(_) => continue, // not a refresh we can count
        }
        // Counted only if the notice was looked for within the expiry of
        // the last refresh: a notice is kept for twice the staleness, so
        // one written after that refresh cannot have been swept yet.
        if state.check().is_err() {
            return;
        }
        *state.last_ok.lock().unwrap() = started;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::crypto::{MasterKey, label};

    #[test]
    fn lock_object_round_trips_and_staleness() {
        let k = MasterKey::generate();
        let mut i = LockInfo::new(LockKind::Exclusive, "prune");
        let b = i.to_object(&k);
        assert_eq!(&b[..4], label::LOCK);
        assert_eq!(LockInfo::from_object(&k, &b).unwrap(), i);
        assert!(LockInfo::from_object(&MasterKey::generate(), &b).is_err());
        let t = LockTiming {
            refresh: Duration::from_secs(60),
            stale: Duration::from_secs(600),
        };
        assert!(!i.is_stale(&t, Utc::now()));
        assert!(i.is_stale(&t, Utc::now() + chrono::Duration::seconds(601)));
        i.pid = u32::MAX / 2; // no such process here
        assert_eq!(i.holder_is_gone(), !i.process_space.is_empty());
        assert_eq!(i.is_stale(&t, Utc::now()), !i.process_space.is_empty());
        let mut other_ns = i.clone();
        other_ns.process_space = "another-boot/1".into();
        assert!(
            !other_ns.is_stale(&t, Utc::now()),
            "a pid of another namespace means nothing here"
        );
        let mut old = i.clone();
        old.process_space.clear();
        assert!(
            !old.is_stale(&t, Utc::now()),
            "a lock that does not say where it ran is judged by age"
        );
        i.host = "elsewhere".into();
        assert!(!i.is_stale(&t, Utc::now()));
        assert_eq!(t.expiry(), Duration::from_secs(540));
        assert!(LockKind::Shared.conflicts_with(LockKind::Exclusive));
        assert!(!LockKind::Shared.conflicts_with(LockKind::Shared));
        assert!(LockKind::Exclusive.conflicts_with(LockKind::Exclusive));
    }
}
