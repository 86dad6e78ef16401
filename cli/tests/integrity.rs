//! check and repair on healthy repositories, rolling coverage across hosts,
//! and rebuilding a lost index from the packs alone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Env, noise};

/// Every object in the repository and the BLAKE3 of its bytes.
fn objects(repo: &str) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let b = std::fs::read(&p).unwrap();
                out.insert(
                    p.strip_prefix(base).unwrap().display().to_string(),
                    blake3::hash(&b).to_hex().to_string(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(Path::new(repo), Path::new(repo), &mut out);
    out
}

fn populated() -> (Env, std::path::PathBuf) {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..6 {
        std::fs::write(src.join(format!("d/f{i}")), noise(700_000, i)).unwrap();
        e.backup(&[&src]);
    }
    (e, src)
}

#[test]
fn repair_on_a_healthy_repository_changes_nothing() {
    let (e, _) = populated();
    e.ok(&["check", "--read-data"]);
    let before = objects(&e.repo);
    for args in [
        &["repair", "index"][..],
        &["repair", "index", "--read-data"],
        &["repair", "snapshots"],
        &["repair", "snapshots", "--forget"],
    ] {
        let out = e.ok(args);
        assert_eq!(
            objects(&e.repo),
            before,
            "{args:?} changed the repository: {out}"
        );
    }
    // (check --read-data records coverage, which is an object: compare after it)
    assert!(before.keys().any(|k| k.starts_with("checks/")));
}

#[test]
fn rolling_check_reaches_full_coverage_from_two_hosts() {
    let (e, _) = populated();
    let total = e.json(&["check"])["report"]["coverage"]["packs_total"]
        .as_u64()
        .unwrap();
    assert!(total >= 6, "{total} packs");
    let mut seen = vec![];
    // ceil(100/25) = 4 runs, alternating between two machines' caches
    for run in 0..4 {
        let cache = e.path(if run % 2 == 0 {
            "cache-host-a"
        } else {
            "cache-host-b"
        });
        let o = e
            .cmd()
            .env("ARCA_CACHE_DIR", &cache)
            .args(["check", "--rolling", "25%", "--json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let c = &v["report"]["coverage"];
        seen.push(c["percent"].as_f64().unwrap());
        let read = v["report"]["data"]["packs"].as_u64().unwrap();
        assert_eq!(
            read,
            total.div_ceil(4),
            "each run reads ceil(25%) of the packs"
        );
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1] || w[1] == 100.0),
        "{seen:?}"
    );
    assert_eq!(*seen.last().unwrap(), 100.0, "{seen:?}");
    // every pack has a time, reported per pack
    let v = e.json(&["check"]);
    let packs = v["report"]["coverage"]["packs"].as_array().unwrap();
    assert!(packs.iter().all(|p| !p["verified"].is_null()));
}

#[test]
fn subsets_and_exit_codes() {
    let (e, _) = populated();
    let a = e.json(&["check", "--read-data-subset", "1/2"]);
    let b = e.json(&["check", "--read-data-subset", "2/2"]);
    let n = |v: &serde_json::Value| v["report"]["data"]["packs"].as_u64().unwrap();
    assert_eq!(n(&a) + n(&b), a["report"]["packs"].as_u64().unwrap());
    let c = e.json(&["check", "--read-data-subset", "50%"]);
    assert!(n(&c) >= 1);
    let o = e.run(&["check", "--read-data-subset", "3/2"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a bad argument is 'could not run'"
    );
    let mut wrong = e.cmd();
    let o = wrong
        .env("ARCA_PASSWORD", "nope")
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn repair_index_rebuilds_a_lost_index_and_cache() {
    let (e, src) = populated();
    std::fs::remove_dir_all(Path::new(&e.repo).join("index")).unwrap();
    std::fs::remove_dir_all(&e.cache).unwrap();
    let o = e.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "a lost index is damage");
    let v = e.json(&["repair", "index"]);
    assert_eq!(
        v["packs_indexed"].as_u64().unwrap(),
        v["packs_read"].as_u64().unwrap()
    );
    e.ok(&["check", "--read-data"]);
    let out = e.restore("latest", &src, "out");
    for i in 0..6 {
        assert_eq!(
            std::fs::read(out.join(format!("d/f{i}"))).unwrap(),
            noise(700_000, i)
        );
    }
}
