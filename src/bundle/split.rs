//! Volumes for removable media. A split bundle is the same byte stream cut into
//! `<name>-<version>.airlock.001`, `.002`, ... (so `cat` of the volumes is the bundle),
//! plus `<name>-<version>.airlock.volumes`: a small JSON list of each volume's size and
//! SHA-256, signed like the manifest (`.volumes.minisig`). A missing or short volume is
//! named before anything is read; a damaged one when its last byte is read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};
use crate::store::AtomicFile;

use super::BundleError;
use super::reader::Fault;

pub const VOLUMES_MEDIA_TYPE: &str = "application/vnd.airlock.bundle.volumes.v1+json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeList {
    pub media_type: String,
    pub schema_version: u32,
    /// `<name>-<version>` of the bundle.
    pub bundle: String,
    /// The bundle's manifest digest.
    pub manifest: Digest,
    /// Total bytes of the stream (sum of the volumes).
    pub size: u64,
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub size: u64,
    pub digest: Digest,
}

pub fn volume_name(stem: &str, index: usize) -> String {
    format!("{stem}.airlock.{index:03}")
}

/// Parse sizes like `4GiB`, `700MB`, `1048576`, `4G` (binary units for K/M/G/T).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size (try 4GiB, 700MiB or a byte count)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(format!("`{s}`: unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")),
    };
    let v = n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))?;
    if v == 0 {
        return Err("a volume size must be more than 0 bytes".into());
    }
    Ok(v)
}

/// Writes a stream into fixed-size volumes, each hashed as written and renamed into place
/// only by [`SplitWriter::finish`].
pub struct SplitWriter {
    dir: PathBuf,
    stem: String,
    max: u64,
    current: Option<(AtomicFile, Hasher, PathBuf)>,
    done: Vec<(AtomicFile, PathBuf, Volume)>,
}

impl SplitWriter {
    pub fn new(dir: &Path, stem: &str, max: u64) -> Self {
        Self { dir: dir.to_path_buf(), stem: stem.to_string(), max, current: None, done: Vec::new() }
    }

    fn close_current(&mut self) {
        if let Some((f, h, path)) = self.current.take() {
            let (digest, size) = h.finish();
            let name = path.file_name().expect("volume path has a name").to_string_lossy().into_owned();
            self.done.push((f, path, Volume { name, size, digest }));
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.done.len() + usize::from(self.current.is_some()) >= 999 {
            return Err(io::Error::other(format!(
                "more than 999 volumes of {} bytes: choose a larger --split",
                self.max
            )));
        }
        self.close_current();
        let path = self.dir.join(volume_name(&self.stem, self.done.len() + 1));
        self.current = Some((AtomicFile::new(&path)?, Hasher::new(), path));
        Ok(())
    }

    /// Close the last volume and make every volume visible. Returns their list.
    pub fn finish(mut self) -> io::Result<Vec<Volume>> {
        if self.current.is_none() && self.done.is_empty() {
            self.rotate()?;
        }
        self.close_current();
        let mut out = Vec::with_capacity(self.done.len());
        for (f, path, v) in self.done {
            f.commit_to(&path)?;
            out.push(v);
        }
        Ok(out)
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.as_ref().is_none_or(|c| c.1.bytes() >= self.max) {
            self.rotate()?;
        }
        let (f, h, _) = self.current.as_mut().unwrap();
        let room = (self.max - h.bytes()) as usize;
        let n = f.write(&buf[..buf.len().min(room)])?;
        h.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the volumes of a split bundle in order as one stream, checking each volume's
/// size and digest as its last byte is read. A failure is recorded in `fault` (so the
/// caller can name the volume) and surfaces as an I/O error.
pub struct VolumeReader {
    vols: Vec<(PathBuf, Volume)>,
    idx: usize,
    file: Option<File>,
    hasher: Hasher,
    fault: Fault,
}

impl VolumeReader {
    pub fn new(vols: Vec<(PathBuf, Volume)>, fault: Fault) -> Self {
        Self { vols, idx: 0, file: None, hasher: Hasher::new(), fault }
    }

    fn fail(&self, err: BundleError) -> io::Error {
        let msg = err.to_string();
        self.fault.lock().unwrap().get_or_insert(err);
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }
}

impl Read for VolumeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.idx >= self.vols.len() {
                return Ok(0);
            }
            if self.file.is_none() {
                let (p, _) = &self.vols[self.idx];
                self.file = Some(
                    File::open(p)
                        .map_err(|e| self.fail(BundleError::Unreadable(format!("volume {}: {e}", p.display()))))?,
                );
            }
            let (_, v) = &self.vols[self.idx];
            let remaining = v.size.saturating_sub(self.hasher.bytes());
            let n = if remaining == 0 {
                0
            } else {
                let want = buf.len().min(remaining as usize);
                self.file.as_mut().unwrap().read(&mut buf[..want])?
            };
            if n > 0 {
                self.hasher.update(&buf[..n]);
                return Ok(n);
            }
            // End of this volume: it must be exactly as long as listed and hash as listed.
            let mut extra = [0u8; 1];
            let (_, v) = &self.vols[self.idx];
            let (name, size, digest) = (v.name.clone(), v.size, v.digest);
            let more = self.file.as_mut().unwrap().read(&mut extra)?;
            let (got, len) = std::mem::take(&mut self.hasher).finish();
            if len != size || more != 0 {
                let actual = if more != 0 { format!("more than {size}") } else { len.to_string() };
                return Err(self.fail(BundleError::Corrupt(format!(
                    "volume {name} is truncated or padded: expected {size} bytes, got {actual}"
                ))));
            }
            if got != digest {
                return Err(
                    self.fail(BundleError::Corrupt(format!("volume {name} is damaged: expected {digest}, got {got}")))
                );
            }
            self.file = None;
            self.idx += 1;
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("700MB"), Ok(700_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn split_boundaries_and_reassembly() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for max in [11u64, 999, 1000, 3333, 10_000, 20_000] {
            let sub = dir.path().join(max.to_string());
            std::fs::create_dir_all(&sub).unwrap();
            let mut w = SplitWriter::new(&sub, "b-1", max);
            for chunk in data.chunks(777) {
                w.write_all(chunk).unwrap();
            }
            let vols = w.finish().unwrap();
            assert_eq!(vols.len() as u64, 10_000u64.div_ceil(max), "max {max}");
            assert!(vols.iter().all(|v| v.size <= max));
            let pairs = vols.iter().map(|v| (sub.join(&v.name), v.clone())).collect();
            let mut r = VolumeReader::new(pairs, Default::default());
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn refuses_a_thousandth_volume() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SplitWriter::new(dir.path(), "b-1", 1);
        let err = w.write_all(&[0u8; 1000]).unwrap_err();
        assert!(err.to_string().contains("more than 999 volumes"), "{err}");
    }

    #[test]
    fn damaged_volume_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SplitWriter::new(dir.path(), "b-1", 100);
        w.write_all(&[7u8; 250]).unwrap();
        let vols = w.finish().unwrap();
        let p2 = dir.path().join(&vols[1].name);
        let mut bytes = std::fs::read(&p2).unwrap();
        bytes[5] ^= 1;
        std::fs::write(&p2, bytes).unwrap();
        let fault = Fault::default();
        let pairs = vols.iter().map(|v| (dir.path().join(&v.name), v.clone())).collect();
        let mut r = VolumeReader::new(pairs, fault.clone());
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(fault.lock().unwrap().as_ref().unwrap().to_string().contains("b-1.airlock.002 is damaged"));
    }
}
