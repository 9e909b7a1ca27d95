//! `provenance.intoto.json`: how the bundle's artifacts came to be, as SLSA asks for it. An
//! in-toto Statement v1 whose subjects are the artifacts (by name and SHA-256), with an
//! SLSA Provenance v1 predicate: the build definition is the spec and the lock's digest,
//! the resolved dependencies are the upstream URLs with their digests, and the run names
//! the builder (airlock's version and the factory's host) and its times.
//!
//! The statement travels in a DSSE envelope signed with the factory's Ed25519 key, the one
//! that signs the manifest. DSSE signs PAE(payloadType, payload) with plain Ed25519, so
//! any DSSE implementation checks it with the raw public key (the last 32 bytes of the
//! minisign key). The envelope's digest is signed in the manifest as well, so verify
//! checks its bytes like a blob's.
//!
//! Every field derives from the lock, the spec and the cache, so two exports give the
//! same bytes: the start and finish times are the lock's resolution time, which is also
//! the bundle's `created` (see docs/bundle-format.md).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE as B64_URL};
use serde_json::{Value, json};

use super::manifest::{BlobDescriptor, Kind, MEMBER_SBOM, Manifest};
use super::sign::{PublicKey, SecretKey};
use crate::digest::Digest;

/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What an airlock export is, as an SLSA build type.
pub const BUILD_TYPE: &str = "urn:airlock:build-type:export:v1";
/// The environment variable that names the factory (default: the host name).
pub const FACTORY_ENV: &str = "AIRLOCK_FACTORY_ID";

/// What the provenance is made from, besides the manifest.
pub struct Inputs<'a> {
    /// The manifest (its `sbom` already set; `provenance` is this statement's own).
    pub manifest: &'a Manifest,
    /// The lock's file name and the SHA-256 of its bytes.
    pub lock: (String, Digest),
    /// The spec's file name and bytes, when it is beside the lock.
    pub spec: Option<(String, Vec<u8>)>,
    /// The factory, for `runDetails.builder.id`.
    pub factory: String,
    /// Git object types (`commit`, `tag`) by object id, for the git refs' digests.
    pub git_types: &'a BTreeMap<String, String>,
}

/// The factory's name: `AIRLOCK_FACTORY_ID`, else the host name.
pub fn factory_id() -> String {
    let from_env = std::env::var(FACTORY_ENV).ok().filter(|s| !s.trim().is_empty());
    let host = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
    };
    from_env.or_else(host).unwrap_or_else(|| "unknown".into())
}

/// A URN-safe rendering of the factory name (`urn:airlock:factory:<name>`).
fn builder_id(factory: &str) -> String {
    let mut s = String::from("urn:airlock:factory:");
    for b in factory.trim().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// An absolute URL (`scheme://...`), as `uri` of a resource descriptor; a local path as
/// written in the spec is not one.
pub fn absolute_url(s: &str) -> Option<String> {
    if !s.contains("://") {
        return None;
    }
    reqwest::Url::parse(s).ok().map(|u| u.to_string())
}

/// A subject's name: what the site calls the artifact (for a Debian package its pool file).
pub fn subject_name(a: &super::manifest::Artifact) -> String {
    match (a.kind, &a.path) {
        (Kind::Debian, Some(p)) => p.as_str().rsplit('/').next().unwrap_or(p.as_str()).to_string(),
        _ => a.name.clone(),
    }
}

/// The in-toto statement for `inputs`.
pub fn statement(inputs: &Inputs) -> Value {
    let m = inputs.manifest;
    let mut subjects: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut deps: Vec<Value> = Vec::new();
    for a in &m.artifacts {
        let name = subject_name(a);
        let top = a.blobs.first();
        let mut digest = serde_json::Map::new();
        if let Some(d) = top {
            digest.insert("sha256".into(), d.hex().into());
        }
        if a.kind == Kind::Git {
            let head = a.head.as_ref().and_then(|h| a.refs.as_ref()?.get(h));
            let any = head.or_else(|| a.refs.as_ref().and_then(|r| r.values().next()));
            if let Some(oid) = any {
                digest.insert(git_key(inputs.git_types, oid).into(), oid.clone().into());
            }
        }
        if !digest.is_empty() && seen.insert((name.clone(), top.copied())) {
            subjects.push(json!({ "name": name, "digest": digest }));
        }
        match a.kind {
            Kind::Git => {
                for (r, oid) in a.refs.iter().flatten() {
                    let mut d =
                        json!({ "name": format!("{} {r}", a.name), "digest": { git_key(inputs.git_types, oid): oid } });
                    if let Some(u) = absolute_url(&a.upstream) {
                        d["uri"] = format!("git+{u}").into();
                    } else {
                        d["annotations"] = json!({ "upstream": a.upstream });
                    }
                    deps.push(d);
                }
            }
            Kind::Image => {
                let Some(top) = top else { continue };
                let fetched = a.upstream_digest.unwrap_or(*top);
                let tag = a.version.as_deref();
                deps.push(json!({
                    "uri": super::manifest::image_purl(&a.upstream, &fetched, tag),
                    "name": a.name,
                    "digest": { "sha256": fetched.hex() },
                }));
            }
            _ => {
                let Some(top) = top else { continue };
                let mut d = json!({ "name": name, "digest": { "sha256": top.hex() } });
                match absolute_url(&a.upstream) {
                    Some(u) => d["uri"] = u.into(),
                    None => d["annotations"] = json!({ "upstream": a.upstream }),
                }
                deps.push(d);
            }
        }
    }
    let mut external = json!({
        "bundle": { "name": m.name, "version": m.version },
        "lock": { "name": inputs.lock.0, "digest": { "sha256": inputs.lock.1.hex() } },
    });
    if let Some((name, bytes)) = &inputs.spec {
        external["spec"] = json!({
            "name": name,
            "digest": { "sha256": Digest::of(bytes).hex() },
            "text": String::from_utf8_lossy(bytes),
        });
    }
    if let Some(b) = &m.base {
        // The base as the manifest writes it: a bundle (name, version, manifest) or a
        // site's receipt (receipt, site, siteKey, created).
        external["base"] = serde_json::to_value(b).expect("a base serializes");
    }
    let byproducts: Vec<Value> = m
        .sbom
        .iter()
        .map(|d| json!({ "name": MEMBER_SBOM, "digest": { "sha256": d.digest.hex() }, "mediaType": d.media_type }))
        .collect();
    let mut run = json!({
        "builder": {
            "id": builder_id(&inputs.factory),
            "version": { "airlock": env!("CARGO_PKG_VERSION") },
        },
        "metadata": {
            "invocationId": format!("{}@sha256:{}", m.id(), inputs.lock.1.hex()),
            "startedOn": m.created,
            "finishedOn": m.created,
        },
    });
    if !byproducts.is_empty() {
        run["byproducts"] = byproducts.into();
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": deps,
            },
            "runDetails": run,
        },
    })
}

/// The DSSE key of a git object id: `gitTag` for an annotated tag object, else `gitCommit`.
fn git_key(types: &BTreeMap<String, String>, oid: &str) -> &'static str {
    if types.get(oid).is_some_and(|t| t == "tag") { "gitTag" } else { "gitCommit" }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The envelope file: `statement` as the payload, signed by `key`.
pub fn envelope(statement: &Value, key: &SecretKey) -> Vec<u8> {
    let payload = serde_json::to_vec(statement).expect("statement serializes");
    let sig = key.sign_ed25519(&pae(PAYLOAD_TYPE, &payload));
    let env = json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": B64.encode(&payload),
        "signatures": [{ "keyid": key.id().to_string(), "sig": B64.encode(sig) }],
    });
    let mut bytes = serde_json::to_vec_pretty(&env).expect("envelope serializes");
    bytes.push(b'\n');
    bytes
}

/// The provenance descriptor for the manifest.
pub fn descriptor(bytes: &[u8]) -> BlobDescriptor {
    BlobDescriptor {
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        media_type: super::manifest::PROVENANCE_MEDIA_TYPE.into(),
    }
}

/// Open an envelope: one of its signatures must be `key`'s over the PAE of its payload;
/// the payload must be an in-toto statement with an SLSA provenance predicate. Returns
/// the statement.
pub fn open_envelope(bytes: &[u8], key: &PublicKey) -> Result<Value, String> {
    let env: Value = serde_json::from_slice(bytes).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    let payload_type = env["payloadType"].as_str().ok_or("the DSSE envelope has no payloadType")?;
    if payload_type != PAYLOAD_TYPE {
        return Err(format!("the DSSE payload type is `{payload_type}`, not `{PAYLOAD_TYPE}`"));
    }
    let decode = |s: &str| B64.decode(s).or_else(|_| B64_URL.decode(s));
    let payload =
        env["payload"].as_str().and_then(|p| decode(p).ok()).ok_or("the DSSE envelope's payload is not base64")?;
    let signed = pae(payload_type, &payload);
    let sigs = env["signatures"].as_array().map(Vec::as_slice).unwrap_or_default();
    let ok = sigs
        .iter()
        .filter_map(|s| decode(s["sig"].as_str()?).ok())
        .any(|sig| key.verify_ed25519(&signed, &sig).is_ok());
    if !ok {
        return Err(format!("no signature in the DSSE envelope verifies with key {}", key.id()));
    }
    let st: Value = serde_json::from_slice(&payload).map_err(|e| format!("the DSSE payload is not JSON: {e}"))?;
    if st["_type"] != STATEMENT_TYPE || st["predicateType"] != PREDICATE_TYPE {
        return Err(format!("the DSSE payload is not an in-toto statement of `{PREDICATE_TYPE}`"));
    }
    Ok(st)
}

/// The payload of an envelope, unverified (for showing a bundle whose signer is not trusted).
pub fn payload_unverified(bytes: &[u8]) -> Option<Value> {
    let env: Value = serde_json::from_slice(bytes).ok()?;
    let p = B64.decode(env["payload"].as_str()?).ok()?;
    serde_json::from_slice(&p).ok()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_round_trip_and_refuse_other_keys_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let load = |n: &str| {
            let (sk, pk) = super::super::sign::generate(None).unwrap();
            let p = dir.path().join(n);
            std::fs::write(&p, sk).unwrap();
            (SecretKey::load(&p).unwrap(), pk)
        };
        let (sk, pk) = load("a");
        let (_, other) = load("b");
        let st = json!({ "_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE, "subject": [] });
        let env = envelope(&st, &sk);
        assert_eq!(envelope(&st, &sk), env, "deterministic");
        assert_eq!(open_envelope(&env, &pk).unwrap(), st);
        assert!(open_envelope(&env, &other).unwrap_err().contains("no signature in the DSSE envelope verifies"));
        let mut v: Value = serde_json::from_slice(&env).unwrap();
        let tampered = json!({ "_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE, "subject": [{"name": "x"}] });
        v["payload"] = B64.encode(serde_json::to_vec(&tampered).unwrap()).into();
        assert!(open_envelope(&serde_json::to_vec(&v).unwrap(), &pk).is_err());
    }

    #[test]
    fn builder_ids_are_urns() {
        assert_eq!(builder_id("factory-1.example"), "urn:airlock:factory:factory-1.example");
        assert_eq!(builder_id("a b/c"), "urn:airlock:factory:a%20b%2Fc");
    }
}
