//! `SHA256SUMS`: the `sha256sum -c` view of a bundle, for auditors with coreutils only.
//! It is derived entirely from the manifest and its signature, so verify can rebuild it
//! and compare byte for byte: nothing in it can change meaning unsigned.

use crate::digest::Digest;

use super::manifest::{MEMBER_MANIFEST, MEMBER_SIGNATURE, Manifest};

pub fn render(manifest: &Manifest, manifest_digest: &Digest, signature_digest: &Digest) -> Vec<u8> {
    let mut s = String::with_capacity(100 * (manifest.blobs.len() + 2));
    s.push_str(&format!("{}  {MEMBER_MANIFEST}\n", manifest_digest.hex()));
    s.push_str(&format!("{}  {MEMBER_SIGNATURE}\n", signature_digest.hex()));
    for (name, d) in manifest.evidence() {
        s.push_str(&format!("{}  {name}\n", d.digest.hex()));
    }
    for (name, bytes) in super::layout::members(manifest) {
        s.push_str(&format!("{}  {name}\n", Digest::of(&bytes).hex()));
    }
    for b in &manifest.blobs {
        s.push_str(&format!("{}  {}\n", b.digest.hex(), Manifest::blob_member(&b.digest)));
    }
    s.into_bytes()
}
