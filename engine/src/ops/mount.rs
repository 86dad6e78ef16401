//! Mount: a read-only FUSE view of the repository's snapshots, as
//! restic's `mount` gives:
//!
//! ```text
//! snapshots/<time>/...      each snapshot's tree (UTC, `-1`, `-2` on equal times)
//! snapshots/latest          -> the newest
//! ids/<short id>            -> ../snapshots/<time>
//! hosts/<host>/<time>       -> ../../snapshots/<time>, and latest
//! tags/<tag>/<time>         -> ../../snapshots/<time>, and latest
//! ```
//!
//! Host and tag names are user data, so their directories are named by
//! [`component`]: `%`, `/` and NUL escaped, placeholders for the empty
//! name, `.` and `..`, overlong names shortened; one bad name cannot break
//! a listing.
//!
//! Costs and contracts: the snapshot list is read once, at mount time. A
//! directory's tree blob is read the first time it is looked into, and its
//! entries get inode numbers then (kept until unmount: memory grows with
//! what was browsed, not with the repository). A file read fetches only
//! the data blobs its range overlaps, each verified, through a cache of
//! at most [`MountOptions::cache_bytes`]; holes read as zeros, and
//! `SEEK_DATA`/`SEEK_HOLE` answer from the recorded extents, so sparse
//! files keep their holes for `cp --sparse` or `tar -S`. The whole-file
//! BLAKE3 is not checked on partial reads (`restore` and `dump` check it).
//! Errors reach the reader as EIO; the mount itself never prints.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, INodeNo, LockOwner, MountOption, OpenFlags,
    ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyLseek, ReplyXattr, Request,
};

use crate::error::{Error, Result};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::pack::BlobKind;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Content, Extent, Node, NodeKind, Timestamp};
use crate::store::blob_reader::BlobReader;

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let other users read the mount (FUSE's `allow_other`; for users
    /// other than root, /etc/fuse.conf must allow it).
    pub allow_other: bool,
    /// Bytes of data blobs kept in memory for reads.
    pub cache_bytes: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            allow_other: false,
            cache_bytes: 64 << 20,
        }
    }
}

/// The kernel may cache attributes and entries this long: nothing changes.
const TTL: Duration = Duration::from_secs(3600);

/// What an inode is.
enum Inode {
    /// A directory made by the mount (the root, `snapshots/`, a host).
    Virtual {
        entries: Vec<(OsString, u64)>,
        time: SystemTime,
    },
    /// A symbolic link made by the mount.
    Link { target: OsString, time: SystemTime },
    /// A node of a snapshot's tree; a directory's entries once read.
    Node {
        node: Box<Node>,
        entries: Option<Vec<(OsString, u64)>>,
    },
    /// A snapshot's root directory (its tree), with its time.
    Root {
        tree: BlobId,
        time: SystemTime,
        entries: Option<Vec<(OsString, u64)>>,
    },
}

/// Data blobs by id, the oldest evicted first past the byte budget.
struct BlobCache {
    map: HashMap<BlobId, Arc<Vec<u8>>>,
    order: VecDeque<BlobId>,
    bytes: usize,
    limit: usize,
}

impl BlobCache {
    fn get(&mut self, id: &BlobId) -> Option<Arc<Vec<u8>>> {
        self.map.get(id).cloned()
    }

    fn put(&mut self, id: BlobId, data: Arc<Vec<u8>>) {
        if self.map.contains_key(&id) {
            return;
        }
        self.bytes += data.len();
        self.map.insert(id, data);
        self.order.push_back(id);
        while self.bytes > self.limit
            && self.order.len() > 1
            && let Some(old) = self.order.pop_front()
        {
            if let Some(d) = self.map.remove(&old) {
                self.bytes -= d.len();
            }
        }
    }
}

/// The filesystem: inodes (index + 1 is the inode number) and a reader.
struct View {
    reader: BlobReader,
    inodes: Mutex<Vec<Inode>>,
    cache: Mutex<BlobCache>,
    uid: u32,
    gid: u32,
}

fn system_time(t: &Timestamp) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs())
    }
}

fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Socket => FileType::Socket,
    }
}

/// The extents of a file node (none for anything else).
fn extents(node: &Node) -> &[Extent] {
    match &node.content {
        Content::File { extents, .. } => extents,
        _ => &[],
    }
}

/// `SEEK_DATA` / `SEEK_HOLE` from `offset` in a file of `size` bytes with
/// these extents (ordered, not overlapping): the position, or `None` for
/// ENXIO (at or past the end, or no data after `offset`).
pub fn seek(extents: &[Extent], size: u64, offset: u64, data: bool) -> Option<u64> {
    if offset >= size {
        return None;
    }
    // the first extent that ends after offset
    let i = extents.partition_point(|e| e.offset + e.length as u64 <= offset);
    if data {
        return extents.get(i).map(|e| e.offset.max(offset));
    }
    match extents.get(i) {
        Some(e) if e.offset <= offset => {
            // in data: run to the end of the contiguous extents
            let mut end = e.offset + e.length as u64;
            for next in &extents[i + 1..] {
                if next.offset != end {
                    break;
                }
                end += next.length as u64;
            }
            Some(end.min(size))
        }
        _ => Some(offset),
    }
}

/// Longest directory-entry name the kernel resolves (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A directory-entry name for user data (a host, a tag): one valid path
/// component, distinct names staying distinct. `%` becomes `%25`, `/`
/// `%2F` and NUL `%00`; the empty name is `(empty)` (and a real
/// `(empty)` is `%28empty)`), `.` and `..` are `%2E` and `%2E%2E`. A name
/// longer than [`NAME_MAX`] bytes is cut at a character boundary and ends
/// in `~` and 16 hex digits of the raw name's BLAKE3. Lookups match these
/// names exactly, as `readdir` lists them.
pub fn component(raw: &str) -> OsString {
    let escaped = match raw {
        "" => "(empty)".to_string(),
        "(empty)" => "%28empty)".to_string(),
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        _ => {
            let mut out = String::with_capacity(raw.len());
            for c in raw.chars() {
                match c {
                    '%' => out.push_str("%25"),
                    '/' => out.push_str("%2F"),
                    '\0' => out.push_str("%00"),
                    c => out.push(c),
                }
            }
            out
        }
    };
    if escaped.len() <= NAME_MAX {
        return escaped.into();
    }
    let hash = blake3::hash(raw.as_bytes()).to_hex();
    let suffix = format!("~{}", &hash[..16]);
    let mut cut = NAME_MAX - suffix.len();
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &escaped[..cut]).into()
}

impl View {
    fn push(inodes: &mut Vec<Inode>, i: Inode) -> u64 {
        inodes.push(i);
        inodes.len() as u64
    }

    /// Builds the virtual tree over `snapshots`.
    fn new(reader: BlobReader, snapshots: &[(SnapshotId, Snapshot)], opts: &MountOptions) -> Self {
        let now = SystemTime::now();
        let mut inodes: Vec<Inode> = vec![];
        // the root first: inode 1
        View::push(
            &mut inodes,
            Inode::Virtual {
                entries: vec![],
                time: now,
            },
        );
        let mut sorted: Vec<&(SnapshotId, Snapshot)> = snapshots.iter().collect();
        sorted.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        // snapshots/<time>
        let mut names: Vec<(String, &SnapshotId, &Snapshot)> = vec![];
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (id, s) in &sorted {
            let base = s.time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let n = seen.entry(base.clone()).or_insert(0);
            let name = if *n == 0 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            *n += 1;
            names.push((name, id, s));
        }
        let time_of = |s: &Snapshot| -> SystemTime { s.time.into() };
        let mut snap_entries = vec![];
        for (name, _, s) in &names {
            let ino = View::push(
                &mut inodes,
                Inode::Root {
                    tree: s.tree,
                    time: time_of(s),
                    entries: None,
                },
            );
            snap_entries.push((OsString::from(name), ino));
        }
        let links = |inodes: &mut Vec<Inode>,
                     picked: &[&(String, &SnapshotId, &Snapshot)],
                     up: &str|
         -> Vec<(OsString, u64)> {
            let mut v = vec![];
            for (name, _, s) in picked {
                let ino = View::push(
                    inodes,
                    Inode::Link {
                        target: format!("{up}snapshots/{name}").into(),
                        time: time_of(s),
                    },
                );
                v.push((OsString::from(name), ino));
            }
            if let Some((name, _, s)) = picked.last() {
                let ino = View::push(
                    inodes,
                    Inode::Link {
                        target: format!("{up}snapshots/{name}").into(),
                        time: time_of(s),
                    },
                );
                v.push(("latest".into(), ino));
            }
            v
        };
        if let Some((name, _, s)) = names.last() {
            let ino = View::push(
                &mut inodes,
                Inode::Link {
                    target: name.into(),
                    time: time_of(s),
                },
            );
            snap_entries.push(("latest".into(), ino));
        }
        let all: Vec<&(String, &SnapshotId, &Snapshot)> = names.iter().collect();
        // ids/<short id>
        let mut id_entries = vec![];
        for (name, id, s) in &all {
            let ino = View::push(
                &mut inodes,
                Inode::Link {
                    target: format!("../snapshots/{name}").into(),
                    time: time_of(s),
                },
            );
            id_entries.push((OsString::from(id.short()), ino));
        }
        // hosts/<host>/ and tags/<tag>/
        let group = |inodes: &mut Vec<Inode>, key: &dyn Fn(&Snapshot) -> Vec<String>| {
            let mut keys: Vec<String> = all.iter().flat_map(|(_, _, s)| key(s)).collect();
            keys.sort();
            keys.dedup();
            let mut out = vec![];
            for k in keys {
                let picked: Vec<&(String, &SnapshotId, &Snapshot)> = all
                    .iter()
                    .copied()
                    .filter(|(_, _, s)| key(s).contains(&k))
                    .collect();
                let entries = links(inodes, &picked, "../../");
                let ino = View::push(inodes, Inode::Virtual { entries, time: now });
                out.push((component(&k), ino));
            }
            out
        };
        let host_entries = group(&mut inodes, &|s| vec![s.host.clone()]);
        let tag_entries = group(&mut inodes, &|s| s.tags.clone());
        let mut top = vec![];
        for (name, entries) in [
            ("snapshots", snap_entries),
            ("ids", id_entries),
            ("hosts", host_entries),
            ("tags", tag_entries),
        ] {
            let ino = View::push(&mut inodes, Inode::Virtual { entries, time: now });
            top.push((OsString::from(name), ino));
        }
        inodes[0] = Inode::Virtual {
            entries: top,
            time: now,
        };
        Self {
            reader,
            inodes: Mutex::new(inodes),
            cache: Mutex::new(BlobCache {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                limit: opts.cache_bytes,
            }),
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    fn attr(&self, ino: u64, i: &Inode) -> FileAttr {
        let base = FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        match i {
            Inode::Virtual { time, .. } | Inode::Root { time, .. } => FileAttr {
                atime: *time,
                mtime: *time,
                ctime: *time,
                ..base
            },
            Inode::Link { target, time } => FileAttr {
                kind: FileType::Symlink,
                perm: 0o777,
                nlink: 1,
                size: target.len() as u64,
                atime: *time,
                mtime: *time,
                ctime: *time,
                ..base
            },
            Inode::Node { node, .. } => {
                let stored: u64 = extents(node).iter().map(|e| e.length as u64).sum();
                FileAttr {
                    kind: file_type(node.kind),
                    perm: (node.mode & 0o7777) as u16,
                    nlink: if node.kind == NodeKind::Dir { 2 } else { 1 },
                    uid: node.uid,
                    gid: node.gid,
                    size: match node.kind {
                        NodeKind::Symlink => node.target.len() as u64,
                        _ => node.size,
                    },
                    blocks: stored.div_ceil(512),
                    rdev: node.rdev as u32,
                    atime: system_time(&node.atime),
                    mtime: system_time(&node.mtime),
                    ctime: system_time(&node.ctime),
                    ..base
                }
            }
        }
    }

    /// The entries of directory `ino`, reading its tree the first time.
    fn entries(&self, ino: u64) -> std::result::Result<Vec<(OsString, u64)>, Errno> {
        let tree = {
            let inodes = self.inodes.lock().unwrap();
            match inodes.get((ino - 1) as usize).ok_or(Errno::ENOENT)? {
                Inode::Virtual { entries, .. } => return Ok(entries.clone()),
                Inode::Root {
                    entries: Some(e), ..
                }
                | Inode::Node {
                    entries: Some(e), ..
                } => return Ok(e.clone()),
                Inode::Root { tree, .. } => *tree,
                Inode::Node { node, .. } => match &node.content {
                    Content::Dir { subtree } => *subtree,
                    _ => return Err(Errno::ENOTDIR),
                },
                Inode::Link { .. } => return Err(Errno::ENOTDIR),
            }
        };
        let t = self
            .reader
            .tree(&tree, &|| format!("the mounted directory (tree {tree})"))
            .map_err(|_| Errno::EIO)?;
        let mut inodes = self.inodes.lock().unwrap();
        // another thread may have read it meanwhile
        if let Some(
            Inode::Root {
                entries: Some(e), ..
            }
            | Inode::Node {
                entries: Some(e), ..
            },
        ) = inodes.get((ino - 1) as usize)
        {
            return Ok(e.clone());
        }
        let mut list = vec![];
        for n in &t.nodes {
            let child = View::push(
                &mut inodes,
                Inode::Node {
                    node: Box::new(n.clone()),
                    entries: None,
                },
            );
            list.push((OsString::from_vec(n.name.clone()), child));
        }
        match &mut inodes[(ino - 1) as usize] {
            Inode::Root { entries, .. } | Inode::Node { entries, .. } => {
                *entries = Some(list.clone())
            }
            _ => {}
        }
        Ok(list)
    }

    fn with<R>(&self, ino: INodeNo, f: impl FnOnce(&Inode) -> R) -> std::result::Result<R, Errno> {
        let inodes = self.inodes.lock().unwrap();
        inodes
            .get((u64::from(ino) - 1) as usize)
            .map(f)
            .ok_or(Errno::ENOENT)
    }

    fn kind(&self, ino: u64) -> FileType {
        let inodes = self.inodes.lock().unwrap();
        let i = &inodes[(ino - 1) as usize];
        self.attr(ino, i).kind
    }

    /// A data blob, from the cache or the repository (verified).
    fn blob(&self, id: &BlobId) -> Result<Arc<Vec<u8>>> {
        if let Some(b) = self.cache.lock().unwrap().get(id) {
            return Ok(b);
        }
        let b = Arc::new(self.reader.read(id, BlobKind::Data, &|| {
            "a file read through the mount".to_string()
        })?);
        self.cache.lock().unwrap().put(*id, b.clone());
        Ok(b)
    }

    /// `size` bytes of file `node` from `offset` (fewer at its end).
    fn read_range(&self, node: &Node, offset: u64, size: u32) -> Result<Vec<u8>> {
        let end = node.size.min(offset.saturating_add(size as u64));
        if offset >= end {
            return Ok(vec![]);
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let ex = extents(node);
        let first = ex.partition_point(|e| e.offset + e.length as u64 <= offset);
        for e in &ex[first..] {
            if e.offset >= end {
                break;
            }
            let data = self.blob(&e.blob)?;
            if data.len() != e.length as usize {
                return Err(Error::damaged(
                    format!("blob {}", e.blob),
                    "its length is not the extent's",
                ));
            }
            let from = offset.max(e.offset);
            let to = end.min(e.offset + e.length as u64);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - e.offset) as usize..(to - e.offset) as usize]);
        }
        Ok(out)
    }

    fn node(&self, ino: INodeNo) -> std::result::Result<Node, Errno> {
        self.with(ino, |i| match i {
            Inode::Node { node, .. } => Ok((**node).clone()),
            _ => Err(Errno::EISDIR),
        })?
    }
}

impl Filesystem for View {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.entries(parent.into()) {
            Err(e) => reply.error(e),
            Ok(list) => match list.iter().find(|(n, _)| n == name) {
                None => reply.error(Errno::ENOENT),
                Some((_, ino)) => {
                    let attr = self.with(INodeNo(*ino), |i| self.attr(*ino, i));
                    match attr {
                        Ok(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
                        Err(e) => reply.error(e),
                    }
                }
            },
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(ino, |i| self.attr(ino.into(), i)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self.with(ino, |i| match i {
            Inode::Link { target, .. } => Ok(target.as_bytes().to_vec()),
            Inode::Node { node, .. } if node.kind == NodeKind::Symlink => Ok(node.target.clone()),
            _ => Err(Errno::EINVAL),
        });
        match target {
            Ok(Ok(t)) => reply.data(&t),
            Ok(Err(e)) | Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.node(ino) {
            Err(e) => reply.error(e),
            Ok(node) => match self.read_range(&node, offset, size) {
                Ok(d) => reply.data(&d),
                Err(_) => reply.error(Errno::EIO),
            },
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let list = match self.entries(ino.into()) {
            Ok(l) => l,
            Err(e) => return reply.error(e),
        };
        let mut all: Vec<(u64, FileType, OsString)> = vec![
            (ino.into(), FileType::Directory, ".".into()),
            (ino.into(), FileType::Directory, "..".into()),
        ];
        for (name, child) in list {
            all.push((child, self.kind(child), name));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let node = match self.node(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let data = match whence {
            libc::SEEK_DATA => true,
            libc::SEEK_HOLE => false,
            // SEEK_SET, SEEK_CUR, SEEK_END: the kernel's own
            _ => return reply.error(Errno::EINVAL),
        };
        match seek(extents(&node), node.size, offset.max(0) as u64, data) {
            Some(p) => reply.offset(p as i64),
            None => reply.error(Errno::ENXIO),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let value = self.with(ino, |i| match i {
            Inode::Node { node, .. } => node
                .xattrs
                .iter()
                .find(|(n, _)| n.as_slice() == name.as_bytes())
                .map(|(_, v)| v.clone()),
            _ => None,
        });
        match value {
            Ok(Some(v)) if size == 0 => reply.size(v.len() as u32),
            Ok(Some(v)) if v.len() <= size as usize => reply.data(&v),
            Ok(Some(_)) => reply.error(Errno::ERANGE),
            Ok(None) => reply.error(Errno::NO_XATTR),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let names = self.with(ino, |i| match i {
            Inode::Node { node, .. } => node
                .xattrs
                .iter()
                .flat_map(|(n, _)| n.iter().copied().chain([0u8]))
                .collect::<Vec<u8>>(),
            _ => vec![],
        });
        match names {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() <= size as usize => reply.data(&v),
            Ok(_) => reply.error(Errno::ERANGE),
            Err(e) => reply.error(e),
        }
    }
}

/// Whether FUSE can be used here, or why not (a message naming the fix).
pub fn available() -> std::result::Result<(), String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "FUSE is not available: /dev/fuse does not exist (load the fuse module with `modprobe fuse`; in a container, pass the device: docker run --device /dev/fuse --cap-add SYS_ADMIN)".into(),
        ),
        Err(e) => Err(format!(
            "FUSE is not available: /dev/fuse cannot be opened ({e}); run as root, or install fuse3 (fusermount3) for mounting as a user"
        )),
    }
}

/// Mounts a view of `snapshots` at `mountpoint` and serves it until it is
/// unmounted (`umount`, `fusermount -u`) or `stop` is set (then it
/// unmounts itself). `ready` is called once the mount is in place.
pub fn mount(
    reader: BlobReader,
    snapshots: &[(SnapshotId, Snapshot)],
    mountpoint: &Path,
    opts: &MountOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(),
) -> Result<()> {
    available().map_err(Error::Invalid)?;
    let meta = std::fs::metadata(mountpoint).map_err(|e| Error::io(mountpoint, e))?;
    if !meta.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a directory: mount needs an empty directory",
            mountpoint.display()
        )));
    }
    let view = View::new(reader, snapshots, opts);
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::RO,
        MountOption::FSName("arca".into()),
        MountOption::Subtype("arca".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if opts.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    config.n_threads = Some(4);
    let session = fuser::spawn_mount2(view, mountpoint, &config).map_err(|e| {
        Error::Invalid(format!(
            "could not mount at {}: {e} (is it an existing, empty directory, and is FUSE allowed here?)",
            mountpoint.display()
        ))
    })?;
    ready();
    loop {
        if session.guard.is_finished() {
            // unmounted from outside
            return session
                .join()
                .map_err(|e| Error::io(PathBuf::from(mountpoint), e));
        }
        if stop.load(Ordering::SeqCst) {
            return session
                .umount_and_join()
                .map_err(|e| Error::io(PathBuf::from(mountpoint), e));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(offset: u64, length: u32) -> Extent {
        Extent {
            offset,
            length,
            blob: BlobId::default(),
        }
    }

    #[test]
    fn user_names_become_one_path_component() {
        let c = |s: &str| component(s).into_string().unwrap();
        assert_eq!(c("nightly"), "nightly");
        assert_eq!(c("env/prod"), "env%2Fprod");
        assert_eq!(c("100%/x"), "100%25%2Fx");
        assert_eq!(c("a\0b"), "a%00b");
        assert_eq!(c(""), "(empty)");
        assert_eq!(c("(empty)"), "%28empty)");
        assert_eq!((c("."), c("..")), ("%2E".into(), "%2E%2E".into()));
        assert_eq!(c("%2F"), "%252F", "an escape-like name stays distinct");
        let long = "é".repeat(200);
        let (a, b) = (c(&long), c(&format!("{long}x")));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b, "shortened names stay distinct");
        assert!(a.starts_with("éé") && a.contains('~'));
        for name in ["env/prod", "", ".", "..", "a\0b", &long] {
            let n = c(name);
            assert!(!n.is_empty() && !n.contains(['/', '\0']) && n != "." && n != "..");
        }
    }

    #[test]
    fn seek_data_and_hole_follow_the_extents() {
        // data [0,10) [10,20), hole [20,100), data [100,110), hole to 200
        let e = [ex(0, 10), ex(10, 10), ex(100, 10)];
        assert_eq!(seek(&e, 200, 0, true), Some(0));
        assert_eq!(
            seek(&e, 200, 5, false),
            Some(20),
            "contiguous extents are one run"
        );
        assert_eq!(seek(&e, 200, 20, true), Some(100));
        assert_eq!(seek(&e, 200, 50, false), Some(50), "already in a hole");
        assert_eq!(seek(&e, 200, 105, false), Some(110));
        assert_eq!(seek(&e, 200, 150, true), None, "no data after");
        assert_eq!(seek(&e, 200, 150, false), Some(150));
        assert_eq!(seek(&e, 200, 200, false), None, "at the end");
        assert_eq!(seek(&[], 50, 0, false), Some(0), "all hole");
        assert_eq!(
            seek(&[ex(0, 50)], 50, 0, false),
            Some(50),
            "the end is a hole"
        );
    }
}
