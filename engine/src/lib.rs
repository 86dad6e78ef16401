//! arca's engine: a content-addressed, deduplicating, encrypted backup
//! library. The `arca` binary is a thin layer over it; benches and tests
//! drive it directly.
//!
//! Layers, bottom up:
//! - formats: [`id`], [`crypto`], [`chunker`], [`compress`], [`pack`],
//!   [`index`], [`tree`], [`snapshot`], [`config`], [`keyfile`] (the bytes
//!   are specified in `format-spec/`);
//! - storage: [`backend`] (object stores behind one trait), [`repo`] (an
//!   unlocked repository: named, verified objects), [`catalog`] (the local
//!   SQLite cache of index and snapshots), [`lock`] (who is using it);
//! - operations: [`backup`], [`restore`], [`dump`], [`ls`], [`select`].
//!
//! The engine never prints and never exits: it returns values and
//! [`Error`]s that carry their context.

pub mod backend;
pub mod backup;
pub mod blobs;
pub mod catalog;
pub mod check;
pub mod chunker;
pub mod compress;
pub mod config;
pub mod coverage;
pub mod crypto;
pub mod dump;
pub mod error;
pub mod fsmeta;
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod lock;
pub mod ls;
pub mod pack;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod select;
pub mod snapshot;
pub mod sync;
pub mod tree;
pub mod util;
mod wire;
pub mod writer;

pub use error::{Error, Result};
