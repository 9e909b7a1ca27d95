//! What an import checks once the bundle has verified, before any target is planned:
//!
//! - **a differential bundle's base was imported into this store**, found by the base's
//!   manifest digest, which the delta's signed manifest names; otherwise the import stops
//!   and names the bundle to import first;
//! - **a differential bundle made from a site receipt finds what it leaves to the
//!   store**: every blob its artifacts name but it does not carry, every commit its
//!   incremental git bundles build on, every repository whose refs it leaves unchanged.
//!   The check is on the store's state, not on which bundles it imported: a bundle lost in
//!   transit costs nothing, and a store that lost state since its receipt is told exactly
//!   what is missing;
//! - **no rollback**: a bundle older than the newest one already imported under the same
//!   name is refused unless `--allow-downgrade`. Older means a lower `version` (compared
//!   as dpkg compares versions: see [`compare_versions`]), or the same version with an
//!   earlier `created` time. Replaying an old, validly signed bundle is how an attacker
//!   would bring back a version with known holes (the attack TUF and Uptane's offline
//!   updates defend against).
//!
//! The store remembers what it imported in `<store>/imported.json`, one entry per
//! manifest, written (temp + fsync + rename) when an import completes. Stores that
//! imported bundles before this file existed still count for the base check through their
//! receipts (`<store>/receipts/<bundle>/<time>.json` name the manifest digest); their
//! receipts do not record version and creation time, so rollback protection starts with
//! the first import that writes the file. docs/bundle-format.md describes both rules.

use std::cmp::Ordering;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bundle::manifest::{Base, Kind, Manifest, ReceiptBase};
use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::receipt::ImportedBundle;
use crate::store::{Layout, Store};

const INDEX_MEDIA_TYPE: &str = "application/vnd.airlock.imported.v1+json";

/// `<store>/imported.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    media_type: String,
    bundles: Vec<Entry>,
}

/// One imported bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    name: String,
    version: String,
    created: String,
    manifest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<Digest>,
    /// When it was last imported.
    imported: String,
}

impl Entry {
    fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

fn index_path(store: &Store) -> PathBuf {
    store.layout().imported_index()
}

fn load(store: &Store) -> Result<Index> {
    load_at(store.layout())
}

fn load_at(layout: &Layout) -> Result<Index> {
    let path = layout.imported_index();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let index: Index = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is damaged: it records the bundles imported into this store; restore it from a backup",
            path.display()
        )
    })?;
    if index.media_type != INDEX_MEDIA_TYPE {
        bail!("{} is `{}`, not `{INDEX_MEDIA_TYPE}`", path.display(), index.media_type);
    }
    Ok(index)
}

/// Refuse a delta whose base this store never imported, and a downgrade unless allowed.
pub fn check(store: &Store, bundle: &VerifiedBundle, allow_downgrade: bool) -> Result<()> {
    check_manifest(store, &bundle.manifest, &bundle.manifest_digest, allow_downgrade)
}

/// [`check`] on a signed manifest alone: what an import answered from its record checks.
pub fn check_manifest(store: &Store, m: &Manifest, manifest_digest: &Digest, allow_downgrade: bool) -> Result<()> {
    let index = load(store)?;
    if let Some(Base::Receipt(r)) = &m.base {
        check_receipt_base(store, m, r)?;
    }
    if let Some(Base::Bundle(base)) = &m.base
        && !index.bundles.iter().any(|e| e.manifest == base.manifest)
        && !receipts_name(store, &base.manifest)?
    {
        let base_id = format!("{}-{}", base.name, base.version);
        bail!(
            "{} is a differential bundle on top of {base_id} (manifest {}), which was never imported into the store {}: \
             import the base bundle `{base_id}` first",
            m.id(),
            base.manifest,
            store.root().display()
        );
    }
    let newest = index.bundles.iter().filter(|e| e.name == m.name).max_by(|a, b| order(a, b));
    if let Some(newest) = newest
        && !allow_downgrade
    {
        let this = Entry {
            name: m.name.clone(),
            version: m.version.clone(),
            created: m.created.clone(),
            manifest: *manifest_digest,
            base: None,
            imported: String::new(),
        };
        if order(&this, newest) == Ordering::Less {
            bail!(
                "{} (created {}) is older than {} (created {}), which the store {} already imported: \
                 refusing to roll back; pass --allow-downgrade to import it anyway",
                m.id(),
                m.created,
                newest.id(),
                newest.created,
                store.root().display()
            );
        }
    }
    Ok(())
}

/// Remember a completed import.
pub fn record(store: &Store, bundle: &VerifiedBundle) -> Result<()> {
    record_manifest(store, &bundle.manifest, &bundle.manifest_digest)
}

/// [`record`] for a signed manifest alone.
pub fn record_manifest(store: &Store, m: &Manifest, manifest_digest: &Digest) -> Result<()> {
    let mut index = load(store)?;
    index.media_type = INDEX_MEDIA_TYPE.into();
    index.bundles.retain(|e| e.manifest != *manifest_digest);
    index.bundles.push(Entry {
        name: m.name.clone(),
        version: m.version.clone(),
        created: m.created.clone(),
        manifest: *manifest_digest,
        base: m.base.as_ref().map(Base::digest),
        imported: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    index.bundles.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| order(a, b)));
    let mut bytes = serde_json::to_vec_pretty(&index)?;
    bytes.push(b'\n');
    let path = index_path(store);
    crate::store::atomic::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))
}

/// The newest import of each bundle name in a store's `imported.json`, as (name, version,
/// manifest digest), read without opening the store (which would create its directories).
pub fn newest(layout: &Layout) -> Result<Vec<(String, String, Digest)>> {
    let mut newest: std::collections::BTreeMap<String, Entry> = std::collections::BTreeMap::new();
    for e in load_at(layout)?.bundles {
        match newest.get(&e.name) {
            Some(have) if order(have, &e) != Ordering::Less => {}
            _ => {
                newest.insert(e.name.clone(), e);
            }
        }
    }
    Ok(newest.into_values().map(|e| (e.name, e.version, e.manifest)).collect())
}

/// The bundles imported into `store`: `imported.json`, and the import receipts of stores
/// from before it (by manifest digest only). What `airlock receipt` reports; the one place
/// that knows where the import history is kept.
pub fn imported(store: &Store) -> Result<Vec<ImportedBundle>> {
    let mut out: Vec<ImportedBundle> = load(store)?
        .bundles
        .into_iter()
        .map(|e| ImportedBundle {
            name: e.name,
            version: Some(e.version),
            created: Some(e.created),
            manifest: e.manifest,
            base: e.base,
            imported: Some(e.imported),
        })
        .collect();
    #[derive(Deserialize)]
    struct Receipt {
        bundle: Option<String>,
        manifest: Option<Digest>,
        imported: Option<String>,
    }
    let root = store.layout().receipts_dir();
    let Ok(dirs) = std::fs::read_dir(&root) else { return Ok(out) };
    let mut legacy: Vec<ImportedBundle> = Vec::new();
    for dir in dirs.filter_map(Result::ok) {
        let Ok(receipts) = std::fs::read_dir(dir.path()) else { continue };
        for r in receipts.filter_map(Result::ok) {
            let Ok(bytes) = std::fs::read(r.path()) else { continue };
            let Ok(Receipt { bundle: Some(name), manifest: Some(manifest), imported }) = serde_json::from_slice(&bytes)
            else {
                continue;
            };
            if out.iter().chain(&legacy).any(|e| e.manifest == manifest) {
                continue;
            }
            let imported = imported.filter(|t| humantime::parse_rfc3339(t).is_ok());
            legacy.push(ImportedBundle { name, version: None, created: None, manifest, base: None, imported });
        }
    }
    legacy.sort_by(|a, b| (&a.name, &a.imported).cmp(&(&b.name, &b.imported)));
    out.extend(legacy);
    Ok(out)
}

/// A delta made from a receipt: the store must still hold everything the delta leaves
/// to it. Refused, naming what is missing, before anything is kept or planned.
fn check_receipt_base(store: &Store, m: &Manifest, r: &ReceiptBase) -> Result<()> {
    let carried: std::collections::BTreeSet<_> = m.blobs.iter().map(|b| b.digest).collect();
    let mut missing: Vec<String> = Vec::new();
    let mut count = 0usize;
    let mut note = |what: String| {
        count += 1;
        if missing.len() < 5 {
            missing.push(what);
        }
    };
    for a in &m.artifacts {
        if a.kind == Kind::Git {
            let repo = store.git_repo(&a.name);
            let exists = repo.join("HEAD").is_file();
            let needed: Vec<&String> = if a.blobs.is_empty() {
                a.refs.iter().flatten().map(|(_, oid)| oid).collect()
            } else {
                a.prerequisites.iter().collect()
            };
            if needed.is_empty() {
                continue;
            }
            if !exists {
                note(format!("git repository `{}`", a.name));
                continue;
            }
            let have = crate::git::existing_objects(&repo, &needed)?;
            let lacking: Vec<&str> = needed.iter().filter(|o| !have.contains(o.as_str())).map(|o| o.as_str()).collect();
            if !lacking.is_empty() {
                note(format!("commit {} in git repository `{}`", lacking.join(", "), a.name));
            }
            continue;
        }
        for d in a.blobs.iter().filter(|d| !carried.contains(d)) {
            if !store.contains(d) {
                note(format!("blob {d} of {} `{}`", a.kind, a.name));
            }
        }
    }
    if count == 0 {
        return Ok(());
    }
    let more = if count > missing.len() { format!(" and {} more", count - missing.len()) } else { String::new() };
    bail!(
        "{} was made for the state in the receipt of site `{}` ({}, {}), but the store {} no longer holds {}{more}: \
         send the factory a new receipt (`airlock receipt`) for a bundle made from what the store holds now, \
         or import a full bundle",
        m.id(),
        r.site,
        r.receipt,
        r.created,
        store.root().display(),
        missing.join(", ")
    )
}

/// Does a receipt in the store name this manifest? (Stores from before `imported.json`.)
fn receipts_name(store: &Store, manifest: &Digest) -> Result<bool> {
    #[derive(Deserialize)]
    struct Receipt {
        manifest: Option<Digest>,
    }
    let root = store.layout().receipts_dir();
    let Ok(bundles) = std::fs::read_dir(&root) else { return Ok(false) };
    for dir in bundles.filter_map(Result::ok) {
        let Ok(receipts) = std::fs::read_dir(dir.path()) else { continue };
        for r in receipts.filter_map(Result::ok) {
            let Ok(bytes) = std::fs::read(r.path()) else { continue };
            if serde_json::from_slice::<Receipt>(&bytes).is_ok_and(|r| r.manifest == Some(*manifest)) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether a bundle of `version` created at `created` is older than one of `than`, as the
/// rollback rule sees it: what a store that imported `than` would refuse.
pub fn is_older(version: &str, created: &str, than: (&str, &str)) -> bool {
    let entry = |version: &str, created: &str| Entry {
        name: String::new(),
        version: version.into(),
        created: created.into(),
        manifest: Digest::of(b""),
        base: None,
        imported: String::new(),
    };
    order(&entry(version, created), &entry(than.0, than.1)) == Ordering::Less
}

/// Version order, then creation time.
fn order(a: &Entry, b: &Entry) -> Ordering {
    compare_versions(&a.version, &b.version).then_with(|| {
        match (humantime::parse_rfc3339(&a.created), humantime::parse_rfc3339(&b.created)) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.created.cmp(&b.created),
        }
    })
}

/// Compare two bundle versions the way dpkg compares version strings (`verrevcmp`):
/// runs of digits compare as numbers (`1.9 < 1.10`), other runs character by
/// character, letters before other characters, and a string that ends first is smaller
/// (`1.0 < 1.0.1`, `1.0 < 1.0-rc1`; airlock versions have no `~`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn weight(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (x, y) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if x != y {
                return x.cmp(&y);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first == Ordering::Equal {
                first = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first != Ordering::Equal {
            return first;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_like_dpkg() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.9", "1.10", Less),
            ("1.0", "1.0.1", Less),
            ("1.0", "1.0-rc1", Less),
            ("1.0a", "1.0b", Less),
            ("1.0a", "1.0+", Less),
            ("2026.11", "2026.2", Greater),
            ("20261122.022622", "20261122.100000", Less),
            ("01", "1", Equal),
            ("2", "10", Less),
            ("a", "1", Greater),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn agrees_with_dpkg_when_it_is_installed() {
        // dpkg is a test tool of this project (scripts/test.sh installs it).
        let pairs = [("1.0", "1.0.1"), ("1.9", "1.10"), ("1.0-rc1", "1.0"), ("1.0a", "1.0+"), ("0.9.9", "0.10")];
        for (a, b) in pairs {
            let lt = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .expect("dpkg runs")
                .success();
            assert_eq!(compare_versions(a, b) == Ordering::Less, lt, "{a} vs {b}");
        }
    }
}
