//! Sigstore simple signing, as cosign and containers/image (skopeo, podman) write it for a
//! public key: a `sha256-<hex>.sig` artifact whose layers are JSON payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`) naming the signed manifest's
//! digest, each with its ECDSA signature, base64 DER, in the
//! `dev.cosignproject.cosign/signature` annotation. The keys those tools generate are
//! ECDSA P-256 with SHA-256; that is what is checked here.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use crate::digest::Digest;

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` every simple-signing payload carries.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";

/// A public key from a PEM file (`-----BEGIN PUBLIC KEY-----`, as `cosign.pub`).
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading the key {}", path.display()))?;
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            anyhow!(
                "the key {} is not a PEM ECDSA P-256 public key, the kind cosign and skopeo generate ({e})",
                path.display()
            )
        })?;
        Ok(Self { key })
    }
}

/// Why one signature does not vouch for an image.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The signature does not verify over the payload with the key.
    BadSignature,
    /// It verifies, but the payload names another manifest.
    OtherDigest(String),
    /// Not a simple-signing payload, or no readable signature.
    Malformed(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::BadSignature => write!(f, "its signature does not verify with the key"),
            Rejection::OtherDigest(d) => write!(f, "it is a valid signature, but for the manifest {d}"),
            Rejection::Malformed(why) => write!(f, "{why}"),
        }
    }
}

/// Does `signature` (the annotation's base64) over `payload` verify with `key`, and does
/// the payload name `subject` as the signed manifest?
pub fn check(key: &PublicKey, payload: &[u8], signature: &str, subject: &Digest) -> Result<(), Rejection> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| Rejection::Malformed(format!("its signature annotation is not base64 ({e})")))?;
    let sig = Signature::from_der(&raw)
        .or_else(|_| Signature::from_slice(&raw))
        .map_err(|_| Rejection::Malformed("its signature is not an ECDSA signature".into()))?;
    key.key.verify(payload, &sig).map_err(|_| Rejection::BadSignature)?;
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| Rejection::Malformed(format!("its payload is not JSON ({e})")))?;
    if v["critical"]["type"].as_str() != Some(PAYLOAD_TYPE) {
        return Err(Rejection::Malformed(format!("its payload is not a `{PAYLOAD_TYPE}`")));
    }
    let Some(named) = v["critical"]["image"]["docker-manifest-digest"].as_str() else {
        return Err(Rejection::Malformed("its payload names no `critical.image.docker-manifest-digest`".into()));
    };
    if named != subject.to_string() {
        return Err(Rejection::OtherDigest(named.to_string()));
    }
    Ok(())
}

/// The (payload digest, signature) pairs of a signature manifest's simple-signing layers.
pub fn signature_layers(manifest: &[u8]) -> Result<Vec<(Digest, u64, String)>> {
    let v: serde_json::Value = serde_json::from_slice(manifest).context("not JSON")?;
    let mut out = Vec::new();
    for l in v["layers"].as_array().into_iter().flatten() {
        if l["mediaType"].as_str() != Some(SIMPLE_SIGNING) {
            continue;
        }
        let Some(sig) = l["annotations"][SIGNATURE_ANNOTATION].as_str() else { continue };
        let digest: Digest = l["digest"].as_str().unwrap_or_default().parse()?;
        let size = l["size"].as_u64().unwrap_or(0);
        if size > 1 << 20 {
            bail!("a simple-signing payload of {size} bytes");
        }
        out.push((digest, size, sig.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn key() -> (SigningKey, PublicKey, tempfile::TempDir) {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cosign.pub");
        let pem = sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        std::fs::File::create(&p).and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes())).unwrap();
        let pk = PublicKey::load(&p).unwrap();
        (sk, pk, dir)
    }

    #[test]
    fn other_key_types_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ed25519.pub");
        // RFC 8410's example Ed25519 public key.
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        std::fs::File::create(&p).and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes())).unwrap();
        let e = PublicKey::load(&p).err().unwrap().to_string();
        assert!(e.contains("ed25519.pub is not a PEM ECDSA P-256 public key"), "{e}");
    }

    #[test]
    fn signatures() {
        let (sk, pk, _d) = key();
        let subject = Digest::of(b"manifest");
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r.example/a"}},"image":{{"docker-manifest-digest":"{subject}"}},"type":"{PAYLOAD_TYPE}"}},"optional":null}}"#
        );
        let sig: Signature = sk.sign(payload.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        assert_eq!(check(&pk, payload.as_bytes(), &b64, &subject), Ok(()));
        let other = Digest::of(b"other");
        assert_eq!(check(&pk, payload.as_bytes(), &b64, &other), Err(Rejection::OtherDigest(subject.to_string())));
        let mut tampered = payload.clone().into_bytes();
        tampered[10] ^= 1;
        assert_eq!(check(&pk, &tampered, &b64, &subject), Err(Rejection::BadSignature));
        assert!(matches!(check(&pk, payload.as_bytes(), "!!", &subject), Err(Rejection::Malformed(_))));
    }
}
