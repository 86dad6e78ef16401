//! The backend stack under faults, on object_store's in-memory store:
//! transient failures and ambiguous timeouts are retried and lose nothing,
//! a truncated upload reported as a success never gets into a snapshot, a
//! short LIST page loses nothing, and locks exclude, go stale, and stop a
//! backup whose lock was lost.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use arca_engine::Error;
use arca_engine::format::crypto::KdfParams;
use arca_engine::format::id::{IndexId, LockId, SnapshotId};
use arca_engine::format::lock::{LockInfo, LockKind};
use arca_engine::ops::backup::{self, BackupOptions, BackupOutcome, Source};
use arca_engine::ops::restore::{self, RestoreOptions};
use arca_engine::store::backend::{
    Backend, Fault, FaultyBackend, ObjectKey, ObjectKind, ObjectStoreBackend, Op, PutMode,
    RetryBackend, RetryPolicy,
};
use arca_engine::store::catalog::Catalog;
use arca_engine::store::lock::{self, Lock, LockTiming};
use arca_engine::store::repo::{InitOptions, KeyOwner, Repository};
use arca_engine::store::session::{Opened, Session, Write};
use bytes::Bytes;
use object_store::memory::InMemory;

type Faulty = FaultyBackend<ObjectStoreBackend>;

struct World {
    faulty: Arc<Faulty>,
    retry: Arc<RetryBackend<Arc<Faulty>>>,
    repo: Repository,
    dir: tempfile::TempDir,
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        retries: 6,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(20),
    }
}

fn world() -> World {
    let store =
        ObjectStoreBackend::with_store(Arc::new(InMemory::new()), "memory://test".into()).unwrap();
    let faulty = Arc::new(FaultyBackend::new(store));
    let retry = Arc::new(RetryBackend::new(faulty.clone(), fast_retries()));
    let opts = InitOptions {
        kdf: KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        },
        pack_size: 1 << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(retry.clone(), b"pw", &opts, &KeyOwner::current()).unwrap();
    World {
        faulty,
        retry,
        repo,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

impl World {
    /// A source directory of `files` incompressible files of 1.5 MiB.
    fn source(&self, name: &str, files: u64, seed: u64) -> std::path::PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..files {
            std::fs::write(d.join(format!("f{i}")), noise(3 << 19, seed * 100 + i)).unwrap();
        }
        d
    }

    fn catalog(&self) -> Arc<Catalog> {
        let c = Catalog::in_memory(&self.repo.config().id).unwrap();
        c.sync(&self.repo).unwrap();
        Arc::new(c)
    }

    /// The repository held for writing (a shared lock) with `catalog`.
    fn writing(&self, catalog: &Arc<Catalog>) -> Session<Write> {
        Opened::new(self.repo.clone(), catalog.clone())
            .unwrap()
            .for_writing("backup")
            .unwrap()
    }

    fn backup(&self, catalog: &Arc<Catalog>, src: &Path) -> arca_engine::Result<BackupOutcome> {
        let mut o = BackupOptions::new(Source::Paths(vec![src.to_path_buf()]));
        o.uploaders = 4;
        backup::backup(&self.writing(catalog), o)
    }

    /// Restores `id` with a catalog synced now, and compares with `src`.
    fn restores_identically(&self, id: &SnapshotId, src: &Path) {
        let catalog = self.catalog();
        let snap = self.repo.load_snapshot(id).unwrap();
        let target = self.dir.path().join(format!("restore-{}", id.short()));
        let s = Opened::new(self.repo.clone(), catalog)
            .unwrap()
            .for_reading("restore", true)
            .unwrap();
        restore::restore(&s, id, &snap, &RestoreOptions::new(target.clone())).unwrap();
        let back = target.join(src.strip_prefix("/").unwrap());
        let mut n = 0;
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            assert_eq!(
                std::fs::read(back.join(e.file_name())).unwrap(),
                std::fs::read(e.path()).unwrap(),
                "{}",
                e.path().display()
            );
            n += 1;
        }
        assert!(n > 0);
    }

    fn snapshot_ids(&self) -> Vec<SnapshotId> {
        self.repo.list::<SnapshotId>().unwrap()
    }
}

#[test]
fn transient_faults_and_timeouts_are_retried_and_nothing_is_lost() {
    let w = world();
    let src = w.source("src", 6, 1);
    for kind in [ObjectKind::Pack, ObjectKind::Index, ObjectKind::Snapshot] {
        // every object's first upload times out: once after the store kept
        // it, once before
        w.faulty.inject(Fault::PutTimeout {
            kind,
            stored: kind != ObjectKind::Index,
            tries: 1,
        });
    }
    w.faulty.inject(Fault::PutTimeout {
        kind: ObjectKind::Index,
        stored: true,
        tries: 2,
    });
    for (kind, op) in [
        (ObjectKind::Pack, Op::Head),
        (ObjectKind::Pack, Op::GetRange),
        (ObjectKind::Pack, Op::Put),
        (ObjectKind::Index, Op::List),
        (ObjectKind::Index, Op::Get),
        (ObjectKind::Snapshot, Op::List),
        (ObjectKind::Snapshot, Op::Get),
        (ObjectKind::Lock, Op::Put),
        (ObjectKind::Lock, Op::List),
    ] {
        w.faulty.inject(Fault::Transient { kind, op, tries: 2 });
    }
    let catalog = w.catalog();
    let session = w.writing(&catalog);
    let mut o = BackupOptions::new(Source::Paths(vec![src.clone()]));
    o.uploaders = 4;
    let out = backup::backup(&session, o).unwrap();
    session.release().unwrap();
    assert!(w.faulty.injected() > 30, "{} faults", w.faulty.injected());
    assert!(w.retry.retried() > 30, "{} retries", w.retry.retried());
    assert_eq!(out.snapshot.summary.files_new, 6);
    // restore under the same faults, with a catalog rebuilt from scratch
    w.restores_identically(&out.id, &src);
    assert!(
        lock::list_locks(&w.repo, &LockTiming::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retries_stop_at_the_limit_and_permanent_errors_are_not_retried() {
    let w = world();
    let k = ObjectKey::of(IndexId([1; 32]));
    w.faulty.inject(Fault::Transient {
        kind: ObjectKind::Index,
        op: Op::Get,
        tries: 100,
    });
    let before = w.retry.retried();
    let e = w.retry.get(&k).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(w.retry.retried() - before, 6);
    w.faulty.heal();
    w.faulty.inject(Fault::PutError {
        kind: ObjectKind::Index,
        nth: 0,
    });
    let before = w.retry.retried();
    assert!(
        w.retry
            .put(&k, Bytes::from_static(b"x"), PutMode::Overwrite)
            .is_err()
    );
    assert_eq!(
        w.retry.retried(),
        before,
        "a permanent error is not retried"
    );
}

#[test]
fn an_ambiguous_create_only_put_is_settled_by_reading_back() {
    let w = world();
    let k = ObjectKey::of(LockId([2; 32]));
    // timed out after storing: ours landed, so it is a success
    w.faulty.inject(Fault::PutTimeout {
        kind: ObjectKind::Lock,
        stored: true,
        tries: 1,
    });
    w.retry
        .put(&k, Bytes::from_static(b"mine"), PutMode::Create)
        .unwrap();
    assert_eq!(
        w.faulty.inner().get(&k).unwrap(),
        Bytes::from_static(b"mine")
    );
    w.faulty.heal();
    // someone else's object is there and our put failed before storing:
    // "already exists", never a success
    let k2 = ObjectKey::of(LockId([3; 32]));
    w.faulty
        .inner()
        .put(&k2, Bytes::from_static(b"them"), PutMode::Create)
        .unwrap();
    w.faulty.inject(Fault::PutTimeout {
        kind: ObjectKind::Lock,
        stored: false,
        tries: 1,
    });
    let e = w
        .retry
        .put(&k2, Bytes::from_static(b"mine"), PutMode::Create)
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    assert_eq!(
        w.faulty.inner().get(&k2).unwrap(),
        Bytes::from_static(b"them")
    );
    // and a plain conflict is reported as such
    let e = w
        .retry
        .put(&k2, Bytes::from_static(b"mine"), PutMode::Create)
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
}

#[test]
fn a_truncated_upload_reported_as_success_never_reaches_a_snapshot() {
    let w = world();
    let src = w.source("src", 6, 2);
    w.faulty.inject(Fault::PutTruncated {
        kind: ObjectKind::Pack,
        nth: 2,
    });
    let catalog = w.catalog();
    let e = w.backup(&catalog, &src).unwrap_err();
    assert!(e.to_string().contains("did not count"), "{e}");
    assert!(w.faulty.injected() > 0);
    assert!(w.snapshot_ids().is_empty(), "no snapshot was written");
    // what was indexed is intact: every indexed pack has its indexed size
    for (pack, size) in w.catalog().packs().unwrap() {
        let stored = w.faulty.inner().head(&ObjectKey::of(pack)).unwrap();
        assert_eq!(stored, size, "indexed pack {pack} is whole");
    }
    // the store heals: the next backup re-uploads what is missing
    w.faulty.heal();
    let out = w.backup(&catalog, &src).unwrap();
    w.restores_identically(&out.id, &src);
}

#[test]
fn a_short_listing_loses_nothing() {
    let w = world();
    let catalog = w.catalog();
    let mut done = vec![];
    for i in 0..4 {
        let src = w.source(&format!("src{i}"), 2, 10 + i);
        done.push((w.backup(&catalog, &src).unwrap().id, src));
    }
    let segments = w.repo.list::<IndexId>().unwrap().len();
    assert!(segments >= 4, "{segments} segments");

    w.faulty.inject(Fault::ShortList {
        kind: ObjectKind::Index,
    });
    w.faulty.inject(Fault::ShortList {
        kind: ObjectKind::Snapshot,
    });
    // a catalog that knows everything keeps everything
    let stats = catalog.sync(&w.repo).unwrap();
    assert!(!stats.rebuilt, "{stats:?}");
    assert!(
        stats.warnings.iter().any(|m| m.contains("index/"))
            && stats.warnings.iter().any(|m| m.contains("snapshots/")),
        "{stats:?}"
    );
    assert_eq!(catalog.snapshots().unwrap().len(), 4);
    assert!(w.faulty.injected() >= 2);
    for (id, src) in &done {
        let s = Opened::new(w.repo.clone(), catalog.clone())
            .unwrap()
            .for_reading("restore", false)
            .unwrap();
        let snap = w.repo.load_snapshot(id).unwrap();
        let t = w.dir.path().join(format!("short-{}", id.short()));
        restore::restore(&s, id, &snap, &RestoreOptions::new(t.clone())).unwrap();
        let back = t.join(src.strip_prefix("/").unwrap());
        assert_eq!(
            std::fs::read(back.join("f0")).unwrap(),
            std::fs::read(src.join("f0")).unwrap()
        );
    }
    // a new backup under the short listing (with a catalog that saw only
    // part of the index) may store some chunks again, but loses nothing
    let fresh = Arc::new(Catalog::in_memory(&w.repo.config().id).unwrap());
    fresh.sync(&w.repo).unwrap();
    let again = w.backup(&fresh, &done[0].1).unwrap();
    w.faulty.heal();
    w.restores_identically(&again.id, &done[0].1);
    for (id, src) in &done {
        w.restores_identically(id, src);
    }
    // a snapshot that is really gone is still noticed as gone
    let victim = done[3].0;
    w.faulty.inner().delete(&ObjectKey::of(victim)).unwrap();
    catalog.sync(&w.repo).unwrap();
    assert!(
        catalog
            .snapshots()
            .unwrap()
            .iter()
            .all(|(i, _)| *i != victim),
        "a deleted snapshot leaves the catalog"
    );
}

fn timing(refresh_ms: u64, stale_ms: u64) -> LockTiming {
    LockTiming {
        refresh: Duration::from_millis(refresh_ms),
        stale: Duration::from_millis(stale_ms),
    }
}

#[test]
fn shared_locks_coexist_and_exclusive_ones_exclude() {
    let w = world();
    let t = timing(60_000, 600_000);
    let a = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    let b = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    let e = match Lock::acquire(&w.repo, LockKind::Exclusive, "prune", t) {
        Err(e) => e,
        Ok(_) => panic!("an exclusive lock beside shared ones"),
    };
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&arca_engine::host::facts::hostname())
            && msg.contains(&format!("pid {}", std::process::id()))
            && msg.contains("shared lock of backup"),
        "{msg}"
    );
    assert_eq!(
        lock::list_locks(&w.repo, &t).unwrap().len(),
        2,
        "the loser removed its lock"
    );
    drop(a);
    b.release().unwrap();
    let x = Lock::acquire(&w.repo, LockKind::Exclusive, "prune", t).unwrap();
    assert!(matches!(
        Lock::acquire(&w.repo, LockKind::Shared, "backup", t),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        Lock::acquire(&w.repo, LockKind::Exclusive, "repair", t),
        Err(Error::Locked { .. })
    ));
    drop(x);
    assert!(lock::list_locks(&w.repo, &t).unwrap().is_empty());
}

/// Writes a lock object as another host would have left it.
fn plant_lock(w: &World, kind: LockKind, host: &str, refreshed_ago: chrono::Duration) -> [u8; 32] {
    let now = chrono::Utc::now();
    let info = LockInfo {
        kind,
        host: host.into(),
        pid: 4242,
        username: "someone".into(),
        operation: "prune".into(),
        created: now - refreshed_ago - chrono::Duration::hours(1),
        refreshed: now - refreshed_ago,
        process_space: String::new(),
    };
    let mut id = [0u8; 32];
    arca_engine::format::crypto::random_bytes(&mut id);
    w.repo
        .backend()
        .put(
            &ObjectKey::of(LockId(id)),
            Bytes::from(info.to_object(w.repo.key())),
            PutMode::Create,
        )
        .unwrap();
    id
}

#[test]
fn stale_locks_do_not_block_and_unlock_removes_only_them() {
    let w = world();
    let t = timing(60_000, 600_000);
    let stale = plant_lock(
        &w,
        LockKind::Exclusive,
        "gone-host",
        chrono::Duration::hours(2),
    );
    let live = plant_lock(
        &w,
        LockKind::Exclusive,
        "busy-host",
        chrono::Duration::seconds(5),
    );
    // the live exclusive lock blocks, and is named
    let e = match Lock::acquire(&w.repo, LockKind::Shared, "backup", t) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("locked"),
    };
    assert!(e.contains("busy-host") && e.contains("pid 4242"), "{e}");
    assert!(!e.contains("gone-host"), "a stale lock does not block: {e}");
    // unlock removes only the stale one
    let r = lock::unlock(&w.repo, false, &t).unwrap();
    assert_eq!(r.removed.len(), 1);
    assert_eq!(r.removed[0].id.0, stale);
    assert!(r.removed[0].describe().contains("gone-host"));
    assert_eq!(r.kept.len(), 1);
    assert_eq!(r.kept[0].id.0, live);
    // with the live one gone, a stale one left behind is reported, not obeyed
    lock::unlock(&w.repo, true, &t).unwrap();
    plant_lock(
        &w,
        LockKind::Exclusive,
        "gone-host",
        chrono::Duration::hours(3),
    );
    let l = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    assert_eq!(l.stale_locks().len(), 1);
    assert!(l.stale_locks()[0].describe().contains("gone-host"));
}

#[test]
fn a_lock_is_refreshed_and_lost_when_removed_or_not_refreshed() {
    let w = world();
    let t = timing(50, 1_000);
    let l = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    let key = ObjectKey::of(l.id());
    let first = LockInfo::from_object(w.repo.key(), &w.repo.backend().get(&key).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let later = LockInfo::from_object(w.repo.key(), &w.repo.backend().get(&key).unwrap()).unwrap();
    assert!(
        later.refreshed > first.refreshed,
        "refreshed in the background"
    );
    assert_eq!(later.created, first.created);
    l.check().unwrap();
    // removed by someone else: lost at the next refresh, whenever the
    // removal lands in the refresher's round
    lock::remove_lock(&w.repo, l.id(), "unlock --remove-all").unwrap();
    let e = wait_lost(&l);
    assert!(
        matches!(e, Error::LockLost(_)) && e.to_string().contains("unlock --remove-all"),
        "{e}"
    );
    assert!(w.repo.backend().head(&key).unwrap_err().is_not_found());

    // the store refuses refreshes for longer than the expiry: lost
    let l = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    w.faulty.inject(Fault::PutError {
        kind: ObjectKind::Lock,
        nth: 0,
    });
    std::thread::sleep(Duration::from_millis(300));
    l.check().unwrap();
    let start = Instant::now();
    while l.check().is_ok() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = l.check().unwrap_err();
    assert!(e.to_string().contains("could not be refreshed"), "{e}");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

/// Waits (at most 5 s) until `l` reports its lock lost; returns why.
fn wait_lost(l: &Lock) -> Error {
    let start = Instant::now();
    while l.check().is_ok() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    l.check().expect_err("the lock is lost")
}

/// The race that a head before the put cannot see: another process removes
/// the lock after the refresher's head and before its put, which writes
/// the lock again. The removal notice makes the holder stop anyway, and
/// the lock it wrote again does not stay.
#[test]
fn a_lock_removed_between_the_refreshers_head_and_put_stays_removed() {
    let w = world();
    let t = timing(50, 1_000);
    let l = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    let id = l.id();
    let repo = w.repo.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    w.faulty.before(Arc::new(move |op, k: &ObjectKey| {
        if op == Op::Put && k.id::<LockId>() == Some(id) && !f.swap(true, SeqCst) {
            lock::remove_lock(&repo, id, "unlock --remove-all").unwrap();
        }
    }));
    let e = wait_lost(&l);
    assert!(fired.load(SeqCst), "the race was staged");
    assert!(
        matches!(e, Error::LockLost(_)) && e.to_string().contains("unlock --remove-all"),
        "{e}"
    );
    // the refresh that wrote it again took it back, and its notice
    let key = ObjectKey::of(id);
    assert!(w.repo.backend().head(&key).unwrap_err().is_not_found());
    assert!(lock::list_locks(&w.repo, &t).unwrap().is_empty());
    let notices = w.faulty.inner().list(ObjectKind::LockRemoval).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    // and another process can take an exclusive lock
    drop(l);
    Lock::acquire(&w.repo, LockKind::Exclusive, "repair index", t).unwrap();
}

/// A remover that stops after its notice and before its delete (a crash,
/// or a store that refuses the delete) still stops the holder, which takes
/// the lock with it on the way out.
#[test]
fn a_removal_cut_short_after_its_notice_still_stops_the_holder() {
    let w = world();
    let t = timing(50, 1_000);
    let l = Lock::acquire(&w.repo, LockKind::Shared, "backup", t).unwrap();
    w.faulty.inject(Fault::Transient {
        kind: ObjectKind::Lock,
        op: Op::Delete,
        tries: u32::MAX,
    });
    assert!(lock::remove_lock(&w.repo, l.id(), "unlock").is_err());
    let e = wait_lost(&l);
    assert!(e.to_string().contains("`unlock` by"), "{e}");
    w.faulty.heal();
    drop(l);
    let r = lock::unlock(&w.repo, true, &t).unwrap();
    assert!(r.removed.is_empty(), "its holder removed it on the way out");
    assert!(lock::list_locks(&w.repo, &t).unwrap().is_empty());
}

/// A removal notice outlives its lock while a holder could still be
/// refreshing; `unlock` deletes it once it is older than twice the
/// staleness.
#[test]
fn unlock_sweeps_only_old_removal_notices() {
    let w = world();
    let t = timing(50, 300);
    let stale = plant_lock(
        &w,
        LockKind::Shared,
        "gone-host",
        chrono::Duration::hours(3),
    );
    let r = lock::unlock(&w.repo, false, &t).unwrap();
    assert_eq!(r.removed.len(), 1);
    assert_eq!(r.notices_swept, 0, "a fresh notice stays");
    let notices = w.faulty.inner().list(ObjectKind::LockRemoval).unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].key.raw(), stale);
    std::thread::sleep(Duration::from_millis(650));
    let r = lock::unlock(&w.repo, false, &t).unwrap();
    assert!(r.removed.is_empty());
    assert_eq!(r.notices_swept, 1);
    assert!(
        w.faulty
            .inner()
            .list(ObjectKind::LockRemoval)
            .unwrap()
            .is_empty()
    );
}

/// A stream that pauses half-way until the lock is lost.
struct PauseUntilLost {
    sent: usize,
    total: usize,
    lock: arca_engine::store::lock::LockWatch,
}

impl Read for PauseUntilLost {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.sent >= self.total {
            return Ok(0);
        }
        if self.sent >= self.total / 2 {
            let start = Instant::now();
            while self.lock.check().is_ok() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let n = buf.len().min(self.total - self.sent).min(1 << 16);
        buf[..n].copy_from_slice(&noise(n, self.sent as u64)[..n]);
        self.sent += n;
        Ok(n)
    }
}

#[test]
fn a_backup_whose_lock_is_lost_stops_without_a_snapshot() {
    let w = world();
    let t = timing(50, 2_000);
    let session = Opened::new(w.repo.clone(), w.catalog())
        .unwrap()
        .with_lock_timing(t)
        .for_writing("backup")
        .unwrap();
    let watch = session.watch().unwrap();
    let id = lock::list_locks(&w.repo, &t).unwrap()[0].id;
    let repo = w.repo.clone();
    // another host's `unlock --remove-all` while the backup runs
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        lock::remove_lock(&repo, id, "unlock --remove-all").unwrap();
    });
    let o = BackupOptions::new(Source::reader(
        "db.dump",
        PauseUntilLost {
            sent: 0,
            total: 8 << 20,
            lock: watch.clone(),
        },
    ));
    let e = backup::backup(&session, o).unwrap_err();
    remover.join().unwrap();
    assert!(matches!(e, Error::LockLost(_)), "{e}");
    assert!(w.snapshot_ids().is_empty(), "nothing committed");
}
