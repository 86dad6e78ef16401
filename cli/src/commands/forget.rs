use std::collections::HashMap;

use anyhow::{Result, anyhow};
use arca_engine::format::id::SnapshotId;
use arca_engine::format::snapshot::Snapshot;
use arca_engine::ops::forget::policy::{GroupBy, Policy, Span, TagList};
use arca_engine::ops::forget::{self, ForgetOptions, ForgetPlan};
use arca_engine::store::session::{Session, Writes};

use crate::args::{ForgetArgs, Global};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &ForgetArgs) -> Result<i32> {
    let opts = options(a)?;
    let o = context::open(g)?;
    if a.prune && !a.dry_run {
        // forget and prune under one maintenance lock (backups go on)
        let h = o.maintenance(g, "forget")?;
        h.note_stale_locks(out);
        let code = forget_in(&h.session, out, a, &opts)?;
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
            &a.prune_opts,
            false,
            false,
        )?);
        h.note_metrics(out);
        h.session.release()?;
        return Ok(code);
    }
    let h = o.writing(g, "forget")?;
    h.note_stale_locks(out);
    let code = forget_in(&h.session, out, a, &opts)?;
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

fn options(a: &ForgetArgs) -> Result<ForgetOptions> {
    let policy = Policy {
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
    };
    if policy.is_empty() && a.snapshots.is_empty() {
        return Err(anyhow!(
            "nothing to forget: name snapshots, or give a policy (--keep-last, --keep-daily, --keep-within, ...)"
        ));
    }
    Ok(ForgetOptions {
        ids: a.snapshots.clone(),
        policy,
        group_by: GroupBy::parse(&a.group_by).map_err(|e| anyhow!("--group-by: {e}"))?,
        filter: super::filter(&a.filter),
        keep_none: a.keep_none,
    })
}

fn forget_in<A: Writes>(
    session: &Session<A>,
    out: &Out,
    a: &ForgetArgs,
    opts: &ForgetOptions,
) -> Result<i32> {
    let all = session.catalog().snapshots()?;
    let plan = forget::plan(&all, opts, chrono::Utc::now())?;
    let by_id: HashMap<SnapshotId, &Snapshot> = all.iter().map(|(id, s)| (*id, s)).collect();
    if out.json {
        show_json(&plan, &by_id);
    } else {
        show(out, opts, &plan, &by_id);
    }
    if a.dry_run {
        out.say(format!(
            "would remove {} snapshot(s) (dry run: nothing was changed)",
            plan.removed().len()
        ));
        if a.wal {
            let removed: Vec<SnapshotId> = plan.removed();
            let kept: Vec<(SnapshotId, Snapshot)> = all
                .into_iter()
                .filter(|(id, _)| !removed.contains(id))
                .collect();
            forget_wal(session, out, &kept, true)?;
        }
        return Ok(0);
    }
    let removed = forget::execute(session, &plan)?;
    out.say(format!("removed {} snapshot(s)", removed.len()));
    if !removed.is_empty() && !a.prune {
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

fn show_json(plan: &ForgetPlan, by_id: &HashMap<SnapshotId, &Snapshot>) {
    let snap = |id: &SnapshotId| output::snapshot_json(id, by_id[id]);
    let groups: Vec<serde_json::Value> = plan
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
    // restic's shape: an array of groups; snapshots named by id come last,
    // as one group without a key that keeps nothing
    let mut groups = groups;
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
    output::json(&serde_json::Value::Array(groups));
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
