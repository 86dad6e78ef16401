//! Profiles: TOML files naming the repository, its password and backend
//! options, the sources to back up with their retention and objectives,
//! and hooks (docs/profiles.md is the user's description and must say the
//! same as this module).
//!
//! Contract: [`load`] finds and parses a profile, and every value that a
//! command would parse (an age, a size, a compression level, a span) is
//! parsed here too, with the command's own parser, so that a bad value is
//! reported with the file and line it is on before anything runs. The
//! profile then only fills what the command line and the environment left
//! unset ([`Loaded::fill_global`]); the commands ask it for their
//! defaults and sources.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use arca_engine::ops::forget::policy::{Policy, Span, TagList};
use indexmap::IndexMap;
use serde::Deserialize;

use crate::args::Global;
use crate::hooks::Hooks;

/// A profile as read, with where it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The name it was asked for by (`--profile NAME`).
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    pub profile: Profile,
}

/// The file's contents. Sections and keys are documented in
/// docs/profiles.md; unknown ones are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    #[serde(default)]
    pub repository: RepositorySection,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub backup: BackupDefaults,
    /// The default retention, and (`prune`) whether forget prunes.
    #[serde(default)]
    pub forget: Retention,
    #[serde(default)]
    pub prune: PruneSection,
    #[serde(default)]
    pub check: CheckSection,
    #[serde(default)]
    pub objectives: Objectives,
    #[serde(default)]
    pub hooks: CommandHooks,
    /// In the order of the file.
    #[serde(default)]
    pub sources: IndexMap<String, SourceSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RepositorySection {
    pub repo: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    #[serde(default)]
    pub insecure_empty_password: bool,
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub no_cache: bool,
    #[serde(default)]
    pub options: BackendOptions,
}

/// `-o KEY=VALUE` options: a table or an array of `KEY=VALUE` strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BackendOptions {
    Table(IndexMap<String, String>),
    List(Vec<String>),
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self::List(vec![])
    }
}

impl BackendOptions {
    /// As `-o` takes them.
    pub fn as_flags(&self) -> Vec<String> {
        match self {
            Self::Table(t) => t.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            Self::List(l) => l.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsSection {
    pub textfile: Option<PathBuf>,
    pub push: Option<String>,
    pub job: Option<String>,
}

/// What every source's backup takes unless the source says otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupDefaults {
    pub host: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    pub compression: Option<Checked<Compression>>,
    pub chunk_size: Option<Checked<ChunkSize>>,
    #[serde(default)]
    pub with_atime: bool,
}

/// The forget rules, as `arca forget` takes them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Retention {
    #[serde(default)]
    pub keep_last: i64,
    #[serde(default)]
    pub keep_hourly: i64,
    #[serde(default)]
    pub keep_daily: i64,
    #[serde(default)]
    pub keep_weekly: i64,
    #[serde(default)]
    pub keep_monthly: i64,
    #[serde(default)]
    pub keep_yearly: i64,
    pub keep_within: Option<Checked<SpanValue>>,
    pub keep_within_hourly: Option<Checked<SpanValue>>,
    pub keep_within_daily: Option<Checked<SpanValue>>,
    pub keep_within_weekly: Option<Checked<SpanValue>>,
    pub keep_within_monthly: Option<Checked<SpanValue>>,
    pub keep_within_yearly: Option<Checked<SpanValue>>,
    #[serde(default)]
    pub keep_tag: Vec<String>,
    /// `[forget]` only: forget then prune.
    #[serde(default)]
    pub prune: bool,
}

impl Retention {
    /// The engine's policy (every span was parsed when the file was read).
    pub fn policy(&self) -> Policy {
        let span = |v: &Option<Checked<SpanValue>>| {
            v.as_ref()
                .map(|s| Span::parse(&s.0).expect("checked when read"))
                .unwrap_or_default()
        };
        Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: span(&self.keep_within),
            keep_within_hourly: span(&self.keep_within_hourly),
            keep_within_daily: span(&self.keep_within_daily),
            keep_within_weekly: span(&self.keep_within_weekly),
            keep_within_monthly: span(&self.keep_within_monthly),
            keep_within_yearly: span(&self.keep_within_yearly),
            keep_tags: self.keep_tag.iter().map(|t| TagList::parse(t)).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PruneSection {
    pub max_unused: Option<Checked<MaxUnused>>,
    pub max_repack_size: Option<Checked<Size>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSection {
    #[serde(default)]
    pub read_data: bool,
    pub read_data_subset: Option<Checked<Subset>>,
    pub rolling: Option<Checked<Rolling>>,
}

/// Objectives, as `arca status` takes them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Objectives {
    pub rpo: Option<Checked<Age>>,
    pub rto: Option<Checked<Age>>,
    pub drill_age: Option<Checked<Age>>,
    pub check_age: Option<Checked<Age>>,
}

/// A source's own objectives (check age is the repository's).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceObjectives {
    pub rpo: Option<Checked<Age>>,
    pub rto: Option<Checked<Age>>,
    pub drill_age: Option<Checked<Age>>,
}

/// Hooks around commands, by command.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandHooks {
    pub backup: Option<Hooks>,
    pub check: Option<Hooks>,
    pub forget: Option<Hooks>,
    pub prune: Option<Hooks>,
    pub copy: Option<Hooks>,
    pub drill: Option<Hooks>,
    pub restore: Option<Hooks>,
    pub status: Option<Hooks>,
}

impl CommandHooks {
    /// The hooks of `command`, if the profile has any.
    pub fn of(&self, command: &str) -> Option<&Hooks> {
        match command {
            "backup" => self.backup.as_ref(),
            "check" => self.check.as_ref(),
            "forget" => self.forget.as_ref(),
            "prune" => self.prune.as_ref(),
            "copy" => self.copy.as_ref(),
            "drill" => self.drill.as_ref(),
            "restore" => self.restore.as_ref(),
            "status" => self.status.as_ref(),
            _ => None,
        }
    }
}

/// A command's argument vector, or one shell line (run by `sh -c`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Argv(Vec<String>),
    Shell(String),
}

impl CommandLine {
    pub fn argv(&self) -> Vec<String> {
        match self {
            Self::Argv(v) => v.clone(),
            Self::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        }
    }
}

/// One named source.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSection {
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub command: Option<CommandLine>,
    pub stdin_filename: Option<String>,
    pub check: Option<Checked<DumpCheck>>,
    pub check_command: Option<String>,
    #[serde(default)]
    pub allow_empty: bool,
    pub host: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
    pub compression: Option<Checked<Compression>>,
    pub chunk_size: Option<Checked<ChunkSize>>,
    pub with_atime: Option<bool>,
    pub retention: Option<Retention>,
    #[serde(default)]
    pub objectives: SourceObjectives,
    pub hooks: Option<Hooks>,
}

/// A string checked, when the profile is read, by the parser the command
/// line uses for the same option (so both accept the same values).
#[derive(Debug, Clone)]
pub struct Checked<K>(pub String, PhantomData<K>);

/// What a [`Checked`] value must parse as.
pub trait Kind {
    fn check(s: &str) -> std::result::Result<(), String>;
}

impl<'de, K: Kind> Deserialize<'de> for Checked<K> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        K::check(&s).map_err(serde::de::Error::custom)?;
        Ok(Self(s, PhantomData))
    }
}

macro_rules! kind {
    ($name:ident, |$s:ident| $body:expr) => {
        #[derive(Debug, Clone)]
        pub struct $name;
        impl Kind for $name {
            fn check($s: &str) -> std::result::Result<(), String> {
                $body
            }
        }
    };
}

kind!(Age, |s| arca_engine::ops::status::parse_age(s).map(drop));
kind!(Size, |s| crate::output::parse_size(s)
    .map(drop)
    .map_err(|e| e.to_string()));
kind!(ChunkSize, |s| crate::commands::backup::chunker(s)
    .map(drop)
    .map_err(|e| e.to_string()));
kind!(Compression, |s| s
    .parse::<arca_engine::format::compress::CompressionMode>()
    .map(drop));
kind!(SpanValue, |s| Span::parse(s).map(drop));
kind!(MaxUnused, |s| arca_engine::ops::prune::MaxUnused::parse(
    s,
    |v| { crate::output::parse_size(v).ok() }
)
.map(drop)
.map_err(|e| e.to_string()));
kind!(Subset, |s| {
    arca_engine::ops::check::DataSelection::parse_subset(s)
        .map(drop)
        .map_err(|e| e.to_string())
});
kind!(Rolling, |s| {
    arca_engine::ops::check::DataSelection::parse_rolling(s)
        .map(drop)
        .map_err(|e| e.to_string())
});
kind!(DumpCheck, |s| {
    arca_engine::ops::backup::dumps::DumpKind::parse(s)
        .map(drop)
        .map_err(|e| e.to_string())
});

/// Where `--profile NAME` is looked for, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![];
    if let Some(d) = std::env::var_os("ARCA_CONFIG_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => dirs.push(PathBuf::from(d).join("arca")),
        None => {
            if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
                dirs.push(PathBuf::from(h).join(".config/arca"));
            }
        }
    }
    dirs.push(PathBuf::from("/etc/arca"));
    dirs
}

/// The file `--profile NAME` means: NAME itself when it is a path (has a
/// `/` or ends in `.toml`), else `NAME.toml` in the first directory of
/// [`search_dirs`] that has it.
pub fn find(name: &str) -> Result<PathBuf> {
    if name.contains('/') || name.ends_with(".toml") {
        return Ok(PathBuf::from(name));
    }
    if name.is_empty() {
        bail!("--profile needs a name");
    }
    let dirs = search_dirs();
    for d in &dirs {
        let p = d.join(format!("{name}.toml"));
        if p.exists() {
            return Ok(p);
        }
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(anyhow!(
        "no profile {name}: {name}.toml is in none of {} (ARCA_CONFIG_DIR, XDG_CONFIG_HOME/arca, /etc/arca)",
        looked.join(", ")
    ))
}

/// Finds, reads and checks the profile `name`.
pub fn load(name: &str) -> Result<Loaded> {
    let path = find(name)?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading profile {}", path.display()))?;
    let profile = parse(&text).map_err(|e| anyhow!("profile {}: {e}", path.display()))?;
    Ok(Loaded {
        name: name.into(),
        path,
        profile,
    })
}

/// Parses and checks a profile's text; the error names the line and key.
pub fn parse(text: &str) -> Result<Profile> {
    let p: Profile = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
    let c = &p.check;
    if [
        c.read_data,
        c.read_data_subset.is_some(),
        c.rolling.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        > 1
    {
        bail!("[check]: give one of `read-data`, `read-data-subset` and `rolling`");
    }
    for (name, s) in &p.sources {
        let what = |m: &str| anyhow!("[sources.{name}]: {m}");
        match (&s.command, s.paths.is_empty()) {
            (None, true) => return Err(what("give `paths` or `command`")),
            (Some(_), false) => return Err(what("give `paths` or `command`, not both")),
            (Some(c), true) if c.argv().is_empty() => return Err(what("`command` is empty")),
            _ => {}
        }
        if s.command.is_none() {
            for key in ["stdin-filename", "check", "check-command"] {
                let given = match key {
                    "stdin-filename" => s.stdin_filename.is_some(),
                    "check" => s.check.is_some(),
                    _ => s.check_command.is_some(),
                };
                if given {
                    return Err(what(&format!("`{key}` is for a `command` source")));
                }
            }
        }
        if s.check.is_some() && s.check_command.is_some() {
            return Err(what("give `check` or `check-command`, not both"));
        }
        if s.retention.as_ref().is_some_and(|r| r.prune) {
            return Err(what(
                "`prune` in a retention: prune frees the whole repository's data, give `prune = true` in [forget]",
            ));
        }
        if let Some(n) = &s.stdin_filename {
            arca_engine::format::tree::check_name(n.as_bytes())
                .map_err(|e| what(&format!("stdin-filename: {e}")))?;
        }
    }
    Ok(p)
}

impl Loaded {
    /// Sets `[env]`'s variables that the environment does not have, before
    /// anything reads the environment.
    pub fn apply_env(&self) {
        for (k, v) in &self.profile.env {
            if std::env::var_os(k).is_none() {
                // SAFETY: called from main before any thread is started.
                unsafe { std::env::set_var(k, v) };
            }
        }
    }

    /// Fills the global options the command line and environment left
    /// unset. A password source given there replaces the profile's.
    pub fn fill_global(&self, g: &mut Global) {
        let r = &self.profile.repository;
        if g.repo.is_none() {
            g.repo = r.repo.clone();
        }
        let password_given = g.password_file.is_some()
            || g.password_command.is_some()
            || std::env::var_os("ARCA_PASSWORD").is_some();
        if !password_given {
            g.password_file = r.password_file.clone();
            g.password_command = r.password_command.clone();
            g.insecure_empty_password |= r.insecure_empty_password;
        }
        // a cache directory given there also overrides the profile's no-cache
        if g.cache_dir.is_none() && !g.no_cache {
            g.cache_dir = r.cache_dir.clone();
            g.no_cache = r.no_cache;
        }
        // option by option: `-o connections=4` keeps the profile's endpoint
        let key = |o: &str| o.split_once('=').map_or(o, |(k, _)| k).to_string();
        let given: Vec<String> = g.options.iter().map(|o| key(o)).collect();
        let mut options: Vec<String> = r
            .options
            .as_flags()
            .into_iter()
            .filter(|o| !given.contains(&key(o)))
            .collect();
        options.append(&mut g.options);
        g.options = options;
        let m = &self.profile.metrics;
        if g.metrics_textfile.is_none() {
            g.metrics_textfile = m.textfile.clone();
        }
        if g.metrics_push.is_none() {
            g.metrics_push = m.push.clone();
        }
        if g.metrics_job.is_none() {
            g.metrics_job = m.job.clone();
        }
    }

    /// The sources `names` picks (all of them when empty), in the file's
    /// order; an unknown name is an error listing the known ones.
    pub fn sources(&self, names: &[String]) -> Result<Vec<(&str, &SourceSection)>> {
        for n in names {
            if !self.profile.sources.contains_key(n) {
                let known: Vec<&str> = self.profile.sources.keys().map(String::as_str).collect();
                bail!(
                    "profile {} has no source {n} (it has: {})",
                    self.path.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        Ok(self
            .profile
            .sources
            .iter()
            .filter(|(n, _)| names.is_empty() || names.contains(n))
            .map(|(n, s)| (n.as_str(), s))
            .collect())
    }

    /// The host a source's snapshots carry.
    pub fn host_of(&self, s: &SourceSection) -> String {
        s.host
            .clone()
            .or_else(|| self.profile.backup.host.clone())
            .unwrap_or_else(arca_engine::host::facts::hostname)
    }

    /// The paths a source's snapshots record.
    pub fn paths_of(&self, name: &str, s: &SourceSection) -> Result<Vec<String>> {
        use arca_engine::ops::backup;
        Ok(match &s.command {
            Some(_) => vec![backup::stream_path(&stdin_filename(name, s))?],
            None => backup::recorded_paths(&s.paths)?,
        })
    }

    /// A source's retention: its own, else `[forget]`'s.
    pub fn retention_of<'a>(&'a self, s: &'a SourceSection) -> &'a Retention {
        s.retention.as_ref().unwrap_or(&self.profile.forget)
    }

    /// A source's objectives: its own, key by key over `[objectives]`.
    pub fn objectives_of(&self, s: &SourceSection) -> Objectives {
        let d = &self.profile.objectives;
        let o = &s.objectives;
        Objectives {
            rpo: o.rpo.clone().or_else(|| d.rpo.clone()),
            rto: o.rto.clone().or_else(|| d.rto.clone()),
            drill_age: o.drill_age.clone().or_else(|| d.drill_age.clone()),
            check_age: d.check_age.clone(),
        }
    }
}

/// The file name a command source is stored as: `stdin-filename`, or the
/// source's name.
pub fn stdin_filename(name: &str, s: &SourceSection) -> String {
    s.stdin_filename.clone().unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_profile_parses_and_keeps_the_source_order() {
        let p = parse(
            r#"
[repository]
repo = "/srv/repo"
password-file = "/etc/arca/pw"
options = { "s3.path-style" = "true" }
[backup]
host = "db1"
[forget]
keep-daily = 7
keep-within = "2d"
prune = true
[objectives]
rpo = "26h"
[sources.zeta]
paths = ["/etc"]
[sources.alpha]
command = ["pg_dump", "app"]
check = "postgres"
retention = { keep-last = 3 }
objectives = { rpo = "1h" }
hooks = { before = ["true", "true"], finally = "true" }
"#,
        )
        .unwrap();
        let names: Vec<&String> = p.sources.keys().collect();
        assert_eq!(names, ["zeta", "alpha"]);
        assert!(p.forget.prune);
        assert_eq!(p.forget.policy().keep_daily, 7);
        assert_eq!(p.repository.options.as_flags(), ["s3.path-style=true"]);
    }

    #[test]
    fn bad_keys_and_values_name_their_line() {
        for (text, needle) in [
            ("[backup]\nhost = \"a\"\nexclude = [\"x\"]\n", "line 3"),
            ("[objectives]\n\nrpo = \"soon\"\n", "line 3"),
            (
                "[sources.a]\npaths = [\"/x\"]\nchunk-size = \"7\"\n",
                "line 3",
            ),
            ("[prune]\nmax-unused = \"lots\"\n", "line 2"),
            (
                "[sources.a]\ncommand = \"x\"\ncheck = \"mysql\"\n",
                "line 3",
            ),
            ("[forget]\nkeep-within = \"5\"\n", "line 2"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_source_needs_paths_or_a_command() {
        assert!(parse("[sources.a]\ntags = [\"x\"]\n").is_err());
        assert!(parse("[sources.a]\npaths = [\"/x\"]\ncommand = \"y\"\n").is_err());
        assert!(parse("[sources.a]\npaths = [\"/x\"]\ncheck = \"redis\"\n").is_err());
        assert!(parse("[sources.a]\ncommand = []\n").is_err());
    }
}
