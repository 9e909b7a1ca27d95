//! `airlock.lock`: every spec entry resolved to an immutable identity. `airlock export`
//! works from the lock and the cache alone, so the same lock and cache always give the
//! same bundle. JSON, with its schema in `bundle-schema/lock.schema.json`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bundle::manifest::Kind;
use crate::digest::Digest;
use crate::relpath::RelPath;
use crate::spec::DebianLayout;
use crate::store::atomic;

pub const LOCK_MEDIA_TYPE: &str = "application/vnd.airlock.lock.v1+json";
const SCHEMA_JSON: &str = include_str!("../bundle-schema/lock.schema.json");

fn schema_validator() -> &'static jsonschema::Validator {
    static V: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    V.get_or_init(|| crate::bundle::manifest::compile_schema(SCHEMA_JSON))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Lock {
    pub media_type: String,
    pub schema_version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the lock was last resolved (RFC 3339, UTC); the bundle's creation time.
    pub resolved: String,
    pub artifacts: Vec<LockedArtifact>,
    /// Git repositories: each selected ref and the object it points to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git: Vec<LockedGit>,
    /// Container images: the manifest each reference resolved to, and every blob of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<LockedImage>,
    /// Python distributions: every file chosen, from which index, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python: Vec<LockedPython>,
    /// Debian packages: each entry's closure, every .deb pinned by its SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debian: Vec<LockedDebian>,
    /// OCI artifacts of the spec's `artifacts:`, with their dependencies, each at the
    /// version the ranges chose and carried as an image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oci_artifacts: Vec<LockedOciArtifact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedOciArtifact {
    /// `host[:port]/path`.
    pub repository: String,
    /// The version chosen, and the tag that carries it.
    pub version: String,
    pub tag: String,
    /// The manifest digest the tag resolved to.
    pub digest: Digest,
    /// Its dependencies (`manifest.yaml`): repository -> range.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dependencies: std::collections::BTreeMap<String, String>,
    /// Every chain of ranges that reached it: `app 1.0.0 → db >=2`, `app ^1 (spec)`.
    pub required_by: Vec<String>,
    /// The artifact as an image: its manifest, config and layers.
    pub image: LockedImage,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedPython {
    /// The site index it goes to (the spec entry's `name`).
    pub index: String,
    /// The project's normalized name.
    pub project: String,
    pub version: String,
    pub filename: String,
    /// Where it was downloaded from.
    pub url: String,
    /// The SHA-256 the upstream index gave, which the download matched.
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// Set when the index marks the file yanked (the reason, possibly empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<String>,
    /// The file's core metadata (a wheel's METADATA), served at `<file>.metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<crate::bundle::manifest::BlobDescriptor>,
    /// For which environment and requirement it was chosen: `cp311-manylinux_2_28_x86_64: requests>=2 (from spec)`.
    pub chosen_for: Vec<String>,
    /// `build` for a file carried only because building a carried sdist needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PythonRole>,
}

/// Why a Python file is carried, when it is not to be installed itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PythonRole {
    /// Only to build an sdist of the closure (its build backend and what that needs).
    Build,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedDebian {
    /// The suite's name at the site.
    pub name: String,
    /// The upstream archive root (the first of the entry's `sources`).
    pub upstream: String,
    /// The purl namespace (`pkg:deb/<vendor>/...`).
    pub vendor: String,
    /// How the site gets the packages: one suite named `name` (merged, the default), or
    /// the upstream suites.
    #[serde(default, skip_serializing_if = "DebianLayout::is_merged")]
    pub layout: DebianLayout,
    /// Every upstream suite read, in order, across all the entry's archives.
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// Each upstream suite's signed Release: which file was verified, and by which key.
    pub releases: Vec<LockedRelease>,
    /// Every package of the closure, sorted by name, version, architecture.
    pub packages: Vec<LockedDeb>,
    /// Where a dependency had alternatives (`a | b`), which one was taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<LockedChoice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedRelease {
    pub suite: String,
    /// The archive root of the suite, when it is not the entry's `upstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The file that was verified (`InRelease`, or `Release` with `Release.gpg`).
    pub file: String,
    pub signed_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedDeb {
    pub package: String,
    pub version: String,
    /// The package's `Architecture` (`amd64`, `all`, ...).
    pub arch: String,
    /// The upstream suite and component it came from (its origin: the suite whose
    /// candidate it was).
    pub suite: String,
    pub component: String,
    /// The archive root it came from, when it is not the entry's `upstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Its path upstream, relative to the archive root (Packages' `Filename`).
    pub filename: RelPath,
    pub size: u64,
    pub digest: Digest,
    /// The Packages stanza without `Filename`, `Size` and hashes (the site adds its own).
    pub control: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedChoice {
    /// The package that needed it, as `name version (arch)`.
    pub package: String,
    pub arch: String,
    pub relation: String,
    pub chosen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedImage {
    /// The reference as written in the spec.
    pub name: String,
    /// `registry/repository`, where it came from.
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The digest the reference resolved to upstream.
    pub upstream_digest: Digest,
    /// What is carried: the upstream manifest, or a new index holding only the chosen
    /// platforms' manifests.
    pub digest: Digest,
    /// The platforms carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Every blob of the image, the top manifest first: manifests, configs, layers.
    pub blobs: Vec<crate::bundle::manifest::BlobDescriptor>,
    /// For a referrer: the digest of the manifest it refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    /// For a referrer: its artifact type (`artifactType`, else its config's media type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// What refers to this image (`referrers: true`): signatures, SBOMs, attestations,
    /// each carried as an image of its own, by digest or by its cosign tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<LockedImage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedGit {
    /// The repository's name at the site.
    pub name: String,
    pub upstream: String,
    /// The branch the upstream's HEAD names, when it is carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Ref name -> object id (a commit, or a tag object for annotated tags).
    pub refs: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockedArtifact {
    pub kind: Kind,
    /// For files: the path in the bundle and the raw repository.
    pub name: RelPath,
    /// Where it came from: a URL, or a local path as written in the spec.
    pub upstream: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

impl Lock {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading lock {} (run `airlock mirror` first)", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing lock {}", path.display()))?;
        // The first error only (`iter_errors` builds them all first).
        if let Err(err) = schema_validator().validate(&value) {
            bail!("lock {} does not match its schema at `{}`: {err}", path.display(), err.instance_path());
        }
        let lock: Lock = serde_json::from_value(value).with_context(|| format!("parsing lock {}", path.display()))?;
        if lock.media_type != LOCK_MEDIA_TYPE || lock.schema_version != 1 {
            bail!(
                "lock {} is `{}` version {}; this airlock reads `{LOCK_MEDIA_TYPE}` version 1",
                path.display(),
                lock.media_type,
                lock.schema_version
            );
        }
        Ok(lock)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        atomic::write(path, &bytes).with_context(|| format!("writing lock {}", path.display()))
    }
}
