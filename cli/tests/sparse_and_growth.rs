//! Sparse files (holes are never read, and are restored as holes) and a
//! file that grows while it is read.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;

use common::{Env, b3, noise};

#[test]
fn five_gib_sparse_file_with_data_islands() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = src.join("volume.img");
    {
        let mut h = std::fs::File::create(&f).unwrap();
        h.set_len(5 << 30).unwrap();
        for (i, off) in [0u64, 1 << 30, 3 << 30, (5 << 30) - 4096]
            .iter()
            .enumerate()
        {
            h.seek(SeekFrom::Start(*off)).unwrap();
            h.write_all(&noise(if i == 3 { 4096 } else { 1 << 20 }, i as u64))
                .unwrap();
        }
    }
    let v = e.json(&["backup", src.to_str().unwrap()]);
    let read = v["summary"]["bytes_read"].as_u64().unwrap();
    assert!(read < 64 << 20, "holes were read: {read} bytes");
    assert_eq!(v["summary"]["total_bytes"].as_u64().unwrap(), 5 << 30);
    let out = e.restore(v["snapshot_id"].as_str().unwrap(), &src, "out");
    let r = out.join("volume.img");
    let md = std::fs::metadata(&r).unwrap();
    assert_eq!(md.len(), 5 << 30);
    assert!(
        md.blocks() * 512 < 64 << 20,
        "holes restored as data: {} blocks",
        md.blocks()
    );
    assert_eq!(b3(&f), b3(&r));
}

#[test]
fn file_growing_while_read_is_stored_consistently() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = src.join("growing.log");
    std::fs::write(&f, noise(64 << 20, 9)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let f = f.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                h.write_all(format!("appended line {n}\n").as_bytes())
                    .unwrap();
                n += 1;
            }
        })
    };
    let o = e.run(&["backup", src.to_str().unwrap(), "--json"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    // a file that changed while read is saved (with a warning), not an error
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let out = e.restore(v["snapshot_id"].as_str().unwrap(), &src, "out");
    let got = std::fs::read(out.join("growing.log")).unwrap();
    let now = std::fs::read(&f).unwrap();
    assert!(got.len() >= 64 << 20);
    assert!(
        now[..got.len()] == got[..],
        "restored content ({} bytes) is not a prefix of the file",
        got.len()
    );
}
