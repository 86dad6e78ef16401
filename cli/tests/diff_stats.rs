//! `arca diff`, `arca stats` and `arca find` on snapshots whose differences are known:
//! every kind of change listed once with its sizes, nothing for identical
//! snapshots, and sizes and ratios that agree with the files and the
//! repository.

mod common;

use std::collections::BTreeMap;

use common::{Env, noise};

#[test]
fn diff_names_every_change_and_stats_add_up() {
    let e = Env::init();
    let src = e.path("src");
    for d in ["sub", "gone", "kind"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("a.txt"), b"one").unwrap();
    std::fs::write(src.join("sub/b.txt"), b"bee").unwrap();
    std::fs::write(src.join("gone/g1"), b"g1").unwrap();
    std::fs::write(src.join("gone/g2"), b"gg2").unwrap();
    std::fs::write(src.join("kind/f"), b"file").unwrap();
    let big = noise(2 << 20, 9);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let s1 = e.backup(&[&src]);
    assert_eq!(
        e.json(&["diff", &s1, &s1])["changes"],
        serde_json::json!([])
    );

    std::fs::write(src.join("a.txt"), b"one, two").unwrap();
    std::fs::remove_dir_all(src.join("gone")).unwrap();
    std::fs::create_dir_all(src.join("new")).unwrap();
    std::fs::write(src.join("new/n.txt"), b"new").unwrap();
    std::fs::write(src.join("big-copy.bin"), &big).unwrap();
    std::fs::remove_file(src.join("kind/f")).unwrap();
    std::fs::create_dir(src.join("kind/f")).unwrap();
    std::fs::write(src.join("kind/f/inner"), b"in").unwrap();
    let b = src.join("sub/b.txt");
    let mut perm = std::fs::metadata(&b).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&b, perm).unwrap();
    let s2 = e.backup(&[&src]);

    let v = e.json(&["diff", &s1, &s2, "--metadata"]);
    let rel = |p: &str| p.strip_prefix(src.to_str().unwrap()).unwrap().to_string();
    let got: BTreeMap<String, (String, serde_json::Value, serde_json::Value)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .unwrap()
                .starts_with(src.to_str().unwrap())
        })
        .map(|c| {
            (
                rel(c["path"].as_str().unwrap()),
                (
                    c["modifier"].as_str().unwrap().to_string(),
                    c["size_before"].clone(),
                    c["size_after"].clone(),
                ),
            )
        })
        .collect();
    let n = serde_json::Value::Null;
    let j = |x: u64| serde_json::json!(x);
    let want: BTreeMap<String, (String, serde_json::Value, serde_json::Value)> = [
        ("", "U", n.clone(), n.clone()),
        ("/a.txt", "M", j(3), j(8)),
        ("/big-copy.bin", "+", n.clone(), j(2 << 20)),
        ("/gone", "-", n.clone(), n.clone()),
        ("/gone/g1", "-", j(2), n.clone()),
        ("/gone/g2", "-", j(3), n.clone()),
        ("/kind", "U", n.clone(), n.clone()),
        ("/kind/f", "T", j(4), n.clone()),
        ("/kind/f/inner", "+", n.clone(), j(2)),
        ("/new", "+", n.clone(), n.clone()),
        ("/new/n.txt", "+", n.clone(), j(3)),
        ("/sub/b.txt", "U", j(3), j(3)),
    ]
    .into_iter()
    .map(|(p, m, a, b)| (p.to_string(), (m.to_string(), a, b)))
    .collect();
    assert_eq!(got, want, "{v:#}");
    let st = &v["stats"];
    assert_eq!(
        (
            st["added"].as_u64(),
            st["removed"].as_u64(),
            st["modified"].as_u64(),
            st["type_changed"].as_u64()
        ),
        (Some(4), Some(3), Some(1), Some(1)),
        "{st}"
    );
    assert_eq!(st["bytes_added"], j(8 + (2 << 20) + 2 + 3));
    assert_eq!(st["bytes_removed"], j(3 + 2 + 3 + 4));
    // without --metadata the U lines are left out, and the text form says the same
    let text = e.ok(&["diff", &s1, &s2]);
    assert!(!text.contains("U    "), "{text}");
    assert!(
        text.contains(&format!("M    {}/a.txt  (3 B -> 8 B)", src.display())),
        "{text}"
    );
    assert!(text.contains("4 added, 3 removed, 1 modified"), "{text}");

    // stats: the second snapshot restores what its files hold; the copy of
    // big.bin costs nothing
    let s = e.json(&["stats", &s2]);
    let files_bytes = 8 + 3 + 3 + 2 + 2 * (2u64 << 20);
    assert_eq!(s["restore_bytes"], j(files_bytes), "{s}");
    assert_eq!(s["files"], j(6), "{s}");
    let snap = &e.json(&["snapshots"])[1];
    assert_eq!(snap["summary"]["total_bytes"], j(files_bytes));
    assert!(s["dedup_ratio"].as_f64().unwrap() > 1.99, "{s}");
    // the repository: both snapshots, stored bytes within what the packs hold
    let all = e.json(&["stats"]);
    assert_eq!(all["snapshots"], j(2));
    let packs: u64 = e.objects("packs/").iter().map(|(_, n)| n).sum();
    assert_eq!(all["repository"]["pack_bytes"], j(packs));
    let stored = all["stored_bytes"].as_u64().unwrap();
    assert!(
        stored <= packs && stored > packs * 9 / 10,
        "{all} vs {packs}"
    );
    // noise does not compress
    let c = all["compression_ratio"].as_f64().unwrap();
    assert!((0.99..1.01).contains(&c), "{all}");
    // filters that match no snapshot are an error, not an empty repository
    let o = e.run(&["stats", "--host", "no-such-host"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no snapshot matches the filters"));
}

#[test]
fn find_matches_names_and_full_paths_across_snapshots() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(src.join("etc/ssh")).unwrap();
    std::fs::write(src.join("etc/ssh/sshd_config"), b"Port 22").unwrap();
    std::fs::write(src.join("etc/hosts"), b"127.0.0.1 localhost").unwrap();
    let s1 = e.backup(&[&src]);
    std::fs::write(src.join("etc/app.conf"), b"x=1").unwrap();
    let s2 = e.backup(&[&src]);

    let v = e.json(&["find", "*.conf", "sshd_*"]);
    let mut got: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["snapshot"].as_str().unwrap()[..8].to_string(),
                m["path"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(src.to_str().unwrap())
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (s1[..8].to_string(), "/etc/ssh/sshd_config".to_string()),
        (s2[..8].to_string(), "/etc/app.conf".to_string()),
        (s2[..8].to_string(), "/etc/ssh/sshd_config".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    // a pattern with a slash is matched against the full path; * stops at /
    let full = format!("{}/etc/*", src.display());
    let v = e.json(&["find", &full, "--newest", "1"]);
    let paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 3, "{paths:?}"); // app.conf, hosts, ssh (not ssh/sshd_config)
    // nothing found: exit 1
    let o = e.run(&["find", "nothing-like-this"]);
    assert_eq!(o.status.code(), Some(1));
    // a pattern that cannot be parsed: the command could not run, exit 2
    let o = e.run(&["find", "[unclosed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad find pattern '[unclosed'"));
}
