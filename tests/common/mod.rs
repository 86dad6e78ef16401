//! Helpers for the integration tests: a scratch repository and a way to run
//! the real `arca` binary against it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch directory with a repository, a cache and room for sources.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub cache: PathBuf,
    pub password: String,
}

impl Env {
    /// A new, empty environment (no repository yet).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("arca-it-")
            .tempdir()
            .unwrap();
        let repo = dir.path().join("repo").display().to_string();
        let cache = dir.path().join("cache");
        Self {
            dir,
            repo,
            cache,
            password: "correct horse battery staple".into(),
        }
    }

    /// A new environment with an initialised repository.
    pub fn init() -> Self {
        let e = Self::new();
        e.ok(&["init", "--kdf-memory", "8192"]);
        e
    }

    /// A path inside the scratch directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The command with the repository, password and cache set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_arca"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("ARCA_REPOSITORY", &self.repo)
            .env("ARCA_PASSWORD", &self.password)
            .env("ARCA_CACHE_DIR", &self.cache)
            .stdin(Stdio::null());
        c
    }

    /// Runs arca with `args`.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.cmd().args(args).output().expect("run arca")
    }

    /// Runs arca and asserts success; returns stdout.
    pub fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "arca {:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs arca with `--json` and parses stdout.
    pub fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> serde_json::Value {
        let mut a: Vec<&OsStr> = args.iter().map(|s| s.as_ref()).collect();
        a.push(OsStr::new("--json"));
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
    }

    /// Backs up `paths`, returns the snapshot id.
    pub fn backup<S: AsRef<OsStr>>(&self, paths: &[S]) -> String {
        let mut a: Vec<&OsStr> = vec![OsStr::new("backup")];
        a.extend(paths.iter().map(|p| p.as_ref()));
        self.json(&a)["snapshot_id"].as_str().unwrap().to_string()
    }

    /// Restores `snapshot` into a fresh target and returns the path under
    /// which `source` (an absolute path that was backed up) reappears.
    pub fn restore(&self, snapshot: &str, source: &Path, target: &str) -> PathBuf {
        let t = self.path(target);
        self.ok(&[
            OsStr::new("restore"),
            OsStr::new(snapshot),
            OsStr::new("--target"),
            t.as_os_str(),
        ]);
        t.join(source.strip_prefix("/").unwrap())
    }

    /// Total bytes of all objects in the repository.
    pub fn repo_size(&self) -> u64 {
        walkdir(Path::new(&self.repo))
    }
}

fn walkdir(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        n += if md.is_dir() {
            walkdir(&e.path())
        } else {
            md.len()
        };
    }
    n
}

/// Deterministic pseudo-random bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
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

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// BLAKE3 of a file's content.
pub fn b3(path: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path).unwrap();
    h.finalize().to_hex().to_string()
}

/// Runs a command and asserts success.
pub fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}
