//! A client for the OCI distribution API, just what mirroring and pushing need: manifests
//! and blobs by digest, uploads (monolithic, chunked, and cross-repository mounts), and
//! the registry auth dance (Basic, or Bearer tokens from the realm a 401 names). Every
//! request goes through [`crate::net`]: reads, token requests, manifest PUTs and HEADs are
//! retried as downloads are, and a blob upload that fails starts a new upload session.
//! Credentials come from AIRLOCK_REGISTRY_USERNAME/PASSWORD or the Docker/Podman auth
//! files, with their credential helpers (`credHelpers`, `credsStore`).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION, WWW_AUTHENTICATE};

use crate::digest::Digest;
use crate::net::{self, Failure, Net, NetOptions, Want};
use crate::oci::ACCEPT as MANIFEST_ACCEPT;
use crate::store::Store;

pub struct Registry {
    pub host: String,
    base: String,
    net: Net,
    /// Looked up at the first challenge: a registry that never asks runs no helper.
    creds: OnceLock<Result<Option<Credential>, String>>,
    tokens: Mutex<HashMap<String, String>>,
    /// Where chunked uploads in progress are written down, to resume after a kill.
    resume_dir: Option<std::path::PathBuf>,
}

/// What a blob push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Mounted from another repository: no bytes moved.
    Mounted,
    /// Uploaded: this many bytes went up (fewer than the blob's size when a chunked
    /// upload an earlier run left was resumed).
    Bytes(u64),
}

/// A chunked upload in progress, as written down after each accepted chunk.
#[derive(serde::Serialize, serde::Deserialize)]
struct UploadRecord {
    location: String,
    offset: u64,
}

/// What the auth files or the environment hold for a registry.
#[derive(Clone)]
enum Credential {
    Basic(String, String),
    /// An OAuth2 refresh token (`identitytoken`, what `docker login` keeps for some
    /// registries), exchanged at the token server.
    IdentityToken(String),
}

type Build<'a> = dyn Fn() -> Result<RequestBuilder> + 'a;

impl Registry {
    /// A registry client with the default network settings, as the environment changes
    /// them ([`NetOptions::from_env`]).
    pub fn new(host: &str, insecure: bool) -> Result<Self> {
        Self::with_options(host, insecure, &NetOptions::from_env()?)
    }

    pub fn with_options(host: &str, insecure: bool, opts: &NetOptions) -> Result<Self> {
        let scheme = if insecure { "http" } else { "https" };
        Ok(Self {
            host: host.to_string(),
            base: format!("{scheme}://{host}"),
            net: Net::new(opts)?,
            creds: OnceLock::new(),
            tokens: Mutex::new(HashMap::new()),
            resume_dir: None,
        })
    }

    /// Write down each chunked upload in progress under `dir` (one small file per blob and
    /// repository, removed when the blob is complete), so that a push of the same blob
    /// after a kill asks the registry how far it got (`GET` of the upload, its `Range`)
    /// and sends only the rest.
    pub fn resume_uploads_in(mut self, dir: std::path::PathBuf) -> Self {
        self.resume_dir = Some(dir);
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn credentials(&self) -> Result<Option<Credential>, Failure> {
        self.creds
            .get_or_init(|| credentials(&self.host).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| Failure::permanent(anyhow!(e)))
    }

    /// One attempt of a request built by `build`, answering one auth challenge if there is
    /// one. Any status is returned; only transport errors and auth failures are errors.
    fn attempt(&self, scope: &str, build: &Build) -> Result<Response, Failure> {
        let token = self.tokens.lock().unwrap().get(scope).cloned();
        let req = match &token {
            Some(t) => build()?.header(AUTHORIZATION, t),
            None => build()?,
        };
        let resp = req.send().map_err(|e| self.net.failure(e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let auth = self.authenticate(&challenge, scope)?;
        self.tokens.lock().unwrap().insert(scope.to_string(), auth.clone());
        let resp = build()?.header(AUTHORIZATION, auth).send().map_err(|e| self.net.failure(e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Failure::permanent(anyhow!(
                "registry {} refused the credentials for `{scope}` (set them in the Docker auth file or AIRLOCK_REGISTRY_USERNAME/PASSWORD)",
                self.host
            )));
        }
        Ok(resp)
    }

    /// A request, retried on network errors and transient statuses; `then` judges any other
    /// answer (and reads its body, inside the retry).
    fn call<T>(
        &self,
        what: &str,
        scope: &str,
        build: &Build,
        mut then: impl FnMut(Response) -> Result<T, Failure>,
    ) -> Result<T> {
        self.net.retry(what, || {
            let resp = self.attempt(scope, build)?;
            if net::is_transient_status(resp.status()) {
                return Err(Failure::status(&resp));
            }
            then(resp)
        })
    }

    fn authenticate(&self, challenge: &str, scope: &str) -> Result<String, Failure> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let creds = self.credentials()?;
        if scheme.eq_ignore_ascii_case("basic") {
            return match creds {
                Some(Credential::Basic(u, p)) => {
                    Ok(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))))
                }
                Some(Credential::IdentityToken(_)) => Err(Failure::permanent(anyhow!(
                    "registry {} asks for a password, and the auth file holds only an identity token for it",
                    self.host
                ))),
                None => Err(Failure::permanent(anyhow!(
                    "registry {} needs credentials: log in (Docker auth file) or set AIRLOCK_REGISTRY_USERNAME/PASSWORD",
                    self.host
                ))),
            };
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Failure::permanent(anyhow!(
                "registry {} asks for `{scheme}` authentication, which airlock does not speak",
                self.host
            )));
        }
        let p = parse_params(params);
        let realm = p
            .get("realm")
            .ok_or_else(|| Failure::permanent(anyhow!("registry {}: bearer challenge without a realm", self.host)))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| Failure::permanent(anyhow!("registry {}: bad realm `{realm}`: {e}", self.host)))?;
        let req = match &creds {
            Some(Credential::IdentityToken(refresh)) => {
                // OAuth2 (the distribution token spec): POST a refresh token.
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "airlock")
                    .append_pair("scope", scope);
                if let Some(service) = p.get("service") {
                    form.append_pair("service", service);
                }
                self.net
                    .client()
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = p.get("service") {
                        q.append_pair("service", service);
                    }
                    for s in scope.split(' ') {
                        q.append_pair("scope", s);
                    }
                }
                let req = self.net.client().get(url.clone());
                match &creds {
                    Some(Credential::Basic(u, pw)) => req.basic_auth(u, Some(pw)),
                    _ => req,
                }
            }
        };
        let context = |f: Failure| f.context(format!("token server {realm}"));
        let mut resp = req.send().map_err(|e| context(self.net.failure(e)))?;
        let status = resp.status();
        if !status.is_success() {
            let why = anyhow!("token server {realm} refused `{scope}`: {status}");
            return Err(Failure::status_with(status, resp.headers(), why));
        }
        let bytes = self.net.read_capped(&mut resp, net::SMALL_MAX).map_err(context)?;
        let body: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::permanent(anyhow!("token server {realm}: not JSON: {e}")))?;
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .ok_or_else(|| Failure::permanent(anyhow!("token server {realm}: no token")))?;
        Ok(format!("Bearer {token}"))
    }

    fn pull_scope(repo: &str) -> String {
        format!("repository:{repo}:pull")
    }

    fn push_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    /// A manifest's exact bytes and content type (at most [`net::MANIFEST_MAX`] bytes).
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let build = || Ok(self.net.client().get(&url).header(ACCEPT, MANIFEST_ACCEPT));
        self.call(&format!("GET {url}"), &Self::pull_scope(repo), &build, |mut resp| {
            let status = resp.status();
            if !status.is_success() {
                let headers = resp.headers().clone();
                let why = anyhow!("{}/{repo}:{reference}: {status}{}", self.host, error_detail(resp));
                return Err(Failure::status_with(status, &headers, why));
            }
            let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = self.net.read_capped(&mut resp, net::MANIFEST_MAX)?;
            Ok((bytes, ct))
        })
    }

    /// Fetch a blob into `store`, checked against `digest` and, when given, the size its
    /// descriptor names (the download stops there), resuming a broken transfer.
    pub fn fetch_blob(&self, repo: &str, digest: &Digest, size: Option<u64>, store: &Store) -> Result<()> {
        if store.contains(digest) {
            return Ok(());
        }
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let partial = store.partial(&digest.hex())?;
        if store.contains(digest) {
            return Ok(()); // another image fetched it while this one waited for the slot
        }
        let scope = Self::pull_scope(repo);
        let send = |h: &HeaderMap| self.attempt(&scope, &|| Ok(self.net.client().get(&url).headers(h.clone())));
        let want = Want { digest: Some(digest), size, size_from: "its descriptor" };
        self.net.download(&url, &partial, &want, &send, &|got, n| {
            anyhow!(
                "blob {digest} of {}/{repo} does not match its digest: the registry sent {n} bytes hashing to {got}",
                self.host
            )
        })?;
        Ok(())
    }

    /// `GET /v2/`, authenticating if challenged: is the registry there, and do the
    /// credentials work? Called before an import changes anything.
    pub fn check(&self, repo: &str) -> Result<()> {
        let url = self.url("/v2/");
        self.call(&format!("GET {url}"), &Self::push_scope(repo), &|| Ok(self.net.client().get(&url)), |resp| {
            if !resp.status().is_success() {
                return Err(Failure::permanent(anyhow!(
                    "registry {} answers {} at /v2/: is it an OCI registry?",
                    self.host,
                    resp.status()
                )));
            }
            Ok(())
        })
    }

    pub fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        self.call(&format!("HEAD {url}"), &Self::push_scope(repo), &|| Ok(self.net.client().head(&url)), |resp| {
            match resp.status() {
                s if s.is_success() => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(Failure::status(&resp)),
            }
        })
    }

    /// The digest a manifest reference resolves to at the registry, if it exists.
    pub fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let build = || Ok(self.net.client().head(&url).header(ACCEPT, MANIFEST_ACCEPT));
        self.call(&format!("HEAD {url}"), &Self::push_scope(repo), &build, |resp| match resp.status() {
            s if s.is_success() => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Failure::status(&resp)),
        })
    }

    /// Push a blob from the store: a cross-repository mount from `mount_from` when the
    /// registry allows, else a monolithic upload, or PATCH chunks of `chunk` bytes when the
    /// blob is larger (for registries and proxies that limit request sizes). Returns
    /// whether it was mounted. A failed attempt is retried with a new upload session.
    pub fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        store: &Store,
        mount_from: Option<&str>,
        chunk: u64,
    ) -> Result<bool> {
        Ok(self.push_blob_from(repo, digest, size, &|| store.open_blob(digest), mount_from, chunk)? == Sent::Mounted)
    }

    /// [`Self::push_blob`] of bytes `open` reads from the start, each time it is called (a
    /// blob still in an import's staging area).
    pub fn push_blob_from(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        open: &(dyn Fn() -> Result<std::fs::File> + Sync),
        mount_from: Option<&str>,
        chunk: u64,
    ) -> Result<Sent> {
        let what = format!("uploading {digest} to {}/{repo}", self.host);
        self.net.retry(&what, || self.push_attempt(repo, digest, size, open, mount_from, chunk))
    }

    /// Fail on any status but `want`, with the registry's own error message.
    fn expect(&self, resp: Response, want: StatusCode, doing: &str) -> Result<Response, Failure> {
        let status = resp.status();
        if status == want {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let why = anyhow!("{doing}: {status}{}", error_detail(resp));
        Err(Failure::status_with(status, &headers, why))
    }

    fn push_attempt(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        open: &(dyn Fn() -> Result<std::fs::File> + Sync),
        mount_from: Option<&str>,
        chunk: u64,
    ) -> Result<Sent, Failure> {
        let scope = match mount_from {
            Some(from) => format!("{} repository:{from}:pull", Self::push_scope(repo)),
            None => Self::push_scope(repo),
        };
        let start = match mount_from {
            Some(from) => self.url(&format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}")),
            None => self.url(&format!("/v2/{repo}/blobs/uploads/")),
        };
        let record = (size > chunk).then(|| self.upload_record(repo, digest)).flatten();
        let resumed = match (&record, mount_from) {
            (Some(r), None) => self.resumable(r, &scope, size),
            _ => None,
        };
        let (mut put, from) = match resumed {
            Some(at) => at,
            None => {
                let resp =
                    self.attempt(&scope, &|| Ok(self.net.client().post(&start).header("content-length", "0")))?;
                if resp.status() == StatusCode::CREATED && mount_from.is_some() {
                    return Ok(Sent::Mounted);
                }
                let resp = self.expect(resp, StatusCode::ACCEPTED, "starting the upload")?;
                let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                    Failure::permanent(anyhow!("{}/{repo}: upload started without a Location", self.host))
                })?;
                (reqwest::Url::parse(&start).and_then(|u| u.join(location)).map_err(anyhow::Error::from)?, 0)
            }
        };
        if size > chunk {
            put = self.patch_chunks(repo, &scope, put, from, size, open, chunk, record.as_deref())?;
            put.query_pairs_mut().append_pair("digest", &digest.to_string());
            let resp =
                self.attempt(&scope, &|| Ok(self.net.client().put(put.clone()).header("content-length", "0")))?;
            // Complete, or refused (a resumed upload that does not add up is never
            // resumed again): either way the record has served.
            if let Some(r) = &record {
                let _ = std::fs::remove_file(r);
            }
            self.expect(resp, StatusCode::CREATED, "closing the upload")?;
            return Ok(Sent::Bytes(size - from));
        }
        put.query_pairs_mut().append_pair("digest", &digest.to_string());
        let resp = self.attempt(&scope, &|| {
            let file = open()?;
            Ok(self
                .net
                .client()
                .put(put.clone())
                .timeout(self.net.upload_timeout(size))
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(reqwest::blocking::Body::sized(file, size)))
        })?;
        self.expect(resp, StatusCode::CREATED, "uploading")?;
        Ok(Sent::Bytes(size))
    }

    /// Where a chunked upload of `digest` into `repo` is written down, if anywhere.
    fn upload_record(&self, repo: &str, digest: &Digest) -> Option<std::path::PathBuf> {
        let key = Digest::of(format!("{}\n{repo}\n{digest}", self.host).as_bytes());
        self.resume_dir.as_ref().map(|d| d.join(format!("push-{}.json", key.hex())))
    }

    /// The upload an earlier run wrote down at `record`, if the registry still has it: its
    /// location now and the offset to go on from (the end of the `Range` the registry
    /// says it holds). Anything else (no record, an upload the registry forgot or
    /// refuses to resume) is `None`, and the record is removed: the push starts over.
    fn resumable(&self, record: &std::path::Path, scope: &str, size: u64) -> Option<(reqwest::Url, u64)> {
        let r: UploadRecord = serde_json::from_slice(&std::fs::read(record).ok()?).ok()?;
        let found = (|| {
            let at = reqwest::Url::parse(&r.location).ok()?;
            let resp = self.attempt(scope, &|| Ok(self.net.client().get(at.clone()))).ok()?;
            if resp.status() != StatusCode::NO_CONTENT {
                return None;
            }
            let range = resp.headers().get("range")?.to_str().ok()?;
            let end: u64 = range.strip_prefix("0-")?.parse().ok()?;
            // `0-0` cannot tell no byte from one: start over.
            if end == 0 || end + 1 > size {
                return None;
            }
            let next = resp.headers().get(LOCATION)?.to_str().ok()?;
            Some((at.join(next).ok()?, end + 1))
        })();
        if found.is_none() {
            let _ = std::fs::remove_file(record);
        }
        found
    }

    /// Send a blob from offset `from` as PATCH chunks with `Content-Range`; returns the
    /// location to close. After each accepted chunk, the upload's location and offset are
    /// written to `record`.
    #[allow(clippy::too_many_arguments)]
    fn patch_chunks(
        &self,
        repo: &str,
        scope: &str,
        mut location: reqwest::Url,
        from: u64,
        size: u64,
        open: &(dyn Fn() -> Result<std::fs::File> + Sync),
        chunk: u64,
        record: Option<&std::path::Path>,
    ) -> Result<reqwest::Url, Failure> {
        use std::io::{Seek, SeekFrom};
        let mut start = from;
        while start < size {
            let len = chunk.min(size - start);
            let end = start + len - 1;
            let resp = self.attempt(scope, &|| {
                let mut file = open()?;
                file.seek(SeekFrom::Start(start))?;
                Ok(self
                    .net
                    .client()
                    .patch(location.clone())
                    .timeout(self.net.upload_timeout(len))
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header("content-range", format!("{start}-{end}"))
                    .body(reqwest::blocking::Body::sized(file.take(len), len)))
            })?;
            let resp = self.expect(resp, StatusCode::ACCEPTED, &format!("bytes {start}-{end}"))?;
            let next = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                Failure::permanent(anyhow!("{}/{repo}: a chunk was accepted without a Location", self.host))
            })?;
            location = location.join(next).map_err(anyhow::Error::from)?;
            start += len;
            if let Some(r) = record {
                // Best effort: without the record, a later run starts this blob over.
                let rec = UploadRecord { location: location.to_string(), offset: start };
                if let Some(dir) = r.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = crate::store::atomic::write(r, &serde_json::to_vec(&rec).unwrap_or_default());
                crate::store::hook::pause("registry-chunk");
            }
        }
        Ok(location)
    }

    /// PUT a manifest (by digest or tag: idempotent, so retried like a read).
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        self.put_manifest_subject(repo, reference, media_type, bytes).map(|_| ())
    }

    /// [`Self::put_manifest`], returning the `OCI-Subject` header of the answer: a
    /// registry that serves the referrers API names the subject of a manifest that has one.
    pub fn put_manifest_subject(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let build = || Ok(self.net.client().put(&url).header(CONTENT_TYPE, media_type).body(bytes.to_vec()));
        self.call(&format!("PUT {url}"), &Self::push_scope(repo), &build, |resp| {
            if !resp.status().is_success() {
                let (status, headers) = (resp.status(), resp.headers().clone());
                let why =
                    anyhow!("putting manifest {repo}:{reference} to {}: {status}{}", self.host, error_detail(resp));
                return Err(Failure::status_with(status, &headers, why));
            }
            Ok(resp.headers().get("oci-subject").and_then(|v| v.to_str().ok()).map(str::to_string))
        })
    }

    /// A manifest's bytes and content type, or `None` if the registry has no such
    /// reference (404).
    pub fn find_manifest(&self, repo: &str, reference: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let build = || Ok(self.net.client().get(&url).header(ACCEPT, MANIFEST_ACCEPT));
        self.call(&format!("GET {url}"), &Self::pull_scope(repo), &build, |mut resp| {
            let status = resp.status();
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !status.is_success() {
                let headers = resp.headers().clone();
                let why = anyhow!("{}/{repo}:{reference}: {status}{}", self.host, error_detail(resp));
                return Err(Failure::status_with(status, &headers, why));
            }
            let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            Ok(Some((self.net.read_capped(&mut resp, net::MANIFEST_MAX)?, ct)))
        })
    }

    /// `GET /v2/<repo>/referrers/<digest>` (OCI distribution 1.1): the image index of the
    /// manifests whose subject is `digest`, and whether the registry applied the
    /// `artifactType` filter (`OCI-Filters-Applied`). `None` when the registry does not
    /// serve the API (404 or another status, or an answer that is not an image index): the
    /// caller falls back to the `sha256-<hex>` tag.
    pub fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<(Vec<u8>, bool)>> {
        let mut url = reqwest::Url::parse(&self.url(&format!("/v2/{repo}/referrers/{subject}")))?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let build = || Ok(self.net.client().get(url.clone()).header(ACCEPT, crate::oci::OCI_INDEX));
        self.call(&format!("GET {url}"), &Self::pull_scope(repo), &build, |mut resp| {
            if !resp.status().is_success() {
                return Ok(None);
            }
            let filtered = resp
                .headers()
                .get("oci-filters-applied")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = self.net.read_capped(&mut resp, net::MANIFEST_MAX)?;
            let is_index = crate::oci::media_type_of(&bytes, ct.as_deref()).is_ok_and(|m| crate::oci::is_index(&m))
                && serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v["manifests"].is_array());
            Ok(is_index.then_some((bytes, filtered)))
        })
    }

    /// A small blob's bytes (at most `max`), checked against its digest.
    pub fn get_small_blob(&self, repo: &str, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let bytes = self.call(
            &format!("GET {url}"),
            &Self::pull_scope(repo),
            &|| Ok(self.net.client().get(&url)),
            |mut resp| {
                if !resp.status().is_success() {
                    let (status, headers) = (resp.status(), resp.headers().clone());
                    let why = anyhow!("blob {digest} of {}/{repo}: {status}{}", self.host, error_detail(resp));
                    return Err(Failure::status_with(status, &headers, why));
                }
                self.net.read_capped(&mut resp, max)
            },
        )?;
        let got = Digest::of(&bytes);
        if got != *digest {
            bail!(
                "blob {digest} of {}/{repo} does not match its digest: the registry sent bytes hashing to {got}",
                self.host
            );
        }
        Ok(bytes)
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
    let body: serde_json::Value = serde_json::from_reader(resp.take(net::SMALL_MAX)).unwrap_or_default();
    match body["errors"][0]["message"].as_str() {
        Some(m) => format!(" ({}: {m})", body["errors"][0]["code"].as_str().unwrap_or("error")),
        None => String::new(),
    }
}

/// The auth files, in the order they are read: `$REGISTRY_AUTH_FILE`,
/// `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`.
fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR") {
        files.push(PathBuf::from(r).join("containers/auth.json"));
    }
    files
}

/// Credentials for `host`: AIRLOCK_REGISTRY_USERNAME/PASSWORD, else the first auth file
/// with something for the host, read as docker does: its `credHelpers` entry for the host
/// (the helper `docker-credential-<name>` is run with `get`), else its `auths` entry, else
/// its `credsStore` helper. A helper that has nothing for the host ("credentials not
/// found") passes to the next file; one that fails is an error naming it.
fn credentials(host: &str) -> Result<Option<Credential>> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    if let (Ok(u), Ok(p)) = (std::env::var("AIRLOCK_REGISTRY_USERNAME"), std::env::var("AIRLOCK_REGISTRY_PASSWORD")) {
        return Ok(Some(Credential::Basic(u, p)));
    }
    for f in auth_files() {
        let Ok(file) = std::fs::File::open(&f) else { continue };
        let helper = || {
            let v: serde_json::Value =
                std::fs::read(&f).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            let name = v["credHelpers"][host].as_str().or(v["credsStore"].as_str()).unwrap_or("?").to_string();
            format!("docker-credential-{name}")
        };
        match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), host) {
            Ok(DockerCredential::UsernamePassword(u, p)) => return Ok(Some(Credential::Basic(u, p))),
            Ok(DockerCredential::IdentityToken(t)) => return Ok(Some(Credential::IdentityToken(t))),
            Err(E::NoCredentialConfigured | E::ConfigNotFound | E::ConfigReadError) => {}
            Err(E::HelperFailure { stdout, stderr, .. })
                if (stdout.clone() + &stderr).to_ascii_lowercase().contains("credentials not found") => {}
            Err(E::HelperFailure { helper, stdout, stderr }) => {
                let said = if stderr.trim().is_empty() { stdout } else { stderr };
                bail!(
                    "registry {host}: the credential helper `{helper}` named in {} failed: {}",
                    f.display(),
                    said.trim().lines().next().unwrap_or("")
                );
            }
            Err(E::HelperCommunicationError) => bail!(
                "registry {host}: cannot run the credential helper `{}` named in {}: is it installed and on PATH?",
                helper(),
                f.display()
            ),
            Err(e) => bail!("registry {host}: the credentials in {} are unusable: {e}", f.display()),
        }
    }
    Ok(None)
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
        self.call(&format!("DELETE {url}"), &scope, &|| Ok(self.net.client().delete(&url)), |resp| Ok(resp.status()))
    }

    /// Every repository the registry lists (`GET /v2/_catalog`, following `Link` pages).
    pub fn catalog(&self) -> Result<Vec<String>> {
        let mut url = self.url("/v2/_catalog?n=1000");
        let mut repos = Vec::new();
        for _ in 0..10000 {
            let (names, next) = self.call(
                &format!("GET {url}"),
                "registry:catalog:*",
                &|| Ok(self.net.client().get(&url)),
                |mut resp| {
                    if !resp.status().is_success() {
                        let (status, headers) = (resp.status(), resp.headers().clone());
                        let why = anyhow!("listing the repositories of {}: {status}{}", self.host, error_detail(resp));
                        return Err(Failure::status_with(status, &headers, why));
                    }
                    self.list_page(&mut resp, "repositories", &format!("the repositories of {}", self.host))
                },
            )?;
            repos.extend(names);
            match next {
                Some(n) => url = reqwest::Url::parse(&self.base)?.join(&n)?.to_string(),
                None => break,
            }
        }
        Ok(repos)
    }

    /// One page of a `Link`-paged list (`_catalog`, `tags/list`): the strings under
    /// `key`, and the next page's URL.
    fn list_page(&self, resp: &mut Response, key: &str, what: &str) -> Result<(Vec<String>, Option<String>), Failure> {
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<')?.1.split_once('>').map(|(u, _)| u.to_string()));
        let bytes = self.net.read_capped(resp, net::MANIFEST_MAX)?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Failure::permanent(anyhow!("listing {what}: not JSON: {e}")))?;
        let names = body[key].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(String::from)).collect();
        Ok((names, next))
    }

    /// Every tag of a repository (`GET /v2/<repo>/tags/list`, following `Link` pages).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let mut url = self.url(&format!("/v2/{repo}/tags/list"));
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let page = self.call(
                &format!("GET {url}"),
                &Self::pull_scope(repo),
                &|| Ok(self.net.client().get(&url)),
                |mut resp| {
                    match resp.status() {
                        StatusCode::NOT_FOUND => return Ok(None),
                        s if s.is_success() => {}
                        _ => return Err(Failure::status(&resp)),
                    }
                    self.list_page(&mut resp, "tags", &format!("the tags of {}/{repo}", self.host)).map(Some)
                },
            )?;
            let Some((names, next)) = page else { return Ok(tags) };
            tags.extend(names);
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
