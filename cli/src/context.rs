//! Turning global options into an open repository and catalog: the
//! repository address and backend options (`-o`), the password (file,
//! command, environment, prompt) and the cache directory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use arca_engine::store::backend::{self, BackendOptions, Connected, Metrics};
use arca_engine::store::blob_reader::BlobReader;
use arca_engine::store::catalog::{Catalog, SyncStats};
use arca_engine::store::repo::Repository;
use arca_engine::store::session::{self, Access, Exclusive, Maintenance, Read, Session, Write};

use crate::args::Global;

/// Reads a password from a file: its first line.
pub fn password_from_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let s =
        std::fs::read(path).with_context(|| format!("reading password file {}", path.display()))?;
    let first = s.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(first.strip_suffix(b"\r").unwrap_or(first).to_vec())
}

/// Where a repository's password comes from, in order: a file, a
/// command, an environment variable, the terminal. The main repository's
/// (`--password-file`, `ARCA_PASSWORD`, ...) or `copy`'s source's
/// (`--from-password-file`, `ARCA_FROM_PASSWORD`, ...).
pub struct PasswordSources {
    pub file: Option<PathBuf>,
    pub command: Option<String>,
    /// The variable holding the password itself.
    pub var: &'static str,
    /// Every source, for the message when none is set.
    pub names: &'static str,
    /// Accept an empty password.
    pub allow_empty: bool,
    /// The flag that does.
    pub allow_empty_flag: &'static str,
    /// Which repository, for the prompt: "repository", "source repository".
    pub what: &'static str,
}

impl PasswordSources {
    /// The main repository's (`--repo`).
    pub fn main(g: &Global) -> Self {
        Self {
            file: g.password_file.clone(),
            command: g.password_command.clone(),
            var: "ARCA_PASSWORD",
            names: "ARCA_PASSWORD_FILE, ARCA_PASSWORD_COMMAND or ARCA_PASSWORD",
            allow_empty: g.insecure_empty_password,
            allow_empty_flag: "--insecure-empty-password",
            what: "repository",
        }
    }
}

/// The password for the repository, from the first source that is set.
/// An empty password is refused from every source (an unset variable in a
/// script, an empty file), unless `--insecure-empty-password` says it is
/// meant: a repository under an empty password is not protected.
pub fn password(g: &Global, confirm: bool) -> Result<Vec<u8>> {
    password_from(&PasswordSources::main(g), confirm)
}

/// The password from `src`, as [`password`] reads the main one.
pub fn password_from(src: &PasswordSources, confirm: bool) -> Result<Vec<u8>> {
    let (pw, from) = password_from_sources(src, confirm)?;
    refuse_empty_from(src, &pw, &from)?;
    Ok(pw)
}

/// Refuses an empty password read from `from`, unless allowed.
pub fn refuse_empty(g: &Global, pw: &[u8], from: &str) -> Result<()> {
    refuse_empty_from(&PasswordSources::main(g), pw, from)
}

fn refuse_empty_from(src: &PasswordSources, pw: &[u8], from: &str) -> Result<()> {
    if pw.is_empty() && !src.allow_empty {
        bail!(
            "the password from {from} is empty; an empty password would leave the {} unprotected, so it is refused (check that {from} is set; `{}` allows an empty one)",
            src.what,
            src.allow_empty_flag
        );
    }
    Ok(())
}

fn password_from_sources(g: &PasswordSources, confirm: bool) -> Result<(Vec<u8>, String)> {
    if let Some(f) = &g.file {
        return Ok((
            password_from_file(f)?,
            format!("the password file {}", f.display()),
        ));
    }
    if let Some(cmd) = &g.command {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running password command {cmd}"))?;
        if !out.status.success() {
            bail!("password command {cmd} failed: {}", out.status);
        }
        let s = out.stdout;
        let first = s.split(|&b| b == b'\n').next().unwrap_or_default();
        return Ok((first.to_vec(), format!("the password command {cmd}")));
    }
    if let Some(p) = std::env::var_os(g.var) {
        use std::os::unix::ffi::OsStrExt;
        return Ok((p.as_bytes().to_vec(), g.var.into()));
    }
    Ok((
        prompt_from(g, &format!("enter password for {}: ", g.what), confirm)?,
        "the prompt".into(),
    ))
}

/// Asks on the terminal (twice when `confirm`).
pub fn prompt(g: &Global, question: &str, confirm: bool) -> Result<Vec<u8>> {
    prompt_from(&PasswordSources::main(g), question, confirm)
}

fn prompt_from(g: &PasswordSources, question: &str, confirm: bool) -> Result<Vec<u8>> {
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        bail!(
            "no password given for the {}: set {}, or run on a terminal",
            g.what,
            g.names
        );
    }
    let p = rpassword::prompt_password(question).context("reading password")?;
    if confirm {
        let again =
            rpassword::prompt_password("enter the password again: ").context("reading password")?;
        if again != p {
            bail!("the passwords do not match");
        }
    }
    refuse_empty_from(g, p.as_bytes(), "the prompt")?;
    Ok(p.into_bytes())
}

/// The repository address, or an error naming how to give it.
pub fn repo_location(g: &Global) -> Result<String> {
    g.repo
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| anyhow!("no repository given: use -r/--repo or set ARCA_REPOSITORY"))
}

/// Connects to the repository's store with the `-o` options.
pub fn connect(g: &Global) -> Result<Connected> {
    connect_at(&repo_location(g)?, &g.options)
}

/// Connects to the store at `location` with backend `options` (`-o`).
pub fn connect_at(location: &str, options: &[String]) -> Result<Connected> {
    let options = BackendOptions::parse(options)?;
    Ok(backend::connect(location, &options)?)
}

/// An open repository with its synced catalog (no lock yet), and what its
/// connection measures.
pub struct Opened {
    pub open: session::Opened,
    /// Requests and bytes sent to the store.
    pub metrics: Arc<Metrics>,
    /// Concurrent uploads to use.
    pub uploads: usize,
    /// Concurrent ranged reads for restores (`None`: the engine default).
    pub downloads: Option<usize>,
}

/// A repository held by a command with the access it needs (see the
/// engine's `store::session`), and what its connection measures.
pub struct Held<A: Access> {
    pub session: Session<A>,
    pub metrics: Arc<Metrics>,
    pub uploads: usize,
    pub downloads: Option<usize>,
}

impl Opened {
    /// The repository.
    pub fn repo(&self) -> &Repository {
        self.open.repo()
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        self.open.catalog()
    }

    /// What the catalog sync read.
    pub fn sync(&self) -> &SyncStats {
        self.open.sync()
    }

    /// A blob reader over this repository (for `cat`, which reads single
    /// objects and takes no lock).
    pub fn reader(&self) -> BlobReader {
        BlobReader::new(self.repo().clone(), self.catalog().clone())
    }

    /// Opens the session `open_as` takes out of the repository, and holds
    /// it with this connection's counters.
    fn hold<A: Access>(
        self,
        open_as: impl FnOnce(session::Opened) -> arca_engine::error::Result<Session<A>>,
    ) -> Result<Held<A>> {
        let Self {
            open,
            metrics,
            uploads,
            downloads,
        } = self;
        Ok(Held {
            session: open_as(open)?,
            metrics,
            uploads,
            downloads,
        })
    }

    /// For a reading command: a shared lock, unless `--no-lock`.
    pub fn reading(self, g: &Global, operation: &str) -> Result<Held<Read>> {
        self.reading_locked(!g.no_lock, operation)
    }

    /// For reading: a shared lock, or none when `lock` is false (a
    /// repository on read-only media).
    pub fn reading_locked(self, lock: bool, operation: &str) -> Result<Held<Read>> {
        self.hold(|o| o.for_reading(operation, lock))
    }

    /// For a command that adds objects: a shared lock.
    pub fn writing(self, g: &Global, operation: &str) -> Result<Held<Write>> {
        if g.no_lock {
            bail!("--no-lock is for reading commands only: {operation} writes to the repository");
        }
        self.hold(|o| o.for_writing(operation))
    }

    /// For prune: the maintenance lock (one at a time, beside backups).
    pub fn maintenance(self, g: &Global, operation: &str) -> Result<Held<Maintenance>> {
        if g.no_lock {
            bail!(
                "--no-lock is for reading commands only: {operation} deletes from the repository"
            );
        }
        self.hold(|o| o.maintenance(operation))
    }

    /// For a command that rewrites or deletes: an exclusive lock.
    pub fn exclusive(self, g: &Global, operation: &str) -> Result<Held<Exclusive>> {
        if g.no_lock {
            bail!("--no-lock is for reading commands only: {operation} rewrites the repository");
        }
        self.hold(|o| o.exclusive(operation))
    }
}

impl<A: Access> Held<A> {
    /// Stale locks of others seen while taking ours, as warnings.
    pub fn note_stale_locks(&self, out: &crate::output::Out) {
        for s in self.session.stale_locks() {
            out.note(format!(
                "warning: stale {}: `arca unlock` removes it",
                s.describe()
            ));
        }
    }

    /// The requests and bytes sent, on `-v`.
    pub fn note_metrics(&self, out: &crate::output::Out) {
        if out.verbose > 0 {
            for l in metrics_lines(&self.metrics) {
                out.note(l);
            }
        }
    }
}

/// Opens the repository (no catalog): for commands that only touch a few
/// objects (`unlock`).
pub fn open_repo(g: &Global) -> Result<(Repository, Connected)> {
    let c = connect(g)?;
    let password = password(g, false)?;
    let repo = Repository::open(c.backend.clone(), &password)?;
    Ok((repo, c))
}

/// Opens the repository and brings the catalog up to date.
pub fn open(g: &Global) -> Result<Opened> {
    let (repo, c) = open_repo(g)?;
    opened(g, repo, c)
}

/// Opens another repository than `--repo` (`copy`'s source) at
/// `location`, with backend `options` and the password from `password`,
/// and brings its catalog up to date (in the same cache directory: each
/// repository's catalog is under its own id).
pub fn open_at(
    g: &Global,
    location: &str,
    options: &[String],
    password: &PasswordSources,
) -> Result<Opened> {
    let c = connect_at(location, options)?;
    let pw = password_from(password, false)?;
    let repo = Repository::open(c.backend.clone(), &pw)?;
    opened(g, repo, c)
}

fn opened(g: &Global, repo: Repository, c: Connected) -> Result<Opened> {
    let catalog = open_catalog(g, &repo)?;
    Ok(Opened {
        open: session::Opened::new(repo, Arc::new(catalog))?,
        metrics: c.metrics,
        uploads: c.uploads,
        downloads: c.downloads,
    })
}

/// One line per operation that sent requests: "put: 12 requests, 190 MiB".
pub fn metrics_lines(m: &Metrics) -> Vec<String> {
    m.totals()
        .into_iter()
        .filter(|(_, t)| t.requests > 0)
        .map(|(op, t)| {
            format!(
                "backend {op}: {} requests, {}{}",
                t.requests,
                if op == "list" {
                    format!("{} objects", t.bytes)
                } else {
                    crate::output::size(t.bytes)
                },
                if t.errors > 0 {
                    format!(", {} failed", t.errors)
                } else {
                    String::new()
                }
            )
        })
        .collect()
}

/// The catalog for `repo` in the cache directory (or in memory).
pub fn open_catalog(g: &Global, repo: &Repository) -> Result<Catalog> {
    let id = &repo.config().id;
    if g.no_cache {
        return Ok(Catalog::in_memory(id)?);
    }
    let dir: PathBuf = g
        .cache_dir
        .clone()
        .unwrap_or_else(arca_engine::host::facts::default_cache_dir);
    Ok(Catalog::open(&dir, id)?)
}
