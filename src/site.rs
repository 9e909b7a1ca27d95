//! The site file, `site.yaml`: the site's environments (`staging`, `production`, …), each
//! with its store, its import targets and the policy a bundle must meet before anything
//! is imported into it. docs/site.md documents the format.
//!
//! A policy is evaluated on a verified bundle's signed manifest, its signer and the
//! annotations the ledgers hold; evaluation changes nothing, so `airlock policy check` and
//! `airlock import --env` give the same answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bundle::manifest::Manifest;
use crate::ledger::{Annotation, glob_match};

/// Where `--site` points by default.
pub const DEFAULT_FILE: &str = "site.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub environments: BTreeMap<String, Environment>,
    /// The file it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Environment {
    /// The environment's store; relative paths are relative to the site file.
    pub store: PathBuf,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub policy: Policy,
}

/// The targets of an environment: the import flags of the same names. A flag given on
/// the command line wins.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Targets {
    pub raw_repo: Option<String>,
    pub apt_repo: Option<String>,
    pub apt_key: Option<PathBuf>,
    pub raw_url: Option<String>,
    pub apt_aptly: Option<String>,
    pub apt_aptly_repo: Option<String>,
    #[serde(default)]
    pub apt_aptly_create: bool,
    pub apt_aptly_distribution: Option<String>,
    pub apt_aptly_prefix: Option<String>,
    #[serde(default)]
    pub apt_aptly_skip_signing: bool,
    pub apt_nexus: Option<String>,
    pub apt_nexus_distribution: Option<String>,
    pub raw_username: Option<String>,
    pub oci_registry: Option<String>,
    #[serde(default)]
    pub oci_insecure: bool,
    pub oci_max_components: Option<usize>,
    pub git_push: Option<String>,
    pub python_index: Option<String>,
    pub python_upload: Option<String>,
    pub python_username: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Key ids (`airlock trust list`) a bundle must be signed by; each optionally only for
    /// some kinds. Empty: any trusted key.
    #[serde(default)]
    pub signers: Vec<Signer>,
    #[serde(default)]
    pub require_annotations: Vec<RequiredAnnotation>,
    /// The oldest a bundle may be, from its `created` time (`30d`, `36h`).
    pub max_age: Option<String>,
    /// Purl globs: when any is given, every artifact must match one.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Purl globs no artifact may match.
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub require_sbom: bool,
    /// URL prefixes every artifact's upstream must start with.
    #[serde(default)]
    pub upstream_prefixes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Signer {
    Key(String),
    Scoped {
        key: String,
        #[serde(default)]
        kinds: Vec<String>,
    },
}

impl Signer {
    fn key(&self) -> &str {
        match self {
            Signer::Key(k) | Signer::Scoped { key: k, .. } => k,
        }
    }
    fn covers(&self, kind: &str) -> bool {
        match self {
            Signer::Key(_) => true,
            Signer::Scoped { kinds, .. } => kinds.is_empty() || kinds.iter().any(|k| k == kind),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAnnotation {
    pub key: String,
    pub value: String,
    /// The environment that must have set it (its store's ledger is asked); any
    /// environment of this one's store when absent.
    pub env: Option<String>,
}

impl Site {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the site file {} (pass --site, or set AIRLOCK_SITE)", path.display()))?;
        let mut site: Site =
            yaml_serde::from_str(&text).map_err(|e| anyhow::anyhow!("site file {}: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        site.path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let names: Vec<String> = site.environments.keys().cloned().collect();
        for (name, env) in &mut site.environments {
            crate::names::repository(name)
                .map_err(|e| anyhow::anyhow!("site file {}: environment {e}", path.display()))?;
            if env.store.is_relative() {
                env.store = dir.join(&env.store);
            }
            env.store = std::path::absolute(&env.store).unwrap_or_else(|_| env.store.clone());
            if let Some(age) = &env.policy.max_age {
                humantime::parse_duration(age).map_err(|e| {
                    anyhow::anyhow!("site file {}: environment `{name}`: max-age `{age}`: {e}", path.display())
                })?;
            }
            for r in &env.policy.require_annotations {
                if let Some(other) = &r.env
                    && !names.contains(other)
                {
                    bail!(
                        "site file {}: environment `{name}` requires an annotation from env `{other}`, which it does not declare",
                        path.display()
                    );
                }
            }
        }
        Ok(site)
    }

    pub fn env(&self, name: &str) -> Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
            anyhow::anyhow!(
                "site file {} declares no environment `{name}` (it declares: {})",
                self.path.display(),
                known.join(", ")
            )
        })
    }
}

/// What a policy decided about a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub env: String,
    pub allowed: bool,
    /// One sentence per failed rule.
    pub failed: Vec<String>,
    /// The rules checked, by name.
    pub checked: Vec<&'static str>,
    /// Artifacts a rule refused, with the reason.
    pub refused: Vec<RefusedArtifact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusedArtifact {
    pub kind: String,
    pub name: String,
    pub purl: String,
    pub reason: String,
}

impl Decision {
    /// The refusal line: "policy `production`: rule; rule".
    pub fn message(&self) -> String {
        format!("policy `{}`: {}", self.env, self.failed.join("; "))
    }
}

/// What policy evaluation needs to know about the bundle.
pub struct Candidate<'a> {
    pub manifest: &'a Manifest,
    pub signer: &'a str,
    /// The bundle's annotations in the ledger of each environment a rule names (`None`:
    /// this environment's own store).
    pub annotations: &'a dyn Fn(Option<&str>) -> Result<Vec<Annotation>>,
    pub now: SystemTime,
}

/// Evaluate environment `env`'s policy. Errors only when a ledger cannot be read.
pub fn evaluate(env: &str, policy: &Policy, c: &Candidate<'_>) -> Result<Decision> {
    let m = c.manifest;
    let id = m.id();
    let mut d =
        Decision { env: env.into(), allowed: true, failed: Vec::new(), checked: Vec::new(), refused: Vec::new() };
    let kinds: std::collections::BTreeSet<String> = m.artifacts.iter().map(|a| a.kind.to_string()).collect();
    if !policy.signers.is_empty() {
        d.checked.push("signers");
        // Kinds that want the same keys are named together.
        let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
        for kind in &kinds {
            let keys: Vec<&str> = policy.signers.iter().filter(|s| s.covers(kind)).map(Signer::key).collect();
            if keys.iter().any(|k| k.eq_ignore_ascii_case(c.signer)) {
                continue;
            }
            match groups.iter_mut().find(|(k, _)| *k == keys) {
                Some((_, g)) => g.push(kind),
                None => groups.push((keys, vec![kind])),
            }
        }
        for (keys, group) in groups {
            let want = if keys.is_empty() { "no key at all".to_string() } else { keys.join(" or ") };
            d.failed.push(format!(
                "requires {} artifacts signed by {want}; bundle {id} is signed by {}",
                group.join(", "),
                c.signer
            ));
        }
    }
    for r in &policy.require_annotations {
        d.checked.push("require-annotations");
        let have = (c.annotations)(r.env.as_deref())?;
        let from = r.env.as_ref().map(|e| format!(" from env {e}")).unwrap_or_default();
        let matching: Vec<&Annotation> =
            have.iter().filter(|a| a.key == r.key && r.env.as_ref().is_none_or(|e| *e == a.env)).collect();
        if matching.iter().any(|a| a.value == r.value) {
            continue;
        }
        let has = if matching.is_empty() {
            "none".to_string()
        } else {
            matching.iter().map(|a| format!("{}={}", a.key, a.value)).collect::<Vec<_>>().join(", ")
        };
        d.failed.push(format!("requires annotation {}={}{from}; bundle {id} has {has}", r.key, r.value));
    }
    if let Some(age) = &policy.max_age {
        d.checked.push("max-age");
        let max = humantime::parse_duration(age).unwrap_or_default();
        match humantime::parse_rfc3339_weak(&m.created) {
            Ok(created) => {
                let old = c.now.duration_since(created).unwrap_or_default();
                if old > max {
                    let days = old.as_secs() / 86_400;
                    d.failed.push(format!(
                        "requires a bundle at most {age} old; bundle {id} was created {} ({days} days ago)",
                        m.created
                    ));
                }
            }
            Err(_) => {
                d.failed.push(format!("requires a bundle at most {age} old; bundle {id} has no readable creation time"))
            }
        }
    }
    if policy.require_sbom {
        d.checked.push("require-sbom");
        if m.sbom.is_none() {
            d.failed.push(format!("requires an SBOM; bundle {id} carries none"));
        }
    }
    let refuse = |d: &mut Decision, a: &crate::bundle::manifest::Artifact, reason: String| {
        d.refused.push(RefusedArtifact {
            kind: a.kind.to_string(),
            name: a.name.clone(),
            purl: a.purl.clone(),
            reason,
        });
    };
    if !policy.deny.is_empty() {
        d.checked.push("deny");
        for a in &m.artifacts {
            if let Some(g) = policy.deny.iter().find(|g| glob_match(g, &a.purl)) {
                refuse(&mut d, a, format!("denied by `{g}`"));
            }
        }
    }
    if !policy.allow.is_empty() {
        d.checked.push("allow");
        for a in &m.artifacts {
            if !policy.allow.iter().any(|g| glob_match(g, &a.purl)) {
                refuse(&mut d, a, format!("matches none of the allowed {}", policy.allow.join(", ")));
            }
        }
    }
    if !policy.upstream_prefixes.is_empty() {
        d.checked.push("upstream-prefixes");
        for a in &m.artifacts {
            if !policy.upstream_prefixes.iter().any(|p| a.upstream.starts_with(p.as_str())) {
                refuse(
                    &mut d,
                    a,
                    format!("upstream {} is outside {}", a.upstream, policy.upstream_prefixes.join(", ")),
                );
            }
        }
    }
    if !d.refused.is_empty() {
        let first = &d.refused[0];
        let more = if d.refused.len() > 1 { format!(" and {} more", d.refused.len() - 1) } else { String::new() };
        d.failed.push(format!(
            "refuses {} artifacts of bundle {id}: {} {} ({}){more}",
            d.refused.len(),
            first.kind,
            first.purl,
            first.reason
        ));
    }
    d.checked.dedup();
    d.allowed = d.failed.is_empty();
    Ok(d)
}

/// A policy refused a bundle: the import wrote nothing. The message names each failed rule.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(created: &str) -> Manifest {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.airlock.manifest.v1+json",
            "schemaVersion": 1,
            "name": "site-inputs",
            "version": "2026.12",
            "created": created,
            "generator": "airlock test",
            "artifacts": [
                {"kind": "python", "name": "requests-2.0-py3-none-any.whl", "upstream": "https://pypi.mirror.example/simple/requests/", "purl": "pkg:pypi/requests@2.0", "blobs": []},
                {"kind": "image", "name": "app", "upstream": "https://other.example/v2/app", "purl": "pkg:oci/app@sha256:00", "blobs": []}
            ],
            "blobs": []
        }))
        .expect("a manifest")
    }

    fn policy(yaml: &str) -> Policy {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn decide(p: &Policy, m: &Manifest, notes: Vec<Annotation>) -> Decision {
        let lookup = move |_: Option<&str>| Ok(notes.clone());
        let now = humantime::parse_rfc3339("2026-12-10T00:00:00Z").unwrap();
        evaluate("production", p, &Candidate { manifest: m, signer: "AAAAAAAAAAAAAAAA", annotations: &lookup, now })
            .unwrap()
    }

    fn note(env: &str, key: &str, value: &str) -> Annotation {
        Annotation {
            bundle: Default::default(),
            env: env.into(),
            key: key.into(),
            value: value.into(),
            user: "u".into(),
            host: "h".into(),
            at: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn each_rule_says_why() {
        let m = manifest("2026-12-01T00:00:00Z");
        assert!(decide(&Policy::default(), &m, vec![]).allowed);

        let p = policy("signers: [{key: BBBBBBBBBBBBBBBB, kinds: [image]}, AAAAAAAAAAAAAAAA]");
        assert!(decide(&p, &m, vec![]).allowed, "the key covers every kind");
        let p = policy("signers: [{key: AAAAAAAAAAAAAAAA, kinds: [python]}, {key: BBBBBBBBBBBBBBBB, kinds: [image]}]");
        assert_eq!(
            decide(&p, &m, vec![]).failed,
            [
                "requires image artifacts signed by BBBBBBBBBBBBBBBB; bundle site-inputs-2026.12 is signed by AAAAAAAAAAAAAAAA"
            ]
        );

        let p = policy("require-annotations: [{key: staged, value: 'true', env: staging}]");
        let d = decide(&p, &m, vec![note("qa", "staged", "true"), note("staging", "staged", "false")]);
        assert_eq!(
            d.message(),
            "policy `production`: requires annotation staged=true from env staging; bundle site-inputs-2026.12 has staged=false"
        );
        assert!(decide(&p, &m, vec![note("staging", "staged", "true")]).allowed);

        let p = policy("max-age: 5d");
        assert_eq!(decide(&p, &m, vec![]).failed.len(), 1);
        assert!(decide(&p, &manifest("2026-12-08T00:00:00Z"), vec![]).allowed);

        let p = policy("require-sbom: true");
        assert_eq!(decide(&p, &m, vec![]).failed, ["requires an SBOM; bundle site-inputs-2026.12 carries none"]);

        let p = policy(
            "deny: ['pkg:pypi/req*']\nallow: ['pkg:pypi/*']\nupstream-prefixes: ['https://pypi.mirror.example/']",
        );
        let d = decide(&p, &m, vec![]);
        let reasons: Vec<(&str, &str)> = d.refused.iter().map(|r| (r.kind.as_str(), r.reason.as_str())).collect();
        assert_eq!(
            reasons,
            [
                ("python", "denied by `pkg:pypi/req*`"),
                ("image", "matches none of the allowed pkg:pypi/*"),
                ("image", "upstream https://other.example/v2/app is outside https://pypi.mirror.example/"),
            ]
        );
        assert_eq!(d.failed.len(), 1, "one line for the refused artifacts");
        assert!(
            d.failed[0].starts_with("refuses 3 artifacts of bundle site-inputs-2026.12: python pkg:pypi/requests@2.0")
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(yaml_serde::from_str::<Policy>("require-annotation: []").is_err());
        assert!(yaml_serde::from_str::<Targets>("oci-regsitry: x").is_err());
    }
}
