//! `arca forget` keeps exactly the snapshots restic keeps.
//!
//! The same irregular series of snapshots (bursts, gaps of weeks, several a
//! day, two hosts, two tag sets, two path sets, a DST change and a year
//! boundary) is made with the real restic (0.14, Debian's `restic`) and
//! with arca, at the same instants (arca is given the times restic
//! recorded). Then every policy below is run as `forget --dry-run --json`
//! by both, and the snapshots each keeps and removes are compared by
//! instant, host, tags and paths (snapshot ids differ between the tools;
//! among snapshots equal in all four, which one restic keeps depends on
//! the order its parallel loaders return them, so those count as one).
//!
//! Both series are made once with `TZ=UTC` and once with
//! `TZ=Europe/Berlin` (restic buckets by the offset it recorded, arca by
//! the local zone of the forget: the same when the zone is the same).
//!
//! restic must be installed (`.ci/run` installs it): without it this test
//! fails, it does not skip. The repository backend does not matter to a
//! policy, so this test uses local repositories (scripts/test does not
//! run it again against Garage).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::Env;

/// `(wall-clock time, host, tags, path set)` of the series, in the zone
/// of the run.
fn series() -> Vec<(String, &'static str, &'static str, usize)> {
    let mut v = vec![];
    let mut add = |t: &str, host, tags, paths| v.push((t.to_string(), host, tags, paths));
    // a burst within one hour, then several a day
    for m in [0, 5, 10, 40, 55] {
        add(&format!("2020-12-30 23:{m:02}:00"), "alpha", "daily", 0);
    }
    add("2020-12-31 23:59:59", "alpha", "daily", 0);
    add("2021-01-01 00:00:00", "alpha", "manual", 0);
    add("2021-01-01 00:00:00", "alpha", "manual", 0);
    for d in 1..=12 {
        add(&format!("2021-01-{d:02} 03:00:00"), "alpha", "daily", 0);
        if d % 3 == 0 {
            add(&format!("2021-01-{d:02} 15:30:00"), "alpha", "daily", 0);
            add(&format!("2021-01-{d:02} 15:30:00"), "beta", "daily,db", 1);
        }
    }
    // a gap of seven weeks, then the DST change in Europe (2021-03-28)
    add("2021-03-01 12:00:00", "beta", "manual", 1);
    for h in [0, 1, 3, 4] {
        add(&format!("2021-03-28 0{h}:30:00"), "alpha", "daily", 0);
    }
    add("2021-03-28 04:30:00", "beta", "daily,db", 1);
    // weeklies, a monthly tail, a last burst
    for w in 0..6 {
        let d = 4 + 7 * w;
        let (m, d) = if d > 30 { (5, d - 30) } else { (4, d) };
        add(
            &format!("2021-{m:02}-{d:02} 08:00:00"),
            "alpha",
            "weekly",
            0,
        );
    }
    for m in [7, 9, 10, 12] {
        add(&format!("2021-{m:02}-15 06:00:00"), "beta", "monthly", 1);
    }
    add("2022-02-01 10:00:00", "alpha", "daily", 0);
    add("2022-02-01 10:20:00", "alpha", "daily", 0);
    add("2022-02-01 10:20:00", "beta", "daily,db", 1);
    add("2022-02-02 09:00:00", "alpha", "manual", 0);
    v
}

/// The policies compared: every rule alone and in combinations, with
/// grouping and filters.
const POLICIES: &[&str] = &[
    "--keep-last 3",
    "--keep-last 100",
    "--keep-hourly 5",
    "--keep-daily 7",
    "--keep-weekly 4",
    "--keep-monthly 6",
    "--keep-yearly 3",
    "--keep-within 10d",
    "--keep-within 1y2m",
    "--keep-within-hourly 2d",
    "--keep-within-daily 21d",
    "--keep-within-weekly 2m",
    "--keep-within-monthly 1y",
    "--keep-within-yearly 5y",
    "--keep-tag manual",
    "--keep-tag daily,db",
    "--keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly 2",
    "--keep-last 2 --keep-hourly 3 --keep-tag manual",
    "--keep-within-daily 7d --keep-weekly 3 --keep-monthly 2",
    "--keep-daily 3 --group-by host",
    "--keep-weekly 2 --group-by tags",
    "--keep-last 1 --group-by host,tags",
    "--keep-monthly 3 --group-by host,paths,tags",
    "--keep-daily 5 --host alpha",
    "--keep-monthly 2 --tag daily",
    "--keep-hourly 4 --keep-tag weekly --group-by paths",
];

/// One kept or removed snapshot, as both tools can name it.
type Key = (i64, String, Vec<String>, Vec<String>);

fn key(s: &serde_json::Value, host_field: &str) -> Key {
    let t = chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        out.sort();
        out
    };
    (
        t.timestamp_nanos_opt().unwrap(),
        s[host_field].as_str().unwrap().to_string(),
        strings(&s["tags"]),
        strings(&s["paths"]),
    )
}

/// What a `forget --json` output keeps and removes, over all groups:
/// how many of each key.
fn outcome(
    groups: &serde_json::Value,
    host_field: &str,
) -> (BTreeMap<Key, usize>, BTreeMap<Key, usize>) {
    let mut keep = BTreeMap::new();
    let mut remove = BTreeMap::new();
    for g in groups.as_array().expect("an array of groups") {
        for (field, into) in [("keep", &mut keep), ("remove", &mut remove)] {
            for s in g[field].as_array().into_iter().flatten() {
                *into.entry(key(s, host_field)).or_insert(0) += 1;
            }
        }
    }
    (keep, remove)
}

fn restic(dir: &Path, tz: &str) -> Command {
    let mut c = Command::new("restic");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("TZ", tz)
        .env("RESTIC_REPOSITORY", dir.join("restic-repo"))
        .env("RESTIC_PASSWORD", "pw")
        .env("RESTIC_CACHE_DIR", dir.join("restic-cache"));
    c
}

fn run_ok(c: &mut Command) -> String {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        o.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn compare_in(tz: &str) -> usize {
    let e = Env::local();
    e.ok(&["init", "--kdf-memory", "8192"]);
    let dir = e.dir.path();
    let sets = [e.path("data/a"), e.path("data/b")];
    for (i, p) in sets.iter().enumerate() {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(p.join("f"), format!("set {i}")).unwrap();
    }
    run_ok(restic(dir, tz).args(["init"]));
    let series = series();
    for (t, host, tags, paths) in &series {
        let mut c = restic(dir, tz);
        c.args([
            "backup", "--quiet", "--time", t, "--host", host, "--tag", tags,
        ]);
        c.arg(&sets[*paths]);
        run_ok(&mut c);
    }
    // arca backs up at the instants restic recorded
    let recorded: serde_json::Value =
        serde_json::from_str(&run_ok(restic(dir, tz).args(["snapshots", "--json"]))).unwrap();
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), series.len());
    for s in recorded {
        let mut a = vec![
            "backup".to_string(),
            "--time".into(),
            s["time"].as_str().unwrap().into(),
            "--host".into(),
            s["hostname"].as_str().unwrap().into(),
        ];
        for t in s["tags"].as_array().unwrap() {
            a.push("--tag".into());
            a.push(t.as_str().unwrap().into());
        }
        a.extend(
            s["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string()),
        );
        let o = e
            .cmd()
            .env("TZ", tz)
            .args(&a)
            .arg("--quiet")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "arca {a:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let mut compared = 0;
    for policy in POLICIES {
        let args: Vec<&str> = policy.split(' ').collect();
        let theirs: serde_json::Value = serde_json::from_str(&run_ok(
            restic(dir, tz)
                .args(["forget", "--dry-run", "--json"])
                .args(&args),
        ))
        .unwrap_or_else(|err| panic!("restic forget {policy}: {err}"));
        let o = e
            .cmd()
            .env("TZ", tz)
            .args(["forget", "--dry-run", "--json"])
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "arca forget {policy}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let (tk, tr) = outcome(&theirs, "hostname");
        let (ok, or) = outcome(&ours, "host");
        let dedup = |m: &BTreeMap<Key, usize>| m.keys().cloned().collect::<Vec<_>>();
        assert!(
            tk.values().sum::<usize>() + tr.values().sum::<usize>() > 0,
            "TZ={tz} {policy}: restic saw no snapshots"
        );
        assert_eq!(
            dedup(&ok),
            dedup(&tk),
            "TZ={tz} forget {policy}: arca keeps other snapshots than restic"
        );
        assert_eq!(
            ok.values().sum::<usize>(),
            tk.values().sum::<usize>(),
            "TZ={tz} forget {policy}: arca keeps another number of snapshots than restic"
        );
        assert_eq!(
            or.values().sum::<usize>(),
            tr.values().sum::<usize>(),
            "TZ={tz} forget {policy}: arca removes another number of snapshots than restic"
        );
        assert_eq!(
            ours.as_array().unwrap().len(),
            theirs.as_array().unwrap().len(),
            "TZ={tz} forget {policy}: another number of groups"
        );
        compared += 1;
    }
    compared
}

#[test]
fn forget_keeps_exactly_what_restic_keeps() {
    let v = Command::new("restic").arg("version").output().unwrap_or_else(|e| {
        panic!("this test compares with the real restic, which is not installed ({e}): apt-get install restic")
    });
    let version = String::from_utf8_lossy(&v.stdout).into_owned();
    let mut total = 0;
    for tz in ["UTC", "Europe/Berlin"] {
        total += compare_in(tz);
    }
    eprintln!(
        "{total} policy runs ({} policies x 2 zones, {} snapshots each) identical to {}",
        POLICIES.len(),
        series().len(),
        version.trim()
    );
    assert_eq!(total, 2 * POLICIES.len());
}
