//! Point-in-time recovery set-up: what a restored PostgreSQL data
//! directory needs to replay archived WAL up to a target.
//!
//! Writes `recovery.signal` and appends to `postgresql.auto.conf` (read
//! after `postgresql.conf`; the last setting of a name wins):
//! `restore_command`, the recovery target and its action, and
//! `archive_mode = 'off'`, so that the restored server, which will start a
//! new timeline, never archives into the production archive with the
//! production `archive_command` it was restored with. When the restored
//! server is to become the new primary, the caller gives the
//! `archive_command` that archives its new timeline into this archive
//! instead (`archive_mode = 'on'`): later base backups and `wal verify`
//! then follow the timeline it starts. Nothing else in the directory is
//! touched.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Where replay stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The end of the archived WAL.
    Latest,
    /// `recovery_target_time` (PostgreSQL's timestamp syntax).
    Time(String),
    /// `recovery_target_lsn` (`X/X`).
    Lsn(String),
    /// `recovery_target_name` (a `pg_create_restore_point` name).
    Name(String),
    /// `recovery_target_xid`.
    Xid(String),
}

/// What to do at the target: `recovery_target_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open for writes on a new timeline.
    Promote,
    /// Stay in recovery, read-only (to inspect before promoting).
    Pause,
    /// Stop the server.
    Shutdown,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Pause => "pause",
            Action::Shutdown => "shutdown",
        }
    }
}

/// A value as a PostgreSQL configuration string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A word for `/bin/sh` (which runs `restore_command`), single-quoted.
pub fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The lines appended to `postgresql.auto.conf`; `archive_command`, when
/// given, keeps archiving on (with that command) instead of turning it off.
pub fn settings(
    restore_command: &str,
    archive_command: Option<&str>,
    target: &Target,
    action: Action,
    now: &str,
) -> String {
    let archive = match archive_command {
        None => "archive_mode = 'off'\n".to_string(),
        Some(c) => format!("archive_mode = 'on'\narchive_command = {}\n", literal(c)),
    };
    let mut s = format!(
        "\n# recovery from arca's WAL archive, set up by `arca wal recover` at {now}\n\
         {archive}\
         restore_command = {}\n",
        literal(restore_command)
    );
    let t = match target {
        Target::Latest => None,
        Target::Time(v) => Some(("recovery_target_time", v)),
        Target::Lsn(v) => Some(("recovery_target_lsn", v)),
        Target::Name(v) => Some(("recovery_target_name", v)),
        Target::Xid(v) => Some(("recovery_target_xid", v)),
    };
    if let Some((k, v)) = t {
        s.push_str(&format!("{k} = {}\n", literal(v)));
        s.push_str(&format!(
            "recovery_target_action = {}\n",
            literal(action.as_str())
        ));
    }
    s
}

/// Prepares the data directory `data` for recovery (see the module
/// comment). Refuses a directory that is not a PostgreSQL data directory
/// (no `PG_VERSION`) or that holds `postmaster.pid` (a server may run on
/// it).
pub fn prepare(data: &Path, settings: &str) -> Result<()> {
    if !data.join("PG_VERSION").is_file() {
        return Err(Error::Invalid(format!(
            "{}: not a PostgreSQL data directory (no PG_VERSION); restore the base backup there first",
            data.display()
        )));
    }
    if data.join("postmaster.pid").exists() {
        return Err(Error::Invalid(format!(
            "{}: postmaster.pid is there: a server may be running on it (stop it; a base backup restored by arca has no postmaster.pid)",
            data.display()
        )));
    }
    let auto = data.join("postgresql.auto.conf");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&auto)
        .at(&auto)?;
    f.write_all(settings.as_bytes()).at(&auto)?;
    f.sync_all().at(&auto)?;
    let signal = data.join("recovery.signal");
    std::fs::write(&signal, b"").at(&signal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_quote_and_disable_archiving() {
        let cmd = format!("{} wal fetch %f %p", shell_word("/opt/it's/arca"));
        let s = settings(
            &cmd,
            None,
            &Target::Time("2026-12-03 08:00:00+00".into()),
            Action::Promote,
            "now",
        );
        assert!(s.contains("archive_mode = 'off'\n"));
        assert!(s.contains(r"restore_command = '''/opt/it''\''''s/arca'' wal fetch %f %p'"));
        assert!(s.contains("recovery_target_time = '2026-12-03 08:00:00+00'\n"));
        assert!(s.contains("recovery_target_action = 'promote'\n"));
        let latest = settings("x", None, &Target::Latest, Action::Pause, "now");
        assert!(!latest.contains("recovery_target"));
        let primary = settings(
            "x",
            Some("arca wal push %p"),
            &Target::Latest,
            Action::Promote,
            "now",
        );
        assert!(primary.contains("archive_mode = 'on'\narchive_command = 'arca wal push %p'\n"));

        let d = tempfile::tempdir().unwrap();
        assert!(prepare(d.path(), &s).is_err(), "not a data directory");
        std::fs::write(d.path().join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(d.path().join("postgresql.auto.conf"), "work_mem = '8MB'\n").unwrap();
        prepare(d.path(), &s).unwrap();
        let auto = std::fs::read_to_string(d.path().join("postgresql.auto.conf")).unwrap();
        assert!(auto.starts_with("work_mem = '8MB'\n") && auto.ends_with(&s));
        assert!(d.path().join("recovery.signal").exists());
    }
}
