//! Hooks: a profile's shell commands around a command or one source
//! (`before`, `after`, `on-failure`, `finally`; docs/profiles.md gives
//! the stages and the environment they see).
//!
//! Contract of [`around`]: a failing `before` stops the run before its
//! body (no repository opened, no snapshot); `after` runs only on success
//! and its failure fails the run; `on-failure` runs on any failure, its
//! own failure only reported; `finally` always runs last, and its failure
//! fails a run that had succeeded. Hooks run with standard input closed
//! and standard output sent to standard error, so that `--json` output on
//! standard output stays clean. No timeout: the scheduler bounds the run.

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use anyhow::{Result, anyhow};
use serde::Deserialize;

use crate::output::Out;

/// One stage's commands: one shell line or several, run in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Lines {
    One(String),
    Many(Vec<String>),
}

impl Default for Lines {
    fn default() -> Self {
        Self::Many(vec![])
    }
}

impl Lines {
    pub fn list(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

/// The hooks of a command or a source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hooks {
    #[serde(default)]
    pub before: Lines,
    #[serde(default)]
    pub after: Lines,
    #[serde(default)]
    pub on_failure: Lines,
    #[serde(default)]
    pub finally: Lines,
}

/// Which hooks are running, for their environment and for messages.
pub struct Scope<'a> {
    pub profile: &'a str,
    pub command: &'a str,
    /// The source, for a source's hooks.
    pub source: Option<&'a str>,
    /// The exit code an error of the body means (1, or 2 for `check`,
    /// 130 after Ctrl-C): what `ARCA_EXIT_CODE` says and the process exits.
    pub error_code: &'a dyn Fn() -> i32,
}

impl Scope<'_> {
    fn what(&self) -> String {
        match self.source {
            Some(s) => format!("source {s}"),
            None => self.command.to_string(),
        }
    }
}

/// Snapshots a run saved, for the hooks' `ARCA_SNAPSHOT_ID`.
#[derive(Default)]
pub struct Saved(RefCell<Vec<String>>);

impl Saved {
    pub fn push(&self, id: String) {
        self.0.borrow_mut().push(id);
    }

    /// The ids saved so far.
    pub fn ids(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    fn joined(&self) -> String {
        self.0.borrow().join(" ")
    }
}

/// How the run ended, as the hooks after it see it.
struct Outcome<'a> {
    code: i32,
    error: Option<&'a str>,
}

impl Outcome<'_> {
    /// 0 and 3 (saved, partial) are successes; any other code, or an
    /// error, a failure.
    fn word(&self) -> &'static str {
        match (self.error, self.code) {
            (None, 0) => "success",
            (None, 3) => "partial",
            _ => "failure",
        }
    }
}

const BEFORE: &str = "before";
const AFTER: &str = "after";
const ON_FAILURE: &str = "on-failure";
const FINALLY: &str = "finally";

fn stage<'a>(h: &'a Hooks, name: &str) -> &'a [String] {
    match name {
        BEFORE => h.before.list(),
        AFTER => h.after.list(),
        ON_FAILURE => h.on_failure.list(),
        _ => h.finally.list(),
    }
}

/// Runs one stage's commands in order, stopping at the first that fails.
fn run_stage(
    h: &Hooks,
    name: &str,
    scope: &Scope,
    saved: &Saved,
    outcome: Option<&Outcome>,
) -> Result<()> {
    for line in stage(h, name) {
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(line)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr))
            .env("ARCA_HOOK", name)
            .env("ARCA_COMMAND", scope.command)
            .env("ARCA_PROFILE", scope.profile)
            .env_remove("ARCA_SOURCE")
            .env_remove("ARCA_OUTCOME")
            .env_remove("ARCA_EXIT_CODE")
            .env_remove("ARCA_ERROR");
        if let Some(s) = scope.source {
            cmd.env("ARCA_SOURCE", s);
        }
        if let Some(o) = outcome {
            cmd.env("ARCA_OUTCOME", o.word())
                .env("ARCA_EXIT_CODE", o.code.to_string());
            if let Some(e) = o.error {
                cmd.env("ARCA_ERROR", e);
            }
        }
        cmd.env("ARCA_SNAPSHOT_ID", saved.joined());
        let status = cmd
            .status()
            .map_err(|e| anyhow!("could not run the {name} hook `{line}`: {e}"))?;
        if !status.success() {
            return Err(anyhow!("the {name} hook `{line}` failed ({status})"));
        }
    }
    Ok(())
}

/// Runs `body` between `hooks` (just `body` without any). `saved` is
/// what the body saved, read by the hooks after it. The exit code a body
/// returns is kept; a hook's failure turns the result into an error.
pub fn around(
    hooks: Option<&Hooks>,
    scope: &Scope,
    out: &Out,
    saved: &Saved,
    body: impl FnOnce() -> Result<i32>,
) -> Result<i32> {
    let Some(h) = hooks else {
        return body();
    };
    let mut result = match run_stage(h, BEFORE, scope, saved, None) {
        // a panic (a bug) is a failure too: on-failure and finally still run
        Ok(()) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(anyhow::anyhow!(
                    "arca panicked (a bug, please report it): {what}"
                ))
            })
        }
        Err(e) => Err(e.context(format!("{} did not run", scope.what()))),
    };
    let hook_failed = |e: anyhow::Error| e.context(scope.what());
    let succeeded = |r: &Result<i32>| matches!(r, Ok(0) | Ok(3));
    if succeeded(&result) {
        let code = *result.as_ref().expect("succeeded");
        if let Err(e) = run_stage(h, AFTER, scope, saved, Some(&Outcome { code, error: None })) {
            result = Err(hook_failed(e));
        }
    }
    let message = result.as_ref().err().map(crate::render_error);
    let outcome = Outcome {
        code: match &result {
            Ok(c) => *c,
            Err(_) => (scope.error_code)(),
        },
        error: message.as_deref(),
    };
    if !succeeded(&result)
        && let Err(e) = run_stage(h, ON_FAILURE, scope, saved, Some(&outcome))
    {
        out.note(format!("warning: {}", crate::render_error(&hook_failed(e))));
    }
    if let Err(e) = run_stage(h, FINALLY, scope, saved, Some(&outcome)) {
        if succeeded(&result) {
            result = Err(hook_failed(e));
        } else {
            out.note(format!("warning: {}", crate::render_error(&hook_failed(e))));
        }
    }
    result
}
