//! Key files: the master secret wrapped by a password (Argon2id) or by an
//! access token (a 256-bit random secret, no stretching).
//!
//! A key file is JSON (not encrypted as a whole) stored at `keys/<id>`, the
//! id being the BLAKE3 of its bytes:
//! ```text
//! {"version":1, "created":RFC3339, "host":"..", "username":"..",
//!  "kdf":{"algorithm":"argon2id","memory_kib":65536,"iterations":3,"parallelism":1,"salt":base64},
//!  "master": base64(seal(kek, label "AKY\x01", master_secret[32])),
//!  "config": base64(config object bytes)}
//! ```
//! or, for a token, `"kdf":{"algorithm":"token","salt":base64}`.
//! Adding, changing or removing a password writes or deletes one key file
//! and never touches data.
//!
//! Why a token needs no Argon2id: the KDF's cost only protects secrets a
//! person can remember, whose entropy an attacker can enumerate. A token
//! is 32 bytes from the operating system's random source: guessing it is
//! 2^256 work whatever the derivation costs, so a derivation that takes
//! microseconds loses nothing, and `arca wal push` (called once per WAL
//! segment by PostgreSQL) opens the repository in milliseconds and without
//! Argon2's 64 MiB. What a token file protects is what the file system
//! protects: it is written 0600, like the password files it stands beside.

use crate::format::DecodeError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::crypto::{KdfParams, MasterKey, PasswordKey, Token, random_bytes};

/// Bytes of Argon2 salt.
const SALT_LEN: usize = 32;

/// The `algorithm` of a password's key file.
pub const ARGON2ID: &str = "argon2id";
/// The `algorithm` of a token's key file.
pub const TOKEN: &str = "token";

/// How the secret becomes the key-encryption key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfRecord {
    /// "argon2id" (a password) or "token" (an access token).
    pub algorithm: String,
    /// Argon2 cost parameters; absent for a token.
    #[serde(flatten)]
    pub params: Option<KdfParams>,
    /// Base64 salt.
    pub salt: String,
}

impl KdfRecord {
    /// Whether this key file is opened by a token rather than a password.
    pub fn is_token(&self) -> bool {
        self.algorithm == TOKEN
    }
}

/// A decoded key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    /// Key file format version (1).
    pub version: u32,
    /// When the key was added.
    pub created: DateTime<Utc>,
    /// Host that added it.
    pub host: String,
    /// User that added it.
    pub username: String,
    /// How the password becomes a key.
    pub kdf: KdfRecord,
    /// The wrapped master secret, base64.
    pub master: String,
    /// A copy of the config object, base64.
    pub config: String,
}

impl KeyFile {
    /// Wraps `master` under `password` and records a copy of the config.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        params: KdfParams,
        config_object: &[u8],
        host: &str,
        username: &str,
    ) -> Result<Self, String> {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        let pk = PasswordKey::derive(password, &salt, params)?;
        Ok(Self {
            version: 1,
            created: Utc::now(),
            host: host.to_string(),
            username: username.to_string(),
            kdf: KdfRecord {
                algorithm: ARGON2ID.into(),
                params: Some(params),
                salt: B64.encode(salt),
            },
            master: B64.encode(pk.wrap(master)),
            config: B64.encode(config_object),
        })
    }

    /// Wraps `master` under `token` and records a copy of the config.
    pub fn create_for_token(
        master: &MasterKey,
        token: &Token,
        config_object: &[u8],
        host: &str,
        username: &str,
    ) -> Self {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        Self {
            version: 1,
            created: Utc::now(),
            host: host.to_string(),
            username: username.to_string(),
            kdf: KdfRecord {
                algorithm: TOKEN.into(),
                params: None,
                salt: B64.encode(salt),
            },
            master: B64.encode(PasswordKey::from_token(token, &salt).wrap(master)),
            config: B64.encode(config_object),
        }
    }

    /// Parses the stored JSON and checks its fields.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let k: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| format!("key file JSON: {e}"))?;
        if k.version != 1 {
            return Err(DecodeError::UnsupportedVersion {
                what: "key file",
                found: k.version,
                supported: 1,
            });
        }
        match (k.kdf.algorithm.as_str(), &k.kdf.params) {
            (ARGON2ID, Some(p)) if p.is_sane() => {}
            (ARGON2ID, Some(p)) => {
                return Err(format!("unreasonable Argon2 parameters {p:?}").into());
            }
            (ARGON2ID, None) => return Err("Argon2 parameters missing".into()),
            (TOKEN, None) => {}
            (TOKEN, Some(_)) => return Err("a token's key file has Argon2 parameters".into()),
            (other, _) => return Err(format!("unsupported key derivation {other}").into()),
        }
        let salt = B64.decode(&k.kdf.salt).map_err(|e| format!("salt: {e}"))?;
        if !(8..=64).contains(&salt.len()) {
            return Err(format!("salt of {} bytes", salt.len()).into());
        }
        B64.decode(&k.master).map_err(|e| format!("master: {e}"))?;
        B64.decode(&k.config).map_err(|e| format!("config: {e}"))?;
        Ok(k)
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("key file serializes")
    }

    /// Unwraps the master secret with a password (Argon2id, the key
    /// file's costs); `None` for a wrong password or a token's key file.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<MasterKey>, DecodeError> {
        let Some(params) = self.kdf.params.filter(|_| !self.kdf.is_token()) else {
            return Ok(None);
        };
        let (salt, wrapped) = self.salt_and_wrapped()?;
        let pk = PasswordKey::derive(password, &salt, params)?;
        Ok(pk.unwrap(&wrapped).ok())
    }

    /// Unwraps the master secret with a token (microseconds); `None` for
    /// another token or a password's key file.
    pub fn unlock_with_token(&self, token: &Token) -> Result<Option<MasterKey>, DecodeError> {
        if !self.kdf.is_token() {
            return Ok(None);
        }
        let (salt, wrapped) = self.salt_and_wrapped()?;
        Ok(PasswordKey::from_token(token, &salt).unwrap(&wrapped).ok())
    }

    fn salt_and_wrapped(&self) -> Result<(Vec<u8>, Vec<u8>), DecodeError> {
        let salt = B64
            .decode(&self.kdf.salt)
            .map_err(|e| format!("salt: {e}"))?;
        let wrapped = B64
            .decode(&self.master)
            .map_err(|e| format!("master: {e}"))?;
        Ok((salt, wrapped))
    }

    /// The config copy's bytes.
    pub fn config_object(&self) -> Vec<u8> {
        B64.decode(&self.config).unwrap_or_default()
    }
}
