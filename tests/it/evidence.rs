//! The evidence a bundle carries, checked by independent tools: the SBOM against the
//! official CycloneDX 1.6 JSON schema (cyclonedx-python-lib's copy, strict validator), the
//! provenance's DSSE envelope with securesystemslib and with `cryptography` on the PAE
//! bytes, and the HTML report rendered by headless Chromium. The fixtures are extended by a
//! wheel whose METADATA declares a licence and an image whose config labels one, so the
//! licences the SBOM reports are derived from real metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::digest::Digest;
use serde_json::{Value, json};

use crate::common::{TestContext, require, root};

const WHEEL_LICENCE: &str = "MIT OR Apache-2.0";
const IMAGE_LICENCE: &str = "Apache-2.0 AND BSD-3-Clause";
const FACTORY: &str = "factory-7.example";

/// Write `bytes` as a blob of an OCI layout; returns its descriptor.
fn oci_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let d = Digest::of(bytes);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    json!({ "mediaType": media_type, "digest": d.to_string(), "size": bytes.len() })
}

/// The fixtures, plus a Python index `licensed` with one wheel declaring
/// `License-Expression`, and an image whose config has OCI labels.
fn licensed_spec(cx: &TestContext) -> PathBuf {
    let spec = cx.fixtures();
    let dir = spec.parent().unwrap();
    // The wheel, with its METADATA served beside it (PEP 658).
    let metadata = format!(
        "Metadata-Version: 2.4\nName: aldemo-licensed\nVersion: 1.0\nSummary: a licensed fixture\nLicense-Expression: {WHEEL_LICENCE}\nClassifier: License :: OSI Approved :: MIT License\nProject-URL: Source, https://git.example/aldemo-licensed\n\n"
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in [
        ("aldemo_licensed/__init__.py", "".to_string()),
        ("aldemo_licensed-1.0.dist-info/METADATA", metadata.clone()),
        (
            "aldemo_licensed-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n".into(),
        ),
        ("aldemo_licensed-1.0.dist-info/RECORD", String::new()),
    ] {
        zip.start_file(name, opts).unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    let wheel = zip.finish().unwrap().into_inner();
    let file = "aldemo_licensed-1.0-py3-none-any.whl";
    let files = dir.join("licensed/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join(file), &wheel).unwrap();
    std::fs::write(files.join(format!("{file}.metadata")), &metadata).unwrap();
    let project = dir.join("licensed/simple/aldemo-licensed");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("index.html"),
        format!(
            "<!DOCTYPE html><html><body><a href=\"../../files/{file}#sha256={}\" data-core-metadata=\"sha256={}\">{file}</a></body></html>\n",
            Digest::of(&wheel).hex(),
            Digest::of(metadata.as_bytes()).hex()
        ),
    )
    .unwrap();

    // The image: one layer (a real tar.gz), a config with labels, a manifest.
    let layout = dir.join("images/labelled");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("etc/labelled").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, &b"hello\n"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let layer = oci_blob(&layout, "application/vnd.oci.image.layer.v1.tar+gzip", &gz.finish().unwrap());
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": {
            "org.opencontainers.image.licenses": IMAGE_LICENCE,
            "org.opencontainers.image.source": "https://git.example/labelled",
            "org.opencontainers.image.vendor": "Example & Co <ops>",
        }},
        "rootfs": { "type": "layers", "diff_ids": [Digest::of(&tar).to_string()] },
    });
    let config = oci_blob(&layout, "application/vnd.oci.image.config.v1+json", &serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    });
    let mut top =
        oci_blob(&layout, "application/vnd.oci.image.manifest.v1+json", &serde_json::to_vec(&manifest).unwrap());
    top["annotations"] = json!({ "org.opencontainers.image.ref.name": "2.0" });
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": [top] })).unwrap(),
    )
    .unwrap();

    let yaml = std::fs::read_to_string(&spec).unwrap();
    let yaml = yaml
        .replacen("images:\n", "images:\n  - ref: fixtures.example/labelled/app:2.0\n    layout: images/labelled\n", 1)
        .replacen(
            "python:\n",
            "python:\n  - name: licensed\n    index: licensed/simple\n    requirements: [\"aldemo-licensed\"]\n    pythons: [\"3.11\"]\n    platforms: [manylinux_2_28_x86_64]\n",
            1,
        );
    std::fs::write(&spec, yaml).unwrap();
    spec
}

/// Mirror and export the licensed spec (as factory [`FACTORY`]); returns the bundle.
fn bundle(cx: &TestContext, spec: &Path, out: &str) -> PathBuf {
    cx.mirror(spec).ok();
    let lock = spec.with_extension("lock");
    let dir = cx.path(out);
    cx.run_env(
        &["export", "--lock", lock.to_str().unwrap(), "-o", dir.to_str().unwrap()],
        &[("AIRLOCK_FACTORY_ID", FACTORY)],
    )
    .ok();
    dir.join("fixtures-1.0.airlock")
}

/// Run a Python script with the test tools' Python; returns stdout.
#[track_caller]
fn python(script: &str, args: &[&Path]) -> (bool, String) {
    require("python3");
    let o = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "a Python test tool is missing: run scripts/test.sh (it installs cyclonedx-python-lib and securesystemslib into target/test-tools/python)\n{err}"
    );
    (o.status.success(), format!("{}{err}", String::from_utf8_lossy(&o.stdout)))
}

/// Validate each file given, in one process (loading the schemas takes seconds): prints
/// `valid` or `invalid: <first errors>` per file, in order.
const VALIDATE: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
validator = JsonStrictValidator(SchemaVersion.V1_6)
for path in sys.argv[1:]:
    errors = list(validator.validate_str(open(path).read(), all_errors=True) or [])
    print("valid" if not errors else "invalid: " + " | ".join(str(e).replace(chr(10), " ")[:300] for e in errors[:3]))
"#;

/// securesystemslib's DSSE Envelope and SSlibKey (ed25519 from the minisign key's last 32
/// bytes), then `cryptography` on PAE bytes computed here, in Python.
const DSSE: &str = r#"
import base64, json, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
env_json = json.load(open(sys.argv[1]))
raw = base64.b64decode(open(sys.argv[2]).read().splitlines()[1])[-32:]
keyid = env_json["signatures"][0]["keyid"]
sig = env_json["signatures"][0]["sig"]
env = Envelope.from_dict(json.loads(json.dumps(env_json)))
key = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw.hex()})
env.verify([key], 1)
ptype = env_json["payloadType"].encode()
body = base64.b64decode(env_json["payload"])
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(body), body)
Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig), pae)
print("verified")
"#;

#[test]
fn sbom_and_provenance_check_out_with_independent_tools() {
    let cx = TestContext::new();
    let pubkey = cx.key();
    let spec = licensed_spec(&cx);
    let b = bundle(&cx, &spec, "out");
    let b = b.to_str().unwrap();
    let lock_path = spec.with_extension("lock");
    let lock: Value = serde_json::from_slice(&std::fs::read(&lock_path).unwrap()).unwrap();
    let head = cx.run(&["--json", "inspect", b]).ok().json();
    let artifacts = head["artifacts"].as_array().unwrap();

    // The SBOM, extracted byte for byte: the digest the signed manifest lists.
    let sbom_text = cx.run(&["--json", "inspect", "--sbom", b]).ok().stdout;
    let sbom_file = cx.path("sbom.cdx.json");
    std::fs::write(&sbom_file, &sbom_text).unwrap();
    let unpacked = cx.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    crate::common::sh(&unpacked, &format!("zstd -dc {b} | tar -x"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["sbom"]["digest"], Digest::of(sbom_text.as_bytes()).to_string());
    assert_eq!(std::fs::read(unpacked.join("sbom.cdx.json")).unwrap(), sbom_text.as_bytes());

    // Valid against the official schema; and the validator does reject a bad document.
    let mut bad: Value = serde_json::from_str(&sbom_text).unwrap();
    bad["components"][0]["hashes"][0]["content"] = "not-hex".into();
    let bad_file = cx.path("bad.cdx.json");
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let (ok, out) = python(VALIDATE, &[&sbom_file, &bad_file]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(ok && lines.len() == 2, "{out}");
    assert_eq!(lines[0], "valid", "sbom.cdx.json is not valid CycloneDX 1.6");
    assert!(lines[1].starts_with("invalid: "), "the schema check must be able to fail: {out}");

    // One component per artifact, with its purl and SHA-256.
    let sbom: Value = serde_json::from_str(&sbom_text).unwrap();
    let comps = sbom["components"].as_array().unwrap();
    let by_purl: BTreeMap<&str, &Value> = comps.iter().map(|c| (c["purl"].as_str().unwrap_or(""), c)).collect();
    for a in artifacts {
        let c = by_purl.get(a["purl"].as_str().unwrap()).unwrap_or_else(|| panic!("no component for {a}"));
        assert_eq!(c["hashes"][0]["content"], a["blobs"][0].as_str().unwrap().trim_start_matches("sha256:"));
    }
    assert_eq!(comps.iter().filter(|c| c["properties"][0]["name"] == "airlock:kind").count(), artifacts.len());
    // Licences from the metadata: the wheel's expression, the image's label.
    let find = |name: &str| comps.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no component {name}"));
    assert_eq!(
        find("aldemo-licensed")["licenses"],
        json!([{ "expression": WHEEL_LICENCE, "acknowledgement": "declared" }])
    );
    let image = find("oci-layout:images/labelled");
    assert_eq!(image["licenses"][0]["expression"], IMAGE_LICENCE);
    assert_eq!(image["supplier"]["name"], "Example & Co <ops>");
    let hello = comps.iter().find(|c| c["name"] == "hello-app").unwrap();
    assert!(
        hello["properties"].as_array().unwrap().contains(&json!({ "name": "airlock:debian:section", "value": "misc" }))
    );

    // Dependency edges: every ref resolves; the lock's chosenFor edges, Debian's Depends,
    // image -> blobs, git -> commits.
    let mut refs: BTreeSet<String> = BTreeSet::new();
    fn collect(c: &Value, refs: &mut BTreeSet<String>) {
        refs.insert(c["bom-ref"].as_str().unwrap().to_string());
        for n in c["components"].as_array().into_iter().flatten() {
            collect(n, refs);
        }
    }
    comps.iter().for_each(|c| collect(c, &mut refs));
    refs.insert(sbom["metadata"]["component"]["bom-ref"].as_str().unwrap().into());
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in sbom["dependencies"].as_array().unwrap() {
        let from = d["ref"].as_str().unwrap().to_string();
        assert!(refs.contains(&from), "dependency on unknown ref {from}");
        for to in d["dependsOn"].as_array().into_iter().flatten() {
            assert!(refs.contains(to.as_str().unwrap()), "edge to unknown ref {to}");
            edges.entry(from.clone()).or_default().insert(to.as_str().unwrap().into());
        }
    }
    let on = |from: &str| edges.get(from).cloned().unwrap_or_default();
    for p in lock["python"].as_array().unwrap() {
        let me = format!("python:{}/{}", p["index"].as_str().unwrap(), p["filename"].as_str().unwrap());
        for why in p["chosenFor"].as_array().unwrap() {
            let why = why.as_str().unwrap();
            let Some(from) = why.rsplit_once(" (from ").map(|(_, f)| f.trim_end_matches(')')) else { continue };
            if from.starts_with("the ") {
                continue;
            }
            let (project, version) = from.rsplit_once(' ').unwrap();
            let project = project.split('[').next().unwrap();
            let parents: Vec<String> = lock["python"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| q["project"] == project && q["version"] == version)
                .map(|q| format!("python:{}/{}", q["index"].as_str().unwrap(), q["filename"].as_str().unwrap()))
                .collect();
            assert!(parents.iter().any(|q| on(q).contains(&me)), "no edge for `{why}` into {me}");
        }
    }
    let mut debian_edges = 0;
    for d in lock["debian"].as_array().unwrap() {
        for p in d["packages"].as_array().unwrap() {
            let me = format!(
                "debian:{}/{}_{}_{}",
                d["name"].as_str().unwrap(),
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            );
            let depends = p["control"]
                .as_str()
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Depends: "))
                .map(|d| d.split(',').count());
            if let Some(n) = depends {
                assert_eq!(on(&me).len(), n, "{me} depends on {n} relations, all carried");
                debian_edges += n;
            }
        }
    }
    assert!(debian_edges > 0);
    for a in artifacts.iter().filter(|a| a["kind"] == "image") {
        let me = format!("image:{}", a["name"].as_str().unwrap());
        let blobs: BTreeSet<String> =
            a["blobs"].as_array().unwrap()[1..].iter().map(|d| format!("blob:{}", d.as_str().unwrap())).collect();
        assert_eq!(on(&me), blobs, "{me} depends on its blobs");
    }
    for g in lock["git"].as_array().unwrap() {
        let me = format!("git:{}", g["name"].as_str().unwrap());
        let commits: BTreeSet<String> =
            g["refs"].as_object().unwrap().values().map(|o| format!("{me}@{}", o.as_str().unwrap())).collect();
        assert_eq!(on(&me), commits);
    }
    assert_eq!(sbom["metadata"]["timestamp"], manifest["created"], "the only time is the bundle's own");

    // The provenance: a DSSE envelope that independent implementations verify with the
    // factory's key, and no other key.
    let env_text = cx.run(&["--json", "inspect", "--provenance", b]).ok().stdout;
    assert_eq!(manifest["provenance"]["digest"], Digest::of(env_text.as_bytes()).to_string());
    let env_file = cx.path("provenance.intoto.json");
    std::fs::write(&env_file, &env_text).unwrap();
    let (ok, out) = python(DSSE, &[&env_file, &pubkey]);
    assert!(ok && out.contains("verified"), "{out}");
    let stranger = TestContext::new();
    let other = stranger.key();
    assert!(!python(DSSE, &[&env_file, &other]).0, "another key must not verify the envelope");

    use base64::Engine;
    let env: Value = serde_json::from_str(&env_text).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    // Subjects: every artifact by name and SHA-256.
    let subjects: BTreeSet<String> =
        st["subject"].as_array().unwrap().iter().map(|s| s["digest"]["sha256"].as_str().unwrap().to_string()).collect();
    for a in artifacts {
        assert!(
            subjects.contains(a["blobs"][0].as_str().unwrap().trim_start_matches("sha256:")),
            "{} is no subject",
            a["name"]
        );
    }
    let p = &st["predicate"];
    let ext = &p["buildDefinition"]["externalParameters"];
    assert_eq!(ext["lock"]["digest"]["sha256"], Digest::of(&std::fs::read(&lock_path).unwrap()).hex());
    assert_eq!(ext["spec"]["digest"]["sha256"], Digest::of(&std::fs::read(&spec).unwrap()).hex());
    assert_eq!(ext["spec"]["text"], std::fs::read_to_string(&spec).unwrap());
    let deps = p["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
    let git_refs: usize = lock["git"].as_array().unwrap().iter().map(|g| g["refs"].as_object().unwrap().len()).sum();
    assert_eq!(deps.len(), artifacts.len() - lock["git"].as_array().unwrap().len() + git_refs);
    for d in deps.iter().filter(|d| d["name"].as_str().unwrap().ends_with(".whl")) {
        assert!(d["uri"].as_str().unwrap().starts_with("file:///"), "the wheel's upstream URL: {d}");
    }
    let run = &p["runDetails"];
    assert_eq!(run["builder"]["id"], format!("urn:airlock:factory:{FACTORY}"));
    assert_eq!(run["builder"]["version"]["airlock"], env!("CARGO_PKG_VERSION"));
    assert_eq!(run["metadata"]["startedOn"], manifest["created"]);
    assert_eq!(run["byproducts"][0]["digest"]["sha256"], Digest::of(sbom_text.as_bytes()).hex());

    // The human summaries say what is there.
    let s = cx.run(&["inspect", "--sbom", b]).ok().stdout;
    assert!(s.contains(&format!("components    {}", comps.len())) && s.contains(WHEEL_LICENCE), "{s}");
    let s = cx.run(&["inspect", "--provenance", b]).ok().stdout;
    assert!(s.contains("verified") && s.contains(FACTORY), "{s}");
}

/// Chromium's flags for a headless run that touches no network and no profile.
fn chromium(profile: &Path) -> Command {
    require("chromium");
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_report_renders_in_chromium_with_every_artifact_the_signer_changes_and_history() {
    let cx = TestContext::new();
    cx.key();
    // The base: the plain fixtures; then the same bundle with a licensed wheel and a
    // labelled image more, imported into the store after the base.
    let plain = cx.fixtures();
    let base = cx.bundle(&plain, "base", &[]).join("fixtures-1.0.airlock");
    cx.run(&["import", base.to_str().unwrap()]).ok();
    let spec = licensed_spec(&cx);
    let b = bundle(&cx, &spec, "out");
    cx.run(&["import", "--allow-downgrade", b.to_str().unwrap()]).ok();
    let html_path = cx.path("report.html");
    let r = cx
        .run(&[
            "--json",
            "report",
            b.to_str().unwrap(),
            "-o",
            html_path.to_str().unwrap(),
            "--store",
            cx.store().to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ])
        .ok()
        .json();
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: no scripts, no external resources, no links out of the page.
    for needle in ["<script", "<link", "<img", "<iframe", " src=", "url(", "@import", "href=\"http"] {
        assert!(!html.contains(needle), "the report has `{needle}`");
    }
    assert!(html.contains("@media print"), "a print style sheet");

    let head = cx.run(&["--json", "inspect", b.to_str().unwrap()]).ok().json();
    let base_head = cx.run(&["--json", "inspect", base.to_str().unwrap()]).ok().json();
    let profile = cx.path("chromium-profile");
    let dom = chromium(&profile).arg("--dump-dom").arg(format!("file://{}", html_path.display())).output().unwrap();
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let artifacts = head["artifacts"].as_array().unwrap();
    assert_eq!(
        dom.matches("class=\"artifact\"").count(),
        artifacts.len() + 2,
        "every artifact once, the 2 added again"
    );
    for a in artifacts {
        assert!(dom.contains(&esc(a["name"].as_str().unwrap())), "{} missing from the report", a["name"]);
        assert!(dom.contains(a["blobs"][0].as_str().unwrap()), "{}'s digest missing", a["name"]);
    }
    let signer = head["signer"].as_str().unwrap();
    assert!(dom.contains(&format!("<code id=\"signer\">{signer}</code>")), "the signer");
    assert!(dom.contains(&format!("Signed by trusted key {signer}")));
    // Changes against the base, derived from the two manifests.
    let added = artifacts.len() - base_head["artifacts"].as_array().unwrap().len();
    assert_eq!(added, 2);
    assert!(dom.contains(&format!("{added} added, 0 removed, 0 changed")), "changes against the base");
    assert!(dom.contains(&esc("Example & Co <ops>")) || dom.contains(IMAGE_LICENCE), "the SBOM's licences");
    assert!(dom.contains(WHEEL_LICENCE) && dom.contains(IMAGE_LICENCE));
    assert!(dom.contains(&format!("urn:airlock:factory:{FACTORY}")), "the provenance's builder");
    // Site history: both imports, this one marked.
    assert_eq!(r["imports"], 2);
    assert_eq!(dom.matches("class=\"import\"").count(), 2);
    assert!(dom.contains("(this bundle)"));

    // A screenshot for the CI artifacts (not the repository).
    let shots = root().join("target/ci-artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let o = chromium(&profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("file://{}", html_path.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 20_000, "a real screenshot");
}
