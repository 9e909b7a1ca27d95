//! Site receipts: a signed statement of what a site's store holds, carried back to the
//! mirror factory so that its next bundle carries exactly what the site lacks.
//!
//! A receipt is read from the store itself, not from the history of imports: the blobs
//! in `blobs/sha256/`, the refs of every bare git repository, every image tag, every
//! Python index page and apt suite. A differential bundle made from it therefore depends
//! only on what the site has, never on which bundles reached it: losing a bundle in
//! transit costs nothing, since the next one is computed from the same state.
//!
//! On disk a receipt is two files, as a bundle's manifest is: `site.receipt` (UTF-8 JSON,
//! schema `bundle-schema/receipt.schema.json`) and `site.receipt.minisig`, a minisign
//! signature by the site key, so `minisign -Vm site.receipt -p site.pub` checks it. The
//! SHA-256 of `site.receipt` is the receipt's identity; a bundle made from it names that
//! digest as its base. docs/bundle-format.md ("Receipts") describes the format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bundle::BundleError;
use crate::bundle::sign::{KeyId, PublicKey, SecretKey, Signature};
use crate::digest::Digest;
use crate::store::{Store, is_temp_name};

pub const RECEIPT_MEDIA_TYPE: &str = "application/vnd.airlock.receipt.v1+json";
pub const SCHEMA_JSON: &str = include_str!("../bundle-schema/receipt.schema.json");
/// A receipt names every blob of a store: generous, but bounded.
pub const MAX_RECEIPT: u64 = 256 << 20;
/// Image manifests larger than this are not read for the blobs they name (as registries
/// refuse them, 4 MiB).
const MAX_IMAGE_MANIFEST: u64 = 4 << 20;

/// The signed document.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receipt {
    pub media_type: String,
    pub schema_version: u32,
    /// The site's name: `airlock receipt --name`, or the host name.
    pub site: String,
    /// The key id of the site key that signs it.
    pub site_key: String,
    /// When it was written (RFC 3339 UTC).
    pub created: String,
    pub generator: String,
    /// The bundles imported into the store, oldest first per name.
    pub imported: Vec<ImportedBundle>,
    /// Every blob in the store, by kind (`file`, `image`, `git`, `python`, `debian`, or
    /// `other` for a blob nothing published names), digest -> size.
    pub blobs: BTreeMap<String, BTreeMap<Digest, u64>>,
    /// Raw repositories: repository -> path -> digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, BTreeMap<String, Digest>>,
    /// Bare git repositories: name -> refs and HEAD.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub git: BTreeMap<String, GitState>,
    /// The store's registry: repository -> tag -> manifest digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, BTreeMap<String, Digest>>,
    /// Python indexes: index -> project -> file name -> digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub python: BTreeMap<String, BTreeMap<String, BTreeMap<String, Digest>>>,
    /// apt repositories: repository -> suite -> what it publishes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apt: BTreeMap<String, BTreeMap<String, AptSuite>>,
}

/// A bundle the store imported.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImportedBundle {
    /// The bundle's name, or for an import recorded only by an old receipt, its
    /// `<name>-<version>`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub manifest: Digest,
    /// The digest of its base, for a differential bundle: a manifest or a receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    pub refs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AptSuite {
    /// The SHA-256 of the suite's `Release`.
    pub release: Digest,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    pub packages: Vec<AptPackage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AptPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub digest: Digest,
}

impl Receipt {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("receipt serializes");
        v.push(b'\n');
        v
    }

    /// Every blob the store held, whatever its kind.
    pub fn all_blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.blobs.values().flat_map(|m| m.iter().map(|(d, s)| (d, *s)))
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.values().map(BTreeMap::len).sum()
    }

    pub fn blob_bytes(&self) -> u64 {
        self.all_blobs().map(|(_, s)| s).sum()
    }
}

/// Parse receipt bytes: JSON Schema first, then the typed form, then the names that a
/// factory turns into git arguments.
pub fn parse(bytes: &[u8]) -> Result<Receipt, String> {
    static V: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("mediaType").and_then(|v| v.as_str()) != Some(RECEIPT_MEDIA_TYPE) {
        return Err(format!("not an airlock receipt (its `mediaType` is not `{RECEIPT_MEDIA_TYPE}`)"));
    }
    let validator = V.get_or_init(|| crate::bundle::manifest::compile_schema(SCHEMA_JSON));
    if let Err(err) = validator.validate(&value) {
        return Err(format!("it does not match the receipt schema at `{}`: {err}", err.instance_path()));
    }
    let r: Receipt = serde_json::from_value(value).map_err(|e| e.to_string())?;
    for (name, g) in &r.git {
        crate::names::git_repository(name).map_err(|e| e.to_string())?;
        for (r, oid) in &g.refs {
            crate::names::git_ref(r).map_err(|e| e.to_string())?;
            crate::names::object_id(oid).map_err(|e| format!("git repository `{name}`: ref {r}: {e}"))?;
        }
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Reading a store

/// Read what `store` holds. `imported` is the store's import history (see
/// `commands::import_guard::imported`).
pub fn collect(store: &Store, site: &str, site_key: KeyId, imported: Vec<ImportedBundle>) -> Result<Receipt> {
    let layout = store.layout();
    // Every blob, and its inode: repository files are hard links to their blob.
    let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut by_inode: HashMap<(u64, u64), Digest> = HashMap::new();
    let blobs_dir = layout.blobs_dir();
    for e in read_dir(&blobs_dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(d) = Digest::from_hex(&name) else { continue };
        let meta = e.metadata().with_context(|| format!("reading {}", e.path().display()))?;
        if !meta.is_file() {
            continue;
        }
        use std::os::unix::fs::MetadataExt;
        by_inode.insert((meta.dev(), meta.ino()), d);
        sizes.insert(d, meta.len());
    }
    let digest_of = |path: &Path| -> Result<Digest> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if let Some(d) = by_inode.get(&(meta.dev(), meta.ino())) {
            return Ok(*d);
        }
        let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(crate::store::hash_reader(&mut f).with_context(|| format!("reading {}", path.display()))?.0)
    };

    let mut kind_of: BTreeMap<Digest, &'static str> = BTreeMap::new();
    let mut claim = |d: Digest, kind: &'static str| {
        kind_of.entry(d).or_insert(kind);
    };

    // Images: every tag, and every referrer, with the blobs their manifests name.
    let mut images: BTreeMap<String, BTreeMap<String, Digest>> = BTreeMap::new();
    let mut tops: Vec<Digest> = Vec::new();
    let oci = layout.oci_dir();
    for e in walkdir::WalkDir::new(&oci).min_depth(1).into_iter().filter_map(Result::ok) {
        if !e.file_type().is_dir() {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(&oci) else { continue };
        let Some(parent) = rel.parent().and_then(Path::to_str).filter(|p| !p.is_empty()) else { continue };
        let repository = parent.to_string();
        match e.file_name().to_str() {
            Some("tags") if crate::names::image_repository(&repository).is_ok() => {
                for tag in store.oci_tags(&repository)? {
                    if let Some(d) = store.oci_tag(&repository, &tag)? {
                        images.entry(repository.clone()).or_default().insert(tag, d);
                        tops.push(d);
                    }
                }
            }
            Some("referrers") => {
                for f in walkdir::WalkDir::new(e.path()).min_depth(2).max_depth(2).into_iter().filter_map(Result::ok) {
                    if let Some(d) = f.file_name().to_str().and_then(|n| Digest::from_hex(n).ok()) {
                        tops.push(d);
                    }
                }
            }
            _ => {}
        }
    }
    for top in tops {
        for d in image_closure(store, &top) {
            claim(d, "image");
        }
    }

    // Repositories: Python indexes, apt repositories, raw files.
    let mut files: BTreeMap<String, BTreeMap<String, Digest>> = BTreeMap::new();
    let mut python: BTreeMap<String, BTreeMap<String, BTreeMap<String, Digest>>> = BTreeMap::new();
    let mut apt: BTreeMap<String, BTreeMap<String, AptSuite>> = BTreeMap::new();
    for e in read_dir(&layout.repositories_dir())? {
        let Some(repo) = e.file_name().to_str().map(String::from) else { continue };
        if !e.path().is_dir() || crate::names::repository(&repo).is_err() {
            continue;
        }
        let root = e.path();
        if layout.python_simple(&repo).join("index.json").is_file() {
            let index = python_index(store, &repo)?;
            for (_, d, metadata) in index.values().flatten() {
                claim(*d, "python");
                if let Some(m) = metadata {
                    claim(*m, "python");
                }
            }
            let entry = python.entry(repo.clone()).or_default();
            for (project, list) in index {
                entry.insert(project, list.into_iter().map(|(f, d, _)| (f, d)).collect());
            }
        } else if layout.apt_dists(&repo).is_dir() {
            let suites = apt_suites(&layout.apt_dists(&repo))?;
            for p in suites.values().flat_map(|s| &s.packages) {
                claim(p.digest, "debian");
            }
            apt.insert(repo.clone(), suites);
        } else {
            let mut paths = BTreeMap::new();
            for f in walkdir::WalkDir::new(&root)
                .min_depth(1)
                .into_iter()
                .filter_entry(|e| !e.file_name().to_str().is_some_and(is_temp_name))
            {
                let f = f.with_context(|| format!("reading {}", root.display()))?;
                if !f.file_type().is_file() {
                    continue;
                }
                let Some(rel) = f.path().strip_prefix(&root).ok().and_then(Path::to_str) else { continue };
                let d = digest_of(f.path())?;
                claim(d, "file");
                paths.insert(rel.to_string(), d);
            }
            files.insert(repo, paths);
        }
    }

    // Git: every bare repository's refs.
    let mut git = BTreeMap::new();
    for e in read_dir(&layout.git_dir())? {
        let file_name = e.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_suffix(".git") else { continue };
        let path = e.path();
        if crate::names::git_repository(name).is_err() || !path.join("HEAD").is_file() {
            continue;
        }
        let refs = crate::git::refs(&path).with_context(|| format!("git repository `{name}`: reading its refs"))?;
        let head = crate::git::run(Some(&path), &["symbolic-ref", "--quiet", "HEAD"], None)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|h| refs.contains_key(h));
        git.insert(name.to_string(), GitState { head, refs });
    }

    let mut blobs: BTreeMap<String, BTreeMap<Digest, u64>> = BTreeMap::new();
    for (d, size) in &sizes {
        let kind = match kind_of.get(d) {
            Some(k) => *k,
            None if is_git_bundle(&layout.blob(d)) => "git",
            None => "other",
        };
        blobs.entry(kind.to_string()).or_default().insert(*d, *size);
    }
    Ok(Receipt {
        media_type: RECEIPT_MEDIA_TYPE.into(),
        schema_version: 1,
        site: site.to_string(),
        site_key: site_key.to_string(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        generator: concat!("airlock ", env!("CARGO_PKG_VERSION")).into(),
        imported,
        blobs,
        files,
        git,
        images,
        python,
        apt,
    })
}

/// The entries of a directory; none if it does not exist.
fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v: Vec<_> =
                rd.collect::<std::io::Result<_>>().with_context(|| format!("reading {}", dir.display()))?;
            v.sort_by_key(std::fs::DirEntry::file_name);
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Does the blob at `path` start as a git bundle does?
fn is_git_bundle(path: &Path) -> bool {
    let mut head = [0u8; 15];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && (&head == b"# v2 git bundle" || &head == b"# v3 git bundle")
}

/// The manifests, configs and layers an image manifest or index names, itself included,
/// as far as the store has them.
fn image_closure(store: &Store, top: &Digest) -> Vec<Digest> {
    let mut out = Vec::new();
    let mut todo = vec![(*top, 0u32)];
    while let Some((d, depth)) = todo.pop() {
        if out.contains(&d) || !store.contains(&d) {
            continue;
        }
        out.push(d);
        if depth > 4 || store.blob_size(&d).is_none_or(|n| n > MAX_IMAGE_MANIFEST) {
            continue;
        }
        let Ok(bytes) = std::fs::read(store.blob_path_for_tool(&d)) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let digest = |x: &serde_json::Value| x.get("digest").and_then(|s| s.as_str()).and_then(|s| s.parse().ok());
        for m in v.get("manifests").and_then(|m| m.as_array()).into_iter().flatten() {
            todo.extend(digest(m).map(|d| (d, depth + 1)));
        }
        let blobs = v.get("config").into_iter().chain(v.get("layers").and_then(|l| l.as_array()).into_iter().flatten());
        for b in blobs {
            if let Some(b) = digest(b)
                && !out.contains(&b)
                && store.contains(&b)
            {
                out.push(b);
            }
        }
    }
    out
}

/// project -> [(file, digest, core metadata digest)], from the index's PEP 691 pages.
type PythonIndex = BTreeMap<String, Vec<(String, Digest, Option<Digest>)>>;

fn python_index(store: &Store, index: &str) -> Result<PythonIndex> {
    let simple = store.layout().python_simple(index);
    let mut out = BTreeMap::new();
    for e in read_dir(&simple)? {
        let page = e.path().join("index.json");
        let Some(project) = e.file_name().to_str().map(String::from) else { continue };
        if !page.is_file() {
            continue;
        }
        let bytes = std::fs::read(&page).with_context(|| format!("reading {}", page.display()))?;
        let page_data: crate::pypi::ProjectPage = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a PEP 691 project page", page.display()))?;
        let sha = |h: &BTreeMap<String, String>| h.get("sha256").and_then(|x| Digest::from_hex(x).ok());
        let files = page_data
            .files
            .iter()
            .filter_map(|f| Some((f.filename.clone(), sha(&f.hashes)?, f.core_metadata.as_ref().and_then(sha))))
            .collect();
        out.insert(project, files);
    }
    Ok(out)
}

/// Every suite under `dists/` (a directory with a `Release`), with the packages its
/// `Packages` indexes list.
fn apt_suites(dists: &Path) -> Result<BTreeMap<String, AptSuite>> {
    use crate::debian::deb822;
    let mut out = BTreeMap::new();
    let walk = walkdir::WalkDir::new(dists).min_depth(1).into_iter().filter_entry(|e| {
        let n = e.file_name().to_string_lossy();
        !(e.file_type().is_dir() && (n.starts_with("binary-") || n == "by-hash" || is_temp_name(&n)))
    });
    for e in walk.filter_map(Result::ok) {
        if !e.file_type().is_dir() || !e.path().join("Release").is_file() {
            continue;
        }
        let Some(suite) = e.path().strip_prefix(dists).ok().and_then(Path::to_str).map(String::from) else { continue };
        let release_path = e.path().join("Release");
        let bytes = std::fs::read(&release_path).with_context(|| format!("reading {}", release_path.display()))?;
        let what = release_path.display().to_string();
        let text = String::from_utf8_lossy(&bytes);
        let rel = deb822::parse_one(&text, &what)?;
        let words =
            |f: &str| -> Vec<String> { rel.get(f).unwrap_or("").split_whitespace().map(String::from).collect() };
        let mut packages = BTreeSet::new();
        for line in deb822::lines(rel.get("SHA256").unwrap_or("")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [_, _, path] = parts[..] else { continue };
            if !path.ends_with("/Packages") {
                continue;
            }
            let index = e.path().join(path);
            let Ok(text) = std::fs::read_to_string(&index) else { continue };
            for p in deb822::parse(&text, &index.display().to_string())? {
                let (Some(name), Some(version), Some(arch), Some(d)) = (
                    p.get("Package"),
                    p.get("Version"),
                    p.get("Architecture"),
                    p.get("SHA256").and_then(|h| Digest::from_hex(h.trim()).ok()),
                ) else {
                    continue;
                };
                packages.insert(AptPackage {
                    name: name.into(),
                    version: version.into(),
                    arch: arch.into(),
                    digest: d,
                });
            }
        }
        out.insert(
            suite,
            AptSuite {
                release: Digest::of(&bytes),
                components: words("Components"),
                architectures: words("Architectures"),
                packages: packages.into_iter().collect(),
            },
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Signing and checking

/// The signature file beside a receipt: `<receipt>.minisig`.
pub fn signature_path(receipt: &Path) -> PathBuf {
    PathBuf::from(format!("{}.minisig", receipt.display()))
}

/// The `.minisig` text for receipt bytes written to a file named `file_name`.
pub fn sign(bytes: &[u8], receipt: &Receipt, key: &SecretKey, file_name: &str) -> String {
    let secs = humantime::parse_rfc3339(&receipt.created)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let file_name: String = file_name.chars().filter(|c| !c.is_control()).collect();
    key.sign(bytes, &format!("timestamp:{secs}\tfile:{file_name}\thashed"))
}

/// A receipt whose signature by a trusted site key was checked.
pub struct Checked {
    pub receipt: Receipt,
    pub bytes: Vec<u8>,
    pub signature: String,
    pub digest: Digest,
    pub signer: KeyId,
}

/// Read a receipt and its signature; the signature must be by one of `trusted` (the
/// factory's trusted site keys) before the receipt is interpreted.
pub fn open(path: &Path, trusted: &[PublicKey]) -> Result<Checked, BundleError> {
    let shown = path.display();
    let bytes = read_capped(path, MAX_RECEIPT).map_err(|e| BundleError::Unreadable(format!("receipt {shown}: {e}")))?;
    let sig_path = signature_path(path);
    let signature = match read_capped(&sig_path, crate::bundle::verify::MAX_SIGNATURE) {
        Ok(b) => String::from_utf8(b)
            .map_err(|_| BundleError::NotAuthentic(format!("receipt {shown}: {} is not text", sig_path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BundleError::NotAuthentic(format!(
                "receipt {shown} is not signed: {} is missing (carry both files)",
                sig_path.display()
            )));
        }
        Err(e) => return Err(BundleError::Unreadable(format!("{}: {e}", sig_path.display()))),
    };
    let sig = Signature::parse(&signature)
        .map_err(|e| BundleError::NotAuthentic(format!("receipt {shown}: {}: {e:#}", sig_path.display())))?;
    let id = sig.key_id();
    let Some(key) = trusted.iter().find(|k| k.id() == id) else {
        return Err(BundleError::NotAuthentic(format!(
            "receipt {shown} is signed by key {id}, which is not a trusted site key \
             (check its origin, then `airlock trust add --site SITE.pub`)"
        )));
    };
    key.verify(&bytes, &sig).map_err(|e| {
        BundleError::NotAuthentic(format!(
            "receipt {shown} does not match its signature by site key {id} ({e:#}): it was changed after signing"
        ))
    })?;
    let receipt = parse(&bytes).map_err(|e| BundleError::NotABundle(format!("receipt {shown}: {e}")))?;
    if receipt.site_key != id.to_string() {
        return Err(BundleError::NotAuthentic(format!(
            "receipt {shown} says it is from site key {} but is signed by {id}",
            receipt.site_key
        )));
    }
    Ok(Checked { digest: Digest::of(&bytes), receipt, bytes, signature, signer: id })
}

fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        return Err(std::io::Error::other(format!("{len} bytes, more than the {max} allowed")));
    }
    let mut v = Vec::with_capacity(len as usize);
    f.take(max + 1).read_to_end(&mut v)?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// The factory's copy of each site's newest receipt

/// What [`keep`] did with a receipt.
pub enum Kept {
    /// It is now the newest receipt of its site in the cache.
    Newest(PathBuf),
    /// The cache already has a newer one from that site (created at the time given).
    Older(String),
}

/// Keep `checked` in the cache as its site's receipt, unless the cache holds a newer one.
pub fn keep(cache: &Store, checked: &Checked) -> Result<Kept> {
    let path = cache.layout().site_receipt(&checked.signer.to_string());
    if let Ok(old) = std::fs::read(&path)
        && let Ok(old) = parse(&old)
        && newer(&old.created, &checked.receipt.created)
    {
        return Ok(Kept::Older(old.created));
    }
    crate::store::atomic::write(&signature_path(&path), checked.signature.as_bytes())
        .with_context(|| format!("writing {}", signature_path(&path).display()))?;
    crate::store::atomic::write(&path, &checked.bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(Kept::Newest(path))
}

/// Is RFC 3339 time `a` later than `b`?
fn newer(a: &str, b: &str) -> bool {
    match (humantime::parse_rfc3339(a), humantime::parse_rfc3339(b)) {
        (Ok(x), Ok(y)) => x > y,
        _ => a > b,
    }
}

/// The cached receipt of `site`: a site key id (16 hex digits) or a site name.
pub fn cached(cache: &Store, site: &str) -> Result<PathBuf> {
    let layout = cache.layout();
    if site.len() == 16 && site.bytes().all(|b| b.is_ascii_hexdigit()) {
        let p = layout.site_receipt(&site.to_ascii_uppercase());
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "the cache {} has no receipt from site key {site}: pass the site's receipt file (`--since-receipt site.receipt`)",
            cache.root().display()
        );
    }
    let mut found = Vec::new();
    for e in read_dir(&layout.sites_dir())? {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "receipt") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&p) else { continue };
        if parse(&bytes).is_ok_and(|r| r.site == site) {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "`{site}` is not a receipt file, and the cache {} has no receipt from a site of that name: \
             pass the site's receipt file (`--since-receipt site.receipt`)",
            cache.root().display()
        ),
        _ => {
            let ids: Vec<String> =
                found.iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
            bail!("several site keys call themselves `{site}` ({}): name one by its key id", ids.join(", "))
        }
    }
}

/// This machine's name, for a receipt's `site` when `--name` is not given.
pub fn default_site_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host = host.trim().split('.').next().unwrap_or("").to_string();
    if crate::names::bundle_name(&host).is_ok() { host } else { "site".to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Receipt {
        let d = Digest::of(b"x");
        Receipt {
            media_type: RECEIPT_MEDIA_TYPE.into(),
            schema_version: 1,
            site: "site-a".into(),
            site_key: "0123456789ABCDEF".into(),
            created: "2026-12-01T10:00:00Z".into(),
            generator: "airlock test".into(),
            imported: vec![],
            blobs: BTreeMap::from([("file".to_string(), BTreeMap::from([(d, 1)]))]),
            files: BTreeMap::from([("raw".to_string(), BTreeMap::from([("a/b".to_string(), d)]))]),
            git: BTreeMap::from([(
                "hello".to_string(),
                GitState {
                    head: Some("refs/heads/main".into()),
                    refs: BTreeMap::from([("refs/heads/main".to_string(), "a".repeat(40))]),
                },
            )]),
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_the_schema() {
        let r = sample();
        assert_eq!(parse(&r.to_bytes()).unwrap(), r);
    }

    #[test]
    fn refuses_names_a_factory_would_pass_to_git() {
        let mut r = sample();
        r.git.get_mut("hello").unwrap().refs.insert("refs/heads/x".into(), "HEAD\n--all".into());
        let e = parse(&r.to_bytes()).unwrap_err();
        assert!(e.contains("/git/hello/refs/refs~1heads~1x") || e.contains("not a valid git object id"), "{e}");
        let mut r = sample();
        r.git.insert("../x".into(), GitState::default());
        assert!(parse(&r.to_bytes()).is_err());
        let manifest = br#"{"mediaType":"application/vnd.airlock.bundle.manifest.v1+json"}"#;
        assert!(parse(manifest).unwrap_err().contains("not an airlock receipt"));
    }
}
