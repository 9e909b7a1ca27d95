//! Upstream signatures, SBOMs and attestations carried beside their images: cosign-style
//! sigstore signatures in a registry without the referrers API (Debian's docker-registry,
//! where they live in `sha256-<hex>.sig` tags) and OCI 1.1 referrers that `airlock serve`
//! lists through the referrers API, each mirrored, exported, imported, and found again
//! beside the image at the site.
//!
//! The signer: Debian bookworm's skopeo 1.9.3 is built with sigstore disabled ("Debian-local
//! change: sigstore disabled" for `--sign-by-sigstore-private-key` and for `sigstoreSigned`
//! policies alike), and cosign is not packaged. The signatures are therefore made by
//! Python's `cryptography` in the exact format containers/image writes (the simple-signing
//! payload, ECDSA P-256 over SHA-256, base64 DER in the `dev.cosignproject.cosign/signature`
//! annotation of a `sha256-<hex>.sig` image), pushed with skopeo, and checked at the site
//! by a second, independent verifier in Python. skopeo's own lookup of sigstore attachments
//! (`use-sigstore-attachments: true`) is used to show it finds the signature at the site.

use std::path::{Path, PathBuf};

use airlock::digest::Digest;

use crate::common::registry::{ImageMaker, Registry, layer, noise};
use crate::common::server::{Server, TOKEN};
use crate::common::{TestContext, sh};

/// `keygen KEY.pem KEY.pub`; `sign KEY.pem REFERENCE DIGEST LAYOUT TAG` writes an OCI
/// layout holding the signature image, tagged TAG; `verify BASE REPO TAG KEY.pub` pulls
/// TAG's manifest and its `sha256-<hex>.sig` from the registry at BASE and checks them.
const SIGSTORE_PY: &str = r#"
import base64, hashlib, json, os, sys, urllib.request
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"

def keygen(private, public):
    k = ec.generate_private_key(ec.SECP256R1())
    open(private, "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(public, "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

def sign(private, reference, digest, layout, tag):
    key = serialization.load_pem_private_key(open(private, "rb").read(), None)
    payload = json.dumps({"critical": {"identity": {"docker-reference": reference},
                                       "image": {"docker-manifest-digest": digest},
                                       "type": "cosign container image signature"},
                          "optional": None}).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    os.makedirs(layout + "/blobs/sha256", exist_ok=True)
    def put(b):
        h = hashlib.sha256(b).hexdigest()
        open(f"{layout}/blobs/sha256/{h}", "wb").write(b)
        return {"digest": "sha256:" + h, "size": len(b)}
    p = put(payload)
    config = put(json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": [p["digest"]]}}).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **config),
                "layers": [dict(mediaType="application/vnd.dev.cosign.simplesigning.v1+json", **p,
                                annotations={"dev.cosignproject.cosign/signature": signature})]}
    m = put(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [dict(mediaType=manifest["mediaType"], **m, annotations={"org.opencontainers.image.ref.name": tag})]}
    open(layout + "/index.json", "w").write(json.dumps(index))
    open(layout + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')

def get(url):
    return urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": ACCEPT})).read()

def verify(base, repo, tag, public):
    key = serialization.load_pem_public_key(open(public, "rb").read())
    digest = "sha256:" + hashlib.sha256(get(f"{base}/v2/{repo}/manifests/{tag}")).hexdigest()
    sig = json.loads(get(f"{base}/v2/{repo}/manifests/sha256-{digest[7:]}.sig"))
    for layer in sig["layers"]:
        payload = get(f"{base}/v2/{repo}/blobs/{layer['digest']}")
        assert "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]
        key.verify(base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]), payload, ec.ECDSA(hashes.SHA256()))
        assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest, "signed another manifest"
    print("verified", digest)

{"keygen": keygen, "sign": sign, "verify": verify}[sys.argv[1]](*sys.argv[2:])
"#;

fn script(cx: &TestContext) -> PathBuf {
    let p = cx.path("sigstore.py");
    if !p.exists() {
        std::fs::write(&p, SIGSTORE_PY).unwrap();
    }
    p
}

/// A P-256 key pair `<name>.pem`, `<name>.pub` in the spec directory.
fn keygen(cx: &TestContext, name: &str) -> PathBuf {
    let dir = cx.path("spec");
    std::fs::create_dir_all(&dir).unwrap();
    let py = script(cx);
    sh(&dir, &format!("python3 {} keygen {name}.pem {name}.pub", py.display()));
    dir.join(format!("{name}.pub"))
}

/// Sign `digest` as `registry/repo` with key `name`, and push the signature where skopeo and
/// cosign put it: the `sha256-<hex>.sig` tag of `repo`. Returns the signature layout.
fn sign(cx: &TestContext, name: &str, registry: &str, repo: &str, digest: &Digest) -> PathBuf {
    let py = script(cx);
    let key = cx.path(&format!("spec/{name}.pem"));
    let tag = format!("sha256-{}.sig", digest.hex());
    let layout = cx.path(&format!("sig-{name}-{}", &digest.hex()[..12]));
    sh(
        &cx.path("."),
        &format!(
            "python3 {} sign {} {registry}/{repo} {digest} {} {tag}",
            py.display(),
            key.display(),
            layout.display()
        ),
    );
    push_layout(&layout, &tag, &format!("{registry}/{repo}:{tag}"));
    layout
}

fn push_layout(layout: &Path, tag: &str, to: &str) {
    sh(
        layout,
        &format!(
            "skopeo copy --quiet --preserve-digests --dest-tls-verify=false oci:{}:{tag} docker://{to}",
            layout.display()
        ),
    );
}

fn image(cx: &TestContext, registry: &str, repo: &str, seed: u64) -> Digest {
    let maker = ImageMaker::new(&cx.path("layouts"));
    maker.push(registry, repo, "1.0", &[("amd64", vec![layer("bin/app", &noise(50_000, seed))])])
}

fn spec_for(cx: &TestContext, registry: &str, entry_extra: &str) -> PathBuf {
    cx.spec(&format!(
        "name: signed\nversion: \"1\"\nimages:\n  - ref: {registry}/ns/app:1.0\n{entry_extra}registries:\n  \"{registry}\":\n    insecure: true\n"
    ))
}

fn cache_blobs(cx: &TestContext) -> usize {
    walkdir::WalkDir::new(cx.cache().join("blobs"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count()
}

/// skopeo's answer for `docker://reference` under a policy that requires a sigstore
/// signature, with sigstore attachments looked up: its stderr.
fn skopeo_policy(cx: &TestContext, reference: &str, public: &Path) -> String {
    let d = cx.path("skopeo");
    std::fs::create_dir_all(d.join("registries.d")).unwrap();
    std::fs::write(d.join("registries.d/default.yaml"), "default-docker:\n  use-sigstore-attachments: true\n").unwrap();
    let policy = format!(
        r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"{}","signedIdentity":{{"type":"matchRepoDigestOrExact"}}}}]}}"#,
        public.display()
    );
    std::fs::write(d.join("policy.json"), policy).unwrap();
    let out = std::process::Command::new("skopeo")
        .args(["--policy", "policy.json", "--registries.d", "registries.d", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", d.join("out").display()))
        .current_dir(&d)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(d.join("out"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_signed_image_travels_with_its_signature_to_a_registry_and_to_the_store() {
    let cx = TestContext::new();
    cx.key();
    let up = Registry::start(&cx.path("upstream"));
    let h = up.host();
    let digest = image(&cx, &h, "ns/app", 1);
    let public = keygen(&cx, "cosign");
    sign(&cx, "cosign", &h, "ns/app", &digest);
    let spec = spec_for(&cx, &h, "    referrers: true\n    verify:\n      key: cosign.pub\n");
    let out = cx.bundle(&spec, "out", &[]);
    let bundle = out.join("signed-1.airlock");

    // The lock names the signature beside its image, by its cosign tag, pinned by digest.
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let refs = lock["images"][0]["referrers"].as_array().expect("referrers locked");
    assert_eq!(refs.len(), 1, "{lock:#}");
    let sig_tag = format!("sha256-{}.sig", digest.hex());
    assert_eq!(refs[0]["name"], format!("{h}/ns/app:{sig_tag}"));
    assert_eq!(refs[0]["subject"], digest.to_string());
    assert_eq!(refs[0]["artifactType"], "application/vnd.dev.cosign.simplesigning.v1+json");
    // The bundle lists it as an image artifact with its subject, and the SBOM relates them.
    let i = cx.run(&["--json", "inspect", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(i["totals"]["image"]["artifacts"], 2, "{i:#}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("out.unpacked-manifest")).unwrap()).unwrap();
    let sig = manifest["artifacts"].as_array().unwrap().iter().find(|a| a["subject"].is_string()).unwrap();
    assert_eq!(sig["name"], format!("{h}/ns/app:{sig_tag}"));
    assert_eq!(sig["subject"], digest.to_string());
    let sbom = cx.run(&["--json", "inspect", "--sbom", bundle.to_str().unwrap()]).ok().json();
    let c = sbom["components"].as_array().unwrap().iter().find(|c| c["version"] == sig_tag).expect("a component");
    let props = c["properties"].as_array().unwrap();
    assert!(props.iter().any(|p| p["name"] == "airlock:oci:subject" && p["value"] == digest.to_string()), "{c:#}");

    // The auditor guide's check that the manifest lists the lock's images, referrers too.
    let lock_jq = r#"[.images[]? | ., .referrers[]? | {name, upstream: .repository, version: .tag, upstreamDigest, digest, platform: ((.platforms // []) | join(",")), blobs: [.blobs[].digest]}] | sort_by(.name)"#;
    let manifest_jq = r#"[.artifacts[] | select(.kind == "image") | {name, upstream, version, upstreamDigest: (.upstreamDigest // .blobs[0]), digest: .blobs[0], platform: (.platform // ""), blobs}] | sort_by(.name)"#;
    sh(
        &cx.path("."),
        &format!(
            "diff <(jq -S '{lock_jq}' {}) <(jq -S '{manifest_jq}' out.unpacked-manifest)",
            spec.with_extension("lock").display()
        ),
    );

    // Upstream goes away: the site has only the bundle.
    drop(up);
    let site = Registry::start(&cx.path("site"));
    let s = site.host();
    cx.run(&["import", bundle.to_str().unwrap(), "--oci-registry", &s, "--oci-insecure"]).ok();
    let py = script(&cx);
    let ok = sh(&cx.path("."), &format!("python3 {} verify http://{s} ns/app 1.0 {}", py.display(), public.display()));
    assert_eq!(ok.trim(), format!("verified {digest}"));
    // skopeo, looking up sigstore attachments, finds the signature beside the image at the
    // site (Debian's build then refuses to check any sigstore signature at all); for an
    // image without one it says there is none.
    let signed = skopeo_policy(&cx, &format!("{s}/ns/app:1.0"), &public);
    assert!(signed.contains("sigstore disabled"), "{signed}");
    image(&cx, &s, "ns/unsigned", 2);
    let unsigned = skopeo_policy(&cx, &format!("{s}/ns/unsigned:1.0"), &public);
    assert!(unsigned.contains("no signature exists"), "{unsigned}");

    // Into the store, served by airlock serve: the same signature, the same check.
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    let srv = Server::start(&cx, &[]);
    let ok =
        sh(&cx.path("."), &format!("python3 {} verify {} ns/app 1.0 {}", py.display(), srv.url(""), public.display()));
    assert_eq!(ok.trim(), format!("verified {digest}"));
    let signed = skopeo_policy(&cx, &format!("{}/ns/app:1.0", srv.addr), &public);
    assert!(signed.contains("sigstore disabled"), "{signed}");
}

#[test]
fn verify_refuses_an_image_signed_by_another_key_or_for_another_image() {
    let cx = TestContext::new();
    let up = Registry::start(&cx.path("upstream"));
    let h = up.host();
    let digest = image(&cx, &h, "ns/app", 1);
    keygen(&cx, "ours");
    keygen(&cx, "theirs");
    sign(&cx, "theirs", &h, "ns/app", &digest);
    let spec = spec_for(&cx, &h, "    referrers: true\n    verify:\n      key: ours.pub\n");
    let r = cx
        .mirror(&spec)
        .fails(2, &format!("image {h}/ns/app:1.0: refused: no signature of {digest} verifies with ours.pub"));
    assert!(r.stderr.contains("does not verify with the key"), "{}", r.stderr);
    assert_eq!(cache_blobs(&cx), 0, "a refused image leaves nothing in the cache");
    assert!(!spec.with_extension("lock").exists(), "no lock is written");

    // A real signature by our key, but of another image, moved to this one's tag.
    let other = image(&cx, &h, "ns/other", 2);
    let layout = sign(&cx, "ours", &h, "ns/other", &other);
    push_layout(&layout, &format!("sha256-{}.sig", other.hex()), &format!("{h}/ns/app:sha256-{}.sig", digest.hex()));
    let r = cx.mirror(&spec).fails(2, "verifies with ours.pub");
    assert!(r.stderr.contains(&format!("it is a valid signature, but for the manifest {other}")), "{}", r.stderr);
    assert_eq!(cache_blobs(&cx), 0);

    // No signature at all.
    let bare = cx.spec(&format!(
        "name: signed\nimages:\n  - ref: {h}/ns/other:1.0\n    verify:\n      key: ours.pub\n  - ref: {h}/ns/plain:1.0\n    verify:\n      key: ours.pub\nregistries:\n  \"{h}\":\n    insecure: true\n"
    ));
    let plain = image(&cx, &h, "ns/plain", 3);
    cx.mirror(&bare).fails(
        2,
        &format!("image {h}/ns/plain:1.0: refused: `verify` wants a signature by ours.pub, and {plain} has none"),
    );
    assert!(!bare.with_extension("lock").exists());

    // Signed by our key, the image is carried.
    sign(&cx, "ours", &h, "ns/app", &digest);
    let spec = spec_for(&cx, &h, "    referrers: true\n    verify:\n      key: ours.pub\n");
    cx.mirror(&spec).ok();
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(lock["images"][0]["digest"], digest.to_string());
}

#[test]
fn a_tampered_signature_is_refused() {
    let cx = TestContext::new();
    let up = Registry::start(&cx.path("upstream"));
    let h = up.host();
    let digest = image(&cx, &h, "ns/app", 1);
    keygen(&cx, "cosign");
    let layout = sign(&cx, "cosign", &h, "ns/app", &digest);
    // One character of the signature changed, in the manifest skopeo pushed.
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: Digest = index["manifests"][0]["digest"].as_str().unwrap().parse().unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(m.hex())).unwrap()).unwrap();
    let sig = manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap().to_string();
    let mut chars: Vec<char> = sig.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    manifest["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        chars.into_iter().collect::<String>().into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let tampered = Digest::of(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(tampered.hex()), &bytes).unwrap();
    let tag = format!("sha256-{}.sig", digest.hex());
    let mut index = index;
    index["manifests"][0]["digest"] = tampered.to_string().into();
    index["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    push_layout(&layout, &tag, &format!("{h}/ns/app:{tag}"));

    let spec = spec_for(&cx, &h, "    referrers: true\n    verify:\n      key: cosign.pub\n");
    let r = cx
        .mirror(&spec)
        .fails(2, &format!("image {h}/ns/app:1.0: refused: no signature of {digest} verifies with cosign.pub"));
    assert!(
        r.stderr.contains("does not verify with the key") || r.stderr.contains("not an ECDSA signature"),
        "{}",
        r.stderr
    );
    assert_eq!(cache_blobs(&cx), 0);
    assert!(!spec.with_extension("lock").exists());

    // A key that is not there fails the image, naming it; nothing is cached.
    let spec = spec_for(&cx, &h, "    verify:\n      key: missing.pub\n");
    cx.mirror(&spec).fails(2, &format!("image {h}/ns/app:1.0: `verify`: reading the key"));
    assert_eq!(cache_blobs(&cx), 0);
}

/// airlock serve as the upstream: `ns/app:1.0`, and two OCI 1.1 artifacts whose subject
/// it is, an SBOM and an attestation. Returns the server (and its context), the image's
/// digest, the SBOM's and the attestation's.
fn serve_with_referrers() -> (TestContext, Server, Digest, Digest, Digest) {
    let up = TestContext::new();
    let srv = Server::start(&up, &[]);
    let host = srv.addr.clone();
    // The upstream is airlock serve: an image, then two OCI 1.1 artifacts about it.
    let maker = ImageMaker::new(&up.path("layouts"));
    let digest = maker.push_with(
        &host,
        "ns/app",
        "1.0",
        &[("amd64", vec![layer("bin/app", &noise(40_000, 5))])],
        &format!("--dest-creds any:{TOKEN}"),
    );
    let d = up.dir.path();
    let push_blob = |file: &str, bytes: &[u8]| {
        std::fs::write(up.path(file), bytes).unwrap();
        let digest = Digest::of(bytes);
        let url = srv.url(&format!("/v2/ns/app/blobs/uploads/?digest={digest}"));
        sh(d, &format!("curl -sf -u any:{TOKEN} -X POST --data-binary @{file} '{url}'"));
        (digest, bytes.len())
    };
    let (config, config_size) = push_blob("empty.json", b"{}");
    let mut referrers = Vec::new();
    for (kind, body) in
        [("application/vnd.example.sbom", "an sbom"), ("application/vnd.example.attestation", "a claim")]
    {
        let (layer, layer_size) = push_blob(&format!("{}.bin", kind.rsplit('.').next().unwrap()), body.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"{kind}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/octet-stream","digest":"{layer}","size":{layer_size}}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":1}}}}"#
        );
        std::fs::write(up.path("referrer.json"), &manifest).unwrap();
        let r = Digest::of(manifest.as_bytes());
        sh(
            d,
            &format!(
                "curl -sf -u any:{TOKEN} -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @referrer.json {}",
                srv.url(&format!("/v2/ns/app/manifests/{r}"))
            ),
        );
        referrers.push(r);
    }
    (up, srv, digest, referrers[0], referrers[1])
}

#[test]
fn referrers_api_upstream_and_the_tag_fallback_at_a_registry_without_it() {
    let (_up, srv, digest, sbom, attestation) = serve_with_referrers();
    let host = srv.addr.clone();

    // Only the SBOM is asked for.
    let cx = TestContext::new();
    cx.key();
    let spec = spec_for(&cx, &host, "    referrers: true\n    referrer-types: [application/vnd.example.sbom]\n");
    let out = cx.bundle(&spec, "out", &[]);
    let bundle = out.join("signed-1.airlock");
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let refs = lock["images"][0]["referrers"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{lock:#}");
    assert_eq!(refs[0]["name"], format!("{host}/ns/app@{sbom}"));
    assert_eq!(refs[0]["artifactType"], "application/vnd.example.sbom");
    assert!(!lock.to_string().contains(&attestation.to_string()), "the attestation was filtered out");
    drop(srv);

    // A registry without the referrers API: the `sha256-<hex>` tag lists the SBOM.
    let site = Registry::start(&cx.path("site"));
    let s = site.host();
    cx.run(&["import", bundle.to_str().unwrap(), "--oci-registry", &s, "--oci-insecure"]).ok();
    let api =
        sh(&cx.path("."), &format!("curl -s -o /dev/null -w '%{{http_code}}' http://{s}/v2/ns/app/referrers/{digest}"));
    assert_eq!(api, "404", "docker-registry serves no referrers API");
    let fallback = sh(
        &cx.path("."),
        &format!(
            "curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://{s}/v2/ns/app/manifests/sha256-{}",
            digest.hex()
        ),
    );
    let fallback: serde_json::Value = serde_json::from_str(&fallback).unwrap();
    assert_eq!(fallback["manifests"][0]["digest"], sbom.to_string(), "{fallback}");
    assert_eq!(fallback["manifests"][0]["artifactType"], "application/vnd.example.sbom");
    // Importing again changes nothing there.
    cx.run(&["import", bundle.to_str().unwrap(), "--oci-registry", &s, "--oci-insecure"]).ok();
    let again = sh(
        &cx.path("."),
        &format!(
            "curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://{s}/v2/ns/app/manifests/sha256-{}",
            digest.hex()
        ),
    );
    assert_eq!(serde_json::from_str::<serde_json::Value>(&again).unwrap()["manifests"].as_array().unwrap().len(), 1);
    // And a mirror from that registry finds it through the fallback.
    let cx2 = TestContext::new();
    let spec2 = spec_for(&cx2, &s, "    referrers: true\n");
    cx2.mirror(&spec2).ok();
    let lock2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spec2.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(lock2["images"][0]["referrers"][0]["name"], format!("{s}/ns/app@{sbom}"), "{lock2:#}");

    // A registry with the referrers API (airlock serve, pushed to over HTTP): it names the
    // subject on push, so no fallback tag is written; its API lists the SBOM.
    let (api, other) = (TestContext::new(), TestContext::new());
    let api_srv = Server::start(&api, &[]);
    let env = [("AIRLOCK_REGISTRY_USERNAME", "importer"), ("AIRLOCK_REGISTRY_PASSWORD", TOKEN)];
    crate::common::copy_dir(&cx.config().join("trusted"), &other.config().join("trusted"));
    let args = ["import", bundle.to_str().unwrap(), "--oci-registry", &api_srv.addr, "--oci-insecure"];
    other.run_env(&args, &env).ok();
    let tags = sh(&cx.path("."), &format!("curl -sf {}", api_srv.url("/v2/ns/app/tags/list")));
    assert!(!tags.contains("sha256-"), "{tags}");
    let list = sh(&cx.path("."), &format!("curl -sf {}", api_srv.url(&format!("/v2/ns/app/referrers/{digest}"))));
    assert!(list.contains(&sbom.to_string()), "{list}");
    drop(api_srv);

    // Into the store: airlock serve at the site answers the referrers API.
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    let site_srv = Server::start(&cx, &[]);
    let list = sh(&cx.path("."), &format!("curl -sf {}", site_srv.url(&format!("/v2/ns/app/referrers/{digest}"))));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let m = list["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{list}");
    assert_eq!(m[0]["digest"], sbom.to_string());
    assert_eq!(m[0]["artifactType"], "application/vnd.example.sbom");
    let got =
        sh(&cx.path("."), &format!("curl -sf {} | sha256sum", site_srv.url(&format!("/v2/ns/app/manifests/{sbom}"))));
    assert!(got.starts_with(&sbom.hex()), "the SBOM manifest pulls byte for byte");
}

#[test]
fn platform_signatures_follow_the_platforms_carried() {
    let cx = TestContext::new();
    cx.key();
    let up = Registry::start(&cx.path("upstream"));
    let h = up.host();
    let maker = ImageMaker::new(&cx.path("layouts"));
    let layers = |a: &str, seed| vec![layer(&format!("bin/{a}"), &noise(30_000, seed))];
    let top = maker.push(&h, "ns/app", "1.0", &[("amd64", layers("amd64", 1)), ("arm64", layers("arm64", 2))]);
    let index: serde_json::Value = serde_json::from_str(&sh(
        &cx.path("."),
        &format!("skopeo inspect --raw --tls-verify=false docker://{h}/ns/app:1.0"),
    ))
    .unwrap();
    let child = |a: &str| -> Digest {
        let m = index["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == a).unwrap();
        m["digest"].as_str().unwrap().parse().unwrap()
    };
    keygen(&cx, "cosign");
    for d in [top, child("amd64"), child("arm64")] {
        sign(&cx, "cosign", &h, "ns/app", &d);
    }
    // Every platform: the index's signature and each platform's.
    let all = spec_for(&cx, &h, "    referrers: true\n    verify:\n      key: cosign.pub\n");
    cx.mirror(&all).ok();
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(all.with_extension("lock")).unwrap()).unwrap();
    let subjects = |lock: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = lock["images"][0]["referrers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["subject"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut want = vec![top.to_string(), child("amd64").to_string(), child("arm64").to_string()];
    want.sort();
    assert_eq!(subjects(&lock), want);

    // arm64 alone: a new index, so only the arm64 manifest's signature means anything at
    // the site; the upstream index's signature was still checked by `verify`.
    let arm_only =
        spec_for(&cx, &h, "    platforms: [linux/arm64]\n    referrers: true\n    verify:\n      key: cosign.pub\n");
    cx.mirror(&arm_only).ok();
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(arm_only.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(subjects(&lock), vec![child("arm64").to_string()]);
    assert_eq!(lock["images"][0]["upstreamDigest"], top.to_string());
}

#[test]
fn a_failed_import_takes_the_fallback_tag_back() {
    let (_up, srv, digest, sbom, _) = serve_with_referrers();
    let host = srv.addr.clone();
    let cx = TestContext::new();
    cx.key();
    // An image with its SBOM, and a git repository whose push fails after the registry
    // has loaded.
    let spec = spec_for(&cx, &host, "    referrers: true\n");
    std::fs::create_dir_all(cx.path("spec/git")).unwrap();
    std::fs::copy(crate::common::root().join("fixtures/git/hello.bundle"), cx.path("spec/git/hello.bundle")).unwrap();
    let yaml = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, yaml.replace("images:\n", "git:\n  - url: git/hello.bundle\n    name: hello\nimages:\n"))
        .unwrap();
    let bundle = cx.bundle(&spec, "out", &[]).join("signed-1.airlock");
    drop(srv);
    let site = Registry::start(&cx.path("site"));
    let s = site.host();
    let remotes = cx.path("remotes");
    std::fs::create_dir_all(&remotes).unwrap();
    let template = format!("file://{}/{{name}}.git", remotes.display());
    let import = || {
        cx.run(&[
            "--json",
            "import",
            bundle.to_str().unwrap(),
            "--oci-registry",
            &s,
            "--oci-insecure",
            "--git-push",
            &template,
        ])
    };
    let fallback = format!("http://{s}/v2/ns/app/manifests/sha256-{}", digest.hex());
    let status = |url: &str| {
        sh(
            &cx.path("."),
            &format!(
                "curl -s -o /dev/null -w '%{{http_code}}' -H 'Accept: application/vnd.oci.image.index.v1+json' {url}"
            ),
        )
    };
    let failed = import().fails(2, "hello");
    assert_eq!(failed.json()["status"], "rolled-back", "{}", failed.stdout);
    assert_eq!(status(&fallback), "404", "the fallback tag this import wrote is gone again");
    assert_eq!(status(&format!("http://{s}/v2/ns/app/manifests/1.0")), "404");
    // With the remote there, it goes through, and the tag lists the SBOM.
    sh(&remotes, "git init -q --bare hello.git");
    import().ok();
    assert_eq!(status(&fallback), "200");
    let index = sh(&cx.path("."), &format!("curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' {fallback}"));
    assert!(index.contains(&sbom.to_string()), "{index}");
}
