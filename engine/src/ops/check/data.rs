//! Check, the data: the selected packs downloaded whole, their names
//! checked, every blob opened; and the coverage records that say which
//! packs were verified and when (so that a rolling check reaches 100%).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    CheckOptions, CoverageReport, Damage, DataReport, DataSelection, Findings, PackCoverage,
};
use crate::error::{Error, Result};
use crate::format::coverage::Coverage;
use crate::format::id::{BlobId, PackId, content_hash};
use crate::format::layout::ObjectKey;
use crate::format::pack;
use crate::store::coverage as records;
use crate::store::repo::Repository;
use crate::store::repo_index::RepoIndex;

/// The coverage recorded in the repository, and the records it came from
/// (folded into the next record written). Unreadable records are warnings.
pub(super) fn coverage(
    repo: &Repository,
    found: &mut Findings,
) -> Result<(Coverage, Vec<ObjectKey>)> {
    let (coverage, folded, damaged) = records::load(repo)?;
    for d in damaged {
        found
            .warnings
            .push(format!("check record unreadable (ignored): {d}"));
    }
    Ok((coverage, folded))
}

/// Reads `packs` in full; every damaged pack and blob copy becomes a
/// problem and is marked in `damage`. Returns the figures and the coverage
/// with the packs that verified.
pub(super) fn verify(
    repo: &Repository,
    index: &RepoIndex,
    packs: &[PackId],
    opts: &CheckOptions,
    found: &mut Findings,
    damage: &mut Damage,
) -> Result<(DataReport, Coverage)> {
    let started = std::time::Instant::now();
    let total: u64 = packs.iter().map(|p| index.packs[p].0).sum();
    opts.progress.bytes_total.store(total, Ordering::Relaxed);
    let mut results = read_packs(repo, index, packs, opts)?;
    results.sort_by_key(|r| r.pack);
    let mut dr = DataReport::default();
    let mut verified = Coverage::default();
    let now = chrono::Utc::now().timestamp();
    for r in results {
        dr.packs += 1;
        dr.bytes += r.bytes;
        dr.blobs += r.blobs_ok;
        if r.problems.is_empty() && r.bad_blobs.is_empty() {
            verified.verified.insert(r.pack, now);
            continue;
        }
        let detail = format!(
            "{}{}",
            r.problems.join("; "),
            if r.bad_blobs.is_empty() {
                String::new()
            } else {
                format!(
                    "{}{} of {} blobs damaged (`arca repair index --read-data` drops them, then `arca repair snapshots`)",
                    if r.problems.is_empty() { "" } else { "; " },
                    r.bad_blobs.len(),
                    index.packs[&r.pack].1.len()
                )
            }
        );
        let at = found.problem("pack", ObjectKey::of(r.pack).path(), detail);
        for (b, _) in &r.bad_blobs {
            damage.copies.insert((r.pack, *b), at);
        }
    }
    dr.seconds = started.elapsed().as_secs_f64();
    Ok((dr, verified))
}

/// Records what verified in a new coverage record that folds the ones read
/// (dropping packs no longer indexed). Verification stands even if it
/// cannot be recorded (a read-only repository): the next rolling check
/// repeats it, and a warning says so. Returns the coverage now.
pub(super) fn record(
    repo: &Repository,
    index: &RepoIndex,
    before: &Coverage,
    verified: Coverage,
    folded: &[ObjectKey],
    found: &mut Findings,
) -> Coverage {
    let mut next = before.clone();
    next.merge(&verified);
    next.verified.retain(|p, _| index.packs.contains_key(p));
    if next != *before
        && let Err(e) = records::save(repo, &next, folded)
    {
        found.warnings.push(format!(
            "the verified packs could not be recorded in checks/ ({e}); a rolling check will read them again"
        ));
    }
    next
}

/// Chooses the packs to read.
pub(super) fn select_packs(sel: &DataSelection, index: &RepoIndex, cov: &Coverage) -> Vec<PackId> {
    let mut all: Vec<PackId> = index.packs.keys().copied().collect();
    all.sort();
    match *sel {
        DataSelection::None => vec![],
        DataSelection::All => all,
        DataSelection::Part { n, m } => all
            .into_iter()
            .filter(|p| {
                let v = u64::from_be_bytes(p.0[..8].try_into().unwrap());
                v % m as u64 == (n - 1) as u64
            })
            .collect(),
        DataSelection::Sample(pct) => {
            let k = ((all.len() as f64) * pct / 100.0).ceil() as usize;
            // a random rotation of a random order
            let mut keyed: Vec<([u8; 8], PackId)> = all
                .into_iter()
                .map(|p| {
                    let mut r = [0u8; 8];
                    crate::format::crypto::random_bytes(&mut r);
                    (r, p)
                })
                .collect();
            keyed.sort();
            keyed.into_iter().take(k).map(|(_, p)| p).collect()
        }
        DataSelection::Rolling(pct) => {
            let k = ((all.len() as f64) * pct / 100.0).ceil() as usize;
            // never verified first, then the oldest verification
            all.sort_by_key(|p| (cov.verified.get(p).copied().unwrap_or(i64::MIN), *p));
            all.into_iter().take(k).collect()
        }
    }
}

/// The coverage as the report shows it.
pub(super) fn coverage_report(index: &RepoIndex, cov: &Coverage) -> CoverageReport {
    let ts = |t: i64| chrono::DateTime::from_timestamp(t, 0);
    let mut packs: Vec<PackCoverage> = index
        .packs
        .keys()
        .map(|p| PackCoverage {
            pack: *p,
            verified: cov.verified.get(p).and_then(|t| ts(*t)),
        })
        .collect();
    packs.sort_by_key(|p| (p.verified, p.pack));
    let times: Vec<i64> = index
        .packs
        .keys()
        .filter_map(|p| cov.verified.get(p).copied())
        .collect();
    let total = index.packs.len();
    CoverageReport {
        packs_total: total,
        packs_verified: times.len(),
        percent: if total == 0 {
            100.0
        } else {
            times.len() as f64 * 100.0 / total as f64
        },
        oldest: times.iter().min().and_then(|t| ts(*t)),
        newest: times.iter().max().and_then(|t| ts(*t)),
        packs,
    }
}

struct PackResult {
    pack: PackId,
    bytes: u64,
    blobs_ok: u64,
    problems: Vec<String>,
    bad_blobs: Vec<(BlobId, String)>,
}

/// Downloads and verifies packs, `fetchers` at a time.
fn read_packs(
    repo: &Repository,
    index: &RepoIndex,
    packs: &[PackId],
    opts: &CheckOptions,
) -> Result<Vec<PackResult>> {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(packs.len()));
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.fetchers.max(1).min(packs.len().max(1)) {
            s.spawn(|| {
                loop {
                    if opts.cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = packs.get(i) else { return };
                    match verify_pack(repo, index, p) {
                        Ok(r) => {
                            opts.progress
                                .bytes_done
                                .fetch_add(r.bytes, Ordering::Relaxed);
                            out.lock().unwrap().push(r);
                        }
                        Err(e) => {
                            fatal.lock().unwrap().get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().unwrap() {
        return Err(e);
    }
    if opts.cancel.load(Ordering::Relaxed) {
        return Err(Error::Interrupted("check stopped".into()));
    }
    Ok(out.into_inner().unwrap())
}

/// Reads one pack whole and checks its name, header and every blob.
fn verify_pack(repo: &Repository, index: &RepoIndex, id: &PackId) -> Result<PackResult> {
    let key = ObjectKey::of(*id);
    let (size, entries) = &index.packs[id];
    let mut r = PackResult {
        pack: *id,
        bytes: 0,
        blobs_ok: 0,
        problems: vec![],
        bad_blobs: vec![],
    };
    let bytes = match repo.backend().get(&key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            r.problems.push("missing".into());
            return Ok(r);
        }
        Err(e) => return Err(e),
    };
    r.bytes = bytes.len() as u64;
    if bytes.len() as u64 != *size {
        r.problems
            .push(format!("{} bytes, the index says {size}", bytes.len()));
    }
    if content_hash(&bytes) != id.0 {
        r.problems
            .push("content does not match its name (BLAKE3)".into());
    }
    match pack::read_header_from_bytes_unchecked(repo.key(), &bytes) {
        Ok(h) if &h == entries => {}
        Ok(_) => r.problems.push("header disagrees with the index".into()),
        Err(e) => r.problems.push(format!("header: {e}")),
    }
    // Blobs, located by the index (so a damaged header does not hide them).
    for (e, res) in entries
        .iter()
        .zip(pack::verify_entries(repo.key(), &bytes, entries))
    {
        match res {
            Ok(_) => r.blobs_ok += 1,
            Err(why) => r.bad_blobs.push((e.id, why.to_string())),
        }
    }
    Ok(r)
}
