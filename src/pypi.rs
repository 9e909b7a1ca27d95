//! Python package index formats: project names, distribution file names, compatibility
//! tags, the simple repository API (PEP 503 HTML and PEP 691 JSON, both read and
//! written), core metadata (METADATA / PKG-INFO), and requirement lines in the
//! `requirements.txt` / upper-constraints style. PEP 440 versions and PEP 508
//! requirements and markers come from `pep508_rs` (and its `pep440_rs`), the crates uv's
//! parsers were published as.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, Requirement};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
pub const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";
/// What airlock asks an upstream index for: JSON first, HTML as fallback.
pub const ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
pub const WHEEL_MEDIA_TYPE: &str = "application/vnd.python.wheel";
pub const SDIST_MEDIA_TYPE: &str = "application/vnd.python.sdist";
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.python.core-metadata";

/// PEP 503 normalized name: lowercase, runs of `-_.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A valid project name (PEP 508 `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`, any case);
/// [`crate::names::python_project`].
pub fn valid_project(name: &str) -> bool {
    crate::names::python_project(name).is_ok()
}

/// One compatibility tag: `(python, abi, platform)`.
pub type Tag = (String, String, String);

#[derive(Debug, Clone, PartialEq)]
pub enum DistKind {
    /// A wheel and its expanded tag set.
    Wheel(Vec<Tag>),
    Sdist,
}

/// What a distribution file name says.
#[derive(Debug, Clone, PartialEq)]
pub struct DistName {
    /// Normalized project name.
    pub project: String,
    pub version: Version,
    pub kind: DistKind,
}

/// Parse a wheel (`name-ver(-build)?-py-abi-plat.whl`) or sdist (`name-ver.tar.gz`, `.zip`,
/// `.tar.bz2`) file name. `None` for anything else (eggs, .exe installers, junk).
pub fn parse_filename(filename: &str) -> Option<DistName> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if parts.len() != 5 && parts.len() != 6 {
            return None;
        }
        let n = parts.len();
        let version = Version::from_str(parts[1]).ok()?;
        let mut tags = Vec::new();
        for py in parts[n - 3].split('.') {
            for abi in parts[n - 2].split('.') {
                for plat in parts[n - 1].split('.') {
                    tags.push((py.to_string(), abi.to_string(), plat.to_string()));
                }
            }
        }
        return Some(DistName { project: normalize(parts[0]), version, kind: DistKind::Wheel(tags) });
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"].iter().find_map(|s| filename.strip_suffix(s))?;
    // The name may contain `-` in old sdists; the version is after the last `-` that
    // starts a valid version.
    let mut split = stem.len();
    while let Some(i) = stem[..split].rfind('-') {
        if let Ok(version) = Version::from_str(&stem[i + 1..]) {
            return Some(DistName { project: normalize(&stem[..i]), version, kind: DistKind::Sdist });
        }
        split = i;
    }
    None
}

/// A target interpreter and platform: the wheel tags it accepts, in preference order,
/// and the marker environment its requirements are evaluated in.
///
/// A minor-version target (`3.11`) stands for every 3.11.x: it is evaluated at 3.11.0,
/// and `at_patch` gives the same target at another patch release when a marker or a
/// Requires-Python tells patch releases apart. `3.11.4` is an exact target.
#[derive(Debug, Clone)]
pub struct Environment {
    /// e.g. `cp311-manylinux_2_28_x86_64`.
    pub label: String,
    pub python_full: Version,
    /// The target was given with its patch release (`3.11.4`).
    pub exact: bool,
    /// The platform tag as given.
    pub platform: String,
    /// Tag -> rank (0 is most preferred).
    pub tags: std::collections::HashMap<Tag, usize>,
    pub markers: MarkerEnvironment,
}

impl Environment {
    /// `python` is `3.11` or `3.11.4`; `platform` a platform tag (`manylinux_2_28_x86_64`,
    /// `musllinux_1_2_aarch64`, `linux_x86_64`, `macosx_11_0_arm64`, `win_amd64`, `any`).
    pub fn new(python: &str, platform: &str) -> Result<Self> {
        let nums: Vec<u32> = python
            .split('.')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow!("python version `{python}` must look like 3.11 or 3.11.4"))?;
        let (major, minor) = match nums.as_slice() {
            [3, m] | [3, m, _] => (3, *m),
            _ => bail!("python version `{python}` must look like 3.11 or 3.11.4 (CPython 3 only)"),
        };
        let full = if nums.len() == 3 { python.to_string() } else { format!("{python}.0") };
        let platforms = expand_platform(platform)?;
        let tags = cpython_tags(major, minor, &platforms);
        let markers = marker_env(&full, platform).map_err(|e| anyhow!("python version `{python}`: {e}"))?;
        Ok(Self {
            label: format!("cp{major}{minor}-{platform}"),
            python_full: Version::from_str(&full).map_err(|e| anyhow!("python version `{python}`: {e}"))?,
            exact: nums.len() == 3,
            platform: platform.to_string(),
            tags: tags.into_iter().enumerate().map(|(i, t)| (t, i)).collect(),
            markers,
        })
    }

    /// This minor-version target at one of its patch releases (`3.11.4`), labelled
    /// `cp311-<platform> (3.11.4)`.
    pub fn at_patch(&self, full: &Version) -> Result<Self> {
        let mut env = self.clone();
        env.label = format!("{} ({full})", self.label);
        env.python_full = full.clone();
        env.markers = marker_env(&full.to_string(), &self.platform)?;
        Ok(env)
    }
    /// The rank of a wheel for this environment (lower is better), or `None` if it does
    /// not install here.
    pub fn rank(&self, tags: &[Tag]) -> Option<usize> {
        tags.iter().filter_map(|t| self.tags.get(t)).min().copied()
    }

    /// Does `requires_python` (a Requires-Python value) admit this interpreter? An
    /// unparsable value admits it, as installers do.
    pub fn admits(&self, requires_python: Option<&str>) -> bool {
        requires_python
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .and_then(|s| VersionSpecifiers::from_str(s).ok())
            .is_none_or(|spec| spec.contains(&self.python_full))
    }
}

fn marker_env(full: &str, platform: &str) -> Result<MarkerEnvironment> {
    let minor: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
    let (sys_platform, system, os_name, machine) = platform_markers(platform);
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: full,
        os_name,
        platform_machine: &machine,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: system,
        platform_version: "",
        python_full_version: full,
        python_version: &minor,
        sys_platform,
    })
    .map_err(|e| anyhow!("{e}"))
}

fn platform_markers(platform: &str) -> (&'static str, &'static str, &'static str, String) {
    let arch_of = |rest: &str| rest.rsplit_once('_').map(|(_, a)| a.to_string()).unwrap_or_default();
    let linux_arch = |p: &str| -> String {
        for legacy in ["linux_", "manylinux1_", "manylinux2010_", "manylinux2014_"] {
            if let Some(arch) = p.strip_prefix(legacy) {
                return arch.to_string();
            }
        }
        // manylinux_2_28_x86_64, musllinux_1_2_aarch64: the arch may itself hold `_`.
        p.splitn(4, '_').nth(3).unwrap_or("").to_string()
    };
    if platform.starts_with("manylinux") || platform.starts_with("musllinux") || platform.starts_with("linux_") {
        ("linux", "Linux", "posix", linux_arch(platform))
    } else if platform.starts_with("macosx_") {
        ("darwin", "Darwin", "posix", arch_of(platform))
    } else if platform == "win_amd64" {
        ("win32", "Windows", "nt", "AMD64".into())
    } else if platform == "win_arm64" {
        ("win32", "Windows", "nt", "ARM64".into())
    } else if platform == "win32" {
        ("win32", "Windows", "nt", "x86".into())
    } else {
        ("linux", "Linux", "posix", String::new())
    }
}

/// The platform tags a platform accepts, most preferred first: a newer glibc (musl)
/// accepts wheels built for an older one, legacy manylinux aliases right after their
/// `manylinux_2_*` equivalent, `linux_<arch>` last.
pub fn expand_platform(platform: &str) -> Result<Vec<String>> {
    if platform == "any" {
        return Ok(Vec::new());
    }
    let legacy = |p: &str| -> Option<String> {
        for (alias, glibc) in [("manylinux1_", "2_5_"), ("manylinux2010_", "2_12_"), ("manylinux2014_", "2_17_")] {
            if let Some(arch) = p.strip_prefix(alias) {
                return Some(format!("manylinux_{glibc}{arch}"));
            }
        }
        None
    };
    let platform = legacy(platform).unwrap_or_else(|| platform.to_string());
    for (prefix, major_expected) in [("manylinux_", 2u32), ("musllinux_", 1u32)] {
        let Some(rest) = platform.strip_prefix(prefix) else { continue };
        let mut it = rest.splitn(3, '_');
        let (Some(major), Some(minor), Some(arch)) = (it.next(), it.next(), it.next()) else {
            bail!("platform `{platform}`: expected {prefix}<major>_<minor>_<arch>");
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
            bail!("platform `{platform}`: expected {prefix}<major>_<minor>_<arch>");
        };
        if major != major_expected {
            bail!("platform `{platform}`: only {prefix}{major_expected}_* exists");
        }
        let mut out = Vec::new();
        if prefix == "manylinux_" {
            let lowest = if arch == "x86_64" || arch == "i686" { 5 } else { 17 };
            for m in (lowest..=minor).rev() {
                out.push(format!("manylinux_2_{m}_{arch}"));
                let alias = match m {
                    17 if ["x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"].contains(&arch) => {
                        Some("manylinux2014")
                    }
                    12 if arch == "x86_64" || arch == "i686" => Some("manylinux2010"),
                    5 if arch == "x86_64" || arch == "i686" => Some("manylinux1"),
                    _ => None,
                };
                if let Some(a) = alias {
                    out.push(format!("{a}_{arch}"));
                }
            }
        } else {
            for m in (0..=minor).rev() {
                out.push(format!("musllinux_1_{m}_{arch}"));
            }
        }
        out.push(format!("linux_{arch}"));
        return Ok(out);
    }
    if platform.is_empty() || !platform.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        bail!("platform `{platform}` is not a wheel platform tag (e.g. manylinux_2_28_x86_64, win_amd64, any)");
    }
    Ok(vec![platform])
}

/// CPython's tag list, most preferred first (`packaging.tags.cpython_tags` then
/// `compatible_tags`).
fn cpython_tags(major: u32, minor: u32, platforms: &[String]) -> Vec<Tag> {
    let t = |py: String, abi: &str, plat: &str| (py, abi.to_string(), plat.to_string());
    let cp = format!("cp{major}{minor}");
    let mut out = Vec::new();
    for p in platforms {
        out.push(t(cp.clone(), &cp, p));
    }
    for p in platforms {
        out.push(t(cp.clone(), "abi3", p));
    }
    for p in platforms {
        out.push(t(cp.clone(), "none", p));
    }
    for m in (2..minor).rev() {
        for p in platforms {
            out.push(t(format!("cp{major}{m}"), "abi3", p));
        }
    }
    let py_versions: Vec<String> = std::iter::once(format!("py{major}{minor}"))
        .chain(std::iter::once(format!("py{major}")))
        .chain((0..minor).rev().map(|m| format!("py{major}{m}")))
        .collect();
    for py in &py_versions {
        for p in platforms {
            out.push(t(py.clone(), "none", p));
        }
    }
    out.push(t(cp.clone(), "none", "any"));
    for py in &py_versions {
        out.push(t(py.clone(), "none", "any"));
    }
    out
}

/// One file offered by an index page.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute URL, without fragment.
    pub url: String,
    pub sha256: Option<Digest>,
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked (the reason may be empty).
    pub yanked: Option<String>,
    /// Core metadata offered at `<url>.metadata`: `Some(None)` without a hash.
    pub core_metadata: Option<Option<Digest>>,
    pub size: Option<u64>,
}

fn sha256_of(hashes: &BTreeMap<String, String>) -> Option<Digest> {
    hashes.get("sha256").and_then(|h| Digest::from_hex(&h.to_ascii_lowercase()).ok())
}

#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<serde_json::Value>,
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<serde_json::Value>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<serde_json::Value>,
    #[serde(default)]
    size: Option<u64>,
}

fn metadata_flag(v: Option<&serde_json::Value>) -> Option<Option<Digest>> {
    match v? {
        serde_json::Value::Bool(true) => Some(None),
        serde_json::Value::Object(m) => {
            let hashes: BTreeMap<String, String> =
                m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect();
            Some(sha256_of(&hashes))
        }
        _ => None,
    }
}

/// A PEP 691 project page. `base` is the page's own URL (relative file URLs resolve
/// against it).
pub fn parse_json_page(bytes: &[u8], base: &reqwest::Url) -> Result<Vec<IndexFile>> {
    let page: JsonPage = serde_json::from_slice(bytes).context("not a PEP 691 project page")?;
    page.files
        .into_iter()
        .map(|f| {
            let url = base.join(&f.url).with_context(|| format!("file URL `{}`", f.url))?;
            let yanked = match f.yanked {
                Some(serde_json::Value::Bool(true)) => Some(String::new()),
                Some(serde_json::Value::String(s)) => Some(s),
                _ => None,
            };
            Ok(IndexFile {
                filename: f.filename,
                url: strip_fragment(url),
                sha256: sha256_of(&f.hashes),
                requires_python: f.requires_python,
                yanked,
                core_metadata: metadata_flag(f.core_metadata.as_ref()).or(metadata_flag(f.dist_info_metadata.as_ref())),
                size: f.size,
            })
        })
        .collect()
}

fn strip_fragment(mut url: reqwest::Url) -> String {
    url.set_fragment(None);
    url.to_string()
}

/// A PEP 503 project page: every `<a>` element, its `href` (with `#sha256=` fragment)
/// and `data-*` attributes. Also honours `<base href>`.
pub fn parse_html_page(html: &str, page_url: &reqwest::Url) -> Result<Vec<IndexFile>> {
    let mut base = page_url.clone();
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(off) = lower[pos..].find('<') {
        let start = pos + off + 1;
        let Some(end_off) = tag_end(&html[start..]) else { break };
        let end = start + end_off;
        let inner = &html[start..end];
        pos = end + 1;
        let name_end = inner.find(|c: char| c.is_ascii_whitespace() || c == '/').unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        if name != "a" && name != "base" {
            continue;
        }
        let attrs = parse_attrs(&inner[name_end..]);
        let Some(href) = attrs.get("href") else { continue };
        if name == "base" {
            base = page_url.join(href).with_context(|| format!("<base href=\"{href}\">"))?;
            continue;
        }
        // The link's text runs to the next tag (`</a>`, or the next `<a>` when a page
        // leaves one unclosed): PEP 503 text holds no markup.
        let close = lower[pos..].find('<').map_or(lower.len(), |i| pos + i);
        let text = unescape(html[pos..close].trim());
        let url = base.join(href).with_context(|| format!("link `{href}`"))?;
        let sha256 = url
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .and_then(|h| Digest::from_hex(&h.to_ascii_lowercase()).ok());
        let filename = if text.is_empty() || text.contains('<') {
            url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("").to_string()
        } else {
            text
        };
        let meta =
            attrs.get("data-core-metadata").or(attrs.get("data-dist-info-metadata")).map(|v| match v.split_once('=') {
                Some(("sha256", h)) => Digest::from_hex(&h.to_ascii_lowercase()).ok(),
                _ => None,
            });
        let meta = match (meta, attrs.get("data-core-metadata").or(attrs.get("data-dist-info-metadata"))) {
            (Some(d), Some(v)) if v != "false" => Some(d),
            _ => None,
        };
        out.push(IndexFile {
            filename,
            url: strip_fragment(url),
            sha256,
            requires_python: attrs.get("data-requires-python").cloned().filter(|s| !s.is_empty()),
            yanked: attrs.get("data-yanked").cloned(),
            core_metadata: meta,
            size: None,
        });
        pos = close;
    }
    Ok(out)
}

/// The end of a tag (`>` outside quotes).
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Attributes of a tag: lowercased names, unescaped values (`data-yanked` alone -> "").
fn parse_attrs(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            break;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = unescape(&s[vs..i.min(b.len())]);
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&s[vs..i]);
            }
        }
        out.insert(name, value);
    }
    out
}

fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Core metadata (METADATA, PKG-INFO): the header fields, in order. The body (long
/// description) is not kept.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub fields: Vec<(String, String)>,
}

impl Metadata {
    pub fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line.trim_start());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Self { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.fields.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// Does this metadata declare its dependencies? (Not for sdists whose metadata is
    /// older than 2.2 or marks Requires-Dist dynamic.)
    pub fn static_requirements(&self) -> bool {
        let version = self.get("Metadata-Version").and_then(|v| Version::from_str(v).ok());
        let dynamic = self.all("Dynamic").any(|d| d.eq_ignore_ascii_case("Requires-Dist"));
        version.is_some_and(|v| v >= Version::from_str("2.2").expect("valid")) && !dynamic
    }
}

/// `*.dist-info/METADATA` from a wheel.
pub fn wheel_metadata(path: &Path, filename: &str) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {filename}"))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| format!("{filename} is not a zip archive"))?;
    let name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i)?.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
        .ok_or_else(|| anyhow!("{filename} has no .dist-info/METADATA"))?;
    let mut entry = zip.by_name(&name).with_context(|| format!("{filename}: {name}"))?;
    let mut out = Vec::new();
    entry.by_ref().take(16 << 20).read_to_end(&mut out).with_context(|| format!("{filename}: reading {name}"))?;
    Ok(out)
}

/// `<name>-<version>/PKG-INFO` from a `.tar.gz` sdist.
pub fn sdist_metadata(path: &Path, filename: &str) -> Result<Option<Vec<u8>>> {
    if !filename.ends_with(".tar.gz") && !filename.ends_with(".tgz") {
        return Ok(None);
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {filename}"))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().with_context(|| format!("{filename} is not a tar.gz"))? {
        let mut entry = entry.with_context(|| format!("reading {filename}"))?;
        let path = entry.path().with_context(|| format!("reading {filename}"))?.to_path_buf();
        let comps: Vec<_> = path.components().collect();
        if comps.len() == 2 && comps[1].as_os_str() == "PKG-INFO" {
            let mut out = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut out)?;
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// One line of a requirements or constraints file. The marker is split off at the first
/// `;` before the requirement is parsed, so `name===1.2.3;python_version=='3.10'` (the
/// upper-constraints style, where `===` would otherwise swallow the marker) reads right.
/// The longest requirement line read: real ones are a few hundred bytes, and the PEP 508
/// parser takes time quadratic in the number of extras.
pub const MAX_REQUIREMENT_LINE: usize = 8 * 1024;
/// The deepest nesting of parentheses read in a requirement's marker (the parser recurses).
pub const MAX_MARKER_DEPTH: usize = 32;

pub fn parse_requirement_line(line: &str) -> Result<Requirement> {
    // Checked before the PEP 508 parser sees the line: it panics on a name ending in `.`,
    // `-` or `_` (`a-==1`), overflows its stack on deep nesting and is slow on long lines,
    // and Requires-Dist lines come from metadata anyone can publish.
    if line.len() > MAX_REQUIREMENT_LINE {
        let mut cut = 60;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        bail!("`{}...`: a requirement longer than {MAX_REQUIREMENT_LINE} bytes", &line[..cut]);
    }
    let mut depth = 0usize;
    for c in line.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth > MAX_MARKER_DEPTH {
                    bail!("`{line}`: parentheses nested deeper than {MAX_MARKER_DEPTH}");
                }
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    crate::names::python_requirement(line).map_err(|e| anyhow!("`{}`: {e}", line.escape_debug()))?;
    let (req, marker) = match line.split_once(';') {
        Some((r, m)) => (r.trim(), Some(m.trim())),
        None => (line.trim(), None),
    };
    let mut r = Requirement::from_str(req).map_err(|e| anyhow!("`{line}`: {e}"))?;
    if let Some(m) = marker {
        let tree = MarkerTree::from_str(m).map_err(|e| anyhow!("`{line}`: marker: {e}"))?;
        r.marker = tree;
    }
    Ok(r)
}

/// The lines of a requirements file: its requirements, and the constraints it pulls in
/// with `-c` (which narrow versions and add no project).
#[derive(Debug, Default)]
pub struct RequirementsFile {
    pub requirements: Vec<(String, Requirement)>,
    pub constraints: Vec<(String, Requirement)>,
}

/// Read a requirements (or constraints) file: comments and blank lines dropped, line
/// continuations joined, `-r FILE` followed as more of the same kind, `-c FILE` as
/// constraints (relative to the including file), `--hash=...` options (pip-compile
/// output) dropped — airlock checks every file against the index's own hash. Other
/// options (`--index-url`, `-e`, ...) are refused: the spec says where packages come from.
pub fn read_requirements_file(path: &Path) -> Result<RequirementsFile> {
    let mut out = RequirementsFile::default();
    read_into(path, 0, false, &mut out)?;
    Ok(out)
}

fn read_into(path: &Path, depth: usize, constraints: bool, out: &mut RequirementsFile) -> Result<()> {
    if depth > 8 {
        bail!("{}: requirement files include each other too deeply", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut joined = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(i) => &raw[..i],
            None => raw,
        };
        if let Some(cont) = line.strip_suffix('\\') {
            joined.push_str(cont);
            joined.push(' ');
            continue;
        }
        joined.push_str(line);
        let line = std::mem::take(&mut joined);
        // `name==1.0 --hash=sha256:...`: pip's per-line hash options.
        let line = line.split_whitespace().filter(|w| !w.starts_with("--hash")).collect::<Vec<_>>().join(" ");
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let include = |rest: &str| {
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '=');
            path.parent().unwrap_or(Path::new(".")).join(rest.trim())
        };
        if let Some(rest) = line.strip_prefix("--requirement").or_else(|| line.strip_prefix("-r")) {
            read_into(&include(rest), depth + 1, constraints, out).with_context(at)?;
            continue;
        }
        if let Some(rest) = line.strip_prefix("--constraint").or_else(|| line.strip_prefix("-c")) {
            read_into(&include(rest), depth + 1, true, out).with_context(at)?;
            continue;
        }
        if line.starts_with('-') {
            bail!("{}: option `{line}` is not supported in requirement files (the spec names the indexes)", at());
        }
        let parsed = (line.to_string(), parse_requirement_line(line).with_context(at)?);
        if constraints { out.constraints.push(parsed) } else { out.requirements.push(parsed) }
    }
    Ok(())
}

/// A file as the site's index lists it; also the record kept in each project's
/// `index.json`, from which the pages are rebuilt when later bundles add files.
///
/// Core metadata is named as PEP 714 says, `core-metadata` (JSON) and
/// `data-core-metadata` (HTML), and only so. The legacy PEP 658 names break installers
/// still in use: pip 22.3 to 23.1 (Debian bookworm's `python3 -m venv` bundles 23.0.1)
/// crashes on a `dist-info-metadata` object in JSON (`unhashable type: 'dict'`), and on
/// `data-dist-info-metadata` in HTML fetches the metadata, then refuses any project whose
/// `Name:` is not spelled in normalized form. Those pips download the wheel instead,
/// which always works. Pages written by earlier versions carried both names with the same
/// value: the legacy key is ignored when such a page is read, so it is gone once the page
/// is written again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageFile {
    pub filename: String,
    pub url: String,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python", skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    #[serde(default, rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    pub core_metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<serde_json::Value>,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectPage {
    pub meta: BTreeMap<String, String>,
    pub name: String,
    pub versions: Vec<String>,
    pub files: Vec<PageFile>,
}

impl ProjectPage {
    pub fn new(name: &str, mut files: Vec<PageFile>) -> Self {
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        files.dedup_by(|a, b| a.filename == b.filename);
        let mut versions: Vec<Version> = files
            .iter()
            .filter_map(|f| parse_filename(&f.filename))
            .map(|d| d.version)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        versions.sort();
        Self {
            meta: [("api-version".to_string(), "1.1".to_string())].into(),
            name: name.to_string(),
            versions: versions.iter().map(ToString::to_string).collect(),
            files,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("page serializes");
        v.push(b'\n');
        v
    }

    pub fn to_html(&self) -> Vec<u8> {
        let mut s = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Links for {0}</title>\n</head>\n<body>\n<h1>Links for {0}</h1>\n",
            escape(&self.name)
        );
        for f in &self.files {
            let mut href = f.url.clone();
            if let Some(h) = f.hashes.get("sha256") {
                href.push_str("#sha256=");
                href.push_str(h);
            }
            s.push_str(&format!("<a href=\"{}\"", escape(&href)));
            if let Some(rp) = &f.requires_python {
                s.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
            }
            match &f.yanked {
                Some(serde_json::Value::String(r)) => s.push_str(&format!(" data-yanked=\"{}\"", escape(r))),
                Some(serde_json::Value::Bool(true)) => s.push_str(" data-yanked=\"\""),
                _ => {}
            }
            if let Some(h) = f.core_metadata.as_ref().and_then(|m| m.get("sha256")) {
                s.push_str(&format!(" data-core-metadata=\"sha256={h}\""));
            }
            s.push_str(&format!(">{}</a><br>\n", escape(&f.filename)));
        }
        s.push_str("</body>\n</html>\n");
        s.into_bytes()
    }
}

/// The root page (`<index>/`): every project, in both forms.
pub fn root_pages(projects: &[String]) -> (Vec<u8>, Vec<u8>) {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n<title>Simple index</title>\n</head>\n<body>\n",
    );
    for p in projects {
        html.push_str(&format!("<a href=\"{0}/\">{0}</a><br>\n", escape(p)));
    }
    html.push_str("</body>\n</html>\n");
    let json = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "projects": projects.iter().map(|p| serde_json::json!({"name": p})).collect::<Vec<_>>(),
    });
    let mut json = serde_json::to_vec_pretty(&json).expect("serializes");
    json.push(b'\n');
    (html.into_bytes(), json)
}

/// Pick the response type for a simple-API request from its `Accept` header (PEP 691):
/// `Some(JSON_V1)`, `Some(HTML_V1)`, `Some("text/html")`, or `None` (406).
pub fn negotiate(accept: Option<&str>) -> Option<&'static str> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Some("text/html") };
    let mut best: Option<(f32, usize, &'static str)> = None;
    for (i, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';');
        let ty = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let chosen = match ty.as_str() {
            "application/vnd.pypi.simple.v1+json" | "application/vnd.pypi.simple.latest+json" => JSON_V1,
            "application/vnd.pypi.simple.v1+html" | "application/vnd.pypi.simple.latest+html" => HTML_V1,
            "text/html" | "text/*" | "*/*" => "text/html",
            _ => continue,
        };
        if q <= 0.0 {
            continue;
        }
        // Highest q wins; on a tie, the earlier entry.
        if best.is_none_or(|(bq, _, _)| q > bq) {
            best = Some((q, i, chosen));
        }
    }
    best.map(|(_, _, t)| t)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests write their inputs directly
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_link_does_not_swallow_the_next() {
        let base = reqwest::Url::parse("https://pypi.mirror.example/simple/a/").unwrap();
        let page = r#"<a href="../../f/a-1.0.tar.gz">a-1.0.tar.gz<br><a href="../../f/a-2.0.tar.gz">a-2.0.tar.gz</a>"#;
        let names: Vec<String> = parse_html_page(page, &base).unwrap().into_iter().map(|f| f.filename).collect();
        assert_eq!(names, ["a-1.0.tar.gz", "a-2.0.tar.gz"]);
    }

    /// Lines the PEP 508 parser cannot take safely (it panicked on the first three and
    /// overflowed its stack on the deep marker) are refused with a one-line error.
    #[test]
    fn hostile_requirement_lines_are_refused_not_crashed_on() {
        for line in ["a-==1", "a- >=1", "a-[x]", "a_;python_version>'3'"] {
            let e = parse_requirement_line(line).unwrap_err().to_string();
            assert!(e.contains("not a valid") && !e.contains('\n'), "{line}: {e}");
        }
        let deep = format!("a; {}python_version > '3'{}", "(".repeat(40), ")".repeat(40));
        assert!(parse_requirement_line(&deep).unwrap_err().to_string().contains("nested deeper"));
        let deeper = format!("a; {}python_version > '3'{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_requirement_line(&deeper).is_err());
        let long = format!("a[{}]", vec!["e"; 100_000].join(","));
        assert!(parse_requirement_line(&long).unwrap_err().to_string().contains("longer than"));
        let nested = format!("a; {}python_version > '3'{}", "(".repeat(8), ")".repeat(8));
        assert!(parse_requirement_line(&nested).is_ok());
    }

    #[test]
    fn names_normalize() {
        assert_eq!(normalize("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize("FRIENDLY.__bard"), "friendly-bard");
        assert_eq!(normalize("oslo.config"), "oslo-config");
        assert!(valid_project("oslo.config") && !valid_project("-x") && !valid_project("a b"));
    }

    #[test]
    fn filenames_parse() {
        let w = parse_filename("foo_bar-1.0-2b-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unwrap();
        assert_eq!(w.project, "foo-bar");
        assert_eq!(w.version.to_string(), "1.0");
        let DistKind::Wheel(tags) = w.kind else { panic!() };
        assert_eq!(tags.len(), 4);
        assert!(tags.contains(&("py3".into(), "none".into(), "manylinux2014_x86_64".into())));
        let s = parse_filename("python-dateutil-2.8.2.tar.gz").unwrap();
        assert_eq!((s.project.as_str(), s.version.to_string().as_str()), ("python-dateutil", "2.8.2"));
        assert_eq!(s.kind, DistKind::Sdist);
        assert!(parse_filename("foo-1.0.egg").is_none());
        assert!(parse_filename("foo-1.0-py3-none.whl").is_none());
    }

    #[test]
    fn manylinux_accepts_older_glibc_and_aliases() {
        let p = expand_platform("manylinux_2_28_x86_64").unwrap();
        assert_eq!(p[0], "manylinux_2_28_x86_64");
        let pos = |t: &str| p.iter().position(|x| x == t).unwrap();
        assert_eq!(pos("manylinux2014_x86_64"), pos("manylinux_2_17_x86_64") + 1);
        assert_eq!(pos("manylinux1_x86_64"), pos("manylinux_2_5_x86_64") + 1);
        assert_eq!(p.last().unwrap(), "linux_x86_64");
        assert!(!p.iter().any(|t| t.starts_with("manylinux_2_29")));
        let a = expand_platform("manylinux2014_aarch64").unwrap();
        assert_eq!(a, vec!["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]);
        let m = expand_platform("musllinux_1_2_x86_64").unwrap();
        assert_eq!(m, vec!["musllinux_1_2_x86_64", "musllinux_1_1_x86_64", "musllinux_1_0_x86_64", "linux_x86_64"]);
        assert!(expand_platform("manylinux_3_1_x86_64").is_err());
    }

    #[test]
    fn tag_order_prefers_specific_wheels() {
        let env = Environment::new("3.11", "manylinux_2_28_x86_64").unwrap();
        let w = |n: &str| match parse_filename(n).unwrap().kind {
            DistKind::Wheel(t) => env.rank(&t),
            DistKind::Sdist => None,
        };
        let cp = w("x-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").unwrap();
        let abi3 = w("x-1-cp38-abi3-manylinux_2_28_x86_64.whl").unwrap();
        let any = w("x-1-py3-none-any.whl").unwrap();
        assert!(cp < abi3 && abi3 < any);
        assert_eq!(w("x-1-cp312-cp312-manylinux_2_17_x86_64.whl"), None);
        assert_eq!(w("x-1-cp311-cp311-manylinux_2_31_x86_64.whl"), None, "newer glibc than the target");
        assert_eq!(w("x-1-cp311-cp311-musllinux_1_1_x86_64.whl"), None);
        assert_eq!(w("x-1-cp311-cp311-manylinux_2_17_aarch64.whl"), None);
        assert_eq!(w("x-1-py2-none-any.whl"), None);
        assert!(env.admits(Some(">=3.8")) && !env.admits(Some("<3.10")) && env.admits(None));
    }

    #[test]
    fn markers_follow_the_target_not_the_host() {
        let win = Environment::new("3.12", "win_amd64").unwrap();
        let linux = Environment::new("3.9", "manylinux_2_17_aarch64").unwrap();
        let r = parse_requirement_line("colorama; sys_platform == 'win32'").unwrap();
        assert!(r.evaluate_markers(&win.markers, &[]) && !r.evaluate_markers(&linux.markers, &[]));
        let r = parse_requirement_line("foo; platform_machine == 'aarch64' and python_version < '3.10'").unwrap();
        assert!(r.evaluate_markers(&linux.markers, &[]) && !r.evaluate_markers(&win.markers, &[]));
    }

    #[test]
    fn upper_constraints_lines_parse_with_markers() {
        let r = parse_requirement_line("alabaster===0.7.13;python_version=='3.8'").unwrap();
        assert_eq!(r.name.to_string(), "alabaster");
        let Some(pep508_rs::VersionOrUrl::VersionSpecifier(spec)) = &r.version_or_url else { panic!() };
        assert!(spec.contains(&Version::from_str("0.7.13").unwrap()));
        let py38 = Environment::new("3.8", "any").unwrap();
        let py311 = Environment::new("3.11", "any").unwrap();
        assert!(r.evaluate_markers(&py38.markers, &[]) && !r.evaluate_markers(&py311.markers, &[]));
    }

    #[test]
    fn openstack_upper_constraints_all_parse() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upper-constraints-2024.1.txt");
        let reqs = read_requirements_file(&path).unwrap().requirements;
        assert_eq!(reqs.len(), 619);
        let env = Environment::new("3.11", "manylinux_2_28_x86_64").unwrap();
        let active = reqs.iter().filter(|(_, r)| r.evaluate_markers(&env.markers, &[])).count();
        assert!(active > 550 && active < 619, "{active}");
    }

    #[test]
    fn html_pages_parse() {
        let base = reqwest::Url::parse("http://idx.example/simple/foo/").unwrap();
        let html = r#"<!DOCTYPE html><html><body>
<a href="../../files/foo-1.0-py3-none-any.whl#sha256=2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" data-requires-python="&gt;=3.8" data-core-metadata="sha256=fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9">foo-1.0-py3-none-any.whl</a><br/>
<A HREF='https://files.example/foo-0.9.tar.gz#md5=abc' data-yanked>foo-0.9.tar.gz</A>
</body></html>"#;
        let files = parse_html_page(html, &base).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].url, "http://idx.example/files/foo-1.0-py3-none-any.whl");
        assert_eq!(files[0].requires_python.as_deref(), Some(">=3.8"));
        assert!(files[0].sha256.is_some() && matches!(files[0].core_metadata, Some(Some(_))));
        assert_eq!(files[1].yanked.as_deref(), Some(""));
        assert!(files[1].sha256.is_none());
    }

    #[test]
    fn json_pages_parse_and_round_trip() {
        let base = reqwest::Url::parse("http://idx.example/simple/foo-bar/").unwrap();
        let page = ProjectPage::new(
            "foo-bar",
            vec![PageFile {
                filename: "foo_bar-1.0-py3-none-any.whl".into(),
                url: "../../files/foo-bar/foo_bar-1.0-py3-none-any.whl".into(),
                hashes: [("sha256".into(), "ab".repeat(32))].into(),
                requires_python: Some(">=3.9".into()),
                core_metadata: Some([("sha256".into(), "cd".repeat(32))].into()),
                yanked: Some(serde_json::Value::String("broken".into())),
                size: 1337,
            }],
        );
        for files in [
            parse_json_page(&page.to_json(), &base).unwrap(),
            parse_html_page(std::str::from_utf8(&page.to_html()).unwrap(), &base).unwrap(),
        ] {
            assert_eq!(files.len(), 1);
            let f = &files[0];
            assert_eq!(f.url, "http://idx.example/files/foo-bar/foo_bar-1.0-py3-none-any.whl");
            assert_eq!(f.sha256.unwrap().hex(), "ab".repeat(32));
            assert_eq!(f.requires_python.as_deref(), Some(">=3.9"));
            assert_eq!(f.yanked.as_deref(), Some("broken"));
            assert_eq!(f.core_metadata.unwrap().unwrap().hex(), "cd".repeat(32));
        }
        assert_eq!(page.versions, vec!["1.0"]);
    }

    #[test]
    fn pages_name_core_metadata_as_pep_714_says_and_only_so() {
        let file = |meta: Option<&str>| PageFile {
            filename: "a_b-1.0-py3-none-any.whl".into(),
            url: "../../files/a-b/a_b-1.0-py3-none-any.whl".into(),
            hashes: [("sha256".into(), "ab".repeat(32))].into(),
            requires_python: None,
            core_metadata: meta.map(|h| [("sha256".into(), h.to_string())].into()),
            yanked: None,
            size: 1,
        };
        let page = ProjectPage::new("a-b", vec![file(Some(&"cd".repeat(32)))]);
        let (json, html) = (String::from_utf8(page.to_json()).unwrap(), String::from_utf8(page.to_html()).unwrap());
        assert!(
            json.contains("\"core-metadata\"")
                && html.contains(&format!("data-core-metadata=\"sha256={}\"", "cd".repeat(32)))
        );
        assert!(!json.contains("dist-info-metadata") && !html.contains("dist-info-metadata"), "{json}\n{html}");
        // A page written with both names (as earlier versions did) reads back, and is
        // written again with the PEP 714 name only.
        let old =
            json.replace("\"core-metadata\"", "\"dist-info-metadata\": {\"sha256\": \"cd\"},\n      \"core-metadata\"");
        let reread: ProjectPage = serde_json::from_str(&old).unwrap();
        assert_eq!(reread.files, page.files);
        assert!(!String::from_utf8(reread.to_json()).unwrap().contains("dist-info-metadata"));
        // No metadata, no attribute.
        let bare = ProjectPage::new("a-b", vec![file(None)]);
        assert!(!String::from_utf8(bare.to_html()).unwrap().contains("metadata"));
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(Some(ACCEPT)), Some(JSON_V1));
        assert_eq!(negotiate(None), Some("text/html"));
        assert_eq!(negotiate(Some("text/html")), Some("text/html"));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.latest+html")), Some(HTML_V1));
        assert_eq!(negotiate(Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html")), Some("text/html"));
        assert_eq!(negotiate(Some("application/json")), None);
    }

    #[test]
    fn metadata_reads_headers_only() {
        let m = Metadata::parse(
            b"Metadata-Version: 2.1\nName: foo\nRequires-Dist: bar>=1\nRequires-Dist: baz; extra == 'x'\nDescription: a\n  b\n\nRequires-Dist: body\n",
        );
        assert_eq!(m.all("requires-dist").collect::<Vec<_>>(), vec!["bar>=1", "baz; extra == 'x'"]);
        assert_eq!(m.get("Description"), Some("a\nb"));
        assert!(!m.static_requirements());
    }

    #[test]
    fn requirement_files_keep_constraints_apart_and_drop_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.txt"), "b===2.0\n").unwrap();
        std::fs::write(
            dir.path().join("r.txt"),
            "-c c.txt\na==1.0 \\\n    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n# note\nb>=1 # why\n",
        )
        .unwrap();
        let f = read_requirements_file(&dir.path().join("r.txt")).unwrap();
        let names = |v: &[(String, Requirement)]| v.iter().map(|(_, r)| r.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&f.requirements), ["a", "b"]);
        assert_eq!(names(&f.constraints), ["b"]);
        std::fs::write(dir.path().join("bad.txt"), "--index-url http://x.example/simple\n").unwrap();
        let err = format!("{:#}", read_requirements_file(&dir.path().join("bad.txt")).unwrap_err());
        assert!(err.contains("bad.txt:1") && err.contains("not supported"), "{err}");
    }
}
