//! `arca diff SNAP1 SNAP2`: the paths added, removed, modified, changed in
//! metadata only or in type, with sizes; `--json` as one object.

use std::io::Write;

use anyhow::Result;
use arca_engine::ops::diff::{self, Modifier};

use crate::args::{DiffArgs, Global};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &DiffArgs) -> Result<i32> {
    let h = context::open(g)?.reading(g, "diff")?;
    let cat = h.session.catalog();
    let (id1, s1) = super::pick(cat, Some(&a.first), None, &Default::default())?;
    let (id2, s2) = super::pick(cat, Some(&a.second), None, &Default::default())?;
    let reader = h.session.reader();
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut changes = vec![];
    let stats = diff::diff(&reader, &s1.tree, &s2.tree, &mut |c| {
        if a.metadata || c.modifier != Modifier::Metadata {
            if out.json {
                changes.push(c);
            } else if !out.quiet {
                let size = match (c.size_before, c.size_after) {
                    (Some(x), Some(y)) if x != y => {
                        format!("  ({} -> {})", output::size(x), output::size(y))
                    }
                    (_, Some(y)) | (Some(y), None) => format!("  ({})", output::size(y)),
                    _ => String::new(),
                };
                let _ = writeln!(w, "{}    {}{size}", c.modifier.code(), c.path);
            }
        }
        Ok(())
    })?;
    if out.json {
        output::json(&serde_json::json!({
            "first": id1.to_hex(),
            "second": id2.to_hex(),
            "changes": changes,
            "stats": stats,
        }));
        return Ok(0);
    }
    w.flush()?;
    drop(w);
    out.say(format!(
        "\n{} -> {}: {} added, {} removed, {} modified, {} metadata only, {} type changed; \
         {} added, {} removed",
        id1.short(),
        id2.short(),
        stats.added,
        stats.removed,
        stats.modified,
        stats.metadata_only,
        stats.type_changed,
        output::size(stats.bytes_added),
        output::size(stats.bytes_removed)
    ));
    Ok(0)
}
