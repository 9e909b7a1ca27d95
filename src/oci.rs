//! The OCI image model airlock needs: references, media types, descriptors, platforms,
//! and the OCI image layout a bundle doubles as. Manifests are never re-serialized: they
//! are parsed only to find what they reference, and stored as the exact bytes fetched.

use std::fmt;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::names::{self, NameKind};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const LAYOUT_FILE: &str = "oci-layout";
pub const LAYOUT_INDEX: &str = "index.json";
pub const LAYOUT_BYTES: &[u8] = b"{\"imageLayoutVersion\":\"1.0.0\"}";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// Every manifest type airlock can carry, for `Accept`.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest_type(media_type: &str) -> bool {
    is_index(media_type) || media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// `registry.example:5000/ns/name:tag` or `...@sha256:<hex>`. The registry host is always
/// explicit: airlock has no default registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse and check a reference ([`names::image_parts`]).
    pub fn parse(s: &str) -> Result<Self> {
        let p = names::image_parts(s).map_err(|e| match e.kind {
            NameKind::ImageReference => anyhow::Error::new(e),
            _ => anyhow::Error::new(e).context(format!("image `{}`", s.escape_debug())),
        })?;
        Ok(Self {
            registry: p.registry.to_string(),
            repository: p.repository.to_string(),
            tag: p.tag.map(str::to_string),
            digest: p.digest.map(str::parse).transpose()?,
        })
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => unreachable!("parse requires one"),
        }
    }

    /// A name for the OCI layout's `ref.name` annotation, which tools like skopeo accept
    /// only as `[A-Za-z0-9._-]+`: the repository path with `/` as `_`, then `-<tag>`.
    pub fn layout_name(&self) -> String {
        let tag = match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => format!("sha256_{}", &d.hex()[..16]),
            _ => unreachable!(),
        };
        format!("{}-{tag}", self.repository.replace('/', "_"))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// [`names::image_tag`].
pub fn valid_tag(t: &str) -> bool {
    names::image_tag(t).is_ok()
}

/// [`names::image_repository`].
pub fn valid_repository(r: &str) -> bool {
    names::image_repository(r).is_ok()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`.
    pub fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// Does this platform satisfy `want` (`os/arch` or `os/arch/variant`)? A missing
    /// variant is normalised as containerd does (arm64 → v8, arm → v7).
    pub fn matches(&self, want: &str) -> bool {
        let mut w = want.split('/');
        let (os, arch, variant) = (w.next().unwrap_or(""), w.next().unwrap_or(""), w.next());
        if os != self.os || arch != self.architecture {
            return false;
        }
        let norm = |v: Option<&str>| -> Option<String> {
            v.map(str::to_string).or_else(|| match arch {
                "arm64" => Some("v8".into()),
                "arm" => Some("v7".into()),
                _ => None,
            })
        };
        variant.is_none() || norm(variant) == norm(self.variant.as_deref())
    }
}

/// What a manifest or index refers to.
pub enum Parsed {
    Index { manifests: Vec<Descriptor> },
    Image { config: Descriptor, layers: Vec<Descriptor> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// The media type of manifest bytes: the body's own `mediaType`, else the server's.
pub fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> Result<String> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("not a manifest: {e}"))?;
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
    match (raw.media_type, ct) {
        (Some(m), _) => Ok(m),
        (None, Some(c)) if is_manifest_type(&c) => Ok(c),
        (None, _) if raw.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        (None, _) => Ok(OCI_MANIFEST.to_string()),
    }
}

pub fn parse(bytes: &[u8], media_type: &str) -> Result<Parsed> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("not a manifest: {e}"))?;
    if is_index(media_type) {
        return Ok(Parsed::Index { manifests: raw.manifests.unwrap_or_default() });
    }
    match raw.config {
        Some(config) => Ok(Parsed::Image { config, layers: raw.layers.unwrap_or_default() }),
        None => bail!("an image manifest of type {media_type} without a config"),
    }
}

/// For a manifest with a `subject`: the subject's digest and the manifest's descriptor as
/// the referrers API lists it (media type, digest, size, artifactType, annotations).
pub fn referrer_descriptor(bytes: &[u8], media_type: &str, digest: &Digest) -> Option<(Digest, Vec<u8>)> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let subject: Digest = v.get("subject")?.get("digest")?.as_str()?.parse().ok()?;
    // artifactType, else (for an image manifest) the config's media type.
    let artifact_type = v
        .get("artifactType")
        .and_then(|t| t.as_str())
        .or_else(|| v.get("config").and_then(|c| c.get("mediaType")).and_then(|t| t.as_str()));
    let mut d = serde_json::json!({
        "mediaType": media_type,
        "digest": digest.to_string(),
        "size": bytes.len(),
    });
    if let Some(t) = artifact_type {
        d["artifactType"] = t.into();
    }
    if let Some(a) = v.get("annotations").filter(|a| a.is_object()) {
        d["annotations"] = a.clone();
    }
    Some((subject, serde_json::to_vec(&d).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("registry.example:5000/ns/base:1.0").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("registry.example:5000", "ns/base", Some("1.0"))
        );
        assert_eq!(r.layout_name(), "ns_base-1.0");
        let d = format!("localhost/app@sha256:{}", "a".repeat(64));
        assert_eq!(Reference::parse(&d).unwrap().reference(), format!("sha256:{}", "a".repeat(64)));
        for bad in ["ubuntu:22.04", "library/ubuntu:22.04", "registry.example/ns/base", "registry.example/NS/base:1"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms() {
        let p = Platform { architecture: "arm64".into(), os: "linux".into(), variant: None };
        assert!(p.matches("linux/arm64"));
        assert!(p.matches("linux/arm64/v8"));
        assert!(!p.matches("linux/amd64"));
        assert_eq!(p.name(), "linux/arm64");
    }
}
