//! The catalog: a local SQLite cache of the repository's index segments and
//! snapshot manifests.
//!
//! It answers "is this blob stored, and where" (dedup, restore planning)
//! and "which snapshots exist" (selection) without reading the repository.
//! It is never the only copy of anything: it lives in a per-repository
//! cache directory, and [`Catalog::sync`] brings it up to date from the
//! repository, reading only the segments and snapshots it has not seen.
//! Delete it and the next command rebuilds it.
//!
//! Costs: a lookup is one B-tree probe (a few microseconds); a sync reads
//! each new segment once and inserts ~1 M entries in a few seconds.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::format::compress::Compression;
use crate::format::id::PruneId;
use crate::format::id::{BlobId, IndexId, PackId, RepoId, SnapshotId};
use crate::format::index::{IndexSegment, IndexedPack, superseded};
use crate::format::layout::ObjectId;
use crate::format::pack::{BlobKind, PackEntry};
use crate::format::prune::{Base, PruneRecord, PruneState};
use crate::format::snapshot::Snapshot;
use crate::store::blob_reader::BlobLocation;
use crate::store::repo::Repository;

/// Schema version of the cache; a different one is rebuilt, not migrated.
const SCHEMA: &str = "arca-catalog-3";

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Index segments read.
    pub segments_read: usize,
    /// Snapshots read.
    pub snapshots_read: usize,
    /// Whether the index part was rebuilt from scratch.
    pub rebuilt: bool,
    /// Objects that could not be loaded (damaged), for the user to see.
    pub warnings: Vec<String>,
}

/// Blob entries a sync keeps decoded at once (about 60 bytes each, so
/// some 30 MiB); the segments past it are read a second time.
const HELD_ENTRIES: usize = 1 << 19;

/// A segment as the sync loaded it: its packs are there only if `held`.
struct Loaded {
    id: IndexId,
    seg: IndexSegment,
    held: bool,
}

/// A segment that would not load: gone (skipped silently: it is no longer
/// listed next time) or damaged (named in the warnings); anything else
/// stops the sync.
fn skip_unloadable(e: Error, stats: &mut SyncStats) -> Result<()> {
    match e {
        e if e.is_not_found() => Ok(()),
        e @ Error::Damaged { .. } => {
            stats.warnings.push(e.to_string());
            Ok(())
        }
        e => Err(e),
    }
}

/// The catalog of one repository.
pub struct Catalog {
    /// Read-only connections for the hot lookups (`contains`, `lookup`),
    /// so that readers, the tree builder and the walker do not queue
    /// behind one mutex: on a backup of many small files they ask once per
    /// chunk. In WAL mode they see every committed write. Empty for an
    /// in-memory catalog, which uses `conn`. Declared before `conn` so
    /// that they close first: the last connection to close checkpoints
    /// the WAL into the database file, and only `conn` can write.
    readers: Vec<Mutex<Connection>>,
    conn: Mutex<Connection>,
    path: PathBuf,
    recreated: bool,
    /// The prune heads, as the last sync saw them (their condemned packs'
    /// entries are in the tables, not here).
    prune: Mutex<PruneState>,
    /// Prune records that did not load at the last sync.
    prune_damaged: Mutex<Vec<PruneId>>,
    /// Blob entries a sync keeps decoded ([`HELD_ENTRIES`]; tests lower it).
    held_entries: usize,
}

/// Read-only connections per catalog file.
const READERS: usize = 4;

impl Catalog {
    /// Opens (or creates) the catalog for `repo_id` under `cache_dir`.
    /// A file that is not a usable catalog is deleted and recreated.
    pub fn open(cache_dir: &Path, repo_id: &RepoId) -> Result<Self> {
        let dir = cache_dir.join(repo_id.to_hex());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = dir.join("catalog.sqlite");
        match Self::open_file(&path, repo_id) {
            Ok(c) => Ok(c),
            Err(_) => {
                // A cache that does not open is rebuilt, never trusted.
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = std::fs::remove_file(p);
                }
                let mut c = Self::open_file(&path, repo_id)?;
                c.recreated = true;
                Ok(c)
            }
        }
    }

    /// A catalog that lives only in memory (nothing is cached on disk).
    pub fn in_memory(repo_id: &RepoId) -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| cat_err(Path::new(":memory:"), e))?;
        let c = Self {
            conn: Mutex::new(conn),
            readers: vec![],
            path: PathBuf::from(":memory:"),
            recreated: false,
            prune: Mutex::new(PruneState::default()),
            prune_damaged: Mutex::new(vec![]),
            held_entries: HELD_ENTRIES,
        };
        c.init_schema(repo_id)?;
        c.load_prune_state()?;
        Ok(c)
    }

    fn open_file(path: &Path, repo_id: &RepoId) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| cat_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| cat_err(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| cat_err(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| cat_err(path, e))?;
        // A file that is not a database fails here rather than later.
        let ok: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| cat_err(path, e))?;
        if ok != "ok" {
            return Err(catalog_damaged(path, "database page"));
        }
        let mut c = Self {
            conn: Mutex::new(conn),
            readers: vec![],
            path: path.to_path_buf(),
            recreated: false,
            prune: Mutex::new(PruneState::default()),
            prune_damaged: Mutex::new(vec![]),
            held_entries: HELD_ENTRIES,
        };
        c.recreated = c.init_schema(repo_id)?;
        c.load_prune_state()?;
        // after the schema exists, so that a read-only open sees it
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| cat_err(path, e))?;
            r.busy_timeout(std::time::Duration::from_secs(60))
                .map_err(|e| cat_err(path, e))?;
            c.readers.push(Mutex::new(r));
        }
        Ok(c)
    }

    /// Runs `f` on a free read-only connection (the main one when there
    /// are none, or all are busy).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        for r in &self.readers {
            if let Ok(c) = r.try_lock() {
                return f(&c);
            }
        }
        match self.readers.first() {
            Some(r) => f(&r.lock().unwrap()),
            None => f(&self.conn.lock().unwrap()),
        }
    }

    /// Creates the tables; clears them if they belong to another repository
    /// or schema. Returns whether an existing catalog was cleared.
    fn init_schema(&self, repo_id: &RepoId) -> Result<bool> {
        let conn = self.conn.lock().unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(|e| cat_err(&self.path, e))?;
        let get = |k: &str| -> Result<Option<String>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(|e| cat_err(&self.path, e))
        };
        let schema = get("schema")?;
        let repo = get("repository")?;
        let mismatch = schema.is_some()
            && (schema.as_deref() != Some(SCHEMA) || repo.as_deref() != Some(&repo_id.to_hex()));
        if schema.as_deref() != Some(SCHEMA) || repo.as_deref() != Some(&repo_id.to_hex()) {
            // another schema or repository: start over (a cache is rebuilt,
            // never migrated)
            conn.execute_batch(
                "DROP TABLE IF EXISTS segments; DROP TABLE IF EXISTS packs;
                 DROP TABLE IF EXISTS blobs; DROP TABLE IF EXISTS snapshots;
                 DROP TABLE IF EXISTS prune; DROP TABLE IF EXISTS condemned;",
            )
            .map_err(|e| cat_err(&self.path, e))?;
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1), ('repository', ?2)",
                params![SCHEMA, repo_id.to_hex()],
            )
            .map_err(|e| cat_err(&self.path, e))?;
        }
        // `live` is whether a blob row may be deduplicated against: 0 for
        // the entries of packs a prune condemned (still readable).
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS segments(id BLOB PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS packs(pk INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
                 size INTEGER NOT NULL, kind INTEGER NOT NULL, live INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS blobs(id BLOB NOT NULL, pack INTEGER NOT NULL,
                 kind INTEGER NOT NULL, compression INTEGER NOT NULL, offset INTEGER NOT NULL,
                 length INTEGER NOT NULL, raw_length INTEGER NOT NULL, live INTEGER NOT NULL,
                 PRIMARY KEY(id, pack)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS snapshots(id BLOB PRIMARY KEY, time INTEGER NOT NULL,
                 json TEXT NOT NULL, valid INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS prune(id BLOB PRIMARY KEY, json TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS condemned(record BLOB NOT NULL, pack BLOB NOT NULL,
                 size INTEGER NOT NULL, entries BLOB NOT NULL,
                 PRIMARY KEY(record, pack)) WITHOUT ROWID;",
        )
        .map_err(|e| cat_err(&self.path, e))?;
        Ok(mismatch)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether opening found an unusable file and started over.
    pub fn recreated(&self) -> bool {
        self.recreated
    }

    /// Forgets the index and reads it from the repository again.
    ///
    /// Only the index part and the prune records (with the headers of the
    /// packs they condemn) are read again: snapshot manifests are immutable
    /// and were authenticated when they were cached, and a cached copy may
    /// be the only intact one left of a manifest that was damaged in the
    /// repository since (`repair snapshots` writes it again from here).
    /// Manifests that are no longer listed are dropped by the sync.
    pub fn rebuild(&self, repo: &Repository) -> Result<SyncStats> {
        self.clear_index()?;
        // the prune records too, so that the headers of the packs they
        // condemn are read again (one may have gone since)
        self.conn
            .lock()
            .unwrap()
            .execute_batch("DELETE FROM prune; DELETE FROM condemned;")
            .map_err(|e| cat_err(&self.path, e))?;
        self.load_prune_state()?;
        let mut s = self.sync(repo)?;
        s.rebuilt = true;
        Ok(s)
    }

    /// Calls `f` with every live (blob, pack, entry) row, for comparison
    /// with the repository, until it returns false. Memory: one row.
    pub fn each_blob_location(
        &self,
        f: &mut dyn FnMut(BlobId, PackId, PackEntry) -> bool,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare(
                "SELECT b.id, p.id, b.kind, b.compression, b.offset, b.length, b.raw_length
                 FROM blobs b JOIN packs p ON p.pk = b.pack WHERE b.live = 1",
            )
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, u8>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, u32>(6)?,
                ))
            })
            .map_err(|e| cat_err(&self.path, e))?;
        for r in rows {
            let (b, p, kind, comp, offset, length, raw_length) =
                r.map_err(|e| cat_err(&self.path, e))?;
            let bad = || catalog_damaged(&self.path, "blob row");
            let id = BlobId::from_slice(&b).ok_or_else(bad)?;
            let more = f(
                id,
                PackId::from_slice(&p).ok_or_else(bad)?,
                PackEntry {
                    kind: BlobKind::from_byte(kind).ok_or_else(bad)?,
                    compression: Compression::from_byte(comp).ok_or_else(bad)?,
                    id,
                    offset: u64::try_from(offset).map_err(|_| bad())?,
                    length,
                    raw_length,
                },
            );
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Brings the catalog up to date with the repository's `prune/`,
    /// `index/` and `snapshots/`, reading only objects it has not seen.
    ///
    /// Prune records come first (a record's index segments are written
    /// before it, so a catalog that has a record has its segments). The
    /// heads' marks win over every segment: a pack they condemn is kept
    /// readable but not live (never deduplicated against), a pack they
    /// delete is neither; a segment a head supersedes, or whose writer's
    /// base a head's sweep voids, adds nothing; a snapshot a sweep voids
    /// is hidden. When the records change, or a segment it knew has
    /// disappeared, or a new segment supersedes others (repair, prune), the
    /// index part is rebuilt from every listed segment. Objects that fail
    /// to load are skipped and named in the returned warnings (`check`
    /// reports them as damage); they are tried again on the next sync.
    pub fn sync(&self, repo: &Repository) -> Result<SyncStats> {
        let mut stats = SyncStats::default();
        let prune_changed = self.sync_prune(repo, &mut stats)?;
        let state = self.prune_state();
        let head_supersedes = state.superseded_segments();
        let listed: HashSet<IndexId> = self
            .list_confirmed::<IndexId>(repo, "segments", &mut stats)?
            .into_iter()
            .collect();
        let known: HashSet<IndexId> = self
            .known_ids("segments")?
            .into_iter()
            .map(IndexId)
            .collect();
        let mut new: Vec<IndexId> = listed.difference(&known).copied().collect();
        new.sort();
        let budget = AtomicUsize::new(self.held_entries);
        let mut loaded = self.load_segments(repo, &new, &budget, &mut stats)?;
        let supersedes = superseded(loaded.iter().map(|l| &l.seg));
        let rebuild = prune_changed
            || !known.is_subset(&listed)
            || supersedes
                .iter()
                .any(|id| known.contains(id) || listed.contains(id));
        if rebuild {
            self.clear_index()?;
            stats.rebuilt = true;
            let rest: Vec<IndexId> = known.intersection(&listed).copied().collect();
            loaded.extend(self.load_segments(repo, &rest, &budget, &mut stats)?);
        }
        let mut gone = superseded(loaded.iter().map(|l| &l.seg));
        gone.extend(head_supersedes);
        let marked = state.marked_packs();
        let mut reload = vec![];
        for l in &loaded {
            let counts = !gone.contains(&l.id) && state.base_valid(&l.seg.base);
            if counts && !l.held {
                reload.push(l.id);
            } else {
                self.add_segment_marked(&l.id, &l.seg, counts, &marked)?;
            }
        }
        drop(loaded);
        self.reload_segments(repo, &reload, &marked, &mut stats)?;
        if rebuild {
            self.add_condemned()?;
        }

        let listed: HashSet<SnapshotId> = self
            .list_confirmed::<SnapshotId>(repo, "snapshots", &mut stats)?
            .into_iter()
            .collect();
        let known: HashSet<SnapshotId> = self
            .known_ids("snapshots")?
            .into_iter()
            .map(SnapshotId)
            .collect();
        {
            let conn = self.conn.lock().unwrap();
            for gone in known.difference(&listed) {
                conn.execute("DELETE FROM snapshots WHERE id = ?1", [&gone.0[..]])
                    .map_err(|e| cat_err(&self.path, e))?;
            }
        }
        let new: Vec<SnapshotId> = listed.difference(&known).copied().collect();
        let results: Vec<(SnapshotId, Result<Snapshot>)> = new
            .par_iter()
            .map(|id| (*id, repo.load_snapshot(id)))
            .collect();
        for (id, r) in results {
            match r {
                Ok(s) => {
                    self.add_snapshot(&id, &s)?;
                    stats.snapshots_read += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) if matches!(e, Error::Damaged { .. }) => stats.warnings.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        if prune_changed {
            self.revalidate_snapshots()?;
        }
        Ok(stats)
    }

    /// Reads the prune records it has not seen and forgets those no longer
    /// listed. Returns whether the set changed.
    fn sync_prune(&self, repo: &Repository, stats: &mut SyncStats) -> Result<bool> {
        let listed: HashSet<PruneId> = self
            .list_confirmed::<PruneId>(repo, "prune", stats)?
            .into_iter()
            .collect();
        let known: HashSet<PruneId> = self.known_ids("prune")?.into_iter().map(PruneId).collect();
        let mut changed = false;
        {
            let conn = self.conn.lock().unwrap();
            for gone in known.difference(&listed) {
                conn.execute("DELETE FROM prune WHERE id = ?1", [&gone.0[..]])
                    .map_err(|e| cat_err(&self.path, e))?;
                conn.execute("DELETE FROM condemned WHERE record = ?1", [&gone.0[..]])
                    .map_err(|e| cat_err(&self.path, e))?;
                changed = true;
            }
        }
        let mut damaged = vec![];
        for id in listed.difference(&known) {
            match repo.load_prune(id) {
                Ok(r) => {
                    self.add_condemned_headers(repo, id, &r, stats)?;
                    let json = serde_json::to_string(&r.info).expect("record serializes");
                    self.conn
                        .lock()
                        .unwrap()
                        .execute(
                            "INSERT OR REPLACE INTO prune(id, json) VALUES (?1, ?2)",
                            params![&id.0[..], json],
                        )
                        .map_err(|e| cat_err(&self.path, e))?;
                    changed = true;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) if e.is_damage() => {
                    stats.warnings.push(e.to_string());
                    damaged.push(*id);
                }
                Err(e) => return Err(e),
            }
        }
        *self.prune_damaged.lock().unwrap() = damaged;
        if changed {
            self.load_prune_state()?;
        }
        Ok(changed)
    }

    /// Reads the headers of the packs record `id` condemns into the
    /// `condemned` table (a few packs at a time: memory holds one batch of
    /// headers, not the record's blobs). A pack already deleted (the next
    /// generation swept it) is skipped; one whose header does not read is
    /// named in the warnings (`check` reports it).
    fn add_condemned_headers(
        &self,
        repo: &Repository,
        id: &PruneId,
        r: &PruneRecord,
        stats: &mut SyncStats,
    ) -> Result<()> {
        for batch in r.info.condemned.chunks(16) {
            let read: Vec<(PackId, u64, Result<Vec<PackEntry>>)> = batch
                .par_iter()
                .map(|(p, size)| (*p, *size, repo.read_pack_header(p, *size)))
                .collect();
            let conn = self.conn.lock().unwrap();
            for (pack, size, entries) in read {
                match entries {
                    Ok(entries) => {
                        let one = IndexSegment {
                            packs: vec![IndexedPack {
                                id: pack,
                                size,
                                entries,
                            }],
                            ..Default::default()
                        };
                        conn.execute(
                            "INSERT OR REPLACE INTO condemned(record, pack, size, entries)
                             VALUES (?1, ?2, ?3, ?4)",
                            params![&id.0[..], &pack.0[..], size as i64, one.encode_plain()],
                        )
                        .map_err(|e| cat_err(&self.path, e))?;
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) if e.is_damage() => stats.warnings.push(format!(
                        "{e} (a pack prune record {} condemned)",
                        id.short()
                    )),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Rebuilds the in-memory prune state from the `prune` table (the
    /// condemned packs' entries stay in the tables).
    fn load_prune_state(&self) -> Result<()> {
        let records = {
            let conn = self.conn.lock().unwrap();
            let mut st = conn
                .prepare("SELECT id, json FROM prune")
                .map_err(|e| cat_err(&self.path, e))?;
            let rows = st
                .query_map([], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| cat_err(&self.path, e))?;
            let mut out = vec![];
            for r in rows {
                let (id, json) = r.map_err(|e| cat_err(&self.path, e))?;
                let bad = || catalog_damaged(&self.path, "prune record");
                let id = PruneId::from_slice(&id).ok_or_else(bad)?;
                let info = serde_json::from_str(&json).map_err(|_| bad())?;
                out.push((id, PruneRecord { info }));
            }
            out
        };
        *self.prune.lock().unwrap() = PruneState::from_records(records);
        Ok(())
    }

    /// Adds the heads' condemned packs as readable, not live, one pack at
    /// a time.
    fn add_condemned(&self) -> Result<()> {
        let state = self.prune_state();
        for (id, _) in &state.heads {
            let packs: Vec<Vec<u8>> = {
                let conn = self.conn.lock().unwrap();
                let mut st = conn
                    .prepare("SELECT pack FROM condemned WHERE record = ?1")
                    .map_err(|e| cat_err(&self.path, e))?;
                st.query_map([&id.0[..]], |r| r.get::<_, Vec<u8>>(0))
                    .map_err(|e| cat_err(&self.path, e))?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(|e| cat_err(&self.path, e))?
            };
            for pack in packs {
                let plain: Vec<u8> = self
                    .conn
                    .lock()
                    .unwrap()
                    .query_row(
                        "SELECT entries FROM condemned WHERE record = ?1 AND pack = ?2",
                        params![&id.0[..], &pack[..]],
                        |r| r.get(0),
                    )
                    .map_err(|e| cat_err(&self.path, e))?;
                let seg = IndexSegment::decode_plain(&plain)
                    .map_err(|_| catalog_damaged(&self.path, "condemned pack"))?;
                self.insert_packs(&seg, false, &HashSet::new())?;
            }
        }
        Ok(())
    }

    /// Recomputes which snapshots are valid under the prune heads.
    fn revalidate_snapshots(&self) -> Result<()> {
        let state = self.prune_state();
        let all = self.all_snapshots()?;
        let conn = self.conn.lock().unwrap();
        for (id, s, _) in all {
            conn.execute(
                "UPDATE snapshots SET valid = ?2 WHERE id = ?1",
                params![&id.0[..], state.snapshot_valid(&id, &s.base) as i64],
            )
            .map_err(|e| cat_err(&self.path, e))?;
        }
        Ok(())
    }

    /// The prune heads as the last sync saw them.
    pub fn prune_state(&self) -> PruneState {
        self.prune.lock().unwrap().clone()
    }

    /// The base a writer starting now records (see `format::prune`).
    pub fn base(&self) -> Base {
        self.prune.lock().unwrap().base()
    }

    /// Prune records that did not load at the last sync: a writer must not
    /// go on (they may hide marks), a reader may.
    pub fn prune_damaged(&self) -> Vec<PruneId> {
        self.prune_damaged.lock().unwrap().clone()
    }

    /// Loads segments in parallel, skipping damaged ones with a warning.
    /// A segment keeps its packs only while `budget` (blob entries) lasts;
    /// past it only what decides whether a segment counts is kept
    /// (`supersedes`, `base`) and `held` is false: the caller loads it
    /// again with [`Self::reload_segments`] if it counts. So the memory is
    /// the budget plus one decoded segment per thread, whatever the size
    /// of the index; the cost past the budget is a second read.
    fn load_segments(
        &self,
        repo: &Repository,
        ids: &[IndexId],
        budget: &AtomicUsize,
        stats: &mut SyncStats,
    ) -> Result<Vec<Loaded>> {
        let results: Vec<Result<Loaded>> = ids
            .par_iter()
            .map(|id| {
                repo.load_index(id).map(|mut seg| {
                    let n: usize = seg.packs.iter().map(|p| p.entries.len()).sum();
                    let held = budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(n))
                        .is_ok();
                    if !held {
                        seg.packs = vec![];
                    }
                    Loaded { id: *id, seg, held }
                })
            })
            .collect();
        let mut out = vec![];
        for r in results {
            match r {
                Ok(l) => {
                    stats.segments_read += 1;
                    out.push(l);
                }
                Err(e) => skip_unloadable(e, stats)?,
            }
        }
        Ok(out)
    }

    /// Loads the counting segments that [`Self::load_segments`] did not
    /// hold and records them, one decoded segment per thread at a time.
    /// One that has gone or is damaged since is skipped as there.
    fn reload_segments(
        &self,
        repo: &Repository,
        ids: &[IndexId],
        marked: &HashSet<PackId>,
        stats: &mut SyncStats,
    ) -> Result<()> {
        let warnings = Mutex::new(SyncStats::default());
        ids.par_iter()
            .try_for_each(|id| match repo.load_index(id) {
                Ok(seg) => self.add_segment_marked(id, &seg, true, marked),
                Err(e) => skip_unloadable(e, &mut warnings.lock().unwrap()),
            })?;
        stats
            .warnings
            .extend(warnings.into_inner().unwrap().warnings);
        Ok(())
    }

    /// Lists `kind`, and never lets a short listing look like a deletion:
    /// every object this catalog knows (in `table`) that the listing does
    /// not show is checked with `head`, and the ones that exist are added
    /// back (with a warning: the store's listing is incomplete). Only what
    /// `head` confirms gone counts as gone. Costs nothing extra when the
    /// listing shows everything known; one `head` per missing object
    /// otherwise (after prune, say).
    fn list_confirmed<I: ObjectId>(
        &self,
        repo: &Repository,
        table: &str,
        stats: &mut SyncStats,
    ) -> Result<Vec<I>> {
        let mut listed = repo.list::<I>()?;
        let shown: HashSet<I> = listed.iter().copied().collect();
        let missing: Vec<I> = self
            .known_ids(table)?
            .into_iter()
            .map(I::from_raw)
            .filter(|id| !shown.contains(id))
            .collect();
        let present: Vec<I> = missing
            .par_iter()
            .map(|id| match repo.backend().head(&id.key()) {
                Ok(_) => Ok(Some(*id)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        if !present.is_empty() {
            stats.warnings.push(format!(
                "the store's listing of {}/ left out {} object(s) that exist; they were kept (a short LIST page?)",
                I::KIND.prefix(),
                present.len()
            ));
            listed.extend(present);
        }
        Ok(listed)
    }

    fn known_ids(&self, table: &str) -> Result<Vec<[u8; 32]>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare(&format!("SELECT id FROM {table}"))
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| cat_err(&self.path, e))?;
        let mut out = vec![];
        for r in rows {
            let v = r.map_err(|e| cat_err(&self.path, e))?;
            if let Ok(a) = <[u8; 32]>::try_from(v.as_slice()) {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn clear_index(&self) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.execute_batch("DELETE FROM segments; DELETE FROM packs; DELETE FROM blobs;")
            .map_err(|e| cat_err(&self.path, e))
    }

    /// Records a segment this process wrote. Its packs are live unless a
    /// prune head marked them meanwhile (a prune may condemn the packs of
    /// a backup still running: marks win here too, or a later backup from
    /// this catalog would deduplicate against a pack about to go).
    pub fn add_segment(&self, id: &IndexId, seg: &IndexSegment) -> Result<()> {
        let marked = self.prune_state().marked_packs();
        self.add_segment_marked(id, seg, true, &marked)
    }

    /// Records a segment as known and, if it `counts` (not superseded, not
    /// void), its packs as live, except the `marked` ones (marks win).
    fn add_segment_marked(
        &self,
        id: &IndexId,
        seg: &IndexSegment,
        counts: bool,
        marked: &HashSet<PackId>,
    ) -> Result<()> {
        if counts {
            self.insert_packs(seg, true, marked)?;
        }
        self.conn
            .lock()
            .unwrap()
            .execute(
                "INSERT OR IGNORE INTO segments(id) VALUES (?1)",
                [&id.0[..]],
            )
            .map_err(|e| cat_err(&self.path, e))?;
        Ok(())
    }

    /// Inserts the packs of `seg` (but those in `skip`) and their blobs,
    /// live or only readable.
    fn insert_packs(&self, seg: &IndexSegment, live: bool, skip: &HashSet<PackId>) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(|e| cat_err(&self.path, e))?;
        {
            let mut pack_st = tx
                .prepare_cached(
                    "INSERT INTO packs(id, size, kind, live) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET size = excluded.size,
                         live = max(live, excluded.live) RETURNING pk",
                )
                .map_err(|e| cat_err(&self.path, e))?;
            let mut blob_st = tx
                .prepare_cached(
                    "INSERT INTO blobs(id, pack, kind, compression, offset, length, raw_length, live)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(id, pack) DO UPDATE SET live = max(live, excluded.live)",
                )
                .map_err(|e| cat_err(&self.path, e))?;
            for p in seg.packs.iter().filter(|p| !skip.contains(&p.id)) {
                let kind = p.entries.first().map_or(0, |e| e.kind as u8);
                let pk: i64 = pack_st
                    .query_row(
                        params![&p.id.0[..], p.size as i64, kind, live as i64],
                        |r| r.get(0),
                    )
                    .map_err(|e| cat_err(&self.path, e))?;
                for e in &p.entries {
                    blob_st
                        .execute(params![
                            &e.id.0[..],
                            pk,
                            e.kind as u8,
                            e.compression as u8,
                            e.offset as i64,
                            e.length,
                            e.raw_length,
                            live as i64
                        ])
                        .map_err(|e| cat_err(&self.path, e))?;
                }
            }
        }
        tx.commit().map_err(|e| cat_err(&self.path, e))
    }

    /// Records a snapshot manifest (and whether it is valid under the
    /// prune heads).
    pub fn add_snapshot(&self, id: &SnapshotId, s: &Snapshot) -> Result<()> {
        let json = serde_json::to_string(s).expect("snapshot serializes");
        let valid = self.prune.lock().unwrap().snapshot_valid(id, &s.base);
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO snapshots(id, time, json, valid) VALUES (?1, ?2, ?3, ?4)",
            params![
                &id.0[..],
                s.time.timestamp_nanos_opt().unwrap_or(i64::MAX),
                json,
                valid as i64
            ],
        )
        .map_err(|e| cat_err(&self.path, e))?;
        Ok(())
    }

    /// Forgets a snapshot (after it was deleted from the repository).
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.execute("DELETE FROM snapshots WHERE id = ?1", [&id.0[..]])
            .map_err(|e| cat_err(&self.path, e))?;
        Ok(())
    }

    /// Every valid snapshot, oldest first (a snapshot a prune's sweep
    /// voided is left out: it may refer to deleted packs).
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(self
            .all_snapshots()?
            .into_iter()
            .filter(|(_, _, valid)| *valid)
            .map(|(id, s, _)| (id, s))
            .collect())
    }

    /// Every snapshot, oldest first, with whether it is valid.
    pub fn all_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot, bool)>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare("SELECT id, json, valid FROM snapshots ORDER BY time, id")
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| cat_err(&self.path, e))?;
        let mut out = vec![];
        for r in rows {
            let (id, json, valid) = r.map_err(|e| cat_err(&self.path, e))?;
            let id = SnapshotId::from_slice(&id)
                .ok_or_else(|| catalog_damaged(&self.path, "snapshot id"))?;
            let s: Snapshot = serde_json::from_str(&json)
                .map_err(|_| catalog_damaged(&self.path, "snapshot JSON"))?;
            out.push((id, s, valid != 0));
        }
        Ok(out)
    }

    /// Every copy of a blob of `kind` that the index lists, in the order
    /// the packs were indexed. (A data blob and a tree blob may have the
    /// same id: ids are keyed hashes of plaintext.) One index probe.
    pub fn locations(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        self.read(|conn| self.locations_on(conn, kind, id))
    }

    fn locations_on(
        &self,
        conn: &Connection,
        kind: BlobKind,
        id: &BlobId,
    ) -> Result<Vec<BlobLocation>> {
        let mut st = conn
            .prepare_cached(
                "SELECT p.id, b.kind, b.compression, b.offset, b.length, b.raw_length, p.size
                 FROM blobs b JOIN packs p ON p.pk = b.pack WHERE b.id = ?1 AND b.kind = ?2
                 ORDER BY b.live DESC, b.pack",
            )
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map(params![&id.0[..], kind as u8], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(|e| cat_err(&self.path, e))?;
        let mut out = vec![];
        for r in rows {
            let (pack, kind, comp, offset, length, raw_length, size) =
                r.map_err(|e| cat_err(&self.path, e))?;
            let bad = || catalog_damaged(&self.path, "blob row");
            out.push(BlobLocation {
                pack: PackId::from_slice(&pack).ok_or_else(bad)?,
                pack_size: u64::try_from(size).map_err(|_| bad())?,
                entry: PackEntry {
                    kind: BlobKind::from_byte(kind).ok_or_else(bad)?,
                    compression: Compression::from_byte(comp).ok_or_else(bad)?,
                    id: *id,
                    offset: u64::try_from(offset).map_err(|_| bad())?,
                    length,
                    raw_length,
                },
            });
        }
        Ok(out)
    }

    /// Whether a blob of `kind` is stored in a live pack: what a backup may
    /// deduplicate against (never a pack a prune condemned).
    pub fn contains(&self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT 1 FROM blobs WHERE id = ?1 AND kind = ?2 AND live = 1 LIMIT 1",
                )
                .map_err(|e| cat_err(&self.path, e))?;
            st.exists(params![&id.0[..], kind as u8])
                .map_err(|e| cat_err(&self.path, e))
        })
    }

    /// Every pack the catalog indexes, live or condemned (readable), with
    /// its entries in pack order: `f(pack, size, live, entries)`, one pack
    /// at a time (memory: one pack's entries).
    pub fn each_pack(
        &self,
        f: &mut dyn FnMut(PackId, u64, bool, Vec<PackEntry>) -> Result<()>,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare(
                "SELECT p.id, p.size, p.live, b.kind, b.id, b.compression, b.offset, b.length,
                        b.raw_length
                 FROM packs p JOIN blobs b ON b.pack = p.pk ORDER BY p.pk, b.offset",
            )
            .map_err(|e| cat_err(&self.path, e))?;
        let mut rows = st.query([]).map_err(|e| cat_err(&self.path, e))?;
        let mut cur: Option<(PackId, u64, bool, Vec<PackEntry>)> = None;
        let bad = || catalog_damaged(&self.path, "blob row");
        while let Some(r) = rows.next().map_err(|e| cat_err(&self.path, e))? {
            let get = |i| r.get::<_, Vec<u8>>(i).map_err(|e| cat_err(&self.path, e));
            let num = |i| r.get::<_, i64>(i).map_err(|e| cat_err(&self.path, e));
            let pack = PackId::from_slice(&get(0)?).ok_or_else(bad)?;
            let id = BlobId::from_slice(&get(4)?).ok_or_else(bad)?;
            let entry = PackEntry {
                kind: BlobKind::from_byte(num(3)? as u8).ok_or_else(bad)?,
                compression: Compression::from_byte(num(5)? as u8).ok_or_else(bad)?,
                id,
                offset: num(6)? as u64,
                length: num(7)? as u32,
                raw_length: num(8)? as u32,
            };
            match cur.as_mut() {
                Some(c) if c.0 == pack => c.3.push(entry),
                _ => {
                    if let Some((p, size, live, entries)) = cur.take() {
                        f(p, size, live, entries)?;
                    }
                    cur = Some((pack, num(1)? as u64, num(2)? != 0, vec![entry]));
                }
            }
        }
        if let Some((p, size, live, entries)) = cur.take() {
            f(p, size, live, entries)?;
        }
        Ok(())
    }

    /// Every live pack the index knows, with its size.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare("SELECT id, size FROM packs WHERE live = 1 ORDER BY id")
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| cat_err(&self.path, e))?;
        let mut out = vec![];
        for r in rows {
            let (id, size) = r.map_err(|e| cat_err(&self.path, e))?;
            out.push((
                PackId::from_slice(&id).ok_or_else(|| catalog_damaged(&self.path, "pack id"))?,
                size as u64,
            ));
        }
        Ok(out)
    }

    /// Number of distinct blobs indexed.
    pub fn blob_count(&self) -> Result<u64> {
        let conn = self.conn.lock().unwrap();
        conn.query_row("SELECT COUNT(DISTINCT id) FROM blobs", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n as u64)
        .map_err(|e| cat_err(&self.path, e))
    }
}

fn cat_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Catalog {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn catalog_damaged(path: &Path, what: &str) -> Error {
    Error::Catalog {
        path: path.to_path_buf(),
        message: format!("a {what} is malformed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::IndexedPack;
    use crate::format::pack::PackEntry;

    fn segment(blob: BlobId) -> IndexSegment {
        IndexSegment {
            packs: vec![IndexedPack {
                id: PackId([7; 32]),
                size: 4096,
                entries: vec![PackEntry {
                    kind: BlobKind::Tree,
                    compression: Compression::None,
                    id: blob,
                    offset: 0,
                    length: 100,
                    raw_length: 60,
                }],
            }],
            supersedes: vec![],
            base: Default::default(),
        }
    }

    #[test]
    fn lookups_see_committed_writes_and_close_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let repo = RepoId([1; 32]);
        let blob = BlobId([9; 32]);
        {
            let c = Catalog::open(dir.path(), &repo).unwrap();
            // warm every read connection before the write
            for _ in 0..READERS {
                assert!(!c.contains(BlobKind::Tree, &blob).unwrap());
            }
            c.add_segment(&IndexId([2; 32]), &segment(blob)).unwrap();
            assert!(c.contains(BlobKind::Tree, &blob).unwrap());
            assert!(!c.contains(BlobKind::Data, &blob).unwrap());
            let loc = c.locations(BlobKind::Tree, &blob).unwrap()[0];
            assert_eq!((loc.pack, loc.pack_size), (PackId([7; 32]), 4096));
        }
        // the read-write connection closed last: the WAL is folded into
        // the database file, which a copy of the file alone then carries
        let db = dir.path().join(repo.to_hex()).join("catalog.sqlite");
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        assert!(!wal.exists(), "WAL left behind");
        let copy = tempfile::tempdir().unwrap();
        let to = copy.path().join(repo.to_hex());
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(&db, to.join("catalog.sqlite")).unwrap();
        let c = Catalog::open(copy.path(), &repo).unwrap();
        assert!(c.contains(BlobKind::Tree, &blob).unwrap());
    }

    /// A segment of `packs` packs of `per` data blobs each, ids from `seed`.
    fn big_segment(seed: u8, packs: usize, per: usize, supersedes: Vec<IndexId>) -> IndexSegment {
        IndexSegment {
            packs: (0..packs)
                .map(|p| IndexedPack {
                    id: PackId(*blake3::hash(&[seed, p as u8, 1]).as_bytes()),
                    size: 64 + 100 * per as u64 + 4096,
                    entries: (0..per)
                        .map(|b| PackEntry {
                            kind: BlobKind::Data,
                            compression: Compression::None,
                            id: BlobId(*blake3::hash(&[seed, p as u8, b as u8, 2]).as_bytes()),
                            offset: 64 + 100 * b as u64,
                            length: 100,
                            raw_length: 100 - crate::format::crypto::SEAL_OVERHEAD as u32,
                        })
                        .collect(),
                })
                .collect(),
            supersedes,
            base: Default::default(),
        }
    }

    /// The sync holds at most its budget of entries decoded and reads the
    /// rest again: whatever the budget, it ends with the same live index,
    /// and a superseded segment adds nothing in either case.
    #[test]
    fn sync_past_its_entry_budget_builds_the_same_index() {
        let repo = crate::store::repo::memory_repo(crate::format::config::DEFAULT_PACK_SIZE);
        let old = repo.save_index(&big_segment(1, 3, 20, vec![])).unwrap();
        for seed in 2..8 {
            repo.save_index(&big_segment(seed, 3, 20, vec![])).unwrap();
        }
        // replaces `old` with a copy of its first pack only
        let mut repl = big_segment(1, 1, 20, vec![old]);
        repl.packs[0].entries.truncate(10);
        repo.save_index(&repl).unwrap();

        let rows = |held: usize| {
            let mut c = Catalog::in_memory(&repo.config().id).unwrap();
            c.held_entries = held;
            let st = c.sync(&repo).unwrap();
            assert!(st.warnings.is_empty(), "{:?}", st.warnings);
            let mut v = vec![];
            c.each_blob_location(&mut |b, p, e| {
                v.push((b.0, p.0, e.offset));
                true
            })
            .unwrap();
            v.sort();
            v
        };
        let all = rows(HELD_ENTRIES);
        // 6 segments of 60 blobs, and 10 of the superseded one's 60
        assert_eq!(all.len(), 6 * 60 + 10);
        assert_eq!(rows(0), all);
        assert_eq!(rows(70), all);
    }
}
