//! Bad input changes nothing and is named: wrong passwords, damaged packs,
//! unreadable sources, interrupted backups.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Env, is_root, noise};

#[test]
fn wrong_password_is_a_clear_error() {
    let mut e = Env::init();
    e.password = "not the password".into();
    let o = e.run(&["snapshots"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("wrong password"), "{err}");
    let mut missing = Env::new();
    missing.password = "x".into();
    let o = missing.run(&["snapshots"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("arca init"));
    let o = Env::init().run(&["init", "--kdf-memory", "8192"]);
    assert!(
        !o.status.success(),
        "init over an existing repository must fail"
    );
}

#[test]
fn flipped_byte_in_a_pack_fails_the_restore_naming_the_file() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(2_000_000, 5)).unwrap();
    std::fs::write(src.join("b.txt"), b"small and intact").unwrap();
    let id = e.backup(&[&src]);
    // the data pack is the largest one; flip a byte in its first blob
    let (p, _) = e
        .objects("packs/")
        .into_iter()
        .max_by_key(|(_, size)| *size)
        .unwrap();
    let mut bytes = e.read_object(&p);
    bytes[100] ^= 0x40;
    e.write_object(&p, &bytes);

    let t = e.path("out");
    let o = e.run(&["restore", &id, "--target", t.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a.bin"), "the error names the file: {err}");
    let restored = t.join(src.strip_prefix("/").unwrap());
    assert!(
        !restored.join("a.bin").exists(),
        "no wrong bytes are left behind"
    );

    let o = e.run(&["dump", &id, &format!("{}/a.bin", src.display())]);
    assert_eq!(o.status.code(), Some(1));
    let dumped = o.stdout;
    let original = noise(2_000_000, 5);
    assert!(
        dumped.len() < original.len() && original.starts_with(&dumped),
        "dump wrote only verified bytes"
    );
}

#[test]
fn unreadable_source_is_reported_and_the_rest_saved() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok.txt"), b"fine").unwrap();
    std::fs::write(src.join("secret.txt"), b"hidden").unwrap();
    std::fs::set_permissions(
        src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let mut c = e.cmd();
    if is_root() {
        // root reads everything: run the backup as an unprivileged user
        std::fs::set_permissions(e.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        common::sh(&format!(
            "chmod -R a+rwX '{}/repo' '{}/cache' 2>/dev/null || true; chmod a+rwx '{}'",
            e.dir.path().display(),
            e.dir.path().display(),
            src.display()
        ));
        common::sh(&format!("chmod 000 '{}'", src.join("secret.txt").display()));
        let mut wrapped = std::process::Command::new("setpriv");
        wrapped
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_arca"),
            ])
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("ARCA_CACHE_DIR", e.dir.path().join("cache-nobody"))
            .stdin(std::process::Stdio::null());
        c = wrapped;
    }
    let o = c
        .args(["backup", src.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["partial"], true);
    assert!(
        v["errors"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("secret.txt")
    );
    if is_root() && !e.is_remote() {
        common::sh(&format!("chmod -R a+rwX '{}/repo'", e.dir.path().display()));
    }
    let ls = e.ok(&["ls", v["snapshot_id"].as_str().unwrap()]);
    assert!(ls.contains("ok.txt") && !ls.contains("secret.txt"), "{ls}");
}

#[test]
fn interrupted_backup_leaves_no_snapshot_and_the_next_run_works() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), noise(40 << 20, i)).unwrap();
    }
    let mut child = e
        .cmd()
        .args(["backup", src.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: plain kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = child.wait().unwrap();
    if st.success() {
        eprintln!("backup finished before the interrupt; nothing to check");
        return;
    }
    assert_eq!(st.code(), Some(130));
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 0);
    let v = e.json(&["backup", src.to_str().unwrap()]);
    let out = e.restore(v["snapshot_id"].as_str().unwrap(), &src, "out");
    for i in 0..8 {
        assert_eq!(
            std::fs::read(out.join(format!("f{i}"))).unwrap(),
            noise(40 << 20, i)
        );
    }
}
