//! Reading and forging tar streams byte by byte, so tamper tests can derive every bad
//! bundle from one good one: edit a member, add `../x`, a symlink, a duplicate...

use std::io::Read;

/// Decompress if zstd, else return as is.
pub fn plain(bytes: &[u8]) -> Vec<u8> {
    if bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        let mut out = Vec::new();
        zstd::Decoder::new(bytes).unwrap().read_to_end(&mut out).unwrap();
        out
    } else {
        bytes.to_vec()
    }
}

/// A member to write with [`build`]: any name bytes, any type, and a header that may
/// declare another size than the data it is followed by.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
    pub kind: u8,
    pub link: Vec<u8>,
    /// The size the header declares, when it is not `data.len()`.
    pub declared: Option<u64>,
}

impl Member {
    pub fn file(name: &str, data: Vec<u8>) -> Self {
        Self { name: name.as_bytes().to_vec(), data, kind: b'0', link: Vec::new(), declared: None }
    }
}

/// The regular-file members of a plain tar: (name, data).
pub fn members(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    parse(tar).into_iter().map(|m| (String::from_utf8_lossy(&m.name).into_owned(), m.data)).collect()
}

/// Every member of a plain ustar stream (no long names needed for bundles).
pub fn parse(tar: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let prefix_end = h[345..500].iter().position(|&b| b == 0).unwrap_or(155);
        let mut name = Vec::new();
        if prefix_end > 0 {
            name.extend_from_slice(&h[345..345 + prefix_end]);
            name.push(b'/');
        }
        name.extend_from_slice(&h[..name_end]);
        let size_str = String::from_utf8_lossy(&h[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let size = usize::from_str_radix(&size_str, 8).unwrap_or(0);
        let link_end = h[157..257].iter().position(|&b| b == 0).unwrap_or(100);
        let data = tar[off + 512..off + 512 + size].to_vec();
        out.push(Member { name, data, kind: h[156], link: h[157..157 + link_end].to_vec(), declared: None });
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// A ustar header for a member named `name` (verbatim bytes) that declares `size`.
pub fn header(name: &[u8], size: u64, kind: u8, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    assert!(name.len() <= 100, "test names fit the ustar name field");
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Write members as a plain ustar stream, names verbatim (even `../x` or `/etc/x`),
/// ended by the two zero blocks.
pub fn build(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        out.extend_from_slice(&header(&m.name, m.declared.unwrap_or(m.data.len() as u64), m.kind, &m.link));
        out.extend_from_slice(&m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// zstd-compress a stream as one frame with a checksum, as `airlock export` does.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut e = zstd::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut e, bytes).unwrap();
    e.finish().unwrap()
}
