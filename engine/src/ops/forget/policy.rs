//! Retention policy for `forget`: which snapshots a policy keeps, with
//! restic's semantics.
//!
//! # What this module owns
//!
//! The pure decision part of `forget`. Given snapshot metadata (time, host,
//! paths, tags) and a [`Policy`], it says which snapshots are kept, which are
//! removed, and why each kept one was kept. It does no I/O and prints nothing:
//! loading snapshots, filtering them by `--host`/`--tag`/`--path`, printing and
//! deleting belong to the caller.
//!
//! # Contract
//!
//! The behaviour is that of restic 0.14.0 (the version Debian 12 ships),
//! `internal/restic/snapshot_policy.go`, `duration.go`, `snapshot_group.go`,
//! `tag_list.go` and `cmd/restic/cmd_forget.go`. It was checked against the
//! real `restic forget --dry-run --json` binary on irregular snapshot series
//! (see the harness kept outside this repository). Where restic's behaviour is
//! arguably wrong, the comment says so and the code still matches it. Where
//! newer restic behaves differently, the comment says so too (search for
//! "Newer restic").
//!
//! In short:
//!
//! * Snapshots are processed newest first. The sort is *stable*: snapshots with
//!   exactly equal times keep the order the caller passed them in. restic
//!   passes them in the order it loaded them: the backend's listing order
//!   (for a local repository the directory's readdir order, not id order),
//!   now and then perturbed by the race between its parallel loaders. So
//!   which of two equal-time snapshots restic keeps is not even reproducible
//!   by restic; any fixed order is one restic could have produced. Callers
//!   that want reproducible output should pass snapshots in a fixed order
//!   (e.g. by id).
//! * `keep_last`/`keep_hourly`/... ("count rules") walk the list and keep the
//!   newest snapshot of each bucket (hour, day, ISO week, month, year; for
//!   `keep_last` every snapshot is its own bucket) until the rule's count is
//!   used up, so `keep_daily 7` keeps the newest snapshot of each of the 7
//!   newest days *that have snapshots* (not of the last 7 calendar days). A
//!   bucket is "new" when it differs from the bucket of the snapshot this
//!   rule kept last. Arguably surprising, and fixed in newer restic (0.18+):
//!   when the list runs out with counts left, 0.14 does not keep the oldest
//!   snapshot.
//! * `keep_within` keeps every snapshot strictly newer than the newest
//!   snapshot of the group minus the span: relative to the newest snapshot
//!   that is not in the future, *not* to now; see [`Span`] for the calendar
//!   arithmetic (Go's `AddDate`). `keep_within_daily` etc. keep the newest
//!   snapshot of each bucket inside that span, without a count.
//! * `keep_tags` keeps every snapshot that has all tags of at least one of the
//!   tag lists (see [`has_tags`] for the empty-tag quirk). Tag-kept snapshots
//!   still take part in (and use up) the count rules.
//! * Every rule is evaluated for every snapshot; a snapshot is kept if any rule
//!   matches, and its [`KeepReason`] lists every rule that matched, with the
//!   counts left.
//!
//! # Time zone
//!
//! Buckets (hour, day, ISO week, month, year) and the calendar part of spans
//! are computed on the wall clock of each snapshot's time *as the caller
//! gives it*: [`Candidate::time`] is a `chrono::DateTime<Tz>` for any
//! `TimeZone` (`Utc`, `FixedOffset`, `Local`, a `chrono_tz::Tz`, ...), so the
//! caller chooses the zone and tests are deterministic. arca stores UTC; to
//! behave like restic on the same machine, convert with
//! `time.with_timezone(&chrono::Local)`.
//!
//! This is exactly restic's model, which is *not* simply "the machine's local
//! zone": a Go `time.Time` carries its own location, and restic's snapshot
//! times come from JSON, where Go keeps the UTC offset *recorded in the
//! snapshot*. If that offset is the one the machine's local zone has at that
//! instant, Go attaches the full local zone (DST rules included); otherwise a
//! fixed zone with the recorded offset. So a snapshot made with `TZ=UTC` is
//! bucketed in UTC by restic even on a machine in Berlin, and a Berlin
//! snapshot read on a UTC machine is bucketed at +01:00/+02:00 with
//! `keep_within` arithmetic at the newest snapshot's fixed offset. To
//! reproduce that, pass `DateTime<FixedOffset>` values with the recorded
//! offsets. Each bucket uses the candidate's own offset; span arithmetic uses
//! the zone of the newest (non-future) candidate.
//!
//! # JSON
//!
//! `restic forget --json` (0.14) prints one line: an array with one object per
//! group (in random order), or nothing at all when the policy is empty:
//!
//! ```text
//! [{"tags":null,"host":"gamma","paths":["/data/b"],
//!   "keep":[{"time":"2031-05-05T10:00:00Z","parent":"6f85..","tree":"0ba5..",
//!            "paths":["/data/b"],"hostname":"gamma","username":"root",
//!            "id":"b7f2..","short_id":"b7f26ead"}, ...],
//!   "remove":[{...same shape...}, ...],
//!   "reasons":[{"snapshot":{"time":"2031-05-05T10:00:00Z","parent":"6f85..",
//!                "tree":"0ba5..","paths":["/data/b"],"hostname":"gamma",
//!                "username":"root"},
//!               "matches":["daily snapshot","weekly snapshot","monthly snapshot"],
//!               "counters":{"daily":6,"weekly":3,"monthly":11}}, ...]}]
//! ```
//!
//! `tags`/`paths` are `null` and `host` is `""` when not grouped on; `keep`,
//! `remove` and `reasons` are `null` when empty; `reasons[i]` is about
//! `keep[i]`; in 0.14 `reasons[].snapshot` has no `id`/`short_id` (newer
//! restic (0.17+) adds them). [`KeepReason`] serializes as one element of
//! `reasons` (`counters` that are zero are left out, as Go's `omitempty`
//! does, in restic's key order); put the CLI's snapshot JSON in with
//! [`KeepReason::map_snapshot`]. [`GroupKey`] serializes like restic's
//! `SnapshotGroupKey` (`{"hostname","paths","tags"}`, as in `restic snapshots
//! --json` groups); the forget group object spells the same fields
//! `"host"`, `"paths"`, `"tags"`.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ---------------------------------------------------------------------------
// Span (restic.Duration)
// ---------------------------------------------------------------------------

/// A calendar span such as `1y2m3d4h` (restic's `restic.Duration`): years,
/// months, days and hours, each kept separately (not normalised: `25h` stays
/// 25 hours, `14m` stays 14 months).
///
/// The fields are `i64` because restic's are Go `int`s (64 bit) and restic
/// 0.14 accepts negative values (`-1d`), see [`Span::parse`].
///
/// Subtracting a span from a time (what `keep_within*` does) follows Go's
/// `t.AddDate(-years, -months, -days).Add(-hours * time.Hour)`:
/// * years, months and days are applied to the wall-clock date *together* and
///   the result is normalised the Go way, so the day overflows into the next
///   month instead of being clamped: 2023-03-31 minus `1m` is "2023-02-31",
///   i.e. 2023-03-03; 2024-02-29 minus `1y` is 2023-03-01. (Arguably wrong —
///   "one month before March 31" would more naturally be February 28 — but
///   that is restic.) The time of day is kept as wall-clock time, so across a
///   DST change `1d` is 23 or 25 real hours.
/// * hours are subtracted afterwards as absolute time (`24h` is always 24 real
///   hours, unlike `1d`). Go computes `time.Hour * -hours` in wrapping 64-bit
///   nanoseconds, so more than about 2,562,047 hours (292 years) wraps around;
///   this is reproduced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    pub hours: i64,
}

impl Span {
    /// The empty span: as a policy option it means "rule not set".
    pub const ZERO: Span = Span {
        years: 0,
        months: 0,
        days: 0,
        hours: 0,
    };

    /// Parses restic's duration syntax: a sequence of `<number><unit>` with
    /// unit `y`, `m`, `d` or `h` (lower case only), e.g. `1y2m3d4h`.
    ///
    /// Exactly as restic 0.14's `ParseDuration`:
    /// * surrounding white space is trimmed, none is allowed inside
    ///   (`"1d 2h"` is an error);
    /// * the empty string is the zero span (no error);
    /// * units may come in any order and repeat; a repeated unit overwrites
    ///   the earlier value (`1d2d` is 2 days);
    /// * each number may have one leading `-` (negative values are accepted
    ///   by 0.14; newer restic (0.16+) rejects negative spans in `forget`);
    ///   `+` is not accepted; leading zeros are;
    /// * a number without unit (`5`), a unit without number (`d`) and an
    ///   unknown unit (`1x`, `1D`, `1w`) are errors.
    ///
    /// Where restic 0.14 panics — a number made of non-ASCII digits such as
    /// `1²d` (Go's `unicode.IsNumber` accepts them, `strconv.Atoi` does not)
    /// or a number that does not fit in 64 bits — this returns an error.
    /// (Newer restic (0.19) only takes ASCII digits, so `1²d` is "invalid
    /// unit" there; an error either way.)
    pub fn parse(input: &str) -> Result<Span, String> {
        let mut span = Span::ZERO;
        // Go's strings.TrimSpace and Rust's str::trim both trim Unicode
        // White_Space.
        let mut s = input.trim();
        while !s.is_empty() {
            let (num, rest) = next_number(s)?;
            let unit = match rest.as_bytes().first() {
                None => return Err(format!("no unit found after number {num}")),
                Some(&b) => b,
            };
            match unit {
                b'y' => span.years = num,
                b'm' => span.months = num,
                b'd' => span.days = num,
                b'h' => span.hours = num,
                other => {
                    // restic prints the offending *byte* with %q.
                    return Err(format!(
                        "invalid unit {:?} found after number {num}",
                        char::from(other)
                    ));
                }
            }
            // The unit was ASCII, so slicing one byte off is safe.
            s = &rest[1..];
        }
        Ok(span)
    }

    /// True if all four fields are zero (restic's `Duration.Zero()`).
    pub fn is_zero(&self) -> bool {
        *self == Span::ZERO
    }

    /// True if any field is negative. restic 0.14 accepts such spans; newer
    /// restic (0.16+) refuses them in `forget`. Offered so a caller can choose.
    pub fn has_negative(&self) -> bool {
        self.years < 0 || self.months < 0 || self.days < 0 || self.hours < 0
    }

    /// The instant `t - self`, computed Go-style on the wall clock of `t`'s
    /// own zone (see the type's documentation).
    pub fn before<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> DateTime<Utc> {
        // Go: latest.AddDate(-Y, -M, -D).Add(time.Hour * time.Duration(-H))
        let base = go_add_date(
            t,
            self.years.wrapping_neg(),
            self.months.wrapping_neg(),
            self.days.wrapping_neg(),
        );
        let nanos = 3_600_000_000_000i64.wrapping_mul(self.hours.wrapping_neg());
        match base {
            Some(b) => b
                .checked_add_signed(Duration::nanoseconds(nanos))
                .unwrap_or(if nanos < 0 {
                    DateTime::<Utc>::MIN_UTC
                } else {
                    DateTime::<Utc>::MAX_UTC
                }),
            None => {
                // Outside chrono's range (about ±262,000 years). Go's range is
                // far larger; we clamp in the direction the span points. Not
                // bit-exact with restic for such absurd spans, but every
                // snapshot is then either inside or outside, as in Go.
                let approx =
                    self.years as i128 * 8766 + self.months as i128 * 730 + self.days as i128 * 24;
                if approx > 0 {
                    DateTime::<Utc>::MIN_UTC
                } else {
                    DateTime::<Utc>::MAX_UTC
                }
            }
        }
    }
}

/// restic's `nextNumber`: an optional `-`, then a run of characters that are
/// Unicode numbers (Go's `unicode.IsNumber` = Rust's `char::is_numeric`:
/// categories Nd, Nl, No).
fn next_number(input: &str) -> Result<(i64, &str), String> {
    let (negative, body) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !c.is_numeric())
        .map(|(i, _)| i)
        .unwrap_or(body.len());
    let digits = &body[..end];
    if digits.is_empty() {
        return Err("no number found".to_string());
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        // restic 0.14 panics here (strconv.Atoi fails after IsNumber passed).
        return Err(format!("invalid number {digits:?}"));
    }
    let value: i64 = digits
        .parse()
        .map_err(|_| format!("number {digits} out of range"))?; // restic 0.14 panics
    Ok((if negative { -value } else { value }, &body[end..]))
}

impl fmt::Display for Span {
    /// restic's `Duration.String()`: non-zero fields in y, m, d, h order,
    /// e.g. `1y3d`; the zero span is the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (value, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if value != 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Span::parse(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Go's `t.AddDate(years, months, days)` in `t`'s own zone, returned as an
/// instant. `None` when the result leaves chrono's range.
fn go_add_date<Tz: TimeZone>(
    t: &DateTime<Tz>,
    years: i64,
    months: i64,
    days: i64,
) -> Option<DateTime<Utc>> {
    let tz = t.timezone();
    let local = t.naive_local();
    // Go: Date(year+years, month+months, day+days, h, m, s, ns, loc), which
    // first carries months into years, then counts days from the 1st of the
    // resulting month (so day overflow rolls into the next month).
    let month0 = (local.month0() as i64).checked_add(months)?;
    let year = (local.year() as i64)
        .checked_add(years)?
        .checked_add(month0.div_euclid(12))?;
    let month = month0.rem_euclid(12) as u32 + 1;
    let first = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, 1)?;
    let day_offset = (local.day() as i64 - 1).checked_add(days)?;
    let date = first.checked_add_signed(Duration::try_days(day_offset)?)?;
    let naive = date.and_time(local.time());
    go_resolve_wall_clock(&naive, &tz)
}

/// How Go's `time.Date` turns a wall-clock time into an instant: look up the
/// zone offset in force at the wall-clock value read as if it were UTC, then
/// use the offset in force at the instant that guess gives. For a wall clock
/// that does not exist (spring-forward gap) or exists twice (fall-back), this
/// picks what Go picks, which chrono's `from_local_datetime` does not do.
fn go_resolve_wall_clock<Tz: TimeZone>(naive: &NaiveDateTime, tz: &Tz) -> Option<DateTime<Utc>> {
    let guess = tz.offset_from_utc_datetime(naive).fix();
    let first = naive.checked_sub_signed(Duration::seconds(guess.local_minus_utc() as i64))?;
    let offset = tz.offset_from_utc_datetime(&first).fix();
    let utc = naive.checked_sub_signed(Duration::seconds(offset.local_minus_utc() as i64))?;
    Some(Utc.from_utc_datetime(&utc))
}

// ---------------------------------------------------------------------------
// Tag lists
// ---------------------------------------------------------------------------

/// One `--keep-tag` value: a snapshot matches if it has *all* of these tags
/// (restic's `TagList`). A policy's `keep_tags` is a list of these, of which
/// *any* may match: `--keep-tag a,b --keep-tag c` keeps snapshots tagged
/// (a and b) or c.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagList(pub Vec<String>);

impl TagList {
    /// restic's `splitTagList`: split at commas and trim white space around
    /// each tag. Nothing is dropped: `""` gives `[""]` and `"a,"` gives
    /// `["a", ""]` (see [`has_tags`] for what an empty tag means).
    pub fn parse(s: &str) -> TagList {
        TagList(s.split(',').map(|t| t.trim().to_string()).collect())
    }
}

impl fmt::Display for TagList {
    /// restic's `TagList.String()`: `[a, b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.join(", "))
    }
}

/// restic's `Snapshot.HasTags`: true if `snapshot_tags` contains every tag of
/// `list`, with one twist taken literally from restic: when the loop reaches
/// an empty tag `""` and the snapshot has no tags at all, the answer is
/// *true* immediately. So `--keep-tag ''` keeps untagged snapshots, and so
/// does `--keep-tag ',a'`, but `--keep-tag 'a,'` matches nothing (it needs
/// tag `a` and then the literal tag `""`). Arguably wrong (order-dependent),
/// but that is restic. An empty list matches every snapshot.
pub fn has_tags(snapshot_tags: &[String], list: &TagList) -> bool {
    for tag in &list.0 {
        if tag.is_empty() && snapshot_tags.is_empty() {
            return true;
        }
        if !snapshot_tags.iter().any(|t| t == tag) {
            return false;
        }
    }
    true
}

/// restic's `Snapshot.HasTagList` (used by the `--tag` filter): true if
/// `lists` is empty or any list matches per [`has_tags`].
pub fn has_tag_list(snapshot_tags: &[String], lists: &[TagList]) -> bool {
    lists.is_empty() || lists.iter().any(|l| has_tags(snapshot_tags, l))
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// A retention policy (restic's `ExpirePolicy`, i.e. the `--keep-*` options).
///
/// Counts are `i64` like restic 0.14's Go `int` flags, and a count of `0`
/// means "rule not set" (restic makes no distinction between `--keep-daily 0`
/// and no flag). restic 0.14 quirk, reproduced: a *negative* count (e.g.
/// `--keep-last -1`) keeps nothing through its rule, but still makes the
/// policy non-empty, so `--keep-last -1` alone removes every snapshot.
/// Newer restic (0.16+) treats `-1` (or `unlimited`) as "keep every bucket"
/// and rejects other negative values; this module does not.
///
/// A zero [`Span`] likewise means "rule not set". An empty `keep_tags` means
/// no tag rule; a `TagList` with no tags matches every snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub keep_last: i64,
    pub keep_hourly: i64,
    pub keep_daily: i64,
    pub keep_weekly: i64,
    pub keep_monthly: i64,
    pub keep_yearly: i64,
    pub keep_within: Span,
    pub keep_within_hourly: Span,
    pub keep_within_daily: Span,
    pub keep_within_weekly: Span,
    pub keep_within_monthly: Span,
    pub keep_within_yearly: Span,
    pub keep_tags: Vec<TagList>,
}

impl Policy {
    /// restic's `ExpirePolicy.Empty()`: no count is non-zero, no span is
    /// non-zero and there is no tag list. (Negative counts make it non-empty.)
    pub fn is_empty(&self) -> bool {
        self.keep_tags.is_empty()
            && self.counts().iter().all(|&c| c == 0)
            && self.within_spans().iter().all(|s| s.is_zero())
            && self.keep_within.is_zero()
    }

    fn counts(&self) -> [i64; 6] {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
    }

    fn within_spans(&self) -> [Span; 5] {
        [
            self.keep_within_hourly,
            self.keep_within_daily,
            self.keep_within_weekly,
            self.keep_within_monthly,
            self.keep_within_yearly,
        ]
    }
}

impl fmt::Display for Policy {
    /// restic 0.14's `ExpirePolicy.String()`, the text after
    /// `Applying Policy: ` in `restic forget` output, e.g.
    /// `keep 7 daily, 4 weekly snapshots, daily snapshots within 1m and all
    /// snapshots with tags [[a, b]] and all snapshots within 2d of the newest`.
    /// Negative counts are not shown (so `--keep-last -1` prints `keep `).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["latest", "hourly", "daily", "weekly", "monthly", "yearly"];
        let keeps: Vec<String> = self
            .counts()
            .iter()
            .zip(names)
            .filter(|(c, _)| **c > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let wnames = ["hourly", "daily", "weekly", "monthly", "yearly"];
        let keepw: Vec<String> = self
            .within_spans()
            .iter()
            .zip(wnames)
            .filter(|(s, _)| !s.is_zero())
            .map(|(s, n)| format!("{n} snapshots within {s}"))
            .collect();
        let mut s = String::new();
        if !keeps.is_empty() {
            s = format!("{} snapshots", keeps.join(", "));
        }
        if !keepw.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&keepw.join(", "));
        }
        if !self.keep_tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            // Go's %s on []TagList: "[" + elements joined by " " + "]".
            let lists: Vec<String> = self.keep_tags.iter().map(|l| l.to_string()).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if !self.keep_within.is_zero() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!(
                "all snapshots within {} of the newest",
                self.keep_within
            ));
        }
        write!(f, "keep {s}")
    }
}

// ---------------------------------------------------------------------------
// Candidates and grouping
// ---------------------------------------------------------------------------

/// The metadata of one snapshot that the policy looks at. `Id` is whatever
/// identifies the snapshot for the caller (arca: its 32-byte id); it is only
/// carried along.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a, Id, Tz: TimeZone = Utc> {
    pub id: Id,
    /// The snapshot's time, in the zone whose wall clock defines its buckets
    /// (see the module documentation, "Time zone").
    pub time: DateTime<Tz>,
    pub host: &'a str,
    /// Need not be sorted; grouping sorts a copy.
    pub paths: &'a [String],
    /// Need not be sorted; grouping sorts a copy.
    pub tags: &'a [String],
}

/// What `--group-by` groups on (restic's default is `host,paths`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl GroupBy {
    /// restic's default, `host,paths`.
    pub const DEFAULT: GroupBy = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };

    /// Parses restic's `--group-by` value: comma-separated `host`/`hosts`,
    /// `path`/`paths`, `tag`/`tags`; empty items are ignored, so `""` means
    /// no grouping (one group with everything). No white space is trimmed:
    /// `"host, paths"` is an error, as in restic.
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        let mut g = GroupBy::default();
        for option in s.split(',') {
            match option {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => return Err(format!("unknown grouping option: '{other}'")),
            }
        }
        Ok(g)
    }

    /// The key of the group a snapshot belongs to (restic's
    /// `SnapshotGroupKey`): the fields not grouped on are empty; paths and
    /// tags are sorted, not de-duplicated (`[a, a]` and `[a]` are different
    /// groups, as in restic).
    pub fn key_of<Id, Tz: TimeZone>(&self, c: &Candidate<'_, Id, Tz>) -> GroupKey {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        GroupKey {
            host: if self.host {
                c.host.to_string()
            } else {
                String::new()
            },
            paths: if self.paths {
                sorted(c.paths)
            } else {
                Vec::new()
            },
            tags: if self.tags {
                sorted(c.tags)
            } else {
                Vec::new()
            },
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.host {
            parts.push("host");
        }
        if self.paths {
            parts.push("paths");
        }
        if self.tags {
            parts.push("tags");
        }
        write!(f, "{}", parts.join(","))
    }
}

impl FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::parse(s)
    }
}

/// Identifies a group. Serializes like restic's `SnapshotGroupKey`:
/// `{"hostname": "", "paths": null, "tags": null}` — a field that is not
/// grouped on, or an empty list, is `""`/`null` (restic cannot tell an
/// untagged snapshot grouped by tags from tags not being grouped on either).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    #[serde(rename = "hostname")]
    pub host: String,
    #[serde(serialize_with = "null_if_empty", deserialize_with = "empty_if_null")]
    pub paths: Vec<String>,
    #[serde(serialize_with = "null_if_empty", deserialize_with = "empty_if_null")]
    pub tags: Vec<String>,
}

fn null_if_empty<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(v)
    }
}

fn empty_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Splits `items` into groups per `by` (restic's `GroupSnapshots`). Groups
/// come out ordered by key (restic's come out of a Go map, in random order);
/// within a group the input order is kept.
#[allow(clippy::type_complexity)]
pub fn group<'a, Id, Tz: TimeZone>(
    items: Vec<Candidate<'a, Id, Tz>>,
    by: GroupBy,
) -> Vec<(GroupKey, Vec<Candidate<'a, Id, Tz>>)> {
    let mut groups: BTreeMap<GroupKey, Vec<Candidate<'a, Id, Tz>>> = BTreeMap::new();
    for c in items {
        groups.entry(by.key_of(&c)).or_default().push(c);
    }
    groups.into_iter().collect()
}

// ---------------------------------------------------------------------------
// Applying the policy
// ---------------------------------------------------------------------------

/// The count rules and the bucket they count (`Last` counts snapshots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    fn name(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }

    /// The bucket of a snapshot at time `t` (restic's bucket functions), on
    /// the wall clock of `t` in its own zone:
    /// `Last`: the position `nr` in the newest-first list (every snapshot is
    /// its own bucket); `Hourly`: YYYYMMDDHH; `Daily`: YYYYMMDD; `Weekly`:
    /// ISO-8601 week-year*100 + ISO week (Go's `ISOWeek`: weeks start on
    /// Monday, 2021-01-03 is in 2020-W53, 2019-12-30 in 2020-W01); `Monthly`:
    /// YYYYMM; `Yearly`: YYYY.
    pub fn bucket<Tz: TimeZone>(self, t: &DateTime<Tz>, nr: usize) -> i64 {
        let (y, m, d, h) = (
            t.year() as i64,
            t.month() as i64,
            t.day() as i64,
            t.hour() as i64,
        );
        match self {
            Rule::Last => nr as i64,
            Rule::Hourly => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Rule::Daily => y * 10_000 + m * 100 + d,
            Rule::Weekly => {
                let w = t.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }
            Rule::Monthly => y * 100 + m,
            Rule::Yearly => y,
        }
    }
}

/// One rule that matched a kept snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// The policy is empty: everything is kept. Text `policy is empty`.
    PolicyEmpty,
    /// The snapshot has all tags of `keep_tags[index]`. Text
    /// `has tags [a, b]`.
    Tags { index: usize, list: TagList },
    /// Newer than newest-minus-`keep_within`. Text `within 1y2m`.
    Within(Span),
    /// A count rule kept it as the newest of a new bucket (see
    /// [`Rule::bucket`] for the encoding of `bucket`). Text `daily snapshot`
    /// (`last snapshot` for [`Rule::Last`]).
    Count { rule: Rule, bucket: i64 },
    /// A `keep_within_*` rule (never `Rule::Last`) kept it as the newest of a
    /// new bucket inside the span. Text `daily within 7d`.
    CountWithin { rule: Rule, span: Span, bucket: i64 },
}

impl fmt::Display for Match {
    /// The exact strings restic puts in `matches`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::PolicyEmpty => write!(f, "policy is empty"),
            Match::Tags { list, .. } => write!(f, "has tags {list}"),
            Match::Within(span) => write!(f, "within {span}"),
            Match::Count { rule, .. } => write!(f, "{} snapshot", rule.name()),
            Match::CountWithin { rule, span, .. } => write!(f, "{} within {span}", rule.name()),
        }
    }
}

impl Serialize for Match {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The counts the count rules have left after a snapshot was evaluated
/// (restic's `KeepReason.Counters`). Zero fields are not serialized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    #[serde(skip_serializing_if = "is_zero")]
    pub last: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub hourly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub daily: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub weekly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub monthly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub yearly: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Why one snapshot was kept. Serializes as restic's
/// `{"snapshot": S, "matches": [...], "counters": {...}}`.
///
/// `matches` come in restic's order: tag lists (in policy order), then
/// `within`, then the count rules last, hourly, daily, weekly, monthly,
/// yearly, then the within rules hourly .. yearly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeepReason<S> {
    pub snapshot: S,
    pub matches: Vec<Match>,
    pub counters: Counters,
}

impl<S> KeepReason<S> {
    /// Replaces the snapshot (e.g. an id by the CLI's snapshot JSON object).
    /// restic 0.14 prints the snapshot *without* its `id` here (newer restic
    /// adds `id` and `short_id`).
    pub fn map_snapshot<T>(self, f: impl FnOnce(S) -> T) -> KeepReason<T> {
        KeepReason {
            snapshot: f(self.snapshot),
            matches: self.matches,
            counters: self.counters,
        }
    }
}

/// The result of [`apply`] for one group. `keep` and `remove` are newest
/// first; `reasons[i]` is about `keep[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome<'a, Id, Tz: TimeZone = Utc> {
    pub keep: Vec<Candidate<'a, Id, Tz>>,
    pub remove: Vec<Candidate<'a, Id, Tz>>,
    pub reasons: Vec<KeepReason<Id>>,
}

/// The newest snapshot time that is strictly before `now` (restic's
/// `findLatestTimestamp`), or `None` for Go's zero time (0001-01-01 UTC) if
/// there is none. Snapshots in the future are ignored for this; they are
/// still "within" every span since they are newer than the reference. Among
/// equal instants the first in list order wins (its zone is the one used).
fn reference_time<'l, Id, Tz: TimeZone>(
    items: &'l [Candidate<'_, Id, Tz>],
    now: DateTime<Utc>,
) -> Option<&'l DateTime<Tz>> {
    let mut latest: Option<&DateTime<Tz>> = None;
    for c in items {
        let t = c.time.naive_utc();
        if t < now.naive_utc() && latest.is_none_or(|l| t > l.naive_utc()) {
            latest = Some(&c.time);
        }
    }
    latest
}

fn go_zero_time() -> DateTime<Utc> {
    Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(1, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap(),
    )
}

/// Applies `policy` to the snapshots of one group (restic's `ApplyPolicy`).
///
/// * the zone of each candidate's `time` defines its buckets, and the zone of
///   the newest one the calendar arithmetic of spans (see the module
///   documentation).
/// * `now`: restic's `time.Now()`, only used to ignore snapshots in the future
///   when finding the newest snapshot that `keep_within*` are relative to.
///
/// An empty policy keeps everything with the reason "policy is empty"
/// (restic's `ApplyPolicy` does this; restic's CLI never calls it then, see
/// [`plan`]).
pub fn apply<'a, Id: Clone, Tz: TimeZone>(
    policy: &Policy,
    mut items: Vec<Candidate<'a, Id, Tz>>,
    now: DateTime<Utc>,
) -> Outcome<'a, Id, Tz> {
    // Newest first, by instant; stable, so equal times keep the input order
    // (Go: sort.Stable with Less = Time.After).
    items.sort_by_key(|c| Reverse(c.time.naive_utc()));

    if policy.is_empty() {
        let reasons = items
            .iter()
            .map(|c| KeepReason {
                snapshot: c.id.clone(),
                matches: vec![Match::PolicyEmpty],
                counters: Counters::default(),
            })
            .collect();
        return Outcome {
            keep: items,
            remove: Vec::new(),
            reasons,
        };
    }

    // The within thresholds: newest (non-future) snapshot minus the span,
    // with Go's calendar arithmetic. When every snapshot is in the future
    // restic uses Go's zero time, which is in UTC.
    let latest = reference_time(&items, now).cloned();
    let threshold = |span: &Span| -> DateTime<Utc> {
        match &latest {
            Some(latest) => span.before(latest),
            None => span.before(&go_zero_time()),
        }
    };
    let within = if policy.keep_within.is_zero() {
        None
    } else {
        Some(threshold(&policy.keep_within))
    };

    // restic starts every rule's "last bucket" at -1, so a bucket whose value
    // is -1 is never new: only the yearly bucket of year -1 (2 BC) has that
    // value. Absurd, but kept for exactness.
    const NO_BUCKET: i64 = -1;
    struct CountState {
        rule: Rule,
        left: i64,
        last: i64,
    }
    let mut counts: Vec<CountState> = Rule::ALL
        .iter()
        .zip(policy.counts())
        .map(|(&rule, left)| CountState {
            rule,
            left,
            last: NO_BUCKET,
        })
        .collect();

    struct WithinState {
        rule: Rule,
        span: Span,
        threshold: DateTime<Utc>,
        last: i64,
    }
    let mut withins: Vec<WithinState> = Rule::ALL[1..]
        .iter()
        .zip(policy.within_spans())
        .filter(|(_, span)| !span.is_zero())
        .map(|(&rule, span)| WithinState {
            rule,
            span,
            threshold: threshold(&span),
            last: NO_BUCKET,
        })
        .collect();

    let mut keep = Vec::new();
    let mut remove = Vec::new();
    let mut reasons = Vec::new();

    for (nr, cur) in items.into_iter().enumerate() {
        let mut matches = Vec::new();

        // Tag rules are not counted.
        for (index, list) in policy.keep_tags.iter().enumerate() {
            if has_tags(cur.tags, list) {
                matches.push(Match::Tags {
                    index,
                    list: list.clone(),
                });
            }
        }

        // Strictly newer than the threshold (Go: cur.Time.After(t)).
        if let Some(t) = within
            && cur.time.naive_utc() > t.naive_utc()
        {
            matches.push(Match::Within(policy.keep_within));
        }

        // Count rules: every rule with counts left looks at every snapshot,
        // whatever else kept it. Negative counts never count (restic 0.14:
        // `Count > 0`).
        for st in counts.iter_mut() {
            if st.left > 0 {
                let bucket = st.rule.bucket(&cur.time, nr);
                if st.last != bucket {
                    st.last = bucket;
                    st.left -= 1;
                    matches.push(Match::Count {
                        rule: st.rule,
                        bucket,
                    });
                }
                // Newer restic (0.18+) also keeps the *oldest* snapshot
                // ("oldest daily snapshot") when a rule still has counts
                // left at the end of the list; 0.14 does not.
            }
        }

        // Within-bucket rules: one snapshot per bucket while inside the span,
        // no count.
        for st in withins.iter_mut() {
            if cur.time.naive_utc() > st.threshold.naive_utc() {
                let bucket = st.rule.bucket(&cur.time, nr);
                if st.last != bucket {
                    st.last = bucket;
                    matches.push(Match::CountWithin {
                        rule: st.rule,
                        span: st.span,
                        bucket,
                    });
                }
            }
        }

        if matches.is_empty() {
            remove.push(cur);
        } else {
            let left = |i: usize| counts[i].left;
            reasons.push(KeepReason {
                snapshot: cur.id.clone(),
                matches,
                counters: Counters {
                    last: left(0),
                    hourly: left(1),
                    daily: left(2),
                    weekly: left(3),
                    monthly: left(4),
                    yearly: left(5),
                },
            });
            keep.push(cur);
        }
    }

    Outcome {
        keep,
        remove,
        reasons,
    }
}

/// One group's result from [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOutcome<'a, Id, Tz: TimeZone = Utc> {
    pub key: GroupKey,
    pub outcome: Outcome<'a, Id, Tz>,
}

/// What `restic forget` (without snapshot-id arguments) does after loading
/// and filtering: group, then apply the policy to every group. Groups are
/// ordered by key.
///
/// With an empty policy restic 0.14 applies nothing, removes nothing and
/// prints no group (its `--json` output is empty); this returns an empty
/// list then. (Newer restic (0.17+) refuses an empty policy with an error.)
pub fn plan<'a, Id: Clone, Tz: TimeZone>(
    policy: &Policy,
    by: GroupBy,
    items: Vec<Candidate<'a, Id, Tz>>,
    now: DateTime<Utc>,
) -> Vec<GroupOutcome<'a, Id, Tz>> {
    if policy.is_empty() {
        return Vec::new();
    }
    group(items, by)
        .into_iter()
        .map(|(key, members)| GroupOutcome {
            key,
            outcome: apply(policy, members, now),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn now() -> DateTime<Utc> {
        t("2030-01-01T00:00:00Z")
    }

    fn cands<'a>(
        times: &[&str],
        host: &'a str,
        paths: &'a [String],
        tags: &'a [String],
    ) -> Vec<Candidate<'a, usize>> {
        times
            .iter()
            .enumerate()
            .map(|(id, s)| Candidate {
                id,
                time: t(s),
                host,
                paths,
                tags,
            })
            .collect()
    }

    fn kept_ids<Tz: TimeZone>(o: &Outcome<'_, usize, Tz>) -> Vec<usize> {
        o.keep.iter().map(|c| c.id).collect()
    }

    fn sv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn span_parse_accepts_and_rejects_like_restic() {
        assert_eq!(
            Span::parse("1y2m3d4h").unwrap(),
            Span {
                years: 1,
                months: 2,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(
            Span::parse("4h3d").unwrap(),
            Span {
                years: 0,
                months: 0,
                days: 3,
                hours: 4
            }
        );
        assert_eq!(
            Span::parse("1d2d").unwrap().days,
            2,
            "a repeated unit overwrites"
        );
        assert_eq!(Span::parse("  2d\n").unwrap().days, 2);
        assert_eq!(Span::parse("").unwrap(), Span::ZERO);
        assert_eq!(Span::parse("007d").unwrap().days, 7);
        assert_eq!(Span::parse("-1d").unwrap().days, -1);
        assert_eq!(Span::parse("1y-2m").unwrap().months, -2);
        assert_eq!(Span::parse("0d").unwrap(), Span::ZERO);
        for bad in [
            "5",
            "d",
            "1x",
            "1D",
            "1w",
            "1d 2h",
            "+1d",
            "--1d",
            "-",
            "1.5d",
            "1²d",
            "99999999999999999999d",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            Span::parse("5").unwrap_err(),
            "no unit found after number 5"
        );
        assert_eq!(Span::parse("d").unwrap_err(), "no number found");
        assert_eq!(
            Span::parse("1x").unwrap_err(),
            "invalid unit 'x' found after number 1"
        );
    }

    #[test]
    fn span_display_like_restic() {
        assert_eq!(Span::parse("4h1y").unwrap().to_string(), "1y4h");
        assert_eq!(Span::parse("0y1d").unwrap().to_string(), "1d");
        assert_eq!(Span::parse("-1d").unwrap().to_string(), "-1d");
        assert_eq!(Span::ZERO.to_string(), "");
    }

    #[test]
    fn go_add_date_overflows_days_into_next_month() {
        // March 31 minus one month is "February 31" = March 3 (2023) / March 2 (2024).
        let s = Span::parse("1m").unwrap();
        assert_eq!(
            s.before(&t("2023-03-31T10:00:00Z")),
            t("2023-03-03T10:00:00Z")
        );
        assert_eq!(
            s.before(&t("2024-03-31T10:00:00Z")),
            t("2024-03-02T10:00:00Z")
        );
        // Feb 29 minus one year is "2023-02-29" = March 1.
        assert_eq!(
            Span::parse("1y")
                .unwrap()
                .before(&t("2024-02-29T12:00:00Z")),
            t("2023-03-01T12:00:00Z")
        );
        // Months carry into years; days go backwards across months.
        assert_eq!(
            Span::parse("14m")
                .unwrap()
                .before(&t("2023-01-15T00:00:00Z")),
            t("2021-11-15T00:00:00Z")
        );
        assert_eq!(
            Span::parse("40d")
                .unwrap()
                .before(&t("2023-03-10T00:00:00Z")),
            t("2023-01-29T00:00:00Z")
        );
        // Hours are absolute, applied after the calendar part.
        assert_eq!(
            Span::parse("1m25h")
                .unwrap()
                .before(&t("2023-03-31T10:00:00Z")),
            t("2023-03-02T09:00:00Z")
        );
        // Hours wrap like Go's int64 nanoseconds: 3,000,000h points to the future.
        let wrapped = Span::parse("3000000h")
            .unwrap()
            .before(&t("2023-03-31T10:00:00Z"));
        assert!(wrapped > t("2023-03-31T10:00:00Z"));
    }

    #[test]
    fn calendar_span_keeps_wall_clock_in_zone() {
        // In a fixed +02:00 zone 1d is 24h; the wall clock is what is kept.
        let tz = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            Span::parse("1d")
                .unwrap()
                .before(&t("2023-01-01T00:30:00+02:00").with_timezone(&tz)),
            t("2022-12-31T00:30:00+02:00")
        );
        // Month overflow is computed on the local date, not the UTC date:
        // 2023-04-01 00:30 +02:00 is 2023-03-31 22:30 UTC; minus 1m locally
        // is 2023-03-01 00:30 +02:00 (in UTC it would be Mar 3 22:30).
        assert_eq!(
            Span::parse("1m")
                .unwrap()
                .before(&t("2023-04-01T00:30:00+02:00").with_timezone(&tz)),
            t("2023-03-01T00:30:00+02:00")
        );
    }

    #[test]
    fn keep_within_is_relative_to_newest_not_in_future_and_strict() {
        let p = Policy {
            keep_within: Span::parse("1m").unwrap(),
            ..Policy::default()
        };
        let times = [
            "2023-03-31T10:00:00Z",
            "2023-03-03T10:00:01Z",
            "2023-03-03T10:00:00Z", // exactly at the threshold: not "after", removed
            "2023-03-02T10:00:00Z",
            "2031-06-01T00:00:00Z", // in the future relative to now(): ignored as reference, but kept
        ];
        let o = apply(&p, cands(&times, "h", &[], &[]), now());
        assert_eq!(kept_ids(&o), vec![4, 0, 1]);
        assert_eq!(o.reasons[1].matches[0].to_string(), "within 1m");
    }

    #[test]
    fn all_in_future_uses_go_zero_time() {
        let p = Policy {
            keep_within: Span::parse("1d").unwrap(),
            ..Policy::default()
        };
        let o = apply(
            &p,
            cands(
                &["2031-01-01T00:00:00Z", "2020-01-01T00:00:00Z"],
                "h",
                &[],
                &[],
            ),
            t("2019-01-01T00:00:00Z"),
        );
        assert_eq!(o.keep.len(), 2);
    }

    #[test]
    fn count_rules_keep_newest_per_bucket_and_report_counters() {
        let p = Policy {
            keep_daily: 2,
            keep_last: 1,
            ..Policy::default()
        };
        let times = [
            "2023-01-02T10:00:00Z",
            "2023-01-02T09:00:00Z",
            "2023-01-01T23:59:59Z",
            "2022-12-31T12:00:00Z",
        ];
        let o = apply(&p, cands(&times, "h", &[], &[]), now());
        assert_eq!(kept_ids(&o), vec![0, 2]);
        let strs: Vec<String> = o.reasons[0].matches.iter().map(|m| m.to_string()).collect();
        assert_eq!(strs, ["last snapshot", "daily snapshot"]);
        assert_eq!(
            o.reasons[0].counters,
            Counters {
                daily: 1,
                ..Counters::default()
            }
        );
        assert_eq!(
            o.reasons[1].matches,
            vec![Match::Count {
                rule: Rule::Daily,
                bucket: 20230101
            }]
        );
        assert_eq!(serde_json::to_string(&o.reasons[1].counters).unwrap(), "{}");
    }

    #[test]
    fn weekly_uses_iso_weeks() {
        let p = Policy {
            keep_weekly: 10,
            ..Policy::default()
        };
        // Sun 2021-01-03 is 2020-W53 like Thu 2020-12-31; Mon 2021-01-04 is 2021-W01;
        // Mon 2019-12-30 is 2020-W01.
        let times = [
            "2021-01-04T00:30:00Z",
            "2021-01-03T23:00:00Z",
            "2020-12-31T12:00:00Z",
            "2020-01-01T00:00:00Z",
            "2019-12-30T00:00:00Z",
            "2019-12-29T00:00:00Z",
        ];
        let o = apply(&p, cands(&times, "h", &[], &[]), now());
        assert_eq!(kept_ids(&o), vec![0, 1, 3, 5]);
        assert_eq!(
            o.reasons[1].matches,
            vec![Match::Count {
                rule: Rule::Weekly,
                bucket: 202053
            }]
        );
    }

    #[test]
    fn buckets_follow_the_given_zone() {
        let p = Policy {
            keep_daily: 5,
            ..Policy::default()
        };
        // 22:30Z and 23:30Z are the same UTC day but different days at +01:00.
        let times = ["2021-12-31T23:30:00Z", "2021-12-31T22:30:00Z"];
        assert_eq!(apply(&p, cands(&times, "h", &[], &[]), now()).keep.len(), 1);
        let cet = FixedOffset::east_opt(3600).unwrap();
        let local: Vec<Candidate<'_, usize, FixedOffset>> = cands(&times, "h", &[], &[])
            .into_iter()
            .map(|c| Candidate {
                id: c.id,
                time: c.time.with_timezone(&cet),
                host: c.host,
                paths: c.paths,
                tags: c.tags,
            })
            .collect();
        let o = apply(&p, local, now());
        assert_eq!(o.keep.len(), 2);
        assert_eq!(
            o.reasons[0].matches,
            vec![Match::Count {
                rule: Rule::Daily,
                bucket: 20220101
            }]
        );
    }

    #[test]
    fn equal_times_keep_input_order() {
        let p = Policy {
            keep_last: 1,
            ..Policy::default()
        };
        let times = [
            "2023-01-01T00:00:00Z",
            "2023-01-01T00:00:00Z",
            "2022-01-01T00:00:00Z",
        ];
        let mut c = cands(&times, "h", &[], &[]);
        c.swap(0, 2); // input order: id 2, id 1, id 0
        let o = apply(&p, c, now());
        assert_eq!(kept_ids(&o), vec![1]);
        assert_eq!(
            o.remove.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn negative_count_keeps_nothing_but_makes_policy_non_empty() {
        let p = Policy {
            keep_last: -1,
            ..Policy::default()
        };
        assert!(!p.is_empty());
        let o = apply(&p, cands(&["2023-01-01T00:00:00Z"], "h", &[], &[]), now());
        assert!(o.keep.is_empty());
        let p = Policy {
            keep_last: -1,
            keep_daily: 1,
            ..Policy::default()
        };
        let o = apply(&p, cands(&["2023-01-01T00:00:00Z"], "h", &[], &[]), now());
        assert_eq!(
            o.reasons[0].counters,
            Counters {
                last: -1,
                ..Counters::default()
            }
        );
        assert_eq!(p.to_string(), "keep 1 daily snapshots");
    }

    #[test]
    fn empty_policy() {
        let p = Policy::default();
        assert!(p.is_empty());
        let o = apply(&p, cands(&["2023-01-01T00:00:00Z"], "h", &[], &[]), now());
        assert_eq!(o.reasons[0].matches, vec![Match::PolicyEmpty]);
        assert!(
            plan(
                &p,
                GroupBy::DEFAULT,
                cands(&["2023-01-01T00:00:00Z"], "h", &[], &[]),
                now()
            )
            .is_empty()
        );
        assert!(
            Policy {
                keep_within: Span::parse("0d").unwrap(),
                ..Policy::default()
            }
            .is_empty()
        );
    }

    #[test]
    fn keep_tag_semantics() {
        let ab = sv(&["a", "b"]);
        let a = sv(&["a"]);
        assert!(has_tags(&ab, &TagList::parse("a,b")));
        assert!(!has_tags(&a, &TagList::parse("a,b")));
        assert!(has_tags(&ab, &TagList::parse(" b ")));
        // An empty tag matches untagged snapshots, but only if reached first.
        assert!(has_tags(&[], &TagList::parse("")));
        assert!(!has_tags(&a, &TagList::parse("")));
        assert!(has_tags(&[], &TagList::parse(",a")));
        assert!(!has_tags(&[], &TagList::parse("a,")));
        assert!(!has_tags(&a, &TagList::parse("a,")));
        assert!(has_tags(&a, &TagList(vec![])));

        let p = Policy {
            keep_tags: vec![TagList::parse("a,b"), TagList::parse("b")],
            keep_last: 1,
            ..Policy::default()
        };
        let mut c = cands(
            &["2023-01-02T00:00:00Z", "2023-01-01T00:00:00Z"],
            "h",
            &[],
            &ab,
        );
        c[0].tags = &a;
        let o = apply(&p, c, now());
        assert_eq!(kept_ids(&o), vec![0, 1]);
        let strs: Vec<String> = o.reasons[1].matches.iter().map(|m| m.to_string()).collect();
        assert_eq!(strs, ["has tags [a, b]", "has tags [b]"]);
    }

    #[test]
    fn within_bucket_rules() {
        let p = Policy {
            keep_within_daily: Span::parse("2d").unwrap(),
            keep_within_hourly: Span::parse("3h").unwrap(),
            ..Policy::default()
        };
        let times = [
            "2023-01-03T12:00:00Z",
            "2023-01-03T11:30:00Z",
            "2023-01-03T10:59:00Z",
            "2023-01-02T23:00:00Z",
            "2023-01-02T08:00:00Z",
            "2023-01-01T13:00:00Z",
            "2023-01-01T11:00:00Z",
        ];
        let o = apply(&p, cands(&times, "h", &[], &[]), now());
        assert_eq!(kept_ids(&o), vec![0, 1, 2, 3, 5]);
        let strs: Vec<String> = o.reasons[0].matches.iter().map(|m| m.to_string()).collect();
        assert_eq!(strs, ["hourly within 3h", "daily within 2d"]);
    }

    #[test]
    fn grouping() {
        assert_eq!(GroupBy::parse("host,paths").unwrap(), GroupBy::DEFAULT);
        assert_eq!(GroupBy::parse("").unwrap(), GroupBy::default());
        assert_eq!(
            GroupBy::parse("hosts,,tag").unwrap(),
            GroupBy {
                host: true,
                paths: false,
                tags: true
            }
        );
        assert!(GroupBy::parse("host, paths").is_err());
        assert_eq!(
            GroupBy::parse("x").unwrap_err(),
            "unknown grouping option: 'x'"
        );

        let p1 = sv(&["/b", "/a"]);
        let p2 = sv(&["/a", "/b"]);
        let t1 = sv(&["y", "x"]);
        let t2 = sv(&["x", "y"]);
        let items = vec![
            Candidate {
                id: 0,
                time: t("2023-01-01T00:00:00Z"),
                host: "h",
                paths: &p1,
                tags: &t1,
            },
            Candidate {
                id: 1,
                time: t("2023-01-02T00:00:00Z"),
                host: "h",
                paths: &p2,
                tags: &t2,
            },
            Candidate {
                id: 2,
                time: t("2023-01-03T00:00:00Z"),
                host: "g",
                paths: &p2,
                tags: &[],
            },
        ];
        let g = group(items.clone(), GroupBy::parse("paths,tags").unwrap());
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[1].0,
            GroupKey {
                host: String::new(),
                paths: sv(&["/a", "/b"]),
                tags: sv(&["x", "y"])
            }
        );
        assert_eq!(g[1].1.iter().map(|c| c.id).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            serde_json::to_string(&g[0].0).unwrap(),
            r#"{"hostname":"","paths":["/a","/b"],"tags":null}"#
        );
        assert_eq!(group(items, GroupBy::default()).len(), 1);
    }

    #[test]
    fn policy_display_like_restic() {
        let p = Policy {
            keep_last: 3,
            keep_daily: 7,
            keep_within_daily: Span::parse("1m").unwrap(),
            keep_within_yearly: Span::parse("2y").unwrap(),
            keep_tags: vec![TagList::parse("a,b"), TagList::parse("c")],
            keep_within: Span::parse("2d").unwrap(),
            ..Policy::default()
        };
        assert_eq!(
            p.to_string(),
            "keep 3 latest, 7 daily snapshots, daily snapshots within 1m, yearly snapshots within 2y and all snapshots with tags [[a, b] [c]] and all snapshots within 2d of the newest"
        );
    }

    #[test]
    fn keep_reason_json_shape() {
        let p = Policy {
            keep_daily: 2,
            keep_within: Span::parse("1d").unwrap(),
            ..Policy::default()
        };
        let o = apply(&p, cands(&["2023-01-02T10:00:00Z"], "h", &[], &[]), now());
        let r = o.reasons[0].clone().map_snapshot(|id| format!("snap{id}"));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"snapshot":"snap0","matches":["within 1d","daily snapshot"],"counters":{"daily":1}}"#
        );
    }

    /// A hand-made zone with one DST period (like Europe/Berlin in 2021:
    /// +02:00 from 2021-03-28T01:00Z to 2021-10-31T01:00Z, +01:00 otherwise),
    /// so DST behaviour can be tested without a tz database.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct TestCet;

    impl TestCet {
        fn at_utc(utc: &NaiveDateTime) -> FixedOffset {
            let start = t("2021-03-28T01:00:00Z").naive_utc();
            let end = t("2021-10-31T01:00:00Z").naive_utc();
            let h = if *utc >= start && *utc < end { 2 } else { 1 };
            FixedOffset::east_opt(h * 3600).unwrap()
        }
    }

    impl TimeZone for TestCet {
        type Offset = FixedOffset;
        fn from_offset(_: &FixedOffset) -> Self {
            TestCet
        }
        fn offset_from_local_date(&self, _: &NaiveDate) -> chrono::LocalResult<FixedOffset> {
            unimplemented!("not used by the module")
        }
        fn offset_from_local_datetime(
            &self,
            local: &NaiveDateTime,
        ) -> chrono::LocalResult<FixedOffset> {
            let fits: Vec<FixedOffset> = [1, 2]
                .iter()
                .map(|h| FixedOffset::east_opt(h * 3600).unwrap())
                .filter(|o| {
                    TestCet::at_utc(&(*local - Duration::seconds(o.local_minus_utc() as i64))) == *o
                })
                .collect();
            match fits.as_slice() {
                [] => chrono::LocalResult::None,
                [o] => chrono::LocalResult::Single(*o),
                [a, b, ..] => chrono::LocalResult::Ambiguous(*a, *b),
            }
        }
        fn offset_from_utc_date(&self, _: &NaiveDate) -> FixedOffset {
            unimplemented!("not used by the module")
        }
        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
            TestCet::at_utc(utc)
        }
    }

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn go_wall_clock_resolution_across_dst() {
        // Spring-forward gap: 02:30 does not exist; Go lands on 03:30 CEST.
        assert_eq!(
            go_resolve_wall_clock(&wall("2021-03-28 02:30:00"), &TestCet).unwrap(),
            t("2021-03-28T01:30:00Z")
        );
        // Fall-back overlap: 02:30 exists twice; Go picks the second (CET).
        assert_eq!(
            go_resolve_wall_clock(&wall("2021-10-31 02:30:00"), &TestCet).unwrap(),
            t("2021-10-31T01:30:00Z")
        );
        // Ordinary wall clock times.
        assert_eq!(
            go_resolve_wall_clock(&wall("2021-03-27 12:00:00"), &TestCet).unwrap(),
            t("2021-03-27T11:00:00Z")
        );
        assert_eq!(
            go_resolve_wall_clock(&wall("2021-07-01 12:00:00"), &TestCet).unwrap(),
            t("2021-07-01T10:00:00Z")
        );
        // Fixed offsets are trivial.
        let tz = FixedOffset::west_opt(5 * 3600).unwrap();
        assert_eq!(
            go_resolve_wall_clock(&wall("2023-03-12 02:30:00"), &tz).unwrap(),
            t("2023-03-12T07:30:00Z")
        );
    }

    #[test]
    fn calendar_days_vs_hours_across_dst() {
        // Newest 2021-03-28 12:00 CEST: `1d` keeps the wall clock (12:00 CET
        // the day before, 23 real hours back), `24h` is 24 real hours.
        let newest = t("2021-03-28T10:00:00Z").with_timezone(&TestCet);
        assert_eq!(
            Span::parse("1d").unwrap().before(&newest),
            t("2021-03-27T11:00:00Z")
        );
        assert_eq!(
            Span::parse("24h").unwrap().before(&newest),
            t("2021-03-27T10:00:00Z")
        );
        // In a fixed zone with the same offset (what restic uses when the
        // snapshot was recorded in another zone than the machine's) `1d` is 24h.
        let fixed = t("2021-03-28T10:00:00Z").with_timezone(&FixedOffset::east_opt(7200).unwrap());
        assert_eq!(
            Span::parse("1d").unwrap().before(&fixed),
            t("2021-03-27T10:00:00Z")
        );
        // Across fall-back, 1m back from 2021-11-15 12:00 CET is 12:00 CEST.
        let nov = t("2021-11-15T11:00:00Z").with_timezone(&TestCet);
        assert_eq!(
            Span::parse("1m").unwrap().before(&nov),
            t("2021-10-15T10:00:00Z")
        );
    }

    #[test]
    fn buckets_use_each_candidates_own_offset() {
        // 02:30 CEST and 02:30 CET on 2021-10-31 are one hourly bucket.
        let p = Policy {
            keep_hourly: 10,
            ..Policy::default()
        };
        let items: Vec<Candidate<'_, usize, TestCet>> =
            ["2021-10-31T01:30:00Z", "2021-10-31T00:30:00Z"]
                .iter()
                .enumerate()
                .map(|(id, s)| Candidate {
                    id,
                    time: t(s).with_timezone(&TestCet),
                    host: "h",
                    paths: &[],
                    tags: &[],
                })
                .collect();
        let o = apply(&p, items, now());
        assert_eq!(kept_ids(&o), vec![0]);
        assert_eq!(
            o.reasons[0].matches,
            vec![Match::Count {
                rule: Rule::Hourly,
                bucket: 2021103102
            }]
        );
        // Mixed recorded offsets: each snapshot is bucketed at its own offset.
        let plus1 = FixedOffset::east_opt(3600).unwrap();
        let items = vec![
            Candidate {
                id: 0,
                time: t("2021-12-31T23:30:00Z").with_timezone(&plus1),
                host: "h",
                paths: &[],
                tags: &[],
            },
            Candidate {
                id: 1,
                time: t("2021-12-31T22:30:00Z").with_timezone(&FixedOffset::east_opt(0).unwrap()),
                host: "h",
                paths: &[],
                tags: &[],
            },
        ];
        let o = apply(
            &Policy {
                keep_yearly: 5,
                ..Policy::default()
            },
            items,
            now(),
        );
        assert_eq!(kept_ids(&o), vec![0, 1]);
    }
}
