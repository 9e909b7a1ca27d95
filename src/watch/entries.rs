//! The spec's entries as `airlock watch` names them (`git:nova`, `images:<ref>`), the
//! narrowed spec a refresh mirrors, and the lock merge that keeps every other entry as
//! it was.

use std::collections::BTreeSet;

use crate::lock::Lock;
use crate::spec::Spec;

/// One entry of the spec: `<kind>:<name>`, with the kind as the spec spells it.
pub type Key = String;

pub const KINDS: [&str; 5] = ["files", "git", "images", "python", "debian"];

/// Every entry of `spec`, in spec order.
pub fn keys(spec: &Spec) -> Vec<Key> {
    let mut v = Vec::new();
    v.extend(spec.files.iter().map(|e| format!("files:{}", e.path)));
    v.extend(spec.git.iter().map(|e| format!("git:{}", e.name())));
    v.extend(spec.images.iter().map(|e| format!("images:{}", e.reference)));
    v.extend(spec.python.iter().map(|e| format!("python:{}", e.name)));
    v.extend(spec.debian.iter().map(|e| format!("debian:{}", e.name)));
    v
}

pub fn kind_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(k, _)| k)
}

/// The entries `names` select: `kind:name` exactly, or a bare name of any kind.
pub fn select(spec: &Spec, names: &[String]) -> Result<BTreeSet<Key>, String> {
    let all = keys(spec);
    let mut out = BTreeSet::new();
    for n in names {
        let found: Vec<&Key> =
            all.iter().filter(|k| *k == n || k.split_once(':').is_some_and(|(_, b)| b == n)).collect();
        if found.is_empty() {
            return Err(format!(
                "`{n}` is no entry of the spec (entries are named like `{}`)",
                all.first().map_or("git:name", |k| k.as_str())
            ));
        }
        out.extend(found.into_iter().cloned());
    }
    Ok(out)
}

/// The mirror units: each entry alone, except Python entries, which lock together.
pub fn groups(selected: &BTreeSet<Key>) -> Vec<Vec<Key>> {
    let mut out: Vec<Vec<Key>> = Vec::new();
    let python: Vec<Key> = selected.iter().filter(|k| kind_of(k) == "python").cloned().collect();
    for k in selected.iter().filter(|k| kind_of(k) != "python") {
        out.push(vec![k.clone()]);
    }
    if !python.is_empty() {
        out.push(python);
    }
    out
}

/// `spec` with only the entries `keep` names (all Python entries if any is named).
pub fn narrow(spec: &Spec, keep: &[Key]) -> Spec {
    let has = |k: String| keep.contains(&k);
    let any_python = keep.iter().any(|k| kind_of(k) == "python");
    let mut s = spec.clone();
    s.files.retain(|e| has(format!("files:{}", e.path)));
    s.git.retain(|e| has(format!("git:{}", e.name())));
    s.images.retain(|e| has(format!("images:{}", e.reference)));
    s.python.retain(|_| any_python);
    s.debian.retain(|e| has(format!("debian:{}", e.name)));
    s
}

/// Entries of the spec that the lock holds nothing for: a refresh mirrors them whatever
/// its trigger named.
pub fn missing_from(spec: &Spec, lock: Option<&Lock>) -> BTreeSet<Key> {
    let Some(lock) = lock else { return keys(spec).into_iter().collect() };
    keys(spec).into_iter().filter(|k| part(lock, k) == serde_json::Value::Array(Vec::new())).collect()
}

/// What the lock holds for one entry, as JSON (Python: every Python file, since the
/// lock does not say which entry chose which).
pub fn part(lock: &Lock, key: &str) -> serde_json::Value {
    let (kind, name) = key.split_once(':').unwrap_or((key, ""));
    let v = match kind {
        "files" => serde_json::to_value(lock.artifacts.iter().filter(|a| a.name.as_str() == name).collect::<Vec<_>>()),
        "git" => serde_json::to_value(lock.git.iter().filter(|g| g.name == name).collect::<Vec<_>>()),
        "images" => serde_json::to_value(lock.images.iter().filter(|i| i.name == name).collect::<Vec<_>>()),
        "python" => serde_json::to_value(&lock.python),
        "debian" => serde_json::to_value(lock.debian.iter().filter(|d| d.name == name).collect::<Vec<_>>()),
        _ => Ok(serde_json::Value::Array(Vec::new())),
    };
    v.unwrap_or_default()
}

/// Replace in `lock` what `group` holds by what `fresh` (a lock of the narrowed spec) holds.
pub fn merge(lock: &mut Lock, fresh: &Lock, group: &[Key]) {
    for key in group {
        let (kind, name) = key.split_once(':').unwrap_or((key, ""));
        match kind {
            "files" => {
                lock.artifacts.retain(|a| a.name.as_str() != name);
                lock.artifacts.extend(fresh.artifacts.iter().filter(|a| a.name.as_str() == name).cloned());
            }
            "git" => {
                lock.git.retain(|g| g.name != name);
                lock.git.extend(fresh.git.iter().filter(|g| g.name == name).cloned());
            }
            "images" => {
                lock.images.retain(|i| i.name != name);
                lock.images.extend(fresh.images.iter().filter(|i| i.name == name).cloned());
            }
            "python" => lock.python.clone_from(&fresh.python),
            "debian" => {
                lock.debian.retain(|d| d.name != name);
                lock.debian.extend(fresh.debian.iter().filter(|d| d.name == name).cloned());
            }
            _ => {}
        }
    }
}

/// Drop from `lock` what the spec no longer names, and sort as `airlock mirror` does.
pub fn tidy(lock: &mut Lock, spec: &Spec) {
    let files: BTreeSet<String> = spec.files.iter().map(|e| e.path.to_string()).collect();
    let git: BTreeSet<String> = spec.git.iter().map(crate::spec::GitEntry::name).collect();
    let images: BTreeSet<&str> = spec.images.iter().map(|e| e.reference.as_str()).collect();
    let debian: BTreeSet<&str> = spec.debian.iter().map(|e| e.name.as_str()).collect();
    lock.artifacts.retain(|a| files.contains(a.name.as_str()));
    lock.git.retain(|g| git.contains(&g.name));
    lock.images.retain(|i| images.contains(i.name.as_str()));
    lock.debian.retain(|d| debian.contains(d.name.as_str()));
    if spec.python.is_empty() {
        lock.python.clear();
    }
    if spec.artifacts.is_empty() {
        lock.oci_artifacts.clear();
    }
    lock.artifacts.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    lock.git.sort_by(|a, b| a.name.cmp(&b.name));
    lock.images.sort_by(|a, b| a.name.cmp(&b.name));
    let order: Vec<&str> = spec.debian.iter().map(|e| e.name.as_str()).collect();
    lock.debian.sort_by_key(|d| order.iter().position(|n| *n == d.name));
    lock.name.clone_from(&spec.name);
    lock.version.clone_from(&spec.version);
}

/// A repository URL reduced to `host[:port]/path`, lower-case host, no scheme, user,
/// trailing `/` or `.git`, so `https://h/o/r`, `git@h:o/r.git` and `ssh://git@h/o/r` agree.
pub fn normalize_repo_url(url: &str) -> String {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some((_, r)) => r.to_string(),
        // scp-like `user@host:path`
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => format!("{host}/{}", path.trim_start_matches('/')),
            _ => url.to_string(),
        },
    };
    let rest = rest.rsplit_once('@').filter(|(u, _)| !u.contains('/')).map_or(rest.as_str(), |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{}/{}", host.to_ascii_lowercase(), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{LOCK_MEDIA_TYPE, LockedArtifact, LockedGit};

    fn spec() -> (tempfile::TempDir, Spec) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("airlock.yaml");
        crate::store::atomic::write(
            &p,
            b"name: s\nfiles:\n  - path: a.txt\n    source: a.txt\ngit:\n  - url: https://g.example/o/nova.git\n  - url: https://g.example/o/neutron\n",
        )
        .unwrap();
        crate::store::atomic::write(&dir.path().join("a.txt"), b"a").unwrap();
        let s = Spec::load(&p).unwrap();
        (dir, s)
    }

    fn git(name: &str, oid: &str) -> LockedGit {
        LockedGit {
            name: name.into(),
            upstream: format!("https://g.example/o/{name}"),
            head: None,
            refs: [("refs/heads/main".to_string(), oid.to_string())].into(),
        }
    }

    fn lock(git: Vec<LockedGit>) -> Lock {
        Lock {
            media_type: LOCK_MEDIA_TYPE.into(),
            schema_version: 1,
            name: "s".into(),
            version: None,
            resolved: String::new(),
            artifacts: vec![LockedArtifact {
                kind: crate::bundle::manifest::Kind::File,
                name: crate::relpath::RelPath::new("a.txt").unwrap(),
                upstream: "a.txt".into(),
                digest: crate::digest::Digest::of(b"a"),
                size: 1,
                arch: None,
            }],
            git,
            images: Vec::new(),
            python: Vec::new(),
            debian: Vec::new(),
            oci_artifacts: Vec::new(),
        }
    }

    #[test]
    fn a_refresh_of_one_entry_keeps_every_other_as_it_was() {
        let (_d, spec) = spec();
        assert_eq!(keys(&spec), ["files:a.txt", "git:nova", "git:neutron"]);
        let narrowed = narrow(&spec, &["git:nova".to_string()]);
        assert_eq!(keys(&narrowed), ["git:nova"]);
        assert_eq!(narrowed.name, spec.name);

        let mut current = lock(vec![git("neutron", "1"), git("nova", "1")]);
        let fresh = lock(vec![git("nova", "2")]);
        merge(&mut current, &fresh, &["git:nova".to_string()]);
        tidy(&mut current, &spec);
        assert_eq!(current.git, [git("neutron", "1"), git("nova", "2")]);
        assert_eq!(current.artifacts.len(), 1);
        assert!(missing_from(&spec, Some(&current)).is_empty());
        let without = lock(vec![git("nova", "1")]);
        assert_eq!(missing_from(&spec, Some(&without)), ["git:neutron".to_string()].into());
    }

    #[test]
    fn sync_names_are_checked() {
        let (_d, spec) = spec();
        assert_eq!(select(&spec, &["nova".into()]).unwrap(), ["git:nova".to_string()].into());
        assert_eq!(select(&spec, &["files:a.txt".into()]).unwrap(), ["files:a.txt".to_string()].into());
        assert!(select(&spec, &["glance".into()]).unwrap_err().contains("`glance` is no entry"));
    }

    #[test]
    fn repository_urls_agree_across_forms() {
        let want = "git.example/org/nova";
        for u in [
            "https://git.example/org/nova",
            "https://Git.Example/org/nova.git/",
            "git@git.example:org/nova.git",
            "ssh://git@git.example/org/nova",
            "git://git.example/org/nova.git",
        ] {
            assert_eq!(normalize_repo_url(u), want, "{u}");
        }
        assert_ne!(normalize_repo_url("https://git.example/org/nova-client"), want);
        assert_eq!(normalize_repo_url("git://127.0.0.1:9418/service"), "127.0.0.1:9418/service");
    }
}
