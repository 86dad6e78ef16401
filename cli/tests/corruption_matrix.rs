//! The corruption matrix: for every kind of object and every fault, `check`
//! detects it and names what is affected, `restore` and `dump` never write
//! wrong bytes, and repair recovers what is still recoverable.
//!
//! Run with `--nocapture` to see the table that the test also asserts.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Env, noise};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Config,
    KeyFile,
    PackBody,
    PackHeader,
    IndexSegment,
    Snapshot,
    TreeBlob,
    Catalog,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    BitFlip,
    Truncate,
    Delete,
    Swap,
    OlderVersion,
}

const KINDS: [Kind; 8] = [
    Kind::Config,
    Kind::KeyFile,
    Kind::PackBody,
    Kind::PackHeader,
    Kind::IndexSegment,
    Kind::Snapshot,
    Kind::TreeBlob,
    Kind::Catalog,
];
const FAULTS: [Fault; 5] = [
    Fault::BitFlip,
    Fault::Truncate,
    Fault::Delete,
    Fault::Swap,
    Fault::OlderVersion,
];

/// A repository with two keys, two snapshots, and the source they came from.
struct Fixture {
    e: Env,
    src: PathBuf,
    s1: String,
    s2: String,
    /// Source content per snapshot, by relative path.
    expect: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The second key's id (not the one the tests open with).
    other_key: String,
    /// The catalog file as it was after the first snapshot.
    old_catalog: Vec<u8>,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn snapshot_contents(src: &Path) -> BTreeMap<String, Vec<u8>> {
    files(src)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(src).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

impl Fixture {
    fn new() -> Self {
        let e = Env::init();
        let pw2 = e.path("pw2");
        std::fs::write(&pw2, "the other password").unwrap();
        let k = e.json(&[
            "key",
            "add",
            "--new-password-file",
            pw2.to_str().unwrap(),
            "--kdf-memory",
            "8192",
        ]);
        let other_key = k["id"].as_str().unwrap().to_string();
        let src = e.path("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.bin"), noise(2_500_000, 1)).unwrap();
        std::fs::write(src.join("b.txt"), b"small file\n").unwrap();
        std::fs::write(src.join("sub/c.log"), "log line\n".repeat(20_000)).unwrap();
        let mut expect = BTreeMap::new();
        let s1 = e.backup(&[&src]);
        expect.insert(s1.clone(), snapshot_contents(&src));
        let old_catalog = std::fs::read(catalog_path(&e)).unwrap();
        std::fs::write(src.join("sub/c.log"), "changed line\n".repeat(30_000)).unwrap();
        std::fs::write(src.join("sub/d.bin"), noise(600_000, 2)).unwrap();
        let s2 = e.backup(&[&src]);
        expect.insert(s2.clone(), snapshot_contents(&src));
        Fixture {
            e,
            src,
            s1,
            s2,
            expect,
            other_key,
            old_catalog,
        }
    }

    fn repo(&self) -> PathBuf {
        PathBuf::from(&self.e.repo)
    }

    fn packs(&self, kind: &str) -> Vec<(PathBuf, serde_json::Value)> {
        files(&self.repo().join("packs"))
            .into_iter()
            .filter_map(|p| {
                let id = p.file_name().unwrap().to_str().unwrap().to_string();
                let v = self.e.json(&["cat", "pack", &id]);
                (v["blobs"][0]["type"] == kind).then_some((p, v))
            })
            .collect()
    }

    /// The data pack holding `a.bin`'s chunks (written by the first backup).
    fn data_pack(&self) -> (PathBuf, serde_json::Value) {
        self.packs("data")
            .into_iter()
            .max_by_key(|(p, _)| std::fs::metadata(p).unwrap().len())
            .unwrap()
    }

    fn snapshot_file(&self, id: &str) -> PathBuf {
        self.repo().join("snapshots").join(id)
    }
}

fn catalog_path(e: &Env) -> PathBuf {
    files(&e.cache)
        .into_iter()
        .find(|p| p.file_name().unwrap() == "catalog.sqlite")
        .expect("catalog exists")
}

fn writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if p.exists() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

fn flip(p: &Path, at: u64) {
    writable(p);
    let mut b = std::fs::read(p).unwrap();
    let i = (at as usize).min(b.len() - 1);
    b[i] ^= 0x10;
    std::fs::write(p, b).unwrap();
}

fn truncate(p: &Path) {
    writable(p);
    let b = std::fs::read(p).unwrap();
    std::fs::write(p, &b[..b.len() / 2]).unwrap();
}

fn swap(a: &Path, b: &Path) {
    writable(a);
    writable(b);
    let x = std::fs::read(a).unwrap();
    let y = std::fs::read(b).unwrap();
    std::fs::write(a, y).unwrap();
    std::fs::write(b, x).unwrap();
}

/// What happened in one cell.
struct Outcome {
    detected: String,
    restore: String,
    repair: String,
}

/// Applies the fault. Returns `None` when the fault cannot happen to this
/// kind of object (with the reason).
fn apply(f: &Fixture, kind: Kind, fault: Fault) -> Result<(), &'static str> {
    let repo = f.repo();
    match (kind, fault) {
        (Kind::Config, Fault::BitFlip) => flip(&repo.join("config"), 40),
        (Kind::Config, Fault::Truncate) => truncate(&repo.join("config")),
        (Kind::Config, Fault::Delete) => std::fs::remove_file(repo.join("config")).unwrap(),
        (Kind::Config, Fault::Swap) => {
            // the config of another repository
            let other = Env::init();
            writable(&repo.join("config"));
            std::fs::copy(Path::new(&other.repo).join("config"), repo.join("config")).unwrap();
        }
        (Kind::Config, Fault::OlderVersion) => {
            return Err("written once at init: it has no older version");
        }
        (
            Kind::KeyFile
            | Kind::PackBody
            | Kind::PackHeader
            | Kind::IndexSegment
            | Kind::Snapshot
            | Kind::TreeBlob,
            Fault::OlderVersion,
        ) => {
            return Err(
                "named by the hash of its bytes: an object never changes, so it has no older version",
            );
        }
        (Kind::KeyFile, fault) => {
            let k = repo.join("keys").join(&f.other_key);
            match fault {
                Fault::BitFlip => flip(&k, 200),
                Fault::Truncate => truncate(&k),
                Fault::Delete => std::fs::remove_file(&k).unwrap(),
                Fault::Swap => {
                    let first = files(&repo.join("keys"))
                        .into_iter()
                        .find(|p| *p != k)
                        .unwrap();
                    swap(&k, &first);
                }
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::PackBody, fault) => {
            let (p, _) = f.data_pack();
            match fault {
                Fault::BitFlip => flip(&p, 100),
                Fault::Truncate => truncate(&p),
                Fault::Delete => std::fs::remove_file(&p).unwrap(),
                Fault::Swap => {
                    let other = f
                        .packs("data")
                        .into_iter()
                        .map(|(q, _)| q)
                        .find(|q| *q != p)
                        .unwrap();
                    swap(&p, &other);
                }
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::PackHeader, fault) => {
            let (p, _) = f.data_pack();
            let len = std::fs::metadata(&p).unwrap().len();
            match fault {
                Fault::BitFlip => flip(&p, len - 20),
                Fault::Truncate => {
                    writable(&p);
                    let b = std::fs::read(&p).unwrap();
                    std::fs::write(&p, &b[..b.len() - 8]).unwrap(); // the trailer
                }
                Fault::Delete => {
                    // cut the whole header and trailer, keep the blobs
                    writable(&p);
                    let b = std::fs::read(&p).unwrap();
                    let hlen = u32::from_le_bytes(b[b.len() - 8..b.len() - 4].try_into().unwrap())
                        as usize;
                    std::fs::write(&p, &b[..b.len() - 8 - hlen]).unwrap();
                }
                Fault::Swap => {
                    // the header and trailer of another data pack
                    let other = f
                        .packs("data")
                        .into_iter()
                        .map(|(q, _)| q)
                        .find(|q| *q != p)
                        .unwrap();
                    let a = std::fs::read(&p).unwrap();
                    let o = std::fs::read(&other).unwrap();
                    let ah = u32::from_le_bytes(a[a.len() - 8..a.len() - 4].try_into().unwrap())
                        as usize
                        + 8;
                    let oh = u32::from_le_bytes(o[o.len() - 8..o.len() - 4].try_into().unwrap())
                        as usize
                        + 8;
                    let mut n = a[..a.len() - ah].to_vec();
                    n.extend_from_slice(&o[o.len() - oh..]);
                    writable(&p);
                    std::fs::write(&p, n).unwrap();
                }
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::IndexSegment, fault) => {
            let segs = files(&repo.join("index"));
            let s = &segs[0];
            match fault {
                Fault::BitFlip => flip(s, 60),
                Fault::Truncate => truncate(s),
                Fault::Delete => std::fs::remove_file(s).unwrap(),
                Fault::Swap => swap(s, &segs[1]),
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::Snapshot, fault) => {
            let p = f.snapshot_file(&f.s1);
            match fault {
                Fault::BitFlip => flip(&p, 50),
                Fault::Truncate => truncate(&p),
                Fault::Delete => std::fs::remove_file(&p).unwrap(),
                Fault::Swap => swap(&p, &f.snapshot_file(&f.s2)),
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::TreeBlob, fault) => {
            // a tree blob of the first snapshot: the first blob of its tree pack
            let (p, v) = f.packs("tree").into_iter().next().unwrap();
            let b0 = &v["blobs"][0];
            let off = b0["offset"].as_u64().unwrap();
            let len = b0["length"].as_u64().unwrap();
            match fault {
                Fault::BitFlip => flip(&p, off + len / 2),
                Fault::Truncate => {
                    // cut the blob short: its tail becomes zeros
                    writable(&p);
                    let mut b = std::fs::read(&p).unwrap();
                    for x in &mut b[(off + len / 2) as usize..(off + len) as usize] {
                        *x = 0;
                    }
                    std::fs::write(&p, b).unwrap();
                }
                Fault::Delete => {
                    // the blob's bytes replaced by zeros (as if erased)
                    writable(&p);
                    let mut b = std::fs::read(&p).unwrap();
                    for x in &mut b[off as usize..(off + len) as usize] {
                        *x = 0;
                    }
                    std::fs::write(&p, b).unwrap();
                }
                Fault::Swap => {
                    // two tree blobs of the same pack exchange their bytes
                    let b1 = &v["blobs"][1];
                    let off1 = b1["offset"].as_u64().unwrap();
                    let len1 = b1["length"].as_u64().unwrap();
                    writable(&p);
                    let b = std::fs::read(&p).unwrap();
                    let x = b[off as usize..(off + len) as usize].to_vec();
                    let y = b[off1 as usize..(off1 + len1) as usize].to_vec();
                    let mut n = b[..off as usize].to_vec();
                    // blobs are contiguous: blob 0 then blob 1
                    assert_eq!(off + len, off1);
                    n.extend_from_slice(&y);
                    n.extend_from_slice(&x);
                    n.extend_from_slice(&b[(off1 + len1) as usize..]);
                    std::fs::write(&p, n).unwrap();
                }
                Fault::OlderVersion => unreachable!(),
            }
        }
        (Kind::Catalog, fault) => {
            let c = catalog_path(&f.e);
            for s in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{s}", c.display()));
            }
            match fault {
                Fault::BitFlip => {
                    // flip a byte of a stored pack id (inside a row)
                    let (p, _) = f.data_pack();
                    let id = hex::decode(p.file_name().unwrap().to_str().unwrap()).unwrap();
                    let b = std::fs::read(&c).unwrap();
                    let at = b
                        .windows(32)
                        .position(|w| w == id.as_slice())
                        .expect("pack id stored in the catalog");
                    flip(&c, at as u64 + 5);
                }
                Fault::Truncate => truncate(&c),
                Fault::Delete => std::fs::remove_file(&c).unwrap(),
                Fault::Swap => {
                    let other = Env::init();
                    let src = other.path("x");
                    std::fs::create_dir_all(&src).unwrap();
                    std::fs::write(src.join("f"), b"other").unwrap();
                    other.backup(&[&src]);
                    std::fs::copy(catalog_path(&other), &c).unwrap();
                }
                Fault::OlderVersion => std::fs::write(&c, &f.old_catalog).unwrap(),
            }
        }
    }
    Ok(())
}

/// Restores every snapshot that still loads and checks that every file
/// written is byte-identical to the source, and that failures name files.
fn restore_is_safe(f: &Fixture, tag: &str) -> String {
    let mut results = vec![];
    for snap in [&f.s1, &f.s2] {
        let want = &f.expect[snap];
        let t = f.e.path(&format!("restore-{tag}-{}", &snap[..8]));
        let o = f.e.run(&["restore", snap, "--target", t.to_str().unwrap()]);
        let base = t.join(f.src.strip_prefix("/").unwrap());
        for p in files(&base) {
            let rel = p.strip_prefix(&base).unwrap().display().to_string();
            let got = std::fs::read(&p).unwrap();
            assert!(
                want.get(&rel) == Some(&got),
                "{tag}: restore of {snap} wrote wrong bytes to {rel}"
            );
        }
        // dump never emits an unverified byte either
        for (rel, content) in want {
            let d =
                f.e.run(&["dump", snap, &format!("{}/{rel}", f.src.display())]);
            assert!(
                content.starts_with(&d.stdout),
                "{tag}: dump of {rel} from {snap} emitted wrong bytes"
            );
            if d.status.success() {
                assert_eq!(
                    &d.stdout, content,
                    "{tag}: dump of {rel} succeeded with wrong content"
                );
            }
        }
        if o.status.success() {
            assert_eq!(
                files(&base).len(),
                want.len(),
                "{tag}: restore of {snap} reported success but lost files"
            );
            results.push("ok".to_string());
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.is_empty(), "{tag}: a failed restore must say why");
            results.push(format!(
                "refused ({} of {} files)",
                files(&base).len(),
                want.len()
            ));
        }
    }
    results.join(" / ")
}

/// Runs every reading command, and a backup on a copy, against the damaged
/// repository: each exits with a documented code (never a panic), and a
/// failure says what is wrong with which object, and names a fix.
fn sweep(f: &Fixture, tag: &str) {
    let run = |e: &Env, args: &[&str], codes: &[i32]| {
        let o = e.run(args);
        let code = o.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            codes.contains(&code) && !err.contains("panicked"),
            "{tag}: arca {args:?} exited {code} (documented: {codes:?}): {err}"
        );
        if code != 0 && code != 3 {
            let names = [
                "config",
                "key",
                "pack",
                "index",
                "snapshot",
                "tree",
                "blob",
                "catalog",
                "password",
                "repository",
            ];
            assert!(
                names.iter().any(|n| err.contains(n)),
                "{tag}: arca {args:?} failed without naming what is wrong: {err}"
            );
        }
        o
    };
    let snaps = run(&f.e, &["--json", "snapshots"], &[0, 1]);
    for id in [&f.s1, &f.s2] {
        run(&f.e, &["ls", id], &[0, 1]);
        run(&f.e, &["ls", "-l", id, "/"], &[0, 1]);
        run(&f.e, &["cat", "snapshot", id], &[0, 1]);
    }
    if snaps.status.success() {
        run(&f.e, &["ls", "latest"], &[0, 1]);
    }
    run(&f.e, &["check"], &[0, 1, 2]);
    run(&f.e, &["key", "list"], &[0, 1]);
    // a backup on top of the damage (on a copy, so the repairs that follow
    // see the damage as it is) exits as documented, and what it saves is
    // no worse than the snapshot it builds on: every file the damaged S2
    // still restores, the new snapshot restores too. (Damage that the
    // backup does not read, such as a flipped byte inside a pack, is
    // inherited by deduplication until check and repair find it.)
    let copy = Env::local_at(&f.e.path("sweep-copy"));
    common::copy_dir(&f.repo(), Path::new(&copy.repo));
    common::copy_dir(&f.e.cache, &copy.cache);
    let restorable = |id: &str, target: &str| -> BTreeMap<String, Vec<u8>> {
        let t = copy.path(target);
        let _ = copy.run(&["restore", id, "--target", t.to_str().unwrap()]);
        let base = t.join(f.src.strip_prefix("/").unwrap());
        files(&base)
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(&base).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let before = restorable(&f.s2, "sweep-s2");
    let o = run(
        &copy,
        &["--json", "backup", f.src.to_str().unwrap()],
        &[0, 1, 3],
    );
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = v["snapshot_id"].as_str().unwrap();
        let after = restorable(id, "sweep-new");
        for (rel, content) in &after {
            assert_eq!(
                f.expect[&f.s2].get(rel),
                Some(content),
                "{tag}: the backup on top of the damage restores wrong bytes for {rel}"
            );
        }
        for rel in before.keys() {
            assert!(
                after.contains_key(rel),
                "{tag}: the backup on top of the damage lost {rel}, which the snapshot before it restores"
            );
        }
    }
}

fn check(f: &Fixture, env_password: Option<&str>) -> (i32, serde_json::Value, String) {
    let mut c = f.e.cmd();
    if let Some(p) = env_password {
        c.env("ARCA_PASSWORD", p);
    }
    let o = c.args(["check", "--read-data", "--json"]).output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (
        o.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_cell(kind: Kind, fault: Fault) -> Outcome {
    let f = Fixture::new();
    let tag = format!("{kind:?}/{fault:?}");
    if let Err(why) = apply(&f, kind, fault) {
        return Outcome {
            detected: format!("n/a: {why}"),
            restore: "n/a".into(),
            repair: "n/a".into(),
        };
    }
    // 1. check detects it and names what is affected
    let (code, report, stderr) = check(&f, None);
    let detected = match kind {
        Kind::Catalog => {
            // the catalog is a cache: the repository is intact; check says
            // the cache was rebuilt (or silently recreates a deleted one)
            assert_eq!(code, 0, "{tag}: {stderr}");
            let warned = report["report"]["warnings"].as_array().is_some_and(|w| {
                w.iter()
                    .any(|x| x.as_str().unwrap_or("").contains("catalog"))
            });
            if fault == Fault::Delete {
                "cache missing: rebuilt (a deleted cache is normal)".to_string()
            } else if fault == Fault::OlderVersion {
                "not damage: sync brings an older cache up to date".to_string()
            } else {
                assert!(
                    warned,
                    "{tag}: check must say the catalog was rebuilt: {report}"
                );
                "yes: warning, catalog rebuilt; repository clean".to_string()
            }
        }
        Kind::Snapshot if fault == Fault::Delete => {
            // a deleted manifest is indistinguishable from `forget`
            assert_eq!(code, 0, "{tag}: {stderr}");
            "no: a deleted snapshot is indistinguishable from a forgotten one".to_string()
        }
        Kind::KeyFile if fault == Fault::Delete => {
            // a deleted key file is indistinguishable from `key remove`
            assert_eq!(code, 0, "{tag}: {stderr}");
            "no: a deleted key is indistinguishable from `key remove`".to_string()
        }
        _ => {
            assert_eq!(
                code, 1,
                "{tag}: check must find damage (exit 1): {stderr} {report}"
            );
            let problems = report["report"]["problems"].as_array().unwrap();
            assert!(!problems.is_empty());
            let named: Vec<String> = problems
                .iter()
                .map(|p| p["object"].as_str().unwrap().to_string())
                .collect();
            let affected: usize = problems
                .iter()
                .map(|p| p["affects"].as_array().unwrap().len())
                .sum();
            format!(
                "yes: {} ({} problem(s), {} affected path(s))",
                named[0].split('/').next().unwrap(),
                problems.len(),
                affected
            )
        }
    };
    // 2. every command on the damaged repository: documented exit codes,
    // no panic, an error that names what is wrong; restore and dump never
    // write wrong bytes
    sweep(&f, &tag);
    let restore = restore_is_safe(&f, &tag);
    // 3. repair what can be repaired, then check is clean
    let mut steps = vec![];
    let run = |args: &[&str]| {
        let o = f.e.run(args);
        assert!(
            o.status.success(),
            "{tag}: arca {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    if kind == Kind::KeyFile && matches!(fault, Fault::BitFlip | Fault::Truncate) {
        run(&["key", "remove", &f.other_key]);
        steps.push("key remove");
    }
    let out = run(&["repair", "index", "--read-data"]);
    if !out.contains("nothing to do") {
        steps.push("repair index --read-data");
    }
    let out = run(&["repair", "snapshots", "--forget"]);
    if !out.contains(" 0 rewritten") || out.contains("unreadable") || out.contains("re-filed") {
        steps.push("repair snapshots --forget");
    }
    let (code, report, stderr) = check(&f, None);
    assert_eq!(
        code, 0,
        "{tag}: check after repair must be clean: {stderr} {report}"
    );
    // whatever is still listed restores, and every byte it writes is right
    let after = f.e.json(&["snapshots"]);
    let mut restorable = 0;
    for s in after.as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let t = f.e.path(&format!("after-{}", &id[..8]));
        let o = f.e.run(&["restore", id, "--target", t.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{tag}: restore after repair: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let original = s["original"].as_str().unwrap_or(id);
        let want = f.expect.get(original).or_else(|| f.expect.get(id));
        if let Some(want) = want {
            let base = t.join(f.src.strip_prefix("/").unwrap());
            let mut intact = true;
            for (rel, content) in want {
                match std::fs::read(base.join(rel)) {
                    Ok(got) if &got == content => {}
                    _ => intact = false,
                }
            }
            if intact {
                restorable += 1;
            }
        }
    }
    // Heal: a new backup re-reads and re-uploads whatever was lost that
    // the source still has, and restores whole.
    let mut healed = String::new();
    if restorable < 2 {
        let v = f.e.json(&["backup", f.src.to_str().unwrap()]);
        let id = v["snapshot_id"].as_str().unwrap();
        let t = f.e.path("healed");
        f.e.ok(&["restore", id, "--target", t.to_str().unwrap()]);
        let base = t.join(f.src.strip_prefix("/").unwrap());
        for (rel, content) in &f.expect[&f.s2] {
            assert_eq!(
                &std::fs::read(base.join(rel)).unwrap(),
                content,
                "{tag}: healed backup lost {rel}"
            );
        }
        let (code, _, stderr) = check(&f, None);
        assert_eq!(code, 0, "{tag}: check after healing: {stderr}");
        healed = format!(
            "; next backup heals ({} re-uploaded)",
            output_size(v["summary"]["data_added"].as_u64().unwrap())
        );
    }
    let repair = format!(
        "{}: clean; {}/2 snapshots fully intact{healed}",
        if steps.is_empty() {
            "nothing to repair".to_string()
        } else {
            steps.join(" + ")
        },
        restorable
    );
    Outcome {
        detected,
        restore,
        repair,
    }
}

fn output_size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

#[test]
fn corruption_matrix() {
    let mut rows = vec![];
    for kind in KINDS {
        for fault in FAULTS {
            let o = run_cell(kind, fault);
            rows.push(format!(
                "| {kind:?} | {fault:?} | {} | {} | {} |",
                o.detected, o.restore, o.repair
            ));
        }
    }
    eprintln!(
        "| object | fault | check --read-data detects | restore and dump of S1 / S2 (never a wrong byte) | repair |"
    );
    eprintln!("| --- | --- | --- | --- | --- |");
    for r in &rows {
        eprintln!("{r}");
    }
}
