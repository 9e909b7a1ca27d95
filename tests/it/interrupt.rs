//! kill -9 in the middle of an import or a mirror: the target holds only whole, correct
//! files (or nothing), no tag points at missing content, running it again completes it,
//! and nothing the killed run was writing is left behind.
//!
//! The instants are chosen with airlock's test hook (`AIRLOCK_TEST_PAUSE=<point>:<n>`,
//! `src/store/hook.rs`): the process stops for good at the n-th visit of a named point,
//! and the test kills it there. The points: `staged` (a blob staged while
//! verifying), `promote` (a verified blob moved into the store), `planned` (every target
//! planned), `place-link` (a hard link beside a repository file, before its rename),
//! `raw-placed`, `git-ready` (a git repository's objects in, no ref changed),
//! `git-refs`, `atomic-commit` (a temporary file written, before its rename), `oci-tag`,
//! `registry-blob`, `registry-manifest`, `registry-tag`, `python-placed` (files placed,
//! no page written), `receipt`, and `partial` (a download slot taken).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::http::Server;
use crate::common::registry::{Registry, noise};
use crate::common::snapshot::{litter, registry_tags_resolve, store_tags_resolve, visible};
use crate::common::{TestContext, sh};

/// Kill the import as soon as `ready` says it is under way, then check and resume.
fn kill_and_resume(ready: impl Fn(&TestContext) -> bool) {
    let cx = TestContext::new();
    cx.key();
    let mut yaml = String::from("name: big\nversion: \"1\"\nfiles:\n");
    std::fs::create_dir_all(cx.path("spec/files")).unwrap();
    let mut expected = Vec::new();
    for i in 0..48 {
        let data = noise(1 << 20, i);
        std::fs::write(cx.path(&format!("spec/files/f{i:02}")), &data).unwrap();
        yaml.push_str(&format!("  - path: data/f{i:02}\n    source: files/f{i:02}\n"));
        expected.push((format!("data/f{i:02}"), data));
    }
    let spec = cx.spec(&yaml);
    let bundle = cx.bundle(&spec, "out", &["--compression", "none"]).join("big-1.airlock");

    let mut child = cx.command().args(["import", bundle.to_str().unwrap()]).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(&cx) {
        assert!(Instant::now() < deadline, "the import never got under way");
        if child.try_wait().unwrap().is_some() {
            break; // finished before we could catch it; still a valid (if weaker) run
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();

    let raw = cx.store().join("repository/raw");
    for (path, data) in &expected {
        if let Ok(have) = std::fs::read(raw.join(path)) {
            assert!(&have == data, "{path} is visible but not whole after kill -9");
        }
    }
    let r = cx.run(&["--json", "import", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"].as_u64().unwrap() + r["present"].as_u64().unwrap(), expected.len() as u64);
    for (path, data) in &expected {
        assert!(&std::fs::read(raw.join(path)).unwrap() == data, "{path} after resuming");
    }
    assert!(!cx.store().join("staging/current").exists(), "the killed import's staging is gone");
}

#[test]
fn kill_during_verification_then_resume() {
    kill_and_resume(|cx| std::fs::read_dir(cx.store().join("staging/current")).is_ok_and(|mut d| d.next().is_some()));
}

#[test]
fn kill_while_loading_then_resume() {
    kill_and_resume(|cx| {
        std::fs::read_dir(cx.store().join("repository/raw/data")).is_ok_and(|mut d| d.next().is_some())
    });
}

/// Run airlock with the test hook armed at `point` (`name:n`, see `airlock::store::hook`),
/// wait until it stops there, and kill it with SIGKILL.
pub(crate) fn kill_at(cx: &TestContext, args: &[&str], point: &str) {
    let mut child = pause_at(cx, args, point);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Start `airlock ARGS` with the test hook armed at `point` and return it once it stands
/// there, for good (until the caller kills it).
pub(crate) fn pause_at(cx: &TestContext, args: &[&str], point: &str) -> std::process::Child {
    let mut child = cx
        .command()
        .args(args)
        .env(airlock::store::hook::ENV, point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let (name, n) = point.split_once(':').unwrap();
    let want = format!("airlock test pause: {name} {n}");
    let mut said = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == want => break,
            Ok(line) => said.push(line),
            Err(_) => {
                let status = child.try_wait().unwrap();
                let _ = child.kill();
                panic!("`airlock {}` never reached {point} ({status:?}): {}", args.join(" "), said.join("\n"));
            }
        }
    }
    child
}

/// The fixtures' bundle (every kind of artifact), uncompressed.
fn fixtures_bundle(cx: &TestContext) -> String {
    cx.key();
    let spec = cx.fixtures();
    cx.bundle(&spec, "out", &["--compression", "none"]).join("fixtures-1.0.airlock").display().to_string()
}

/// What a killed import may leave: files and tags that are whole and correct (the same as
/// an uninterrupted import's, where they exist), never a tag to missing content.
#[track_caller]
fn check_after_kill(store: &std::path::Path, reference: &BTreeMap<String, String>, point: &str) {
    for (path, v) in visible(store) {
        if path.starts_with("git/") || path.split('/').any(|c| c.starts_with(".airlock-")) {
            continue;
        }
        // A project's page and the apt indexes are rewritten as a whole: present means final.
        assert_eq!(Some(&v), reference.get(&path), "after kill -9 at {point}, {path} is visible but not right");
    }
    store_tags_resolve(store);
    if ["place-link", "atomic-commit"].iter().any(|p| point.starts_with(p)) {
        let temps: Vec<String> = litter(store).into_iter().filter(|p| p.contains("/.airlock-")).collect();
        assert!(!temps.is_empty(), "kill -9 at {point} leaves a temporary file beside its destination");
    }
}

/// Run the import again: exit 0, the same result as an uninterrupted one, nothing left
/// lying around.
#[track_caller]
fn resume(cx: &TestContext, args: &[&str], reference: &(BTreeMap<String, String>, u64), point: &str) {
    let store = args[args.iter().position(|a| *a == "--store").unwrap() + 1];
    let r = cx.run(args).ok().json();
    let done = r["added"].as_u64().unwrap() + r["present"].as_u64().unwrap() + r["updated"].as_u64().unwrap();
    assert_eq!(done, reference.1, "after kill -9 at {point}, the re-run accounts for every artifact");
    let store = std::path::Path::new(store);
    assert_eq!(visible(store), reference.0, "after kill -9 at {point}, the re-run ends as an uninterrupted import");
    assert_eq!(litter(store), Vec::<String>::new(), "after kill -9 at {point} and a re-run");
    sh(&store.join("git/hello.git"), "git fsck --full --strict --no-dangling");
}

fn import_args<'a>(bundle: &'a str, store: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--json", "import", bundle, "--store", store];
    v.extend_from_slice(extra);
    v
}

#[test]
fn kill_at_ten_instants_of_an_import_into_the_store() {
    let cx = TestContext::new();
    let bundle = fixtures_bundle(&cx);
    let reference_store = cx.path("reference").display().to_string();
    let r = cx.run(&import_args(&bundle, &reference_store, &[])).ok().json();
    let reference = (visible(std::path::Path::new(&reference_store)), r["added"].as_u64().unwrap());
    assert!(store_tags_resolve(std::path::Path::new(&reference_store)) > 0);
    // While verifying (staging), moving blobs in, planned, a raw file's hard link beside
    // its destination, a new git repository complete but not in place, and in place, the
    // first apt index half written, the store's image tag, Python files placed but no
    // page yet, everything but the receipt.
    for (i, point) in [
        "staged:3",
        "promote:3",
        "planned:1",
        "place-link:2",
        "git-ready:1",
        "git-refs:1",
        "atomic-commit:1",
        "oci-tag:1",
        "python-placed:1",
        "receipt:1",
    ]
    .iter()
    .enumerate()
    {
        let store = cx.path(&format!("store-{i}")).display().to_string();
        let args = import_args(&bundle, &store, &[]);
        kill_at(&cx, &args, point);
        check_after_kill(std::path::Path::new(&store), &reference.0, point);
        resume(&cx, &args, &reference, point);
    }
}

#[test]
fn kill_at_ten_instants_of_an_import_into_a_registry() {
    let cx = TestContext::new();
    let bundle = fixtures_bundle(&cx);
    let registry = Registry::start(&cx.path("registry"));
    let host = registry.host();
    let prefixed = |p: &str| format!("{host}/{p}");
    let (reference_store, reference_prefix) = (cx.path("reference").display().to_string(), prefixed("reference"));
    let extra = ["--oci-insecure", "--oci-jobs", "1", "--oci-registry"];
    let mut args = import_args(&bundle, &reference_store, &extra);
    args.push(&reference_prefix);
    let r = cx.run(&args).ok().json();
    let reference = (visible(std::path::Path::new(&reference_store)), r["added"].as_u64().unwrap());
    let tags = registry_tags_resolve(&host, "reference/hello/hello");
    assert_eq!(tags.len(), 1, "{tags:?}");
    // Planned; a raw file linked; the git refs set; an apt index half written; after the
    // first and the fourth blob; after the first platform's manifest and after the index
    // (by digest, untagged); after the tag; everything but the receipt.
    for (i, point) in [
        "planned:1",
        "place-link:2",
        "git-refs:1",
        "atomic-commit:1",
        "registry-blob:1",
        "registry-blob:4",
        "registry-manifest:1",
        "registry-manifest:3",
        "registry-tag:1",
        "receipt:1",
    ]
    .iter()
    .enumerate()
    {
        let store = cx.path(&format!("store-{i}")).display().to_string();
        let prefix = prefixed(&format!("k{i}"));
        let mut args = import_args(&bundle, &store, &extra);
        args.push(&prefix);
        kill_at(&cx, &args, point);
        check_after_kill(std::path::Path::new(&store), &reference.0, point);
        let repo = format!("k{i}/hello/hello");
        let after_kill = registry_tags_resolve(&host, &repo);
        assert!(after_kill.is_empty() || after_kill == tags, "after kill -9 at {point}: {after_kill:?}");
        resume(&cx, &args, &reference, point);
        assert_eq!(registry_tags_resolve(&host, &repo), tags, "after kill -9 at {point} and a re-run");
    }
}

#[test]
fn a_killed_mirror_leaves_no_litter_for_the_next_run() {
    let cx = TestContext::new();
    let server = Server::start();
    let mut yaml = String::from("name: web\nversion: \"1\"\nfiles:\n");
    std::fs::create_dir_all(cx.path("spec/files")).unwrap();
    let urls = 3;
    for i in 0..urls {
        server.put(&format!("/f{i}"), noise(200_000, i));
        yaml.push_str(&format!("  - path: dl/f{i}\n    url: {}\n", server.url(&format!("/f{i}"))));
    }
    for i in 0..2 {
        std::fs::write(cx.path(&format!("spec/files/l{i}")), noise(1000, 100 + i)).unwrap();
        yaml.push_str(&format!("  - path: local/l{i}\n    source: files/l{i}\n"));
    }
    let spec = cx.spec(&yaml);
    let args = ["mirror", "-f", spec.to_str().unwrap(), "--jobs", "1"];
    let cache = cx.cache();
    let locks = || -> Vec<String> {
        std::fs::read_dir(cache.join("partial"))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".lock"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let temps = || -> Vec<String> {
        std::fs::read_dir(cache.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".airlock-"))
            .collect()
    };

    // Killed holding a download slot, then killed writing a blob: each leaves its file.
    kill_at(&cx, &args, "partial:2");
    assert_eq!(locks().len(), 1, "the killed download's lock file is left: {:?}", locks());
    kill_at(&cx, &args, "blob-commit:1");
    assert!(locks().is_empty(), "the next run removed the dead slot's lock file: {:?}", locks());
    assert_eq!(temps().len(), 1, "the killed write's temporary file is left");

    cx.run(&args).ok();
    assert_eq!(temps(), Vec::<String>::new(), "no temporary file is left in cache/tmp");
    assert_eq!(locks(), Vec::<String>::new(), "no lock file piles up, one per URL fetched");
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    assert_eq!(lock["artifacts"].as_array().unwrap().len(), urls as usize + 2);
}
