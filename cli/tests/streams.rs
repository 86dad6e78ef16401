//! Backups of standard input and of a command's output, and `dump`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Env, noise};

fn backup_stdin(e: &Env, data: &[u8], name: &str, extra: &[&str]) -> String {
    let mut c = e.cmd();
    c.args(["backup", "--stdin", "--stdin-filename", name, "--json"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let d = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&d));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshot_id"].as_str().unwrap().to_string()
}

fn dump(e: &Env, snap: &str, path: &str) -> Vec<u8> {
    let o = e.run(&["dump", snap, path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn stdin_round_trips_including_empty() {
    let e = Env::init();
    let data = noise(5_000_000, 3);
    let id = backup_stdin(&e, &data, "db.dump", &[]);
    assert_eq!(dump(&e, &id, "/db.dump"), data);
    let empty = backup_stdin(&e, b"", "empty.rdb", &["--allow-empty"]);
    assert_eq!(dump(&e, &empty, "/empty.rdb"), b"");
    let t = e.path("out");
    e.ok(&["restore", &empty, "--target", t.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(t.join("empty.rdb")).unwrap().len(), 0);
    let snaps = e.json(&["snapshots"]);
    assert_eq!(snaps[0]["paths"], serde_json::json!(["/db.dump"]));
}

/// `pg_dump nosuchdb | arca backup --stdin` must not look like a backup.
#[test]
fn an_empty_stream_is_refused_unless_allowed() {
    let e = Env::init();
    let mut c = e.cmd();
    c.args(["backup", "--stdin", "--stdin-filename", "db.sql"])
        .stdin(Stdio::null());
    let o = c.output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("db.sql was empty (0 bytes)") && err.contains("--allow-empty"),
        "{err}"
    );
    let o = e.run(&["backup", "--stdin-from-command", "--", "true"]);
    assert!(!o.status.success(), "a command that printed nothing");
    assert!(e.json(&["snapshots"]).as_array().unwrap().is_empty());
    // one byte is a stream
    backup_stdin(&e, b"x", "one", &[]);
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 1);
}

#[test]
fn command_output_is_backed_up_and_a_failing_command_saves_nothing() {
    let e = Env::init();
    let v = e.json(&[
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "pg.sql",
        "--",
        "sh",
        "-c",
        "seq 1 200000",
    ]);
    let id = v["snapshot_id"].as_str().unwrap();
    let expect: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert_eq!(dump(&e, id, "/pg.sql"), expect.as_bytes());

    let o = e.run(&[
        "backup",
        "--stdin-from-command",
        "--stdin-filename",
        "bad.sql",
        "--",
        "sh",
        "-c",
        "echo partial; exit 7",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("exit status: 7") && err.contains("no snapshot was saved"),
        "{err}"
    );
    let snaps = e.json(&["snapshots"]);
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "the failed command left no snapshot"
    );

    let o = e.run(&["backup", "--stdin-from-command", "--", "/no/such/program"]);
    assert!(!o.status.success());
}

#[test]
fn dump_by_time_and_of_a_directory() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"old").unwrap();
    e.ok(&[
        "backup",
        src.to_str().unwrap(),
        "--time",
        "2026-01-01 10:00:00",
    ]);
    std::fs::write(src.join("f"), b"newer").unwrap();
    e.ok(&[
        "backup",
        src.to_str().unwrap(),
        "--time",
        "2026-02-01 10:00:00",
    ]);
    let p = format!("{}/f", src.display());
    assert_eq!(
        e.run(&["dump", "latest", &p, "--at", "2026-01-15"]).stdout,
        b"old"
    );
    assert_eq!(e.run(&["dump", "latest", &p]).stdout, b"newer");
    let v = e.json(&["snapshots", "--at", "2026-01-31T23:00:00Z"]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let o = e.run(&["dump", "latest", src.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a file"));
    let o = e.run(&["dump", "latest", "/missing"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/missing"));
}
