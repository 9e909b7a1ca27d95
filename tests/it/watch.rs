//! `airlock watch` end to end: the real binary listening on loopback, upstreams served by
//! a real `git daemon`, docker-registry and nginx, webhooks signed as GitHub, GitLab and
//! Bitbucket sign them, bundles verified and imported with the real CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use airlock::watch::hooks::sign;
use serde_json::{Value, json};

use crate::common::gitd::{GitDaemon, git, make_upstream};
use crate::common::registry::{ImageMaker, Registry, layer, noise};
use crate::common::{TestContext, root, sh};

const SECRET: &str = "github-hook-secret";
const GITLAB: &str = "gitlab-hook-token";
const BITBUCKET: &str = "bitbucket-hook-secret";
const TOKEN: &str = "watch-sync-token-0123456789";
const REGISTRY: &str = "registry-hook-token";

struct Watch {
    child: Child,
    url: String,
    log: PathBuf,
    client: reqwest::blocking::Client,
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AIRLOCK_WATCH_GITHUB_SECRET", SECRET),
        ("AIRLOCK_WATCH_GITLAB_TOKEN", GITLAB),
        ("AIRLOCK_WATCH_BITBUCKET_SECRET", BITBUCKET),
        ("AIRLOCK_WATCH_TOKEN", TOKEN),
        ("AIRLOCK_WATCH_REGISTRY_TOKEN", REGISTRY),
    ]
}

impl Watch {
    fn start(cx: &TestContext, spec: &Path, out: &Path, extra: &[&str]) -> Self {
        let n = std::fs::read_dir(cx.dir.path()).unwrap().count();
        let log = cx.path(&format!("watch-{n}.log"));
        let mut c = cx.command();
        c.args(["watch", "-f", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--retries", "0", "--connect-timeout", "2s"])
            .args(if extra.contains(&"--debounce") { &[][..] } else { &["--debounce", "300ms"][..] })
            .args(extra)
            .envs(env())
            .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .stdin(Stdio::null());
        let child = c.spawn().unwrap();
        airlock::net::install_tls_provider();
        let client = reqwest::blocking::Client::new();
        let mut w = Watch { child, url: String::new(), log, client };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&w.log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|l| l.split(" watch listening addr=").nth(1)) {
                w.url = format!("http://{}", addr.split_whitespace().next().unwrap());
                return w;
            }
            if let Some(status) = w.child.try_wait().unwrap() {
                panic!("airlock watch exited ({status}) before listening: {text}");
            }
            assert!(Instant::now() < deadline, "airlock watch did not start listening: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let mut r = self.client.request(method.parse().unwrap(), format!("{}{path}", self.url)).body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().unwrap();
        let code = resp.status().as_u16();
        let text = resp.text().unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn get(&self, path: &str) -> Value {
        let (code, v) = self.request("GET", path, &[], b"");
        assert_eq!(code, 200, "GET {path}: {v}");
        v
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        self.request("POST", path, headers, body)
    }

    fn sync(&self) {
        let (code, v) = self.post("/sync", &[("authorization", &format!("Bearer {TOKEN}"))], b"");
        assert_eq!(code, 202, "{v}");
    }

    /// The history once it has `n` refreshes and none is running or waiting.
    fn history(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let h = self.get("/history").as_array().unwrap().clone();
            let idle = self.get("/status")["state"] == "idle";
            if h.len() >= n && idle {
                return h;
            }
            assert!(Instant::now() < deadline, "no {n} refreshes within {within:?}: {h:?}\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn term(mut self) -> std::process::ExitStatus {
        sh(Path::new("/"), &format!("kill -TERM {}", self.child.id()));
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bundle files in `out` (not watch's state).
fn bundles(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn manifest_of(cx: &TestContext, bundle: &Path) -> (PathBuf, Value) {
    let dir = cx.path(&format!("unpacked-{}", bundle.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&dir).unwrap();
    sh(&dir, &format!("zstd -dc {} | tar -x", bundle.display()));
    let m = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (dir, m)
}

fn commit(repo: &Path, file: &str) -> String {
    git(repo, &["checkout", "-q", "main"]);
    std::fs::write(repo.join(file), format!("{file}\n")).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-qm", file]);
    git(repo, &["rev-parse", "main"])
}

struct GitWorld {
    cx: TestContext,
    daemon: GitDaemon,
    upstream: PathBuf,
    spec: PathBuf,
    out: PathBuf,
}

fn git_world(extra_entries: &str) -> GitWorld {
    let cx = TestContext::new();
    cx.key();
    let up = cx.path("upstream");
    let upstream = make_upstream(&up);
    let daemon = GitDaemon::start(&up);
    let spec = cx.spec(&format!(
        "name: src\ngit:\n  - url: {}\n    name: service\n    refs: [refs/heads/main]\n{extra_entries}",
        daemon.url("service")
    ));
    let out = cx.path("out");
    GitWorld { cx, daemon, upstream, spec, out }
}

fn github_push(w: &GitWorld, delivery: &str) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let body =
        json!({"ref": "refs/heads/main", "repository": {"clone_url": format!("{}.git", w.daemon.url("service"))}})
            .to_string()
            .into_bytes();
    let headers = vec![
        ("x-github-event", "push".to_string()),
        ("x-github-delivery", delivery.to_string()),
        ("x-hub-signature-256", sign(SECRET.as_bytes(), &body)),
        ("content-type", "application/json".to_string()),
    ];
    (body, headers)
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn signed_github_push_makes_a_delta_of_the_new_commits_that_imports_on_the_previous_bundle() {
    let w = git_world("");
    let cx = &w.cx;
    let watch = Watch::start(cx, &w.spec, &w.out, &["--max-body", "64KiB"]);
    assert_eq!(watch.get("/healthz")["status"], "ok");

    // /sync needs the token.
    assert_eq!(watch.post("/sync", &[], b"").0, 401);
    assert_eq!(watch.post("/sync", &[("authorization", "Bearer not-the-token")], b"").0, 401);
    watch.sync();
    let h = watch.history(1, Duration::from_secs(60));
    assert_eq!(h[0]["result"], "bundle", "{h:?}");
    assert!(h[0]["base"].is_null(), "the first bundle is full: {h:?}");
    let b1 = w.out.join(h[0]["files"][0].as_str().unwrap());
    cx.run(&["verify", b1.to_str().unwrap()]).ok();
    cx.run(&["import", b1.to_str().unwrap()]).ok();
    let site = cx.store().join("git/service.git");
    let old = git(&w.upstream, &["rev-parse", "main"]);
    assert_eq!(git(&site, &["rev-parse", "refs/heads/main"]), old);

    let first = commit(&w.upstream, "one");
    let new = commit(&w.upstream, "two");
    let (body, headers) = github_push(&w, "delivery-1");

    // A wrong signature, a missing one, and an oversized body are refused, before anything runs.
    let mut forged = headers.clone();
    forged[2].1 = sign(b"not-the-secret", &body);
    let (code, v) = watch.post("/hooks/github", &refs(&forged), &body);
    assert_eq!(code, 401, "{v}");
    let unsigned: Vec<_> = refs(&headers).into_iter().filter(|(k, _)| *k != "x-hub-signature-256").collect();
    assert_eq!(watch.post("/hooks/github", &unsigned, &body).0, 401);
    let mut big = json!({"ref": "refs/heads/main", "pad": "x".repeat(70_000)}).to_string().into_bytes();
    big.truncate(70_000);
    let mut big_headers = headers.clone();
    big_headers[2].1 = sign(SECRET.as_bytes(), &big);
    big_headers[1].1 = "delivery-big".into();
    assert_eq!(watch.post("/hooks/github", &refs(&big_headers), &big).0, 413);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(watch.get("/history").as_array().unwrap().len(), 1, "no refresh from refused hooks");
    assert_eq!(watch.get("/status")["state"], "idle");

    // The signed push.
    let (code, v) = watch.post("/hooks/github", &refs(&headers), &body);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["matched"], json!(["git:service"]));
    let h = watch.history(2, Duration::from_secs(60));
    assert_eq!(h[1]["result"], "bundle", "{h:?}");
    assert_eq!(h[1]["changed"], json!(["git:service"]));
    assert_eq!(h[1]["base"], h[0]["files"][0], "differential on the bundle before");
    assert_eq!(h[1]["triggers"][0]["source"], "github");
    assert_eq!(h[1]["triggers"][0]["delivery"], "delivery-1");

    // A replay of the same delivery does nothing.
    let (code, v) = watch.post("/hooks/github", &refs(&headers), &body);
    assert_eq!(code, 401, "{v}");

    let b2 = w.out.join(h[1]["files"][0].as_str().unwrap());
    cx.run(&["verify", b2.to_str().unwrap()]).ok();
    let (dir, m) = manifest_of(cx, &b2);
    let art = &m["artifacts"][0];
    assert_eq!(art["refs"]["refs/heads/main"], new.as_str());
    assert_eq!(art["prerequisites"], json!([old]), "built on the tip the site has");
    assert_eq!(m["blobs"].as_array().unwrap().len(), 1, "only the incremental git bundle: {m}");
    let blob = dir.join("blobs/sha256").join(art["blobs"][0].as_str().unwrap().trim_start_matches("sha256:"));
    // The git bundle holds exactly the two new commits: a repository at the old tip
    // lists them, and nothing else, after fetching from it.
    let probe = cx.path("probe");
    git(cx.dir.path(), &["clone", "-q", "--bare", site.to_str().unwrap(), probe.to_str().unwrap()]);
    git(&probe, &["fetch", "-q", blob.to_str().unwrap(), "refs/heads/main:refs/heads/from-bundle"]);
    assert_eq!(git(&probe, &["rev-list", &format!("{old}..from-bundle")]), format!("{new}\n{first}"));
    let listed = sh(&dir, &format!("git bundle list-heads {}", blob.display()));
    assert!(listed.contains(&new), "{listed}");

    let r = cx.run(&["--json", "import", b2.to_str().unwrap()]).ok().json();
    assert_eq!(git(&site, &["rev-parse", "refs/heads/main"]), new, "{r}");
    git(&site, &["fsck", "--full"]);

    // No further bundle came of the refused requests; SIGTERM stops it cleanly.
    assert_eq!(bundles(&w.out).iter().filter(|f| f.ends_with(".airlock")).count(), 2, "{:?}", bundles(&w.out));
    let log = watch.log_text();
    assert!(watch.term().success(), "{log}");
}

#[test]
fn ten_webhooks_within_a_second_make_one_bundle() {
    let w = git_world("");
    let watch = Watch::start(&w.cx, &w.spec, &w.out, &["--debounce", "1500ms"]);
    watch.sync();
    watch.history(1, Duration::from_secs(60));
    commit(&w.upstream, "burst");
    let requests: Vec<_> = (0..10).map(|i| github_push(&w, &format!("burst-{i}"))).collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for (body, headers) in &requests {
            let watch = &watch;
            s.spawn(move || {
                let (code, v) = watch.post("/hooks/github", &refs(headers), body);
                assert_eq!(code, 202, "{v}");
            });
        }
    });
    assert!(started.elapsed() < Duration::from_secs(1), "sent in {:?}", started.elapsed());
    let h = watch.history(2, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let h2 = watch.get("/history");
    assert_eq!(h2.as_array().unwrap().len(), 2, "one refresh for the burst: {h2}");
    assert_eq!(h[1]["triggers"].as_array().unwrap().len(), 10, "{h:?}");
    assert_eq!(bundles(&w.out).iter().filter(|f| f.ends_with(".airlock")).count(), 2, "{:?}", bundles(&w.out));

    // A refresh that changes nothing makes no bundle; named entries must exist.
    let auth = format!("Bearer {TOKEN}");
    let (code, v) = watch.post("/sync", &[("authorization", &auth)], br#"{"entries": ["nope"]}"#);
    assert_eq!(code, 400, "{v}");
    let (code, v) = watch.post("/sync", &[("authorization", &auth)], br#"{"entries": ["service"]}"#);
    assert_eq!((code, &v["entries"]), (202, &json!(["git:service"])), "{v}");
    let h = watch.history(3, Duration::from_secs(60));
    assert_eq!(h[2]["result"], "unchanged", "{h:?}");
    assert!(h[2]["bundle"].is_null());
    assert_eq!(bundles(&w.out).iter().filter(|f| f.ends_with(".airlock")).count(), 2, "{:?}", bundles(&w.out));
}

#[test]
fn gitlab_token_and_bitbucket_signature_are_accepted_and_refused_alike() {
    let w = git_world("");
    let watch = Watch::start(&w.cx, &w.spec, &w.out, &["--max-body", "16KiB"]);
    let url = format!("{}.git", w.daemon.url("service"));
    let gl = json!({"object_kind": "push", "ref": "refs/heads/main", "project": {"git_http_url": url}}).to_string();
    let gl_headers = |token: &'static str, uuid: &'static str| {
        vec![("x-gitlab-event", "Push Hook"), ("x-gitlab-token", token), ("x-gitlab-event-uuid", uuid)]
    };
    assert_eq!(watch.post("/hooks/gitlab", &gl_headers("wrong-token", "gl-1"), gl.as_bytes()).0, 401);
    assert_eq!(watch.post("/hooks/gitlab", &gl_headers(GITLAB, "gl-big"), "x".repeat(17_000).as_bytes()).0, 413);
    let (code, v) = watch.post("/hooks/gitlab", &gl_headers(GITLAB, "gl-1"), gl.as_bytes());
    assert_eq!((code, &v["matched"]), (202, &json!(["git:service"])), "{v}");
    let h = watch.history(1, Duration::from_secs(60));
    assert_eq!(h[0]["result"], "bundle", "{h:?}");
    assert_eq!(watch.post("/hooks/gitlab", &gl_headers(GITLAB, "gl-1"), gl.as_bytes()).0, 401, "replayed");

    let new = commit(&w.upstream, "bitbucket");
    let bb = json!({
        "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
        "repository": {"links": {"clone": [{"href": url}]}},
    })
    .to_string();
    let good = sign(BITBUCKET.as_bytes(), bb.as_bytes());
    let bad = sign(b"nope", bb.as_bytes());
    let bb_headers = |sig: &str, uuid: &'static str| {
        vec![
            ("x-event-key", "repo:push".to_string()),
            ("x-hub-signature", sig.to_string()),
            ("x-request-uuid", uuid.to_string()),
        ]
    };
    assert_eq!(watch.post("/hooks/bitbucket", &refs(&bb_headers(&bad, "bb-1")), bb.as_bytes()).0, 401);
    let big = "y".repeat(17_000);
    let big_sig = sign(BITBUCKET.as_bytes(), big.as_bytes());
    assert_eq!(watch.post("/hooks/bitbucket", &refs(&bb_headers(&big_sig, "bb-big")), big.as_bytes()).0, 413);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(watch.get("/history").as_array().unwrap().len(), 1, "refused hooks trigger nothing");
    let (code, v) = watch.post("/hooks/bitbucket", &refs(&bb_headers(&good, "bb-1")), bb.as_bytes());
    assert_eq!((code, &v["matched"]), (202, &json!(["git:service"])), "{v}");
    let h = watch.history(2, Duration::from_secs(60));
    assert_eq!(h[1]["result"], "bundle", "{h:?}");
    assert_eq!(h[1]["triggers"][0]["source"], "bitbucket");
    assert_eq!(watch.post("/hooks/bitbucket", &refs(&bb_headers(&good, "bb-1")), bb.as_bytes()).0, 401, "replayed");
    let (_, m) = manifest_of(&w.cx, &w.out.join(h[1]["files"][0].as_str().unwrap()));
    assert_eq!(m["artifacts"][0]["refs"]["refs/heads/main"], new.as_str());

    // A push to a repository or branch the spec does not carry matches nothing.
    let other =
        json!({"object_kind": "push", "ref": "refs/heads/feature", "project": {"git_http_url": url}}).to_string();
    let (code, v) = watch.post("/hooks/gitlab", &gl_headers(GITLAB, "gl-2"), other.as_bytes());
    assert_eq!((code, &v["matched"]), (202, &json!([])), "{v}");
}

#[test]
fn an_unreachable_upstream_leaves_the_others_working_and_status_names_it() {
    let port = crate::common::daemon::closed_port();
    let w = git_world(&format!("  - url: git://127.0.0.1:{port}/ghost\n    name: ghost\n"));
    let watch = Watch::start(&w.cx, &w.spec, &w.out, &[]);
    watch.sync();
    let h = watch.history(1, Duration::from_secs(60));
    assert_eq!(h[0]["result"], "bundle", "{h:?}");
    assert!(h[0]["failed"]["git:ghost"].as_str().is_some_and(|e| e.contains("ghost")), "{h:?}");
    assert_eq!(h[0]["refreshed"], json!(["git:service"]));
    let status = watch.get("/status");
    assert_eq!(status["unreachable"], json!(["git:ghost"]), "{status}");
    assert!(status["upstreams"]["git:ghost"]["error"].is_string(), "{status}");
    let (_, m) = manifest_of(&w.cx, &w.out.join(h[0]["files"][0].as_str().unwrap()));
    let names: Vec<&str> = m["artifacts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["service"]);

    // The next trigger for the working one makes its delta, and tries the broken one again.
    let new = commit(&w.upstream, "still-working");
    let (body, headers) = github_push(&w, "after-failure");
    assert_eq!(watch.post("/hooks/github", &refs(&headers), &body).0, 202);
    let h = watch.history(2, Duration::from_secs(60));
    assert_eq!(h[1]["result"], "bundle", "{h:?}");
    assert!(h[1]["failed"]["git:ghost"].is_string(), "retried: {h:?}");
    let (_, m) = manifest_of(&w.cx, &w.out.join(h[1]["files"][0].as_str().unwrap()));
    assert_eq!(m["artifacts"][0]["refs"]["refs/heads/main"], new.as_str());

    // Offline, the factory cache's ledger has both refreshes, beside the exports.
    let run = w.cx.run(&["history", "--watch", "--json"]).ok();
    let file = w.cx.path("watch-history.json");
    std::fs::write(&file, &run.stdout).unwrap();
    crate::common::validate_json(&file, "history.schema.json");
    let runs = run.json()["entries"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for (r, delivery, bundle) in [(&runs[0], "sync", &h[0]), (&runs[1], "github after-failure", &h[1])] {
        assert_eq!(r["op"], "watch");
        assert_eq!(r["status"], "completed");
        assert!(r["source"].as_str().unwrap().ends_with(delivery), "{r}");
        assert_eq!(
            r["bundle"]["name"].as_str().map(|n| format!("{n}-{}", r["bundle"]["version"].as_str().unwrap())),
            bundle["bundle"].as_str().map(String::from),
            "{r}"
        );
        assert!(r["bundle"]["manifest"].as_str().unwrap().starts_with("sha256:"), "{r}");
        let failed: Vec<&Value> =
            r["artifacts"].as_array().unwrap().iter().filter(|a| a["action"] == "failed").collect();
        assert_eq!(failed.len(), 1, "{r}");
        assert_eq!((failed[0]["kind"].as_str(), failed[0]["name"].as_str()), (Some("git"), Some("ghost")));
    }
    assert!(
        runs[1]["artifacts"].as_array().unwrap().iter().any(|a| a["action"] == "changed" && a["name"] == "service"),
        "{runs:?}"
    );
    let text = w.cx.run(&["history", "--watch"]).ok().stdout;
    assert!(text.contains(" watch ") && text.contains("failed   git    ghost"), "{text}");
    // The exports themselves stay in the unfiltered history.
    let all = w.cx.run(&["history", "--store", w.cx.cache().to_str().unwrap(), "--json"]).ok().json();
    assert!(all["entries"].as_array().unwrap().iter().filter(|r| r["op"] == "export").count() >= 2, "{all}");
}

/// A PEP 503 index of the project `watchdemo` with these versions, written by the
/// fixture generator's own functions.
fn python_index(www: &Path, versions: &[&str]) {
    let script = format!(
        r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fx", "{}")
fx = importlib.util.module_from_spec(spec); spec.loader.exec_module(fx)
out = "{}"
files = [fx.wheel(out, "watchdemo", v, "py3-none-any") for v in {:?}]
fx.index(out, {{"watchdemo": files}})
"#,
        root().join("fixtures/make-python-fixture.py").display(),
        www.join("pypi").display(),
        versions
    );
    let status = std::process::Command::new("python3").arg("-c").arg(script).status().unwrap();
    assert!(status.success());
}

#[test]
fn polling_notices_a_retagged_image_and_a_new_python_release_within_two_intervals() {
    let cx = TestContext::new();
    cx.key();
    let reg = Registry::start(&cx.path("registry"));
    let maker = ImageMaker::new(&cx.path("layouts"));
    let h = reg.host();
    let first = maker.push(&h, "ns/tool", "1.0", &[("amd64", vec![layer("bin/tool", &noise(4096, 1))])]);
    let nginx = crate::common::nginx::Nginx::start(&cx.path("www"));
    python_index(&nginx.root, &["1.0"]);
    let spec = cx.spec(&format!(
        "name: polled\nimages:\n  - ref: {h}/ns/tool:1.0\nregistries:\n  \"{h}\":\n    insecure: true\npython:\n  - name: pypi\n    index: {}\n    requirements: [watchdemo]\n    pythons: [\"3.11\"]\n    platforms: [manylinux_2_28_x86_64]\n    build-requirements: false\n",
        nginx.url("/pypi/simple/")
    ));
    let out = cx.path("out");
    let interval = Duration::from_secs(1);
    // The image's interval from a flag, Python's from the spec's `watch:` section.
    let spec_text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{spec_text}watch:\n  poll: 1h\n  kinds: {{python: 1s}}\n")).unwrap();
    let watch = Watch::start(&cx, &spec, &out, &["--poll-kind", "images=1s"]);
    // Wait for both first answers (the baseline).
    let deadline = Instant::now() + Duration::from_secs(20);
    while watch.get("/status")["upstreams"].as_object().map_or(0, |u| u.len()) < 2 {
        assert!(Instant::now() < deadline, "{}", watch.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(watch.get("/history").as_array().unwrap().is_empty(), "nothing changed yet");

    let moved = maker.push(&h, "ns/tool", "1.0", &[("amd64", vec![layer("bin/tool", &noise(4096, 2))])]);
    assert_ne!(first, moved);
    let changed_at = Instant::now();
    let deadline = changed_at + 2 * interval.mul_f64(1.1) + Duration::from_millis(500);
    while watch.get("/status")["state"] == "idle" && watch.get("/history").as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the re-tag went unnoticed for two intervals: {}", watch.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let hist = watch.history(1, Duration::from_secs(60));
    assert_eq!(hist[0]["result"], "bundle", "{hist:?}");
    assert_eq!(hist[0]["triggers"][0]["source"], "poll");
    assert_eq!(hist[0]["triggers"][0]["entries"], json!([format!("images:{h}/ns/tool:1.0")]));
    let lock: Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(lock["images"][0]["upstreamDigest"], moved.to_string(), "{lock}");

    python_index(&nginx.root, &["1.0", "1.1"]);
    let changed_at = Instant::now();
    let deadline = changed_at + 2 * interval.mul_f64(1.1) + Duration::from_millis(500);
    while watch.get("/status")["state"] == "idle" && watch.get("/history").as_array().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the release went unnoticed for two intervals: {}", watch.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let hist = watch.history(2, Duration::from_secs(60));
    assert_eq!(hist[1]["result"], "bundle", "{hist:?}");
    assert_eq!(hist[1]["changed"], json!(["python:pypi"]), "{hist:?}");
    let (_, m) = manifest_of(&cx, &out.join(hist[1]["files"][0].as_str().unwrap()));
    let versions: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "python")
        .map(|a| a["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.1"], "{m}");
    assert!(!m["base"].is_null(), "differential on the first: {m}");
}

#[test]
fn kill_9_during_a_refresh_leaves_no_partial_bundle_and_the_next_refresh_completes() {
    let cx = TestContext::new();
    cx.key();
    let data: Vec<u8> = noise(24 << 20, 7);
    std::fs::create_dir_all(cx.path("spec")).unwrap();
    std::fs::write(cx.path("spec/big.bin"), &data).unwrap();
    let spec = cx.spec("name: big\nfiles:\n  - path: big.bin\n    source: big.bin\n");
    let out = cx.path("out");
    let mut watch = Watch::start(&cx, &spec, &out, &["--compression", "zstd:19"]);
    watch.sync();
    // Wait until the export is writing inside its temporary directory, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    let staged = loop {
        let found = std::fs::read_dir(&out).unwrap().flatten().find(|e| {
            e.file_name().to_string_lossy().starts_with(".watch-tmp-")
                && std::fs::read_dir(e.path().join("bundle")).is_ok_and(|mut d| d.next().is_some())
        });
        if let Some(f) = found {
            break f.path();
        }
        assert!(Instant::now() < deadline, "the export never started: {}", watch.log_text());
        std::thread::sleep(Duration::from_millis(10));
    };
    watch.child.kill().unwrap();
    watch.child.wait().unwrap();
    assert!(staged.exists(), "killed while exporting");
    assert_eq!(bundles(&out), Vec::<String>::new(), "nothing half-written in --out");
    drop(watch);

    // Restarted, now cutting volumes: each volume set lands as one directory.
    let watch = Watch::start(&cx, &spec, &out, &["--compression", "zstd:1", "--split", "10MiB"]);
    assert!(!staged.exists(), "the leftover is removed at start");
    assert!(watch.log_text().contains("leftover.removed"), "{}", watch.log_text());
    watch.sync();
    let h = watch.history(1, Duration::from_secs(120));
    assert_eq!(h[0]["result"], "bundle", "{h:?}");
    let stem = h[0]["bundle"].as_str().unwrap();
    assert_eq!(bundles(&out), [stem], "one directory per volume set");
    let files: Vec<&str> = h[0]["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(files.len() >= 4, "three volumes and their list: {files:?}");
    assert!(files.iter().all(|f| out.join(f).is_file() && f.starts_with(&format!("{stem}/"))), "{files:?}");
    let first = out.join(format!("{stem}/{stem}.airlock.001"));
    cx.run(&["verify", first.to_str().unwrap()]).ok();

    // The next one is differential on the volume set.
    std::fs::write(cx.path("spec/big.bin"), noise(1 << 20, 8)).unwrap();
    watch.sync();
    let h = watch.history(2, Duration::from_secs(120));
    assert_eq!(h[1]["result"], "bundle", "{h:?}");
    assert_eq!(h[1]["base"], format!("{stem}/{stem}.airlock.001"));
    let stem2 = h[1]["bundle"].as_str().unwrap();
    let second = out.join(format!("{stem2}/{stem2}.airlock.001"));
    cx.run(&["verify", second.to_str().unwrap()]).ok();
}

#[test]
fn a_registry_notification_of_a_pushed_tag_makes_a_bundle() {
    let cx = TestContext::new();
    cx.key();
    let dir = cx.path("registry");
    let mut reg = Registry::start(&dir);
    let maker = ImageMaker::new(&cx.path("layouts"));
    let h = reg.host();
    maker.push(&h, "ns/app", "2.0", &[("amd64", vec![layer("bin/app", &noise(4096, 1))])]);
    let spec = cx.spec(&format!(
        "name: images\nimages:\n  - ref: {h}/ns/app:2.0\nregistries:\n  \"{h}\":\n    insecure: true\n"
    ));
    let out = cx.path("out");
    let watch = Watch::start(&cx, &spec, &out, &[]);
    watch.sync();
    watch.history(1, Duration::from_secs(60));

    // The registry itself notifies watch of pushes, with the bearer token.
    let port = reg.port;
    reg.stop();
    let _reg = Registry::start_notifying(&dir, port, &format!("{}/hooks/registry", watch.url), REGISTRY);
    let envelope =
        json!({"events": [{"id": "e-1", "action": "push", "target": {"repository": "ns/app", "tag": "2.0"}}]});
    let body = envelope.to_string();
    assert_eq!(watch.post("/hooks/registry", &[("authorization", "Bearer wrong")], body.as_bytes()).0, 401);
    assert_eq!(watch.post("/hooks/registry", &[], body.as_bytes()).0, 401);
    let moved = maker.push(&h, "ns/app", "2.0", &[("amd64", vec![layer("bin/app", &noise(4096, 2))])]);
    let hist = watch.history(2, Duration::from_secs(60));
    assert_eq!(hist[1]["result"], "bundle", "{hist:?}");
    assert!(hist[1]["triggers"].as_array().unwrap().iter().all(|t| t["source"] == "registry"), "{hist:?}");
    let lock: Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(lock["images"][0]["upstreamDigest"], moved.to_string(), "{lock}");
}

#[test]
fn sigterm_during_a_refresh_lets_it_finish_and_exits_cleanly() {
    let cx = TestContext::new();
    cx.key();
    std::fs::create_dir_all(cx.path("spec")).unwrap();
    std::fs::write(cx.path("spec/big.bin"), noise(16 << 20, 9)).unwrap();
    let spec = cx.spec("name: big\nfiles:\n  - path: big.bin\n    source: big.bin\n");
    let out = cx.path("out");
    let watch = Watch::start(&cx, &spec, &out, &["--compression", "zstd:19"]);
    watch.sync();
    let deadline = Instant::now() + Duration::from_secs(30);
    while watch.get("/status")["state"] != "refreshing" {
        assert!(Instant::now() < deadline, "{}", watch.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
    // A second watch on the same output directory is refused while this one runs.
    cx.run(&["watch", "-f", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .fails(2, "another `airlock watch` is writing into");
    let log = watch.log.clone();
    assert!(watch.term().success());
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("refresh.done id=1 result=bundle"), "the refresh in flight finished: {text}");
    let files = bundles(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    cx.run(&["verify", out.join(&files[0]).to_str().unwrap()]).ok();
}

#[test]
fn with_since_receipt_each_bundle_carries_what_the_site_reported_it_lacks() {
    let w = git_world("");
    let site = TestContext::new();
    site.run(&["trust", "add", w.cx.config().join("keys/airlock.pub").to_str().unwrap()]).ok();
    // The site got a first bundle made by hand.
    let v0 = w.cx.bundle(&w.spec, "v0", &["--version", "0"]).join("src-0.airlock");
    site.run(&["import", v0.to_str().unwrap()]).ok();
    let carried = w.cx.path("site.receipt");
    let report = || {
        let p = site.path("site.receipt");
        site.run(&["receipt", "-o", p.to_str().unwrap(), "--name", "site-a"]).ok();
        std::fs::copy(&p, &carried).unwrap();
        std::fs::copy(format!("{}.minisig", p.display()), format!("{}.minisig", carried.display())).unwrap();
    };
    report();
    let site_pub = site.config().join("keys/site.pub");
    w.cx.run(&["trust", "add", "--site", site_pub.to_str().unwrap()]).ok();
    let watch = Watch::start(&w.cx, &w.spec, &w.out, &["--since-receipt", carried.to_str().unwrap()]);
    let site_repo = site.store().join("git/service.git");

    for round in 1..=2 {
        let old = git(&site_repo, &["rev-parse", "refs/heads/main"]);
        let new = commit(&w.upstream, &format!("for-the-site-{round}"));
        let (body, headers) = github_push(&w, &format!("receipt-{round}"));
        assert_eq!(watch.post("/hooks/github", &refs(&headers), &body).0, 202);
        let h = watch.history(round, Duration::from_secs(60));
        let r = &h[round - 1];
        assert_eq!(r["result"], "bundle", "{h:?}");
        assert!(r["base"].as_str().unwrap().starts_with("receipt:"), "{h:?}");
        let b = w.out.join(r["files"][0].as_str().unwrap());
        let (_, m) = manifest_of(&w.cx, &b);
        assert_eq!(m["artifacts"][0]["prerequisites"], json!([old]), "built on what the site reported: {m}");
        site.run(&["import", b.to_str().unwrap()]).ok();
        assert_eq!(git(&site_repo, &["rev-parse", "refs/heads/main"]), new);
        // The site reports again; the next bundle builds on that.
        report();
    }
}

#[test]
fn polling_notices_a_new_commit_and_a_file_whose_etag_changed() {
    let w = git_world("");
    let nginx = crate::common::nginx::Nginx::start(&w.cx.path("www"));
    std::fs::write(nginx.root.join("tool.txt"), "tool 1\n").unwrap();
    let text = std::fs::read_to_string(&w.spec).unwrap();
    std::fs::write(&w.spec, format!("{text}files:\n  - path: tool.txt\n    url: {}\n", nginx.url("/tool.txt")))
        .unwrap();
    let watch = Watch::start(&w.cx, &w.spec, &w.out, &["--poll", "1s"]);
    watch.sync();
    watch.history(1, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(20);
    while watch.get("/status")["upstreams"]["files:tool.txt"]["by"] != "poll" {
        assert!(Instant::now() < deadline, "{}", watch.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1200));

    let new = commit(&w.upstream, "polled");
    let h = watch.history(2, Duration::from_secs(30));
    assert_eq!(h[1]["triggers"][0]["source"], "poll", "{h:?}");
    assert_eq!(h[1]["changed"], json!(["git:service"]), "{h:?}");
    let (_, m) = manifest_of(&w.cx, &w.out.join(h[1]["files"][0].as_str().unwrap()));
    let git_art = m["artifacts"].as_array().unwrap().iter().find(|a| a["kind"] == "git").unwrap().clone();
    assert_eq!(git_art["refs"]["refs/heads/main"], new.as_str());

    // nginx's ETag is the file's time and size.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(nginx.root.join("tool.txt"), "tool 2, longer\n").unwrap();
    let h = watch.history(3, Duration::from_secs(30));
    assert_eq!(h[2]["changed"], json!(["files:tool.txt"]), "{h:?}");
    let b = w.out.join(h[2]["files"][0].as_str().unwrap());
    w.cx.run(&["verify", b.to_str().unwrap()]).ok();
}
