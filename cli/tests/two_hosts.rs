//! Many hosts, one repository: two hosts (two cache directories, two host
//! names) back up at the same time, see each other's snapshots, dedup
//! against each other's chunks and restore each other's snapshots; catalog
//! sync reads only what is new; locks are visible and `arca unlock` removes
//! only stale ones.
//!
//! Runs on the backend the suite runs on: a local directory, or Garage with
//! `ARCA_TEST_BACKEND=garage` (`scripts/test` runs both).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Env, b3, noise};

/// The arca command of one host: its own cache directory and host name.
struct Host<'a> {
    e: &'a Env,
    name: &'static str,
}

impl Host<'_> {
    fn cmd(&self) -> Command {
        let mut c = self.e.cmd();
        c.env(
            "ARCA_CACHE_DIR",
            self.e.path(&format!("cache-{}", self.name)),
        );
        c
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.cmd().args(args).arg("--json").output().unwrap();
        assert!(
            o.status.success(),
            "{} arca {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// `arca snapshots -v`: the snapshots, and what the catalog sync read.
    fn snapshots_v(&self) -> (serde_json::Value, (u64, u64, bool)) {
        let o = self
            .cmd()
            .args(["snapshots", "--json", "-v"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        let line = err
            .lines()
            .find(|l| l.starts_with("catalog sync:"))
            .unwrap_or_else(|| panic!("no sync line in {err}"));
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_string()
        };
        (
            serde_json::from_slice(&o.stdout).unwrap(),
            (
                field("segments_read").parse().unwrap(),
                field("snapshots_read").parse().unwrap(),
                field("rebuilt") == "true",
            ),
        )
    }
}

fn write_tree(dir: &Path, files: u64, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i}.bin")), noise(size, seed * 1000 + i)).unwrap();
    }
}

fn same_tree(a: &Path, b: &Path) {
    let mut n = 0;
    for e in std::fs::read_dir(a).unwrap() {
        let e = e.unwrap();
        assert_eq!(b3(&e.path()), b3(&b.join(e.file_name())), "{:?}", e.path());
        n += 1;
    }
    assert!(n > 0);
}

fn time(v: &serde_json::Value, k: &str) -> chrono::DateTime<chrono::Utc> {
    v["summary"][k].as_str().unwrap().parse().unwrap()
}

#[test]
fn two_hosts_share_one_repository() {
    let e = Env::init();
    let a = Host {
        e: &e,
        name: "alpha",
    };
    let b = Host {
        e: &e,
        name: "beta",
    };
    let da = e.path("alpha-data");
    let db = e.path("beta-data");
    write_tree(&da, 6, 12 << 20, 1);
    write_tree(&db, 6, 12 << 20, 2);

    // both back up at the same time: shared locks, no interference
    let spawn = |h: &Host, dir: &Path| {
        h.cmd()
            .args(["backup", "--host", h.name, "--json"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a, &da), spawn(&b, &db));
    let parse = |o: std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let va = parse(pa.wait_with_output().unwrap());
    let vb = parse(pb.wait_with_output().unwrap());
    assert!(
        time(&va, "backup_start") < time(&vb, "backup_end")
            && time(&vb, "backup_start") < time(&va, "backup_end"),
        "the two backups overlapped in time: {} / {}",
        va["summary"],
        vb["summary"]
    );
    let (ida, idb) = (
        va["snapshot_id"].as_str().unwrap().to_string(),
        vb["snapshot_id"].as_str().unwrap().to_string(),
    );

    // each sees the other's snapshot
    for (h, other, id) in [(&a, "beta", &idb), (&b, "alpha", &ida)] {
        let s = h.json(&["snapshots", "--host", other]);
        let s = s.as_array().unwrap();
        assert_eq!(s.len(), 1, "{} sees {other}", h.name);
        assert_eq!(s[0]["id"].as_str().unwrap(), id);
    }

    // each restores the other's snapshot, byte for byte
    for (h, id, src) in [(&a, &idb, &db), (&b, &ida, &da)] {
        let t = e.path(&format!("restore-by-{}", h.name));
        let o = h
            .cmd()
            .args(["restore", id, "--target"])
            .arg(&t)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        same_tree(src, &t.join(src.strip_prefix("/").unwrap()));
    }

    // beta backs up the same bytes as alpha did (another path, so no
    // parent): it dedups against alpha's chunks and uploads little
    let copy = e.path("beta-copy-of-alpha");
    common::sh(&format!("cp -a '{}' '{}'", da.display(), copy.display()));
    let v = b.json(&["backup", "--host", "beta", copy.to_str().unwrap()]);
    let total = v["summary"]["total_bytes"].as_u64().unwrap();
    let packed = v["summary"]["data_added_packed"].as_u64().unwrap();
    assert_eq!(total, 6 * (12 << 20));
    assert!(
        packed * 100 < total,
        "the second host uploaded {packed} bytes for {total} bytes already stored by the first"
    );
    assert_eq!(v["summary"]["files_new"], 6);

    // catalog sync is incremental: alpha reads only beta's new segment and
    // snapshot, then nothing
    let (snaps, (segs, snapshots, rebuilt)) = a.snapshots_v();
    assert_eq!(snaps.as_array().unwrap().len(), 3);
    assert_eq!((segs, snapshots, rebuilt), (1, 1, false), "alpha's sync");
    let (_, read) = a.snapshots_v();
    assert_eq!(read, (0, 0, false), "nothing new, nothing read");
    // a host that never saw the repository reads everything once
    let c = Host {
        e: &e,
        name: "gamma",
    };
    let (_, (segs, snapshots, _)) = c.snapshots_v();
    assert!(segs >= 3 && snapshots == 3, "{segs} {snapshots}");
    let (_, read) = c.snapshots_v();
    assert_eq!(read, (0, 0, false));
}

/// Whether a thread of process `pid` is blocked in `read` on its standard
/// input (Linux: `/proc/PID/task/*/syscall` starts with the syscall number
/// and the file descriptor).
fn reading_stdin(pid: u32) -> bool {
    const READ: &str = if cfg!(target_arch = "aarch64") {
        "63"
    } else {
        "0"
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| {
            let mut f = s.split_whitespace();
            f.next() == Some(READ) && f.next() == Some("0x0")
        })
    })
}

#[test]
fn unlock_removes_only_stale_locks() {
    let e = Env::init();
    let h = Host {
        e: &e,
        name: "alpha",
    };
    // a backup that holds its lock while it waits for standard input
    let mut live = h
        .cmd()
        .args(["backup", "--stdin", "--stdin-filename", "dump.sql"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = live.stdin.take().unwrap();
    stdin.write_all(b"partial").unwrap();
    // what the victim says, should it stop on its own before the kill
    // (CI once saw its lock vanish before `unlock` ran)
    let victim_err = e.path("victim.stderr");
    let mut victim = h
        .cmd()
        .args(["backup", "--stdin", "--stdin-filename", "other.sql"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&victim_err).unwrap())
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&victim_err).unwrap_or_default();
    // wait until both have taken their locks and gone on to read their
    // input. Seeing two lock objects is not enough: a backup that is still
    // taking its lock reads every other lock and deletes those of dead
    // processes of this host, so a victim killed while the live one was
    // at that step lost its lock to it (seen against Azurite, 3 runs in
    // 12). A backup takes its lock before it reads standard input, so a
    // backup blocked reading it holds its lock and is done taking it.
    let start = std::time::Instant::now();
    while !(reading_stdin(live.id()) && reading_stdin(victim.id())) {
        assert!(
            start.elapsed().as_secs() < 60,
            "the backups never took their locks and waited for input: {:?}; the victim said: {}",
            e.locks(),
            said()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // whole lock objects: a local store's upload passes through a
    // temporary file, which a kill in the middle of it would leave behind
    // under another name
    assert_eq!(e.locks().len(), 2);
    // one dies without cleaning up: its lock stays behind
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the victim stopped by itself: {}",
        said()
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert_eq!(e.locks().len(), 2);

    let v = h.json(&["unlock"]);
    let removed = v["removed"].as_array().unwrap();
    let kept = v["kept"].as_array().unwrap();
    assert_eq!(
        removed.len(),
        1,
        "{v}; the victim (pid {}) said: {}",
        victim.id(),
        said()
    );
    assert_eq!(removed[0]["lock"]["pid"], victim.id());
    assert_eq!(removed[0]["stale"], true);
    assert_eq!(kept.len(), 1, "{v}");
    assert_eq!(kept[0]["lock"]["pid"], live.id());
    assert_eq!(kept[0]["lock"]["kind"], "shared");
    assert_eq!(
        kept[0]["lock"]["host"].as_str().unwrap(),
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    assert_eq!(e.locks().len(), 1);

    // the live backup finishes normally and removes its own lock
    stdin.write_all(b" and the rest").unwrap();
    drop(stdin);
    assert!(live.wait().unwrap().success());
    assert!(e.locks().is_empty());
    let snaps = h.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1);
}
