//! `arca find PATTERN...`: the paths that match, in every snapshot the
//! filters select (newest first); `--json`.

use std::io::Write;

use anyhow::Result;
use arca_engine::ops::find;
use arca_engine::ops::patterns::Patterns;
use chrono::DateTime;

use crate::args::{FindArgs, Global};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &FindArgs) -> Result<i32> {
    let patterns = Patterns::new(&a.patterns, "find")?;
    let h = context::open(g)?.reading(g, "find")?;
    let f = super::filter(&a.filter);
    let mut snaps: Vec<_> = h
        .session
        .catalog()
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| f.matches(s))
        .collect();
    snaps.sort_by_key(|(_, s)| std::cmp::Reverse(s.time));
    if let Some(n) = a.newest {
        snaps.truncate(n);
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut items = vec![];
    let mut last: Option<String> = None;
    let found = find::find(
        &h.session.reader(),
        &snaps,
        &patterns,
        &mut |id, s, path, n| {
            let mtime = DateTime::from_timestamp(n.mtime.sec, n.mtime.nsec).unwrap_or_default();
            if out.json {
                items.push(serde_json::json!({
                    "snapshot": id.to_hex(),
                    "time": s.time,
                    "host": s.host,
                    "path": path,
                    "type": n.kind,
                    "size": n.size,
                    "mtime": mtime,
                }));
            } else if !out.quiet {
                if last.as_deref() != Some(&id.to_hex()) {
                    let _ = writeln!(
                        w,
                        "snapshot {} of {} at {}:",
                        id.short(),
                        s.host,
                        output::time(&s.time)
                    );
                    last = Some(id.to_hex());
                }
                let _ = writeln!(
                    w,
                    "  {path}  {}  {}",
                    output::size(n.size),
                    output::time(&mtime)
                );
            }
            Ok(())
        },
    )?;
    if out.json {
        output::json(&items);
    } else {
        w.flush()?;
        drop(w);
        out.note(format!("{found} match(es) in {} snapshot(s)", snaps.len()));
    }
    Ok(if found == 0 { 1 } else { 0 })
}
