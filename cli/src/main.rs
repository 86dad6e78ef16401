//! The `arca` binary: parses the command line, runs one command through the
//! engine, renders the result, and maps the outcome to an exit code
//! (0 success, 1 failure, 3 backup saved but some sources unreadable;
//! `check` exits 1 when it found damage and 2 when it could not run,
//! `find` 1 when nothing matched and 2 when it could not run;
//! `drill` 4 when it passed but missed its RTO; `status` 5 when an
//! objective is breached).

mod args;
mod commands;
mod context;
mod hooks;
mod output;
mod profile;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

use args::{Cli, Command};

/// The pipelines allocate and free multi-megabyte buffers constantly.
/// Measured on the benchmark corpus (2 cores, SCALE 1 and 4): with glibc's
/// defaults freed memory piles up in per-thread arenas (backup peaked near
/// 200 MB and grew with the input). Buffers of 4 MiB and more (packs, large
/// chunks) come straight from mmap, the rest from two arenas trimmed above
/// 16 MiB: in the benchmark runs in docs/, backup peaks at 100-117 MB at
/// SCALE 1 and 133 MB at SCALE 4 (restic: 128 and 135 MB), at the same
/// speed.
fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() {
    tune_allocator();
    let mut cli = Cli::parse();
    // The profile first: its [env] must be set before any thread starts.
    let profile = match cli.global.profile.as_deref().map(profile::load) {
        None => None,
        Some(Ok(p)) => {
            p.apply_env();
            p.fill_global(&mut cli.global);
            Some(p)
        }
        Some(Err(e)) => {
            eprintln!("arca: {}", render_error(&e));
            std::process::exit(1);
        }
    };
    let out = output::Out {
        json: cli.global.json,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    };
    // First Ctrl-C (or SIGTERM, SIGHUP: a scheduler stopping the job):
    // stop cleanly (nothing half-done is committed);
    // second: leave at once.
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if c.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("stopping (press Ctrl-C again to quit at once)...");
        });
    }
    let g = &cli.global;
    let started = chrono::Utc::now();
    let saved = hooks::Saved::default();
    let command_hooks = profile
        .as_ref()
        .and_then(|p| p.profile.hooks.of(cli.command.name()));
    // the exit code of a command that failed
    let error_code = || {
        if cancel.load(Ordering::SeqCst) {
            130
        } else if matches!(cli.command, Command::Check(_) | Command::Find(_)) {
            // 1 means damage found (check) or nothing found (find)
            2
        } else {
            1
        }
    };
    let scope = hooks::Scope {
        profile: profile.as_ref().map_or("", |p| p.name.as_str()),
        command: cli.command.name(),
        source: None,
        error_code: &error_code,
    };
    let p = profile.as_ref();
    let r = hooks::around(command_hooks, &scope, &out, &saved, || match &cli.command {
        Command::Init(a) => commands::init::run(g, &out, a),
        Command::Backup(a) => commands::backup::run(g, &out, a, cancel.clone(), p, &saved),
        Command::Snapshots(a) => commands::snapshots::run(g, &out, a),
        Command::Restore(a) => commands::restore::run(g, &out, a, cancel.clone()),
        Command::Dump(a) => commands::dump::run(g, &out, a),
        Command::Drill(a) => commands::drill::run(g, &out, a, cancel.clone()),
        Command::Ls(a) => commands::ls::run(g, &out, a),
        Command::Cat(a) => commands::cat::run(g, a),
        Command::Key(a) => commands::key::run(g, &out, a),
        Command::Check(a) => commands::check::run(g, &out, a, p),
        Command::Repair(a) => commands::repair::run(g, &out, a),
        Command::Unlock(a) => commands::unlock::run(g, &out, a),
        Command::Forget(a) => commands::forget::run(g, &out, a, p),
        Command::Prune(a) => commands::prune::run(g, &out, a, p),
        Command::Copy(a) => commands::copy::run(g, &out, a, cancel.clone()),
        Command::Wal(a) => commands::wal::run(g, &out, a),
        Command::Metrics(a) => commands::metrics::run(g, &out, a),
        Command::Status(a) => commands::status::run(g, &out, a, p),
        Command::Diff(a) => commands::diff::run(g, &out, a),
        Command::Stats(a) => commands::stats::run(g, &out, a),
        Command::Find(a) => commands::find::run(g, &out, a),
        Command::Tag(a) => commands::tag::run(g, &out, a),
        Command::Mount(a) => commands::mount::run(g, &out, a, &cancel),
        Command::Profile => commands::profile::run(&out, p),
    });
    let code = match r {
        Ok(c) => c,
        Err(e) => {
            let code = error_code();
            let message = render_error(&e);
            if out.json {
                // as restic's `--json` does: scripts read one object
                eprintln!(
                    "{}",
                    serde_json::json!({"message_type": "exit_error", "code": code, "message": message})
                );
            } else {
                eprintln!("arca: {message}");
            }
            code
        }
    };
    let emits = match &cli.command {
        Command::Backup(_) => Some("backup"),
        Command::Check(_) => Some("check"),
        Command::Forget(_) => Some("forget"),
        Command::Prune(_) => Some("prune"),
        _ => None,
    };
    if let Some(command) = emits {
        commands::metrics::after_command(g, &out, command, started, code);
    }
    std::process::exit(code);
}

/// The error and its causes, each said once: an engine error's message
/// already includes its source, which the chain would repeat ("File
/// exists (os error 17): File exists (os error 17)").
fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out += ": ";
        }
        out += &text;
    }
    out
}
