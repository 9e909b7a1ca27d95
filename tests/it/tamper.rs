//! Bad input, one case each, all derived from one good bundle: each must be refused with
//! a one-line error naming the member, blob or volume, the documented exit status
//! (1 corrupt, 3 not authentic, 4 not a bundle), and nothing written to the target.

use std::path::{Path, PathBuf};

use crate::common::TestContext;
use crate::common::tarhack::{self, Member};

const CORRUPT: i32 = 1;
const NOT_AUTHENTIC: i32 = 3;
const NOT_A_BUNDLE: i32 = 4;

struct Good {
    cx: TestContext,
    /// An uncompressed bundle.
    plain: PathBuf,
    /// The default, zstd-compressed bundle.
    zstd: PathBuf,
}

fn good() -> Good {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let plain = cx.bundle(&spec, "plain", &["--compression", "none"]).join("fixtures-1.0.airlock");
    let zstd = cx.bundle(&spec, "zstd", &[]).join("fixtures-1.0.airlock");
    Good { cx, plain, zstd }
}

impl Good {
    fn members(&self) -> Vec<Member> {
        tarhack::parse(&std::fs::read(&self.plain).unwrap())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.cx.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn forge(&self, name: &str, edit: impl FnOnce(&mut Vec<Member>)) -> PathBuf {
        let mut m = self.members();
        edit(&mut m);
        self.write(name, &tarhack::build(&m))
    }

    /// Both verify and import refuse it the same way; the store stays empty.
    #[track_caller]
    fn refused(&self, bundle: &Path, code: i32, needle: &str) {
        self.cx.run(&["verify", bundle.to_str().unwrap()]).fails(code, needle);
        self.cx.run(&["import", bundle.to_str().unwrap()]).fails(code, needle);
        assert_eq!(self.cx.store_files(), Vec::<String>::new(), "import wrote to the store");
        let j = self.cx.run(&["--json", "verify", bundle.to_str().unwrap()]);
        assert_eq!(j.code, code);
        assert_eq!(j.json()["ok"], false);
    }
}

fn blob_index(m: &[Member], hex_prefix: &str) -> usize {
    m.iter().position(|x| x.name.starts_with(format!("blobs/sha256/{hex_prefix}").as_bytes())).unwrap()
}

const HELLO: &str = "551befd9b46d0f6d48e27154c6a1ca126b7134b776d619b5bf72dc90355d758e";

#[test]
fn flipped_byte_in_a_blob() {
    let g = good();
    let bad = g.forge("flipped.airlock", |m| {
        let i = blob_index(m, HELLO);
        m[i].data[20] ^= 0x01;
    });
    g.refused(&bad, CORRUPT, &format!("blob sha256:{HELLO} is damaged"));
}

#[test]
fn flipped_byte_in_a_compressed_bundle() {
    let g = good();
    let mut bytes = std::fs::read(&g.zstd).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let bad = g.write("flipped.zst.airlock", &bytes);
    g.refused(&bad, CORRUPT, "corrupt");
}

#[test]
fn truncated_bundle() {
    let g = good();
    let bytes = std::fs::read(&g.zstd).unwrap();
    let bad = g.write("short.airlock", &bytes[..bytes.len() * 2 / 3]);
    g.refused(&bad, CORRUPT, "truncated");
    let bytes = std::fs::read(&g.plain).unwrap();
    let i = bytes.windows(HELLO.len()).rposition(|w| w == HELLO.as_bytes()).unwrap();
    let bad = g.write("short-plain.airlock", &bytes[..i + 600]);
    g.refused(&bad, CORRUPT, "truncated");
}

#[test]
fn truncated_or_missing_volume() {
    let g = good();
    let spec = g.cx.path("spec/airlock.yaml");
    let dir = g.cx.bundle(&spec, "vols", &["--split", "512"]);
    let first = dir.join("fixtures-1.0.airlock.001");
    let v2 = dir.join("fixtures-1.0.airlock.002");
    let keep = std::fs::read(&v2).unwrap();
    std::fs::write(&v2, &keep[..100]).unwrap();
    g.refused(&first, CORRUPT, "volume fixtures-1.0.airlock.002 is truncated");
    let mut flipped = keep.clone();
    flipped[7] ^= 1;
    std::fs::write(&v2, &flipped).unwrap();
    g.refused(&first, CORRUPT, "volume fixtures-1.0.airlock.002 is damaged");
    std::fs::write(&v2, &keep).unwrap();
    std::fs::remove_file(dir.join("fixtures-1.0.airlock.003")).unwrap();
    g.refused(&first, CORRUPT, "volume fixtures-1.0.airlock.003 is missing");
}

#[test]
fn signed_by_an_untrusted_key() {
    let g = good();
    let stranger = TestContext::new();
    stranger.key();
    stranger.run(&["verify", g.zstd.to_str().unwrap()]).fails(NOT_AUTHENTIC, "which is not trusted");
    stranger.run(&["import", g.zstd.to_str().unwrap()]).fails(NOT_AUTHENTIC, "which is not trusted");
    assert!(stranger.store_files().is_empty());
    // Removing trust takes effect at once.
    let id = g.cx.run(&["--json", "trust", "list"]).ok().json()[0]["keyId"].as_str().unwrap().to_string();
    g.cx.run(&["trust", "remove", &id]).ok();
    g.refused(&g.zstd, NOT_AUTHENTIC, &format!("signed by key {id}, which is not trusted"));
}

#[test]
fn manifest_edited_after_signing() {
    let g = good();
    let bad = g.forge("edited.airlock", |m| {
        let text = String::from_utf8(m[0].data.clone()).unwrap();
        m[0].data = text.replace("files/NOTICE.txt", "files/N0TICE.txt").into_bytes();
    });
    g.refused(&bad, NOT_AUTHENTIC, "manifest.json does not match its signature");
}

#[test]
fn unsafe_member_paths_links_and_duplicates() {
    let g = good();
    for (name, needle) in [("../x", "member ../x has an unsafe path"), ("/etc/x", "member /etc/x has an unsafe path")] {
        let bad = g.forge("escape.airlock", |m| m.push(Member::file(name, b"owned\n".to_vec())));
        g.refused(&bad, CORRUPT, needle);
    }
    let bad = g.forge("symlink.airlock", |m| {
        let mut l = Member::file("blobs/sha256/link", Vec::new());
        l.kind = b'2';
        l.link = b"/etc/passwd".to_vec();
        m.push(l);
    });
    g.refused(&bad, CORRUPT, "member blobs/sha256/link is a symlink");
    let bad = g.forge("dup.airlock", |m| {
        let i = blob_index(m, HELLO);
        let dup = m[i].clone();
        m.push(dup);
    });
    g.refused(&bad, CORRUPT, &format!("member blobs/sha256/{HELLO} appears twice"));
}

#[test]
fn blob_not_listed_and_listed_blob_missing() {
    let g = good();
    let extra = "0000000000000000000000000000000000000000000000000000000000000000";
    let bad = g.forge("extra.airlock", |m| m.push(Member::file(&format!("blobs/sha256/{extra}"), b"x".to_vec())));
    g.refused(&bad, CORRUPT, &format!("member blobs/sha256/{extra} is not listed in the manifest"));
    let bad = g.forge("missing.airlock", |m| {
        let i = blob_index(m, HELLO);
        m.remove(i);
    });
    g.refused(&bad, CORRUPT, &format!("blob sha256:{HELLO} listed in the manifest is missing"));
}

#[test]
fn blobs_out_of_order() {
    let g = good();
    let bad = g.forge("order.airlock", |m| {
        let blobs: Vec<usize> = (0..m.len()).filter(|&i| m[i].name.starts_with(b"blobs/")).collect();
        m.swap(blobs[0], blobs[1]);
    });
    g.refused(&bad, CORRUPT, "is out of order");
}

#[test]
fn not_a_bundle() {
    let g = good();
    let bad = g.write("random.airlock", &[0x42; 4096]);
    g.refused(&bad, NOT_A_BUNDLE, "neither a zstd stream nor a tar archive");
    let bad = g.forge("other.tar", |m| m[0].name = b"README".to_vec());
    g.refused(&bad, NOT_A_BUNDLE, "the first member is README, not manifest.json");
    g.cx.run(&["verify", g.cx.path("nope.airlock").to_str().unwrap()]).fails(NOT_A_BUNDLE, "nope.airlock");
}

#[test]
fn unpacked_directory_with_an_extra_file() {
    let g = good();
    let dir = g.cx.path("unpacked");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for m in g.members() {
        std::fs::write(dir.join(String::from_utf8(m.name).unwrap()), m.data).unwrap();
    }
    g.cx.run(&["verify", dir.to_str().unwrap()]).ok();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("blobs/sha256/evil")).unwrap();
    g.refused(&dir, CORRUPT, "member blobs/sha256/evil is a symlink");
    std::fs::remove_file(dir.join("blobs/sha256/evil")).unwrap();
    std::fs::remove_file(dir.join("manifest.json.minisig")).unwrap();
    g.refused(&dir, NOT_AUTHENTIC, "manifest.json.minisig");
}

#[test]
fn import_uses_the_stores_copy_of_blobs_it_already_holds() {
    let g = good();
    g.cx.run(&["import", g.plain.to_str().unwrap()]).ok();
    let bad = g.forge("flipped-again.airlock", |m| {
        let i = blob_index(m, HELLO);
        m[i].data[20] ^= 0x01;
    });
    // verify checks every byte of the bundle ...
    g.cx.run(&["verify", bad.to_str().unwrap()]).fails(CORRUPT, &format!("blob sha256:{HELLO} is damaged"));
    // ... import reads only what it does not hold: the damaged copy is never used.
    let r = g.cx.run(&["--json", "import", bad.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"], 0);
    let have = std::fs::read(g.cx.store().join("repository/raw/src/hello-1.0.tar.gz")).unwrap();
    assert_eq!(airlock::digest::Digest::of(&have).hex(), HELLO);
}
