//! Repair never makes things worse, as a property of the real binary.
//!
//! For every object kind and fault (a flipped byte, truncation to zero and
//! to half, deletion, a swap with another object of the kind, a garbage
//! file beside the real ones), and for each order in which a user would
//! try the repairs, every file that restored byte-identical before a
//! repair still does after every step of it, and a snapshot that restored
//! whole still has a version (itself or its repaired rewrite) that does.
//! The enumeration is followed by seeded random cases with several faults
//! at once (proptest: a failure prints the case and its seed, and shrinks).
//!
//! Restores compare against the source content; a repaired file whose lost
//! chunks now read as zeros does not count as restorable, so the property
//! is about data, not exit codes. Commands may refuse (exit 1 with a
//! message); they may not panic (exit 101) or lose what was there.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{Env, copy_dir, noise};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Config,
    Key,
    DataPack,
    TreePack,
    Index,
    Snapshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Flip,
    TruncateZero,
    TruncateHalf,
    Delete,
    Swap,
    GarbageBeside,
}

const KINDS: [Kind; 6] = [
    Kind::Config,
    Kind::Key,
    Kind::DataPack,
    Kind::TreePack,
    Kind::Index,
    Kind::Snapshot,
];
const FAULTS: [Fault; 6] = [
    Fault::Flip,
    Fault::TruncateZero,
    Fault::TruncateHalf,
    Fault::Delete,
    Fault::Swap,
    Fault::GarbageBeside,
];

/// The repair sequences a user would try.
const ORDERS: [&[&[&str]]; 5] = [
    &[&["repair", "index"], &["repair", "snapshots"]],
    &[&["repair", "index"], &["repair", "snapshots", "--forget"]],
    &[
        &["repair", "index", "--read-data"],
        &["repair", "snapshots", "--forget"],
    ],
    &[
        &["repair", "snapshots", "--forget"],
        &["repair", "index"],
        &["repair", "snapshots", "--forget"],
    ],
    &[
        &["repair", "index"],
        &["repair", "index", "--read-data"],
        &["repair", "snapshots", "--forget"],
    ],
];

/// Expected content per snapshot: relative path -> bytes.
type Contents = BTreeMap<String, Vec<u8>>;

/// A repository of three snapshots (two of one directory, one of another)
/// in small packs, saved so that every case starts from it.
struct Fixture {
    e: Env,
    /// (snapshot id, backed-up directory, its content)
    snaps: Vec<(String, PathBuf, Contents)>,
    state: Vec<(String, Vec<u8>)>,
    cache: PathBuf,
    other_key: String,
    /// Pack names by kind, read once from the intact repository.
    data_packs: Vec<String>,
    tree_packs: Vec<String>,
}

fn contents(dir: &Path) -> Contents {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, p: &Path, out: &mut Contents) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.insert(
                    e.path().strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

impl Fixture {
    fn new() -> Self {
        let e = Env::local();
        e.ok(&["init", "--kdf-memory", "8192", "--pack-size", "1"]);
        let pw2 = e.path("pw2");
        std::fs::write(&pw2, "the other password").unwrap();
        let k = e.json(&[
            "key",
            "add",
            "--new-password-file",
            pw2.to_str().unwrap(),
            "--kdf-memory",
            "8192",
        ]);
        let other_key = k["id"].as_str().unwrap().to_string();
        let src = e.path("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.bin"), noise(2_500_000, 1)).unwrap();
        std::fs::write(src.join("b.txt"), b"small file\n").unwrap();
        std::fs::write(src.join("sub/c.log"), "log line\n".repeat(20_000)).unwrap();
        let mut snaps = vec![];
        let s1 = e.backup(&[&src]);
        snaps.push((s1, src.clone(), contents(&src)));
        std::fs::write(src.join("sub/c.log"), "changed line\n".repeat(30_000)).unwrap();
        std::fs::write(src.join("sub/d.bin"), noise(900_000, 2)).unwrap();
        let s2 = e.backup(&[&src]);
        snaps.push((s2, src.clone(), contents(&src)));
        let other = e.path("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("e.bin"), noise(1_200_000, 3)).unwrap();
        std::fs::write(other.join("f.txt"), b"another small file\n").unwrap();
        let s3 = e.backup(&[&other]);
        snaps.push((s3, other.clone(), contents(&other)));
        let state = e.save_state();
        let cache = e.path("cache-saved");
        copy_dir(&e.cache, &cache);
        let (mut data_packs, mut tree_packs) = (vec![], vec![]);
        for (name, _) in e.objects("packs/") {
            let id = name.rsplit('/').next().unwrap();
            let v = e.json(&["cat", "pack", id]);
            match v["blobs"][0]["type"].as_str() {
                Some("data") => data_packs.push(name),
                Some("tree") => tree_packs.push(name),
                other => panic!("pack {name} of type {other:?}"),
            }
        }
        assert!(data_packs.len() >= 2 && !tree_packs.is_empty());
        Fixture {
            e,
            snaps,
            state,
            cache,
            other_key,
            data_packs,
            tree_packs,
        }
    }

    fn reset(&self) {
        self.e.restore_state(&self.state, &self.cache);
        // the directories were changed after the first backup: what the
        // fixture compares with is in `snaps`, never the live directories
    }

    /// The index of the second key among the key objects of the intact
    /// repository (what `objects(Kind::Key)` lists after a reset).
    fn other_key_index(&self) -> usize {
        let mut keys: Vec<&String> = self
            .state
            .iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with("keys/"))
            .collect();
        keys.sort();
        keys.iter()
            .position(|n| n.ends_with(&self.other_key))
            .expect("the second key is in the saved state")
    }

    fn repo(&self) -> PathBuf {
        PathBuf::from(&self.e.repo)
    }

    /// Objects of a kind, sorted, as paths.
    fn objects(&self, kind: Kind) -> Vec<PathBuf> {
        let list = |prefix: &str| -> Vec<PathBuf> {
            self.e
                .objects(prefix)
                .into_iter()
                .map(|(n, _)| self.repo().join(n))
                .collect()
        };
        match kind {
            Kind::Config => vec![self.repo().join("config")],
            Kind::Key => list("keys/"),
            Kind::Index => list("index/"),
            Kind::Snapshot => list("snapshots/"),
            Kind::DataPack => self
                .data_packs
                .iter()
                .map(|n| self.repo().join(n))
                .collect(),
            Kind::TreePack => self
                .tree_packs
                .iter()
                .map(|n| self.repo().join(n))
                .collect(),
        }
    }

    /// Applies `fault` to object number `pick` (modulo the count) of `kind`.
    fn apply(&self, kind: Kind, fault: Fault, targets: &[PathBuf], pick: usize) -> String {
        if targets.is_empty() {
            return format!("{kind:?}: none");
        }
        let p = &targets[pick % targets.len()];
        let name = p.strip_prefix(self.repo()).unwrap().display().to_string();
        match fault {
            Fault::Flip => {
                if let Ok(mut b) = std::fs::read(p)
                    && !b.is_empty()
                {
                    let at = (pick * 7919 + 97) % b.len();
                    b[at] ^= 0x20;
                    std::fs::write(p, b).unwrap();
                }
            }
            Fault::TruncateZero => {
                if p.exists() {
                    std::fs::write(p, b"").unwrap();
                }
            }
            Fault::TruncateHalf => {
                if let Ok(b) = std::fs::read(p) {
                    std::fs::write(p, &b[..b.len() / 2]).unwrap();
                }
            }
            Fault::Delete => {
                let _ = std::fs::remove_file(p);
            }
            Fault::Swap => {
                let q = &targets[(pick + 1) % targets.len()];
                if q != p
                    && let (Ok(a), Ok(b)) = (std::fs::read(p), std::fs::read(q))
                {
                    std::fs::write(p, b).unwrap();
                    std::fs::write(q, a).unwrap();
                }
            }
            Fault::GarbageBeside => {
                // a stray object with a valid-looking name next to the real ones
                let dir = p.parent().unwrap();
                let mut name = hex::encode(noise(32, pick as u64 + 5));
                if kind == Kind::DataPack || kind == Kind::TreePack {
                    let d = dir.file_name().unwrap().to_str().unwrap().to_string();
                    name.replace_range(..2, &d);
                }
                if kind != Kind::Config {
                    std::fs::write(dir.join(name), noise(3000 + pick % 5000, 9)).unwrap();
                } else {
                    std::fs::write(dir.join("config.tmp"), noise(300, 9)).unwrap();
                }
            }
        }
        format!("{fault:?} {name}")
    }

    /// For each snapshot of the fixture (by original id): the files that
    /// restore byte-identical now, from the snapshot itself or from any
    /// snapshot that names it as its original.
    fn restorable(&self, tag: &str) -> Vec<BTreeSet<String>> {
        let list = self.e.run(&["--json", "snapshots"]);
        assert_ne!(list.status.code(), Some(101), "{tag}: snapshots panicked");
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout)
            .ok()
            .and_then(|v: serde_json::Value| v.as_array().cloned())
            .unwrap_or_default();
        let mut out = vec![];
        for (i, (id, dir, want)) in self.snaps.iter().enumerate() {
            let candidates: Vec<String> = listed
                .iter()
                .filter(|s| s["id"].as_str() == Some(id) || s["original"].as_str() == Some(id))
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            let mut ok = BTreeSet::new();
            for (j, c) in candidates.iter().enumerate() {
                let t = self.e.path(&format!("r-{tag}-{i}-{j}"));
                let _ = std::fs::remove_dir_all(&t);
                let o = self.e.run(&["restore", c, "--target", t.to_str().unwrap()]);
                assert_ne!(
                    o.status.code(),
                    Some(101),
                    "{tag}: restore panicked: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                let base = t.join(dir.strip_prefix("/").unwrap());
                let got = if base.exists() {
                    contents(&base)
                } else {
                    BTreeMap::new()
                };
                for (rel, bytes) in &got {
                    match want.get(rel) {
                        Some(w) if w == bytes => {
                            ok.insert(rel.clone());
                        }
                        Some(_) => {
                            // a repaired file whose lost chunks read as zeros
                            // is allowed (it is flagged); a restore that
                            // claims success never writes a wrong byte of
                            // an intact snapshot
                            let flagged = c != id;
                            assert!(flagged, "{tag}: restore of {c} wrote wrong bytes to {rel}");
                        }
                        None => panic!(
                            "{tag}: restore of {c} wrote a file {rel} that was never backed up"
                        ),
                    }
                }
                let _ = std::fs::remove_dir_all(&t);
            }
            out.push(ok);
        }
        out
    }
}

/// Runs one case: faults, then a repair order, checking after every step.
fn run_case(f: &Fixture, faults: &[(Kind, Fault, usize)], order: usize) -> String {
    f.reset();
    let resolved: Vec<(Kind, Fault, usize, Vec<PathBuf>)> = faults
        .iter()
        .map(|&(k, fl, pick)| (k, fl, pick, f.objects(k)))
        .collect();
    let mut applied = vec![];
    for (k, fl, pick, targets) in &resolved {
        applied.push(f.apply(*k, *fl, targets, *pick));
    }
    let tag = format!("{applied:?} then order {order}");
    let before = f.restorable("before");
    for (step, args) in ORDERS[order].iter().enumerate() {
        let o = f.e.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => {}
            Some(1) => assert!(
                !err.trim().is_empty(),
                "{tag}: {args:?} failed without a word"
            ),
            other => panic!("{tag}: {args:?} exited {other:?}: {err}"),
        }
        let after = f.restorable(&format!("step{step}"));
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            let lost: Vec<&String> = b.difference(a).collect();
            assert!(
                lost.is_empty(),
                "{tag}: after {args:?}, snapshot {} lost {lost:?} that restored before",
                &f.snaps[i].0[..8]
            );
        }
    }
    tag
}

/// Every object kind and fault, each repair order.
#[test]
fn repair_never_makes_things_worse_enumerated() {
    let f = Fixture::new();
    let mut cases = 0;
    for kind in KINDS {
        for fault in FAULTS {
            // a key fault hits the second key, not the one the tests open
            // with (a lost password is nothing a repair can fix)
            let pick = match kind {
                Kind::Key => f.other_key_index(),
                _ => 0,
            };
            for order in 0..ORDERS.len() {
                run_case(&f, &[(kind, fault, pick)], order);
                cases += 1;
            }
        }
    }
    eprintln!("repair property: {cases} enumerated cases, nothing restorable was lost");
}

/// Several faults at once, at random objects, in any repair order
/// (`ARCA_REPAIR_CASES` sets how many, `ARCA_REPAIR_SEED` which; a failure
/// prints the case).
#[test]
fn repair_never_makes_things_worse_random() {
    use proptest::test_runner::{Config, TestRunner};
    let f = Fixture::new();
    let other = f.other_key_index();
    let cases = std::env::var("ARCA_REPAIR_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    // a fixed seed in CI, so that a run is repeatable; ARCA_REPAIR_SEED=N
    // explores other cases (the seed is printed)
    let seed: u64 = std::env::var("ARCA_REPAIR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261201);
    eprintln!("repair property: seed {seed}, {cases} cases");
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 16,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let faults = prop::collection::vec(
        (
            prop::sample::select(&KINDS[..]),
            prop::sample::select(&FAULTS[..]),
            0usize..64,
        ),
        1..=3,
    );
    let tried = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(faults, 0..ORDERS.len()), |(faults, order)| {
            let faults: Vec<(Kind, Fault, usize)> = faults
                .into_iter()
                .map(|(k, fl, pick)| match (k, fl) {
                    (Kind::Key, Fault::GarbageBeside | Fault::Swap) => (k, fl, pick),
                    (Kind::Key, _) => (k, fl, other),
                    _ => (k, fl, pick),
                })
                .collect();
            run_case(&f, &faults, order);
            tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let tried = tried.into_inner();
    eprintln!("repair property: {tried} random cases of 1-3 faults, nothing restorable was lost");
}
