//! `arca mount` through the kernel's FUSE (/dev/fuse; `.ci/run` installs
//! fuse3): snapshots mounted and read back byte-identical, `ls -l`
//! metadata, symlinks and xattrs, holes kept (SEEK_HOLE through the
//! mount), the hosts/tags/ids/latest links (names with `/` or empty ones
//! escaped), a clean unmount by `umount`
//! and by Ctrl-C, and the error when FUSE is unavailable.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Env, KillOnDrop, is_root, random_tree, same_files};

/// Whether `dir` is a mount point now.
fn mounted(dir: &Path) -> bool {
    let d = std::fs::canonicalize(dir).unwrap();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(d.to_str().unwrap()))
}

/// Starts `arca mount DIR` and waits until the mount is there.
fn mount(e: &Env, dir: &Path, extra: &[&str]) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = e
        .cmd()
        .arg("mount")
        .arg(dir)
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !mounted(dir) {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("arca mount exited {st}: {err}");
        }
        assert!(Instant::now() < deadline, "the mount did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Waits for `child` to exit (after an unmount) and returns its code.
fn exits(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        assert!(Instant::now() < deadline, "arca mount did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn umount(dir: &Path) {
    let ok = std::process::Command::new("umount")
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "umount {}", dir.display());
}

#[test]
fn snapshots_mount_read_only_and_read_back_identical() {
    if !is_root() {
        eprintln!("mount: not root, so no FUSE mount here; nothing checked");
        return;
    }
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 40, 300_000, 11);
    std::fs::create_dir_all(src.join("conf")).unwrap();
    std::fs::write(src.join("conf/app.conf"), b"listen 8080\n").unwrap();
    std::fs::set_permissions(
        src.join("conf/app.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("conf/app.conf", src.join("link")).unwrap();
    xattr::set(src.join("conf/app.conf"), "user.owner", b"ops").unwrap();
    // a sparse file: 64 MiB with 1 MiB of data at 32 MiB
    let sparse = src.join("disk.img");
    {
        let f = std::fs::File::create(&sparse).unwrap();
        f.set_len(64 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(&common::noise(1 << 20, 5), 32 << 20).unwrap();
    }
    let first = e.json(&[
        "backup",
        "--host",
        "db1",
        "--tag",
        "nightly",
        src.to_str().unwrap(),
    ])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("conf/app.conf"), b"listen 9090\n").unwrap();
    let second = e.json(&["backup", "--host", "db2", src.to_str().unwrap()])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();

    let mnt = e.path("mnt");
    let mut child = mount(&e, &mnt, &[]);
    let _guard = KillOnDrop(child.id());
    let inside = |snap: &Path| snap.join(src.strip_prefix("/").unwrap());
    let latest = mnt.join("snapshots/latest");
    // the newest snapshot is the source as it is now, byte for byte
    assert!(
        same_files(&src, &inside(&latest)),
        "latest reads back identical"
    );
    let dirs: Vec<String> = std::fs::read_dir(mnt.join("snapshots"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(dirs.len(), 3, "two snapshots and latest: {dirs:?}");
    // the first, through its id and its host; the tag has only it
    let by_id = mnt.join("ids").join(&first[..8]);
    assert_eq!(
        std::fs::read(inside(&by_id).join("conf/app.conf")).unwrap(),
        b"listen 8080\n"
    );
    let by_host = mnt.join("hosts/db1/latest");
    assert_eq!(
        std::fs::canonicalize(&by_host).unwrap(),
        std::fs::canonicalize(&by_id).unwrap()
    );
    let tagged: Vec<_> = std::fs::read_dir(mnt.join("tags/nightly"))
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(tagged.len(), 2, "one snapshot and latest: {tagged:?}");
    assert!(
        std::fs::read_link(mnt.join("ids").join(&second[..8]))
            .unwrap()
            .starts_with("../snapshots/")
    );
    // metadata as ls -l shows it, the symlink, the xattr
    let conf = inside(&latest).join("conf/app.conf");
    let (m, orig) = (
        std::fs::metadata(&conf).unwrap(),
        std::fs::metadata(src.join("conf/app.conf")).unwrap(),
    );
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_eq!(
        (m.uid(), m.gid(), m.len()),
        (orig.uid(), orig.gid(), orig.len())
    );
    assert_eq!(m.mtime(), orig.mtime());
    let ls = std::process::Command::new("ls")
        .arg("-l")
        .arg(inside(&latest).join("conf"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("-rw-r----- 1"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
    assert_eq!(
        std::fs::read_link(inside(&latest).join("link")).unwrap(),
        PathBuf::from("conf/app.conf")
    );
    assert_eq!(
        xattr::get(&conf, "user.owner").unwrap().as_deref(),
        Some(&b"ops"[..])
    );
    // the holes are holes: little allocated, SEEK_DATA / SEEK_HOLE exact
    let img = inside(&latest).join("disk.img");
    let meta = std::fs::metadata(&img).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(meta.blocks() * 512 < 4 << 20, "{} blocks", meta.blocks());
    {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&img).unwrap();
        // SAFETY: lseek on an open descriptor.
        let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
        let hole = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) };
        assert_eq!(data, 32 << 20, "the data starts at 32 MiB");
        assert_eq!(hole, 33 << 20, "and ends 1 MiB later");
    }
    // read-only
    assert!(std::fs::write(inside(&latest).join("new"), b"x").is_err());
    umount(&mnt);
    assert_eq!(exits(&mut child), Some(0), "unmounted from outside: exit 0");
    assert!(
        std::fs::read_dir(&mnt).unwrap().next().is_none(),
        "empty again"
    );

    // Ctrl-C unmounts too
    let mut child = mount(&e, &mnt, &["--host", "db2"]);
    let _guard = KillOnDrop(child.id());
    let hosts: Vec<_> = std::fs::read_dir(mnt.join("hosts"))
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(hosts, ["db2"], "the filter applies");
    common::signal(&child, "-INT");
    assert_eq!(exits(&mut child), Some(0), "Ctrl-C: unmounted, exit 0");
    assert!(!mounted(&mnt));
}

#[test]
fn tags_and_hosts_with_slashes_or_empty_names_are_escaped() {
    if !is_root() {
        eprintln!("mount: not root, so no FUSE mount here; nothing checked");
        return;
    }
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"one\n").unwrap();
    let src_arg = src.to_str().unwrap();
    e.json(&["backup", "--host", "db1", "--tag", "nightly", src_arg]);
    std::fs::write(src.join("f"), b"two\n").unwrap();
    // an empty host name, and a tag with a slash added afterwards
    let plain = e.json(&["backup", "--host", "", src_arg])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tagged = e.json(&["tag", "--add", "env/prod", &plain]);
    let id = tagged["changed"][0]["new"]
        .as_str()
        .unwrap_or_else(|| panic!("{tagged}"))
        .to_string();

    let mnt = e.path("mnt");
    let mut child = mount(&e, &mnt, &[]);
    let _guard = KillOnDrop(child.id());
    let list = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(mnt.join(dir))
            .unwrap_or_else(|err| panic!("ls {dir}: {err}"))
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // every entry listed, none hidden behind an EIO
    assert_eq!(list("tags"), ["env%2Fprod", "nightly"]);
    assert_eq!(list("hosts"), ["(empty)", "db1"]);
    assert_eq!(list("tags/env%2Fprod").len(), 2, "one snapshot and latest");
    // the escaped names resolve to the snapshot
    let by_id = std::fs::canonicalize(mnt.join("ids").join(&id[..8])).unwrap();
    for dir in ["tags/env%2Fprod/latest", "hosts/(empty)/latest"] {
        let p = mnt.join(dir);
        assert_eq!(std::fs::canonicalize(&p).unwrap(), by_id, "{dir}");
        let f = p.join(src.strip_prefix("/").unwrap()).join("f");
        assert_eq!(std::fs::read(f).unwrap(), b"two\n", "{dir}");
    }
    assert_eq!(list("tags/nightly").len(), 2);
    assert!(
        !mnt.join("tags/env").exists(),
        "no directory per path segment"
    );
    umount(&mnt);
    assert_eq!(exits(&mut child), Some(0));
}

#[test]
fn without_fuse_the_error_says_so_and_how_to_fix_it() {
    if !is_root() {
        eprintln!("mount: not root, so no private /dev; nothing checked");
        return;
    }
    let e = Env::init();
    let mnt = e.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // a private mount namespace whose /dev has no fuse device
    let o = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none /dev && exec "$ARCA" mount "$MNT""#)
        .env("ARCA", env!("CARGO_BIN_EXE_arca"))
        .env("MNT", &mnt)
        .env("ARCA_REPOSITORY", &e.repo)
        .env("ARCA_PASSWORD", &e.password)
        .env("ARCA_CACHE_DIR", &e.cache)
        .envs(e.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("FUSE is not available") && err.contains("/dev/fuse"),
        "{err}"
    );
    // a mount point that is not there
    let o = e.run(&["mount", e.path("nowhere").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nowhere"));
}
