//! `airlock oci`: directories pushed as OCI artifacts to real registries (Debian's
//! docker-registry, `airlock serve`), pulled back by airlock and by an independent ORAS
//! client (the `oras` Python SDK), copied with their referrers, and unsafe layers refused.

use std::path::Path;

use airlock::digest::Digest;

use crate::common::registry::Registry;
use crate::common::server::{Server, TOKEN};
use crate::common::{TestContext, require, sh};

/// An extension directory: a manifest.yaml, nested files, an executable, a link inside.
fn extension(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("share/doc")).unwrap();
    std::fs::write(
        dir.join("manifest.yaml"),
        "name: nginx\ntype: extension\nversion: 1.2.0\ncreated: \"2026-01-02T03:04:05Z\"\nsource: https://git.example/ext/nginx\n",
    )
    .unwrap();
    std::fs::write(dir.join("bin/run.sh"), "#!/bin/sh\necho hello\n").unwrap();
    sh(dir, "chmod 755 bin/run.sh && ln -s run.sh bin/start");
    std::fs::write(dir.join("share/doc/README"), vec![b'x'; 300_000]).unwrap();
}

/// Run a Python snippet with the `oras` SDK's interpreter (target/test-tools/oras, which
/// scripts/test.sh installs).
fn oras(dir: &Path, script: &str) -> String {
    let python = crate::common::root().join("target/test-tools/oras/bin/python3");
    assert!(
        python.exists(),
        "the oras SDK is missing: run scripts/test.sh (it installs it into target/test-tools/oras)"
    );
    std::fs::write(dir.join("oras-script.py"), format!("import oras.client, sys\n{script}\n")).unwrap();
    sh(dir, &format!("{} oras-script.py", python.display()))
}

fn digest_of(v: &serde_json::Value) -> String {
    v["digest"].as_str().unwrap().to_string()
}

/// Both trees hold the same files with the same bytes.
pub(crate) fn same_tree(a: &Path, b: &Path) {
    let list = |d: &Path| sh(d, "find . -type f -o -type l | sort | xargs sha256sum 2>/dev/null; find . | sort");
    assert_eq!(list(a), list(b), "{} and {} differ", a.display(), b.display());
}

#[test]
fn round_trip_with_oras_through_docker_registry_and_serve() {
    let cx = TestContext::new();
    let d = cx.dir.path();
    let reg = Registry::start(&cx.path("registry"));
    let ext = cx.path("ext");
    extension(&ext);
    let r = format!("{}/extensions/nginx:1.2.0", reg.host());
    let first = cx.run(&["--json", "oci", "push", "ext", &r, "--insecure", "--annotation", "team=edge"]).ok().json();
    let digest = digest_of(&first);
    assert_eq!(first["ref"], r.as_str());
    // Same directory again, and a copy with other mtimes, give the same digest.
    let again = cx.run(&["--json", "oci", "push", "ext", &r, "--insecure", "--annotation", "team=edge"]).ok().json();
    assert_eq!(digest_of(&again), digest);
    sh(d, "cp -r ext ext-copy && touch -d '2001-01-01' ext-copy/bin/run.sh ext-copy/share/doc/README ext-copy");
    let r2 = format!("{}/extensions/nginx:copy", reg.host());
    let copy = cx.run(&["--json", "oci", "push", "ext-copy", &r2, "--insecure", "--annotation", "team=edge"]).ok();
    assert_eq!(digest_of(&copy.json()), digest);
    // The manifest as the registry holds it: the digest printed, annotations from manifest.yaml.
    let raw = sh(
        d,
        &format!(
            "curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://{}/v2/extensions/nginx/manifests/1.2.0",
            reg.host()
        ),
    );
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), digest);
    let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["annotations"]["org.opencontainers.image.version"], "1.2.0");
    assert_eq!(m["annotations"]["org.opencontainers.image.created"], "2026-01-02T03:04:05Z");
    assert_eq!(m["annotations"]["org.opencontainers.image.title"], "nginx");
    assert_eq!(m["annotations"]["team"], "edge");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");

    // ORAS pulls it: the files come out byte for byte.
    oras(d, &format!("c = oras.client.OrasClient(insecure=True)\nc.pull(target='{r}', outdir='by-oras')"));
    std::fs::remove_file(d.join("by-oras/nginx.tar.gz")).ok();
    same_tree(&ext, &d.join("by-oras"));
    // airlock pulls it back.
    let pulled = cx.run(&["--json", "oci", "pull", &r, "-o", "pulled", "--insecure"]).ok().json();
    assert_eq!(digest_of(&pulled), digest);
    same_tree(&ext, &d.join("pulled"));
    assert_eq!(sh(d, "stat -c %a pulled/bin/run.sh"), "755\n");
    // A non-empty target is refused without --force, and left alone.
    cx.run(&["oci", "pull", &r, "-o", "pulled", "--insecure"]).fails(2, "pulled");
    cx.run(&["oci", "pull", &r, "-o", "pulled", "--insecure", "--force"]).ok();

    // airlock pulls what ORAS pushed (a directory and a file).
    std::fs::create_dir_all(d.join("from-oras/sub")).unwrap();
    std::fs::write(d.join("from-oras/sub/a.txt"), "alpha\n").unwrap();
    std::fs::write(d.join("notes.txt"), "notes\n").unwrap();
    let o = format!("{}/oras/pushed:1.0", reg.host());
    oras(
        d,
        &format!("c = oras.client.OrasClient(insecure=True)\nc.push(target='{o}', files=['from-oras', 'notes.txt'])"),
    );
    let got = cx.run(&["--json", "oci", "pull", &o, "-o", "got", "--insecure"]).ok().json();
    let raw = sh(
        d,
        &format!(
            "curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://{}/v2/oras/pushed/manifests/1.0",
            reg.host()
        ),
    );
    assert_eq!(digest_of(&got), Digest::of(raw.as_bytes()).to_string());
    assert_eq!(std::fs::read_to_string(d.join("got/from-oras/sub/a.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read_to_string(d.join("got/notes.txt")).unwrap(), "notes\n");

    // tags, list, inspect.
    let tags = cx.run(&["--json", "oci", "tags", &format!("{}/extensions/nginx", reg.host()), "--insecure"]).ok();
    assert_eq!(tags.json()["tags"], serde_json::json!(["1.2.0", "copy"]));
    let list = cx.run(&["--json", "oci", "list", &reg.host(), "--namespace", "extensions", "--insecure"]).ok();
    assert_eq!(list.json()["repositories"], serde_json::json!(["extensions/nginx"]));
    let inspect = cx.run(&["oci", "inspect", &r, "--insecure"]).ok();
    assert!(inspect.stdout.contains(&digest), "{}", inspect.stdout);
    assert!(inspect.stdout.contains("org.opencontainers.image.version: 1.2.0"), "{}", inspect.stdout);

    // The same push into airlock serve: same digest; ORAS pulls it from there too.
    let scx = TestContext::new();
    let srv = Server::start(&scx, &[]);
    let s = format!("{}/extensions/nginx:1.2.0", srv.addr);
    let env = [("AIRLOCK_REGISTRY_USERNAME", "any"), ("AIRLOCK_REGISTRY_PASSWORD", TOKEN)];
    let pushed = cx.run_env(&["--json", "oci", "push", "ext", &s, "--insecure", "--annotation", "team=edge"], &env);
    assert_eq!(digest_of(&pushed.ok().json()), digest);
    oras(d, &format!("c = oras.client.OrasClient(insecure=True)\nc.pull(target='{s}', outdir='from-serve')"));
    std::fs::remove_file(d.join("from-serve/nginx.tar.gz")).ok();
    same_tree(&ext, &d.join("from-serve"));
    let back = cx.run(&["--json", "oci", "pull", &s, "-o", "serve-pulled", "--insecure"]).ok().json();
    assert_eq!(digest_of(&back), digest);
    same_tree(&ext, &d.join("serve-pulled"));
}

/// Push a crafted layer with ORAS, and check airlock refuses it writing nothing.
#[test]
fn unsafe_layers_are_refused_with_nothing_written() {
    let cx = TestContext::new();
    let d = cx.dir.path();
    let reg = Registry::start(&cx.path("registry"));
    let cases = [
        ("dotdot", "t.addfile(info('../x', b'evil'), io.BytesIO(b'evil'))", "`..`"),
        ("absolute", "t.addfile(info('/tmp/airlock-abs-x', b'evil'), io.BytesIO(b'evil'))", "absolute"),
        (
            "link",
            "l = tarfile.TarInfo('out'); l.type = tarfile.SYMTYPE; l.linkname = '../../etc'; t.addfile(l)",
            "outside",
        ),
        (
            "through",
            "l = tarfile.TarInfo('d'); l.type = tarfile.SYMTYPE; l.linkname = '.'; t.addfile(l)\n    t.addfile(info('d/../../y', b'e'), io.BytesIO(b'e'))",
            "unsafe",
        ),
        (
            "device",
            "l = tarfile.TarInfo('null'); l.type = tarfile.CHRTYPE; l.devmajor = 1; l.devminor = 3; t.addfile(l)",
            "unsafe",
        ),
    ];
    // One ORAS script pushes every case (one interpreter start, not five).
    let mut script = String::from(
        "import tarfile, io\ndef info(n, b):\n    i = tarfile.TarInfo(n); i.size = len(b); return i\nc = oras.client.OrasClient(insecure=True)\n",
    );
    for (name, add, _) in cases {
        let r = format!("{}/evil/{name}:1", reg.host());
        script += &format!(
            "with tarfile.open('{name}.tar.gz', 'w:gz') as t:\n    t.addfile(info('ok.txt', b'fine'), io.BytesIO(b'fine'))\n    {add}\nc.push(target='{r}', files=['{name}.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip'])\n"
        );
    }
    oras(d, &script);
    for (name, _, needle) in cases {
        let r = format!("{}/evil/{name}:1", reg.host());
        let before = sh(d, "ls -a | sort");
        cx.run(&["oci", "pull", &r, "-o", "out", "--insecure"]).fails(2, needle);
        assert_eq!(sh(d, "ls -a | sort"), before, "{name}: a refused pull left something");
        assert!(
            !d.join("out").exists()
                && !Path::new("/tmp/airlock-abs-x").exists()
                && !cx.dir.path().parent().unwrap().join("x").exists()
        );
    }
}

#[test]
fn copy_carries_a_referrer_and_delete_removes() {
    let cx = TestContext::new();
    let d = cx.dir.path();
    let a = Registry::start(&cx.path("a"));
    let b = Registry::start(&cx.path("b"));
    extension(&cx.path("ext"));
    let src = format!("{}/extensions/nginx:1.2.0", a.host());
    let pushed = cx.run(&["--json", "oci", "push", "ext", &src, "--insecure"]).ok().json();
    let (subject, size) = (digest_of(&pushed), pushed["size"].as_u64().unwrap());
    // A referrer (a signature-like artifact) whose subject is the artifact.
    std::fs::write(d.join("sig.json"), "{\"signed\":true}").unwrap();
    let sig = Digest::of(b"{\"signed\":true}");
    let empty = Digest::of(b"{}");
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/json", "digest": sig.to_string(), "size": 15}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": size},
    });
    std::fs::write(d.join("ref.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    std::fs::write(d.join("empty.json"), "{}").unwrap();
    let h = a.host();
    for (file, dg) in [("sig.json", sig.to_string()), ("empty.json", empty.to_string())] {
        let loc = sh(
            d,
            &format!(
                "curl -sf -X POST -D - -o /dev/null http://{h}/v2/extensions/nginx/blobs/uploads/ | tr -d '\\r' | sed -n 's/^Location: //ip'"
            ),
        );
        let loc = loc.trim();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = if loc.starts_with("http") { loc.to_string() } else { format!("http://{h}{loc}") };
        sh(
            d,
            &format!(
                "curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @{file} '{url}{sep}digest={dg}'"
            ),
        );
    }
    let rd = Digest::of(&std::fs::read(d.join("ref.json")).unwrap()).to_string();
    sh(
        d,
        &format!(
            "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @ref.json http://{h}/v2/extensions/nginx/manifests/{rd}"
        ),
    );
    // docker-registry has no referrers API: the referrer is listed under the fallback tag.
    let size = std::fs::metadata(d.join("ref.json")).unwrap().len();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": rd, "size": size,
                       "artifactType": "application/vnd.example.signature"}]});
    std::fs::write(d.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let fallback = format!("sha256-{}", &subject["sha256:".len()..]);
    sh(
        d,
        &format!(
            "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary @index.json http://{h}/v2/extensions/nginx/manifests/{fallback}"
        ),
    );
    let inspect = cx.run(&["--json", "oci", "inspect", &src, "--insecure"]).ok().json();
    assert_eq!(inspect["referrers"][0]["digest"], rd.as_str(), "{inspect}");

    let dst = format!("{}/mirror/nginx:1.2.0", b.host());
    let copied = cx.run(&["--json", "oci", "copy", &src, &dst, "--insecure"]).ok().json();
    assert_eq!(digest_of(&copied), subject);
    assert_eq!(copied["referrers"], serde_json::json!([rd]));
    let there = cx.run(&["--json", "oci", "inspect", &dst, "--insecure"]).ok().json();
    assert_eq!(there["referrers"][0]["digest"], rd.as_str(), "{there}");
    cx.run(&["oci", "pull", &dst, "-o", "copied", "--insecure"]).ok();
    same_tree(&cx.path("ext"), &cx.path("copied"));
    // Again: nothing left to copy.
    let again = cx.run(&["--json", "oci", "copy", &src, &dst, "--insecure"]).ok().json();
    assert_eq!(again["bytes_copied"], 0);

    cx.run(&["oci", "delete", &dst, "--insecure"]).ok();
    cx.run(&["oci", "pull", &dst, "-o", "gone", "--insecure"]).fails(2, "mirror/nginx");
}

#[test]
fn login_writes_an_auth_file_skopeo_accepts() {
    require("skopeo");
    let cx = TestContext::new();
    let d = cx.dir.path();
    let reg = Registry::start_with_auth(&cx.path("registry"), "site", "s3cret");
    let auth = cx.path("auth/config.json");
    std::fs::create_dir_all(cx.path("auth")).unwrap();
    std::fs::write(&auth, "{\"auths\":{\"other.example\":{\"auth\":\"eDp5\"}}}").unwrap();
    let login = |pw: &str| {
        let mut c = cx.command();
        c.args(["oci", "login", &reg.host(), "-u", "site", "--password-stdin", "--insecure", "--authfile"])
            .arg(&auth)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(pw.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = login("wrong\n");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refused"));
    assert!(!std::fs::read_to_string(&auth).unwrap().contains(&reg.host()), "a refused login wrote nothing");
    assert!(login("s3cret\n").status.success());
    assert_eq!(sh(d, &format!("stat -c %a {}", auth.display())), "600\n");
    let file = std::fs::read_to_string(&auth).unwrap();
    assert!(file.contains("other.example"), "merged, not replaced: {file}");
    // skopeo reads it; airlock pushes with it too.
    extension(&cx.path("ext"));
    let r = format!("{}/extensions/nginx:1.2.0", reg.host());
    cx.run_env(&["oci", "push", "ext", &r, "--insecure"], &[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())]).ok();
    let raw = sh(d, &format!("skopeo inspect --raw --tls-verify=false --authfile {} docker://{r}", auth.display()));
    assert!(raw.contains("application/vnd.airlock.artifact.v1"), "{raw}");
}
