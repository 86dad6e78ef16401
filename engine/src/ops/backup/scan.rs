//! Walking the sources in tree order and deciding, file by file, whether
//! content must be read (new or changed) or can be taken from the parent
//! snapshot (size, mtime, ctime and inode unchanged, and every chunk still
//! indexed).
//!
//! The walker emits a stream of events in depth-first, name-sorted order
//! for the tree builder, and sends the files to read to the reader threads.
//! It runs ahead of both, bounded by the channels' capacities.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::ops::patterns::Patterns;
use crossbeam_channel::Sender;

use super::Progress;
use super::read::FileOutcome;
use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::snapshot::SourceError;
use crate::format::tree::{Content, Extent, Node, NodeKind, Tree};
use crate::host::fsmeta::{self, NameCache};
use crate::host::threads::Pending;
use crate::store::blob_reader::BlobReader;
use crate::store::catalog::Catalog;

/// What the tree builder receives.
pub enum Event {
    /// A directory starts; its children follow until the matching `Leave`.
    Enter(Node),
    /// The current directory ends.
    Leave,
    /// A non-directory entry.
    Leaf(Node, Leaf),
    /// A source that could not be read.
    Error(SourceError),
    /// Something to report that does not make the snapshot partial (an
    /// entry listed in its directory that was gone when looked at).
    Warning(SourceError),
}

/// How a leaf's content is obtained.
pub enum Leaf {
    /// Not a regular file, or content already in the node (from the parent).
    Ready,
    /// Being read: the outcome, new (`true`) or changed (`false`), and the
    /// path (for messages).
    Reading(Arc<Pending<FileOutcome>>, bool, PathBuf),
}

/// A file for a reader thread.
pub struct FileJob {
    /// Where to read.
    pub path: PathBuf,
    /// Where to put the outcome.
    pub pending: Arc<Pending<FileOutcome>>,
    /// The parent snapshot's chunks of this file, if it had one (a changed
    /// file): where content did not move, its boundaries are reused.
    pub parent: Option<Arc<[Extent]>>,
    /// A block device named as a source: its content is read, and all-zero
    /// chunks are stored as holes.
    pub device: bool,
}

/// Files per batch handed to a reader.
const BATCH_FILES: usize = 64;
/// Events per hand-over to the tree builder.
pub(super) const EVENT_BATCH: usize = 256;
/// Bytes per batch: a batch with a large file goes at once.
const BATCH_BYTES: u64 = 4 << 20;

/// A prefix tree of the source paths.
#[derive(Default, Debug)]
pub struct SourceTrie {
    /// This path itself was given as a source.
    pub source: bool,
    /// Components below.
    pub children: BTreeMap<Vec<u8>, SourceTrie>,
}

impl SourceTrie {
    /// Builds the trie from absolute, normalised paths. A path below
    /// another source is covered by it and dropped.
    pub fn new(paths: &[PathBuf]) -> Self {
        let mut root = SourceTrie::default();
        for p in paths {
            let mut t = &mut root;
            for c in p.components().skip(1) {
                if t.source {
                    break;
                }
                t = t
                    .children
                    .entry(c.as_os_str().as_bytes().to_vec())
                    .or_default();
            }
            t.source = true;
            t.children.clear();
        }
        root
    }
}

impl SourceTrie {
    /// The source paths at and below this node, which is at `path`.
    pub fn sources(&self, path: &Path) -> Vec<PathBuf> {
        if self.source {
            return vec![path.to_path_buf()];
        }
        self.children
            .iter()
            .flat_map(|(name, c)| c.sources(&path.join(OsStr::from_bytes(name))))
            .collect()
    }
}

/// The walker's state.
pub struct Walker<'a> {
    pub(super) events: Sender<Vec<Event>>,
    /// Events not yet handed over (see [`Walker::emit`]).
    pending_events: Vec<Event>,
    pub(super) jobs: Sender<Vec<FileJob>>,
    /// Files to read not yet handed over (see [`Walker::queue`]).
    batch: Vec<FileJob>,
    batch_bytes: u64,
    pub(super) parents: Option<&'a BlobReader>,
    pub(super) catalog: &'a Catalog,
    pub(super) excludes: Patterns,
    pub(super) names: NameCache,
    pub(super) force: bool,
    pub(super) with_atime: bool,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) progress: Arc<Progress>,
    hardlinks: HashMap<(u64, u64), Arc<Pending<FileOutcome>>>,
}

impl<'a> Walker<'a> {
    /// A walker that sends to the given channels.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        events: Sender<Vec<Event>>,
        jobs: Sender<Vec<FileJob>>,
        parents: Option<&'a BlobReader>,
        catalog: &'a Catalog,
        excludes: Patterns,
        force: bool,
        with_atime: bool,
        cancel: Arc<AtomicBool>,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            events,
            pending_events: Vec::with_capacity(EVENT_BATCH),
            jobs,
            parents,
            catalog,
            excludes,
            names: NameCache::default(),
            force,
            with_atime,
            cancel,
            progress,
            hardlinks: HashMap::new(),
            batch: Vec::new(),
            batch_bytes: 0,
        }
    }

    /// Queues an event for the tree builder. Events go in batches: the
    /// builder usually keeps up and sleeps on the channel, and waking it per
    /// unchanged file (a futex wake and two context switches) cost more
    /// than the walk itself on a tree of many small files.
    fn emit(&mut self, e: Event) -> Result<()> {
        self.pending_events.push(e);
        if self.pending_events.len() >= EVENT_BATCH {
            self.flush_events()?;
        }
        Ok(())
    }

    /// Hands the queued events to the tree builder. If the channel is full,
    /// the builder may be waiting for a file still in our job batch: hand
    /// that over first, then wait.
    fn flush_events(&mut self) -> Result<()> {
        if self.pending_events.is_empty() {
            return Ok(());
        }
        let gone = || Error::Interrupted("the tree builder stopped".into());
        let batch = std::mem::replace(&mut self.pending_events, Vec::with_capacity(EVENT_BATCH));
        match self.events.try_send(batch) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(batch)) => {
                self.flush_jobs()?;
                self.events.send(batch).map_err(|_| gone())
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(gone()),
        }
    }

    /// Hands over everything queued: files to the readers, then events to
    /// the tree builder. Called once the walk is done.
    pub fn finish(&mut self) -> Result<()> {
        self.flush_jobs()?;
        self.flush_events()
    }

    /// Queues a file for the readers. Small files go in batches (a reader
    /// takes a batch at a time): with many small files, waking a reader per
    /// file costs more than reading it.
    fn queue(&mut self, job: FileJob, size: u64) -> Result<()> {
        self.batch.push(job);
        self.batch_bytes += size;
        if self.batch.len() >= BATCH_FILES || self.batch_bytes >= BATCH_BYTES {
            self.flush_jobs()?;
        }
        Ok(())
    }

    /// Hands the queued files to the readers.
    pub fn flush_jobs(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batch_bytes = 0;
        self.jobs
            .send(std::mem::take(&mut self.batch))
            .map_err(|_| Error::Interrupted("the readers stopped".into()))
    }

    fn node(&self, name: &OsStr, path: &Path, md: &std::fs::Metadata) -> std::io::Result<Node> {
        let mut n = fsmeta::node_from_metadata(name, path, md, &self.names)?;
        if !self.with_atime {
            n.atime = Default::default();
        }
        Ok(n)
    }

    /// An error about an entry found by listing its directory: one that
    /// is no longer there is left out with a warning (the tree moved on
    /// without it), anything else is an error.
    fn listed_error(&mut self, path: &Path, e: std::io::Error) -> Result<()> {
        if e.kind() == std::io::ErrorKind::NotFound {
            return self.emit(Event::Warning(SourceError {
                path: path.display().to_string(),
                error: super::VANISHED.into(),
            }));
        }
        self.error(path, e)
    }

    fn error(&mut self, path: &Path, e: impl std::fmt::Display) -> Result<()> {
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::Error(SourceError {
            path: path.display().to_string(),
            error: e.to_string(),
        }))
    }

    fn parent_subtree(&self, node: Option<&Node>, path: &Path) -> Option<Arc<Tree>> {
        let (reader, sub) = (self.parents?, node?.subtree()?);
        // A parent tree that cannot be read only costs re-reading files.
        reader
            .tree(&sub, &|| format!("parent of {}", path.display()))
            .ok()
    }

    /// Walks the trie below `dir` (a directory that is not itself a
    /// source). `parent` is the parent snapshot's tree for `dir`.
    pub fn walk_trie(
        &mut self,
        dir: &Path,
        trie: &SourceTrie,
        parent: Option<Arc<Tree>>,
    ) -> Result<()> {
        if trie.source {
            return self.walk_dir_entries(dir, parent);
        }
        for (name, child) in &trie.children {
            let name = OsStr::from_bytes(name);
            let path = dir.join(name);
            let md = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    // name the sources the user gave, not the ancestor
                    for source in child.sources(&path) {
                        self.error(&source, &e)?;
                    }
                    continue;
                }
            };
            let pnode = parent
                .as_ref()
                .and_then(|t| t.get(name.as_bytes()).cloned());
            // a source that is a block device, or a link to one (LVM's
            // /dev/vg0/data and /dev/mapper/* are udev symlinks)
            let device = child.source
                && (md.file_type().is_block_device()
                    || (md.file_type().is_symlink()
                        && std::fs::metadata(&path)
                            .is_ok_and(|m| m.file_type().is_block_device())));
            if device {
                let md = std::fs::metadata(&path).unwrap_or(md);
                self.device(&path, name, &md, pnode.as_ref())?;
            } else if child.source {
                self.entry(&path, name, &md, pnode.as_ref())?;
            } else if md.is_dir() {
                let node = match self.node(name, &path, &md) {
                    Ok(n) => n,
                    Err(e) => {
                        self.error(&path, e)?;
                        continue;
                    }
                };
                let sub = self.parent_subtree(pnode.as_ref(), &path);
                self.emit(Event::Enter(node))?;
                self.walk_trie(&path, child, sub)?;
                self.emit(Event::Leave)?;
            } else {
                self.error(&path, "not a directory, but sources lie below it")?;
            }
        }
        Ok(())
    }

    /// One source entry and, for a directory, everything below it.
    fn entry(
        &mut self,
        path: &Path,
        name: &OsStr,
        md: &std::fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Interrupted("backup stopped".into()));
        }
        let mut node = match self.node(name, path, md) {
            Ok(n) => n,
            Err(e) => return self.error(path, e),
        };
        match node.kind {
            NodeKind::Dir => {
                let sub = self.parent_subtree(parent.filter(|p| p.kind == NodeKind::Dir), path);
                self.emit(Event::Enter(node))?;
                self.walk_dir_entries(path, sub)?;
                self.progress.dirs.fetch_add(1, Ordering::Relaxed);
                self.emit(Event::Leave)
            }
            NodeKind::File => {
                if !self.force
                    && let Some(p) = parent
                    && unchanged(p, &node)
                    && self.all_indexed(p)?
                {
                    node.content = p.content.clone();
                    self.progress.files.fetch_add(1, Ordering::Relaxed);
                    self.progress
                        .bytes_unmodified
                        .fetch_add(node.size, Ordering::Relaxed);
                    return self.emit(Event::Leaf(node, Leaf::Ready));
                }
                let is_new = parent.is_none_or(|p| p.kind != NodeKind::File);
                let link_key = (node.device, node.inode);
                if node.nlink > 1
                    && let Some(p) = self.hardlinks.get(&link_key)
                {
                    let p = p.clone();
                    return self.emit(Event::Leaf(
                        node,
                        Leaf::Reading(p, is_new, path.to_path_buf()),
                    ));
                }
                let pending = Arc::new(Pending::new());
                if node.nlink > 1 {
                    self.hardlinks.insert(link_key, pending.clone());
                }
                self.read(node, path, parent, pending, is_new, false)
            }
            _ => self.emit(Event::Leaf(node, Leaf::Ready)),
        }
    }

    /// A block device named as a source (`arca backup /dev/vg0/data`): its
    /// content, as a file of the device's size, read every time (a device's
    /// times say nothing about its content) with the parent's chunks as
    /// hints. A device found inside a directory stays a device node.
    fn device(
        &mut self,
        path: &Path,
        name: &OsStr,
        md: &std::fs::Metadata,
        parent: Option<&Node>,
    ) -> Result<()> {
        let mut node = match self.node(name, path, md) {
            Ok(n) => n,
            Err(e) => return self.error(path, e),
        };
        let size = match fsmeta::device_size(path) {
            Ok(s) => s,
            Err(e) => return self.error(path, e),
        };
        node.kind = NodeKind::File;
        node.rdev = 0;
        node.size = size;
        let is_new = parent.is_none_or(|p| p.kind != NodeKind::File);
        self.read(node, path, parent, Arc::new(Pending::new()), is_new, true)
    }

    /// Queues `node`'s content for the readers (a `device` read by its
    /// content), with the parent's chunks as hints, and emits it.
    fn read(
        &mut self,
        node: Node,
        path: &Path,
        parent: Option<&Node>,
        pending: Arc<Pending<FileOutcome>>,
        is_new: bool,
        device: bool,
    ) -> Result<()> {
        let hints = parent
            .filter(|p| p.kind == NodeKind::File && p.flags == 0 && !p.extents().is_empty())
            .map(|p| Arc::from(p.extents()));
        let size = node.size;
        self.queue(
            FileJob {
                path: path.to_path_buf(),
                pending: pending.clone(),
                parent: hints,
                device,
            },
            size,
        )?;
        self.emit(Event::Leaf(
            node,
            Leaf::Reading(pending, is_new, path.to_path_buf()),
        ))
    }

    /// The entries of directory `path`, sorted by name, minus exclusions.
    fn walk_dir_entries(&mut self, path: &Path, parent: Option<Arc<Tree>>) -> Result<()> {
        let rd = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            // listed in its parent, gone before it was opened: the node is
            // already out, so it stays, empty
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.emit(Event::Warning(SourceError {
                    path: path.display().to_string(),
                    error: "vanished before its entries were listed (deleted or renamed since \
                            its parent was listed): stored as an empty directory"
                        .into(),
                }));
            }
            Err(e) => return self.error(path, e),
        };
        let mut names = vec![];
        for ent in rd {
            match ent {
                Ok(e) => names.push(e.file_name()),
                Err(e) => self.error(path, e)?,
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = path.join(&name);
            if self.excludes.matches(&child) {
                continue;
            }
            let md = match std::fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(e) => {
                    self.listed_error(&child, e)?;
                    continue;
                }
            };
            let pnode = parent.as_ref().and_then(|t| t.get(name.as_bytes()));
            self.entry(&child, &name, &md, pnode)?;
        }
        Ok(())
    }

    /// Every chunk of a parent node is still indexed (otherwise the file is
    /// read again, which heals a repository that lost data).
    fn all_indexed(&self, p: &Node) -> Result<bool> {
        for e in p.extents() {
            if !self.catalog.contains(BlobKind::Data, &e.blob)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The change test: same size, mtime, ctime and inode, complete content.
fn unchanged(parent: &Node, now: &Node) -> bool {
    parent.kind == NodeKind::File
        && parent.flags == 0
        && matches!(parent.content, Content::File { .. })
        && parent.size == now.size
        && parent.mtime == now.mtime
        && parent.ctime == now.ctime
        && parent.inode == now.inode
}
