//! `forget`: removing snapshots by id or by a retention policy.
//!
//! [`policy`] decides, purely and with restic's semantics, which snapshots
//! a policy keeps; this module applies the decision to the repository.

pub mod policy;
