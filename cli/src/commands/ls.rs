use std::io::Write;

use anyhow::Result;
use arca_engine::format::tree::{Content, NodeKind};
use arca_engine::ops::ls;
use chrono::DateTime;

use crate::args::{Global, LsArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &LsArgs) -> Result<i32> {
    let h = context::open(g)?.reading(g, "ls")?;
    let (id, snap) = super::pick(h.session.catalog(), Some(&a.snapshot), None, &a.filter)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut items = vec![];
    ls::walk(
        &h.session,
        &snap.tree,
        &id,
        &a.path,
        !a.no_recursive,
        &mut |e| {
            let n = &e.node;
            let mtime = DateTime::from_timestamp(n.mtime.sec, n.mtime.nsec).unwrap_or_default();
            if out.json {
                items.push(serde_json::json!({
                "path": e.path,
                "type": n.kind,
                "mode": n.mode,
                "uid": n.uid,
                "gid": n.gid,
                "user": String::from_utf8_lossy(&n.user),
                "group": String::from_utf8_lossy(&n.group),
                "size": n.size,
                "mtime": mtime,
                "link_target": (n.kind == NodeKind::Symlink).then(|| String::from_utf8_lossy(&n.target).into_owned()),
                "content_hash": match &n.content { Content::File { hash, .. } => Some(hex::encode(hash)), _ => None },
                "chunks": n.extents().len(),
            }));
            } else if a.long {
                let _ = writeln!(
                    w,
                    "{:<8} {:04o} {:>8} {:>8} {:>12} {}  {}{}",
                    n.kind.name(),
                    n.mode,
                    String::from_utf8_lossy(&n.user),
                    String::from_utf8_lossy(&n.group),
                    n.size,
                    output::time(&mtime),
                    e.path,
                    if n.kind == NodeKind::Symlink {
                        format!(" -> {}", String::from_utf8_lossy(&n.target))
                    } else {
                        String::new()
                    }
                );
            } else {
                let _ = writeln!(w, "{}", e.path);
            }
            Ok(())
        },
    )?;
    if out.json {
        output::json(&items);
    }
    w.flush()?;
    Ok(0)
}
