//! Every operation holds the lock its session needs: restore and check a
//! shared one, which an exclusive lock (repair) is refused beside, and the
//! other way round; `--no-lock` reads without one.
//!
//! A command is held at the moment it has its lock by stopping it
//! (SIGSTOP) as soon as its lock object appears.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Env, random_tree};

/// Starts `arca args`, waits until it holds a lock, and stops it there.
fn stopped_holding_lock(e: &Env, args: &[&str]) -> Child {
    let child = e
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.locks().is_empty() {
        assert!(Instant::now() < deadline, "arca {args:?} never locked");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
    child
}

fn resume(mut child: Child) -> std::process::ExitStatus {
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
    child.wait().unwrap()
}

#[test]
fn restore_and_check_hold_a_shared_lock_that_repair_is_refused_beside() {
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 20, 400_000, 1);
    let id = e.backup(&[&src]);
    let t = e.path("t-restore");
    let restore: [&str; 4] = ["restore", &id, "--target", t.to_str().unwrap()];
    let check: [&str; 2] = ["check", "--read-data"];
    for (what, args) in [("restore", &restore[..]), ("check", &check[..])] {
        let held = stopped_holding_lock(&e, args);
        let o = e.run(&["repair", "index"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "repair beside {what}: {err}");
        assert!(
            err.contains("locked") && err.contains(&format!("shared lock of {what}")),
            "the error names the holder: {err}"
        );
        // another reader is welcome beside it
        e.ok(&["ls", &id]);
        assert!(resume(held).success(), "{what} finishes once resumed");
        assert!(e.locks().is_empty(), "{what} released its lock");
    }
}

#[test]
fn readers_are_refused_beside_an_exclusive_lock_unless_no_lock() {
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 20, 400_000, 2);
    let id = e.backup(&[&src]);
    let held = stopped_holding_lock(&e, &["repair", "index", "--read-data"]);
    let t = e.path("t");
    for args in [
        vec!["restore", id.as_str(), "--target", t.to_str().unwrap()],
        vec!["check"],
        vec!["ls", id.as_str()],
        vec!["backup", src.to_str().unwrap()],
    ] {
        let o = e.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{args:?} beside repair: {err}");
        assert!(err.contains("exclusive lock of repair"), "{args:?}: {err}");
    }
    // without a lock, reading goes ahead (and writes nothing to locks/)
    let o = e.run(&["restore", &id, "--no-lock", "--target", t.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(common::same_files(
        &src,
        &t.join(src.strip_prefix("/").unwrap())
    ));
    let o = e.run(&["backup", "--no-lock", src.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "--no-lock is for reading commands"
    );
    assert!(resume(held).success());
}
