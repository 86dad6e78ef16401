//! Check coverage records in the repository (`checks/`): reading all of
//! them, and writing a new one that folds the ones it read. The record's
//! bytes are `format::coverage`'s.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::coverage::Coverage;
use crate::format::id::CheckId;
use crate::format::layout::ObjectKey;
use crate::store::repo::Repository;

/// Loads every coverage record; returns the merged coverage and the
/// records read (to delete after folding them into a new one). Damaged
/// records are skipped and returned as messages.
pub fn load(repo: &Repository) -> Result<(Coverage, Vec<ObjectKey>, Vec<String>)> {
    let mut all = Coverage::default();
    let mut keys = vec![];
    let mut damaged = vec![];
    for id in repo.list::<CheckId>()? {
        let key = ObjectKey::of(id);
        let r = repo
            .read_object(&key)
            .and_then(|b| Coverage::from_object(repo.key(), &b).map_err(|e| Error::decode(key, e)));
        match r {
            Ok(c) => {
                all.merge(&c);
                keys.push(key);
            }
            Err(e) => damaged.push(e.to_string()),
        }
    }
    Ok((all, keys, damaged))
}

/// Writes `coverage` as a new record, then deletes the records it folds.
pub fn save(repo: &Repository, coverage: &Coverage, folded: &[ObjectKey]) -> Result<()> {
    let id: CheckId = repo.write_object(Bytes::from(coverage.to_object(repo.key())))?;
    for k in folded {
        if *k != ObjectKey::of(id) {
            repo.backend().delete(k)?;
        }
    }
    Ok(())
}
