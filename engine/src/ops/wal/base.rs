//! PostgreSQL base backups among backup sources: a source directory with a
//! `backup_label` at its root (what `pg_basebackup -Fp` writes, and what
//! the low-level backup API asks to be saved with the copy) is recorded in
//! the snapshot with the WAL its recovery needs (`format::snapshot::
//! PgBaseBackup`), so that `wal verify` can check that WAL for each
//! snapshot and `wal forget` can keep it.
//!
//! Reads two small files per source directory; never fails a backup (a
//! label that does not parse becomes a warning in the snapshot).

use std::path::Path;

use crate::format::snapshot::{PgBaseBackup, SourceError};
use crate::format::wal::{SegmentNo, WalFile};

/// A `START/STOP WAL LOCATION` line's value: `0/2000028 (file
/// 000000010000000000000002)`, as PostgreSQL writes it in backup labels
/// and backup history files.
pub fn parse_location(v: &str) -> Option<(String, SegmentNo)> {
    let (lsn, rest) = v.split_once(" (file ")?;
    let seg = match WalFile::parse(rest.strip_suffix(')')?)? {
        WalFile::Segment(s) => s,
        _ => return None,
    };
    parse_lsn(lsn)?;
    Some((lsn.to_string(), seg))
}

/// An LSN as PostgreSQL prints it (`X/Y`, two hexadecimal halves).
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// The segment on `timeline` that holds the byte before `lsn`: where
/// replay must get to for a backup that stopped at `lsn` to be
/// consistent (PostgreSQL names a backup's stop segment the same way).
pub fn stop_segment(timeline: u32, lsn: u64, segment_size: u64) -> SegmentNo {
    super::nth_index(timeline, lsn.saturating_sub(1) / segment_size, segment_size)
}

/// `KEY: value` from a label or history file.
pub fn field<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        .map(str::trim)
}

/// Parses a `backup_label` (and, when given, the `backup_manifest` beside
/// it, whose `WAL-Ranges` say where the backup stopped).
pub fn parse_label(
    path: &str,
    label: &str,
    manifest: Option<&str>,
) -> Result<PgBaseBackup, String> {
    let start = field(label, "START WAL LOCATION").ok_or("no START WAL LOCATION")?;
    let (start_lsn, start_segment) =
        parse_location(start).ok_or_else(|| format!("START WAL LOCATION: {start}"))?;
    let timeline = match field(label, "START TIMELINE") {
        Some(t) => t.parse().map_err(|_| format!("START TIMELINE: {t}"))?,
        None => start_segment.timeline,
    };
    let stop_lsn = match manifest {
        Some(m) => manifest_stop(m, timeline)?,
        None => None,
    };
    Ok(PgBaseBackup {
        path: path.to_string(),
        timeline,
        start_lsn,
        start_wal: start_segment.name(),
        stop_lsn,
        label: field(label, "LABEL").unwrap_or_default().to_string(),
    })
}

/// The `End-LSN` of the last WAL range on `timeline` in a backup manifest.
fn manifest_stop(manifest: &str, timeline: u32) -> Result<Option<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(manifest).map_err(|e| format!("backup_manifest: {e}"))?;
    let Some(ranges) = v.get("WAL-Ranges").and_then(|r| r.as_array()) else {
        return Ok(None);
    };
    let end = ranges
        .iter()
        .filter(|r| r.get("Timeline").and_then(|t| t.as_u64()) == Some(u64::from(timeline)))
        .filter_map(|r| r.get("End-LSN").and_then(|e| e.as_str()))
        .next_back();
    match end {
        Some(e) if parse_lsn(e).is_some() => Ok(Some(e.to_string())),
        Some(e) => Err(format!("backup_manifest: End-LSN {e}")),
        None => Ok(None),
    }
}

/// Looks for a base backup at the root of each source directory. Returns
/// the ones found, and a warning for each label that does not parse.
pub fn detect(paths: &[String]) -> (Vec<PgBaseBackup>, Vec<SourceError>) {
    let (mut found, mut warnings) = (vec![], vec![]);
    for p in paths {
        let dir = Path::new(p);
        let Ok(label) = std::fs::read_to_string(dir.join("backup_label")) else {
            continue;
        };
        let manifest = std::fs::read_to_string(dir.join("backup_manifest")).ok();
        match parse_label(p, &label, manifest.as_deref()) {
            Ok(b) => found.push(b),
            Err(e) => warnings.push(SourceError {
                path: dir.join("backup_label").to_string_lossy().into_owned(),
                error: format!(
                    "looks like a PostgreSQL base backup, but {e}: its WAL is not recorded"
                ),
            }),
        }
    }
    (found, warnings)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A `backup_label` as pg_basebackup writes it (a history file holds
    /// the same lines and a `STOP WAL LOCATION`).
    pub(in crate::ops::wal) const LABEL: &str = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                         CHECKPOINT LOCATION: 0/2000060\n\
                         BACKUP METHOD: streamed\n\
                         BACKUP FROM: primary\n\
                         START TIME: 2026-12-03 08:00:00 UTC\n\
                         LABEL: pg_basebackup base backup\n\
                         START TIMELINE: 1\n";

    #[test]
    fn labels_and_manifests_parse() {
        let m = r#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
                    "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000100"}]}"#;
        let b = parse_label("/b", LABEL, Some(m)).unwrap();
        assert_eq!(b.start_wal, "000000010000000000000002");
        assert_eq!(b.stop_lsn.as_deref(), Some("0/3000100"));
        assert_eq!(b.timeline, 1);
        assert_eq!(b.label, "pg_basebackup base backup");
        assert_eq!(parse_label("/b", LABEL, None).unwrap().stop_lsn, None);
        assert!(parse_label("/b", "LABEL: x\n", None).is_err());
        assert!(parse_label("/b", LABEL, Some("{")).is_err());
    }

    #[test]
    fn a_stop_on_a_segment_boundary_belongs_to_the_segment_before() {
        let size = 16 << 20;
        assert_eq!(
            stop_segment(1, 0x3000100, size).name(),
            "000000010000000000000003"
        );
        assert_eq!(
            stop_segment(1, 0x3000000, size).name(),
            "000000010000000000000002"
        );
        assert_eq!(
            stop_segment(2, parse_lsn("1/0").unwrap(), size).name(),
            "0000000200000000000000FF"
        );
        assert_eq!(parse_lsn("0/zz"), None);
    }
}
