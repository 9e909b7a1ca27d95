//! `airlock mirror` against servers on loopback: nginx as a plain upstream, and a server
//! that fails on cue for the retry and resume paths.

use crate::common::http::{Fault, Server};
use crate::common::nginx::Nginx;
use crate::common::{TestContext, sh};

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn hex(d: &[u8]) -> String {
    airlock::digest::Digest::of(d).hex()
}

#[test]
fn urls_from_nginx_with_and_without_pinned_sha256() {
    let cx = TestContext::new();
    cx.key();
    let nginx = Nginx::start(&cx.path("nginx"));
    let (a, b) = (data(300_000, 1), data(5_000, 2));
    std::fs::write(nginx.root.join("a.bin"), &a).unwrap();
    std::fs::write(nginx.root.join("b.bin"), &b).unwrap();
    let spec = cx.spec(&format!(
        "name: web\nversion: \"1\"\nfiles:\n  - path: dl/a.bin\n    url: {}\n    sha256: {}\n    arch: amd64\n  - path: dl/b.bin\n    url: {}\n",
        nginx.url("/a.bin"),
        hex(&a),
        nginx.url("/b.bin")
    ));
    let out = cx.bundle(&spec, "out", &[]);
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let b_entry = lock["artifacts"].as_array().unwrap().iter().find(|x| x["name"] == "dl/b.bin").unwrap();
    assert_eq!(b_entry["digest"], format!("sha256:{}", hex(&b)), "the first download is pinned in the lock");
    let i = cx.run(&["--json", "inspect", out.join("web-1.airlock").to_str().unwrap()]).ok().json();
    let purl = i["artifacts"][0]["purl"].as_str().unwrap();
    assert!(purl.contains("download_url=http:%2F%2F127.0.0.1"), "{purl}");
    cx.run(&["import", out.join("web-1.airlock").to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(cx.store().join("repository/raw/dl/a.bin")).unwrap(), a);

    // The upstream changes the unpinned file: the lock's pin now refuses it.
    std::fs::write(nginx.root.join("b.bin"), b"changed").unwrap();
    std::fs::remove_dir_all(cx.cache()).unwrap();
    cx.mirror(&spec).fails(2, &format!("sha256 mismatch for {}", nginx.url("/b.bin")));
}

#[test]
fn content_that_does_not_match_its_sha256_is_refused() {
    let cx = TestContext::new();
    let server = Server::start();
    server.put("/tool", b"what the upstream serves today".to_vec());
    let wanted = hex(b"what the spec pinned");
    let spec =
        cx.spec(&format!("name: x\nfiles:\n  - path: tool\n    url: {}\n    sha256: {wanted}\n", server.url("/tool")));
    cx.mirror(&spec).fails(2, &format!("sha256 mismatch for {}: expected {wanted}", server.url("/tool")));
    assert!(!spec.with_extension("lock").exists(), "no lock is written");
    let blobs: Vec<_> = std::fs::read_dir(cx.cache().join("blobs/sha256")).unwrap().collect();
    assert!(blobs.is_empty(), "nothing enters the cache");
}

#[test]
fn broken_transfers_resume_with_range() {
    let cx = TestContext::new();
    let server = Server::start();
    let big = data(2_000_000, 7);
    server.put("/big", big.clone());
    server.fault("/big", Fault::Cut { after: 700_000, times: 2 });
    let spec = cx.spec(&format!(
        "name: x\nfiles:\n  - path: big\n    url: {}\n    sha256: {}\n",
        server.url("/big"),
        hex(&big)
    ));
    cx.run(&["mirror", "-f", spec.to_str().unwrap(), "--backoff", "10ms"]).ok();
    let gets: Vec<_> = server.log().into_iter().filter(|l| l.method == "GET").collect();
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=700000-"));
    assert_eq!(gets[2].range.as_deref(), Some("bytes=1400000-"));
    let tag = crate::common::http::etag(&big);
    assert_eq!(gets[0].if_range, None);
    assert!(
        gets[1..].iter().all(|g| g.if_range.as_deref() == Some(tag.as_str())),
        "each resume names its ETag: {gets:?}"
    );
    assert_eq!(std::fs::read(cx.cache().join("blobs/sha256").join(hex(&big))).unwrap(), big);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let cx = TestContext::new();
    let server = Server::start();
    server.put("/flaky", b"eventually".to_vec());
    server.fault("/flaky", Fault::Status { code: 503, times: 2 });
    server.put("/down", b"never".to_vec());
    server.fault("/down", Fault::Status { code: 502, times: 100 });
    let ok = cx.spec(&format!("name: x\nfiles:\n  - path: f\n    url: {}\n", server.url("/flaky")));
    cx.run(&["mirror", "-f", ok.to_str().unwrap(), "--backoff", "10ms"]).ok();
    let bad = cx.spec(&format!("name: x\nfiles:\n  - path: d\n    url: {}\n", server.url("/down")));
    let down = cx.run(&["mirror", "-f", bad.to_str().unwrap(), "--backoff", "10ms", "--retries", "2"]);
    let down = down.fails(2, &format!("giving up on GET {} after 3 attempts", server.url("/down")));
    assert!(down.stderr.contains("502"), "the error names the status: {}", down.stderr);
    assert_eq!(server.log().iter().filter(|l| l.path == "/down").count(), 3, "--retries 2 is three attempts");
    let missing = cx.spec(&format!("name: x\nfiles:\n  - path: m\n    url: {}\n", server.url("/missing")));
    cx.run(&["mirror", "-f", missing.to_str().unwrap(), "--backoff", "10ms"]).fails(2, "404");
    let tries = server.log().iter().filter(|l| l.path == "/missing").count();
    assert_eq!(tries, 1, "a 404 is not retried");
}

#[test]
fn locked_mode_refuses_a_stale_lock() {
    let cx = TestContext::new();
    let spec = cx.fixtures();
    cx.mirror(&spec).ok();
    cx.run(&["mirror", "-f", spec.to_str().unwrap(), "--locked"]).ok();
    sh(&cx.path("spec"), "echo changed >> files/NOTICE.txt");
    cx.run(&["mirror", "-f", spec.to_str().unwrap(), "--locked"]).fails(2, "is not current with");
}
