//! Database dumps checked while they are stored: a [`CheckedSource`] wraps
//! any [`StreamSource`] and proves, on the very bytes that go into the
//! snapshot, that they are the dump they claim to be, or refuses them.
//!
//! Each [`DumpKind`] has a signature and an ending that arca checks itself
//! (so that a 30-byte error message or half a file never passes as a
//! backup) and the system's own validator, run on the same bytes:
//!
//! | kind | arca checks | validator |
//! | --- | --- | --- |
//! | `postgres` | `PGDMP` (custom), `ustar` with `toc.dat` (tar), or plain SQL's header and its `dump complete` trailer | `pg_restore --verbose --file=/dev/null`, fed the stream: reads and decompresses every table's data |
//! | `redis` | `REDIS` and a 4-digit version | `redis-check-rdb` on a private copy: the whole file and its CRC64; bytes after the RDB's end are reported |
//! | `etcd` | bbolt's magic in page 0; the SHA-256 trailer `etcdctl snapshot save` appends (verified over every byte) | `etcdutl snapshot status` (or `etcdctl`, API 3) on the copy: revision, keys, hash |
//! | `command` | nothing | any command, given the copy's path in `ARCA_CHECK_FILE`; exit 0 passes |
//!
//! Costs: the postgres validator reads the stream through a pipe, so the
//! backup runs at the slower of the two; the others need a private copy
//! in the temporary directory (`TMPDIR`, mode 0600, removed afterwards)
//! unless the source is already a file (a command's `{file}`), and run
//! after the stream ends. The SHA-256 costs about 0.5 s per GiB.
//!
//! A check that fails is an error: the backup saves no snapshot.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use sha2::Digest;

use super::source::StreamSource;
use crate::error::{Error, Result};
use crate::format::snapshot::DumpCheck;

/// What a stream is said to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpKind {
    /// `pg_dump` or `pg_dumpall` output: custom, tar or plain format.
    Postgres,
    /// A Redis RDB file (`redis-cli --rdb`, or `dump.rdb` after BGSAVE).
    Redis,
    /// An etcd v3 snapshot (`etcdctl snapshot save`).
    Etcd,
    /// Anything, checked by this shell command.
    Command(String),
}

impl DumpKind {
    /// The name used in flags and in snapshots.
    pub fn name(&self) -> &'static str {
        match self {
            DumpKind::Postgres => "postgres",
            DumpKind::Redis => "redis",
            DumpKind::Etcd => "etcd",
            DumpKind::Command(_) => "command",
        }
    }

    /// `postgres`, `redis` or `etcd`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "postgres" | "postgresql" | "pg" => Ok(DumpKind::Postgres),
            "redis" => Ok(DumpKind::Redis),
            "etcd" => Ok(DumpKind::Etcd),
            _ => Err(Error::Invalid(format!(
                "unknown dump kind '{s}': arca checks postgres, redis and etcd dumps (--check-command runs a validator of your own)"
            ))),
        }
    }
}

/// How many first bytes are kept for the signature.
const HEAD: usize = 4096;
/// How many last bytes are kept for the ending.
const TAIL: usize = 1024;
/// Bytes of the SHA-256 trailer of an etcd snapshot.
const SHA_LEN: usize = 32;

/// A stream source whose bytes are checked as they are read.
pub struct CheckedSource {
    inner: Box<dyn StreamSource>,
    kind: DumpKind,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    result: Option<DumpCheck>,
}

impl CheckedSource {
    /// Checks `inner`'s bytes as a dump of `kind`.
    pub fn new(inner: Box<dyn StreamSource>, kind: DumpKind) -> Self {
        Self {
            inner,
            kind,
            seen: Default::default(),
            result: None,
        }
    }

    fn rejected(&self, why: impl Into<String>) -> Error {
        Error::DumpRejected {
            name: self.inner.name().to_string(),
            kind: self.kind.name(),
            why: why.into(),
        }
    }
}

/// What the reader saw of the stream, and where a copy went.
#[derive(Default)]
struct Seen {
    head: Vec<u8>,
    tail: Vec<u8>,
    len: u64,
    /// SHA-256 of every byte but the last [`SHA_LEN`] (which wait in `held`).
    sha: Option<sha2::Sha256>,
    held: Vec<u8>,
    sink: Sink,
    /// Decided once the head is complete (or the stream ended).
    decided: bool,
}

#[derive(Default)]
enum Sink {
    #[default]
    None,
    /// A validator reading the stream on its standard input.
    Pipe {
        child: Child,
        stdin: Option<ChildStdin>,
        stderr: Option<std::thread::JoinHandle<String>>,
        shown: String,
        /// It stopped reading before the end (EPIPE).
        closed_early: bool,
    },
    /// A private copy for a validator that needs a file.
    File(tempfile::NamedTempFile),
    /// Could not be set up: the reason, reported at the end.
    Failed(String),
}

impl Seen {
    fn feed(&mut self, kind: &DumpKind, has_file: bool, b: &[u8]) {
        if self.head.len() < HEAD {
            let n = (HEAD - self.head.len()).min(b.len());
            self.head.extend_from_slice(&b[..n]);
        }
        self.tail.extend_from_slice(b);
        if self.tail.len() > TAIL {
            let cut = self.tail.len() - TAIL;
            self.tail.drain(..cut);
        }
        self.len += b.len() as u64;
        if let Some(sha) = &mut self.sha {
            self.held.extend_from_slice(b);
            if self.held.len() > SHA_LEN {
                let cut = self.held.len() - SHA_LEN;
                sha.update(&self.held[..cut]);
                self.held.drain(..cut);
            }
        }
        if !self.decided {
            if self.head.len() < HEAD && !b.is_empty() {
                return;
            }
            self.decide(kind, has_file);
            let head = self.head.clone();
            self.write_sink(&head);
            // the part of `b` beyond the head
            let beyond = (self.len as usize).saturating_sub(head.len());
            if beyond > 0 {
                self.write_sink(&b[b.len() - beyond..]);
            }
        } else {
            self.write_sink(b);
        }
    }

    /// Starts the validator's sink, from what the head says.
    fn decide(&mut self, kind: &DumpKind, has_file: bool) {
        self.decided = true;
        self.sink = match kind {
            DumpKind::Postgres => match pg_format(&self.head) {
                Some(PgFormat::Custom | PgFormat::Tar) => start_pg_restore(),
                _ => Sink::None,
            },
            _ if has_file => Sink::None,
            _ => match tempfile::Builder::new().prefix("arca-check-").tempfile() {
                Ok(f) => Sink::File(f),
                Err(e) => Sink::Failed(format!(
                    "could not make a private copy in {} for the validator: {e} (TMPDIR chooses where)",
                    std::env::temp_dir().display()
                )),
            },
        };
    }

    fn write_sink(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        match &mut self.sink {
            Sink::Pipe {
                stdin,
                closed_early,
                ..
            } => {
                if let Some(w) = stdin
                    && w.write_all(b).is_err()
                {
                    *stdin = None;
                    *closed_early = true;
                }
            }
            Sink::File(f) => {
                if let Err(e) = f.write_all(b) {
                    self.sink = Sink::Failed(format!(
                        "could not write the private copy for the validator: {e}"
                    ));
                }
            }
            Sink::None | Sink::Failed(_) => {}
        }
    }
}

/// A reader that shows every byte to [`Seen`] on its way to the backup.
struct Inspecting {
    inner: Box<dyn Read + Send>,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    kind: DumpKind,
    has_file: bool,
}

impl Read for Inspecting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen
            .lock()
            .unwrap()
            .feed(&self.kind, self.has_file, &buf[..n]);
        Ok(n)
    }
}

impl StreamSource for CheckedSource {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn open(&mut self) -> Result<Box<dyn Read + Send>> {
        let r = self.inner.open()?;
        {
            let mut s = self.seen.lock().unwrap();
            if self.kind == DumpKind::Etcd {
                s.sha = Some(sha2::Sha256::new());
            }
        }
        Ok(Box::new(Inspecting {
            inner: r,
            seen: self.seen.clone(),
            kind: self.kind.clone(),
            has_file: self.inner.file().is_some(),
        }))
    }

    fn finish(&mut self, cancelled: bool) -> Result<()> {
        let inner = self.inner.finish(cancelled);
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap());
        if !seen.decided {
            seen.decide(&self.kind, self.inner.file().is_some());
        }
        if cancelled || inner.is_err() {
            if let Sink::Pipe { mut child, .. } = seen.sink {
                let _ = child.kill();
                let _ = child.wait();
            }
            return inner;
        }
        if seen.len == 0 {
            if let Sink::Pipe { mut child, .. } = seen.sink {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(self.rejected(
                "it is empty (0 bytes): whatever made it failed before writing anything",
            ));
        }
        let file: Option<PathBuf> = self.inner.file().map(Path::to_path_buf);
        let checked = match &self.kind {
            DumpKind::Postgres => check_postgres(&mut seen),
            DumpKind::Redis => check_redis(&mut seen, file.as_deref()),
            DumpKind::Etcd => check_etcd(&mut seen, file.as_deref()),
            DumpKind::Command(cmd) => check_command(cmd, &mut seen, file.as_deref()),
        };
        match checked {
            Ok(mut c) => {
                c.path = self.inner.name().to_string();
                c.kind = self.kind.name().to_string();
                self.result = Some(c);
                Ok(())
            }
            Err(why) => Err(self.rejected(why)),
        }
    }

    fn file(&self) -> Option<&Path> {
        self.inner.file()
    }

    fn check(&self) -> Option<DumpCheck> {
        self.result.clone()
    }
}

/// Checks the file at `path` (stored as `name`) as a dump of `kind`, as
/// a backup would have: what a restore drill runs on a restored dump.
pub fn check_file(path: &Path, name: &str, kind: DumpKind) -> Result<DumpCheck> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut src = CheckedSource::new(
        Box::new(FileSource {
            name: name.to_string(),
            path: path.to_path_buf(),
            file: Some(f),
        }),
        kind,
    );
    let mut r = src.open()?;
    std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
    drop(r);
    src.finish(false)?;
    Ok(src.check().expect("a check that passed says what it found"))
}

/// A file read as a stream, which validators may read in place.
struct FileSource {
    name: String,
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl StreamSource for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<Box<dyn Read + Send>> {
        let f = self
            .file
            .take()
            .ok_or_else(|| Error::Invalid("the file was already read".into()))?;
        Ok(Box::new(f))
    }

    fn finish(&mut self, _cancelled: bool) -> Result<()> {
        Ok(())
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// The shapes of `pg_dump` output a stream can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgFormat {
    Custom,
    Tar,
    Plain,
    PlainCluster,
}

fn pg_format(head: &[u8]) -> Option<PgFormat> {
    if head.starts_with(b"PGDMP") {
        return Some(PgFormat::Custom);
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" && head.starts_with(b"toc.dat\0") {
        return Some(PgFormat::Tar);
    }
    if head.starts_with(b"--\n-- PostgreSQL database dump\n") {
        return Some(PgFormat::Plain);
    }
    if head.starts_with(b"--\n-- PostgreSQL database cluster dump\n") {
        return Some(PgFormat::PlainCluster);
    }
    None
}

/// The first bytes, for a message: printable ASCII as is, the rest escaped.
fn shown_start(head: &[u8]) -> String {
    let s: String = head
        .iter()
        .take(40)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    format!("\"{s}\"")
}

fn start_pg_restore() -> Sink {
    let shown = "pg_restore --verbose --file=/dev/null".to_string();
    let spawned = Command::new("pg_restore")
        .args(["--verbose", "--file=/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    match spawned {
        Ok(mut child) => {
            let stdin = child.stdin.take();
            let mut err = child.stderr.take().expect("piped stderr");
            // drained as it comes: a dump of many objects writes more than
            // a pipe holds, and pg_restore would stop until it is read
            let stderr = std::thread::spawn(move || {
                let mut s = vec![];
                let _ = err.read_to_end(&mut s);
                // object names in another encoding must not lose the rest
                String::from_utf8_lossy(&s).into_owned()
            });
            Sink::Pipe {
                child,
                stdin,
                stderr: Some(stderr),
                shown,
                closed_early: false,
            }
        }
        Err(e) => Sink::Failed(format!(
            "could not run {shown}: {e} (install the PostgreSQL client, e.g. postgresql-client)"
        )),
    }
}

fn check_postgres(seen: &mut Seen) -> std::result::Result<DumpCheck, String> {
    let format = pg_format(&seen.head).ok_or_else(|| {
        format!(
            "it is not pg_dump output: it starts with {} (a custom archive starts with PGDMP, a plain dump with \"-- PostgreSQL database dump\")",
            shown_start(&seen.head)
        )
    })?;
    match format {
        PgFormat::Plain | PgFormat::PlainCluster => {
            let what = if format == PgFormat::Plain {
                "PostgreSQL database dump complete"
            } else {
                "PostgreSQL database cluster dump complete"
            };
            let ends = seen.tail.windows(what.len()).any(|w| w == what.as_bytes());
            if !ends {
                return Err(format!(
                    "the plain dump has no \"-- {what}\" line at its end: pg_dump did not finish (cut short, or it failed part-way)"
                ));
            }
            let statements = "the header and the closing line are there";
            Ok(DumpCheck {
                format: if format == PgFormat::Plain {
                    "pg_dump plain SQL".into()
                } else {
                    "pg_dumpall plain SQL".into()
                },
                validator: String::new(),
                result: statements.into(),
                ..DumpCheck::default()
            })
        }
        PgFormat::Custom | PgFormat::Tar => {
            let sink = std::mem::take(&mut seen.sink);
            let (mut child, stdin, stderr, shown, closed_early) = match sink {
                Sink::Pipe {
                    child,
                    stdin,
                    stderr,
                    shown,
                    closed_early,
                } => (child, stdin, stderr, shown, closed_early),
                Sink::Failed(why) => return Err(why),
                _ => return Err("the validator was not started".into()),
            };
            drop(stdin); // end of input
            let status = child.wait().map_err(|e| format!("{shown}: {e}"))?;
            let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
            if !status.success() || err.lines().any(|l| l.contains("error:")) {
                return Err(format!("{shown} failed ({status}): {}", gist(&err)));
            }
            let mut warnings = vec![];
            if closed_early {
                // it exited 0 having read all it needs (a tar archive's
                // last members are not read from a pipe)
                warnings.push(format!(
                    "{shown} finished before the end of the stream; it reported no error"
                ));
            }
            let tables = err
                .lines()
                .filter(|l| l.contains("processing data for table"))
                .count();
            let objects = err.lines().filter(|l| l.contains(": creating ")).count();
            let how = if closed_early {
                "read all it needed"
            } else {
                "read every byte"
            };
            Ok(DumpCheck {
                format: if format == PgFormat::Custom {
                    "pg_dump custom archive".into()
                } else {
                    "pg_dump tar archive".into()
                },
                validator: shown,
                result: format!(
                    "{how}: the data of {tables} table(s) and {objects} object definition(s)"
                ),
                warnings,
                ..DumpCheck::default()
            })
        }
    }
}

/// The path of the bytes a file-based validator reads: the source's own
/// file or the private copy.
fn copy_path<'a>(
    seen: &'a mut Seen,
    file: Option<&'a Path>,
) -> std::result::Result<&'a Path, String> {
    if let Some(f) = file {
        return Ok(f);
    }
    match &mut seen.sink {
        Sink::File(f) => {
            f.flush()
                .map_err(|e| format!("could not write the private copy: {e}"))?;
            Ok(f.path())
        }
        Sink::Failed(why) => Err(why.clone()),
        _ => Err("no copy of the stream was kept for the validator".into()),
    }
}

/// Runs a validator to its end; its standard output and error together.
fn run(cmd: &mut Command, shown: &str, hint: &str) -> std::result::Result<String, String> {
    let (status, text) = crate::host::process::run_to_end(cmd)
        .map_err(|e| format!("could not run {shown}: {e}{hint}"))?;
    if !status.success() {
        return Err(format!("{shown} failed ({status}): {}", gist(&text)));
    }
    Ok(text)
}

/// The lines of a validator's output that say what went wrong: those that
/// name an error (a Go runtime's trace is hundreds of lines), else the
/// last few.
fn gist(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "error",
                "unexpected",
                "fatal",
                "invalid",
                "corrupt",
                "panic",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .take(4)
        .collect();
    if errors.is_empty() {
        lines[lines.len().saturating_sub(4)..].join("; ")
    } else {
        errors.join("; ")
    }
}

fn check_redis(seen: &mut Seen, file: Option<&Path>) -> std::result::Result<DumpCheck, String> {
    let h = &seen.head;
    if !(h.len() >= 9 && h.starts_with(b"REDIS") && h[5..9].iter().all(u8::is_ascii_digit)) {
        return Err(format!(
            "it is not an RDB file: it starts with {} (an RDB file starts with REDIS and a 4-digit version)",
            shown_start(h)
        ));
    }
    let version = String::from_utf8_lossy(&h[5..9])
        .trim_start_matches('0')
        .to_string();
    let len = seen.len;
    let path = copy_path(seen, file)?;
    let shown = "redis-check-rdb".to_string();
    let out = run(
        Command::new("redis-check-rdb").arg(path),
        &shown,
        " (install redis-tools)",
    )?;
    if !out.contains("RDB looks OK") {
        return Err(format!("{shown} did not say the RDB looks OK"));
    }
    let keys = out
        .lines()
        .find_map(|l| l.strip_prefix("[info] ")?.strip_suffix(" keys read"))
        .unwrap_or("?")
        .to_string();
    // where the RDB ended: "[offset N] Checksum OK" (or "\o/ RDB looks OK")
    let end: Option<u64> = out
        .lines()
        .filter(|l| l.contains("RDB looks OK"))
        .find_map(|l| l.strip_prefix("[offset ")?.split(']').next()?.parse().ok());
    let checksum = out.contains("Checksum OK");
    let mut warnings = vec![];
    if let Some(end) = end
        && end < len
    {
        warnings.push(format!(
            "{} byte(s) after the RDB's end (redis-cli --rdb - appends its transfer's 40-byte end mark; Redis ignores what follows the end)",
            len - end
        ));
    }
    if !checksum {
        warnings.push("the RDB carries no checksum (rdbchecksum no)".into());
    }
    Ok(DumpCheck {
        format: format!("Redis RDB version {version}"),
        validator: shown,
        result: format!(
            "{keys} key(s) read{}",
            if checksum { ", checksum OK" } else { "" }
        ),
        warnings,
        ..DumpCheck::default()
    })
}

fn check_etcd(seen: &mut Seen, file: Option<&Path>) -> std::result::Result<DumpCheck, String> {
    let h = &seen.head;
    // bbolt's meta page 0: page header (16 bytes), then magic, version,
    // page size (little-endian u32s)
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(h.get(o..o + 4)?.try_into().ok()?)) };
    if u32_at(16) != Some(0xED0C_DAED) {
        return Err(format!(
            "it is not an etcd snapshot (a bbolt database): page 0 has no bbolt magic; it starts with {}",
            shown_start(h)
        ));
    }
    let page = u64::from(u32_at(24).unwrap_or(0));
    let len = seen.len;
    let mut warnings = vec![];
    let trailer = len % 512 == SHA_LEN as u64;
    if trailer {
        let sha = seen.sha.take().expect("hashed").finalize();
        if sha.as_slice() != seen.held.as_slice() {
            return Err(
                "its SHA-256 trailer does not match its contents: the snapshot is damaged or cut short"
                    .into(),
            );
        }
    } else if page == 0 || !len.is_multiple_of(page) {
        return Err(format!(
            "its size ({len} bytes) is neither whole pages of {page} bytes nor pages and a SHA-256 trailer: it is cut short"
        ));
    } else {
        warnings.push(
            "no SHA-256 trailer: a copy of the database file, not `etcdctl snapshot save` output"
                .into(),
        );
    }
    let path = copy_path(seen, file)?;
    let (prog, mut cmd) = if crate::host::facts::on_path("etcdutl") {
        ("etcdutl", Command::new("etcdutl"))
    } else {
        let mut c = Command::new("etcdctl");
        c.env("ETCDCTL_API", "3");
        ("etcdctl", c)
    };
    cmd.args(["snapshot", "status", "-w", "json"]).arg(path);
    let shown = format!("{prog} snapshot status");
    let out = run(&mut cmd, &shown, " (install etcd-client)")?;
    let v: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .ok_or_else(|| format!("{shown} printed no status"))?;
    Ok(DumpCheck {
        format: format!(
            "etcd snapshot (bbolt, {page}-byte pages{})",
            if trailer {
                ", SHA-256 trailer verified"
            } else {
                ""
            }
        ),
        validator: shown,
        result: format!(
            "revision {}, {} key(s), {} bytes, hash {}",
            v["revision"], v["totalKey"], v["totalSize"], v["hash"]
        ),
        warnings,
        ..DumpCheck::default()
    })
}

fn check_command(
    cmd: &str,
    seen: &mut Seen,
    file: Option<&Path>,
) -> std::result::Result<DumpCheck, String> {
    let path = copy_path(seen, file)?;
    let out = run(
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("ARCA_CHECK_FILE", path),
        cmd,
        "",
    )?;
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("exit status 0")
        .trim();
    Ok(DumpCheck {
        format: String::new(),
        validator: cmd.to_string(),
        result: last.chars().take(200).collect(),
        ..DumpCheck::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(kind: DumpKind, bytes: Vec<u8>) -> Result<Option<DumpCheck>> {
        let src = super::super::Source::reader("x", std::io::Cursor::new(bytes));
        let super::super::Source::Stream(inner) = src else {
            unreachable!()
        };
        let mut c = CheckedSource::new(inner, kind);
        let mut r = c.open()?;
        // small reads: the head decision must not depend on read sizes
        let mut buf = [0u8; 7];
        while r.read(&mut buf).unwrap() > 0 {}
        drop(r);
        c.finish(false)?;
        Ok(c.check())
    }

    #[test]
    fn plain_dumps_need_their_closing_line() {
        let good = b"--\n-- PostgreSQL database dump\n--\nSELECT 1;\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n".to_vec();
        let c = checked(DumpKind::Postgres, good.clone()).unwrap().unwrap();
        assert_eq!(c.format, "pg_dump plain SQL");
        assert_eq!((c.path.as_str(), c.kind.as_str()), ("x", "postgres"));
        let cut = good[..40].to_vec();
        let e = checked(DumpKind::Postgres, cut).unwrap_err().to_string();
        assert!(e.contains("did not finish"), "{e}");
        let e = checked(
            DumpKind::Postgres,
            b"pg_dump: error: connection failed\n".to_vec(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("not pg_dump output") && e.contains("pg_dump: error"),
            "{e}"
        );
    }

    #[test]
    fn etcd_snapshots_are_checked_against_their_trailer() {
        let mut db = vec![0u8; 4096 * 2];
        db[16..20].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
        db[24..28].copy_from_slice(&4096u32.to_le_bytes());
        let mut with_sha = db.clone();
        with_sha.extend_from_slice(&sha2::Sha256::digest(&db));
        let mut flipped = with_sha.clone();
        flipped[5000] ^= 1;
        let e = checked(DumpKind::Etcd, flipped).unwrap_err().to_string();
        assert!(e.contains("SHA-256 trailer does not match"), "{e}");
        let e = checked(DumpKind::Etcd, with_sha[..6000].to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut short"), "{e}");
        let e = checked(DumpKind::Etcd, b"Snapshot saved at /dev/stdout\n".to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an etcd snapshot"), "{e}");
    }

    #[test]
    fn a_redis_check_wants_the_signature() {
        let e = checked(DumpKind::Redis, b"Error: Connection refused\n".to_vec())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an RDB file"), "{e}");
    }

    #[test]
    fn a_command_validator_sees_the_bytes_and_decides() {
        let c = checked(
            DumpKind::Command("test \"$(cat \"$ARCA_CHECK_FILE\")\" = hello && echo fine".into()),
            b"hello".to_vec(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.result, "fine");
        let e = checked(
            DumpKind::Command("echo nope >&2; exit 3".into()),
            b"x".to_vec(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope") && e.contains("exit status: 3"), "{e}");
    }
}
