use anyhow::{Result, bail};
use arca_engine::format::chunker::ChunkerParams;
use arca_engine::format::crypto::KdfParams;
use arca_engine::store::repo::{InitOptions, KeyOwner, Repository};

use crate::args::{Global, InitArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &InitArgs) -> Result<i32> {
    let location = context::repo_location(g)?;
    let mut opts = InitOptions::default();
    if let Some(m) = a.kdf_memory {
        opts.kdf = KdfParams {
            memory_kib: m,
            ..KdfParams::default()
        };
    }
    if let Some(c) = &a.chunker {
        let v: Vec<u32> = c
            .split(',')
            .map(|x| x.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow::anyhow!("--chunker takes MIN,AVG,MAX in bytes"))?;
        let [min_size, avg_size, max_size] = v[..] else {
            bail!("--chunker takes MIN,AVG,MAX in bytes");
        };
        opts.chunker = ChunkerParams {
            min_size,
            avg_size,
            max_size,
        };
    }
    if let Some(p) = a.pack_size {
        opts.pack_size = p.saturating_mul(1 << 20);
    }
    let be = context::connect(g)?.backend;
    let password = context::password(g, true)?;
    let repo = Repository::init(be, &password, &opts, &KeyOwner::current())?;
    let c = repo.config();
    if out.json {
        output::json(&serde_json::json!({
            "id": c.id,
            "repository": location,
            "version": c.version,
            "chunker": c.chunker,
            "pack_size": c.pack_size,
        }));
    } else {
        out.say(format!(
            "created arca repository {} at {location}",
            c.id.short()
        ));
        out.say("Keep the password safe: without it the data cannot be read back.");
    }
    Ok(0)
}
