//! `arca metrics`: the repository's metrics in the Prometheus text format,
//! on standard output, into a node_exporter textfile, or to a Pushgateway;
//! and the same after `backup`, `check`, `forget` and `prune` when they are
//! given `--metrics-textfile` / `--metrics-push`, with the run's outcome.

use anyhow::{Context, Result};
use arca_engine::ops::metrics::{self, Metrics, RunOutcome};

use crate::args::{Global, MetricsArgs};
use crate::context;
use crate::output::Out;

/// Where metrics go.
pub struct Targets<'a> {
    pub textfile: Option<&'a std::path::Path>,
    pub push: Option<&'a str>,
    pub job: &'a str,
}

pub fn run(g: &Global, out: &Out, a: &MetricsArgs) -> Result<i32> {
    let m = collect(g)?;
    // its own flags, else the global ones (and so a profile's [metrics])
    let t = Targets {
        textfile: a.textfile.as_deref().or(g.metrics_textfile.as_deref()),
        push: a.push.as_deref().or(g.metrics_push.as_deref()),
        job: a
            .job
            .as_deref()
            .or(g.metrics_job.as_deref())
            .unwrap_or("arca"),
    };
    if t.textfile.is_none() && t.push.is_none() {
        print!("{}", m.to_text());
        return Ok(0);
    }
    emit(&m, &t, out)?;
    Ok(0)
}

fn collect(g: &Global) -> Result<Metrics> {
    let o = context::open(g)?;
    Ok(metrics::collect(o.repo(), o.catalog())?)
}

fn emit(m: &Metrics, t: &Targets, out: &Out) -> Result<()> {
    let text = m.to_text();
    if let Some(p) = t.textfile {
        metrics::write_textfile(p, &text)
            .with_context(|| format!("writing the metrics textfile {}", p.display()))?;
        out.note(format!("metrics written to {}", p.display()));
    }
    if let Some(url) = t.push {
        let command = m.run.as_ref().map(|r| r.command.as_str());
        metrics::push(url, t.job, &m.repository, command, &text)?;
        out.note(format!("metrics pushed to {url} (job {})", t.job));
    }
    Ok(())
}

/// After a command that was asked for metrics: the repository's, with the
/// run's outcome. A failure here is reported but does not change the
/// command's exit code; if the repository cannot be opened (the failure
/// the command met, perhaps), the run's outcome is still emitted.
pub fn after_command(
    g: &Global,
    out: &Out,
    command: &str,
    started: chrono::DateTime<chrono::Utc>,
    code: i32,
) {
    if g.metrics_textfile.is_none() && g.metrics_push.is_none() {
        return;
    }
    let run = RunOutcome {
        command: command.to_string(),
        started,
        seconds: (chrono::Utc::now() - started).num_milliseconds().max(0) as f64 / 1000.0,
        ok: code == 0,
        exit_code: code,
    };
    let mut m = match collect(g) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "arca: warning: metrics: the repository could not be read ({e:#}): only the run's outcome is emitted"
            );
            Metrics::run_only(run.clone())
        }
    };
    m.run = Some(run);
    let t = Targets {
        textfile: g.metrics_textfile.as_deref(),
        push: g.metrics_push.as_deref(),
        job: g.metrics_job.as_deref().unwrap_or("arca"),
    };
    if let Err(e) = emit(&m, &t, out) {
        eprintln!("arca: warning: metrics: {e:#}");
    }
}
