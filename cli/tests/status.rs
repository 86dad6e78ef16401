//! `arca status`: objectives held or breached (exit 0 or 5, the breach
//! named), anomalies reported without changing the exit code, filters and
//! `--json`, on snapshots made at chosen times with `backup --time`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::Env;

fn stdin_backup(e: &Env, name: &str, data: &[u8], time: &str) {
    let mut c = e.cmd();
    c.args([
        "backup",
        "--stdin",
        "--stdin-filename",
        name,
        "--time",
        time,
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    assert!(child.wait().unwrap().success());
}

fn ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339()
}

#[test]
fn status_holds_sources_to_their_objectives_and_reports_anomalies() {
    let e = Env::init();
    // a nightly dump, 4 days of it; the newest (20 h ago) far smaller
    for (i, size) in [(92, 4000), (68, 4100), (44, 4050), (20, 100)] {
        stdin_backup(&e, "app.sql", &vec![b'x'; size], &ago(i));
    }
    // hourly etcd snapshots that stopped 30 hours ago
    for i in 0..5 {
        stdin_backup(&e, "etcd.db", b"snapshot", &ago(30 + i));
    }

    let o = e.run(&["status"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "/app.sql: the newest snapshot (100 B) is less than half the recent median (4050 B)"
        ),
        "{text}"
    );
    assert!(
        text.contains("/etcd.db: backups stopped? the newest is 1d 6h old, they came every 1h 0m"),
        "{text}"
    );

    // a 26 h RPO: the dump holds, etcd is breached
    let o = e.run(&["status", "--rpo", "26h"]);
    assert_eq!(o.status.code(), Some(5));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("/etcd.db: RPO 1d 2h: the newest snapshot is 1d 6h old"),
        "{text}"
    );
    assert!(!text.contains("/app.sql: RPO"), "{text}");
    // only the dump: holds
    let o = e.run(&["status", "--rpo", "26h", "--path", "/app.sql"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // an RTO needs a drill of the source; a drill that passed makes it hold
    let o = e.run(&["status", "--path", "/app.sql", "--rto", "1h"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no restore drill of this source"));
    e.ok(&["drill", "--path", "/app.sql"]);
    let v = e.json(&["status", "--path", "/app.sql", "--rto", "1h", "--rpo", "1d"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["sources"][0]["drill_ok"], true, "{v}");
    assert_eq!(v["sources"][0]["snapshots"], 4, "{v}");

    // check coverage: nothing verified yet, then all
    let o = e.run(&["status", "--path", "/app.sql", "--check-age", "7d"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("packs was ever verified by check --read-data")
    );
    e.ok(&["check", "--read-data"]);
    let o = e.run(&["status", "--path", "/app.sql", "--check-age", "7d"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // a bad objective is a usage error, not a breach
    let o = e.run(&["status", "--rpo", "26"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--rpo: \"26\" is not a duration"));
}
