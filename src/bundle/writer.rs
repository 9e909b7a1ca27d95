//! Writes a bundle: a tar stream, zstd-compressed by default, with members in the order
//! a reader needs to verify while streaming: `manifest.json`, `manifest.json.minisig`,
//! `SHA256SUMS`, `sbom.cdx.json` and `provenance.intoto.json` (whose digests the manifest
//! signs), the OCI layout files with images, then `blobs/sha256/<hex>` sorted by digest.
//!
//! Deterministic: fixed member order, owners, modes and mtimes (the lock's resolution
//! time), a deterministic signature, and zstd's multithreaded mode, whose output does
//! not depend on the number of workers. The same lock and cache give the same bytes.
//!
//! Each blob is read once from the cache and hashed on the way into the tar stream, so a
//! cache file that rotted since it was fetched is caught here, not at the site. Blobs are
//! read in [`IO_BUF`] (1 MiB) pieces into one reused buffer and written into the encoder
//! a piece at a time (no 8 KiB copy loop in between); zstd's multithreaded mode cuts its
//! jobs by input position only, so the bytes do not depend on the write sizes either.
//!
//! The bundle is fsynced before it is renamed into place. So that this last fsync does not
//! write the whole bundle to disk while every core waits, a helper thread asks the kernel
//! to write back each [`WRITEBACK_EVERY`] bytes as they are written (`fdatasync` on a
//! second handle of the same file), overlapping the disk with compression.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use crate::digest::{Digest, Hasher};
use crate::store::{AtomicFile, Store};

use super::manifest::{MEMBER_MANIFEST, MEMBER_SIGNATURE, MEMBER_SUMS, Manifest};
use super::split::{SplitWriter, VOLUMES_MEDIA_TYPE, Volume, VolumeList};

const IO_BUF: usize = 1 << 20;

/// Bytes of bundle written between two early write-backs (see the module's documentation).
const WRITEBACK_EVERY: u64 = 64 << 20;

/// How the tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd(i32),
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "zstd" => Ok(Self::Zstd(3)),
            _ => match s.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(l)) if (1..=19).contains(&l) => Ok(Self::Zstd(l)),
                _ => Err(format!("`{s}`: use `none`, `zstd` or `zstd:LEVEL` with LEVEL from 1 to 19")),
            },
        }
    }
}

pub struct WriteOptions<'a> {
    pub out_dir: &'a Path,
    pub compression: Compression,
    pub split: Option<u64>,
    /// zstd worker threads (at least 1; output does not depend on it).
    pub threads: u32,
}

/// What was written.
pub struct Written {
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    pub volumes: Option<Vec<Volume>>,
}

enum Sink {
    One(AtomicFile, PathBuf, Writeback),
    Split(SplitWriter),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::One(f, _, wb) => {
                let n = f.write(b)?;
                wb.wrote(n as u64);
                Ok(n)
            }
            Sink::Split(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Write the bundle for `manifest` (already signed: `signature` is the `.minisig` text),
/// with the named members the manifest lists the digests of (`evidence`: the SBOM and the
/// provenance, by member name), reading its blobs from `store`. `sign_volumes` signs the
/// volume list of a split bundle.
#[allow(clippy::too_many_arguments)]
pub fn write_bundle(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    signature: &str,
    evidence: &[(&'static str, Vec<u8>)],
    store: &Store,
    opts: &WriteOptions,
    sign_volumes: &dyn Fn(&[u8]) -> String,
    bar: &ProgressBar,
) -> Result<Written> {
    let stem = manifest.id();
    let listed = manifest.evidence();
    if listed.len() != evidence.len()
        || listed
            .iter()
            .zip(evidence)
            .any(|((n, d), (name, bytes))| n != name || d.size != bytes.len() as u64 || d.digest != Digest::of(bytes))
    {
        bail!("the SBOM and provenance members do not match the manifest");
    }
    let manifest_digest = Digest::of(manifest_bytes);
    let sums = super::sums::render(manifest, &manifest_digest, &Digest::of(signature.as_bytes()));
    let mtime = humantime::parse_rfc3339(&manifest.created)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());

    let sink = match opts.split {
        None => {
            let path = opts.out_dir.join(format!("{stem}.airlock"));
            let mut f = AtomicFile::new(&path).with_context(|| format!("creating {}", path.display()))?;
            let wb = Writeback::start(f.file());
            Sink::One(f, path, wb)
        }
        Some(max) => Sink::Split(SplitWriter::new(opts.out_dir, &stem, max)),
    };
    let counted = Counting { inner: BufWriter::with_capacity(IO_BUF, sink), n: 0 };
    let sink = match opts.compression {
        Compression::None => {
            let mut tar = tar::Builder::new(counted);
            append_all(&mut tar, manifest, [manifest_bytes, signature.as_bytes(), &sums], evidence, store, mtime, bar)?;
            tar.into_inner()?
        }
        Compression::Zstd(level) => {
            let mut enc = zstd::Encoder::new(counted, level)?;
            enc.multithread(opts.threads.max(1))?;
            enc.include_checksum(true)?;
            let mut tar = tar::Builder::new(enc);
            append_all(&mut tar, manifest, [manifest_bytes, signature.as_bytes(), &sums], evidence, store, mtime, bar)?;
            tar.into_inner()?.finish()?
        }
    };
    let bytes = sink.n;
    let sink = sink.inner.into_inner().map_err(|e| e.into_error()).context("flushing the bundle")?;
    match sink {
        Sink::One(f, path, wb) => {
            wb.finish();
            f.commit().with_context(|| format!("writing {}", path.display()))?;
            remove_stale(opts.out_dir, &stem, std::slice::from_ref(&path))?;
            Ok(Written { files: vec![path], bytes, volumes: None })
        }
        Sink::Split(s) => {
            let volumes = s.finish().context("writing volumes")?;
            let list = VolumeList {
                media_type: VOLUMES_MEDIA_TYPE.into(),
                schema_version: 1,
                bundle: stem.clone(),
                manifest: manifest_digest,
                size: bytes,
                volumes: volumes.clone(),
            };
            let mut json = serde_json::to_vec_pretty(&list)?;
            json.push(b'\n');
            let list_path = opts.out_dir.join(format!("{stem}.airlock.volumes"));
            let sig_path = opts.out_dir.join(format!("{stem}.airlock.volumes.minisig"));
            crate::store::atomic::write(&sig_path, sign_volumes(&json).as_bytes())
                .with_context(|| format!("writing {}", sig_path.display()))?;
            crate::store::atomic::write(&list_path, &json)
                .with_context(|| format!("writing {}", list_path.display()))?;
            let mut files: Vec<_> = volumes.iter().map(|v| opts.out_dir.join(&v.name)).collect();
            files.push(list_path);
            files.push(sig_path);
            remove_stale(opts.out_dir, &stem, &files)?;
            Ok(Written { files, bytes, volumes: Some(volumes) })
        }
    }
}

/// An export with `--force` replaces an earlier export of the same bundle in the same
/// directory: remove its files that this one did not write (a whole file after a split,
/// surplus volumes), so that `cat NAME.airlock.[0-9]*` is always this bundle.
fn remove_stale(dir: &Path, stem: &str, keep: &[PathBuf]) -> Result<()> {
    for path in bundle_files(dir, stem)? {
        if !keep.iter().any(|k| k.file_name() == path.file_name()) {
            std::fs::remove_file(&path).with_context(|| format!("removing the stale {}", path.display()))?;
        }
    }
    Ok(())
}

/// The files of bundle `stem` in `dir`, in any of its forms: `STEM.airlock`, its volumes
/// `STEM.airlock.NNN` and their list and signature. These are what an export of `stem`
/// into `dir` writes or replaces.
pub fn bundle_files(dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let whole = format!("{stem}.airlock");
    let prefix = format!("{stem}.airlock.");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let ours = name == whole
            || name.strip_prefix(&prefix).is_some_and(|rest| {
                rest.bytes().all(|b| b.is_ascii_digit()) || rest == "volumes" || rest == "volumes.minisig"
            });
        if ours {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn header(path: &str, size: u64, mtime: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

#[allow(clippy::too_many_arguments)]
fn append_all<W: Write>(
    tar: &mut tar::Builder<W>,
    manifest: &Manifest,
    [manifest_bytes, signature, sums]: [&[u8]; 3],
    evidence: &[(&'static str, Vec<u8>)],
    store: &Store,
    mtime: u64,
    bar: &ProgressBar,
) -> Result<()> {
    let head = [(MEMBER_MANIFEST, manifest_bytes), (MEMBER_SIGNATURE, signature), (MEMBER_SUMS, sums)];
    let named = evidence.iter().map(|(n, b)| (*n, b.as_slice()));
    for (name, bytes) in head.into_iter().chain(named) {
        tar.append(&header(name, bytes.len() as u64, mtime)?, bytes).with_context(|| format!("writing {name}"))?;
    }
    for (name, bytes) in super::layout::members(manifest) {
        tar.append(&header(name, bytes.len() as u64, mtime)?, bytes.as_slice())
            .with_context(|| format!("writing {name}"))?;
    }
    let mut buf = vec![0u8; IO_BUF];
    for b in &manifest.blobs {
        let mut file: File = store.open_blob(&b.digest)?;
        let len = file.metadata()?.len();
        if len != b.size {
            bail!("cache blob {} is {len} bytes, the lock says {}: run `airlock mirror` again", b.digest, b.size);
        }
        let member = Manifest::blob_member(&b.digest);
        let out = tar.get_mut();
        out.write_all(header(&member, b.size, mtime)?.as_bytes()).with_context(|| format!("writing {member}"))?;
        let mut hasher = Hasher::new();
        loop {
            let n = read_full(&mut file, &mut buf).with_context(|| format!("reading cache blob {}", b.digest))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if hasher.bytes() > b.size {
                break; // grew since its size was checked: the digest check below says so
            }
            out.write_all(&buf[..n]).with_context(|| format!("writing {member}"))?;
        }
        let (got, n) = hasher.finish();
        if got != b.digest || n != b.size {
            bail!("cache blob {} is corrupt (reads as {got}): delete it and run `airlock mirror` again", b.digest);
        }
        let pad = (512 - b.size % 512) % 512;
        out.write_all(&[0u8; 512][..pad as usize]).with_context(|| format!("writing {member}"))?;
        bar.inc(b.size);
    }
    Ok(())
}

/// Fill `buf` from `r` as far as it goes; fewer bytes only at the end of the file.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Early write-back of the bundle file: every [`WRITEBACK_EVERY`] bytes written, a helper
/// thread runs `fdatasync` on its own handle of the file while compression goes on. Best
/// effort: without a second handle, or on an error, the final fsync does all the work, as
/// before (that one's errors are reported).
struct Writeback {
    pending: u64,
    tx: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    fn start(file: &File) -> Self {
        let Ok(handle) = file.try_clone() else { return Self { pending: 0, tx: None, thread: None } };
        // One request queued at most: a slow disk coalesces them instead of piling up.
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("airlock-writeback".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    let _ = handle.sync_data();
                }
            })
            .ok();
        Self { pending: 0, tx: thread.as_ref().map(|_| tx), thread }
    }

    fn wrote(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= WRITEBACK_EVERY {
            self.pending = 0;
            if let Some(tx) = &self.tx {
                let _ = tx.try_send(());
            }
        }
    }

    /// Stop the helper, after the write-back it is doing.
    fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
