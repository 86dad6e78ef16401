//! `arca unlock`: removes stale locks (or, with --remove-all, every lock).

use anyhow::Result;
use arca_engine::store::lock::{self, LockTiming};

use crate::args::{Global, UnlockArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &UnlockArgs) -> Result<i32> {
    let (repo, _) = context::open_repo(g)?;
    let r = lock::unlock(&repo, a.remove_all, &LockTiming::default())?;
    if out.json {
        let entry = |e: &lock::LockEntry| {
            serde_json::json!({
                "id": e.id,
                "stale": e.stale,
                "lock": e.info.as_ref().ok(),
                "error": e.info.as_ref().err(),
            })
        };
        output::json(&serde_json::json!({
            "removed": r.removed.iter().map(entry).collect::<Vec<_>>(),
            "kept": r.kept.iter().map(entry).collect::<Vec<_>>(),
            "notices_swept": r.notices_swept,
        }));
        return Ok(0);
    }
    for e in &r.removed {
        out.say(format!(
            "removed {}{}",
            if e.stale { "stale " } else { "" },
            e.describe()
        ));
    }
    for e in &r.kept {
        out.say(format!(
            "kept {} (not stale: its holder refreshed it recently; --remove-all removes it anyway)",
            e.describe()
        ));
    }
    if r.notices_swept > 0 {
        out.say(format!(
            "deleted {} old lock-removal notice(s) (their locks were removed over an hour ago)",
            r.notices_swept
        ));
    }
    if r.removed.is_empty() && r.kept.is_empty() {
        out.say("no locks");
    }
    Ok(0)
}
