//! `arca mount`: serve the snapshots as a read-only filesystem under a
//! shared lock (so no repair runs beneath it) until it is unmounted.

use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use arca_engine::ops::mount::{self, MountOptions};

use crate::args::{Global, MountArgs};
use crate::context;
use crate::output::{self, Out};

pub fn run(g: &Global, out: &Out, a: &MountArgs, stop: &AtomicBool) -> Result<i32> {
    let opts = MountOptions {
        allow_other: a.allow_other,
        cache_bytes: usize::try_from(output::parse_size(&a.cache_size)?)?,
    };
    // said before the password is asked for
    if let Err(why) = mount::available() {
        bail!(why);
    }
    let h = context::open(g)?.reading(g, "mount")?;
    h.note_stale_locks(out);
    let filter = super::filter(&a.filter);
    let snapshots: Vec<_> = h
        .session
        .catalog()
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .collect();
    let dir = a.mountpoint.display().to_string();
    let n = snapshots.len();
    let served = mount::mount(
        h.session.reader(),
        &snapshots,
        &a.mountpoint,
        &opts,
        stop,
        || {
            if out.json {
                output::json(&serde_json::json!({"mounted": dir, "snapshots": n}));
            } else {
                out.note(format!(
                    "{n} snapshot(s) mounted at {dir}: browse snapshots/, hosts/, tags/, ids/; `umount {dir}` or Ctrl-C to stop"
                ));
            }
        },
    );
    h.session.release()?;
    served?;
    Ok(0)
}
