//! Small facts about the running process: host, user, cache location.

use std::path::PathBuf;

/// The host name (as `hostname` prints it), or "localhost".
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The user name of the effective uid, or the uid as a number.
pub fn username() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// The default cache directory: `$XDG_CACHE_HOME/arca`, else
/// `$HOME/.cache/arca`, else a directory under the system temp dir.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("arca");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".cache").join("arca");
    }
    std::env::temp_dir().join("arca-cache")
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
