//! Git repositories end to end: upstream served by `git daemon`, mirrored, carried as
//! standard git bundles (full, then incremental), imported into bare repositories and
//! pushed to a remote, checked with git itself.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::gitd::{GitDaemon, git, make_upstream};
use crate::common::{TestContext, sh};

/// `git ls-remote` of a repository, as ref -> oid (peeled entries left out).
fn ls_remote(url: &str) -> BTreeMap<String, String> {
    git(Path::new("/"), &["ls-remote", url])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, r)| r.starts_with("refs/") && !r.ends_with("^{}"))
        .map(|(o, r)| (r.to_string(), o.to_string()))
        .collect()
}

struct World {
    cx: TestContext,
    daemon: GitDaemon,
    upstream: std::path::PathBuf,
}

fn world(refs: &str) -> (World, std::path::PathBuf) {
    let cx = TestContext::new();
    cx.key();
    let up = cx.path("upstream");
    let upstream = make_upstream(&up);
    let daemon = GitDaemon::start(&up);
    let spec = cx.spec(&format!(
        "name: src\nversion: \"1\"\ngit:\n  - url: {}\n    name: service\n{refs}",
        daemon.url("service")
    ));
    (World { cx, daemon, upstream }, spec)
}

fn set_version(spec: &Path, v: &str) {
    let s = std::fs::read_to_string(spec).unwrap();
    let i = s.find("version:").unwrap();
    let end = i + s[i..].find('\n').unwrap();
    std::fs::write(spec, format!("{}version: \"{v}\"{}", &s[..i], &s[end..])).unwrap();
}

#[test]
fn full_then_incremental_bundles_import_and_match_upstream() {
    let (w, spec) = world("");
    let cx = &w.cx;
    let v1 = cx.bundle(&spec, "v1", &[]).join("src-1.airlock");
    let imported = cx.run(&["--json", "import", v1.to_str().unwrap()]).ok().json();
    assert_eq!(imported["added"], crate::common::Locked::of(&spec).git_refs, "every locked ref: {imported}");
    let repo = cx.store().join("git/service.git");
    let upstream = ls_remote(&w.daemon.url("service"));
    assert_eq!(ls_remote(repo.to_str().unwrap()), upstream, "every imported ref equals upstream");
    git(&repo, &["fsck", "--full", "--strict"]);

    // The carried blob is a standard git bundle: git verifies and clones it as is.
    let unpacked = cx.path("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    sh(&unpacked, &format!("zstd -dc {} | tar -x", v1.display()));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let art = &manifest["artifacts"][0];
    assert_eq!(art["kind"], "git");
    assert_eq!(art["head"], "refs/heads/main");
    let hex = art["blobs"][0].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = unpacked.join("blobs/sha256").join(&hex);
    let verified = sh(&unpacked, &format!("git init -q empty && git -C empty bundle verify {} 2>&1", blob.display()));
    assert!(verified.contains("is okay"), "{verified}");
    git(&unpacked, &["clone", "-q", blob.to_str().unwrap(), "from-bundle"]);
    assert_eq!(git(&unpacked.join("from-bundle"), &["rev-parse", "HEAD"]), upstream["refs/heads/main"]);
    let full_size = std::fs::metadata(&blob).unwrap().len();

    // Upstream moves on; the next bundle is incremental and applies on top.
    git(&w.upstream, &["checkout", "-q", "main"]);
    std::fs::write(w.upstream.join("NEWS"), "more\n").unwrap();
    git(&w.upstream, &["add", "."]);
    git(&w.upstream, &["commit", "-qm", "news"]);
    git(&w.upstream, &["tag", "-a", "18.2.0", "-m", "release 18.2.0"]);
    set_version(&spec, "2");
    let v2 = cx.bundle(&spec, "v2", &["--since", v1.to_str().unwrap()]).join("src-2.airlock");
    let i2 = cx.run(&["--json", "inspect", v2.to_str().unwrap()]).ok().json();
    let inc = &i2["artifacts"][0];
    assert_eq!(inc["prerequisites"].as_array().unwrap().len(), 1, "{inc}");
    let inc_size = i2["blobBytes"].as_u64().unwrap();
    assert!(inc_size * 20 < full_size, "incremental {inc_size} B vs full {full_size} B");
    let r = cx.run(&["--json", "import", v2.to_str().unwrap()]).ok().json();
    assert_eq!((r["added"].as_u64(), r["updated"].as_u64()), (Some(1), Some(1)), "{r}");
    assert_eq!(ls_remote(repo.to_str().unwrap()), ls_remote(&w.daemon.url("service")));
    git(&repo, &["fsck", "--full", "--strict"]);
    let clone = cx.path("clone");
    git(cx.dir.path(), &["clone", "-q", repo.to_str().unwrap(), clone.to_str().unwrap()]);
    assert_eq!(std::fs::read(clone.join("NEWS")).unwrap(), b"more\n");

    // A site that never got v1 is told so, and nothing changes there.
    let other = TestContext::new();
    crate::common::copy_dir(&cx.config().join("trusted"), &other.config().join("trusted"));
    other.run(&["import", v2.to_str().unwrap()]).fails(2, "import the base bundle `src-1` first");
    assert!(!other.store().join("git/service.git").exists());
}

#[test]
fn patterns_select_refs_and_deleted_branches_are_pruned() {
    let (w, spec) = world("    refs: [refs/heads/main, \"refs/tags/18.*\"]\n");
    let cx = &w.cx;
    git(&w.upstream, &["branch", "feature/tmp"]);
    cx.mirror(&spec).ok();
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let refs: Vec<_> = lock["git"][0]["refs"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(refs, ["refs/heads/main", "refs/tags/18.0.0", "refs/tags/18.1.0"]);

    // An explicit ref that does not exist is an error, naming it.
    let bad = cx.spec(&format!("name: src\ngit:\n  - url: {}\n    refs: [refs/heads/nope]\n", w.daemon.url("service")));
    cx.mirror(&bad).fails(2, "has no ref `refs/heads/nope`");

    // A branch deleted upstream leaves the lock and the cache.
    let all = cx.spec(&format!("name: src\ngit:\n  - url: {}\n", w.daemon.url("service")));
    cx.mirror(&all).ok();
    git(&w.upstream, &["branch", "-D", "feature/tmp"]);
    let run = cx.mirror(&all).ok();
    assert!(run.stderr.contains("refs/heads/feature/tmp was deleted upstream"), "{}", run.stderr);
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(all.with_extension("lock")).unwrap()).unwrap();
    assert!(lock["git"][0]["refs"].get("refs/heads/feature/tmp").is_none());
}

#[test]
fn force_push_upstream_is_reported_and_refused_unless_allowed() {
    let (w, spec) = world("");
    let cx = &w.cx;
    let v1 = cx.bundle(&spec, "v1", &[]).join("src-1.airlock");
    cx.run(&["import", v1.to_str().unwrap()]).ok();
    let repo = cx.store().join("git/service.git");
    let before = ls_remote(repo.to_str().unwrap());

    git(&w.upstream, &["checkout", "-q", "stable/2024.1"]);
    git(&w.upstream, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::write(w.upstream.join("fix.txt"), "a different fix\n").unwrap();
    git(&w.upstream, &["add", "."]);
    git(&w.upstream, &["commit", "-qm", "rewritten backport"]);
    git(&w.upstream, &["checkout", "-q", "main"]);
    set_version(&spec, "2");
    let run = cx.mirror(&spec).ok();
    assert!(run.stderr.contains("refs/heads/stable/2024.1 was force-pushed upstream"), "{}", run.stderr);
    let out = cx.path("v2");
    let lock = spec.with_extension("lock");
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", out.to_str().unwrap(), "--since", v1.to_str().unwrap()])
        .ok();
    let v2 = out.join("src-2.airlock");
    cx.run(&["import", v2.to_str().unwrap()]).fails(2, "is not a fast-forward");
    assert_eq!(ls_remote(repo.to_str().unwrap()), before, "no ref changed");
    cx.run(&["import", v2.to_str().unwrap(), "--git-allow-force"]).ok();
    assert_eq!(ls_remote(repo.to_str().unwrap()), ls_remote(&w.daemon.url("service")));
}

#[test]
fn pushes_to_site_remotes_from_a_template() {
    let (w, spec) = world("");
    let cx = &w.cx;
    let v1 = cx.bundle(&spec, "v1", &[]).join("src-1.airlock");
    let remotes = cx.path("gerrit");
    git(cx.dir.path(), &["init", "-q", "--bare", remotes.join("service.git").to_str().unwrap()]);
    let template = format!("file://{}/{{name}}.git", remotes.display());
    cx.run(&["import", v1.to_str().unwrap(), "--git-push", "no-placeholder"]).fails(2, "must contain `{name}`");
    let r = cx.run(&["--json", "import", v1.to_str().unwrap(), "--git-push", &template]).ok().json();
    assert_eq!(r["pushed"], crate::common::Locked::of(&spec).git_refs, "every locked ref is pushed");
    assert_eq!(ls_remote(remotes.join("service.git").to_str().unwrap()), ls_remote(&w.daemon.url("service")));
    // The remote refuses a moved tag: the push is atomic, so nothing of it lands.
    let site = remotes.join("service.git");
    let tag = ls_remote(site.to_str().unwrap())["refs/tags/18.0.0"].clone();
    let main = ls_remote(site.to_str().unwrap())["refs/heads/main"].clone();
    git(&site, &["update-ref", "refs/tags/18.0.0", &main]);
    git(&site, &["update-ref", "refs/heads/main", &tag]);
    cx.run(&["import", v1.to_str().unwrap(), "--git-push", &template]).fails(2, "failed, so nothing of it was pushed");
    assert_eq!(ls_remote(site.to_str().unwrap())["refs/heads/main"], tag);
}
