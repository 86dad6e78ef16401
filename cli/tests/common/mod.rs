//! Helpers for the integration tests: a scratch repository and a way to run
//! the real `arca` binary against it.
//!
//! The repository is a local directory, or, with `ARCA_TEST_BACKEND=garage`
//! (and the exports of `scripts/garage start`), a fresh prefix in a Garage
//! bucket on loopback, or with `ARCA_TEST_BACKEND=azurite` (and the exports
//! of `scripts/azurite start`) in an Azurite container: the same tests then
//! run against a real S3 store and Azure's emulator.
//! Tests that look at the repository's objects go through [`Env::objects`],
//! [`Env::read_object`] and [`Env::write_object`], which work on both.
#![allow(dead_code)]

pub mod postgres;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};

/// A bucket (S3) or container (Azure) to test against, and the
/// environment that reaches it.
#[derive(Clone, Debug)]
pub struct RemoteTarget {
    /// `s3` or `az`: the repository address's scheme.
    pub scheme: &'static str,
    pub bucket: String,
    /// `AWS_*` or `AZURE*` variables for the arca processes (and this
    /// test's client).
    pub env: Vec<(String, String)>,
}

impl RemoteTarget {
    /// The target named by this process's environment when
    /// `ARCA_TEST_BACKEND` is `garage` or `azurite` (set by `scripts/test`).
    pub fn from_process_env() -> Option<Self> {
        let (scheme, bucket_var, prefixes): (_, _, &[&str]) =
            match std::env::var("ARCA_TEST_BACKEND").as_deref() {
                Ok("garage") => ("s3", "ARCA_TEST_GARAGE_BUCKET", &["AWS_"]),
                Ok("azurite") => ("az", "ARCA_TEST_AZURITE_CONTAINER", &["AZURE", "AZURITE"]),
                Ok("") | Ok("local") | Err(_) => return None,
                Ok(other) => panic!("ARCA_TEST_BACKEND={other}: use garage, azurite or local"),
            };
        let bucket = std::env::var(bucket_var).unwrap_or_else(|_| {
            panic!("ARCA_TEST_BACKEND needs the exports of scripts/garage or scripts/azurite start")
        });
        let env = std::env::vars()
            .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
            .collect();
        Some(Self {
            scheme,
            bucket,
            env,
        })
    }

    /// A client for objects under `prefix` (for tests that inspect or
    /// damage the repository's objects).
    pub fn client(&self, prefix: &str) -> Arc<dyn ObjectStore> {
        let store: Arc<dyn ObjectStore> = match self.scheme {
            "s3" => {
                let mut b = AmazonS3Builder::new().with_bucket_name(&self.bucket);
                for (k, v) in &self.env {
                    if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        b = b.with_config(key, v);
                    }
                }
                Arc::new(b.build().unwrap())
            }
            _ => {
                // the emulator's address comes from AZURITE_BLOB_STORAGE_URL,
                // which this process has (scripts/test exported it)
                let b = MicrosoftAzureBuilder::new()
                    .with_container_name(&self.bucket)
                    .with_use_emulator(true);
                Arc::new(b.build().unwrap())
            }
        };
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// Where the repository lives, for looking at its objects.
enum Store {
    Dir(PathBuf),
    Remote(Arc<dyn ObjectStore>),
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A scratch directory with a repository, a cache and room for sources.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub cache: PathBuf,
    pub password: String,
    /// Extra environment for every arca process (the S3 credentials).
    pub env: Vec<(String, String)>,
    store: Store,
}

impl Env {
    /// A new, empty environment (no repository yet): on the backend that
    /// `ARCA_TEST_BACKEND` names (a local directory by default).
    pub fn new() -> Self {
        match RemoteTarget::from_process_env() {
            Some(t) => Self::on_remote(&t),
            None => Self::local(),
        }
    }

    /// A new environment whose repository is a local directory.
    pub fn local() -> Self {
        let dir = scratch();
        let repo = dir.path().join("repo").display().to_string();
        let cache = dir.path().join("cache");
        Self {
            store: Store::Dir(PathBuf::from(&repo)),
            dir,
            repo,
            cache,
            password: "correct horse battery staple".into(),
            env: vec![],
        }
    }

    /// A new environment whose repository is the local directory `repo`
    /// (on a filesystem the test controls: a small tmpfs, a read-only mount).
    pub fn local_at(repo: &Path) -> Self {
        let mut e = Self::local();
        e.repo = repo.display().to_string();
        e.store = Store::Dir(repo.to_path_buf());
        e
    }

    /// A new environment whose repository is a fresh prefix of `target`.
    pub fn on_remote(target: &RemoteTarget) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "it-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let dir = scratch();
        let cache = dir.path().join("cache");
        Self {
            store: Store::Remote(target.client(&prefix)),
            repo: format!("{}://{}/{prefix}", target.scheme, target.bucket),
            dir,
            cache,
            password: "correct horse battery staple".into(),
            env: target.env.clone(),
        }
    }

    /// Whether the repository is in an object store rather than a directory.
    pub fn is_remote(&self) -> bool {
        matches!(self.store, Store::Remote(_))
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
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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
        // before a `--` (what follows it is a command's arguments)
        let at = a.iter().position(|x| *x == "--").unwrap_or(a.len());
        a.insert(at, OsStr::new("--json"));
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
        self.objects("").iter().map(|(_, n)| n).sum()
    }

    /// Every object whose name starts with `prefix` (`packs/`, `index/`,
    /// ...), with its size, sorted by name.
    pub fn objects(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut out = match &self.store {
            Store::Dir(root) => {
                let mut v = vec![];
                walk(root, root, &mut v);
                v.retain(|(k, _)| k.starts_with(prefix));
                v
            }
            Store::Remote(s) => {
                use futures::TryStreamExt;
                let p = prefix.trim_end_matches('/');
                let list = s.list((!p.is_empty()).then(|| StorePath::from(p)).as_ref());
                block_on(list.try_collect::<Vec<_>>())
                    .unwrap()
                    .into_iter()
                    .map(|m| (m.location.to_string(), m.size))
                    .collect()
            }
        };
        out.sort();
        out
    }

    /// The lock objects under their own names (not a store's temporary
    /// upload files, which a listing of a directory also shows).
    pub fn locks(&self) -> Vec<String> {
        self.objects("locks/")
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| {
                let name = n.trim_start_matches("locks/");
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .collect()
    }

    /// The bytes of one object.
    pub fn read_object(&self, name: &str) -> Vec<u8> {
        match &self.store {
            Store::Dir(root) => std::fs::read(root.join(name)).unwrap(),
            Store::Remote(s) => {
                block_on(async { s.get(&StorePath::from(name)).await?.bytes().await })
                    .unwrap()
                    .to_vec()
            }
        }
    }

    /// Deletes every object whose name starts with `prefix` (`index/`).
    pub fn delete_objects(&self, prefix: &str) {
        for (name, _) in self.objects(prefix) {
            match &self.store {
                Store::Dir(root) => std::fs::remove_file(root.join(&name)).unwrap(),
                Store::Remote(s) => block_on(s.delete(&StorePath::from(name.as_str()))).unwrap(),
            }
        }
    }

    /// Deletes one object by its full name (`packs/ab/ab…`).
    pub fn delete_object(&self, name: &str) {
        match &self.store {
            Store::Dir(root) => std::fs::remove_file(root.join(name)).unwrap(),
            Store::Remote(s) => block_on(s.delete(&StorePath::from(name))).unwrap(),
        }
    }

    /// Every object's name and bytes: a saved state of the repository, to
    /// put back with [`Env::restore_state`].
    pub fn save_state(&self) -> Vec<(String, Vec<u8>)> {
        self.objects("")
            .into_iter()
            .map(|(name, _)| {
                let b = self.read_object(&name);
                (name, b)
            })
            .collect()
    }

    /// Makes the repository hold exactly `state` again (objects written
    /// since are deleted), and the cache what `cache` holds (a copy made
    /// with [`copy_dir`]).
    pub fn restore_state(&self, state: &[(String, Vec<u8>)], cache: &Path) {
        match &self.store {
            Store::Dir(root) => {
                let _ = std::fs::remove_dir_all(root);
                for (name, bytes) in state {
                    let p = root.join(name);
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(p, bytes).unwrap();
                }
            }
            Store::Remote(_) => {
                self.delete_objects("");
                for (name, bytes) in state {
                    self.write_object(name, bytes);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.cache);
        copy_dir(cache, &self.cache);
    }

    /// Replaces one object's bytes (to damage it).
    pub fn write_object(&self, name: &str, data: &[u8]) {
        match &self.store {
            Store::Dir(root) => {
                use std::os::unix::fs::PermissionsExt;
                let p = root.join(name);
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
                std::fs::write(&p, data).unwrap();
            }
            Store::Remote(s) => {
                block_on(s.put(&StorePath::from(name), data.to_vec().into())).unwrap();
            }
        }
    }
}

/// A repository in the S3 store is deleted with its test (the scratch
/// directory goes with its `TempDir`): pass 2 runs every suite against one
/// Garage, whose data would otherwise hold every test's repository at once.
/// Best effort, and never a panic: a test that fails still reports its own
/// failure.
impl Drop for Env {
    fn drop(&mut self) {
        let Store::Remote(s) = &self.store else {
            return;
        };
        use futures::{StreamExt, TryStreamExt};
        let s = s.clone();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            block_on(async move {
                let names: Vec<_> = match s.list(None).try_collect::<Vec<_>>().await {
                    Ok(v) => v.into_iter().map(|m| m.location).collect(),
                    Err(_) => return,
                };
                futures::stream::iter(names)
                    .for_each_concurrent(8, |n| {
                        let s = s.clone();
                        async move {
                            let _ = s.delete(&n).await;
                        }
                    })
                    .await;
            })
        }));
    }
}

/// Copies a directory tree (`from` may be missing: then `to` is created empty).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let Ok(rd) = std::fs::read_dir(from) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A directory of `files` random files of `size` bytes each.
pub fn random_tree(dir: &Path, files: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(
            dir.join(format!("f{i}.bin")),
            noise(size, seed * 1000 + i as u64),
        )
        .unwrap();
    }
}

/// Whether `back` holds exactly the files of `src` (recursively), byte for byte.
pub fn same_files(src: &Path, back: &Path) -> bool {
    fn list(root: &Path, p: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                list(root, &e.path(), out);
            } else {
                out.push((
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(e.path()).unwrap_or_default(),
                ));
            }
        }
    }
    let (mut a, mut b) = (vec![], vec![]);
    list(src, src, &mut a);
    list(back, back, &mut b);
    a.sort();
    b.sort();
    !a.is_empty() && a == b
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("arca-it-")
        .tempdir()
        .unwrap()
}

/// Every file below `p`, as its path relative to `root` and its size.
pub fn walk(root: &Path, p: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(p) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        if md.is_dir() {
            walk(root, &e.path(), out);
        } else {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.push((rel, md.len()));
        }
    }
}

/// The project's root directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether the `garage` binary is on PATH.
pub fn garage_installed() -> bool {
    Command::new("garage")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Garage started by `scripts/garage` in a scratch directory, stopped
/// (and its data deleted) when dropped.
pub struct Garage {
    pub dir: PathBuf,
    _scratch: tempfile::TempDir,
    pub target: RemoteTarget,
}

impl Garage {
    /// One node (`cluster == false`) or three with replication factor 3.
    pub fn start(cluster: bool) -> Self {
        let scratch = tempfile::Builder::new()
            .prefix("arca-garage-")
            .tempdir()
            .unwrap();
        let dir = scratch.path().join("garage");
        let out = Command::new(project_root().join("scripts/garage"))
            .arg(if cluster { "cluster" } else { "start" })
            .arg(&dir)
            .output()
            .expect("run scripts/garage");
        assert!(
            out.status.success(),
            "scripts/garage failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env = vec![];
        let mut bucket = None;
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) else {
                continue;
            };
            if k == "ARCA_TEST_GARAGE_BUCKET" {
                bucket = Some(v.to_string());
            } else if k.starts_with("AWS_") {
                env.push((k.to_string(), v.to_string()));
            }
        }
        Self {
            dir,
            _scratch: scratch,
            target: RemoteTarget {
                scheme: "s3",
                bucket: bucket.expect("scripts/garage printed the bucket"),
                env,
            },
        }
    }

    fn node(&self, what: &str, n: u32) {
        let st = Command::new(project_root().join("scripts/garage"))
            .args([what, self.dir.to_str().unwrap(), &n.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "scripts/garage {what} {n}");
    }

    /// kill -9 node `n` (1-based; node 1 serves the S3 endpoint).
    pub fn kill(&self, n: u32) {
        self.node("kill", n)
    }

    /// Starts node `n` again on its data.
    pub fn restart(&self, n: u32) {
        self.node("restart", n)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new(project_root().join("scripts/garage"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
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

/// The hidden variable that ends an arca process, as `kill -9` would,
/// just before its store operation N + 1 (exit code [`CRASH_EXIT`]).
pub const CRASH_ENV: &str = "ARCA_TEST_CRASH_AFTER_OPS";
/// The exit code of such a crash.
pub const CRASH_EXIT: i32 = 86;
/// The store operation a crashed run stopped before, as its stderr names it.
pub fn crash_point(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .rev()
        .find(|l| l.contains("test crash before"))
        .unwrap_or("")
        .trim_start_matches("arca: test crash before ")
        .to_string()
}

/// Crashes `arca args` before each of its store operations in turn: for
/// n = 0, 1, ... the repository and cache are put back to `state` and
/// `cache`, the command runs with a crash before operation n + 1, and
/// `after(what)` checks what the crash left (`what` names the point, for
/// messages). Ends with the first run that finishes uncrashed (its result
/// stays in the repository); returns how many store operations it made
/// and the crash points tried ("n: operation").
pub fn crash_sweep(
    e: &Env,
    state: &[(String, Vec<u8>)],
    cache: &Path,
    args: &[&str],
    mut after: impl FnMut(&str),
) -> (u64, Vec<String>) {
    let name = args[0];
    let mut points = vec![];
    let mut n = 0u64;
    loop {
        e.restore_state(state, cache);
        let o = e
            .cmd()
            .env(CRASH_ENV, n.to_string())
            .args(args)
            .output()
            .unwrap();
        match o.status.code() {
            Some(0) => return (n, points),
            Some(CRASH_EXIT) => {}
            other => panic!(
                "{name} crashed after {n} operations exited {other:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
        let at = crash_point(&o);
        after(&format!("{name} crashed before operation {n} + 1 ({at})"));
        points.push(format!("{n}: {at}"));
        n += 1;
        assert!(n < 500, "{name} never finished");
    }
}

/// The hidden variable that stops an arca process (SIGSTOP, once) just
/// before its store operation N + 1.
pub const STOP_ENV: &str = "ARCA_TEST_STOP_AFTER_OPS";

/// Restores `snapshot` into a fresh directory `target`; whether the
/// backed-up path `src` came back holding exactly what `expect` holds.
pub fn restores(e: &Env, snapshot: &str, src: &Path, expect: &Path, target: &str) -> bool {
    let t = e.path(target);
    let _ = std::fs::remove_dir_all(&t);
    let o = e.run(&["restore", snapshot, "--target", t.to_str().unwrap()]);
    o.status.success() && same_files(expect, &t.join(src.strip_prefix("/").unwrap()))
}

/// Asserts that `check --read-data` exits 0 (warnings allowed).
pub fn check_clean(e: &Env, what: &str) {
    let o = e.run(&["check", "--read-data"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: check --read-data must be clean: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Waits until `child` is stopped (SIGSTOP) or has exited; true if stopped.
pub fn wait_stopped(child: &mut std::process::Child) -> bool {
    let stat = format!("/proc/{}/stat", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if let Ok(s) = std::fs::read_to_string(&stat) {
            // pid (comm) STATE ...: comm may hold spaces
            if let Some(rest) = s.rsplit(')').next()
                && rest.trim_start().starts_with('T')
            {
                return true;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process {} neither stopped nor ended",
            child.id()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends `sig` (`-CONT`, `-9`) to `child`.
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

/// Kills the process it names when a failing test unwinds: a test that
/// fails while a child is stopped must not leave it behind.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .status();
        }
    }
}
