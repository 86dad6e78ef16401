//! Passwords: add, list, change, remove.

mod common;

use common::Env;

#[test]
fn key_management() {
    let mut e = Env::init();
    let pwfile = e.path("newpw");
    std::fs::write(&pwfile, "second password\n").unwrap();
    let v = e.json(&[
        "key",
        "add",
        "--new-password-file",
        pwfile.to_str().unwrap(),
        "--kdf-memory",
        "8192",
    ]);
    let second = v["id"].as_str().unwrap().to_string();
    let keys = e.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);

    // the new password opens the repository; the in-use key cannot be removed
    let first_pw = e.password.clone();
    e.password = "second password".into();
    e.ok(&["snapshots"]);
    let o = e.run(&["key", "remove", &second[..12]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("in use"));

    // change the second password; the old one stops working
    std::fs::write(&pwfile, "third password").unwrap();
    e.ok(&[
        "key",
        "passwd",
        "--new-password-file",
        pwfile.to_str().unwrap(),
        "--kdf-memory",
        "8192",
    ]);
    assert!(!e.run(&["snapshots"]).status.success());
    e.password = "third password".into();
    e.ok(&["snapshots"]);

    // remove the first key while using the third
    let keys = e.json(&["key", "list"]);
    let first = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    e.ok(&["key", "remove", &first]);
    e.password = first_pw;
    assert!(!e.run(&["snapshots"]).status.success());
}

#[test]
fn password_from_file_and_command() {
    let e = Env::init();
    let f = e.path("pw");
    std::fs::write(&f, format!("{}\n", e.password)).unwrap();
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .env("ARCA_PASSWORD_FILE", &f)
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .env("ARCA_PASSWORD_COMMAND", format!("cat '{}'", f.display()))
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = e
        .cmd()
        .env_remove("ARCA_PASSWORD")
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("ARCA_PASSWORD_FILE"));
}
