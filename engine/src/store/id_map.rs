//! The blob id map of `copy`: which blob of a destination repository holds
//! the plaintext of a data blob of a source repository.
//!
//! Blob ids are keyed hashes (`MasterKey::blob_id`), so the same content
//! has different ids in two repositories with different keys, and the
//! destination's id of a source blob is only known once the blob has been
//! read. The pair is a pure function of the two keys and the content: it
//! never goes stale, whatever either repository does since. Whether the
//! destination *still has* the blob is never taken from here but always
//! asked of the destination's catalog (a prune may have removed it).
//!
//! It is a cache, like the catalog, in the destination's cache directory
//! (`<cache>/<destination id>/copied-from-<source id>.sqlite`), so that a
//! later copy of a new snapshot reads from the source only the blobs no
//! earlier copy mapped. Delete it and copy reads every blob again. A file
//! made under other keys (a fingerprint of both is kept in it) is cleared,
//! never trusted.
//!
//! Costs: 64 bytes a blob on disk (plus SQLite's B-tree), one B-tree probe
//! per lookup; inserts are committed in batches of `BATCH`. Memory: SQLite's
//! page cache, not the number of blobs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::format::crypto::MasterKey;
use crate::format::id::BlobId;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// Schema version; a file of another one is cleared.
const SCHEMA: &str = "arca-copy-map-1";
/// Inserts per committed transaction.
const BATCH: u32 = 4096;
/// What the keys' fingerprints are taken of.
const FINGERPRINT: &[u8] = b"arca copy map fingerprint";

struct Conn {
    conn: Connection,
    /// Inserts in the open transaction (0: none open).
    uncommitted: u32,
}

/// Source blob id → destination blob id, for one pair of repositories.
pub struct IdMap {
    conn: Mutex<Conn>,
    path: PathBuf,
}

impl IdMap {
    /// The map from `source` into `dest`, beside the destination's catalog
    /// `dest_catalog` (in memory when the catalog is: `--no-cache`).
    pub fn beside(dest_catalog: &Catalog, source: &Repository, dest: &Repository) -> Result<Self> {
        let fp = fingerprint(source.key(), dest.key());
        let memory = Path::new(":memory:");
        let at = dest_catalog.path();
        let path = match at.parent() {
            Some(dir) if at != memory => dir.join(format!(
                "copied-from-{}.sqlite",
                source.config().id.to_hex()
            )),
            _ => memory.to_path_buf(),
        };
        let conn = if path == memory {
            Connection::open_in_memory().map_err(|e| err(&path, e))?
        } else {
            open_file(&path)?
        };
        init(&conn, &path, &fp)?;
        Ok(Self {
            conn: Mutex::new(Conn {
                conn,
                uncommitted: 0,
            }),
            path,
        })
    }

    /// The database file (`:memory:` for one in memory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The destination id of the source data blob `source`, if known.
    pub fn get(&self, source: &BlobId) -> Result<Option<BlobId>> {
        let c = self.conn.lock().unwrap();
        let mut st = c
            .conn
            .prepare_cached("SELECT dst FROM map WHERE src = ?1")
            .map_err(|e| err(&self.path, e))?;
        let v: Option<Vec<u8>> = st
            .query_row([&source.0[..]], |r| r.get(0))
            .optional()
            .map_err(|e| err(&self.path, e))?;
        match v {
            None => Ok(None),
            Some(b) => BlobId::from_slice(&b)
                .map(Some)
                .ok_or_else(|| err_msg(&self.path, "a destination id is malformed")),
        }
    }

    /// Records that `source`'s plaintext is `dest` in the destination.
    pub fn insert(&self, source: &BlobId, dest: &BlobId) -> Result<()> {
        let mut c = self.conn.lock().unwrap();
        if c.uncommitted == 0 {
            c.conn
                .execute_batch("BEGIN")
                .map_err(|e| err(&self.path, e))?;
        }
        c.conn
            .prepare_cached("INSERT OR REPLACE INTO map(src, dst) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![&source.0[..], &dest.0[..]]))
            .map_err(|e| err(&self.path, e))?;
        c.uncommitted += 1;
        if c.uncommitted >= BATCH {
            commit(&mut c, &self.path)?;
        }
        Ok(())
    }

    /// Commits what was inserted.
    pub fn flush(&self) -> Result<()> {
        commit(&mut self.conn.lock().unwrap(), &self.path)
    }
}

impl Drop for IdMap {
    fn drop(&mut self) {
        if let Ok(mut c) = self.conn.lock() {
            let _ = commit(&mut c, &self.path);
        }
    }
}

fn commit(c: &mut Conn, path: &Path) -> Result<()> {
    if c.uncommitted > 0 {
        c.conn.execute_batch("COMMIT").map_err(|e| err(path, e))?;
        c.uncommitted = 0;
    }
    Ok(())
}

/// Keyed hashes of a constant under both keys: what binds a map file to
/// the pair of keys it was made under.
fn fingerprint(source: &MasterKey, dest: &MasterKey) -> String {
    format!(
        "{}{}",
        source.blob_id(FINGERPRINT).to_hex(),
        dest.blob_id(FINGERPRINT).to_hex()
    )
}

/// Opens the file; one that does not open as a database is deleted and
/// made again (it is a cache).
fn open_file(path: &Path) -> Result<Connection> {
    let open = || -> Result<Connection> {
        let c = Connection::open(path).map_err(|e| err(path, e))?;
        c.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(|e| err(path, e))?;
        c.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(path, e))?;
        c.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(path, e))?;
        let ok: String = c
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| err(path, e))?;
        if ok != "ok" {
            return Err(err_msg(path, "a database page is damaged"));
        }
        Ok(c)
    };
    match open() {
        Ok(c) => Ok(c),
        Err(_) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            open()
        }
    }
}

/// Creates the table; clears it when it was made under another schema or
/// other keys.
fn init(c: &Connection, path: &Path, fingerprint: &str) -> Result<()> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);")
        .map_err(|e| err(path, e))?;
    let get = |k: &str| -> Result<Option<String>> {
        c.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(|e| err(path, e))
    };
    if get("schema")?.as_deref() != Some(SCHEMA) || get("keys")?.as_deref() != Some(fingerprint) {
        c.execute_batch("DROP TABLE IF EXISTS map;")
            .map_err(|e| err(path, e))?;
        c.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1), ('keys', ?2)",
            params![SCHEMA, fingerprint],
        )
        .map_err(|e| err(path, e))?;
    }
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS map(src BLOB PRIMARY KEY, dst BLOB NOT NULL) WITHOUT ROWID;",
    )
    .map_err(|e| err(path, e))
}

fn err(path: &Path, e: rusqlite::Error) -> Error {
    err_msg(path, &e.to_string())
}

fn err_msg(path: &Path, message: &str) -> Error {
    Error::Catalog {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_binds_both_keys() {
        let (a, b) = (MasterKey::generate(), MasterKey::generate());
        assert_ne!(fingerprint(&a, &b), fingerprint(&b, &a));
        assert_eq!(fingerprint(&a, &b), fingerprint(&a, &b));
    }

    #[test]
    fn a_file_made_under_other_keys_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let (s, d) = (BlobId([1; 32]), BlobId([2; 32]));
        {
            let c = open_file(&path).unwrap();
            init(&c, &path, "one").unwrap();
            c.execute(
                "INSERT INTO map(src, dst) VALUES (?1, ?2)",
                params![&s.0[..], &d.0[..]],
            )
            .unwrap();
        }
        let count = |fp: &str| {
            let c = open_file(&path).unwrap();
            init(&c, &path, fp).unwrap();
            c.query_row("SELECT COUNT(*) FROM map", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!(count("one"), 1);
        assert_eq!(count("two"), 0);
    }
}
