//! Dumps checked while they are stored (`backup --check KIND`), against the
//! real servers on loopback: PostgreSQL 15 (`pg_dump`, custom and plain),
//! Redis 7 (`redis-cli --rdb`) and etcd 3.4 (`etcdctl snapshot save` into
//! the file arca supplies). Each good dump is saved with its check in
//! `snapshots --json` and restores into a working server; a failed dump, a
//! cut one, a damaged one and a stranger's bytes save no snapshot.
//!
//! The servers come from Debian (`postgresql`, `redis-server`,
//! `redis-tools`, `etcd-server`, `etcd-client`), which `.ci/run` installs.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use common::postgres::{Server, chown_to_server_user};

/// A server process, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on now (fixed ranges met ephemeral
/// ports in CI: a restored etcd could not bind its port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `probe` succeeds (servers are slow to start on a busy box).
fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let start = Instant::now();
    while !probe() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn checks(e: &Env, id: &str) -> serde_json::Value {
    let all = e.json(&["snapshots"]);
    let s = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("snapshot {id} is listed"));
    s["checks"].clone()
}

fn snapshot_count(e: &Env) -> usize {
    e.json(&["snapshots"]).as_array().unwrap().len()
}

/// `arca backup` of a command's output, checked as `kind`; its output.
fn backup_checked<S: AsRef<std::ffi::OsStr>>(e: &Env, kind: &str, name: &str, cmd: &[S]) -> Output {
    let mut c = e.cmd();
    c.args([
        "backup",
        "--json",
        "--check",
        kind,
        "--stdin-filename",
        name,
        "--stdin-from-command",
        "--",
    ])
    .args(cmd);
    c.output().unwrap()
}

/// `arca backup --stdin` of `bytes`, checked as `kind`.
fn backup_bytes(e: &Env, kind: &str, bytes: &[u8]) -> Output {
    use std::io::Write;
    let mut c = e.cmd();
    c.args([
        "backup",
        "--check",
        kind,
        "--stdin",
        "--stdin-filename",
        "x",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // a refused stream may be dropped before it is all written
    let _ = child.stdin.take().unwrap().write_all(bytes);
    child.wait_with_output().unwrap()
}

fn refused(o: &Output, why: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(why), "wanted {why:?} in: {err}");
    assert!(err.contains("no snapshot was saved"), "{err}");
}

fn saved(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["snapshot_id"].as_str().unwrap().to_string()
}

fn dump_file(e: &Env, id: &str, path: &str, to: &Path) {
    let o = e.cmd().args(["dump", id, path]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(to, o.stdout).unwrap();
}

#[test]
fn postgres_dumps_are_read_by_pg_restore_before_they_count() {
    let e = Env::init();
    let dir = e.path("pg");
    std::fs::create_dir(&dir).unwrap();
    chown_to_server_user(&dir);
    let port = 21000 + (std::process::id() % 20000) as u16;
    let pg = Server::init(&dir, "data", port, vec![]);
    pg.pg_ctl(&["-w", "start"]);
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    pg.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
    let pg_dump = |extra: &[&str]| -> Vec<String> {
        let c = pg.client("pg_dump");
        let mut v: Vec<String> = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // custom format: pg_restore reads every byte
    let id = saved(&backup_checked(
        &e,
        "postgres",
        "app.dump",
        &pg_dump(&["-Fc", "postgres"]),
    ));
    let c = checks(&e, &id);
    assert_eq!(c[0]["path"], "app.dump");
    assert_eq!(c[0]["kind"], "postgres");
    assert_eq!(c[0]["format"], "pg_dump custom archive");
    assert_eq!(c[0]["validator"], "pg_restore --verbose --file=/dev/null");
    assert!(
        c[0]["result"].as_str().unwrap().contains("1 table(s)"),
        "{c}"
    );
    // a restore drill runs pg_restore again, on the restored copy
    let drill = e.json(&["drill", &id, "--rto", "10m"]);
    assert_eq!(drill["met"], true, "{drill}");
    let line = drill["record"]["checks"][0].as_str().unwrap();
    assert!(
        line.starts_with("app.dump (postgres): read every byte"),
        "{line}"
    );
    // and it restores into a working database
    let restored = e.path("app.dump");
    dump_file(&e, &id, "/app.dump", &restored);
    pg.sql("CREATE DATABASE copy");
    let o = pg
        .client("pg_restore")
        .args(["-d", "copy"])
        .arg(&restored)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let count = pg
        .client("psql")
        .args(["-X", "-A", "-t", "-d", "copy", "-c"])
        .arg("SELECT count(*), sum(length(v)) FROM t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "5000|160000");

    // plain format: its header and its closing line
    let id = saved(&backup_checked(
        &e,
        "postgres",
        "app.sql",
        &pg_dump(&["postgres"]),
    ));
    assert_eq!(checks(&e, &id)[0]["format"], "pg_dump plain SQL");

    let before = snapshot_count(&e);
    // a dump that fails: its exit status, before any check
    refused(
        &backup_checked(&e, "postgres", "no.dump", &pg_dump(&["-Fc", "nosuchdb"])),
        "failed: exit status: 1",
    );
    let good = std::fs::read(&restored).unwrap();
    // cut short, damaged, or not a dump at all
    refused(
        &backup_bytes(&e, "postgres", &good[..good.len() * 2 / 3]),
        "pg_restore --verbose --file=/dev/null failed",
    );
    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 0xff;
    refused(
        &backup_bytes(&e, "postgres", &flipped),
        "pg_restore --verbose --file=/dev/null failed",
    );
    refused(
        &backup_bytes(&e, "postgres", b"pg_dump: error: connection refused\n"),
        "not pg_dump output",
    );
    let plain_dump = pg
        .client("pg_dump")
        .arg("postgres")
        .output()
        .unwrap()
        .stdout;
    refused(
        &backup_bytes(&e, "postgres", &plain_dump[..plain_dump.len() - 200]),
        "did not finish",
    );
    refused(&backup_bytes(&e, "postgres", b""), "empty (0 bytes)");
    assert_eq!(
        snapshot_count(&e),
        before,
        "no refused dump left a snapshot"
    );
    pg.pg_ctl(&["-m", "immediate", "stop"]);
}

fn redis_up(port: u16, dir: &Path, dbfile: Option<&str>) -> Running {
    let mut c = Command::new("redis-server");
    c.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--repl-diskless-sync-delay",
        "0",
    ])
    .arg("--dir")
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(f) = dbfile {
        c.args(["--dbfilename", f]);
    }
    let r = Running(
        c.spawn()
            .expect("redis-server (apt-get install redis-server)"),
    );
    wait_until("redis-server", || {
        redis(port, &["PING"]).is_some_and(|o| o == "PONG")
    });
    r
}

/// A client command's trimmed standard output, if it ran and succeeded.
fn answer(cmd: &mut Command) -> Option<String> {
    let o = cmd.stderr(Stdio::null()).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn redis(port: u16, args: &[&str]) -> Option<String> {
    answer(
        Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args),
    )
}

#[test]
fn redis_rdb_files_are_read_by_redis_check_rdb_before_they_count() {
    let e = Env::init();
    let port = free_port();
    let dir = e.path("redis");
    std::fs::create_dir(&dir).unwrap();
    let server = redis_up(port, &dir, None);
    for i in 0..300 {
        redis(port, &["SET", &format!("key:{i}"), &format!("value {i}")]).unwrap();
    }
    let p = port.to_string();
    // into the file arca supplies
    let id = saved(&backup_checked(
        &e,
        "redis",
        "dump.rdb",
        &["redis-cli", "-p", &p, "--rdb", "{file}"],
    ));
    let c = checks(&e, &id);
    assert_eq!(c[0]["validator"], "redis-check-rdb");
    assert!(
        c[0]["format"]
            .as_str()
            .unwrap()
            .starts_with("Redis RDB version ")
    );
    assert_eq!(c[0]["result"], "300 key(s) read, checksum OK");
    assert!(c[0].get("warnings").is_none(), "{c}");
    // through standard output: redis-cli appends its 40-byte end mark,
    // which passes (Redis ignores it) and is reported
    let piped = saved(&backup_checked(
        &e,
        "redis",
        "piped.rdb",
        &["redis-cli", "-p", &p, "--rdb", "-"],
    ));
    let w = checks(&e, &piped)[0]["warnings"].clone();
    assert!(
        w[0].as_str()
            .unwrap()
            .starts_with("40 byte(s) after the RDB's end"),
        "{w}"
    );
    drop(server);

    // the saved file loads into a fresh server with every key
    let back = e.path("back");
    std::fs::create_dir(&back).unwrap();
    let rdb = back.join("restored.rdb");
    dump_file(&e, &id, "/dump.rdb", &rdb);
    let port2 = free_port();
    let restored = redis_up(port2, &back, Some("restored.rdb"));
    assert_eq!(redis(port2, &["DBSIZE"]).unwrap(), "300");
    assert_eq!(redis(port2, &["GET", "key:299"]).unwrap(), "value 299");
    drop(restored);

    let before = snapshot_count(&e);
    let good = std::fs::read(&rdb).unwrap();
    refused(
        &backup_bytes(&e, "redis", &good[..good.len() / 2]),
        "redis-check-rdb failed",
    );
    refused(
        &backup_bytes(
            &e,
            "redis",
            b"Could not connect to Redis at 127.0.0.1:1: Connection refused\n",
        ),
        "not an RDB file",
    );
    // a server that is not there: redis-cli's exit status
    refused(
        &backup_checked(
            &e,
            "redis",
            "x.rdb",
            &["redis-cli", "-p", "1", "--rdb", "{file}"],
        ),
        "failed: exit status: 1",
    );
    assert_eq!(snapshot_count(&e), before);
}

fn etcd_up(dir: &Path, client: u16, peer: u16) -> Running {
    let c = format!("http://127.0.0.1:{client}");
    let p = format!("http://127.0.0.1:{peer}");
    let r = Running(
        Command::new("etcd")
            .arg("--data-dir")
            .arg(dir)
            .args([
                "--listen-client-urls",
                &c,
                "--advertise-client-urls",
                &c,
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
                "--initial-cluster",
                &format!("default={p}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (apt-get install etcd-server)"),
    );
    wait_until("etcd", || {
        etcdctl(client, &["endpoint", "health"]).is_some()
    });
    r
}

fn etcdctl(client: u16, args: &[&str]) -> Option<String> {
    answer(
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &format!("127.0.0.1:{client}")])
            .args(args),
    )
}

#[test]
fn etcd_snapshots_are_proved_by_their_sha256_and_etcdctl_before_they_count() {
    let e = Env::init();
    let client = free_port();
    let server = etcd_up(&e.path("etcd"), client, free_port());
    for i in 0..100 {
        etcdctl(client, &["put", &format!("/app/{i}"), &format!("v{i}")]).unwrap();
    }
    let ep = format!("127.0.0.1:{client}");
    // etcdctl writes PATH.part and renames it: it gets a real file
    let mut c = e.cmd();
    c.env("ETCDCTL_API", "3").args([
        "backup",
        "--json",
        "--check",
        "etcd",
        "--stdin-filename",
        "etcd.db",
        "--stdin-from-command",
        "--",
        "etcdctl",
        "--endpoints",
        &ep,
        "snapshot",
        "save",
        "{file}",
    ]);
    let id = saved(&c.output().unwrap());
    let chk = checks(&e, &id);
    assert_eq!(
        chk[0]["format"],
        "etcd snapshot (bbolt, 4096-byte pages, SHA-256 trailer verified)"
    );
    let result = chk[0]["result"].as_str().unwrap();
    assert!(result.starts_with("revision 101, "), "{result}");
    drop(server);

    // the saved snapshot restores (etcdctl checks the trailer too) and serves
    let (client2, peer2) = (free_port(), free_port());
    let snap = e.path("etcd.db");
    dump_file(&e, &id, "/etcd.db", &snap);
    let restored_dir = e.path("etcd-restored");
    let o = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&restored_dir)
        .args([
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{}", peer2),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{}", peer2),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let restored = etcd_up(&restored_dir, client2, peer2);
    assert_eq!(
        etcdctl(client2, &["get", "/app/99", "--print-value-only"]).unwrap(),
        "v99"
    );
    drop(restored);

    let before = snapshot_count(&e);
    let good = std::fs::read(&snap).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    refused(
        &backup_bytes(&e, "etcd", &flipped),
        "SHA-256 trailer does not match",
    );
    refused(
        &backup_bytes(&e, "etcd", &good[..good.len() - 100]),
        "cut short",
    );
    // what `etcdctl snapshot save /dev/stdout` leaves on standard output
    refused(
        &backup_bytes(&e, "etcd", b"Snapshot saved at /dev/stdout\n"),
        "not an etcd snapshot",
    );
    assert_eq!(snapshot_count(&e), before);
}
