//! Dump: one file of a snapshot, in order, to a writer (stdout), for piping
//! into `pg_restore`, `neo4j-admin database load --from-stdin`, or
//! `redis-cli`.
//!
//! Blobs are fetched ahead in parallel (a window of `WINDOW`), verified,
//! and written in order; holes are written as zeros. The whole stream's
//! BLAKE3 is compared with the recorded one at the end. Every blob is
//! verified before its bytes are written, so a damaged repository stops the
//! stream with an error naming the file instead of producing wrong bytes.

use std::io::Write;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::tree::{Content, Node, NodeKind};
use crate::store::session::{Reads, Session};

/// Blobs fetched ahead of the writer.
const WINDOW: usize = 16;

/// Writes the content of file `node` (found at `path`) to `out`.
/// Returns the bytes written.
pub fn dump_file<A: Reads>(
    session: &Session<A>,
    node: &Node,
    path: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let reader = session.reader();
    let (hash, extents) = match (&node.content, node.kind) {
        (Content::File { hash, extents }, NodeKind::File) => (hash, extents),
        _ => {
            return Err(Error::Invalid(format!(
                "{path} is a {}, not a file; use `arca restore --include {path}`",
                node.kind.name()
            )));
        }
    };
    let io = |e: std::io::Error| Error::io("standard output", e);
    let mut hasher = blake3::Hasher::new();
    let zeros = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    let write_zeros = |n: u64, out: &mut dyn Write, hasher: &mut blake3::Hasher| -> Result<()> {
        let mut left = n;
        while left > 0 {
            let k = left.min(zeros.len() as u64) as usize;
            out.write_all(&zeros[..k]).map_err(io)?;
            hasher.update(&zeros[..k]);
            left -= k as u64;
        }
        Ok(())
    };
    for window in extents.chunks(WINDOW) {
        let blobs: Vec<Vec<u8>> = window
            .par_iter()
            .map(|e| reader.read(&e.blob, BlobKind::Data, &|| path.to_string()))
            .collect::<Result<_>>()?;
        for (e, b) in window.iter().zip(blobs) {
            if b.len() != e.length as usize {
                return Err(Error::damaged(
                    path,
                    format!("blob {} has the wrong length", e.blob),
                ));
            }
            write_zeros(e.offset - pos, out, &mut hasher)?;
            out.write_all(&b).map_err(io)?;
            hasher.update(&b);
            pos = e.offset + b.len() as u64;
        }
    }
    write_zeros(node.size - pos, out, &mut hasher)?;
    out.flush().map_err(io)?;
    if hasher.finalize().as_bytes() != hash {
        return Err(Error::damaged(
            path,
            "the dumped content does not match the recorded BLAKE3 hash",
        ));
    }
    Ok(node.size)
}
