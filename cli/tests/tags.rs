//! `arca tag`: tags added, removed and set by rewriting manifests (the
//! new one restores the same data, names its original, and the old one is
//! gone), selection by filters, dry runs, and a crash before each store
//! operation: nothing is lost, and the same command run again finishes
//! with exactly one copy (format-spec §15.9).

mod common;

use common::{Env, check_clean, crash_sweep, random_tree, restores};

fn snapshots(e: &Env) -> Vec<serde_json::Value> {
    e.json(&["snapshots"]).as_array().unwrap().clone()
}

fn tags(s: &serde_json::Value) -> Vec<String> {
    s["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn tags_are_added_removed_and_set_and_the_data_stays() {
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 10, 5000, 7);
    let first = e.json(&[
        "backup",
        "--tag",
        "daily",
        "--host",
        "a",
        src.to_str().unwrap(),
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    e.json(&[
        "backup",
        "--tag",
        "daily",
        "--host",
        "b",
        src.to_str().unwrap(),
    ]);

    // a dry run changes nothing
    let plan = e.json(&["tag", "--add", "keep", "--dry-run", &first[..8]]);
    assert_eq!(
        plan["changed"][0]["tags"],
        serde_json::json!(["daily", "keep"])
    );
    assert!(snapshots(&e).iter().any(|s| s["id"] == first.as_str()));

    let r = e.json(&[
        "tag",
        "--add",
        "keep,audit",
        "--remove",
        "daily",
        &first[..8],
    ]);
    let new = r["changed"][0]["new"].as_str().unwrap().to_string();
    assert_ne!(new, first);
    let snaps = snapshots(&e);
    assert_eq!(snaps.len(), 2);
    assert!(
        !snaps.iter().any(|s| s["id"] == first.as_str()),
        "the old one is gone"
    );
    let s = snaps.iter().find(|s| s["id"] == new.as_str()).unwrap();
    assert_eq!(tags(s), ["audit", "keep"]);
    assert!(restores(&e, &new, &src, &src, "r1"));
    let raw: serde_json::Value = serde_json::from_str(&e.ok(&["cat", "snapshot", &new])).unwrap();
    assert_eq!(raw["original"], first.as_str());

    // again on the replacement: the same original, and tags already there
    // are not rewritten
    let r = e.json(&["tag", "--add", "keep", &new]);
    assert_eq!(r["changed"].as_array().unwrap().len(), 0);
    assert_eq!(r["unchanged"][0], new.as_str());
    let r = e.json(&["tag", "--set", "monthly", &new]);
    let third = r["changed"][0]["new"].as_str().unwrap().to_string();
    let raw: serde_json::Value = serde_json::from_str(&e.ok(&["cat", "snapshot", &third])).unwrap();
    assert_eq!(raw["original"], first.as_str(), "the chain's first");

    // by filter: every snapshot of host b; --set '' clears
    let r = e.json(&["tag", "--host", "b", "--add", "offsite"]);
    assert_eq!(r["changed"].as_array().unwrap().len(), 1);
    let on_b: Vec<_> = snapshots(&e)
        .into_iter()
        .filter(|s| s["host"] == "b")
        .collect();
    assert_eq!(tags(&on_b[0]), ["daily", "offsite"]);
    e.json(&["tag", "--host", "b", "--set", ""]);
    let on_b: Vec<_> = snapshots(&e)
        .into_iter()
        .filter(|s| s["host"] == "b")
        .collect();
    assert!(tags(&on_b[0]).is_empty());

    // nothing to change, nothing matching: errors
    assert!(!e.run(&["tag", &third]).status.success());
    assert!(
        !e.run(&["tag", "--host", "nobody", "--add", "x"])
            .status
            .success()
    );
    check_clean(&e, "after tagging");
}

#[test]
fn a_tag_crashed_before_any_store_operation_loses_nothing_and_finishes_on_rerun() {
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 8, 4000, 9);
    let old = e.json(&["backup", "--tag", "daily", src.to_str().unwrap()])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = e.save_state();
    let cache = e.path("cache-saved");
    common::copy_dir(&e.cache, &cache);
    let args = ["tag", "--add", "keep", old.as_str()];
    let (total, points) = crash_sweep(&e, &state, &cache, &args, |what| {
        let snaps = snapshots(&e);
        assert!(
            (1..=2).contains(&snaps.len()),
            "{what}: the old snapshot, its replacement, or both: {snaps:?}"
        );
        for s in &snaps {
            let id = s["id"].as_str().unwrap();
            assert!(restores(&e, id, &src, &src, "r"), "{what}: {id} restores");
        }
        check_clean(&e, what);
        if !snaps.iter().any(|s| s["id"] == old.as_str()) {
            // stopped after its delete: done, and the same command again
            // (naming the id that is gone) finds the replacement already tagged
            assert_eq!(tags(&snaps[0]), ["daily", "keep"], "{what}");
            let o = e.run(&args);
            assert!(o.status.success(), "{what}: the rerun: {o:?}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("was replaced by"),
                "{what}"
            );
            assert_eq!(snapshots(&e), snaps, "{what}: nothing more changed");
            return;
        }
        // the same command again finishes the job, with one copy
        let o = e.run(&args);
        assert!(
            o.status.success(),
            "{what}: the rerun: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let snaps = snapshots(&e);
        assert_eq!(
            snaps.len(),
            1,
            "{what}: one copy after the rerun: {snaps:?}"
        );
        assert_eq!(tags(&snaps[0]), ["daily", "keep"], "{what}");
        assert_ne!(snaps[0]["id"], old.as_str(), "{what}");
    });
    assert!(total >= 2, "a write and a delete at least: {points:?}");
    let snaps = snapshots(&e);
    assert_eq!(snaps.len(), 1);
    assert_eq!(tags(&snaps[0]), ["daily", "keep"]);
}
