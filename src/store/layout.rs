//! Where bytes live inside a store directory. This is the only file that does path math
//! on a store: everything above it speaks in digests, repository names and member paths.
//!
//! ```text
//! <root>/blobs/sha256/<hex>              content-addressed blobs (read-only files)
//! <root>/tmp/                            temporary files, renamed into place when complete
//! <root>/tmp/uploads/<id>                upload sessions of `airlock serve`
//! <root>/partial/<key>                   resumable downloads, with <key>.lock and <key>.validator
//! <root>/staging/<bundle>/<hex>          blobs of a bundle being imported, before it verifies
//! <root>/repository/<name>/<path>        Nexus-style repositories (`raw` for plain files):
//!     dists/<suite>/, pool/, airlock-archive-keyring.{asc,gpg}   an apt repository
//!     simple/<project>/, files/<project>/<file>                  a Python index
//! <root>/git/<name>.git                  bare git repositories
//! <root>/oci/<repository>/tags/<tag>     image tags: the digest of the tagged manifest
//! <root>/oci/<repository>/referrers/<subject hex>/<manifest hex>   referrer descriptors
//! <root>/receipts/<bundle>/<time>.json   what each import did, one file per import
//! <root>/imported.json                   the bundles imported, for rollback protection
//! <root>/manifests/<hex>.json            the manifest of each imported bundle (`airlock env`)
//! <root>/sites/<KEYID>.receipt{,.minisig}   in a factory's cache: each site's newest receipt
//! <root>/.import.lock                    the store's lock (imports, `airlock serve` writes)
//! ```
//!
//! The names joined here are checked before they get here ([`crate::names`]): repository,
//! git and image names are plain names or follow their grammar, paths are [`RelPath`]s.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::relpath::{RelPath, RelPathError};

/// The file name stem of the site key an apt repository publishes for `Signed-By`.
pub const APT_KEYRING_STEM: &str = "airlock-archive-keyring";

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
    pub fn uploads_dir(&self) -> PathBuf {
        self.tmp_dir().join("uploads")
    }
    pub fn upload(&self, id: &str) -> PathBuf {
        self.uploads_dir().join(id)
    }
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }
    pub fn partial(&self, key: &str) -> PathBuf {
        self.partial_dir().join(key)
    }
    /// The lock file of the download slot `key`.
    pub fn partial_lock(&self, key: &str) -> PathBuf {
        self.partial(key).with_extension("lock")
    }
    /// The validator (`ETag`, `Last-Modified`) of the bytes of the download slot `key`.
    pub fn partial_validator(&self, key: &str) -> PathBuf {
        self.partial(key).with_extension("validator")
    }
    pub fn staging_root(&self) -> PathBuf {
        self.root.join("staging")
    }
    pub fn staging_dir(&self, bundle: &str) -> PathBuf {
        self.staging_root().join(bundle)
    }
    pub fn staged_blob(&self, bundle: &str, digest: &Digest) -> PathBuf {
        self.staging_dir(bundle).join(digest.hex())
    }
    /// `<root>/repository/`: one directory per repository (raw, Python index, apt).
    pub fn repositories_dir(&self) -> PathBuf {
        self.root.join("repository")
    }
    pub fn repository(&self, name: &str) -> PathBuf {
        self.repositories_dir().join(name)
    }
    pub fn repository_file(&self, name: &str, path: &RelPath) -> PathBuf {
        let mut p = self.repository(name);
        for c in path.components() {
            p.push(c);
        }
        p
    }
    /// `dists/` of the apt repository `repo`.
    pub fn apt_dists(&self, repo: &str) -> PathBuf {
        self.repository(repo).join("dists")
    }
    /// `dists/<suite>/`; a suite may have `/` between its parts.
    pub fn apt_suite(&self, repo: &str, suite: &str) -> PathBuf {
        let mut p = self.apt_dists(repo);
        for c in suite.split('/') {
            p.push(c);
        }
        p
    }
    /// The site key published beside `dists/`, as `asc` (armored) or `gpg` (binary).
    pub fn apt_keyring(&self, repo: &str, extension: &str) -> PathBuf {
        self.repository(repo).join(format!("{APT_KEYRING_STEM}.{extension}"))
    }
    /// `simple/` of the Python index `index`: the root page and a directory per project.
    pub fn python_simple(&self, index: &str) -> PathBuf {
        self.repository(index).join("simple")
    }
    /// `simple/<project>/`: the pages of one (normalized) project.
    pub fn python_project_pages(&self, index: &str, project: &str) -> PathBuf {
        self.python_simple(index).join(project)
    }
    /// `files/<project>/<file>`, in the index: where a distribution file goes.
    pub fn python_file(project: &str, filename: &str) -> Result<RelPath, RelPathError> {
        RelPath::new(&format!("files/{project}/{filename}"))
    }
    /// `files/<project>/<file>.metadata`: its core metadata (PEP 658).
    pub fn python_metadata(project: &str, filename: &str) -> Result<RelPath, RelPathError> {
        RelPath::new(&format!("files/{project}/{filename}.metadata"))
    }
    /// `<root>/oci/`: the store's registry, one directory per image repository.
    pub fn oci_dir(&self) -> PathBuf {
        self.root.join("oci")
    }
    fn oci_repository(&self, repository: &str) -> PathBuf {
        let mut p = self.oci_dir();
        for c in repository.split('/') {
            p.push(c);
        }
        p
    }
    pub fn oci_tags_dir(&self, repository: &str) -> PathBuf {
        self.oci_repository(repository).join("tags")
    }
    pub fn oci_tag(&self, repository: &str, tag: &str) -> PathBuf {
        self.oci_tags_dir(repository).join(tag)
    }
    /// `<root>/oci/<repository>/referrers/<subject hex>/`: one descriptor file per
    /// manifest whose `subject` is that digest.
    pub fn oci_referrers(&self, repository: &str, subject: &Digest) -> PathBuf {
        self.oci_repository(repository).join("referrers").join(subject.hex())
    }
    pub fn oci_referrer(&self, repository: &str, subject: &Digest, manifest: &Digest) -> PathBuf {
        self.oci_referrers(repository, subject).join(manifest.hex())
    }
    pub fn git_dir(&self) -> PathBuf {
        self.root.join("git")
    }
    pub fn git_repo(&self, name: &str) -> PathBuf {
        self.git_dir().join(format!("{name}.git"))
    }
    /// A file inside the bare repository `name` (for dumb HTTP).
    pub fn git_file(&self, name: &str, path: &RelPath) -> PathBuf {
        let mut p = self.git_repo(name);
        for c in path.components() {
            p.push(c);
        }
        p
    }
    pub fn receipts_dir(&self) -> PathBuf {
        self.root.join("receipts")
    }
    pub fn receipt(&self, bundle: &str, time: &str) -> PathBuf {
        self.receipts_dir().join(bundle).join(format!("{time}.json"))
    }
    /// What was imported, by bundle name: the newest version, for rollback protection.
    pub fn imported_index(&self) -> PathBuf {
        self.root.join("imported.json")
    }
    /// The manifest of an imported bundle, by its digest: what `airlock env` reads for
    /// upstream names (registries, git URLs) and the bundle's Python versions.
    pub fn imported_manifest(&self, digest: &Digest) -> PathBuf {
        self.root.join("manifests").join(format!("{}.json", digest.hex()))
    }
    /// In a factory's cache: the newest receipt of each site, by site key id.
    pub fn sites_dir(&self) -> PathBuf {
        self.root.join("sites")
    }
    pub fn site_receipt(&self, key_id: &str) -> PathBuf {
        self.sites_dir().join(format!("{key_id}.receipt"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The on-disk layout is a contract (docs, `airlock serve`, web servers pointed at a
    /// store): each location, spelled out.
    #[test]
    fn locations() {
        let l = Layout::new("/s");
        let d = Digest::of(b"x");
        let m = Digest::of(b"m");
        let p = |x: PathBuf| x.to_str().unwrap().to_string();
        let rel = RelPath::new("a/b.txt").unwrap();
        for (got, want) in [
            (p(l.blob(&d)), format!("/s/blobs/sha256/{}", d.hex())),
            (p(l.upload("u1")), "/s/tmp/uploads/u1".into()),
            (p(l.partial("k")), "/s/partial/k".into()),
            (p(l.partial_lock("k")), "/s/partial/k.lock".into()),
            (p(l.partial_validator("k")), "/s/partial/k.validator".into()),
            (p(l.staged_blob("b", &d)), format!("/s/staging/b/{}", d.hex())),
            (p(l.repository_file("raw", &rel)), "/s/repository/raw/a/b.txt".into()),
            (p(l.apt_suite("apt", "trixie/updates")), "/s/repository/apt/dists/trixie/updates".into()),
            (p(l.apt_keyring("apt", "asc")), "/s/repository/apt/airlock-archive-keyring.asc".into()),
            (p(l.python_project_pages("pypi", "a-b")), "/s/repository/pypi/simple/a-b".into()),
            (
                Layout::python_file("a-b", "a_b-1-py3-none-any.whl").unwrap().to_string(),
                "files/a-b/a_b-1-py3-none-any.whl".into(),
            ),
            (
                Layout::python_metadata("a-b", "a_b-1.tar.gz").unwrap().to_string(),
                "files/a-b/a_b-1.tar.gz.metadata".into(),
            ),
            (p(l.oci_tag("ns/base", "1.0")), "/s/oci/ns/base/tags/1.0".into()),
            (p(l.oci_referrer("ns/base", &d, &m)), format!("/s/oci/ns/base/referrers/{}/{}", d.hex(), m.hex())),
            (p(l.git_file("kolla", &RelPath::new("info/refs").unwrap())), "/s/git/kolla.git/info/refs".into()),
            (p(l.receipt("b-1", "t")), "/s/receipts/b-1/t.json".into()),
            (p(l.imported_index()), "/s/imported.json".into()),
            (p(l.imported_manifest(&d)), format!("/s/manifests/{}.json", d.hex())),
            (p(l.site_receipt("0123456789ABCDEF")), "/s/sites/0123456789ABCDEF.receipt".into()),
            (p(l.lock_file()), "/s/.import.lock".into()),
        ] {
            assert_eq!(got, want);
        }
    }
}
