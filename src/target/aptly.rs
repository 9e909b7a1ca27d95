//! Debian packages into an aptly server the site already runs, through its REST API
//! (`aptly api serve`):
//!
//! - plan: list the local repository's packages (`GET /api/repos/<repo>/packages?format=details`);
//!   a package of the bundle whose name, version and architecture are there with another
//!   SHA-256 is a conflict, refused before anything is uploaded; the same SHA-256 is skipped;
//! - load: upload the new .debs into a fresh upload directory (`POST /api/files/<dir>`,
//!   multipart, streamed from the store), add them to the repository
//!   (`POST /api/repos/<repo>/file/<dir>`, which empties the directory), the repository
//!   created first if asked (`POST /api/repos`); then publish the distribution
//!   (`POST /api/publish/<prefix>`, `SourceKind: local`) or, when it is already published,
//!   update it (`PUT /api/publish/<prefix>/<distribution>`). Publishes are signed by the
//!   aptly server's own gpg key unless signing is skipped explicitly.
//!
//! Undo (a later target failed, or the publish did): remove the packages this run added
//! (`DELETE /api/repos/<repo>/packages` with their refs), update the publish again (or
//! drop the publish and the repository this run created), and delete the upload directory.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::StatusCode;
use reqwest::blocking::multipart::{Form, Part};
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{Value, json};

use crate::bundle::manifest::Kind;
use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::net::{self, Failure, Net, NetOptions};
use crate::progress::Reporter;
use crate::store::Store;

use super::{Journal, Placed, Target};

/// Where and how to publish in aptly.
pub struct AptlyOptions {
    pub url: String,
    pub repo: String,
    pub create: bool,
    /// The distribution to publish; default: the bundle's one suite.
    pub distribution: Option<String>,
    /// The publish prefix (`.` for the root of aptly's `public/`).
    pub prefix: String,
    pub skip_signing: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

pub struct Aptly<'a> {
    store: &'a Store,
    opts: AptlyOptions,
    base: String,
    net: Net,
}

/// (package, version, architecture)
type Key = (String, String, String);

/// A repository's packages: their SHA-256 and aptly's package ref.
type Listed = BTreeMap<Key, (String, String)>;

/// One .deb of the bundle.
#[derive(Clone)]
struct Deb {
    label: String,
    filename: String,
    key: Key,
    digest: Digest,
    size: u64,
}

pub struct AptlyPlan {
    add: Vec<Deb>,
    present: Vec<Deb>,
    repo_exists: bool,
    published: bool,
    distribution: String,
    component: String,
    architectures: Vec<String>,
}

/// aptly's prefix in a URL: `_` for `/`, `__` for `_`, and `:.` for the root.
fn url_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() || p == "." { ":.".to_string() } else { p.replace('_', "__").replace('/', "_") }
}

fn path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<'a> Aptly<'a> {
    pub fn new(store: &'a Store, opts: AptlyOptions) -> Result<Self> {
        if !(opts.url.starts_with("http://") || opts.url.starts_with("https://")) {
            bail!("--apt-aptly `{}` must be an http:// or https:// URL", opts.url);
        }
        crate::names::repository(&opts.repo).map_err(|e| anyhow!("--apt-aptly-repo {e}"))?;
        let base = opts.url.trim_end_matches('/').trim_end_matches("/api").to_string();
        Ok(Self { store, opts, base, net: Net::new(&NetOptions::from_env()?)? })
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/{path}", self.base)
    }

    fn repo_path(&self) -> String {
        format!("repos/{}", path_segment(&self.opts.repo))
    }

    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.opts.username {
            Some(u) => req.basic_auth(u, self.opts.password.as_deref()),
            None => req,
        }
    }

    fn attempt(&self, req: RequestBuilder) -> Result<Response, Failure> {
        let resp = self.auth(req).send().map_err(|e| self.net.failure(e).context("aptly did not answer"))?;
        if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Failure::permanent(anyhow!(
                "{} (check AIRLOCK_APT_USERNAME and AIRLOCK_APT_PASSWORD)",
                resp.status()
            )));
        }
        Ok(resp)
    }

    /// A GET, retried on network errors and transient statuses.
    fn get(&self, path: &str) -> Result<Response> {
        let url = self.api(path);
        self.net.retry(format!("GET {url}"), || {
            let resp = self.attempt(self.net.client().get(&url))?;
            if net::is_transient_status(resp.status()) {
                return Err(Failure::status(&resp));
            }
            Ok(resp)
        })
    }

    /// One request with a JSON body (none for `Value::Null`); its JSON answer, or an
    /// error naming the request and what aptly said.
    fn call(&self, method: reqwest::Method, path: &str, body: &Value) -> Result<Value> {
        let url = self.api(path);
        let what = format!("{method} {url}");
        let mut req = self.net.client().request(method, &url);
        if !body.is_null() {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(serde_json::to_vec(body)?);
        }
        let resp = self.attempt(req).map_err(|f| f.error.context(what.clone()))?;
        self.answer(&what, resp)
    }

    fn answer(&self, what: &str, mut resp: Response) -> Result<Value> {
        let status = resp.status();
        let body = self.net.read_capped(&mut resp, net::PAGE_MAX).map_err(|f| f.error.context(what.to_string()))?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let said =
                v["error"].as_str().map_or_else(|| String::from_utf8_lossy(&body).trim().to_string(), String::from);
            bail!("{what}: {status}: {said}");
        }
        Ok(v)
    }

    /// The repository's packages by (name, version, arch): their SHA-256 and aptly key;
    /// None when the repository does not exist.
    fn packages(&self) -> Result<Option<Listed>> {
        let path = format!("{}/packages?format=details", self.repo_path());
        let resp = self.get(&path)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = self.answer(&format!("GET {}", self.api(&path)), resp)?;
        let mut out = BTreeMap::new();
        for p in v.as_array().ok_or_else(|| anyhow!("aptly's package list of `{}` is not a list", self.opts.repo))? {
            let f = |n: &str| p[n].as_str().unwrap_or("").to_string();
            out.insert((f("Package"), f("Version"), f("Architecture")), (f("SHA256"), f("Key")));
        }
        Ok(Some(out))
    }

    /// Whether `distribution` is published at the prefix; refused when it is published
    /// from anything but this local repository (updating it would not publish our packages).
    fn published(&self, distribution: &str) -> Result<bool> {
        let resp = self.get("publish")?;
        let v = self.answer(&format!("GET {}", self.api("publish")), resp)?;
        let want = self.opts.prefix.trim_matches('/');
        let want = if want.is_empty() { "." } else { want };
        let Some(p) = v
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["Prefix"].as_str() == Some(want) && p["Distribution"].as_str() == Some(distribution))
        else {
            return Ok(false);
        };
        let sources: Vec<&str> =
            p["Sources"].as_array().into_iter().flatten().filter_map(|s| s["Name"].as_str()).collect();
        if p["SourceKind"].as_str() != Some("local") || sources != [self.opts.repo.as_str()] {
            bail!(
                "aptly at {} publishes `{distribution}` (prefix {want}) from {} {}, not from the local repository `{}`; nothing was uploaded",
                self.base,
                p["SourceKind"].as_str().unwrap_or("?"),
                sources.join(", "),
                self.opts.repo
            );
        }
        Ok(true)
    }

    fn signing(&self) -> Value {
        if self.opts.skip_signing { json!({"Skip": true}) } else { json!({"Batch": true}) }
    }

    fn publish_path(&self, distribution: &str) -> String {
        format!("publish/{}/{}", url_prefix(&self.opts.prefix), path_segment(distribution))
    }

    fn update_publish(&self, distribution: &str) -> Result<()> {
        self.call(
            reqwest::Method::PUT,
            &self.publish_path(distribution),
            &json!({"Signing": self.signing(), "ForceOverwrite": false}),
        )
        .map(drop)
    }

    fn location(&self, plan: &AptlyPlan) -> String {
        format!("{} repo {} ({} {})", self.base, self.opts.repo, self.opts.prefix, plan.distribution)
    }

    fn delete_dir(&self, dir: &str) -> Result<()> {
        let url = self.api(&format!("files/{dir}"));
        let resp = self.attempt(self.net.client().delete(&url)).map_err(|f| f.error)?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => bail!("DELETE {url}: {s}"),
        }
    }

    /// Undo: remove `refs` from the repository, then update the publish again, or drop
    /// the publish and the repository if this run created them.
    fn take_back(&self, plan: &AptlyPlan, refs: &[String], created_publish: bool) -> Result<()> {
        if created_publish {
            self.call(reqwest::Method::DELETE, &self.publish_path(&plan.distribution), &Value::Null)
                .context("dropping the publish this import created")?;
        }
        if !plan.repo_exists {
            return self
                .call(reqwest::Method::DELETE, &format!("{}?force=1", self.repo_path()), &Value::Null)
                .map(drop)
                .with_context(|| format!("deleting the repository `{}` this import created", self.opts.repo));
        }
        if !refs.is_empty() {
            self.call(
                reqwest::Method::DELETE,
                &format!("{}/packages", self.repo_path()),
                &json!({ "PackageRefs": refs }),
            )
            .with_context(|| format!("removing {} from `{}`", refs.join(", "), self.opts.repo))?;
        }
        if plan.published && !created_publish {
            self.update_publish(&plan.distribution).context("publishing the repository again")?;
        }
        Ok(())
    }
}

impl Target for Aptly<'_> {
    type Plan = AptlyPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<AptlyPlan> {
        let arts: Vec<_> = bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Debian).collect();
        let mut suites = BTreeSet::new();
        let mut components = BTreeSet::new();
        let mut architectures = BTreeSet::new();
        let mut debs = Vec::new();
        for a in &arts {
            let label =
                format!("{} {} ({})", a.name, a.version.as_deref().unwrap_or("?"), a.arch.as_deref().unwrap_or("?"));
            let (Some(path), [d], Some(version), Some(arch)) = (&a.path, &a.blobs[..], &a.version, &a.arch) else {
                bail!("debian artifact {label}: incomplete in the manifest");
            };
            let size = self.store.blob_size(d).ok_or_else(|| super::missing_base_blob(bundle, d, &label))?;
            suites.extend(a.suite.clone());
            components.extend(a.component.clone());
            architectures.extend(a.architectures.iter().filter(|x| *x != "all").cloned());
            if arch != "all" {
                architectures.insert(arch.clone());
            }
            let filename = path.as_str().rsplit('/').next().unwrap_or(path.as_str()).to_string();
            debs.push(Deb { label, filename, key: (a.name.clone(), version.clone(), arch.clone()), digest: *d, size });
        }
        let distribution = match (&self.opts.distribution, suites.len()) {
            (Some(d), _) => d.clone(),
            (None, 1) => suites.iter().next().cloned().unwrap_or_default(),
            (None, 0) => String::new(),
            (None, _) => bail!(
                "the bundle's Debian packages are for several suites ({}): pass --apt-aptly-distribution; nothing was uploaded",
                suites.into_iter().collect::<Vec<_>>().join(", ")
            ),
        };
        let component = match components.len() {
            0 | 1 => components.into_iter().next().unwrap_or_else(|| "main".to_string()),
            _ => bail!(
                "the bundle's Debian packages are for several components ({}): aptly publishes one local repository as one component; nothing was uploaded",
                components.into_iter().collect::<Vec<_>>().join(", ")
            ),
        };
        let mut plan = AptlyPlan {
            add: Vec::new(),
            present: Vec::new(),
            repo_exists: false,
            published: false,
            distribution,
            component,
            architectures: architectures.into_iter().collect(),
        };
        if debs.is_empty() {
            return Ok(plan);
        }
        let existing = match self.packages()? {
            Some(p) => {
                plan.repo_exists = true;
                p
            }
            None if self.opts.create => BTreeMap::new(),
            None => bail!(
                "aptly at {} has no local repository `{}`: pass --apt-aptly-create to create it; nothing was uploaded",
                self.base,
                self.opts.repo
            ),
        };
        let mut seen = BTreeSet::new();
        for deb in debs {
            if !seen.insert(deb.key.clone()) {
                continue;
            }
            match existing.get(&deb.key) {
                None => plan.add.push(deb),
                Some((sha, _)) if *sha == deb.digest.hex() => plan.present.push(deb),
                Some((sha, _)) => bail!(
                    "conflict: aptly repository `{}` already has {} with other content (SHA-256 {sha}, the bundle has {}); nothing was uploaded",
                    self.opts.repo,
                    deb.label,
                    deb.digest.hex()
                ),
            }
        }
        plan.published = self.published(&plan.distribution)?;
        Ok(plan)
    }

    fn load<'a>(
        &'a self,
        plan: AptlyPlan,
        bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let location = self.location(&plan);
        let placed_of = |d: &Deb, action: &'static str| Placed {
            kind: "debian".into(),
            name: d.label.clone(),
            action,
            location: location.clone(),
        };
        let mut placed: Vec<Placed> = plan.add.iter().map(|d| placed_of(d, "added")).collect();
        placed.extend(plan.present.iter().map(|d| placed_of(d, "present")));
        if plan.add.is_empty() && (plan.published || plan.present.is_empty()) {
            return Ok(placed);
        }
        if !plan.repo_exists {
            self.call(
                reqwest::Method::POST,
                "repos",
                &json!({
                    "Name": self.opts.repo,
                    "Comment": "packages imported by airlock",
                    "DefaultDistribution": plan.distribution,
                    "DefaultComponent": plan.component,
                }),
            )?;
        }
        let dir = format!("airlock-{}-{}", &bundle.manifest_digest.hex()[..16], std::process::id());
        let mut refs: Vec<String> = Vec::new();
        let mut created_publish = false;
        let result = (|| -> Result<()> {
            if !plan.add.is_empty() {
                let bar = reporter.bytes("aptly", Some(plan.add.iter().map(|d| d.size).sum()));
                // One request per file: each is streamed from the store.
                for d in &plan.add {
                    let url = self.api(&format!("files/{dir}"));
                    let file = self.store.open_blob(&d.digest)?;
                    let part = Part::reader_with_length(file, d.size)
                        .file_name(d.filename.clone())
                        .mime_str("application/vnd.debian.binary-package")?;
                    let req = self
                        .net
                        .client()
                        .post(&url)
                        .timeout(self.net.upload_timeout(d.size))
                        .multipart(Form::new().part("file", part));
                    let resp = self.attempt(req).map_err(|f| f.error.context(format!("POST {url}")))?;
                    self.answer(&format!("uploading {} to {url}", d.filename), resp)?;
                    bar.inc(d.size);
                }
                let before = self.packages()?.unwrap_or_default();
                let report =
                    self.call(reqwest::Method::POST, &format!("{}/file/{dir}", self.repo_path()), &Value::Null)?;
                let after = self.packages()?.unwrap_or_default();
                refs =
                    after.iter().filter(|(k, _)| !before.contains_key(*k)).map(|(_, (_, key))| key.clone()).collect();
                let failed: Vec<String> = report["FailedFiles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
                if !failed.is_empty() {
                    let warnings: Vec<String> = report["Report"]["Warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect();
                    bail!("aptly did not add {} to `{}`: {}", failed.join(", "), self.opts.repo, warnings.join("; "));
                }
                for d in &plan.add {
                    let got = after.get(&d.key).map(|(sha, _)| sha.as_str());
                    if got != Some(d.digest.hex().as_str()) {
                        bail!(
                            "aptly did not add {} to `{}` (its SHA-256 there: {})",
                            d.label,
                            self.opts.repo,
                            got.unwrap_or("none")
                        );
                    }
                }
            }
            if plan.published {
                self.update_publish(&plan.distribution)?;
            } else {
                if plan.architectures.is_empty() {
                    bail!("the bundle names no architecture to publish `{}` for", plan.distribution);
                }
                self.call(
                    reqwest::Method::POST,
                    &format!("publish/{}", url_prefix(&self.opts.prefix)),
                    &json!({
                        "SourceKind": "local",
                        "Sources": [{"Name": self.opts.repo, "Component": plan.component}],
                        "Distribution": plan.distribution,
                        "Architectures": plan.architectures,
                        "Signing": self.signing(),
                    }),
                )?;
                created_publish = true;
            }
            Ok(())
        })();
        if let Err(e) = result {
            let dir_undo = self.delete_dir(&dir);
            let undo = self.take_back(&plan, &refs, created_publish);
            let stayed = match (undo, dir_undo) {
                (Ok(()), Ok(())) => "it was put back as it was".to_string(),
                (Err(u), _) => format!("putting it back failed, so this stayed: {u:#}"),
                (Ok(()), Err(u)) => format!("the upload directory `{dir}` stayed: {u:#}"),
            };
            return Err(e.context(format!("importing into aptly repository `{}`; {stayed}", self.opts.repo)));
        }
        journal.record(placed.iter().filter(|p| p.action != "present").cloned().collect(), move || {
            self.take_back(&plan, &refs, created_publish)?;
            self.delete_dir(&dir)
        });
        Ok(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_written_as_aptly_reads_them() {
        assert_eq!(url_prefix("."), ":.");
        assert_eq!(url_prefix(""), ":.");
        assert_eq!(url_prefix("debian/site_a"), "debian_site__a");
        assert_eq!(path_segment("bookworm site"), "bookworm%20site");
    }
}
