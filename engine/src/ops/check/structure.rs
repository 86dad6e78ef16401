//! Check, the structure: the config and the key files decode, the index
//! segments load, every indexed pack is there with its indexed size and a
//! header that says what the index says; and the local catalog agrees with
//! the repository's index.

use std::collections::HashSet;

use rayon::prelude::*;

use super::{Damage, Findings};
use crate::error::{Error, Result};
use crate::format::id::{KeyId, PackId};
use crate::format::keyfile::KeyFile;
use crate::format::layout::ObjectKey;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;
use crate::store::repo_index::RepoIndex;

/// The config object, and every key file.
pub(super) fn config_and_keys(repo: &Repository, found: &mut Findings) -> Result<()> {
    if !repo.config_object_intact()? {
        found.problem(
            "config",
            "config".into(),
            "missing or damaged; the repository opened with the copy kept in the key files. \
             Run `arca repair index` to rewrite it"
                .into(),
        );
    }
    for id in repo.list::<KeyId>()? {
        let key = ObjectKey::of(id);
        let r = repo
            .read_object(&key)
            .and_then(|b| KeyFile::parse(&b).map_err(|e| Error::decode(key, e)));
        if let Err(e) = r {
            found.problem(
                "key",
                key.path(),
                format!(
                    "{e}; the password of this key no longer opens the repository: remove it with \
                     `arca key remove {}` and add a new one with `arca key add`",
                    id.short()
                ),
            );
        }
    }
    Ok(())
}

/// The repository's index, built from `index/`; damaged segments are
/// problems, superseded ones warnings.
pub(super) fn index(repo: &Repository, found: &mut Findings) -> Result<RepoIndex> {
    let index = RepoIndex::load(repo)?;
    for (id, why) in &index.damaged_segments {
        found.problem(
            "index",
            ObjectKey::of(*id).path(),
            format!("{why}; run `arca repair index` to rebuild the index from the packs"),
        );
    }
    for id in &index.superseded {
        found.warnings.push(format!(
            "index segment {id} is superseded by a newer one and ignored (the next prune or `arca repair index` removes it)"
        ));
    }
    for id in &index.void_segments {
        found.warnings.push(format!(
            "index segment {id} was written by a backup that overlapped a prune and is ignored (the backup was told to run again; the next prune removes it)"
        ));
    }
    for (id, why) in &index.damaged_records {
        found.problem(
            "prune",
            ObjectKey::of(*id).path(),
            format!(
                "{why}; the packs it condemned are unknown, so prune refuses to run and backups may deduplicate against them: run `arca repair index`"
            ),
        );
    }
    if index.prune.is_fork() {
        let heads: Vec<String> = index
            .prune
            .heads
            .iter()
            .map(|(id, r)| {
                format!(
                    "{} (generation {}, {})",
                    id.short(),
                    r.info.generation,
                    r.info.host
                )
            })
            .collect();
        found.problem(
            "prune",
            "prune/".into(),
            format!(
                "two prunes overlapped and left {} heads: {}; backups stay safe (they avoid the packs of both), and `arca prune` resolves it",
                heads.len(),
                heads.join(", ")
            ),
        );
    }
    Ok(index)
}

/// Every indexed pack: present, of the indexed size, and (unless it is read
/// in full by the data phase) with a header that agrees with the index.
/// Returns the packs found unusable.
pub(super) fn packs(
    repo: &Repository,
    index: &RepoIndex,
    read_in_full: &[PackId],
    found: &mut Findings,
) -> Result<Damage> {
    let mut damage = Damage::default();
    let (listed, short) = repo.list_packs_confirmed(index.packs.keys().copied())?;
    if short > 0 {
        found.warnings.push(format!(
            "the store's listing of packs/ left out {short} pack(s) that exist (a short LIST page?)"
        ));
    }
    // a condemned pack is known by its header alone (the record names it
    // by id and size): one whose header did not read is damage
    for (id, why) in &index.condemned_unreadable {
        let at = found.problem(
            "pack",
            ObjectKey::of(*id).path(),
            format!(
                "condemned by the prune head, so still meant to be readable, but {why}; snapshots that need blobs from it are reported as damaged (`arca repair snapshots` then saves what is left of them); if none is, the next prune finishes deleting it"
            ),
        );
        damage.packs.insert(*id, at);
    }
    let in_full: HashSet<PackId> = read_in_full.iter().copied().collect();
    let mut header_checks = vec![];
    let mut ids: Vec<&PackId> = index.packs.keys().collect();
    ids.sort();
    for id in ids {
        let size = index.packs[id].0;
        let key = ObjectKey::of(*id);
        match listed.get(id) {
            None => {
                let at = found.problem(
                    "pack",
                    key.path(),
                    "missing: the index lists it but the store does not have it".into(),
                );
                damage.packs.insert(*id, at);
            }
            Some(s) if *s != size => {
                let at = found.problem(
                    "pack",
                    key.path(),
                    format!("size {s} bytes, the index says {size} (truncated or replaced)"),
                );
                damage.packs.insert(*id, at);
            }
            Some(_) if !in_full.contains(id) => header_checks.push(*id),
            Some(_) => {}
        }
    }
    let mut unindexed: Vec<(&PackId, &u64)> = listed
        .iter()
        .filter(|(id, _)| !index.packs.contains_key(id))
        .collect();
    unindexed.sort();
    for (id, size) in unindexed {
        if index.to_delete.contains(id) {
            found.warnings.push(format!(
                "pack {id} ({size} bytes) is one a prune decided to delete and has not yet (the next prune deletes it)"
            ));
            continue;
        }
        found.warnings.push(format!(
            "pack {id} ({size} bytes) is not in the index: left by an interrupted backup, or its index segment was lost (`arca repair index` adds it)"
        ));
    }
    let results: Vec<(PackId, std::result::Result<(), String>)> = header_checks
        .par_iter()
        .with_max_len(1)
        .map(|id| {
            let (size, entries) = &index.packs[id];
            let r = match repo.read_pack_header(id, *size) {
                Ok(h) if &h == entries => Ok(()),
                Ok(_) => Err("its header disagrees with the index".to_string()),
                Err(e) => Err(format!("header unreadable: {e}")),
            };
            (*id, r)
        })
        .collect();
    for (id, r) in results {
        if let Err(why) = r {
            let at = found.problem(
                "pack",
                ObjectKey::of(id).path(),
                format!("{why}; `arca check --read-data` tells which blobs are still intact"),
            );
            damage.packs.insert(id, at);
        }
    }
    Ok(damage)
}

/// The local catalog must say what the repository says: it is rebuilt
/// (and the rebuild reported) when its rows differ from the index.
pub(super) fn catalog_agrees(
    repo: &Repository,
    cat: &Catalog,
    index: &RepoIndex,
    found: &mut Findings,
) -> Result<()> {
    if cat.recreated() {
        found.warnings.push(format!(
            "the local catalog {} was unreadable and was rebuilt from the repository",
            cat.path().display()
        ));
    }
    // the catalog's live copies against the index's
    let live = index
        .all_copy_packs()
        .filter(|p| !index.condemned.contains(p))
        .count();
    // one row at a time: the rows of a large catalog, held at once, took
    // more memory than the index itself
    let (mut rows, mut all_indexed) = (0usize, true);
    cat.each_blob_location(&mut |b, p, e| {
        rows += 1;
        all_indexed =
            !index.condemned.contains(&p) && index.copies(&b).any(|(pp, ee)| pp == p && *ee == e);
        all_indexed && rows <= live
    })?;
    if !(all_indexed && rows == live) {
        found.warnings.push(format!(
            "the local catalog {} disagreed with the repository's index; it was rebuilt",
            cat.path().display()
        ));
        cat.rebuild(repo)?;
    }
    Ok(())
}
