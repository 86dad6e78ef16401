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

use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};

use crate::backend::ObjectKind;
use crate::compress::Compression;
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, PackId, RepoId, SnapshotId};
use crate::index::IndexSegment;
use crate::pack::{BlobKind, PackEntry};
use crate::repo::Repository;
use crate::snapshot::Snapshot;

/// Schema version of the cache; a different one is rebuilt, not migrated.
const SCHEMA: &str = "arca-catalog-1";

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Its entry in that pack.
    pub entry: PackEntry,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Index segments read.
    pub segments_read: usize,
    /// Snapshots read.
    pub snapshots_read: usize,
    /// Whether the index part was rebuilt from scratch.
    pub rebuilt: bool,
}

/// The catalog of one repository.
pub struct Catalog {
    conn: Mutex<Connection>,
    path: PathBuf,
}

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
                Self::open_file(&path, repo_id)
            }
        }
    }

    /// A catalog that lives only in memory (nothing is cached on disk).
    pub fn in_memory(repo_id: &RepoId) -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| cat_err(Path::new(":memory:"), e))?;
        let c = Self {
            conn: Mutex::new(conn),
            path: PathBuf::from(":memory:"),
        };
        c.init_schema(repo_id)?;
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
        let c = Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        c.init_schema(repo_id)?;
        Ok(c)
    }

    fn init_schema(&self, repo_id: &RepoId) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS segments(id BLOB PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS packs(pk INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
                 size INTEGER NOT NULL, kind INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS blobs(id BLOB NOT NULL, pack INTEGER NOT NULL,
                 kind INTEGER NOT NULL, compression INTEGER NOT NULL, offset INTEGER NOT NULL,
                 length INTEGER NOT NULL, raw_length INTEGER NOT NULL,
                 PRIMARY KEY(id, pack)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS snapshots(id BLOB PRIMARY KEY, time INTEGER NOT NULL,
                 json TEXT NOT NULL);",
        )
        .map_err(|e| cat_err(&self.path, e))?;
        let get = |k: &str| -> Result<Option<String>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()
                .map_err(|e| cat_err(&self.path, e))
        };
        let schema = get("schema")?;
        let repo = get("repository")?;
        if schema.as_deref() != Some(SCHEMA) || repo.as_deref() != Some(&repo_id.to_hex()) {
            conn.execute_batch(
                "DELETE FROM segments; DELETE FROM packs; DELETE FROM blobs; DELETE FROM snapshots;",
            )
            .map_err(|e| cat_err(&self.path, e))?;
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1), ('repository', ?2)",
                params![SCHEMA, repo_id.to_hex()],
            )
            .map_err(|e| cat_err(&self.path, e))?;
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings the catalog up to date with the repository's `index/` and
    /// `snapshots/`. Reads only objects it has not seen; if a segment it
    /// knew has disappeared (prune, repair), the index part is rebuilt.
    pub fn sync(&self, repo: &Repository) -> Result<SyncStats> {
        let mut stats = SyncStats::default();
        let listed: HashSet<IndexId> = repo
            .list_ids(ObjectKind::Index)?
            .into_iter()
            .map(IndexId)
            .collect();
        let known: HashSet<IndexId> = self.known_ids("segments")?.into_iter().map(IndexId).collect();
        let mut to_read: Vec<IndexId> = if known.is_subset(&listed) {
            listed.difference(&known).copied().collect()
        } else {
            self.clear_index()?;
            stats.rebuilt = true;
            listed.iter().copied().collect()
        };
        to_read.sort();
        // Decrypting and decompressing runs in parallel, in batches so that
        // memory stays bounded; inserting is one transaction per batch.
        for batch in to_read.chunks(64) {
            let segs: Vec<(IndexId, IndexSegment)> = batch
                .par_iter()
                .map(|id| repo.load_index(id).map(|s| (*id, s)))
                .collect::<Result<_>>()?;
            for (id, seg) in &segs {
                self.add_segment(id, seg)?;
            }
            stats.segments_read += segs.len();
        }

        let listed: HashSet<SnapshotId> = repo
            .list_ids(ObjectKind::Snapshot)?
            .into_iter()
            .map(SnapshotId)
            .collect();
        let known: HashSet<SnapshotId> =
            self.known_ids("snapshots")?.into_iter().map(SnapshotId).collect();
        {
            let conn = self.conn.lock().unwrap();
            for gone in known.difference(&listed) {
                conn.execute("DELETE FROM snapshots WHERE id = ?1", [&gone.0[..]])
                    .map_err(|e| cat_err(&self.path, e))?;
            }
        }
        let new: Vec<SnapshotId> = listed.difference(&known).copied().collect();
        let loaded: Vec<(SnapshotId, Snapshot)> = new
            .par_iter()
            .map(|id| repo.load_snapshot(id).map(|s| (*id, s)))
            .collect::<Result<_>>()?;
        for (id, s) in &loaded {
            self.add_snapshot(id, s)?;
        }
        stats.snapshots_read = loaded.len();
        Ok(stats)
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

    /// Records a segment's packs and blobs (after it was read or written).
    pub fn add_segment(&self, id: &IndexId, seg: &IndexSegment) -> Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().map_err(|e| cat_err(&self.path, e))?;
        {
            let mut pack_st = tx
                .prepare_cached(
                    "INSERT INTO packs(id, size, kind) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET size = excluded.size RETURNING pk",
                )
                .map_err(|e| cat_err(&self.path, e))?;
            let mut blob_st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO blobs(id, pack, kind, compression, offset, length, raw_length)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| cat_err(&self.path, e))?;
            for p in &seg.packs {
                let kind = p.entries.first().map_or(0, |e| e.kind as u8);
                let pk: i64 = pack_st
                    .query_row(params![&p.id.0[..], p.size as i64, kind], |r| r.get(0))
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
                            e.raw_length
                        ])
                        .map_err(|e| cat_err(&self.path, e))?;
                }
            }
            tx.execute("INSERT OR IGNORE INTO segments(id) VALUES (?1)", [&id.0[..]])
                .map_err(|e| cat_err(&self.path, e))?;
        }
        tx.commit().map_err(|e| cat_err(&self.path, e))
    }

    /// Records a snapshot manifest.
    pub fn add_snapshot(&self, id: &SnapshotId, s: &Snapshot) -> Result<()> {
        let json = serde_json::to_string(s).expect("snapshot serializes");
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO snapshots(id, time, json) VALUES (?1, ?2, ?3)",
            params![
                &id.0[..],
                s.time.timestamp_nanos_opt().unwrap_or(i64::MAX),
                json
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

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare("SELECT id, json FROM snapshots ORDER BY time, id")
            .map_err(|e| cat_err(&self.path, e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| cat_err(&self.path, e))?;
        let mut out = vec![];
        for r in rows {
            let (id, json) = r.map_err(|e| cat_err(&self.path, e))?;
            let id = SnapshotId::from_slice(&id)
                .ok_or_else(|| catalog_damaged(&self.path, "snapshot id"))?;
            let s: Snapshot = serde_json::from_str(&json)
                .map_err(|_| catalog_damaged(&self.path, "snapshot JSON"))?;
            out.push((id, s));
        }
        Ok(out)
    }

    /// Where a blob is stored, if anywhere.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached(
                "SELECT p.id, b.kind, b.compression, b.offset, b.length, b.raw_length
                 FROM blobs b JOIN packs p ON p.pk = b.pack WHERE b.id = ?1 LIMIT 1",
            )
            .map_err(|e| cat_err(&self.path, e))?;
        st.query_row([&id.0[..]], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, u8>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, u32>(5)?,
            ))
        })
        .optional()
        .map_err(|e| cat_err(&self.path, e))?
        .map(|(pack, kind, comp, offset, length, raw_length)| {
            let bad = || catalog_damaged(&self.path, "blob row");
            Ok(BlobLocation {
                pack: PackId::from_slice(&pack).ok_or_else(bad)?,
                entry: PackEntry {
                    kind: BlobKind::from_byte(kind).ok_or_else(bad)?,
                    compression: Compression::from_byte(comp).ok_or_else(bad)?,
                    id: *id,
                    offset: u64::try_from(offset).map_err(|_| bad())?,
                    length,
                    raw_length,
                },
            })
        })
        .transpose()
    }

    /// Whether a blob is stored.
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1 LIMIT 1")
            .map_err(|e| cat_err(&self.path, e))?;
        st.exists([&id.0[..]]).map_err(|e| cat_err(&self.path, e))
    }

    /// Every pack the index knows, with its size.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare("SELECT id, size FROM packs ORDER BY id")
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
        conn.query_row("SELECT COUNT(DISTINCT id) FROM blobs", [], |r| r.get::<_, i64>(0))
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
