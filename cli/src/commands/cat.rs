use anyhow::{Result, anyhow, bail};
use arca_engine::format::id::{BlobId, IndexId, KeyId, PackId};
use arca_engine::format::keyfile::KeyFile;
use arca_engine::format::layout::ObjectKey;
use arca_engine::format::pack::BlobKind;
use arca_engine::format::tree::{Content, Tree};

use crate::args::{CatArgs, Global};
use crate::context;
use crate::output;

fn need_id(a: &CatArgs) -> Result<&str> {
    a.id.as_deref()
        .ok_or_else(|| anyhow!("`arca cat {}` needs an id", a.kind))
}

fn entries_json(entries: &[arca_engine::format::pack::PackEntry]) -> serde_json::Value {
    entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "type": e.kind.name(),
                "id": e.id,
                "offset": e.offset,
                "length": e.length,
                "raw_length": e.raw_length,
                "compression": format!("{:?}", e.compression).to_lowercase(),
            })
        })
        .collect()
}

pub fn run(g: &Global, a: &CatArgs) -> Result<i32> {
    let o = context::open(g)?;
    let v = match a.kind.as_str() {
        "config" => serde_json::to_value(o.repo().config())?,
        "snapshot" => {
            let (id, s) = super::pick(o.catalog(), Some(need_id(a)?), None, &Default::default())?;
            let mut v = serde_json::to_value(&s)?;
            v["id"] = serde_json::json!(id);
            v
        }
        "index" => {
            let id: IndexId = need_id(a)?.parse()?;
            let seg = o.repo().load_index(&id)?;
            serde_json::json!({
                "supersedes": seg.supersedes,
                "packs": seg.packs.iter().map(|p| serde_json::json!({
                    "id": p.id, "size": p.size, "blobs": entries_json(&p.entries)
                })).collect::<Vec<_>>(),
            })
        }
        "pack" => {
            let id: PackId = need_id(a)?.parse()?;
            let size = o.repo().backend().head(&ObjectKey::of(id))?;
            let entries = o.repo().read_pack_header(&id, size)?;
            serde_json::json!({"id": id, "size": size, "blobs": entries_json(&entries)})
        }
        "key" => {
            let want = need_id(a)?;
            let keys = o.repo().list::<KeyId>()?;
            let m: Vec<_> = keys
                .iter()
                .filter(|k| k.to_hex().starts_with(want))
                .collect();
            let [k] = m[..] else {
                bail!("{} keys match {want}", m.len());
            };
            let b = o.repo().read_object(&ObjectKey::of(*k))?;
            let mut v = serde_json::to_value(KeyFile::parse(&b).map_err(anyhow::Error::msg)?)?;
            v["id"] = serde_json::json!(k);
            v
        }
        "tree" => {
            let id: BlobId = need_id(a)?.parse()?;
            let t = o.reader().tree(&id, &|| "arca cat".into())?;
            tree_json(&t)
        }
        "blob" => {
            let id: BlobId = need_id(a)?.parse()?;
            let b = o
                .reader()
                .read(&id, BlobKind::Data, &|| "arca cat".into())?;
            use std::io::Write;
            std::io::stdout().write_all(&b)?;
            return Ok(0);
        }
        k => bail!("unknown object kind {k}: use config, snapshot, index, pack, key, tree or blob"),
    };
    output::json(&v);
    Ok(0)
}

fn tree_json(t: &Tree) -> serde_json::Value {
    t.nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "name": n.display_name(),
                "type": n.kind,
                "mode": n.mode,
                "uid": n.uid,
                "gid": n.gid,
                "size": n.size,
                "mtime": [n.mtime.sec, n.mtime.nsec],
                "inode": n.inode,
                "nlink": n.nlink,
                "flags": n.flags,
                "xattrs": n.xattrs.len(),
                "subtree": n.subtree(),
                "content_hash": match &n.content { Content::File { hash, .. } => Some(hex::encode(hash)), _ => None },
                "extents": n.extents().iter().map(|e| serde_json::json!({"offset": e.offset, "length": e.length, "blob": e.blob})).collect::<Vec<_>>(),
            })
        })
        .collect()
}
