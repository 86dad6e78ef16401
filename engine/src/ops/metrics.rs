//! Metrics: a repository's state in the Prometheus text exposition format
//! (version 0.0.4), for a node_exporter textfile or a Pushgateway.
//!
//! What is measured comes from the catalog (snapshots, packs, blobs: no
//! store reads), the check coverage records and the drill records (one
//! small object each). Names and labels are a stable interface, listed in
//! docs/monitoring.md: changing one breaks users' alerts.
//!
//! A source is a snapshot's host, paths and tags (what `forget` groups by
//! with `--group-by host,paths,tags`); its metrics describe its newest
//! snapshot. Every series carries `repository`, the repository id's first
//! 8 hex digits, so that one textfile directory or Pushgateway can hold
//! several repositories.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::drill::DrillRecord;
use crate::format::snapshot::Snapshot;
use crate::store::catalog::Catalog;
use crate::store::repo::Repository;

/// One source's newest snapshot and how many it has.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    /// The snapshots' host.
    pub host: String,
    /// Their paths (or stdin name).
    pub paths: Vec<String>,
    /// Their tags, sorted.
    pub tags: Vec<String>,
    /// Snapshots of this source.
    pub snapshots: u64,
    /// The newest one.
    pub last: Snapshot,
}

/// The outcome of the command that emits the metrics (`backup
/// --metrics-push`), when there is one.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// `backup`, `check`, `forget`, `prune`.
    pub command: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// How long it ran.
    pub seconds: f64,
    /// Whether it succeeded (exit code 0).
    pub ok: bool,
    /// Its exit code.
    pub exit_code: i32,
}

/// Everything `arca metrics` reports.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The repository id's first 8 hex digits.
    pub repository: String,
    /// Per source, ordered by host, paths, tags.
    pub sources: Vec<SourceMetrics>,
    /// Snapshots in the repository.
    pub snapshots: u64,
    /// Packs and their bytes (the repository's data).
    pub packs: u64,
    /// Bytes of all packs.
    pub pack_bytes: u64,
    /// Indexed blobs.
    pub blobs: u64,
    /// Packs with a recorded verification (check --read-data).
    pub packs_verified: u64,
    /// The oldest last-verification among verified packs.
    pub oldest_verification: Option<DateTime<Utc>>,
    /// The newest.
    pub newest_verification: Option<DateTime<Utc>>,
    /// Readable drill records.
    pub drills: u64,
    /// The newest drill.
    pub last_drill: Option<DrillRecord>,
    /// The emitting command's outcome.
    pub run: Option<RunOutcome>,
    /// Whether the repository was read (false: only `run` is reported).
    pub read: bool,
}

/// Collects the metrics of `repo` from `catalog` (synchronised by the
/// caller), its coverage records and its drill records.
pub fn collect(repo: &Repository, catalog: &Catalog) -> Result<Metrics> {
    let snapshots = catalog.snapshots()?;
    let sources = super::status::by_source(snapshots.iter().map(|(_, s)| s))
        .into_iter()
        .map(|((host, paths, tags), list)| SourceMetrics {
            host,
            paths,
            tags,
            snapshots: list.len() as u64,
            last: (*list.last().expect("a source has a snapshot")).clone(),
        })
        .collect();
    let (packs, pack_bytes, times) = super::status::coverage(repo, catalog)?;
    let ts = |t: i64| DateTime::from_timestamp(t, 0);
    let drills: Vec<DrillRecord> = super::drill::list(repo)?
        .into_iter()
        .filter_map(|(_, r)| r.ok())
        .collect();
    Ok(Metrics {
        repository: repo.config().id.to_hex()[..8].to_string(),
        sources,
        snapshots: snapshots.len() as u64,
        packs,
        pack_bytes,
        blobs: catalog.blob_count()?,
        packs_verified: times.len() as u64,
        oldest_verification: times.iter().min().and_then(|t| ts(*t)),
        newest_verification: times.iter().max().and_then(|t| ts(*t)),
        drills: drills.len() as u64,
        last_drill: drills.into_iter().max_by_key(|d| d.started),
        run: None,
        read: true,
    })
}

impl Metrics {
    /// Only a run's outcome, for a command whose repository could not be
    /// read afterwards (its series carry `repository="unknown"`).
    pub fn run_only(run: RunOutcome) -> Self {
        Self {
            repository: "unknown".into(),
            run: Some(run),
            read: false,
            ..Default::default()
        }
    }
}

/// One metric family being written: `# HELP`, `# TYPE`, then samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }
}

fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

/// A label value: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, others as Rust prints them
/// (which Prometheus parses).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn secs(t: &DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + t.timestamp_subsec_millis() as f64 / 1000.0
}

impl Metrics {
    /// The metrics in the Prometheus text format (0.0.4): every family with
    /// its HELP and TYPE, families in a fixed order, samples sorted.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let srcs: Vec<(Vec<(&str, String)>, &SourceMetrics)> = self
            .sources
            .iter()
            .map(|s| {
                (
                    vec![
                        ("host", s.host.clone()),
                        ("paths", s.paths.join(" ")),
                        ("tags", s.tags.join(",")),
                    ],
                    s,
                )
            })
            .collect();
        if self.read {
            self.repository_families(&mut out, &srcs);
        }
        if let Some(run) = &self.run {
            run_families(&mut out, &self.base_labels(), run);
        }
        out
    }

    /// The labels every series carries: `repository`, and `command` when
    /// the metrics are emitted after a command (so that what `backup` and
    /// `check` write, into their textfiles or Pushgateway groups, never
    /// collide as the same series).
    fn base_labels(&self) -> Vec<(&str, &str)> {
        let mut l = vec![("repository", self.repository.as_str())];
        if let Some(run) = &self.run {
            l.push(("command", run.command.as_str()));
        }
        l
    }

    fn repository_families(
        &self,
        out: &mut String,
        srcs: &[(Vec<(&str, String)>, &SourceMetrics)],
    ) {
        let r = self.base_labels();
        let per_source = |out: &mut String,
                          name: &'static str,
                          help: &str,
                          value: &dyn Fn(&SourceMetrics) -> Option<f64>| {
            let mut f = family(out, name, "gauge", help);
            for (labels, s) in srcs {
                if let Some(v) = value(s) {
                    let mut l = r.clone();
                    l.extend(labels.iter().map(|(k, v)| (*k, v.as_str())));
                    f.sample(&l, v);
                }
            }
        };
        per_source(
            out,
            "arca_source_snapshots",
            "Snapshots of the source (host, paths, tags).",
            &|s| Some(s.snapshots as f64),
        );
        per_source(
            out,
            "arca_source_last_snapshot_timestamp_seconds",
            "Time of the source's newest snapshot.",
            &|s| Some(secs(&s.last.time)),
        );
        per_source(
            out,
            "arca_source_last_snapshot_partial",
            "1 if the newest snapshot left out sources it could not read, else 0.",
            &|s| Some(if s.last.partial { 1.0 } else { 0.0 }),
        );
        per_source(
            out,
            "arca_source_last_snapshot_size_bytes",
            "Bytes of file content in the newest snapshot (what a restore writes).",
            &|s| Some(s.last.summary.total_bytes as f64),
        );
        per_source(
            out,
            "arca_source_last_snapshot_files",
            "Files in the newest snapshot.",
            &|s| {
                let m = &s.last.summary;
                Some((m.files_new + m.files_changed + m.files_unmodified) as f64)
            },
        );
        per_source(
            out,
            "arca_source_last_snapshot_duration_seconds",
            "How long the backup that made the newest snapshot ran.",
            &|s| {
                let m = &s.last.summary;
                let (a, b) = (m.backup_start?, m.backup_end?);
                Some((b - a).num_milliseconds().max(0) as f64 / 1000.0)
            },
        );
        per_source(
            out,
            "arca_source_last_snapshot_added_bytes",
            "Bytes the newest snapshot added to the repository (new data, compressed and encrypted).",
            &|s| Some(s.last.summary.data_added_packed as f64),
        );
        family(
            out,
            "arca_repository_snapshots",
            "gauge",
            "Snapshots in the repository.",
        )
        .sample(&r, self.snapshots as f64);
        family(
            out,
            "arca_repository_packs",
            "gauge",
            "Packs in the repository's index.",
        )
        .sample(&r, self.packs as f64);
        family(
            out,
            "arca_repository_size_bytes",
            "gauge",
            "Bytes of all indexed packs (the repository's data).",
        )
        .sample(&r, self.pack_bytes as f64);
        family(
            out,
            "arca_repository_blobs",
            "gauge",
            "Blobs in the repository's index.",
        )
        .sample(&r, self.blobs as f64);
        family(
            out,
            "arca_check_packs_verified",
            "gauge",
            "Packs whose content a check --read-data has verified (coverage records).",
        )
        .sample(&r, self.packs_verified as f64);
        family(
            out,
            "arca_check_coverage_ratio",
            "gauge",
            "Share of the packs ever verified by check --read-data, 0 to 1.",
        )
        .sample(
            &r,
            if self.packs == 0 {
                1.0
            } else {
                self.packs_verified as f64 / self.packs as f64
            },
        );
        if let Some(t) = &self.oldest_verification {
            family(
                out,
                "arca_check_oldest_verification_timestamp_seconds",
                "gauge",
                "The oldest last verification among verified packs: every verified pack was read since.",
            )
            .sample(&r, secs(t));
        }
        if let Some(t) = &self.newest_verification {
            family(
                out,
                "arca_check_last_verification_timestamp_seconds",
                "gauge",
                "The newest pack verification (the last check --read-data that read data).",
            )
            .sample(&r, secs(t));
        }
        family(
            out,
            "arca_drills",
            "gauge",
            "Restore drill records in the repository.",
        )
        .sample(&r, self.drills as f64);
        if let Some(d) = &self.last_drill {
            let paths = d.paths.join(" ");
            let mut l = r.clone();
            l.extend([("host", d.source_host.as_str()), ("paths", paths.as_str())]);
            family(
                out,
                "arca_drill_last_timestamp_seconds",
                "gauge",
                "When the newest restore drill started (labels: the source it restored).",
            )
            .sample(&l, secs(&d.started));
            family(
                out,
                "arca_drill_last_duration_seconds",
                "gauge",
                "The recovery time the newest drill measured: restore, checks and validator.",
            )
            .sample(&l, d.total_seconds);
            family(
                out,
                "arca_drill_last_success",
                "gauge",
                "1 if the newest drill's restore and every check passed, else 0.",
            )
            .sample(&l, if d.ok { 1.0 } else { 0.0 });
            if let Some(rto) = d.rto_seconds {
                family(
                    out,
                    "arca_drill_last_rto_seconds",
                    "gauge",
                    "The recovery time objective the newest drill was held against.",
                )
                .sample(&l, rto as f64);
            }
        }
    }
}

/// The families of the emitting command's outcome.
fn run_families(out: &mut String, l: &[(&str, &str)], run: &RunOutcome) {
    family(
        out,
        "arca_run_timestamp_seconds",
        "gauge",
        "When the command that wrote these metrics started.",
    )
    .sample(l, secs(&run.started));
    family(
        out,
        "arca_run_duration_seconds",
        "gauge",
        "How long it ran.",
    )
    .sample(l, run.seconds);
    family(
        out,
        "arca_run_success",
        "gauge",
        "1 if it succeeded (exit code 0), else 0.",
    )
    .sample(l, if run.ok { 1.0 } else { 0.0 });
    family(out, "arca_run_exit_code", "gauge", "Its exit code.").sample(l, run.exit_code as f64);
}

/// Writes `text` to `path` atomically, as node_exporter's textfile
/// collector needs (it must never read half a file): a temporary file in
/// the same directory, synced, then renamed over `path`. Its name starts
/// with a dot and ends in `.tmp`, which the collector ignores.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", path.display())))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // readable by the collector, which often runs as another user
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The Pushgateway address for a group: `URL/metrics/job/JOB/repository/ID`,
/// and `/command/CMD` after it for the metrics a command emits (each
/// command its own group: a push replaces its group whole, and `check`
/// must not wipe `backup`'s outcome). `job` must be a plain name (letters,
/// digits, `-`, `_`, `.`).
pub fn push_url(base: &str, job: &str, repository: &str, command: Option<&str>) -> Result<String> {
    let plain = |v: &str| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if !plain(job) {
        return Err(Error::Invalid(format!(
            "job name {job:?} for the Pushgateway: use letters, digits, '-', '_' and '.'"
        )));
    }
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::Invalid(format!(
            "Pushgateway address {base:?}: give its URL, e.g. http://pushgateway:9091"
        )));
    }
    let mut url = format!(
        "{}/metrics/job/{job}/repository/{repository}",
        base.trim_end_matches('/')
    );
    if let Some(c) = command {
        url.push_str("/command/");
        url.push_str(c);
    }
    Ok(url)
}

/// Replaces the group's metrics on the Pushgateway at `base` with `text`
/// (HTTP PUT, as `curl -X PUT --data-binary`): what an earlier push of the
/// same group held and this one lacks is gone.
pub fn push(
    base: &str,
    job: &str,
    repository: &str,
    command: Option<&str>,
    text: &str,
) -> Result<()> {
    let url = push_url(base, job, repository, command)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: "tokio runtime".into(),
            source: e,
        })?;
    let body = text.to_string();
    let failed = |why: String| {
        Error::Invalid(format!(
            "pushing metrics to {url} failed: {why} (is the Pushgateway running at {base}?)"
        ))
    };
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let resp = client
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(failed(format!("{status}: {}", text.trim())));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_numbers_are_written_as_prometheus_reads_them() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("two\nlines"), "two\\nlines");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1796319452.093), "1796319452.093");
        assert_eq!(number(f64::INFINITY), "+Inf");
        let mut out = String::new();
        family(&mut out, "arca_x", "gauge", "An x.").sample(&[("paths", "/a \"b\"")], 1.5);
        assert_eq!(
            out,
            "# HELP arca_x An x.\n# TYPE arca_x gauge\narca_x{paths=\"/a \\\"b\\\"\"} 1.5\n"
        );
    }

    #[test]
    fn push_urls_name_the_group_and_refuse_what_would_not_be_one() {
        assert_eq!(
            push_url("http://pg:9091/", "nightly", "97a50cbb", None).unwrap(),
            "http://pg:9091/metrics/job/nightly/repository/97a50cbb"
        );
        assert_eq!(
            push_url("http://pg:9091", "arca", "97a50cbb", Some("check")).unwrap(),
            "http://pg:9091/metrics/job/arca/repository/97a50cbb/command/check"
        );
        assert!(push_url("http://pg:9091", "a/b", "x", None).is_err());
        assert!(push_url("pg:9091", "arca", "x", None).is_err());
    }
}
