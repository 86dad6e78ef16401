//! Path patterns, as `--exclude` and `find` take them: globs where `*`
//! does not cross a `/`; a pattern with a `/` matches the absolute path,
//! one without matches the file name wherever it is.

use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled patterns; a path matches if any pattern does.
pub struct Patterns {
    full: GlobSet,
    base: GlobSet,
}

impl Patterns {
    /// Compiles `patterns`; `flag` names them in errors (`--exclude`).
    pub fn new(patterns: &[String], flag: &str) -> Result<Self> {
        let mut full = GlobSetBuilder::new();
        let mut base = GlobSetBuilder::new();
        for p in patterns {
            let g = GlobBuilder::new(p.trim_end_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Invalid(format!("bad {flag} pattern '{p}': {e}")))?;
            if p.contains('/') {
                full.add(g);
            } else {
                base.add(g);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Invalid(format!("bad {flag} patterns: {e}")))
        };
        Ok(Self {
            full: build(full)?,
            base: build(base)?,
        })
    }

    /// Whether `path` (absolute) matches.
    pub fn matches(&self, path: &Path) -> bool {
        self.full.is_match(path) || path.file_name().is_some_and(|n| self.base.is_match(n))
    }
}
