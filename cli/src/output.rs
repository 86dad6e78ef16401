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

/// A progress bar redrawn from a closure until dropped.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts redrawing `render()` as the bar's message, or does nothing
    /// when progress should not show.
    pub fn start(out: &Out, render: impl Fn() -> (u64, u64, String) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        if !out.progress() {
            return Self { stop, handle: None };
        }
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                )
                .expect("valid template"),
            );
            while !s.load(Ordering::Relaxed) {
                let (done, total, msg) = render();
                bar.set_length(total.max(done));
                bar.set_position(done);
                bar.set_message(msg);
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Self {
            stop,
            handle: Some(handle),
        }
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
