//! What a backup reads: files and directories, or a stream stored as one
//! file. A stream comes from a [`StreamSource`], an open trait: standard
//! input and a command's output are two ([`ReaderSource`],
//! [`CommandSource`]); database dumps with their own checks are more.

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
    /// non-zero, no snapshot is written.
    pub fn command(name: impl Into<String>, argv: Vec<OsString>) -> Self {
        Source::Stream(Box::new(CommandSource {
            name: name.into(),
            argv,
            child: None,
        }))
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

/// A command's standard output: it succeeds when the command exits 0.
pub struct CommandSource {
    name: String,
    argv: Vec<OsString>,
    child: Option<std::process::Child>,
}

impl CommandSource {
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
}
