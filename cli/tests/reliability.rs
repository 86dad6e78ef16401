//! The reliability findings of issue 8, each reproduced as the user met it,
//! on the real binary: a repair that must not lose healthy snapshots, a
//! backup of nothing, errors that must name their cause, empty passwords,
//! and the messages a user reads when something is wrong.

mod common;

use std::path::Path;

use common::{Env, noise};

/// A file tree of `files` random files of `size` bytes.
fn tree(dir: &Path, files: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        std::fs::write(
            dir.join(format!("f{i}.bin")),
            noise(size, seed * 100 + i as u64),
        )
        .unwrap();
    }
}

/// Restores `snapshot` and says whether `source` came back byte-identical.
fn restores_identically(e: &Env, snapshot: &str, source: &Path, target: &str) -> bool {
    let t = e.path(target);
    let o = e.run(&["restore", snapshot, "--target", t.to_str().unwrap()]);
    if !o.status.success() {
        return false;
    }
    let back = t.join(source.strip_prefix("/").unwrap());
    let mut n = 0;
    for f in std::fs::read_dir(source).unwrap() {
        let f = f.unwrap();
        if std::fs::read(back.join(f.file_name())).ok() != Some(std::fs::read(f.path()).unwrap()) {
            return false;
        }
        n += 1;
    }
    n > 0
}

/// Finding 1: a pack truncated to zero bytes, then `repair index` without
/// `--read-data` (what the error message recommended). The repair wrote a
/// segment that readers rejected as a whole, so no pack was indexed any
/// more and the healthy second snapshot no longer restored; `repair
/// snapshots --forget` then emptied both snapshots. Failed before the fix
/// at the restore of the second snapshot after `repair index`.
#[test]
fn repair_index_after_a_pack_is_emptied_keeps_the_healthy_snapshot() {
    let e = Env::init();
    let first = e.path("first");
    let second = e.path("second");
    tree(&first, 3, 3_000_000, 1);
    tree(&second, 2, 400_000, 2);
    let s1 = e.backup(&[&first]);
    let s2 = e.backup(&[&second]);
    // the largest pack holds only the first snapshot's data
    let (big, _) = e
        .objects("packs/")
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap();
    e.write_object(&big, b"");
    let o = e.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "check finds the emptied pack");
    let out = e.ok(&["repair", "index"]);
    eprintln!("repair index: {out}");
    assert!(
        restores_identically(&e, &s2, &second, "after-repair-index"),
        "the healthy snapshot restores after `repair index`"
    );
    // the index the repair wrote is one that loads: a second repair has
    // nothing to change, and check still names the lost data (not the index)
    let again = e.json(&["repair", "index"]);
    assert_eq!(again["unchanged"], true, "{again}");
    let o = e.run(&["--json", "check"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["report"]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["object_kind"] != "index"),
        "{report}"
    );
    // rewriting the damaged snapshot keeps the healthy one as it is
    e.ok(&["repair", "snapshots", "--forget"]);
    assert!(restores_identically(
        &e,
        &s2,
        &second,
        "after-repair-snapshots"
    ));
    let snaps = e.json(&["snapshots"]);
    let repaired: Vec<&serde_json::Value> = snaps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["original"] == serde_json::Value::String(s1.clone()))
        .collect();
    assert_eq!(
        repaired.len(),
        1,
        "the damaged snapshot was rewritten: {snaps}"
    );
    let o = e.run(&["check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `repair snapshots` refuses to run on an index that is missing packs the
/// store still has (it would rewrite snapshots around data that `repair
/// index` can find, and `--forget` would delete the originals).
#[test]
fn repair_snapshots_waits_for_a_complete_index() {
    let e = Env::init();
    let src = e.path("src");
    tree(&src, 2, 500_000, 3);
    let id = e.backup(&[&src]);
    e.delete_objects("index/");
    let o = e.run(&["repair", "snapshots", "--forget"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("arca repair index"), "{err}");
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 1);
    e.ok(&["repair", "index"]);
    e.ok(&["repair", "snapshots", "--forget"]);
    assert!(restores_identically(&e, &id, &src, "out"));
}

/// Finding 2: a backup whose every source is missing saved an empty
/// snapshot that became `latest` (exit 3). It must save nothing and fail;
/// with some sources missing it is partial and names them.
#[test]
fn a_backup_of_missing_paths_saves_nothing() {
    let e = Env::init();
    let o = e.run(&["backup", "/no/such/path", "/nor/this"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/no/such/path") && err.contains("/nor/this") && err.contains("No such file"),
        "{err}"
    );
    assert!(e.json(&["snapshots"]).as_array().unwrap().is_empty());
    let o = e.run(&[
        "restore",
        "latest",
        "--target",
        e.path("t").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "there is no latest to restore");

    let src = e.path("src");
    tree(&src, 1, 1000, 4);
    let o = e.run(&["backup", src.to_str().unwrap(), "/no/such/path"]);
    assert_eq!(o.status.code(), Some(3), "partial");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/no/such/path"),
        "names the missing source: {err}"
    );
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 1);
}

/// Finding 4: an empty password from the environment or a file made an
/// unprotected repository; it is refused everywhere unless asked for.
#[test]
fn an_empty_password_is_refused() {
    let mut e = Env::new();
    e.password = String::new();
    let o = e.run(&["init", "--kdf-memory", "8192"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ARCA_PASSWORD") && err.contains("empty"),
        "{err}"
    );
    assert!(e.objects("").is_empty(), "nothing was written");

    let empty = e.path("empty-password");
    std::fs::write(&empty, "\n").unwrap();
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .env("ARCA_PASSWORD_FILE", &empty)
        .args(["init", "--kdf-memory", "8192"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty-password"));

    // asked for explicitly, it is allowed, and needed again to open
    e.ok(&["init", "--kdf-memory", "8192", "--insecure-empty-password"]);
    assert_eq!(e.run(&["snapshots"]).status.code(), Some(1));
    e.ok(&["snapshots", "--insecure-empty-password"]);

    // a new key with an empty password is refused the same way
    let e = Env::init();
    let o = e.run(&[
        "key",
        "add",
        "--new-password-file",
        empty.to_str().unwrap(),
        "--kdf-memory",
        "8192",
    ]);
    assert_eq!(o.status.code(), Some(1));
}

/// Finding 5, the messages: a repository path or a target that is a
/// regular file, an include that is not in the snapshot, a repository
/// without key files. Each says what is wrong once, with the right names.
#[test]
fn messages_name_the_right_things() {
    let e = Env::init();
    let src = e.path("src");
    tree(&src, 1, 1000, 5);
    let id = e.backup(&[&src]);

    let file = e.path("a-file");
    std::fs::write(&file, b"x").unwrap();
    if !e.is_remote() {
        let o = e
            .cmd()
            .env("ARCA_REPOSITORY", &file)
            .arg("snapshots")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("is a file, not a directory"), "{err}");
        assert!(
            !err.contains("(os error 17): File exists"),
            "said twice: {err}"
        );
    }
    let o = e.run(&["restore", &id, "--target", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is a file, not a directory"), "{err}");

    let o = e.run(&[
        "restore",
        &id,
        "--target",
        e.path("t").to_str().unwrap(),
        "--include",
        "/not/there",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&id[..8]), "names the snapshot id: {err}");

    e.delete_objects("keys/");
    let o = e.run(&["snapshots"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no key files"), "{err}");
}

/// Finding 5, stale locks: after kill -9, the dead process's lock is
/// removed by the next command on the same host instead of being reported
/// by every command after it.
#[test]
fn a_killed_process_leaves_no_lock_behind_for_long() {
    let e = Env::init();
    // a backup that waits on its input: killed while it holds its lock
    let mut child = e
        .cmd()
        .args(["backup", "--stdin", "--stdin-filename", "slow"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while e.locks().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(e.locks().len(), 1, "kill -9 left its lock");
    let src = e.path("src");
    tree(&src, 1, 1000, 6);
    let o = e.run(&["backup", src.to_str().unwrap()]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("stale"),
        "no warning about a dead process: {err}"
    );
    assert!(e.locks().is_empty(), "the dead lock was removed");
}

/// A live data directory (a database's, a vector store's) creates and
/// deletes temporary files all the time: one that was listed but is gone
/// when it is read is left out with a warning, never an error that makes
/// the snapshot partial and the exit code 3 (found backing up a Qdrant
/// shard while it was written: `.atomicwrite*/tmpfile.tmp`).
#[test]
fn files_deleted_while_the_backup_runs_are_warnings_not_errors() {
    let e = Env::init();
    let src = e.path("live");
    tree(&src.join("data"), 8, 1 << 20, 31);
    let churn = src.join("tmp");
    std::fs::create_dir_all(&churn).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churner = {
        let (stop, churn) = (stop.clone(), churn.clone());
        // a rolling window of 64 short-lived files, each 4 KiB
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::write(churn.join(format!("t{n}")), [7u8; 4096]).unwrap();
                if n >= 64 {
                    let _ = std::fs::remove_file(churn.join(format!("t{}", n - 64)));
                }
                n += 1;
            }
        })
    };
    // until a file has vanished in at least one run (almost always the
    // first), at most 10: every run must be free of errors
    let mut vanished = 0;
    let mut runs = 0;
    while runs < 10 && (runs < 3 || vanished == 0) {
        runs += 1;
        let o = e.run(&["backup", src.to_str().unwrap(), "--json"]);
        let out: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|_| panic!("no JSON: {}", String::from_utf8_lossy(&o.stderr)));
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
        assert_eq!(out["partial"], false, "{out}");
        vanished += out["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["error"].as_str().unwrap().starts_with("vanished before"))
            .count();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churner.join().unwrap();
    eprintln!("{vanished} file(s) vanished during {runs} backups");
    assert!(vanished > 0, "no file vanished: the test did not race");
    let snap = e.json(&["snapshots"])[2]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(restores_identically_below(&e, &snap, &src.join("data")));
}

/// Restores `snapshot` and compares the directory `dir` under it.
fn restores_identically_below(e: &Env, snapshot: &str, dir: &Path) -> bool {
    let back = e.restore(snapshot, dir, "back-live");
    common::same_files(dir, &back)
}
