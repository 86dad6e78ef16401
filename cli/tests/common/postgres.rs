//! A real PostgreSQL server for the tests: Debian's `postgresql` (which
//! `.ci/run` installs), on a Unix socket only. PostgreSQL refuses to run as
//! root: as root, the server (and what it runs) is `nobody`, through
//! `setpriv`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::is_root;

/// PostgreSQL's programs: Debian's versioned directory, or PATH.
pub fn pg_bin(tool: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    if let Some(d) = dirs.iter().rev().find(|d| d.join(tool).exists()) {
        return d.join(tool);
    }
    let o = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        !p.is_empty(),
        "PostgreSQL's {tool} is not installed: apt-get install postgresql (.ci/run does)"
    );
    PathBuf::from(p)
}

/// A command as the server's user: `nobody` when we are root.
pub fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn chown_to_server_user(p: &Path) {
    if is_root() {
        super::sh(&format!("chown -R 65534:65534 '{}'", p.display()));
    }
}

pub struct Server {
    pub data: PathBuf,
    pub sock: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Server {
    /// A new cluster in `dir/<name>` (superuser `postgres`, trust), listening
    /// only on a socket in `dir` at `port`, without fsync; not started.
    /// `env` is the server's environment (what its commands see).
    pub fn init(dir: &Path, name: &str, port: u16, env: Vec<(String, String)>) -> Self {
        let s = Server {
            data: dir.join(name),
            sock: dir.to_path_buf(),
            port,
            log: dir.join(format!("{name}.log")),
            env,
        };
        let o = as_server_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(&s.data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        append(
            &s.data.join("postgresql.conf"),
            &format!(
                "port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{}'\nfsync = off\n",
                dir.display()
            ),
        );
        s
    }

    /// A client program's command (`pg_dump`, `psql`) aimed at this server.
    pub fn client(&self, tool: &str) -> Command {
        let mut c = Command::new(pg_bin(tool));
        c.arg("-h")
            .arg(&self.sock)
            .args(["-p", &self.port.to_string(), "-U", "postgres"]);
        c
    }

    pub fn pg_ctl(&self, args: &[&str]) {
        let o = as_server_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_ctl {args:?}: {}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn sql(&self, q: &str) -> String {
        let o = Command::new(pg_bin("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-h")
            .arg(&self.sock)
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", q])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "psql {q}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Waits until `q` returns `want` (the server is shared and slow).
    pub fn wait_for(&self, q: &str, want: &str, what: &str) {
        let start = Instant::now();
        loop {
            let got = self.sql(q);
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{what}: {q} gives {got}, not {want}; server log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Appends `s` to the file `p`.
pub fn append(p: &Path, s: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(s.as_bytes()).unwrap();
}
