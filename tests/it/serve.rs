//! `airlock serve` with real clients: skopeo pulls and pushes, git clones, curl reads and
//! writes raw files; tokens, traversal and digest checks.

use std::path::Path;
use std::process::Command;

use airlock::digest::Digest;

use crate::common::server::{Server, TOKEN};
use crate::common::{TestContext, require, sh};

/// The fixtures imported into the store: files, a git repository, an image.
fn imported() -> TestContext {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    cx
}

fn curl(dir: &Path, args: &str) -> String {
    require("curl");
    sh(dir, &format!("curl -s -o /dev/null -w '%{{http_code}}' {args}"))
}

fn fixture_image_digest() -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(crate::common::root().join("fixtures/images/hello/index.json")).unwrap())
            .unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn real_clients_read_what_import_loaded() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    assert_eq!(sh(d, &format!("curl -sf {}", srv.url("/healthz"))), "ok\n");
    // OCI: skopeo reads the imported image, by tag, with its upstream digest.
    let raw = sh(d, &format!("skopeo inspect --raw --tls-verify=false docker://{}/hello/hello:1.0", srv.addr));
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), fixture_image_digest());
    sh(
        d,
        &format!(
            "skopeo copy --quiet --all --src-tls-verify=false docker://{}/hello/hello:1.0 oci:pulled:1.0",
            srv.addr
        ),
    );
    let tags = sh(d, &format!("curl -sf '{}'", srv.url("/v2/hello/hello/tags/list")));
    assert!(tags.contains("\"1.0\""), "{tags}");
    // git: a plain clone over HTTP.
    sh(d, &format!("git clone -q {} cloned", srv.url("/git/hello.git")));
    assert!(d.join("cloned/hello.c").is_file());
    // raw: the imported files, with Range.
    let notice = sh(d, &format!("curl -sf {}", srv.url("/repository/raw/licenses/NOTICE.txt")));
    assert_eq!(notice.as_bytes(), std::fs::read(crate::common::root().join("fixtures/files/NOTICE.txt")).unwrap());
    assert_eq!(sh(d, &format!("curl -sf -r 0-10 {}", srv.url("/repository/raw/licenses/NOTICE.txt"))), "Third-party");
}

#[test]
fn writes_need_a_token_and_a_matching_digest() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    // raw PUT: 401 without a token, 201 with one, then served; the same bytes again are 200.
    let put = format!("-X PUT --data-binary @/etc/hostname {}", srv.url("/repository/drop/etc/hostname"));
    assert_eq!(curl(d, &put), "401");
    assert_eq!(curl(d, &format!("-u any:{TOKEN} {put}")), "201");
    assert_eq!(curl(d, &format!("-H 'Authorization: Bearer {TOKEN}' {put}")), "200");
    assert_eq!(
        sh(d, &format!("curl -sf {}", srv.url("/repository/drop/etc/hostname"))).as_bytes(),
        std::fs::read("/etc/hostname").unwrap()
    );
    // No path leaves the store.
    for p in [
        "/repository/raw/../../../etc/passwd",
        "/repository/raw/%2e%2e/%2e%2e/etc/passwd",
        "/git/hello.git/../../../../etc/passwd",
        "/git/..%2f..%2fetc/passwd",
    ] {
        let code = curl(d, &format!("--path-as-is '{}'", srv.url(p)));
        assert!(code == "400" || code == "404", "{p}: {code}");
    }
    // OCI push: skopeo needs the token; with it the image lands with its digest.
    let layout = crate::common::root().join("fixtures/images/hello");
    let push = format!(
        "skopeo copy --quiet --all --dest-tls-verify=false oci:{}:1.0 docker://{}/pushed/hello:2.0",
        layout.display(),
        srv.addr
    );
    let denied = Command::new("sh").arg("-c").arg(&push).output().unwrap();
    assert!(!denied.status.success(), "a push without a token must fail");
    sh(d, &format!("{push} --dest-creds any:{TOKEN}"));
    let raw = sh(d, &format!("skopeo inspect --raw --tls-verify=false docker://{}/pushed/hello:2.0", srv.addr));
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), fixture_image_digest());
    // An upload whose bytes do not match its digest is refused, and nothing appears.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let auth = format!("-u any:{TOKEN}");
    let code = curl(
        d,
        &format!(
            "{auth} -X POST --data-binary @/etc/hostname '{}?digest={wrong}'",
            srv.url("/v2/pushed/hello/blobs/uploads/")
        ),
    );
    assert_eq!(code, "400");
    assert_eq!(curl(d, &srv.url(&format!("/v2/pushed/hello/blobs/{wrong}"))), "404");
    // A manifest naming a blob that was never pushed is refused.
    let bad = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{wrong}","size":2}},"layers":[]}}"#
    );
    std::fs::write(cx.path("bad.json"), bad).unwrap();
    let code = curl(
        d,
        &format!(
            "{auth} -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @bad.json {}",
            srv.url("/v2/pushed/hello/manifests/bad")
        ),
    );
    assert_eq!(code, "400");
}

#[test]
fn referrers_api_lists_manifests_that_name_a_subject() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    let auth = format!("-u any:{TOKEN}");
    let subject = fixture_image_digest();
    // A signature-like artifact: the empty config, one layer, `subject` = the image.
    let push = |file: &str, bytes: &[u8]| {
        std::fs::write(cx.path(file), bytes).unwrap();
        let digest = Digest::of(bytes);
        let url = srv.url(&format!("/v2/hello/hello/blobs/uploads/?digest={digest}"));
        assert_eq!(curl(d, &format!("{auth} -X POST --data-binary @{file} '{url}'")), "201");
        (digest, bytes.len())
    };
    let (config, config_size) = push("empty.json", b"{}");
    let (layer, layer_size) = push("sig.bin", b"a detached signature");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.signature","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/octet-stream","digest":"{layer}","size":{layer_size}}}],"subject":{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{subject}","size":517}},"annotations":{{"org.example.signer":"site"}}}}"#
    );
    std::fs::write(cx.path("referrer.json"), &manifest).unwrap();
    let referrer = Digest::of(manifest.as_bytes());
    let headers = sh(
        d,
        &format!(
            "curl -sf -D - -o /dev/null {auth} -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @referrer.json {}",
            srv.url(&format!("/v2/hello/hello/manifests/{referrer}"))
        ),
    );
    assert!(headers.to_ascii_lowercase().contains(&format!("oci-subject: {subject}")), "{headers}");

    let list = sh(d, &format!("curl -sf {}", srv.url(&format!("/v2/hello/hello/referrers/{subject}"))));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["mediaType"], "application/vnd.oci.image.index.v1+json");
    let m = list["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{list}");
    assert_eq!(m[0]["digest"], referrer.to_string());
    assert_eq!(m[0]["size"], manifest.len());
    assert_eq!(m[0]["artifactType"], "application/vnd.example.signature");
    assert_eq!(m[0]["annotations"]["org.example.signer"], "site");
    // Filtered by artifactType; other repositories and subjects have none.
    let other = sh(
        d,
        &format!(
            "curl -sf -D - '{}'",
            srv.url(&format!("/v2/hello/hello/referrers/{subject}?artifactType=application/x-other"))
        ),
    );
    assert!(other.to_ascii_lowercase().contains("oci-filters-applied: artifacttype"), "{other}");
    assert!(other.contains(r#""manifests":[]"#), "{other}");
    let encoded = sh(
        d,
        &format!(
            "curl -sf '{}'",
            srv.url(&format!("/v2/hello/hello/referrers/{subject}?artifactType=application%2Fvnd.example.signature"))
        ),
    );
    assert!(encoded.contains(&referrer.to_string()), "{encoded}");
    let none = sh(d, &format!("curl -sf {}", srv.url(&format!("/v2/other/repo/referrers/{subject}"))));
    assert!(none.contains(r#""manifests":[]"#), "{none}");
    // The referrer itself pulls like any manifest; `referrers` can still name a repository.
    assert_eq!(curl(d, &srv.url(&format!("/v2/hello/hello/manifests/{referrer}"))), "200");
    assert_eq!(curl(d, &srv.url(&format!("/v2/team/referrers/app/blobs/{config}"))), "200");
}

#[test]
fn uploads_larger_than_the_bound_are_refused_and_leave_nothing() {
    let cx = imported();
    let srv = Server::start(&cx, &["--max-upload", "1KiB"]);
    let d = cx.dir.path();
    let auth = format!("-u any:{TOKEN}");
    std::fs::write(cx.path("big.bin"), vec![7u8; 4096]).unwrap();
    std::fs::write(cx.path("small.bin"), vec![7u8; 512]).unwrap();
    let put = |file: &str, path: &str| curl(d, &format!("{auth} -T {file} {}", srv.url(path)));
    assert_eq!(put("big.bin", "/repository/raw/up/big.bin"), "413");
    assert_eq!(curl(d, &srv.url("/repository/raw/up/big.bin")), "404");
    assert_eq!(put("small.bin", "/repository/raw/up/small.bin"), "201");
    let big = Digest::of(&[7u8; 4096]);
    let post =
        format!("{auth} -X POST --data-binary @big.bin '{}'", srv.url(&format!("/v2/x/y/blobs/uploads/?digest={big}")));
    assert_eq!(curl(d, &post), "413");
    assert_eq!(curl(d, &srv.url(&format!("/v2/x/y/blobs/{big}"))), "404");
}

#[test]
fn anonymous_reads_can_be_switched_off() {
    let cx = imported();
    let srv = Server::start(&cx, &["--no-anonymous-read"]);
    let d = cx.dir.path();
    assert_eq!(curl(d, &srv.url("/repository/raw/licenses/NOTICE.txt")), "401");
    assert_eq!(curl(d, &format!("-u any:{TOKEN} {}", srv.url("/repository/raw/licenses/NOTICE.txt"))), "200");
    assert_eq!(curl(d, &srv.url("/v2/")), "401");
    sh(
        d,
        &format!(
            "skopeo inspect --raw --tls-verify=false --creds any:{TOKEN} docker://{}/hello/hello:1.0 >/dev/null",
            srv.addr
        ),
    );
}

#[test]
fn import_can_target_a_running_server() {
    let site = imported();
    let srv = Server::start(&site, &[]);
    // Another bundle, imported from elsewhere into the running server over HTTP.
    let factory = TestContext::new();
    factory.key();
    let spec = factory.fixtures();
    let bundle = factory.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    let other = TestContext::new();
    crate::common::copy_dir(&factory.config().join("trusted"), &other.config().join("trusted"));
    other.run(&["key", "apt", "generate", "--no-password"]).ok();
    let env = [
        ("AIRLOCK_REGISTRY_USERNAME", "importer"),
        ("AIRLOCK_REGISTRY_PASSWORD", TOKEN),
        ("AIRLOCK_RAW_USERNAME", "importer"),
        ("AIRLOCK_RAW_PASSWORD", TOKEN),
    ];
    let args = [
        "--json",
        "import",
        bundle.to_str().unwrap(),
        "--oci-registry",
        &format!("{}/mirror", srv.addr),
        "--oci-insecure",
        "--raw-url",
        &srv.url("/repository/incoming/"),
    ];
    let r = other.run_env(&args, &env).ok().json();
    assert!(r["artifacts"].as_array().unwrap().iter().any(|a| a["kind"] == "image" && a["action"] == "added"), "{r}");
    let d = site.dir.path();
    let raw = sh(d, &format!("skopeo inspect --raw --tls-verify=false docker://{}/mirror/hello/hello:1.0", srv.addr));
    assert_eq!(Digest::of(raw.as_bytes()).to_string(), fixture_image_digest());
    let tool = sh(d, &format!("curl -sf {}", srv.url("/repository/incoming/bin/amd64/tool-2.3")));
    assert_eq!(tool.as_bytes(), std::fs::read(crate::common::root().join("fixtures/files/tool-2.3-amd64")).unwrap());
    // Again: nothing moves.
    let again = other.run_env(&args, &env).ok().json();
    assert_eq!(again["registry"]["bytesUploaded"], 0);
    assert_eq!(again["added"], 0, "{again}");
}

#[test]
fn serves_https_with_a_given_certificate() {
    let cx = imported();
    let d = cx.dir.path();
    require("openssl");
    sh(
        d,
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=airlock-test \
         -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem 2>/dev/null",
    );
    let srv = Server::start(&cx, &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let https = |p: &str| format!("https://{}{p}", srv.addr);
    assert_eq!(sh(d, &format!("curl -sf --cacert cert.pem {}", https("/healthz"))), "ok\n");
    // Plain HTTP to a TLS port gets nowhere, and an untrusted certificate is refused.
    assert!(!Command::new("curl").args(["-sf", &format!("http://{}/healthz", srv.addr)]).status().unwrap().success());
    assert!(!Command::new("curl").args(["-sf", &https("/healthz")]).status().unwrap().success());
    sh(d, &format!("GIT_SSL_CAINFO=cert.pem git clone -q {} tls-clone", https("/git/hello.git")));
    sh(
        d,
        &format!(
            "skopeo inspect --raw --cert-dir . --tls-verify=false docker://{}/hello/hello:1.0 >/dev/null",
            srv.addr
        ),
    );
}

/// `curl` with the status and the body's first line, for answers that must say why.
fn curl_said(dir: &Path, args: &str) -> (String, String) {
    require("curl");
    let out = sh(dir, &format!("curl -s -w '\\n%{{http_code}}' {args}"));
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.to_string(), body.lines().next().unwrap_or("").to_string())
}

#[test]
fn raw_puts_never_replace_a_file_and_go_only_into_raw_repositories() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    let auth = format!("-u any:{TOKEN}");
    std::fs::write(cx.path("one.txt"), "one\n").unwrap();
    std::fs::write(cx.path("two.txt"), "two\n").unwrap();
    let put = |file: &str, path: &str| curl_said(d, &format!("{auth} -T {file} {}", srv.url(path)));
    assert_eq!(put("one.txt", "/repository/raw/new/x.txt").0, "201");
    assert_eq!(put("one.txt", "/repository/raw/new/x.txt").0, "200", "the same bytes again");
    let (code, said) = put("two.txt", "/repository/raw/new/x.txt");
    assert_eq!(code, "409");
    assert!(said.contains("raw/new/x.txt") && said.contains("already exists with other content"), "{said}");
    assert_eq!(sh(d, &format!("curl -sf {}", srv.url("/repository/raw/new/x.txt"))), "one\n");
    // An imported file is not replaced either.
    assert_eq!(put("two.txt", "/repository/raw/licenses/NOTICE.txt").0, "409");
    assert_eq!(put("two.txt", "/repository/raw/licenses").0, "409", "a directory");
    assert_eq!(put("two.txt", "/repository/raw/licenses/NOTICE.txt/x").0, "409", "under a file");

    // Python indexes and the apt repository are written by import (and twine's form) only.
    let before = cx.store_files();
    for (path, what) in [
        ("/repository/pypi/simple/aldemo-app/index.html", "is a Python index"),
        ("/repository/pypi/files/new/x.whl", "is a Python index"),
        ("/repository/apt/pool/main/x.deb", "is an apt repository"),
        ("/repository/apt/dists/fixtures/InRelease", "is an apt repository"),
        ("/repository/raw/simple/x/index.html", "where an index keeps its pages"),
        ("/repository/fresh/dists/x/Release", "where an index keeps its pages"),
    ] {
        let (code, said) = put("two.txt", path);
        assert_eq!(code, "405", "{path}: {said}");
        assert!(said.contains(what), "{path}: {said}");
    }
    // Names the store keeps for its temporary files are neither written nor read.
    let reserved = "/repository/raw/new/.airlock-x.tmp";
    let (code, said) = put("two.txt", reserved);
    assert_eq!(code, "400", "{said}");
    assert!(said.contains("starts with `.airlock-`, which airlock keeps for its temporary files"), "{said}");
    assert_eq!(curl_said(d, &srv.url(reserved)).0, "400");
    assert_eq!(put("two.txt", "/repository/..%2Fx/a.txt").0, "400", "a repository name with `/`");
    // Nor does twine's form go into a raw repository.
    let wheel = crate::common::root().join("fixtures/python/files/aldemo_lib-1.0-py3-none-any.whl");
    let (code, said) = curl_said(
        d,
        &format!("{auth} -F ':action=file_upload' -F 'content=@{}' {}", wheel.display(), srv.url("/repository/raw/")),
    );
    assert_eq!(code, "405", "{said}");
    assert_eq!(cx.store_files(), before, "nothing changed");
}

/// A token file: one hash per line with its scopes.
fn token_file(cx: &TestContext, tokens: &[(&str, &str)]) -> String {
    let text: String =
        tokens.iter().map(|(t, scopes)| format!("sha256:{} {scopes}\n", Digest::of(t.as_bytes()).hex())).collect();
    let path = cx.path("scoped-tokens");
    std::fs::write(&path, format!("# token scopes\n{text}")).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn scoped_tokens_write_only_where_they_may() {
    let cx = imported();
    let file = token_file(
        &cx,
        &[
            ("files-team-token-0001", "write:repository/files"),
            ("reader-token-00000001", "read:*"),
            ("kolla-team-token-0001", "write:v2/kolla/ read:repository/raw"),
        ],
    );
    let srv = Server::start_env(
        &cx,
        &["--no-anonymous-read", "--token-file", &file],
        &[("AIRLOCK_SERVE_TOKEN", "env-token-writes-everything")],
    );
    let d = cx.dir.path();
    std::fs::write(cx.path("a.txt"), "a\n").unwrap();
    let put = |token: &str, path: &str| curl(d, &format!("-u any:{token} -T a.txt {}", srv.url(path)));
    let get = |token: &str, path: &str| curl(d, &format!("-u any:{token} {}", srv.url(path)));
    assert_eq!(put("files-team-token-0001", "/repository/files/src/a.txt"), "201");
    assert_eq!(put("files-team-token-0001", "/repository/files-old/a.txt"), "403");
    assert_eq!(put("files-team-token-0001", "/repository/raw/a.txt"), "403");
    assert_eq!(get("files-team-token-0001", "/repository/files/src/a.txt"), "200", "write implies read");
    assert_eq!(get("files-team-token-0001", "/repository/raw/licenses/NOTICE.txt"), "403");
    assert_eq!(put("reader-token-00000001", "/repository/files/src/b.txt"), "403", "a read-only token");
    assert_eq!(get("reader-token-00000001", "/repository/raw/licenses/NOTICE.txt"), "200");
    assert_eq!(get("kolla-team-token-0001", "/repository/raw/licenses/NOTICE.txt"), "200");
    assert_eq!(put("not-a-known-token-0001", "/repository/files/src/c.txt"), "401");
    assert_eq!(put("env-token-writes-everything", "/repository/raw/env/a.txt"), "201", "AIRLOCK_SERVE_TOKEN");
    assert_eq!(put(TOKEN, "/repository/raw/hashes/a.txt"), "201", "--token-hashes");

    // The registry: a token for v2/kolla/ pushes there, and nowhere else.
    let layout = crate::common::root().join("fixtures/images/hello");
    let push = |dest: &str, token: &str| {
        Command::new("skopeo")
            .args(["copy", "--quiet", "--all", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("any:{token}"))
            .arg(format!("oci:{}:1.0", layout.display()))
            .arg(format!("docker://{}/{dest}", srv.addr))
            .output()
            .unwrap()
    };
    let ok = push("kolla/hello:1.0", "kolla-team-token-0001");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(!push("other/hello:1.0", "kolla-team-token-0001").status.success());
    assert!(!push("kolla/hello:2.0", "reader-token-00000001").status.success());
    assert_eq!(curl(d, &format!("-u any:reader-token-00000001 {}", srv.url("/v2/kolla/hello/manifests/1.0"))), "200");
    assert_eq!(curl(d, &format!("-u any:reader-token-00000001 {}", srv.url("/v2/other/hello/manifests/1.0"))), "404");
}

#[test]
fn writes_wait_for_a_running_import_then_answer_503() {
    let cx = imported();
    let srv = Server::start(&cx, &["--write-lock-wait", "300ms"]);
    let d = cx.dir.path();
    // Hold the store's lock as `airlock import` does.
    let lock = std::fs::File::create(cx.store().join(".import.lock")).unwrap();
    lock.lock().unwrap();
    std::fs::write(cx.path("a.txt"), "a\n").unwrap();
    let headers = sh(
        d,
        &format!("curl -s -D - -o /dev/null -u any:{TOKEN} -T a.txt {}", srv.url("/repository/raw/locked/a.txt")),
    );
    assert!(headers.contains("HTTP/1.1 503 Service Unavailable"), "{headers}");
    assert!(headers.to_ascii_lowercase().contains("retry-after: "), "{headers}");
    assert_eq!(curl(d, &srv.url("/repository/raw/locked/a.txt")), "404", "nothing was written");
    assert_eq!(curl(d, &srv.url("/repository/raw/licenses/NOTICE.txt")), "200", "reads go on");
    drop(lock);
    assert_eq!(curl(d, &format!("-u any:{TOKEN} -T a.txt {}", srv.url("/repository/raw/locked/a.txt"))), "201");
}

#[test]
fn a_refused_upload_is_answered_not_cut_off() {
    // airlock's own uploader sends its body at once: the server must read it (up to a
    // bound) before it answers 401, or the client sees a reset connection ("send failed
    // because receiver is gone") instead of the answer.
    let site = imported();
    let srv = Server::start(&site, &[]);
    let factory = TestContext::new();
    factory.key();
    std::fs::create_dir_all(factory.path("spec")).unwrap();
    std::fs::write(factory.path("spec/big.bin"), vec![7u8; 14 << 20]).unwrap();
    let spec = factory.spec("name: big\nversion: \"1\"\nfiles:\n  - path: big.bin\n    source: big.bin\n");
    let bundle = factory.bundle(&spec, "out", &[]).join("big-1.airlock");
    let args = ["import", bundle.to_str().unwrap(), "--raw-url", &srv.url("/repository/incoming/")];
    for _ in 0..3 {
        factory
            .run_env(&args, &[("AIRLOCK_RAW_USERNAME", "x"), ("AIRLOCK_RAW_PASSWORD", "not-the-token")])
            .fails(2, "401 Unauthorized");
    }
    // curl sends `Expect: 100-continue` and waits: the 401 comes before any body is sent.
    let d = site.dir.path();
    let (code, said) = curl_said(
        d,
        &format!("-u any:wrong -T {} {}", factory.path("spec/big.bin").display(), srv.url("/repository/raw/big.bin")),
    );
    assert_eq!((code.as_str(), said.as_str()), ("401", "authentication required"));
}

/// Run git with no configuration but this test's identity; returns the whole output.
fn git_out(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    require("git");
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Site Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@site.example")
        .env("GIT_COMMITTER_NAME", "Site Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@site.example")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[track_caller]
fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git_out(dir, args, &[]);
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn git_smart_http_clones_shallow_and_partial_over_v2_and_pushes_fast_forward_only_unless_allowed() {
    let cx = imported();
    let file =
        token_file(&cx, &[("hello-pusher-token-01", "write:git/hello"), ("other-pusher-token-01", "write:git/other")]);
    let srv = Server::start(&cx, &["--token-file", &file]);
    let d = cx.dir.path();
    let url = srv.url("/git/hello.git");
    let with = |token: &str| format!("http://any:{token}@{}/git/hello.git", srv.addr);
    let served = cx.store().join("git/hello.git");
    let main_on_server = || git_ok(&served, &["rev-parse", "refs/heads/main"]);

    // A shallow clone over protocol v2.
    let out = git_out(
        d,
        &["-c", "protocol.version=2", "clone", "--depth", "1", &url, "shallow"],
        &[("GIT_TRACE_PACKET", "1")],
    );
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    assert!(trace.contains("version 2"), "protocol v2 was not spoken:\n{trace}");
    let shallow = d.join("shallow");
    assert_eq!(git_ok(&shallow, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git_ok(&shallow, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(git_ok(&shallow, &["rev-parse", "HEAD"]), main_on_server());
    // A partial clone: no blobs until checkout asks for them, fetched lazily.
    git_ok(d, &["clone", "--filter=blob:none", &url, "partial"]);
    assert_eq!(git_ok(&d.join("partial"), &["config", "remote.origin.promisor"]), "true");
    assert!(d.join("partial/hello.c").is_file());

    // Pushes: a fast-forward with the repository's write token goes in.
    let work = d.join("work");
    git_ok(d, &["clone", "-q", &url, "work"]);
    std::fs::write(work.join("NEWS"), "pushed from the site\n").unwrap();
    git_ok(&work, &["add", "NEWS"]);
    git_ok(&work, &["commit", "-qm", "news"]);
    let pushed = git_ok(&work, &["rev-parse", "HEAD"]);
    let before = main_on_server();
    let anonymous = git_out(&work, &["push", &url, "main"], &[]);
    assert!(!anonymous.status.success(), "a push without a token must fail");
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(said.contains("could not read Username"), "git was asked for credentials: {said}");
    let other = git_out(&work, &["push", &with("other-pusher-token-01"), "main"], &[]);
    assert!(!other.status.success(), "a token for another repository must not push here");
    assert!(String::from_utf8_lossy(&other.stderr).contains("403"), "{}", String::from_utf8_lossy(&other.stderr));
    assert_eq!(main_on_server(), before, "refused pushes changed nothing");
    git_ok(&work, &["push", "-q", &with("hello-pusher-token-01"), "main"]);
    assert_eq!(main_on_server(), pushed);
    // The shallow clone fetches it; the dumb-HTTP fallback sees it too.
    git_ok(&shallow, &["fetch", "-q", "origin"]);
    assert_eq!(git_ok(&shallow, &["rev-parse", "origin/main"]), pushed);
    let dumb = git_out(d, &["clone", "-q", &url, "dumb"], &[("GIT_SMART_HTTP", "0")]);
    assert!(dumb.status.success(), "{}", String::from_utf8_lossy(&dumb.stderr));
    assert_eq!(git_ok(&d.join("dumb"), &["rev-parse", "HEAD"]), pushed);

    // History is not rewritten, nor refs deleted, even with the token.
    git_ok(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(work.join("OTHER"), "another history\n").unwrap();
    git_ok(&work, &["add", "OTHER"]);
    git_ok(&work, &["commit", "-qm", "rewrite"]);
    let forced = git_out(&work, &["push", "--force", &with("hello-pusher-token-01"), "main"], &[]);
    assert!(!forced.status.success(), "a non-fast-forward push must be refused");
    let said = String::from_utf8_lossy(&forced.stderr);
    assert!(said.contains("non-fast-forward"), "{said}");
    let deleted = git_out(&work, &["push", &with("hello-pusher-token-01"), ":stable/1.0"], &[]);
    assert!(!deleted.status.success(), "deleting a branch must be refused");
    assert_eq!(main_on_server(), pushed);
    assert!(git_out(&served, &["rev-parse", "--verify", "refs/heads/stable/1.0"], &[]).status.success());

    // Unless the server allows it.
    drop(srv);
    let srv = Server::start(&cx, &["--git-allow-force"]);
    let url = format!("http://any:{TOKEN}@{}/git/hello.git", srv.addr);
    git_ok(&work, &["push", "-q", "--force", &url, "main"]);
    assert_eq!(main_on_server(), git_ok(&work, &["rev-parse", "HEAD"]));
    git_ok(&work, &["push", "-q", &url, ":stable/1.0"]);
    assert!(!git_out(&served, &["rev-parse", "--verify", "refs/heads/stable/1.0"], &[]).status.success());
}

/// `curl -D -` of `url` with extra args: (status line code, headers lowercased, body file).
fn fetch(dir: &Path, args: &str, url: &str) -> (String, String, Vec<u8>) {
    require("curl");
    let _ = std::fs::remove_file(dir.join("fetched"));
    let head = sh(dir, &format!("curl -s -D - -o fetched {args} '{url}'"));
    let code = head.split_whitespace().nth(1).unwrap_or_default().to_string();
    (code, head.to_lowercase(), std::fs::read(dir.join("fetched")).unwrap_or_default())
}

fn etag_of(headers: &str) -> String {
    headers.lines().find_map(|l| l.strip_prefix("etag: ")).map(|t| t.trim().to_string()).expect("an ETag header")
}

#[test]
fn validators_answer_304_and_ranges_still_work() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    // A blob larger than one read chunk, pushed, then read back whole, by range, and
    // conditionally.
    let big: Vec<u8> = (0..700_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(d.join("big.bin"), &big).unwrap();
    let digest = Digest::of(&big);
    let push = format!(
        "-u any:{TOKEN} -X POST --data-binary @big.bin '{}?digest={digest}'",
        srv.url("/v2/etag/test/blobs/uploads/")
    );
    assert_eq!(curl(d, &push), "201");
    let url = srv.url(&format!("/v2/etag/test/blobs/{digest}"));
    let (code, headers, body) = fetch(d, "", &url);
    assert_eq!(code, "200");
    assert!(body == big, "the blob comes back byte for byte ({} of {} bytes)", body.len(), big.len());
    assert!(headers.contains(&format!("content-length: {}", big.len())), "{headers}");
    let etag = etag_of(&headers);
    assert_eq!(etag, format!("\"{digest}\""));
    let (code, _, body) = fetch(d, &format!("-H 'If-None-Match: {etag}'"), &url);
    assert_eq!((code.as_str(), body.len()), ("304", 0), "a matching If-None-Match gets 304 and no body");
    let (code, _, body) = fetch(d, "-H 'If-None-Match: \"sha256:other\", W/\"x\"'", &url);
    assert!(code == "200" && body == big, "another ETag gets the bytes");
    let (code, headers, body) = fetch(d, "-r 300000-300099", &url);
    assert_eq!(code, "206");
    assert_eq!(body, &big[300_000..300_100]);
    assert!(headers.contains("content-range: bytes 300000-300099/700000"), "{headers}");
    assert_eq!(fetch(d, "-r 800000-800001", &url).0, "416");
    let (code, headers, _) = fetch(d, "-I", &url);
    assert!(code == "200" && headers.contains("content-length: 700000"), "{headers}");

    // A small blob and a manifest (by tag: its ETag is its digest).
    let manifest_url = srv.url("/v2/hello/hello/manifests/1.0");
    let accept = "-H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json'";
    let (code, headers, manifest) = fetch(d, accept, &manifest_url);
    assert_eq!(code, "200");
    let etag = etag_of(&headers);
    assert_eq!(etag, format!("\"{}\"", Digest::of(&manifest)));
    assert_eq!(fetch(d, &format!("{accept} -H 'If-None-Match: {etag}'"), &manifest_url).0, "304");
    let index: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let child = index["manifests"][0]["digest"].as_str().unwrap();
    let (_, _, child) = fetch(d, accept, &srv.url(&format!("/v2/hello/hello/manifests/{child}")));
    let config: serde_json::Value = serde_json::from_slice(&child).unwrap();
    let config = config["config"]["digest"].as_str().unwrap().to_string();
    let small_url = srv.url(&format!("/v2/hello/hello/blobs/{config}"));
    let (code, headers, small) = fetch(d, "", &small_url);
    assert_eq!(code, "200");
    assert_eq!(Digest::of(&small).to_string(), config);
    assert_eq!(fetch(d, &format!("-H 'If-None-Match: {}'", etag_of(&headers)), &small_url).0, "304");
    assert_eq!(fetch(d, "-r 0-1", &small_url).2, &small[..2]);

    // A raw file: an ETag, 304 on it, the bytes otherwise; Range as before.
    let raw_url = srv.url("/repository/raw/licenses/NOTICE.txt");
    let notice = std::fs::read(crate::common::root().join("fixtures/files/NOTICE.txt")).unwrap();
    let (code, headers, body) = fetch(d, "", &raw_url);
    assert!(code == "200" && body == notice);
    let etag = etag_of(&headers);
    assert_eq!(fetch(d, &format!("-H 'If-None-Match: {etag}'"), &raw_url).0, "304");
    assert_eq!(fetch(d, "-H 'If-None-Match: \"0-0-0.0\"'", &raw_url).2, notice);
    assert_eq!(fetch(d, "-r 0-10", &raw_url).2, b"Third-party");
    // A blob the store does not have is still 404, conditional or not.
    let missing = srv.url(&format!("/v2/hello/hello/blobs/sha256:{}", "1".repeat(64)));
    assert_eq!(fetch(d, "-H 'If-None-Match: *'", &missing).0, "404");
}

#[test]
fn blobs_of_every_size_come_back_whole_and_a_deleted_one_is_gone() {
    let cx = imported();
    let srv = Server::start(&cx, &[]);
    let d = cx.dir.path();
    for size in [0usize, 1, 4096, 65_535, 65_536, 65_537, 1 << 20, (5 << 20) + 3] {
        let bytes: Vec<u8> = (0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        std::fs::write(d.join("blob.bin"), &bytes).unwrap();
        let digest = Digest::of(&bytes);
        let push = format!(
            "-u any:{TOKEN} -X POST --data-binary @blob.bin '{}?digest={digest}'",
            srv.url("/v2/sizes/test/blobs/uploads/")
        );
        assert_eq!(curl(d, &push), "201", "push {size}");
        let url = srv.url(&format!("/v2/sizes/test/blobs/{digest}"));
        for round in 0..2 {
            let (code, _, body) = fetch(d, "", &url);
            assert!(code == "200" && Digest::of(&body) == digest, "{size} bytes, read {round}: {code}, {}", body.len());
        }
        if size > 10 {
            assert_eq!(fetch(d, "-r 1-9", &url).2, &bytes[1..10], "a range of {size}");
        }
        if size == 4096 {
            std::fs::remove_file(cx.store().join("blobs/sha256").join(digest.hex())).unwrap();
            assert_eq!(fetch(d, "", &url).0, "404", "a deleted small blob is gone, cached or not");
        }
    }
}
