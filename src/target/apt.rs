//! Debian packages into a signed apt repository in the store
//! (`<store>/repository/<name>/`, served by `airlock serve` at `/repository/<name>/`):
//!
//! ```text
//! pool/<component>/<prefix>/<source>/<package>_<version>_<arch>.deb
//! dists/<suite>/<component>/binary-<arch>/Packages{,.gz,.xz}   (+ by-hash/SHA256/<hex>)
//! dists/<suite>/{Release,Release.gpg,InRelease}
//! airlock-archive-keyring.{asc,gpg}                             the site key, for Signed-By
//! ```
//!
//! The repository is the union of every bundle imported: packages already there stay. A
//! pool path that holds other bytes, or a package (name, version, arch) already published
//! with other content, is a conflict refused before anything changes. Indexes are written
//! first (also under `by-hash/`, which apt uses, so a client never sees a Release that
//! names indexes not yet written), the Release files last; a failed import puts back what
//! it replaced and removes what it added.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::bundle::manifest::{Artifact, Kind};
use crate::bundle::verify::VerifiedBundle;
use crate::debian::deb822::{self, Paragraph};
use crate::debian::openpgp::{SiteKey, public_key_files};
use crate::debian::version;
use crate::digest::Digest;
use crate::progress::Reporter;
use crate::relpath::RelPath;
use crate::source::debian::ARCHIVE_FIELDS;
use crate::store::{PathState, Store, atomic};

use super::{Journal, Placed, Target};

pub const KEYRING_STEM: &str = crate::store::APT_KEYRING_STEM;

/// The store's apt repository. The signing key is loaded while planning, so a missing
/// key or a wrong passphrase stops the import before anything changes.
pub struct StoreApt<'a> {
    pub store: &'a Store,
    pub repo: String,
    pub key_path: PathBuf,
    pub passphrase: Option<String>,
    /// Give each Release a `Valid-Until` this long after the import; every suite the
    /// bundle names is then re-signed, even if its packages did not change.
    pub valid_for: Option<std::time::Duration>,
}

/// (package, version, arch)
type Key = (String, String, String);

#[derive(Default)]
struct Suite {
    architectures: BTreeSet<String>,
    components: BTreeSet<String>,
    /// component -> package -> its stanza (with the site's Filename, Size, SHA256)
    stanzas: BTreeMap<String, BTreeMap<Key, Paragraph>>,
    changed: bool,
}

pub struct AptPlan {
    add: Vec<(RelPath, Digest)>,
    placed: Vec<(String, &'static str, RelPath)>,
    suites: BTreeMap<String, Suite>,
    key: Option<SiteKey>,
}

impl AptPlan {
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }
    pub fn suites(&self) -> Vec<String> {
        self.suites.keys().cloned().collect()
    }
    pub fn fingerprint(&self) -> Option<String> {
        self.key.as_ref().map(SiteKey::fingerprint)
    }
}

fn label(a: &Artifact) -> String {
    format!("{} {} ({})", a.name, a.version.as_deref().unwrap_or("?"), a.arch.as_deref().unwrap_or("?"))
}

fn key_of(p: &Paragraph) -> Key {
    let f = |n: &str| p.get(n).unwrap_or("").to_string();
    (f("Package"), f("Version"), f("Architecture"))
}

impl StoreApt<'_> {
    fn dists(&self, suite: &str) -> PathBuf {
        self.store.layout().apt_suite(&self.repo, suite)
    }

    /// What a suite already publishes, read through its Release and the by-hash copies
    /// of the indexes it names (so a half-finished earlier import cannot confuse it).
    fn existing(&self, suite: &str) -> Result<Suite> {
        let dir = self.dists(suite);
        let release_path = dir.join("Release");
        let text = match std::fs::read_to_string(&release_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Suite::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", release_path.display())),
        };
        let what = release_path.display().to_string();
        let rel = deb822::parse_one(&text, &what)?;
        let words =
            |f: &str| -> BTreeSet<String> { rel.get(f).unwrap_or("").split_whitespace().map(String::from).collect() };
        let mut s =
            Suite { architectures: words("Architectures"), components: words("Components"), ..Default::default() };
        for line in deb822::lines(rel.get("SHA256").unwrap_or("")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, path] = parts[..] else { bail!("{what}: bad SHA256 line `{line}`") };
            let Some((comp, arch_dir)) = path.strip_suffix("/Packages").and_then(|p| p.rsplit_once('/')) else {
                continue;
            };
            if !arch_dir.starts_with("binary-") {
                continue;
            }
            let d = Digest::from_hex(hex).map_err(|_| anyhow!("{what}: bad SHA256 line `{line}`"))?;
            let copy = dir.join(comp).join(arch_dir).join("by-hash/SHA256").join(d.hex());
            let bytes = std::fs::read(&copy).with_context(|| format!("reading {}", copy.display()))?;
            if Digest::of(&bytes) != d {
                bail!("{} does not match {what}: the repository was changed behind airlock's back", copy.display());
            }
            let text = String::from_utf8(bytes).map_err(|_| anyhow!("{} is not UTF-8", copy.display()))?;
            let entry = s.stanzas.entry(comp.to_string()).or_default();
            for p in deb822::parse(&text, &copy.display().to_string())? {
                entry.insert(key_of(&p), p);
            }
        }
        Ok(s)
    }
}

impl Target for StoreApt<'_> {
    type Plan = AptPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<AptPlan> {
        let debs: Vec<&Artifact> = bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Debian).collect();
        let mut plan = AptPlan { add: Vec::new(), placed: Vec::new(), suites: BTreeMap::new(), key: None };
        if debs.is_empty() {
            return Ok(plan);
        }
        let key = SiteKey::load(&self.key_path, self.passphrase.clone()).map_err(|e| {
            if self.key_path.exists() {
                e
            } else {
                anyhow!(
                    "no apt signing key at {}: run `airlock key apt generate` (or pass --apt-key)",
                    self.key_path.display()
                )
            }
        })?;
        let mut seen_paths = BTreeSet::new();
        for a in debs {
            let what = || format!("debian artifact {}", label(a));
            let (Some(path), [d], Some(control), Some(suite), Some(comp)) =
                (&a.path, &a.blobs[..], &a.control, &a.suite, &a.component)
            else {
                bail!("{}: incomplete in the manifest", what());
            };
            let size = self.store.blob_size(d).ok_or_else(|| super::missing_base_blob(bundle, d, &label(a)))?;
            let para = deb822::parse_one(control, &what())?.without(ARCHIVE_FIELDS);
            let k = key_of(&para);
            if (k.0.as_str(), Some(k.1.as_str()), Some(k.2.as_str()))
                != (a.name.as_str(), a.version.as_deref(), a.arch.as_deref())
            {
                bail!("{}: its control stanza names {} {} ({})", what(), k.0, k.1, k.2);
            }
            if crate::debian::pool_path(comp, &para).with_context(what)? != *path {
                bail!("{}: pool path {path} does not follow the pool layout", what());
            }
            let mut stanza = para;
            stanza.push("Filename", path.as_str());
            stanza.push("Size", size.to_string());
            stanza.push("SHA256", d.hex());
            if !plan.suites.contains_key(suite) {
                plan.suites.insert(suite.clone(), self.existing(suite)?);
            }
            let s = plan.suites.get_mut(suite).expect("inserted");
            s.changed |= self.valid_for.is_some();
            for arch in &a.architectures {
                s.changed |= s.architectures.insert(arch.clone());
            }
            s.changed |= s.components.insert(comp.clone());
            let entry = s.stanzas.entry(comp.clone()).or_default();
            match entry.get(&k) {
                Some(old) if old.get("SHA256") == Some(d.hex().as_str()) => {}
                Some(old) => bail!(
                    "apt repository `{}` suite `{suite}` already has {} with other content (SHA256 {}, the bundle has {}); nothing was changed",
                    self.repo,
                    label(a),
                    old.get("SHA256").unwrap_or("?"),
                    d.hex()
                ),
                None => {
                    entry.insert(k, stanza);
                    s.changed = true;
                }
            }
            let action = match self.store.repository_state(&self.repo, path, d)? {
                PathState::Missing => {
                    if seen_paths.insert(path.clone()) {
                        plan.add.push((path.clone(), *d));
                    }
                    "added"
                }
                PathState::Same => "present",
                PathState::Different(have) => bail!(
                    "apt repository `{}` already has {path} with other content ({have}, the bundle has {d}); nothing was changed",
                    self.repo
                ),
            };
            plan.placed.push((label(a), action, path.clone()));
        }
        plan.key = Some(key);
        Ok(plan)
    }

    fn load<'a>(
        &'a self,
        plan: AptPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        if plan.is_empty() {
            return Ok(Vec::new());
        }
        let bar = reporter.items("apt", plan.add.len() as u64);
        let mut added: Vec<&RelPath> = Vec::new();
        let mut replaced = Replaced::default();
        let result = (|| -> Result<()> {
            for (path, d) in &plan.add {
                self.store.place_in_repository(&self.repo, path, d).with_context(|| format!("importing {path}"))?;
                added.push(path);
                bar.inc(1);
            }
            let key = plan.key.as_ref().expect("planned with a key");
            for (name, suite) in plan.suites.iter().filter(|(_, s)| s.changed) {
                self.publish(name, suite, key, &mut replaced)?;
            }
            let (asc, gpg) = public_key_files(&key.public())?;
            let layout = self.store.layout();
            replaced.write(&layout.apt_keyring(&self.repo, "asc"), asc.as_bytes())?;
            replaced.write(&layout.apt_keyring(&self.repo, "gpg"), &gpg)?;
            Ok(())
        })();
        if let Err(e) = result {
            replaced.restore();
            for p in added {
                let _ = self.store.remove_from_repository(&self.repo, p);
            }
            return Err(e.context("publishing the apt repository; it was put back as it was"));
        }
        let layout = self.store.layout();
        let placed: Vec<Placed> = plan
            .placed
            .into_iter()
            .map(|(name, action, path)| Placed {
                kind: "debian".into(),
                name,
                action,
                location: layout.repository_file(&self.repo, &path).display().to_string(),
            })
            .collect();
        // A later target's failure undoes this one as its own failure would have.
        let added: Vec<RelPath> = added.into_iter().cloned().collect();
        let (store, repo) = (self.store, self.repo.as_str());
        journal.record(placed.iter().filter(|p| p.action != "present").cloned().collect(), move || {
            replaced.restore();
            for p in &added {
                let _ = store.remove_from_repository(repo, p);
            }
            Ok(())
        });
        Ok(placed)
    }
}

/// Files an import overwrote, with what they held, so a failure can put them back.
#[derive(Default)]
struct Replaced(Vec<(PathBuf, Option<Vec<u8>>)>);

impl Replaced {
    fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let old = match std::fs::read(path) {
            Ok(b) if b == bytes => return Ok(()),
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        self.0.push((path.to_path_buf(), old));
        atomic::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    fn restore(self) {
        for (path, old) in self.0.into_iter().rev() {
            let _ = match old {
                Some(b) => atomic::write(&path, &b),
                None => std::fs::remove_file(&path),
            };
        }
    }
}

/// Content written only if absent (by-hash files are named by their content).
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    atomic::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    e.write_all(data)?;
    Ok(e.finish()?)
}

fn xz(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// The Packages text of one component and architecture: its packages and the arch:all
/// ones, sorted by name, then version, then architecture.
pub fn packages_text(stanzas: &BTreeMap<Key, Paragraph>, arch: &str) -> String {
    let mut v: Vec<(&Key, &Paragraph)> = stanzas.iter().filter(|(k, _)| k.2 == arch || k.2 == "all").collect();
    v.sort_by(|a, b| a.0.0.cmp(&b.0.0).then_with(|| version::compare(&a.0.1, &b.0.1)).then_with(|| a.0.2.cmp(&b.0.2)));
    v.iter().map(|(_, p)| p.to_text()).collect::<Vec<_>>().join("\n")
}

impl StoreApt<'_> {
    fn publish(&self, name: &str, suite: &Suite, key: &SiteKey, replaced: &mut Replaced) -> Result<()> {
        let dir = self.dists(name);
        let empty = BTreeMap::new();
        let mut sums = Vec::new();
        for comp in &suite.components {
            for arch in &suite.architectures {
                let text = packages_text(suite.stanzas.get(comp).unwrap_or(&empty), arch);
                let plain = text.into_bytes();
                let rel = format!("{comp}/binary-{arch}");
                let idx_dir = dir.join(comp).join(format!("binary-{arch}"));
                for (file, bytes) in
                    [("Packages", plain.clone()), ("Packages.gz", gzip(&plain)?), ("Packages.xz", xz(&plain)?)]
                {
                    let d = Digest::of(&bytes);
                    write_new(&idx_dir.join("by-hash/SHA256").join(d.hex()), &bytes)?;
                    replaced.write(&idx_dir.join(file), &bytes)?;
                    sums.push(format!(" {} {:>10} {rel}/{file}", d.hex(), bytes.len()));
                }
            }
        }
        // Web servers answer If-Modified-Since at one-second resolution: a Release rewritten
        // within the second of the previous one would look unchanged to apt (304). Let the
        // clock move past it first (at most a second, and only for back-to-back imports).
        let since_epoch = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if let Ok(prev) = std::fs::metadata(dir.join("InRelease")).and_then(|m| m.modified()) {
            let next = std::time::Duration::from_secs(since_epoch(prev).as_secs() + 1);
            if let Some(wait) = next.checked_sub(since_epoch(std::time::SystemTime::now())) {
                std::thread::sleep(wait);
            }
        }
        let now = since_epoch(std::time::SystemTime::now()).as_secs();
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
        let valid_until = self
            .valid_for
            .map(|d| format!("Valid-Until: {}\n", crate::debian::release_date(now.saturating_add(d.as_secs()))))
            .unwrap_or_default();
        let release = format!(
            "Origin: airlock\nLabel: airlock\nSuite: {name}\nCodename: {name}\nDate: {}\n{valid_until}Architectures: {}\nComponents: {}\nAcquire-By-Hash: yes\nDescription: packages imported by airlock\nSHA256:\n{}\n",
            crate::debian::release_date(now),
            join(&suite.architectures),
            join(&suite.components),
            sums.join("\n")
        );
        let inrelease = key.clearsign(&release)?;
        let detached = key.detach_sign(release.as_bytes())?;
        replaced.write(&dir.join("Release.gpg"), detached.as_bytes())?;
        replaced.write(&dir.join("Release"), release.as_bytes())?;
        replaced.write(&dir.join("InRelease"), inrelease.as_bytes())?;
        Ok(())
    }
}

/// A deb822 `.sources` stanza for apt clients of this repository.
pub fn sources_example(url: &str, suites: &[String], components: &[String], keyring: &str) -> String {
    format!(
        "Types: deb\nURIs: {url}\nSuites: {}\nComponents: {}\nSigned-By: {keyring}\n",
        suites.join(" "),
        components.join(" ")
    )
}

/// The path of the Release a suite publishes, for tests and reports.
pub fn release_path(store: &Store, repo: &str, suite: &str) -> PathBuf {
    store.layout().apt_suite(repo, suite).join("Release")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_text_sorts_and_includes_all() {
        let mut m = BTreeMap::new();
        for t in [
            "Package: b\nVersion: 1\nArchitecture: all\n",
            "Package: a\nVersion: 1.10\nArchitecture: amd64\n",
            "Package: a\nVersion: 1.9\nArchitecture: amd64\n",
            "Package: a\nVersion: 1.9\nArchitecture: arm64\n",
        ] {
            let p = deb822::parse_one(t, "t").unwrap();
            m.insert(key_of(&p), p);
        }
        let text = packages_text(&m, "amd64");
        assert_eq!(
            text,
            "Package: a\nVersion: 1.9\nArchitecture: amd64\n\nPackage: a\nVersion: 1.10\nArchitecture: amd64\n\nPackage: b\nVersion: 1\nArchitecture: all\n"
        );
        assert!(packages_text(&m, "arm64").contains("Package: b"));
    }
}
