//! The machine arca runs on: file metadata (reading it from and applying
//! it to the filesystem), facts about the process and host, and the small
//! thread primitives the pipelines share.

pub mod facts;
pub mod fsmeta;
pub mod process;
pub mod threads;
