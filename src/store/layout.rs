//! Where bytes live inside a store directory. This is the only file that does path math
//! on a store: everything above it speaks in digests, repository names and member paths.
//!
//! ```text
//! <root>/blobs/sha256/<hex>              content-addressed blobs (read-only files)
//! <root>/tmp/                            temporary files, renamed into place when complete
//! <root>/partial/<key>                   resumable downloads
//! <root>/staging/<bundle>/<hex>          blobs of a bundle being imported, before it verifies
//! <root>/repository/<name>/<path>        Nexus-style repositories (`raw` for plain files)
//! <root>/git/<name>.git                   bare git repositories
//! <root>/oci/<repository>/tags/<tag>     image tags: the digest of the tagged manifest
//! <root>/receipts/<bundle>/<time>.json   what each import did, one file per import
//! <root>/.import.lock                    the store's lock (imports, `airlock serve` writes)
//! ```

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::relpath::RelPath;

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }
    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(".import.lock")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn upload(&self, id: &str) -> PathBuf {
        self.tmp_dir().join("uploads").join(id)
    }
    pub fn partial(&self, key: &str) -> PathBuf {
        self.root.join("partial").join(key)
    }
    pub fn staging_dir(&self, bundle: &str) -> PathBuf {
        self.root.join("staging").join(bundle)
    }
    pub fn staged_blob(&self, bundle: &str, digest: &Digest) -> PathBuf {
        self.staging_dir(bundle).join(digest.hex())
    }
    pub fn repository(&self, name: &str) -> PathBuf {
        self.root.join("repository").join(name)
    }
    pub fn repository_file(&self, name: &str, path: &RelPath) -> PathBuf {
        let mut p = self.repository(name);
        for c in path.components() {
            p.push(c);
        }
        p
    }
    pub fn oci_tag(&self, repository: &str, tag: &str) -> PathBuf {
        let mut p = self.root.join("oci");
        for c in repository.split('/') {
            p.push(c);
        }
        p.join("tags").join(tag)
    }
    /// `<root>/oci/<repository>/referrers/<subject hex>/`: one descriptor file per
    /// manifest whose `subject` is that digest.
    pub fn oci_referrers(&self, repository: &str, subject: &Digest) -> PathBuf {
        let mut p = self.root.join("oci");
        for c in repository.split('/') {
            p.push(c);
        }
        p.join("referrers").join(subject.hex())
    }
    pub fn git_repo(&self, name: &str) -> PathBuf {
        self.root.join("git").join(format!("{name}.git"))
    }
    pub fn receipt(&self, bundle: &str, time: &str) -> PathBuf {
        self.root.join("receipts").join(bundle).join(format!("{time}.json"))
    }
}
