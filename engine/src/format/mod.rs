//! The bytes of every repository object. Pure: no file, network or store
//! I/O happens here (the key derivation is CPU work, the nonces come from
//! the operating system's random source). `format-spec/` is the normative
//! description; the test vectors there are decoded by these modules.

pub mod chunker;
pub mod compress;
pub mod config;
pub mod coverage;
pub mod crypto;
pub mod id;
pub mod index;
pub mod keyfile;
pub mod lock;
pub mod pack;
pub mod snapshot;
pub mod tree;
pub(crate) mod wire;
