//! Webhook payloads: checking who sent them (HMAC signatures and tokens, compared in
//! constant time), and reading what changed, as git refs of repositories and tags of
//! image repositories, matched to the spec's entries.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::entries::{Key, normalize_repo_url};
use crate::spec::{Spec, ref_matches};

/// What an event says changed upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A ref of a repository known by any of these URLs moved (or appeared, or went).
    Git { urls: Vec<String>, refname: String },
    /// A manifest was pushed to an image repository (under this tag, if it says).
    Image { repository: String, tag: Option<String> },
}

/// Does `header` (`sha256=<hex>`) carry the HMAC-SHA256 of `body` under `secret`?
/// The comparison is constant time (`Mac::verify_slice`).
pub fn hmac_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else { return false };
    let Ok(sig) = base16ct::mixed::decode_vec(hex.as_bytes()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// `sha256=<hex>` for `body` under `secret`: what a sender puts in the signature header.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", base16ct::lower::encode_string(&mac.finalize().into_bytes()))
}

/// Is `given` the expected token? Both are hashed first, so neither their contents nor
/// their lengths show in the time taken.
pub fn token_ok(expected: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let (a, b) = (Sha256::digest(expected.as_bytes()), Sha256::digest(given.as_bytes()));
    !expected.is_empty() && bool::from(a.ct_eq(&b))
}

fn strings(v: &Value, fields: &[&str]) -> Vec<String> {
    fields.iter().filter_map(|f| v.get(*f).and_then(Value::as_str)).map(str::to_string).collect()
}

fn full_ref(kind: &str, name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_string()
    } else if kind == "tag" {
        format!("refs/tags/{name}")
    } else {
        format!("refs/heads/{name}")
    }
}

/// A GitHub event (`X-GitHub-Event`): push, and create/delete of branches and tags.
/// Other events (ping included) change nothing.
pub fn github(event: &str, body: &Value) -> Vec<Change> {
    let urls = body
        .get("repository")
        .map(|r| strings(r, &["clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"]))
        .unwrap_or_default();
    let refname = match event {
        "push" => body.get("ref").and_then(Value::as_str).map(str::to_string),
        "create" | "delete" => {
            let kind = body.get("ref_type").and_then(Value::as_str).unwrap_or("");
            body.get("ref")
                .and_then(Value::as_str)
                .filter(|_| kind == "tag" || kind == "branch")
                .map(|r| full_ref(kind, r))
        }
        _ => None,
    };
    refname.map(|refname| vec![Change::Git { urls, refname }]).unwrap_or_default()
}

/// A GitLab event (`X-Gitlab-Event`): Push Hook and Tag Push Hook.
pub fn gitlab(event: &str, body: &Value) -> Vec<Change> {
    let kind = body.get("object_kind").and_then(Value::as_str).unwrap_or("");
    if !matches!(event, "Push Hook" | "Tag Push Hook" | "System Hook") || !matches!(kind, "push" | "tag_push") {
        return Vec::new();
    }
    let mut urls = Vec::new();
    for part in ["project", "repository"] {
        if let Some(p) = body.get(part) {
            urls.extend(strings(
                p,
                &["git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url", "homepage"],
            ));
        }
    }
    match body.get("ref").and_then(Value::as_str) {
        Some(r) => vec![Change::Git { urls, refname: full_ref(if kind == "tag_push" { "tag" } else { "branch" }, r) }],
        None => Vec::new(),
    }
}

fn all_hrefs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "href"
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_string());
                }
                all_hrefs(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_hrefs(x, out)),
        _ => {}
    }
}

/// A Bitbucket event (`X-Event-Key`): `repo:push` (Cloud: `push.changes[].new`/`old`)
/// and `repo:refs_changed` (Data Center: `changes[].ref.id`).
pub fn bitbucket(event: &str, body: &Value) -> Vec<Change> {
    if !matches!(event, "repo:push" | "repo:refs_changed") {
        return Vec::new();
    }
    let mut urls = Vec::new();
    if let Some(r) = body.get("repository") {
        all_hrefs(r, &mut urls);
    }
    let mut refs = BTreeSet::new();
    for c in body.pointer("/push/changes").and_then(Value::as_array).into_iter().flatten() {
        for side in ["new", "old"] {
            if let Some(s) = c.get(side)
                && let (Some(t), Some(n)) =
                    (s.get("type").and_then(Value::as_str), s.get("name").and_then(Value::as_str))
            {
                refs.insert(full_ref(if t == "tag" { "tag" } else { "branch" }, n));
            }
        }
    }
    for c in body.get("changes").and_then(Value::as_array).into_iter().flatten() {
        if let Some(id) = c.pointer("/ref/id").and_then(Value::as_str) {
            refs.insert(id.to_string());
        }
    }
    refs.into_iter().map(|refname| Change::Git { urls: urls.clone(), refname }).collect()
}

/// A distribution registry notification: the `events` envelope; `push` events only.
/// Returns the changes and the events' ids.
pub fn registry(body: &Value) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    let mut ids = Vec::new();
    for e in body.get("events").and_then(Value::as_array).into_iter().flatten() {
        if let Some(id) = e.get("id").and_then(Value::as_str) {
            ids.push(id.to_string());
        }
        if e.get("action").and_then(Value::as_str) != Some("push") {
            continue;
        }
        // Blob pushes come before their manifest's; only the manifest's concerns a tag.
        if e.pointer("/target/mediaType").and_then(Value::as_str).is_some_and(|m| !crate::oci::is_manifest_type(m)) {
            continue;
        }
        let Some(repository) = e.pointer("/target/repository").and_then(Value::as_str) else { continue };
        let tag = e.pointer("/target/tag").and_then(Value::as_str).map(str::to_string);
        changes.push(Change::Image { repository: repository.to_string(), tag });
    }
    (changes, ids)
}

/// The spec's entries that `changes` concern.
pub fn matching(spec: &Spec, changes: &[Change]) -> BTreeSet<Key> {
    let mut out = BTreeSet::new();
    for c in changes {
        match c {
            Change::Git { urls, refname } => {
                let urls: BTreeSet<String> = urls.iter().map(|u| normalize_repo_url(u)).collect();
                for e in &spec.git {
                    if urls.contains(&normalize_repo_url(&e.url))
                        && e.patterns().iter().any(|p| ref_matches(p, refname))
                    {
                        out.insert(format!("git:{}", e.name()));
                    }
                }
            }
            Change::Image { repository, tag } => {
                for e in &spec.images {
                    let Ok(r) = crate::oci::Reference::parse(&e.reference) else { continue };
                    if r.repository == *repository && (tag.is_none() || r.tag == *tag) {
                        out.insert(format!("images:{}", e.reference));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_check_body_and_secret() {
        let s = sign(b"secret", b"{}");
        assert!(hmac_ok(b"secret", b"{}", Some(&s)));
        assert!(!hmac_ok(b"secret", b"{ }", Some(&s)));
        assert!(!hmac_ok(b"other", b"{}", Some(&s)));
        assert!(!hmac_ok(b"secret", b"{}", Some(s.trim_start_matches("sha256="))));
        assert!(!hmac_ok(b"secret", b"{}", None));
        assert!(token_ok("t0ken", Some("t0ken")));
        assert!(!token_ok("t0ken", Some("t0ke")));
        assert!(!token_ok("", Some("")));
    }

    #[test]
    fn github_tag_creation_is_a_tag_ref() {
        let body = serde_json::json!({"ref": "18.2.0", "ref_type": "tag", "repository": {"clone_url": "https://g.example/o/r.git"}});
        assert_eq!(
            github("create", &body),
            vec![Change::Git { urls: vec!["https://g.example/o/r.git".into()], refname: "refs/tags/18.2.0".into() }]
        );
        assert!(github("ping", &body).is_empty());
    }
}
