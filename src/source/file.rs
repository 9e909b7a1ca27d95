//! Plain files: local paths and http(s) URLs. A URL is fetched with retries and
//! exponential backoff, and a broken transfer resumes where it stopped (HTTP Range),
//! hashing as it writes; the result must match the spec's `sha256` or the lock's pin.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::header::{CONTENT_RANGE, RANGE};

use crate::bundle::manifest::Kind;
use crate::digest::{Digest, Hasher};
use crate::lock::LockedArtifact;
use crate::spec::{FileEntry, Spec};
use crate::store::Store;

use super::Source;

pub struct FileSource<'a> {
    pub spec: &'a Spec,
    pub client: Client,
    pub retries: u32,
    pub backoff: Duration,
}

/// The server answered 404 (or 410): the file is not there, which callers may expect
/// (apt archives without InRelease).
#[derive(Debug, thiserror::Error)]
#[error("GET {0}: {1}")]
pub struct NotFound(pub String, pub StatusCode);

enum Attempt {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

impl<'a> FileSource<'a> {
    pub fn new(spec: &'a Spec, retries: u32, backoff: Duration) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .timeout(None)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { spec, client, retries, backoff })
    }

    /// Download `url` into the store (resuming, retrying), checking `expected` if given.
    /// A `file://` URL (a local mirror, or the bundled fixtures) is copied the same way.
    pub fn download(&self, url: &str, expected: Option<&Digest>, store: &Store) -> Result<(Digest, u64)> {
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
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(anyhow::Error::new(NotFound(url.to_string(), StatusCode::NOT_FOUND)));
                }
                Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
            };
            return store.insert(&mut f, expected, url);
        }
        let partial = store.partial(&Digest::of(url.as_bytes()).hex())?;
        if let Some(d) = expected
            && let Some(size) = store.blob_size(d)
        {
            return Ok((*d, size)); // fetched by another entry while this one waited
        }
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(self.backoff * 2u32.saturating_pow(attempt - 1).min(32));
            }
            match self.attempt(url, expected, &partial) {
                Ok(r) => return Ok(r),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) => last = Some(e),
            }
        }
        Err(last
            .expect("at least one attempt")
            .context(format!("giving up on {url} after {} attempts", self.retries + 1)))
    }

    fn attempt(
        &self,
        url: &str,
        expected: Option<&Digest>,
        partial: &crate::store::Partial,
    ) -> Result<(Digest, u64), Attempt> {
        let have = partial.downloaded();
        let mut req = self.client.get(url);
        if have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
        }
        let mut resp = req.send().map_err(|e| Attempt::Retry(anyhow!("GET {url}: {e}")))?;
        let status = resp.status();
        let resume = match status {
            StatusCode::PARTIAL_CONTENT if have > 0 => {
                let range = resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !range.starts_with(&format!("bytes {have}-")) {
                    partial.discard();
                    return Err(Attempt::Retry(anyhow!("GET {url}: unexpected Content-Range `{range}`")));
                }
                true
            }
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                partial.discard();
                return Err(Attempt::Retry(anyhow!("GET {url}: the partial download could not be resumed")));
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
                return Err(Attempt::Retry(anyhow!("GET {url}: {s}")));
            }
            s @ (StatusCode::NOT_FOUND | StatusCode::GONE) => {
                return Err(Attempt::Fatal(anyhow::Error::new(NotFound(url.to_string(), s))));
            }
            s => return Err(Attempt::Fatal(anyhow!("GET {url}: {s}"))),
        };
        let (mut file, mut hasher): (File, Hasher) = partial.open(resume).map_err(Attempt::Fatal)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = file.sync_data();
                    return Err(Attempt::Retry(anyhow!(
                        "GET {url}: transfer broke after {} bytes: {e}",
                        hasher.bytes()
                    )));
                }
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(|e| Attempt::Fatal(anyhow!("writing the download of {url}: {e}")))?;
        }
        if let Some(len) = resp.content_length()
            && hasher.bytes() < have * u64::from(resume) + len
        {
            let _ = file.sync_data();
            return Err(Attempt::Retry(anyhow!("GET {url}: transfer ended early at {} bytes", hasher.bytes())));
        }
        let (digest, size) = hasher.finish();
        if let Some(e) = expected
            && *e != digest
        {
            partial.discard();
            return Err(Attempt::Fatal(anyhow!(
                "sha256 mismatch for {url}: expected {}, got {} ({size} bytes); the upstream file changed or was tampered with",
                e.hex(),
                digest.hex()
            )));
        }
        partial.commit(file, &digest).map_err(Attempt::Fatal)?;
        Ok((digest, size))
    }
}

impl Source for FileSource<'_> {
    type Entry = FileEntry;

    fn lock(&self, entry: &FileEntry, previous: Option<&LockedArtifact>, store: &Store) -> Result<LockedArtifact> {
        let upstream = entry.upstream();
        let spec_digest = entry.expected()?;
        let (digest, size) = match (&entry.url, &entry.source) {
            (Some(url), _) => {
                // The spec's sha256 wins; else the lock's pin for the same URL.
                let pinned = previous.filter(|p| p.upstream == upstream).map(|p| p.digest);
                self.download(url, spec_digest.as_ref().or(pinned.as_ref()), store)?
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
