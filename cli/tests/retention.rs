//! Retention: `forget` and `prune`, and their safety beside backups.
//!
//! - forget's guards and output (restic's JSON shape);
//! - prune frees what no snapshot uses and keeps every snapshot whole;
//! - prune crashed (as by `kill -9`) before each of its store operations,
//!   for every one: check stays clean, snapshots restore, the next prune
//!   finishes the job;
//! - a backup stopped with SIGSTOP before each of its store operations
//!   while `forget --prune --now` deletes the data it deduplicated
//!   against: when continued it either saves a snapshot that restores, or
//!   fails saying why and keeps nothing;
//! - hosts backing up in loops while another forgets and prunes in a loop;
//! - two prunes at once, and a fork of two prune records.
//!
//! The crashes and stops come from the binary itself (the hidden
//! `ARCA_TEST_CRASH_AFTER_OPS=N` / `ARCA_TEST_STOP_AFTER_OPS=N`), just
//! before its store operation N + 1.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{
    Env, KillOnDrop, STOP_ENV, check_clean, copy_dir, crash_sweep, random_tree, restores, signal,
    wait_stopped,
};

/// Whether a failed backup says that it lost a race with a prune (which
/// swept what its snapshot may refer to, deleted the parent it read, or
/// freed a pack it had just uploaded) and what to do.
fn lost_race(o: &Output) -> bool {
    let e = stderr(o);
    e.contains("prune")
        && (e.contains("run the backup again") || e.contains("run the command again"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn snapshot_ids(e: &Env) -> Vec<String> {
    e.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// A prune dry run's plan.
fn plan(e: &Env) -> serde_json::Value {
    e.json(&["prune", "--dry-run"])
}

/// Packs a dry run would condemn, repack or delete (0: nothing left to do).
fn pending(p: &serde_json::Value) -> u64 {
    ["condemn", "repack", "delete"]
        .iter()
        .map(|k| p[k]["packs"].as_u64().unwrap())
        .sum()
}

/// Three generations of a source: the first two share little with the
/// third, so forgetting them leaves packs to free.
fn three_generations(e: &Env) -> (PathBuf, Vec<(String, PathBuf)>) {
    let src = e.path("src");
    let mut out = vec![];
    for g in 0..3u64 {
        let _ = std::fs::remove_dir_all(&src);
        random_tree(&src.join("own"), 2, 400_000, 10 + g);
        random_tree(&src.join("shared"), 1, 300_000, 99);
        let keep = e.path(&format!("v{g}"));
        copy_dir(&src, &keep);
        let id = e.backup(&[&src]);
        out.push((id, keep));
    }
    (src, out)
}

#[test]
fn forget_refuses_what_would_empty_the_repository_and_prints_restics_json() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192"]);
    let src = e.path("src");
    random_tree(&src, 2, 1000, 1);
    let mut ids = vec![];
    for (i, tag) in ["a", "b", "a"].iter().enumerate() {
        let t = format!("2026-11-0{}T10:00:00Z", i + 1);
        let o = e.json(&["backup", "--time", &t, "--tag", tag, src.to_str().unwrap()]);
        ids.push(o["snapshot_id"].as_str().unwrap().to_string());
    }
    // no policy, no ids
    let o = e.run(&["forget"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing to forget"), "{}", stderr(&o));
    // a policy that keeps nothing of a repository is refused...
    let o = e.run(&["forget", "--keep-tag", "nosuch"]);
    assert!(
        !o.status.success(),
        "a policy that removes every snapshot is refused"
    );
    assert!(
        stderr(&o).contains("--keep-none"),
        "the refusal names the flag: {}",
        stderr(&o)
    );
    assert_eq!(snapshot_ids(&e).len(), 3);
    // ...a dry run shows what it would do and changes nothing
    let groups = e.json(&["forget", "--dry-run", "--keep-last", "1"]);
    let g = groups
        .as_array()
        .expect("restic's shape: an array of groups");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["keep"].as_array().unwrap().len(), 1);
    assert_eq!(g[0]["remove"].as_array().unwrap().len(), 2);
    assert_eq!(g[0]["keep"][0]["id"], ids[2].as_str());
    assert_eq!(g[0]["reasons"][0]["matches"][0], "last snapshot");
    assert_eq!(snapshot_ids(&e).len(), 3, "a dry run changes nothing");
    // grouping by tags: the only snapshot of group "b" goes without force
    let groups = e.json(&["forget", "--keep-tag", "a", "--group-by", "tags"]);
    assert_eq!(groups.as_array().unwrap().len(), 2);
    let left = snapshot_ids(&e);
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&ids[1]));
    // forgetting by id, and then the last ones with --keep-none
    e.ok(&["forget", &ids[0][..8]]);
    assert_eq!(snapshot_ids(&e), vec![ids[2].clone()]);
    let o = e.run(&["forget", "--keep-tag", "nosuch"]);
    assert!(!o.status.success());
    e.ok(&["forget", "--keep-tag", "nosuch", "--keep-none"]);
    assert!(snapshot_ids(&e).is_empty());
}

#[test]
fn prune_frees_what_no_snapshot_uses_and_keeps_every_snapshot_whole() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    let before = e.repo_size();
    let packs_before = e.objects("packs/").len();
    // nothing forgotten: nothing to prune
    assert_eq!(pending(&plan(&e)), 0, "{}", plan(&e));
    e.ok(&["forget", &gens[0].0]);
    // the dry run plans, and changes nothing
    let listing = e.objects("");
    let p = plan(&e);
    assert!(p["condemn"]["packs"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(e.objects(""), listing, "a dry run writes nothing");
    // the first generation condemns; the packs go at the next one
    e.ok(&["prune"]);
    assert!(e.objects("prune/").len() == 1, "one prune record");
    check_clean(&e, "after the first prune");
    for (id, keep) in &gens[1..] {
        assert!(
            restores(&e, id, &src, keep, "r"),
            "{id} restores after prune 1"
        );
    }
    e.ok(&["prune"]);
    let after = e.repo_size();
    assert!(
        e.objects("packs/").len() < packs_before && after + 500_000 < before,
        "prune freed the forgotten snapshot's packs: {before} -> {after} bytes"
    );
    check_clean(&e, "after the second prune");
    for (id, keep) in &gens[1..] {
        assert!(
            restores(&e, id, &src, keep, "r"),
            "{id} restores after prune 2"
        );
    }
    // repacking: forget the second generation too, repack everything
    e.ok(&["forget", &gens[1].0]);
    e.ok(&["prune", "--now", "--max-unused", "0%"]);
    assert_eq!(pending(&plan(&e)), 0, "--now finished the job");
    check_clean(&e, "after prune --now");
    assert!(restores(&e, &gens[2].0, &src, &gens[2].1, "r"));
    // backups go on after prunes and reuse what is left
    let id = e.backup(&[&src]);
    assert!(restores(&e, &id, &src, &gens[2].1, "r"));
    check_clean(&e, "after a backup on the pruned repository");
}

#[test]
fn prune_survives_a_crash_between_any_two_store_operations() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    e.ok(&["forget", &gens[0].0]);
    // a first generation already condemned packs, so the crashed run
    // both deletes and condemns; the second snapshot is forgotten for it
    e.ok(&["prune"]);
    e.ok(&["forget", &gens[1].0]);
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    let (last, keep) = &gens[2];

    let args = ["prune", "--now", "--max-unused", "0%"];
    let (total, points) = crash_sweep(&e, &state, &cache, &args, |what| {
        check_clean(&e, what);
        assert_eq!(
            snapshot_ids(&e),
            vec![last.clone()],
            "{what}: the snapshots"
        );
        assert!(
            restores(&e, last, &src, keep, "r1"),
            "{what}: the snapshot restores"
        );
        // the next prune finishes the job
        let o = e.run(&args);
        assert!(o.status.success(), "{what}: the next prune: {}", stderr(&o));
        let p = plan(&e);
        assert_eq!(pending(&p), 0, "{what}: the next prune left work: {p}");
        assert!(
            restores(&e, last, &src, keep, "r2"),
            "{what}: restores after the next prune"
        );
    });
    check_clean(&e, "after the uncrashed prune");
    eprintln!(
        "prune --now: {total} store operations, {} crash points, 0 snapshots lost:",
        points.len()
    );
    for p in &points {
        eprintln!("  {p}");
    }
    assert!(total > 10, "a prune takes more than {total} operations");
    assert_eq!(points.len() as u64, total);
}

#[test]
fn a_backup_stopped_across_a_prune_saves_a_whole_snapshot_or_nothing() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let src = e.path("src");
    random_tree(&src, 3, 400_000, 5);
    let s1 = e.backup(&[&src]);
    let other = e.path("other");
    random_tree(&other, 1, 10_000, 6);
    e.backup(&[&other]);
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    let pruner_cache = e.path("cache-pruner");

    let (mut saved, mut refused) = (0, 0);
    let mut n = 0u64;
    loop {
        e.restore_state(&state, &cache);
        let _ = std::fs::remove_dir_all(&pruner_cache);
        // the same data again: it deduplicates against s1's packs, which
        // the prune below deletes while the backup is stopped
        let mut child = e
            .cmd()
            .env(STOP_ENV, n.to_string())
            .args(["--json", "backup", src.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _guard = KillOnDrop(child.id());
        if !wait_stopped(&mut child) {
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "the backup without a stop: {}",
                stderr(&o)
            );
            break;
        }
        let what = format!("backup stopped before operation {n} + 1");
        // another host forgets s1 and prunes two generations at once
        let o = e
            .cmd()
            .env("ARCA_CACHE_DIR", &pruner_cache)
            .args(["forget", &s1, "--prune", "--now", "--max-unused", "0%"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: forget --prune --now: {}",
            stderr(&o)
        );
        signal(&child, "-CONT");
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["snapshot_id"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                snapshot_ids(&e).contains(&id),
                "{what}: the saved snapshot is listed"
            );
            assert!(
                restores(&e, &id, &src, &src, "r"),
                "{what}: the saved snapshot restores"
            );
            saved += 1;
        } else {
            assert!(lost_race(&o), "{what}: a clear error: {}", stderr(&o));
            assert_eq!(
                snapshot_ids(&e).len(),
                1,
                "{what}: nothing kept but the other snapshot"
            );
            refused += 1;
            // and running it again works
            let id = e.backup(&[&src]);
            assert!(
                restores(&e, &id, &src, &src, "r"),
                "{what}: the backup run again"
            );
        }
        check_clean(&e, &what);
        n += 1;
        assert!(n < 500, "the backup never finished");
    }
    eprintln!(
        "backup stopped at each of its {n} store operations across forget --prune --now: {saved} saved and restored, {refused} refused with a clear error, 0 saved referring to deleted data"
    );
    assert!(n > 5);
}

/// One backup that a looping host reported as saved.
struct Saved {
    id: String,
    host: String,
    /// A copy of the source as it was backed up.
    copy: PathBuf,
    src: PathBuf,
}

#[test]
fn backups_on_many_hosts_race_forget_and_prune_and_nothing_is_lost() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let hosts = ["h1", "h2"];
    let run_for = Duration::from_secs(20);
    let started = Instant::now();
    let e = &e;
    let (saved, refused, removed, prunes) = std::thread::scope(|s| {
        let mut backups = vec![];
        for (h, host) in hosts.iter().enumerate() {
            backups.push(s.spawn(move || {
                let cache = e.path(&format!("cache-{host}"));
                let src = e.path(&format!("src-{host}"));
                let mut saved = vec![];
                let mut refused = 0;
                let mut i = 0u64;
                while started.elapsed() < run_for {
                    // a changing source: new files each time, one kept
                    let _ = std::fs::remove_dir_all(&src);
                    random_tree(&src.join("new"), 2, 200_000, 1000 * h as u64 + i);
                    random_tree(&src.join("kept"), 1, 300_000, 7);
                    let o = e
                        .cmd()
                        .env("ARCA_CACHE_DIR", &cache)
                        .args(["--json", "backup", "--host", host, src.to_str().unwrap()])
                        .output()
                        .unwrap();
                    if o.status.success() {
                        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                        let copy = e.path(&format!("saved-{host}-{i}"));
                        copy_dir(&src, &copy);
                        saved.push(Saved {
                            id: v["snapshot_id"].as_str().unwrap().to_string(),
                            host: host.to_string(),
                            copy,
                            src: src.clone(),
                        });
                    } else {
                        assert!(lost_race(&o), "backup on {host}: {}", stderr(&o));
                        refused += 1;
                    }
                    i += 1;
                }
                (saved, refused)
            }));
        }
        let pruner = s.spawn(move || {
            let cache = e.path("cache-pruner");
            let mut removed = BTreeSet::new();
            let mut prunes = 0;
            while started.elapsed() < run_for {
                std::thread::sleep(Duration::from_millis(300));
                let o = e
                    .cmd()
                    .env("ARCA_CACHE_DIR", &cache)
                    .args(["--json", "forget", "--keep-last", "2", "--group-by", "host"])
                    .output()
                    .unwrap();
                if o.status.success() {
                    let groups: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                    for g in groups.as_array().unwrap() {
                        for r in g["remove"].as_array().unwrap() {
                            removed.insert(r["id"].as_str().unwrap().to_string());
                        }
                    }
                } else {
                    // nothing to forget yet is the only acceptable failure
                    assert!(stderr(&o).contains("--keep-none"), "forget: {}", stderr(&o));
                }
                let mut args = vec!["prune", "--max-unused", "0%"];
                if prunes % 2 == 1 {
                    args.push("--now");
                }
                let o = e
                    .cmd()
                    .env("ARCA_CACHE_DIR", &cache)
                    .args(&args)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "prune: {}", stderr(&o));
                prunes += 1;
            }
            (removed, prunes)
        });
        let mut saved = vec![];
        let mut refused = 0;
        for b in backups {
            let (s, r) = b.join().unwrap();
            saved.extend(s);
            refused += r;
        }
        let (removed, prunes) = pruner.join().unwrap();
        (saved, refused, removed, prunes)
    });
    // one more prune with nothing running beside it
    e.ok(&["prune", "--now"]);
    check_clean(e, "after the race");
    let listed: BTreeSet<String> = snapshot_ids(e).into_iter().collect();
    let mut restored = 0;
    let mut per_host = BTreeMap::new();
    for s in &saved {
        *per_host.entry(s.host.clone()).or_insert(0) += 1;
        if removed.contains(&s.id) {
            assert!(
                !listed.contains(&s.id),
                "forgotten snapshot {} is gone",
                s.id
            );
            continue;
        }
        assert!(
            listed.contains(&s.id),
            "snapshot {} of {} was reported saved and is gone",
            s.id,
            s.host
        );
        assert!(
            restores(e, &s.id, &s.src, &s.copy, "r"),
            "snapshot {} of {} restores byte-identical",
            s.id,
            s.host
        );
        restored += 1;
    }
    eprintln!(
        "race: {} hosts backing up for {:?} beside a forget+prune loop: {} backups saved ({:?}), {} refused with a clear error, {} prunes, {} snapshots forgotten, {} kept and restored byte-identical, 0 lost",
        hosts.len(),
        run_for,
        saved.len(),
        per_host,
        refused,
        prunes,
        removed.len(),
        restored
    );
    assert!(
        saved.len() >= 4 && prunes >= 2,
        "the race ran: {} backups, {prunes} prunes",
        saved.len()
    );
}

#[test]
fn two_prunes_at_once_do_not_both_run() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    e.ok(&["forget", &gens[0].0]);
    // the first prune stops after taking its lock (and a few operations)
    let mut first = e
        .cmd()
        .env(STOP_ENV, "14")
        .args(["prune", "--now"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(first.id());
    assert!(wait_stopped(&mut first), "the first prune stopped");
    assert!(!e.locks().is_empty(), "the first prune holds its lock");
    let o = e
        .cmd()
        .env("ARCA_CACHE_DIR", e.path("cache-2"))
        .args(["prune"])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a second prune does not run beside the first"
    );
    assert!(stderr(&o).contains("locked"), "it says why: {}", stderr(&o));
    // backups do not wait for prune
    let id = e.backup(&[&src]);
    signal(&first, "-CONT");
    let o = first.wait_with_output().unwrap();
    assert!(
        o.status.success() || stderr(&o).contains("lock"),
        "the first prune: {}",
        stderr(&o)
    );
    e.ok(&["prune", "--now"]);
    check_clean(&e, "after two prunes");
    assert!(restores(&e, &id, &src, &gens[2].1, "r"));
    assert!(restores(&e, &gens[2].0, &src, &gens[2].1, "r"));
}

#[test]
fn a_fork_of_two_prune_records_is_reported_and_resolved() {
    // a fork needs two prunes past each other's locks: made here from two
    // copies of one repository pruned apart and then merged
    let e = Env::local();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    e.ok(&["forget", &gens[0].0]);
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    e.ok(&["prune"]);
    let one: Vec<(String, Vec<u8>)> = e.save_state();
    e.restore_state(&state, &cache);
    e.ok(&["forget", &gens[1].0]);
    e.ok(&["prune"]);
    // merged: every object of both
    for (name, bytes) in &one {
        let p = Path::new(&e.repo).join(name);
        if !p.exists() {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
    }
    assert_eq!(
        e.objects("prune/").len(),
        2,
        "two records of one generation"
    );
    let _ = std::fs::remove_dir_all(&e.cache);
    let o = e.run(&["check"]);
    assert!(!o.status.success(), "check reports the fork");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        text.contains("two prunes overlapped"),
        "check names the fork: {text}"
    );
    e.ok(&["prune"]);
    assert_eq!(e.objects("prune/").len(), 1, "prune resolved the fork");
    check_clean(&e, "after the fork was resolved");
    for id in snapshot_ids(&e) {
        let g = gens
            .iter()
            .find(|(g, _)| *g == id)
            .expect("a known snapshot");
        assert!(restores(&e, &id, &src, &g.1, "r"), "{id} restores");
    }
    assert!(snapshot_ids(&e).contains(&gens[2].0));
}

#[test]
fn a_damaged_prune_record_is_repaired_and_backups_go_on() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    e.ok(&["forget", &gens[0].0]);
    e.ok(&["prune", "--now"]);
    e.ok(&["prune"]);
    let records = e.objects("prune/");
    assert_eq!(records.len(), 1);
    let mut bytes = e.read_object(&records[0].0);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    e.write_object(&records[0].0, &bytes);
    // a host that has not cached the record yet: prune stops on it, check
    // reports it
    let fresh = e.path("cache-fresh");
    let o = e
        .cmd()
        .env("ARCA_CACHE_DIR", &fresh)
        .args(["prune"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "prune refuses a damaged record");
    assert!(
        stderr(&o).contains("repair index"),
        "and names the repair: {}",
        stderr(&o)
    );
    let o = e.run(&["check"]);
    assert!(!o.status.success(), "check reports the damaged record");
    e.ok(&["repair", "index"]);
    assert!(
        e.objects("prune/").is_empty(),
        "the damaged record was removed"
    );
    // the seals of the removed generations do not refuse later backups
    let id = e.backup(&[&src]);
    assert!(
        restores(&e, &id, &src, &gens[2].1, "r"),
        "a backup after the repair"
    );
    e.ok(&["forget", &gens[1].0]);
    e.ok(&["prune", "--now"]);
    let id2 = e.backup(&[&src]);
    check_clean(&e, "after repair, prune and backups");
    assert!(restores(&e, &id, &src, &gens[2].1, "r"));
    assert!(restores(&e, &id2, &src, &gens[2].1, "r"));
}

/// forget deletes snapshot manifests one by one: crashed before each of
/// its store operations, it leaves a clean repository whose remaining
/// snapshots all restore, and run again it reaches the same result as a
/// run that was never interrupted.
#[test]
fn forget_survives_a_crash_between_any_two_store_operations() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    let all: Vec<&String> = gens.iter().map(|(id, _)| id).collect();
    let (newest, newest_tree) = &gens[2];
    let state = e.save_state();
    let cache = e.path("cache-saved");
    copy_dir(&e.cache, &cache);
    let args = ["forget", "--keep-last", "1"];
    let (total, points) = crash_sweep(&e, &state, &cache, &args, |what| {
        check_clean(&e, what);
        let left = snapshot_ids(&e);
        assert!(left.contains(newest), "{what}: the kept snapshot is there");
        for id in &left {
            let (_, tree) = gens.iter().find(|(g, _)| g == id).expect("an original");
            assert!(restores(&e, id, &src, tree, "r"), "{what}: {id} restores");
        }
        e.ok(&args);
        assert_eq!(snapshot_ids(&e), vec![newest.clone()], "{what}: run again");
    });
    assert_eq!(snapshot_ids(&e), vec![newest.clone()], "{all:?}");
    assert!(restores(&e, newest, &src, newest_tree, "r"));
    eprintln!(
        "forget: {total} store operations, {} crash points, 0 kept snapshots lost:",
        points.len()
    );
    for p in &points {
        eprintln!("  {p}");
    }
    assert!(
        total > 3,
        "forgetting two snapshots takes more than {total} operations"
    );
    assert_eq!(points.len() as u64, total);
}

/// A record names the packs it condemns by id and size; a host that has
/// never seen them reads their headers, restores through them and checks
/// them; one that disappears before the next prune deletes it is reported
/// by check, and the next prune still finishes.
#[test]
fn condemned_packs_are_read_from_their_headers_and_checked() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
    let (src, gens) = three_generations(&e);
    e.ok(&["forget", &gens[0].0]);
    e.ok(&["prune"]);
    // (id, whether valid snapshots use blobs in it: a repacked pack's
    // used blobs were copied, so they have a copy elsewhere)
    let condemned: Vec<(String, bool)> = e.json(&["prune", "--dry-run", "--packs"])["packs"]
        .as_array()
        .expect("the plan lists its packs")
        .iter()
        .filter(|p| p["fate"] == "delete")
        .map(|p| {
            (
                p["pack"].as_str().unwrap().to_string(),
                p["used"].as_u64().unwrap() > 0,
            )
        })
        .collect();
    assert!(!condemned.is_empty(), "the first prune condemned packs");
    // another host, with a catalog of its own
    let other = |dir: &str, args: &[&str]| {
        e.cmd()
            .env("ARCA_CACHE_DIR", e.path(dir))
            .args(args)
            .output()
            .unwrap()
    };
    let o = other("cache2", &["check", "--read-data"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (id, keep) in &gens[1..] {
        let target = e.path(&format!("r2-{id}"));
        let o = other(
            "cache2",
            &["restore", id, "--target", target.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(common::same_files(
            keep,
            &target.join(src.strip_prefix("/").unwrap())
        ));
    }
    // condemned packs disappear (one of each kind there is): check names them
    let mut gone: Vec<(String, bool)> = vec![];
    for used in [false, true] {
        if let Some(c) = condemned.iter().find(|(_, u)| *u == used) {
            gone.push(c.clone());
        }
    }
    for (id, _) in &gone {
        let name = e
            .objects("packs/")
            .into_iter()
            .map(|(n, _)| n)
            .find(|n| n.ends_with(id.as_str()))
            .expect("the condemned pack is in the store");
        e.delete_object(&name);
        assert!(
            !e.objects("packs/").iter().any(|(n, _)| *n == name),
            "{name} was deleted"
        );
    }
    let o = other("cache3", &["check"]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_ne!(o.status.code(), Some(0), "{out}");
    for (id, _) in &gone {
        assert!(
            out.contains(id.as_str()) && out.contains("condemned"),
            "{out}"
        );
    }
    if let Some((id, _)) = gone.iter().find(|(_, used)| *used) {
        // this host's catalog still has the header of a pack holding used
        // blobs: prune stops rather than guess, and names the fix
        let o = e.run(&["prune"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(id.as_str()) && stderr(&o).contains("arca repair index"),
            "{}",
            stderr(&o)
        );
        // the repair it names reads the headers again
        e.ok(&["repair", "index"]);
    }
    // nothing valid needed those packs alone: the next prune finishes
    e.ok(&["prune"]);
    assert_eq!(pending(&plan(&e)), 0, "{}", plan(&e));
    check_clean(&e, "after the prune that followed the lost pack");
    for (id, keep) in &gens[1..] {
        assert!(restores(&e, id, &src, keep, "r"), "{id} restores");
    }
}

/// A write killed before its rename leaves `NAME#N` beside the object in
/// a local repository; no listing shows it, and prune removes it once it
/// is a day old (a young one may be a write in progress).
#[test]
fn prune_removes_old_leftovers_of_interrupted_writes() {
    let e = Env::local();
    e.ok(&["init", "--kdf-memory", "8192"]);
    let repo = PathBuf::from(&e.repo);
    let dir = repo.join("packs").join("ab");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join(format!("{}#1", "ab".repeat(32)));
    let young = dir.join(format!("{}#2", "ab".repeat(32)));
    std::fs::write(&old, vec![0u8; 4096]).unwrap();
    std::fs::write(&young, vec![0u8; 4096]).unwrap();
    let st = std::process::Command::new("touch")
        .args(["-d", "2 days ago"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(st.success());
    let out = e.ok(&["prune"]);
    assert!(out.contains("removed 1 leftover(s)"), "{out}");
    assert!(!old.exists(), "the old staging file is gone");
    assert!(young.exists(), "a young one may be a write in progress");
    check_clean(&e, "after the sweep");
}
