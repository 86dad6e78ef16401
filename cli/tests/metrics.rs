//! `arca metrics` and `--metrics-textfile` / `--metrics-push`, against the
//! real tools: `promtool check metrics` (Debian: prometheus) validates
//! every output, and a real Pushgateway (Debian: prometheus-pushgateway)
//! started on a free loopback port receives the pushes; what it then
//! serves is compared with what arca computed.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, noise};

/// Fails with the install hint when a tool is missing.
fn need(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{tool} is not installed: apt-get install {package}");
}

/// `promtool check metrics` on `text`: panics with its complaints.
fn promtool(text: &str) {
    need("promtool", "prometheus");
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed:\n{}{}\n--- the metrics:\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The samples of a text exposition: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include all of `has`.
fn value(s: &BTreeMap<String, f64>, name: &str, has: &[&str]) -> f64 {
    let hits: Vec<_> = s
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name) && has.iter().all(|h| k.contains(h)))
        .collect();
    assert_eq!(hits.len(), 1, "{name} {has:?}: {hits:?} in {s:#?}");
    *hits[0].1
}

struct Pushgateway {
    child: Child,
    url: String,
}

impl Pushgateway {
    fn start(dir: &Path) -> Self {
        need("prometheus-pushgateway", "prometheus-pushgateway");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.join("pushgateway.data").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("pushgateway.log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the Pushgateway did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }

    /// What it serves on /metrics (plain HTTP/1.0, no client library).
    fn scrape(&self) -> String {
        let addr = self.url.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let (head, text) = body.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        text.to_string()
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn metrics_describe_sources_coverage_and_drills_and_reach_textfiles_and_a_pushgateway() {
    let e = Env::init();
    let src = e.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(3 << 20, 1)).unwrap();
    std::fs::write(src.join("b.txt"), b"hello").unwrap();
    // the source: host db1, tag daily; `extra` arguments after
    let src_backup = |extra: &[&str]| {
        let mut a = vec![
            "backup",
            src.to_str().unwrap(),
            "--tag",
            "daily",
            "--host",
            "db1",
        ];
        a.extend_from_slice(extra);
        e.json(&a)
    };
    src_backup(&[]);
    std::fs::write(src.join("c.bin"), noise(1 << 20, 2)).unwrap();
    let last = src_backup(&[]);
    let mut c = e.cmd();
    c.args([
        "backup",
        "--stdin",
        "--stdin-filename",
        "app.sql",
        "--host",
        "db1",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"-- dump\n").unwrap();
    assert!(child.wait().unwrap().success());
    e.ok(&["check", "--read-data"]);
    e.ok(&["drill", "--rto", "3600"]);

    let text = e.ok(&["metrics"]);
    promtool(&text);
    // the global --metrics-textfile (a profile's [metrics]) is where
    // `arca metrics` writes when it is not told otherwise
    let tf = e.path("global.prom");
    let printed = e.ok(&["--metrics-textfile", tf.to_str().unwrap(), "metrics"]);
    assert!(printed.is_empty(), "{printed}");
    assert!(
        std::fs::read_to_string(&tf)
            .unwrap()
            .contains("arca_repository_snapshots")
    );
    let s = samples(&text);
    let src_l = format!("paths=\"{}\"", src.display());
    let src_labels = [src_l.as_str(), "host=\"db1\"", "tags=\"daily\""];
    assert_eq!(value(&s, "arca_source_snapshots", &src_labels), 2.0);
    assert_eq!(
        value(&s, "arca_source_last_snapshot_files", &src_labels),
        3.0
    );
    assert_eq!(
        value(&s, "arca_source_last_snapshot_size_bytes", &src_labels),
        ((3 << 20) + 5 + (1 << 20)) as f64
    );
    let t = chrono::DateTime::parse_from_rfc3339(last["time"].as_str().unwrap()).unwrap();
    let got = value(
        &s,
        "arca_source_last_snapshot_timestamp_seconds",
        &src_labels,
    );
    assert!(
        (got - t.timestamp_millis() as f64 / 1000.0).abs() < 0.002,
        "{got} vs {t}"
    );
    assert_eq!(
        value(&s, "arca_source_last_snapshot_added_bytes", &src_labels),
        last["summary"]["data_added_packed"].as_u64().unwrap() as f64
    );
    assert_eq!(
        value(&s, "arca_source_snapshots", &["paths=\"/app.sql\""]),
        1.0
    );
    assert_eq!(value(&s, "arca_repository_snapshots", &[]), 3.0);
    let packs = e.objects("packs/").len() as f64;
    assert_eq!(value(&s, "arca_repository_packs", &[]), packs);
    let pack_bytes: u64 = e.objects("packs/").iter().map(|(_, n)| n).sum();
    assert_eq!(
        value(&s, "arca_repository_size_bytes", &[]),
        pack_bytes as f64
    );
    assert_eq!(value(&s, "arca_check_coverage_ratio", &[]), 1.0);
    assert_eq!(value(&s, "arca_drills", &[]), 1.0);
    assert_eq!(
        value(&s, "arca_drill_last_success", &["paths=\"/app.sql\""]),
        1.0
    );
    assert_eq!(value(&s, "arca_drill_last_rto_seconds", &[]), 3600.0);

    // a new pack, never verified: coverage drops below 1
    std::fs::write(src.join("d.bin"), noise(1 << 20, 3)).unwrap();
    let textfile = e.path("textfile/arca.prom");
    std::fs::create_dir_all(textfile.parent().unwrap()).unwrap();
    src_backup(&["--metrics-textfile", textfile.to_str().unwrap()]);
    let text = std::fs::read_to_string(&textfile).unwrap();
    promtool(&text);
    let s = samples(&text);
    assert_eq!(value(&s, "arca_source_snapshots", &src_labels), 3.0);
    assert!(value(&s, "arca_check_coverage_ratio", &[]) < 1.0);
    assert_eq!(value(&s, "arca_run_success", &["command=\"backup\""]), 1.0);
    assert_eq!(
        value(&s, "arca_run_exit_code", &["command=\"backup\""]),
        0.0
    );
    // written atomically: nothing else is left in the directory
    let names: Vec<_> = std::fs::read_dir(textfile.parent().unwrap())
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("arca.prom")]);

    // a failed backup (nothing to back up) is reported as failed
    let o = e.run(&[
        "backup",
        e.path("missing").to_str().unwrap(),
        "--metrics-textfile",
        textfile.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let s = samples(&std::fs::read_to_string(&textfile).unwrap());
    assert_eq!(value(&s, "arca_run_success", &["command=\"backup\""]), 0.0);
    assert_eq!(
        value(&s, "arca_run_exit_code", &["command=\"backup\""]),
        1.0
    );
    assert_eq!(value(&s, "arca_source_snapshots", &src_labels), 3.0);

    // the Pushgateway
    let pg = Pushgateway::start(e.dir.path());
    e.ok(&["metrics", "--push", &pg.url, "--job", "nightly"]);
    let served = pg.scrape();
    promtool(&served);
    let s = samples(&served);
    let pushed = [src_l.as_str(), "job=\"nightly\"", "tags=\"daily\""];
    assert_eq!(value(&s, "arca_source_snapshots", &pushed), 3.0);
    assert_eq!(
        value(&s, "arca_repository_snapshots", &["job=\"nightly\""]),
        4.0
    );
    // a failed backup, then a check, push into groups of their own: the
    // check does not wipe the backup's outcome
    let o = e.run(&[
        "backup",
        e.path("missing").to_str().unwrap(),
        "--metrics-push",
        &pg.url,
        "--metrics-job",
        "nightly",
    ]);
    assert_eq!(o.status.code(), Some(1));
    e.ok(&[
        "check",
        "--read-data",
        "--metrics-push",
        &pg.url,
        "--metrics-job",
        "nightly",
    ]);
    let served = pg.scrape();
    promtool(&served);
    let s = samples(&served);
    let job = "job=\"nightly\"";
    assert_eq!(
        value(&s, "arca_run_success", &[job, "command=\"check\""]),
        1.0
    );
    assert_eq!(
        value(&s, "arca_run_success", &[job, "command=\"backup\""]),
        0.0
    );
    assert_eq!(
        value(&s, "arca_check_coverage_ratio", &[job, "command=\"check\""]),
        1.0
    );
    // an unreachable gateway is a clear error for `metrics`, a warning for a backup
    drop(pg);
    let o = e.run(&["metrics", "--push", "http://127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pushing metrics to http://127.0.0.1:1/metrics/job/arca/repository/"),
        "{err}"
    );
}

/// The alert rules in docs/monitoring.md are a valid Prometheus rule file
/// that names only metrics arca emits.
#[test]
fn the_documented_alert_rules_are_valid_and_name_real_metrics() {
    need("promtool", "prometheus");
    let doc = std::fs::read_to_string(common::project_root().join("docs/monitoring.md")).unwrap();
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("a ```yaml block in docs/monitoring.md");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("arca.rules.yml");
    std::fs::write(&rules, yaml).unwrap();
    let o = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    // every arca_ name in the rules is one the metrics table documents and
    // the code emits
    let source =
        std::fs::read_to_string(common::project_root().join("engine/src/ops/metrics.rs")).unwrap();
    // the code, not its unit tests
    let code = source.split("#[cfg(test)]").next().unwrap();
    for word in yaml.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("arca_") {
            assert!(
                code.contains(&format!("\"{word}\"")),
                "{word} is not emitted"
            );
            assert!(
                doc.contains(&format!("| `{word}` |")),
                "{word} is not in the table"
            );
        }
    }
    // and every name the code emits is documented
    for part in code.split("\"arca_").skip(1) {
        let name = format!("arca_{}", part.split('"').next().unwrap());
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} is emitted but not documented"
        );
    }
}
