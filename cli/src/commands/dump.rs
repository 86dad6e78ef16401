use anyhow::Result;
use arca_engine::ops::dump;
use arca_engine::ops::ls;

use crate::args::{DumpArgs, Global};
use crate::context;
use crate::output::Out;

pub fn run(g: &Global, _out: &Out, a: &DumpArgs) -> Result<i32> {
    let h = context::open(g)?.reading(g, "dump")?;
    let (id, snap) = super::pick(
        h.session.catalog(),
        Some(&a.snapshot),
        a.at.as_deref(),
        &a.filter,
    )?;
    let node = ls::find(&h.session.reader(), &snap.tree, &id, &a.path)?
        .ok_or_else(|| anyhow::anyhow!("{} is the snapshot's root, not a file", a.path))?;
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    dump::dump_file(&h.session, &node, &a.path, &mut lock)?;
    Ok(0)
}
