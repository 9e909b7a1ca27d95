//! What refers to an image upstream: signatures, SBOMs and attestations. Three places are
//! asked, as the tools that write them use them: the OCI 1.1 referrers API
//! (`GET /v2/<name>/referrers/<digest>`); where a registry lacks it, the tag fallback the
//! distribution spec defines (`sha256-<hex>`, an image index of the referrers); and
//! cosign's own tags, which skopeo and podman write too (`sha256-<hex>.sig`, `.att`,
//! `.sbom`). An image entry's `verify` checks the sigstore signatures among them.

use std::path::Path;

use anyhow::{Result, bail};

use crate::digest::Digest;
use crate::oci::Reference;
use crate::registry::Registry;
use crate::sigstore::{self, PublicKey};

/// The cosign tag suffixes that hold artifacts about `sha256-<hex>`.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// A referrer found upstream.
#[derive(Debug, Clone)]
pub struct Found {
    /// How it is pulled from the subject's repository: `@sha256:<hex>` or `:<tag>`.
    pub reference: String,
    pub digest: Digest,
    pub artifact_type: Option<String>,
    /// The manifest's bytes, as fetched (checked against `digest`).
    pub bytes: Vec<u8>,
}

/// The artifact type of a referrer manifest: its `artifactType`, else its config's media
/// type, else (the generic image config cosign's tags carry) its first layer's.
pub fn artifact_type(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(t) = v["artifactType"].as_str() {
        return Some(t.to_string());
    }
    match v["config"]["mediaType"].as_str() {
        Some(c) if c != "application/vnd.oci.image.config.v1+json" => Some(c.to_string()),
        _ => v["layers"][0]["mediaType"].as_str().map(str::to_string),
    }
}

/// Every referrer of `subject` in `r`'s repository. With `only`, the referrers API is
/// asked for that one artifact type (if it is one), and what it lists is filtered here
/// too when the registry did not apply the filter.
pub fn discover(reg: &Registry, r: &Reference, subject: &Digest, only: Option<&[String]>) -> Result<Vec<Found>> {
    let repo = &r.repository;
    let filter = only.filter(|t| t.len() == 1).map(|t| t[0].as_str());
    let mut out: Vec<Found> = Vec::new();
    let index = match reg.referrers(repo, subject, filter)? {
        Some((bytes, _applied)) => Some(bytes),
        None => reg.find_manifest(repo, &format!("sha256-{}", subject.hex()))?.map(|(b, _)| b),
    };
    if let Some(bytes) = index {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("image {r}: the referrers of {subject} are not JSON: {e}"))?;
        for m in v["manifests"].as_array().into_iter().flatten() {
            let Some(d) = m["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else {
                bail!("image {r}: a referrer of {subject} has no valid digest");
            };
            let t = m["artifactType"].as_str().map(str::to_string);
            if let (Some(want), Some(t)) = (only.filter(|w| !w.is_empty()), &t)
                && !want.contains(t)
            {
                continue;
            }
            let (bytes, _) = reg.get_manifest(repo, &d.to_string())?;
            if Digest::of(&bytes) != d {
                bail!("image {r}: referrer {d} does not match its digest");
            }
            // A referrer must name the subject it is listed for.
            let named = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["subject"]["digest"].as_str().map(str::to_string));
            if named.as_deref() != Some(&subject.to_string()) {
                bail!("image {r}: {d} is listed as a referrer of {subject} but names another subject");
            }
            let artifact_type = t.or_else(|| artifact_type(&bytes));
            if !out.iter().any(|f| f.digest == d) {
                out.push(Found { reference: format!("@{d}"), digest: d, artifact_type, bytes });
            }
        }
    }
    for suffix in COSIGN_SUFFIXES {
        let tag = format!("sha256-{}.{suffix}", subject.hex());
        if let Some((bytes, _)) = reg.find_manifest(repo, &tag)? {
            let digest = Digest::of(&bytes);
            let artifact_type = artifact_type(&bytes);
            out.push(Found { reference: format!(":{tag}"), digest, artifact_type, bytes });
        }
    }
    Ok(out)
}

/// Refuse the image unless one of the simple-signing signatures in `found` verifies with
/// the key and names `subject`. `shown` is the key as the spec names it, for errors.
pub fn verify(
    reg: &Registry,
    r: &Reference,
    subject: &Digest,
    found: &[Found],
    k: &PublicKey,
    shown: &Path,
) -> Result<()> {
    let mut tried = Vec::new();
    for f in found {
        let layers = sigstore::signature_layers(&f.bytes)
            .map_err(|e| anyhow::anyhow!("image {r}: signature {}: {e:#}", f.reference))?;
        for (payload, size, sig) in layers {
            let bytes = reg.get_small_blob(&r.repository, &payload, size.max(1))?;
            match sigstore::check(k, &bytes, &sig, subject) {
                Ok(()) => return Ok(()),
                Err(why) => tried.push(format!("{} ({}): {why}", f.reference.trim_start_matches([':', '@']), payload)),
            }
        }
    }
    if tried.is_empty() {
        bail!(
            "image {r}: refused: `verify` wants a signature by {}, and {subject} has none (no sigstore signature in its `sha256-{}.sig` tag or its referrers)",
            shown.display(),
            subject.hex()
        );
    }
    bail!("image {r}: refused: no signature of {subject} verifies with {}: {}", shown.display(), tried.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_types() {
        let sbom =
            br#"{"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json"}}"#;
        assert_eq!(artifact_type(sbom).as_deref(), Some("application/spdx+json"));
        let oci11 = br#"{"config":{"mediaType":"application/vnd.example.sig"}}"#;
        assert_eq!(artifact_type(oci11).as_deref(), Some("application/vnd.example.sig"));
        let cosign = br#"{"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}"#;
        assert_eq!(artifact_type(cosign).as_deref(), Some(sigstore::SIMPLE_SIGNING));
    }
}
