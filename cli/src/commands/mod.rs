//! One module per command. Each turns parsed arguments into engine calls
//! and renders the result; none holds logic the engine should own.

pub mod backup;
pub mod cat;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod dump;
pub mod find;
pub mod forget;
pub mod init;
pub mod key;
pub mod ls;
pub mod metrics;
pub mod mount;
pub mod profile;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod stats;
pub mod status;
pub mod tag;
pub mod unlock;
pub mod wal;

use anyhow::{Result, bail};
use arca_engine::format::id::SnapshotId;
use arca_engine::format::snapshot::Snapshot;
use arca_engine::ops::select::{self, Filter, Selector};

use arca_engine::store::catalog::Catalog;

use crate::args::FilterArgs;

/// Engine filter from the command-line filter options.
/// Tags given as `--tag a,b --tag c`: every name, trimmed, none empty.
pub fn tag_list(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|t| t.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

pub fn filter(f: &FilterArgs) -> Filter {
    Filter {
        hosts: f.hosts.clone(),
        tags: f.tags.clone(),
        paths: f.paths.clone(),
    }
}

/// The snapshot a command names: an id prefix, `latest`, or `--at TIME`.
pub fn pick(
    catalog: &Catalog,
    snapshot: Option<&str>,
    at: Option<&str>,
    f: &FilterArgs,
) -> Result<(SnapshotId, Snapshot)> {
    let all = catalog.snapshots()?;
    let sel = match (snapshot, at) {
        (Some(s), Some(_)) if s != "latest" => {
            bail!("give either a snapshot id or --at, not both")
        }
        (_, Some(t)) => Selector::At(select::parse_time(t)?),
        (Some(s), None) => Selector::parse(s)?,
        (None, None) => bail!("name a snapshot: an id prefix, `latest`, or --at TIME"),
    };
    Ok(select::select(&all, &sel, &filter(f))?.clone())
}
