//! Repair: rebuild what can be rebuilt, and rewrite snapshots around what
//! cannot, always saying what was lost.
//!
//! - [`index`]: rebuilds the index from the pack headers alone (and, with
//!   `read_data`, indexes only blobs that verify, copying the intact blobs
//!   of damaged packs into new ones), supersedes every old segment and
//!   deletes them; rewrites a missing or damaged `config` from the copy in
//!   the key files and re-files misnamed key files.
//! - [`snapshots`]: rewrites every snapshot that needs a blob with no
//!   intact copy (a file loses the lost chunks, which read back as zeros,
//!   flagged incomplete with its hash recomputed; a directory whose tree is
//!   lost becomes empty), writes again a manifest that is damaged in the
//!   repository from the local catalog's intact copy, and re-files
//!   misnamed manifests. The originals are deleted only when asked.
//!
//! Each plans first, reading only, into a plain value that `--dry-run`
//! prints, then executes the plan; on a healthy repository the plan is
//! empty and nothing is written. The write order and what a crash between
//! any two writes leaves are in `format-spec` §15; the crash-point tests
//! try every one.

pub mod index;
pub mod snapshots;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::{BlobId, PackId, content_hash};
use crate::format::layout::ObjectId;
use crate::format::pack::BlobKind;
use crate::store::repo::Repository;
use crate::store::repo_index::RepoIndex;

/// An object stored under a name that is not the hash of its bytes (swapped
/// or copied), whose bytes are a valid object of its kind.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Misnamed<I> {
    /// The name it is stored under.
    pub stored_as: I,
    /// Its own name (the hash of its bytes).
    pub own_name: I,
    #[serde(skip)]
    bytes: Bytes,
}

/// Every misnamed object of kind `I` whose bytes `valid` accepts. All of
/// them are read before anything is written: two objects swapped with
/// each other are each other's destination.
fn find_misnamed<I: ObjectId>(
    repo: &Repository,
    valid: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<Misnamed<I>>> {
    let mut out = vec![];
    for stored_as in repo.list::<I>()? {
        let bytes = match repo.backend().get(&stored_as.key()) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let own_name = I::from_raw(content_hash(&bytes));
        if own_name != stored_as && valid(&bytes) {
            out.push(Misnamed {
                stored_as,
                own_name,
                bytes,
            });
        }
    }
    Ok(out)
}

/// Writes each misnamed object under its own name, then deletes the wrong
/// names that are not among the names just written.
fn refile<I: ObjectId>(repo: &Repository, found: &[Misnamed<I>]) -> Result<()> {
    let written: HashSet<I> = found.iter().map(|m| m.own_name).collect();
    for m in found {
        repo.write_object::<I>(m.bytes.clone())?;
    }
    for m in found {
        if !written.contains(&m.stored_as) {
            repo.backend().delete(&m.stored_as.key())?;
        }
    }
    Ok(())
}

/// Refuses to rewrite snapshots while the index may be missing blobs that
/// the store still has: a damaged or superseded segment, or a pack whose
/// size differs from the index's. Rewriting then would drop data that
/// `repair index` can still find, and `--forget` would delete the only
/// snapshots that refer to it. Returns the blobs that packs no segment
/// lists hold (read from their headers): a snapshot that needs one of them
/// waits for `repair index` too, while the leftovers of an interrupted
/// backup or repair, which no snapshot needs, do not block. (An unindexed
/// pack whose header is unreadable holds nothing `repair index` can
/// recover.)
fn index_complete(
    repo: &Repository,
    index: &RepoIndex,
    listed: &HashMap<PackId, u64>,
) -> Result<HashSet<(BlobKind, BlobId)>> {
    let mut why = vec![];
    if !index.damaged_segments.is_empty() {
        why.push(format!(
            "{} index segment(s) are damaged",
            index.damaged_segments.len()
        ));
    }
    if !index.superseded.is_empty() {
        why.push(format!(
            "{} superseded index segment(s) are still there",
            index.superseded.len()
        ));
    }
    let mut unindexed = HashSet::new();
    for (p, size) in listed.iter().filter(|(p, _)| !index.packs.contains_key(p)) {
        match repo.read_pack_header(p, *size) {
            Ok(entries) => unindexed.extend(entries.iter().map(|e| (e.kind, e.id))),
            Err(e) if e.is_damage() || e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let resized = index
        .packs
        .iter()
        .filter(|(p, (size, _))| listed.get(p).is_some_and(|s| s != size))
        .count();
    if resized > 0 {
        why.push(format!(
            "{resized} pack(s) have a size that differs from the index's"
        ));
    }
    if why.is_empty() {
        return Ok(unindexed);
    }
    Err(Error::NeedsRepairIndex(why.join(", ")))
}
