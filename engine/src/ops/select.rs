//! Choosing snapshots: by id prefix, `latest`, or a point in time, within
//! filters on host, tags and paths.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};
use crate::format::id::SnapshotId;
use crate::format::snapshot::Snapshot;

/// Filters every selection applies.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Any of these hosts (empty: any host).
    pub hosts: Vec<String>,
    /// Each entry is a comma-separated set that must all be present; a
    /// snapshot matches if any entry matches (restic's `--tag a,b --tag c`).
    pub tags: Vec<String>,
    /// All these paths must be among the snapshot's paths.
    pub paths: Vec<String>,
}

impl Filter {
    /// Whether a snapshot passes.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.host))
            && (self.tags.is_empty()
                || self.tags.iter().any(|set| {
                    set.split(',')
                        .filter(|t| !t.is_empty())
                        .all(|t| s.tags.iter().any(|x| x == t))
                }))
            && self.paths.iter().all(|p| s.paths.iter().any(|x| x == p))
    }
}

/// Which snapshot a command means.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// The newest that passes the filter.
    Latest,
    /// The one whose id starts with these hex digits.
    Prefix(String),
    /// The newest at or before this time that passes the filter.
    At(DateTime<Utc>),
}

impl Selector {
    /// `latest` or an id prefix.
    pub fn parse(s: &str) -> Result<Self> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "'{s}' is not a snapshot id: give 'latest' or hex digits of an id"
            )));
        }
        Ok(Self::Prefix(s.to_ascii_lowercase()))
    }
}

/// Picks one snapshot from `all` (any order).
pub fn select<'a>(
    all: &'a [(SnapshotId, Snapshot)],
    sel: &Selector,
    filter: &Filter,
) -> Result<&'a (SnapshotId, Snapshot)> {
    let newest = |it: &mut dyn Iterator<Item = &'a (SnapshotId, Snapshot)>| {
        it.max_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)))
    };
    match sel {
        Selector::Latest => newest(&mut all.iter().filter(|(_, s)| filter.matches(s)))
            .ok_or_else(|| Error::NoSnapshot(describe("latest", filter))),
        Selector::At(t) => newest(
            &mut all
                .iter()
                .filter(|(_, s)| filter.matches(s) && s.time <= *t),
        )
        .ok_or_else(|| {
            Error::NoSnapshot(describe(
                &format!("at or before {}", t.to_rfc3339()),
                filter,
            ))
        }),
        Selector::Prefix(p) => {
            let m: Vec<_> = all
                .iter()
                .filter(|(id, s)| id.to_hex().starts_with(p.as_str()) && filter.matches(s))
                .collect();
            match m.len() {
                0 => Err(Error::NoSnapshot(describe(&format!("id {p}"), filter))),
                1 => Ok(m[0]),
                n => Err(Error::AmbiguousSnapshot {
                    prefix: p.clone(),
                    count: n,
                }),
            }
        }
    }
}

fn describe(what: &str, f: &Filter) -> String {
    let mut s = what.to_string();
    if !f.hosts.is_empty() {
        s += &format!(" with host {}", f.hosts.join("|"));
    }
    if !f.tags.is_empty() {
        s += &format!(" with tags {}", f.tags.join("|"));
    }
    if !f.paths.is_empty() {
        s += &format!(" with paths {}", f.paths.join(", "));
    }
    s
}

/// Parses RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` (also with a `T`) in local
/// time. A date alone means the end of that day.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = |n: NaiveDateTime| {
        Local
            .from_local_datetime(&n)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt)
            && let Some(t) = local(n)
        {
            return Ok(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_nano_opt(23, 59, 59, 999_999_999).and_then(local)
    {
        return Ok(t);
    }
    Err(Error::Invalid(format!(
        "cannot read time '{s}': use RFC 3339 (2026-11-22T10:00:00Z) or YYYY-MM-DD[ HH:MM[:SS]]"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::id::BlobId;

    fn snap(t: &str, host: &str, tags: &[&str]) -> Snapshot {
        Snapshot {
            time: parse_time(t).unwrap(),
            host: host.into(),
            username: String::new(),
            paths: vec!["/data".into()],
            tags: tags.iter().map(|s| s.to_string()).collect(),
            tree: BlobId::default(),
            parent: None,
            original: None,
            program_version: String::new(),
            partial: false,
            errors: vec![],
            warnings: vec![],
            summary: Default::default(),
            postgres: vec![],
            checks: vec![],
            base: Default::default(),
        }
    }

    #[test]
    fn selection() {
        let all = vec![
            (
                SnapshotId([1; 32]),
                snap("2026-01-01T00:00:00Z", "a", &["x"]),
            ),
            (
                SnapshotId([2; 32]),
                snap("2026-01-02T00:00:00Z", "b", &["x", "y"]),
            ),
            (
                SnapshotId([0x13; 32]),
                snap("2026-01-03T00:00:00Z", "a", &[]),
            ),
        ];
        let f = Filter::default();
        assert_eq!(
            select(&all, &Selector::Latest, &f).unwrap().0,
            SnapshotId([0x13; 32])
        );
        let at = Selector::At(parse_time("2026-01-02T12:00:00Z").unwrap());
        assert_eq!(select(&all, &at, &f).unwrap().0, SnapshotId([2; 32]));
        let fa = Filter {
            hosts: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(select(&all, &at, &fa).unwrap().0, SnapshotId([1; 32]));
        let ft = Filter {
            tags: vec!["x,y".into()],
            ..Default::default()
        };
        assert_eq!(
            select(&all, &Selector::Latest, &ft).unwrap().0,
            SnapshotId([2; 32])
        );
        assert!(select(&all, &Selector::At(parse_time("2025-01-01").unwrap()), &f).is_err());
        assert!(matches!(
            select(&all, &Selector::parse("0").unwrap(), &f),
            Err(Error::AmbiguousSnapshot { .. })
        ));
        assert_eq!(
            select(&all, &Selector::parse("0202").unwrap(), &f)
                .unwrap()
                .0,
            SnapshotId([2; 32])
        );
        assert!(Selector::parse("xyz").is_err());
    }

    #[test]
    fn times() {
        assert!(parse_time("2026-11-22T10:00:00Z").is_ok());
        assert!(parse_time("2026-11-22 10:00").is_ok());
        assert!(parse_time("2026-11-22 10:00:05").is_ok());
        assert!(parse_time("2026-11-22").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}
