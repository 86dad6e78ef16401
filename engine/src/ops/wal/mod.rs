//! WAL archiving for PostgreSQL: push, fetch, list and verify archived WAL
//! files (`arca wal ...`, PostgreSQL's `archive_command` and
//! `restore_command`).
//!
//! Each archived file is one object `wal/<id>` (`format::wal`), written by
//! a create-only put: archiving a name twice with the same bytes succeeds,
//! with other bytes fails loudly ([`Error::WalConflict`]), as PostgreSQL's
//! documentation asks of an archive command. WAL files are not snapshots
//! and never enter the catalog: a push is one put (and, for a name already
//! there, one get), a fetch one get, a listing reads names only.
//!
//! No lock is taken: pushes only create objects, nothing but
//! [`forget_before`] deletes under `wal/`, and prune never touches it
//! (`format-spec` §14.4 says why that is safe).
//!
//! [`spool`] is the local side: what was pushed ahead of PostgreSQL's
//! asking, and what was fetched ahead of it.

pub mod base;
pub mod recovery;
pub mod spool;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::compress::CompressionMode;
use crate::format::id::{SnapshotId, WalId};
use crate::format::snapshot::{PgBaseBackup, Snapshot};
use crate::format::wal::{self, SegmentNo, WalFile, WalObject};
use crate::store::backend::{ObjectKey, PutMode};
use crate::store::repo::Repository;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The file is now archived; `stored` bytes were written.
    Stored {
        /// Object bytes written.
        stored: u64,
    },
    /// The archive already held the same bytes under that name.
    AlreadyArchived {
        /// The object's size.
        stored: u64,
    },
}

impl Pushed {
    /// The archived object's size, whoever wrote it.
    pub fn stored(&self) -> u64 {
        match *self {
            Pushed::Stored { stored } | Pushed::AlreadyArchived { stored } => stored,
        }
    }
}

/// Archives `data` as `file`, whose [`wal::file_hash`] is `hash`. Costs
/// one create-only put (on an object store a `head` and a conditional put,
/// `format-spec` §3) and its size check; a name already there costs a get
/// instead, to compare.
pub fn push(
    repo: &Repository,
    file: WalFile,
    data: &[u8],
    hash: &[u8; 32],
    mode: CompressionMode,
) -> Result<Pushed> {
    let key = ObjectKey::of(file.id());
    let obj = wal::encode(repo.key(), file, data, hash, mode).map_err(Error::Invalid)?;
    let len = obj.len() as u64;
    match repo.backend().put(&key, Bytes::from(obj), PutMode::Create) {
        Ok(()) => {
            let stored = repo.backend().head(&key)?;
            if stored != len {
                return Err(Error::damaged(
                    key,
                    format!(
                        "stored {stored} bytes of the {len} uploaded for {}",
                        file.name()
                    ),
                ));
            }
            return Ok(Pushed::Stored { stored });
        }
        // pushed before, by another pusher, or by a retry of this very put
        // whose answer was lost: compare below
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    // there already: the same bytes succeed, others refuse
    let existing = fetch(repo, file)?
        .ok_or_else(|| Error::damaged(key, "the store says it exists, yet reads nothing"))?;
    if existing.hash == *hash && existing.data.len() == data.len() {
        return Ok(Pushed::AlreadyArchived {
            stored: repo.backend().head(&key)?,
        });
    }
    Err(Error::WalConflict {
        name: file.name(),
        stored: describe(existing.data.len(), &existing.hash),
        given: describe(data.len(), hash),
    })
}

fn describe(len: usize, hash: &[u8; 32]) -> String {
    format!("{len} bytes, BLAKE3 {}", &hex::encode(hash)[..16])
}

/// The archived `file`, authenticated; `None` when the archive does not
/// hold it. Costs one get.
pub fn fetch(repo: &Repository, file: WalFile) -> Result<Option<WalObject>> {
    let key = ObjectKey::of(file.id());
    let bytes = match repo.backend().get(&key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    wal::decode(repo.key(), &file.id(), &bytes)
        .map(Some)
        .map_err(|e| Error::damaged(format!("{key} ({})", file.name()), e.to_string()))
}

/// Every archived file and its object's size, in WAL order (segments of
/// each timeline, then partial segments, backup and history files).
/// Costs one listing; no object is read.
pub fn list(repo: &Repository) -> Result<Vec<(WalFile, u64)>> {
    let mut out: Vec<(WalFile, u64)> = repo
        .list_sized::<WalId>()?
        .into_iter()
        .filter_map(|(id, size)| WalFile::from_id(&id).map(|f| (f, size)))
        .collect();
    out.sort_by_key(|(f, _)| f.id());
    Ok(out)
}

/// What a base backup's history file (`.backup`) says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseBackup {
    /// The `.backup` file's name.
    pub file: String,
    /// `LABEL`.
    pub label: String,
    /// `START TIME`, as PostgreSQL wrote it.
    pub start_time: String,
    /// `START WAL LOCATION` (an LSN, `X/X`).
    pub start_lsn: String,
    /// `STOP WAL LOCATION`.
    pub stop_lsn: String,
    /// The segment the backup starts in.
    #[serde(serialize_with = "ser_segment")]
    pub start_segment: SegmentNo,
    /// The segment the backup stops in: replay must reach its end for the
    /// backup to be consistent.
    #[serde(serialize_with = "ser_segment")]
    pub stop_segment: SegmentNo,
}

fn ser_segment<S: serde::Serializer>(
    s: &SegmentNo,
    ser: S,
) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&s.name())
}

/// Parses a backup history file, as `pg_backup_stop` writes it
/// (`START WAL LOCATION: 0/2000028 (file 000000010000000000000002)`, ...).
pub fn parse_backup_file(name: &str, text: &str) -> std::result::Result<BaseBackup, String> {
    let location = |k: &str| -> std::result::Result<(String, SegmentNo), String> {
        let v = base::field(text, k).ok_or_else(|| format!("no {k}"))?;
        base::parse_location(v).ok_or_else(|| format!("{k}: {v}"))
    };
    let (start_lsn, start_segment) = location("START WAL LOCATION")?;
    let (stop_lsn, stop_segment) = location("STOP WAL LOCATION")?;
    Ok(BaseBackup {
        file: name.to_string(),
        label: base::field(text, "LABEL").unwrap_or_default().to_string(),
        start_time: base::field(text, "START TIME")
            .unwrap_or_default()
            .to_string(),
        start_lsn,
        stop_lsn,
        start_segment,
        stop_segment,
    })
}

/// Where a timeline began, from its history file's last entry: it forked
/// from `parent` at `lsn` (a promotion, or the end of a point-in-time
/// recovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Branch {
    pub timeline: u32,
    pub parent: u32,
    pub lsn: u64,
}

/// A timeline's history file in full, as PostgreSQL reads it
/// (`readTimeLineHistory`): every ancestor of `timeline`, oldest first,
/// each with the switch point where its WAL ends and the next timeline's
/// begins. It alone gives the timeline's ancestry: the ancestors' own
/// history files are not needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The timeline whose history this is.
    pub timeline: u32,
    /// `(ancestor, switch point)`, oldest first, timelines increasing; the
    /// last is the direct parent. Never empty.
    pub ancestors: Vec<(u32, u64)>,
}

impl History {
    /// Where the timeline began: its direct parent and the switch point.
    pub fn branch(&self) -> Branch {
        let (parent, lsn) = *self.ancestors.last().expect("never empty");
        Branch {
            timeline: self.timeline,
            parent,
            lsn,
        }
    }

    /// The way from `timeline` to this one, when `timeline` is an ancestor
    /// left at or after `from`: each timeline replay switches to, with
    /// the switch point where it enters it, ending with this timeline.
    /// `None` when this timeline does not descend from `timeline` at
    /// `from` (PostgreSQL refuses such a target: "requested timeline is
    /// not a child of this server's history").
    fn path_from(&self, timeline: u32, from: u64) -> Option<Vec<(u32, u64)>> {
        let j = self
            .ancestors
            .iter()
            .position(|&(t, lsn)| t == timeline && lsn >= from)?;
        let hops = self.ancestors[j..]
            .iter()
            .enumerate()
            .map(|(k, &(_, lsn))| {
                let next = self
                    .ancestors
                    .get(j + k + 1)
                    .map_or(self.timeline, |&(t, _)| t);
                (next, lsn)
            })
            .collect();
        Some(hops)
    }
}

/// Parses timeline `timeline`'s history file, as PostgreSQL writes it: one
/// line per ancestor, `parentTLI<TAB>switchpoint<TAB>reason`, oldest first
/// (`#` comments and blank lines ignored); the last line is the direct
/// parent. Checks what PostgreSQL checks: the ancestors' timelines
/// increase and are older than `timeline`.
pub fn parse_history_file(timeline: u32, text: &str) -> std::result::Result<History, String> {
    let mut ancestors: Vec<(u32, u64)> = vec![];
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut f = line.split_whitespace();
        let parent: u32 = f
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("bad parent timeline in {line:?}"))?;
        let lsn = f
            .next()
            .and_then(base::parse_lsn)
            .ok_or_else(|| format!("bad switch point in {line:?}"))?;
        if let Some(&(prev, _)) = ancestors.last()
            && parent <= prev
        {
            return Err(format!(
                "timeline {parent} follows {prev}: timelines must increase"
            ));
        }
        ancestors.push((parent, lsn));
    }
    match ancestors.last() {
        None => Err("no entry".to_string()),
        Some(&(parent, _)) if parent >= timeline => Err(format!(
            "parent timeline {parent} is not older than {timeline}"
        )),
        Some(_) => Ok(History {
            timeline,
            ancestors,
        }),
    }
}

/// Parses timeline `timeline`'s history file ([`parse_history_file`]) to
/// where the timeline began.
pub fn parse_history(timeline: u32, text: &str) -> std::result::Result<Branch, String> {
    parse_history_file(timeline, text).map(|h| h.branch())
}

/// A run of missing segments on one timeline, `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// The first missing segment.
    pub first: String,
    /// The last missing segment.
    pub last: String,
    /// How many segments are missing.
    pub segments: u64,
}

/// One timeline's archived segments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Timeline {
    /// The timeline.
    pub timeline: u32,
    /// Its oldest archived segment.
    pub first: String,
    /// Its newest archived segment.
    pub last: String,
    /// Segments archived.
    pub segments: u64,
    /// Segments missing between `first` and `last`.
    pub gaps: Vec<Gap>,
}

/// A base backup checked against the archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupCheck {
    /// What its history file says.
    #[serde(flatten)]
    pub backup: BaseBackup,
    /// Whether every segment from its start to its stop is archived
    /// (without them it cannot be restored at all).
    pub consistent: bool,
    /// The newest segment replay reaches without a gap, on the way to the
    /// newest timeline that descends from the backup's, along that
    /// timeline's history (as recovery with `recovery_target_timeline =
    /// latest` does): the latest point it can be recovered to.
    pub recoverable_to: Option<String>,
    /// The timelines replay goes through, the backup's first.
    pub timelines: Vec<u32>,
    /// The first gap after the backup, if replay stops at one before the
    /// last timeline's newest segment.
    pub first_gap: Option<Gap>,
}

/// A snapshot that holds a base backup, checked against the archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotCheck {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Its time.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The base backup it recorded.
    #[serde(flatten)]
    pub backup: PgBaseBackup,
    /// The segment replay must reach for the backup to be consistent:
    /// from the recorded stop LSN, else from the archived history file of
    /// the same start, else the start segment itself.
    pub stop_wal: String,
    /// Whether every segment from its start to `stop_wal` is archived.
    pub consistent: bool,
    /// The newest segment replay reaches without a gap, following
    /// timelines as for a base backup.
    pub recoverable_to: Option<String>,
    /// The timelines replay goes through, the backup's first.
    pub timelines: Vec<u32>,
    /// The gap replay stops at, if before the last timeline's newest
    /// segment.
    pub first_gap: Option<Gap>,
}

/// What `wal verify` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Segment size in bytes (read from the newest segment).
    pub segment_size: u64,
    /// Per timeline, in order.
    pub timelines: Vec<Timeline>,
    /// Per base backup (from the `.backup` files), oldest first.
    pub backups: Vec<BackupCheck>,
    /// Per snapshot that recorded a base backup, oldest first.
    pub snapshots: Vec<SnapshotCheck>,
    /// Where timelines branched, from their history files.
    pub branches: Vec<Branch>,
    /// Backup and timeline history files that could not be read or parsed.
    pub unreadable: Vec<String>,
}

impl VerifyReport {
    /// Whether the archive is continuous: no gap on any timeline, and
    /// every base backup consistent.
    pub fn is_continuous(&self) -> bool {
        self.timelines.iter().all(|t| t.gaps.is_empty())
            && self.backups.iter().all(|b| b.consistent)
            && self.snapshots.iter().all(|b| b.consistent)
            && self.unreadable.is_empty()
    }
}

/// Checks the archive's continuity: per timeline, which segments are
/// missing between the oldest and the newest; per base backup, whether
/// its own WAL is all there and how far replay can go without a gap.
/// Costs one listing, one get of the newest segment (its size decides the
/// numbering) and one get per backup and timeline history file. Replay
/// heads for the newest timeline that descends from the backup's (a
/// promotion after a point-in-time recovery), along the ancestry in that
/// timeline's history file, switching at each switch point whose segments
/// are there, as PostgreSQL's recovery to the latest timeline does.
pub fn verify(repo: &Repository, snapshots: &[(SnapshotId, Snapshot)]) -> Result<VerifyReport> {
    let files = list(repo)?;
    let segments: Vec<SegmentNo> = files
        .iter()
        .filter_map(|(f, _)| match f {
            WalFile::Segment(s) => Some(*s),
            _ => None,
        })
        .collect();
    let segment_size = match segments.last() {
        Some(s) => {
            let newest = fetch(repo, WalFile::Segment(*s))?.ok_or_else(|| {
                Error::damaged(
                    ObjectKey::of(WalFile::Segment(*s).id()),
                    "listed but gone when read",
                )
            })?;
            newest.data.len() as u64
        }
        None => 16 << 20,
    };
    if !segment_size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&segment_size) {
        return Err(Error::damaged(
            "wal/",
            format!(
                "the newest segment is {segment_size} bytes, not a WAL segment size (a power of two from 1 MiB to 1 GiB)"
            ),
        ));
    }
    let mut timelines: Vec<Timeline> = vec![];
    for s in &segments {
        match timelines.last_mut() {
            Some(t) if t.timeline == s.timeline => {
                let prev = WalFile::parse(&t.last)
                    .and_then(|f| match f {
                        WalFile::Segment(p) => Some(p),
                        _ => None,
                    })
                    .expect("our own name");
                let missing = s.index(segment_size) - prev.index(segment_size) - 1;
                if missing > 0 {
                    let first = prev.next(segment_size);
                    let last = nth(first, missing - 1, segment_size);
                    t.gaps.push(Gap {
                        first: first.name(),
                        last: last.name(),
                        segments: missing,
                    });
                }
                t.last = s.name();
                t.segments += 1;
            }
            _ => timelines.push(Timeline {
                timeline: s.timeline,
                first: s.name(),
                last: s.name(),
                segments: 1,
                gaps: vec![],
            }),
        }
    }
    let have: std::collections::HashSet<SegmentNo> = segments.iter().copied().collect();
    let mut backups = vec![];
    let mut unreadable = vec![];
    let mut histories = vec![];
    for (f, _) in &files {
        let WalFile::History(t) = f else { continue };
        let parsed = fetch(repo, *f)?
            .ok_or_else(|| "listed but gone when read".to_string())
            .and_then(|o| parse_history_file(*t, &String::from_utf8_lossy(&o.data)));
        match parsed {
            Ok(h) => histories.push(h),
            Err(e) => unreadable.push(format!("{}: {e}", f.name())),
        }
    }
    let branches: Vec<Branch> = histories.iter().map(History::branch).collect();
    // where the backup's WAL starts, else (a label we could not read) the
    // start of its first segment
    let replay = |start: SegmentNo, start_lsn: &str, stop| {
        let from = base::parse_lsn(start_lsn).unwrap_or(start.index(segment_size) * segment_size);
        replay_from(
            start,
            from,
            stop,
            &have,
            &timelines,
            &histories,
            segment_size,
        )
    };
    for (f, _) in &files {
        if !matches!(f, WalFile::Backup(..)) {
            continue;
        }
        let parsed = fetch(repo, *f)?
            .ok_or_else(|| "listed but gone when read".to_string())
            .and_then(|o| {
                let text = String::from_utf8_lossy(&o.data).into_owned();
                parse_backup_file(&f.name(), &text)
            });
        let b = match parsed {
            Ok(b) => b,
            Err(e) => {
                unreadable.push(format!("{}: {e}", f.name()));
                continue;
            }
        };
        let r = replay(b.start_segment, &b.start_lsn, b.stop_segment);
        backups.push(BackupCheck {
            backup: b,
            consistent: r.consistent,
            recoverable_to: r.recoverable_to,
            timelines: r.timelines,
            first_gap: r.first_gap,
        });
    }
    let mut checked = vec![];
    for (id, snap) in snapshots {
        for b in &snap.postgres {
            let Some(WalFile::Segment(start)) = WalFile::parse(&b.start_wal) else {
                unreadable.push(format!(
                    "snapshot {}: start WAL {} is not a segment name",
                    id.short(),
                    b.start_wal
                ));
                continue;
            };
            let stop = match b.stop_lsn.as_deref().and_then(base::parse_lsn) {
                Some(lsn) => base::stop_segment(b.timeline, lsn, segment_size),
                None => backups
                    .iter()
                    .find(|h| h.backup.start_lsn == b.start_lsn && h.backup.start_segment == start)
                    .map_or(start, |h| h.backup.stop_segment),
            };
            let r = replay(start, &b.start_lsn, stop);
            checked.push(SnapshotCheck {
                snapshot: *id,
                time: snap.time,
                backup: b.clone(),
                stop_wal: stop.name(),
                consistent: r.consistent,
                recoverable_to: r.recoverable_to,
                timelines: r.timelines,
                first_gap: r.first_gap,
            });
        }
    }
    checked.sort_by_key(|c| c.time);
    Ok(VerifyReport {
        segment_size,
        timelines,
        backups,
        snapshots: checked,
        branches,
        unreadable,
    })
}

/// How far replay from a base backup gets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replay {
    consistent: bool,
    recoverable_to: Option<String>,
    timelines: Vec<u32>,
    first_gap: Option<Gap>,
}

/// Whether every segment from `start` to `stop` is archived, and if so the
/// newest segment replay reaches from there without a gap, with the gap
/// that stops it (when it stops before that timeline's newest segment).
///
/// Replay targets the timeline `recovery_target_timeline = latest` would:
/// the newest one whose history file (in `histories`) has the backup's
/// timeline among its ancestors, left at or after `start_lsn` (where the
/// backup's WAL starts); without one, the backup's own. The path is that
/// target's ancestry from its history file, not the newest branch at each
/// fork: with timelines 2 and 3 both from 1 and 4 from 2, the target is 4
/// and replay goes 1 -> 2 -> 4. Along the path, replay moves to the next
/// timeline when it has reached the segment before the switch point's and
/// the next timeline holds the switch point's segment (which begins with
/// the parent's WAL up to the switch); otherwise it stops on the timeline
/// it is on. A target that leaves the backup's timeline before `stop`
/// leaves the backup inconsistent (its WAL up to `stop` is not on the
/// path).
fn replay_from(
    start: SegmentNo,
    start_lsn: u64,
    stop: SegmentNo,
    have: &std::collections::HashSet<SegmentNo>,
    timelines: &[Timeline],
    histories: &[History],
    segment_size: u64,
) -> Replay {
    let hops = histories
        .iter()
        .filter_map(|h| {
            h.path_from(stop.timeline, start_lsn)
                .map(|p| (h.timeline, p))
        })
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p)
        .unwrap_or_default();
    let inconsistent = Replay {
        consistent: false,
        recoverable_to: None,
        timelines: vec![start.timeline],
        first_gap: None,
    };
    if hops
        .first()
        .is_some_and(|&(_, lsn)| lsn / segment_size < stop.index(segment_size))
    {
        return inconsistent;
    }
    let mut s = start;
    while s.index(segment_size) <= stop.index(segment_size) {
        if !have.contains(&s) {
            return inconsistent;
        }
        s = s.next(segment_size);
    }
    let mut path = vec![stop.timeline];
    let mut last = stop;
    let walk = |mut last: SegmentNo| {
        while have.contains(&last.next(segment_size)) {
            last = last.next(segment_size);
        }
        last
    };
    for (timeline, lsn) in hops {
        last = walk(last);
        let at = lsn / segment_size;
        let first = nth_index(timeline, at, segment_size);
        if last.index(segment_size) + 1 < at || !have.contains(&first) {
            break;
        }
        path.push(timeline);
        last = first;
    }
    let last = walk(last);
    let tl = timelines.iter().find(|t| t.timeline == last.timeline);
    let first_gap = tl.filter(|t| t.last != last.name()).and_then(|t| {
        t.gaps
            .iter()
            .find(|g| g.first == last.next(segment_size).name())
            .cloned()
    });
    Replay {
        consistent: true,
        recoverable_to: Some(last.name()),
        timelines: path,
        first_gap,
    }
}

/// The segment of `timeline` with index `i` (as [`SegmentNo::index`]).
fn nth_index(timeline: u32, i: u64, segment_size: u64) -> SegmentNo {
    let per_log = (1u64 << 32) / segment_size;
    SegmentNo {
        timeline,
        log: (i / per_log) as u32,
        seg: (i % per_log) as u32,
    }
}

/// What `wal push PATH` did, for PostgreSQL's `archive_command`.
#[derive(Debug)]
pub struct PushReport {
    /// The file PostgreSQL asked for.
    pub file: WalFile,
    /// Its outcome; `None` when the spool showed it archived already (by
    /// an earlier call or by the background pusher).
    pub pushed: Option<Pushed>,
    /// Files pushed ahead (ready in `archive_status`), with their outcome.
    pub ahead: Vec<(WalFile, Result<Pushed>)>,
}

/// How `wal push` archives the files PostgreSQL has not asked for yet.
pub enum Ahead<'a> {
    /// Up to `n - 1` more ready files, pushed with this one, `n` at once;
    /// the call returns when all are done.
    Batch(usize),
    /// A background pusher (started through `spawn` when none runs)
    /// works through every ready file, `workers` at once, continuously;
    /// the call returns as soon as its file is recorded as archived.
    Background {
        /// Starts `wal push --pusher` detached (the CLI knows how).
        spawn: &'a dyn Fn() -> Result<()>,
        /// How long to wait for the file before failing.
        timeout: std::time::Duration,
    },
}

/// The WAL file a path names.
fn wal_file_of(path: &std::path::Path) -> Result<WalFile> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{}: not a WAL file's path", path.display())))?;
    WalFile::parse(name).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: {name} is not a WAL file's name (a segment, .partial, .backup or .history file)",
            path.display()
        ))
    })
}

/// The files PostgreSQL has marked ready in `wal_dir/archive_status`,
/// oldest first.
fn ready_files(wal_dir: &std::path::Path) -> Vec<WalFile> {
    let mut v: Vec<WalFile> = match std::fs::read_dir(wal_dir.join("archive_status")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".ready"))
                    .and_then(WalFile::parse)
            })
            .collect(),
        Err(_) => vec![],
    };
    v.sort_by_key(|f| f.id());
    v
}

/// A file's bytes and their hash.
type FileRead = (Vec<u8>, [u8; 32]);

/// Whether the spool shows `path` (as `file`) archived: the file is the
/// one recorded (same stamp, or else the same bytes) and the object is
/// still there with the recorded size (one `head`). Returns the file's
/// bytes and hash when it had to read them.
fn already_pushed(
    backend: &dyn crate::store::backend::Backend,
    spool: &spool::Spool,
    file: WalFile,
    path: &std::path::Path,
    stamp: &spool::FileStamp,
) -> Result<(bool, Option<FileRead>)> {
    use crate::error::IoContext;
    let Some(r) = spool.pushed(file) else {
        return Ok((false, None));
    };
    let there = || backend.head(&ObjectKey::of(file.id())).ok() == Some(r.stored);
    if r.stamp == *stamp {
        return Ok((there(), None));
    }
    let data = std::fs::read(path).at(path)?;
    let hash = wal::file_hash(&data);
    Ok((r.hash == hash && there(), Some((data, hash))))
}

/// Reads (unless given), pushes and records one file.
fn push_and_record(
    repo: &Repository,
    spool: &spool::Spool,
    file: WalFile,
    path: &std::path::Path,
    read: Option<(Vec<u8>, [u8; 32], spool::FileStamp)>,
    mode: CompressionMode,
) -> Result<Pushed> {
    use crate::error::IoContext;
    let (data, hash, stamp) = match read {
        Some(x) => x,
        None => {
            let stamp = spool::FileStamp::of(path)?;
            let d = std::fs::read(path).at(path)?;
            let h = wal::file_hash(&d);
            (d, h, stamp)
        }
    };
    let p = push(repo, file, &data, &hash, mode)?;
    spool.record_pushed(
        file,
        spool::PushRecord {
            hash,
            stored: p.stored(),
            stamp,
        },
    )?;
    Ok(p)
}

/// Archives the file at `path` (named as PostgreSQL names WAL files) for
/// PostgreSQL's `archive_command`, and, as `ahead` says, the files
/// PostgreSQL has marked ready beside it (`../archive_status/*.ready`).
/// Each archived file is recorded in `spool`, so that PostgreSQL's later
/// call for it is answered by a `stat` and one `head` on `backend`,
/// without `open` being called (no key derivation, no repository read).
/// Errors only for the file asked for; a file pushed ahead that failed is
/// pushed again when PostgreSQL asks for it.
pub fn archive_command(
    backend: &dyn crate::store::backend::Backend,
    open: impl FnOnce() -> Result<Repository>,
    spool: &spool::Spool,
    path: &std::path::Path,
    ahead: Ahead,
    mode: CompressionMode,
) -> Result<PushReport> {
    let file = wal_file_of(path)?;
    let stamp = spool::FileStamp::of(path)?;
    let done = |pushed| PushReport {
        file,
        pushed,
        ahead: vec![],
    };
    let (pushed, read) = already_pushed(backend, spool, file, path, &stamp)?;
    if pushed {
        return Ok(done(None));
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let ready = ready_files(dir);
    // records of files PostgreSQL has since marked done are spent
    spool.retain_pushed(|f| ready.contains(&f) || f == file)?;
    let parallel = match ahead {
        // not marked ready (run by hand): nothing in the background
        // would pick it up
        Ahead::Background { spawn, timeout } if ready.contains(&file) => {
            spool.clear_push_error(file);
            let started = std::time::Instant::now();
            let mut spawned: Option<std::time::Instant> = None;
            loop {
                let (pushed, _) = already_pushed(backend, spool, file, path, &stamp)?;
                if pushed {
                    return Ok(done(None));
                }
                if let Some(e) = spool.push_error(file) {
                    spool.clear_push_error(file);
                    return Err(Error::Invalid(format!(
                        "the background pusher could not archive {}: {e}",
                        file.name()
                    )));
                }
                if started.elapsed() > timeout {
                    return Err(Error::Invalid(format!(
                        "{} was not archived within {} s by the background pusher; its errors are in {}",
                        file.name(),
                        timeout.as_secs(),
                        spool.dir().display()
                    )));
                }
                let settled = spawned.is_none_or(|t| t.elapsed().as_millis() > 500);
                if settled && !spool.pusher_running()? {
                    spawn()?;
                    spawned = Some(std::time::Instant::now());
                }
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        }
        Ahead::Background { .. } => 1,
        Ahead::Batch(n) => n.max(1),
    };
    let others: Vec<WalFile> = ready
        .into_iter()
        .filter(|f| *f != file && spool.pushed(*f).is_none())
        .take(parallel - 1)
        .collect();
    let repo = open()?;
    let results: std::sync::Mutex<Vec<(WalFile, Result<Pushed>)>> = Default::default();
    let read = std::sync::Mutex::new(Some(read.map(|(d, h)| (d, h, stamp))));
    let mut jobs = vec![file];
    jobs.extend(&others);
    crate::host::threads::for_each_concurrent(&jobs, parallel, |f| {
        let given = if *f == file {
            read.lock().unwrap().take().flatten()
        } else {
            None
        };
        let r = push_and_record(&repo, spool, *f, &dir.join(f.name()), given, mode);
        results.lock().unwrap().push((*f, r));
        Ok(())
    })?;
    let mut results = results.into_inner().unwrap();
    let at = results
        .iter()
        .position(|(f, _)| *f == file)
        .expect("the file asked for was pushed");
    let (_, mine) = results.remove(at);
    results.sort_by_key(|(f, _)| f.id());
    Ok(PushReport {
        file,
        pushed: Some(mine?),
        ahead: results,
    })
}

/// The background pusher of `wal push --async` (run as `wal push
/// --pusher`, detached): holds the spool's pusher lock (or returns at once
/// when another pusher holds it), opens the repository once, and archives
/// every file PostgreSQL marks ready in `wal_dir`, `workers` at a time,
/// until none has been new for `idle`. A file it cannot archive gets an
/// error record that the waiting `wal push` reports (and clears, so that
/// PostgreSQL's retry starts afresh). Returns the files archived.
pub fn run_pusher(
    open: impl FnOnce() -> Result<Repository>,
    spool: &spool::Spool,
    wal_dir: &std::path::Path,
    workers: usize,
    idle: std::time::Duration,
    mode: CompressionMode,
) -> Result<usize> {
    let Some(_lock) = spool.lock_pusher()? else {
        return Ok(0);
    };
    let repo = match open() {
        Ok(r) => r,
        Err(e) => {
            // every waiting push reports why
            for f in ready_files(wal_dir) {
                spool.record_push_error(f, &e.to_string());
            }
            return Err(e);
        }
    };
    let mut archived = 0;
    let mut quiet_since = std::time::Instant::now();
    loop {
        let todo: Vec<WalFile> = ready_files(wal_dir)
            .into_iter()
            .filter(|f| spool.pushed(*f).is_none() && spool.push_error(*f).is_none())
            .collect();
        if todo.is_empty() {
            if quiet_since.elapsed() > idle {
                return Ok(archived);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::host::threads::for_each_concurrent(&todo, workers.max(1), |f| {
            match push_and_record(&repo, spool, *f, &wal_dir.join(f.name()), None, mode) {
                Ok(_) => {
                    n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => spool.record_push_error(*f, &e.to_string()),
            }
            Ok(())
        })?;
        archived += n.into_inner();
        quiet_since = std::time::Instant::now();
    }
}

/// What `wal fetch NAME DEST` did, for PostgreSQL's `restore_command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Written to the destination; `prefetched` more segments spooled.
    Restored {
        /// From the spool (read ahead by an earlier fetch) or not.
        from_spool: bool,
        /// Segments read ahead into the spool by this call.
        prefetched: usize,
    },
    /// The archive does not hold it (PostgreSQL asks for files that may
    /// not exist, such as the next timeline's history: this is an answer,
    /// not a failure of arca).
    Missing,
}

/// Restores archived `name` to `dest` (written whole or not at all). A
/// segment found in `spool` costs no store access; otherwise the
/// repository is opened and the segment is read with up to `prefetch`
/// following segments of its timeline at once, those spooled for the
/// calls to come.
pub fn restore_command(
    open: impl FnOnce() -> Result<Repository>,
    spool: &spool::Spool,
    name: &str,
    dest: &std::path::Path,
    prefetch: usize,
) -> Result<Fetched> {
    let file = WalFile::parse(name).ok_or_else(|| {
        Error::Invalid(format!(
            "{name} is not a WAL file's name (a segment, .partial, .backup or .history file)"
        ))
    })?;
    if spool.take_fetched(file, dest)? {
        return Ok(Fetched::Restored {
            from_spool: true,
            prefetched: 0,
        });
    }
    let repo = open()?;
    let WalFile::Segment(seg) = file else {
        return Ok(match fetch(&repo, file)? {
            Some(o) => {
                spool::write_atomically(dest, &o.data)?;
                Fetched::Restored {
                    from_spool: false,
                    prefetched: 0,
                }
            }
            None => Fetched::Missing,
        });
    };
    // replay has moved past whatever is spooled before this segment
    spool.retain_fetched(|f| match f {
        WalFile::Segment(s) => s.timeline != seg.timeline || s > seg,
        _ => false,
    })?;
    // the segment size only decides how names roll over to the next log;
    // 16 MiB, PostgreSQL's default, is assumed
    let size_hint = 16 << 20;
    let mut names = vec![file];
    let mut s = seg;
    for _ in 0..prefetch {
        s = s.next(size_hint);
        names.push(WalFile::Segment(s));
    }
    let got: std::sync::Mutex<Vec<(WalFile, Option<WalObject>)>> = Default::default();
    crate::host::threads::for_each_concurrent(&names, names.len(), |f| {
        // a prefetch that fails is only a missed shortcut
        let r = match fetch(&repo, *f) {
            Ok(o) => o,
            Err(e) if *f == file => return Err(e),
            Err(_) => None,
        };
        got.lock().unwrap().push((*f, r));
        Ok(())
    })?;
    let mut got = got.into_inner().unwrap();
    got.sort_by_key(|(f, _)| f.id());
    let mut it = got.into_iter();
    let Some((_, Some(mine))) = it.next() else {
        return Ok(Fetched::Missing);
    };
    // spooled under its own name, a file is right for that name whatever
    // the segment size: a wrong guess at the numbering only reads nothing
    let mut prefetched = 0;
    for (f, o) in it {
        let Some(o) = o else { break };
        spool.store_fetched(f, &o.data)?;
        prefetched += 1;
    }
    spool::write_atomically(dest, &mine.data)?;
    Ok(Fetched::Restored {
        from_spool: false,
        prefetched,
    })
}

/// The segment `n` after `s`.
fn nth(s: SegmentNo, n: u64, segment_size: u64) -> SegmentNo {
    nth_index(s.timeline, s.index(segment_size) + n, segment_size)
}

/// The oldest segment that a snapshot's base backup needs (its start),
/// over every timeline: what [`forget_before`] may cut at so that each of
/// these snapshots can still be recovered. `None` when no snapshot
/// records a base backup. A base backup being taken now starts later than
/// any of them, so its WAL is kept too.
pub fn oldest_needed(snapshots: &[(SnapshotId, Snapshot)]) -> Option<SegmentNo> {
    snapshots
        .iter()
        .flat_map(|(_, s)| &s.postgres)
        .filter_map(|b| match WalFile::parse(&b.start_wal) {
            Some(WalFile::Segment(s)) => Some(s),
            _ => None,
        })
        .min_by_key(|s| (s.log, s.seg))
}

/// Deletes archived segments (and partial segments and backup files) that
/// come before `oldest` on every timeline: what no base backup from
/// `oldest` on needs. History files are kept (they are tiny and recovery
/// reads them to follow timelines). Returns the files deleted.
pub fn forget_before(repo: &Repository, oldest: SegmentNo, dry_run: bool) -> Result<Vec<WalFile>> {
    let doomed: Vec<WalFile> = list(repo)?
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| match f {
            WalFile::Segment(s) | WalFile::Partial(s) | WalFile::Backup(s, _) => {
                (s.log, s.seg) < (oldest.log, oldest.seg)
            }
            WalFile::History(_) => false,
        })
        .collect();
    if !dry_run {
        crate::host::threads::for_each_concurrent(&doomed, 8, |f| {
            repo.backend().delete(&ObjectKey::of(f.id()))
        })?;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_history_files_parse() {
        let text = format!(
            "{}STOP WAL LOCATION: 0/3000100 (file 000000010000000000000003)\n",
            base::tests::LABEL
        );
        let b = parse_backup_file("000000010000000000000002.00000028.backup", &text).unwrap();
        assert_eq!(b.start_lsn, "0/2000028");
        assert_eq!(b.stop_segment.name(), "000000010000000000000003");
        assert_eq!(b.label, "pg_basebackup base backup");
        assert!(parse_backup_file("x", "LABEL: x\n").is_err());
    }

    #[test]
    fn nth_crosses_logs() {
        let s = WalFile::parse("0000000100000000000000FE").unwrap();
        let WalFile::Segment(s) = s else { panic!() };
        assert_eq!(nth(s, 3, 16 << 20).name(), "000000010000000100000001");
    }

    fn seg(name: &str) -> SegmentNo {
        match WalFile::parse(name) {
            Some(WalFile::Segment(s)) => s,
            _ => panic!("{name}"),
        }
    }

    #[test]
    fn history_files_parse_to_their_direct_parent() {
        let text = "1\t0/3000000\tno recovery target specified\n\n2\t0/5A0000D8\tbefore 2026-12-03 08:00:00+00\n";
        assert_eq!(
            parse_history(3, text),
            Ok(Branch {
                timeline: 3,
                parent: 2,
                lsn: 0x5A00_00D8
            })
        );
        assert!(parse_history(2, "# nothing\n").is_err());
        assert!(
            parse_history(2, "3\t0/1\tx").is_err(),
            "a parent must be older"
        );
    }

    #[test]
    fn replay_follows_the_timeline_that_branched_from_it() {
        let size = 16 << 20;
        // timeline 1: segments 2..=6; at 0/5800028 (in segment 5) the
        // recovery ended and timeline 2 began with its segment 5, then 6, 7
        let names = [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
            "000000010000000000000006",
            "000000020000000000000005",
            "000000020000000000000006",
            "000000020000000000000007",
        ];
        let have: std::collections::HashSet<SegmentNo> = names.iter().map(|n| seg(n)).collect();
        let t1 = parse_history_file(2, "1\t0/5800028\tno recovery target specified\n").unwrap();
        let start = seg("000000010000000000000002");
        let from = 0x0200_0028;
        let stop = seg("000000010000000000000003");
        let t1 = std::slice::from_ref(&t1);
        let r = replay_from(start, from, stop, &have, &[], t1, size);
        assert!(r.consistent);
        assert_eq!(r.timelines, [1, 2]);
        assert_eq!(
            r.recoverable_to.as_deref(),
            Some("000000020000000000000007")
        );
        // without the history file, replay stays on timeline 1
        let r = replay_from(start, from, stop, &have, &[], &[], size);
        assert_eq!(
            r.recoverable_to.as_deref(),
            Some("000000010000000000000006")
        );
        // a gap on timeline 1 before the branch point: no way onto 2
        let mut gappy = have.clone();
        gappy.remove(&seg("000000010000000000000004"));
        let r = replay_from(start, from, stop, &gappy, &[], t1, size);
        assert_eq!(
            (r.recoverable_to.as_deref(), &r.timelines[..]),
            (Some("000000010000000000000003"), &[1][..])
        );
        // a branch before the backup stopped does not descend from it
        let late = seg("000000010000000000000006");
        let r = replay_from(late, 0x0600_0028, late, &have, &[], t1, size);
        assert_eq!(r.timelines, [1]);
    }

    #[test]
    fn history_files_give_the_whole_ancestry() {
        let text = "1\t0/5000028\tno recovery target specified\n\n2\t0/8000028\tno recovery target specified\n";
        let h = parse_history_file(4, text).unwrap();
        assert_eq!(h.ancestors, [(1, 0x0500_0028), (2, 0x0800_0028)]);
        assert_eq!(
            h.path_from(1, 0x0200_0028).unwrap(),
            [(2, 0x0500_0028), (4, 0x0800_0028)]
        );
        assert_eq!(h.path_from(2, 0).unwrap(), [(4, 0x0800_0028)]);
        assert_eq!(h.path_from(1, 0x0600_0000), None, "left before the backup");
        assert_eq!(h.path_from(3, 0), None, "not an ancestor");
        assert!(
            parse_history_file(4, "2\t0/1\tx\n1\t0/2\ty\n").is_err(),
            "timelines must increase"
        );
    }

    #[test]
    fn replay_targets_the_newest_timeline_through_its_own_history() {
        let size = 16 << 20;
        // timelines 2 (at 0/5000028) and 3 (at 0/7000028) both branch
        // from 1; 4 branches from 2 at 0/8000028. Timeline 3 goes furthest,
        // but recovery to the latest timeline targets 4: 1 -> 2 -> 4.
        let mut have: std::collections::HashSet<SegmentNo> = std::collections::HashSet::new();
        for (tl, segs) in [(1, 2..=8), (2, 5..=9), (3, 7..=12), (4, 8..=10)] {
            for i in segs {
                have.insert(nth_index(tl, i, size));
            }
        }
        let h2 = "1\t0/5000028\tno recovery target specified\n";
        let h3 = "1\t0/7000028\tbefore 2026-12-03 08:00:00+00\n";
        let h4 = "1\t0/5000028\tno recovery target specified\n\n2\t0/8000028\tno recovery target specified\n";
        let histories: Vec<History> = [(2, h2), (3, h3), (4, h4)]
            .into_iter()
            .map(|(t, h)| parse_history_file(t, h).unwrap())
            .collect();
        let start = seg("000000010000000000000002");
        let stop = seg("000000010000000000000003");
        let from = 0x0200_0028;
        let r = replay_from(start, from, stop, &have, &[], &histories, size);
        assert!(r.consistent);
        assert_eq!(r.timelines, [1, 2, 4]);
        assert_eq!(
            r.recoverable_to.as_deref(),
            Some("00000004000000000000000A")
        );
        // timeline 4's history file alone gives the way there
        let r = replay_from(start, from, stop, &have, &[], &histories[1..], size);
        assert_eq!(r.timelines, [1, 2, 4]);
        // the target's first segment missing: replay ends on timeline 2
        let mut gappy = have.clone();
        gappy.remove(&seg("000000040000000000000008"));
        let r = replay_from(start, from, stop, &gappy, &[], &histories, size);
        assert_eq!(
            (r.recoverable_to.as_deref(), &r.timelines[..]),
            (Some("000000020000000000000009"), &[1, 2][..])
        );
        // a backup that starts after 2 left 1: 4 is not its child, 3 is
        let late = seg("000000010000000000000006");
        let r = replay_from(late, 0x0600_0028, late, &have, &[], &histories, size);
        assert_eq!(
            (r.recoverable_to.as_deref(), &r.timelines[..]),
            (Some("00000003000000000000000C"), &[1, 3][..])
        );
        // ... and one whose WAL goes on on 1 after 3 left it is not
        // consistent on the way to 3
        let stop = seg("000000010000000000000008");
        let r = replay_from(late, 0x0600_0028, stop, &have, &[], &histories, size);
        assert!(!r.consistent);
    }
}
