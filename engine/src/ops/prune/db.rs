//! Prune's working set, on disk: every copy of every blob prune may read
//! from (the packs the catalog indexes, live or condemned, and the packs
//! it adopts from their headers), the set of blobs valid snapshots use, and
//! each pack's fate. A scratch SQLite file beside the catalog, deleted when
//! dropped, so that prune's memory does not grow with the number of blobs
//! (what grows is this file, about 100 bytes per blob copy).
//!
//! It is also a [`Locator`]: the walk of the snapshots reads trees through
//! it, so that a tree in an adopted pack is found too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::format::compress::Compression;
use crate::format::id::{BlobId, PackId};
use crate::format::pack::{BlobKind, PackEntry};
use crate::store::blob_reader::{BlobLocation, Locator};

/// Where a pack comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum Origin {
    /// Live in the index.
    Live = 0,
    /// In the store but in no counting segment: indexed from its header.
    Adopted = 1,
    /// Condemned by the head record: deleted by this run's sweep.
    Pending = 2,
}

/// What happens to a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(i64)]
pub enum Fate {
    /// Stays live.
    Keep = 0,
    /// Holds nothing used: condemned now, deleted by the next generation.
    Condemn = 1,
    /// Too little of it is used: its used blobs are copied, then it is condemned.
    Repack = 2,
    /// Condemned by the head: deleted now (used blobs copied first).
    Delete = 3,
}

impl Fate {
    fn from_i64(v: i64) -> Fate {
        match v {
            1 => Fate::Condemn,
            2 => Fate::Repack,
            3 => Fate::Delete,
            _ => Fate::Keep,
        }
    }
}

/// A pack's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PackUse {
    /// The pack.
    pub pack: PackId,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes of its blobs that valid snapshots use.
    pub used: u64,
    /// Bytes of its blobs.
    pub blobs: u64,
    /// How it is known.
    #[serde(skip)]
    pub origin: Origin,
    /// What happens to it.
    pub fate: Fate,
}

/// The scratch database.
pub struct PlanDb {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Catalog {
        path: PathBuf::from("prune's working set"),
        message: e.to_string(),
    }
}

impl PlanDb {
    /// A new working set in a scratch file under `dir` (or in memory when
    /// `dir` is `None`: tests and `--no-cache`).
    pub fn create(dir: Option<&Path>) -> Result<Self> {
        let (conn, path) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
                // the working sets of runs that crashed (one prune per
                // repository runs at a time; an open file unlinked here
                // stays readable to a run stalled past its lock)
                if let Ok(entries) = std::fs::read_dir(d) {
                    for e in entries.flatten() {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        if name.starts_with("prune-") && name.ends_with(".sqlite") {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
                let mut r = [0u8; 8];
                crate::format::crypto::random_bytes(&mut r);
                let p = d.join(format!("prune-{}.sqlite", hex::encode(r)));
                (Connection::open(&p).map_err(db_err)?, Some(p))
            }
            None => (Connection::open_in_memory().map_err(db_err)?, None),
        };
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536;
             PRAGMA temp_store = FILE;
             CREATE TABLE src(pack BLOB NOT NULL, kind INTEGER NOT NULL, id BLOB NOT NULL,
                 compression INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL,
                 raw_length INTEGER NOT NULL, PRIMARY KEY(pack, offset)) WITHOUT ROWID;
             CREATE TABLE pack(pack BLOB PRIMARY KEY, size INTEGER NOT NULL,
                 origin INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0,
                 blobs INTEGER NOT NULL DEFAULT 0, fate INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
             CREATE TABLE used(id BLOB NOT NULL, kind INTEGER NOT NULL,
                 PRIMARY KEY(id, kind)) WITHOUT ROWID;",
        )
        .map_err(db_err)?;
        // one transaction for the life of the working set (it is never
        // committed: the file is scratch): pages are written only when the
        // cache spills, not at every statement
        conn.execute_batch("BEGIN").map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// Adds a pack and its entries as a source.
    pub fn add_pack(
        &self,
        pack: &PackId,
        size: u64,
        origin: Origin,
        entries: &[PackEntry],
    ) -> Result<()> {
        let tx = self.conn.lock().unwrap();
        tx.execute(
            "INSERT INTO pack(pack, size, origin) VALUES (?1, ?2, ?3)
             ON CONFLICT(pack) DO UPDATE SET origin = max(origin, excluded.origin)",
            params![&pack.0[..], size as i64, origin as i64],
        )
        .map_err(db_err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO src(pack, kind, id, compression, offset, length, raw_length)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(db_err)?;
            for e in entries {
                st.execute(params![
                    &pack.0[..],
                    e.kind as u8,
                    &e.id.0[..],
                    e.compression as u8,
                    e.offset as i64,
                    e.length,
                    e.raw_length
                ])
                .map_err(db_err)?;
            }
        }
        Ok(())
    }

    /// Indexes the sources by blob: called once, after every pack was
    /// added and before any lookup by blob (one sort of every copy is much
    /// cheaper than keeping an index of random keys up to date).
    pub fn index_sources(&self) -> Result<()> {
        self.conn
            .lock()
            .unwrap()
            .execute_batch("CREATE INDEX src_blob ON src(id, kind);")
            .map_err(db_err)
    }

    /// Whether a pack is known.
    pub fn has_pack(&self, pack: &PackId) -> Result<bool> {
        let conn = self.conn.lock().unwrap();
        conn.prepare_cached("SELECT 1 FROM pack WHERE pack = ?1")
            .map_err(db_err)?
            .exists([&pack.0[..]])
            .map_err(db_err)
    }

    /// Marks a blob used; returns whether it was new (a tree seen before
    /// need not be walked again).
    pub fn mark_used(&self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        let conn = self.conn.lock().unwrap();
        let n = conn
            .prepare_cached("INSERT OR IGNORE INTO used(id, kind) VALUES (?1, ?2)")
            .map_err(db_err)?
            .execute(params![&id.0[..], kind as u8])
            .map_err(db_err)?;
        Ok(n > 0)
    }

    /// Marks many data blobs used.
    pub fn mark_data_used(&self, ids: &[BlobId]) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached("INSERT OR IGNORE INTO used(id, kind) VALUES (?1, ?2)")
            .map_err(db_err)?;
        for id in ids {
            st.execute(params![&id.0[..], BlobKind::Data as u8])
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// A used blob that has no copy anywhere, if there is one.
    pub fn missing(&self) -> Result<Option<(BlobKind, BlobId)>> {
        let conn = self.conn.lock().unwrap();
        let r: Option<(Vec<u8>, u8)> = conn
            .query_row(
                "SELECT u.id, u.kind FROM used u WHERE NOT EXISTS
                     (SELECT 1 FROM src s WHERE s.id = u.id AND s.kind = u.kind) LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)?;
        Ok(r.and_then(|(id, k)| Some((BlobKind::from_byte(k)?, BlobId::from_slice(&id)?))))
    }

    /// Computes every pack's used and total blob bytes.
    pub fn tally(&self) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.execute_batch(
            "UPDATE pack SET
                 blobs = coalesce((SELECT sum(length) FROM src WHERE src.pack = pack.pack), 0),
                 used = coalesce((SELECT sum(s.length) FROM src s JOIN used u
                     ON u.id = s.id AND u.kind = s.kind WHERE s.pack = pack.pack), 0);",
        )
        .map_err(db_err)
    }

    /// Every pack with its figures, by pack id.
    pub fn packs(&self) -> Result<Vec<PackUse>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare("SELECT pack, size, used, blobs, origin, fate FROM pack ORDER BY pack")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = vec![];
        for r in rows {
            let (p, size, used, blobs, origin, fate) = r.map_err(db_err)?;
            out.push(PackUse {
                pack: PackId::from_slice(&p)
                    .ok_or_else(|| db_err(rusqlite::Error::InvalidQuery))?,
                size: size as u64,
                used: used as u64,
                blobs: blobs as u64,
                origin: match origin {
                    1 => Origin::Adopted,
                    2 => Origin::Pending,
                    _ => Origin::Live,
                },
                fate: Fate::from_i64(fate),
            });
        }
        Ok(out)
    }

    /// Sets a pack's fate.
    pub fn set_fate(&self, pack: &PackId, fate: Fate) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.prepare_cached("UPDATE pack SET fate = ?2 WHERE pack = ?1")
            .map_err(db_err)?
            .execute(params![&pack.0[..], fate as i64])
            .map_err(db_err)?;
        Ok(())
    }

    /// The used blobs that no kept pack holds, each with one copy to read
    /// it from (a pack to be deleted or repacked), ordered by pack and
    /// offset so that neighbours are read together. `f` is called for each.
    pub fn each_to_copy(&self, f: &mut dyn FnMut(BlobLocation) -> Result<()>) -> Result<()> {
        let conn = self.conn.lock().unwrap();
        // one copy per blob: the first by (pack, offset)
        let mut st = conn
            .prepare(
                "SELECT pack, size, kind, id, compression, offset, length, raw_length FROM (
                         SELECT s.pack, p.size, s.kind, s.id, s.compression, s.offset, s.length,
                                s.raw_length,
                                row_number() OVER (PARTITION BY s.id, s.kind ORDER BY s.pack, s.offset) AS n
                         FROM used u JOIN src s ON s.id = u.id AND s.kind = u.kind
                         JOIN pack p ON p.pack = s.pack
                         WHERE NOT EXISTS (SELECT 1 FROM src k JOIN pack kp ON kp.pack = k.pack
                                           WHERE k.id = u.id AND k.kind = u.kind AND kp.fate = 0))
                     WHERE n = 1 ORDER BY pack, offset",
            )
            .map_err(db_err)?;
        let rows = st.query_map([], read_row).map_err(db_err)?;
        for r in rows {
            let loc = row_location(r.map_err(db_err)?)?;
            f(loc)?;
        }
        Ok(())
    }

    /// The entries of `pack` that this working set knows, in pack order.
    pub fn entries(&self, pack: &PackId) -> Result<Vec<PackEntry>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached(
                "SELECT s.pack, p.size, s.kind, s.id, s.compression, s.offset, s.length, s.raw_length
                 FROM src s JOIN pack p ON p.pack = s.pack WHERE s.pack = ?1 ORDER BY s.offset",
            )
            .map_err(db_err)?;
        let rows = st.query_map([&pack.0[..]], read_row).map_err(db_err)?;
        let mut out = vec![];
        for r in rows {
            out.push(row_location(r.map_err(db_err)?)?.entry);
        }
        Ok(out)
    }
}

/// A blob copy as the queries select it: pack, pack size, kind, id,
/// compression, offset, length, raw length.
type Row = (Vec<u8>, i64, u8, Vec<u8>, u8, i64, u32, u32);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn row_location(
    (pack, size, kind, id, comp, offset, length, raw_length): Row,
) -> Result<BlobLocation> {
    let bad = || db_err(rusqlite::Error::InvalidQuery);
    let id = BlobId::from_slice(&id).ok_or_else(bad)?;
    Ok(BlobLocation {
        pack: PackId::from_slice(&pack).ok_or_else(bad)?,
        pack_size: size as u64,
        entry: PackEntry {
            kind: BlobKind::from_byte(kind).ok_or_else(bad)?,
            compression: Compression::from_byte(comp).ok_or_else(bad)?,
            id,
            offset: offset as u64,
            length,
            raw_length,
        },
    })
}

impl Locator for PlanDb {
    /// Copies in packs that are kept first.
    fn copies(&self, kind: BlobKind, id: &BlobId) -> Result<Vec<BlobLocation>> {
        let conn = self.conn.lock().unwrap();
        let mut st = conn
            .prepare_cached(
                "SELECT s.pack, p.size, s.kind, s.id, s.compression, s.offset, s.length, s.raw_length
                 FROM src s JOIN pack p ON p.pack = s.pack WHERE s.id = ?1 AND s.kind = ?2
                 ORDER BY p.origin, s.pack",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![&id.0[..], kind as u8], read_row)
            .map_err(db_err)?;
        let mut out = vec![];
        for r in rows {
            out.push(row_location(r.map_err(db_err)?)?);
        }
        Ok(out)
    }
}

impl Drop for PlanDb {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}
