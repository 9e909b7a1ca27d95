//! What `airlock gc` asks of the store: which blobs the store's registry still names,
//! every blob with its age and link count, and leftovers (upload sessions, downloads)
//! older than a grace window. Deciding what to free is the command's; this file only
//! knows where things are.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use super::Store;
use crate::digest::Digest;

/// One blob in the store.
#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub digest: Digest,
    pub size: u64,
    /// How long ago it was written.
    pub age: Duration,
    /// More than one: a repository file is a hard link to it.
    pub links: u64,
}

/// The largest manifest the registry client and serve accept.
const MANIFEST_MAX: u64 = crate::net::MANIFEST_MAX;

impl Store {
    /// Every blob an image tag or a referrer of the store's registry reaches: the tagged
    /// manifests, their index children, configs and layers, and subjects.
    pub fn oci_reachable(&self) -> Result<HashSet<Digest>> {
        let mut tops = Vec::new();
        let dir = self.layout.oci_dir();
        if dir.is_dir() {
            for e in walkdir::WalkDir::new(&dir).follow_links(false) {
                let e = e.with_context(|| format!("reading {}", dir.display()))?;
                if !e.file_type().is_file() {
                    continue;
                }
                let parent = e.path().parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
                let grand = e.path().parent().and_then(|p| p.parent()).and_then(|p| p.file_name());
                if parent.as_deref() == Some("tags") {
                    let text =
                        fs::read_to_string(e.path()).with_context(|| format!("reading {}", e.path().display()))?;
                    if let Ok(d) = text.trim().parse::<Digest>() {
                        tops.push(d);
                    }
                } else if grand.is_some_and(|g| g == "referrers") {
                    let name = e.file_name().to_string_lossy();
                    if let Ok(d) = format!("sha256:{name}").parse::<Digest>() {
                        tops.push(d);
                    }
                }
            }
        }
        let mut seen = HashSet::new();
        while let Some(d) = tops.pop() {
            if !seen.insert(d) {
                continue;
            }
            // What a tag, an index or a referrer names is a manifest: one gc cannot read
            // would hide the layers it keeps, so gc stops rather than free them.
            match self.blob_size(&d) {
                None => continue,
                Some(s) if s > MANIFEST_MAX => {
                    bail!("manifest {d} is {s} bytes, over the {MANIFEST_MAX}-byte manifest cap: nothing was freed")
                }
                Some(_) => {}
            }
            let path = self.layout.blob(&d);
            let bytes = fs::read(&path).with_context(|| format!("reading manifest {d} ({})", path.display()))?;
            let v = serde_json::from_slice::<serde_json::Value>(&bytes)
                .with_context(|| format!("manifest {d} is not JSON, so what it names is unknown: nothing was freed"))?;
            let digest_of =
                |x: &serde_json::Value| x.get("digest").and_then(|d| d.as_str()).and_then(|s| s.parse::<Digest>().ok());
            for m in v.get("manifests").and_then(|m| m.as_array()).into_iter().flatten() {
                tops.extend(digest_of(m));
            }
            if let Some(s) = v.get("subject") {
                tops.extend(digest_of(s));
            }
            for key in ["layers", "blobs"] {
                for l in v.get(key).and_then(|m| m.as_array()).into_iter().flatten() {
                    seen.extend(digest_of(l));
                }
            }
            if let Some(c) = v.get("config") {
                seen.extend(digest_of(c));
            }
        }
        Ok(seen)
    }

    /// Every blob in the store.
    pub fn blob_entries(&self) -> Result<Vec<BlobEntry>> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.layout.blobs_dir();
        let mut out = Vec::new();
        let now = SystemTime::now();
        for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let Ok(digest) = format!("sha256:{}", e.file_name().to_string_lossy()).parse::<Digest>() else { continue };
            let m = e.metadata().with_context(|| format!("reading {}", e.path().display()))?;
            if !m.is_file() {
                continue;
            }
            let age = m.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
            out.push(BlobEntry { digest, size: m.len(), age, links: m.nlink() });
        }
        out.sort_by_key(|b| b.digest.to_string());
        Ok(out)
    }

    /// Remove a blob (call under the store's lock, only for a blob nothing names).
    pub fn remove_blob(&self, d: &Digest) -> Result<()> {
        let p = self.layout.blob(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }

    /// Upload sessions of `airlock serve` and resumable downloads untouched for longer
    /// than `grace`: interrupted, and never to be finished.
    pub fn stale_leftovers(&self, grace: Duration) -> Result<Vec<(PathBuf, u64)>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for dir in [self.layout.uploads_dir(), self.layout.partial_dir()] {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.filter_map(Result::ok) {
                let Ok(m) = e.metadata() else { continue };
                let idle = m.modified().ok().and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                if m.is_file() && idle > grace {
                    out.push((e.path(), m.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
