//! Rendering: sizes, times, tables, JSON, and progress bars (on a terminal
//! only).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};

/// How much to print.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Out {
    /// A line for humans, unless quiet or JSON.
    pub fn say(&self, s: impl AsRef<str>) {
        if !self.quiet && !self.json {
            println!("{}", s.as_ref());
        }
    }

    /// A line on stderr for humans (keeps stdout clean for data).
    pub fn note(&self, s: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", s.as_ref());
        }
    }

    /// Whether progress bars should show.
    pub fn progress(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }
}

/// A snapshot as `snapshots --json` shows it (also in `forget --json`).
pub fn snapshot_json(
    id: &arca_engine::format::id::SnapshotId,
    s: &arca_engine::format::snapshot::Snapshot,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": id,
        "short_id": id.short(),
        "time": s.time,
        "host": s.host,
        "username": s.username,
        "tags": s.tags,
        "paths": s.paths,
        "tree": s.tree,
        "parent": s.parent,
        "original": s.original,
        "partial": s.partial,
        "program_version": s.program_version,
        "summary": s.summary,
    });
    // only where there is one (restic's shape otherwise)
    if !s.postgres.is_empty() {
        v["postgres"] = serde_json::json!(s.postgres);
    }
    if !s.checks.is_empty() {
        v["checks"] = serde_json::json!(s.checks);
    }
    v
}

/// Parses a size: `1234`, `500K`, `10M`, `2G`, `1T` (powers of 1024;
/// `KiB`, `MB` and the like are taken too).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("'{s}' is not a size: give e.g. 500M or 10G"))?;
    let mult: u64 = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => anyhow::bail!("'{s}' is not a size: give e.g. 500M or 10G"),
    };
    Ok((n * mult as f64) as u64)
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

/// 1536 -> "1.500 KiB".
pub fn size(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3} {}", U[i])
    }
}

/// A time in the local zone, to the second.
pub fn time(t: &DateTime<Utc>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Prints rows as a table with a header, columns padded to fit.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|s| s.to_string()).collect());
    println!(
        "{}",
        "-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1))
    );
    for r in rows {
        line(r.clone());
    }
}

/// What a long command has done so far, for its progress display. A
/// total of 0 is unknown.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub bytes_done: u64,
    /// Of `bytes_done`, those done without work (unchanged files): left out
    /// of the rate the time left is estimated from.
    pub bytes_instant: u64,
    pub bytes_total: u64,
    pub files_done: u64,
    pub files_total: u64,
    pub errors: u64,
    /// What it is doing, in words.
    pub message: String,
}

/// How often progress is shown: `ARCA_PROGRESS_FPS` (as restic's
/// RESTIC_PROGRESS_FPS), else 5 per second where it shows.
fn interval() -> Duration {
    let fps = std::env::var("ARCA_PROGRESS_FPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| *f > 0.0)
        .unwrap_or(5.0)
        .min(60.0);
    Duration::from_secs_f64(1.0 / fps)
}

/// Whether `--json` output is a stream of lines with status events (as
/// restic's): when standard output is a terminal or ARCA_PROGRESS_FPS is
/// set. Otherwise `--json` prints only the final object.
pub fn json_lines(out: &Out) -> bool {
    out.json
        && !out.quiet
        && (std::io::stdout().is_terminal() || std::env::var_os("ARCA_PROGRESS_FPS").is_some())
}

/// A command's final JSON object: `message_type` summary, on one line
/// when status lines came before it, else pretty-printed.
pub fn summary(out: &Out, mut v: serde_json::Value) {
    v["message_type"] = "summary".into();
    if json_lines(out) {
        println!("{}", serde_json::to_string(&v).expect("serializable"));
    } else {
        json(&v);
    }
}

/// One status event for `--json`: restic's field names where they exist.
fn status_line(st: &Status, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let mut v = serde_json::json!({
        "message_type": "status",
        "seconds_elapsed": secs.floor() as u64,
        "bytes_done": st.bytes_done,
        "files_done": st.files_done,
        "error_count": st.errors,
    });
    if st.bytes_total > 0 {
        let done = st.bytes_done.min(st.bytes_total);
        v["total_bytes"] = st.bytes_total.into();
        v["percent_done"] = (done as f64 / st.bytes_total as f64).into();
        let worked = done.saturating_sub(st.bytes_instant);
        if worked > 0 && secs > 0.0 {
            let rate = worked as f64 / secs;
            v["seconds_remaining"] = (((st.bytes_total - done) as f64 / rate).ceil() as u64).into();
        }
    }
    if st.files_total > 0 {
        v["total_files"] = st.files_total.into();
    }
    serde_json::to_string(&v).expect("serializable")
}

/// A progress display redrawn from a closure until dropped: a bar on a
/// terminal (bytes, rate, ETA when the total is known, files), status
/// lines on standard output with `--json` ([`json_lines`]), nothing
/// otherwise.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(out: &Out, render: impl Fn() -> Status + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let lines = json_lines(out);
        if !out.progress() && !lines {
            return Self { stop, handle: None };
        }
        let s = stop.clone();
        let every = interval();
        let handle = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            if lines {
                // the first at once, then every interval, one with the
                // final counts when the work ends, then (from the command)
                // the summary
                loop {
                    println!("{}", status_line(&render(), started.elapsed()));
                    if s.load(Ordering::Relaxed) {
                        return;
                    }
                    sleep_unless(&s, every);
                }
            }
            let bar = indicatif::ProgressBar::new(0);
            let known = indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .expect("valid template");
            let unknown = indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {spinner} {bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template");
            let mut has_total = None;
            while !s.load(Ordering::Relaxed) {
                let st = render();
                let total = st.bytes_total > 0;
                if has_total != Some(total) {
                    bar.set_style(if total {
                        known.clone()
                    } else {
                        unknown.clone()
                    });
                    has_total = Some(total);
                }
                bar.set_length(st.bytes_total.max(st.bytes_done));
                bar.set_position(st.bytes_done);
                let mut msg = match (st.files_done, st.files_total) {
                    // a command that counts no files (prune) shows its step
                    (0, 0) if !st.message.is_empty() => String::new(),
                    (n, 0) => format!("{n} files"),
                    (n, t) => format!("{n}/{t} files"),
                };
                if st.errors > 0 {
                    msg += &format!(", {} errors", st.errors);
                }
                if !st.message.is_empty() {
                    if !msg.is_empty() {
                        msg += ", ";
                    }
                    msg += &st.message;
                }
                bar.set_message(msg);
                bar.tick();
                sleep_unless(&s, every);
            }
            bar.finish_and_clear();
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

/// Sleeps `d`, waking early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = std::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
