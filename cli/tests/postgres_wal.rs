//! PostgreSQL WAL archiving against a real PostgreSQL server: continuous
//! archiving with `archive_command = 'arca wal push %p'`, a base backup,
//! point-in-time recovery with `restore_command = 'arca wal fetch %f %p'`
//! (no wrapper script: the repository and an access token come from the
//! server's environment), `wal verify` before and after a gap made on
//! purpose; and `wal push`'s refusal of a second, different file of one
//! name.
//!
//! PostgreSQL (Debian's `postgresql`, installed by `.ci/run`) refuses to
//! run as root: as root, the server and the arca processes it starts run
//! as `nobody` through `setpriv`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Env;
use common::postgres::{Server, append, chown_to_server_user, pg_bin};

#[test]
fn point_in_time_recovery_through_wal_push_and_fetch() {
    let e = Env::init();
    // world-readable scratch for the server's user
    std::fs::set_permissions(e.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = e.path("wal.token");
    e.ok(&["key", "add", "--token-file", token.to_str().unwrap()]);
    let pgcache = e.path("pg-cache");
    std::fs::create_dir(&pgcache).unwrap();
    chown_to_server_user(&token);
    chown_to_server_user(&pgcache);
    if !e.is_remote() {
        chown_to_server_user(Path::new(&e.repo));
    }
    // a copy the server's user can run whatever the checkout's permissions
    // (a CI checkout under /root is not reachable by `nobody`)
    let arca_copy = e.path("arca");
    std::fs::copy(env!("CARGO_BIN_EXE_arca"), &arca_copy).unwrap();
    std::fs::set_permissions(&arca_copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let arca = arca_copy.to_str().unwrap();
    // what the server's environment carries, as a systemd unit or a
    // container spec would set it
    let mut env: Vec<(String, String)> = vec![
        ("ARCA_REPOSITORY".into(), e.repo.clone()),
        ("ARCA_PASSWORD_FILE".into(), token.display().to_string()),
        ("ARCA_CACHE_DIR".into(), pgcache.display().to_string()),
        ("HOME".into(), pgcache.display().to_string()),
    ];
    env.extend(e.env.iter().cloned());

    let pgdir = e.path("pg");
    std::fs::create_dir(&pgdir).unwrap();
    chown_to_server_user(&pgdir);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let primary = Server::init(&pgdir, "primary", port, env.clone());
    let conf = format!(
        "wal_level = replica\narchive_mode = on\n\
         archive_command = '{arca} wal push --async %p'\n"
    );
    append(&primary.data.join("postgresql.conf"), &conf);
    primary.pg_ctl(&["-w", "start"]);

    primary.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    primary.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g");
    // a base backup that takes its WAL from the archive (-X none)
    let base = pgdir.join("base");
    let o = Command::new(pg_bin("pg_basebackup"))
        .arg("-h")
        .arg(&pgdir)
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-X",
            "none",
            "-c",
            "fast",
            "-D",
        ])
        .arg(&base)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pg_basebackup: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let snap = e.backup(&[base.to_str().unwrap()]);

    primary.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1001, 2000) g");
    std::thread::sleep(Duration::from_millis(1100));
    let target = primary.sql("SELECT now()");
    std::thread::sleep(Duration::from_millis(1100));
    primary.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(2001, 3000) g");
    // one more segment, so that a gap can be made between two kept ones
    primary.sql("SELECT pg_switch_wal()");
    primary.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(3001, 3100) g");
    let last = primary.sql("SELECT pg_walfile_name(pg_switch_wal())");
    primary.wait_for(
        &format!("SELECT last_archived_wal >= '{last}' FROM pg_stat_archiver"),
        "t",
        "archiving",
    );
    assert_eq!(
        primary.sql("SELECT failed_count FROM pg_stat_archiver"),
        "0"
    );
    primary.pg_ctl(&["-m", "fast", "-w", "stop"]);

    // WAL is not in the snapshot list
    let snaps = e.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    let listed = e.json(&["wal", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&last.as_str()), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".backup")), "{names:?}");
    let v = e.json(&["wal", "verify"]);
    assert_eq!(v["continuous"], true, "{v}");
    let b = &v["report"]["backups"][0];
    assert_eq!(b["consistent"], true, "{v}");
    assert_eq!(b["recoverable_to"], last.as_str(), "{v}");

    // the snapshot recorded the base backup and the WAL it needs, and
    // verify checks that WAL for the snapshot
    let pg = &snaps[0]["postgres"][0];
    assert_eq!(pg["start_wal"], b["start_segment"], "{snaps}");
    assert_eq!(pg["start_lsn"], b["start_lsn"], "{snaps}");
    assert_eq!(pg["timeline"], 1, "{snaps}");
    assert!(
        pg["stop_lsn"].is_string(),
        "pg_basebackup writes a manifest: {snaps}"
    );
    let c = &v["report"]["snapshots"][0];
    assert_eq!(c["snapshot"], snaps[0]["id"], "{v}");
    assert_eq!(c["consistent"], true, "{v}");
    assert_eq!(c["stop_wal"], b["stop_segment"], "{v}");
    assert_eq!(c["recoverable_to"], last.as_str(), "{v}");
    // wal forget keeps what the snapshot needs: only older files go, and
    // recovery below still works
    let start = pg["start_wal"].as_str().unwrap();
    let dry = e.json(&["wal", "forget", "--dry-run"]);
    let removed: Vec<&str> = dry["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        !removed.is_empty(),
        "the segment before the backup's start: {dry}"
    );
    assert!(removed.iter().all(|n| &n[..24] < start), "{dry}");
    // (through `forget --wal`, which keeps the one snapshot)
    let o = e.run(&["forget", "--keep-last", "1", "--wal"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&format!(
            "removed {} archived WAL file(s) before {start}",
            removed.len()
        )),
        "{said}"
    );
    assert_eq!(e.run(&["wal", "verify"]).status.code(), Some(0));
    let names: Vec<&str> = names.into_iter().filter(|n| !removed.contains(n)).collect();

    // recover to `target`: the base backup restored by arca, the WAL
    // fetched by arca, nothing in between
    let restored = e.restore(&snap, &base, "restored");
    let data = pgdir.join("recovered");
    std::fs::rename(&restored, &data).unwrap();
    chown_to_server_user(&data);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    // arca writes recovery.signal, restore_command (with the token file),
    // the target, and turns production's archive_command off
    // (run through the copy: restore_command names the arca that wrote it)
    let base_cmd = e.cmd();
    let o = Command::new(arca)
        .envs(
            base_cmd
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .arg("--password-file")
        .arg(&token)
        .args(["wal", "recover"])
        .arg(&data)
        .args(["--target-time", &target])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let auto = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("archive_mode = 'off'"), "{auto}");
    assert!(data.join("recovery.signal").exists());
    chown_to_server_user(&data);
    let recovered = Server {
        data: data.clone(),
        sock: pgdir.clone(),
        port,
        log: pgdir.join("recovered.log"),
        // what `wal recover` wrote is enough: no repository or password in
        // the environment (only a store's credentials, and a cache)
        env: e
            .env
            .iter()
            .cloned()
            .chain([
                ("ARCA_CACHE_DIR".into(), pgcache.display().to_string()),
                ("HOME".into(), pgcache.display().to_string()),
            ])
            .collect(),
    };
    recovered.pg_ctl(&["-w", "start"]);
    recovered.wait_for("SELECT pg_is_in_recovery()", "f", "recovery");
    assert_eq!(
        recovered.sql("SELECT count(*), max(id) FROM t"),
        "2000|2000"
    );
    assert_eq!(
        recovered.sql("SELECT count(*) FROM t WHERE v <> md5(id::text)"),
        "0"
    );
    recovered.pg_ctl(&["-m", "fast", "-w", "stop"]);
    let log = std::fs::read_to_string(&recovered.log).unwrap();
    assert!(log.contains("restored log file"), "{log}");
    // the promoted server (timeline 2) archived nothing into production's archive
    let after = e.json(&["wal", "list"]);
    assert_eq!(after.as_array().unwrap().len(), names.len(), "{after}");

    // the same recovery for a server that becomes the new primary
    // (--archive): timeline 2 is archived here, and verify follows the
    // base backup from timeline 1 onto it
    let restored = e.restore(&snap, &base, "restored2");
    let data2 = pgdir.join("primary2");
    std::fs::rename(&restored, &data2).unwrap();
    chown_to_server_user(&data2);
    std::fs::set_permissions(&data2, std::fs::Permissions::from_mode(0o700)).unwrap();
    let o = Command::new(arca)
        .envs(
            base_cmd
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .arg("--password-file")
        .arg(&token)
        .args(["wal", "recover", "--archive"])
        .arg(&data2)
        .args(["--target-time", &target])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let auto = std::fs::read_to_string(data2.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("archive_mode = 'on'") && auto.contains("wal push %p"),
        "{auto}"
    );
    chown_to_server_user(&data2);
    let primary2 = Server {
        data: data2.clone(),
        log: pgdir.join("primary2.log"),
        ..recovered
    };
    primary2.pg_ctl(&["-w", "start"]);
    primary2.wait_for("SELECT pg_is_in_recovery()", "f", "recovery");
    primary2.sql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(90001, 90100) g");
    let tl2 = primary2.sql("SELECT pg_walfile_name(pg_switch_wal())");
    assert!(tl2.starts_with("00000002"), "{tl2}");
    primary2.wait_for(
        &format!("SELECT last_archived_wal >= '{tl2}' FROM pg_stat_archiver"),
        "t",
        "archiving of timeline 2",
    );
    primary2.pg_ctl(&["-m", "fast", "-w", "stop"]);
    let v = e.json(&["wal", "verify"]);
    let c = &v["report"]["snapshots"][0];
    assert_eq!(c["timelines"], serde_json::json!([1, 2]), "{v}");
    let to = c["recoverable_to"].as_str().unwrap();
    assert!(to.starts_with("00000002") && to >= tl2.as_str(), "{v}");
    assert_eq!(v["report"]["branches"][0]["timeline"], 2, "{v}");
    let text = String::from_utf8_lossy(&e.run(&["wal", "verify"]).stdout).into_owned();
    assert!(text.contains("(timelines 1 -> 2)"), "{text}");
    assert!(
        text.contains("timeline 2 branched from timeline 1 at"),
        "{text}"
    );

    // a gap made on purpose is named, and verify fails
    let segs: Vec<&str> = names.iter().copied().filter(|n| n.len() == 24).collect();
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = segs[segs.len() - 2];
    let id = wal_object_name(&e, victim);
    e.delete_object(&id);
    let o = e.run(&["wal", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("GAP: 1 segment(s) missing, {victim} .. {victim}")),
        "{text}"
    );
    // without the segment it starts in, the snapshot's base backup cannot
    // be restored, and verify says so for the snapshot
    e.delete_object(&wal_object_name(&e, start));
    let o = e.run(&["--json", "wal", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["report"]["snapshots"][0];
    assert_eq!(c["consistent"], false, "{v}");
    let text = String::from_utf8_lossy(&e.run(&["wal", "verify"]).stdout).into_owned();
    assert!(
        text.contains(&format!("snapshot {} (", &snap[..8])) && text.contains("NOT RESTORABLE"),
        "{text}"
    );
}

/// The object name (`wal/<64 hex>`) of archived file `name`, found by
/// listing (the test does not re-implement the name packing).
fn wal_object_name(e: &Env, name: &str) -> String {
    let mut sorted: Vec<String> = e.objects("wal/").into_iter().map(|(n, _)| n).collect();
    sorted.sort();
    let j = e.json(&["wal", "list"]);
    let i = j
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == name)
        .unwrap();
    // `wal list` is in id order, and ids are the object names
    sorted[i].clone()
}

#[test]
fn a_second_different_file_of_one_name_is_refused() {
    let e = Env::init();
    let token = e.path("t.token");
    e.ok(&["key", "add", "--token-file", token.to_str().unwrap()]);
    let wal = e.path("pg_wal");
    std::fs::create_dir_all(wal.join("archive_status")).unwrap();
    let seg = wal.join("000000010000000000000007");
    let a = common::noise(1 << 20, 1);
    std::fs::write(&seg, &a).unwrap();
    let push = |env_token: bool| {
        let mut c = e.cmd();
        if env_token {
            c.env_remove("ARCA_PASSWORD")
                .env("ARCA_PASSWORD_FILE", &token);
        }
        c.args(["wal", "push"]).arg(&seg).output().unwrap()
    };
    assert!(push(true).status.success());
    // the same bytes again: fine (the spool answers; without it, the store)
    assert!(push(true).status.success());
    std::fs::remove_dir_all(e.cache.join("wal-spool")).unwrap();
    assert!(push(false).status.success(), "identical, with a password");
    // other bytes under the same name: refused, and the archive keeps the first
    let mut b = a.clone();
    b[1000] ^= 1;
    std::fs::write(&seg, &b).unwrap();
    let o = push(true);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("000000010000000000000007 is already archived with different content"),
        "{err}"
    );
    let dest = e.path("fetched");
    e.ok(&[
        "wal",
        "fetch",
        "000000010000000000000007",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&dest).unwrap(), a);

    // what the archive does not hold: exit 1, quickly, nothing written
    for missing in ["000000010000000000000008", "00000002.history"] {
        let d = e.path(missing);
        let o = e.run(&["wal", "fetch", missing, d.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{missing}");
        assert!(!d.exists());
    }
    // not a WAL file's name: an error, never an object
    let o = e.run(&["wal", "fetch", "../etc/passwd", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a WAL file's name"));
    assert!(e.json(&["snapshots"]).as_array().unwrap().is_empty());

    // --async: the background pusher's failure reaches the waiting push
    let seg9 = wal.join("000000010000000000000009");
    std::fs::write(&seg9, b"a segment").unwrap();
    std::fs::write(
        wal.join("archive_status/000000010000000000000009.ready"),
        b"",
    )
    .unwrap();
    let bad = e.path("bad.token");
    std::fs::write(
        &bad,
        "arca-token-1:0000000000000000000000000000000000000000000000000000000000000000\n",
    )
    .unwrap();
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .env("ARCA_PASSWORD_FILE", &bad)
        .args(["wal", "push", "--async", "--timeout", "60"])
        .arg(&seg9)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("background pusher could not archive 000000010000000000000009")
            && err.contains("wrong token"),
        "{err}"
    );
    // and with the right token it goes through
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .env("ARCA_PASSWORD_FILE", &token)
        .args(["wal", "push", "--async"])
        .arg(&seg9)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // check --read-data authenticates archived WAL: a flipped byte is named
    let c = e.json(&["check", "--read-data"]);
    assert_eq!(
        (c["clean"].as_bool(), c["report"]["wal_verified"].as_u64()),
        (Some(true), Some(2)),
        "{c}"
    );
    let (name, _) = e.objects("wal/").into_iter().next().unwrap();
    let mut obj = e.read_object(&name);
    let n = obj.len();
    obj[n / 2] ^= 1;
    e.write_object(&name, &obj);
    let o = e.run(&["check", "--read-data"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("damaged WAL file 000000010000000000000007"),
        "{err}"
    );
    let o = e.run(&[
        "wal",
        "fetch",
        "000000010000000000000007",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "a damaged file is never restored");
}
