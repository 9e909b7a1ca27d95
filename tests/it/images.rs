//! Container images end to end against the real distribution registry, once as the
//! upstream and once as the target, with images made by the tests (two platforms, several
//! images sharing a base layer) and checked with skopeo.

use airlock::digest::Digest;

use crate::common::proxy::Proxy;
use crate::common::registry::{ImageMaker, Registry, layer, noise, remote_digest};
use crate::common::{TestContext, sh};

struct Upstream {
    reg: Registry,
    base: Digest,
    tops: Vec<(String, Digest)>,
}

/// ns/base:1.0 (amd64+arm64), ns/app:1.0 (amd64+arm64, on base), ns/tool:2.0 (amd64, on base).
fn upstream(cx: &TestContext, layer_size: usize) -> Upstream {
    let reg = Registry::start(&cx.path("upstream-registry"));
    let maker = ImageMaker::new(&cx.path("layouts"));
    let base = layer("base/os-release", &noise(layer_size, 1));
    let arch = |a: &str| layer(&format!("arch/{a}"), &noise(layer_size / 2, a.len() as u64 + 7));
    let app = layer("app/bin", &noise(layer_size / 3, 99));
    let tool = layer("tool/bin", &noise(layer_size / 4, 42));
    let h = reg.host();
    let tops = vec![
        (
            "ns/base:1.0".to_string(),
            maker.push(
                &h,
                "ns/base",
                "1.0",
                &[("amd64", vec![base.clone(), arch("amd64")]), ("arm64", vec![base.clone(), arch("arm64")])],
            ),
        ),
        (
            "ns/app:1.0".to_string(),
            maker.push(
                &h,
                "ns/app",
                "1.0",
                &[
                    ("amd64", vec![base.clone(), arch("amd64"), app.clone()]),
                    ("arm64", vec![base.clone(), arch("arm64"), app.clone()]),
                ],
            ),
        ),
        ("ns/tool:2.0".to_string(), maker.push(&h, "ns/tool", "2.0", &[("amd64", vec![base.clone(), tool])])),
    ];
    Upstream { base: Digest::of(&base), reg, tops }
}

fn spec(cx: &TestContext, up: &Upstream, app_platforms: &str) -> std::path::PathBuf {
    let h = up.reg.host();
    cx.spec(&format!(
        "name: images\nversion: \"1\"\nimages:\n  - ref: {h}/ns/base:1.0\n  - ref: {h}/ns/app:1.0\n    platforms: [{app_platforms}]\n  - ref: {h}/ns/tool:2.0\nregistries:\n  \"{h}\":\n    insecure: true\n"
    ))
}

#[test]
fn mirror_export_import_into_a_registry() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 400_000);
    let spec = spec(&cx, &up, "linux/arm64");
    let out = cx.bundle(&spec, "out", &[]);
    let bundle = out.join("images-1.airlock");
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();

    // The bundle carries each shared layer once.
    let i = cx.run(&["--json", "inspect", bundle.to_str().unwrap()]).ok().json();
    let images = lock["images"].as_array().unwrap().len();
    assert_eq!(images, up.tops.len(), "every image of the spec is locked");
    assert_eq!(i["totals"]["image"]["artifacts"], images);
    let unpacked = cx.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    sh(&unpacked, &format!("zstd -dc {} | tar -x", bundle.display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let carried: Vec<&str> =
        manifest["blobs"].as_array().unwrap().iter().map(|b| b["digest"].as_str().unwrap()).collect();
    assert_eq!(carried.iter().filter(|d| **d == up.base.to_string()).count(), 1);
    let uses_base = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["blobs"].as_array().unwrap().iter().any(|b| b == &up.base.to_string()))
        .count();
    assert_eq!(uses_base, images, "every image uses the base layer");

    // The unpacked bundle is an OCI layout skopeo reads with no airlock.
    sh(&unpacked, "skopeo copy --quiet oci:.:ns_tool-2.0 dir:tool-out && test -s tool-out/manifest.json");

    let target = Registry::start(&cx.path("target-registry"));
    let t = target.host();
    let r = cx.run(&["--json", "import", bundle.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure"]).ok().json();
    let imported: Vec<_> = r["artifacts"].as_array().unwrap().iter().filter(|a| a["kind"] == "image").collect();
    assert_eq!(imported.len(), images);
    for (name, upstream_digest) in &up.tops {
        let got = remote_digest(&format!("{t}/{name}"));
        if name.starts_with("ns/app") {
            // Filtered to arm64: a new index holding only that platform's manifest.
            let entry = lock["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"].as_str().unwrap().ends_with(name))
                .unwrap();
            assert_eq!(got.to_string(), entry["digest"].as_str().unwrap());
            assert_ne!(got, *upstream_digest);
            assert_eq!(entry["upstreamDigest"].as_str().unwrap(), upstream_digest.to_string());
            let raw = sh(cx.dir.path(), &format!("skopeo inspect --raw --tls-verify=false docker://{t}/{name}"));
            let idx: serde_json::Value = serde_json::from_str(&raw).unwrap();
            let plats: Vec<_> =
                idx["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].clone()).collect();
            assert_eq!(plats, ["arm64"]);
        } else {
            assert_eq!(got, *upstream_digest, "{name} keeps its upstream digest");
        }
    }
    sh(
        cx.dir.path(),
        &format!(
            "skopeo copy --quiet --src-tls-verify=false docker://{t}/ns/tool:2.0 dir:pulled && test -s pulled/manifest.json"
        ),
    );

    // Again: everything is there, nothing moves.
    assert!(r["registry"]["bytesUploaded"].as_u64().unwrap() > 400_000, "{r}");
    let again =
        cx.run(&["--json", "import", bundle.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure"]).ok().json();
    assert!(
        again["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "image")
            .all(|a| a["action"] == "present"),
        "{again}"
    );
    assert_eq!(again["registry"]["bytesUploaded"], 0, "a re-import uploads nothing");

    // Path rewriting for registries with a prefix and a depth limit (Quay: 2), uploading in
    // 64 KiB chunks.
    cx.run(&[
        "import",
        bundle.to_str().unwrap(),
        "--oci-registry",
        &format!("{t}/mirror"),
        "--oci-insecure",
        "--oci-max-components",
        "2",
        "--oci-chunk-size",
        "64KiB",
    ])
    .ok();
    sh(
        cx.dir.path(),
        &format!(
            "skopeo copy --quiet --all --src-tls-verify=false docker://{t}/mirror/ns-app:1.0 dir:chunked && test -s chunked/manifest.json"
        ),
    );
    assert_eq!(remote_digest(&format!("{t}/mirror/ns-tool:2.0")), up.tops[2].1);

    // The embedded default: the store's own registry.
    let r = cx.run(&["--json", "import", bundle.to_str().unwrap()]).ok().json();
    assert!(r["artifacts"].as_array().unwrap().iter().any(|a| a["kind"] == "image" && a["action"] == "added"));
    let tag = std::fs::read_to_string(cx.store().join("oci/ns/tool/tags/2.0")).unwrap();
    assert_eq!(tag.trim(), up.tops[2].1.to_string());
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_refused_at_mirror_time() {
    let cx = TestContext::new();
    let up = upstream(&cx, 50_000);
    let tool_layer = Digest::of(&layer("tool/bin", &noise(50_000 / 4, 42)));
    let data = up.reg.blob_data(&tool_layer);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let spec = cx.spec(&format!(
        "name: x\nimages:\n  - ref: {h}/ns/tool:2.0\nregistries:\n  \"{h}\":\n    insecure: true\n",
        h = up.reg.host()
    ));
    cx.mirror(&spec).fails(2, &format!("blob {tool_layer} of {}/ns/tool does not match its digest", up.reg.host()));
    assert!(!cx.cache().join("blobs/sha256").join(tool_layer.hex()).exists());
}

#[test]
fn a_manifest_naming_a_blob_the_bundle_lacks_is_refused_before_any_push() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 50_000);
    let spec = spec(&cx, &up, "linux/amd64");
    cx.mirror(&spec).ok();
    // A lock that leaves one layer out: the signed manifest is consistent, but the image
    // manifest it carries names a blob that is not there.
    let lock_path = spec.with_extension("lock");
    let mut lock: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock_path).unwrap()).unwrap();
    let tool = lock["images"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["name"].as_str().unwrap().ends_with("ns/tool:2.0"))
        .unwrap();
    let dropped = tool["blobs"].as_array_mut().unwrap().pop().unwrap();
    std::fs::write(&lock_path, serde_json::to_vec_pretty(&lock).unwrap()).unwrap();
    let out = cx.path("out");
    cx.run(&["export", "--lock", lock_path.to_str().unwrap(), "-o", out.to_str().unwrap()]).ok();
    let bundle = out.join("images-1.airlock");
    // Drop it from the store too, as a site that never had it.
    let target = Registry::start(&cx.path("target-registry"));
    let fresh = TestContext::new();
    crate::common::copy_dir(&cx.config().join("trusted"), &fresh.config().join("trusted"));
    let needle =
        format!("names blob {}, which neither the bundle nor the store has", dropped["digest"].as_str().unwrap());
    fresh
        .run(&["import", bundle.to_str().unwrap(), "--oci-registry", &target.host(), "--oci-insecure"])
        .fails(2, &needle);
    let tags = std::process::Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", &format!("docker://{}/ns/base", target.host())])
        .output()
        .unwrap();
    assert!(!tags.status.success() || !String::from_utf8_lossy(&tags.stdout).contains("1.0"), "nothing was pushed");
}

#[test]
fn target_registry_stopped_mid_import_then_resumed() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 3_000_000);
    let spec = spec(&cx, &up, "linux/amd64, linux/arm64");
    let bundle = cx.bundle(&spec, "out", &[]).join("images-1.airlock");
    let target = Registry::start(&cx.path("target-registry"));
    // The target goes away after about 4 MB of the ~12 MB the import sends.
    let proxy = Proxy::start(target.port, 4_000_000);
    let t = format!("127.0.0.1:{}", proxy.port);
    let args = ["import", bundle.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure", "--oci-jobs", "2"];
    // The import retries the vanished target, briefly here.
    let failed = cx.run_env(&args, &[("AIRLOCK_BACKOFF", "10ms")]);
    assert!(proxy.is_down(), "the import ended before the target went away");
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(failed.stderr.contains(&t), "the error names the target: {}", failed.stderr);

    // In between, no tag points at a manifest with missing content.
    proxy.resume();
    let mut tagged = 0;
    for (name, _) in &up.tops {
        let inspect = std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{t}/{name}")])
            .output()
            .unwrap();
        if inspect.status.success() {
            tagged += 1;
            sh(
                cx.dir.path(),
                &format!(
                    "skopeo copy --quiet --all --src-tls-verify=false docker://{t}/{name} dir:check-{}",
                    name.replace(['/', ':'], "_")
                ),
            );
        }
    }
    assert!(tagged < up.tops.len(), "the interruption came before the last tag");
    // Running it again completes it.
    cx.run(&args).ok();
    for (name, d) in &up.tops {
        assert_eq!(remote_digest(&format!("{t}/{name}")), *d);
    }
}

#[test]
fn registries_that_demand_credentials() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 20_000);
    let spec = spec(&cx, &up, "linux/amd64");
    let bundle = cx.bundle(&spec, "out", &[]).join("images-1.airlock");
    let target = Registry::start_with_auth(&cx.path("locked-registry"), "site", "s3cret");
    let t = target.host();
    let args = ["import", bundle.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure"];
    cx.run(&args).fails(2, "needs credentials");
    cx.run_env(&args, &[("AIRLOCK_REGISTRY_USERNAME", "site"), ("AIRLOCK_REGISTRY_PASSWORD", "wrong")])
        .fails(2, "refused the credentials");
    // The Docker auth file, as `docker login` or `skopeo login` writes it.
    let auth = format!(
        r#"{{"auths":{{"{t}":{{"auth":"{}"}}}}}}"#,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"site:s3cret")
    );
    std::fs::write(cx.path("auth.json"), auth).unwrap();
    let auth_file = cx.path("auth.json");
    cx.run_env(&args, &[("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())]).ok();
    let out = sh(
        cx.dir.path(),
        &format!("skopeo inspect --raw --tls-verify=false --creds site:s3cret docker://{t}/ns/tool:2.0"),
    );
    assert_eq!(Digest::of(out.as_bytes()), up.tops[2].1);
}

#[test]
fn a_platform_filter_that_nothing_matches_is_an_error() {
    let cx = TestContext::new();
    let up = upstream(&cx, 10_000);
    let h = up.reg.host();
    for (image, needle) in
        [("ns/tool:2.0", "is for linux/amd64 only"), ("ns/base:1.0", "no manifest for [\"linux/s390x\"]")]
    {
        let platform = if image.starts_with("ns/tool") { "linux/arm64" } else { "linux/s390x" };
        let spec = cx.spec(&format!(
            "name: x\nimages:\n  - ref: {h}/{image}\n    platforms: [{platform}]\nregistries:\n  \"{h}\":\n    insecure: true\n"
        ));
        cx.mirror(&spec).fails(2, needle);
    }
    // Two images that would land on the same repository and tag at the site.
    let spec = cx.spec(&format!(
        "name: x\nimages:\n  - ref: {h}/ns/tool:2.0\n  - ref: localhost:1/ns/tool:2.0\nregistries:\n  \"{h}\":\n    insecure: true\n"
    ));
    cx.mirror(&spec).fails(2, "would collide");
}

/// `import --json` of a bundle into a registry: the receipt.
fn import_json(cx: &TestContext, bundle: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json", "import", bundle.to_str().unwrap()];
    args.extend_from_slice(extra);
    cx.run(&args).ok().json()
}

fn flip_byte(path: &std::path::Path, from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = b.len() - from_end;
    b[i] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_reimport_is_answered_from_the_record_only_while_media_and_targets_agree() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 200_000);
    let spec = spec(&cx, &up, "linux/amd64, linux/arm64");
    let bundle = cx.bundle(&spec, "out", &[]).join("images-1.airlock");
    let target = Registry::start(&cx.path("target-registry"));
    let t = target.host();
    let reg = ["--oci-registry", t.as_str(), "--oci-insecure"];

    let first = import_json(&cx, &bundle, &reg);
    assert_eq!(first["answeredFromRecord"], false, "{first}");
    let again = import_json(&cx, &bundle, &reg);
    assert_eq!(again["answeredFromRecord"], true, "{again}");
    assert_eq!(again["registry"]["bytesUploaded"], 0);
    let images: Vec<_> = again["artifacts"].as_array().unwrap().iter().filter(|a| a["kind"] == "image").collect();
    assert_eq!(images.len(), up.tops.len());
    assert!(images.iter().all(|a| a["action"] == "present"), "{again}");
    assert!(cx.store().join("receipts/images-1").read_dir().unwrap().count() >= 2, "the answer writes a receipt");
    let history = cx.run(&["--json", "history"]).ok().json();
    assert!(history.to_string().contains("completed"), "{history}");

    // --verify-all reads every byte whatever the record says.
    let all = import_json(&cx, &bundle, &[&reg[..], &["--verify-all"]].concat());
    assert_eq!(all["answeredFromRecord"], false, "{all}");

    // A target that lost an image: the full path puts it back.
    sh(cx.dir.path(), &format!("skopeo delete --tls-verify=false docker://{t}/ns/tool:2.0"));
    let repaired = import_json(&cx, &bundle, &reg);
    assert_eq!(repaired["answeredFromRecord"], false, "{repaired}");
    assert_eq!(remote_digest(&format!("{t}/ns/tool:2.0")), up.tops[2].1);
    assert_eq!(import_json(&cx, &bundle, &reg)["answeredFromRecord"], true);

    // Another target has no record: the store's own registry is imported in full once.
    assert_eq!(import_json(&cx, &bundle, &[])["answeredFromRecord"], false);
    assert_eq!(import_json(&cx, &bundle, &[])["answeredFromRecord"], true);

    // Altered or truncated media are never answered from the record: verify's verdict.
    let altered = cx.path("altered/images-1.airlock");
    std::fs::create_dir_all(altered.parent().unwrap()).unwrap();
    std::fs::copy(&bundle, &altered).unwrap();
    flip_byte(&altered, 2000);
    let a = altered.to_str().unwrap();
    cx.run(&["verify", a]).fails(1, "");
    cx.run(&[&["import", a][..], &reg].concat()).fails(1, "nothing was imported");
    let cut = cx.path("cut/images-1.airlock");
    std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
    let bytes = std::fs::read(&bundle).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    cx.run(&["import", cut.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure"]).fails(1, "");
    assert_eq!(remote_digest(&format!("{t}/ns/tool:2.0")), up.tops[2].1, "the target is as it was");
}

#[test]
fn split_volumes_are_answered_from_the_record_only_with_each_volume_as_recorded() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 200_000);
    let spec = spec(&cx, &up, "linux/arm64");
    let out = cx.bundle(&spec, "out", &["--split", "128KiB"]);
    let first_volume = out.join("images-1.airlock.001");
    let target = Registry::start(&cx.path("target-registry"));
    let t = target.host();
    let reg = ["--oci-registry", t.as_str(), "--oci-insecure"];
    assert_eq!(import_json(&cx, &first_volume, &reg)["answeredFromRecord"], false);
    assert_eq!(import_json(&cx, &first_volume, &reg)["answeredFromRecord"], true);

    let copy = cx.path("copy");
    crate::common::copy_dir(&out, &copy);
    let v1 = copy.join("images-1.airlock.001");
    let v2 = copy.join("images-1.airlock.002");
    assert_eq!(import_json(&cx, &v1, &reg)["answeredFromRecord"], true, "a copy of the same media");
    // One byte changed in the second volume: not the recorded media.
    flip_byte(&v2, 500);
    cx.run(&[&["import", v1.to_str().unwrap()][..], &reg].concat()).fails(1, "");
    std::fs::copy(out.join("images-1.airlock.002"), &v2).unwrap();
    // A truncated volume.
    let len = std::fs::metadata(&v2).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&v2).unwrap().set_len(len - 1).unwrap();
    cx.run(&[&["import", v1.to_str().unwrap()][..], &reg].concat()).fails(1, "truncated");
}

#[test]
fn layers_go_up_while_later_ones_are_still_read_and_a_killed_import_does_not_send_them_again() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 1_000_000);
    let spec = spec(&cx, &up, "linux/amd64, linux/arm64");
    let bundle = cx.bundle(&spec, "out", &[]).join("images-1.airlock");
    let unpacked = cx.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    sh(&unpacked, &format!("zstd -dc {} | tar -x manifest.json", bundle.display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let blobs = manifest["blobs"].as_array().unwrap();
    let layers: Vec<(&str, u64)> = blobs
        .iter()
        .filter(|b| {
            !b["mediaType"].as_str().unwrap().contains("manifest")
                && !b["mediaType"].as_str().unwrap().contains("index")
        })
        .map(|b| (b["digest"].as_str().unwrap(), b["size"].as_u64().unwrap()))
        .collect();
    let layer_bytes: u64 = layers.iter().map(|l| l.1).sum();
    assert!(layers.len() >= 4, "{layers:?}");

    let target = Registry::start(&cx.path("target-registry"));
    let t = target.host();
    let b = bundle.to_str().unwrap();
    let args = ["--json", "import", b, "--oci-registry", &t, "--oci-insecure"];
    let repos = ["ns/base", "ns/app", "ns/tool"];
    let at_target = |d: &str| {
        repos.iter().any(|r| {
            std::process::Command::new("curl")
                .args(["-sfI", &format!("http://{t}/v2/{r}/blobs/{d}")])
                .output()
                .unwrap()
                .status
                .success()
        })
    };
    // Stopped as the last blob of the bundle is about to be staged: the blobs before it
    // are confirmed, and their layers are at the registry already, with no tag yet.
    let mut child = crate::interrupt::pause_at(&cx, &args, &format!("staged:{}", blobs.len()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let early = loop {
        let n = layers.iter().filter(|(d, _)| at_target(d)).count();
        if n > 0 || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for r in repos {
        let tags =
            std::process::Command::new("curl").args(["-sf", &format!("http://{t}/v2/{r}/tags/list")]).output().unwrap();
        if tags.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap();
            let none = v["tags"].as_array().is_none_or(|t| t.is_empty());
            assert!(none, "no tag before the bundle is verified: {r} {v}");
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(early > 0, "no layer went up while the bundle was still being read");

    // Run again, it completes and sends only what had not gone up.
    let r = cx.run(&args).ok().json();
    let sent = r["registry"]["bytesUploaded"].as_u64().unwrap();
    assert!(sent < layer_bytes, "the re-run sent {sent} of {layer_bytes} layer bytes again");
    for (name, d) in &up.tops {
        assert_eq!(remote_digest(&format!("{t}/{name}")), *d);
    }
}

#[test]
fn a_chunked_upload_killed_between_chunks_goes_on_from_where_the_registry_stands() {
    let cx = TestContext::new();
    cx.key();
    let up = upstream(&cx, 3_000_000);
    let spec = spec(&cx, &up, "linux/amd64, linux/arm64");
    let bundle = cx.bundle(&spec, "out", &[]).join("images-1.airlock");
    let unpacked = cx.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    sh(&unpacked, &format!("zstd -dc {} | tar -x manifest.json", bundle.display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let layers: Vec<(String, u64)> = manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            let mt = b["mediaType"].as_str().unwrap();
            !mt.contains("manifest") && !mt.contains("index")
        })
        .map(|b| (b["digest"].as_str().unwrap().to_string(), b["size"].as_u64().unwrap()))
        .collect();
    let layer_bytes: u64 = layers.iter().map(|l| l.1).sum();

    let target = Registry::start(&cx.path("target-registry"));
    let t = target.host();
    let b = bundle.to_str().unwrap();
    let args =
        ["--json", "import", b, "--oci-registry", &t, "--oci-insecure", "--oci-chunk-size", "1MiB", "--oci-jobs", "1"];
    // Killed right after the registry accepted the second chunk of a blob.
    crate::interrupt::kill_at(&cx, &args, "registry-chunk:2");
    let whole: u64 = layers
        .iter()
        .filter(|(d, _)| {
            ["ns/base", "ns/app", "ns/tool"].iter().any(|r| {
                std::process::Command::new("curl")
                    .args(["-sfI", &format!("http://{t}/v2/{r}/blobs/{d}")])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
        })
        .map(|l| l.1)
        .sum();
    // The next run sends neither the blobs that were complete nor the chunks the
    // registry holds of the one that was not.
    let r = cx.run(&args).ok().json();
    let sent = r["registry"]["bytesUploaded"].as_u64().unwrap();
    assert!(
        sent + whole + (1 << 20) <= layer_bytes,
        "the re-run sent {sent} bytes; {whole} of {layer_bytes} were complete at the registry before it"
    );
    for (name, d) in &up.tops {
        assert_eq!(remote_digest(&format!("{t}/{name}")), *d);
    }
    let left: Vec<_> = std::fs::read_dir(cx.store().join("partial"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no upload is left written down: {left:?}");
}
