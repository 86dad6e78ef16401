//! A block device named as a source (a loop device here): backed up by its
//! content, all-zero ranges stored as holes, incrementally after a few
//! blocks change; restored to a sparse image file, and with `arca dump` onto
//! another device, byte for byte.
//!
//! Loop devices need root (`losetup`, util-linux); as another user the test
//! says so and checks nothing.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, b3, is_root, noise};

const SIZE: u64 = 64 << 20;

/// A loop device over a sparse file, detached when dropped.
struct Loop {
    dev: PathBuf,
}

impl Loop {
    fn new(image: &Path) -> Self {
        std::fs::File::create(image).unwrap().set_len(SIZE).unwrap();
        let o = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .expect("losetup (util-linux)");
        assert!(
            o.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Loop {
            dev: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        }
    }

    fn write_at(&self, offset: u64, data: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.dev)
            .unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn added(e: &Env, dev: &Path) -> (String, u64) {
    let v = e.json(&["backup", dev.to_str().unwrap()]);
    (
        v["snapshot_id"].as_str().unwrap().to_string(),
        v["summary"]["data_added"].as_u64().unwrap(),
    )
}

#[test]
fn a_loop_device_round_trips_with_its_zeros_as_holes() {
    if !is_root() {
        eprintln!("block_devices: not root, so no loop device; nothing checked");
        return;
    }
    let e = Env::init();
    let dev = Loop::new(&e.path("disk.img"));
    // 8 MiB of data in three places; the other 56 MiB are zeros
    dev.write_at(0, &noise(4 << 20, 1));
    dev.write_at(20 << 20, &noise(3 << 20, 2));
    dev.write_at(SIZE - (1 << 20), &noise(1 << 20, 3));
    let (first, stored) = added(&e, &dev.dev);
    assert!(
        stored < 10 << 20,
        "zeros are holes, not data: {stored} bytes added"
    );
    let ls = e.ok(&["ls", &first, "-l"]);
    let name = dev.dev.to_str().unwrap();
    assert!(
        ls.lines()
            .any(|l| l.starts_with("file") && l.contains(&SIZE.to_string()) && l.ends_with(name)),
        "{ls}"
    );

    // a few blocks change: only they are stored again
    dev.write_at(30 << 20, &noise(256 << 10, 4));
    dev.write_at(1 << 20, &noise(64 << 10, 5));
    let (second, again) = added(&e, &dev.dev);
    assert!(again < 6 << 20, "incremental: {again} bytes added");

    // restored as a sparse image file, identical to the device
    let image = e.restore(&second, &dev.dev, "r");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), SIZE);
    assert_eq!(b3(&image), b3(&dev.dev));
    let allocated = std::fs::metadata(&image).unwrap().blocks() * 512;
    assert!(
        allocated < 24 << 20,
        "the zeros stay holes: {allocated} bytes"
    );
    // the first snapshot still restores what the device held then
    let old = e.restore(&first, &dev.dev, "r1");
    assert_ne!(b3(&old), b3(&dev.dev));

    // and onto another device with `arca dump`, byte for byte
    let other = Loop::new(&e.path("other.img"));
    other.write_at(0, &noise(SIZE as usize, 9)); // what was there before
    let o = e
        .cmd()
        .args(["dump", &second, name])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&other.dev)
                .unwrap(),
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(b3(&other.dev), b3(&dev.dev));

    // a mounted device can change while it is read: the snapshot says so
    common::sh(&format!("mkfs.ext4 -q -F {}", other.dev.display()));
    let mnt = e.path("mnt");
    std::fs::create_dir(&mnt).unwrap();
    common::sh(&format!("mount {} {}", other.dev.display(), mnt.display()));
    let v = e.json(&["backup", other.dev.to_str().unwrap()]);
    common::sh(&format!("umount {}", mnt.display()));
    let w = v["warnings"][0]["error"].as_str().unwrap_or_default();
    assert!(w.starts_with("the device is mounted at "), "{v}");
    let v = e.json(&["backup", other.dev.to_str().unwrap()]);
    assert!(
        v.get("warnings")
            .is_none_or(|w| w.as_array().unwrap().is_empty()),
        "{v}"
    );
}
