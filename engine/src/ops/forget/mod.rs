//! `forget`: removing snapshots, by id or by a retention policy.
//!
//! [`policy`] decides, purely and with restic's semantics, which snapshots
//! a policy keeps; [`plan`] applies it to the repository's snapshots (after
//! the `--host`/`--tag`/`--path` filters, in groups) and [`execute`]
//! deletes the snapshot manifests the plan removes. Forget deletes only
//! manifests: the data they referred to is freed by `prune`. It runs under
//! a shared lock, beside backups (a snapshot deleted while a backup reads
//! it as its parent only costs that backup reading files again).
//!
//! Time zone: the buckets of the policy (hours, days, ISO weeks, months,
//! years) are those of the local time zone of the machine that runs
//! forget, as restic's are for snapshots it made there (arca records times
//! in UTC; restic records the offset of the machine that made the snapshot).

pub mod policy;

use chrono::{DateTime, FixedOffset, Local, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::layout::ObjectKey;
use crate::format::snapshot::Snapshot;
use crate::ops::select::{Filter, Selector, select};
use crate::store::session::{Session, Writes};
use policy::{Candidate, GroupBy, GroupKey, KeepReason, Policy};

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    /// Snapshots named on the command line (id prefixes or `latest`):
    /// forgotten whatever the policy says.
    pub ids: Vec<String>,
    /// The retention policy (ignored for snapshots named by id).
    pub policy: Policy,
    /// How snapshots are grouped for the policy.
    pub group_by: GroupBy,
    /// Which snapshots the policy looks at.
    pub filter: Filter,
    /// Allow a policy to remove every snapshot of the repository (or of
    /// `source`).
    pub keep_none: bool,
    /// Only the snapshots of this source: this host and exactly these
    /// paths (a profile's source), besides `filter`.
    pub source: Option<(String, Vec<String>)>,
}

/// One group's decision.
#[derive(Debug, Clone, Serialize)]
pub struct GroupPlan {
    /// The group.
    pub key: GroupKey,
    /// Kept, newest first.
    pub keep: Vec<SnapshotId>,
    /// Removed, newest first.
    pub remove: Vec<SnapshotId>,
    /// Why each kept snapshot is kept (`reasons[i]` is about `keep[i]`).
    pub reasons: Vec<KeepReason<SnapshotId>>,
}

/// What forget will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForgetPlan {
    /// The groups the policy was applied to.
    pub groups: Vec<GroupPlan>,
    /// Snapshots named by id.
    pub named: Vec<SnapshotId>,
}

impl ForgetPlan {
    /// Every snapshot the plan removes.
    pub fn removed(&self) -> Vec<SnapshotId> {
        let mut v: Vec<SnapshotId> = self
            .named
            .iter()
            .chain(self.groups.iter().flat_map(|g| g.remove.iter()))
            .copied()
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Decides what to forget among `all` (every snapshot of the repository),
/// at `now`. Refuses a policy that would remove every snapshot of the
/// repository, unless `keep_none`.
pub fn plan(
    all: &[(SnapshotId, Snapshot)],
    opts: &ForgetOptions,
    now: DateTime<Utc>,
) -> Result<ForgetPlan> {
    let mut out = ForgetPlan::default();
    for s in &opts.ids {
        let (id, _) = select(all, &Selector::parse(s)?, &opts.filter)?;
        out.named.push(*id);
    }
    if !opts.policy.is_empty() {
        // a fixed order for equal times (restic's is its listing's)
        let mut sorted: Vec<&(SnapshotId, Snapshot)> = all
            .iter()
            .filter(|(_, s)| opts.filter.matches(s) && of_source(opts, s))
            .collect();
        sorted.sort_by_key(|(id, _)| *id);
        let items: Vec<Candidate<'_, SnapshotId, FixedOffset>> = sorted
            .iter()
            .map(|(id, s)| Candidate {
                id: *id,
                time: s.time.with_timezone(&Local).fixed_offset(),
                host: &s.host,
                paths: &s.paths,
                tags: &s.tags,
            })
            .collect();
        for g in policy::plan(&opts.policy, opts.group_by, items, now) {
            out.groups.push(GroupPlan {
                key: g.key,
                keep: g.outcome.keep.iter().map(|c| c.id).collect(),
                remove: g.outcome.remove.iter().map(|c| c.id).collect(),
                reasons: g.outcome.reasons,
            });
        }
    }
    let removed = out.removed();
    if !all.is_empty() && removed.len() == all.len() && !opts.keep_none && !opts.policy.is_empty() {
        return Err(Error::Invalid(format!(
            "the policy would remove all {} snapshots of the repository; give --keep-none if that is what you want",
            all.len()
        )));
    }
    if let Some((host, paths)) = &opts.source {
        let of: usize = all.iter().filter(|(_, s)| of_source(opts, s)).count();
        if of > 0 && removed.len() == of && !opts.keep_none && !opts.policy.is_empty() {
            return Err(Error::Invalid(format!(
                "the policy would remove all {of} snapshots of source {host} {}; give --keep-none if that is what you want",
                paths.join(" ")
            )));
        }
    }
    Ok(out)
}

fn of_source(opts: &ForgetOptions, s: &Snapshot) -> bool {
    opts.source
        .as_ref()
        .is_none_or(|(host, paths)| &s.host == host && &s.paths == paths)
}

/// Deletes the snapshot manifests `plan` removes. Returns them.
pub fn execute<A: Writes>(session: &Session<A>, plan: &ForgetPlan) -> Result<Vec<SnapshotId>> {
    let removed = plan.removed();
    for id in &removed {
        session.check_lock()?;
        session.repo().backend().delete(&ObjectKey::of(*id))?;
        session.catalog().remove_snapshot(id)?;
    }
    Ok(removed)
}
