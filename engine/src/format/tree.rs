//! Trees: one directory's entries, serialized as a tree blob.
//!
//! ```text
//! tree  = version:u8(=1) count:u32le node*          nodes sorted by name, bytewise, unique
//! node  = name_len:u16le name kind:u8 flags:u8 mode:u32le uid:u32le gid:u32le
//!         mtime atime ctime                          each: seconds:i64le nanoseconds:u32le
//!         inode:u64le device:u64le nlink:u64le size:u64le rdev:u64le
//!         user_len:u16le user group_len:u16le group
//!         target_len:u32le target                    (symlink target; empty otherwise)
//!         xattr_count:u32le (name_len:u16le name value_len:u32le value)*
//!         file: content_hash[32] extent_count:u32le (offset:u64le length:u32le blob_id[32])*
//!         dir:  subtree_id[32]
//! ```
//! Names are raw bytes (not necessarily UTF-8). A file's extents are its
//! data chunks at their logical offsets; any byte range of `0..size` that no
//! extent covers is a hole. `content_hash` is the plain BLAKE3 of the whole
//! logical content (holes read as zeros), as `b3sum` would print it.
//!
//! Decoding rejects anything a restore could be tricked by: names with `/`
//! or NUL, `.` and `..`, duplicate or unsorted names, overlapping extents.

use crate::format::DecodeError;
use crate::format::id::BlobId;
use crate::format::wire::{Put, Reader};

/// Tree blob format version.
pub const TREE_VERSION: u8 = 1;
/// Longest name accepted.
const MAX_NAME: usize = 4096;
/// Most nodes one tree may hold (bounds allocation when decoding).
const MAX_NODES: u32 = 1 << 24;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum NodeKind {
    /// Regular file.
    File = 0,
    /// Directory.
    Dir = 1,
    /// Symbolic link.
    Symlink = 2,
    /// Named pipe.
    Fifo = 3,
    /// Character device.
    CharDevice = 4,
    /// Block device.
    BlockDevice = 5,
    /// Unix socket (recorded, not restored).
    Socket = 6,
}

impl NodeKind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::File,
            1 => Self::Dir,
            2 => Self::Symlink,
            3 => Self::Fifo,
            4 => Self::CharDevice,
            5 => Self::BlockDevice,
            6 => Self::Socket,
            _ => return None,
        })
    }
    /// Short name as `ls` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Fifo => "fifo",
            Self::CharDevice => "chardev",
            Self::BlockDevice => "blockdev",
            Self::Socket => "socket",
        }
    }
}

/// Node flag: the content is incomplete (a repair replaced lost chunks, or
/// the file changed size while it was read); see the snapshot's errors.
pub const FLAG_INCOMPLETE: u8 = 1;

/// A point in time with nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub sec: i64,
    /// Nanoseconds, below 1e9.
    pub nsec: u32,
}

/// A run of file content stored as one data blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length (the blob's plaintext length).
    pub length: u32,
    /// The blob holding it.
    pub blob: BlobId,
}

/// What a node refers to beyond its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not a file or directory.
    None,
    /// A regular file's data.
    File {
        /// BLAKE3 of the logical content.
        hash: [u8; 32],
        /// Data chunks, ordered by offset, not overlapping.
        extents: Vec<Extent>,
    },
    /// A directory's tree blob.
    Dir {
        /// The subtree's blob id.
        subtree: BlobId,
    },
}

/// One directory entry with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// File name bytes.
    pub name: Vec<u8>,
    /// Type.
    pub kind: NodeKind,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Owner's name where known (may be empty).
    pub user: Vec<u8>,
    /// Group's name where known (may be empty).
    pub group: Vec<u8>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time.
    pub atime: Timestamp,
    /// Status change time (not restorable; used to detect changes).
    pub ctime: Timestamp,
    /// Inode number at backup time.
    pub inode: u64,
    /// Device id of the filesystem at backup time.
    pub device: u64,
    /// Hard link count at backup time.
    pub nlink: u64,
    /// Logical size in bytes (files), 0 otherwise.
    pub size: u64,
    /// Device number (device nodes).
    pub rdev: u64,
    /// Symlink target bytes.
    pub target: Vec<u8>,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// File content or subtree.
    pub content: Content,
}

impl Node {
    /// A node with the given name and kind and everything else zero.
    pub fn new(name: Vec<u8>, kind: NodeKind) -> Self {
        Self {
            name,
            kind,
            flags: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            user: vec![],
            group: vec![],
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            inode: 0,
            device: 0,
            nlink: 0,
            size: 0,
            rdev: 0,
            target: vec![],
            xattrs: vec![],
            content: Content::None,
        }
    }

    /// The subtree id of a directory node.
    pub fn subtree(&self) -> Option<BlobId> {
        match self.content {
            Content::Dir { subtree } => Some(subtree),
            _ => None,
        }
    }

    /// The extents of a file node (empty for others).
    pub fn extents(&self) -> &[Extent] {
        match &self.content {
            Content::File { extents, .. } => extents,
            _ => &[],
        }
    }

    /// The name for messages (lossy UTF-8).
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u16(self.name.len() as u16);
        out.extend_from_slice(&self.name);
        out.push(self.kind as u8);
        out.push(self.flags);
        out.put_u32(self.mode);
        out.put_u32(self.uid);
        out.put_u32(self.gid);
        for t in [self.mtime, self.atime, self.ctime] {
            out.put_i64(t.sec);
            out.put_u32(t.nsec);
        }
        for v in [self.inode, self.device, self.nlink, self.size, self.rdev] {
            out.put_u64(v);
        }
        out.put_u16(self.user.len() as u16);
        out.extend_from_slice(&self.user);
        out.put_u16(self.group.len() as u16);
        out.extend_from_slice(&self.group);
        out.put_u32(self.target.len() as u32);
        out.extend_from_slice(&self.target);
        out.put_u32(self.xattrs.len() as u32);
        for (k, v) in &self.xattrs {
            out.put_u16(k.len() as u16);
            out.extend_from_slice(k);
            out.put_u32(v.len() as u32);
            out.extend_from_slice(v);
        }
        match (&self.content, self.kind) {
            (Content::File { hash, extents }, NodeKind::File) => {
                out.extend_from_slice(hash);
                out.put_u32(extents.len() as u32);
                for e in extents {
                    out.put_u64(e.offset);
                    out.put_u32(e.length);
                    out.extend_from_slice(&e.blob.0);
                }
            }
            (Content::Dir { subtree }, NodeKind::Dir) => out.extend_from_slice(&subtree.0),
            (Content::None, k) if k != NodeKind::File && k != NodeKind::Dir => {}
            _ => panic!("node {:?}: content does not match kind", self.name),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name_len = r.u16()? as usize;
        let name = r.bytes(name_len)?.to_vec();
        check_name(&name)?;
        let shown = String::from_utf8_lossy(&name).into_owned();
        let kind_b = r.u8()?;
        let kind =
            NodeKind::from_byte(kind_b).ok_or_else(|| format!("{shown}: unknown kind {kind_b}"))?;
        let flags = r.u8()?;
        let mode = r.u32()?;
        let uid = r.u32()?;
        let gid = r.u32()?;
        let mut ts = [Timestamp::default(); 3];
        for t in &mut ts {
            let sec = r.i64()?;
            let nsec = r.u32()?;
            if nsec >= 1_000_000_000 {
                return Err(format!("{shown}: nanoseconds {nsec} out of range").into());
            }
            *t = Timestamp { sec, nsec };
        }
        let [inode, device, nlink, size, rdev] = [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?];
        let n = r.u16()? as usize;
        let user = r.bytes(n)?.to_vec();
        let n = r.u16()? as usize;
        let group = r.bytes(n)?.to_vec();
        let n = r.u32()? as usize;
        let target = r.bytes(n)?.to_vec();
        let nx = r.u32()?;
        if nx as usize > r.remaining() / 6 {
            return Err(format!("{shown}: {nx} xattrs do not fit").into());
        }
        let mut xattrs = Vec::with_capacity(nx as usize);
        for _ in 0..nx {
            let n = r.u16()? as usize;
            let k = r.bytes(n)?.to_vec();
            let n = r.u32()? as usize;
            let v = r.bytes(n)?.to_vec();
            xattrs.push((k, v));
        }
        let content = match kind {
            NodeKind::File => {
                let hash = r.array32()?;
                let ne = r.u32()?;
                if ne as usize > r.remaining() / 44 {
                    return Err(format!("{shown}: {ne} extents do not fit").into());
                }
                let mut extents = Vec::with_capacity(ne as usize);
                let mut end = 0u64;
                for _ in 0..ne {
                    let offset = r.u64()?;
                    let length = r.u32()?;
                    let blob = BlobId(r.array32()?);
                    if offset < end || length == 0 {
                        return Err(format!("{shown}: extents overlap or are empty").into());
                    }
                    end = offset
                        .checked_add(length as u64)
                        .ok_or_else(|| format!("{shown}: extent beyond 2^64"))?;
                    extents.push(Extent {
                        offset,
                        length,
                        blob,
                    });
                }
                if end > size {
                    return Err(format!("{shown}: extents reach {end}, beyond size {size}").into());
                }
                Content::File { hash, extents }
            }
            NodeKind::Dir => Content::Dir {
                subtree: BlobId(r.array32()?),
            },
            _ => Content::None,
        };
        Ok(Self {
            name,
            kind,
            flags,
            mode,
            uid,
            gid,
            user,
            group,
            mtime: ts[0],
            atime: ts[1],
            ctime: ts[2],
            inode,
            device,
            nlink,
            size,
            rdev,
            target,
            xattrs,
            content,
        })
    }
}

/// A name that is safe to create inside a directory.
pub fn check_name(name: &[u8]) -> Result<(), DecodeError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("name of {} bytes", name.len()).into());
    }
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(format!("unsafe name {:?}", String::from_utf8_lossy(name)).into());
    }
    Ok(())
}

/// A directory: nodes sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The entries, strictly increasing by name.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Sorts the nodes by name (callers build trees in any order).
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The blob plaintext. Nodes must be sorted and unique (see [`Self::sort`]);
    /// decoding rejects anything else.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.nodes.len() * 160);
        out.push(TREE_VERSION);
        out.put_u32(self.nodes.len() as u32);
        for n in &self.nodes {
            n.encode_into(&mut out);
        }
        out
    }

    /// Decodes and validates a tree blob's plaintext.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let v = r.u8()?;
        if v != TREE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "tree",
                found: u32::from(v),
                supported: u32::from(TREE_VERSION),
            });
        }
        let n = r.u32()?;
        if n > MAX_NODES || n as usize > r.remaining() / 100 {
            return Err(format!("{n} nodes do not fit").into());
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let node = Node::decode(&mut r)?;
            if let Some(prev) = nodes.last()
                && prev.name >= node.name
            {
                return Err(format!(
                    "names not sorted or duplicated at {:?}",
                    node.display_name()
                )
                .into());
            }
            nodes.push(node);
        }
        r.finish()?;
        Ok(Self { nodes })
    }

    /// The node with this name.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// Feeds `n` zero bytes (a hole) to a BLAKE3 hasher.
pub fn hash_zeros(hasher: &mut blake3::Hasher, mut n: u64) {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    if n >= 1 << 24 {
        let big = vec![0u8; 1 << 24];
        while n >= big.len() as u64 {
            hasher.update_rayon(&big);
            n -= big.len() as u64;
        }
    }
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Tree {
        let mut f = Node::new(b"caf\xe9\nname".to_vec(), NodeKind::File);
        f.size = 10_000;
        f.mode = 0o644;
        f.xattrs = vec![(b"user.k".to_vec(), b"v".to_vec())];
        f.content = Content::File {
            hash: [5; 32],
            extents: vec![
                Extent {
                    offset: 0,
                    length: 100,
                    blob: BlobId([1; 32]),
                },
                Extent {
                    offset: 5000,
                    length: 10,
                    blob: BlobId([2; 32]),
                },
            ],
        };
        let mut d = Node::new(b"dir".to_vec(), NodeKind::Dir);
        d.content = Content::Dir {
            subtree: BlobId([3; 32]),
        };
        let mut l = Node::new(b"link".to_vec(), NodeKind::Symlink);
        l.target = b"../x".to_vec();
        let mut t = Tree {
            nodes: vec![l, d, f],
        };
        t.sort();
        t
    }

    #[test]
    fn round_trip() {
        let t = sample();
        assert_eq!(Tree::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn rejects_unsafe_trees() {
        for bad in [&b".."[..], b".", b"a/b", b"", b"a\0"] {
            let mut t = sample();
            t.nodes[0].name = bad.to_vec();
            assert!(Tree::decode(&t.encode()).is_err(), "{bad:?}");
        }
        let mut t = sample();
        t.nodes[1].name = t.nodes[0].name.clone();
        assert!(Tree::decode(&t.encode()).is_err());
        let enc = sample().encode();
        for cut in 0..enc.len() {
            assert!(Tree::decode(&enc[..cut]).is_err());
        }
    }
}
