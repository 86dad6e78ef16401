//! The local WAL spool: what `wal push` archived ahead of PostgreSQL's
//! asking, and what `wal fetch` read ahead of it.
//!
//! PostgreSQL runs one `archive_command` at a time and one
//! `restore_command` at a time, each for one file. To go faster than one
//! round trip per file, a push also archives the next files PostgreSQL
//! has marked ready (`pg_wal/archive_status/*.ready`) in parallel and
//! records each as `out/NAME.ok`; a fetch also reads the next segments in
//! parallel into `in/NAME`. When PostgreSQL then asks for one of them the
//! answer is local:
//!
//! - a push finds `out/NAME.ok` holding the BLAKE3 of the file, the
//!   file's size, modification time and inode when it was read, and the
//!   object's size; the file must be the same (its stamp unchanged, or
//!   else its bytes hashing the same) and the store must report the
//!   object's size (one `head`, no key, no repository open), otherwise it
//!   pushes normally;
//! - a fetch finds `in/NAME` (written to a temporary name and renamed, so
//!   present only when whole; authenticated when it was read) and moves
//!   it to PostgreSQL's destination.
//!
//! The spool is a directory per repository location, under the cache
//! directory. Entries that PostgreSQL no longer needs are removed as the
//! WAL moves on: `.ok` records whose file is no longer `.ready`, and
//! prefetched segments before the one asked for.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::wal::WalFile;

/// One repository's spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// What `out/NAME.ok` records about a pushed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRecord {
    /// BLAKE3 of the file's bytes.
    pub hash: [u8; 32],
    /// The archived object's size.
    pub stored: u64,
    /// The file as it was when it was read.
    pub stamp: FileStamp,
}

/// A file's size, modification time and inode: unchanged, it is the file
/// that was read (PostgreSQL never rewrites a file it marked ready; a
/// file written anew gets a new inode or modification time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Device and inode.
    pub dev_ino: (u64, u64),
}

impl FileStamp {
    /// The stamp of the file at `path` (one `stat`).
    pub fn of(path: &Path) -> Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).at(path)?;
        Ok(Self {
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            dev_ino: (m.dev(), m.ino()),
        })
    }
}

impl Spool {
    /// The spool for the repository at `location`, under `cache_dir`
    /// (created on first use).
    pub fn new(cache_dir: &Path, location: &str) -> Self {
        let h = blake3::hash(location.as_bytes()).to_hex();
        Self {
            dir: cache_dir.join("wal-spool").join(&h[..32]),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sub(&self, which: &str) -> Result<PathBuf> {
        let d = self.dir.join(which);
        std::fs::create_dir_all(&d).at(&d)?;
        Ok(d)
    }

    /// The record of an earlier push of `file`, if any (a damaged record
    /// counts as none).
    pub fn pushed(&self, file: WalFile) -> Option<PushRecord> {
        let text =
            std::fs::read_to_string(self.dir.join("out").join(format!("{}.ok", file.name())))
                .ok()?;
        let f: Vec<&str> = text.split_whitespace().collect();
        let [h, stored, size, mtime, dev, ino] = f[..] else {
            return None;
        };
        let mut hash = [0u8; 32];
        hex::decode_to_slice(h, &mut hash).ok()?;
        Some(PushRecord {
            hash,
            stored: stored.parse().ok()?,
            stamp: FileStamp {
                size: size.parse().ok()?,
                mtime_ns: mtime.parse().ok()?,
                dev_ino: (dev.parse().ok()?, ino.parse().ok()?),
            },
        })
    }

    /// Records that `file` was archived.
    pub fn record_pushed(&self, file: WalFile, r: PushRecord) -> Result<()> {
        let dir = self.sub("out")?;
        write_atomically(
            &dir.join(format!("{}.ok", file.name())),
            format!(
                "{} {} {} {} {} {}\n",
                hex::encode(r.hash),
                r.stored,
                r.stamp.size,
                r.stamp.mtime_ns,
                r.stamp.dev_ino.0,
                r.stamp.dev_ino.1
            )
            .as_bytes(),
        )
    }

    /// Removes the push records for which `keep` is false.
    pub fn retain_pushed(&self, keep: impl Fn(WalFile) -> bool) -> Result<()> {
        self.retain("out", ".ok", keep)
    }

    /// Removes the entries `which/NAME<suffix>` for which `keep` is false.
    fn retain(&self, which: &str, suffix: &str, keep: impl Fn(WalFile) -> bool) -> Result<()> {
        for (f, path) in entries(&self.dir.join(which), suffix)? {
            if !keep(f) {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Why the background pusher could not archive `file`, if it failed.
    pub fn push_error(&self, file: WalFile) -> Option<String> {
        std::fs::read_to_string(self.dir.join("out").join(format!("{}.error", file.name()))).ok()
    }

    /// Records why `file` could not be archived (best effort: the waiting
    /// push times out if even this fails).
    pub fn record_push_error(&self, file: WalFile, why: &str) {
        if let Ok(dir) = self.sub("out") {
            let _ = write_atomically(&dir.join(format!("{}.error", file.name())), why.as_bytes());
        }
    }

    /// Forgets a recorded failure (the next attempt starts afresh).
    pub fn clear_push_error(&self, file: WalFile) {
        let _ = std::fs::remove_file(self.dir.join("out").join(format!("{}.error", file.name())));
    }

    /// Takes the pusher lock (an advisory lock on `pusher.lock`, released
    /// when the process ends however it ends); `None` when another
    /// process holds it.
    pub fn lock_pusher(&self) -> Result<Option<std::fs::File>> {
        let dir = self.sub("")?;
        let p = dir.join("pusher.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .at(&p)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(p, e)),
        }
    }

    /// Whether a background pusher holds the lock now.
    pub fn pusher_running(&self) -> Result<bool> {
        Ok(self.lock_pusher()?.is_none())
    }

    /// Moves a prefetched `file` to `dest`; false when it is not spooled.
    pub fn take_fetched(&self, file: WalFile, dest: &Path) -> Result<bool> {
        let src = self.dir.join("in").join(file.name());
        match std::fs::rename(&src, dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            // another file system: copy, then drop the spooled one
            Err(e) if e.raw_os_error() == Some(libc_exdev()) => {
                let data = std::fs::read(&src).at(&src)?;
                write_atomically(dest, &data)?;
                let _ = std::fs::remove_file(&src);
                Ok(true)
            }
            Err(e) => Err(Error::io(dest, e)),
        }
    }

    /// Spools a prefetched file (authenticated by the caller).
    pub fn store_fetched(&self, file: WalFile, data: &[u8]) -> Result<()> {
        let dir = self.sub("in")?;
        write_atomically(&dir.join(file.name()), data)
    }

    /// Removes prefetched files for which `keep` is false.
    pub fn retain_fetched(&self, keep: impl Fn(WalFile) -> bool) -> Result<()> {
        self.retain("in", "", keep)
    }
}

fn libc_exdev() -> i32 {
    18 // EXDEV on Linux
}

/// The WAL files named in `dir` (with `suffix` after the name).
fn entries(dir: &Path, suffix: &str) -> Result<Vec<(WalFile, PathBuf)>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = vec![];
    for e in rd {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(f) = name.strip_suffix(suffix).and_then(WalFile::parse) {
            out.push((f, e.path()));
        }
    }
    Ok(out)
}

/// Writes `path` whole or not at all: a temporary name, synced, renamed.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("arca-tmp-{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_prefetched_files_come_and_go() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::new(d.path(), "file:///repo");
        let a = WalFile::parse("000000010000000000000001").unwrap();
        let b = WalFile::parse("000000010000000000000002").unwrap();
        assert_eq!(s.pushed(a), None);
        let r = PushRecord {
            hash: [7; 32],
            stored: 1234,
            stamp: FileStamp::of(d.path()).unwrap(),
        };
        s.record_pushed(a, r).unwrap();
        s.record_pushed(b, r).unwrap();
        assert_eq!(s.pushed(a), Some(r));
        s.retain_pushed(|f| f == b).unwrap();
        assert_eq!((s.pushed(a), s.pushed(b)), (None, Some(r)));

        s.store_fetched(b, b"segment").unwrap();
        let dest = d.path().join("RECOVERYXLOG");
        assert!(!s.take_fetched(a, &dest).unwrap());
        assert!(s.take_fetched(b, &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"segment");
        assert!(!s.take_fetched(b, &dest).unwrap(), "taken once");
        s.store_fetched(a, b"x").unwrap();
        s.retain_fetched(|f| f != a).unwrap();
        assert!(!s.take_fetched(a, &dest).unwrap());
    }
}
