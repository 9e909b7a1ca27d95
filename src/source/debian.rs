//! Debian packages from an apt archive: read each suite's signed Release (InRelease, or
//! Release + Release.gpg), checked against the spec's keyring; fetch the Packages index
//! listed there (checked against Release's size and SHA-256); resolve the closure of the
//! requested packages per architecture; fetch every .deb into the cache, each checked
//! against its Packages SHA-256 while it is written.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;

use crate::debian::deb822::{self, Paragraph};
use crate::debian::openpgp::Keyring;
use crate::debian::resolve::{self, Pkg, Request};
use crate::digest::Digest;
use crate::lock::{LockedChoice, LockedDeb, LockedDebian, LockedRelease};
use crate::relpath::RelPath;
use crate::spec::{DebianEntry, Spec};
use crate::store::Store;

use super::file::{FileSource, NotFound};

/// Fields of a Packages stanza that describe the upstream file, not the package; the
/// site's repository writes its own.
pub const ARCHIVE_FIELDS: &[&str] = &["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

pub struct DebianSource<'a> {
    pub files: &'a FileSource<'a>,
    pub spec: &'a Spec,
}

pub struct DebianLocked {
    pub locked: LockedDebian,
    pub warnings: Vec<String>,
}

/// A verified Release: its fields and the SHA-256 entries it lists.
struct Release {
    sha256: HashMap<String, (Digest, u64)>,
}

impl DebianSource<'_> {
    pub fn lock(&self, e: &DebianEntry, store: &Store) -> Result<DebianLocked> {
        self.lock_inner(e, store).with_context(|| format!("debian `{}`", e.name))
    }

    fn lock_inner(&self, e: &DebianEntry, store: &Store) -> Result<DebianLocked> {
        let ring = Keyring::load(&self.spec.resolve_source(&e.keyring))?;
        let root = archive_root(&e.url, &self.spec.dir)?;
        let root = root.as_str();
        let mut pkgs = Vec::new();
        // arch:all stanzas are usually listed in binary-all and again in every
        // binary-<arch>: keep each package once.
        let mut seen = std::collections::HashSet::new();
        let mut releases = Vec::new();
        for suite in &e.suites {
            let (release, locked) =
                self.release(root, suite, &ring, store).with_context(|| format!("suite `{suite}`"))?;
            releases.push(locked);
            for comp in &e.components {
                for arch in e.architectures.iter().map(String::as_str).chain(["all"]) {
                    let text = self.index(root, suite, comp, arch, &release, store)?;
                    let Some(text) = text else { continue };
                    let what = format!("{root}/dists/{suite}/{comp}/binary-{arch}/Packages");
                    for para in deb822::parse(&text, &what)? {
                        let pkg = Pkg::from_stanza(para, suite, comp, &what)?;
                        if seen.insert((
                            suite.clone(),
                            pkg.name.clone(),
                            pkg.version.clone(),
                            pkg.arch.clone(),
                            pkg.sha256,
                        )) {
                            pkgs.push(pkg);
                        }
                    }
                }
            }
        }
        let req = Request {
            packages: &e.packages,
            include: &e.include,
            exclude: &e.exclude,
            deps: e.deps,
            recommends: e.recommends,
        };
        let closure = resolve::resolve_all(&pkgs, &e.architectures, &req)?;
        let fetched: Vec<Result<LockedDeb>> = closure
            .chosen
            .par_iter()
            .map(|&i| {
                let p = &pkgs[i];
                self.fetch(root, p, store).with_context(|| format!("package {}", p.label()))
            })
            .collect();
        let mut packages = fetched.into_iter().collect::<Result<Vec<_>>>()?;
        packages.sort_by(|a, b| (&a.package, &a.version, &a.arch).cmp(&(&b.package, &b.version, &b.arch)));
        let locked = LockedDebian {
            name: e.name.clone(),
            upstream: root.to_string(),
            vendor: e.vendor.clone().unwrap_or_else(|| "debian".into()),
            suites: e.suites.clone(),
            components: e.components.clone(),
            architectures: e.architectures.clone(),
            releases,
            packages,
            alternatives: closure
                .choices
                .into_iter()
                .map(|c| LockedChoice { package: c.package, arch: c.arch, relation: c.relation, chosen: c.chosen })
                .collect(),
        };
        Ok(DebianLocked { locked, warnings: closure.warnings })
    }

    fn read_blob(store: &Store, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        store.open_blob(d)?.read_to_end(&mut v)?;
        Ok(v)
    }

    /// Fetch and verify `dists/<suite>/InRelease`, or `Release` + `Release.gpg`.
    fn release(&self, root: &str, suite: &str, ring: &Keyring, store: &Store) -> Result<(Release, LockedRelease)> {
        let base = format!("{root}/dists/{suite}");
        let inrelease = format!("{base}/InRelease");
        let (text, file, signed_by) = match self.files.download(&inrelease, None, store) {
            Ok((d, _)) => {
                let bytes = Self::read_blob(store, &d)?;
                let armored = String::from_utf8(bytes).map_err(|_| anyhow!("{inrelease} is not UTF-8 text"))?;
                let (text, fp) = ring.verify_cleartext(&armored).with_context(|| inrelease.clone())?;
                (text, "InRelease", fp)
            }
            Err(err) if err.downcast_ref::<NotFound>().is_some() => {
                let (url, sig_url) = (format!("{base}/Release"), format!("{base}/Release.gpg"));
                let (d, _) = self.files.download(&url, None, store)?;
                let data = Self::read_blob(store, &d)?;
                let (sd, _) = match self.files.download(&sig_url, None, store) {
                    Ok(r) => r,
                    Err(e) if e.downcast_ref::<NotFound>().is_some() => {
                        bail!("{inrelease} and {sig_url} are missing: the suite is not signed")
                    }
                    Err(e) => return Err(e),
                };
                let sig = Self::read_blob(store, &sd)?;
                let fp = ring.verify_detached(&data, &sig).with_context(|| sig_url.clone())?;
                let text = String::from_utf8(data).map_err(|_| anyhow!("{url} is not UTF-8 text"))?;
                (text, "Release", fp)
            }
            Err(e) => return Err(e),
        };
        let what = format!("{base}/{file}");
        let para = deb822::parse_one(&text, &what)?;
        check_release(&para, suite, &what)?;
        let mut sha256 = HashMap::new();
        let Some(list) = para.get("SHA256") else {
            bail!("{what} lists no SHA256 hashes (MD5/SHA-1 alone are not trusted)");
        };
        for line in deb822::lines(list) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hex, size, path] = parts[..] else { bail!("{what}: bad SHA256 line `{line}`") };
            let d =
                Digest::from_hex(&hex.to_ascii_lowercase()).map_err(|_| anyhow!("{what}: bad SHA256 line `{line}`"))?;
            let size: u64 = size.parse().map_err(|_| anyhow!("{what}: bad SHA256 line `{line}`"))?;
            sha256.insert(path.to_string(), (d, size));
        }
        Ok((Release { sha256 }, LockedRelease { suite: suite.into(), file: file.into(), signed_by }))
    }

    /// The text of `<comp>/binary-<arch>/Packages`, from the first compressed form the
    /// Release lists; None if the Release lists none for `all` (optional there).
    fn index(
        &self,
        root: &str,
        suite: &str,
        comp: &str,
        arch: &str,
        release: &Release,
        store: &Store,
    ) -> Result<Option<String>> {
        let plain = format!("{comp}/binary-{arch}/Packages");
        let Some(&(plain_digest, plain_size)) = release.sha256.get(&plain) else {
            if arch == "all" {
                return Ok(None);
            }
            bail!("the Release of suite `{suite}` lists no {plain}: is `{comp}` or `{arch}` in this suite?");
        };
        if plain_size == 0 {
            return Ok(Some(String::new()));
        }
        let mut last = None;
        for ext in [".xz", ".gz", ""] {
            let path = format!("{plain}{ext}");
            let Some(&(d, size)) = release.sha256.get(&path) else { continue };
            let url = format!("{root}/dists/{suite}/{path}");
            let got = match self.files.download(&url, Some(&d), store) {
                Ok(r) => r,
                Err(e) if e.downcast_ref::<NotFound>().is_some() => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e.context(format!("{url} does not match the Release of suite `{suite}`"))),
            };
            if got.1 != size {
                bail!("{url} is {} bytes, but the Release of suite `{suite}` says {size}", got.1);
            }
            let f = store.open_blob(&d)?;
            let mut bytes = Vec::new();
            let read = match ext {
                ".xz" => liblzma::read::XzDecoder::new(f).read_to_end(&mut bytes),
                ".gz" => flate2::read::MultiGzDecoder::new(f).read_to_end(&mut bytes),
                _ => std::io::BufReader::new(f).read_to_end(&mut bytes),
            };
            read.with_context(|| format!("decompressing {url}"))?;
            let have = Digest::of(&bytes);
            if have != plain_digest || bytes.len() as u64 != plain_size {
                bail!(
                    "{url} unpacks to {have} ({} bytes), but the Release of suite `{suite}` says {plain} is {plain_digest} ({plain_size} bytes)",
                    bytes.len()
                );
            }
            return String::from_utf8(bytes).map(Some).map_err(|_| anyhow!("{url} is not UTF-8 text"));
        }
        Err(last.unwrap_or_else(|| anyhow!("the Release of suite `{suite}` lists no downloadable form of {plain}")))
    }

    fn fetch(&self, root: &str, p: &Pkg, store: &Store) -> Result<LockedDeb> {
        let filename = RelPath::new(&p.filename).map_err(|e| anyhow!("Filename: {e}"))?;
        if !p.filename.ends_with(".deb") {
            bail!("Filename `{}` is not a .deb", p.filename);
        }
        let url = format!("{root}/{filename}");
        let (digest, size) = self.files.download(&url, Some(&p.sha256), store)?;
        if size != p.size {
            bail!("{url} is {size} bytes, but its Packages entry says {}", p.size);
        }
        Ok(LockedDeb {
            package: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            suite: p.suite.clone(),
            component: p.component.clone(),
            filename,
            size,
            digest,
            control: control_text(&p.para),
        })
    }
}

/// The stanza as carried: everything but the upstream file's name, size and hashes.
/// The archive root as a URL: `e.url` itself, or a local directory (relative to the spec)
/// as a `file://` URL.
fn archive_root(url: &str, spec_dir: &std::path::Path) -> Result<String> {
    if url.contains("://") {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let dir = std::path::absolute(spec_dir.join(url)).with_context(|| format!("archive directory {url}"))?;
    let u =
        reqwest::Url::from_directory_path(&dir).map_err(|_| anyhow!("{} is not a directory path", dir.display()))?;
    Ok(u.as_str().trim_end_matches('/').to_string())
}

pub fn control_text(para: &Paragraph) -> String {
    para.without(ARCHIVE_FIELDS).to_text()
}

/// A Release must be for the suite asked for (a replayed Release of another suite is
/// refused), and not past its `Valid-Until`.
fn check_release(para: &Paragraph, suite: &str, what: &str) -> Result<()> {
    let names: Vec<&str> = ["Suite", "Codename"].iter().filter_map(|f| para.get(f)).collect();
    // `buster/updates` is the Release of Codename `buster`.
    let (first, last) = (suite.split('/').next().unwrap_or(suite), suite.rsplit('/').next().unwrap_or(suite));
    if !names.is_empty() && !names.iter().any(|n| *n == suite || *n == last || (suite.contains('/') && *n == first)) {
        bail!("{what} is the Release of `{}`, not of suite `{suite}`", names.join("` / `"));
    }
    if let Some(v) = para.get("Valid-Until") {
        let Some(until) = crate::debian::parse_release_date(v) else {
            bail!("{what}: `Valid-Until: {v}` is not a date");
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if until < now {
            bail!("{what} expired at {v} (Valid-Until): the mirror is stale or replayed");
        }
    }
    Ok(())
}
