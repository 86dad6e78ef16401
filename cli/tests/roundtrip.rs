//! Backup then restore of every file type and of the metadata arca keeps.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Env, is_root, noise, sh};

fn meta_eq(a: &Path, b: &Path) {
    let ma = std::fs::symlink_metadata(a).unwrap();
    let mb = std::fs::symlink_metadata(b).unwrap();
    assert_eq!(ma.file_type(), mb.file_type(), "{}", a.display());
    if !ma.file_type().is_symlink() {
        assert_eq!(
            ma.mode() & 0o7777,
            mb.mode() & 0o7777,
            "mode of {}",
            a.display()
        );
    }
    assert_eq!(
        (ma.mtime(), ma.mtime_nsec()),
        (mb.mtime(), mb.mtime_nsec()),
        "mtime of {}",
        a.display()
    );
    if is_root() {
        assert_eq!(
            (ma.uid(), ma.gid()),
            (mb.uid(), mb.gid()),
            "owner of {}",
            a.display()
        );
    }
    if ma.is_file() {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "content of {}",
            a.display()
        );
    }
    if ma.file_type().is_symlink() {
        assert_eq!(
            std::fs::read_link(a).unwrap(),
            std::fs::read_link(b).unwrap()
        );
    }
    let xa: Vec<_> = xattr::list(a).map(|l| l.collect()).unwrap_or_default();
    let xb: Vec<_> = xattr::list(b).map(|l| l.collect()).unwrap_or_default();
    assert_eq!(xa, xb, "xattrs of {}", a.display());
    for k in xa {
        assert_eq!(xattr::get(a, &k).unwrap(), xattr::get(b, &k).unwrap());
    }
}

fn compare_trees(a: &Path, b: &Path) {
    meta_eq(a, b);
    if std::fs::symlink_metadata(a).unwrap().is_dir() {
        let mut na: Vec<_> = std::fs::read_dir(a)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut nb: Vec<_> = std::fs::read_dir(b)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        na.sort();
        nb.sort();
        assert_eq!(na, nb, "entries of {}", a.display());
        for n in na {
            compare_trees(&a.join(&n), &b.join(&n));
        }
    }
}

#[test]
fn every_file_type_and_metadata_round_trips() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("small.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("dir/big.bin"), noise(3_000_000, 1)).unwrap();
    std::fs::write(src.join("dir/sub/text.log"), "line\n".repeat(200_000)).unwrap();
    // names that are not UTF-8, or hold a newline
    std::fs::write(src.join(OsStr::from_bytes(b"caf\xe9-latin1")), b"x").unwrap();
    std::fs::write(src.join("new\nline"), b"y").unwrap();
    std::os::unix::fs::symlink("small.txt", src.join("link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", src.join("dangling")).unwrap();
    std::fs::hard_link(src.join("small.txt"), src.join("dir/hardlink")).unwrap();
    sh(&format!("mkfifo '{}'", src.join("fifo").display()));
    std::fs::set_permissions(
        src.join("small.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::fs::set_permissions(src.join("dir/sub"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        src.join("dir/big.bin"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    xattr::set(src.join("small.txt"), "user.origin", b"arca test").unwrap();
    if is_root() {
        sh(&format!(
            "mknod '{}' c 1 3",
            src.join("null-device").display()
        ));
        sh(&format!(
            "chown 1234:5678 '{}'",
            src.join("dir/sub/text.log").display()
        ));
    }
    filetime::set_file_mtime(
        src.join("dir"),
        filetime::FileTime::from_unix_time(1_600_000_000, 123_456_789),
    )
    .unwrap();

    let id = e.backup(&[&src]);
    let out = e.restore(&id, &src, "out");
    compare_trees(&src, &out);

    let a = std::fs::metadata(out.join("small.txt")).unwrap();
    let b = std::fs::metadata(out.join("dir/hardlink")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link restored as a link");
    if is_root() {
        let d = std::fs::metadata(out.join("null-device")).unwrap();
        assert_eq!(
            d.rdev(),
            std::fs::metadata(src.join("null-device")).unwrap().rdev()
        );
    }

    // ls shows the odd names; --json gives the fields scripts use
    let ls = e.ok(&["ls", &id]);
    assert!(ls.contains("new\nline"), "{ls}");
    let snaps = e.json(&["snapshots"]);
    let s = &snaps[0];
    for k in ["id", "time", "host", "tags", "paths", "tree", "summary"] {
        assert!(!s[k].is_null(), "snapshots --json lacks {k}: {s}");
    }
}

#[test]
fn include_restores_part_of_a_snapshot() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("a/one"), b"1").unwrap();
    std::fs::write(src.join("b/two"), b"2").unwrap();
    let id = e.backup(&[&src]);
    let t = e.path("part");
    let inc = format!("{}/a", src.display());
    e.ok(&[
        "restore",
        &id,
        "--target",
        t.to_str().unwrap(),
        "--include",
        &inc,
    ]);
    let base = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(base.join("a/one")).unwrap(), b"1");
    assert!(!base.join("b").exists());
    let o = e.run(&[
        "restore",
        &id,
        "--target",
        t.to_str().unwrap(),
        "--include",
        "/no/such/path",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such/path"));
}

#[test]
fn excludes_tags_and_host() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::write(src.join("keep.txt"), b"k").unwrap();
    std::fs::write(src.join("skip.tmp"), b"s").unwrap();
    std::fs::write(src.join("cache/x"), b"c").unwrap();
    let cache_glob = format!("{}/cache", src.display());
    let v = e.json(&[
        "backup",
        src.to_str().unwrap(),
        "--exclude",
        "*.tmp",
        "--exclude",
        &cache_glob,
        "--tag",
        "daily,db",
        "--host",
        "db-1",
    ]);
    let id = v["snapshot_id"].as_str().unwrap();
    let ls = e.ok(&["ls", id]);
    assert!(ls.contains("keep.txt"));
    assert!(!ls.contains("skip.tmp"));
    assert!(!ls.contains("/cache"));
    let s = e.json(&["snapshots", "--host", "db-1", "--tag", "db"]);
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["tags"], serde_json::json!(["daily", "db"]));
    let none = e.json(&["snapshots", "--host", "other"]);
    assert_eq!(none.as_array().unwrap().len(), 0);
}

#[test]
fn restore_over_existing_data_reuses_what_is_in_place() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/same.bin"), noise(3_000_000, 1)).unwrap();
    std::fs::write(src.join("d/grows.log"), "x".repeat(500_000)).unwrap();
    std::fs::write(src.join("d/shrinks.bin"), noise(2_000_000, 2)).unwrap();
    std::fs::write(src.join("d/changes.bin"), noise(1_000_000, 3)).unwrap();
    let v1 = e.backup(&[&src]);
    std::fs::write(src.join("d/grows.log"), "x".repeat(900_000)).unwrap();
    std::fs::write(src.join("d/shrinks.bin"), noise(500_000, 2)).unwrap();
    std::fs::write(src.join("d/changes.bin"), noise(1_000_000, 4)).unwrap();
    std::fs::write(src.join("d/new.txt"), b"new").unwrap();
    let v2 = e.backup(&[&src]);
    // restore v1, then v2 over it: the result is v2 exactly
    let t = e.path("target");
    e.ok(&["restore", &v1, "--target", t.to_str().unwrap()]);
    let base = t.join(src.strip_prefix("/").unwrap());
    // something the snapshot has as a file is a directory in the target
    std::fs::remove_file(base.join("d/changes.bin")).unwrap();
    std::fs::create_dir_all(base.join("d/changes.bin/x")).unwrap();
    let v = e.json(&["restore", &v2, "--target", t.to_str().unwrap()]);
    compare_trees(&src, &base);
    let fetched = v["summary"]["bytes_fetched"].as_u64().unwrap();
    assert!(
        fetched < 2_500_000,
        "reused files were fetched again: {fetched} bytes"
    );
}

/// A dump changed in a few scattered rows: `--chunk-size 4K` stores a small
/// part of it again where the repository's 512 KiB chunks store all of it;
/// both restore byte for byte, and a size FastCDC cannot take is refused
/// before anything is read.
#[test]
fn chunk_size_per_backup_dedups_scattered_changes() {
    let e = Env::init();
    // 40,000 rows of about 100 bytes: 4 MiB of text
    let rows = |changed: &[usize]| {
        let mut s = String::new();
        for i in 0..40_000usize {
            let v = if changed.contains(&i) { 1 } else { 0 };
            s.push_str(&format!(
                "{i}\t{}\t{v}\t{:032x}{:032x}\n",
                i % 100,
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                (i as u128 + 7).wrapping_mul(0xc2b2_ae3d_27d4_eb4f_1656_67b1_9e37_79f9)
            ));
        }
        s
    };
    let changed: Vec<usize> = (0..20).map(|k| 977 + k * 1999).collect();
    let mut added = vec![];
    for size in [None, Some("4K")] {
        let dir = e.path(&format!("db-{}", size.unwrap_or("default")));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("dump.sql");
        let mut args = vec!["backup".to_string(), file.display().to_string()];
        if let Some(s) = size {
            args.extend(["--chunk-size".into(), s.into()]);
        }
        std::fs::write(&file, rows(&[])).unwrap();
        e.json(&args);
        std::fs::write(&file, rows(&changed)).unwrap();
        let second = e.json(&args);
        added.push(second["summary"]["data_added"].as_u64().unwrap());
        let snap = second["snapshot_id"].as_str().unwrap().to_string();
        let back = e.restore(&snap, &file, &format!("back-{}", size.unwrap_or("default")));
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&file).unwrap());
    }
    let total = rows(&changed).len() as u64;
    eprintln!(
        "20 scattered rows changed in {total} B: {} B new at the repository's chunk size, {} B at 4K",
        added[0], added[1]
    );
    assert!(
        added[0] * 10 > total * 9,
        "512K chunks stored only {} B",
        added[0]
    );
    assert!(
        added[1] * 4 < total,
        "4K chunks stored {} B of {total}",
        added[1]
    );

    // a source switched to other sizes is chunked afresh, not along its
    // parent's boundaries
    let file = e.path("db-default/dump.sql");
    let chunks = |snap: &str| {
        e.json(&["ls", snap, file.to_str().unwrap()])[0]["chunks"]
            .as_u64()
            .unwrap()
    };
    let big = e.json(&["backup", file.to_str().unwrap()])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let small = e.json(&[
        "backup",
        file.to_str().unwrap(),
        "--chunk-size",
        "4K",
        "--force",
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (nb, ns) = (chunks(&big), chunks(&small));
    assert!(nb <= 24 && ns > 200, "chunks at 512K: {nb}, at 4K: {ns}");

    let before = e.json(&["snapshots"]).as_array().unwrap().len();
    let o = e.run(&[
        "backup",
        "--chunk-size",
        "100",
        e.path("db-4K").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), before);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--chunk-size 100: invalid chunker sizes"),
        "{err}"
    );
}
