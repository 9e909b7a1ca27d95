//! The network layer as users meet it through `airlock mirror`: stalled servers time out,
//! permanent failures fail at once while transient ones wait as the server asks, resumes
//! cannot splice two versions of a file, a blob cannot be longer than its descriptor,
//! and registry passwords come from Docker credential helpers.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::gitd::{GitDaemon, git};
use crate::common::http::{Fault, Server, Stall, etag};
use crate::common::registry::{ImageMaker, Registry, layer, noise};
use crate::common::{Run, TestContext};

fn hex(d: &[u8]) -> String {
    airlock::digest::Digest::of(d).hex()
}

/// Run airlock, killing it if it is still running after `limit`: a hang fails the test
/// instead of stalling the suite. Returns the run and how long it took.
fn run_bounded(cx: &TestContext, args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Run, Duration) {
    let started = Instant::now();
    let mut c = cx.command();
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`airlock {}` was still running after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, started.elapsed())
}

#[test]
fn a_stalled_upstream_fails_within_the_idle_timeout() {
    // Four upstreams that accept and then stall: silent from the start (a file URL, a
    // Python index, a registry), and silent in the middle of a body.
    let silent = [Stall::start(b""), Stall::start(b""), Stall::start(b"")];
    let mid_body = Stall::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nfirst bytes");
    let file_url = format!("http://127.0.0.1:{}/tool.tar.gz", silent[0].port);
    let index = format!("http://127.0.0.1:{}/simple/", silent[1].port);
    let registry = format!("127.0.0.1:{}", silent[2].port);
    let body_url = format!("http://127.0.0.1:{}/big.iso", mid_body.port);
    let cases = [
        (format!("name: x\nfiles:\n  - path: tool\n    url: {file_url}\n"), format!("GET {file_url}")),
        (
            format!(
                "name: x\npython:\n  - index: {index}\n    requirements: [demo]\n    pythons: ['3.12']\n    platforms: [manylinux_2_28_x86_64]\n"
            ),
            format!("GET {index}demo/"),
        ),
        (
            format!(
                "name: x\nimages:\n  - ref: {registry}/ns/app:1.0\nregistries:\n  \"{registry}\":\n    insecure: true\n"
            ),
            format!("GET http://{registry}/v2/ns/app/manifests/1.0"),
        ),
        (format!("name: x\nfiles:\n  - path: big\n    url: {body_url}\n"), format!("GET {body_url}")),
    ];
    // All four at once: each waits on its own server.
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(yaml, _)| {
                s.spawn(move || {
                    let cx = TestContext::new();
                    let spec = cx.spec(yaml);
                    let args = [
                        "mirror",
                        "-f",
                        spec.to_str().unwrap(),
                        "--timeout",
                        "1s",
                        "--retries",
                        "1",
                        "--backoff",
                        "10ms",
                    ];
                    run_bounded(&cx, &args, &[], Duration::from_secs(20))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((run, took), (_, url)) in runs.into_iter().zip(&cases) {
        // Two attempts of one idle timeout each, and the short backoff between them.
        assert!(took < Duration::from_secs(10), "{url}: took {took:?}");
        let run = run.fails(2, &format!("giving up on {url} after 2 attempts"));
        assert!(run.stderr.contains("timed out: the server sent nothing for 1s"), "{}", run.stderr);
    }
    for (i, s) in silent.iter().enumerate() {
        assert_eq!(s.accepted(), 2, "upstream {i}: one connection per attempt");
    }
    assert_eq!(mid_body.accepted(), 2);
}

#[test]
fn a_mid_body_stall_names_the_bytes_received() {
    let stall = Stall::start(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789");
    let cx = TestContext::new();
    let url = format!("http://127.0.0.1:{}/big.iso", stall.port);
    let spec = cx.spec(&format!("name: x\nfiles:\n  - path: big\n    url: {url}\n"));
    let args = ["mirror", "-f", spec.to_str().unwrap(), "--timeout", "1s", "--retries", "0"];
    let (run, _) = run_bounded(&cx, &args, &[], Duration::from_secs(20));
    run.fails(2, &format!("giving up on GET {url} after 1 attempt: the transfer broke after 10 bytes: timed out"));
}

#[test]
fn permanent_failures_fail_fast_and_retry_after_is_honoured() {
    let cx = TestContext::new();
    let server = Server::start();
    // Refused credentials: one request, at once, whatever --retries says.
    server.put("/private", b"secret".to_vec());
    server.fault("/private", Fault::Status { code: 401, times: 100 });
    let spec = cx.spec(&format!("name: x\nfiles:\n  - path: p\n    url: {}\n", server.url("/private")));
    let (run, took) = run_bounded(&cx, &["mirror", "-f", spec.to_str().unwrap()], &[], Duration::from_secs(20));
    run.fails(2, &format!("GET {}: 401", server.url("/private")));
    assert_eq!(server.log().iter().filter(|l| l.path == "/private").count(), 1, "a 401 is not retried");
    assert!(took < Duration::from_secs(3), "failed at once, not after the backoff: {took:?}");

    // A Python index that refuses us: the same.
    server.fault("/simple/demo/", Fault::Status { code: 403, times: 100 });
    let spec = cx.spec(&format!(
        "name: x\npython:\n  - index: {}\n    requirements: [demo]\n    pythons: ['3.12']\n    platforms: [manylinux_2_28_x86_64]\n",
        server.url("/simple/")
    ));
    cx.mirror(&spec).fails(2, &format!("GET {}: 403", server.url("/simple/demo/")));
    assert_eq!(server.log().iter().filter(|l| l.path == "/simple/demo/").count(), 1, "a 403 is not retried");

    // A busy server: 503 with Retry-After: 1, twice. The backoff alone would be 10 ms;
    // each retry waits the second the server asked for.
    server.put("/busy", b"worth the wait".to_vec());
    server.fault("/busy", Fault::Busy { secs: 1, times: 2 });
    let spec = cx.spec(&format!("name: x\nfiles:\n  - path: b\n    url: {}\n", server.url("/busy")));
    cx.run(&["mirror", "-f", spec.to_str().unwrap(), "--backoff", "10ms"]).ok();
    let tries: Vec<_> = server.log().into_iter().filter(|l| l.path == "/busy").collect();
    assert_eq!(tries.len(), 3, "two 503s, then the file: {tries:?}");
    for pair in tries.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(950), "a retry came {gap:?} after a Retry-After: 1");
        assert!(gap < Duration::from_secs(5), "{gap:?}");
    }
    assert_eq!(std::fs::read(cx.cache().join("blobs/sha256").join(hex(b"worth the wait"))).unwrap(), b"worth the wait");
}

#[test]
fn a_dead_git_repository_fails_at_once() {
    let cx = TestContext::new();
    let base = cx.path("upstream");
    std::fs::create_dir_all(base.join("present")).unwrap();
    git(&base.join("present"), &["init", "-q", "--bare"]);
    let daemon = GitDaemon::start(&base);
    let trace = cx.path("git-trace");
    let attempts = |trace: &Path| {
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        text.lines().filter(|l| l.contains("built-in: git ls-remote")).count()
    };

    // Not exported: permanent. With the default backoff, five attempts took 7.5 s.
    let url = daemon.url("gone");
    let spec = cx.spec(&format!("name: x\ngit:\n  - url: {url}\n    name: gone\n    refs: [refs/heads/main]\n"));
    let env = [("GIT_TRACE", trace.to_str().unwrap())];
    let (run, took) = run_bounded(&cx, &["mirror", "-f", spec.to_str().unwrap()], &env, Duration::from_secs(30));
    run.fails(2, "repository not exported");
    assert_eq!(attempts(&trace), 1, "git ls-remote ran once");
    assert!(took < Duration::from_secs(2), "a dead repository took {took:?}");

    // Nobody listening: transient, so retried.
    std::fs::remove_file(&trace).unwrap();
    let port = crate::common::daemon::closed_port();
    let spec = cx.spec(&format!(
        "name: x\ngit:\n  - url: git://127.0.0.1:{port}/down\n    name: down\n    refs: [refs/heads/main]\n"
    ));
    let args = ["mirror", "-f", spec.to_str().unwrap(), "--retries", "2", "--backoff", "10ms"];
    let (run, _) = run_bounded(&cx, &args, &env, Duration::from_secs(30));
    run.fails(2, "after 3 attempts");
    assert_eq!(attempts(&trace), 3, "a refused connection is retried");
}

#[test]
fn a_file_that_changes_between_attempts_is_fetched_whole_not_spliced() {
    let cx = TestContext::new();
    let server = Server::start();
    let old = noise(1_000_000, 3);
    let new = noise(1_000_000, 4);
    server.put("/release.tar", old.clone());
    // The first transfer breaks after 300 kB; by the retry, upstream has a new file.
    server.fault("/release.tar", Fault::CutThenChange { after: 300_000, next: new.clone() });
    let spec = cx.spec(&format!(
        "name: x\nfiles:\n  - path: release.tar\n    url: {}\n    sha256: {}\n",
        server.url("/release.tar"),
        hex(&new)
    ));
    cx.run(&["mirror", "-f", spec.to_str().unwrap(), "--backoff", "10ms"]).ok();
    let gets: Vec<_> = server.log().into_iter().filter(|l| l.method == "GET").collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].range.as_deref(), Some("bytes=300000-"));
    assert_eq!(gets[1].if_range.as_deref(), Some(etag(&old).as_str()), "the resume names what it resumes");
    assert_eq!(std::fs::read(cx.cache().join("blobs/sha256").join(hex(&new))).unwrap(), new);
}

#[test]
fn a_blob_longer_than_its_descriptor_is_cut_off() {
    let cx = TestContext::new();
    let reg = Registry::start(&cx.path("registry"));
    let maker = ImageMaker::new(&cx.path("layouts"));
    let content = layer("app/bin", &noise(50_000, 5));
    maker.push(&reg.host(), "ns/app", "1.0", &[("amd64", vec![content.clone()])]);
    // The registry's copy of the layer grows by a megabyte after the push.
    let d = airlock::digest::Digest::of(&content);
    let mut data = std::fs::OpenOptions::new().append(true).open(reg.blob_data(&d)).unwrap();
    std::io::Write::write_all(&mut data, &noise(1 << 20, 6)).unwrap();
    drop(data);
    let h = reg.host();
    let spec =
        cx.spec(&format!("name: x\nimages:\n  - ref: {h}/ns/app:1.0\nregistries:\n  \"{h}\":\n    insecure: true\n"));
    cx.mirror(&spec).fails(2, &format!("more than the {} bytes its descriptor gives; nothing was kept", content.len()));
    assert!(!cx.cache().join("blobs/sha256").join(d.hex()).exists(), "the long blob is not in the cache");
    let partial: Vec<_> = std::fs::read_dir(cx.cache().join("partial"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".lock"))
        .collect();
    assert!(partial.is_empty(), "nothing of it is kept for a resume: {partial:?}");
}

#[test]
fn a_credential_helper_supplies_the_registry_password() {
    let cx = TestContext::new();
    // Push through an open registry, then serve the same storage with htpasswd.
    let dir = cx.path("registry");
    let open = Registry::start(&dir);
    let maker = ImageMaker::new(&cx.path("layouts"));
    let top = maker.push(&open.host(), "ns/tool", "2.0", &[("amd64", vec![layer("tool/bin", &noise(5_000, 9))])]);
    drop(open);
    let reg = Registry::start_with_auth(&dir, "site", "s3cret");
    let h = reg.host();

    // A helper as docker-credential-helpers' are: `get`, the server on stdin, JSON out.
    let bin = cx.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = cx.path("helper-calls");
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nserver=$(cat)\necho \"$1 $server\" >> {}\nif [ \"$server\" = \"{h}\" ]; then\n  echo '{{\"ServerURL\":\"{h}\",\"Username\":\"site\",\"Secret\":\"s3cret\"}}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let docker = cx.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let env = [("PATH", path.as_str()), ("DOCKER_CONFIG", docker.to_str().unwrap())];
    let spec =
        cx.spec(&format!("name: x\nimages:\n  - ref: {h}/ns/tool:2.0\nregistries:\n  \"{h}\":\n    insecure: true\n"));
    let mirror = ["--json", "mirror", "-f", spec.to_str().unwrap()];

    // Without credentials the registry says no.
    cx.run_env(&mirror, &env).fails(2, &format!("registry {h} needs credentials"));
    // `credHelpers` names the helper for this registry.
    std::fs::write(docker.join("config.json"), format!(r#"{{"credHelpers":{{"{h}":"test"}}}}"#)).unwrap();
    let out = cx.run_env(&mirror, &env).ok().json();
    assert_eq!(out["images"][0]["upstreamDigest"], top.to_string());
    assert!(std::fs::read_to_string(&calls).unwrap().lines().all(|l| l == format!("get {h}")));
    // `credsStore` is the helper for every registry (docker login's default on desktops).
    std::fs::remove_dir_all(cx.cache()).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"auths":{},"credsStore":"test"}"#).unwrap();
    cx.run_env(&mirror, &env).ok();
    // A helper that is not installed is named.
    std::fs::write(docker.join("config.json"), format!(r#"{{"credHelpers":{{"{h}":"absent"}}}}"#)).unwrap();
    std::fs::remove_dir_all(cx.cache()).unwrap();
    cx.run_env(&mirror, &env).fails(2, "cannot run the credential helper `docker-credential-absent`");
}
