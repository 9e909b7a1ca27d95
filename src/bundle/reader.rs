//! Opening a bundle for reading, in any of the forms it travels in: one file
//! (`x.airlock`, zstd or plain tar), split volumes (name the first volume or the
//! `.volumes` list), or a directory it was unpacked into. A stream is decompressed on its
//! own thread, so decompression and hashing use both cores.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use super::BundleError;
use super::sign::PublicKey;
use super::split::{VOLUMES_MEDIA_TYPE, Volume, VolumeList, VolumeReader};
use super::verify::check_signature;

/// The first error seen at a layer below the tar reader (a volume, the disk, zstd), kept
/// so it can be reported as itself rather than as the I/O error tar turns it into.
pub type Fault = Arc<Mutex<Option<BundleError>>>;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const CHUNK: usize = 1 << 20;

/// Where a bundle is.
pub enum Source {
    /// One file holding the whole stream.
    File { path: PathBuf, size: u64 },
    /// Split volumes, with their list and its signature.
    Volumes { dir: PathBuf, list: VolumeList, list_bytes: Vec<u8>, signature: String },
    /// An unpacked bundle.
    Dir(PathBuf),
}

impl Source {
    /// Open a bundle. With `trusted`, a volume list must be signed by one of those keys
    /// before it is even parsed.
    pub fn open(path: &Path, trusted: Option<&[PublicKey]>) -> Result<Self, BundleError> {
        let meta = std::fs::metadata(path).map_err(|e| BundleError::Unreadable(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let list_path = if name.ends_with(".airlock.volumes") {
            Some(path.to_path_buf())
        } else if let Some((stem, num)) = name.rsplit_once(".airlock.")
            && num.len() == 3
            && num.bytes().all(|b| b.is_ascii_digit())
        {
            Some(dir.join(format!("{stem}.airlock.volumes")))
        } else {
            None
        };
        let Some(list_path) = list_path else {
            return Ok(Source::File { path: path.to_path_buf(), size: meta.len() });
        };
        let list_bytes = read_capped(&list_path, MAX_VOLUME_LIST)
            .map_err(|e| BundleError::NotABundle(format!("volume list {} cannot be read: {e}", list_path.display())))?;
        let sig_path = PathBuf::from(format!("{}.minisig", list_path.display()));
        let signature = read_capped(&sig_path, super::verify::MAX_SIGNATURE)
            .and_then(|b| String::from_utf8(b).map_err(|_| io::Error::other("not text")))
            .map_err(|e| BundleError::NotAuthentic(format!("volume list signature {}: {e}", sig_path.display())))?;
        if let Some(keys) = trusted {
            let what = list_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            check_signature(&list_bytes, &signature, keys, &what)?;
        }
        let list: VolumeList = serde_json::from_slice(&list_bytes)
            .map_err(|e| BundleError::NotABundle(format!("{} is not a volume list: {e}", list_path.display())))?;
        if list.media_type != VOLUMES_MEDIA_TYPE || list.schema_version != 1 {
            return Err(BundleError::NotABundle(format!("{} is not a version 1 volume list", list_path.display())));
        }
        Ok(Source::Volumes { dir, list, list_bytes, signature })
    }

    /// Bytes in the stream (for progress).
    pub fn stream_len(&self) -> Option<u64> {
        match self {
            Source::File { size, .. } => Some(*size),
            Source::Volumes { list, .. } => Some(list.size),
            Source::Dir(_) => None,
        }
    }

    /// Check every volume is present with its listed size, and that no other file on the
    /// media looks like one of its volumes, before anything is read.
    pub fn check_volumes_present(&self) -> Result<(), BundleError> {
        let Source::Volumes { dir, list, .. } = self else { return Ok(()) };
        for (i, v) in list.volumes.iter().enumerate() {
            check_volume_name(v)?;
            let want = super::split::volume_name(&list.bundle, i + 1);
            if v.name != want {
                return Err(BundleError::Corrupt(format!(
                    "the volume list names volume {} `{}`, where `{want}` belongs",
                    i + 1,
                    v.name
                )));
            }
            let p = dir.join(&v.name);
            match std::fs::metadata(&p) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(BundleError::Corrupt(format!("volume {} is missing", v.name)));
                }
                Err(e) => return Err(BundleError::Unreadable(format!("volume {}: {e}", v.name))),
                Ok(m) if m.len() != v.size => {
                    return Err(BundleError::Corrupt(format!(
                        "volume {} is truncated or padded: expected {} bytes, found {}",
                        v.name,
                        v.size,
                        m.len()
                    )));
                }
                Ok(_) => {}
            }
        }
        check_no_extra_volumes(dir, list)
    }

    /// The raw (possibly compressed) stream, counting bytes into `bar`.
    fn raw(&self, fault: &Fault, bar: &ProgressBar) -> Result<Box<dyn Read + Send>, BundleError> {
        let inner: Box<dyn Read + Send> = match self {
            Source::File { path, .. } => {
                Box::new(File::open(path).map_err(|e| BundleError::Unreadable(format!("{}: {e}", path.display())))?)
            }
            Source::Volumes { dir, list, .. } => {
                let vols = list.volumes.iter().map(|v| (dir.join(&v.name), v.clone())).collect();
                Box::new(VolumeReader::new(vols, fault.clone()))
            }
            Source::Dir(_) => unreachable!("directories are not streams"),
        };
        Ok(Box::new(Watched { inner, fault: fault.clone(), bar: bar.clone(), what: self.describe() }))
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File { path, .. } => path.display().to_string(),
            Source::Volumes { dir, list, .. } => dir.join(format!("{}.airlock.*", list.bundle)).display().to_string(),
            Source::Dir(p) => p.display().to_string(),
        }
    }

    /// The tar stream: decompressed on a second thread when it is zstd.
    pub fn tar_stream(&self, fault: &Fault, bar: &ProgressBar) -> Result<Box<dyn Read>, BundleError> {
        let mut raw = self.raw(fault, bar)?;
        let mut head = Vec::with_capacity(512);
        (&mut raw).take(512).read_to_end(&mut head).map_err(|e| io_fault(fault, e))?;
        let stream = Cursor::new(head.clone()).chain(raw);
        if head.starts_with(&ZSTD_MAGIC) {
            return Ok(Box::new(decompress_in_background(stream, fault.clone())));
        }
        if head.len() >= 262 && &head[257..262] == b"ustar" {
            return Ok(Box::new(stream));
        }
        // Split volumes promise their bytes: an unknown head in a listed volume is a damaged
        // volume (exit 1), which reading to the end of the first volume names.
        if let Source::Volumes { list, .. } = self
            && let Some(first) = list.volumes.first()
        {
            let mut raw = stream;
            let _ = io::copy(&mut (&mut raw).take(first.size + 1), &mut io::sink());
            if let Some(f) = fault.lock().unwrap().clone() {
                return Err(f);
            }
        }
        Err(BundleError::NotABundle(format!("{} is neither a zstd stream nor a tar archive", self.describe())))
    }
}

/// The most a volume list can need: 999 volumes of about 150 bytes each.
pub const MAX_VOLUME_LIST: u64 = 1 << 20;

/// Read a small file whole, refusing one larger than `limit` before reading it.
fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    if len > limit {
        return Err(io::Error::other(format!("it is {len} bytes, more than the {limit} it may have")));
    }
    let mut v = Vec::with_capacity(len as usize);
    f.take(limit).read_to_end(&mut v)?;
    Ok(v)
}

/// `cat NAME.airlock.[0-9]*` is the documented way to join volumes by hand: a file that
/// glob matches but the signed list does not name would be joined into a bundle airlock
/// called good, so it is an error that names the file.
fn check_no_extra_volumes(dir: &Path, list: &VolumeList) -> Result<(), BundleError> {
    let shown = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let entries = std::fs::read_dir(shown).map_err(|e| BundleError::Unreadable(format!("{}: {e}", shown.display())))?;
    let prefix = format!("{}.airlock.", list.bundle);
    let mut extra: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.strip_prefix(&prefix).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())))
        .filter(|n| !list.volumes.iter().any(|v| v.name == *n))
        .collect();
    extra.sort();
    if let Some(first) = extra.first() {
        let more = if extra.len() > 1 { format!(" (and {} more)", extra.len() - 1) } else { String::new() };
        return Err(BundleError::Corrupt(format!(
            "{first}{more} is beside the volumes of {} but not in their signed volume list: \
             `cat {prefix}[0-9]*` would join it into the bundle; move it away",
            list.bundle
        )));
    }
    Ok(())
}

fn check_volume_name(v: &Volume) -> Result<(), BundleError> {
    if v.name.contains('/') || v.name.starts_with('.') || v.name.is_empty() {
        return Err(BundleError::Corrupt(format!("volume list names an unsafe file `{}`", v.name)));
    }
    Ok(())
}

/// The fault recorded below, or this I/O error as corruption.
pub fn io_fault(fault: &Fault, e: io::Error) -> BundleError {
    if let Some(f) = fault.lock().unwrap().clone() {
        return f;
    }
    BundleError::Corrupt(format!("truncated or damaged archive: {e}"))
}

/// Counts bytes for progress and records read errors of the media itself.
struct Watched {
    inner: Box<dyn Read + Send>,
    fault: Fault,
    bar: ProgressBar,
    what: String,
}

impl Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bar.inc(n as u64);
                Ok(n)
            }
            Err(e) => {
                let mut f = self.fault.lock().unwrap();
                if f.is_none() {
                    *f = Some(BundleError::Unreadable(format!("{}: {e}", self.what)));
                }
                Err(e)
            }
        }
    }
}

/// The largest zstd window a bundle may need, as a power of two: 32 MiB. `airlock
/// export` writes frames with a window of at most 8 MiB (level 19); a frame that asks for
/// more is refused before the decoder allocates it, so a hostile header cannot make
/// verify hold a large window.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// Decompress `r` on a thread of its own; the returned reader yields the plain stream.
///
/// A bundle is exactly one zstd frame: the decoder stops at the end of the first frame,
/// and any byte after it (a second frame, a skippable frame, padding) is recorded as a
/// fault before the stream ends, so the reader of the tar stream sees it.
fn decompress_in_background(r: impl Read + Send + 'static, fault: Fault) -> ChannelReader {
    let (full_tx, full_rx): (SyncSender<(Vec<u8>, usize)>, _) = sync_channel(4);
    let (free_tx, free_rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
    std::thread::spawn(move || {
        let record = |e: BundleError| {
            fault.lock().unwrap().get_or_insert(e);
        };
        let mut dec = match zstd::Decoder::new(r)
            .map(zstd::Decoder::single_frame)
            .and_then(|mut d| d.window_log_max(ZSTD_WINDOW_LOG_MAX).map(|()| d))
        {
            Ok(d) => d,
            Err(e) => return record(BundleError::Corrupt(format!("zstd: {e}"))),
        };
        loop {
            let mut buf = free_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
            let mut n = 0;
            while n < buf.len() {
                match dec.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // dropping full_tx ends the stream; the fault explains why
                        return record(BundleError::Corrupt(format!("zstd stream is truncated or damaged: {e}")));
                    }
                }
            }
            if n == 0 {
                break;
            }
            if full_tx.send((buf, n)).is_err() {
                return;
            }
        }
        // The frame ended (its checksum checked): nothing may follow it.
        let mut rest = dec.finish();
        match io::BufRead::fill_buf(&mut rest) {
            Ok([]) => {}
            Ok(after) => record(BundleError::Corrupt(format!(
                "{} after the zstd frame: a bundle is exactly one zstd frame and nothing after it",
                trailing_kind(after)
            ))),
            Err(e) => record(BundleError::Unreadable(format!("reading after the zstd frame: {e}"))),
        }
    });
    ChannelReader { rx: full_rx, free: free_tx, cur: Vec::new(), len: 0, pos: 0 }
}

/// What follows a zstd frame, in words.
fn trailing_kind(after: &[u8]) -> &'static str {
    if after.starts_with(&ZSTD_MAGIC) {
        "a second zstd frame"
    } else if after.len() >= 4 && after[0] & 0xF0 == 0x50 && after[1..4] == [0x2A, 0x4D, 0x18] {
        "a skippable zstd frame"
    } else if after.iter().all(|&b| b == 0) {
        "zero padding"
    } else {
        "data"
    }
}

struct ChannelReader {
    rx: Receiver<(Vec<u8>, usize)>,
    free: Sender<Vec<u8>>,
    cur: Vec<u8>,
    len: usize,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            let Ok((next, len)) = self.rx.recv() else { return Ok(0) };
            let old = std::mem::replace(&mut self.cur, next);
            if !old.is_empty() {
                let _ = self.free.send(old);
            }
            self.len = len;
            self.pos = 0;
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
