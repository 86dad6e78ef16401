//! Restore drills (`arca drill`): a snapshot restored into scratch space,
//! its dump checks run again on the restored files, a validator, the
//! recovery time against an RTO, a record in the repository that
//! `drill --list` shows from any host, and the scratch space cleaned up.
//! A drill that fails (a validator, a missed RTO, a damaged repository) is
//! recorded as failed and exits non-zero.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Env, noise};

fn drill(e: &Env, args: &[&str]) -> (i32, serde_json::Value, String) {
    let o = e
        .cmd()
        .args(["drill", "--json"])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_drill_restores_checks_times_and_records() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(3 << 20, 1)).unwrap();
    std::fs::write(src.join("b.txt"), "hello drill\n").unwrap();
    e.backup(&[&src]);
    // a checked dump: its check runs again on the restored copy
    let gz = std::process::Command::new("sh")
        .args(["-c", "seq 1 20000 | gzip -c"])
        .output()
        .unwrap()
        .stdout;
    let mut c = e
        .cmd()
        .args([
            "backup",
            "--json",
            "--stdin",
            "--stdin-filename",
            "logs.gz",
            "--check-command",
            "gzip -t \"$ARCA_CHECK_FILE\" && echo gzip ok",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&gz).unwrap();
    let gz_snap: serde_json::Value =
        serde_json::from_slice(&c.wait_with_output().unwrap().stdout).unwrap();
    let gz_id = gz_snap["snapshot_id"].as_str().unwrap();

    let scratch = e.path("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let sc = scratch.to_str().unwrap();
    let inside = format!("{}/b.txt", src.display());
    let srcs = src.to_str().unwrap();
    // a drill of the directory's snapshot, restored under `scratch`
    let drill_src = |extra: &[&str]| {
        drill(
            &e,
            &[&["--path", srcs, "--scratch", sc][..], extra].concat(),
        )
    };
    let validate = format!("grep -q 'hello drill' \"$ARCA_DRILL_DIR{inside}\" && echo found it");
    let (code, v, err) = drill_src(&["--validate", &validate, "--rto", "10m"]);
    assert_eq!(code, 0, "{err} {v}");
    let r = &v["record"];
    assert_eq!(r["ok"], true);
    assert_eq!(v["met"], true);
    assert_eq!(r["files"], 2);
    assert_eq!(r["rto_seconds"], 600);
    assert_eq!(r["paths"][0], src.to_str().unwrap());
    assert!(
        r["checks"][0].as_str().unwrap().ends_with("found it"),
        "{r}"
    );
    let total = r["total_seconds"].as_f64().unwrap();
    assert!(total >= r["restore_seconds"].as_f64().unwrap());
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "the scratch copy is removed"
    );

    // the dump's own check, on the restored file
    let (code, v, err) = drill(&e, &[gz_id, "--scratch", sc, "--recorded-commands"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["record"]["checks"][0], "logs.gz (command): gzip ok");
    // without the flag a command read from the repository is not run
    let (code, v, _) = drill(&e, &[gz_id, "--scratch", sc]);
    assert_eq!(code, 0);
    let line = v["record"]["checks"][0].as_str().unwrap();
    assert!(line.contains("not run again"), "{line}");

    // --keep: the copy stays, and is the snapshot's
    let (code, v, _) = drill_src(&["--keep"]);
    assert_eq!(code, 0);
    let kept = std::path::PathBuf::from(v["kept"].as_str().unwrap());
    assert_eq!(
        std::fs::read(kept.join(inside.trim_start_matches('/'))).unwrap(),
        b"hello drill\n"
    );
    std::fs::remove_dir_all(&kept).unwrap();

    // a validator that fails: exit 1, recorded as failed
    let (code, v, _) = drill_src(&["--validate", "echo no such table >&2; exit 3"]);
    assert_eq!(code, 1);
    assert_eq!(v["record"]["ok"], false);
    let why = v["record"]["error"].as_str().unwrap();
    assert!(
        why.contains("exit status: 3") && why.contains("no such table"),
        "{why}"
    );
    // passed, but slower than its RTO: exit 4
    let (code, v, _) = drill_src(&["--validate", "sleep 1.2", "--rto", "1s"]);
    assert_eq!(code, 4);
    assert_eq!(
        (v["record"]["ok"].clone(), v["met"].clone()),
        (true.into(), false.into())
    );

    // the records, from the repository (a fresh cache sees them too)
    let list = e
        .cmd()
        .env("ARCA_CACHE_DIR", e.path("other-cache"))
        .args(["drill", "--list", "--json"])
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let met: Vec<bool> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["met"].as_bool().unwrap())
        .collect();
    assert_eq!(met, [true, true, true, true, false, false], "{all}");
    let human = e.ok(&["drill", "--list"]);
    assert!(
        human.contains("RTO missed") && human.contains("FAILED"),
        "{human}"
    );

    // a damaged repository: the restore fails, and that is the record
    e.delete_objects("packs");
    let (code, v, _) = drill_src(&[]);
    assert_eq!(code, 1);
    let why = v["record"]["error"].as_str().unwrap();
    assert!(why.starts_with("the restore failed"), "{why}");
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}
