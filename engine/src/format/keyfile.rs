//! Key files: the master secret wrapped by a password (Argon2id).
//!
//! A key file is JSON (not encrypted as a whole) stored at `keys/<id>`, the
//! id being the BLAKE3 of its bytes:
//! ```text
//! {"version":1, "created":RFC3339, "host":"..", "username":"..",
//!  "kdf":{"algorithm":"argon2id","memory_kib":65536,"iterations":3,"parallelism":1,"salt":base64},
//!  "master": base64(seal(kek, label "AKY\x01", master_secret[32])),
//!  "config": base64(config object bytes)}
//! ```
//! Adding, changing or removing a password writes or deletes one key file
//! and never touches data.

use crate::format::DecodeError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::crypto::{KdfParams, MasterKey, PasswordKey, random_bytes};

/// Bytes of Argon2 salt.
const SALT_LEN: usize = 32;

/// Argon2 settings as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfRecord {
    /// Always "argon2id".
    pub algorithm: String,
    /// Cost parameters.
    #[serde(flatten)]
    pub params: KdfParams,
    /// Base64 salt.
    pub salt: String,
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
                algorithm: "argon2id".into(),
                params,
                salt: B64.encode(salt),
            },
            master: B64.encode(pk.wrap(master)),
            config: B64.encode(config_object),
        })
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
        if k.kdf.algorithm != "argon2id" {
            return Err(format!("unsupported key derivation {}", k.kdf.algorithm).into());
        }
        if !k.kdf.params.is_sane() {
            return Err(format!("unreasonable Argon2 parameters {:?}", k.kdf.params).into());
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

    /// Unwraps the master secret; `None` for a wrong password.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<MasterKey>, DecodeError> {
        let salt = B64
            .decode(&self.kdf.salt)
            .map_err(|e| format!("salt: {e}"))?;
        let wrapped = B64
            .decode(&self.master)
            .map_err(|e| format!("master: {e}"))?;
        let pk = PasswordKey::derive(password, &salt, self.kdf.params)?;
        Ok(pk.unwrap(&wrapped).ok())
    }

    /// The config copy's bytes.
    pub fn config_object(&self) -> Vec<u8> {
        B64.decode(&self.config).unwrap_or_default()
    }
}
