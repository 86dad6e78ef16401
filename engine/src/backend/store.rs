//! [`Backend`] over the object_store crate.
//!
//! Owns a small tokio runtime and blocks on it, so the rest of the engine
//! stays synchronous (rayon for CPU, threads for overlapping I/O). Calls may
//! come from many threads at once.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode as StorePutMode, PutOptions};

use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::{Error, Result};

/// A repository in an object store.
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    location: String,
    runtime: tokio::runtime::Runtime,
}

impl ObjectStoreBackend {
    /// Opens `location`: a plain path or a `file://` URL. The directory is
    /// created if missing (so `init` works on a new path).
    pub fn open(location: &str) -> Result<Self> {
        let path = location.strip_prefix("file://").unwrap_or(location);
        if path.contains("://") {
            return Err(Error::Invalid(format!(
                "unsupported repository address {location}: use a local path or file:///path"
            )));
        }
        let dir = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let fs = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?
            .with_fsync(true)
            .with_automatic_cleanup(false);
        Self::with_store(Arc::new(fs), dir.display().to_string())
    }

    /// Wraps any object store (tests use the in-memory one).
    pub fn with_store(store: Arc<dyn ObjectStore>, location: String) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("arca-io")
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        Ok(Self {
            store,
            location,
            runtime,
        })
    }

    fn err(&self, op: &'static str, key: &ObjectKey, e: object_store::Error) -> Error {
        let not_found = matches!(e, object_store::Error::NotFound { .. });
        let already = matches!(e, object_store::Error::AlreadyExists { .. });
        Error::Backend {
            op,
            object: format!("{}/{}", self.location, key.path()),
            message: if already {
                "already exists".into()
            } else {
                e.to_string()
            },
            not_found,
        }
    }
}

impl Backend for ObjectStoreBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let p = StorePath::from(key.path());
        self.runtime
            .block_on(async { self.store.get(&p).await?.bytes().await })
            .map_err(|e| self.err("get", key, e))
    }

    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        let p = StorePath::from(key.path());
        let want = range.end - range.start;
        let b = self
            .runtime
            .block_on(self.store.get_range(&p, range.clone()))
            .map_err(|e| self.err("get range", key, e))?;
        if b.len() as u64 != want {
            return Err(Error::Backend {
                op: "get range",
                object: key.path(),
                message: format!(
                    "asked for bytes {}..{}, got {} bytes (object truncated?)",
                    range.start,
                    range.end,
                    b.len()
                ),
                not_found: false,
            });
        }
        Ok(b)
    }

    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        let p = StorePath::from(key.path());
        let opts = PutOptions {
            mode: match mode {
                PutMode::Overwrite => StorePutMode::Overwrite,
                PutMode::Create => StorePutMode::Create,
            },
            ..Default::default()
        };
        self.runtime
            .block_on(self.store.put_opts(&p, data.into(), opts))
            .map(|_| ())
            .map_err(|e| self.err("put", key, e))
    }

    fn head(&self, key: &ObjectKey) -> Result<u64> {
        let p = StorePath::from(key.path());
        self.runtime
            .block_on(self.store.head(&p))
            .map(|m| m.size)
            .map_err(|e| self.err("head", key, e))
    }

    fn list(&self, kind: ObjectKind) -> Result<Vec<Listed>> {
        if kind == ObjectKind::Config {
            return match self.head(&ObjectKey::CONFIG) {
                Ok(size) => Ok(vec![Listed {
                    key: ObjectKey::CONFIG,
                    size,
                }]),
                Err(e) if e.is_not_found() => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        let prefix = StorePath::from(kind.prefix());
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(vec![]),
                e => Err(e),
            })
            .map_err(|e| self.err("list", &ObjectKey::new(kind, [0; 32]), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                ObjectKey::parse(kind, m.location.as_ref()).map(|key| Listed { key, size: m.size })
            })
            .collect())
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let p = StorePath::from(key.path());
        match self.runtime.block_on(self.store.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }
}
