//! What killed runs leave behind, and how a later run tells it from live work.
//!
//! Every temporary file or directory airlock makes in a store or cache is named
//! `.airlock-<random>.tmp` and stays locked (`flock`, exclusive) by its maker for as
//! long as it exists; every download slot's `partial/<key>.lock` is locked by its holder,
//! who removes it when done. The kernel drops a lock when its process dies, so an entry
//! that can be locked has no live owner: it is litter. [`Store::remove_litter`] removes
//! exactly those, and only under the lock it took, after checking that the path still
//! names the file it locked; makers check the same after locking, and start again if
//! their fresh entry was taken for litter in between. No store-wide lock is needed, so
//! this is safe while `airlock serve`, another mirror or another import works beside it.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Store;
use super::atomic::{TEMP_PREFIX, TEMP_SUFFIX};

/// Does `path` still name the file `f` has open?
pub(super) fn same_file(f: &File, path: &Path) -> io::Result<bool> {
    let open = f.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.ino() == open.ino() && m.dev() == open.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lock `f` (opened at `path`) exclusively, waiting for a cleaner that holds it; false
/// when `path` no longer names it (it was removed as litter before the lock was taken).
pub(super) fn lock_held(f: &File, path: &Path) -> io::Result<bool> {
    f.lock()?;
    same_file(f, path)
}

/// Is `name` one of airlock's temporary names? `.airlock-<random>.tmp`, and the
/// `.airlock-<6 characters>` of earlier versions.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else { return false };
    let core = rest.strip_suffix(TEMP_SUFFIX).unwrap_or(rest);
    let legacy = rest.len() == 6;
    (rest.len() > core.len() || legacy) && !core.is_empty() && core.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Remove `path` (a file, or a directory and what it holds) if no live process holds its
/// lock. Returns whether it was removed.
fn remove_if_unheld(path: &Path, dir: bool) -> io::Result<bool> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(false),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    if !same_file(&f, path)? {
        return Ok(false);
    }
    if dir {
        fs::remove_dir_all(path)?
    } else {
        fs::remove_file(path)?
    }
    Ok(true)
}

/// A temporary directory under the store's `tmp/`, locked while it lives and removed
/// with what it holds when dropped (a killed process leaves it to the next run's
/// [`Store::remove_litter`]).
pub struct TempDir {
    dir: tempfile::TempDir,
    _lock: File,
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Store {
    /// A fresh temporary directory on the store's file system (so its content can be
    /// renamed into the store).
    pub fn temp_dir(&self) -> Result<TempDir> {
        let tmp = self.layout.tmp_dir();
        fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        loop {
            let dir = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .suffix(TEMP_SUFFIX)
                .tempdir_in(&tmp)
                .with_context(|| format!("creating a temporary directory in {}", tmp.display()))?;
            let lock = File::open(dir.path()).with_context(|| format!("opening {}", dir.path().display()))?;
            if lock_held(&lock, dir.path()).with_context(|| format!("locking {}", dir.path().display()))? {
                return Ok(TempDir { dir, _lock: lock });
            }
        }
    }

    /// Remove what killed runs left in this store or cache: temporary files and
    /// directories (`.airlock-*.tmp`) beside their destinations and in `tmp/`, and the
    /// lock files of download slots (`partial/*.lock`), each only if no live process holds
    /// it. Blobs, git repositories and resumable downloads are not touched. Returns how
    /// many entries were removed.
    pub fn remove_litter(&self) -> Result<usize> {
        let root = self.root();
        let partial = self.layout.partial_dir();
        let skip: Vec<PathBuf> = vec![self.layout.blobs_dir(), self.layout.git_dir(), self.layout.staging_root()];
        let mut removed = 0;
        let mut walk = walkdir::WalkDir::new(root).follow_links(false).min_depth(1).into_iter();
        while let Some(entry) = walk.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.io_error().is_some_and(|io| io.kind() == io::ErrorKind::NotFound) => continue,
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("looking for litter in {}", root.display())));
                }
            };
            let path = entry.path();
            let kind = entry.file_type();
            if kind.is_dir() && skip.iter().any(|s| s == path) {
                walk.skip_current_dir();
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            let litter = if is_temp_name(&name) {
                kind.is_file() || kind.is_dir()
            } else {
                kind.is_file() && name.ends_with(".lock") && path.parent() == Some(partial.as_path())
            };
            if !litter {
                continue;
            }
            if kind.is_dir() {
                walk.skip_current_dir();
            }
            if remove_if_unheld(path, kind.is_dir()).with_context(|| format!("removing {}", path.display()))? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".airlock-Ab12Cd.tmp"));
        assert!(is_temp_name(".airlock-0123456789abcdef.tmp"));
        assert!(is_temp_name(".airlock-Ab12Cd"), "the names of earlier versions");
        assert!(!is_temp_name(".airlock-.tmp"));
        assert!(!is_temp_name(".airlock-notes.txt"));
        assert!(!is_temp_name(".airlock-a-b.tmp"));
        assert!(!is_temp_name("airlock-Ab12Cd.tmp"));
        assert!(!is_temp_name(".airlock-Ab12C"));
    }

    #[test]
    fn litter_goes_and_live_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let repo = dir.path().join("repository/raw/d");
        fs::create_dir_all(&repo).unwrap();
        // A killed writer's temporary file, and a live one (this process holds its lock).
        let dead = repo.join(".airlock-dead01.tmp");
        File::create(&dead).unwrap();
        let live = super::super::AtomicFile::new(&repo.join("x")).unwrap();
        // A user's file that merely looks similar, and a blob.
        let keep = repo.join(".airlock-notes.txt");
        File::create(&keep).unwrap();
        let (d, _) = store.insert(&mut &b"blob"[..], None, "t").unwrap();
        // A killed mirror's download slot lock, and a held one.
        let stale = dir.path().join("partial/aaaa.lock");
        fs::create_dir_all(stale.parent().unwrap()).unwrap();
        File::create(&stale).unwrap();
        let held = store.partial("bbbb").unwrap();
        let tmp = store.temp_dir().unwrap();
        let dead_dir = dir.path().join("tmp/.airlock-deaddir.tmp");
        fs::create_dir_all(dead_dir.join("objects")).unwrap();

        assert_eq!(store.remove_litter().unwrap(), 3);
        assert!(!dead.exists() && !stale.exists() && !dead_dir.exists());
        assert!(keep.exists() && store.contains(&d) && tmp.path().is_dir());
        assert!(dir.path().join("partial/bbbb.lock").exists());
        live.commit().unwrap();
        drop(held);
        assert!(!dir.path().join("partial/bbbb.lock").exists(), "a slot removes its lock file when done");
        assert_eq!(store.remove_litter().unwrap(), 0);
    }
}
