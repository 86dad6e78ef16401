//! arca's engine: a content-addressed, deduplicating, encrypted backup
//! library. The `arca` binary is a thin layer over it; benches and tests
//! drive it directly.
//!
//! The folders are the layers, and say what a file may do:
//! - [`format`]: the bytes of every repository object, pure functions with
//!   no I/O (ids, crypto, chunking, compression, packs, index segments,
//!   trees, snapshots, config, key files, lock and check records), exactly
//!   as `format-spec/` specifies them;
//! - [`store`]: the repository as a store of verified objects: the
//!   backends behind one trait, the open repository, the local catalog,
//!   locks, and the one blob reader, blob writer and tree walker that
//!   every operation uses;
//! - [`ops`]: the operations (backup, restore, check, repair, dump, ls,
//!   snapshot selection, forget), each planning first and then executing
//!   through `store`;
//! - [`host`]: the machine: file metadata, host facts, thread primitives.
//!
//! Imports run downwards only: `ops` uses `store`, `format` and `host`;
//! `store` uses `format` and `host`; `format` uses nothing of ours but
//! [`error`]. The engine never prints and never exits: it returns values
//! and [`Error`]s that carry their context.

pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod ops;
pub mod store;

pub use error::{Error, Result};
