//! Stats: how big snapshots are when restored, what they take in the
//! repository, and what deduplication and compression save.
//!
//! Per tree, bottom-up through the one tree walker's [`fold`] (each
//! distinct tree read once, however many snapshots share it): the bytes,
//! files and directories below it. The blobs the selected snapshots refer
//! to (file chunks and trees) are collected once each and looked up in the
//! catalog for their stored (compressed, encrypted) and raw sizes. Cost:
//! every distinct tree read, one catalog probe per distinct blob; memory:
//! the set of distinct blob ids (about 50 bytes each).
//!
//! [`fold`]: crate::store::tree_walk::fold

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::id::BlobId;
use crate::format::pack::BlobKind;
use crate::format::tree::{Content, NodeKind};
use crate::store::blob_reader::{BlobReader, Locator};
use crate::store::catalog::Catalog;
use crate::store::tree_walk;

/// What a set of snapshots holds and takes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Snapshots counted.
    pub snapshots: u64,
    /// Files, summed over the snapshots (a file in two snapshots counts
    /// twice: it is restored twice).
    pub files: u64,
    /// Directories, likewise.
    pub dirs: u64,
    /// Bytes a restore of every selected snapshot writes (file sizes,
    /// holes included), summed over the snapshots.
    pub restore_bytes: u64,
    /// Distinct blobs (file chunks and trees) they refer to.
    pub blobs: u64,
    /// Their bytes before compression and encryption.
    pub raw_bytes: u64,
    /// Their bytes as stored in packs (compressed, encrypted, with each
    /// blob's authentication tag).
    pub stored_bytes: u64,
    /// `restore_bytes / raw_bytes` of the file chunks: what deduplication
    /// (across files and snapshots) and holes save.
    pub dedup_ratio: f64,
    /// `raw_bytes / stored_bytes`: what compression saves.
    pub compression_ratio: f64,
}

/// Per tree: bytes, files and directories at and below it.
#[derive(Clone, Copy, Default)]
struct Below {
    bytes: u64,
    files: u64,
    dirs: u64,
}

/// The stats of the snapshots whose root trees are `roots`.
pub fn stats<L: Locator>(
    reader: &BlobReader<L>,
    catalog: &Catalog,
    roots: &[BlobId],
) -> Result<Stats> {
    let mut memo: HashMap<BlobId, Below> = HashMap::new();
    let mut data: HashSet<BlobId> = HashSet::new();
    let mut trees: HashSet<BlobId> = HashSet::new();
    let mut data_raw = 0u64;
    let mut combine = |id: &BlobId,
                       tree: Result<std::sync::Arc<crate::format::tree::Tree>>,
                       children: Vec<Option<&Below>>|
     -> Result<Below> {
        let tree = tree?;
        trees.insert(*id);
        let mut b = Below::default();
        for (n, child) in tree.nodes.iter().zip(children) {
            match n.kind {
                NodeKind::Dir => {
                    let c = child.copied().unwrap_or_default();
                    b.dirs += 1 + c.dirs;
                    b.files += c.files;
                    b.bytes += c.bytes;
                }
                NodeKind::File => {
                    b.files += 1;
                    b.bytes += n.size;
                    if let Content::File { extents, .. } = &n.content {
                        for e in extents {
                            if data.insert(e.blob) {
                                data_raw += e.length as u64;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(b)
    };
    let mut out = Stats {
        snapshots: roots.len() as u64,
        ..Default::default()
    };
    for root in roots {
        tree_walk::fold(reader, root, &mut memo, &mut combine)?;
        let b = memo[root];
        out.files += b.files;
        out.dirs += b.dirs;
        out.restore_bytes += b.bytes;
    }
    let mut stored = 0u64;
    let mut raw = 0u64;
    for (kind, set) in [(BlobKind::Data, &data), (BlobKind::Tree, &trees)] {
        for id in set {
            let loc = catalog.locations(kind, id)?;
            let Some(l) = loc.first() else {
                return Err(Error::MissingBlob {
                    blob: id.to_string(),
                    needed_by: "stats".into(),
                });
            };
            stored += l.entry.length as u64;
            raw += l.entry.raw_length as u64;
        }
    }
    out.blobs = (data.len() + trees.len()) as u64;
    out.raw_bytes = raw;
    out.stored_bytes = stored;
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    out.dedup_ratio = ratio(out.restore_bytes, data_raw);
    out.compression_ratio = ratio(raw, stored);
    Ok(out)
}
