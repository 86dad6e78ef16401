//! The repository as a store of named, verified objects, and the pieces
//! every operation shares: the backends behind one trait and their
//! wrappers, the open repository (whole objects, checked names, checked
//! uploads), the local catalog, locks, the one blob reader, the blob
//! writer, the tree walker, and copy's map of blob ids between two
//! repositories. Everything here may do I/O with the
//! repository and the cache; nothing here decides what an operation does.

pub mod backend;
pub mod blob_reader;
pub mod blob_writer;
pub mod catalog;
pub mod coverage;
pub mod id_map;
pub mod lock;
pub mod prune_seals;
pub mod repo;
pub mod repo_index;
pub mod session;
pub mod tree_walk;
