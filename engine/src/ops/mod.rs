//! The operations. Each takes an open repository, plans what it will do
//! (a plain value that can be printed), then executes the plan through
//! `store`. A new command goes here, as one module or folder.

pub mod backup;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod dump;
pub mod find;
pub mod forget;
pub mod ls;
pub mod metrics;
pub mod mount;
pub mod patterns;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod select;
pub mod stats;
pub mod status;
pub mod tag;
pub mod wal;
