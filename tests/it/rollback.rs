//! An import is one transaction over its targets: a refused import changes nothing (its
//! plans write nothing, not even git objects), and when a target fails after others
//! loaded, the import undoes them and says, in one line and in its `--json` result,
//! what it rolled back and exactly what stayed.

use crate::common::nginx::{Nginx, PASSWORD, USER};
use crate::common::proxy::Proxy;
use crate::common::registry::{ImageMaker, Registry, layer, noise, remote_digest};
use crate::common::snapshot::{tree, visible};
use crate::common::{TestContext, root, sh};

/// The fixtures' bundle, and a second version: one more raw file, one more commit on
/// the git repository's `main`.
fn two_versions(cx: &TestContext) -> (String, String) {
    cx.key();
    let spec = cx.fixtures();
    let v1 = cx.bundle(&spec, "v1", &[]).join("fixtures-1.0.airlock");
    let spec2 = cx.path("spec2");
    crate::common::copy_dir(&cx.path("spec"), &spec2);
    std::fs::write(spec2.join("files/CHANGES.txt"), "2.0: news\n").unwrap();
    let yaml =
        std::fs::read_to_string(spec2.join("airlock.yaml")).unwrap().replace("version: \"1.0\"", "version: \"2.0\"");
    let yaml = yaml.replace("files:\n", "files:\n  - path: notes/CHANGES.txt\n    source: files/CHANGES.txt\n");
    std::fs::write(spec2.join("airlock.yaml"), yaml).unwrap();
    sh(
        cx.dir.path(),
        &format!(
            "git clone -q --mirror {fx}/git/hello.bundle g.git && git clone -q g.git w && cd w && \
             echo more > NEWS && git add NEWS && git -c user.name=t -c user.email=t@example.org commit -qm news && \
             git push -q origin main && git -C ../g.git bundle create -q {out} --all",
            fx = root().join("fixtures").display(),
            out = spec2.join("git/hello.bundle").display()
        ),
    );
    let v2 = cx.bundle(&spec2.join("airlock.yaml"), "v2", &[]).join("fixtures-2.0.airlock");
    (v1.display().to_string(), v2.display().to_string())
}

/// The store, byte for byte, but its blobs (content named by its digest, which a failed
/// import may keep: no name points at it).
fn store_tree(cx: &TestContext) -> std::collections::BTreeMap<String, String> {
    tree(&cx.store(), &["blobs"])
}

#[test]
fn a_refused_import_changes_nothing_not_even_git_objects() {
    let cx = TestContext::new();
    let (v1, v2) = two_versions(&cx);
    cx.run(&["import", &v1]).ok();
    let before = store_tree(&cx);
    // The registry refuses every connection: `--oci-registry` is planned after the git
    // repositories, whose plan has unpacked the new commit by then.
    let dead = Proxy::start(1, 0);
    let host = format!("127.0.0.1:{}", dead.port);
    cx.run_env(&["import", &v2, "--oci-registry", &host, "--oci-insecure"], &[("AIRLOCK_BACKOFF", "10ms")])
        .fails(2, &format!("GET http://{host}/v2/"));
    assert_eq!(store_tree(&cx), before, "a refused import leaves the store as it was, git objects included");
    // The same import into the store alone goes through, the new commit with it.
    cx.run(&["import", &v2]).ok();
    assert_ne!(store_tree(&cx), before);
    sh(&cx.store().join("git/hello.git"), "git fsck --full --strict && git cat-file -e main:NEWS");
}

#[test]
fn a_registry_that_fails_after_the_store_loaded_rolls_the_store_back() {
    let cx = TestContext::new();
    let (v1, v2) = two_versions(&cx);
    cx.run(&["import", &v1]).ok();
    let before = store_tree(&cx);
    // Up for the reachability check and the blobs, then gone at the first request for a
    // manifest: by then the raw file and the git commit of v2 are in the store.
    let target = Registry::start(&cx.path("registry"));
    let proxy = Proxy::start_until(target.port, "/manifests/");
    let host = format!("127.0.0.1:{}", proxy.port);
    let args = ["--json", "import", &v2, "--oci-registry", &host, "--oci-insecure", "--oci-jobs", "1"];
    let failed = cx.run_env(&args, &[("AIRLOCK_BACKOFF", "10ms")]).fails(2, &host);
    assert!(proxy.is_down(), "the registry went away during the import");
    let line = failed.stderr.trim();
    assert!(line.contains("; rolled back all 2 changes this run had made (1 file, 1 git)"), "{line}");
    let r = failed.json();
    assert_eq!(r["ok"], false);
    assert_eq!(r["status"], "rolled-back");
    assert_eq!(r["error"].as_str().unwrap(), line.trim_start_matches("error: "));
    let undone: Vec<(&str, &str)> = r["rolledBack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["action"].as_str().unwrap()))
        .collect();
    assert_eq!(undone, [("notes/CHANGES.txt", "added"), ("hello:refs/heads/main", "updated")]);
    assert_eq!(r["stayed"], serde_json::json!([]));
    assert_eq!(store_tree(&cx), before, "the raw file is gone, the git refs and objects are as before");

    // Once the registry is back, the same import goes through.
    proxy.resume();
    let done = cx.run(&args[..args.len() - 2]).ok().json();
    assert!(done["artifacts"].as_array().unwrap().iter().any(|a| a["name"] == "hello:refs/heads/main"));
    assert!(cx.store().join("repository/raw/notes/CHANGES.txt").is_file());
}

/// The fixtures plus a second git repository, `other`: pushed after `hello`.
fn with_two_repositories(cx: &TestContext) -> String {
    cx.key();
    let spec = cx.fixtures();
    std::fs::copy(spec.with_file_name("git/hello.bundle"), spec.with_file_name("git/other.bundle")).unwrap();
    let yaml = std::fs::read_to_string(&spec).unwrap();
    let yaml = yaml.replace("    name: hello\n", "    name: hello\n  - url: git/other.bundle\n    name: other\n");
    std::fs::write(&spec, yaml).unwrap();
    cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock").display().to_string()
}

#[test]
fn a_failed_push_rolls_back_registry_tags_and_the_store_and_names_what_stayed() {
    let cx = TestContext::new();
    let bundle = with_two_repositories(&cx);
    let heads = sh(&root().join("fixtures"), "git bundle list-heads git/hello.bundle | grep -v HEAD | wc -l");
    let heads: usize = heads.trim().parse().unwrap();
    let registry = Registry::start(&cx.path("registry"));
    let host = registry.host();
    // The site's registry already has `site/hello/hello:1.0`, another image.
    let maker = ImageMaker::new(&cx.path("layouts"));
    let old = maker.push(&host, "site/hello/hello", "1.0", &[("amd64", vec![layer("old", &noise(100, 3))])]);
    // `hello` has a remote; `other` has none, so its push fails after `hello` was pushed.
    let remotes = cx.path("remotes");
    std::fs::create_dir_all(&remotes).unwrap();
    sh(&remotes, "git init -q --bare hello.git");
    let template = format!("file://{}/{{name}}.git", remotes.display());
    let import = |prefix: &str| {
        cx.run(&[
            "--json",
            "import",
            &bundle,
            "--oci-registry",
            &format!("{host}/{prefix}"),
            "--oci-insecure",
            "--git-push",
            &template,
        ])
    };

    let failed = import("site").fails(2, "other");
    let line = failed.stderr.trim().to_string();
    let r = failed.json();
    assert_eq!(r["status"], "partly-rolled-back", "{r}");
    // What stayed is exactly what the `hello` remote took.
    let stayed: Vec<&str> = r["stayed"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(stayed.len(), heads, "{r}");
    let pushed = sh(&remotes.join("hello.git"), "git for-each-ref --format='%(refname)'");
    for s in &stayed {
        let (repo, r) = s.split_once(':').unwrap();
        assert_eq!(repo, "hello");
        assert!(pushed.lines().any(|l| l == r), "{r} is listed as pushed: {pushed}");
    }
    assert!(
        r["stayed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "pushed" && s["reason"].as_str().unwrap().contains("never force-pushes"))
    );
    assert!(line.contains("these stayed: git hello:refs/"), "{line}");
    assert!(line.contains(&remotes.join("hello.git").display().to_string()), "{line}");
    // The registry's tag names the old image again; the store holds nothing visible.
    let undone = r["rolledBack"].as_array().unwrap();
    assert!(undone.iter().any(|p| p["kind"] == "image" && p["action"] == "updated"), "{r}");
    assert_eq!(remote_digest(&format!("{host}/site/hello/hello:1.0")), old);
    assert_eq!(visible(&cx.store()), Default::default(), "nothing of the import is visible in the store");

    // Into a prefix where the tag is new: undone means deleted. The `hello` remote has
    // every ref by now, so nothing stays.
    let failed = import("fresh").fails(2, "other");
    let r = failed.json();
    assert_eq!(r["status"], "rolled-back", "{r}");
    assert_eq!(r["stayed"], serde_json::json!([]));
    assert!(failed.stderr.contains("; rolled back all"), "{}", failed.stderr);
    let gone = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{host}/fresh/hello/hello:1.0")])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the tag the import added is deleted again");
    assert_eq!(visible(&cx.store()), Default::default());
    // With a remote for `other` too, the same import completes.
    sh(&remotes, "git init -q --bare other.git");
    import("fresh").ok();
    assert!(cx.store().join("git/other.git/HEAD").is_file());
}

#[test]
fn files_uploaded_to_a_raw_url_are_deleted_when_a_later_target_fails() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    let nginx = Nginx::start(&cx.path("nginx"));
    let url = nginx.url("/upload/files/");
    let auth = [("AIRLOCK_RAW_USERNAME", USER), ("AIRLOCK_RAW_PASSWORD", PASSWORD)];
    // No remote for the git push: it fails last, after the files went up.
    let template = format!("file://{}/{{name}}.git", cx.path("no-remotes").display());
    let args = ["--json", "import", bundle.to_str().unwrap(), "--raw-url", &url, "--git-push", &template];
    let failed = cx.run_env(&args, &auth).fails(2, "pushing to");
    let r = failed.json();
    let files: Vec<&str> = r["rolledBack"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "file")
        .map(|p| p["location"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), crate::common::Locked::of(&spec).files, "every uploaded file: {r}");
    assert!(files.iter().all(|f| f.starts_with(&url)), "{files:?}");
    assert_eq!(r["stayed"], serde_json::json!([]));
    let left: Vec<_> = walkdir::WalkDir::new(nginx.root.join("upload/files"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().display().to_string())
        .collect();
    assert_eq!(left, Vec::<String>::new(), "every uploaded file was deleted again");
}
