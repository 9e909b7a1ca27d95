//! The one pass that decides whether a bundle can be trusted, and the only way to get a
//! [`VerifiedBundle`]: "import without verify" does not compile.
//!
//! In stream order: the first member must be `manifest.json` and the second its minisign
//! signature by a trusted key; the manifest must match the schema; `SHA256SUMS` must be
//! exactly what the manifest implies; the SBOM and the provenance must have the digests
//! the manifest signs (and the provenance's DSSE signature must be the signer's); then
//! every blob member must be listed, safe to
//! unpack, of the listed size and hash to its name; nothing may be missing, repeated or
//! extra. Blobs are hashed on worker threads while the main thread reads (and a second
//! thread decompresses), so both cores are busy and memory stays bounded by a fixed pool
//! of buffers, whatever the bundle's size.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use indicatif::ProgressBar;

use crate::digest::{Digest, Hasher};
use crate::relpath::RelPath;
use crate::store::{Staging, Store};

use super::BundleError;
use super::manifest::{
    self, BLOB_PREFIX, BlobDescriptor, MEMBER_MANIFEST, MEMBER_PROVENANCE, MEMBER_SIGNATURE, MEMBER_SUMS, Manifest,
};
use super::reader::{Fault, Source, io_fault};
use super::sign::{KeyId, PublicKey, Signature};

const CHUNK: usize = 1 << 20;
/// The largest `manifest.json` airlock reads: checked against the tar header before a
/// byte of it is read, so a hostile header cannot make verify allocate more (about
/// 30,000 Debian packages or 100,000 files fit).
pub const MAX_MANIFEST: u64 = 64 << 20;
pub const MAX_SIGNATURE: u64 = 4096;
/// The largest provenance envelope airlock reads whole (to check its DSSE signature); the
/// SBOM is hashed as it streams, whatever its size.
pub const MAX_PROVENANCE: u64 = 64 << 20;
/// Tar blocks: members are padded to them, and two zero blocks end the archive.
const BLOCK: u64 = 512;

/// A bundle whose signature, manifest and every byte have been checked.
#[derive(Debug)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    pub manifest_digest: Digest,
    pub signer: KeyId,
    /// Bytes read from the media.
    pub stream_bytes: u64,
    _sealed: Sealed,
}

/// Only this module can make one.
#[derive(Debug)]
struct Sealed;

impl VerifiedBundle {
    pub fn id(&self) -> String {
        self.manifest.id()
    }
}

/// What to do with blob bytes while they are checked.
pub enum BlobSink<'a> {
    /// Hash and drop (`airlock verify`).
    Discard,
    /// Also write blobs the store lacks into a staging area (`airlock import`). Every
    /// byte of the bundle is still read and hashed, blobs the store already holds
    /// included, so import refuses exactly what verify refuses; only the copy is skipped
    /// for those.
    Stage(&'a Store, &'a Staging),
    /// As `Stage`, and each blob's digest is sent on the channel as soon as its bytes
    /// hash to it and are staged (or the store already holds it), while later members
    /// are still being read: what an import pushes to a registry meanwhile. A blob that
    /// fails is never sent.
    StageAndTell(&'a Store, &'a Staging, Sender<Digest>),
}

impl BlobSink<'_> {
    /// Where confirmed digests go, if anywhere.
    fn teller(&self) -> Option<Sender<Digest>> {
        match self {
            BlobSink::StageAndTell(_, _, tx) => Some(tx.clone()),
            _ => None,
        }
    }
}

/// What the head of a bundle says, before its blobs are read.
pub struct Head {
    pub manifest_bytes: Vec<u8>,
    pub signature: String,
}

/// Check a signature over `msg` against the trusted keys.
pub fn check_signature(msg: &[u8], sig_text: &str, trusted: &[PublicKey], what: &str) -> Result<KeyId, BundleError> {
    if sig_text.trim().is_empty() {
        return Err(BundleError::NotAuthentic(format!("{what} is not signed: {what}.minisig is missing or empty")));
    }
    let sig = Signature::parse(sig_text).map_err(|e| BundleError::NotAuthentic(format!("{what}.minisig: {e:#}")))?;
    let id = sig.key_id();
    let Some(key) = trusted.iter().find(|k| k.id() == id) else {
        return Err(BundleError::NotAuthentic(format!(
            "{what} is signed by key {id}, which is not trusted (check its origin, then `airlock trust add KEY.pub`)"
        )));
    };
    key.verify(msg, &sig).map_err(|e| {
        BundleError::NotAuthentic(format!(
            "{what} does not match its signature by trusted key {id} ({e:#}): it was changed after signing"
        ))
    })?;
    Ok(id)
}

/// Signature first, then schema: an unsigned manifest is never interpreted.
pub fn check_head(head: &Head, trusted: &[PublicKey]) -> Result<(Manifest, Digest, KeyId), BundleError> {
    let signer = check_signature(&head.manifest_bytes, &head.signature, trusted, MEMBER_MANIFEST)?;
    let m = manifest::parse(&head.manifest_bytes).map_err(BundleError::NotABundle)?;
    Ok((m, Digest::of(&head.manifest_bytes), signer))
}

/// Verify the bundle at `path`.
pub fn verify(
    path: &Path,
    trusted: &[PublicKey],
    sink: BlobSink,
    bar: &ProgressBar,
) -> Result<VerifiedBundle, BundleError> {
    let source = Source::open(path, Some(trusted))?;
    if let Some(n) = source.stream_len() {
        bar.set_length(n);
    }
    let mut volume_manifest = None;
    if let Source::Volumes { list, .. } = &source {
        source.check_volumes_present()?;
        volume_manifest = Some(list.manifest);
    }
    let v = match &source {
        Source::Dir(dir) => verify_dir(dir, trusted, &sink, bar)?,
        Source::File { path, .. } if is_plain_tar(path) => verify_file(path, trusted, &sink, bar)?,
        _ => verify_stream(&source, trusted, &sink, bar)?,
    };
    if let Some(d) = volume_manifest
        && d != v.manifest_digest
    {
        return Err(BundleError::NotAuthentic(format!(
            "the volume list is for manifest {d}, but the volumes hold manifest {}",
            v.manifest_digest
        )));
    }
    Ok(v)
}

/// An uncompressed tar (`ustar` magic at offset 257)?
fn is_plain_tar(path: &Path) -> bool {
    let mut head = [0u8; 263];
    File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head[257..262] == b"ustar"
}

/// Read just the head (manifest and signature) of a bundle, for `inspect`.
pub fn read_head(path: &Path) -> Result<Head, BundleError> {
    Ok(read_members(path, false)?.head)
}

/// The head of a bundle and the named members its manifest lists the digests of.
pub struct Evidence {
    pub head: Head,
    /// `sbom.cdx.json`, when the manifest lists one.
    pub sbom: Option<Vec<u8>>,
    /// `provenance.intoto.json`, when the manifest lists one.
    pub provenance: Option<Vec<u8>>,
}

/// The largest SBOM `inspect` and `report` read whole.
pub const MAX_SBOM: u64 = 256 << 20;

/// Read the head of a bundle and its SBOM and provenance (`inspect --sbom`, `report`):
/// they are near the start of the stream, so no blob is read. Each must have the digest
/// the manifest lists; checking the manifest's signature is the caller's part.
pub fn read_evidence(path: &Path) -> Result<Evidence, BundleError> {
    read_members(path, true)
}

fn read_members(path: &Path, evidence: bool) -> Result<Evidence, BundleError> {
    let source = Source::open(path, None)?;
    let mut out =
        Evidence { head: Head { manifest_bytes: Vec::new(), signature: String::new() }, sbom: None, provenance: None };
    let keep = |out: &mut Evidence, name: &str, bytes: Vec<u8>| {
        if name == MEMBER_PROVENANCE {
            out.provenance = Some(bytes);
        } else {
            out.sbom = Some(bytes);
        }
    };
    let listed = |head: &Head| -> Result<Vec<(&'static str, BlobDescriptor)>, BundleError> {
        let m = manifest::parse(&head.manifest_bytes).map_err(BundleError::NotABundle)?;
        Ok(m.evidence().into_iter().map(|(n, d)| (n, d.clone())).collect())
    };
    let limit = |name: &str| if name == MEMBER_PROVENANCE { MAX_PROVENANCE } else { MAX_SBOM };
    let check = |name: &str, bytes: &[u8], want: &BlobDescriptor| {
        let got = Digest::of(bytes);
        if got != want.digest {
            return Err(BundleError::Corrupt(format!(
                "{name} is damaged: its bytes hash to {got}, the signed manifest says {}",
                want.digest
            )));
        }
        Ok(())
    };
    if let Source::Dir(dir) = &source {
        out.head.manifest_bytes = std::fs::read(dir.join(MEMBER_MANIFEST))
            .map_err(|e| BundleError::NotABundle(format!("{}: {e}", dir.join(MEMBER_MANIFEST).display())))?;
        out.head.signature = std::fs::read_to_string(dir.join(MEMBER_SIGNATURE)).unwrap_or_default();
        if evidence {
            for (name, want) in listed(&out.head)? {
                let p = dir.join(name);
                let f = File::open(&p).map_err(|e| BundleError::Corrupt(format!("{}: {e}", p.display())))?;
                let size = f.metadata().ok().map(|m| m.len());
                let bytes = read_small(&mut { f }, name, limit(name), size, &Fault::default())?;
                check(name, &bytes, &want)?;
                keep(&mut out, name, bytes);
            }
        }
        return Ok(out);
    }
    let fault = Fault::default();
    let stream = source.tar_stream(&fault, &ProgressBar::hidden())?;
    let mut archive = tar::Archive::new(stream);
    let mut entries = archive.entries().map_err(|e| io_fault(&fault, e))?;
    let mut members = Vec::new();
    for want in [MEMBER_MANIFEST, MEMBER_SIGNATURE] {
        let Some(e) = entries.next() else { break };
        let mut e = e.map_err(|e| io_fault(&fault, e))?;
        if e.path_bytes().as_ref() != want.as_bytes() {
            break;
        }
        let size = e.header().size().ok();
        members.push(read_small(&mut e, want, MAX_MANIFEST, size, &fault)?);
    }
    match members.len() {
        0 => {
            return Err(BundleError::NotABundle(format!(
                "{}: the first member is not {MEMBER_MANIFEST}",
                source.describe()
            )));
        }
        1 => out.head.manifest_bytes = members.remove(0),
        _ => {
            out.head.signature = String::from_utf8_lossy(&members[1]).into_owned();
            out.head.manifest_bytes = members.remove(0);
        }
    }
    if !evidence {
        return Ok(out);
    }
    let listed = listed(&out.head)?;
    if !listed.is_empty() {
        next_named(&mut entries, MEMBER_SUMS, &fault)?;
    }
    for (name, want) in listed {
        let mut e = next_named(&mut entries, name, &fault)?;
        let size = e.header().size().ok();
        let bytes = read_small(&mut e, name, limit(name), size, &fault)?;
        check(name, &bytes, &want)?;
        keep(&mut out, name, bytes);
    }
    Ok(out)
}

/// The next member of a stream, which must be `want`.
fn next_named<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    want: &str,
    fault: &Fault,
) -> Result<tar::Entry<'a, R>, BundleError> {
    let e = entries.next().ok_or_else(|| BundleError::Corrupt(format!("truncated: the bundle ends before {want}")))?;
    let e = e.map_err(|e| io_fault(fault, e))?;
    if e.path_bytes().as_ref() != want.as_bytes() {
        let shown = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        return Err(BundleError::Corrupt(format!("member {shown} comes where {want} belongs")));
    }
    Ok(e)
}

/// Read a small member whole. `declared` is its size in the tar header, when there is one:
/// fewer bytes than that means the stream was cut short.
fn read_small(
    r: &mut impl Read,
    name: &str,
    limit: u64,
    declared: Option<u64>,
    fault: &Fault,
) -> Result<Vec<u8>, BundleError> {
    let too_large = |size: Option<u64>| {
        let size = size.map_or_else(|| "larger than that".to_string(), |d| format!("{d} bytes"));
        BundleError::Corrupt(format!(
            "{name} is {size}: airlock reads at most {limit} bytes ({}) of it",
            indicatif::HumanBytes(limit)
        ))
    };
    if let Some(d) = declared
        && d > limit
    {
        return Err(too_large(Some(d)));
    }
    // The declared size is at most `limit`: reserve it, so reading never doubles the buffer.
    let mut v = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    r.take(limit + 1).read_to_end(&mut v).map_err(|e| io_fault(fault, e))?;
    if v.len() as u64 > limit {
        return Err(too_large(None));
    }
    if let Some(d) = declared
        && (v.len() as u64) < d
    {
        if let Some(f) = fault.lock().unwrap().clone() {
            return Err(f);
        }
        return Err(BundleError::Corrupt(format!("truncated: {name} ends after {} of {d} bytes", v.len())));
    }
    Ok(v)
}

/// What the manifest promises, and what has been seen of it.
struct Expected {
    sizes: HashMap<Digest, u64>,
    seen: HashSet<Digest>,
    last: Option<Digest>,
}

impl Expected {
    fn new(m: &Manifest) -> Self {
        Self { sizes: m.blobs.iter().map(|b| (b.digest, b.size)).collect(), seen: HashSet::new(), last: None }
    }

    /// A blob member's digest and size, if it is a listed blob seen for the first time.
    fn blob(&mut self, member: &str, size: u64) -> Result<(Digest, u64), BundleError> {
        let d = member
            .strip_prefix(BLOB_PREFIX)
            .and_then(|h| Digest::from_hex(h).ok())
            .filter(|d| self.sizes.contains_key(d))
            .ok_or_else(|| BundleError::Corrupt(format!("member {member} is not listed in the manifest")))?;
        let want = self.sizes[&d];
        if size != want {
            return Err(BundleError::Corrupt(format!(
                "blob {d} is {size} bytes in the bundle, the manifest says {want}"
            )));
        }
        if !self.seen.insert(d) {
            return Err(BundleError::Corrupt(format!("member {member} appears twice")));
        }
        Ok((d, want))
    }

    /// In a stream, blobs come sorted by digest, as the writer puts them.
    fn in_order(&mut self, d: Digest, member: &str) -> Result<(), BundleError> {
        if self.last.is_some_and(|l| l > d) {
            return Err(BundleError::Corrupt(format!("member {member} is out of order (blobs are sorted by digest)")));
        }
        self.last = Some(d);
        Ok(())
    }

    fn missing(&self, m: &Manifest) -> Result<(), BundleError> {
        let missing: Vec<_> = m.blobs.iter().filter(|b| !self.seen.contains(&b.digest)).collect();
        if let Some(first) = missing.first() {
            let more = if missing.len() > 1 { format!(" (and {} more)", missing.len() - 1) } else { String::new() };
            return Err(BundleError::Corrupt(format!(
                "blob {} listed in the manifest is missing{more}: the bundle is truncated or incomplete",
                first.digest
            )));
        }
        Ok(())
    }
}

/// The `SHA256SUMS` member the manifest and its signature imply.
fn sums_for(m: &Manifest, head: &Head) -> Vec<u8> {
    super::sums::render(m, &Digest::of(&head.manifest_bytes), &Digest::of(head.signature.as_bytes()))
}

/// Check a named member the manifest signs the digest of (`sbom.cdx.json`,
/// `provenance.intoto.json`): its size first, then its bytes, hashed as they stream; the
/// provenance is kept (it is at most [`MAX_PROVENANCE`]) to check its DSSE signature by
/// the manifest's signer.
fn check_evidence(
    r: &mut impl Read,
    name: &str,
    size: u64,
    want: &BlobDescriptor,
    signer: KeyId,
    trusted: &[PublicKey],
    fault: &Fault,
) -> Result<(), BundleError> {
    if size != want.size {
        return Err(BundleError::Corrupt(format!(
            "{name} is {size} bytes in the bundle, the manifest says {}",
            want.size
        )));
    }
    let keep = name == MEMBER_PROVENANCE;
    if keep && size > MAX_PROVENANCE {
        return Err(BundleError::Corrupt(format!("{name} is {size} bytes: airlock reads at most {MAX_PROVENANCE}")));
    }
    let mut kept = Vec::new();
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| io_fault(fault, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if keep {
            kept.extend_from_slice(&buf[..n]);
        }
        got += n as u64;
    }
    if let Some(f) = fault.lock().unwrap().clone() {
        return Err(f);
    }
    if got != size {
        return Err(BundleError::Corrupt(format!("truncated: {name} ends after {got} of {size} bytes")));
    }
    let (actual, _) = h.finish();
    if actual != want.digest {
        return Err(BundleError::Corrupt(format!(
            "{name} is damaged: its bytes hash to {actual}, the signed manifest says {}",
            want.digest
        )));
    }
    if keep {
        let key = trusted.iter().find(|k| k.id() == signer).expect("the signer is trusted");
        super::provenance::open_envelope(&kept, key).map_err(|e| BundleError::Corrupt(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// Where a blob's bytes go besides the hasher: nowhere for verify, or for import the
/// staging area, unless the store already holds the blob (its bytes are hashed all the
/// same, so import and verify refuse the same bundles).
fn sink_file(sink: &BlobSink, d: &Digest) -> Result<Option<File>, BundleError> {
    match sink {
        BlobSink::Discard => Ok(None),
        BlobSink::Stage(store, _) | BlobSink::StageAndTell(store, _, _) if store.contains(d) => Ok(None),
        BlobSink::Stage(_, staging) | BlobSink::StageAndTell(_, staging, _) => {
            staging.create(d).map(Some).map_err(|e| BundleError::Local(format!("{e:#}")))
        }
    }
}

struct Job {
    digest: Digest,
    chunks: Receiver<(Vec<u8>, usize)>,
    file: Option<File>,
}

struct Outcome {
    digest: Digest,
    actual: Digest,
    write_error: Option<String>,
}

fn worker(jobs: &Receiver<Job>, free: &Sender<Vec<u8>>, out: &Sender<Outcome>, tell: Option<&Sender<Digest>>) {
    for mut job in jobs {
        let mut h = Hasher::new();
        let mut write_error = None;
        for (buf, n) in &job.chunks {
            h.update(&buf[..n]);
            if let (Some(f), None) = (&mut job.file, &write_error)
                && let Err(e) = f.write_all(&buf[..n])
            {
                write_error = Some(format!("staging blob {}: {e}", job.digest));
            }
            let _ = free.send(buf);
        }
        let (actual, _) = h.finish();
        drop(job.file.take());
        if let Some(tx) = tell
            && actual == job.digest
            && write_error.is_none()
        {
            let _ = tx.send(job.digest);
        }
        let _ = out.send(Outcome { digest: job.digest, actual, write_error });
    }
}

/// The checks every member gets, in stream order, whichever way the bytes are read.
struct Walk<'a> {
    trusted: &'a [PublicKey],
    describe: String,
    head: Head,
    checked: Option<(Manifest, Digest, KeyId)>,
    expected: Option<Expected>,
    names: HashSet<RelPath>,
    index: usize,
    /// Named members whose digests the manifest signs, which come right after `SHA256SUMS`.
    evidence: std::collections::VecDeque<(&'static str, BlobDescriptor)>,
    /// Members derived from the manifest that must come next (the OCI layout files).
    derived: std::collections::VecDeque<(&'static str, Vec<u8>)>,
    /// Where the last member's data (padded to a block) ends in the tar stream.
    end: u64,
}

impl<'a> Walk<'a> {
    fn new(trusted: &'a [PublicKey], describe: String) -> Self {
        Self {
            trusted,
            describe,
            head: Head { manifest_bytes: Vec::new(), signature: String::new() },
            checked: None,
            expected: None,
            names: HashSet::new(),
            index: 0,
            evidence: Default::default(),
            derived: Default::default(),
            end: 0,
        }
    }

    /// Check one member. The head members are read and checked here; for a blob, its
    /// digest and size are returned and the caller hashes its bytes.
    fn member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        fault: &Fault,
    ) -> Result<Option<(Digest, u64)>, BundleError> {
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(BundleError::Corrupt(format!(
                "member {shown} is a {}: only regular files are allowed",
                entry_kind(kind)
            )));
        }
        let rel = RelPath::from_bytes(&raw_name)
            .map_err(|e| BundleError::Corrupt(format!("member {shown} has an unsafe path: {e}")))?;
        if !self.names.insert(rel.clone()) {
            return Err(BundleError::Corrupt(format!("member {rel} appears twice")));
        }
        let size = entry.header().size().map_err(|e| io_fault(fault, e))?;
        self.end = entry.raw_file_position().saturating_add(size.div_ceil(BLOCK).saturating_mul(BLOCK));
        let index = self.index;
        self.index += 1;
        match index {
            0 if rel.as_str() != MEMBER_MANIFEST => Err(BundleError::NotABundle(format!(
                "{}: the first member is {rel}, not {MEMBER_MANIFEST}",
                self.describe
            ))),
            0 => {
                self.head.manifest_bytes = read_small(entry, MEMBER_MANIFEST, MAX_MANIFEST, Some(size), fault)?;
                Ok(None)
            }
            1 if rel.as_str() != MEMBER_SIGNATURE => {
                Err(BundleError::NotAuthentic(format!("{MEMBER_MANIFEST} is not followed by its signature")))
            }
            1 => {
                let sig = read_small(entry, MEMBER_SIGNATURE, MAX_SIGNATURE, Some(size), fault)?;
                self.head.signature = String::from_utf8(sig)
                    .map_err(|_| BundleError::NotAuthentic(format!("{MEMBER_SIGNATURE} is not text")))?;
                let c = check_head(&self.head, self.trusted)?;
                self.expected = Some(Expected::new(&c.0));
                self.evidence = c.0.evidence().into_iter().map(|(n, d)| (n, d.clone())).collect();
                self.derived = super::layout::members(&c.0).into();
                self.checked = Some(c);
                Ok(None)
            }
            2 if rel.as_str() != MEMBER_SUMS => {
                Err(BundleError::Corrupt(format!("member {rel} comes where {MEMBER_SUMS} belongs")))
            }
            2 => {
                // Derived from the manifest: its exact length is known before it is read.
                let want = sums_for(&self.checked.as_ref().expect("head checked").0, &self.head);
                if size != want.len() as u64 {
                    return Err(BundleError::Corrupt(format!("{MEMBER_SUMS} does not match the manifest")));
                }
                let sums = read_small(entry, MEMBER_SUMS, size, Some(size), fault)?;
                if sums != want {
                    return Err(BundleError::Corrupt(format!("{MEMBER_SUMS} does not match the manifest")));
                }
                Ok(None)
            }
            _ if !self.evidence.is_empty() => {
                let (name, want) = self.evidence.pop_front().expect("not empty");
                if rel.as_str() != name {
                    return Err(BundleError::Corrupt(format!("member {rel} comes where {name} belongs")));
                }
                let (_, signer) = self.checked.as_ref().map(|c| (&c.0, c.2)).expect("head checked");
                check_evidence(entry, name, size, &want, signer, self.trusted, fault)?;
                Ok(None)
            }
            _ if !self.derived.is_empty() => {
                let (name, want) = self.derived.pop_front().expect("not empty");
                if rel.as_str() != name {
                    return Err(BundleError::Corrupt(format!("member {rel} comes where {name} belongs")));
                }
                if size != want.len() as u64 {
                    return Err(BundleError::Corrupt(format!("{name} does not match the manifest")));
                }
                let have = read_small(entry, name, size, Some(size), fault)?;
                if have != want {
                    return Err(BundleError::Corrupt(format!("{name} does not match the manifest")));
                }
                Ok(None)
            }
            _ => {
                let exp = self.expected.as_mut().expect("head checked");
                let (digest, size) = exp.blob(rel.as_str(), size)?;
                exp.in_order(digest, rel.as_str())?;
                Ok(Some((digest, size)))
            }
        }
    }

    /// After the last member: the head must have been complete.
    fn head_done(&mut self) -> Result<(Manifest, Digest, KeyId, Expected), BundleError> {
        let Some((manifest, digest, signer)) = self.checked.take() else {
            return Err(match self.index {
                0 => BundleError::NotABundle(format!("{} is an empty archive", self.describe)),
                _ => BundleError::Corrupt(format!("truncated: the bundle ends before {MEMBER_SIGNATURE}")),
            });
        };
        if self.index < 3 {
            return Err(BundleError::Corrupt(format!("truncated: the bundle ends before {MEMBER_SUMS}")));
        }
        if let Some(name) = self.evidence.front().map(|e| e.0).or(self.derived.front().map(|d| d.0)) {
            return Err(BundleError::Corrupt(format!("truncated: the bundle ends before {name}")));
        }
        Ok((manifest, digest, signer, self.expected.take().expect("head checked")))
    }
}

/// The end of the archive, once tar has stopped reading members at `consumed` bytes into
/// the stream (after the last member, or after the first zero block): exactly two zero
/// blocks must follow the last member's data, and nothing after them. Reading to the end
/// also lets the zstd reader check its frame (checksum, nothing after it) and the volume
/// reader check the last volume.
fn check_end(rest: &mut dyn Read, consumed: u64, end: u64, fault: &Fault) -> Result<(), BundleError> {
    let already = consumed.saturating_sub(end).min(2 * BLOCK);
    let need = usize::try_from(2 * BLOCK - already).expect("at most two blocks");
    let mut buf = [0u8; 2 * BLOCK as usize];
    let mut got = 0;
    while got < need {
        let n = rest.read(&mut buf[got..need]).map_err(|e| io_fault(fault, e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    if let Some(f) = fault.lock().unwrap().clone() {
        return Err(f);
    }
    if buf[..got].iter().any(|&b| b != 0) {
        return Err(BundleError::Corrupt("data after the end of the archive".into()));
    }
    if got < need {
        return Err(BundleError::Corrupt(
            "truncated: the archive ends without its end-of-archive marker (two 512-byte zero blocks)".into(),
        ));
    }
    let mut probe = [0u8; 1];
    let more = rest.read(&mut probe).map_err(|e| io_fault(fault, e))?;
    if let Some(f) = fault.lock().unwrap().clone() {
        return Err(f);
    }
    if more != 0 {
        return Err(BundleError::Corrupt(
            "data after the end of the archive: its two zero blocks must be the last bytes of the tar stream".into(),
        ));
    }
    Ok(())
}

/// A stream (compressed, split, or any reader): blobs are handed to hashing workers chunk
/// by chunk from a fixed pool of buffers while the main thread reads on.
fn verify_stream(
    source: &Source,
    trusted: &[PublicKey],
    sink: &BlobSink,
    bar: &ProgressBar,
) -> Result<VerifiedBundle, BundleError> {
    let fault = Fault::default();
    let stream = source.tar_stream(&fault, bar)?;
    let fail = |e: std::io::Error| io_fault(&fault, e);
    let mut archive = tar::Archive::new(Counted { inner: stream, n: 0 });
    let mut entries = archive.entries().map_err(fail)?;

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let (free_tx, free_rx) = unbounded::<Vec<u8>>();
    for _ in 0..threads * 4 + 2 {
        free_tx.send(vec![0u8; CHUNK]).expect("pool");
    }
    let (jobs_tx, jobs_rx) = bounded::<Job>(threads * 2);
    let (out_tx, out_rx) = unbounded::<Outcome>();
    let mut walk = Walk::new(trusted, source.describe());

    let result: Result<(), BundleError> = std::thread::scope(|s| {
        for _ in 0..threads {
            let (jobs_rx, free_tx, out_tx) = (jobs_rx.clone(), free_tx.clone(), out_tx.clone());
            let tell = sink.teller();
            s.spawn(move || worker(&jobs_rx, &free_tx, &out_tx, tell.as_ref()));
        }
        drop(out_tx);
        let r = (|| {
            for entry in entries.by_ref() {
                let mut entry = entry.map_err(fail)?;
                let Some((digest, size)) = walk.member(&mut entry, &fault)? else { continue };
                let file = sink_file(sink, &digest)?;
                let (tx, rx) = unbounded();
                jobs_tx.send(Job { digest, chunks: rx, file }).expect("workers alive");
                let mut got = 0u64;
                loop {
                    let mut buf = free_rx.recv().expect("pool");
                    let mut n = 0;
                    while n < CHUNK {
                        let k = entry.read(&mut buf[n..]).map_err(fail)?;
                        if k == 0 {
                            break;
                        }
                        n += k;
                    }
                    if n == 0 {
                        let _ = free_tx.send(buf);
                        break;
                    }
                    got += n as u64;
                    tx.send((buf, n)).expect("worker alive");
                }
                if got != size {
                    return Err(BundleError::Corrupt(format!(
                        "truncated: blob {digest} ends after {got} of {size} bytes"
                    )));
                }
            }
            Ok(())
        })();
        drop(jobs_tx);
        r
    });
    if let Some(f) = fault.lock().unwrap().clone() {
        return Err(f);
    }
    result?;
    let end = walk.end;
    let (manifest, manifest_digest, signer, expected) = walk.head_done()?;
    expected.missing(&manifest)?;
    let mut rest = archive.into_inner();
    let consumed = rest.n;
    check_end(&mut rest, consumed, end, &fault)?;
    for o in out_rx {
        check_outcome(&o)?;
    }
    Ok(VerifiedBundle {
        manifest,
        manifest_digest,
        signer,
        stream_bytes: source.stream_len().unwrap_or(0),
        _sealed: Sealed,
    })
}

/// An uncompressed bundle in one file: walk the headers, seeking past the data, then
/// hash the blobs' byte ranges on all cores with positioned reads, largest first. Each
/// byte is still read once, but no single reader limits the pace.
fn verify_file(
    path: &Path,
    trusted: &[PublicKey],
    sink: &BlobSink,
    bar: &ProgressBar,
) -> Result<VerifiedBundle, BundleError> {
    let unreadable = |e: std::io::Error| BundleError::Unreadable(format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let fault = Fault::default();
    let mut archive = tar::Archive::new(File::open(path).map_err(unreadable)?);
    let mut walk = Walk::new(trusted, path.display().to_string());
    let mut blobs = Vec::new();
    for entry in archive.entries_with_seek().map_err(|e| io_fault(&fault, e))? {
        let mut entry = entry.map_err(|e| io_fault(&fault, e))?;
        if let Some((digest, size)) = walk.member(&mut entry, &fault)? {
            let offset = entry.raw_file_position();
            if offset + size > len {
                return Err(BundleError::Corrupt(format!(
                    "truncated: blob {digest} ends after {} of {size} bytes",
                    len.saturating_sub(offset)
                )));
            }
            blobs.push((digest, offset, size));
        }
    }
    let end = walk.end;
    let (manifest, manifest_digest, signer, expected) = walk.head_done()?;
    expected.missing(&manifest)?;
    let mut rest = archive.into_inner();
    let consumed = std::io::Seek::stream_position(&mut rest).map_err(unreadable)?;
    check_end(&mut rest, consumed, end, &fault)?;
    largest_first(
        &blobs,
        |b| b.2,
        |(digest, offset, size), buf| check_range(&file, *offset, *size, digest, sink, buf, bar, &unreadable),
    )?;
    Ok(VerifiedBundle { manifest, manifest_digest, signer, stream_bytes: len, _sealed: Sealed })
}

/// Hash `size` bytes of `file` from `offset` with positioned reads (so threads share one
/// file), writing them to the sink too; the result must be `digest`.
#[allow(clippy::too_many_arguments)]
fn check_range(
    file: &File,
    offset: u64,
    size: u64,
    digest: &Digest,
    sink: &BlobSink,
    buf: &mut [u8],
    bar: &ProgressBar,
    unreadable: &dyn Fn(std::io::Error) -> BundleError,
) -> Result<(), BundleError> {
    use std::os::unix::fs::FileExt;
    let mut out = sink_file(sink, digest)?;
    let mut h = Hasher::new();
    let mut write_error = None;
    let (mut pos, end) = (offset, offset + size);
    while pos < end {
        let want = usize::try_from(end - pos).unwrap_or(CHUNK).min(buf.len());
        let n = file.read_at(&mut buf[..want], pos).map_err(unreadable)?;
        if n == 0 {
            return Err(BundleError::Corrupt(format!(
                "truncated: blob {digest} ends after {} of {size} bytes",
                pos - offset
            )));
        }
        h.update(&buf[..n]);
        bar.inc(n as u64);
        if let Some(o) = &mut out
            && let Err(e) = o.write_all(&buf[..n])
        {
            write_error = Some(format!("staging blob {digest}: {e}"));
            out = None;
        }
        pos += n as u64;
    }
    drop(out);
    check_outcome(&Outcome { digest: *digest, actual: h.finish().0, write_error })?;
    if let Some(tx) = sink.teller() {
        let _ = tx.send(*digest);
    }
    Ok(())
}

/// Run `work` over `items` on every core, largest first, each thread taking the next item
/// as it finishes one (greedy longest-processing-time scheduling: a few large blobs do not
/// end up on one core). Stops at the first error.
fn largest_first<T: Sync>(
    items: &[T],
    size: impl Fn(&T) -> u64,
    work: impl Fn(&T, &mut Vec<u8>) -> Result<(), BundleError> + Sync,
) -> Result<(), BundleError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = std::sync::Mutex::new(None);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8).min(items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; CHUNK];
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&item) = order.get(i) else { break };
                    if let Err(e) = work(&items[item], &mut buf) {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Counts the bytes tar takes from the stream, to find where the archive ended.
struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

fn check_outcome(o: &Outcome) -> Result<(), BundleError> {
    if o.actual != o.digest {
        return Err(BundleError::Corrupt(format!("blob {} is damaged: its bytes hash to {}", o.digest, o.actual)));
    }
    if let Some(e) = &o.write_error {
        return Err(BundleError::Local(e.clone()));
    }
    Ok(())
}

fn entry_kind(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Directory => "directory",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "fifo",
        _ => "special entry",
    }
}

fn verify_dir(
    dir: &Path,
    trusted: &[PublicKey],
    sink: &BlobSink,
    bar: &ProgressBar,
) -> Result<VerifiedBundle, BundleError> {
    // `exact`: a member derived from the manifest, whose length is known before it is read.
    let read = |name: &str, limit: u64, exact: bool| -> Result<Vec<u8>, BundleError> {
        let p = dir.join(name);
        let meta = std::fs::symlink_metadata(&p).map_err(|e| {
            let msg = format!("{}: {e}", p.display());
            match name {
                MEMBER_MANIFEST => BundleError::NotABundle(msg),
                MEMBER_SIGNATURE => BundleError::NotAuthentic(msg),
                _ => BundleError::Corrupt(msg),
            }
        })?;
        if !meta.is_file() {
            return Err(BundleError::Corrupt(format!("member {name} is not a regular file")));
        }
        if exact && meta.len() != limit {
            return Err(BundleError::Corrupt(format!("{name} does not match the manifest")));
        }
        let f = File::open(&p).map_err(|e| BundleError::Unreadable(format!("{}: {e}", p.display())))?;
        read_small(&mut { f }, name, limit, Some(meta.len()), &Fault::default())
    };
    let manifest_bytes = read(MEMBER_MANIFEST, MAX_MANIFEST, false)?;
    let signature = String::from_utf8(read(MEMBER_SIGNATURE, MAX_SIGNATURE, false)?)
        .map_err(|_| BundleError::NotAuthentic(format!("{MEMBER_SIGNATURE} is not text")))?;
    let head = Head { manifest_bytes, signature };
    let (manifest, manifest_digest, signer) = check_head(&head, trusted)?;
    let derived = super::layout::members(&manifest);
    for (name, want) in std::iter::once((MEMBER_SUMS, sums_for(&manifest, &head))).chain(derived.iter().cloned()) {
        if read(name, want.len() as u64, true)? != want {
            return Err(BundleError::Corrupt(format!("{name} does not match the manifest")));
        }
    }
    let evidence = manifest.evidence();
    for (name, want) in &evidence {
        let p = dir.join(name);
        let meta = std::fs::symlink_metadata(&p).map_err(|e| BundleError::Corrupt(format!("{}: {e}", p.display())))?;
        if !meta.is_file() {
            return Err(BundleError::Corrupt(format!("member {name} is not a regular file")));
        }
        let mut f = File::open(&p).map_err(|e| BundleError::Unreadable(format!("{}: {e}", p.display())))?;
        check_evidence(&mut f, name, meta.len(), want, signer, trusted, &Fault::default())?;
    }

    let mut expected = Expected::new(&manifest);
    let mut blobs = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| BundleError::Unreadable(e.to_string()))?;
        let rel = entry.path().strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
        let ft = entry.file_type();
        if ft.is_dir() {
            if rel != "blobs" && rel != "blobs/sha256" {
                return Err(BundleError::Corrupt(format!("unexpected directory {rel}")));
            }
            continue;
        }
        if !ft.is_file() {
            let what = if ft.is_symlink() { "symlink" } else { "special file" };
            return Err(BundleError::Corrupt(format!("member {rel} is a {what}: only regular files are allowed")));
        }
        if [MEMBER_MANIFEST, MEMBER_SIGNATURE, MEMBER_SUMS].contains(&rel.as_str())
            || derived.iter().any(|(n, _)| *n == rel)
            || evidence.iter().any(|(n, _)| *n == rel)
        {
            continue;
        }
        let size = entry.metadata().map_err(|e| BundleError::Unreadable(e.to_string()))?.len();
        blobs.push((entry.into_path(), expected.blob(&rel, size)?));
    }
    expected.missing(&manifest)?;
    bar.set_length(manifest.total_blob_bytes());
    largest_first(
        &blobs,
        |b| b.1.1,
        |(path, (digest, size)), buf| {
            let unreadable = |e: std::io::Error| BundleError::Unreadable(format!("{}: {e}", path.display()));
            let file = File::open(path).map_err(unreadable)?;
            check_range(&file, 0, *size, digest, sink, buf, bar, &unreadable)
        },
    )?;
    Ok(VerifiedBundle { manifest, manifest_digest, signer, stream_bytes: 0, _sealed: Sealed })
}

/// A bundle whose head alone was checked: the signature of `manifest.json` by a trusted
/// key, its schema, `SHA256SUMS` byte for byte against what the manifest implies, and for
/// split volumes the signed volume list (its signature, each volume's size, the manifest it
/// names). No blob was read: this is not a [`VerifiedBundle`], and nothing can be imported
/// from it. An import answers a bundle from its record with it, once the store's record of
/// that manifest and a presence check of every target agree.
#[derive(Debug)]
pub struct SignedHead {
    pub manifest: Manifest,
    pub manifest_digest: Digest,
    pub signer: KeyId,
}

/// Check the head of the bundle at `path` (a file or split volumes; an unpacked directory
/// is refused as `NotABundle`) by decompressing only its first members.
pub fn check_signed_head(path: &Path, trusted: &[PublicKey]) -> Result<SignedHead, BundleError> {
    let source = Source::open(path, Some(trusted))?;
    let mut volume_manifest = None;
    match &source {
        Source::Dir(_) => {
            return Err(BundleError::NotABundle(format!("{}: an unpacked bundle has no record", path.display())));
        }
        Source::Volumes { list, .. } => {
            source.check_volumes_present()?;
            volume_manifest = Some(list.manifest);
        }
        Source::File { .. } => {}
    }
    let fault = Fault::default();
    let stream = source.tar_stream(&fault, &ProgressBar::hidden())?;
    let mut archive = tar::Archive::new(stream);
    let mut entries = archive.entries().map_err(|e| io_fault(&fault, e))?;
    let mut walk = Walk::new(trusted, source.describe());
    while walk.index < 3 {
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(|e| io_fault(&fault, e))?;
        walk.member(&mut entry, &fault)?;
    }
    if let Some(f) = fault.lock().unwrap().clone() {
        return Err(f);
    }
    let Some((manifest, manifest_digest, signer)) = walk.checked.take() else {
        return Err(BundleError::Corrupt(format!("truncated: the bundle ends before {MEMBER_SIGNATURE}")));
    };
    if walk.index < 3 {
        return Err(BundleError::Corrupt(format!("truncated: the bundle ends before {MEMBER_SUMS}")));
    }
    if let Some(d) = volume_manifest
        && d != manifest_digest
    {
        return Err(BundleError::NotAuthentic(format!(
            "the volume list is for manifest {d}, but the volumes hold manifest {manifest_digest}"
        )));
    }
    Ok(SignedHead { manifest, manifest_digest, signer })
}
