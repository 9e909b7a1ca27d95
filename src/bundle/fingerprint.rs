//! A cheap, keyed check that the bundle on the media is the one an import read in full
//! before: for each file of the bundle (the one `.airlock` file, or each split volume) its
//! size and an HMAC-SHA256, under a key only the store knows, of its first and last MiB
//! and of 64 blocks of 4 KiB at offsets drawn from that key. A truncated or padded copy
//! always differs (the size); an altered one differs unless every changed byte falls
//! outside the sampled blocks, and which blocks are sampled cannot be known without the
//! store's key. It is not a proof: `airlock import --verify-all` reads and hashes every
//! byte whatever the record says.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::reader::Source;

const EDGE: u64 = 1 << 20;
const BLOCKS: u64 = 64;
const BLOCK: u64 = 4096;

/// One file of a bundle as an import saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Print {
    pub name: String,
    pub size: u64,
    /// Hex HMAC-SHA256 of the sampled bytes.
    pub check: String,
}

/// The prints of every file of the bundle at `path` (no signature is checked here), or
/// `None` for an unpacked directory, which has no fingerprint.
pub fn of(path: &Path, key: &[u8]) -> Result<Option<Vec<Print>>> {
    let source = Source::open(path, None).map_err(anyhow::Error::new)?;
    let files: Vec<(String, std::path::PathBuf)> = match &source {
        Source::Dir(_) => return Ok(None),
        Source::File { path, .. } => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            vec![(name, path.clone())]
        }
        Source::Volumes { dir, list, .. } => list.volumes.iter().map(|v| (v.name.clone(), dir.join(&v.name))).collect(),
    };
    files.into_iter().map(|(name, p)| print(&name, &p, key)).collect::<Result<Vec<_>>>().map(Some)
}

fn print(name: &str, path: &Path, key: &[u8]) -> Result<Print> {
    let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let size = f.metadata().with_context(|| format!("reading {}", path.display()))?.len();
    let mac = || Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    let mut ranges = vec![(0, EDGE.min(size)), (size.saturating_sub(EDGE), size)];
    if size > 0 {
        for i in 0..BLOCKS {
            let mut m = mac();
            m.update(format!("offset\0{name}\0{size}\0{i}").as_bytes());
            let r = m.finalize().into_bytes();
            let at = u64::from_be_bytes(r[..8].try_into().expect("8 bytes")) % size;
            ranges.push((at, (at + BLOCK).min(size)));
        }
    }
    let mut m = mac();
    m.update(format!("airlock bundle print v1\0{name}\0{size}\0").as_bytes());
    let mut buf = vec![0u8; EDGE as usize];
    for (start, end) in ranges {
        let want = usize::try_from(end - start).expect("at most a MiB");
        f.read_exact_at(&mut buf[..want], start).with_context(|| format!("reading {}", path.display()))?;
        m.update(&start.to_be_bytes());
        m.update(&buf[..want]);
    }
    let check = m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Print { name: name.to_string(), size, check })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_in_a_sampled_block_or_a_cut_changes_the_print() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.airlock");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        crate::store::atomic::write(&p, &data).unwrap();
        let a = print("x.airlock", &p, b"k").unwrap();
        assert_eq!(a, print("x.airlock", &p, b"k").unwrap());
        assert_ne!(a.check, print("x.airlock", &p, b"other key").unwrap().check);
        let mut changed = data.clone();
        changed[data.len() - 10] ^= 1;
        crate::store::atomic::write(&p, &changed).unwrap();
        assert_ne!(a, print("x.airlock", &p, b"k").unwrap());
        crate::store::atomic::write(&p, &data[..data.len() - 1]).unwrap();
        assert_ne!(a.size, print("x.airlock", &p, b"k").unwrap().size);
    }
}
