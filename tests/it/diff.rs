//! `airlock diff` between two versions of the fixture bundle: the artifacts added, removed
//! and changed, git refs ref by ref, derived here from the two locks and checked against
//! what diff reports, with the JSON and the text, and with and without a local git
//! repository to tell fast-forwards from forced moves.

use std::collections::BTreeMap;

use airlock::lock::Lock;

use crate::common::{TestContext, sh};

/// (kind, name, version) of every artifact, keyed as a site would see it.
type Arts = BTreeMap<(String, String), (String, String)>;

/// key -> (name, identity) for every artifact of a lock. Python files are keyed without
/// their version, so that a new release of the same file is a change.
fn artifacts(lock: &Lock) -> Arts {
    let mut m = Arts::new();
    for a in &lock.artifacts {
        m.insert(("file".into(), a.name.to_string()), (a.name.to_string(), a.digest.to_string()));
    }
    for i in &lock.images {
        m.insert(("image".into(), i.name.clone()), (i.name.clone(), i.digest.to_string()));
    }
    for g in &lock.git {
        m.insert(("git".into(), g.name.clone()), (g.name.clone(), format!("{:?}", g.refs)));
    }
    for p in &lock.python {
        let key = format!("{}/{}", p.index, p.filename.replacen(&format!("-{}", p.version), "", 1));
        m.insert(("python".into(), key), (p.filename.clone(), p.digest.to_string()));
    }
    for d in &lock.debian {
        for p in &d.packages {
            m.insert(("debian".into(), format!("{}/{}", p.package, p.arch)), (p.package.clone(), p.digest.to_string()));
        }
    }
    m
}

/// The (kind, name) pairs of one list of diff's JSON, sorted.
fn listed(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap().to_string(), i["name"].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn diff_between_two_fixture_versions_lists_exactly_what_changed() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let v1 = cx.bundle(&spec, "v1", &[]).join("fixtures-1.0.airlock");
    let lock1 = Lock::load(&spec.with_extension("lock")).unwrap();

    // Version 1.1 of the fixtures: a file changed, one added and one dropped; a Python
    // requirement added (which moves others to other versions); in git a commit on main,
    // a branch deleted and a tag moved.
    let dir = spec.parent().unwrap();
    std::fs::write(dir.join("files/NOTICE.txt"), "a changed notice\n").unwrap();
    std::fs::write(dir.join("files/new.txt"), "new in 1.1\n").unwrap();
    sh(
        dir,
        "git clone -q --bare git/hello.bundle git/hello.git && git clone -q git/hello.git work && cd work && \
         echo more > MORE && git add MORE && git -c user.name=t -c user.email=t@example.invalid commit -qm more && \
         git push -q origin main && cd .. && git -C git/hello.git branch -q -D stable/1.0 && \
         git -C git/hello.git tag -f 1.0.1 main >/dev/null",
    );
    let yaml = std::fs::read_to_string(&spec).unwrap();
    let yaml = yaml
        .replace("version: \"1.0\"", "version: \"1.1\"")
        .replace("  - path: bin/arm64/tool-2.3\n    source: files/tool-2.3-arm64\n    arch: arm64\n", "")
        .replace("files:\n", "files:\n  - path: extra/new.txt\n    source: files/new.txt\n")
        .replace("url: git/hello.bundle", "url: git/hello.git")
        .replace("requirements: [\"aldemo-app\"]", "requirements: [\"aldemo-app\", \"aldemo-plugin\"]");
    std::fs::write(&spec, yaml).unwrap();
    let v2 = cx.bundle(&spec, "v2", &[]).join("fixtures-1.1.airlock");
    let lock2 = Lock::load(&spec.with_extension("lock")).unwrap();

    // The expectation, from the two locks.
    let (a, b) = (artifacts(&lock1), artifacts(&lock2));
    let mut added: Vec<_> =
        b.iter().filter(|(k, _)| !a.contains_key(k)).map(|(k, v)| (k.0.clone(), v.0.clone())).collect();
    let mut removed: Vec<_> =
        a.iter().filter(|(k, _)| !b.contains_key(k)).map(|(k, v)| (k.0.clone(), v.0.clone())).collect();
    let mut changed: Vec<_> = b
        .iter()
        .filter(|(k, v)| a.get(k).is_some_and(|old| old.1 != v.1))
        .map(|(k, v)| (k.0.clone(), v.0.clone()))
        .collect();
    added.sort();
    removed.sort();
    changed.sort();
    for kind in ["file", "python"] {
        assert!(
            added.iter().any(|x| x.0 == kind) && removed.iter().any(|x| x.0 == kind),
            "{kind}: {added:?} {removed:?}"
        );
    }
    assert!(changed.iter().any(|x| x.0 == "git") && changed.iter().any(|x| x.0 == "python"), "{changed:?}");
    let unchanged = b.len() - added.len() - changed.len();
    assert!(b.keys().any(|k| k.0 == "image") && !changed.iter().any(|x| x.0 == "image"), "the image did not change");
    // Each ref: added or deleted, a tag moved (forced), a branch moved: whether that was a
    // fast-forward, git says in the upstream repository.
    let upstream = dir.join("git/hello.git");
    let (r1, r2) = (&lock1.git[0].refs, &lock2.git[0].refs);
    let mut refs: Vec<(String, String)> = Vec::new();
    for r in r1.keys().chain(r2.keys()).collect::<std::collections::BTreeSet<_>>() {
        let change = match (r1.get(r), r2.get(r)) {
            (Some(x), Some(y)) if x == y => continue,
            (None, _) => "added",
            (_, None) => "deleted",
            _ if r.starts_with("refs/tags/") => "forced",
            (Some(x), Some(y)) => {
                let ff = std::process::Command::new("git")
                    .args(["merge-base", "--is-ancestor", x, y])
                    .current_dir(&upstream)
                    .status()
                    .unwrap()
                    .success();
                if ff { "moved" } else { "forced" }
            }
        };
        refs.push((r.clone(), change.to_string()));
    }
    assert!(refs.iter().any(|r| r.1 == "moved") && refs.iter().any(|r| r.1 == "deleted"), "{refs:?}");

    let check = |d: &serde_json::Value| {
        assert_eq!(listed(&d["added"]), added, "added");
        assert_eq!(listed(&d["removed"]), removed, "removed");
        assert_eq!(listed(&d["changed"]), changed, "changed");
        assert_eq!(d["unchanged"], unchanged);
        let git = d["changed"].as_array().unwrap().iter().find(|c| c["kind"] == "git").unwrap();
        let got: Vec<(String, String)> = git["refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["ref"].as_str().unwrap().to_string(), r["change"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(got, refs, "git refs");
        let python = d["changed"].as_array().unwrap().iter().filter(|c| c["kind"] == "python");
        for c in python {
            assert_ne!(c["from"]["version"], c["to"]["version"], "{c}");
        }
        assert_eq!(d["identical"], false);
    };
    let (s1, s2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    let d = cx.run(&["--json", "diff", s1, s2]).ok().json();
    check(&d);
    assert_eq!(d["a"]["name"], "fixtures-1.0");
    assert!(d["a"]["signature"].as_str().unwrap().starts_with("trusted key"), "{d}");
    // The blobs: what only one names, with bytes, as the manifests say.
    let m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("v2.unpacked-manifest")).unwrap()).unwrap();
    let m1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("v1.unpacked-manifest")).unwrap()).unwrap();
    let digests = |m: &serde_json::Value| -> BTreeMap<String, u64> {
        m["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["digest"].as_str().unwrap().into(), b["size"].as_u64().unwrap()))
            .collect()
    };
    let (b1, b2) = (digests(&m1), digests(&m2));
    let only2: u64 = b2.iter().filter(|(k, _)| !b1.contains_key(*k)).map(|(_, s)| s).sum();
    assert_eq!(d["blobs"]["added"]["bytes"], only2);
    assert_eq!(d["blobs"]["added"]["count"], b2.keys().filter(|k| !b1.contains_key(*k)).count());

    // With no local repository at all, the bundles' own git bundles tell the same.
    let nowhere = cx.path("nowhere");
    let bare = ["--cache-dir", nowhere.to_str().unwrap(), "--store", nowhere.to_str().unwrap()];
    check(&cx.run(&[&["--json", "diff", s1, s2][..], &bare[..]].concat()).ok().json());

    // A manifest.json compares as its bundle does; a bundle with itself is identical.
    let m1_dir = cx.path("m1");
    std::fs::create_dir_all(&m1_dir).unwrap();
    std::fs::copy(cx.path("v1.unpacked-manifest"), m1_dir.join("manifest.json")).unwrap();
    let dm = cx.run(&["--json", "diff", m1_dir.join("manifest.json").to_str().unwrap(), s2]).ok().json();
    check(&dm);
    assert_eq!(dm["a"]["what"], "manifest");
    assert!(dm["a"]["signature"].as_str().unwrap().starts_with("NOT TRUSTED"), "no signature beside it: {dm}");
    let same = cx.run(&["--json", "diff", s2, s2]).ok().json();
    assert_eq!((same["identical"].clone(), same["unchanged"].clone()), (true.into(), b.len().into()));

    // The text names each change, and each ref's.
    let text = cx.run(&["diff", s1, s2]).ok().stdout;
    for (kind, name) in added.iter().chain(&removed).chain(&changed) {
        assert!(text.lines().any(|l| l.contains(kind.as_str()) && l.contains(name.as_str())), "{kind} {name}:\n{text}");
    }
    assert!(
        text.contains("(fast-forward)") && text.contains("deleted  was") && text.contains("(a tag moved)"),
        "{text}"
    );
    assert!(text.contains(&format!("{} added, {} removed, {} changed", added.len(), removed.len(), changed.len())));

    // Something that is neither is refused as not a bundle.
    std::fs::write(cx.path("x.json"), r#"{"mediaType": "application/json"}"#).unwrap();
    cx.run(&["diff", s1, cx.path("x.json").to_str().unwrap()]).fails(4, "not a bundle, a manifest.json or a receipt");
}
