//! Debian packages into a Nexus apt-hosted repository (`--apt-nexus URL`, the
//! repository's URL, e.g. `https://nexus.site.example/repository/apt-hosted/`):
//!
//! - plan: read what the repository publishes, from its own indexes
//!   (`dists/<distribution>/main/binary-<arch>/Packages` for each architecture of the
//!   bundle, and `binary-all` where it exists); a package with the same name, version and
//!   architecture and the same SHA-256 is skipped, one with another SHA-256 is a
//!   conflict refused before anything is uploaded;
//! - load: `POST` each new .deb, as the request body, to the repository URL, as Nexus
//!   documents for apt-hosted repositories.
//!
//! Nexus keeps what it accepted: an upload is never taken back by a failed import, and the
//! import's error lists it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow, bail};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};

use crate::bundle::manifest::Kind;
use crate::bundle::verify::VerifiedBundle;
use crate::debian::deb822;
use crate::digest::Digest;
use crate::net::{self, Failure, Net, NetOptions};
use crate::progress::Reporter;
use crate::store::Store;

use super::{Journal, Placed, Target};

pub struct NexusApt<'a> {
    store: &'a Store,
    base: String,
    distribution: Option<String>,
    username: Option<String>,
    password: Option<String>,
    net: Net,
}

/// (package, version, architecture)
type Key = (String, String, String);

struct Deb {
    label: String,
    key: Key,
    digest: Digest,
    size: u64,
}

pub struct NexusPlan {
    add: Vec<Deb>,
    present: Vec<Deb>,
}

impl<'a> NexusApt<'a> {
    pub fn new(
        store: &'a Store,
        url: &str,
        distribution: Option<String>,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--apt-nexus `{url}` must be an http:// or https:// URL");
        }
        let base = if url.ends_with('/') { url.to_string() } else { format!("{url}/") };
        Ok(Self { store, base, distribution, username, password, net: Net::new(&NetOptions::from_env()?)? })
    }

    fn attempt(&self, req: RequestBuilder) -> Result<Response, Failure> {
        let req = match &self.username {
            Some(u) => req.basic_auth(u, self.password.as_deref()),
            None => req,
        };
        let resp = req.send().map_err(|e| self.net.failure(e).context("the Nexus repository did not answer"))?;
        if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Failure::permanent(anyhow!(
                "{} (check AIRLOCK_APT_USERNAME and AIRLOCK_APT_PASSWORD)",
                resp.status()
            )));
        }
        Ok(resp)
    }

    /// The packages one index lists; none when the index does not exist.
    fn index(&self, distribution: &str, arch: &str) -> Result<BTreeMap<Key, String>> {
        let url = format!("{}dists/{distribution}/main/binary-{arch}/Packages", self.base);
        let body = self.net.retry(format!("GET {url}"), || {
            let mut resp = self.attempt(self.net.client().get(&url))?;
            match resp.status() {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => Ok(Some(self.net.read_capped(&mut resp, net::PAGE_MAX)?)),
                _ => Err(Failure::status(&resp)),
            }
        })?;
        let Some(body) = body else { return Ok(BTreeMap::new()) };
        let text = String::from_utf8(body).map_err(|_| anyhow!("{url} is not UTF-8"))?;
        let mut out = BTreeMap::new();
        for p in deb822::parse(&text, &url)? {
            let f = |n: &str| p.get(n).unwrap_or("").to_string();
            out.insert((f("Package"), f("Version"), f("Architecture")), f("SHA256"));
        }
        Ok(out)
    }

    fn location(&self) -> String {
        self.base.clone()
    }
}

impl Target for NexusApt<'_> {
    type Plan = NexusPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<NexusPlan> {
        let mut plan = NexusPlan { add: Vec::new(), present: Vec::new() };
        let mut suites = BTreeSet::new();
        let mut arches = BTreeSet::from(["all".to_string()]);
        let mut debs = Vec::new();
        for a in bundle.manifest.artifacts.iter().filter(|a| a.kind == Kind::Debian) {
            let label =
                format!("{} {} ({})", a.name, a.version.as_deref().unwrap_or("?"), a.arch.as_deref().unwrap_or("?"));
            let ([d], Some(version), Some(arch)) = (&a.blobs[..], &a.version, &a.arch) else {
                bail!("debian artifact {label}: incomplete in the manifest");
            };
            let size = self.store.blob_size(d).ok_or_else(|| super::missing_base_blob(bundle, d, &label))?;
            suites.extend(a.suite.clone());
            arches.insert(arch.clone());
            arches.extend(a.architectures.iter().cloned());
            debs.push(Deb { label, key: (a.name.clone(), version.clone(), arch.clone()), digest: *d, size });
        }
        if debs.is_empty() {
            return Ok(plan);
        }
        let distribution = match (&self.distribution, suites.len()) {
            (Some(d), _) => d.clone(),
            (None, 1) => suites.into_iter().next().unwrap_or_default(),
            _ => bail!(
                "the bundle's Debian packages are for several suites: pass --apt-nexus-distribution (the Nexus repository's distribution); nothing was uploaded"
            ),
        };
        let mut there = BTreeMap::new();
        for arch in &arches {
            there.extend(self.index(&distribution, arch)?);
        }
        let mut seen = BTreeSet::new();
        for deb in debs {
            if !seen.insert(deb.key.clone()) {
                continue;
            }
            match there.get(&deb.key) {
                None => plan.add.push(deb),
                Some(sha) if *sha == deb.digest.hex() => plan.present.push(deb),
                Some(sha) => bail!(
                    "conflict: Nexus repository {} already has {} with other content (SHA-256 {sha}, the bundle has {}); nothing was uploaded",
                    self.base,
                    deb.label,
                    deb.digest.hex()
                ),
            }
        }
        Ok(plan)
    }

    fn load<'a>(
        &'a self,
        plan: NexusPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let placed_of = |d: &Deb, action: &'static str| Placed {
            kind: "debian".into(),
            name: d.label.clone(),
            action,
            location: self.location(),
        };
        let bar = reporter.bytes("nexus", Some(plan.add.iter().map(|d| d.size).sum()));
        let mut placed = Vec::new();
        for d in &plan.add {
            let url = &self.base;
            let file = self.store.open_blob(&d.digest)?;
            let req = self
                .net
                .client()
                .post(url)
                .timeout(self.net.upload_timeout(d.size))
                .header(reqwest::header::CONTENT_TYPE, "multipart/form-data")
                .body(reqwest::blocking::Body::sized(file, d.size));
            let resp = self.attempt(req).map_err(|f| f.error.context(format!("uploading {} to {url}", d.label)))?;
            if !resp.status().is_success() {
                bail!("uploading {} to {url}: {}", d.label, resp.status());
            }
            let p = placed_of(d, "added");
            journal.record_final(vec![p.clone()], "a Nexus apt-hosted repository keeps what it accepted");
            placed.push(p);
            bar.inc(d.size);
        }
        placed.extend(plan.present.iter().map(|d| placed_of(d, "present")));
        Ok(placed)
    }
}
