//! The layers of `engine/src` hold: imports run downwards only, and
//! `format/` does no I/O. (ARCHITECTURE.md says why; this keeps it true.)

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Lines of `folder` that mention any of `forbidden` (outside comments).
fn offenders(folder: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut out = vec![];
    for f in sources(&root) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in forbidden {
                // a whole name: `File::` is std's, `WalFile::` is not
                let hit = code.match_indices(bad).any(|(at, _)| {
                    !code[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    out.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn format_is_pure_bytes() {
    let bad = offenders(
        "format",
        &[
            "crate::store",
            "crate::ops",
            "crate::host",
            "std::fs",
            "std::net",
            "std::process",
            "File::",
        ],
    );
    assert!(
        bad.is_empty(),
        "format/ must not do I/O:\n{}",
        bad.join("\n")
    );
}

#[test]
fn store_does_not_reach_up_into_ops() {
    let bad = offenders("store", &["crate::ops"]);
    assert!(
        bad.is_empty(),
        "store/ must not use ops/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn host_is_below_store_and_ops() {
    let bad = offenders("host", &["crate::store", "crate::ops"]);
    assert!(
        bad.is_empty(),
        "host/ must not use store/ or ops/:\n{}",
        bad.join("\n")
    );
}
