//! Where a repository is ([`Location`]) and how to reach it
//! ([`BackendOptions`]), both parsed from what the user typed.
//!
//! A location is `s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix`, `file:///path` or a plain path. Options are
//! `key=value` pairs (`-o` on the command line); every key is listed in
//! [`OPTION_KEYS`], an unknown key or a malformed value is an error that
//! names the accepted ones, and an option that does not apply to the
//! location's kind of store is an error too (a typo never goes unnoticed).
//! Credentials never go through options: they come from the store's usual
//! environment variables (see `store.rs`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// A repository address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory on a local (or mounted) filesystem.
    Local(PathBuf),
    /// Amazon S3 or an S3-compatible store (Garage, MinIO, Ceph, R2, ...).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it ("" for the whole bucket).
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// The bucket.
        bucket: String,
        /// The key prefix inside it.
        prefix: String,
    },
    /// Azure Blob Storage.
    Azure {
        /// The container.
        container: String,
        /// The blob name prefix inside it.
        prefix: String,
    },
}

impl Location {
    /// Parses a repository address.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "repository address {s}: {why}; use s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, file:///path or a path"
            ))
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(s)));
        };
        let split = |rest: &str| -> Result<(String, String)> {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket or container name"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix
                .split('/')
                .any(|p| p == "." || p == ".." || (p.is_empty() && !prefix.is_empty()))
            {
                return Err(bad("the prefix has an empty, `.` or `..` component"));
            }
            Ok((bucket.to_string(), prefix.to_string()))
        };
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("a file:// URL takes an absolute path (file:///path)"));
                }
                Ok(Self::Local(PathBuf::from(rest)))
            }
            "s3" => split(rest).map(|(bucket, prefix)| Self::S3 { bucket, prefix }),
            "gs" => split(rest).map(|(bucket, prefix)| Self::Gcs { bucket, prefix }),
            "az" | "azure" => {
                split(rest).map(|(container, prefix)| Self::Azure { container, prefix })
            }
            other => Err(bad(&format!("unsupported scheme {other}://"))),
        }
    }

    /// Whether the store is reached over the network (and so benefits from
    /// more connections, and needs retries).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Self::Local(_))
    }

    /// The option namespace of this kind of store (`s3`, `gs`, `az`, or
    /// `None` for a local directory).
    pub fn namespace(&self) -> Option<&'static str> {
        match self {
            Self::Local(_) => None,
            Self::S3 { .. } => Some("s3"),
            Self::Gcs { .. } => Some("gs"),
            Self::Azure { .. } => Some("az"),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let remote = |f: &mut fmt::Formatter<'_>, scheme: &str, b: &str, p: &str| {
            if p.is_empty() {
                write!(f, "{scheme}://{b}")
            } else {
                write!(f, "{scheme}://{b}/{p}")
            }
        };
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::S3 { bucket, prefix } => remote(f, "s3", bucket, prefix),
            Self::Gcs { bucket, prefix } => remote(f, "gs", bucket, prefix),
            Self::Azure { container, prefix } => remote(f, "az", container, prefix),
        }
    }
}

/// Every option key, with what it takes and what it does (shown in errors).
pub const OPTION_KEYS: &[(&str, &str)] = &[
    (
        "connections",
        "N: concurrent uploads, and ranged reads in a restore (default 8 for a remote store; for a local directory 2 uploads and the restore's own default)",
    ),
    (
        "timeout",
        "DURATION: the longest one request may take (default 120s)",
    ),
    (
        "connect-timeout",
        "DURATION: the longest a connection may take to open (default 10s)",
    ),
    (
        "retries",
        "N: how often a request that failed transiently is tried again (default 5)",
    ),
    (
        "s3.endpoint",
        "URL: an S3-compatible endpoint (default: AWS, or $AWS_ENDPOINT_URL)",
    ),
    (
        "s3.region",
        "NAME: the signing region (default: $AWS_REGION, else us-east-1)",
    ),
    (
        "s3.path-style",
        "BOOL: bucket in the path (true) rather than in the host name",
    ),
    (
        "s3.allow-http",
        "BOOL: allow a plain-HTTP endpoint (loopback and test stores only)",
    ),
    (
        "s3.conditional-put",
        "BOOL: send If-None-Match for create-only writes (default true; false for stores that reject it)",
    ),
    (
        "s3.verify-etag",
        "BOOL: check that each upload's ETag is the MD5 of the bytes sent (default true; false for SSE-KMS/SSE-C buckets)",
    ),
    (
        "gs.service-account",
        "PATH: service account JSON (default: $GOOGLE_APPLICATION_CREDENTIALS)",
    ),
    (
        "az.account",
        "NAME: storage account (default: $AZURE_STORAGE_ACCOUNT_NAME)",
    ),
    ("az.endpoint", "URL: a custom endpoint (an emulator)"),
    (
        "az.allow-http",
        "BOOL: allow a plain-HTTP endpoint (emulators only)",
    ),
];

/// S3 settings given as options; `None` means "from the environment, else
/// the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `s3.endpoint`
    pub endpoint: Option<String>,
    /// `s3.region`
    pub region: Option<String>,
    /// `s3.path-style`
    pub path_style: Option<bool>,
    /// `s3.allow-http`
    pub allow_http: Option<bool>,
    /// `s3.conditional-put`
    pub conditional_put: Option<bool>,
    /// `s3.verify-etag`
    pub verify_etag: Option<bool>,
}

/// Google Cloud Storage settings given as options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsOptions {
    /// `gs.service-account`
    pub service_account: Option<PathBuf>,
}

/// Azure settings given as options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureOptions {
    /// `az.account`
    pub account: Option<String>,
    /// `az.endpoint`
    pub endpoint: Option<String>,
    /// `az.allow-http`
    pub allow_http: Option<bool>,
}

/// How to reach a store: parsed `-o key=value` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// `connections`
    pub connections: Option<usize>,
    /// `timeout`
    pub timeout: Option<Duration>,
    /// `connect-timeout`
    pub connect_timeout: Option<Duration>,
    /// `retries`
    pub retries: Option<u32>,
    /// `s3.*`
    pub s3: S3Options,
    /// `gs.*`
    pub gs: GcsOptions,
    /// `az.*`
    pub az: AzureOptions,
    /// Namespaces used (`s3`, `gs`, `az`), to reject options that do not
    /// apply to the location.
    used: Vec<&'static str>,
}

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default retries of a transient failure (after the store client's own).
pub const DEFAULT_RETRIES: u32 = 5;
/// Default concurrent uploads to a local directory (the disk, not the
/// number of requests, is what limits it).
pub const DEFAULT_LOCAL_UPLOADS: usize = 1;
/// Default concurrent uploads and downloads to a remote store: enough to
/// hide request latency, while memory stays bounded (each upload holds one
/// pack, 16 MiB by default; each ranged read at most 8 MiB). On Garage on
/// loopback (2 cores) 2 to 32 connections gave the same backup and restore
/// times (the CPU bounds them) while restore RSS grew from 77 to 276 MB.
pub const DEFAULT_REMOTE_CONNECTIONS: usize = 8;

impl BackendOptions {
    /// Parses `key=value` pairs.
    pub fn parse<S: AsRef<str>>(pairs: &[S]) -> Result<Self> {
        let mut o = Self::default();
        for pair in pairs {
            o.set(pair.as_ref())?;
        }
        Ok(o)
    }

    fn set(&mut self, pair: &str) -> Result<()> {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Error::Invalid(format!(
                "option {pair:?} is not KEY=VALUE; known keys:\n{}",
                known_keys()
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        let bad = |what: &str| {
            Error::Invalid(format!(
                "option {key}={value}: {what} ({})",
                OPTION_KEYS
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or("", |(_, h)| *h)
            ))
        };
        let boolean = || -> Result<bool> {
            match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(bad("expected true or false")),
            }
        };
        let text = || -> Result<String> {
            if value.is_empty() {
                Err(bad("the value is empty"))
            } else {
                Ok(value.to_string())
            }
        };
        if let Some((ns, _)) = key.split_once('.')
            && let Some(ns) = ["s3", "gs", "az"].into_iter().find(|n| *n == ns)
            && !self.used.contains(&ns)
        {
            self.used.push(ns);
        }
        match key {
            "connections" => {
                let n: usize = value.parse().map_err(|_| bad("expected a number"))?;
                if !(1..=256).contains(&n) {
                    return Err(bad("must be between 1 and 256"));
                }
                self.connections = Some(n);
            }
            "timeout" => self.timeout = Some(parse_duration(value).map_err(|e| bad(&e))?),
            "connect-timeout" => {
                self.connect_timeout = Some(parse_duration(value).map_err(|e| bad(&e))?)
            }
            "retries" => {
                let n: u32 = value.parse().map_err(|_| bad("expected a number"))?;
                if n > 100 {
                    return Err(bad("at most 100"));
                }
                self.retries = Some(n);
            }
            "s3.endpoint" => self.s3.endpoint = Some(text()?),
            "s3.region" => self.s3.region = Some(text()?),
            "s3.path-style" => self.s3.path_style = Some(boolean()?),
            "s3.allow-http" => self.s3.allow_http = Some(boolean()?),
            "s3.conditional-put" => self.s3.conditional_put = Some(boolean()?),
            "s3.verify-etag" => self.s3.verify_etag = Some(boolean()?),
            "gs.service-account" => self.gs.service_account = Some(PathBuf::from(text()?)),
            "az.account" => self.az.account = Some(text()?),
            "az.endpoint" => self.az.endpoint = Some(text()?),
            "az.allow-http" => self.az.allow_http = Some(boolean()?),
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown option {key:?}; known keys:\n{}",
                    known_keys()
                )));
            }
        }
        Ok(())
    }

    /// Checks that every namespaced option applies to `loc`.
    pub fn check_applies(&self, loc: &Location) -> Result<()> {
        for ns in &self.used {
            if loc.namespace() != Some(*ns) {
                return Err(Error::Invalid(format!(
                    "{ns}.* options apply to {ns}:// repositories, not to {loc}"
                )));
            }
        }
        Ok(())
    }

    /// Concurrent uploads (packs in flight to the store) for `loc`.
    pub fn uploads(&self, loc: &Location) -> usize {
        self.connections.unwrap_or(if loc.is_remote() {
            DEFAULT_REMOTE_CONNECTIONS
        } else {
            DEFAULT_LOCAL_UPLOADS
        })
    }

    /// Concurrent ranged reads in a restore for `loc`, or `None` for the
    /// engine's default (which suits a local disk).
    pub fn downloads(&self, loc: &Location) -> Option<usize> {
        self.connections
            .or(loc.is_remote().then_some(DEFAULT_REMOTE_CONNECTIONS))
    }

    /// Retries of a transient failure.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}

fn known_keys() -> String {
    OPTION_KEYS
        .iter()
        .map(|(k, h)| format!("  {k}={h}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses `90`, `90s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86400.0 {
        return Err(format!("{s:?}: must be more than 0 and at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/some/prefix/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            Location::parse("gs://b").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("az://c/p").unwrap(),
            Location::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            Location::parse("file:///tmp/r").unwrap(),
            Location::Local("/tmp/r".into())
        );
        assert_eq!(
            Location::parse("rel/dir").unwrap(),
            Location::Local("rel/dir".into())
        );
        for bad in [
            "s3://",
            "s3:///x",
            "ftp://h/x",
            "file://rel",
            "s3://b/a//c",
            "s3://b/../x",
            "",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Location::parse("s3://b/p").unwrap().to_string(), "s3://b/p");
        assert!(Location::parse("s3://b").unwrap().is_remote());
        assert!(!Location::parse("/x").unwrap().is_remote());
    }

    #[test]
    fn options_parse_and_reject() {
        let o = BackendOptions::parse(&[
            "s3.path-style=true",
            "s3.allow-http=yes",
            "connections=16",
            "timeout=2m",
            "s3.endpoint=http://127.0.0.1:3900",
        ])
        .unwrap();
        assert_eq!(o.s3.path_style, Some(true));
        assert_eq!(o.s3.allow_http, Some(true));
        assert_eq!(o.connections, Some(16));
        assert_eq!(o.timeout, Some(Duration::from_secs(120)));
        let s3 = Location::parse("s3://b/p").unwrap();
        o.check_applies(&s3).unwrap();
        assert_eq!(o.uploads(&s3), 16);
        let e = o
            .check_applies(&Location::parse("/tmp/x").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("s3.* options apply"), "{e}");

        let e = BackendOptions::parse(&["s3.pathstyle=true"]).unwrap_err();
        assert!(e.to_string().contains("unknown option"), "{e}");
        assert!(e.to_string().contains("s3.path-style"), "{e}");
        assert!(BackendOptions::parse(&["connections"]).is_err());
        assert!(BackendOptions::parse(&["connections=0"]).is_err());
        assert!(BackendOptions::parse(&["s3.allow-http=maybe"]).is_err());
        assert!(BackendOptions::parse(&["timeout=5 parsecs"]).is_err());

        let d = BackendOptions::default();
        assert_eq!(
            d.uploads(&Location::parse("/x").unwrap()),
            DEFAULT_LOCAL_UPLOADS
        );
        assert_eq!(d.uploads(&s3), DEFAULT_REMOTE_CONNECTIONS);
        assert_eq!(d.downloads(&Location::parse("/x").unwrap()), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("s").is_err());
    }
}
