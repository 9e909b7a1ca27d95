//! Receipts that travel back: a site describes its store in a signed receipt, the mirror
//! factory makes a differential bundle of exactly what that site lacks, and the site
//! imports it on top, whichever earlier bundles reached it.
//!
//! Upstream is local and small but real: an OCI image layout, a Python index written by
//! fixtures/make-python-fixture.py, a bare git repository, a plain file. The payloads that
//! change are about 1 MiB each, so that the fixed parts of a bundle (tar headers,
//! manifest, signature) are well under the 1 % the size check allows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlock::digest::Digest;
use airlock::lock::Lock;

use crate::common::registry::{layer, noise};
use crate::common::{TestContext, require, root, sh, validate_json};

const PAYLOAD: usize = 1 << 20;

/// The factory, the site, and the upstream the factory mirrors.
struct World {
    factory: TestContext,
    site: TestContext,
    spec: PathBuf,
    upstream_git: PathBuf,
}

impl World {
    fn new() -> Self {
        require("git");
        require("python3");
        let factory = TestContext::new();
        let factory_pub = factory.key();
        let up = factory.path("spec");
        std::fs::create_dir_all(up.join("files")).unwrap();
        std::fs::write(up.join("files/notes.txt"), b"unchanged upstream\n").unwrap();
        write_image(&up.join("images/app"), 1);
        write_python(&up.join("py"), "1.0");
        let upstream_git = up.join("git/app.git");
        let work = factory.path("git-work");
        sh(
            factory.dir.path(),
            &format!(
                "git init -q -b main {work} && cd {work} && git config user.email t@example.invalid && \
                 git config user.name t && echo one > README && git add README && git commit -qm one && \
                 git clone -q --bare . {bare} && git remote add origin {bare}",
                work = work.display(),
                bare = upstream_git.display()
            ),
        );
        let spec = factory.spec(&format!(
            "name: site-inputs\nversion: \"1\"\nfiles:\n  - path: notes.txt\n    source: files/notes.txt\n\
             git:\n  - url: {}\n    name: app\nimages:\n  - ref: factory.example/app:1.0\n    layout: images/app\n\
             python:\n  - index: py/simple\n    requirements: [rcpt-data]\n    pythons: [\"3.11\"]\n\
             \x20   platforms: [manylinux_2_28_x86_64]\n    build-requirements: false\n",
            upstream_git.display()
        ));
        let site = TestContext::new();
        site.run(&["trust", "add", factory_pub.to_str().unwrap()]).ok();
        World { factory, site, spec, upstream_git }
    }

    fn lock(&self) -> Lock {
        Lock::load(&self.spec.with_extension("lock")).unwrap()
    }

    /// `airlock export` of the current lock with `args`, uncompressed; the bundle's path.
    fn export(&self, out: &str, args: &[&str]) -> PathBuf {
        let lock = self.spec.with_extension("lock");
        let dir = self.factory.path(out);
        let mut all = vec!["export", "--lock", lock.to_str().unwrap(), "-o", dir.to_str().unwrap()];
        all.extend_from_slice(&["--compression", "none"]);
        all.extend_from_slice(args);
        let r = self.factory.run(&all).ok();
        let name = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "airlock"));
        let bundle = name.unwrap_or_else(|| panic!("no bundle in {}: {}", dir.display(), r.stdout));
        let unpacked = self.factory.path(&format!("{out}.manifest.json"));
        std::fs::write(&unpacked, manifest_bytes(&bundle)).unwrap();
        validate_json(&unpacked, "manifest.schema.json");
        bundle
    }

    /// The site writes its receipt; returns its path (the signature is beside it).
    fn receipt(&self, name: &str) -> PathBuf {
        let path = self.site.path(name);
        let r = self.site.run(&["--json", "receipt", "-o", path.to_str().unwrap(), "--name", "site-a"]).ok().json();
        assert_eq!(r["site"], "site-a");
        validate_json(&path, "receipt.schema.json");
        path
    }

    /// The receipt (and its signature) carried to the factory.
    fn carry(&self, receipt: &Path) -> PathBuf {
        let dest = self.factory.path(receipt.file_name().unwrap().to_str().unwrap());
        std::fs::copy(receipt, &dest).unwrap();
        std::fs::copy(format!("{}.minisig", receipt.display()), format!("{}.minisig", dest.display())).unwrap();
        dest
    }

    fn trust_site(&self) {
        let site_pub = self.site.config().join("keys/site.pub");
        self.factory.run(&["trust", "add", "--site", site_pub.to_str().unwrap()]).ok();
    }

    /// One new commit upstream carrying `PAYLOAD` bytes of noise.
    fn commit(&self, seed: u64) {
        let work = self.factory.path("git-work");
        std::fs::write(work.join(format!("data-{seed}.bin")), noise(PAYLOAD, seed)).unwrap();
        sh(&work, &format!("git add -A && git commit -qm 'data {seed}' && git push -q origin main"));
    }

    fn upstream_head(&self) -> String {
        sh(&self.upstream_git, "git rev-parse refs/heads/main").trim().to_string()
    }
}

/// A one-platform image, tag `1.0`: a small base layer and a `PAYLOAD`-byte app layer.
pub(crate) fn write_image(layout: &Path, seed: u64) {
    let _ = std::fs::remove_dir_all(layout);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let d = Digest::of(b);
        std::fs::write(blobs.join(d.hex()), b).unwrap();
        serde_json::json!({"digest": d.to_string(), "size": b.len()})
    };
    let layers = [layer("etc/os-release", b"NAME=receipt-test\n"), layer("app/data", &noise(PAYLOAD, seed))];
    let descs: Vec<_> = layers
        .iter()
        .map(|l| {
            let mut d = put(l);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
            d
        })
        .collect();
    let diff_ids: Vec<_> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let mut config = put(&serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .unwrap());
    config["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let mut manifest = put(&serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": descs
    }))
    .unwrap());
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    manifest["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "1.0"});
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [manifest]})).unwrap(),
    )
    .unwrap();
}

/// A PEP 503 index with project `rcpt-data` at each of `versions` (comma-separated), one
/// pure wheel of about `PAYLOAD` bytes each, made by the fixtures' own generator.
fn write_python(out: &Path, versions: &str) {
    let script = r##"
import base64, importlib.util, random, sys
spec = importlib.util.spec_from_file_location("mk", sys.argv[1])
mk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mk)
out, size = sys.argv[2], int(sys.argv[4])
files = []
for v in sys.argv[3].split(","):
    payload = b"# " + base64.b64encode(random.Random(v).randbytes(size * 3 // 4))
    files.append(mk.wheel(out, "rcpt-data", v, "py3-none-any", payload=payload))
mk.index(out, {"rcpt-data": files})
"##;
    let st = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(root().join("fixtures/make-python-fixture.py"))
        .arg(out)
        .arg(versions)
        .arg(PAYLOAD.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

fn manifest_bytes(bundle: &Path) -> Vec<u8> {
    let stream = std::fs::read(bundle).unwrap();
    let members = crate::common::tarhack::members(&crate::common::tarhack::plain(&stream));
    assert_eq!(members[0].0, "manifest.json");
    members[0].1.clone()
}

fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&manifest_bytes(bundle)).unwrap()
}

/// Every blob a lock names, with its size.
fn lock_blobs(lock: &Lock) -> std::collections::BTreeMap<Digest, u64> {
    let mut m = std::collections::BTreeMap::new();
    for a in &lock.artifacts {
        m.insert(a.digest, a.size);
    }
    for i in &lock.images {
        for b in &i.blobs {
            m.insert(b.digest, b.size);
        }
    }
    for p in &lock.python {
        m.insert(p.digest, p.size);
        if let Some(md) = &p.metadata {
            m.insert(md.digest, md.size);
        }
    }
    m
}

fn carried(m: &serde_json::Value) -> std::collections::BTreeMap<Digest, u64> {
    m["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["digest"].as_str().unwrap().parse().unwrap(), b["size"].as_u64().unwrap()))
        .collect()
}

fn git_artifact(m: &serde_json::Value) -> &serde_json::Value {
    m["artifacts"].as_array().unwrap().iter().find(|a| a["kind"] == "git").unwrap()
}

#[test]
fn receipt_round_trip_carries_only_what_changed() {
    let w = World::new();
    let (f, s) = (&w.factory, &w.site);
    f.mirror(&w.spec).ok();
    let v1 = w.export("v1", &[]);
    s.run(&["import", v1.to_str().unwrap()]).ok();
    let lock1 = w.lock();
    let tip1 = w.upstream_head();

    // The site's receipt: what its store holds, signed by its own key (made now), and
    // checked by stock minisign.
    let receipt = w.receipt("site.receipt");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    assert_eq!(r["git"]["app"]["refs"]["refs/heads/main"], tip1.as_str());
    assert_eq!(r["images"]["app"]["1.0"], lock1.images[0].digest.to_string());
    let py = &lock1.python[0];
    assert_eq!(r["python"]["pypi"]["rcpt-data"][&py.filename], py.digest.to_string());
    assert_eq!(r["files"]["raw"]["notes.txt"], lock1.artifacts[0].digest.to_string());
    let held: BTreeSet<Digest> = ["file", "image", "python", "git", "other"]
        .iter()
        .flat_map(|k| r["blobs"][k].as_object().into_iter().flatten().map(|(d, _)| d.parse::<Digest>().unwrap()))
        .collect();
    assert!(lock_blobs(&lock1).keys().all(|d| held.contains(d)), "the receipt names every imported blob");
    require("minisign");
    let verified = sh(
        s.dir.path(),
        &format!("minisign -Vm {} -p {}", receipt.display(), s.config().join("keys/site.pub").display()),
    );
    assert!(verified.contains("Signature and comment signature verified"), "{verified}");
    assert!(s.run(&["receipt", "--help"]).ok().stdout.contains("site.receipt.minisig"), "--help teaches the two files");
    let carried_receipt = w.carry(&receipt);
    let rs = carried_receipt.to_str().unwrap();
    // The site holds exactly what v1 delivered: every artifact lines up, file by path,
    // image by repository and tag, git by name, Python file by index and project.
    let same = f.run(&["--json", "diff", v1.to_str().unwrap(), rs]).ok().json();
    assert_eq!(same["identical"], true, "{same}");
    assert_eq!(same["unchanged"], manifest(&v1)["artifacts"].as_array().unwrap().len());
    assert!(same["b"]["signature"].as_str().unwrap().starts_with("NOT TRUSTED"), "not yet trusted: {same}");

    // A receipt the factory does not trust is refused as not authentic, and nothing is
    // written; so is a trusted one changed after signing.
    let lock = w.spec.with_extension("lock");
    let export = |out: &str, since: &str, extra: &[&str]| {
        let mut a = vec!["export", "--lock", lock.to_str().unwrap(), "-o", out, "--since-receipt", since];
        a.extend_from_slice(extra);
        f.run(&a)
    };
    export("refused", rs, &["--version", "2"]).fails(3, "which is not a trusted site key");
    assert!(!f.path("refused").exists());
    w.trust_site();
    let tampered = f.path("tampered.receipt");
    std::fs::write(&tampered, std::fs::read_to_string(&carried_receipt).unwrap().replace("site-a", "site-b")).unwrap();
    std::fs::copy(format!("{rs}.minisig"), format!("{}.minisig", tampered.display())).unwrap();
    export("refused", tampered.to_str().unwrap(), &["--version", "2"]).fails(3, "it was changed after signing");
    // The receipt says which bundles the site imported: one it would refuse as a rollback
    // is refused here.
    export("refused", rs, &["--version", "0.9"]).fails(2, "it would refuse site-inputs-0.9");
    assert!(!f.path("refused").exists());
    // A bundle signer's key is not a site key.
    let factory_pub = f.config().join("keys/airlock.pub");
    f.run(&["trust", "add", "--site", factory_pub.to_str().unwrap()]).fails(2, "already trusted as a bundle signer");

    // With nothing changed upstream, a delta carries nothing: its size is the fixed
    // overhead (tar headers, manifest, signature, SHA256SUMS, OCI layout files).
    let empty = w.export("empty", &["--since-receipt", rs, "--version", "1.0.1"]);
    assert_eq!(manifest(&empty)["blobs"], serde_json::json!([]));
    let overhead = std::fs::metadata(&empty).unwrap().len();

    // One Python file, one image layer and one git commit change upstream.
    write_python(&f.path("spec/py"), "1.0,1.1");
    write_image(&f.path("spec/images/app"), 2);
    w.commit(7);
    f.mirror(&w.spec).ok();
    let lock2 = w.lock();
    // Named by the site's name this time: the factory kept its receipt.
    let delta = w.export("delta", &["--since-receipt", "site-a", "--version", "2"]);
    let m = manifest(&delta);
    assert_eq!(m["base"]["receipt"], Digest::of(&std::fs::read(&receipt).unwrap()).to_string());
    assert_eq!(m["base"]["site"], "site-a");
    // Exactly the blobs that changed: those the new lock names and the old did not (the
    // new wheel and its metadata; the new layer, config and manifest), plus one
    // incremental git bundle built on the site's own tip.
    let old = lock_blobs(&lock1);
    let mut want: std::collections::BTreeMap<Digest, u64> =
        lock_blobs(&lock2).into_iter().filter(|(d, _)| !old.contains_key(d)).collect();
    assert_eq!(want.len(), 5, "wheel + metadata, layer + config + manifest: {want:?}");
    let git = git_artifact(&m);
    assert_eq!(git["prerequisites"], serde_json::json!([tip1]));
    let git_blob: Digest = git["blobs"][0].as_str().unwrap().parse().unwrap();
    let got = carried(&m);
    want.insert(git_blob, got[&git_blob]);
    assert_eq!(got, want);
    let sum: u64 = want.values().sum();
    assert!(got[&git_blob] > PAYLOAD as u64 / 2 && sum > 2 * PAYLOAD as u64, "{want:?}");
    let size = std::fs::metadata(&delta).unwrap().len();
    let payload = size - overhead;
    assert!(
        payload.abs_diff(sum) * 100 <= sum,
        "delta is {size} bytes: {payload} beyond the empty delta's {overhead}, against {sum} of changed blobs"
    );
    // `airlock diff` of the receipt against the delta says the same: what the site lacks.
    let d = f.run(&["--json", "diff", rs, delta.to_str().unwrap()]).ok().json();
    assert_eq!(d["blobs"]["added"]["count"], want.len(), "{d}");
    assert_eq!(d["blobs"]["added"]["bytes"], sum);

    // It imports cleanly on top: the new wheel in the index, the tag on the new image,
    // the branch on the new commit.
    let r = s.run(&["--json", "import", delta.to_str().unwrap()]).ok().json();
    let new_py = lock2.python.iter().find(|p| p.version == "1.1").unwrap();
    assert!(s.store().join("repository/pypi/files/rcpt-data").join(&new_py.filename).is_file());
    assert_eq!(
        std::fs::read_to_string(s.store().join("oci/app/tags/1.0")).unwrap().trim(),
        lock2.images[0].digest.to_string()
    );
    let site_head = sh(&s.store().join("git/app.git"), "git rev-parse refs/heads/main");
    assert_eq!(site_head.trim(), w.upstream_head());
    assert_eq!(r["updated"], 2, "the image tag and the branch: {r}");
}

#[test]
fn a_bundle_lost_on_the_way_does_not_stop_the_next() {
    let w = World::new();
    let (f, s) = (&w.factory, &w.site);
    f.mirror(&w.spec).ok();
    let v1 = w.export("v1", &[]);
    s.run(&["import", v1.to_str().unwrap()]).ok();
    let receipt = w.carry(&w.receipt("site.receipt"));
    w.trust_site();

    // v2 after a new Python release, v3 after a new commit too, both from the same
    // receipt (the site sent no newer one). v2 never reaches the site.
    write_python(&f.path("spec/py"), "1.0,1.1");
    f.mirror(&w.spec).ok();
    let v2 = w.export("v2", &["--since-receipt", receipt.to_str().unwrap(), "--version", "2"]);
    w.commit(3);
    f.mirror(&w.spec).ok();
    let key_id = f.run(&["--json", "trust", "list", "--site"]).ok().json()[0]["keyId"].as_str().unwrap().to_string();
    let v3 = w.export("v3", &["--since-receipt", &key_id, "--version", "3"]);
    let (m2, m3) = (manifest(&v2), manifest(&v3));
    assert_eq!(m2["base"], m3["base"], "both are computed from the site's state, not from each other");
    std::fs::remove_dir_all(v2.parent().unwrap()).unwrap();

    let before = std::fs::read_to_string(s.store().join("imported.json")).unwrap();
    s.run(&["import", v3.to_str().unwrap()]).ok();
    let lock = w.lock();
    for p in &lock.python {
        assert!(s.store().join("repository/pypi/files/rcpt-data").join(&p.filename).is_file(), "{}", p.filename);
    }
    let site_head = sh(&s.store().join("git/app.git"), "git rev-parse refs/heads/main");
    assert_eq!(site_head.trim(), w.upstream_head());
    assert_ne!(std::fs::read_to_string(s.store().join("imported.json")).unwrap(), before);

    // A site that lost state since its receipt is told exactly what is missing, and
    // nothing changes: here the image's big layer, which the receipt said it held.
    w.commit(4);
    f.mirror(&w.spec).ok();
    let v4 = w.export("v4", &["--since-receipt", "site-a", "--version", "4"]);
    let image = &lock.images[0];
    let lost = image.blobs.iter().max_by_key(|b| b.size).unwrap().digest;
    let blob = s.store().join("blobs/sha256").join(lost.hex());
    std::fs::remove_file(&blob).unwrap();
    let tree = crate::common::snapshot::tree(&s.store(), &[".import.lock"]);
    let refused = s.run(&["import", v4.to_str().unwrap()]).fails(2, "no longer holds");
    assert!(refused.stderr.contains(&format!("blob {lost} of image `{}`", image.name)), "{}", refused.stderr);
    assert!(refused.stderr.contains("send the factory a new receipt"), "{}", refused.stderr);
    assert_eq!(crate::common::snapshot::tree(&s.store(), &[".import.lock"]), tree, "nothing changed");
}

#[test]
fn a_new_site_without_a_store_sends_an_empty_receipt_and_gets_a_full_bundle() {
    let w = World::new();
    let (f, s) = (&w.factory, &w.site);
    assert!(!s.store().exists());
    let receipt = w.receipt("first.receipt");
    assert!(!s.store().exists(), "a receipt makes no store");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    assert!(r["imported"].as_array().is_some_and(|a| a.is_empty()), "{r}");
    let receipt = w.carry(&receipt);
    w.trust_site();
    f.mirror(&w.spec).ok();
    let full = manifest(&w.export("full", &[]));
    let first = w.export("first", &["--since-receipt", receipt.to_str().unwrap()]);
    let m = manifest(&first);
    assert_eq!(carried(&m), carried(&full), "the site holds nothing, so everything travels");
    s.run(&["import", first.to_str().unwrap()]).ok();
    let site_head = sh(&s.store().join("git/app.git"), "git rev-parse refs/heads/main");
    assert_eq!(site_head.trim(), w.upstream_head());
}
