//! Debian packages from apt archives, acquired as apt acquires them. For each source
//! (archive root and keyring) and suite of an entry:
//!
//! 1. the signed Release (InRelease, or Release + Release.gpg), checked against the
//!    source's keyring, for the suite asked for and not past its `Valid-Until`;
//! 2. the Packages index of each component and architecture, where apt reads one: only
//!    architectures the Release supports, `binary-all` only when `Architectures` lists
//!    `all` and `No-Support-for-Architecture-all` does not name `Packages`; fetched by
//!    hash (`by-hash/SHA256/<hex>`) when the Release says `Acquire-By-Hash: yes`, then by
//!    name, compressed forms first; checked against the Release's size and SHA-256, then
//!    decompressed (never past the size the Release declares) and parsed as a stream;
//! 3. the closure of the requested packages over every suite together, per architecture
//!    (`debian::resolve`: apt's candidates and pins, Multi-Arch);
//! 4. every .deb of it into the cache, each checked against its Packages SHA-256 while
//!    it is written.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};

use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;

use crate::debian::deb822::{self, Paragraph};
use crate::debian::openpgp::Keyring;
use crate::debian::resolve::{self, Origin, Pkg, Request};
use crate::digest::{Digest, HashingReader};
use crate::lock::{LockedChoice, LockedDeb, LockedDebian, LockedRelease};
use crate::relpath::RelPath;
use crate::spec::{DebianEntry, Spec};
use crate::store::Store;

use super::file::{FileSource, NotFound};

/// Fields of a Packages stanza that describe the upstream file, not the package; the
/// site's repository writes its own.
pub const ARCHIVE_FIELDS: &[&str] = &["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

/// The largest Packages index read, uncompressed (a whole Debian main for one
/// architecture is under 100 MiB). An index is also never decompressed past the size its
/// Release declares.
pub const MAX_INDEX_SIZE: u64 = 1 << 30;

/// The largest Release file read.
pub const MAX_RELEASE_SIZE: u64 = 64 << 20;

pub struct DebianSource<'a> {
    pub files: &'a FileSource<'a>,
    pub spec: &'a Spec,
}

pub struct DebianLocked {
    pub locked: LockedDebian,
    pub warnings: Vec<String>,
}

/// A verified Release: what apt reads of it.
#[derive(Debug, Default)]
struct Release {
    /// Path (relative to `dists/<suite>/`) -> SHA-256 and size.
    sha256: HashMap<String, (Digest, u64)>,
    /// Path -> SHA-512 (hex), when listed: apt then names by-hash files by it.
    sha512: HashMap<String, String>,
    /// Empty when the Release does not say (apt then assumes every architecture).
    architectures: Vec<String>,
    components: Vec<String>,
    by_hash: bool,
    no_support_for_all: Vec<String>,
    /// apt's default pin priority for the suite.
    pin: i32,
}

/// What apt does with one Packages index.
#[derive(Debug, PartialEq, Eq)]
enum IndexPlan {
    Fetch,
    /// Listed with size 0: nothing to download.
    Empty,
    /// Not read, with a note for the user when apt would print one.
    Skip(Option<String>),
}

/// One place to fetch an index from: its path under `dists/<suite>/`, the form it is in
/// (`.xz`, `.gz`, or plain), and the listed file it must match.
#[derive(Debug, PartialEq, Eq)]
struct Attempt {
    path: String,
    ext: &'static str,
    listed: String,
    digest: Digest,
    size: u64,
}

fn is_yes(v: Option<&str>) -> bool {
    v.is_some_and(|v| ["yes", "true", "on", "enable"].iter().any(|y| v.eq_ignore_ascii_case(y)))
}

impl Release {
    fn parse(para: &Paragraph, what: &str) -> Result<Self> {
        let words =
            |f: &str| -> Vec<String> { para.get(f).unwrap_or("").split_whitespace().map(String::from).collect() };
        let Some(list) = para.get("SHA256") else {
            bail!("{what} lists no SHA256 hashes (MD5/SHA-1 alone are not trusted)");
        };
        let mut sha256 = HashMap::new();
        for line in deb822::lines(list) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hex, size, path] = parts[..] else { bail!("{what}: bad SHA256 line `{line}`") };
            let d =
                Digest::from_hex(&hex.to_ascii_lowercase()).map_err(|_| anyhow!("{what}: bad SHA256 line `{line}`"))?;
            let size: u64 = size.parse().map_err(|_| anyhow!("{what}: bad SHA256 line `{line}`"))?;
            sha256.insert(path.to_string(), (d, size));
        }
        let mut sha512 = HashMap::new();
        for line in deb822::lines(para.get("SHA512").unwrap_or("")) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, path] = parts[..] else { bail!("{what}: bad SHA512 line `{line}`") };
            if hex.len() != 128 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{what}: bad SHA512 line `{line}`");
            }
            sha512.insert(path.to_string(), hex.to_ascii_lowercase());
        }
        let pin = match (is_yes(para.get("NotAutomatic")), is_yes(para.get("ButAutomaticUpgrades"))) {
            (true, true) => resolve::PIN_BUT_AUTOMATIC_UPGRADES,
            (true, false) => resolve::PIN_NOT_AUTOMATIC,
            _ => resolve::PIN_DEFAULT,
        };
        Ok(Self {
            sha256,
            sha512,
            architectures: words("Architectures"),
            components: words("Components"),
            by_hash: is_yes(para.get("Acquire-By-Hash")),
            no_support_for_all: words("No-Support-for-Architecture-all"),
            pin,
        })
    }

    fn supports(&self, arch: &str) -> bool {
        self.architectures.is_empty() || self.architectures.iter().any(|a| a == arch)
    }

    /// `Components: updates/main` also serves the component `main`, as in apt.
    fn has_component(&self, comp: &str) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| c == comp || c.rsplit('/').next() == Some(comp))
    }

    /// What apt does with `<comp>/binary-<arch>/Packages` (apt's `QueueIndexes`).
    fn plan(&self, suite: &str, comp: &str, arch: &str) -> Result<IndexPlan> {
        // `all` is read only where the archive has arch:all packages apart: Debian lists
        // binary-all files but keeps arch:all packages in every binary-<arch>, and says
        // so by leaving `all` out of Architectures (or naming Packages in
        // No-Support-for-Architecture-all).
        if arch == "all" && (!self.supports("all") || self.no_support_for_all.iter().any(|t| t == "Packages")) {
            return Ok(IndexPlan::Skip(None));
        }
        let plain = format!("{comp}/binary-{arch}/Packages");
        let join = |v: &[String]| v.join(" ");
        Ok(match self.sha256.get(&plain) {
            Some(&(_, 0)) => IndexPlan::Empty,
            Some(_) => IndexPlan::Fetch,
            None if arch == "all" => IndexPlan::Skip(None),
            None if !self.supports(arch) => IndexPlan::Skip(Some(format!(
                "suite `{suite}` has no `{arch}` packages (its Release says `Architectures: {}`); skipped, as apt does",
                join(&self.architectures)
            ))),
            None if !self.has_component(comp) => IndexPlan::Skip(Some(format!(
                "suite `{suite}` has no component `{comp}` (its Release says `Components: {}`); skipped, as apt does",
                join(&self.components)
            ))),
            None if !self.architectures.is_empty() => IndexPlan::Skip(Some(format!(
                "the Release of suite `{suite}` lists no {plain}, though it supports `{arch}`; read as empty, as apt does"
            ))),
            None => bail!("the Release of suite `{suite}` lists no {plain}: is `{comp}` or `{arch}` in this suite?"),
        })
    }

    /// Where to fetch `plain` from, in apt's order: with `Acquire-By-Hash: yes`, the
    /// first listed form by its hash (`by-hash/SHA512/<hex>` if the Release lists
    /// SHA-512, as apt names it by the strongest hash, else `by-hash/SHA256/<hex>`); then
    /// each listed form by name, `.xz`, `.gz`, plain.
    fn attempts(&self, plain: &str) -> Vec<Attempt> {
        let forms: Vec<Attempt> = [".xz", ".gz", ""]
            .into_iter()
            .filter_map(|ext| {
                let listed = format!("{plain}{ext}");
                let &(digest, size) = self.sha256.get(&listed)?;
                Some(Attempt { path: listed.clone(), ext, listed, digest, size })
            })
            .collect();
        let mut out = Vec::new();
        if self.by_hash
            && let Some(first) = forms.first()
        {
            let (kind, hex) = match self.sha512.get(&first.listed) {
                Some(h) => ("SHA512", h.clone()),
                None => ("SHA256", first.digest.hex()),
            };
            let dir = plain.rsplit_once('/').map_or("", |(d, _)| d);
            out.push(Attempt {
                path: format!("{dir}/by-hash/{kind}/{hex}"),
                ext: first.ext,
                listed: first.listed.clone(),
                digest: first.digest,
                size: first.size,
            });
        }
        out.extend(forms);
        out
    }
}

/// A reader that fails once more than `left` bytes come through it: decompression
/// stops at the size the Release declares, whatever the compressed bytes claim.
struct Capped<'a, R> {
    inner: R,
    left: u64,
    cap: u64,
    what: &'a str,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "{} unpacks to more than the {} bytes its Release declares",
                self.what, self.cap
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Decompress (`ext`: `.xz`, `.gz`, or plain) and parse an index, handing each paragraph
/// to `sink`; what it unpacks to must be `size` bytes with SHA-256 `digest`.
fn read_index(
    file: impl Read,
    ext: &str,
    (digest, size): (Digest, u64),
    url: &str,
    sink: &mut dyn FnMut(Paragraph) -> Result<()>,
) -> Result<()> {
    let file = BufReader::new(file);
    let decoder: Box<dyn Read> = match ext {
        ".xz" => Box::new(liblzma::read::XzDecoder::new(file)),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(file)),
        _ => Box::new(file),
    };
    let mut hashing = HashingReader::new(Capped { inner: decoder, left: size, cap: size, what: url });
    for para in deb822::Reader::new(BufReader::new(&mut hashing), url) {
        sink(para?)?;
    }
    let (have, n) = hashing.finish();
    if have != digest || n != size {
        bail!("{url} unpacks to {have} ({n} bytes), but its Release lists {digest} ({size} bytes)");
    }
    Ok(())
}

impl DebianSource<'_> {
    pub fn lock(&self, e: &DebianEntry, store: &Store) -> Result<DebianLocked> {
        self.lock_inner(e, store).with_context(|| format!("debian `{}`", e.name))
    }

    fn lock_inner(&self, e: &DebianEntry, store: &Store) -> Result<DebianLocked> {
        let sources = e.sources();
        let Some(first) = sources.first() else { bail!("no sources") };
        let first_root = archive_root(&first.url, &self.spec.dir)?;
        let mut pkgs = Vec::new();
        // arch:all stanzas are often listed in binary-all and again in every
        // binary-<arch>: keep each package of a suite once.
        let mut seen = HashSet::new();
        let mut releases = Vec::new();
        let mut suites = Vec::new();
        let mut warnings = Vec::new();
        for (n, src) in sources.iter().enumerate() {
            let keyring = self.spec.resolve_source(&src.keyring);
            let ring = Keyring::load(&keyring).with_context(|| format!("keyring of {}", src.url))?;
            let root = archive_root(&src.url, &self.spec.dir)?;
            for suite in &src.suites {
                let (release, mut locked) =
                    self.release(&root, suite, &ring, store).with_context(|| format!("suite `{suite}`"))?;
                locked.upstream = (root != first_root).then(|| root.clone());
                releases.push(locked);
                suites.push(suite.clone());
                for comp in src.components.as_deref().unwrap_or_default() {
                    let origin = Origin {
                        upstream: root.clone(),
                        suite: suite.clone(),
                        component: comp.clone(),
                        pin: release.pin,
                    };
                    for arch in e.architectures.iter().map(String::as_str).chain(["all"]) {
                        match release.plan(suite, comp, arch)? {
                            IndexPlan::Fetch => {}
                            IndexPlan::Empty => continue,
                            IndexPlan::Skip(note) => {
                                warnings.extend(note.map(|w| format!("{root}: {w}")));
                                continue;
                            }
                        }
                        let what = format!("{root}/dists/{suite}/{comp}/binary-{arch}/Packages");
                        self.index(
                            &root,
                            suite,
                            &format!("{comp}/binary-{arch}/Packages"),
                            &release,
                            store,
                            &mut |para| {
                                let pkg = Pkg::from_stanza(para, &origin, &what)?;
                                let key = (
                                    n,
                                    suite.clone(),
                                    pkg.name.clone(),
                                    pkg.version.clone(),
                                    pkg.arch.clone(),
                                    pkg.sha256,
                                );
                                if seen.insert(key) {
                                    pkgs.push(pkg);
                                }
                                Ok(())
                            },
                        )?;
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
                self.fetch(p, &first_root, store).with_context(|| format!("package {}", p.label()))
            })
            .collect();
        let mut packages = fetched.into_iter().collect::<Result<Vec<_>>>()?;
        packages.sort_by(|a, b| (&a.package, &a.version, &a.arch).cmp(&(&b.package, &b.version, &b.arch)));
        warnings.extend(closure.warnings);
        let locked = LockedDebian {
            name: e.name.clone(),
            upstream: first_root,
            vendor: e.vendor.clone().unwrap_or_else(|| "debian".into()),
            layout: e.layout,
            suites,
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
        Ok(DebianLocked { locked, warnings })
    }

    fn read_blob(store: &Store, d: &Digest, what: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        store.open_blob(d)?.take(MAX_RELEASE_SIZE + 1).read_to_end(&mut v)?;
        if v.len() as u64 > MAX_RELEASE_SIZE {
            bail!("{what} is larger than {MAX_RELEASE_SIZE} bytes: not a Release file");
        }
        Ok(v)
    }

    /// Fetch and verify `dists/<suite>/InRelease`, or `Release` + `Release.gpg`.
    fn release(&self, root: &str, suite: &str, ring: &Keyring, store: &Store) -> Result<(Release, LockedRelease)> {
        let base = format!("{root}/dists/{suite}");
        let inrelease = format!("{base}/InRelease");
        let (text, file, signed_by) = match self.files.download(&inrelease, None, store) {
            Ok((d, _)) => {
                let bytes = Self::read_blob(store, &d, &inrelease)?;
                let armored = String::from_utf8(bytes).map_err(|_| anyhow!("{inrelease} is not UTF-8 text"))?;
                let (text, fp) = ring.verify_cleartext(&armored).with_context(|| inrelease.clone())?;
                (text, "InRelease", fp)
            }
            Err(err) if err.downcast_ref::<NotFound>().is_some() => {
                let (url, sig_url) = (format!("{base}/Release"), format!("{base}/Release.gpg"));
                let (d, _) = self.files.download(&url, None, store)?;
                let data = Self::read_blob(store, &d, &url)?;
                let (sd, _) = match self.files.download(&sig_url, None, store) {
                    Ok(r) => r,
                    Err(e) if e.downcast_ref::<NotFound>().is_some() => {
                        bail!("{inrelease} and {sig_url} are missing: the suite is not signed")
                    }
                    Err(e) => return Err(e),
                };
                let sig = Self::read_blob(store, &sd, &sig_url)?;
                let fp = ring.verify_detached(&data, &sig).with_context(|| sig_url.clone())?;
                let text = String::from_utf8(data).map_err(|_| anyhow!("{url} is not UTF-8 text"))?;
                (text, "Release", fp)
            }
            Err(e) => return Err(e),
        };
        let what = format!("{base}/{file}");
        let para = deb822::parse_one(&text, &what)?;
        check_release(&para, suite, &what)?;
        let release = Release::parse(&para, &what)?;
        Ok((release, LockedRelease { suite: suite.into(), upstream: None, file: file.into(), signed_by }))
    }

    /// Read the index `plain` (`<comp>/binary-<arch>/Packages`) of `suite`, from the first
    /// place [`Release::attempts`] names that has it, and hand each stanza to `sink`.
    fn index(
        &self,
        root: &str,
        suite: &str,
        plain: &str,
        release: &Release,
        store: &Store,
        sink: &mut dyn FnMut(Paragraph) -> Result<()>,
    ) -> Result<()> {
        let &(plain_digest, plain_size) = release.sha256.get(plain).expect("planned from the Release");
        if plain_size > MAX_INDEX_SIZE {
            bail!(
                "the Release of suite `{suite}` says {plain} is {plain_size} bytes, more than the {MAX_INDEX_SIZE} bytes airlock reads"
            );
        }
        let mut missing = Vec::new();
        for a in release.attempts(plain) {
            let url = format!("{root}/dists/{suite}/{}", a.path);
            let got = match self.files.download_sized(&url, Some(&a.digest), Some(a.size), store) {
                Ok(r) => r,
                Err(e) if e.downcast_ref::<NotFound>().is_some() => {
                    missing.push(url);
                    continue;
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "{url}: the Release of suite `{suite}` lists {} as SHA256 {} ({} bytes)",
                        a.listed,
                        a.digest.hex(),
                        a.size
                    )));
                }
            };
            if got.1 != a.size {
                bail!(
                    "{url} is {} bytes, but the Release of suite `{suite}` lists {} as {} bytes",
                    got.1,
                    a.listed,
                    a.size
                );
            }
            return read_index(store.open_blob(&a.digest)?, a.ext, (plain_digest, plain_size), &url, sink)
                .with_context(|| format!("suite `{suite}`"));
        }
        bail!(
            "the Release of suite `{suite}` lists {plain}, but no form of it is there (404 for {})",
            missing.join(", ")
        )
    }

    fn fetch(&self, p: &Pkg, first_root: &str, store: &Store) -> Result<LockedDeb> {
        let filename = RelPath::new(&p.filename).map_err(|e| anyhow!("Filename: {e}"))?;
        if !p.filename.ends_with(".deb") {
            bail!("Filename `{}` is not a .deb", p.filename);
        }
        let url = format!("{}/{filename}", p.upstream);
        let (digest, size) = self.files.download_sized(&url, Some(&p.sha256), Some(p.size), store)?;
        if size != p.size {
            bail!("{url} is {size} bytes, but its Packages entry says {}", p.size);
        }
        Ok(LockedDeb {
            package: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch.clone(),
            suite: p.suite.clone(),
            component: p.component.clone(),
            upstream: (p.upstream != first_root).then(|| p.upstream.clone()),
            filename,
            size,
            digest,
            control: control_text(&p.para),
        })
    }
}

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

/// The stanza as carried: everything but the upstream file's name, size and hashes.
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn release(text: &str) -> Release {
        Release::parse(&deb822::parse_one(text, "Release").unwrap(), "Release").unwrap()
    }

    const SUMS: &str = "SHA256:\n \
        1111111111111111111111111111111111111111111111111111111111111111 100 main/binary-amd64/Packages\n \
        2222222222222222222222222222222222222222222222222222222222222222 40 main/binary-amd64/Packages.xz\n \
        3333333333333333333333333333333333333333333333333333333333333333 50 main/binary-amd64/Packages.gz\n \
        4444444444444444444444444444444444444444444444444444444444444444 10 main/binary-all/Packages\n \
        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-arm64/Packages\n";

    #[test]
    fn binary_all_only_where_apt_reads_it() {
        use IndexPlan::*;
        // The security archive: binary-all is listed but `all` is not an architecture.
        let r = release(&format!("Architectures: amd64 arm64\nComponents: main\n{SUMS}"));
        assert_eq!(r.plan("s", "main", "all").unwrap(), Skip(None));
        assert_eq!(r.plan("s", "main", "amd64").unwrap(), Fetch);
        assert_eq!(r.plan("s", "main", "arm64").unwrap(), Empty);
        let r = release(&format!("Architectures: all amd64\nComponents: main\n{SUMS}"));
        assert_eq!(r.plan("s", "main", "all").unwrap(), Fetch);
        let r = release(&format!(
            "Architectures: all amd64\nNo-Support-for-Architecture-all: Packages\nComponents: main\n{SUMS}"
        ));
        assert_eq!(r.plan("s", "main", "all").unwrap(), Skip(None));
        // No Architectures field: apt assumes every architecture, binary-all included.
        let r = release(SUMS);
        assert_eq!(r.plan("s", "main", "all").unwrap(), Fetch);
        assert!(
            r.plan("s", "main", "riscv64").unwrap_err().to_string().contains("lists no main/binary-riscv64/Packages")
        );
        // An architecture the suite does not support is skipped with a note, as apt does.
        let r = release(&format!("Architectures: amd64\nComponents: main\n{SUMS}"));
        let Skip(Some(note)) = r.plan("s", "main", "riscv64").unwrap() else { panic!() };
        assert!(note.contains("has no `riscv64` packages"), "{note}");
        let Skip(Some(note)) = r.plan("s", "contrib", "amd64").unwrap() else { panic!() };
        assert!(note.contains("has no component `contrib`"), "{note}");
        let r = release(&format!("Architectures: amd64\nComponents: updates/main\n{SUMS}"));
        assert_eq!(r.plan("s", "main", "amd64").unwrap(), Fetch);
    }

    #[test]
    fn by_hash_first_then_by_name() {
        let r = release(&format!("Acquire-By-Hash: yes\n{SUMS}"));
        let paths: Vec<String> = r.attempts("main/binary-amd64/Packages").into_iter().map(|a| a.path).collect();
        assert_eq!(
            paths,
            [
                "main/binary-amd64/by-hash/SHA256/2222222222222222222222222222222222222222222222222222222222222222",
                "main/binary-amd64/Packages.xz",
                "main/binary-amd64/Packages.gz",
                "main/binary-amd64/Packages"
            ]
        );
        assert!(!release(SUMS).attempts("main/binary-amd64/Packages")[0].path.contains("by-hash"));
        // apt names by-hash files by the strongest hash listed.
        let sha512 = "ab".repeat(64);
        let r = release(&format!("Acquire-By-Hash: yes\n{SUMS}SHA512:\n {sha512} 40 main/binary-amd64/Packages.xz\n"));
        let first = &r.attempts("main/binary-amd64/Packages")[0];
        assert_eq!(first.path, format!("main/binary-amd64/by-hash/SHA512/{sha512}"));
        assert_eq!(first.listed, "main/binary-amd64/Packages.xz");
    }

    #[test]
    fn pins() {
        assert_eq!(release(SUMS).pin, resolve::PIN_DEFAULT);
        assert_eq!(release(&format!("NotAutomatic: yes\n{SUMS}")).pin, resolve::PIN_NOT_AUTOMATIC);
        assert_eq!(
            release(&format!("NotAutomatic: yes\nButAutomaticUpgrades: yes\n{SUMS}")).pin,
            resolve::PIN_BUT_AUTOMATIC_UPGRADES
        );
    }

    /// An index is decompressed no further than the size its Release declares: 64 MiB
    /// of zeros in 10 KiB of xz, declared as 1,000 bytes, stops after 1,001.
    #[test]
    fn decompression_is_capped() {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 0);
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        struct Counting<'a>(&'a [u8], std::rc::Rc<std::cell::Cell<usize>>);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1.set(self.1.get() + n);
                Ok(n)
            }
        }
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let err = read_index(
            Counting(&bomb, read.clone()),
            ".xz",
            (Digest::of(b""), 1000),
            "http://h/Packages.xz",
            &mut |_| Ok(()),
        )
        .unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("http://h/Packages.xz unpacks to more than the 1000 bytes its Release declares"), "{err}");
        assert!(read.get() < bomb.len(), "stopped early: read {} of {} compressed bytes", read.get(), bomb.len());
        // The declared size and digest are checked too.
        let text = b"Package: a\nVersion: 1\n";
        let err =
            read_index(&text[..], "", (Digest::of(b"other"), text.len() as u64), "u", &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("u unpacks to"), "{err}");
        let mut n = 0;
        read_index(&text[..], "", (Digest::of(text), text.len() as u64), "u", &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
