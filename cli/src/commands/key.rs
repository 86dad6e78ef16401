use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result, bail};
use arca_engine::format::crypto::KdfParams;
use arca_engine::format::id::KeyId;
use arca_engine::store::repo::KeyOwner;

use crate::args::{Global, KeyAction, KeyAddArgs, KeyArgs, NewPasswordArgs};
use crate::context;
use crate::output::{self, Out};

fn new_password(g: &Global, a: &NewPasswordArgs) -> Result<(Vec<u8>, KdfParams)> {
    let pw = match &a.new_password_file {
        Some(f) => {
            let pw = context::password_from_file(f)?;
            context::refuse_empty(g, &pw, &format!("the new password file {}", f.display()))?;
            pw
        }
        None => context::prompt(g, "enter the new password: ", true)?,
    };
    let mut kdf = KdfParams::default();
    if let Some(m) = a.kdf_memory {
        kdf.memory_kib = m;
    }
    Ok((pw, kdf))
}

pub fn run(g: &Global, out: &Out, a: &KeyArgs) -> Result<i32> {
    let o = context::open(g)?;
    match &a.action {
        KeyAction::List => {
            let keys = o.repo().list_keys()?;
            if out.json {
                output::json(&keys);
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            format!("{}{}", if k.current { "*" } else { " " }, k.id.short()),
                            k.kind.to_string(),
                            k.username.clone(),
                            k.host.clone(),
                            match &k.damaged {
                                Some(d) => format!("DAMAGED: {d}"),
                                None => output::time(&k.created),
                            },
                        ]
                    })
                    .collect();
                output::table(&[" ID", "Kind", "User", "Host", "Created"], &rows);
            }
        }
        KeyAction::Add(KeyAddArgs {
            token_file: Some(path),
            ..
        }) => {
            // the file first: a token that could not be written is never added
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating the token file {}", path.display()))?;
            let (id, token) = o.repo().add_token_key(&KeyOwner::current())?;
            let written = f
                .write_all(format!("{}\n", token.to_text()).as_bytes())
                .and_then(|()| f.sync_all());
            if let Err(e) = written {
                let _ = o.repo().remove_key(&id);
                let _ = std::fs::remove_file(path);
                return Err(anyhow::Error::new(e).context(format!(
                    "writing the token file {} (the token was not added)",
                    path.display()
                )));
            }
            if out.json {
                output::json(&serde_json::json!({"id": id, "kind": "token", "file": path}));
            } else {
                out.say(format!(
                    "added token key {}: the token is in {} (give it as a password file)",
                    id.short(),
                    path.display()
                ));
            }
        }
        KeyAction::Add(KeyAddArgs { password: n, .. }) => {
            let (pw, kdf) = new_password(g, n)?;
            let id = o.repo().add_key(&pw, kdf, &KeyOwner::current())?;
            if out.json {
                output::json(&serde_json::json!({"id": id}));
            } else {
                out.say(format!("added key {}", id.short()));
            }
        }
        KeyAction::Passwd(n) => {
            let (pw, kdf) = new_password(g, n)?;
            let id = o.repo().change_password(&pw, kdf, &KeyOwner::current())?;
            if out.json {
                output::json(&serde_json::json!({"id": id, "removed": o.repo().key_id()}));
            } else {
                out.say(format!(
                    "password changed: key {} replaces key {}",
                    id.short(),
                    o.repo().key_id().short()
                ));
            }
        }
        KeyAction::Remove { id } => {
            let keys = o.repo().list_keys()?;
            let m: Vec<KeyId> = keys
                .iter()
                .filter(|k| k.id.to_hex().starts_with(id.as_str()))
                .map(|k| k.id)
                .collect();
            let [k] = m[..] else {
                bail!("{} keys match {id}; give more digits", m.len());
            };
            o.repo().remove_key(&k)?;
            if out.json {
                output::json(&serde_json::json!({"removed": k}));
            } else {
                out.say(format!("removed key {}", k.short()));
            }
        }
    }
    Ok(0)
}
