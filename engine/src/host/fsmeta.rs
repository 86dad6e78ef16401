//! File metadata: reading it into tree nodes, and applying it on restore.
//!
//! Owns every system call about metadata (lstat, xattrs, ownership, times,
//! special files), so backup and restore agree on what is recorded and how.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

use crate::format::tree::{Node, NodeKind, Timestamp};

/// Caches uid/gid to name lookups (one NSS call per distinct id).
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, Vec<u8>>>,
    groups: Mutex<HashMap<u32, Vec<u8>>>,
}

impl NameCache {
    fn user(&self, uid: u32) -> Vec<u8> {
        self.users
            .lock()
            .unwrap()
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }
    fn group(&self, gid: u32) -> Vec<u8> {
        self.groups
            .lock()
            .unwrap()
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name.into_bytes())
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// The node kind of an `lstat` result.
pub fn kind_of(md: &Metadata) -> NodeKind {
    let ft = md.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node for `path` (already `lstat`ed as `md`), without file content or
/// subtree. Reads the symlink target and the extended attributes.
pub fn node_from_metadata(
    name: &OsStr,
    path: &Path,
    md: &Metadata,
    names: &NameCache,
) -> io::Result<Node> {
    let kind = kind_of(md);
    let mut n = Node::new(name.as_bytes().to_vec(), kind);
    n.mode = md.mode() & 0o7777;
    n.uid = md.uid();
    n.gid = md.gid();
    n.user = names.user(n.uid);
    n.group = names.group(n.gid);
    n.mtime = ts(md.mtime(), md.mtime_nsec());
    n.atime = ts(md.atime(), md.atime_nsec());
    n.ctime = ts(md.ctime(), md.ctime_nsec());
    n.inode = md.ino();
    n.device = md.dev();
    n.nlink = md.nlink();
    if kind == NodeKind::File {
        n.size = md.size();
    }
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        n.rdev = md.rdev();
    }
    if kind == NodeKind::Symlink {
        n.target = std::fs::read_link(path)?.as_os_str().as_bytes().to_vec();
    }
    n.xattrs = read_xattrs(path);
    Ok(n)
}

fn ts(sec: i64, nsec: i64) -> Timestamp {
    Timestamp {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    }
}

/// Extended attributes of `path` (not following symlinks), sorted. A
/// filesystem without xattr support yields none.
pub fn read_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(names) = xattr::list(path) else {
        return vec![];
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names
        .filter_map(|k| {
            let v = xattr::get(path, &k).ok().flatten()?;
            Some((k.as_bytes().to_vec(), v))
        })
        .collect();
    out.sort();
    out
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a FIFO or device node as recorded.
pub fn make_special(path: &Path, node: &Node) -> io::Result<()> {
    let p = cpath(path)?;
    let fmt = match node.kind {
        NodeKind::Fifo => libc::S_IFIFO,
        NodeKind::CharDevice => libc::S_IFCHR,
        NodeKind::BlockDevice => libc::S_IFBLK,
        _ => return Err(io::Error::other("not a special file")),
    };
    // SAFETY: `p` is a valid NUL-terminated path; mknod has no other inputs.
    check(unsafe {
        libc::mknod(
            p.as_ptr(),
            fmt | (node.mode & 0o7777),
            node.rdev as libc::dev_t,
        )
    })
}

/// Applies ownership (when `as_root`), permissions, extended attributes and
/// times to a restored path, in the order that keeps each of them: chown
/// clears set-id bits, so mode comes after it; times come last.
/// Returns warnings for what could not be applied.
pub fn apply(path: &Path, node: &Node, as_root: bool) -> Vec<String> {
    let mut warnings = vec![];
    let p = match cpath(path) {
        Ok(p) => p,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let is_link = node.kind == NodeKind::Symlink;
    if as_root {
        // SAFETY: valid C path; lchown does not follow symlinks.
        if let Err(e) = check(unsafe { libc::lchown(p.as_ptr(), node.uid, node.gid) }) {
            warnings.push(format!("{}: set owner: {e}", path.display()));
        }
    }
    if !is_link {
        // SAFETY: valid C path.
        if let Err(e) = check(unsafe { libc::chmod(p.as_ptr(), node.mode as libc::mode_t) }) {
            warnings.push(format!("{}: set mode: {e}", path.display()));
        }
    }
    for (k, v) in &node.xattrs {
        if let Err(e) = xattr::set(path, OsStr::from_bytes(k), v) {
            warnings.push(format!(
                "{}: set xattr {}: {e}",
                path.display(),
                String::from_utf8_lossy(k)
            ));
        }
    }
    // An atime that was not recorded (zero) is restored as the mtime.
    let atime = if node.atime == Timestamp::default() {
        node.mtime
    } else {
        node.atime
    };
    let times = [
        libc::timespec {
            tv_sec: atime.sec as libc::time_t,
            tv_nsec: atime.nsec as libc::c_long,
        },
        libc::timespec {
            tv_sec: node.mtime.sec as libc::time_t,
            tv_nsec: node.mtime.nsec as libc::c_long,
        },
    ];
    // SAFETY: valid C path and a two-element timespec array as utimensat expects.
    if let Err(e) = check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    }) {
        warnings.push(format!("{}: set times: {e}", path.display()));
    }
    warnings
}

/// Data regions of an open file, found with SEEK_DATA/SEEK_HOLE: ranges of
/// `0..len` that may hold data; everything else is a hole. A filesystem
/// without hole support yields one range covering the file.
pub fn data_regions(file: &std::fs::File, len: u64) -> io::Result<Vec<std::ops::Range<u64>>> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut out = vec![];
    let mut pos: i64 = 0;
    let end = len as i64;
    while pos < end {
        // SAFETY: plain lseek on a file descriptor we own.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENXIO) => break, // only a hole is left
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
                    return Ok(std::iter::once(0..len).collect());
                }
                _ => return Err(e),
            }
        }
        if data >= end {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let hole = hole.min(end);
        out.push(data as u64..hole as u64);
        pos = hole;
    }
    // SAFETY: rewind so that callers can read from the start.
    unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
    Ok(out)
}

/// The size of the block device at `path`, in bytes (where its end is).
pub fn device_size(path: &Path) -> std::io::Result<u64> {
    use std::io::Seek;
    std::fs::File::open(path)?.seek(std::io::SeekFrom::End(0))
}

/// Where the block device at `path` is mounted (the first mount point in
/// /proc/self/mountinfo with its device number), if it is.
pub fn mounted(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(path).ok()?.rdev();
    let want = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(2) == Some(&want.as_str())).then(|| f.get(4).unwrap_or(&"?").to_string())
    })
}
