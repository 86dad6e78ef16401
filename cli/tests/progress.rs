//! Progress with `--json`: line-delimited status events, then one summary
//! line (restic's `message_type`s), when ARCA_PROGRESS_FPS asks for them
//! (or standard output is a terminal); without, a single JSON object.

mod common;

use common::{Env, random_tree};

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Runs `arca --json ARGS` asking for status lines; its lines, parsed.
fn run_lines(e: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let o = e
        .cmd()
        .env("ARCA_PROGRESS_FPS", "60")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    lines(&o.stdout)
}

#[test]
fn json_progress_is_status_lines_then_a_summary() {
    let e = Env::init();
    let src = e.path("src");
    random_tree(&src, 30, 1 << 20, 3);
    let run = |args: &[&str]| run_lines(&e, args);
    let b = run(&["backup", src.to_str().unwrap()]);
    assert!(b.len() >= 2, "{b:?}");
    let (last, status) = b.split_last().unwrap();
    assert_eq!(last["message_type"], "summary");
    assert!(last["snapshot_id"].is_string());
    for s in status {
        assert_eq!(s["message_type"], "status", "{s}");
        assert!(s["bytes_done"].is_u64() && s["files_done"].is_u64());
    }
    // a second backup knows the expected size (the parent's) once it has
    // chosen the parent
    let b = run(&["backup", "--force", src.to_str().unwrap()]);
    assert!(b.iter().any(|s| s["total_bytes"] == 30 << 20), "{b:?}");
    let r = run(&[
        "restore",
        "latest",
        "--target",
        e.path("r").to_str().unwrap(),
    ]);
    let (last, status) = r.split_last().unwrap();
    assert_eq!(last["message_type"], "summary");
    assert!(status.iter().all(|s| {
        let p = s["percent_done"].as_f64().unwrap_or(0.0);
        s["message_type"] == "status" && (0.0..=1.0).contains(&p)
    }));
    // the total is known once the restore is planned
    assert!(
        status.iter().any(|s| s["total_bytes"] == 30 << 20),
        "{status:?}"
    );
    // without it, and not on a terminal: the summary alone, as one object
    let v = e.json(&["backup", src.to_str().unwrap()]);
    assert_eq!(v["message_type"], "summary");
}

#[test]
fn a_sparse_file_counts_its_holes_as_done() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    // 256 MiB, of which 64 KiB are data
    let f = std::fs::File::create(src.join("image")).unwrap();
    f.set_len(256 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&common::noise(64 << 10, 9), 100 << 20)
        .unwrap();
    drop(f);
    let run = |args: &[&str]| run_lines(&e, args);
    run(&["backup", src.to_str().unwrap()]);
    let b = run(&["backup", "--force", src.to_str().unwrap()]);
    // the last status line has the final counts: the whole image is done
    let last = &b[b.len() - 2];
    assert_eq!(last["message_type"], "status", "{b:?}");
    assert_eq!(last["total_bytes"], 256 << 20, "{last}");
    assert_eq!(last["bytes_done"], 256 << 20, "{last}");
    assert_eq!(last["percent_done"], 1.0, "{last}");
}

#[test]
fn prune_reports_the_bytes_it_repacks() {
    let e = Env::init();
    let (a, b) = (e.path("a"), e.path("b"));
    random_tree(&a, 20, 1 << 20, 4);
    random_tree(&b, 20, 1 << 20, 5);
    // packs fill with `a`'s blobs then `b`'s: forgetting `b` leaves the
    // pack where they meet part used, so prune repacks it
    let both = e.path("both");
    common::copy_dir(&a, &both.join("a"));
    common::copy_dir(&b, &both.join("b"));
    e.backup(&[both.to_str().unwrap()]);
    std::fs::remove_dir_all(both.join("b")).unwrap();
    e.backup(&[both.to_str().unwrap()]);
    e.ok(&["forget", "--keep-last", "1"]);
    let p = run_lines(&e, &["prune", "--max-unused", "0"]);
    let (last, status) = p.split_last().unwrap();
    assert_eq!(last["message_type"], "summary", "{last}");
    assert!(last["packs_written"].as_u64().unwrap() > 0, "{last}");
    let fin = status.last().expect("a status line");
    assert_eq!(fin["message_type"], "status", "{fin}");
    let total = fin["total_bytes"].as_u64().expect("a total once planned");
    assert!(total > 0, "{fin}");
    assert_eq!(fin["bytes_done"], total, "{fin}");
    assert_eq!(fin["percent_done"], 1.0, "{fin}");
}
