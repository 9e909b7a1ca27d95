//! Plain files: local paths and http(s) URLs. A URL is fetched through [`crate::net`]:
//! retried with jittered backoff, resumed where a broken transfer stopped (`Range` with
//! `If-Range`), hashed as it is written, stopped at its locked size when the lock knows
//! it; the result must match the spec's `sha256` or the lock's pin.

use std::fs::File;

use anyhow::{Context, Result, anyhow};
use reqwest::StatusCode;

use crate::bundle::manifest::Kind;
use crate::digest::Digest;
use crate::lock::LockedArtifact;
use crate::net::{Net, NetOptions, SizeMismatch, Want};
use crate::spec::{FileEntry, Spec};
use crate::store::Store;

use super::Source;

pub use crate::net::NotFound;

pub struct FileSource<'a> {
    pub spec: &'a Spec,
    pub net: Net,
}

impl<'a> FileSource<'a> {
    pub fn new(spec: &'a Spec, opts: &NetOptions) -> Result<Self> {
        Ok(Self { spec, net: Net::new(opts)? })
    }

    /// Download `url` into the store (resuming, retrying), checking `expected` if given.
    /// A `file://` URL (a local mirror, or the bundled fixtures) is copied the same way.
    pub fn download(&self, url: &str, expected: Option<&Digest>, store: &Store) -> Result<(Digest, u64)> {
        self.download_sized(url, expected, None, store)
    }

    /// [`FileSource::download`] of a file whose size is known (from the lock, a Packages
    /// index, a Python index): the download stops there, and a server announcing another
    /// size is refused before anything is read.
    pub fn download_sized(
        &self,
        url: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        store: &Store,
    ) -> Result<(Digest, u64)> {
        if let Some(d) = expected
            && let Some(size) = store.blob_size(d)
        {
            return Ok((*d, size));
        }
        if url.starts_with("file://") {
            let path = reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| anyhow!("{url} is not a local file URL"))?;
            let f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(anyhow::Error::new(NotFound(url.to_string(), StatusCode::NOT_FOUND))
                        .context(format!("reading {url}")));
                }
                Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
            };
            // One byte more than the size, so a longer file is told from an exact one.
            let mut r = std::io::Read::take(f, size.map_or(u64::MAX, |s| s + 1));
            let (d, n) = store.insert(&mut r, expected, url)?;
            if let Some(s) = size
                && n != s
            {
                anyhow::bail!("{url} is {n} bytes or more, its declared size is {s}");
            }
            return Ok((d, n));
        }
        let partial = store.partial(&Digest::of(url.as_bytes()).hex())?;
        if let Some(d) = expected
            && let Some(size) = store.blob_size(d)
        {
            return Ok((*d, size)); // fetched by another entry while this one waited
        }
        let want = Want { digest: expected, size, size_from: "its declared size" };
        let send = |h: &reqwest::header::HeaderMap| {
            self.net.client().get(url).headers(h.clone()).send().map_err(|e| self.net.failure(e))
        };
        let wanted = expected.map(Digest::hex).unwrap_or_default();
        self.net
            .download(url, &partial, &want, &send, &|got, size| {
                anyhow!(
                    "sha256 mismatch for {url}: expected {wanted}, got {} ({size} bytes); the upstream file changed or was tampered with",
                    got.hex()
                )
            })
            .map_err(|e| match e.downcast_ref::<SizeMismatch>() {
                // Another size than the pinned file's is another file.
                Some(m) if expected.is_some() => anyhow!(
                    "sha256 mismatch for {url}: expected {wanted} ({} bytes), {}; the upstream file changed or was tampered with",
                    m.size,
                    match m.got {
                        Some(n) => format!("the server announces {n} bytes"),
                        None => "the server sent more".to_string(),
                    }
                ),
                _ => e,
            })
    }
}

impl Source for FileSource<'_> {
    type Entry = FileEntry;

    fn lock(&self, entry: &FileEntry, previous: Option<&LockedArtifact>, store: &Store) -> Result<LockedArtifact> {
        let upstream = entry.upstream();
        let spec_digest = entry.expected()?;
        let (digest, size) = match (&entry.url, &entry.source) {
            (Some(url), _) => {
                // The spec's sha256 wins; else the lock's pin for the same URL, whose size
                // caps the download too.
                let pinned = previous.filter(|p| p.upstream == upstream);
                match (&spec_digest, pinned) {
                    (Some(d), Some(p)) if p.digest == *d => self.download_sized(url, Some(d), Some(p.size), store)?,
                    (Some(d), _) => self.download(url, Some(d), store)?,
                    (None, Some(p)) => self.download_sized(url, Some(&p.digest), Some(p.size), store)?,
                    (None, None) => self.download(url, None, store)?,
                }
            }
            (None, Some(path)) => {
                let full = self.spec.resolve_source(path);
                let mut f = File::open(&full)
                    .with_context(|| format!("files entry `{}`: reading {}", entry.path, full.display()))?;
                store.insert(&mut f, spec_digest.as_ref(), &full.display().to_string())?
            }
            (None, None) => unreachable!("the spec is validated"),
        };
        Ok(LockedArtifact {
            kind: Kind::File,
            name: entry.path.clone(),
            upstream,
            digest,
            size,
            arch: entry.arch.clone(),
        })
    }
}
