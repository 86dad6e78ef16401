//! `arca profile`: what the profile `--profile` names says, resolved as
//! the commands will use it (each source's host, recorded paths,
//! retention and objectives), so that a profile can be checked before a
//! scheduler runs it. Reading it already checked every key and value.

use anyhow::{Result, bail};
use serde_json::json;

use crate::hooks::Hooks;
use crate::output::Out;
use crate::profile::{Checked, Loaded, Objectives};

pub fn run(out: &Out, profile: Option<&Loaded>) -> Result<i32> {
    let Some(p) = profile else {
        bail!("arca profile shows a profile: give --profile NAME (or set ARCA_PROFILE)");
    };
    let pr = &p.profile;
    let mut sources = vec![];
    for (name, s) in p.sources(&[])? {
        let policy = p.retention_of(s).policy();
        sources.push(json!({
            "name": name,
            "host": p.host_of(s),
            "paths": p.paths_of(name, s)?,
            "command": s.command.as_ref().map(|c| c.argv()),
            "retention": if policy.is_empty() { None } else { Some(policy.to_string()) },
            "objectives": objectives(&p.objectives_of(s)),
            "hooks": s.hooks.as_ref().map(hooks),
        }));
    }
    let commands: serde_json::Map<String, serde_json::Value> = [
        "backup", "check", "forget", "prune", "copy", "drill", "restore", "status",
    ]
    .into_iter()
    .filter_map(|c| pr.hooks.of(c).map(|h| (c.to_string(), hooks(h))))
    .collect();
    let v = json!({
        "name": p.name,
        "path": p.path,
        "repository": pr.repository.repo,
        "password": match (&pr.repository.password_file, &pr.repository.password_command) {
            (Some(f), _) => Some(format!("file {}", f.display())),
            (None, Some(c)) => Some(format!("command {c}")),
            _ => None,
        },
        "options": pr.repository.options.as_flags(),
        "env": pr.env.keys().collect::<Vec<_>>(),
        "forget_prunes": pr.forget.prune,
        "sources": sources,
        "hooks": commands,
    });
    if out.json {
        crate::output::json(&v);
        return Ok(0);
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    };
    println!("profile {} ({})", p.name, p.path.display());
    println!("  repository: {}", text(&v["repository"]));
    println!("  password: {}", text(&v["password"]));
    for s in v["sources"].as_array().into_iter().flatten() {
        println!("  source {}:", text(&s["name"]));
        println!("    host: {}", text(&s["host"]));
        println!("    paths: {}", text(&s["paths"]));
        if !s["command"].is_null() {
            println!("    command: {}", text(&s["command"]));
        }
        println!("    retention: {}", text(&s["retention"]));
        println!("    objectives: {}", text(&s["objectives"]));
        if !s["hooks"].is_null() {
            println!("    hooks: {}", text(&s["hooks"]));
        }
    }
    for (c, h) in v["hooks"].as_object().into_iter().flatten() {
        println!("  hooks of {c}: {}", text(h));
    }
    Ok(0)
}

fn objectives(o: &Objectives) -> serde_json::Value {
    let v = |c: &Option<Checked<crate::profile::Age>>| c.as_ref().map(|c| c.0.clone());
    json!({"rpo": v(&o.rpo), "rto": v(&o.rto), "drill_age": v(&o.drill_age), "check_age": v(&o.check_age)})
}

fn hooks(h: &Hooks) -> serde_json::Value {
    json!({
        "before": h.before.list(),
        "after": h.after.list(),
        "on_failure": h.on_failure.list(),
        "finally": h.finally.list(),
    })
}
