use anyhow::Result;
use arca_engine::ops::select;

use crate::args::{Global, SnapshotsArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &SnapshotsArgs) -> Result<i32> {
    let o = context::open(g)?;
    if out.verbose > 0 {
        // what the catalog sync read: only what it had not seen before
        let st = o.sync();
        out.note(format!(
            "catalog sync: segments_read={} snapshots_read={} rebuilt={}",
            st.segments_read, st.snapshots_read, st.rebuilt
        ));
        for w in &st.warnings {
            out.note(format!("warning: {w}"));
        }
    }
    let f = super::filter(&a.filter);
    let all = o.catalog().snapshots()?;
    let list: Vec<_> = match &a.at {
        Some(t) => {
            let sel = select::Selector::At(select::parse_time(t)?);
            vec![select::select(&all, &sel, &f)?.clone()]
        }
        None => all.into_iter().filter(|(_, s)| f.matches(s)).collect(),
    };
    if out.json {
        let v: Vec<_> = list
            .iter()
            .map(|(id, s)| output::snapshot_json(id, s))
            .collect();
        output::json(&v);
        return Ok(0);
    }
    // a column for dump checks only where a listed snapshot has one
    let checked = list.iter().any(|(_, s)| !s.checks.is_empty());
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|(id, s)| {
            let mut row = vec![
                id.short(),
                output::time(&s.time),
                s.host.clone(),
                s.tags.join(","),
                s.paths.join(" "),
                output::size(s.summary.total_bytes),
            ];
            if checked {
                let kinds: Vec<&str> = s.checks.iter().map(|c| c.kind.as_str()).collect();
                row.push(if kinds.is_empty() {
                    "-".into()
                } else {
                    format!("{} ok", kinds.join(","))
                });
            }
            row
        })
        .collect();
    if !out.quiet {
        let mut head = vec!["ID", "Time", "Host", "Tags", "Paths", "Size"];
        if checked {
            head.push("Checked");
        }
        output::table(&head, &rows);
        println!("{} snapshots", rows.len());
    }
    Ok(0)
}
