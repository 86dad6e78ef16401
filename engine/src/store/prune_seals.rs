//! Seals in the repository (`seals/<name>`): writing the seal of a
//! generation (prune, before it lists the snapshots it protects) and the
//! check a backup makes after writing its snapshot. Together they are the
//! handshake of `format-spec` §15: of a seal written before a listing and
//! a snapshot written before a seal check, at least one side sees the
//! other. Only the order of completed requests matters, never a clock.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::id::{PruneId, SealId, SnapshotId};
use crate::format::layout::ObjectKey;
use crate::format::prune::{Base, Seal, seal_name};
use crate::store::backend::PutMode;
use crate::store::repo::Repository;

/// The seal of `generation`, if one was written.
pub fn read(repo: &Repository, generation: u64) -> Result<Option<Seal>> {
    let key = ObjectKey::of(seal_name(&repo.config().id, generation));
    match repo.backend().get(&key) {
        Ok(b) => Seal::from_object(repo.key(), &b)
            .map(Some)
            .map_err(|e| Error::decode(key, e)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the seal of `seal.generation` (a second prune sealing the same
/// generation writes the same name: the last one stays, and means the same).
pub fn write(repo: &Repository, seal: &Seal) -> Result<()> {
    let key = ObjectKey::of(seal_name(&repo.config().id, seal.generation));
    repo.backend().put(
        &key,
        Bytes::from(seal.to_object(repo.key())),
        PutMode::Overwrite,
    )
}

/// After a backup wrote its snapshot on `base`: `Ok` if no prune has swept
/// a mark the snapshot does not honour (so any later sweep lists the
/// snapshot and protects it), [`Error::PruneConflict`] otherwise. Two reads
/// by name: the seal of the base's generation (a seal that names another
/// record means the base was a retracted sibling) and of the next one.
pub fn confirm(repo: &Repository, base: &Base) -> Result<()> {
    if base.generation > 0
        && let Some(s) = read(repo, base.generation)?
        && Some(s.mark) != base.mark
    {
        return Err(Error::PruneConflict {
            generation: s.generation,
            host: s.host,
        });
    }
    if let Some(s) = read(repo, base.generation + 1)? {
        return Err(Error::PruneConflict {
            generation: s.generation,
            host: s.host,
        });
    }
    Ok(())
}

/// [`confirm`] for the snapshot `id`, just saved on `base`, which is
/// deleted again on a conflict (a snapshot written beside a prune that may
/// have swept what it refers to must not stay): the commit check of every
/// operation that saves snapshots under a shared lock (backup, copy). One
/// delete on a conflict, besides `confirm`'s two reads.
pub fn confirm_saved(repo: &Repository, id: &SnapshotId, base: &Base) -> Result<()> {
    let confirmed = confirm(repo, base);
    if let Err(e) = &confirmed
        && e.is_prune_conflict()
    {
        let _ = repo.backend().delete(&ObjectKey::of(*id));
    }
    confirmed
}

/// Deletes every seal no committed record stands behind: a seal of a
/// generation above `head`'s (left when `repair index` removed damaged
/// records), the head generation's seal when it names another record, and
/// a seal that does not read. Without this every later backup would meet
/// a seal of its next generation and be refused until prunes caught up.
/// Under an exclusive lock only (no backup may be between its snapshot and
/// its seal check). One listing, one read per seal, one delete per seal
/// withdrawn; returns how many.
pub fn withdraw_beyond(repo: &Repository, head: Option<(PruneId, u64)>) -> Result<usize> {
    let head_gen = head.map_or(0, |(_, g)| g);
    let mut withdrawn = 0;
    for id in repo.list::<SealId>()? {
        let key = ObjectKey::of(id);
        let stale = match repo.backend().get(&key) {
            Ok(b) => match Seal::from_object(repo.key(), &b) {
                Ok(seal) => {
                    seal.generation > head_gen
                        || (seal.generation == head_gen && head.map(|(m, _)| m) != Some(seal.mark))
                }
                Err(_) => true,
            },
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(e),
        };
        if stale {
            repo.backend().delete(&key)?;
            withdrawn += 1;
        }
    }
    Ok(withdrawn)
}
