//! What a store (or a registry) holds, in forms tests compare: a whole directory tree
//! byte for byte, the litter a crash may leave, and whether every image tag resolves to
//! content that is all there.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use airlock::digest::Digest;

/// Every entry under `root` but those under the `skip` prefixes: relative path -> `dir`,
/// `link <target>`, or the file's mode and SHA-256.
pub fn tree(root: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if skip.iter().any(|s| rel == *s || rel.starts_with(&format!("{s}/"))) {
            continue;
        }
        // The ledger records every run, failed and refused ones too: it is not a target.
        if rel.starts_with("ledger.sqlite") {
            continue;
        }
        let ft = e.file_type();
        let v = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link {}", std::fs::read_link(e.path()).unwrap().display())
        } else {
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            format!("{mode:o} {}", Digest::of(&std::fs::read(e.path()).unwrap()).hex())
        };
        out.insert(rel, v);
    }
    out
}

/// Temporary files anywhere under `root`: airlock's (`.airlock-*`) and git's
/// (`tmp_pack_*`, `tmp_obj_*`, `*.lock`), and anything left in `tmp/`, `staging/` or
/// `partial/`.
pub fn litter(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let name = e.file_name().to_string_lossy();
        let temp = name.starts_with(".airlock-") || name.starts_with("tmp_") || name.ends_with(".lock");
        let leftover = ["tmp/", "staging/", "partial/"].iter().any(|d| rel.starts_with(d));
        if (temp && rel != ".import.lock") || leftover {
            out.push(rel);
        }
    }
    out
}

/// Check that the manifest `digest` and everything it names exist, through `manifest`
/// (its bytes, if there) and `blob` (whether a config or layer is there).
fn check_closure(what: &str, digest: &str, manifest: &dyn Fn(&str) -> Option<Vec<u8>>, blob: &dyn Fn(&str) -> bool) {
    let bytes = manifest(digest).unwrap_or_else(|| panic!("{what} points at manifest {digest}, which is missing"));
    assert_eq!(format!("sha256:{}", Digest::of(&bytes).hex()), digest, "{what}: manifest {digest} is damaged");
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    if let Some(children) = v["manifests"].as_array() {
        for c in children {
            check_closure(what, c["digest"].as_str().unwrap(), manifest, blob);
        }
        return;
    }
    for b in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
        let d = b["digest"].as_str().unwrap();
        assert!(blob(d), "{what}: manifest {digest} names {d}, which is missing");
    }
}

/// Every tag of the store's registry resolves to a manifest whose content is all in the
/// store; returns how many tags there are.
pub fn store_tags_resolve(store: &Path) -> usize {
    let oci = store.join("oci");
    let blob = |d: &str| store.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let mut n = 0;
    for e in walkdir::WalkDir::new(&oci).into_iter().filter_map(Result::ok) {
        let is_tag = e.path().parent().is_some_and(|p| p.ends_with("tags")) && e.file_type().is_file();
        if !is_tag || e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let digest = std::fs::read_to_string(e.path()).unwrap().trim().to_string();
        let what = format!("store tag {}", e.path().strip_prefix(&oci).unwrap().display());
        check_closure(&what, &digest, &|d| std::fs::read(blob(d)).ok(), &|d| blob(d).is_file());
        n += 1;
    }
    n
}

/// Every tag of `repo` at the registry resolves to a manifest whose content is all
/// there; returns the tags and what each names.
pub fn registry_tags_resolve(host: &str, repo: &str) -> BTreeMap<String, String> {
    let reg = airlock::registry::Registry::new(host, true).unwrap();
    let mut out = BTreeMap::new();
    for tag in reg.tags(repo).unwrap() {
        let Some(d) = reg.manifest_digest(repo, &tag).unwrap() else { continue };
        let what = format!("{host}/{repo}:{tag}");
        check_closure(&what, &d.to_string(), &|m| reg.get_manifest(repo, m).ok().map(|x| x.0), &|b| {
            reg.has_blob(repo, &b.parse().unwrap()).unwrap()
        });
        out.insert(tag, d.to_string());
    }
    out
}

/// What an import made visible in a store: the repositories' files (but the records of
/// imports, `receipts/` and `imported.json`, which are dated; the apt
/// Release files, dated when written, and the apt indexes' `by-hash/` copies, named by
/// their digest like blobs), each git repository's refs and HEAD, the image tags.
pub fn visible(store: &Path) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> =
        tree(store, &["blobs", "receipts", "imported.json", "git", "tmp", "staging", "partial"])
            .into_iter()
            .filter(|(p, v)| {
                v != "dir"
                    && p != ".import.lock"
                    && !p.contains("/by-hash/")
                    && !["Release", "InRelease", "Release.gpg"].iter().any(|r| p.ends_with(&format!("/{r}")))
            })
            .collect();
    if let Ok(rd) = std::fs::read_dir(store.join("git")) {
        for e in rd {
            let repo = e.unwrap().path();
            let refs = super::sh(&repo, "git for-each-ref --format='%(objectname) %(refname)'; git symbolic-ref HEAD");
            out.insert(format!("git/{}", repo.file_name().unwrap().to_string_lossy()), refs);
        }
    }
    out
}
