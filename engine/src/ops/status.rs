//! Status: each source's last backup held against its objectives (RPO,
//! RTO through the last restore drill, check age), and anomalies worth a
//! look (a snapshot far smaller or larger than the recent ones, backups
//! that stopped coming, a snapshot time in the future, a partial snapshot).
//!
//! [`evaluate`] is pure: snapshots, drill records, coverage and `now` in,
//! a [`Status`] out; [`status`] reads them (catalog, drill and coverage
//! records: no pack is read) and calls it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::drill::DrillRecord;
use crate::format::snapshot::Snapshot;
use crate::ops::select::Filter;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// What the sources must meet. `None`: not held against it.
#[derive(Debug, Clone, Default)]
pub struct Objectives {
    /// Recovery point objective: the newest snapshot at most this old.
    pub rpo: Option<Duration>,
    /// Recovery time objective: the source's newest drill passed within it.
    pub rto: Option<Duration>,
    /// The source's newest drill at most this old.
    pub drill_age: Option<Duration>,
    /// Every verified pack verified again at most this long ago, and at
    /// least one verified (packs never verified are counted, not judged: a
    /// rolling check takes them first).
    pub check_age: Option<Duration>,
}

/// The newest drill of a source, as status reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DrillStatus {
    /// When it started.
    pub started: DateTime<Utc>,
    /// The recovery time it measured, in seconds.
    pub seconds: f64,
    /// Whether its restore and checks passed.
    pub ok: bool,
}

impl DrillStatus {
    fn of(d: &DrillRecord) -> Self {
        Self {
            started: d.started,
            seconds: d.total_seconds,
            ok: d.ok,
        }
    }
}

/// One source (host, paths, tags).
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    /// The profile's name for it ([`evaluate_expected`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The snapshots' host.
    pub host: String,
    /// Their paths.
    pub paths: Vec<String>,
    /// Their tags, sorted.
    pub tags: Vec<String>,
    /// How many snapshots it has.
    pub snapshots: usize,
    /// The newest snapshot's time (none: never backed up).
    pub last: Option<DateTime<Utc>>,
    /// Its age in seconds (negative: in the future).
    pub age_seconds: Option<i64>,
    /// Whether the RPO holds (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpo_ok: Option<bool>,
    /// The newest drill of this source, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillStatus>,
    /// Whether the drill objectives hold (absent without any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill_ok: Option<bool>,
    /// Each objective not met, in words.
    pub breaches: Vec<String>,
    /// What looks wrong without breaking an objective.
    pub anomalies: Vec<String>,
}

/// Check coverage against its objective.
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    /// Packs in the index.
    pub packs: u64,
    /// Packs ever verified.
    pub verified: u64,
    /// The oldest last-verification among verified packs.
    pub oldest_verification: Option<DateTime<Utc>>,
    /// Whether the check objective holds (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<String>,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When it was evaluated.
    pub now: DateTime<Utc>,
    /// Per source, ordered by host, paths, tags.
    pub sources: Vec<SourceStatus>,
    /// The repository's check coverage.
    pub check: CheckStatus,
}

impl Status {
    /// Whether every objective holds (anomalies do not count).
    pub fn ok(&self) -> bool {
        self.sources.iter().all(|s| s.breaches.is_empty()) && self.check.breach.is_none()
    }
}

/// Parses an age or objective: a number and a unit, repeated: `s`, `m`
/// (minutes), `h`, `d`, `w` (`26h`, `1d12h`, `90m`, `35d`).
pub fn parse_age(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 90m, 26h, 1d12h or 35d");
    let mut rest = s.trim();
    let mut total = 0u64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration in words: `3d 4h`, `26h 5m`, `45s`.
pub fn describe(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    let out = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    };
    if secs < 0 { format!("-{out}") } else { out }
}

/// A source: host, paths, tags (sorted).
pub type SourceKey = (String, Vec<String>, Vec<String>);

/// Snapshots grouped by source, each group oldest first; sources ordered by
/// host, paths, tags.
pub fn by_source<'a>(
    snapshots: impl Iterator<Item = &'a Snapshot>,
) -> std::collections::BTreeMap<SourceKey, Vec<&'a Snapshot>> {
    let mut groups: std::collections::BTreeMap<SourceKey, Vec<&Snapshot>> = Default::default();
    for s in snapshots {
        let mut tags = s.tags.clone();
        tags.sort();
        groups
            .entry((s.host.clone(), s.paths.clone(), tags))
            .or_default()
            .push(s);
    }
    for list in groups.values_mut() {
        list.sort_by_key(|s| s.time);
    }
    groups
}

/// The packs in the catalog (id and bytes) and the last verification time
/// of each of them that a check has verified (coverage records).
pub fn coverage(repo: &Repository, catalog: &Catalog) -> Result<(u64, u64, Vec<i64>)> {
    let packs = catalog.packs()?;
    let live: std::collections::HashSet<_> = packs.iter().map(|(p, _)| *p).collect();
    let (coverage, _, _) = crate::store::coverage::load(repo)?;
    let verified = coverage
        .verified
        .iter()
        .filter(|(p, _)| live.contains(p))
        .map(|(_, t)| *t)
        .collect();
    Ok((
        packs.len() as u64,
        packs.iter().map(|(_, n)| n).sum(),
        verified,
    ))
}

/// How many recent snapshots the anomaly checks compare with.
const RECENT: usize = 7;

/// Evaluates `snapshots` (the ones selected), `drills` and the coverage
/// (`packs`, and the verification time of each verified pack) at `now`.
pub fn evaluate(
    snapshots: &[&Snapshot],
    drills: &[DrillRecord],
    packs: u64,
    verified: &[i64],
    obj: &Objectives,
    now: DateTime<Utc>,
) -> Status {
    let sources = by_source(snapshots.iter().copied())
        .into_iter()
        .map(|((host, paths, tags), list)| {
            let drill = drills
                .iter()
                .filter(|d| d.source_host == host && d.paths == paths)
                .max_by_key(|d| d.started);
            source_status(host, paths, tags, &list, drill, obj, now)
        })
        .collect();
    Status {
        now,
        sources,
        check: check_status(packs, verified, obj.check_age, now),
    }
}

/// A source a profile names, with its own objectives.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: String,
    pub host: String,
    pub paths: Vec<String>,
    pub objectives: Objectives,
}

/// Evaluates each `expected` source against its own objectives: its
/// snapshots are those of `snapshots` with its host and exactly its paths
/// (whatever their tags), and one without any breaches its RPO (and its
/// drill objectives) rather than going unreported. The check coverage is
/// held against `check_age`.
pub fn evaluate_expected(
    snapshots: &[&Snapshot],
    drills: &[DrillRecord],
    packs: u64,
    verified: &[i64],
    expected: &[Expected],
    check_age: Option<Duration>,
    now: DateTime<Utc>,
) -> Status {
    let sources = expected
        .iter()
        .map(|e| {
            let mut list: Vec<&Snapshot> = snapshots
                .iter()
                .copied()
                .filter(|s| s.host == e.host && s.paths == e.paths)
                .collect();
            list.sort_by_key(|s| s.time);
            let drill = drills
                .iter()
                .filter(|d| d.source_host == e.host && d.paths == e.paths)
                .max_by_key(|d| d.started);
            let mut tags: Vec<String> = list.last().map(|s| s.tags.clone()).unwrap_or_default();
            tags.sort();
            let mut st = source_status(
                e.host.clone(),
                e.paths.clone(),
                tags,
                &list,
                drill,
                &e.objectives,
                now,
            );
            st.name = Some(e.name.clone());
            st
        })
        .collect();
    Status {
        now,
        sources,
        check: check_status(packs, verified, check_age, now),
    }
}

fn check_status(
    packs: u64,
    verified: &[i64],
    check_age: Option<Duration>,
    now: DateTime<Utc>,
) -> CheckStatus {
    let oldest = verified.iter().min().copied();
    let mut check = CheckStatus {
        packs,
        verified: verified.len() as u64,
        oldest_verification: oldest.and_then(|t| DateTime::from_timestamp(t, 0)),
        ok: None,
        breach: None,
    };
    if let Some(age) = check_age {
        // Packs never verified are not a breach by themselves: every backup
        // writes some, and a rolling check verifies never-verified packs
        // first. What breaks the objective is a verification older than
        // the age (checks stopped, or do not get round), or none at all.
        let limit = age.as_secs() as i64;
        check.breach = match oldest {
            None if packs > 0 => Some(format!(
                "none of the {packs} packs was ever verified by check --read-data"
            )),
            None => None,
            Some(t) => (now.timestamp() - t > limit).then(|| {
                format!(
                    "a pack was last verified {} ago, more than {}",
                    describe(now.timestamp() - t),
                    describe(limit)
                )
            }),
        };
        check.ok = Some(check.breach.is_none());
    }
    check
}

fn source_status(
    host: String,
    paths: Vec<String>,
    tags: Vec<String>,
    list: &[&Snapshot],
    drill: Option<&DrillRecord>,
    obj: &Objectives,
    now: DateTime<Utc>,
) -> SourceStatus {
    let newest = list.last().copied();
    let age = newest.map(|l| (now - l.time).num_seconds());
    let mut breaches = vec![];
    let mut anomalies = vec![];
    let rpo_ok = obj.rpo.map(|rpo| {
        let limit = rpo.as_secs() as i64;
        match age {
            None => {
                breaches.push(format!(
                    "RPO {}: this source has no snapshot",
                    describe(limit)
                ));
                false
            }
            Some(age) if age > limit => {
                breaches.push(format!(
                    "RPO {}: the newest snapshot is {} old",
                    describe(limit),
                    describe(age)
                ));
                false
            }
            Some(_) => true,
        }
    });
    let drill_ok = (obj.rto.is_some() || obj.drill_age.is_some()).then(|| {
        let before = breaches.len();
        match drill {
            None => breaches.push("no restore drill of this source".into()),
            Some(d) => {
                if !d.ok {
                    breaches.push(format!(
                        "the newest drill ({}) failed: {}",
                        d.started.format("%Y-%m-%d %H:%M"),
                        d.error
                    ));
                }
                if let Some(rto) = obj.rto
                    && d.total_seconds > rto.as_secs_f64()
                {
                    breaches.push(format!(
                        "RTO {}: the newest drill took {}",
                        describe(rto.as_secs() as i64),
                        describe(d.total_seconds.ceil() as i64)
                    ));
                }
                let drill_age = (now - d.started).num_seconds();
                if let Some(max) = obj.drill_age
                    && drill_age > max.as_secs() as i64
                {
                    breaches.push(format!(
                        "the newest drill is {} old, more than {}",
                        describe(drill_age),
                        describe(max.as_secs() as i64)
                    ));
                }
            }
        }
        breaches.len() == before
    });
    let (Some(last), Some(age)) = (newest, age) else {
        return SourceStatus {
            name: None,
            host,
            paths,
            tags,
            snapshots: 0,
            last: None,
            age_seconds: None,
            rpo_ok,
            drill: drill.map(DrillStatus::of),
            drill_ok,
            breaches,
            anomalies,
        };
    };
    // anomalies
    if age < -300 {
        anomalies.push(format!(
            "the newest snapshot is {} in the future (a clock wrong on {}?)",
            describe(-age),
            last.host
        ));
    }
    if last.partial {
        anomalies.push(format!(
            "the newest snapshot is partial: {} source(s) could not be read",
            last.errors.len()
        ));
    }
    let previous: Vec<&&Snapshot> = list.iter().rev().skip(1).take(RECENT).collect();
    if previous.len() >= 3 {
        let mut sizes: Vec<u64> = previous.iter().map(|s| s.summary.total_bytes).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        let size = last.summary.total_bytes;
        if median > 0 && size < median / 2 {
            anomalies.push(format!(
                "the newest snapshot ({} B) is less than half the recent median ({median} B)",
                size
            ));
        } else if median > 0 && size > median.saturating_mul(2) {
            anomalies.push(format!(
                "the newest snapshot ({} B) is more than twice the recent median ({median} B)",
                size
            ));
        }
        let recent: Vec<&&Snapshot> = list.iter().rev().take(RECENT + 1).collect();
        let mut gaps: Vec<i64> = recent
            .windows(2)
            .map(|w| ((w[0].time - w[1].time).num_milliseconds() + 500) / 1000)
            .collect();
        gaps.sort_unstable();
        let usual = gaps[gaps.len() / 2];
        if usual > 0 && age > 3 * usual && age > 3600 {
            anomalies.push(format!(
                "backups stopped? the newest is {} old, they came every {}",
                describe(age),
                describe(usual)
            ));
        }
    }
    SourceStatus {
        name: None,
        host,
        paths,
        tags,
        snapshots: list.len(),
        last: Some(last.time),
        age_seconds: Some(age),
        rpo_ok,
        drill: drill.map(DrillStatus::of),
        drill_ok,
        breaches,
        anomalies,
    }
}

/// What evaluating needs besides the snapshots: drill records, and the
/// packs and their verification times.
fn records(repo: &Repository, catalog: &Catalog) -> Result<(Vec<DrillRecord>, u64, Vec<i64>)> {
    let drills: Vec<DrillRecord> = super::drill::list(repo)?
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .collect();
    let (packs, _, verified) = coverage(repo, catalog)?;
    Ok((drills, packs, verified))
}

/// Reads what [`evaluate`] needs from the repository (synchronised
/// catalog, drill and coverage records) and evaluates it now.
pub fn status(
    repo: &Repository,
    catalog: &Catalog,
    filter: &Filter,
    obj: &Objectives,
) -> Result<Status> {
    let all = catalog.snapshots()?;
    let selected: Vec<&Snapshot> = all
        .iter()
        .map(|(_, s)| s)
        .filter(|s| filter.matches(s))
        .collect();
    if selected.is_empty() {
        return Err(Error::NoSnapshot(
            "no snapshot matches: status has no source to report".into(),
        ));
    }
    let (drills, packs, verified) = records(repo, catalog)?;
    Ok(evaluate(
        &selected,
        &drills,
        packs,
        &verified,
        obj,
        Utc::now(),
    ))
}

/// As [`status`], for the sources a profile expects ([`evaluate_expected`]).
pub fn status_expected(
    repo: &Repository,
    catalog: &Catalog,
    expected: &[Expected],
    check_age: Option<Duration>,
) -> Result<Status> {
    let all = catalog.snapshots()?;
    let snapshots: Vec<&Snapshot> = all.iter().map(|(_, s)| s).collect();
    let (drills, packs, verified) = records(repo, catalog)?;
    Ok(evaluate_expected(
        &snapshots,
        &drills,
        packs,
        &verified,
        expected,
        check_age,
        Utc::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(paths: &str, hours_ago: i64, size: u64, now: DateTime<Utc>) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "time": (now - chrono::Duration::hours(hours_ago)).to_rfc3339(),
            "host": "db1",
            "paths": [paths],
            "tree": "00".repeat(32),
            "summary": {"total_bytes": size},
        }))
        .unwrap()
    }

    fn drill(
        paths: &str,
        hours_ago: i64,
        seconds: f64,
        ok: bool,
        now: DateTime<Utc>,
    ) -> DrillRecord {
        serde_json::from_value(serde_json::json!({
            "snapshot": "00".repeat(32),
            "paths": [paths],
            "source_host": "db1",
            "host": "drills",
            "username": "ops",
            "started": (now - chrono::Duration::hours(hours_ago)).to_rfc3339(),
            "restore_seconds": seconds,
            "check_seconds": 0.0,
            "total_seconds": seconds,
            "files": 1,
            "bytes": 1,
            "ok": ok,
        }))
        .unwrap()
    }

    fn h(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n * 3600))
    }

    #[test]
    fn objectives_hold_or_are_breached_with_the_reason() {
        let now = Utc::now();
        // nightly backups of /pg, the newest 30 h old; /etcd hourly, fresh
        let mut all: Vec<Snapshot> = (0..5).map(|d| snap("/pg", 30 + 24 * d, 100, now)).collect();
        all.extend((0..5).map(|i| snap("/etcd", i, 10, now)));
        let refs: Vec<&Snapshot> = all.iter().collect();
        let drills = [
            drill("/pg", 24 * 40, 1800.0, true, now),
            drill("/etcd", 2, 30.0, true, now),
        ];
        let obj = Objectives {
            rpo: h(26),
            rto: h(1),
            drill_age: h(24 * 35),
            check_age: h(24 * 35),
        };
        let st = evaluate(&refs, &drills, 4, &[now.timestamp(); 4], &obj, now);
        assert!(!st.ok());
        let etcd = &st.sources[0];
        assert_eq!(etcd.paths, ["/etcd"]);
        assert_eq!((etcd.rpo_ok, etcd.drill_ok), (Some(true), Some(true)));
        assert!(etcd.breaches.is_empty(), "{:?}", etcd.breaches);
        let pg = &st.sources[1];
        assert_eq!((pg.rpo_ok, pg.drill_ok), (Some(false), Some(false)));
        assert_eq!(pg.breaches.len(), 2, "{:?}", pg.breaches);
        assert!(pg.breaches[0].starts_with("RPO 1d 2h: the newest snapshot is 1d 6h old"));
        assert!(pg.breaches[1].contains("the newest drill is 40d 0h old, more than 35d 0h"));
        assert_eq!(st.check.ok, Some(true));

        // a drill over its RTO, a failed one, a never-verified pack
        let drills = [
            drill("/pg", 1, 7200.0, true, now),
            drill("/etcd", 1, 5.0, false, now),
        ];
        let old = now.timestamp() - 40 * 86400;
        let st = evaluate(&refs, &drills, 5, &[now.timestamp(), old], &obj, now);
        assert!(
            st.sources[1]
                .breaches
                .iter()
                .any(|b| b == "RTO 1h 0m: the newest drill took 2h 0m")
        );
        assert!(st.sources[0].breaches[0].starts_with("the newest drill ("));
        assert_eq!(
            st.check.breach.as_deref(),
            Some("a pack was last verified 40d 0h ago, more than 35d 0h")
        );
        // packs never verified alone (backups since the last check) hold
        let st = evaluate(&refs, &drills, 5, &[now.timestamp(); 4], &obj, now);
        assert_eq!(st.check.ok, Some(true));
        let st = evaluate(&refs, &drills, 5, &[], &obj, now);
        assert_eq!(
            st.check.breach.as_deref(),
            Some("none of the 5 packs was ever verified by check --read-data")
        );
        // no objectives: nothing is breached, nothing is judged
        let st = evaluate(&refs, &[], 5, &[], &Objectives::default(), now);
        assert!(st.ok());
        assert_eq!(st.sources[1].rpo_ok, None);
    }

    #[test]
    fn anomalies_a_shrunken_dump_stopped_backups_and_a_future_time() {
        let now = Utc::now();
        let mut all: Vec<Snapshot> = (1..6).map(|i| snap("/db.sql", 24 * i, 1000, now)).collect();
        all.push(snap("/db.sql", 0, 30, now)); // the dump failed upstream
        all.extend((0..5).map(|i| snap("/logs", 100 + i, 50, now))); // hourly, stopped 100 h ago
        all.push(snap("/future", -48, 1, now));
        let refs: Vec<&Snapshot> = all.iter().collect();
        let st = evaluate(&refs, &[], 0, &[], &Objectives::default(), now);
        assert!(st.ok(), "anomalies are not breaches");
        let by = |p: &str| st.sources.iter().find(|s| s.paths == [p]).unwrap();
        assert_eq!(
            by("/db.sql").anomalies,
            ["the newest snapshot (30 B) is less than half the recent median (1000 B)"]
        );
        assert_eq!(
            by("/logs").anomalies,
            ["backups stopped? the newest is 4d 4h old, they came every 1h 0m"]
        );
        assert!(
            by("/future").anomalies[0].starts_with("the newest snapshot is 2d 0h in the future")
        );
    }

    #[test]
    fn ages_parse_with_their_units() {
        assert_eq!(parse_age("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_age("1d12h").unwrap().as_secs(), 129_600);
        assert_eq!(parse_age("2w").unwrap().as_secs(), 14 * 86400);
        for bad in ["", "5", "h", "1x", "0h", "1.5h"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expected_sources_use_their_own_objectives_and_exact_paths() {
        let now = Utc::now();
        // /pg every 24 h, the newest 20 h ago; a snapshot of /pg and /etc
        // together is not the /pg source's
        let pg: Vec<Snapshot> = [68, 44, 20]
            .iter()
            .map(|&a| snap("/pg", a, 10, now))
            .collect();
        let mut both = snap("/pg", 1, 10, now);
        both.paths.push("/etc".into());
        let all: Vec<&Snapshot> = pg.iter().chain([&both]).collect();
        let source = |name: &str, paths: &[&str], rpo: u64| Expected {
            name: name.into(),
            host: "db1".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            objectives: Objectives {
                rpo: h(rpo),
                ..Default::default()
            },
        };
        let st = evaluate_expected(
            &all,
            &[],
            0,
            &[],
            &[
                source("pg", &["/pg"], 12),
                source("pg-loose", &["/pg"], 26),
                source("never", &["/srv"], 26),
            ],
            None,
            now,
        );
        let [pg, loose, never] = &st.sources[..] else {
            panic!("three sources: {:?}", st.sources)
        };
        assert_eq!(pg.name.as_deref(), Some("pg"));
        assert_eq!(pg.snapshots, 3, "the /pg+/etc snapshot is another source's");
        assert_eq!(pg.rpo_ok, Some(false));
        assert_eq!(loose.rpo_ok, Some(true));
        assert_eq!(
            (never.snapshots, never.last, never.rpo_ok),
            (0, None, Some(false))
        );
        assert!(
            never.breaches[0].contains("no snapshot"),
            "{:?}",
            never.breaches
        );
        assert!(!st.ok());
    }
}
