//! Profiles and hooks end to end through the binary: a profile with two
//! sources (a directory and a command's output) backed up, restored,
//! forgotten by each source's retention and reported by status against
//! each source's objectives; hooks in the order and with the environment
//! docs/profiles.md gives; a failing hook's consequences; precedence of
//! the command line and environment; bad profiles refused with their line.

mod common;

use std::path::Path;
use std::process::Output;

use common::Env;

/// A profile directory holding `NAME.toml`, and the command running arca
/// with it (the repository and password come from the profile alone).
struct Profiled<'a> {
    e: &'a Env,
    config: std::path::PathBuf,
}

impl<'a> Profiled<'a> {
    fn new(e: &'a Env, name: &str, text: &str) -> Self {
        let config = e.path("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join(format!("{name}.toml")), text).unwrap();
        Self { e, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.e.cmd();
        c.env_remove("ARCA_REPOSITORY")
            .env_remove("ARCA_PASSWORD")
            .env("ARCA_CONFIG_DIR", &self.config)
            .args(args);
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "arca {args:?}: {:?}\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The profile's common head: repository, password file, cache.
fn head(e: &Env) -> String {
    let pw = e.path("password");
    std::fs::write(&pw, format!("{}\n", e.password)).unwrap();
    format!(
        "[repository]\nrepo = {:?}\npassword-file = {:?}\ncache-dir = {:?}\n",
        e.repo,
        pw.display().to_string(),
        e.cache.display().to_string()
    )
}

/// Lines the hooks appended to `log`.
fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_profile_with_two_sources_and_hooks_runs_end_to_end() {
    let e = Env::init();
    let data = e.path("data");
    common::random_tree(&data, 20, 3000, 1);
    let dump = e.path("dump.sql");
    std::fs::write(&dump, b"CREATE TABLE t (a int);\n".repeat(100)).unwrap();
    let log = e.path("hooks.log");
    let hook = |what: &str| {
        format!(
            "echo \\\"{what} $ARCA_HOOK $ARCA_COMMAND $ARCA_PROFILE src=$ARCA_SOURCE out=$ARCA_OUTCOME code=$ARCA_EXIT_CODE ids=$ARCA_SNAPSHOT_ID\\\" >> {}",
            log.display()
        )
    };
    let text = format!(
        r#"{head}
[backup]
host = "db1"
tags = ["prod"]

[forget]
keep-last = 2
prune = true

[objectives]
rpo = "26h"

[hooks.backup]
before = "{cb}"
after = ["{ca}", "true"]
on-failure = "{cf}"
finally = "{cz}"

[sources.files]
paths = [{data:?}]
excludes = ["*.skip"]
hooks = {{ before = "{fb}", after = "{fa}" }}

[sources.dump]
command = ["sh", "-c", "cat {dump}"]
stdin-filename = "app.sql"
tags = ["postgres"]
retention = {{ keep-last = 1 }}
objectives = {{ rpo = "1h" }}

[sources.archive]
paths = [{data:?}, {dump:?}]
objectives = {{ rpo = "26h" }}
"#,
        head = head(&e),
        cb = hook("cmd"),
        ca = hook("cmd"),
        cf = hook("cmd"),
        cz = hook("cmd"),
        fb = hook("files"),
        fa = hook("files"),
        data = data.display().to_string(),
        dump = dump.display(),
    );
    let p = Profiled::new(&e, "prod", &text);
    std::fs::write(data.join("ignored.skip"), b"not backed up").unwrap();

    // `profile` resolves what the commands will use
    let shown: serde_json::Value =
        serde_json::from_str(&p.ok(&["--profile", "prod", "--json", "profile"])).unwrap();
    let names: Vec<&str> = shown["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["files", "dump", "archive"], "the file's order");
    assert_eq!(shown["sources"][1]["paths"][0], "/app.sql");
    assert_eq!(shown["sources"][0]["host"], "db1");

    // the archive source, backed up 30 hours ago: it will miss its RPO
    let old = (chrono::Utc::now() - chrono::Duration::hours(30)).to_rfc3339();
    p.ok(&[
        "-P", "prod", "backup", "--source", "archive", "--time", &old,
    ]);
    std::fs::remove_file(&log).unwrap();

    // two sources by name, in one run; stdout stays JSON with --json
    let out = p.ok(&[
        "-P", "prod", "--json", "backup", "--source", "files", "--source", "dump",
    ]);
    let results: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{out}");
    assert_eq!(results[0]["source"], "files");
    assert_eq!(results[1]["source"], "dump");
    let files_id = results[0]["snapshot_id"].as_str().unwrap().to_string();
    let dump_id = results[1]["snapshot_id"].as_str().unwrap().to_string();
    let lines = log_lines(&log);
    let expect = [
        "cmd before backup prod src= out= code= ids=".to_string(),
        "files before backup prod src=files out= code= ids=".to_string(),
        format!("files after backup prod src=files out=success code=0 ids={files_id}"),
        format!("cmd after backup prod src= out=success code=0 ids={files_id} {dump_id}"),
        format!("cmd finally backup prod src= out=success code=0 ids={files_id} {dump_id}"),
    ];
    assert_eq!(lines, expect);

    // what was saved: host, tags, excludes from the profile; restorable
    let snaps = e.json(&["snapshots"]);
    let by_id = |id: &str| {
        snaps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    let f = by_id(&files_id);
    assert_eq!(f["host"], "db1");
    assert_eq!(f["tags"], serde_json::json!(["prod"]));
    let d = by_id(&dump_id);
    assert_eq!(d["tags"], serde_json::json!(["postgres", "prod"]));
    assert_eq!(d["paths"], serde_json::json!(["/app.sql"]));
    std::fs::remove_file(data.join("ignored.skip")).unwrap();
    let back = e.restore(&files_id, &data, "r1");
    assert!(common::same_files(&data, &back));
    let dumped = e.run(&["dump", &dump_id, "/app.sql"]);
    assert_eq!(dumped.stdout, std::fs::read(&dump).unwrap());

    // two more runs of every source
    for i in 0..2 {
        std::fs::write(data.join(format!("new{i}")), format!("{i}")).unwrap();
        p.ok(&["-P", "prod", "backup"]);
    }
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 9);

    // forget: each source's retention over its own snapshots ([forget]'s
    // keep-last 2 for files and archive, the dump's own keep-last 1),
    // then prune ([forget] prune = true)
    let plan: serde_json::Value =
        serde_json::from_str(&p.ok(&["-P", "prod", "--json", "forget", "--dry-run"])).unwrap();
    let removed = |source: &str| -> usize {
        plan.as_array()
            .unwrap()
            .iter()
            .filter(|g| g["source"] == source)
            .map(|g| g["remove"].as_array().unwrap().len())
            .sum()
    };
    assert_eq!(
        (removed("files"), removed("dump"), removed("archive")),
        (1, 2, 1)
    );
    let out = p.ok(&["-P", "prod", "forget"]);
    assert!(out.contains("prune generation"), "{out}");
    let left = e.json(&["snapshots"]);
    assert_eq!(left.as_array().unwrap().len(), 5);
    common::check_clean(&e, "after a profile's forget and prune");

    // status: each source against its own objectives; archive's newest is
    // the run above (fresh), so back it up in the past again under a
    // second name to see a miss
    let o = p.run(&["-P", "prod", "status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stale = format!(
        "{text}\n[sources.offsite]\npaths = [{:?}]\nobjectives = {{ rpo = \"26h\" }}\n",
        dump.display().to_string()
    );
    let p = Profiled::new(&e, "prod", &stale);
    let o = p.run(&["-P", "prod", "status"]);
    assert_eq!(o.status.code(), Some(5), "never backed up: breached");
    let text_out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        text_out.contains("BREACHED offsite") && text_out.contains("has no snapshot"),
        "{text_out}"
    );
    p.ok(&[
        "-P", "prod", "backup", "--source", "offsite", "--time", &old,
    ]);
    let o = p.run(&["-P", "prod", "--json", "status"]);
    assert_eq!(o.status.code(), Some(5));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let offsite = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "offsite")
        .unwrap();
    assert_eq!(offsite["rpo_ok"], false);
    assert!(
        offsite["breaches"][0]
            .as_str()
            .unwrap()
            .contains("the newest snapshot is 1d 6h old"),
        "{offsite}"
    );
    // --source narrows it to sources that hold
    let o = p.run(&["-P", "prod", "status", "--source", "files"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_failing_before_hook_stops_the_run_and_saves_nothing() {
    let e = Env::init();
    let data = e.path("data");
    common::random_tree(&data, 3, 100, 2);
    let log = e.path("hooks.log");
    let rec = |what: &str| {
        format!(
            "echo \\\"{what} $ARCA_HOOK out=$ARCA_OUTCOME err=$ARCA_ERROR\\\" >> {}",
            log.display()
        )
    };
    let text = format!(
        r#"{head}
[hooks.backup]
before = ["{r}", "exit 4"]
on-failure = "{r}"
finally = "{r}"
after = "{r}"

[sources.files]
paths = [{data:?}]
"#,
        head = head(&e),
        r = rec("cmd"),
        data = data.display().to_string(),
    );
    let p = Profiled::new(&e, "p", &text);
    let o = p.run(&["-P", "p", "backup"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("backup did not run") && err.contains("`exit 4` failed"),
        "{err}"
    );
    assert!(e.json(&["snapshots"]).as_array().unwrap().is_empty());
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "cmd before out= err=");
    assert!(lines[1].starts_with("cmd on-failure out=failure err=backup did not run"));
    assert!(lines[2].starts_with("cmd finally out=failure"));

    // a source's failing before hook: that source is skipped, the others
    // are backed up, the run exits 1; a failing after hook fails the run
    // although its snapshot is saved
    std::fs::remove_file(&log).unwrap();
    let text = format!(
        r#"{head}
[sources.broken]
paths = [{data:?}]
hooks = {{ before = "exit 3", on-failure = "{r}", finally = "{r}" }}

[sources.fine]
command = "echo fine"

[sources.late]
command = "echo late"
hooks = {{ after = "exit 9", on-failure = "{r2}" }}
"#,
        head = head(&e),
        data = data.display().to_string(),
        r = rec("broken"),
        r2 = rec("late"),
    );
    let p = Profiled::new(&e, "p", &text);
    let o = p.run(&["-P", "p", "backup"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("2 of 3 source(s) failed"), "{err}");
    let snaps = e.json(&["snapshots"]);
    let paths: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["paths"][0].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "fine and late saved, broken not: {paths:?}");
    assert!(paths.contains(&"/fine") && paths.contains(&"/late"));
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("broken on-failure out=failure err=source broken did not run"));
    assert!(lines[1].starts_with("broken finally out=failure"));
    assert!(lines[2].starts_with("late on-failure out=failure err=source late: the after hook"));
}

#[test]
fn the_command_line_and_environment_win_over_the_profile() {
    let e = Env::init();
    let data = e.path("data");
    common::random_tree(&data, 2, 100, 3);
    let text = format!(
        "{}\n[backup]\nhost = \"from-profile\"\n[sources.files]\npaths = [{:?}]\n",
        head(&e),
        data.display().to_string()
    );
    let p = Profiled::new(&e, "p", &text);
    // a password in the environment replaces the profile's password file
    let mut c = e.cmd();
    c.env_remove("ARCA_REPOSITORY")
        .env("ARCA_PASSWORD", "wrong")
        .env("ARCA_CONFIG_DIR", &p.config)
        .args(["-P", "p", "snapshots"]);
    let o = c.output().unwrap();
    assert!(
        !o.status.success(),
        "the environment's wrong password is used"
    );
    // the command line's host replaces the profile's, paths replace sources
    let extra = e.path("extra");
    common::random_tree(&extra, 1, 10, 4);
    let out = p.ok(&[
        "-P",
        "p",
        "--json",
        "backup",
        "--host",
        "from-flag",
        extra.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["paths"][0], extra.display().to_string());
    let snaps = e.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["host"], "from-flag");
    // a repository on the command line replaces the profile's
    let o = p.run(&[
        "-P",
        "p",
        "-r",
        e.path("elsewhere").to_str().unwrap(),
        "snapshots",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("elsewhere"), "{}", stderr(&o));
    // a path given as --profile is read as it is
    let path = p.config.join("p.toml");
    p.ok(&["--profile", path.to_str().unwrap(), "profile"]);
    // --source needs a profile
    let o = e.run(&["backup", "--source", "files"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--source picks sources of a profile"));
    let o = p.run(&["-P", "p", "backup", "--source", "nope"]);
    assert!(
        stderr(&o).contains("has no source nope (it has: files)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_profiles_are_refused_with_their_file_line_and_key() {
    let e = Env::init();
    for (body, line, key) in [
        (
            "[sources.a]\npaths = [\"/x\"]\nexclude = [\"*.tmp\"]\n",
            3,
            "exclude",
        ),
        ("[objectives]\nrpo = \"soon\"\n", 2, "soon"),
        ("[forget]\nkeep-daily = \"seven\"\n", 2, "keep-daily"),
        ("[hooks.init]\nbefore = \"true\"\n", 1, "init"),
        (
            "[sources.a]\ncommand = \"x\"\ncompression = \"fast\"\n",
            3,
            "fast",
        ),
    ] {
        let text = format!("{}{body}", head(&e));
        let p = Profiled::new(&e, "bad", &text);
        let at = head(&e).lines().count() + line;
        let o = p.run(&["-P", "bad", "backup"]);
        assert_eq!(o.status.code(), Some(1), "{body}");
        let err = stderr(&o);
        assert!(
            err.contains(&p.config.join("bad.toml").display().to_string())
                && err.contains(&format!("line {at}"))
                && err.contains(key),
            "{body}: {err}"
        );
    }
    assert!(e.json(&["snapshots"]).as_array().unwrap().is_empty());
    let o = Profiled::new(&e, "x", "").run(&["-P", "missing", "snapshots"]);
    assert!(stderr(&o).contains("no profile missing"), "{}", stderr(&o));
}

#[test]
fn hooks_see_the_exit_code_and_command_line_jobs_skip_the_profiles_prune() {
    let e = Env::init();
    let data = e.path("data");
    common::random_tree(&data, 2, 100, 5);
    let code = e.path("code");
    let text = format!(
        "{}\n[forget]\nkeep-last = 5\nprune = true\n\n[hooks.check]\non-failure = \"echo $ARCA_EXIT_CODE > {}\"\n\n[sources.files]\npaths = [{:?}]\n",
        head(&e),
        code.display(),
        data.display().to_string()
    );
    let p = Profiled::new(&e, "p", &text);
    // check that cannot run exits 2, and its on-failure hook is told so
    let o = p.run(&[
        "-P",
        "p",
        "-r",
        e.path("missing").to_str().unwrap(),
        "check",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&code).unwrap().trim(), "2");
    // forget of a named snapshot is the command line's job: no prune
    p.ok(&["-P", "p", "backup"]);
    p.ok(&["-P", "p", "backup"]);
    let first = e.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = p.ok(&["-P", "p", "forget", &first]);
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 1);
    assert!(!out.contains("prune generation"), "no prune ran: {out}");
    // the profile's own retention prunes, as [forget] says
    let out = p.ok(&["-P", "p", "forget"]);
    assert!(
        out.contains("prune generation"),
        "the profile's job pruned: {out}"
    );
}
