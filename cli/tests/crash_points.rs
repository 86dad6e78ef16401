//! Crash points: a command ended, as by `kill -9`, before its N-th store
//! operation, for every N from the first operation to the last. After
//! each crash the repository checks clean (apart from unreferenced
//! leftovers, which are warnings), every snapshot saved before restores
//! byte-identical, and the next run finishes the job.
//!
//! The crash comes from the binary itself (the hidden
//! `ARCA_TEST_CRASH_AFTER_OPS=N`), which ends the process with no cleanup
//! at all just before its store operation N + 1. Each N starts from the
//! same saved repository and cache, so every crash point of the same
//! command is tried.

mod common;

use std::path::Path;

use common::{
    CRASH_ENV, CRASH_EXIT, Env, check_clean, copy_dir, crash_point, crash_sweep, random_tree,
    restores,
};

/// Where a crashed run stopped: its last line on stderr.
#[test]
fn backup_survives_a_crash_between_any_two_store_operations() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let v1 = e.path("v1");
    random_tree(&v1, 3, 300_000, 1);
    let src = e.path("src");
    copy_dir(&v1, &src);
    let s1 = e.backup(&[&src]);
    // the second backup changes one file and adds three packs' worth
    std::fs::write(src.join("f0.bin"), common::noise(300_000, 77)).unwrap();
    random_tree(&src.join("new"), 3, 1_100_000, 2);
    let v2 = e.path("v2");
    copy_dir(&src, &v2);
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);

    let args = ["backup", src.to_str().unwrap()];
    let (total, points) = crash_sweep(&e, &state, &cache, &args, |what| {
        check_clean(&e, what);
        assert!(
            restores(&e, &s1, &src, &v1, "r1"),
            "{what}: the earlier snapshot restores"
        );
        // a snapshot the crashed run managed to commit is whole
        let snaps = e.json(&["snapshots"]);
        let ids: Vec<String> = snaps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        for id in ids.iter().filter(|i| **i != s1) {
            assert!(
                restores(&e, id, &src, &v2, "r2"),
                "{what}: committed snapshot {id}"
            );
        }
        // and the next run finishes the job
        let id = e.backup(&[&src]);
        assert!(
            restores(&e, &id, &src, &v2, "r3"),
            "{what}: the next backup"
        );
    });
    eprintln!(
        "backup: {total} store operations, {} crash points tried:",
        points.len()
    );
    for p in &points {
        eprintln!("  {p}");
    }
    assert!(
        total > 10,
        "a backup of three packs takes more than {total} operations"
    );
    assert_eq!(points.len() as u64, total);
}

/// Which of `files` (relative to `src`) restore byte-identical from
/// `snapshot` now (a partial restore keeps the files it verified).
fn restorable(e: &Env, snapshot: &str, src: &Path, expect: &Path, target: &str) -> Vec<String> {
    let t = e.path(target);
    let _ = std::fs::remove_dir_all(&t);
    let _ = e.run(&["restore", snapshot, "--target", t.to_str().unwrap()]);
    let back = t.join(src.strip_prefix("/").unwrap());
    let mut ok = vec![];
    for f in std::fs::read_dir(expect).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        if std::fs::read(back.join(&name)).ok() == std::fs::read(f.path()).ok() {
            ok.push(name);
        }
    }
    ok.sort();
    ok
}

#[test]
fn repair_survives_a_crash_between_any_two_store_operations() {
    let e = Env::local();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let a = e.path("a");
    random_tree(&a, 4, 500_000, 3);
    let b = e.path("b");
    random_tree(&b, 2, 300_000, 4);
    let sa = e.backup(&[&a]);
    let sb = e.backup(&[&b]);
    // a flipped byte in one of the first snapshot's data packs
    let (pack, _) = e
        .objects("packs/")
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap();
    let mut bytes = e.read_object(&pack);
    bytes[200] ^= 0x40;
    e.write_object(&pack, &bytes);
    let before_a = restorable(&e, &sa, &a, &a, "ra");
    let before_b = restorable(&e, &sb, &b, &b, "rb");
    assert_eq!(before_b.len(), 2, "the second snapshot is intact");
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    for repair in [
        &["repair", "index", "--read-data"][..],
        &["repair", "snapshots", "--forget"][..],
    ] {
        let mut n = 0u64;
        let total = loop {
            e.restore_state(&state, &cache);
            if repair[1] == "snapshots" {
                // the index is repaired first (repair snapshots waits for it)
                e.ok(&["repair", "index", "--read-data"]);
            }
            let o = e
                .cmd()
                .env(CRASH_ENV, n.to_string())
                .args(repair)
                .output()
                .unwrap();
            match o.status.code() {
                Some(0) => break n,
                Some(CRASH_EXIT) => {}
                other => panic!(
                    "{repair:?} crashed after {n} operations exited {other:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
            }
            let what = format!(
                "{repair:?} crashed before operation {n} + 1 ({})",
                crash_point(&o)
            );
            // nothing that restored before is lost: from the snapshot or
            // its repaired version
            let snaps = e.json(&["snapshots"]);
            let versions_of = |id: &str| -> Vec<String> {
                snaps
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["id"] == id || s["original"] == id)
                    .map(|s| s["id"].as_str().unwrap().to_string())
                    .collect()
            };
            let best = |id: &str, src: &Path| -> Vec<String> {
                versions_of(id)
                    .iter()
                    .map(|v| restorable(&e, v, src, src, "rx"))
                    .max_by_key(|v| v.len())
                    .unwrap_or_default()
            };
            let after_a = best(&sa, &a);
            let after_b = best(&sb, &b);
            for f in &before_a {
                assert!(
                    after_a.contains(f),
                    "{what}: {f} of the first snapshot was lost"
                );
            }
            assert_eq!(after_b, before_b, "{what}: the intact snapshot changed");
            // the repair run again finishes the job, and check is clean
            e.ok(repair);
            if repair[1] == "index" {
                e.ok(&["repair", "snapshots", "--forget"]);
            }
            check_clean(&e, &what);
            n += 1;
            assert!(n < 500, "the repair never finished");
        };
        eprintln!("{repair:?}: {total} store operations, each a crash point, nothing lost");
        assert!(total > 5);
    }
}
