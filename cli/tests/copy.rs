//! `arca copy`: snapshots from one repository into another with its own
//! password, keys and chunker parameters. Both restore the same bytes; a
//! second run copies nothing; a later run reads from the source only what
//! is new; filters choose what is copied; a wrong source password writes
//! nothing.
//!
//! Runs on the backend the suite runs on: two local directories, or two
//! prefixes of the Garage bucket with `ARCA_TEST_BACKEND=garage`.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Output, Stdio};

use common::{Env, copy_dir, random_tree, same_files, signal, wait_stopped};

/// A repository under its own password (and init options).
fn repo(password: &str, init: &[&str]) -> Env {
    let mut e = Env::new();
    e.password = password.into();
    let mut a = vec!["init", "--kdf-memory", "8192"];
    a.extend(init);
    e.ok(&a);
    e
}

/// `arca copy` run against `dest` from `source` (the source's address
/// and password through ARCA_FROM_*).
fn copy_run<S: AsRef<OsStr>>(dest: &Env, source: &Env, password: &str, args: &[S]) -> Output {
    dest.cmd()
        .env("ARCA_FROM_REPOSITORY", &source.repo)
        .env("ARCA_FROM_PASSWORD", password)
        .arg("copy")
        .args(args)
        .output()
        .expect("run arca copy")
}

/// `arca copy --json ARGS`, which must succeed.
fn copy_json(dest: &Env, source: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend(args);
    let o = copy_run(dest, source, &source.password, &a);
    assert!(
        o.status.success(),
        "copy {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn snapshots(e: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["snapshots"];
    a.extend(args);
    e.json(&a).as_array().unwrap().clone()
}

fn total(v: &serde_json::Value, k: &str) -> u64 {
    v["totals"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("no totals.{k} in {v}"))
}

/// The objects of a repository but its locks (which a run adds and
/// removes).
fn objects(e: &Env) -> Vec<(String, u64)> {
    let mut v = e.objects("");
    v.retain(|(n, _)| !n.starts_with("locks/"));
    v
}

fn restore_same(e: &Env, id: &str, source: &Path, original: &Path, target: &str) {
    let back = e.restore(id, source, target);
    assert!(
        same_files(original, &back),
        "snapshot {id} restored from the destination differs from {}",
        original.display()
    );
}

#[test]
fn copy_into_a_repository_with_other_keys() {
    let src = repo("source password", &[]);
    // other keys and other chunker parameters
    let dst = repo("destination password", &["--chunker", "16384,65536,262144"]);
    let data = src.path("data");
    random_tree(&data, 6, 300_000, 1);
    random_tree(&data.join("sub"), 3, 1_000_000, 2);
    let v1 = src.path("v1");
    copy_dir(&data, &v1);
    let s1 = src.backup(&[&data]);
    // change between the backups: a file rewritten, one added, one removed
    std::fs::write(data.join("f0.bin"), common::noise(400_000, 77)).unwrap();
    std::fs::write(data.join("sub/new.bin"), common::noise(250_000, 78)).unwrap();
    std::fs::remove_file(data.join("f1.bin")).unwrap();
    let v2 = src.path("v2");
    copy_dir(&data, &v2);
    let s2 = src.backup(&[&data]);

    // a dry run lists both and writes nothing
    let before = objects(&dst);
    let plan = copy_json(&dst, &src, &["--dry-run"]);
    assert_eq!(plan["to_copy"], 2, "{plan}");
    assert_eq!(objects(&dst), before, "a dry run wrote to the destination");

    let first = copy_json(&dst, &src, &[]);
    assert_eq!(total(&first, "snapshots_copied"), 2, "{first}");
    assert!(total(&first, "bytes_uploaded") > 0);
    let copied = first["snapshots"].as_array().unwrap();
    assert_eq!(copied[0]["source"], s1.as_str());
    assert_eq!(copied[1]["source"], s2.as_str());
    let d1 = copied[0]["destination"].as_str().unwrap().to_string();
    let d2 = copied[1]["destination"].as_str().unwrap().to_string();

    // the destination has both, with the same time, host and paths, each
    // naming its original; the second's parent is the first's copy
    let ss = snapshots(&src, &[]);
    let ds = snapshots(&dst, &[]);
    assert_eq!(ds.len(), 2);
    for (s, d) in ss.iter().zip(&ds) {
        for k in ["time", "host", "paths", "tags", "username"] {
            assert_eq!(s[k], d[k], "{k}");
        }
        assert_eq!(d["original"], s["id"]);
        assert_ne!(d["tree"], s["tree"], "tree ids are keyed: they differ");
    }
    assert_eq!(ds[1]["parent"], d1.as_str());

    // both restore from the destination, byte for byte
    restore_same(&dst, &d1, &data, &v1, "r1");
    restore_same(&dst, &d2, &data, &v2, "r2");

    // a second run copies nothing and uploads nothing
    let before = objects(&dst);
    let again = copy_json(&dst, &src, &[]);
    assert_eq!(total(&again, "snapshots_copied"), 0, "{again}");
    assert_eq!(total(&again, "snapshots_skipped"), 2);
    assert_eq!(total(&again, "bytes_uploaded"), 0);
    assert_eq!(total(&again, "blobs_read"), 0);
    assert_eq!(again["snapshots"][0]["destination"], d1.as_str());
    assert_eq!(
        objects(&dst),
        before,
        "a second copy wrote to the destination"
    );

    let check = dst.run(&["check", "--read-data"]);
    assert!(
        check.status.success(),
        "check --read-data on the destination: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // a third backup adds one small file: its copy reads only that from
    // the source (the id map remembers the rest), and restores
    std::fs::write(data.join("small.bin"), common::noise(10_000, 79)).unwrap();
    let v3 = src.path("v3");
    copy_dir(&data, &v3);
    src.backup(&[&data]);
    let third = copy_json(&dst, &src, &[]);
    assert_eq!(total(&third, "snapshots_copied"), 1, "{third}");
    assert_eq!(total(&third, "snapshots_skipped"), 2);
    assert_eq!(total(&third, "blobs_read"), 1, "{third}");
    assert_eq!(total(&third, "bytes_read"), 10_000);
    let d3 = third["snapshots"][2]["destination"]
        .as_str()
        .unwrap()
        .to_string();
    restore_same(&dst, &d3, &data, &v3, "r3");
}

#[test]
fn filters_choose_what_is_copied() {
    let src = repo("source password", &[]);
    let data = src.path("data");
    random_tree(&data, 3, 100_000, 5);
    let a = src.json(&[
        OsStr::new("backup"),
        OsStr::new("--host"),
        OsStr::new("alpha"),
        data.as_os_str(),
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = src.json(&[
        OsStr::new("backup"),
        OsStr::new("--host"),
        OsStr::new("beta"),
        OsStr::new("--tag"),
        OsStr::new("nightly"),
        data.as_os_str(),
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();

    // by host
    let dst = repo("destination password", &[]);
    let v = copy_json(&dst, &src, &["--host", "beta"]);
    assert_eq!(total(&v, "snapshots_copied"), 1, "{v}");
    assert_eq!(v["snapshots"][0]["source"], b.as_str());
    let ds = snapshots(&dst, &[]);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["host"], "beta");
    assert_eq!(ds[0]["tags"], serde_json::json!(["nightly"]));

    // by id prefix, into another repository
    let dst2 = repo("another password", &[]);
    let v = copy_json(&dst2, &src, &[&a[..10]]);
    assert_eq!(total(&v, "snapshots_copied"), 1, "{v}");
    assert_eq!(v["snapshots"][0]["source"], a.as_str());
    let ds = snapshots(&dst2, &[]);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["original"], a.as_str());
    // then everything: only what is missing
    let v = copy_json(&dst2, &src, &[]);
    assert_eq!(total(&v, "snapshots_copied"), 1, "{v}");
    assert_eq!(total(&v, "snapshots_skipped"), 1);
    assert_eq!(snapshots(&dst2, &[]).len(), 2);
}

#[test]
fn a_wrong_source_password_writes_nothing() {
    let src = repo("source password", &[]);
    let data = src.path("data");
    random_tree(&data, 2, 50_000, 9);
    src.backup(&[&data]);
    let dst = repo("destination password", &[]);
    let before = dst.objects("");
    let o = copy_run(&dst, &src, "not the password", &[] as &[&str]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("source repository") && err.contains("wrong password"),
        "{err}"
    );
    // an empty one is refused, naming the variable and the flag
    let o = copy_run(&dst, &src, "", &[] as &[&str]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ARCA_FROM_PASSWORD") && err.contains("--from-insecure-empty-password"),
        "{err}"
    );
    assert_eq!(dst.objects(""), before, "the destination was written to");
    assert!(snapshots(&dst, &[]).is_empty());

    // the same source with its password, from a file
    let pw = dst.path("source-password");
    std::fs::write(&pw, "source password\n").unwrap();
    let o = dst
        .cmd()
        .env("ARCA_FROM_REPOSITORY", &src.repo)
        .arg("copy")
        .arg("--from-password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(snapshots(&dst, &[]).len(), 1);
}

/// The handshake with prune: a copy stopped before each of its store
/// operations while another host forgets the destination snapshot it
/// dedups against and prunes at once (`--now`) either saves a snapshot
/// that restores whole, or keeps none and says so; check stays clean.
/// (The stop counts each repository's operations apart, and the process
/// stops at whichever comes first: every point of the destination's
/// commit is not reached for every N.)
#[test]
fn a_copy_stopped_across_a_prune_saves_a_whole_snapshot_or_nothing() {
    const STOP_ENV: &str = "ARCA_TEST_STOP_AFTER_OPS";
    let src = repo("source password", &[]);
    let data = src.path("data");
    random_tree(&data, 3, 400_000, 5);
    let s1 = src.backup(&[&data]);
    // the same data again: its copy dedups against the copy of s1
    let s2 = src.json(&[
        OsStr::new("backup"),
        OsStr::new("--tag"),
        OsStr::new("again"),
        data.as_os_str(),
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dst = repo("destination password", &["--pack-size", "1"]);
    let d1 = copy_json(&dst, &src, &[&s1])["snapshots"][0]["destination"]
        .as_str()
        .unwrap()
        .to_string();
    let other = dst.path("other");
    random_tree(&other, 1, 10_000, 6);
    dst.backup(&[&other]);
    let state = dst.save_state();
    let cache = dst.path("cache-saved");
    copy_dir(&dst.cache, &cache);
    let pruner_cache = dst.path("cache-pruner");

    let (mut saved, mut refused) = (0, 0);
    let mut n = 0u64;
    loop {
        dst.restore_state(&state, &cache);
        let _ = std::fs::remove_dir_all(&pruner_cache);
        let mut child = dst
            .cmd()
            .env(STOP_ENV, n.to_string())
            .env("ARCA_FROM_REPOSITORY", &src.repo)
            .env("ARCA_FROM_PASSWORD", &src.password)
            .args(["--json", "copy", &s2])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if !wait_stopped(&mut child) {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "the copy without a stop: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            break;
        }
        let what = format!("copy stopped before operation {n} + 1");
        let o = dst
            .cmd()
            .env("ARCA_CACHE_DIR", &pruner_cache)
            .args(["forget", &d1, "--prune", "--now", "--max-unused", "0%"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: forget --prune --now: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // each repository's connection stops once at its own count
        signal(&child, "-CONT");
        while wait_stopped(&mut child) {
            signal(&child, "-CONT");
        }
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let id = v["snapshots"][0]["destination"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                snapshots(&dst, &[]).iter().any(|s| s["id"] == id.as_str()),
                "{what}: the copy is listed"
            );
            restore_same(&dst, &id, &data, &data, &format!("r{n}"));
            saved += 1;
        } else {
            // the handshake refused it, or (--now frees at once what an
            // overlapping run uploaded) a pack it wrote was gone: either
            // way a clear error and no snapshot
            assert!(
                err.contains("was not kept") || err.contains("run copy again"),
                "{what}: a clear error: {err}"
            );
            assert_eq!(
                snapshots(&dst, &[]).len(),
                1,
                "{what}: nothing kept but the other snapshot"
            );
            refused += 1;
            // and running it again copies it
            let v = copy_json(&dst, &src, &[&s2]);
            let id = v["snapshots"][0]["destination"]
                .as_str()
                .unwrap()
                .to_string();
            restore_same(&dst, &id, &data, &data, &format!("r{n}"));
        }
        let o = dst.run(&["check", "--read-data"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: check --read-data: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        n += 1;
        assert!(n < 500, "the copy never finished");
    }
    eprintln!(
        "copy stopped at each of its {n} store operations across forget --prune --now: {saved} saved and restored, {refused} refused with a clear error"
    );
    assert!(n > 5);
}
