//! Deduplication, incremental backups, and the catalog being only a cache.

mod common;

use common::{Env, noise};

#[test]
fn same_data_twice_adds_under_one_percent() {
    let e = Env::init();
    let a = e.path("a");
    let b = e.path("b");
    std::fs::create_dir_all(&a).unwrap();
    for i in 0..4 {
        std::fs::write(a.join(format!("f{i}")), noise(8 << 20, i)).unwrap();
    }
    e.backup(&[&a]);
    let first = e.repo_size();
    // the same bytes under another path: nothing can come from a parent
    common::sh(&format!("cp -a '{}' '{}'", a.display(), b.display()));
    e.backup(&[&b]);
    let second = e.repo_size();
    let added = second - first;
    assert!(
        added * 100 < first,
        "second backup added {added} bytes to {first}"
    );
}

#[test]
fn incremental_backup_reads_only_changed_files() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..10 {
        std::fs::write(src.join(format!("f{i}")), noise(1 << 20, i)).unwrap();
    }
    let v1 = e.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(v1["summary"]["files_new"], 10);
    std::fs::write(src.join("f3"), noise(1 << 20, 99)).unwrap();
    let v2 = e.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(v2["parent"], v1["snapshot_id"]);
    assert_eq!(v2["summary"]["files_changed"], 1);
    assert_eq!(v2["summary"]["files_unmodified"], 9);
    assert_eq!(v2["summary"]["bytes_read"], 1 << 20);
    let v3 = e.json(&["backup", src.to_str().unwrap(), "--force"]);
    assert_eq!(v3["summary"]["bytes_read"], 10 << 20);
    assert!(
        v3["summary"]["blobs_added"].as_u64().unwrap() <= 2,
        "{}",
        v3["summary"]
    );
    let out = e.restore(v2["snapshot_id"].as_str().unwrap(), &src, "out");
    assert_eq!(std::fs::read(out.join("f3")).unwrap(), noise(1 << 20, 99));
}

#[test]
fn catalog_is_a_rebuildable_cache() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), noise(3 << 20, 1)).unwrap();
    let id = e.backup(&[&src]);
    // delete the cache: the next command rebuilds it from the repository
    std::fs::remove_dir_all(&e.cache).unwrap();
    let snaps = e.json(&["snapshots"]);
    assert_eq!(snaps[0]["id"], serde_json::Value::String(id.clone()));
    // a machine that never saw the repository: another cache dir, no cache at all
    let mut other = e.cmd();
    let t = e.path("elsewhere");
    let o = other
        .env("ARCA_CACHE_DIR", e.path("other-machine-cache"))
        .args(["restore", "latest", "--target", t.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(t.join(src.strip_prefix("/").unwrap()).join("data")).unwrap(),
        noise(3 << 20, 1)
    );
    let o = e.run(&["--no-cache", "ls", "latest"]);
    assert!(o.status.success());
    // a corrupt catalog file is thrown away and rebuilt
    for entry in std::fs::read_dir(&e.cache).unwrap() {
        let db = entry.unwrap().path().join("catalog.sqlite");
        std::fs::write(&db, b"this is not a database").unwrap();
        for s in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{s}", db.display()));
        }
    }
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 1);
    // dedup still works after the rebuild: a forced re-read adds nothing
    let v = e.json(&["backup", src.to_str().unwrap(), "--force"]);
    // (only directory trees whose metadata changed are new, no data)
    assert!(
        v["summary"]["data_added"].as_u64().unwrap() < 64 << 10,
        "{}",
        v["summary"]
    );
}

#[test]
fn changed_files_reuse_parent_boundaries_exactly() {
    use std::io::{Seek, SeekFrom, Write};
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = src.join("image.bin");
    std::fs::write(&f, noise(24 << 20, 7)).unwrap();
    std::fs::write(src.join("log"), "line\n".repeat(300_000)).unwrap();
    e.backup(&[&src]);
    // rewrite a few regions in place and append, as a database file or an
    // image sees it; the log grows
    {
        let mut h = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        for (i, at) in [1u64 << 20, 9 << 20, 17 << 20].iter().enumerate() {
            h.seek(SeekFrom::Start(*at)).unwrap();
            h.write_all(&noise(8192, 100 + i as u64)).unwrap();
        }
        h.seek(SeekFrom::End(0)).unwrap();
        h.write_all(&noise(1 << 20, 200)).unwrap();
        let mut l = std::fs::OpenOptions::new()
            .append(true)
            .open(src.join("log"))
            .unwrap();
        l.write_all("more\n".repeat(50_000).as_bytes()).unwrap();
    }
    let with_parent = e.json(&["backup", src.to_str().unwrap()]);
    assert!(!with_parent["parent"].is_null());
    assert_eq!(with_parent["summary"]["files_changed"], 2);
    // the same bytes chunked from scratch (another host: no parent)
    let scratch = e.json(&["backup", src.to_str().unwrap(), "--host", "elsewhere"]);
    assert!(scratch["parent"].is_null());
    // Compare the tree of `src` itself: the snapshots also hold its
    // ancestors (the temporary directory, /tmp), whose mtimes change
    // whenever a test running beside this one creates or removes a file.
    let src_tree = |v: &serde_json::Value| {
        let id = v["snapshot_id"].as_str().unwrap().to_string();
        let mut tree = e.json(&["cat", "snapshot", &id])["tree"].clone();
        for part in src.components().skip(1) {
            let name = part.as_os_str().to_str().unwrap();
            let nodes = e.json(&["cat", "tree", tree.as_str().unwrap()]);
            let node = nodes
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == name)
                .unwrap_or_else(|| panic!("{name} not in tree {tree}: {nodes}"));
            tree = node["subtree"].clone();
        }
        tree
    };
    let (a, b) = (src_tree(&with_parent), src_tree(&scratch));
    assert!(a.is_string(), "{a}");
    assert_eq!(
        a, b,
        "reusing the parent's boundaries must give the chunks a search gives"
    );
    let out = e.restore(with_parent["snapshot_id"].as_str().unwrap(), &src, "out");
    assert_eq!(
        std::fs::read(out.join("image.bin")).unwrap(),
        std::fs::read(&f).unwrap()
    );
}
