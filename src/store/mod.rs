//! The content-addressed store: the mirror cache on the connected side, the repository
//! store behind imports and `airlock serve` on the offline side.
//!
//! Blobs are named by their SHA-256 and only ever enter the store through a writer that
//! hashes while it writes and refuses to commit bytes that do not match what was
//! expected, so a blob present in the store is a blob whose content is its name.

pub mod atomic;
mod gc;
pub mod hook;
mod layout;
mod litter;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::digest::{Digest, Hasher};
use crate::relpath::RelPath;
pub use atomic::AtomicFile;
pub use layout::{APT_KEYRING_STEM, Layout};
pub use litter::{TempDir, is_temp_name};

#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
}

/// The store's lock, held while an import runs and while `airlock serve` writes: one
/// writer at a time. Released when dropped (and by the kernel when its process dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// What a repository path holds compared with the blob meant to go there.
#[derive(Debug, PartialEq, Eq)]
pub enum PathState {
    Missing,
    Same,
    Different(Digest),
}

impl Store {
    /// Open (creating if needed) a store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let layout = Layout::new(root);
        for d in [layout.blobs_dir(), layout.tmp_dir()] {
            fs::create_dir_all(&d).with_context(|| format!("creating store directory {}", d.display()))?;
        }
        Ok(Self { layout })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Where each kind of content lives in this store.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn lock_file(&self) -> Result<File> {
        let p = self.layout.lock_file();
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| format!("opening the store's lock {}", p.display()))
    }

    /// Take the store's lock (`<store>/.import.lock`), waiting for its holder.
    pub fn lock(&self) -> Result<StoreLock> {
        let file = self.lock_file()?;
        file.lock().with_context(|| format!("locking {}", self.root().display()))?;
        Ok(StoreLock { _file: file })
    }

    /// Take the store's lock, waiting up to `wait` for whoever holds it (an import, a
    /// write of `airlock serve`); `None` when it stayed held that long.
    pub fn lock_within(&self, wait: std::time::Duration) -> Result<Option<StoreLock>> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if let Some(l) = self.try_lock()? {
                return Ok(Some(l));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
        }
    }

    /// Take the store's lock if no one holds it.
    pub fn try_lock(&self) -> Result<Option<StoreLock>> {
        let file = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", self.root().display())),
        }
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.layout.blob(d).is_file()
    }

    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.layout.blob(d)).ok().map(|m| m.len())
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.layout.blob(d);
        File::open(&p).with_context(|| format!("blob {d} is not in the store at {}", self.root().display()))
    }

    /// A writer for a new blob; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter> {
        let tmp = AtomicFile::new_in(&self.layout.tmp_dir(), &self.layout.tmp_dir())
            .with_context(|| format!("creating a temporary file in {}", self.layout.tmp_dir().display()))?;
        Ok(BlobWriter { store: self.clone(), tmp, hasher: Hasher::new() })
    }

    /// Copy `r` into the store, hashing while copying; checks `expected` if given.
    pub fn insert(&self, r: &mut dyn Read, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let mut w = self.writer()?;
        io::copy(r, &mut w).with_context(|| format!("copying {what} into the store"))?;
        w.commit(expected, what)
    }

    /// A resumable download slot, keyed by something stable (a hash of the URL, or the
    /// digest). Only one thread or process holds a slot at a time: the lock is released,
    /// and its file `partial/<key>.lock` removed, when the `Partial` is dropped.
    pub fn partial(&self, key: &str) -> Result<Partial> {
        let path = self.layout.partial(key);
        if let Some(d) = path.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let lock_path = self.layout.partial_lock(key);
        // The previous holder removes the file before it unlocks: whoever waited on the old
        // file finds that it no longer names the path, and starts again.
        let lock = loop {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .with_context(|| format!("creating {}", lock_path.display()))?;
            if litter::lock_held(&lock, &lock_path).with_context(|| format!("locking {}", lock_path.display()))? {
                break lock;
            }
        };
        hook::pause("partial");
        let validator_path = self.layout.partial_validator(key);
        Ok(Partial { store: self.clone(), path, lock_path, validator_path, _lock: lock })
    }

    /// Move a complete, already-hashed file into the blob directory.
    fn adopt(&self, path: &Path, digest: &Digest) -> Result<()> {
        let dest = self.layout.blob(digest);
        set_readonly(path)?;
        atomic::rename(path, &dest).with_context(|| format!("moving blob {digest} into {}", dest.display()))
    }

    /// The file a server-side upload session writes (`airlock serve`); it becomes a blob
    /// only through [`Store::adopt_upload`].
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.layout.upload(id)
    }

    /// Make a finished upload a blob. The caller hashed every byte and checked `digest`.
    pub fn adopt_upload(&self, id: &str, digest: &Digest) -> Result<()> {
        let path = self.layout.upload(id);
        File::open(&path)?.sync_all()?;
        if self.contains(digest) {
            let _ = fs::remove_file(&path);
            return Ok(());
        }
        self.adopt(&path, digest)
    }

    /// Every tag of an image repository in the store's registry, sorted.
    pub fn oci_tags(&self, repository: &str) -> Result<Vec<String>> {
        let dir = self.layout.oci_tags_dir(repository);
        let mut tags: Vec<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        tags.retain(|t| crate::names::image_tag(t).is_ok());
        tags.sort();
        Ok(tags)
    }

    /// A file of the bare git repository `name`, for serving (dumb HTTP). None when the
    /// repository or the file does not exist.
    pub fn git_file(&self, name: &str, path: &RelPath) -> Option<PathBuf> {
        let p = self.layout.git_file(name, path);
        p.is_file().then_some(p)
    }

    /// A file of a raw repository, for serving.
    pub fn repository_file(&self, repo: &str, path: &RelPath) -> Option<PathBuf> {
        let p = self.layout.repository_file(repo, path);
        p.is_file().then_some(p)
    }

    /// A directory where an import stages the blobs of one bundle until it verifies.
    pub fn staging(&self, bundle_id: &str) -> Result<Staging> {
        let dir = self.layout.staging_dir(bundle_id);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Staging { store: self.clone(), id: bundle_id.to_string(), dir })
    }

    /// Compare what a repository path holds with the blob `d`.
    pub fn repository_state(&self, repo: &str, path: &RelPath, d: &Digest) -> Result<PathState> {
        let p = self.layout.repository_file(repo, path);
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PathState::Missing),
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        if !meta.is_file() {
            bail!("{} exists and is not a regular file", p.display());
        }
        if let Ok(blob) = fs::metadata(self.layout.blob(d)) {
            use std::os::unix::fs::MetadataExt;
            if blob.ino() == meta.ino() && blob.dev() == meta.dev() {
                return Ok(PathState::Same);
            }
        }
        let mut f = File::open(&p).with_context(|| format!("reading {}", p.display()))?;
        let (have, _) = hash_reader(&mut f).with_context(|| format!("reading {}", p.display()))?;
        Ok(if have == *d { PathState::Same } else { PathState::Different(have) })
    }

    /// Place blob `d` at `repo/path`: a hard link to the blob when possible, else a copy;
    /// either way it appears atomically.
    pub fn place_in_repository(&self, repo: &str, path: &RelPath, d: &Digest) -> Result<()> {
        let dest = self.layout.repository_file(repo, path);
        let dir = dest.parent().expect("repository files have a parent");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let Some((tmp, _lock)) = self.link_blob_in(d, dir)? else {
            let mut src = self.open_blob(d)?;
            let mut f = AtomicFile::new(&dest).with_context(|| format!("creating {}", dest.display()))?;
            io::copy(&mut src, &mut f).with_context(|| format!("writing {}", dest.display()))?;
            f.set_permissions(0o444)?;
            return f.commit().with_context(|| format!("writing {}", dest.display()));
        };
        hook::pause("place-link");
        atomic::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))
    }

    /// A hard link to blob `d` under a temporary name in `dir`, locked as every temporary
    /// file is; None if the file system cannot link.
    fn link_blob_in(&self, d: &Digest, dir: &Path) -> Result<Option<(PathBuf, File)>> {
        loop {
            let name = format!("{}{}{}", atomic::TEMP_PREFIX, uuid::Uuid::new_v4().simple(), atomic::TEMP_SUFFIX);
            let tmp = dir.join(name);
            match fs::hard_link(self.layout.blob(d), &tmp) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(_) => return Ok(None),
            }
            let f = File::open(&tmp).with_context(|| format!("opening {}", tmp.display()))?;
            if litter::lock_held(&f, &tmp).with_context(|| format!("locking {}", tmp.display()))? {
                return Ok(Some((tmp, f)));
            }
        }
    }

    pub fn remove_from_repository(&self, repo: &str, path: &RelPath) -> Result<()> {
        let p = self.layout.repository_file(repo, path);
        fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))
    }

    /// The directories that placing `repo/path` would create, deepest first: what
    /// [`remove_empty_dirs`] takes away again when an import is undone.
    pub fn repository_dirs_to_create(&self, repo: &str, path: &RelPath) -> Vec<PathBuf> {
        missing_dirs(&self.layout.repository_file(repo, path))
    }

    /// The directories that setting the tag would create, deepest first.
    pub fn oci_tag_dirs_to_create(&self, repository: &str, tag: &str) -> Vec<PathBuf> {
        missing_dirs(&self.layout.oci_tag(repository, tag))
    }

    /// Remove an image tag from the store's registry (to undo an import that added it).
    pub fn remove_oci_tag(&self, repository: &str, tag: &str) -> Result<()> {
        let p = self.layout.oci_tag(repository, tag);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }

    /// A blob's file, for external tools that only read by path (git reads bundles so).
    /// The file is read-only; nothing may write through this path.
    pub fn blob_path_for_tool(&self, d: &Digest) -> PathBuf {
        self.layout.blob(d)
    }

    /// The digest an image tag points at in the store's registry.
    pub fn oci_tag(&self, repository: &str, tag: &str) -> Result<Option<Digest>> {
        crate::names::image_repository(repository)?;
        crate::names::image_tag(tag)?;
        let p = self.layout.oci_tag(repository, tag);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s.trim().parse().with_context(|| format!("reading {}", p.display()))?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub fn set_oci_tag(&self, repository: &str, tag: &str, d: &Digest) -> Result<()> {
        let p = self.layout.oci_tag(repository, tag);
        atomic::write(&p, format!("{d}\n").as_bytes()).with_context(|| format!("writing {}", p.display()))
    }

    /// Record that manifest `descriptor` (an OCI descriptor, JSON) refers to `subject`.
    pub fn add_oci_referrer(
        &self,
        repository: &str,
        subject: &Digest,
        manifest: &Digest,
        descriptor: &[u8],
    ) -> Result<()> {
        let p = self.layout.oci_referrer(repository, subject, manifest);
        atomic::write(&p, descriptor).with_context(|| format!("writing {}", p.display()))
    }

    /// Is `manifest` recorded as a referrer of `subject`?
    pub fn has_oci_referrer(&self, repository: &str, subject: &Digest, manifest: &Digest) -> bool {
        self.layout.oci_referrer(repository, subject, manifest).is_file()
    }

    /// The directories that recording the referrer would create, deepest first.
    pub fn oci_referrer_dirs_to_create(&self, repository: &str, subject: &Digest, manifest: &Digest) -> Vec<PathBuf> {
        missing_dirs(&self.layout.oci_referrer(repository, subject, manifest))
    }

    /// Forget a referrer (to undo an import that recorded it).
    pub fn remove_oci_referrer(&self, repository: &str, subject: &Digest, manifest: &Digest) -> Result<()> {
        let p = self.layout.oci_referrer(repository, subject, manifest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
        }
    }

    /// The descriptors of every manifest in `repository` whose `subject` is `subject`.
    pub fn oci_referrers(&self, repository: &str, subject: &Digest) -> Result<Vec<Vec<u8>>> {
        let dir = self.layout.oci_referrers(repository, subject);
        let mut names: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        names.retain(|p| p.file_name().is_some_and(|n| n.len() == 64));
        names.sort();
        names.iter().map(|p| fs::read(p).with_context(|| format!("reading {}", p.display()))).collect()
    }

    /// The bare git repository `name` (git itself manages what is inside).
    pub fn git_repo(&self, name: &str) -> PathBuf {
        self.layout.git_repo(name)
    }

    pub fn repository_dir(&self, repo: &str) -> PathBuf {
        self.layout.repository(repo)
    }

    /// Discard what a killed import staged (call under the store's lock).
    pub fn discard_staging(&self) {
        let _ = fs::remove_dir_all(self.layout.staging_root());
    }

    /// Keep the record of one import; earlier imports' receipts stay.
    pub fn write_receipt(&self, bundle: &str, json: &[u8]) -> Result<PathBuf> {
        let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string().replace(':', "");
        let p = self.layout.receipt(bundle, &now);
        atomic::write(&p, json).with_context(|| format!("writing receipt {}", p.display()))?;
        Ok(p)
    }
}

/// The ancestors of `path` that do not exist yet, deepest first.
pub fn missing_dirs(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        out.push(d.to_path_buf());
        dir = d.parent();
    }
    out
}

/// Remove each of `dirs` (deepest first) that is empty; stop at the first that is not.
pub fn remove_empty_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        if fs::remove_dir(d).is_err() && d.exists() {
            break;
        }
    }
}

/// Hash a whole reader.
pub fn hash_reader(r: &mut dyn Read) -> io::Result<(Digest, u64)> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

fn set_readonly(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o444)).with_context(|| format!("chmod {}", p.display()))
}

/// A blob being written into the store.
pub struct BlobWriter {
    store: Store,
    tmp: AtomicFile,
    hasher: Hasher,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    /// Check the digest, fsync, and rename the blob into place (a no-op if it is already there).
    pub fn commit(self, expected: Option<&Digest>, what: &str) -> Result<(Digest, u64)> {
        let (digest, size) = self.hasher.finish();
        if let Some(e) = expected
            && *e != digest
        {
            bail!("digest mismatch for {what}: expected {e}, got {digest}");
        }
        if self.store.contains(&digest) {
            return Ok((digest, size));
        }
        let dest = self.store.layout.blob(&digest);
        self.tmp.set_permissions(0o444)?;
        hook::pause("blob-commit");
        self.tmp.commit_to(&dest).with_context(|| format!("storing {what} as {}", dest.display()))?;
        Ok((digest, size))
    }
}

/// A resumable download: bytes are appended to a file under `partial/` and the finished
/// file is moved into the blob directory once its digest is known and checked.
pub struct Partial {
    store: Store,
    path: PathBuf,
    lock_path: PathBuf,
    validator_path: PathBuf,
    _lock: File,
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Still holding the lock: no one else can have replaced the file.
        let _ = fs::remove_file(&self.lock_path);
    }
}

impl Partial {
    pub fn downloaded(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Open for appending; with `resume`, return a hasher primed with the bytes already there.
    pub fn open(&self, resume: bool) -> Result<(File, Hasher)> {
        if let Some(d) = self.path.parent() {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let mut hasher = Hasher::new();
        if resume && self.path.exists() {
            let mut f = File::open(&self.path).with_context(|| format!("reading {}", self.path.display()))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
        } else {
            let _ = fs::remove_file(&self.path);
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        Ok((f, hasher))
    }

    pub fn discard(&self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(&self.validator_path);
    }

    /// The validator (`ETag` or `Last-Modified`) of the response the partial bytes came
    /// from, for `If-Range` when they are resumed.
    pub fn validator(&self) -> Option<String> {
        fs::read_to_string(&self.validator_path).ok().filter(|v| !v.is_empty())
    }

    pub fn set_validator(&self, v: Option<&str>) -> Result<()> {
        let path = &self.validator_path;
        match v {
            Some(v) => atomic::write(path, v.as_bytes()).with_context(|| format!("writing {}", path.display())),
            None => {
                let _ = fs::remove_file(path);
                Ok(())
            }
        }
    }

    /// Make the finished download a blob. The caller has hashed every byte and checked it.
    pub fn commit(&self, file: File, digest: &Digest) -> Result<()> {
        file.sync_all().with_context(|| format!("syncing {}", self.path.display()))?;
        drop(file);
        let _ = fs::remove_file(&self.validator_path);
        if self.store.contains(digest) {
            self.discard();
            return Ok(());
        }
        self.store.adopt(&self.path, digest)
    }
}

/// Blobs of one bundle being imported. They enter the store's blob directory only when
/// the whole bundle has verified ([`Staging::promote`]); otherwise [`Staging::discard`].
pub struct Staging {
    store: Store,
    id: String,
    dir: PathBuf,
}

impl Staging {
    pub fn create(&self, d: &Digest) -> Result<File> {
        let p = self.store.layout.staged_blob(&self.id, d);
        let f = File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        hook::pause("staged");
        Ok(f)
    }

    /// A confirmed blob's bytes: staged, or in the store when it was there already (or
    /// has been promoted meanwhile).
    pub fn open(&self, d: &Digest) -> Result<File> {
        match File::open(self.store.layout.staged_blob(&self.id, d)) {
            Ok(f) => Ok(f),
            Err(_) => self.store.open_blob(d),
        }
    }

    /// fsync each staged blob and move it into the blob directory.
    pub fn promote(self, digests: &[Digest]) -> Result<()> {
        for d in digests {
            let p = self.store.layout.staged_blob(&self.id, d);
            if !p.exists() {
                continue; // was already in the store: not written again
            }
            File::open(&p)?.sync_all()?;
            if self.store.contains(d) {
                fs::remove_file(&p)?;
            } else {
                self.store.adopt(&p, d)?;
            }
            hook::pause("promote");
        }
        self.discard();
        Ok(())
    }

    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
