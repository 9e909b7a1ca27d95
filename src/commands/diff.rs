use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use crate::bundle::BundleError;
use crate::bundle::manifest::{self, Kind, MANIFEST_MEDIA_TYPE};
use crate::bundle::reader::{Fault, Source};
use crate::bundle::sign::PublicKey;
use crate::bundle::verify::{Head, check_head, read_head};
use crate::cli::DiffArgs;
use crate::diff::{Diff, Item, Side, compare};
use crate::digest::Digest;
use crate::exit::ExitStatus;
use crate::receipt::{self, RECEIPT_MEDIA_TYPE};
use crate::trust::TrustStore;

use super::{CmdResult, Ctx, bytes};

pub fn diff(args: &DiffArgs, cx: &Ctx) -> CmdResult {
    let bundle_keys = cx.trust().keys_with(&args.trusted_keys)?;
    let site_keys = TrustStore::sites(&cx.config_dir).keys()?;
    let a = load(&args.a, &bundle_keys, &site_keys)?;
    let b = load(&args.b, &bundle_keys, &site_keys)?;
    let mut ancestry = Ancestry {
        repos: [
            args.cache_dir.clone().unwrap_or_else(crate::dirs::cache_dir),
            args.store.clone().unwrap_or_else(crate::dirs::store_dir),
        ],
        paths: [args.a.clone(), args.b.clone()],
        sides: [&a, &b],
        unpacked: None,
    };
    let d = compare(&a, &b, &mut |x, y, old, new| ancestry.fast_forward(x, y, old, new));
    cx.printer.data(&to_json(&a, &b, &d), || render(&a, &b, &d));
    Ok(ExitStatus::Success)
}

/// Read one side: a receipt, a manifest, or a bundle in any form. A signature that does
/// not check is reported, not refused: an auditor may compare what they do not trust.
fn load(path: &Path, bundle_keys: &[PublicKey], site_keys: &[PublicKey]) -> Result<Side> {
    let shown = path.display();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let json_media_type =
        if path.is_file() && !name.ends_with(".airlock.volumes") { json_media_type(path) } else { None };
    match json_media_type.as_deref() {
        Some(RECEIPT_MEDIA_TYPE) => {
            let (r, digest, signature) = match receipt::open(path, site_keys) {
                Ok(c) => (c.receipt, c.digest, format!("trusted site key {}", c.signer)),
                Err(BundleError::NotAuthentic(why)) => {
                    let bytes = std::fs::read(path).with_context(|| format!("reading {shown}"))?;
                    let r =
                        receipt::parse(&bytes).map_err(|e| BundleError::NotABundle(format!("receipt {shown}: {e}")))?;
                    (r, Digest::of(&bytes), format!("NOT TRUSTED: {why}"))
                }
                Err(e) => return Err(e.into()),
            };
            Ok(Side::from_receipt(&r, digest, signature))
        }
        Some(MANIFEST_MEDIA_TYPE) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {shown}"))?;
            let sig = std::fs::read_to_string(format!("{}.minisig", path.display())).unwrap_or_default();
            let (m, digest, signature) = checked(Head { manifest_bytes: bytes, signature: sig }, bundle_keys)
                .map_err(|e| anyhow::Error::new(e).context(shown.to_string()))?;
            Ok(Side::from_manifest(&m, "manifest", digest, signature))
        }
        Some(other) => Err(BundleError::NotABundle(format!(
            "{shown} is JSON of media type `{other}`: not a bundle, a manifest.json or a receipt"
        ))
        .into()),
        None => {
            let head = read_head(path)?;
            let (m, digest, signature) = checked(head, bundle_keys)?;
            Ok(Side::from_manifest(&m, "bundle", digest, signature))
        }
    }
}

/// The `mediaType` of a JSON file, or None if it is not JSON (a bundle).
fn json_media_type(path: &Path) -> Option<String> {
    let mut first = [0u8; 1];
    let mut f = std::fs::File::open(path).ok()?;
    loop {
        f.read_exact(&mut first).ok()?;
        if !first[0].is_ascii_whitespace() {
            break;
        }
    }
    if first[0] != b'{' {
        return None;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        media_type: Option<String>,
    }
    let len = std::fs::metadata(path).ok()?.len();
    if len > receipt::MAX_RECEIPT {
        return Some(String::new());
    }
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice::<Typed>(&bytes).ok().and_then(|t| t.media_type).unwrap_or_default())
}

/// The manifest, its digest, and who signed it (or why that is not trusted).
fn checked(head: Head, keys: &[PublicKey]) -> Result<(manifest::Manifest, Digest, String), BundleError> {
    match check_head(&head, keys) {
        Ok((m, d, signer)) => Ok((m, d, format!("trusted key {signer}"))),
        Err(BundleError::NotAuthentic(why)) => {
            let m = manifest::parse(&head.manifest_bytes).map_err(BundleError::NotABundle)?;
            Ok((m, Digest::of(&head.manifest_bytes), format!("NOT TRUSTED: {why}")))
        }
        Err(e) => Err(e),
    }
}

/// Tells a fast-forward from a forced move, from whatever has the commits: the cache's
/// repository for the upstream, the store's repository of that name, or else the git
/// bundles the two sides carry, unpacked once into a scratch repository.
struct Ancestry<'a> {
    /// The cache, the store.
    repos: [PathBuf; 2],
    paths: [PathBuf; 2],
    sides: [&'a Side; 2],
    /// The scratch repository with both sides' git bundles, once made; and which
    /// repositories it has full history for (a full git bundle on side B).
    unpacked: Option<Option<(tempfile::TempDir, BTreeSet<String>)>>,
}

impl Ancestry<'_> {
    fn fast_forward(&mut self, a: &Item, b: &Item, old: &str, new: &str) -> Option<bool> {
        let oids = [old.to_string(), new.to_string()];
        let refs: Vec<&String> = oids.iter().collect();
        let mut candidates: Vec<PathBuf> = Vec::new();
        let cache_git = crate::store::Layout::new(&self.repos[0]).git_dir();
        for upstream in [&b.upstream, &a.upstream].into_iter().flatten() {
            candidates.push(crate::source::git::GitSource::repo_for(&cache_git, upstream));
        }
        candidates.push(crate::store::Layout::new(&self.repos[1]).git_repo(&b.name));
        for repo in candidates.iter().filter(|r| r.join("HEAD").is_file()) {
            if crate::git::existing_objects(repo, &refs).is_ok_and(|have| have.len() == 2) {
                return Some(crate::git::is_ancestor(repo, old, new));
            }
        }
        if self.unpacked.is_none() {
            self.unpacked = Some(self.unpack().ok());
        }
        let (dir, full) = self.unpacked.as_ref()?.as_ref()?;
        let repo = dir.path().join(format!("{}.git", b.name));
        let have = crate::git::existing_objects(&repo, &refs).ok()?;
        if have.contains(new) && have.contains(old) {
            return Some(crate::git::is_ancestor(&repo, old, new));
        }
        // B's full git bundle has all of new's history: an old commit not in it is not an
        // ancestor.
        (have.contains(new) && full.contains(&b.name)).then_some(false)
    }

    /// Unpack the git bundles of both sides (A first: B's may build on it).
    fn unpack(&self) -> Result<(tempfile::TempDir, BTreeSet<String>)> {
        let dir = tempfile::tempdir()?;
        let mut full = BTreeSet::new();
        for (i, side) in self.sides.iter().enumerate() {
            let wanted: BTreeMap<Digest, &Item> = side
                .artifacts
                .values()
                .filter(|x| x.kind == Kind::Git)
                .filter_map(|x| Some((x.git_bundle?, x)))
                .filter(|(d, _)| side.blobs.get(d).is_some_and(Option::is_some))
                .collect();
            if wanted.is_empty() || side.what != "bundle" {
                continue;
            }
            let files = extract(&self.paths[i], &wanted.keys().copied().collect(), dir.path())?;
            for (d, item) in wanted {
                let Some(file) = files.get(&d) else { continue };
                let repo = dir.path().join(format!("{}.git", item.name));
                crate::git::init_bare(&repo)?;
                let unbundled =
                    crate::git::run(Some(&repo), &["bundle".as_ref(), "unbundle".as_ref(), file.as_os_str()], None);
                if i == 1 && unbundled.is_ok() {
                    let mut f = std::fs::File::open(file)?;
                    if crate::source::git::read_prerequisites(&mut f)?.is_empty() {
                        full.insert(item.name.clone());
                    }
                }
            }
        }
        Ok((dir, full))
    }
}

/// Copy the blobs `wanted` out of the bundle at `path` into `dir`; returns where each is.
fn extract(path: &Path, wanted: &BTreeSet<Digest>, dir: &Path) -> Result<BTreeMap<Digest, PathBuf>> {
    let source = Source::open(path, None)?;
    let mut out = BTreeMap::new();
    if let Source::Dir(root) = &source {
        for d in wanted {
            let p = root.join(manifest::Manifest::blob_member(d));
            if p.is_file() {
                out.insert(*d, p);
            }
        }
        return Ok(out);
    }
    let fault = Fault::default();
    let stream = source.tar_stream(&fault, &indicatif::ProgressBar::hidden())?;
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().context("reading the bundle")? {
        let mut entry = entry.context("reading the bundle")?;
        let name = entry.path().ok().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let Some(d) = name.strip_prefix(manifest::BLOB_PREFIX).and_then(|h| Digest::from_hex(h).ok()) else {
            continue;
        };
        if !wanted.contains(&d) {
            continue;
        }
        let dest = dir.join(format!("{}.bundle", d.hex()));
        let mut f = crate::store::AtomicFile::new(&dest)?;
        std::io::copy(&mut entry, &mut f)?;
        f.commit()?;
        out.insert(d, dest);
        if out.len() == wanted.len() {
            break;
        }
    }
    Ok(out)
}

fn side_json(s: &Side) -> serde_json::Value {
    json!({
        "what": s.what,
        "name": s.label,
        "digest": s.digest,
        "signature": s.signature,
        "base": s.base,
        "artifacts": s.artifacts.len(),
        "blobs": s.blobs.len(),
    })
}

fn to_json(a: &Side, b: &Side, d: &Diff) -> serde_json::Value {
    json!({
        "a": side_json(a),
        "b": side_json(b),
        "identical": d.is_empty(),
        "added": d.added,
        "removed": d.removed,
        "changed": d.changed,
        "unchanged": d.unchanged,
        "blobs": d.blobs,
    })
}

fn short(d: &Option<Digest>) -> String {
    d.map(|d| format!("sha256:{}", &d.hex()[..12])).unwrap_or_default()
}

fn oid(o: &Option<String>) -> String {
    o.as_deref().map(|o| o[..o.len().min(12)].to_string()).unwrap_or_default()
}

/// The version or, for kinds without one, the digest.
fn what(version: &Option<String>, digest: &Option<Digest>, kind: Kind) -> String {
    match (kind, version) {
        (Kind::Git, Some(v)) => oid(&Some(v.clone())),
        (Kind::Image, Some(v)) => format!("{v} {}", short(digest)),
        (_, Some(v)) => v.clone(),
        (_, None) => short(digest),
    }
}

fn render(a: &Side, b: &Side, d: &Diff) -> String {
    let mut s = String::new();
    for (tag, side) in [("a", a), ("b", b)] {
        s.push_str(&format!("{tag}  {} {}  {} ({})\n", side.what, side.label, side.digest, side.signature));
        if let Some(base) = &side.base {
            s.push_str(&format!("   differential on {} ({})\n", base.label(), base.digest()));
        }
    }
    s.push_str(&format!(
        "\nartifacts: {} added, {} removed, {} changed, {} unchanged\n",
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    ));
    for i in &d.added {
        s.push_str(&format!("  + {:<7} {:<52} {}\n", i.kind.to_string(), i.name, what(&i.version, &i.digest, i.kind)));
    }
    for i in &d.removed {
        s.push_str(&format!("  - {:<7} {:<52} {}\n", i.kind.to_string(), i.name, what(&i.version, &i.digest, i.kind)));
    }
    for c in &d.changed {
        s.push_str(&format!(
            "  ~ {:<7} {:<52} {} -> {}\n",
            c.kind.to_string(),
            c.name,
            what(&c.from.version, &c.from.digest, c.kind),
            what(&c.to.version, &c.to.digest, c.kind)
        ));
        for r in &c.refs {
            let (from, to) = (oid(&r.from), oid(&r.to));
            let how = match r.change {
                "added" => format!("added    at {to}"),
                "deleted" => format!("deleted  was {from}"),
                "moved" => format!("moved    {from} -> {to} (fast-forward)"),
                "forced" if r.name.starts_with("refs/tags/") => format!("forced   {from} -> {to} (a tag moved)"),
                "forced" => format!("forced   {from} -> {to} (not a fast-forward)"),
                _ => format!("moved    {from} -> {to} (no repository at hand tells whether it is a fast-forward)"),
            };
            s.push_str(&format!("      {:<40} {how}\n", r.name));
        }
    }
    let set = |x: &crate::diff::BlobSet| {
        let unknown = if x.unknown_size > 0 {
            format!(", {} of unknown size (in a base)", x.unknown_size)
        } else {
            String::new()
        };
        format!("{} ({}{unknown})", x.count, bytes(x.bytes))
    };
    s.push_str(&format!(
        "\nblobs: {} only in b, {} only in a, {} in both\n",
        set(&d.blobs.added),
        set(&d.blobs.removed),
        set(&d.blobs.shared)
    ));
    s
}
