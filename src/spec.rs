//! `airlock.yaml`: what a bundle carries. Every upstream URL is written here; airlock
//! knows no public host of its own.
//!
//! ```yaml
//! name: site-inputs            # the bundle's name
//! version: "2026.11"           # optional; `airlock export --version` overrides it
//! files:
//!   - path: src/hello-1.0.tar.gz                   # where it lands in the raw repository
//!     source: files/hello-1.0.tar.gz               # a local file, relative to this spec
//!   - path: bin/amd64/tool
//!     url: https://downloads.mirror.example/tool-amd64
//!     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     arch: amd64
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::digest::Digest;
use crate::relpath::RelPath;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// Directory the spec was read from; relative `source:` paths are resolved against it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file's path in the bundle and in the raw repository it is imported into.
    pub path: RelPath,
    /// A local file (connected side), relative to the spec's directory.
    #[serde(default)]
    pub source: Option<PathBuf>,
    /// An http(s) URL to download.
    #[serde(default)]
    pub url: Option<String>,
    /// The expected SHA-256 (hex). Without it, the first download is trusted and locked.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The CPU architecture the file is for (`amd64`, `arm64`, ...), if any.
    #[serde(default)]
    pub arch: Option<String>,
}

impl FileEntry {
    pub fn expected(&self) -> Result<Option<Digest>> {
        self.sha256
            .as_deref()
            .map(|h| {
                Digest::from_hex(&h.to_ascii_lowercase())
                    .map_err(|_| anyhow::anyhow!("files entry `{}`: `sha256: {h}` must be 64 hex digits", self.path))
            })
            .transpose()
    }

    /// Where the file comes from, as written in the lock: the URL, or the local path.
    pub fn upstream(&self) -> String {
        match (&self.url, &self.source) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }
}

pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        && !s.starts_with(['.', '-'])
}

impl Spec {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading spec {} (create one, or pass --spec)", path.display()))?;
        let mut spec: Spec = yaml_serde::from_str(&text).with_context(|| format!("parsing spec {}", path.display()))?;
        spec.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if spec.dir.as_os_str().is_empty() {
            spec.dir = PathBuf::from(".");
        }
        spec.validate().with_context(|| format!("invalid spec {}", path.display()))?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        if !valid_name(&self.name) {
            bail!("`name: {}` must be 1-128 letters, digits, `.`, `_`, `+` or `-`", self.name);
        }
        if let Some(v) = &self.version
            && !valid_name(v)
        {
            bail!("`version: {v}` must be 1-128 letters, digits, `.`, `_`, `+` or `-`");
        }
        let mut seen = BTreeSet::new();
        for f in &self.files {
            match (&f.source, &f.url) {
                (Some(_), Some(_)) => bail!("files entry `{}` has both `source` and `url`: keep one", f.path),
                (None, None) => bail!("files entry `{}` needs `source` (a local file) or `url`", f.path),
                (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    bail!("files entry `{}`: `url: {u}` must be http:// or https://", f.path)
                }
                _ => {}
            }
            f.expected()?;
            if !seen.insert(&f.path) {
                bail!("two files entries have `path: {}`", f.path);
            }
        }
        Ok(())
    }

    pub fn resolve_source(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Spec> {
        let mut s: Spec = yaml_serde::from_str(y)?;
        s.dir = PathBuf::from(".");
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn parses_files() {
        let s = parse("name: x\nfiles:\n  - path: a/b\n    source: b\n  - path: c\n    url: http://h.example/c\n    sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n    arch: amd64\n").unwrap();
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.files[1].arch.as_deref(), Some("amd64"));
        assert!(s.files[1].expected().unwrap().is_some());
    }

    #[test]
    fn refuses_bad_entries() {
        let cases = [
            ("name: x\nfiles:\n  - path: ../a\n    source: b\n", "`..`"),
            ("name: x\nfiles:\n  - path: a\n", "needs `source`"),
            ("name: x\nfiles:\n  - path: a\n    url: ftp://h/a\n", "http://"),
            ("name: x\nfiles:\n  - path: a\n    source: a\n  - path: a\n    source: b\n", "two files"),
            ("name: x\nfiles:\n  - path: a\n    source: a\n    sha256: abc\n", "must be 64 hex digits"),
            ("name: x\nimages: []\n", "unknown field `images`"),
            ("name: ../x\n", "must be"),
        ];
        for (y, want) in cases {
            let err = format!("{:#}", parse(y).unwrap_err());
            assert!(err.contains(want), "{y}: {err}");
        }
    }
}
