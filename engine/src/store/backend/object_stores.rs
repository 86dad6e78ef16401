//! [`Backend`] over the object_store crate: a local directory, S3 and
//! S3-compatible stores, Google Cloud Storage, Azure Blob Storage.
//!
//! Owns a small tokio runtime and blocks on it, so the rest of the engine
//! stays synchronous (rayon for CPU, threads for overlapping I/O). Calls may
//! come from many threads at once; each is one request (listing: one per
//! page), so concurrency is the number of calling threads.
//!
//! Credentials, region and endpoint come from each store's usual
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`;
//! `GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`,
//! `AZURE_STORAGE_SAS_KEY`, ...), read by object_store's builders, then
//! overridden by [`BackendOptions`].
//!
//! Errors are classified: not found, already exists (a conditional put that
//! lost), transient ([`Error::Transient`]: timeouts, resets, 429/5xx that
//! outlived object_store's own retries, which are configured here) or
//! permanent. Uploads are checked before they count: S3 requests are signed
//! over the payload's SHA-256, which the store verifies, and the ETag of a
//! single-part S3 PUT (which is what `put` does, always) is compared with
//! the MD5 of the bytes sent (`s3.verify-etag`). The size check against a
//! `head` is the repository's (`Repository::put_checked`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::HttpError;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode as StorePutMode,
    PutOptions, RetryConfig,
};

use super::direct;
use super::options::{BackendOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Location};
use super::{Backend, Listed, ObjectKey, ObjectKind, PutMode};
use crate::error::{BackendFailure, Error, Result};

/// How object_store itself retries one request (5xx, 429, connection
/// errors, timeouts of idempotent requests) before we see an error: a few
/// quick tries. What escapes is retried again, slower, by `RetryBackend`.
fn client_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
    }
}

/// A repository in an object store.
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    location: String,
    runtime: tokio::runtime::Runtime,
    /// Compare single-part PUT ETags with the MD5 of the bytes (S3).
    verify_md5_etag: bool,
    /// The directory of a local repository: large objects are written
    /// there directly (`direct`), not through `store`.
    local_root: Option<std::path::PathBuf>,
    /// Set once its file system refused `O_DIRECT`: not tried again.
    no_direct: std::sync::atomic::AtomicBool,
}

impl ObjectStoreBackend {
    /// Opens a local directory (a plain path or a `file://` URL), created
    /// if missing (so `init` works on a new path).
    pub fn open(location: &str) -> Result<Self> {
        match Location::parse(location)? {
            Location::Local(p) => Self::open_local(&p),
            other => Err(Error::Invalid(format!(
                "{other} is not a local directory; use backend::open for object stores"
            ))),
        }
    }

    fn open_local(path: &std::path::Path) -> Result<Self> {
        let dir = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        if let Ok(md) = std::fs::metadata(&dir)
            && !md.is_dir()
        {
            return Err(Error::Invalid(format!(
                "the repository path {} is a file, not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let fs = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?
            .with_fsync(true)
            .with_automatic_cleanup(false);
        let mut b = Self::with_store(Arc::new(fs), dir.display().to_string())?;
        b.local_root = Some(dir);
        Ok(b)
    }

    /// Connects to the store at `loc` with `opts` (see the module comment
    /// for where credentials come from). Makes no request: a wrong bucket
    /// or credential shows at the first call.
    pub fn connect(loc: &Location, opts: &BackendOptions) -> Result<Self> {
        opts.check_applies(loc)?;
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let config_err = |e: object_store::Error| {
            Error::Invalid(format!(
                "repository {loc}: {e}; check the options (-o) and the store's environment variables"
            ))
        };
        let (store, verify): (Arc<dyn ObjectStore>, bool) = match loc {
            Location::Local(p) => return Self::open_local(p),
            Location::S3 { bucket, prefix } => {
                let o = &opts.s3;
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(client_retry())
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                        ms(timeout),
                    )
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        ms(connect_timeout),
                    );
                if let Some(e) = &o.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(r) = &o.region {
                    b = b.with_region(r);
                }
                if let Some(p) = o.path_style {
                    b = b.with_virtual_hosted_style_request(!p);
                }
                if let Some(h) = o.allow_http {
                    b = b.with_allow_http(h);
                }
                b = b.with_conditional_put(if o.conditional_put.unwrap_or(true) {
                    S3ConditionalPut::ETagMatch
                } else {
                    S3ConditionalPut::Disabled
                });
                let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
                let http_ok = b
                    .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                    .is_some_and(|v| v == "true");
                if let Some(e) = &endpoint
                    && e.starts_with("http://")
                    && !http_ok
                {
                    return Err(Error::Invalid(format!(
                        "repository {loc}: the endpoint {e} is plain HTTP; add -o s3.allow-http=true (or AWS_ALLOW_HTTP=true) if that is intended (a loopback or test store)"
                    )));
                }
                let s3 = b.build().map_err(config_err)?;
                (
                    with_prefix(Arc::new(s3), prefix),
                    o.verify_etag.unwrap_or(true),
                )
            }
            Location::Gcs { bucket, prefix } => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(client_retry())
                    .with_config(
                        GoogleConfigKey::Client(ClientConfigKey::Timeout),
                        ms(timeout),
                    )
                    .with_config(
                        GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        ms(connect_timeout),
                    );
                if let Some(p) = &opts.gs.service_account {
                    b = b.with_service_account_path(p.display().to_string());
                }
                let gcs = b.build().map_err(config_err)?;
                (with_prefix(Arc::new(gcs), prefix), false)
            }
            Location::Azure { container, prefix } => {
                let o = &opts.az;
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(client_retry())
                    .with_config(
                        AzureConfigKey::Client(ClientConfigKey::Timeout),
                        ms(timeout),
                    )
                    .with_config(
                        AzureConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        ms(connect_timeout),
                    );
                if let Some(a) = &o.account {
                    b = b.with_account(a);
                }
                if let Some(e) = &o.endpoint {
                    b = b.with_endpoint(e.clone());
                }
                if let Some(h) = o.allow_http {
                    b = b.with_allow_http(h);
                }
                let az = b.build().map_err(config_err)?;
                (with_prefix(Arc::new(az), prefix), false)
            }
        };
        let mut be = Self::with_store(store, loc.to_string())?;
        be.verify_md5_etag = verify;
        Ok(be)
    }

    /// Wraps any object store (tests use the in-memory one).
    pub fn with_store(store: Arc<dyn ObjectStore>, location: String) -> Result<Self> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("arca-io")
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        Ok(Self {
            store,
            location,
            runtime,
            verify_md5_etag: false,
            local_root: None,
            no_direct: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn err(&self, op: &'static str, key: &ObjectKey, e: object_store::Error) -> Error {
        let object = format!("{}/{}", self.location, key.path());
        classify(op, object, e)
    }
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: &str) -> Arc<dyn ObjectStore> {
    if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    }
}

/// Maps an object_store error to ours, deciding whether it is transient.
fn classify(op: &'static str, object: String, e: object_store::Error) -> Error {
    use object_store::Error as E;
    let backend = |message: String, kind: BackendFailure| Error::Backend {
        op,
        object: object.clone(),
        message,
        kind,
    };
    match &e {
        E::NotFound { .. } => backend(e.to_string(), BackendFailure::NotFound),
        E::AlreadyExists { .. } | E::Precondition { .. } => {
            backend("already exists".into(), BackendFailure::AlreadyExists)
        }
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => backend(
            format!(
                "{e}; check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY) and their permissions on the bucket"
            ),
            BackendFailure::Other,
        ),
        // Without credentials in the environment, the S3 client asks the
        // cloud's instance metadata service for some; say what to set.
        E::Generic { .. } if e.to_string().contains("169.254.169.254") => backend(
            format!(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run where an instance role provides them) ({e})"
            ),
            BackendFailure::Other,
        ),
        E::Generic { .. } if is_transient(&e) => Error::Transient {
            op,
            object,
            message: e.to_string(),
        },
        // "Generic LocalFileSystem error: Unable to copy data to file: No
        // space left on device": the store's name adds nothing to the cause
        E::Generic { source, .. } => backend(source.to_string(), BackendFailure::Other),
        _ => backend(e.to_string(), BackendFailure::Other),
    }
}

/// Whether an error escaped object_store's retries but may still pass
/// later: a transport failure (connect, reset, timeout, truncated body)
/// anywhere in the source chain, or a response status of 408, 429 or 5xx.
/// The status is only visible in the message of object_store's (private)
/// retry error, "... status code: 503 ...", so it is read from there.
fn is_transient(e: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        let text = err.to_string();
        if let Some(i) = text.find("status code: ") {
            let code: String = text[i + 13..].chars().take(3).collect();
            if let Ok(code) = code.parse::<u16>() {
                return code == 408 || code == 429 || (500..600).contains(&code);
            }
        }
        if text.contains("SlowDown") || text.contains("InternalError") {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The MD5 an ETag states, if it is a plain (single-part) MD5.
fn etag_md5(etag: &str) -> Option<[u8; 16]> {
    let t = etag.trim().trim_start_matches("W/").trim_matches('"');
    let mut out = [0u8; 16];
    (t.len() == 32 && hex::decode_to_slice(t, &mut out).is_ok()).then_some(out)
}

impl ObjectStoreBackend {
    /// The "already exists" failure of a create-only put, if `key` is
    /// there (one `head`).
    fn refuse_if_present(&self, key: &ObjectKey) -> Result<()> {
        match self.head(key) {
            Ok(_) => Err(Error::Backend {
                op: "put",
                object: format!("{}/{}", self.location, key.path()),
                message: "already exists".into(),
                kind: BackendFailure::AlreadyExists,
            }),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
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
                kind: BackendFailure::Other,
            });
        }
        Ok(b)
    }

    fn put(&self, key: &ObjectKey, data: Bytes, mode: PutMode) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(root) = &self.local_root
            && data.len() >= direct::MIN_DIRECT
            && !self.no_direct.load(Relaxed)
        {
            match direct::put(&root.join(key.path()), &data, mode == PutMode::Create)? {
                direct::Written::Done => return Ok(()),
                direct::Written::Unsupported => self.no_direct.store(true, Relaxed),
            }
        }
        let p = StorePath::from(key.path());
        let md5 = self.verify_md5_etag.then(|| {
            let mut h = Md5::new();
            h.update(&data);
            <[u8; 16]>::from(h.finalize())
        });
        let opts = |m| PutOptions {
            mode: m,
            ..Default::default()
        };
        let store_mode = match mode {
            PutMode::Overwrite => StorePutMode::Overwrite,
            PutMode::Create => StorePutMode::Create,
        };
        // Some S3 stores accept `If-None-Match: *` and overwrite anyway
        // (Garage 2 does): a create-only put looks first, so that at least
        // an object that is already there is never replaced. The condition
        // still closes the race on the stores that honour it.
        if mode == PutMode::Create && self.local_root.is_none() {
            self.refuse_if_present(key)?;
        }
        let mut r = self.runtime.block_on(self.store.put_opts(
            &p,
            data.clone().into(),
            opts(store_mode),
        ));
        if mode == PutMode::Create && matches!(r, Err(object_store::Error::NotImplemented { .. })) {
            // The store (or its configuration) has no create-only write:
            // check, then write. Two writers racing here can both succeed;
            // callers that must exclude each other (locks) do not rely on
            // this alone (see lock.rs). An object store was looked at
            // above already.
            if self.local_root.is_some() {
                self.refuse_if_present(key)?;
            }
            r = self.runtime.block_on(self.store.put_opts(
                &p,
                data.clone().into(),
                opts(StorePutMode::Overwrite),
            ));
        }
        let done = r.map_err(|e| self.err("put", key, e))?;
        if let (Some(want), Some(tag)) = (md5, done.e_tag.as_deref())
            && let Some(got) = etag_md5(tag)
            && got != want
        {
            return Err(Error::Transient {
                op: "put",
                object: format!("{}/{}", self.location, key.path()),
                message: format!(
                    "the store's ETag {tag} is not the MD5 of the bytes sent ({}): the upload may be damaged in transit. If the bucket encrypts with SSE-KMS or SSE-C, ETags are not MD5s: set -o s3.verify-etag=false",
                    hex::encode(want)
                ),
            });
        }
        Ok(())
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
            .map_err(|e| classify("list", format!("{}/{}/", self.location, kind.prefix()), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                ObjectKey::parse(kind, m.location.as_ref()).map(|key| Listed { key, size: m.size })
            })
            .collect())
    }

    fn sweep_leftovers(&self, age: Duration) -> Result<u64> {
        match &self.local_root {
            Some(root) => direct::sweep_staging(root, age),
            None => Ok(0),
        }
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let p = StorePath::from(key.path());
        match self.runtime.block_on(self.store.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        let md5 = "9e107d9d372bb6826bd81d3542a419d6";
        assert!(etag_md5(&format!("\"{md5}\"")).is_some());
        assert!(etag_md5(md5).is_some());
        assert!(etag_md5(&format!("\"{md5}-3\"")).is_none());
        assert!(etag_md5("\"0x8D9\"").is_none());
    }

    #[test]
    fn generic_transport_errors_are_transient() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                object_store::client::HttpErrorKind::Timeout,
                std::io::Error::other("timed out"),
            )),
        };
        assert!(classify("put", "x".into(), e).is_transient());
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: slow down"
                .into(),
        };
        assert!(classify("put", "x".into(), e).is_transient());
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 400 Bad Request".into(),
        };
        assert!(!classify("put", "x".into(), e).is_transient());
        let e = object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert!(classify("get", "x".into(), e).is_not_found());
    }
}
