//! Keys and authenticated encryption.
//!
//! A repository has one random 32-byte master secret. Three independent
//! sub-keys are derived from it with BLAKE3's key derivation mode:
//! the encryption key (XChaCha20-Poly1305), the blob-id key (keyed BLAKE3,
//! so ids do not reveal content hashes) and the chunker key (the gear table,
//! so chunk boundaries do not reveal content either).
//!
//! Every sealed message is `nonce(24) || ciphertext || tag(16)` with a fresh
//! random nonce and a 4-byte associated-data label naming the object kind
//! and format version, so bytes of one kind never authenticate as another.
//! Cost: about 1 ns/byte on one core (ChaCha20 with SIMD plus Poly1305).

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use crate::format::id::BlobId;

/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
/// Authentication tag length of Poly1305.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// BLAKE3 key-derivation contexts; part of the format (see format-spec).
const CTX_ENCRYPTION: &str = "arca 2026-11 repository v1 encryption key";
const CTX_BLOB_ID: &str = "arca 2026-11 repository v1 blob id key";
const CTX_CHUNKER: &str = "arca 2026-11 repository v1 chunker key";
const CTX_TOKEN: &str = "arca 2026-12 token key-encryption key";

/// Associated-data labels: the kind and version of what is sealed.
pub mod label {
    /// A data blob inside a pack.
    pub const DATA_BLOB: &[u8; 4] = b"ADB\x01";
    /// A tree blob inside a pack.
    pub const TREE_BLOB: &[u8; 4] = b"ATB\x01";
    /// A pack header.
    pub const PACK_HEADER: &[u8; 4] = b"APH\x01";
    /// An index segment (also its file magic).
    pub const INDEX: &[u8; 4] = b"AIX\x01";
    /// A snapshot manifest (also its file magic).
    pub const SNAPSHOT: &[u8; 4] = b"ASN\x01";
    /// The repository config (also its file magic).
    pub const CONFIG: &[u8; 4] = b"ACF\x01";
    /// The master secret wrapped in a key file.
    pub const KEY: &[u8; 4] = b"AKY\x01";
    /// A lock object (also its file magic).
    pub const LOCK: &[u8; 4] = b"ALK\x01";
    /// A lock-removal notice (also its file magic).
    pub const LOCK_REMOVAL: &[u8; 4] = b"ALR\x01";
    /// The check-coverage record (also its file magic).
    pub const COVERAGE: &[u8; 4] = b"ACV\x01";
    /// An index segment of version 2, which records its writer's base
    /// (also its file magic).
    pub const INDEX_V2: &[u8; 4] = b"AIX\x02";
    /// A prune record (also its file magic).
    pub const PRUNE: &[u8; 4] = b"APR\x01";
    /// A prune's seal of a generation (also its file magic).
    pub const SEAL: &[u8; 4] = b"ASL\x01";
    /// An archived WAL file (also its file magic).
    pub const WAL: &[u8; 4] = b"AWL\x01";
    /// A drill record (also its file magic).
    pub const DRILL: &[u8; 4] = b"ADR\x01";
}

/// Failure to authenticate a sealed message: wrong key or altered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed (wrong key, or the bytes were altered)")]
pub struct AuthError;

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// The repository master secret and the sub-keys derived from it.
#[derive(Clone)]
pub struct MasterKey {
    secret: [u8; 32],
    cipher: XChaCha20Poly1305,
    id_key: [u8; 32],
    chunker_key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random master secret.
    pub fn generate() -> Self {
        let mut secret = [0u8; 32];
        random_bytes(&mut secret);
        Self::from_secret(secret)
    }

    /// Derives the sub-keys from a known master secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let enc = blake3::derive_key(CTX_ENCRYPTION, &secret);
        Self {
            secret,
            cipher: XChaCha20Poly1305::new_from_slice(&enc).expect("32-byte key"),
            id_key: blake3::derive_key(CTX_BLOB_ID, &secret),
            chunker_key: blake3::derive_key(CTX_CHUNKER, &secret),
        }
    }

    /// The master secret (only key files wrap it).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The chunker sub-key, from which the gear table is expanded.
    pub fn chunker_key(&self) -> &[u8; 32] {
        &self.chunker_key
    }

    /// The id of a blob: keyed BLAKE3 of its plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Seals `plaintext` with a fresh random nonce.
    pub fn seal(&self, label: &[u8; 4], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce);
        self.seal_with_nonce(label, plaintext, nonce)
    }

    /// Seals with a caller-chosen nonce. Only for test vectors: a nonce must
    /// never be reused with the same key.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        label: &[u8; 4],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        seal_with(&self.cipher, label, plaintext, nonce)
    }

    /// Opens a sealed message, checking its tag.
    pub fn open(&self, label: &[u8; 4], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        open_with(&self.cipher, label, sealed)
    }

    /// [`open`](Self::open) into `out` (its contents replaced, its capacity
    /// reused): the tag is checked over `sealed` first, then the plaintext
    /// is written straight from it, with no intermediate copy.
    pub fn open_into(
        &self,
        label: &[u8; 4],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthError> {
        open_into_with(&self.cipher, label, sealed, out)
    }
}

fn seal_with(
    cipher: &XChaCha20Poly1305,
    label: &[u8; 4],
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), label, (&mut out[NONCE_LEN..]).into())
        .expect("XChaCha20-Poly1305 accepts messages of any practical length");
    out.extend_from_slice(&tag);
    out
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    label: &[u8; 4],
    sealed: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let mut out = vec![];
    open_into_with(cipher, label, sealed, &mut out)?;
    Ok(out)
}

fn open_into_with(
    cipher: &XChaCha20Poly1305,
    label: &[u8; 4],
    sealed: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AuthError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(AuthError);
    }
    let nonce = XNonce::try_from(&sealed[..NONCE_LEN]).map_err(|_| AuthError)?;
    let body_end = sealed.len() - TAG_LEN;
    let tag = chacha20poly1305::Tag::try_from(&sealed[body_end..]).map_err(|_| AuthError)?;
    let body = &sealed[NONCE_LEN..body_end];
    // only the part past the old length is zeroed
    out.resize(body.len(), 0);
    let buf = chacha20poly1305::aead::inout::InOutBuf::new(body, &mut out[..])
        .expect("the output was sized to the input");
    cipher
        .decrypt_inout_detached(&nonce, label, buf, &tag)
        .map_err(|_| AuthError)
}

/// Argon2id cost parameters, recorded in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about 0.2 s on one core of a current CPU.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The weakest parameters `init` and `key add` accept.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// Refuse absurd parameters from a (possibly hostile) key file.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    const MAX_ITERATIONS: u32 = 64;
    const MAX_PARALLELISM: u32 = 64;

    /// Whether a key file's parameters are within what arca will compute.
    pub fn is_sane(&self) -> bool {
        (8..=Self::MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
            && self.memory_kib >= 8 * self.parallelism
    }
}

/// An access token: 32 random bytes, written as `arca-token-1:` and 64
/// lowercase hex digits. It opens a key file of algorithm `token` without
/// Argon2id (`keyfile` says why that loses nothing).
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// What a token's text starts with.
    pub const PREFIX: &'static str = "arca-token-1:";

    /// A new token from the operating system's random source.
    pub fn generate() -> Self {
        let mut t = [0u8; 32];
        random_bytes(&mut t);
        Self(t)
    }

    /// The token a secret's text holds, if it is one (surrounding
    /// whitespace ignored); `None` for anything else, which is a password.
    pub fn parse(secret: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(secret).ok()?.trim();
        let h = s.strip_prefix(Self::PREFIX)?;
        let mut t = [0u8; 32];
        (h.len() == 64 && h == h.to_ascii_lowercase())
            .then_some(())
            .and_then(|()| hex::decode_to_slice(h, &mut t).ok())?;
        Some(Self(t))
    }

    /// Its text, as written to a token file.
    pub fn to_text(&self) -> String {
        format!("{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

/// A key-encryption key derived from a password with Argon2id, or from a
/// token.
pub struct PasswordKey(XChaCha20Poly1305);

impl PasswordKey {
    /// `derive_key(CTX_TOKEN, token[32] || salt)`: no stretching, since a
    /// token has 256 bits of entropy.
    pub fn from_token(token: &Token, salt: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(CTX_TOKEN);
        h.update(&token.0);
        h.update(salt);
        let kek: [u8; 32] = h.finalize().into();
        Self(XChaCha20Poly1305::new_from_slice(&kek).expect("32-byte key"))
    }

    /// Runs Argon2id (version 0x13) over the password and salt.
    pub fn derive(password: &[u8], salt: &[u8], params: KdfParams) -> Result<Self, String> {
        let p = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut kek = [0u8; 32];
        argon
            .hash_password_into(password, salt, &mut kek)
            .map_err(|e| format!("Argon2id failed: {e}"))?;
        Ok(Self(
            XChaCha20Poly1305::new_from_slice(&kek).expect("32-byte key"),
        ))
    }

    /// Wraps a master secret (random nonce).
    pub fn wrap(&self, master: &MasterKey) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce);
        self.wrap_with_nonce(master, nonce)
    }

    /// Wraps with a given nonce: test vectors only.
    #[doc(hidden)]
    pub fn wrap_with_nonce(&self, master: &MasterKey, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        seal_with(&self.0, label::KEY, master.secret(), nonce)
    }

    /// Unwraps a master secret; fails on a wrong password.
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<MasterKey, AuthError> {
        let secret = open_with(&self.0, label::KEY, wrapped)?;
        let secret: [u8; 32] = secret.try_into().map_err(|_| AuthError)?;
        Ok(MasterKey::from_secret(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = MasterKey::generate();
        let sealed = k.seal(label::DATA_BLOB, b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(label::DATA_BLOB, &sealed).unwrap(), b"hello");
        // another label must not authenticate
        assert_eq!(k.open(label::TREE_BLOB, &sealed), Err(AuthError));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(k.open(label::DATA_BLOB, &bad), Err(AuthError), "byte {i}");
        }
        assert_eq!(k.open(label::DATA_BLOB, &sealed[..10]), Err(AuthError));
        let other = MasterKey::generate();
        assert_eq!(other.open(label::DATA_BLOB, &sealed), Err(AuthError));
    }

    #[test]
    fn sub_keys_are_independent() {
        let k = MasterKey::from_secret([7; 32]);
        assert_ne!(k.blob_id(b"x").0, *blake3::hash(b"x").as_bytes());
        assert_ne!(k.chunker_key(), k.secret());
        assert_eq!(
            k.blob_id(b"x"),
            MasterKey::from_secret([7; 32]).blob_id(b"x")
        );
    }

    #[test]
    fn password_wrap() {
        let params = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let m = MasterKey::generate();
        let pk = PasswordKey::derive(b"pw", b"saltsaltsaltsalt", params).unwrap();
        let w = pk.wrap(&m);
        assert_eq!(pk.unwrap(&w).unwrap().secret(), m.secret());
        let wrong = PasswordKey::derive(b"pw2", b"saltsaltsaltsalt", params).unwrap();
        assert!(wrong.unwrap(&w).is_err());
    }
}
