//! `arca status`: one line per source, its last backup against the RPO, its
//! last drill against the RTO, the check coverage, and anomalies. Exit 0
//! when every objective given holds, 5 when one is breached (anomalies
//! alone do not change it): for a cron job or a Kubernetes probe.

use anyhow::Result;
use arca_engine::ops::status::{self, Objectives, describe, parse_age};

use crate::args::{Global, StatusArgs};
use crate::context;
use crate::output::{self, Out};
use crate::profile::{Checked, Kind, Loaded};

/// The exit code when an objective is breached.
pub const BREACHED: i32 = 5;

/// With a profile and no filter, the profile's sources, each against its
/// own objectives (the flags' objectives win over the profile's).
pub fn run(g: &Global, out: &Out, a: &StatusArgs, profile: Option<&Loaded>) -> Result<i32> {
    let age = |flag: &str, v: &Option<String>| -> Result<_> {
        v.as_deref()
            .map(parse_age)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let obj = Objectives {
        rpo: age("--rpo", &a.rpo)?,
        rto: age("--rto", &a.rto)?,
        drill_age: age("--drill-age", &a.drill_age)?,
        check_age: age("--check-age", &a.check_age)?,
    };
    let filtered = !a.filter.is_empty();
    let expected = match profile {
        Some(p) if !filtered => Some(expected(p, a, &obj)?),
        _ if !a.source.sources.is_empty() => anyhow::bail!(
            "--source reports a profile's sources: give --profile NAME, and no --host, --tag or --path"
        ),
        _ => None,
    };
    let o = context::open(g)?;
    let st = match &expected {
        Some((e, check_age)) => status::status_expected(o.repo(), o.catalog(), e, *check_age)?,
        None => status::status(o.repo(), o.catalog(), &super::filter(&a.filter), &obj)?,
    };
    let code = if st.ok() { 0 } else { BREACHED };
    if out.json {
        let mut v = serde_json::to_value(&st)?;
        v["ok"] = serde_json::json!(st.ok());
        output::json(&v);
        return Ok(code);
    }
    let mark = |ok: Option<bool>| match ok {
        None => "-",
        Some(true) => "ok",
        Some(false) => "BREACHED",
    };
    let rows: Vec<Vec<String>> = st
        .sources
        .iter()
        .map(|s| {
            vec![
                s.name.clone().unwrap_or_else(|| "-".into()),
                s.host.clone(),
                s.paths.join(" "),
                s.tags.join(","),
                s.last.as_ref().map_or("never".into(), output::time),
                s.age_seconds.map_or("-".into(), describe),
                mark(s.rpo_ok).into(),
                s.drill.as_ref().map_or("-".into(), |d| {
                    format!(
                        "{} {} in {}",
                        d.started.format("%Y-%m-%d"),
                        if d.ok { "passed" } else { "FAILED" },
                        describe(d.seconds.ceil() as i64)
                    )
                }),
                mark(s.drill_ok).into(),
                s.anomalies.len().to_string(),
            ]
        })
        .collect();
    if !out.quiet {
        output::table(
            &[
                "Source",
                "Host",
                "Paths",
                "Tags",
                "Last",
                "Age",
                "RPO",
                "Last drill",
                "RTO",
                "Anomalies",
            ],
            &rows,
        );
        for s in &st.sources {
            let who = match &s.name {
                Some(n) => format!("{n} ({} {})", s.host, s.paths.join(" ")),
                None => format!("{} {}", s.host, s.paths.join(" ")),
            };
            for b in &s.breaches {
                println!("BREACHED {who}: {b}");
            }
            for w in &s.anomalies {
                println!("anomaly {who}: {w}");
            }
        }
        let c = &st.check;
        println!(
            "check: {} of {} packs verified{}{}",
            c.verified,
            c.packs,
            c.oldest_verification
                .map(|t| format!(", the oldest verification {}", output::time(&t)))
                .unwrap_or_default(),
            match (&c.ok, &c.breach) {
                (_, Some(b)) => format!(": BREACHED: {b}"),
                (Some(true), _) => ": ok".into(),
                _ => String::new(),
            }
        );
    }
    Ok(code)
}

/// The profile's sources as status expects them, and the check age: each
/// objective from the flags when given, else the source's, else the
/// profile's `[objectives]`.
fn expected(
    p: &Loaded,
    a: &StatusArgs,
    flags: &Objectives,
) -> Result<(Vec<status::Expected>, Option<std::time::Duration>)> {
    fn age<K: Kind>(v: &Option<Checked<K>>) -> Option<std::time::Duration> {
        v.as_ref()
            .map(|c| parse_age(&c.0).expect("checked when the profile was read"))
    }
    let mut out = vec![];
    for (name, s) in p.sources(&a.source.sources)? {
        let o = p.objectives_of(s);
        out.push(status::Expected {
            name: name.to_string(),
            host: p.host_of(s),
            paths: p.paths_of(name, s)?,
            objectives: Objectives {
                rpo: flags.rpo.or(age(&o.rpo)),
                rto: flags.rto.or(age(&o.rto)),
                drill_age: flags.drill_age.or(age(&o.drill_age)),
                check_age: None,
            },
        });
    }
    if out.is_empty() {
        anyhow::bail!(
            "profile {} has no [sources.NAME] to report: give --host, --tag or --path to report on snapshots",
            p.path.display()
        );
    }
    let check_age = flags.check_age.or(age(&p.profile.objectives.check_age));
    Ok((out, check_age))
}
