//! `airlock.yaml`: what a bundle carries. Every upstream URL is written here; airlock
//! knows no public host of its own.
//!
//! ```yaml
//! name: site-inputs            # the bundle's name
//! version: "2026.11"           # optional; `airlock export --version` overrides it
//! files:
//!   - path: src/hello-1.0.tar.gz                   # where it lands in the raw repository
//!     source: files/hello-1.0.tar.gz               # a local file, relative to this spec
//!   - path: bin/amd64/tool
//!     url: https://downloads.mirror.example/tool-amd64
//!     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     arch: amd64
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::names::{self, NameKind};
use crate::relpath::RelPath;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub git: Vec<GitEntry>,
    #[serde(default)]
    pub images: Vec<ImageEntry>,
    #[serde(default)]
    pub python: Vec<PythonEntry>,
    #[serde(default)]
    pub debian: Vec<DebianEntry>,
    /// OCI artifacts by version range, with their `manifest.yaml` dependencies.
    #[serde(default)]
    pub artifacts: Vec<ArtifactEntry>,
    /// Per-registry settings, by host[:port].
    #[serde(default)]
    pub registries: std::collections::BTreeMap<String, RegistrySettings>,
    /// How `airlock watch` polls this spec's upstreams.
    #[serde(default)]
    pub watch: WatchSettings,
    /// Directory the spec was read from; relative `source:` paths are resolved against it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The file's path in the bundle and in the raw repository it is imported into.
    pub path: RelPath,
    /// A local file (connected side), relative to the spec's directory.
    #[serde(default)]
    pub source: Option<PathBuf>,
    /// An http(s) URL to download.
    #[serde(default)]
    pub url: Option<String>,
    /// The expected SHA-256 (hex). Without it, the first download is trusted and locked.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The CPU architecture the file is for (`amd64`, `arm64`, ...), if any.
    #[serde(default)]
    pub arch: Option<String>,
}

impl FileEntry {
    pub fn expected(&self) -> Result<Option<Digest>> {
        self.sha256
            .as_deref()
            .map(|h| {
                Digest::from_hex(&h.to_ascii_lowercase())
                    .map_err(|_| anyhow::anyhow!("files entry `{}`: `sha256: {h}` must be 64 hex digits", self.path))
            })
            .transpose()
    }

    /// Where the file comes from, as written in the lock: the URL, or the local path.
    pub fn upstream(&self) -> String {
        match (&self.url, &self.source) {
            (Some(u), _) => u.clone(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }
}

/// A container image (or OCI artifact) to carry.
///
/// ```yaml
/// images:
///   - ref: registry.mirror.example/kolla/base:2024.1        # or ...@sha256:<hex>
///     platforms: [linux/amd64, linux/arm64]                # default: every platform
///     referrers: true          # carry its signatures, SBOMs and attestations too
///     referrer-types: [application/vnd.dev.cosign.artifact.sig.v1+json]   # default: all
///     verify:
///       key: cosign.pub        # refuse it unless a sigstore signature verifies with this key
/// registries:
///   registry.mirror.example:
///     insecure: true                                       # plain HTTP (loopback, lab registries)
/// ```
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// The image's reference: where it is pulled from, and the repository and tag it gets
    /// at the site.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Read the image from this OCI image layout directory (relative to the spec) instead
    /// of a registry; `ref`'s tag selects the layout's `org.opencontainers.image.ref.name`.
    #[serde(default)]
    pub layout: Option<PathBuf>,
    /// `os/arch[/variant]` to keep from an image index; empty keeps all.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Carry what refers to the image: the manifests the OCI 1.1 referrers API (or its
    /// `sha256-<hex>` tag fallback) lists, and cosign's `sha256-<hex>.sig`, `.att` and
    /// `.sbom` tags.
    #[serde(default)]
    pub referrers: bool,
    /// Only referrers of these artifact types (empty: all).
    #[serde(default, rename = "referrer-types")]
    pub referrer_types: Vec<String>,
    /// Refuse the image unless a sigstore simple-signing signature over its digest
    /// verifies with this key.
    #[serde(default)]
    pub verify: Option<ImageVerify>,
}

/// OCI artifacts (as `airlock oci push` makes them) chosen by version range, carried with
/// every dependency their `manifest.yaml` names, resolved as docs/oci.md describes.
///
/// ```yaml
/// artifacts:
///   - repository: registry.mirror.example/extensions/kubernetes
///     version: ">=1.28 <1.30"     # default: any version; the highest satisfying wins
/// ```
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ArtifactEntry {
    /// `host[:port]/path`, without a tag: the tags that read as versions are the candidates.
    pub repository: String,
    /// A version range: comparators separated by spaces or commas (`>=1.28 <1.30`, `^2`,
    /// `~1.4`, `=1.2.3`); a leading `v` is allowed.
    #[serde(default)]
    pub version: Option<String>,
}

impl ArtifactEntry {
    pub fn range(&self) -> Result<crate::extensions::Range> {
        crate::extensions::Range::parse(self.version.as_deref().unwrap_or("*"))
            .with_context(|| format!("artifact `{}`", self.repository))
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ImageVerify {
    /// A PEM public key (`cosign.pub`), relative to the spec.
    pub key: PathBuf,
}

/// Polling intervals for `airlock watch`, which its `--poll` and `--poll-kind` flags
/// override. Durations like `90s`, `10m`, `1h`.
///
/// ```yaml
/// watch:
///   poll: 1h                     # every entry
///   kinds: {git: 10m}            # files, git, images, python, debian
///   entries: {"images:registry.mirror.example/ns/app:1.0": 5m}   # as `airlock watch` names them
/// ```
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct WatchSettings {
    #[serde(default, with = "duration_opt")]
    pub poll: Option<std::time::Duration>,
    #[serde(default, with = "duration_map")]
    pub kinds: std::collections::BTreeMap<String, std::time::Duration>,
    #[serde(default, with = "duration_map")]
    pub entries: std::collections::BTreeMap<String, std::time::Duration>,
}

mod duration_opt {
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}"))))
            .transpose()
    }
}

mod duration_map {
    use std::collections::BTreeMap;
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, std::time::Duration>, D::Error> {
        let m: BTreeMap<String, String> = serde::Deserialize::deserialize(d)?;
        m.into_iter()
            .map(|(k, s)| {
                let v =
                    humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("`{k}: {s}`: {e}")))?;
                Ok((k, v))
            })
            .collect()
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Speak plain HTTP to this registry.
    #[serde(default)]
    pub insecure: bool,
}

/// Python packages: requirements resolved against a PEP 691/503 index for each target
/// environment (every `pythons` × `platforms` pair), the closure through Requires-Dist.
///
/// ```yaml
/// python:
///   - name: pypi                                   # the index it becomes at the site
///     index: https://pypi.mirror.example/simple    # or a local directory holding a PEP 503 tree
///     extra-indexes: []
///     requirements: ["oslo.config", "requests>=2.31"]
///     requirements-files: [requirements.txt]       # relative to the spec; -r/-c followed
///     constraints: [upper-constraints.txt]         # `name===1.2;python_version=='3.11'` lines
///     pythons: ["3.10", "3.11"]
///     platforms: [manylinux_2_28_x86_64, manylinux_2_28_aarch64]   # or musllinux_1_2_x86_64, any, ...
///     sdist: fallback                              # never | fallback | always
///     deps: true                                   # the Requires-Dist closure
///     build-requirements: true                     # what carried sdists need to build
///     prepare-metadata: true                       # run PEP 517 hooks for dynamic sdist metadata
///     python: python3.11                           # the interpreter for those hooks
/// ```
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PythonEntry {
    /// The index's name at the site (`<store>/repository/<name>/simple/`).
    #[serde(default = "default_python_name")]
    pub name: String,
    /// The upstream simple index: an http(s) URL, or a directory relative to the spec.
    pub index: String,
    /// More indexes to look in; a project's files are the union, the first index winning
    /// for a file name offered twice.
    #[serde(default)]
    pub extra_indexes: Vec<String>,
    /// PEP 508 requirements.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// requirements.txt-style files, relative to the spec.
    #[serde(default)]
    pub requirements_files: Vec<PathBuf>,
    /// Constraint files (pip's `-c`): they narrow versions, they add no project.
    #[serde(default)]
    pub constraints: Vec<PathBuf>,
    /// Target Python versions (`3.11`, or `3.11.4` for python_full_version markers).
    pub pythons: Vec<String>,
    /// Target platform tags; `any` alone takes only pure-Python wheels.
    #[serde(default = "default_platforms")]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub sdist: SdistPolicy,
    /// Follow Requires-Dist to the whole closure.
    #[serde(default = "yes")]
    pub deps: bool,
    /// Carry what can be found and warn about the rest, instead of failing.
    #[serde(default)]
    pub allow_missing: bool,
    /// Carry what every carried sdist needs to build (`[build-system] requires`, the
    /// PEP 517 default without one), resolved for each environment, marked `role: build`.
    #[serde(default = "yes")]
    pub build_requirements: bool,
    /// Learn the dependencies of sdists whose metadata does not declare them statically
    /// by running their PEP 517 metadata hook here, in an isolated virtualenv.
    #[serde(default = "yes")]
    pub prepare_metadata: bool,
    /// The interpreter that runs those hooks (else `AIRLOCK_PYTHON`, else `python3`);
    /// it must be the target's minor version (else `python3.X` from PATH is used).
    #[serde(default)]
    pub python: Option<String>,
}

fn default_python_name() -> String {
    "pypi".into()
}

fn default_platforms() -> Vec<String> {
    vec!["any".into()]
}

fn yes() -> bool {
    true
}

/// When to carry source distributions.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SdistPolicy {
    /// Wheels only: a version with no wheel for the environment is passed over.
    Never,
    /// The sdist when no wheel fits the environment.
    #[default]
    Fallback,
    /// The sdist as well as the wheel.
    Always,
}

impl PythonEntry {
    /// Every index URL (first the main one); local directories become file:// URLs.
    pub fn index_urls(&self, spec_dir: &Path) -> Result<Vec<reqwest::Url>> {
        std::iter::once(&self.index)
            .chain(&self.extra_indexes)
            .map(|i| {
                let url = if i.starts_with("http://") || i.starts_with("https://") {
                    let with_slash = if i.ends_with('/') { i.clone() } else { format!("{i}/") };
                    reqwest::Url::parse(&with_slash).ok()
                } else if i.contains("://") {
                    None
                } else {
                    let dir = std::path::absolute(spec_dir.join(i)).ok();
                    dir.and_then(|d| reqwest::Url::from_directory_path(d).ok())
                };
                url.ok_or_else(|| {
                    anyhow::anyhow!(
                        "python entry `{}`: index `{i}` must be an http(s) URL or a local directory",
                        self.name
                    )
                })
            })
            .collect()
    }
}

/// Debian packages to carry from apt archives: the download closure of the listed
/// packages over one or more upstream suites (a release, its updates, its security
/// suite, from different archives and keyrings), verified against each suite's signed
/// Release and republished at the site as signed suites of the store's apt repository.
///
/// ```yaml
/// debian:
///   - name: bookworm-site            # the suite it gets at the site (layout: merged)
///     sources:                       # resolved together; the highest version wins
///       - url: https://deb.mirror.example/debian
///         suites: [bookworm, bookworm-updates]
///         keyring: keys/debian.asc   # relative to the spec; armored or binary
///       - url: https://security.mirror.example/debian-security
///         suites: [bookworm-security]
///         keyring: keys/security.asc
///         components: [main]         # default: the entry's components
///     components: [main]             # default: [main]
///     architectures: [amd64, arm64]  # arch:all packages come along
///     layout: merged                 # or as-upstream: the site gets the upstream suites
///     packages: [curl, python3-yaml]
///     include: ["python3-*"]         # optional globs over package names
///     exclude: [libc6]               # optional globs: never carried, assumed present at the site
///     deps: true                     # closure over Pre-Depends + Depends (default true)
///     recommends: false              # also Recommends (default false)
///     vendor: debian                 # purl namespace: pkg:deb/<vendor>/... (default debian)
/// ```
///
/// One archive can also be written without `sources:`, as `url:`, `suites:` and
/// `keyring:` on the entry itself.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DebianEntry {
    /// The suite's name at the site (`dists/<name>/`) with `layout: merged`; with
    /// `as-upstream`, the entry's name in the lock.
    pub name: String,
    /// The archive root upstream (where `dists/` and `pool/` are): an http(s) URL, or a
    /// local directory relative to the spec. The one-archive form; see `sources`.
    #[serde(default)]
    pub url: Option<String>,
    /// Upstream suites (or codenames) of `url`, in order of preference on equal versions.
    #[serde(default)]
    pub suites: Vec<String>,
    /// The OpenPGP keyring that the Release files of `url` must be signed by.
    #[serde(default)]
    pub keyring: Option<PathBuf>,
    /// Several archives, each with its suites and keyring, resolved together.
    #[serde(default)]
    pub sources: Vec<DebianSource>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    #[serde(default)]
    pub layout: DebianLayout,
    #[serde(default)]
    pub packages: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "yes")]
    pub deps: bool,
    #[serde(default)]
    pub recommends: bool,
    #[serde(default)]
    pub vendor: Option<String>,
}

/// One upstream archive of a `debian` entry.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    pub url: String,
    pub suites: Vec<String>,
    pub keyring: PathBuf,
    /// Default: the entry's `components`.
    #[serde(default)]
    pub components: Option<Vec<String>>,
}

/// How an entry's packages are published at the site.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DebianLayout {
    /// One suite, named after the entry, holding the whole closure.
    #[default]
    Merged,
    /// The upstream suites by their own names, each holding the packages chosen from it.
    AsUpstream,
}

impl DebianLayout {
    pub fn is_merged(&self) -> bool {
        *self == DebianLayout::Merged
    }
}

impl DebianEntry {
    /// The archives to read, in order: `sources`, or the one-archive form.
    pub fn sources(&self) -> Vec<DebianSource> {
        let mut v = self.sources.clone();
        if let (Some(url), Some(keyring)) = (&self.url, &self.keyring) {
            v.insert(
                0,
                DebianSource {
                    url: url.clone(),
                    suites: self.suites.clone(),
                    keyring: keyring.clone(),
                    components: None,
                },
            );
        }
        for s in &mut v {
            s.components.get_or_insert_with(|| self.components.clone());
        }
        v
    }
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}

/// A suite name: plain names with `/` between parts (suites like `trixie/updates`);
/// [`names::deb_suite`].
pub fn valid_dist_name(s: &str) -> bool {
    names::deb_suite(s).is_ok()
}

/// A git repository to carry, with the refs to carry of it.
///
/// ```yaml
/// git:
///   - url: https://git.mirror.example/openstack/kolla.git
///     name: kolla                      # its name at the site (default: from the URL)
///     refs: [refs/heads/master, "refs/tags/18.*"]   # default: every branch and tag
/// ```
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct GitEntry {
    /// Where to fetch from: https://, http://, ssh://, git://, file:// or a local path.
    pub url: String,
    /// The repository's name at the site.
    #[serde(default)]
    pub name: Option<String>,
    /// Full ref names, or patterns with one `*` (`refs/tags/18.*`).
    #[serde(default)]
    pub refs: Vec<String>,
}

impl GitEntry {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let last = self.url.trim_end_matches('/').rsplit(['/', ':']).next().unwrap_or("");
            last.strip_suffix(".git").unwrap_or(last).to_string()
        })
    }

    pub fn patterns(&self) -> Vec<String> {
        if self.refs.is_empty() || self.refs.iter().any(|r| r == "all") {
            vec!["refs/heads/*".into(), "refs/tags/*".into()]
        } else {
            self.refs.clone()
        }
    }
}

/// Does `refname` match `pattern` (a full name, or one with a single `*`)?
pub fn ref_matches(pattern: &str, refname: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == refname,
        Some((pre, post)) => {
            refname.len() >= pre.len() + post.len() && refname.starts_with(pre) && refname.ends_with(post)
        }
    }
}

/// A plain name (1 to 128 letters, digits, `.`, `_`, `+` or `-`, not starting with `.`
/// or `-`); [`names::plain`].
pub fn valid_name(s: &str) -> bool {
    names::plain(NameKind::Repository, s).is_ok()
}

impl Spec {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading spec {} (create one, or pass --spec)", path.display()))?;
        let mut spec: Spec = yaml_serde::from_str(&text).with_context(|| format!("parsing spec {}", path.display()))?;
        spec.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if spec.dir.as_os_str().is_empty() {
            spec.dir = PathBuf::from(".");
        }
        spec.validate().with_context(|| format!("invalid spec {}", path.display()))?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        names::bundle_name(&self.name).context("`name`")?;
        if let Some(v) = &self.version {
            names::bundle_version(v).context("`version`")?;
        }
        let mut seen = BTreeSet::new();
        for f in &self.files {
            names::raw_path(f.path.as_str()).with_context(|| format!("files entry `{}`", f.path))?;
            match (&f.source, &f.url) {
                (Some(_), Some(_)) => bail!("files entry `{}` has both `source` and `url`: keep one", f.path),
                (None, None) => bail!("files entry `{}` needs `source` (a local file) or `url`", f.path),
                (None, Some(u)) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    bail!("files entry `{}`: `url: {u}` must be http:// or https://", f.path)
                }
                _ => {}
            }
            f.expected()?;
            if !seen.insert(&f.path) {
                bail!("two files entries have `path: {}`", f.path);
            }
        }
        let mut refs = BTreeSet::new();
        let mut names = BTreeSet::new();
        for i in &self.images {
            let r = crate::oci::Reference::parse(&i.reference)?;
            // The site knows an image by repository and tag (or digest), not by its host.
            if !names.insert((r.repository.clone(), r.tag.clone(), r.digest)) {
                bail!(
                    "image `{}`: another image has the same repository and tag; at the site they would collide",
                    i.reference
                );
            }
            for p in &i.platforms {
                let parts = p.split('/').count();
                if !(2..=3).contains(&parts) || p.split('/').any(str::is_empty) {
                    bail!("image `{}`: platform `{p}` must be os/arch or os/arch/variant", i.reference);
                }
            }
            if i.layout.is_some() && (i.referrers || i.verify.is_some()) {
                bail!(
                    "image `{}`: `referrers` and `verify` read a registry; an image from a `layout` has neither",
                    i.reference
                );
            }
            if !i.referrer_types.is_empty() && !i.referrers {
                bail!("image `{}`: `referrer-types` needs `referrers: true`", i.reference);
            }
            if !refs.insert(&i.reference) {
                bail!("image `{}` is listed twice", i.reference);
            }
        }
        let mut repos = BTreeSet::new();
        for a in &self.artifacts {
            let path = a.repository.split_once('/').map(|(_, p)| p).unwrap_or_default();
            if path.is_empty() || path.contains([':', '@']) {
                bail!("artifact `{}`: `repository` is host[:port]/path, without a tag or digest", a.repository);
            }
            let r = crate::oci::Reference::parse(&format!("{}:latest", a.repository))
                .with_context(|| format!("artifact `{}`", a.repository))?;
            if format!("{}/{}", r.registry, r.repository) != a.repository || !a.repository.contains('/') {
                bail!("artifact `{}`: `repository` is host[:port]/path, without a tag or digest", a.repository);
            }
            a.range()?;
            if !repos.insert(&a.repository) {
                bail!("artifact `{}` is listed twice; give one version range", a.repository);
            }
        }
        let mut names = BTreeSet::new();
        for g in &self.git {
            let name = g.name();
            if let Err(e) = names::git_repository(&name) {
                let hint = if g.name.is_none() { " (set `name:`)" } else { "" };
                bail!("git entry `{}`: {e}{hint}", g.url.escape_debug());
            }
            if g.url.starts_with('-') || g.url.contains(char::is_whitespace) || g.url.is_empty() {
                bail!("git entry `{name}`: `url: {}` is not a repository URL", g.url);
            }
            if g.refs.len() > 1 && g.refs.iter().any(|r| r == "all") {
                bail!("git entry `{name}`: `all` already means every branch and tag; list it alone");
            }
            for p in g.patterns() {
                if p != "all"
                    && let Err(e) = names::git_ref_pattern(&p)
                {
                    bail!("git entry `{name}`: {e} (like refs/heads/main or refs/tags/18.*)");
                }
            }
            if !names.insert(name.clone()) {
                bail!("two git entries are named `{name}`: set `name:` on one of them");
            }
        }
        let mut names = BTreeSet::new();
        for p in &self.python {
            names::repository(&p.name).with_context(|| format!("python entry `{}`", p.name.escape_debug()))?;
            if !names.insert(&p.name) {
                bail!("two python entries are named `{}`: give each site index its own name", p.name);
            }
            p.index_urls(&self.dir)?;
            if p.pythons.is_empty() {
                bail!("python entry `{}`: list the target `pythons` (e.g. [\"3.11\"])", p.name);
            }
            if p.platforms.is_empty() {
                bail!("python entry `{}`: list the target `platforms` (or [any])", p.name);
            }
            for py in &p.pythons {
                for plat in &p.platforms {
                    crate::pypi::Environment::new(py, plat).with_context(|| format!("python entry `{}`", p.name))?;
                }
            }
            for r in &p.requirements {
                names::python_requirement(r).with_context(|| format!("python entry `{}`: requirement", p.name))?;
                crate::pypi::parse_requirement_line(r)
                    .with_context(|| format!("python entry `{}`: requirement", p.name))?;
            }
            if p.requirements.is_empty() && p.requirements_files.is_empty() {
                bail!("python entry `{}`: list `requirements` or `requirements-files`", p.name);
            }
        }
        let mut names = BTreeSet::new();
        for d in &self.debian {
            let n = &d.name;
            names::plain(NameKind::DebianSuite, n).with_context(|| format!("debian entry `{}`", n.escape_debug()))?;
            if !names.insert(n) {
                bail!("two debian entries are named `{n}`");
            }
            let single = d.url.is_some() || !d.suites.is_empty() || d.keyring.is_some();
            if single && !d.sources.is_empty() {
                bail!("debian entry `{n}`: give `url`, `suites` and `keyring`, or `sources`, not both");
            }
            if single && (d.url.is_none() || d.suites.is_empty() || d.keyring.is_none()) {
                bail!("debian entry `{n}`: `url`, `suites` and `keyring` go together (or list `sources`)");
            }
            if !single && d.sources.is_empty() {
                bail!("debian entry `{n}`: list `sources` (or give `url`, `suites` and `keyring`)");
            }
            let sources = d.sources();
            let mut site_suites = BTreeSet::new();
            for src in &sources {
                let local = !src.url.contains("://") && !src.url.is_empty();
                if !(src.url.starts_with("http://") || src.url.starts_with("https://") || local)
                    || src.url.contains(char::is_whitespace)
                {
                    bail!(
                        "debian entry `{n}`: `url: {}` must be an http:// or https:// URL, or a local directory",
                        src.url
                    );
                }
                let comps = src.components.as_deref().unwrap_or_default();
                if src.suites.is_empty() || comps.is_empty() {
                    bail!("debian entry `{n}`: the `suites` and `components` of {} must not be empty", src.url);
                }
                for s in &src.suites {
                    names::deb_suite(s).with_context(|| format!("debian entry `{n}`"))?;
                }
                for c in comps {
                    names::deb_component(c).with_context(|| format!("debian entry `{n}`"))?;
                }
                for s in &src.suites {
                    if !site_suites.insert(s) && d.layout == DebianLayout::AsUpstream {
                        bail!(
                            "debian entry `{n}`: suite `{s}` is listed twice; with `layout: as-upstream` each upstream suite becomes a site suite of that name"
                        );
                    }
                }
            }
            if d.components.is_empty() || d.architectures.is_empty() {
                bail!("debian entry `{n}`: `components` and `architectures` must not be empty");
            }
            for c in &d.components {
                names::deb_component(c).with_context(|| format!("debian entry `{n}`"))?;
            }
            for a in &d.architectures {
                names::deb_architecture(a).with_context(|| format!("debian entry `{n}`"))?;
            }
            if d.architectures.iter().any(|a| a == "all") {
                bail!("debian entry `{n}`: `all` is not an architecture to list: arch:all packages always come along");
            }
            if d.packages.is_empty() && d.include.is_empty() {
                bail!("debian entry `{n}`: list `packages` or `include` patterns");
            }
            for p in &d.packages {
                names::deb_package(p).with_context(|| format!("debian entry `{n}`"))?;
            }
            if let Some(v) = &d.vendor {
                names::plain(NameKind::Vendor, v).with_context(|| format!("debian entry `{n}`"))?;
            }
        }
        Ok(())
    }

    pub fn resolve_source(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.dir.join(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Spec> {
        let mut s: Spec = yaml_serde::from_str(y)?;
        s.dir = PathBuf::from(".");
        s.validate()?;
        Ok(s)
    }

    #[test]
    fn parses_files() {
        let s = parse("name: x\nfiles:\n  - path: a/b\n    source: b\n  - path: c\n    url: http://h.example/c\n    sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n    arch: amd64\n").unwrap();
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.files[1].arch.as_deref(), Some("amd64"));
        assert!(s.files[1].expected().unwrap().is_some());
    }

    #[test]
    fn git_names_and_patterns() {
        let s = parse("name: x\ngit:\n  - url: https://h.example/ns/kolla.git\n  - url: git@h.example:x/y\n    refs: [\"refs/tags/18.*\"]\n").unwrap();
        assert_eq!(s.git[0].name(), "kolla");
        assert_eq!(s.git[0].patterns(), ["refs/heads/*", "refs/tags/*"]);
        assert_eq!(s.git[1].name(), "y");
        assert!(ref_matches("refs/tags/18.*", "refs/tags/18.0.1"));
        assert!(!ref_matches("refs/tags/18.*", "refs/tags/17.0"));
        assert!(ref_matches("refs/heads/main", "refs/heads/main"));
        assert!(!ref_matches("refs/heads/main", "refs/heads/main2"));
    }

    #[test]
    fn refuses_bad_entries() {
        let cases = [
            ("name: x\nfiles:\n  - path: ../a\n    source: b\n", "`..`"),
            ("name: x\nfiles:\n  - path: a\n", "needs `source`"),
            ("name: x\nfiles:\n  - path: a\n    url: ftp://h/a\n", "http://"),
            ("name: x\nfiles:\n  - path: a\n    source: a\n  - path: a\n    source: b\n", "two files"),
            ("name: x\nfiles:\n  - path: a\n    source: a\n    sha256: abc\n", "must be 64 hex digits"),
            ("name: x\nhelm: []\n", "unknown field `helm`"),
            ("name: x\nartifacts:\n  - repository: r.example/ext/a\n    range: '1'\n", "unknown field `range`"),
            ("name: x\nartifacts:\n  - repository: r.example/ext/a:1.0\n", "without a tag"),
            (
                "name: x\nartifacts:\n  - repository: r.example/ext/a\n    version: '>= x'\n",
                "artifact `r.example/ext/a`: version range",
            ),
            (
                "name: x\nartifacts:\n  - repository: r.example/ext/a\n  - repository: r.example/ext/a\n    version: '1'\n",
                "listed twice",
            ),
            (
                "name: x\ngit:\n  - url: https://h.example/a.git\n    refs: [heads/main]\n",
                "`heads/main` is not a valid git ref name or pattern",
            ),
            (
                "name: x\ngit:\n  - url: https://h.example/a.git\n    refs: [\"refs/*/x*\"]\n",
                "it has more than one `*`",
            ),
            ("name: x\ngit:\n  - url: https://h.example/a.git\n  - url: https://o.example/a\n", "two git entries"),
            ("name: ../x\n", "`../x` is not a valid bundle name: it has `/`"),
            (
                "name: x\ngit:\n  - url: https://h.example/a.git\n    name: ../../x\n",
                "git entry `https://h.example/a.git`: `../../x` is not a valid git repository name: it has `/`",
            ),
            (
                "name: x\ngit:\n  - url: https://h.example/a%20b\n",
                "`a%20b` is not a valid git repository name: it has `%`",
            ),
            ("name: x\nfiles:\n  - path: a/.airlock-x.tmp\n    source: b\n", "starts with `.airlock-`"),
            ("name: x\nimages:\n  - ref: registry.example/../x:1\n", "`../x` is not a valid image repository name"),
            ("name: x\nimages:\n  - ref: registry.example/x:-1\n", "`-1` is not a valid image tag: it starts with `-`"),
            (
                "name: x\nimages:\n  - ref: registry.example/x:1\n    layout: l\n    referrers: true\n",
                "`referrers` and `verify` read a registry",
            ),
            (
                "name: x\nimages:\n  - ref: registry.example/x:1\n    referrer-types: [a/b]\n",
                "`referrer-types` needs `referrers: true`",
            ),
            ("name: x\nimages:\n  - ref: registry.example/x:1\n    verify: {keys: k}\n", "unknown field `keys`"),
            (
                "name: x\npython:\n  - index: http://h/simple\n    pythons: ['3.11']\n    requirements: ['../x']\n",
                "`../x` is not a valid Python project name: it has `/`",
            ),
            (
                "name: x\npython:\n  - name: ../p\n    index: http://h/simple\n    pythons: ['3.11']\n    requirements: [a]\n",
                "python entry `../p`: `../p` is not a valid repository name",
            ),
            (
                "name: x\npython:\n  - index: ftp://h/simple\n    pythons: ['3.11']\n    requirements: [a]\n",
                "http(s) URL",
            ),
            (
                "name: x\npython:\n  - index: http://h/simple\n    pythons: ['2.7']\n    requirements: [a]\n",
                "CPython 3",
            ),
            (
                "name: x\npython:\n  - index: http://h/simple\n    pythons: ['3.11']\n    platforms: [manylinux_3_0_x86_64]\n    requirements: [a]\n",
                "manylinux_2_",
            ),
            (
                "name: x\npython:\n  - index: http://h/simple\n    pythons: ['3.11']\n    requirements: ['a >= ']\n",
                "requirement",
            ),
            ("name: x\npython:\n  - index: http://h/simple\n    pythons: ['3.11']\n", "list `requirements`"),
            (
                "name: x\ndebian:\n  - {name: a, url: ftp://h/d, suites: [s], architectures: [amd64], keyring: k, packages: [ab]}\n",
                "http://",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s], architectures: [all], keyring: k, packages: [ab]}\n",
                "`all` is not",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s], architectures: [amd64], keyring: k}\n",
                "list `packages`",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [../s], architectures: [amd64], keyring: k, packages: [ab]}\n",
                "`../s` is not a valid Debian suite: part `..`: it starts with `.`",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s], architectures: [amd64], keyring: k, packages: [Ab]}\n",
                "`Ab` is not a valid Debian package name: it has `A`",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s], architectures: [amd64], packages: [ab]}\n",
                "go together",
            ),
            (
                "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s], keyring: k, sources: [{url: http://h/e, suites: [t], keyring: k}], architectures: [amd64], packages: [ab]}\n",
                "not both",
            ),
            ("name: x\ndebian:\n  - {name: a, architectures: [amd64], packages: [ab]}\n", "list `sources`"),
            (
                "name: x\ndebian:\n  - {name: a, layout: as-upstream, sources: [{url: http://h/d, suites: [s], keyring: k}, {url: http://h/e, suites: [s], keyring: k}], architectures: [amd64], packages: [ab]}\n",
                "listed twice",
            ),
            (
                "name: x\ndebian:\n  - {name: a, layout: flat, sources: [{url: http://h/d, suites: [s], keyring: k}], architectures: [amd64], packages: [ab]}\n",
                "unknown variant `flat`",
            ),
        ];
        for (y, want) in cases {
            let err = format!("{:#}", parse(y).unwrap_err());
            assert!(err.contains(want), "{y}: {err}");
        }
    }

    #[test]
    fn debian_sources() {
        let one = parse(
            "name: x\ndebian:\n  - {name: a, url: http://h/d, suites: [s, t], keyring: k, components: [main, contrib], architectures: [amd64], packages: [ab]}\n",
        )
        .unwrap();
        let d = &one.debian[0];
        assert_eq!(d.layout, DebianLayout::Merged);
        assert_eq!(
            d.sources(),
            [DebianSource {
                url: "http://h/d".into(),
                suites: vec!["s".into(), "t".into()],
                keyring: "k".into(),
                components: Some(vec!["main".into(), "contrib".into()])
            }]
        );
        let many = parse(
            "name: x\ndebian:\n  - name: a\n    layout: as-upstream\n    architectures: [amd64]\n    packages: [ab]\n    sources:\n      - {url: http://h/d, suites: [rel], keyring: k1}\n      - {url: http://h/sec, suites: [rel-security], keyring: k2, components: [updates]}\n",
        )
        .unwrap();
        let d = &many.debian[0];
        assert_eq!(d.layout, DebianLayout::AsUpstream);
        let s = d.sources();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].components.as_deref(), Some(&["main".to_string()][..]));
        assert_eq!(s[1].components.as_deref(), Some(&["updates".to_string()][..]));
        assert_eq!(s[1].keyring, PathBuf::from("k2"));
    }
}
