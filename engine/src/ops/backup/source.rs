//! What a backup reads: files and directories, or a stream stored as one
//! file. A stream comes from a [`StreamSource`], an open trait: standard
//! input and a command's output (or the file a command writes) are two
//! ([`ReaderSource`], [`CommandSource`]); `dumps::CheckedSource` wraps
//! either and checks the bytes as a database dump.

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// What to back up.
pub enum Source {
    /// Files and directories (made absolute).
    Paths(Vec<PathBuf>),
    /// A stream, stored as one file.
    Stream(Box<dyn StreamSource>),
}

impl Source {
    /// Standard input or any reader, stored as `name`.
    pub fn reader(name: impl Into<String>, reader: impl Read + Send + 'static) -> Self {
        Source::Stream(Box::new(ReaderSource {
            name: name.into(),
            reader: Some(Box::new(reader)),
        }))
    }

    /// A command's standard output, stored as `name`; if the command exits
    /// non-zero, no snapshot is written. An argument containing
    /// [`FILE_PLACEHOLDER`] makes it the file the command writes instead
    /// (see [`CommandSource`]).
    pub fn command(name: impl Into<String>, argv: Vec<OsString>) -> Self {
        Source::Stream(Box::new(CommandSource::new(name.into(), argv)))
    }

    /// `source`, its bytes checked as a dump of `kind` (see
    /// `dumps::CheckedSource`); paths are returned as they are.
    pub fn checked(self, kind: super::dumps::DumpKind) -> Self {
        match self {
            Source::Stream(s) => {
                Source::Stream(Box::new(super::dumps::CheckedSource::new(s, kind)))
            }
            p => p,
        }
    }
}

/// A stream to back up as one file.
///
/// The backup calls [`StreamSource::open`] once, reads what it returns to
/// its end, then calls [`StreamSource::finish`], which says whether what
/// produced the stream succeeded: a snapshot is written only if it did.
pub trait StreamSource: Send {
    /// The file name in the snapshot.
    fn name(&self) -> &str;
    /// The bytes.
    fn open(&mut self) -> Result<Box<dyn Read + Send>>;
    /// Called once the stream was read to its end (or the backup was
    /// `cancelled`): an error here means no snapshot is saved.
    fn finish(&mut self, cancelled: bool) -> Result<()>;
    /// The file the bytes come from, where there is one (a validator can
    /// read it instead of a copy).
    fn file(&self) -> Option<&std::path::Path> {
        None
    }
    /// What checked the bytes, once `finish` succeeded: recorded in the
    /// snapshot.
    fn check(&self) -> Option<crate::format::snapshot::DumpCheck> {
        None
    }
}

/// Any reader (standard input): it succeeds when it reaches its end.
pub struct ReaderSource {
    name: String,
    reader: Option<Box<dyn Read + Send>>,
}

impl StreamSource for ReaderSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<Box<dyn Read + Send>> {
        self.reader
            .take()
            .ok_or_else(|| Error::Invalid("the input stream was already read".into()))
    }

    fn finish(&mut self, _cancelled: bool) -> Result<()> {
        Ok(())
    }
}

/// In a command's arguments, where the file it should write goes.
pub const FILE_PLACEHOLDER: &str = "{file}";

/// A command's standard output: it succeeds when the command exits 0.
///
/// Some tools cannot write to a pipe (`etcdctl snapshot save` writes
/// `PATH.part` and renames it, which over `/dev/stdout` replaces the
/// device). For them, [`FILE_PLACEHOLDER`] in an argument stands for a
/// file in a private temporary directory (mode 0700, in `TMPDIR`): the
/// command runs to its end, the file is the stream, and the directory is
/// removed when the source is dropped.
pub struct CommandSource {
    name: String,
    argv: Vec<OsString>,
    child: Option<std::process::Child>,
    /// With the placeholder: the directory and the file in it.
    output: Option<(tempfile::TempDir, PathBuf)>,
}

impl CommandSource {
    fn new(name: String, argv: Vec<OsString>) -> Self {
        Self {
            name,
            argv,
            child: None,
            output: None,
        }
    }

    fn writes_file(&self) -> bool {
        self.argv
            .iter()
            .any(|a| a.to_string_lossy().contains(FILE_PLACEHOLDER))
    }

    /// Runs the command with the placeholder replaced; opens its file.
    fn open_file(&mut self) -> Result<Box<dyn Read + Send>> {
        let dir = tempfile::Builder::new()
            .prefix("arca-dump-")
            .tempdir()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let base = std::path::Path::new(&self.name)
            .file_name()
            .map_or_else(|| "dump".into(), |n| n.to_os_string());
        let path = dir.path().join(base);
        let argv: Vec<OsString> = self
            .argv
            .iter()
            .map(|a| {
                let s = a.to_string_lossy();
                if s.contains(FILE_PLACEHOLDER) {
                    s.replace(FILE_PLACEHOLDER, &path.to_string_lossy()).into()
                } else {
                    a.clone()
                }
            })
            .collect();
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| Error::Invalid("--stdin-from-command needs a command".into()))?;
        let status = std::process::Command::new(prog)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::CommandFailed {
                command: self.shown(),
                status: format!("could not start: {e}"),
            })?;
        if !status.success() {
            return Err(Error::CommandFailed {
                command: self.shown(),
                status: status.to_string(),
            });
        }
        let f = std::fs::File::open(&path).map_err(|e| Error::CommandFailed {
            command: self.shown(),
            status: format!("it exited 0 but did not write {}: {e}", path.display()),
        })?;
        self.output = Some((dir, path));
        Ok(Box::new(f))
    }

    fn shown(&self) -> String {
        self.argv
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl StreamSource for CommandSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<Box<dyn Read + Send>> {
        if self.writes_file() {
            return self.open_file();
        }
        let (prog, args) = self
            .argv
            .split_first()
            .ok_or_else(|| Error::Invalid("--stdin-from-command needs a command".into()))?;
        let mut child = std::process::Command::new(prog)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::CommandFailed {
                command: self.shown(),
                status: format!("could not start: {e}"),
            })?;
        let out = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        Ok(Box::new(out))
    }

    fn finish(&mut self, cancelled: bool) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if cancelled {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| Error::CommandFailed {
            command: self.shown(),
            status: e.to_string(),
        })?;
        if !status.success() {
            return Err(Error::CommandFailed {
                command: self.shown(),
                status: status.to_string(),
            });
        }
        Ok(())
    }

    fn file(&self) -> Option<&std::path::Path> {
        self.output.as_ref().map(|(_, p)| p.as_path())
    }
}
