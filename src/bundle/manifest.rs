//! `manifest.json`: the signed description of a bundle. Its schema is
//! `bundle-schema/manifest.schema.json`; its SHA-256 is the bundle's identity.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::names::{self, NameError};
use crate::relpath::RelPath;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.airlock.bundle.manifest.v1+json";
pub const SCHEMA_JSON: &str = include_str!("../../bundle-schema/manifest.schema.json");
pub const MEMBER_MANIFEST: &str = "manifest.json";
pub const MEMBER_SIGNATURE: &str = "manifest.json.minisig";
pub const MEMBER_SUMS: &str = "SHA256SUMS";
pub const BLOB_PREFIX: &str = "blobs/sha256/";
pub const GIT_BUNDLE_MEDIA_TYPE: &str = "application/x-git-bundle";
/// The CycloneDX SBOM member, right after `SHA256SUMS`.
pub const MEMBER_SBOM: &str = "sbom.cdx.json";
pub const SBOM_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The provenance member (a DSSE envelope of an in-toto statement), after the SBOM.
pub const MEMBER_PROVENANCE: &str = "provenance.intoto.json";
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto.provenance+dsse";

/// The content kinds a bundle can carry; they display as the spec's YAML words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    File,
    Image,
    Git,
    Python,
    Debian,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Image => "image",
            Kind::Git => "git",
            Kind::Python => "python",
            Kind::Debian => "debian",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    pub media_type: String,
    pub schema_version: u32,
    pub name: String,
    pub version: String,
    /// RFC 3339 UTC: when the lock behind this bundle was resolved.
    pub created: String,
    /// The airlock that wrote the bundle.
    pub generator: String,
    /// For a differential bundle: the bundle it builds on. Blobs that artifacts name but
    /// `blobs` does not list are the base's, and must already be at the importing site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Base>,
    pub artifacts: Vec<Artifact>,
    /// Every blob carried in this bundle, sorted by digest, each once.
    pub blobs: Vec<BlobDescriptor>,
    /// The member `sbom.cdx.json` (CycloneDX 1.6): its digest and size are signed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<BlobDescriptor>,
    /// The member `provenance.intoto.json` (SLSA provenance in a DSSE envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<BlobDescriptor>,
}

/// What a differential bundle builds on: an earlier bundle (`export --since`), or the
/// state a site reported in a signed receipt (`export --since-receipt`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Base {
    Bundle(BundleBase),
    Receipt(ReceiptBase),
}

/// An earlier bundle, named by its manifest digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleBase {
    pub name: String,
    pub version: String,
    /// The base bundle's manifest digest.
    pub manifest: Digest,
}

/// A site's receipt (`airlock receipt`): what that site's store held when it wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReceiptBase {
    /// The SHA-256 of the receipt file, its identity.
    pub receipt: Digest,
    /// The site's name, as its receipt gives it.
    pub site: String,
    /// The key id of the site key that signed the receipt.
    pub site_key: String,
    /// When the site wrote the receipt.
    pub created: String,
}

impl Base {
    /// The digest of what this builds on: the base bundle's manifest, or the receipt.
    pub fn digest(&self) -> Digest {
        match self {
            Base::Bundle(b) => b.manifest,
            Base::Receipt(r) => r.receipt,
        }
    }

    /// For messages: `<name>-<version>` of the base bundle, or `the receipt of site X (T)`.
    pub fn label(&self) -> String {
        match self {
            Base::Bundle(b) => format!("{}-{}", b.name, b.version),
            Base::Receipt(r) => format!("the receipt of site `{}` ({})", r.site, r.created),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Artifact {
    pub kind: Kind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the connected side got it (URL, or local path as written in the spec).
    pub upstream: String,
    pub purl: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// OCI-style platform (`linux/arm64`) for kinds that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// For files: the path in the raw repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<RelPath>,
    /// For git: every carried ref and the object it points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<BTreeMap<String, String>>,
    /// For git: the branch HEAD names, when it is carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// For an incremental git bundle: the commits the site must already have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<String>,
    /// For an image whose index was filtered to some platforms: the digest upstream had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_digest: Option<Digest>,
    /// For an image: its top manifest's size and media type (needed when a differential
    /// bundle leaves that manifest to its base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_media_type: Option<String>,
    /// For an image that refers to another (a signature, an SBOM, an attestation): the
    /// digest of the manifest it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// For a referrer: its artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// For Python files: the site index they go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// For Python files: the project's normalized name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// For Python files: the index's Requires-Python.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// For Python files the index marks yanked: the reason (possibly empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<String>,
    /// The blobs: a file's one; an image's manifests, configs and layers; a git bundle;
    /// a Python file then its core metadata, if any.
    /// For debian: the Packages stanza without `Filename`, `Size` and hashes (the site
    /// adds its own); `path` is the .deb's place in the site repository's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// For debian: the suite and component it is published in at the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// For debian: the architectures of that suite (arch:all packages are listed in each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    pub blobs: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlobDescriptor {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Manifest {
    /// `<name>-<version>`: the bundle's file name stem.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }

    /// Internal consistency beyond the schema: sorted unique blobs, artifacts that name
    /// only blobs that are carried (or, in a differential bundle, left to the base).
    pub fn check(&self) -> Result<(), String> {
        if self.media_type != MANIFEST_MEDIA_TYPE || self.schema_version != 1 {
            return Err(format!(
                "manifest is `{}` version {}; this airlock reads `{MANIFEST_MEDIA_TYPE}` version 1",
                self.media_type, self.schema_version
            ));
        }
        for w in self.blobs.windows(2) {
            if w[0].digest >= w[1].digest {
                return Err(format!("manifest lists blob {} out of order or twice", w[1].digest));
            }
        }
        let carried: BTreeSet<_> = self.blobs.iter().map(|b| b.digest).collect();
        let mut paths = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut python = BTreeSet::new();
        let mut pool: BTreeMap<&RelPath, &Digest> = BTreeMap::new();
        for a in &self.artifacts {
            if a.kind == Kind::Debian {
                let (Some(p), [d], Some(_), Some(arch), Some(_), Some(suite), Some(component)) =
                    (&a.path, &a.blobs[..], &a.version, &a.arch, &a.control, &a.suite, &a.component)
                else {
                    return Err(format!(
                        "debian artifact `{}` must name one blob, its version, arch, control stanza, pool path, suite and component",
                        a.name
                    ));
                };
                check_debian(a, suite, component, arch).map_err(|e| in_artifact(a, &e))?;
                if a.architectures.iter().any(|x| x == "all") {
                    return Err(format!("debian artifact `{}`: `all` is not one of a suite's architectures", shown(a)));
                }
                if !p.as_str().starts_with("pool/") || !p.as_str().ends_with(".deb") || a.architectures.is_empty() {
                    return Err(format!(
                        "debian artifact `{}`: pool path `{p}` or architectures are not valid",
                        shown(a)
                    ));
                }
                if pool.insert(p, d).is_some_and(|o| o != d) {
                    return Err(format!("two debian artifacts have pool path `{p}` with different content"));
                }
            }
            if a.kind == Kind::File {
                let Some(p) = &a.path else {
                    return Err(format!("file artifact `{}` has no path", shown(a)));
                };
                names::raw_path(p.as_str()).map_err(|e| in_artifact(a, &e))?;
                if !paths.insert(p.clone()) {
                    return Err(format!("two file artifacts have path `{p}`"));
                }
                if a.blobs.len() != 1 {
                    return Err(format!("file artifact `{}` must name exactly one blob", a.name));
                }
            }
            if a.kind == Kind::Image && (a.blobs.is_empty() || a.top_size.is_none() || a.top_media_type.is_none()) {
                return Err(format!("image artifact `{}` must name its manifest, size and media type", a.name));
            }
            if a.kind == Kind::Image {
                names::image_reference(&a.name).map_err(|e| in_artifact(a, &e))?;
            } else if a.subject.is_some() || a.artifact_type.is_some() {
                return Err(format!(
                    "{} artifact `{}` has a `subject` or `artifactType`, which only images have",
                    a.kind,
                    shown(a)
                ));
            }
            if a.kind == Kind::Git {
                if a.refs.as_ref().is_none_or(BTreeMap::is_empty) {
                    return Err(format!("git artifact `{}` carries no refs", a.name));
                }
                if a.blobs.len() > 1 {
                    return Err(format!("git artifact `{}` must name at most one git bundle", a.name));
                }
                if !names.insert(a.name.clone()) {
                    return Err(format!("two git artifacts are named `{}`", a.name));
                }
                check_git(a)?;
            }
            if a.kind == Kind::Python {
                let (Some(index), Some(_)) = (&a.index, &a.project) else {
                    return Err(format!("python artifact `{}` must name its index and project", a.name));
                };
                if a.blobs.is_empty() || a.blobs.len() > 2 {
                    return Err(format!("python artifact `{}` must name its file and at most its metadata", a.name));
                }
                // `<index>/files/<project>/<file>` and `<index>/simple/<project>/` at the site.
                let project = a.project.as_deref().unwrap_or("");
                names::python_file(&a.name)
                    .and_then(|()| names::repository(index))
                    .and_then(|()| names::python_project_normalized(project))
                    .map_err(|e| in_artifact(a, &e))?;
                if !python.insert((index.clone(), a.name.clone())) {
                    return Err(format!("two python artifacts are `{index}/{}`", a.name));
                }
            }
            if self.base.is_none()
                && let Some(d) = a.blobs.iter().find(|d| !carried.contains(d))
            {
                return Err(format!("artifact `{}` names blob {d}, which the manifest does not list", a.name));
            }
        }
        Ok(())
    }

    /// The named members whose digest and size the manifest carries (the SBOM and the
    /// provenance), in bundle order, right after `SHA256SUMS`.
    pub fn evidence(&self) -> Vec<(&'static str, &BlobDescriptor)> {
        let sbom = self.sbom.as_ref().map(|d| (MEMBER_SBOM, d));
        let provenance = self.provenance.as_ref().map(|d| (MEMBER_PROVENANCE, d));
        sbom.into_iter().chain(provenance).collect()
    }

    pub fn blob_member(d: &Digest) -> String {
        format!("{BLOB_PREFIX}{}", d.hex())
    }

    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// An artifact's name for messages: escaped (a hostile one may hold a newline).
fn shown(a: &Artifact) -> String {
    names::shown(&a.name)
}

fn in_artifact(a: &Artifact, e: &NameError) -> String {
    format!("{} artifact `{}`: {e}", a.kind, shown(a))
}

/// A git artifact's names: its repository becomes `<store>/git/<name>.git`, its refs
/// arguments of git and lines of `git update-ref --stdin`.
fn check_git(a: &Artifact) -> Result<(), String> {
    let name = shown(a);
    names::git_repository(&a.name).map_err(|e| in_artifact(a, &e))?;
    let refs = a.refs.as_ref().map(|r| r.iter()).into_iter().flatten();
    for (r, oid) in refs {
        names::git_ref(r).map_err(|e| in_artifact(a, &e))?;
        names::object_id(oid).map_err(|e| format!("git artifact `{name}`: ref {r}: {e}"))?;
    }
    if let Some(h) = &a.head
        && !a.refs.as_ref().is_some_and(|r| r.contains_key(h))
    {
        return Err(format!("git artifact `{name}`: head `{}` is not one of its refs", h.escape_debug()));
    }
    for p in &a.prerequisites {
        names::object_id(p).map_err(|e| format!("git artifact `{name}`: prerequisite {e}"))?;
    }
    Ok(())
}

/// A debian artifact's names: its suite, component and architectures become paths of the
/// site's apt repository (`dists/<suite>/<component>/binary-<arch>/`), its name, version
/// and arch a .deb's file name in the pool.
fn check_debian(a: &Artifact, suite: &str, component: &str, arch: &str) -> Result<(), NameError> {
    names::deb_package(&a.name)?;
    names::deb_version(a.version.as_deref().unwrap_or_default())?;
    names::deb_architecture(arch)?;
    names::deb_suite(suite)?;
    names::deb_component(component)?;
    a.architectures.iter().try_for_each(|x| names::deb_architecture(x))
}

/// The JSON Schema validator for manifests, built once.
pub fn schema_validator() -> &'static jsonschema::Validator {
    static V: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    V.get_or_init(|| compile_schema(SCHEMA_JSON))
}

/// Compile one of the JSON Schemas of bundle-schema/ built into airlock.
pub fn compile_schema(json: &str) -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(json).expect("bundled schema is JSON");
    jsonschema::validator_for(&schema).expect("bundled schema compiles")
}

/// Parse manifest bytes: JSON Schema first, then the typed form, then [`Manifest::check`].
pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest.json is not JSON: {e}"))?;
    // The first error only: `iter_errors` builds every error before yielding one, and
    // 1 MiB of `{}` artifacts then took 1.3 GB.
    if let Err(err) = schema_validator().validate(&value) {
        return Err(format!("manifest.json does not match the schema at `{}`: {err}", err.instance_path()));
    }
    let m: Manifest = serde_json::from_value(value).map_err(|e| format!("manifest.json: {e}"))?;
    m.check()?;
    // Declared sizes are added up (totals, progress, uploads): the sum must exist.
    if m.blobs.iter().try_fold(0u64, |t, b| t.checked_add(b.size)).is_none() {
        return Err("manifest.json: the blob sizes add up to more than 2^64 bytes".into());
    }
    Ok(m)
}

/// A purl for a plain file (`pkg:generic`).
pub fn file_purl(path: &RelPath, digest: &Digest, url: Option<&str>) -> String {
    let name = path.as_str().rsplit('/').next().unwrap_or(path.as_str());
    let mut s = format!("pkg:generic/{}?checksum=sha256:{}", pct(name), digest.hex());
    if let Some(u) = url {
        s.push_str("&download_url=");
        s.push_str(&pct(u));
    }
    s
}

/// A purl for an image: `pkg:oci/<last path component>@<digest>?repository_url=...&tag=...`.
pub fn image_purl(repository: &str, digest: &Digest, tag: Option<&str>) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let mut s = format!("pkg:oci/{}@{digest}?repository_url={}", pct(last), pct(repository));
    if let Some(t) = tag {
        s.push_str(&format!("&tag={}", pct(t)));
    }
    s
}

/// A purl for a Python distribution file: `pkg:pypi/<project>@<version>?file_name=<file>`.
pub fn pypi_purl(project: &str, version: &str, filename: &str) -> String {
    format!("pkg:pypi/{}@{}?file_name={}", pct(project), pct(version), pct(filename))
}

/// A purl for a git repository: `pkg:generic/<name>@<head commit>?vcs_url=git%2B<url>`.
pub fn git_purl(name: &str, version: Option<&str>, url: &str) -> String {
    let version = version.map(|v| format!("@{v}")).unwrap_or_default();
    format!("pkg:generic/{}{version}?vcs_url={}", pct(name), pct(&format!("git+{url}")))
}

/// A purl for a Debian package: `pkg:deb/<vendor>/<name>@<version>?arch=<arch>`.
pub fn deb_purl(vendor: &str, name: &str, version: &str, arch: &str) -> String {
    format!("pkg:deb/{}/{}@{}?arch={}", pct(vendor), pct(name), pct(version), pct(arch))
}

/// Percent-encode all but `A-Z a-z 0-9 . - _ ~` (and `:` as purl allows).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_encodes() {
        let d = Digest::of(b"x");
        let p = file_purl(&RelPath::new("a/hello 1.tar.gz").unwrap(), &d, Some("http://h.example/x?y=1"));
        assert!(p.starts_with("pkg:generic/hello%201.tar.gz?checksum=sha256:"), "{p}");
        assert!(p.ends_with("&download_url=http:%2F%2Fh.example%2Fx%3Fy%3D1"), "{p}");
        assert_eq!(
            deb_purl("debian", "libc++1", "1:2.0~rc1", "amd64"),
            "pkg:deb/debian/libc%2B%2B1@1:2.0~rc1?arch=amd64"
        );
    }

    fn one(a: Artifact) -> Result<(), String> {
        let blobs = a
            .blobs
            .iter()
            .map(|d| BlobDescriptor { digest: *d, size: 1, media_type: "application/octet-stream".into() })
            .collect();
        Manifest {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            schema_version: 1,
            name: "x".into(),
            version: "1".into(),
            created: "2026-01-01T00:00:00Z".into(),
            generator: "test".into(),
            base: None,
            artifacts: vec![a],
            blobs,
            sbom: None,
            provenance: None,
        }
        .check()
    }

    #[test]
    fn names_that_become_paths_at_the_site_are_checked() {
        let deb = |suite: &str, arch: &str, archs: &[&str]| Artifact {
            kind: Kind::Debian,
            name: "pp".into(),
            version: Some("1".into()),
            arch: Some(arch.into()),
            path: Some(RelPath::new("pool/main/p/pp/pp_1_amd64.deb").unwrap()),
            control: Some("Package: pp\n".into()),
            suite: Some(suite.into()),
            component: Some("main".into()),
            architectures: archs.iter().map(|s| s.to_string()).collect(),
            blobs: vec![Digest::of(b"deb")],
            ..Default::default()
        };
        assert_eq!(one(deb("site", "amd64", &["amd64"])), Ok(()));
        assert_eq!(one(deb("site/updates", "all", &["amd64"])), Ok(()));
        let err = |a: Artifact| one(a).unwrap_err();
        assert_eq!(
            err(deb("../x", "amd64", &["amd64"])),
            "debian artifact `pp`: `../x` is not a valid Debian suite: part `..`: it starts with `.`"
        );
        assert!(
            err(deb("/etc/apt", "amd64", &["amd64"])).contains("is not a valid Debian suite: it has an empty part")
        );
        assert!(err(deb("site", "amd64", &["x/../../y"])).contains("`x/../../y` is not a valid Debian architecture"));
        assert!(err(deb("site", "a b", &["amd64"])).contains("`a b` is not a valid Debian architecture"));
        assert!(err(deb("site", "amd64", &["all"])).contains("`all` is not one of a suite's architectures"));
        let mut a = deb("site", "amd64", &["amd64"]);
        a.name = "pp\nPackage: evil".into();
        assert_eq!(
            err(a),
            "debian artifact `pp\\nPackage: evil`: `pp\\nPackage: evil` is not a valid Debian package name: it has a newline (only lower-case letters, digits, `+`, `-` and `.`)"
        );
        let mut a = deb("site", "amd64", &["amd64"]);
        a.version = Some("1\nFilename: x".into());
        assert!(err(a).contains("is not a valid Debian version: it has a newline"));

        let py = |name: &str, index: &str, project: &str| Artifact {
            kind: Kind::Python,
            name: name.into(),
            index: Some(index.into()),
            project: Some(project.into()),
            blobs: vec![Digest::of(b"whl")],
            ..Default::default()
        };
        let whl = "a-1.0-py3-none-any.whl";
        assert_eq!(one(py(whl, "pypi", "a")), Ok(()));
        assert!(err(py(&format!("../{whl}"), "pypi", "a")).contains("is not a valid Python file name: it has `/`"));
        assert!(err(py(whl, "../pypi", "a")).contains("`../pypi` is not a valid repository name"));
        assert!(err(py(whl, "pypi", "a/b")).contains("`a/b` is not a valid normalized Python project name"));
        assert!(err(py(whl, "pypi", "A_b")).contains("its normalized form is `a-b`"));

        let oid = "a".repeat(40);
        let git = |name: &str, r: &str, oid: &str| Artifact {
            kind: Kind::Git,
            name: name.into(),
            refs: Some(BTreeMap::from([(r.to_string(), oid.to_string())])),
            blobs: vec![Digest::of(b"bundle")],
            ..Default::default()
        };
        assert_eq!(one(git("kolla", "refs/heads/main", &oid)), Ok(()));
        assert!(err(git("../../x", "refs/heads/main", &oid)).contains("is not a valid git repository name"));
        assert!(
            err(git("kolla", "refs/heads/x\ndelete refs/heads/main", &oid))
                .contains("`refs/heads/x\\ndelete refs/heads/main` is not a valid git ref name: it has a newline")
        );
        assert!(err(git("kolla", "refs/heads/main", "HEAD; rm -rf /")).contains("is not a valid git object id"));
        let mut a = git("kolla", "refs/heads/main", &oid);
        a.prerequisites = vec!["--upload-pack=x".into()];
        assert!(err(a).contains("prerequisite `--upload-pack=x` is not a valid git object id"));

        let image = |name: &str| Artifact {
            kind: Kind::Image,
            name: name.into(),
            top_size: Some(1),
            top_media_type: Some(crate::oci::OCI_MANIFEST.into()),
            blobs: vec![Digest::of(b"manifest")],
            ..Default::default()
        };
        assert_eq!(one(image("registry.example/ns/base:1.0")), Ok(()));
        assert!(err(image("registry.example/../x:1.0")).contains("`../x` is not a valid image repository name"));
        assert!(err(image("registry.example/x:1.0\nx")).contains("is not a valid image reference: it has a newline"));

        let file = |path: &str| Artifact {
            kind: Kind::File,
            name: path.into(),
            path: Some(RelPath::new(path).unwrap()),
            blobs: vec![Digest::of(b"file")],
            ..Default::default()
        };
        assert_eq!(one(file("a/b.tar.gz")), Ok(()));
        assert!(err(file("a/.airlock-x.tmp")).contains("starts with `.airlock-`"));
        // A referrer is an image; nothing else names a subject.
        let mut sig = image(&format!("registry.example/ns/base:sha256-{}.sig", "a".repeat(64)));
        sig.subject = Some(Digest::of(b"subject"));
        assert_eq!(one(sig), Ok(()));
        let mut f = file("a/b.tar.gz");
        f.subject = Some(Digest::of(b"subject"));
        assert!(err(f).contains("has a `subject` or `artifactType`, which only images have"));
    }
}
