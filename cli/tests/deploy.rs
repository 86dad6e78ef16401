//! The deployment files and the recipes, checked as far as one machine can
//! without a cluster: `deploy/systemd`'s units pass `systemd-analyze
//! verify` (instantiated for a profile, pointing at the binary under test)
//! and each service's command line, run with the unit's own environment,
//! does its job on a real repository with the exit codes the units expect;
//! `deploy/kubernetes`'s manifests parse, carry the fields a CronJob needs,
//! and refer to each other consistently (names, keys, mount paths, the
//! profile's path), and their profile is one `arca profile` accepts; every
//! TOML block of `docs/recipes.md` is a whole profile `arca profile`
//! accepts, with an RPO on every source.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Env, project_root};
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "{:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `arca --profile FILE profile --json`, which must accept the file.
fn accepted_profile(file: &Path) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_arca"))
        .env_remove("ARCA_REPOSITORY")
        .env_remove("ARCA_PROFILE")
        .args(["--json", "--profile"])
        .arg(file)
        .arg("profile")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", file.display(), text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A systemd unit file's `[Service]` settings: key to every value given.
fn service_settings(unit: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut in_service = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').expect("KEY=VALUE");
            out.entry(k.into()).or_default().push(v.into());
        }
    }
    out
}

#[test]
fn systemd_units_verify_and_their_commands_run() {
    let dir = project_root().join("deploy/systemd");
    let e = Env::init();
    let bin = env!("CARGO_BIN_EXE_arca");
    let units = e.path("units");
    std::fs::create_dir_all(&units).unwrap();
    let mut services = BTreeMap::new();
    let mut timers = BTreeSet::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        let body = std::fs::read_to_string(&f).unwrap();
        assert!(
            name.contains("@."),
            "{name}: a template, instantiated per profile"
        );
        assert!(
            body.contains("/usr/local/bin/arca") || name.ends_with(".timer"),
            "{name}"
        );
        let instance = name.replace("@.", "@prod.");
        std::fs::write(
            units.join(&instance),
            body.replace("/usr/local/bin/arca", bin),
        )
        .unwrap();
        if let Some(stem) = name.strip_suffix(".service") {
            services.insert(stem.to_string(), body);
        } else {
            let stem = name.strip_suffix(".timer").expect(".service or .timer");
            assert!(
                body.contains("Persistent=true"),
                "{name}: runs missed while off"
            );
            assert!(body.contains("WantedBy=timers.target"), "{name}");
            timers.insert(stem.to_string());
        }
    }
    let stems: BTreeSet<_> = services.keys().cloned().collect();
    assert_eq!(stems, timers, "every service has its timer");
    for job in ["backup", "forget", "check", "status"] {
        assert!(
            stems.contains(&format!("arca-{job}@")),
            "arca-{job}@ missing"
        );
    }

    // systemd's own judgement: unknown keys and bad calendars are reported
    // on stderr even when the exit status is 0, so both must be clean
    let files: Vec<PathBuf> = std::fs::read_dir(&units)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&o)
    );

    // each service's ExecStart, with the unit's environment and specifiers
    // (%i the profile, %d the credentials, %C the cache root), on a real
    // repository through the profile /etc/arca would hold
    let config = e.path("etc-arca");
    let creds = e.path("credentials");
    let cache_root = e.path("var-cache");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::create_dir_all(&creds).unwrap();
    let data = e.path("data");
    common::random_tree(&data, 6, 20_000, 7);
    std::fs::write(
        config.join("prod.toml"),
        format!(
            "[repository]\nrepo = {:?}\n\n[forget]\nkeep-last = 1\nprune = true\n\n\
             [check]\nrolling = \"100%\"\n\n[objectives]\nrpo = \"1h\"\n\n\
             [sources.files]\npaths = [{:?}]\n\n\
             [sources.listing]\ncommand = [\"ls\", \"-l\", {:?}]\nstdin-filename = \"listing.txt\"\n",
            e.repo,
            data.display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    let run = |job: &str| -> Output {
        let s = service_settings(&services[&format!("arca-{job}@")]);
        let spec = |v: &str| {
            v.replace("%i", "prod")
                .replace("%d", creds.to_str().unwrap())
                .replace("%C", cache_root.to_str().unwrap())
        };
        for c in s.get("LoadCredential").into_iter().flatten() {
            let (id, from) = c.split_once(':').unwrap();
            assert_eq!(spec(from), "/etc/arca/prod.password", "{job}: {c}");
            std::fs::write(creds.join(id), format!("{}\n", e.password)).unwrap();
        }
        let exec = spec(&s["ExecStart"][0]);
        let argv: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(argv[0], "/usr/local/bin/arca", "{job}");
        assert_eq!(&argv[1..3], ["--profile", "prod"], "{job}");
        let mut c = Command::new(bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", e.path("home"))
            .env("ARCA_CONFIG_DIR", &config)
            .envs(e.env.iter().map(|(k, v)| (k, v)))
            .args(&argv[1..]);
        for v in s.get("Environment").into_iter().flatten() {
            let (k, v) = v.split_once('=').unwrap();
            c.env(k, spec(v));
        }
        c.output().unwrap()
    };
    let success = |job: &str, o: &Output| {
        let s = service_settings(&services[&format!("arca-{job}@")]);
        let extra: Vec<i32> = s
            .get("SuccessExitStatus")
            .into_iter()
            .flatten()
            .flat_map(|v| v.split_whitespace().map(|c| c.parse().unwrap()))
            .collect();
        let code = o.status.code().unwrap();
        code == 0 || extra.contains(&code)
    };

    // nothing backed up yet: status fails its unit (exit 5), as its comment says
    let o = run("status");
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(!success("status", &o));
    for _ in 0..2 {
        let o = run("backup");
        assert!(success("backup", &o), "backup: {}", text(&o));
    }
    // the credential reached arca and the cache went where the unit says
    assert!(cache_root.join("arca/prod").is_dir());
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 4);
    let o = run("forget");
    assert!(success("forget", &o), "forget: {}", text(&o));
    // keep-last 1 per source, then prune
    assert_eq!(e.json(&["snapshots"]).as_array().unwrap().len(), 2);
    let o = run("check");
    assert!(success("check", &o), "check: {}", text(&o));
    let o = run("status");
    assert!(success("status", &o), "status: {}", text(&o));
}

/// Every document of every manifest in `deploy/kubernetes`.
fn manifests() -> Vec<Value> {
    let dir = project_root().join("deploy/kubernetes");
    let mut out = vec![];
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let body = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&body) {
            let v: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|err| panic!("{}: {err}", f.display()));
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    out
}

/// Whether `s` is a cron schedule of five fields within their ranges.
fn valid_cron(s: &str) -> bool {
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().zip(ranges).all(|(f, (lo, hi))| {
            f.split(',').all(|part| {
                let (range, step) = part.split_once('/').unwrap_or((part, "1"));
                let in_range = |n: &str| n.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
                step.parse::<u32>().is_ok_and(|s| s > 0)
                    && (range == "*"
                        || match range.split_once('-') {
                            Some((a, b)) => in_range(a) && in_range(b),
                            None => in_range(range),
                        })
            })
        })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn kubernetes_manifests_are_complete_and_consistent() {
    assert!(valid_cron("0 2 * * *") && valid_cron("*/15 0-6 1,15 * 0"));
    assert!(!valid_cron("0 25 * * *") && !valid_cron("0 2 * *"));
    let docs = manifests();
    let of = |kind: &str| -> Vec<&Value> { docs.iter().filter(|d| d["kind"] == kind).collect() };
    let namespaces: BTreeSet<&str> = docs
        .iter()
        .map(|d| s(&d["metadata"]["namespace"]))
        .collect();
    assert_eq!(namespaces.len(), 1, "one namespace: {namespaces:?}");

    let secrets: BTreeMap<&str, BTreeSet<String>> = of("Secret")
        .into_iter()
        .map(|d| {
            let keys = ["stringData", "data"]
                .iter()
                .filter_map(|k| d[k].as_object())
                .flat_map(|m| m.keys().cloned())
                .collect();
            (s(&d["metadata"]["name"]), keys)
        })
        .collect();
    let configmaps: BTreeMap<&str, &serde_json::Map<String, Value>> = of("ConfigMap")
        .into_iter()
        .map(|d| (s(&d["metadata"]["name"]), d["data"].as_object().unwrap()))
        .collect();
    let claims: BTreeSet<&str> = of("PersistentVolumeClaim")
        .into_iter()
        .map(|d| {
            assert!(
                d["spec"]["accessModes"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            );
            assert!(
                d["spec"]["resources"]["requests"]["storage"].is_string(),
                "{d}"
            );
            s(&d["metadata"]["name"])
        })
        .collect();
    assert!(!secrets.is_empty() && !configmaps.is_empty() && !claims.is_empty());

    // the ConfigMap's profiles are profiles arca accepts
    let e = Env::new();
    for (name, data) in &configmaps {
        for (key, body) in data.iter() {
            assert!(key.ends_with(".toml"), "{name}/{key}");
            let file = e.path(key);
            std::fs::write(&file, s(body)).unwrap();
            let p = accepted_profile(&file);
            assert!(!p["sources"].as_array().unwrap().is_empty(), "{p}");
        }
    }

    let jobs = of("CronJob");
    let names: BTreeSet<&str> = jobs.iter().map(|j| s(&j["metadata"]["name"])).collect();
    assert_eq!(
        names,
        ["arca-backup", "arca-check", "arca-forget"]
            .into_iter()
            .collect()
    );
    for j in jobs {
        let name = s(&j["metadata"]["name"]);
        assert_eq!(j["apiVersion"], "batch/v1", "{name}");
        let spec = &j["spec"];
        assert!(
            valid_cron(s(&spec["schedule"])),
            "{name}: {}",
            spec["schedule"]
        );
        assert_eq!(spec["concurrencyPolicy"], "Forbid", "{name}");
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert!(
            ["Never", "OnFailure"].contains(&s(&pod["restartPolicy"])),
            "{name}"
        );
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (s(&v["name"]), v))
            .collect();
        let containers = pod["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{name}");
        let c = &containers[0];
        assert!(!s(&c["image"]).is_empty());
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{name}: a memory limit"
        );
        let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (s(&m["name"]), s(&m["mountPath"])))
            .collect();
        // every mount has its volume, and every volume is what it names
        let mut files = BTreeSet::new();
        for (vol, path) in &mounts {
            let v = volumes
                .get(vol)
                .unwrap_or_else(|| panic!("{name}: no volume {vol}"));
            if let Some(cm) = v["configMap"]["name"].as_str() {
                let data = configmaps
                    .get(cm)
                    .unwrap_or_else(|| panic!("{name}: no ConfigMap {cm}"));
                files.extend(data.keys().map(|k| format!("{path}/{k}")));
            } else if let Some(sec) = v["secret"]["secretName"].as_str() {
                let keys = secrets
                    .get(sec)
                    .unwrap_or_else(|| panic!("{name}: no Secret {sec}"));
                for item in v["secret"]["items"].as_array().unwrap() {
                    assert!(keys.contains(s(&item["key"])), "{name}: {item}");
                    files.insert(format!("{path}/{}", s(&item["path"])));
                }
            } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                assert!(claims.contains(claim), "{name}: no claim {claim}");
            } else {
                assert!(v["emptyDir"].is_object(), "{name}: {v}");
            }
        }
        // the profile and the password are files of those volumes; the cache
        // is on the claim
        let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(s).collect();
        assert_eq!(args[0], "--profile", "{name}");
        assert!(files.contains(args[1]), "{name}: {} not mounted", args[1]);
        assert_eq!(format!("arca-{}", args[2]), name);
        let env: BTreeMap<&str, &Value> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (s(&v["name"]), v))
            .collect();
        assert!(
            files.contains(s(&env["ARCA_PASSWORD_FILE"]["value"])),
            "{name}"
        );
        let cache = s(&env["ARCA_CACHE_DIR"]["value"]);
        let cache_vol = mounts.iter().find(|(_, p)| **p == cache).map(|(v, _)| *v);
        assert!(
            cache_vol.is_some_and(|v| volumes[v]["persistentVolumeClaim"].is_object()),
            "{name}: the cache is kept on the claim"
        );
        for (var, v) in &env {
            if let Some(r) = v["valueFrom"]["secretKeyRef"].as_object() {
                let keys = &secrets[s(&r["name"])];
                assert!(keys.contains(s(&r["key"])), "{name}: {var}");
            }
        }
    }
}

#[test]
fn every_recipe_is_a_profile_arca_accepts() {
    let doc = std::fs::read_to_string(project_root().join("docs/recipes.md")).unwrap();
    let e = Env::new();
    let mut n = 0;
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("```toml\n") {
        let body = &rest[at + 8..];
        let end = body.find("```").expect("closed block");
        n += 1;
        let file = e.path(&format!("recipe{n}.toml"));
        std::fs::write(&file, &body[..end]).unwrap();
        let p = accepted_profile(&file);
        let sources = p["sources"].as_array().unwrap();
        assert!(!sources.is_empty(), "recipe {n}: {p}");
        for src in sources {
            assert!(src["objectives"]["rpo"].is_string(), "recipe {n}: {src}");
        }
        rest = &body[end + 3..];
    }
    // PostgreSQL, Redis, etcd, Neo4j, Qdrant, Vault, Kubernetes, logs
    assert_eq!(n, 8);
}
