use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use arca_engine::format::id::SnapshotId;
use arca_engine::format::snapshot::Snapshot;
use arca_engine::ops::forget::policy::{GroupBy, Policy, Span, TagList};
use arca_engine::ops::forget::{self, ForgetOptions, ForgetPlan};
use arca_engine::store::session::{Session, Writes};

use crate::args::{ForgetArgs, Global};
use crate::context;
use crate::output::{self, Out};
use crate::profile::Loaded;

/// One policy run: the command line's, or one profile source's retention.
struct Job {
    /// The profile source, when it is one.
    source: Option<String>,
    opts: ForgetOptions,
}

pub fn run(g: &Global, out: &Out, a: &ForgetArgs, profile: Option<&Loaded>) -> Result<i32> {
    let jobs = jobs(a, profile)?;
    // the profile's [forget] prune = true asks for --prune when the
    // profile's retention runs; ids or a policy on the command line replace
    // the profile's job, prune included
    let prune = a.prune
        || (profile.is_some_and(|p| p.profile.forget.prune)
            && jobs.iter().all(|j| j.source.is_some()));
    let o = context::open(g)?;
    if prune && !a.dry_run {
        // forget and prune under one maintenance lock (backups go on)
        let h = o.maintenance(g, "forget")?;
        h.note_stale_locks(out);
        let code = forget_in(&h.session, out, a, &jobs, prune)?;
        // with --json, stdout holds forget's groups alone (as restic's
        // `forget --prune --json` does); `arca prune --json` reports a prune
        let prune_out = if out.json {
            Out {
                json: false,
                quiet: true,
                ..*out
            }
        } else {
            *out
        };
        let code = code.max(super::prune::prune_in(
            g,
            &h.session,
            &prune_out,
            &super::prune::with_profile(&a.prune_opts, profile),
            false,
            false,
        )?);
        h.note_metrics(out);
        h.session.release()?;
        return Ok(code);
    }
    if a.dry_run {
        // deletes nothing: a shared lock, beside a prune or a tag
        let h = o.writing(g, "forget")?;
        let code = forget_in(&h.session, out, a, &jobs, prune)?;
        h.session.release()?;
        return Ok(code);
    }
    // the maintenance lock, not a shared one: tag replaces a manifest by
    // writing the new one before deleting the old, and a forget planning
    // between the two could keep the old and remove the new (format-spec
    // §14.1); backups still go on beside it
    let h = o.maintenance(g, "forget")?;
    h.note_stale_locks(out);
    let code = forget_in(&h.session, out, a, &jobs, prune)?;
    h.note_metrics(out);
    h.session.release()?;
    Ok(code)
}

fn span(flag: &str, v: &Option<String>) -> Result<Span> {
    match v {
        None => Ok(Span::default()),
        Some(s) => Span::parse(s).map_err(|e| anyhow!("--{flag} '{s}': {e}")),
    }
}

/// The policy the flags give (empty when they give none).
fn policy(a: &ForgetArgs) -> Result<Policy> {
    Ok(Policy {
        keep_last: a.keep_last,
        keep_hourly: a.keep_hourly,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within: span("keep-within", &a.keep_within)?,
        keep_within_hourly: span("keep-within-hourly", &a.keep_within_hourly)?,
        keep_within_daily: span("keep-within-daily", &a.keep_within_daily)?,
        keep_within_weekly: span("keep-within-weekly", &a.keep_within_weekly)?,
        keep_within_monthly: span("keep-within-monthly", &a.keep_within_monthly)?,
        keep_within_yearly: span("keep-within-yearly", &a.keep_within_yearly)?,
        keep_tags: a.keep_tags.iter().map(|t| TagList::parse(t)).collect(),
    })
}

/// What to run: the command line's ids and policy, or, with a profile and
/// neither, each source's retention over that source's snapshots.
fn jobs(a: &ForgetArgs, profile: Option<&Loaded>) -> Result<Vec<Job>> {
    let policy = policy(a)?;
    let group_by = GroupBy::parse(&a.group_by).map_err(|e| anyhow!("--group-by: {e}"))?;
    let opts = |policy: Policy, source: Option<(String, Vec<String>)>| ForgetOptions {
        ids: a.snapshots.clone(),
        policy,
        group_by,
        filter: super::filter(&a.filter),
        keep_none: a.keep_none,
        source,
    };
    let from_profile = policy.is_empty() && a.snapshots.is_empty();
    match profile {
        Some(p) if from_profile => {
            let mut jobs = vec![];
            for (name, s) in p.sources(&a.source.sources)? {
                let policy = p.retention_of(s).policy();
                if policy.is_empty() {
                    continue;
                }
                let key = (p.host_of(s), p.paths_of(name, s)?);
                jobs.push(Job {
                    source: Some(name.to_string()),
                    opts: opts(policy, Some(key)),
                });
            }
            if jobs.is_empty() {
                bail!(
                    "nothing to forget: profile {} gives no retention ([forget] or a source's `retention`), and no policy was given",
                    p.path.display()
                );
            }
            Ok(jobs)
        }
        _ if !a.source.sources.is_empty() => bail!(
            "--source applies a profile source's retention: give --profile NAME, and no policy or snapshot ids"
        ),
        _ if from_profile => Err(anyhow!(
            "nothing to forget: name snapshots, or give a policy (--keep-last, --keep-daily, --keep-within, ...)"
        )),
        _ => Ok(vec![Job {
            source: None,
            opts: opts(policy, None),
        }]),
    }
}

fn forget_in<A: Writes>(
    session: &Session<A>,
    out: &Out,
    a: &ForgetArgs,
    jobs: &[Job],
    prune: bool,
) -> Result<i32> {
    let all = session.catalog().snapshots()?;
    let by_id: HashMap<SnapshotId, &Snapshot> = all.iter().map(|(id, s)| (*id, s)).collect();
    // every plan is made before anything is removed
    let mut plans = vec![];
    for job in jobs {
        let plan =
            forget::plan(&all, &job.opts, chrono::Utc::now()).map_err(|e| match &job.source {
                Some(s) => anyhow::Error::from(e).context(format!("source {s}")),
                None => e.into(),
            })?;
        plans.push(plan);
    }
    if out.json {
        let groups: Vec<serde_json::Value> = plans
            .iter()
            .zip(jobs)
            .flat_map(|(plan, job)| groups_json(plan, &by_id, job.source.as_deref()))
            .collect();
        output::json(&serde_json::Value::Array(groups));
    } else {
        for (plan, job) in plans.iter().zip(jobs) {
            if let Some(s) = &job.source {
                out.say(format!("source {s}:"));
            }
            show(out, &job.opts, plan, &by_id);
        }
    }
    let removed: Vec<SnapshotId> = plans.iter().flat_map(|p| p.removed()).collect();
    if a.dry_run {
        out.say(format!(
            "would remove {} snapshot(s) (dry run: nothing was changed)",
            removed.len()
        ));
        if a.wal {
            let kept: Vec<(SnapshotId, Snapshot)> = all
                .into_iter()
                .filter(|(id, _)| !removed.contains(id))
                .collect();
            forget_wal(session, out, &kept, true)?;
        }
        return Ok(0);
    }
    let mut gone = 0;
    for plan in &plans {
        gone += forget::execute(session, plan)?.len();
    }
    out.say(format!("removed {gone} snapshot(s)"));
    if gone > 0 && !prune {
        out.say("their data is freed by `arca prune`");
    }
    if a.wal {
        forget_wal(session, out, &session.catalog().snapshots()?, false)?;
    }
    Ok(0)
}

/// `--wal`: the archived WAL older than what the `kept` snapshots' base
/// backups need. Nothing when none of them records a base backup.
fn forget_wal<A: Writes>(
    session: &Session<A>,
    out: &Out,
    kept: &[(SnapshotId, Snapshot)],
    dry_run: bool,
) -> Result<()> {
    use arca_engine::ops::wal;
    let Some(oldest) = wal::oldest_needed(kept) else {
        out.say("no remaining snapshot records a PostgreSQL base backup: the archived WAL is kept");
        return Ok(());
    };
    let gone = wal::forget_before(session.repo(), oldest, dry_run)?;
    out.say(format!(
        "{} {} archived WAL file(s) before {}, which no remaining base backup needs",
        if dry_run { "would remove" } else { "removed" },
        gone.len(),
        oldest.name()
    ));
    Ok(())
}

/// restic's shape: one object per group; snapshots named by id come
/// last, as one group without a key that keeps nothing. With `source`,
/// each group also names the profile source it is of.
fn groups_json(
    plan: &ForgetPlan,
    by_id: &HashMap<SnapshotId, &Snapshot>,
    source: Option<&str>,
) -> Vec<serde_json::Value> {
    let snap = |id: &SnapshotId| output::snapshot_json(id, by_id[id]);
    let mut groups: Vec<serde_json::Value> = plan
        .groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "host": g.key.host,
                "paths": if g.key.paths.is_empty() { None } else { Some(&g.key.paths) },
                "tags": if g.key.tags.is_empty() { None } else { Some(&g.key.tags) },
                "keep": g.keep.iter().map(snap).collect::<Vec<_>>(),
                "remove": g.remove.iter().map(snap).collect::<Vec<_>>(),
                "reasons": g.reasons.iter().map(|r| serde_json::json!({
                    "snapshot": snap(&r.snapshot),
                    "matches": r.matches,
                    "counters": r.counters,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    if !plan.named.is_empty() {
        groups.push(serde_json::json!({
            "host": null,
            "paths": null,
            "tags": null,
            "keep": [],
            "remove": plan.named.iter().map(snap).collect::<Vec<_>>(),
            "reasons": [],
        }));
    }
    if let Some(name) = source {
        for g in &mut groups {
            g["source"] = name.into();
        }
    }
    groups
}

fn show(
    out: &Out,
    opts: &ForgetOptions,
    plan: &ForgetPlan,
    by_id: &HashMap<SnapshotId, &Snapshot>,
) {
    if out.quiet {
        return;
    }
    let row = |id: &SnapshotId, reasons: Option<String>| {
        let s = by_id[id];
        let mut r = vec![
            id.short(),
            output::time(&s.time),
            s.host.clone(),
            s.tags.join(","),
        ];
        if let Some(reasons) = reasons {
            r.push(reasons);
        }
        r.push(s.paths.join(" "));
        r
    };
    if !plan.named.is_empty() {
        println!("named on the command line, removed: {}", plan.named.len());
        let rows: Vec<Vec<String>> = plan.named.iter().map(|id| row(id, None)).collect();
        output::table(&["ID", "Time", "Host", "Tags", "Paths"], &rows);
    }
    if plan.groups.is_empty() {
        return;
    }
    println!("Applying Policy: {}", opts.policy);
    for g in &plan.groups {
        let mut key = vec![];
        if opts.group_by.host {
            key.push(format!("host [{}]", g.key.host));
        }
        if opts.group_by.paths {
            key.push(format!("paths [{}]", g.key.paths.join(", ")));
        }
        if opts.group_by.tags {
            key.push(format!("tags [{}]", g.key.tags.join(", ")));
        }
        println!();
        println!("snapshots for ({}):", key.join(", "));
        if !g.keep.is_empty() {
            println!("keep {} snapshots:", g.keep.len());
            let rows: Vec<Vec<String>> = g
                .keep
                .iter()
                .zip(&g.reasons)
                .map(|(id, r)| {
                    let m: Vec<String> = r.matches.iter().map(|m| m.to_string()).collect();
                    row(id, Some(m.join(", ")))
                })
                .collect();
            output::table(&["ID", "Time", "Host", "Tags", "Reasons", "Paths"], &rows);
        }
        if !g.remove.is_empty() {
            println!("remove {} snapshots:", g.remove.len());
            let rows: Vec<Vec<String>> = g.remove.iter().map(|id| row(id, None)).collect();
            output::table(&["ID", "Time", "Host", "Tags", "Paths"], &rows);
        }
    }
}
