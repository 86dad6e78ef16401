//! An open repository: the backend, the unlocked master key and the config.
//!
//! This module owns the rules for reading and writing whole objects:
//! every object but `config` is named by the BLAKE3 of its bytes, every
//! read checks that name before anything else looks at the bytes, and every
//! write is checked (size read back) before it counts.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{BackendFailure, Error, Result};
use crate::format::chunker::{Chunker, ChunkerParams};
use crate::format::config::Config;
use crate::format::crypto::{KdfParams, MasterKey, Token};
use crate::format::id::PruneId;
use crate::format::id::{IndexId, KeyId, PackId, SnapshotId, content_hash};
use crate::format::index::IndexSegment;
use crate::format::keyfile::KeyFile;
use crate::format::layout::ObjectId;
use crate::format::pack::{self, PackEntry};
use crate::format::prune::PruneRecord;
use crate::format::snapshot::Snapshot;
use crate::store::backend::{Backend, ObjectKey, ObjectKind, PutMode};

/// Options for `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Chunk size limits.
    pub chunker: ChunkerParams,
    /// Target pack size.
    pub pack_size: u32,
    /// Argon2id cost of the first key.
    pub kdf: KdfParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerParams::default(),
            pack_size: crate::format::config::DEFAULT_PACK_SIZE,
            kdf: KdfParams::default(),
        }
    }
}

/// Who is adding a key (recorded in the key file).
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Host name.
    pub host: String,
    /// User name.
    pub username: String,
}

impl KeyOwner {
    /// This process's host and user.
    pub fn current() -> Self {
        Self {
            host: crate::host::facts::hostname(),
            username: crate::host::facts::username(),
        }
    }
}

/// A listed key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Key file id.
    pub id: KeyId,
    /// Whether this key opened the repository now.
    pub current: bool,
    /// When it was added.
    pub created: chrono::DateTime<chrono::Utc>,
    /// Host that added it.
    pub host: String,
    /// User that added it.
    pub username: String,
    /// "password" (Argon2id) or "token" (an access token).
    pub kind: &'static str,
    /// Why the key file is unusable, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// An open, unlocked repository. Cheap to clone.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    key_id: KeyId,
    config: Config,
    config_bytes: Vec<u8>,
    chunker: Chunker,
}

impl Repository {
    /// Creates a repository: config, then the first key file.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        opts: &InitOptions,
        owner: &KeyOwner,
    ) -> Result<Self> {
        opts.chunker.validate().map_err(Error::Invalid)?;
        if opts.kdf.memory_kib < KdfParams::MIN_MEMORY_KIB || !opts.kdf.is_sane() {
            return Err(Error::Invalid(format!(
                "Argon2 memory must be at least {} KiB",
                KdfParams::MIN_MEMORY_KIB
            )));
        }
        if !(1 << 20..=1 << 30).contains(&opts.pack_size) {
            return Err(Error::Invalid(
                "pack size must be between 1 MiB and 1 GiB".into(),
            ));
        }
        let location = backend.location();
        if !backend.list(ObjectKind::Config)?.is_empty()
            || !backend.list(ObjectKind::Key)?.is_empty()
        {
            return Err(Error::AlreadyExists { location });
        }
        let key = MasterKey::generate();
        let config = Config::new(opts.chunker, opts.pack_size);
        let config_bytes = config.to_object(&key);
        // The key file carries a copy of the config. It is written first: a
        // crash before the config leaves a repository that opens from the
        // key's copy (and `init` refuses to run over it; `repair index`
        // writes the missing config).
        let kf = KeyFile::create(
            &key,
            password,
            opts.kdf,
            &config_bytes,
            &owner.host,
            &owner.username,
        )
        .map_err(Error::Invalid)?;
        let kbytes = kf.to_bytes();
        let key_id = KeyId(content_hash(&kbytes));
        backend.put(&ObjectKey::of(key_id), Bytes::from(kbytes), PutMode::Create)?;
        backend
            .put(
                &ObjectKey::CONFIG,
                Bytes::from(config_bytes.clone()),
                PutMode::Create,
            )
            .map_err(|e| {
                if e.is_already_exists() {
                    Error::AlreadyExists {
                        location: location.clone(),
                    }
                } else {
                    e
                }
            })?;
        Ok(Self::assemble(backend, key, key_id, config, config_bytes))
    }

    /// Opens a repository with a password, trying every key file. A secret
    /// that is an access token ([`Token::parse`]) is tried against the
    /// token key files only, without Argon2id; a password against the
    /// password key files only.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8]) -> Result<Self> {
        let token = Token::parse(password);
        let location = backend.location();
        let config_bytes = match backend.get(&ObjectKey::CONFIG) {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let keys = backend.list(ObjectKind::Key)?;
        if config_bytes.is_none() && keys.is_empty() {
            return Err(Error::NoRepository { location });
        }
        if keys.is_empty() {
            return Err(Error::NoKeys { location });
        }
        let mut tried = 0;
        let mut damaged_keys = vec![];
        for listed in &keys {
            let bytes = backend.get(&listed.key)?;
            // A key file stored under the wrong name (swapped, copied) is
            // still tried: the password authenticates it. `check` reports
            // the name and `repair index` re-files it.
            let kid = KeyId(content_hash(&bytes));
            let kf = match KeyFile::parse(&bytes) {
                Ok(k) => k,
                // a key file written by a newer arca: this one cannot use it
                Err(e) if e.is_unsupported_version() => {
                    return Err(Error::decode(format!("keys/{kid}"), e));
                }
                Err(e) => {
                    damaged_keys.push(format!("key {kid}: {e}"));
                    continue;
                }
            };
            if kf.kdf.is_token() != token.is_some() {
                continue;
            }
            tried += 1;
            let unlocked = match &token {
                Some(t) => kf.unlock_with_token(t),
                None => kf.unlock(password),
            };
            let Some(master) = unlocked.map_err(|e| Error::damaged(format!("key {kid}"), e))?
            else {
                continue;
            };
            // The config; if it is missing or damaged, fall back to the
            // key file's copy (and say so through `config_from_key`).
            let (config, cbytes) = match config_bytes
                .as_ref()
                .map(|b| (Config::from_object(&master, b), b.to_vec()))
            {
                Some((Ok(c), b)) => (c, b),
                // a newer format: never fall back to an older copy
                Some((Err(e), _)) if e.is_unsupported_version() => {
                    return Err(Error::decode("config", e));
                }
                other => {
                    let copy = kf.config_object();
                    let c = Config::from_object(&master, &copy).map_err(|e| {
                        Error::damaged(
                            "config",
                            format!(
                                "{} and the copy in key {kid} is unusable too: {e}",
                                match other {
                                    Some((Err(e), _)) => format!("unreadable ({e})"),
                                    _ => "missing".into(),
                                }
                            ),
                        )
                    })?;
                    (c, copy)
                }
            };
            return Ok(Self::assemble(backend, master, kid, config, cbytes));
        }
        if tried == 0 && !damaged_keys.is_empty() {
            return Err(Error::damaged("keys/", damaged_keys.join("; ")));
        }
        Err(match token {
            Some(_) => Error::WrongToken { keys: tried },
            None => Error::WrongPassword { keys: tried },
        })
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        key: MasterKey,
        key_id: KeyId,
        config: Config,
        config_bytes: Vec<u8>,
    ) -> Self {
        let chunker = Chunker::new(config.chunker, key.chunker_key());
        Self {
            inner: Arc::new(Inner {
                backend,
                key,
                key_id,
                config,
                config_bytes,
                chunker,
            }),
        }
    }

    /// The object store.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }
    /// The unlocked master key.
    pub fn key(&self) -> &MasterKey {
        &self.inner.key
    }
    /// The config.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    /// The config object's bytes as read (or from a key file's copy).
    pub fn config_bytes(&self) -> &[u8] {
        &self.inner.config_bytes
    }
    /// The chunker for this repository.
    pub fn chunker(&self) -> &Chunker {
        &self.inner.chunker
    }
    /// The key file that opened the repository.
    pub fn key_id(&self) -> KeyId {
        self.inner.key_id
    }

    /// Raises a version-1 repository to the current format version (the
    /// `config` object only; the copies in key files keep the version they
    /// were written with, and are used only when `config` is lost). Prune
    /// calls it before it writes anything, so that builds that would
    /// ignore prune records refuse the repository. Returns whether it
    /// changed anything.
    pub fn upgrade_format(&self) -> Result<bool> {
        if self.config().version >= crate::format::config::FORMAT_VERSION {
            return Ok(false);
        }
        let mut c = self.config().clone();
        c.version = crate::format::config::FORMAT_VERSION;
        self.inner.backend.put(
            &ObjectKey::CONFIG,
            Bytes::from(c.to_object(self.key())),
            PutMode::Overwrite,
        )?;
        Ok(true)
    }

    /// Whether the `config` object itself is present and intact (the
    /// repository opens from a key file's copy when it is not).
    pub fn config_object_intact(&self) -> Result<bool> {
        match self.inner.backend.get(&ObjectKey::CONFIG) {
            Ok(b) => Ok(Config::from_object(self.key(), &b).as_ref() == Ok(self.config())),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads a content-addressed object and checks its name.
    pub fn read_object(&self, key: &ObjectKey) -> Result<Bytes> {
        let b = self.inner.backend.get(key)?;
        if key.kind() != ObjectKind::Config && content_hash(&b) != key.raw() {
            return Err(Error::damaged(
                key,
                "content does not match its name (BLAKE3)",
            ));
        }
        Ok(b)
    }

    /// Writes a content-addressed object named by its hash, then checks
    /// the stored size. Returns the id.
    pub fn write_object<I: ObjectId>(&self, bytes: Bytes) -> Result<I> {
        let id = I::from_raw(content_hash(&bytes));
        self.put_checked(&id.key(), bytes)?;
        Ok(id)
    }

    /// Uploads and confirms the stored size.
    pub fn put_checked(&self, key: &ObjectKey, bytes: Bytes) -> Result<()> {
        let len = bytes.len() as u64;
        self.inner.backend.put(key, bytes, PutMode::Overwrite)?;
        let stored = match self.inner.backend.head(key) {
            Err(e) if e.is_not_found() => {
                // deleted between our put and our head: only a prune that
                // frees unindexed packs at once (`--now`) does that
                return Err(Error::Backend {
                    op: "put",
                    object: key.path(),
                    message: "the object was deleted right after it was uploaded, so it was not kept; a `prune --now` running beside this command deletes uploads no index lists yet; nothing that refers to it was saved: run the command again".into(),
                    kind: BackendFailure::Other,
                });
            }
            r => r?,
        };
        if stored != len {
            return Err(Error::Backend {
                op: "put",
                object: key.path(),
                message: format!("stored {stored} bytes of {len}; the upload did not count"),
                kind: BackendFailure::Other,
            });
        }
        Ok(())
    }

    /// Ids of all objects of a kind.
    pub fn list<I: ObjectId>(&self) -> Result<Vec<I>> {
        Ok(self
            .list_sized::<I>()?
            .into_iter()
            .map(|(i, _)| i)
            .collect())
    }

    /// Ids of all objects of a kind, with their sizes.
    pub fn list_sized<I: ObjectId>(&self) -> Result<Vec<(I, u64)>> {
        Ok(self
            .inner
            .backend
            .list(I::KIND)?
            .into_iter()
            .filter_map(|l| Some((l.key.id::<I>()?, l.size)))
            .collect())
    }

    /// Every pack with its size: the listing, plus any of `expected` that
    /// the listing left out but `head` finds (a store's listing may be
    /// short; what check and repair conclude from "missing" must not rest
    /// on it). Returns the packs and how many the listing had left out.
    pub fn list_packs_confirmed(
        &self,
        expected: impl Iterator<Item = PackId>,
    ) -> Result<(std::collections::HashMap<PackId, u64>, usize)> {
        let mut packs: std::collections::HashMap<PackId, u64> =
            self.list_sized::<PackId>()?.into_iter().collect();
        let missing: Vec<PackId> = expected.filter(|p| !packs.contains_key(p)).collect();
        let mut found = 0;
        for p in missing {
            match self.inner.backend.head(&ObjectKey::of(p)) {
                Ok(size) => {
                    packs.insert(p, size);
                    found += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok((packs, found))
    }

    /// Loads a snapshot manifest.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let key = ObjectKey::of(*id);
        let b = self.read_object(&key)?;
        Snapshot::from_object(self.key(), &b).map_err(|e| Error::decode(key, e))
    }

    /// Writes a snapshot manifest (the commit point of a backup).
    pub fn save_snapshot(&self, s: &Snapshot) -> Result<SnapshotId> {
        let bytes = s.to_object(self.key());
        self.write_object(Bytes::from(bytes))
    }

    /// Loads a prune record.
    pub fn load_prune(&self, id: &PruneId) -> Result<PruneRecord> {
        let key = ObjectKey::of(*id);
        let b = self.read_object(&key)?;
        PruneRecord::from_object(self.key(), &b).map_err(|e| Error::decode(key, e))
    }

    /// Writes a prune record.
    pub fn save_prune(&self, r: &PruneRecord) -> Result<PruneId> {
        self.write_object(Bytes::from(r.to_object(self.key())))
    }

    /// Loads an index segment.
    pub fn load_index(&self, id: &IndexId) -> Result<IndexSegment> {
        let key = ObjectKey::of(*id);
        let b = self.read_object(&key)?;
        IndexSegment::from_object(self.key(), &b).map_err(|e| Error::decode(key, e))
    }

    /// The stored bytes of an index segment. A segment that readers would
    /// reject (its plaintext does not decode: blobs beyond a pack's size,
    /// overlapping entries) is refused before anything is written: one bad
    /// pack in a segment makes readers drop the whole segment.
    pub fn encode_index(&self, seg: &IndexSegment) -> Result<Vec<u8>> {
        IndexSegment::decode_plain(&seg.encode_plain()).map_err(|e| {
            Error::Invalid(format!(
                "refusing to write an index segment that readers would reject: {e} (a bug in arca: please report it)"
            ))
        })?;
        Ok(seg.to_object(self.key()))
    }

    /// Writes an index segment (see [`Self::encode_index`]).
    pub fn save_index(&self, seg: &IndexSegment) -> Result<IndexId> {
        let bytes = self.encode_index(seg)?;
        self.write_object(Bytes::from(bytes))
    }

    /// Reads a pack's header (two ranged reads: trailer, then header).
    pub fn read_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        let key = ObjectKey::of(*id);
        if size < pack::TRAILER_LEN as u64 {
            return Err(Error::damaged(key, "shorter than a pack trailer"));
        }
        let t = self
            .inner
            .backend
            .get_range(&key, size - pack::TRAILER_LEN as u64..size)?;
        let hlen = pack::parse_trailer(&t).map_err(|e| Error::decode(key, e))? as u64;
        let start = size
            .checked_sub(pack::TRAILER_LEN as u64 + hlen)
            .ok_or_else(|| Error::damaged(key, "header length exceeds the pack"))?;
        let h = self
            .inner
            .backend
            .get_range(&key, start..size - pack::TRAILER_LEN as u64)?;
        pack::decode_header(self.key(), size, &h).map_err(|e| Error::decode(key, e))
    }

    /// Every key file. A damaged one is listed with why (so that it can
    /// be removed), never skipped.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = vec![];
        for l in self.inner.backend.list(ObjectKind::Key)? {
            let r = self
                .read_object(&l.key)
                .and_then(|b| KeyFile::parse(&b).map_err(|e| Error::damaged(l.key, e)));
            let (created, host, username, token, damaged) = match r {
                Ok(kf) => (kf.created, kf.host, kf.username, kf.kdf.is_token(), None),
                Err(e) => (
                    chrono::DateTime::UNIX_EPOCH,
                    String::new(),
                    String::new(),
                    false,
                    Some(e.to_string()),
                ),
            };
            let id = l.key.id::<KeyId>().expect("listed as a key");
            out.push(KeyInfo {
                id,
                current: id == self.inner.key_id,
                created,
                host,
                username,
                kind: if token { "token" } else { "password" },
                damaged,
            });
        }
        out.sort_by_key(|k| k.created);
        Ok(out)
    }

    /// Adds a password: a new key file wrapping the same master key.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams, owner: &KeyOwner) -> Result<KeyId> {
        if kdf.memory_kib < KdfParams::MIN_MEMORY_KIB || !kdf.is_sane() {
            return Err(Error::Invalid(format!(
                "Argon2 memory must be at least {} KiB",
                KdfParams::MIN_MEMORY_KIB
            )));
        }
        let kf = KeyFile::create(
            self.key(),
            password,
            kdf,
            self.config_bytes(),
            &owner.host,
            &owner.username,
        )
        .map_err(Error::Invalid)?;
        self.write_object(Bytes::from(kf.to_bytes()))
    }

    /// Adds an access token: a new key file opened by a fresh random token
    /// instead of a password (no Argon2id: for `wal push` and other
    /// frequent short runs). Returns the key's id and the token, which is
    /// shown once and stored nowhere else.
    pub fn add_token_key(&self, owner: &KeyOwner) -> Result<(KeyId, Token)> {
        let token = Token::generate();
        let kf = KeyFile::create_for_token(
            self.key(),
            &token,
            self.config_bytes(),
            &owner.host,
            &owner.username,
        );
        Ok((self.write_object(Bytes::from(kf.to_bytes()))?, token))
    }

    /// Removes a key file. Refuses the last one, and the one in use.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        let keys = self.list::<KeyId>()?;
        if !keys.contains(id) {
            return Err(Error::Invalid(format!("no key {id}")));
        }
        if *id == self.inner.key_id {
            return Err(Error::Invalid(format!(
                "key {} is the one in use; open the repository with another password to remove it",
                id.short()
            )));
        }
        self.inner.backend.delete(&ObjectKey::of(*id))
    }

    /// Changes the password of the key in use: adds the new key, then
    /// removes the old one. Returns the new key's id.
    pub fn change_password(
        &self,
        new_password: &[u8],
        kdf: KdfParams,
        owner: &KeyOwner,
    ) -> Result<KeyId> {
        let new = self.add_key(new_password, kdf, owner)?;
        self.inner
            .backend
            .delete(&ObjectKey::of(self.inner.key_id))?;
        Ok(new)
    }
}

/// An empty repository in memory, with the cheapest key derivation, for
/// unit tests.
#[cfg(test)]
pub(crate) fn memory_repo(pack_size: u32) -> Repository {
    use crate::format::crypto::KdfParams;
    use crate::store::backend::ObjectStoreBackend;
    let store = ObjectStoreBackend::with_store(
        Arc::new(object_store::memory::InMemory::new()),
        "memory://test".into(),
    )
    .unwrap();
    let opts = InitOptions {
        kdf: KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        },
        pack_size,
        ..InitOptions::default()
    };
    Repository::init(Arc::new(store), b"pw", &opts, &KeyOwner::current()).unwrap()
}
