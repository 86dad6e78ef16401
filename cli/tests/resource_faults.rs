//! Resource faults, for real: the repository's filesystem full at many
//! points of a backup, the restore target full, a read-only repository, and
//! file descriptors exhausted (`ulimit -n 64`). Each time: a clear error
//! naming the cause, nothing lost, the repository still checks clean, and
//! the next run after the fault is gone succeeds.
//!
//! Small filesystems are tmpfs mounts made by the test, which needs root
//! (CI runs as root); without root the tests say so and do nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, copy_dir, is_root, random_tree, same_files};

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `bytes`, or `None` (with a notice) when not root.
    fn new(bytes: u64) -> Option<Self> {
        if !is_root() {
            eprintln!(
                "NOTICE: not root: the resource fault tests need to mount a tmpfs and did not run"
            );
            return None;
        }
        let scratch = tempfile::Builder::new()
            .prefix("arca-tmpfs-")
            .tempdir()
            .unwrap();
        let dir = scratch.path().join("mnt");
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs as root");
        Some(Self {
            dir,
            _scratch: scratch,
        })
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opts}");
    }

    /// Bytes in use.
    fn used(&self) -> u64 {
        let st = nix_statvfs(&self.dir);
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn nix_statvfs(p: &Path) -> libc::statvfs {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string and a zeroed struct for statvfs to fill.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0);
        st
    }
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn restores(e: &Env, snapshot: &str, src: &Path, target: &Path) -> bool {
    let _ = std::fs::remove_dir_all(target);
    let o = e.run(&["restore", snapshot, "--target", target.to_str().unwrap()]);
    o.status.success() && same_files(src, &target.join(src.strip_prefix("/").unwrap()))
}

fn check_clean(e: &Env, what: &str) {
    let o = e.run(&["check", "--read-data"]);
    assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
}

#[test]
fn repository_full_at_many_points_of_a_backup() {
    let Some(fs) = Tmpfs::new(64 << 20) else {
        return;
    };
    let e = Env::local_at(&fs.dir.join("repo"));
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let small = e.path("small");
    random_tree(&small, 2, 100_000, 1);
    let s1 = e.backup(&[&small]);
    let big = e.path("big");
    random_tree(&big, 4, 1_000_000, 2);
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    // how much the big backup writes
    let before = fs.used();
    e.backup(&[&big]);
    let need = fs.used() - before;
    let mut tried = vec![];
    for frac in [0.02, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99, 0.995, 0.999] {
        e.restore_state(&state, &cache);
        let room = before + ((need as f64 * frac) as u64 / 4096) * 4096;
        fs.remount(&format!("size={room}"));
        let json = tried.len() % 2 == 1;
        let mut args = vec!["backup", big.to_str().unwrap()];
        if json {
            args.insert(0, "--json");
        }
        let o = e.run(&args);
        fs.remount("size=64m");
        let err = stderr(&o);
        match o.status.code() {
            Some(0) => {
                tried.push(format!("{frac}: fitted"));
            }
            Some(1) => {
                assert!(
                    err.contains("No space left on device"),
                    "{frac}: the error names the cause: {err}"
                );
                assert!(
                    !err.contains("interrupted"),
                    "{frac}: not an interruption: {err}"
                );
                if json {
                    let line = err.lines().last().unwrap();
                    let v: serde_json::Value = serde_json::from_str(line)
                        .unwrap_or_else(|_| panic!("{frac}: JSON error: {err}"));
                    assert_eq!(v["message_type"], "exit_error");
                    assert!(v["message"].as_str().unwrap().contains("No space left"));
                }
                tried.push(format!(
                    "{frac}: {}",
                    err.lines()
                        .last()
                        .unwrap_or("")
                        .chars()
                        .take(160)
                        .collect::<String>()
                ));
            }
            other => panic!("{frac}: exit {other:?}: {err}"),
        }
        check_clean(&e, &format!("after the disk filled at {frac}"));
        assert!(
            restores(&e, &s1, &small, &e.path("r1")),
            "{frac}: nothing lost"
        );
        let id = e.backup(&[&big]);
        assert!(
            restores(&e, &id, &big, &e.path("r2")),
            "{frac}: the next run succeeds"
        );
    }
    eprintln!("repository full at fractions of the backup's {need} bytes:");
    for t in &tried {
        eprintln!("  {t}");
    }
    assert!(
        tried.iter().filter(|t| !t.contains("fitted")).count() >= 5,
        "the disk filled in most trials: {tried:?}"
    );
}

#[test]
fn restore_target_full_is_one_clear_error() {
    let Some(fs) = Tmpfs::new(1 << 20) else {
        return;
    };
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 40, 100_000, 3);
    let id = e.backup(&[&src]);
    let t = fs.dir.join("target");
    let o = e.run(&["restore", &id, "--target", t.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        !err.contains("damaged"),
        "a full target is not damage: {err}"
    );
    assert!(
        err.lines().count() <= 5,
        "one error, not one per file: {err}"
    );
    fs.remount("size=16m");
    assert!(restores(&e, &id, &src, &t), "restores once there is room");
}

#[test]
fn read_only_repository() {
    let Some(fs) = Tmpfs::new(64 << 20) else {
        return;
    };
    let e = Env::local_at(&fs.dir.join("repo"));
    e.ok(&["init", "--kdf-memory", "8192"]);
    let src = e.path("src");
    random_tree(&src, 3, 200_000, 4);
    let id = e.backup(&[&src]);
    fs.remount("ro");
    let o = e.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("Read-only file system"), "{err}");
    // reading works: list, restore, verify
    e.ok(&["snapshots"]);
    // a lock cannot be written: the error says how to read without one
    let o = e.run(&["restore", &id, "--target", e.path("r").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--no-lock"), "{}", stderr(&o));
    let o = e.run(&[
        "restore",
        &id,
        "--no-lock",
        "--target",
        e.path("r").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(same_files(
        &src,
        &e.path("r").join(src.strip_prefix("/").unwrap())
    ));
    let o = e.run(&["check", "--read-data", "--no-lock"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    fs.remount("rw");
    check_clean(&e, "after the repository is writable again");
    let id2 = e.backup(&[&src]);
    assert!(restores(&e, &id2, &src, &e.path("r2")));
}

#[test]
fn file_descriptors_exhausted() {
    if !is_root() {
        eprintln!("NOTICE: not root: skipped with the other resource fault tests");
        return;
    }
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src.join("small"), 300, 2_000, 5);
    random_tree(&src.join("big"), 4, 3_000_000, 6);
    let limited = |args: &[&str]| {
        let c = e.cmd();
        let mut sh = Command::new("sh");
        sh.env_clear()
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
            .arg(c.get_program())
            .args(args)
            .stdin(std::process::Stdio::null());
        sh.output().unwrap()
    };
    let o = limited(&["backup", src.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "backup under ulimit -n 64: {}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["snapshots", "--json"])).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_string();
    let t = e.path("restore");
    let o = limited(&["restore", &id, "--target", t.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "restore under ulimit -n 64: {}",
        stderr(&o)
    );
    assert!(same_files(&src, &t.join(src.strip_prefix("/").unwrap())));
    let o = limited(&["check", "--read-data"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
