//! Site state: the ledger, annotations, policy, promotion between environments, history
//! and status, on the fixtures (every kind of artifact) and on loopback servers.

use std::path::Path;
use std::process::Stdio;

use crate::common::registry::Registry;
use crate::common::snapshot::{registry_tags_resolve, tree};
use crate::common::{TestContext, validate_json};

/// Write `site.yaml` with staging (the store only) and production (images to `registry`,
/// the rest to its store, and a policy that wants staged=true from staging).
fn site_file(cx: &TestContext, registry: &str) -> String {
    let path = cx.path("site.yaml");
    std::fs::write(
        &path,
        format!(
            "environments:\n  staging:\n    store: stores/staging\n  production:\n    store: stores/production\n    \
             targets:\n      oci-registry: {registry}/prod\n      oci-insecure: true\n    policy:\n      \
             require-annotations:\n        - {{key: staged, value: \"true\", env: staging}}\n      max-age: 30d\n      \
             require-sbom: true\n      deny: [\"pkg:pypi/evil*\"]\n  quarantine:\n    store: stores/quarantine\n    \
             policy:\n      signers: [\"0123456789ABCDEF\"]\n      deny: [\"pkg:generic/*\"]\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn json_file(cx: &TestContext, name: &str, stdout: &str) -> std::path::PathBuf {
    let p = cx.path(name);
    std::fs::write(&p, stdout).unwrap();
    p
}

/// What production's targets hold: the registry's storage and the store's repositories.
fn production_targets(
    cx: &TestContext,
    registry: &Registry,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let store = cx.path("stores/production");
    let placed: Vec<String> = ["repository", "git", "oci", "receipts", "imported.json"]
        .iter()
        .filter(|d| store.join(d).exists())
        .map(|d| d.to_string())
        .collect();
    (tree(&registry.root.join("storage"), &[]), placed)
}

#[test]
fn staging_annotate_promote_with_the_policy_refusing_first() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "v1", &[]).join("fixtures-1.0.airlock");
    let b = bundle.to_str().unwrap();
    let registry = Registry::start(&cx.path("registry"));
    let site = site_file(&cx, &registry.host());

    // The factory's cache recorded the export.
    let exports = cx.run(&["--json", "history", "--store", cx.cache().to_str().unwrap()]).ok().json();
    let e = &exports["entries"][0];
    assert_eq!((e["op"].as_str(), e["status"].as_str()), (Some("export"), Some("completed")), "{exports}");
    assert_eq!(e["bundle"]["name"], "fixtures");

    let r = cx.run(&["--json", "import", b, "--env", "staging", "--site", &site]).ok().json();
    let manifest = r["manifest"].as_str().unwrap().to_string();
    assert!(r["added"].as_u64().unwrap() > 5, "{r}");
    assert!(cx.path("stores/staging/oci").is_dir(), "staging's images went to its store");

    // Verified for production, not imported: pending there.
    cx.run(&["verify", b, "--env", "production", "--site", &site]).ok();
    let s = cx.run(&["--json", "status", "--env", "production", "--site", &site]).ok().json();
    let pending = &s["environments"][0]["pending"];
    assert_eq!((pending[0]["state"].as_str(), pending.as_array().unwrap().len()), (Some("verified"), 1), "{s}");
    assert_eq!(s["environments"][0]["imported"].as_array().unwrap().len(), 0);

    // Before the annotation: the dry run and the promotion are refused, naming the rule,
    // and production's targets are as they were.
    let before = production_targets(&cx, &registry);
    let rule = "policy `production`: requires annotation staged=true from env staging; bundle fixtures-1.0 has none";
    cx.run(&["policy", "check", b, "--env", "production", "--site", &site]).fails(2, rule);
    cx.run(&["promote", b, "--from", "staging", "--to", "production", "--site", &site]).fails(2, rule);
    assert_eq!(production_targets(&cx, &registry), before, "a refused promotion writes nothing to production");
    assert!(before.1.is_empty(), "{:?}", before.1);
    assert!(registry_tags_resolve(&registry.host(), "prod/hello/hello").is_empty());

    // A policy with other rules: each failed rule is named on the one line.
    let q = cx.run(&["policy", "check", b, "--env", "quarantine", "--site", &site]).fails(2, "policy `quarantine`: ");
    assert!(q.stderr.contains("signed by 0123456789ABCDEF; bundle fixtures-1.0 is signed by"), "{}", q.stderr);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("v1.unpacked-manifest")).unwrap()).unwrap();
    let artifacts = m["artifacts"].as_array().unwrap();
    let files = artifacts.iter().filter(|a| a["purl"].as_str().unwrap().starts_with("pkg:generic/")).count();
    assert!(files >= 4, "the fixtures' files are generic packages");
    assert!(q.stderr.contains("requires debian, file, git, image, python artifacts signed by 0123456789ABCDEF"));
    let denied = format!("refuses {files} artifacts of bundle fixtures-1.0: file pkg:generic/");
    assert!(q.stderr.contains(&denied), "{}", q.stderr);

    // A bundle that was never imported into the source environment cannot be promoted.
    cx.run(&["promote", b, "--from", "quarantine", "--to", "production", "--site", &site])
        .fails(2, "was never imported into env `quarantine`");

    // Annotate in staging, then promote.
    let a = cx.run(&["--json", "annotate", "fixtures-1.0", "staged=true", "--env", "staging", "--site", &site]).ok();
    assert_eq!(a.json()["set"]["staged"], "true");
    let list = cx.run(&["annotations", &manifest, "--env", "staging", "--site", &site]).ok().stdout;
    assert!(list.contains("staged=true  env staging  by "), "{list}");
    cx.run(&["policy", "check", b, "--env", "production", "--site", &site]).ok();
    let p = cx.run(&["--json", "promote", b, "--from", "staging", "--to", "production", "--site", &site]).ok().json();
    assert_eq!(p["manifest"], manifest.as_str());
    let tags = registry_tags_resolve(&registry.host(), "prod/hello/hello");
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["1.0"], "production's registry has the image now");
    assert!(cx.path("stores/production/repository/raw/src/hello-1.0.tar.gz").is_file());
    assert!(!cx.path("stores/production/oci").exists(), "production's images went to its registry, not its store");
    // The bundle file is unchanged by the annotation: it still verifies.
    cx.run(&["verify", b]).ok();

    // history: the refusal, the decisions and the promotion, in text and JSON.
    let text = cx.run(&["history", "--env", "production", "--site", &site]).ok().stdout;
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("20")).collect();
    let ops: Vec<String> =
        lines.iter().map(|l| l.split_whitespace().skip(1).take(2).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        ops,
        [
            "verify verified",
            "policy refused",
            "promote refused",
            "policy refused",
            "policy allowed",
            "promote completed",
            "policy allowed"
        ],
        "{text}"
    );
    assert!(text.contains(rule), "{text}");
    let h = cx.run(&["--json", "history", "--env", "production", "--site", &site]).ok();
    validate_json(&json_file(&cx, "history.json", &h.stdout), "history.schema.json");
    let done = &h.json()["entries"][5];
    assert_eq!(done["source"].as_str().unwrap(), format!("{b} (promoted from env staging)"));
    assert!(done["targets"].as_array().unwrap().iter().any(|t| *t == format!("oci-registry:{}/prod", registry.host())));
    let image = done["artifacts"].as_array().unwrap().iter().find(|a| a["kind"] == "image").unwrap();
    assert_eq!(image["action"], "added");
    assert_eq!(image["purl"].as_str().unwrap().split('@').next(), Some("pkg:oci/hello"), "{image}");

    // --artifact by purl: only runs that touched it, only its line.
    let purl = image["purl"].as_str().unwrap();
    let h = cx.run(&["--json", "history", "--artifact", purl, "--store", cx.path("stores/staging").to_str().unwrap()]);
    let entries = h.ok().json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["artifacts"].as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["env"], "staging");
    // --since in the future: nothing.
    let later =
        cx.run(&["--json", "history", "--since", "2999-01-01", "--env", "staging", "--site", &site]).ok().json();
    assert_eq!(later["entries"].as_array().unwrap().len(), 0);

    // status: both environments; what the bundle set in production; quarantine refused it.
    let s = cx.run(&["--json", "status", "--site", &site]).ok();
    validate_json(&json_file(&cx, "status.json", &s.stdout), "status.schema.json");
    let s = s.json();
    let env = |n: &str| s["environments"].as_array().unwrap().iter().find(|e| e["name"] == n).unwrap().clone();
    let prod = env("production");
    assert_eq!(prod["imported"].as_array().unwrap().len(), 1);
    assert_eq!(prod["imported"][0]["op"], "promote");
    let set = prod["imported"][0]["set"].as_array().unwrap();
    assert!(
        set.iter().any(|a| a["kind"] == "image" && a["location"].as_str().unwrap().contains("/prod/hello/hello:1.0")),
        "{set:?}"
    );
    assert!(set.iter().any(|a| a["kind"] == "git" && a["name"].as_str().unwrap().starts_with("hello:refs/")));
    assert_eq!(prod["pending"].as_array().unwrap().len(), 0, "the refusal was followed by the promotion");
    assert_eq!(env("staging")["imported"][0]["bundle"]["manifest"], manifest.as_str());
    let quarantine = env("quarantine");
    assert_eq!(quarantine["pending"][0]["state"], "refused", "{quarantine}");
    let text = cx.run(&["status", "--site", &site]).ok().stdout;
    assert!(text.contains("environment production"), "{text}");
    assert!(text.contains("pending  fixtures-1.0"), "{text}");
}

/// A bundle of `n` small files named `name`.
fn small_bundle(cx: &TestContext, name: &str, n: usize) -> String {
    let dir = cx.path(&format!("spec-{name}"));
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let mut yaml = format!("name: {name}\nversion: \"1\"\nfiles:\n");
    for i in 0..n {
        std::fs::write(dir.join(format!("files/f{i}")), format!("{name} {i}\n")).unwrap();
        yaml.push_str(&format!("  - path: {name}/f{i}\n    source: files/f{i}\n"));
    }
    let spec = dir.join("airlock.yaml");
    std::fs::write(&spec, yaml).unwrap();
    cx.bundle(&spec, &format!("out-{name}"), &["--compression", "none"])
        .join(format!("{name}-1.airlock"))
        .display()
        .to_string()
}

fn imports(cx: &TestContext) -> Vec<serde_json::Value> {
    let h = cx.run(&["--json", "history"]).ok();
    validate_json(&json_file(cx, "history.json", &h.stdout), "history.schema.json");
    h.json()["entries"].as_array().unwrap().iter().filter(|e| e["op"] == "import").cloned().collect()
}

#[test]
fn two_concurrent_imports_into_one_store_serialise_and_both_are_recorded() {
    let cx = TestContext::new();
    cx.key();
    let a = small_bundle(&cx, "alpha", 20);
    let b = small_bundle(&cx, "beta", 20);
    let spawn = |bundle: &str| {
        cx.command().args(["import", bundle]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (ca, cb) = (spawn(&a), spawn(&b));
    for c in [ca, cb] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let runs = imports(&cx);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let mut names: Vec<&str> = runs.iter().map(|r| r["bundle"]["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);
    for r in &runs {
        assert_eq!(r["status"], "completed");
        assert_eq!(r["artifacts"].as_array().unwrap().len(), 20);
    }
    // One after the other: the second started (took the lock) once the first finished.
    assert!(runs[1]["started"].as_str() >= runs[0]["finished"].as_str(), "{runs:?}");
    for name in ["alpha", "beta"] {
        assert!(cx.store().join(format!("repository/raw/{name}/f19")).is_file());
    }
}

#[test]
fn an_import_killed_with_sigkill_is_recorded_as_interrupted_and_the_rerun_as_completed() {
    let cx = TestContext::new();
    cx.key();
    let bundle = small_bundle(&cx, "gamma", 5);
    let store = cx.store().display().to_string();
    crate::interrupt::kill_at(&cx, &["import", &bundle, "--store", &store], "planned:1");
    let runs = imports(&cx);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "interrupted", "{runs:?}");
    assert_eq!(runs[0]["finished"], serde_json::Value::Null);
    assert_eq!(runs[0]["bundle"]["name"], "gamma", "the run names the bundle it verified");
    let text = cx.run(&["history"]).ok().stdout;
    assert!(text.contains(" import   interrupted "), "{text}");

    cx.run(&["import", &bundle]).ok();
    let runs = imports(&cx);
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["interrupted", "completed"]);
    assert_eq!(runs[1]["artifacts"].as_array().unwrap().len(), 5);
    // The rerun wrote the interruption down: the database itself says so now.
    let db = rusqlite_status(&cx.store());
    assert_eq!(db, ["interrupted", "completed"]);
}

/// The statuses the ledger's database holds, read with the sqlite3 library directly.
fn rusqlite_status(store: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(store.join("ledger.sqlite")).unwrap();
    let mut stmt = conn.prepare("SELECT status FROM runs WHERE op = 'import' ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn a_store_from_before_the_ledger_keeps_its_history() {
    let cx = TestContext::new();
    cx.key();
    let bundle = small_bundle(&cx, "delta", 2);
    cx.run(&["import", &bundle]).ok();
    for f in ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"] {
        let _ = std::fs::remove_file(cx.store().join(f));
    }
    let runs = imports(&cx);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["source"], "imported.json");
    assert_eq!(runs[0]["bundle"]["name"], "delta");
    assert_eq!(runs[0]["status"], "completed");
    // Its annotations can be made by name.
    cx.run(&["annotate", "delta-1", "ticket=OPS-12"]).ok();
    let list = cx.run(&["--json", "annotations", "delta-1"]).ok().json();
    assert_eq!(list["annotations"][0]["key"], "ticket");
    cx.run(&["annotate", "delta-1", "--remove", "ticket"]).ok();
    let list = cx.run(&["--json", "annotations", "delta-1"]).ok().json();
    assert_eq!(list["annotations"].as_array().unwrap().len(), 0);
    cx.run(&["annotate", "nosuch-1", "a=b"]).fails(2, "knows no bundle `nosuch-1`");
}

#[test]
fn gc_frees_exactly_the_blobs_of_a_replaced_image_while_clients_pull() {
    crate::common::require("curl");
    let cx = TestContext::new();
    cx.key();
    let spec_for = |version: &str, seed: u64| {
        crate::receipt::write_image(&cx.path("spec/images/app"), seed);
        std::fs::create_dir_all(cx.path("spec/files")).unwrap();
        std::fs::write(cx.path("spec/files/notes.txt"), b"the same in both\n").unwrap();
        cx.spec(&format!(
            "name: site-inputs\nversion: \"{version}\"\nfiles:\n  - path: notes.txt\n    source: files/notes.txt\n\
             images:\n  - ref: factory.example/app:1.0\n    layout: images/app\n"
        ))
    };
    let blobs_of = |out: &str| -> std::collections::BTreeSet<String> {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cx.path(&format!("{out}.unpacked-manifest"))).unwrap()).unwrap();
        m["blobs"].as_array().unwrap().iter().map(|b| b["digest"].as_str().unwrap().to_string()).collect()
    };
    let spec = spec_for("1", 1);
    let v1 = cx.bundle(&spec, "v1", &["--compression", "none"]).join("site-inputs-1.airlock");
    cx.run(&["import", v1.to_str().unwrap()]).ok();
    let spec = spec_for("2", 2);
    let v2 = cx.bundle(&spec, "v2", &["--compression", "none"]).join("site-inputs-2.airlock");
    let r = cx.run(&["--json", "import", v2.to_str().unwrap()]).ok().json();
    let image = r["artifacts"].as_array().unwrap().iter().find(|a| a["kind"] == "image").unwrap().clone();
    assert_eq!(image["action"], "updated", "v2 moved the tag: {image}");
    let (b1, b2) = (blobs_of("v1"), blobs_of("v2"));
    let older: Vec<String> = b1.difference(&b2).cloned().collect();
    assert!(older.len() >= 3, "v1's manifest, config and data layer (and its SBOM, provenance): {older:?}");
    let has = |d: &str| cx.store().join("blobs/sha256").join(d.trim_start_matches("sha256:")).is_file();

    // Within the grace window nothing goes.
    let g = cx.run(&["--json", "gc", "--dry-run"]).ok().json();
    assert_eq!(g["blobs"].as_array().unwrap().len(), 0, "{g}");
    // The dry run lists exactly the older blobs and frees none.
    let g = cx.run(&["--json", "gc", "--dry-run", "--grace", "0s"]).ok().json();
    let listed: Vec<String> =
        g["blobs"].as_array().unwrap().iter().map(|b| b["digest"].as_str().unwrap().into()).collect();
    assert_eq!(listed, older, "{g}");
    assert!(older.iter().all(|d| has(d)), "a dry run frees nothing");

    // A client pulls the tag and everything it names, over and over, while gc runs.
    let srv = crate::common::server::Server::start(&cx, &[]);
    let mut urls = vec![srv.url("/v2/app/manifests/1.0")];
    urls.extend(b2.iter().filter(|d| has(d)).map(|d| srv.url(&format!("/v2/app/blobs/{d}"))));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let puller = {
        let (stop, urls) = (stop.clone(), urls.clone());
        std::thread::spawn(move || {
            let mut codes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || codes.is_empty() {
                let mut cmd = std::process::Command::new("curl");
                cmd.args(["-s", "-w", "%{http_code}\\n", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"]);
                for u in &urls {
                    cmd.args(["-o", "/dev/null", u]);
                }
                let out = cmd.output().unwrap();
                codes.extend(String::from_utf8_lossy(&out.stdout).lines().map(String::from));
            }
            codes
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let g = cx.run(&["--json", "gc", "--grace", "0s"]).ok().json();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes = puller.join().unwrap();
    assert!(codes.len() >= urls.len(), "{codes:?}");
    let bad: Vec<&String> = codes.iter().filter(|c| *c != "200").collect();
    assert!(bad.is_empty(), "a client got {bad:?} while gc ran ({} requests)", codes.len());
    let freed: Vec<String> =
        g["blobs"].as_array().unwrap().iter().map(|b| b["digest"].as_str().unwrap().into()).collect();
    assert_eq!(freed, older);
    assert!(older.iter().all(|d| !has(d)), "the older blobs are gone");
    assert!(b2.iter().all(|d| has(d)), "every blob of the newer bundle stays");
    assert!(cx.store().join("repository/raw/notes.txt").is_file());
    // The image is still whole: skopeo reads it from the store's registry.
    crate::common::sh(
        cx.dir.path(),
        &format!("skopeo copy --quiet --src-tls-verify=false docker://{}/app:1.0 dir:pulled", srv.addr),
    );
    // Recorded in the ledger; a second run frees nothing.
    let h = cx.run(&["--json", "history"]).ok().json();
    let run = h["entries"].as_array().unwrap().iter().find(|e| e["op"] == "gc").unwrap().clone();
    assert_eq!(run["artifacts"].as_array().unwrap().len(), older.len());
    assert!(run["artifacts"].as_array().unwrap().iter().all(|a| a["action"] == "freed"));
    let again = cx.run(&["--json", "gc", "--grace", "0s"]).ok().json();
    assert_eq!(again["blobs"].as_array().unwrap().len(), 0);
}

#[test]
fn gc_frees_nothing_when_a_tagged_manifest_cannot_be_read() {
    let cx = TestContext::new();
    cx.key();
    crate::receipt::write_image(&cx.path("spec/images/app"), 1);
    let spec = cx
        .spec("name: site-inputs\nversion: \"1\"\nimages:\n  - ref: factory.example/app:1.0\n    layout: images/app\n");
    let v1 = cx.bundle(&spec, "v1", &["--compression", "none"]).join("site-inputs-1.airlock");
    cx.run(&["import", v1.to_str().unwrap()]).ok();
    let tag = walkdir::WalkDir::new(cx.store().join("oci"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .find(|p| p.parent().is_some_and(|d| d.ends_with("tags")))
        .expect("a tag file");
    let digest: airlock::digest::Digest = std::fs::read_to_string(&tag).unwrap().trim().parse().unwrap();
    // The tagged manifest's bytes rot: what it names can no longer be known.
    std::fs::write(cx.store().join("blobs/sha256").join(digest.hex()), b"not a manifest").unwrap();
    let blobs = || std::fs::read_dir(cx.store().join("blobs/sha256")).unwrap().count();
    let before = blobs();
    cx.run(&["gc", "--grace", "0s"]).fails(2, &format!("manifest {digest} is not JSON"));
    assert_eq!(blobs(), before, "nothing was freed");
}
