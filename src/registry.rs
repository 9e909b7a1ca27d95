//! A client for the OCI distribution API, just what mirroring and pushing need: manifests
//! and blobs by digest, uploads (monolithic, and cross-repository mounts), and the
//! registry auth dance (Basic, or Bearer tokens from the realm a 401 names). Credentials
//! come from the Docker/Podman auth files or AIRLOCK_REGISTRY_USERNAME/PASSWORD.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RANGE, WWW_AUTHENTICATE};

use crate::digest::{Digest, Hasher};
use crate::oci::ACCEPT as MANIFEST_ACCEPT;
use crate::store::Store;

pub struct Registry {
    pub host: String,
    base: String,
    client: Client,
    creds: Option<(String, String)>,
    tokens: Mutex<HashMap<String, String>>,
}

impl Registry {
    pub fn new(host: &str, insecure: bool) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .timeout(None)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let scheme = if insecure { "http" } else { "https" };
        Ok(Self {
            host: host.to_string(),
            base: format!("{scheme}://{host}"),
            client,
            creds: credentials(host),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a request built by `build`, answering one auth challenge if there is one.
    fn send(&self, scope: &str, build: &dyn Fn() -> Result<RequestBuilder>) -> Result<Response> {
        let token = self.tokens.lock().unwrap().get(scope).cloned();
        let req = match &token {
            Some(t) => build()?.header(AUTHORIZATION, t),
            None => build()?,
        };
        let resp = req.send().with_context(|| format!("registry {} did not answer", self.host))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let auth = self.authenticate(&challenge, scope)?;
        self.tokens.lock().unwrap().insert(scope.to_string(), auth.clone());
        let resp = build()?
            .header(AUTHORIZATION, auth)
            .send()
            .with_context(|| format!("registry {} did not answer", self.host))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            bail!(
                "registry {} refused the credentials for `{scope}` (set them in the Docker auth file or AIRLOCK_REGISTRY_USERNAME/PASSWORD)",
                self.host
            );
        }
        Ok(resp)
    }

    fn authenticate(&self, challenge: &str, scope: &str) -> Result<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let (u, p) = self.creds.as_ref().ok_or_else(|| {
                anyhow!("registry {} needs credentials: log in (Docker auth file) or set AIRLOCK_REGISTRY_USERNAME/PASSWORD", self.host)
            })?;
            return Ok(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            bail!("registry {} asks for `{scheme}` authentication, which airlock does not speak", self.host);
        }
        let p = parse_params(params);
        let realm =
            p.get("realm").ok_or_else(|| anyhow!("registry {}: bearer challenge without a realm", self.host))?;
        let mut url =
            reqwest::Url::parse(realm).with_context(|| format!("registry {}: bad realm `{realm}`", self.host))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = p.get("service") {
                q.append_pair("service", service);
            }
            for s in scope.split(' ') {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.client.get(url);
        if let Some((u, pw)) = &self.creds {
            req = req.basic_auth(u, Some(pw));
        }
        let resp = req.send().with_context(|| format!("token server {realm} did not answer"))?;
        if !resp.status().is_success() {
            bail!("token server {realm} refused `{scope}`: {}", resp.status());
        }
        let body: serde_json::Value =
            serde_json::from_reader(resp).with_context(|| format!("token server {realm}: not JSON"))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or_else(|| anyhow!("token server {realm}: no token"))?;
        Ok(format!("Bearer {token}"))
    }

    fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }

    fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    /// A manifest's exact bytes and content type.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send(&Self::pull_scope(repo), &|| Ok(self.client.get(&url).header(ACCEPT, MANIFEST_ACCEPT)))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("{}/{repo}:{reference}: {status}{}", self.host, error_detail(resp));
        }
        let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut bytes = Vec::new();
        resp.take(64 << 20).read_to_end(&mut bytes).with_context(|| format!("reading manifest {repo}:{reference}"))?;
        Ok((bytes, ct))
    }

    /// Fetch a blob into `store`, checked against `digest`, resuming a broken transfer.
    pub fn fetch_blob(
        &self,
        repo: &str,
        digest: &Digest,
        store: &Store,
        retries: u32,
        backoff: Duration,
    ) -> Result<()> {
        if store.contains(digest) {
            return Ok(());
        }
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let partial = store.partial(&digest.hex())?;
        if store.contains(digest) {
            return Ok(()); // another image fetched it while this one waited for the slot
        }
        let mut last = None;
        for attempt in 0..=retries {
            if attempt > 0 {
                std::thread::sleep(backoff * 2u32.pow(attempt.min(6) - 1));
            }
            let have = partial.downloaded();
            let resp = self.send(&Self::pull_scope(repo), &|| {
                let r = self.client.get(&url);
                Ok(if have > 0 { r.header(RANGE, format!("bytes={have}-")) } else { r })
            });
            let mut resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let resume = match resp.status() {
                StatusCode::PARTIAL_CONTENT if have > 0 => true,
                StatusCode::OK => false,
                s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    last = Some(anyhow!("GET {url}: {s}"));
                    continue;
                }
                s => bail!("blob {digest} of {}/{repo}: {s}{}", self.host, error_detail(resp)),
            };
            let (mut file, mut hasher): (std::fs::File, Hasher) = partial.open(resume)?;
            let mut buf = vec![0u8; 256 * 1024];
            let broke = loop {
                match resp.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        file.write_all(&buf[..n]).with_context(|| format!("writing blob {digest} to the cache"))?;
                    }
                    Err(e) => break Some(e),
                }
            };
            if let Some(e) = broke {
                last = Some(anyhow!("blob {digest}: transfer broke after {} bytes: {e}", hasher.bytes()));
                continue;
            }
            let (got, size) = hasher.finish();
            if got != *digest {
                partial.discard();
                bail!(
                    "blob {digest} of {}/{repo} does not match its digest: the registry sent {size} bytes hashing to {got}",
                    self.host
                );
            }
            return partial.commit(file, digest);
        }
        Err(last.expect("an attempt").context(format!("giving up on blob {digest} of {}/{repo}", self.host)))
    }

    /// `GET /v2/`, authenticating if challenged: is the registry there, and do the
    /// credentials work? Called before an import changes anything.
    pub fn check(&self, repo: &str) -> Result<()> {
        let url = self.url("/v2/");
        let resp = self.send(&Self::push_scope(repo), &|| Ok(self.client.get(&url)))?;
        if !resp.status().is_success() {
            bail!("registry {} answers {} at /v2/: is it an OCI registry?", self.host, resp.status());
        }
        Ok(())
    }

    pub fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(&Self::push_scope(repo), &|| Ok(self.client.head(&url)))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD {url}: {s}"),
        }
    }

    /// The digest a manifest reference resolves to at the registry, if it exists.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp =
            self.send(&Self::push_scope(repo), &|| Ok(self.client.head(&url).header(ACCEPT, MANIFEST_ACCEPT)))?;
        match resp.status() {
            s if s.is_success() => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            s => bail!("HEAD {url}: {s}"),
        }
    }

    /// Push a blob from the store: a cross-repository mount from `mount_from` when the
    /// registry allows, else a monolithic upload, or PATCH chunks of `chunk` bytes when the
    /// blob is larger (for registries and proxies that limit request sizes). Returns
    /// whether it was mounted.
    pub fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        store: &Store,
        mount_from: Option<&str>,
        chunk: u64,
    ) -> Result<bool> {
        let scope = match mount_from {
            Some(from) => format!("{} repository:{from}:pull", Self::push_scope(repo)),
            None => Self::push_scope(repo),
        };
        let start = match mount_from {
            Some(from) => self.url(&format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}")),
            None => self.url(&format!("/v2/{repo}/blobs/uploads/")),
        };
        let resp = self.send(&scope, &|| Ok(self.client.post(&start).header("content-length", "0")))?;
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => return Ok(true),
            StatusCode::ACCEPTED => {}
            s => bail!("starting the upload of {digest} to {}/{repo}: {s}{}", self.host, error_detail(resp)),
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("{}/{repo}: upload started without a Location", self.host))?;
        let mut put = reqwest::Url::parse(&start)?.join(location)?;
        if size > chunk {
            put = self.patch_chunks(repo, &scope, put, digest, size, store, chunk)?;
            put.query_pairs_mut().append_pair("digest", &digest.to_string());
            let resp = self.send(&scope, &|| Ok(self.client.put(put.clone()).header("content-length", "0")))?;
            if resp.status() != StatusCode::CREATED {
                bail!(
                    "closing the upload of {digest} to {}/{repo}: {}{}",
                    self.host,
                    resp.status(),
                    error_detail(resp)
                );
            }
            return Ok(false);
        }
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let resp = self.send(&scope, &|| {
            let file = store.open_blob(digest)?;
            Ok(self
                .client
                .put(put.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(reqwest::blocking::Body::sized(file, size)))
        })?;
        if resp.status() != StatusCode::CREATED {
            bail!("uploading {digest} to {}/{repo}: {}{}", self.host, resp.status(), error_detail(resp));
        }
        Ok(false)
    }

    /// Send a blob as PATCH chunks with `Content-Range`; returns the location to close.
    #[allow(clippy::too_many_arguments)]
    fn patch_chunks(
        &self,
        repo: &str,
        scope: &str,
        mut location: reqwest::Url,
        digest: &Digest,
        size: u64,
        store: &Store,
        chunk: u64,
    ) -> Result<reqwest::Url> {
        use std::io::{Seek, SeekFrom};
        let mut start = 0u64;
        while start < size {
            let len = chunk.min(size - start);
            let end = start + len - 1;
            let resp = self.send(scope, &|| {
                let mut file = store.open_blob(digest)?;
                file.seek(SeekFrom::Start(start))?;
                Ok(self
                    .client
                    .patch(location.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header("content-range", format!("{start}-{end}"))
                    .body(reqwest::blocking::Body::sized(file.take(len), len)))
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                bail!(
                    "uploading {digest} to {}/{repo}, bytes {start}-{end}: {}{}",
                    self.host,
                    resp.status(),
                    error_detail(resp)
                );
            }
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| anyhow!("{}/{repo}: a chunk was accepted without a Location", self.host))?;
            location = location.join(next)?;
            start += len;
        }
        Ok(location)
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send(&Self::push_scope(repo), &|| {
            Ok(self.client.put(&url).header(CONTENT_TYPE, media_type).body(bytes.to_vec()))
        })?;
        if !resp.status().is_success() {
            bail!("putting manifest {repo}:{reference} to {}: {}{}", self.host, resp.status(), error_detail(resp));
        }
        Ok(())
    }
}

/// `key="value", key2="value2"` from a WWW-Authenticate header.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((k, v)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (value, after) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match v.find(',') {
                Some(end) => (&v[..end], &v[end..]),
                None => (v, ""),
            }
        };
        out.insert(k, value.to_string());
        rest = after.trim_start_matches(',').trim();
    }
    out
}

/// The first OCI error message in a response, for error lines.
fn error_detail(resp: Response) -> String {
    let body: serde_json::Value = serde_json::from_reader(resp.take(1 << 20)).unwrap_or_default();
    match body["errors"][0]["message"].as_str() {
        Some(m) => format!(" ({}: {m})", body["errors"][0]["code"].as_str().unwrap_or("error")),
        None => String::new(),
    }
}

/// Credentials for `host`: AIRLOCK_REGISTRY_USERNAME/PASSWORD, else the Docker or Podman
/// auth file (`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`).
fn credentials(host: &str) -> Option<(String, String)> {
    if let (Ok(u), Ok(p)) = (std::env::var("AIRLOCK_REGISTRY_USERNAME"), std::env::var("AIRLOCK_REGISTRY_PASSWORD")) {
        return Some((u, p));
    }
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(std::path::PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        files.push(std::path::PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        files.push(std::path::PathBuf::from(h).join(".docker/config.json"));
    }
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(std::path::PathBuf::from(r).join("containers/auth.json"));
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let Some(auth) = v["auths"][host]["auth"].as_str() else { continue };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(auth) else { continue };
        if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
            return Some((u.to_string(), p.to_string()));
        }
    }
    None
}

impl Registry {
    /// `DELETE /v2/<repo>/manifests/<reference>`, to undo an import: by digest it deletes
    /// the manifest and every tag naming it; by tag, where the registry supports it
    /// (distribution 3, Harbor, Zot), the tag alone. Returns the registry's status (202
    /// deleted, 404 not there, 400/405 not supported or deletes disabled); an error only
    /// when the registry does not answer.
    pub fn delete_manifest(&self, repo: &str, reference: &str) -> Result<StatusCode> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let scope = format!("repository:{repo}:pull,push,delete");
        let resp = self.send(&scope, &|| Ok(self.client.delete(&url)))?;
        Ok(resp.status())
    }

    /// Every tag of a repository (`GET /v2/<repo>/tags/list`, following `Link` pages).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let mut url = self.url(&format!("/v2/{repo}/tags/list"));
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let resp = self.send(&Self::pull_scope(repo), &|| Ok(self.client.get(&url)))?;
            match resp.status() {
                StatusCode::NOT_FOUND => return Ok(tags),
                s if s.is_success() => {}
                s => bail!("listing the tags of {}/{repo}: {s}", self.host),
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once('<')?.1.split_once('>').map(|(u, _)| u.to_string()));
            let body: serde_json::Value = serde_json::from_reader(resp.take(64 << 20))
                .with_context(|| format!("listing the tags of {}/{repo}: not JSON", self.host))?;
            tags.extend(body["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(String::from)));
            match next {
                Some(n) => url = reqwest::Url::parse(&self.base)?.join(&n)?.to_string(),
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_params() {
        let p = parse_params(
            r#"realm="https://auth.registry.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.registry.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }
}
