//! `artifacts:` in the spec: OCI artifacts chosen by version range with the dependencies
//! their manifest.yaml names, pushed by `airlock oci push` into a real docker-registry,
//! resolved by `mirror` and `oci tree` (a diamond, a cycle, an unsatisfiable pair),
//! carried in a bundle and pulled back from a fresh registry and from `airlock serve`
//! with the upstream stopped.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::common::TestContext;
use crate::common::registry::Registry;
use crate::common::server::Server;

/// An extension version: name, tag, dependencies as (name, range).
type Version = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The fixture graph, under `extensions/`: (name, tag, dependencies).
///
/// - app 1.0.0, v1.2.0 → db >=2, cache ^1; app 2.0.0 → db >=3
/// - cache 1.0.0; cache 1.1.0 → db >=2.1 <3       (the diamond: app → db and app → cache → db)
/// - db 1.5.0, 2.0.0, 2.1.0, 3.0.0
/// - ring 1.0.0 → loop >=1; loop 1.0.0 → ring ^1  (the cycle)
/// - broken 1.0.0 → db >=3, cache >=1.1          (unsatisfiable: cache 1.1.0 wants db <3)
const GRAPH: &[Version] = &[
    ("app", "1.0.0", &[("db", ">=2"), ("cache", "^1")]),
    ("app", "v1.2.0", &[("db", ">=2"), ("cache", "^1")]),
    ("app", "2.0.0", &[("db", ">=3")]),
    ("cache", "1.0.0", &[]),
    ("cache", "1.1.0", &[("db", ">=2.1 <3")]),
    ("db", "1.5.0", &[]),
    ("db", "2.0.0", &[]),
    ("db", "2.1.0", &[]),
    ("db", "3.0.0", &[]),
    ("ring", "1.0.0", &[("loop", ">=1")]),
    ("loop", "1.0.0", &[("ring", "^1")]),
    ("broken", "1.0.0", &[("db", ">=3"), ("cache", ">=1.1")]),
];

/// The directory of one extension version.
fn fixture_dir(cx: &TestContext, name: &str, tag: &str) -> PathBuf {
    cx.path(&format!("fixtures/{name}-{tag}"))
}

/// Write every extension version and push it with `airlock oci push`.
fn push_graph(cx: &TestContext, host: &str) {
    std::thread::scope(|s| {
        for (name, tag, deps) in GRAPH {
            s.spawn(move || {
                let dir = fixture_dir(cx, name, tag);
                std::fs::create_dir_all(dir.join("data")).unwrap();
                let mut y = format!(
                    "name: {name}\ntype: extension\nversion: {}\nplatforms: [linux/amd64]\n",
                    tag.trim_start_matches('v')
                );
                if !deps.is_empty() {
                    y += "dependencies:\n";
                    for (d, r) in *deps {
                        y += &format!("  {d}: \"{r}\"\n");
                    }
                }
                std::fs::write(dir.join("manifest.yaml"), y).unwrap();
                std::fs::write(dir.join(format!("data/{name}.txt")), format!("{name} at {tag}\n").repeat(50)).unwrap();
                let r = format!("{host}/extensions/{name}:{tag}");
                cx.run(&["oci", "push", dir.to_str().unwrap(), &r, "--insecure"]).ok();
            });
        }
    });
}

fn spec_file(cx: &TestContext, dir: &str, host: &str, artifacts: &[(&str, &str)]) -> PathBuf {
    let mut y = format!("name: exts\nversion: \"1\"\nregistries:\n  \"{host}\":\n    insecure: true\nartifacts:\n");
    for (name, range) in artifacts {
        y += &format!("  - repository: {host}/extensions/{name}\n    version: \"{range}\"\n");
    }
    let p = cx.path(&format!("{dir}/airlock.yaml"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, y).unwrap();
    p
}

#[test]
fn ranges_resolve_travel_and_pull_offline() {
    let cx = TestContext::new();
    cx.key();
    let mut up = Registry::start(&cx.path("upstream"));
    let h = up.host();
    push_graph(&cx, &h);

    // The diamond: app (>=1 <2 → v1.2.0) needs db >=2 and cache ^1, cache 1.1.0 needs db
    // >=2.1 <3: one db, 2.1.0 (3.0.0 would break cache's range).
    let tree = cx.run(&["oci", "tree", &format!("{h}/extensions/app:v1.2.0"), "--insecure"]).ok().stdout;
    let lines: Vec<String> = tree.lines().map(|l| l.split(" sha256:").next().unwrap().to_string()).collect();
    assert_eq!(
        lines,
        ["app 1.2.0", "├── cache 1.1.0 (^1)", "│   └── db 2.1.0 (>=2.1 <3)", "└── db 2.1.0 (>=2)"],
        "{tree}"
    );
    let j = cx.run(&["--json", "oci", "tree", &format!("{h}/extensions/app:v1.2.0"), "--insecure"]).ok().json();
    assert_eq!(j["tree"][0]["tag"], "v1.2.0");
    assert_eq!(j["tree"][0]["dependencies"][0]["name"], "cache");
    assert_eq!(j["tree"][0]["dependencies"][1]["version"], "2.1.0");

    // The cycle and the unsatisfiable pair: refused by tree and by mirror, naming the paths.
    let cycle = "artifact ring: dependency cycle: ring 1.0.0 → loop 1.0.0 → ring 1.0.0";
    cx.run(&["oci", "tree", &format!("{h}/extensions/ring:1.0.0"), "--insecure"]).fails(2, cycle);
    let conflict = format!(
        "artifact db: conflicting version ranges: broken 1.0.0 → db >=3 and broken 1.0.0 → cache 1.1.0 → db >=2.1 <3; no version of {h}/extensions/db satisfies both"
    );
    cx.run(&["oci", "tree", &format!("{h}/extensions/broken:1.0.0"), "--insecure"]).fails(2, &conflict);
    let s = spec_file(&cx, "cycle", &h, &[("ring", "*")]);
    let r = cx.run(&["mirror", "-f", s.to_str().unwrap()]).fails(2, cycle);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(!s.with_extension("lock").exists());
    // With app in the spec too, cache is reached through app first: that chain is named.
    let s = spec_file(&cx, "broken", &h, &[("app", "^1"), ("broken", "1.0.0")]);
    cx.run(&["mirror", "-f", s.to_str().unwrap()]).fails(
        2,
        &format!(
            "artifact db: conflicting version ranges: broken 1.0.0 → db >=3 and app 1.2.0 → cache 1.1.0 → db >=2.1 <3; no version of {h}/extensions/db satisfies both"
        ),
    );
    let s = spec_file(&cx, "broken-alone", &h, &[("broken", "1.0.0")]);
    cx.run(&["mirror", "-f", s.to_str().unwrap()]).fails(2, &conflict);
    let s = spec_file(&cx, "none", &h, &[("db", ">=4")]);
    cx.run(&["mirror", "-f", s.to_str().unwrap()]).fails(
        2,
        &format!(
            "artifact db: no version satisfies db >=4 (spec); {h}/extensions/db has tags 1.5.0, 2.0.0, 2.1.0, 3.0.0"
        ),
    );

    // The good spec: the lock and the bundle carry exactly the resolved set.
    let spec = spec_file(&cx, "good", &h, &[("app", ">=1 <2")]);
    let out = cx.bundle(&spec, "out", &[]);
    let want: BTreeSet<(String, String)> = [("app", "v1.2.0"), ("cache", "1.1.0"), ("db", "2.1.0")]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let locked: BTreeSet<(String, String)> = lock["ociArtifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["repository"].as_str().unwrap().rsplit('/').next().unwrap().to_string(),
                a["tag"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(locked, want);
    let db = lock["ociArtifacts"].as_array().unwrap().iter().find(|a| a["tag"] == "2.1.0").unwrap();
    assert_eq!(db["version"], "2.1.0");
    assert_eq!(db["requiredBy"], serde_json::json!(["app 1.2.0 → db >=2", "app 1.2.0 → cache 1.1.0 → db >=2.1 <3"]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("out.unpacked-manifest")).unwrap()).unwrap();
    let carried: BTreeSet<(String, String)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["kind"], "image", "{a}");
            assert_eq!(a["artifactType"], "application/vnd.airlock.artifact.v1", "{a}");
            let name = a["name"].as_str().unwrap().strip_prefix(&format!("{h}/extensions/")).unwrap();
            let (n, t) = name.split_once(':').unwrap();
            assert_eq!(a["version"], t);
            (n.to_string(), t.to_string())
        })
        .collect();
    assert_eq!(carried, want, "no more, no fewer");
    let blobs: Vec<&str> =
        manifest["blobs"].as_array().unwrap().iter().map(|b| b["digest"].as_str().unwrap()).collect();
    assert_eq!(blobs.len(), blobs.iter().collect::<BTreeSet<_>>().len(), "each blob once");
    // 3 manifests, 3 layers, one shared empty config.
    assert_eq!(blobs.len(), 7, "{blobs:?}");

    // The other side: the upstream is gone.
    up.stop();
    let bundle = out.join("exts-1.airlock");
    let mut target = Registry::start(&cx.path("target"));
    let t = target.host();
    cx.run(&["import", bundle.to_str().unwrap(), "--oci-registry", &t, "--oci-insecure"]).ok();
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    let srv = Server::start(&cx, &[]);
    for (name, tag) in &want {
        for (at, from) in [("registry", &t), ("serve", &srv.addr)] {
            let dest = cx.path(&format!("pulled-{at}-{name}"));
            cx.run(&[
                "oci",
                "pull",
                &format!("{from}/extensions/{name}:{tag}"),
                "-o",
                dest.to_str().unwrap(),
                "--insecure",
            ])
            .ok();
            crate::oci::same_tree(&fixture_dir(&cx, name, tag), &dest);
        }
    }
    // Only the resolved set reached the site.
    let tags = cx.run(&["--json", "oci", "tags", &format!("{t}/extensions/db"), "--insecure"]).ok().json();
    assert_eq!(tags["tags"], serde_json::json!(["2.1.0"]));
    target.stop();
}
