//! Plain files into a raw repository: the store's own (`<store>/repository/<name>/`, a
//! directory tree any web server can serve, and what `airlock serve` will serve), or a
//! remote one that takes HTTP PUT, as a Nexus raw-hosted repository does.
//!
//! A path that already holds the same content is left alone; a path that holds other
//! content is a conflict, refused before anything is written: a raw repository is an
//! audit trail, and silently replacing a tarball is how supply chains are attacked.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};

use crate::bundle::manifest::Kind;
use crate::bundle::verify::VerifiedBundle;
use crate::digest::Digest;
use crate::net::{self, Failure, Net, NetOptions};
use crate::progress::Reporter;
use crate::relpath::RelPath;
use crate::store::{PathState, Store, hash_reader, hook, remove_empty_dirs};

use super::{Journal, Placed, Target};

/// The files of a bundle, as (path, digest, size). Each blob must be in the store by now
/// (carried by the bundle, or by the base a differential bundle builds on).
fn files(bundle: &VerifiedBundle, store: &Store) -> Result<Vec<(RelPath, Digest, u64)>> {
    let sizes: std::collections::HashMap<_, _> = bundle.manifest.blobs.iter().map(|b| (b.digest, b.size)).collect();
    let files: Vec<_> = bundle
        .manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == Kind::File)
        .filter_map(|a| {
            let d = *a.blobs.first()?;
            Some((a.path.clone()?, d, sizes.get(&d).copied().unwrap_or(0)))
        })
        .collect();
    if let Some((path, d, _)) = files.iter().find(|(_, d, _)| !store.contains(d)) {
        return Err(super::missing_base_blob(bundle, d, path.as_str()));
    }
    Ok(files)
}

/// The store's own raw repository.
pub struct StoreRaw<'a> {
    pub store: &'a Store,
    pub repo: String,
}

pub struct RawPlan {
    add: Vec<(RelPath, Digest, u64)>,
    present: Vec<(RelPath, Digest, u64)>,
}

impl Target for StoreRaw<'_> {
    type Plan = RawPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<RawPlan> {
        let mut plan = RawPlan { add: Vec::new(), present: Vec::new() };
        for (path, d, size) in files(bundle, self.store)? {
            crate::names::raw_path(path.as_str()).map_err(|e| anyhow!("{e}; no file was changed"))?;
            match self.store.repository_state(&self.repo, &path, &d)? {
                PathState::Missing => plan.add.push((path, d, size)),
                PathState::Same => plan.present.push((path, d, size)),
                PathState::Different(have) => bail!(
                    "raw repository `{}` already has {path} with other content ({have}, the bundle has {d}); \
                     no file was changed: move the old file away if it should be replaced",
                    self.repo
                ),
            }
        }
        Ok(plan)
    }

    fn load<'a>(
        &'a self,
        plan: RawPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let bar = reporter.items("raw", plan.add.len() as u64);
        let mut placed = Vec::new();
        for (path, d, _) in plan.add {
            let dirs = self.store.repository_dirs_to_create(&self.repo, &path);
            self.store.place_in_repository(&self.repo, &path, &d).with_context(|| format!("importing {path}"))?;
            let p = self.placed(&path, "added");
            let (store, repo) = (self.store, self.repo.as_str());
            journal.record(vec![p.clone()], move || {
                store.remove_from_repository(repo, &path)?;
                remove_empty_dirs(&dirs);
                Ok(())
            });
            placed.push(p);
            bar.inc(1);
            hook::pause("raw-placed");
        }
        placed.extend(plan.present.iter().map(|(p, _, _)| self.placed(p, "present")));
        Ok(placed)
    }
}

impl StoreRaw<'_> {
    fn placed(&self, path: &RelPath, action: &'static str) -> Placed {
        let location = self.store.layout().repository_file(&self.repo, path).display().to_string();
        Placed { kind: "file".into(), name: path.to_string(), action, location }
    }
}

/// A remote raw repository that takes `PUT <base>/<path>` (Nexus raw-hosted, Artifactory
/// generic, a WebDAV server), with optional Basic auth.
pub struct HttpRaw {
    base: String,
    username: Option<String>,
    password: Option<String>,
    net: Net,
}

/// An [`HttpRaw`] repository, fed from a store's blobs.
pub struct HttpRawTarget<'a> {
    raw: &'a HttpRaw,
    store: &'a Store,
}

impl HttpRaw {
    pub fn new(base: &str, username: Option<String>, password: Option<String>) -> Result<Self> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("raw target `{base}` must be an http:// or https:// URL");
        }
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        Ok(Self { base, username, password, net: Net::new(&NetOptions::from_env()?)? })
    }

    pub fn on<'a>(&'a self, store: &'a Store) -> HttpRawTarget<'a> {
        HttpRawTarget { raw: self, store }
    }

    fn url(&self, path: &RelPath) -> String {
        let mut u = self.base.clone();
        u.push_str(&url_path(path.as_str()));
        u
    }

    /// One attempt of a request, with the credentials; refused credentials are permanent.
    fn attempt(&self, build: &dyn Fn() -> Result<RequestBuilder>) -> Result<Response, Failure> {
        let req = match &self.username {
            Some(u) => build()?.basic_auth(u, self.password.as_deref()),
            None => build()?,
        };
        let resp = req.send().map_err(|e| self.net.failure(e).context("the raw target did not answer"))?;
        if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(Failure::permanent(anyhow!(
                "{} (check the raw target's username and password)",
                resp.status()
            )));
        }
        if net::is_transient_status(resp.status()) {
            return Err(Failure::status(&resp));
        }
        Ok(resp)
    }

    /// A request retried on network errors and transient statuses (every request here is
    /// idempotent: HEAD, GET, PUT of a whole file, DELETE).
    fn send(&self, what: &str, build: &dyn Fn() -> Result<RequestBuilder>) -> Result<Response> {
        self.net.retry(what, || self.attempt(build))
    }

    /// The digest of what the server holds at `path`, if anything.
    fn remote_digest(&self, path: &RelPath) -> Result<Option<Digest>> {
        let url = self.url(path);
        let head = self.send(&format!("HEAD {url}"), &|| Ok(self.net.client().head(&url)))?;
        match head.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => bail!("HEAD {url}: {s}"),
        }
        // Nexus publishes `<path>.sha256`; otherwise read the file and hash it.
        let side_url = format!("{url}.sha256");
        let mut side = self.send(&format!("GET {side_url}"), &|| Ok(self.net.client().get(&side_url)))?;
        if side.status().is_success() {
            let text = String::from_utf8_lossy(&self.net.read_capped(&mut side, net::SMALL_MAX).unwrap_or_default())
                .into_owned();
            if let Ok(d) = Digest::from_hex(text.split_whitespace().next().unwrap_or("")) {
                return Ok(Some(d));
            }
        }
        let d = self.net.retry(format!("GET {url}"), || {
            let mut resp = self.attempt(&|| Ok(self.net.client().get(&url)))?;
            if !resp.status().is_success() {
                return Err(Failure::status(&resp));
            }
            let (d, _) = hash_reader(&mut resp as &mut dyn Read).map_err(|e| self.net.read_failure(e, 0))?;
            Ok(d)
        })?;
        Ok(Some(d))
    }
}

impl Target for HttpRawTarget<'_> {
    type Plan = RawPlan;

    fn plan(&self, bundle: &VerifiedBundle) -> Result<RawPlan> {
        let mut plan = RawPlan { add: Vec::new(), present: Vec::new() };
        for (path, d, size) in files(bundle, self.store)? {
            match self.raw.remote_digest(&path)? {
                None => plan.add.push((path, d, size)),
                Some(have) if have == d => plan.present.push((path, d, size)),
                Some(have) => bail!(
                    "{} already holds other content ({have}, the bundle has {d}); nothing was uploaded: \
                     delete the old file there if it should be replaced",
                    self.raw.url(&path)
                ),
            }
        }
        Ok(plan)
    }

    fn load<'a>(
        &'a self,
        plan: RawPlan,
        _bundle: &VerifiedBundle,
        reporter: &Reporter,
        journal: &mut Journal<'a>,
    ) -> Result<Vec<Placed>> {
        let bar = reporter.bytes("upload", Some(plan.add.iter().map(|a| a.2).sum()));
        let mut placed = Vec::new();
        for (path, d, size) in &plan.add {
            let url = self.raw.url(path);
            let resp = self.raw.send(&format!("PUT {url}"), &|| {
                let file = self.store.open_blob(d)?;
                let body = reqwest::blocking::Body::sized(file, *size);
                Ok(self.raw.net.client().put(&url).timeout(self.raw.net.upload_timeout(*size)).body(body))
            })?;
            if !resp.status().is_success() {
                bail!("PUT {url}: {}", resp.status());
            }
            let p = Placed { kind: "file".into(), name: path.to_string(), action: "added", location: url.clone() };
            let raw = self.raw;
            journal.record(vec![p.clone()], move || {
                let resp = raw.send(&format!("DELETE {url}"), &|| Ok(raw.net.client().delete(&url)))?;
                match resp.status() {
                    s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
                    s => Err(anyhow!("DELETE {url}: {s}")),
                }
            });
            bar.inc(*size);
            placed.push(p);
        }
        placed.extend(plan.present.iter().map(|(p, _, _)| Placed {
            kind: "file".into(),
            name: p.to_string(),
            action: "present",
            location: self.raw.url(p),
        }));
        Ok(placed)
    }
}

/// A relative path as a URL path: each `/`-separated component percent-encoded, so a
/// space, `#`, `?` or `%` in a file name stays part of the name.
pub fn url_path(path: &str) -> String {
    let mut u = String::with_capacity(path.len());
    for (i, c) in path.split('/').enumerate() {
        if i > 0 {
            u.push('/');
        }
        for b in c.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~+@".contains(&b) {
                u.push(b as char);
            } else {
                u.push_str(&format!("%{b:02X}"));
            }
        }
    }
    u
}
