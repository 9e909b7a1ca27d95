//! Files that appear whole or not at all: write to a temporary file in the destination's
//! directory, fsync it, rename it over the destination, then fsync the directory.
//! A crash at any point leaves either the old file or the new one, never a torn one.
//!
//! A crash can leave the temporary file, `.airlock-XXXXXX.tmp`. Its writer holds an
//! exclusive lock on it while it lives, so the next run can tell litter (no holder) from a
//! file another process is writing, and removes only the litter
//! ([`super::Store::remove_litter`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Temporary files and directories are named `.airlock-<random>.tmp`.
pub const TEMP_PREFIX: &str = ".airlock-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// A file being written; it becomes visible at `dest` only on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Start writing `dest`, with the temporary file in `tmp_dir` (same filesystem).
    pub fn new_in(tmp_dir: &Path, dest: &Path) -> io::Result<Self> {
        fs::create_dir_all(tmp_dir)?;
        let tmp = loop {
            let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempfile_in(tmp_dir)?;
            // Removed as litter between its creation and the lock: make another.
            if super::litter::lock_held(tmp.as_file(), tmp.path())? {
                break tmp;
            }
        };
        let f = Self { tmp, dest: dest.to_path_buf() };
        // Temporary files are created 0600; what airlock publishes is world-readable
        // unless the caller says otherwise (secret keys are 0600).
        f.set_permissions(0o644)?;
        Ok(f)
    }

    /// Start writing `dest`, with the temporary file beside it.
    pub fn new(dest: &Path) -> io::Result<Self> {
        let dir = parent_of(dest);
        Self::new_in(&dir, dest)
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    pub fn set_permissions(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.tmp.path(), fs::Permissions::from_mode(mode))
    }

    /// fsync, rename into place, fsync the directory.
    pub fn commit(self) -> io::Result<()> {
        let dest = self.dest.clone();
        self.commit_to(&dest)
    }

    /// Like [`AtomicFile::commit`], to a destination chosen once the content is known.
    pub fn commit_to(self, dest: &Path) -> io::Result<()> {
        self.tmp.as_file().sync_all()?;
        super::hook::pause("atomic-commit");
        let dir = parent_of(dest);
        fs::create_dir_all(&dir)?;
        self.tmp.persist(dest).map_err(|e| e.error)?;
        sync_dir(&dir)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.as_file_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write a whole small file atomically.
pub fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::new(dest)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Rename `from` to `to` (same filesystem) and make the rename durable.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let dir = parent_of(to);
    fs::create_dir_all(&dir)?;
    #[allow(clippy::disallowed_methods)]
    fs::rename(from, to)?;
    sync_dir(&dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
