//! `arca stats [SNAPSHOT...]`: restore size, stored size, deduplication and
//! compression, for the snapshots named (or selected by the filters), or
//! for the whole repository; `--json`.

use anyhow::Result;
use arca_engine::ops::stats;

use crate::args::{Global, StatsArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &StatsArgs) -> Result<i32> {
    let h = context::open(g)?.reading(g, "stats")?;
    let cat = h.session.catalog();
    let selected: Vec<_> = if a.snapshots.is_empty() {
        let f = super::filter(&a.filter);
        cat.snapshots()?
            .into_iter()
            .filter(|(_, s)| f.matches(s))
            .collect()
    } else {
        a.snapshots
            .iter()
            .map(|s| super::pick(cat, Some(s), None, &a.filter))
            .collect::<Result<_>>()?
    };
    if selected.is_empty() && !a.filter.is_empty() {
        anyhow::bail!("no snapshot matches the filters: nothing to count");
    }
    let roots: Vec<_> = selected.iter().map(|(_, s)| s.tree).collect();
    let st = stats::stats(&h.session.reader(), cat, &roots)?;
    let whole = a.snapshots.is_empty()
        && a.filter.hosts.is_empty()
        && a.filter.tags.is_empty()
        && a.filter.paths.is_empty();
    let packs = cat.packs()?;
    let pack_bytes: u64 = packs.iter().map(|(_, n)| n).sum();
    if out.json {
        let mut v = serde_json::to_value(&st)?;
        if whole {
            v["repository"] = serde_json::json!({"packs": packs.len(), "pack_bytes": pack_bytes});
        }
        output::json(&v);
        return Ok(0);
    }
    out.say(format!("snapshots:        {}", st.snapshots));
    out.say(format!(
        "files:            {} in {} directories",
        st.files, st.dirs
    ));
    out.say(format!(
        "restore size:     {} ({} B)",
        output::size(st.restore_bytes),
        st.restore_bytes
    ));
    out.say(format!(
        "distinct blobs:   {} ({} raw, {} stored)",
        st.blobs,
        output::size(st.raw_bytes),
        output::size(st.stored_bytes)
    ));
    out.say(format!(
        "deduplication:    {:.2}x (restore size / distinct chunk bytes)",
        st.dedup_ratio
    ));
    out.say(format!(
        "compression:      {:.2}x (raw / stored)",
        st.compression_ratio
    ));
    if whole {
        out.say(format!(
            "repository:       {} in {} packs (blobs no snapshot uses included, until prune)",
            output::size(pack_bytes),
            packs.len()
        ));
    }
    Ok(0)
}
