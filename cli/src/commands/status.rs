//! `arca status`: one line per source, its last backup against the RPO, its
//! last drill against the RTO, the check coverage, and anomalies. Exit 0
//! when every objective given holds, 5 when one is breached (anomalies
//! alone do not change it): for a cron job or a Kubernetes probe.

use anyhow::Result;
use arca_engine::ops::status::{self, Objectives, describe, parse_age};

use crate::args::{Global, StatusArgs};
use crate::context;
use crate::output::{self, Out};

/// The exit code when an objective is breached.
pub const BREACHED: i32 = 5;

pub fn run(g: &Global, out: &Out, a: &StatusArgs) -> Result<i32> {
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
    let o = context::open(g)?;
    let st = status::status(o.repo(), o.catalog(), &super::filter(&a.filter), &obj)?;
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
                s.host.clone(),
                s.paths.join(" "),
                s.tags.join(","),
                output::time(&s.last),
                describe(s.age_seconds),
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
            for b in &s.breaches {
                println!("BREACHED {} {}: {b}", s.host, s.paths.join(" "));
            }
            for w in &s.anomalies {
                println!("anomaly {} {}: {w}", s.host, s.paths.join(" "));
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
