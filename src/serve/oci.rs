//! The OCI distribution API over the store: pull (manifests by tag or digest, blobs with
//! Range, tag lists with pagination) and push (monolithic and chunked uploads, mounts,
//! manifests), every upload checked against its digest before it becomes visible.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;

use crate::digest::{Digest, Hasher};
use crate::names;
use crate::oci;

use super::{Access, ApiError, Shared, lock, refuse, unauthorized};

const MAX_MANIFEST: usize = 4 << 20;

/// `GET /v2/`. Without credentials it answers with the Basic challenge even when reads are
/// anonymous: registry clients probe here once and send credentials afterwards only if
/// challenged, so a push would otherwise go out without them.
pub async fn base(State(s): State<Shared>, req: Request) -> Response {
    let has_auth = req.headers().contains_key(header::AUTHORIZATION);
    if !has_auth || !(s.anonymous_read || s.known_token(req.headers())) {
        return unauthorized();
    }
    ([("Docker-Distribution-API-Version", "registry/2.0")], "{}").into_response()
}

enum Route {
    Manifest(String, String),
    Blob(String, Digest),
    Uploads(String, Option<String>),
    Tags(String),
    Referrers(String, Digest),
}

impl Route {
    /// The image repository the request is about (a blob's is the one in its URL).
    fn repository(&self) -> &str {
        match self {
            Route::Manifest(n, _)
            | Route::Uploads(n, _)
            | Route::Tags(n)
            | Route::Referrers(n, _)
            | Route::Blob(n, _) => n,
        }
    }
}

/// Blocking store work off the async workers, its failure an OCI error.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
}

/// Blocking store writes under the store's lock (503 while an import holds it).
async fn locked<T: Send + 'static>(
    s: &Shared,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let (store, wait) = (s.store.clone(), s.lock_wait);
    blocking(move || {
        let Some(_lock) = lock::acquire(&store, wait).map_err(ApiError::internal)? else {
            return Err(ApiError::busy());
        };
        f()
    })
    .await
}

fn route(rest: &str) -> Option<Route> {
    let name_ok = |n: &str| names::image_repository(n).is_ok().then(|| n.to_string());
    // Only when both parts parse: `referrers` may also be a component of a repository name.
    if let Some((name, digest)) = rest.rsplit_once("/referrers/")
        && let (Some(name), Ok(digest)) = (name_ok(name), digest.parse())
    {
        return Some(Route::Referrers(name, digest));
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name_ok(name)?));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Route::Manifest(name_ok(name)?, reference.to_string()));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        let id = (!id.is_empty()).then(|| id.to_string());
        if id.as_ref().is_some_and(|i| !i.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')) {
            return None;
        }
        return Some(Route::Uploads(name_ok(name)?, id));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some(Route::Uploads(name_ok(name)?, None));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Route::Blob(name_ok(name)?, digest.parse().ok()?));
    }
    None
}

pub async fn dispatch(State(s): State<Shared>, req: Request) -> Response {
    let rest = req.uri().path().trim_start_matches("/v2/").to_string();
    let Some(r) = route(&rest) else {
        return ApiError::not_found("NAME_INVALID", format!("no such endpoint or invalid name: /v2/{rest}"))
            .into_response();
    };
    let access = if matches!(*req.method(), Method::GET | Method::HEAD) { Access::Read } else { Access::Write };
    let resource = format!("v2/{}", r.repository());
    if let Err(denied) = s.check(req.headers(), &resource, access) {
        let (parts, body) = req.into_parts();
        return refuse(&parts.headers, body, denied).await;
    }
    let result = match (r, req.method().clone()) {
        (Route::Manifest(name, reference), Method::GET | Method::HEAD) => {
            get_manifest(&s, &name, &reference, req).await
        }
        (Route::Manifest(name, reference), Method::PUT) => put_manifest(&s, &name, &reference, req).await,
        (Route::Blob(_, d), Method::GET | Method::HEAD) => get_blob(&s, &d, req).await,
        (Route::Tags(name), Method::GET) => tags(&s, &name, req.uri().query().map(str::to_string)).await,
        (Route::Referrers(name, d), Method::GET | Method::HEAD) => {
            referrers(&s, &name, &d, req.uri().query().map(str::to_string)).await
        }
        (Route::Uploads(name, None), Method::POST) => start_upload(&s, &name, req).await,
        (Route::Uploads(name, Some(id)), Method::PATCH) => patch_upload(&s, &name, &id, req).await,
        (Route::Uploads(name, Some(id)), Method::PUT) => finish_upload(&s, &name, &id, req).await,
        (Route::Uploads(name, Some(id)), Method::GET) => upload_status(&s, &name, &id),
        _ => Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", "method not allowed here")),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn digest_header(d: &Digest) -> (&'static str, String) {
    ("Docker-Content-Digest", d.to_string())
}

async fn get_manifest(s: &Shared, name: &str, reference: &str, req: Request) -> Result<Response, ApiError> {
    let (store, n, r) = (s.store.clone(), name.to_string(), reference.to_string());
    let unknown = move |what: String| ApiError::not_found("MANIFEST_UNKNOWN", what);
    let bytes = blocking(move || {
        let digest = match r.parse::<Digest>() {
            Ok(d) => d,
            Err(_) => store
                .oci_tag(&n, &r)
                .map_err(|_| unknown(format!("{n}:{r}")))?
                .ok_or_else(|| unknown(format!("{n}:{r}")))?,
        };
        let Some(size) = store.blob_size(&digest) else {
            return Err(unknown(format!("{n}@{digest}")));
        };
        if size as usize > MAX_MANIFEST {
            return Err(unknown(format!("{digest} is not a manifest")));
        }
        Ok((digest, std::fs::read(store.blob_path_for_tool(&digest))?))
    })
    .await;
    let (digest, bytes) = bytes?;
    let media_type = oci::media_type_of(&bytes, None)
        .ok()
        .filter(|m| oci::is_manifest_type(m))
        .ok_or_else(|| ApiError::not_found("MANIFEST_UNKNOWN", format!("{digest} is not a manifest")))?;
    let etag = super::files::digest_etag(&digest);
    if super::files::none_match(req.headers(), &etag) {
        let mut r = super::files::not_modified(&etag);
        r.headers_mut().insert("Docker-Content-Digest", HeaderValue::from_str(&digest.to_string()).expect("ascii"));
        return Ok(r);
    }
    let headers = [
        (header::CONTENT_TYPE.as_str(), media_type),
        digest_header(&digest),
        (header::CONTENT_LENGTH.as_str(), bytes.len().to_string()),
        (header::ETAG.as_str(), etag),
    ];
    if req.method() == Method::HEAD {
        return Ok((headers, Body::empty()).into_response());
    }
    Ok((headers, bytes).into_response())
}

async fn get_blob(s: &Shared, d: &Digest, req: Request) -> Result<Response, ApiError> {
    let etag = super::files::digest_etag(d);
    let path = s.store.blob_path_for_tool(d);
    let mut resp = match super::files::cached(&s.blobs, d, &path, &etag, &req) {
        super::files::Cached::Answer(r) => r,
        super::files::Cached::Gone => return Err(ApiError::not_found("BLOB_UNKNOWN", d.to_string())),
        super::files::Cached::Miss => match super::files::send(path, Some(etag), Some((&s.blobs, *d)), req).await {
            Some(r) => r,
            None => return Err(ApiError::not_found("BLOB_UNKNOWN", d.to_string())),
        },
    };
    let modified = resp.status() != StatusCode::NOT_MODIFIED;
    let h = resp.headers_mut();
    if modified {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    }
    h.insert("Docker-Content-Digest", HeaderValue::from_str(&d.to_string()).expect("ascii"));
    Ok(resp)
}

async fn tags(s: &Shared, name: &str, query: Option<String>) -> Result<Response, ApiError> {
    let (store, n) = (s.store.clone(), name.to_string());
    let all = blocking(move || Ok(store.oci_tags(&n)?)).await?;
    if all.is_empty() {
        return Err(ApiError::not_found("NAME_UNKNOWN", name.to_string()));
    }
    let q: std::collections::HashMap<String, String> = url_query(query.as_deref().unwrap_or("")).into_iter().collect();
    let after: Vec<&String> = match q.get("last") {
        Some(last) => all.iter().filter(|t| *t > last).collect(),
        None => all.iter().collect(),
    };
    let n = q.get("n").and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX);
    let page: Vec<&String> = after.iter().take(n).copied().collect();
    let body = serde_json::json!({"name": name, "tags": page}).to_string();
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if after.len() > n
        && let Some(last) = page.last()
    {
        let link = format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"");
        resp.headers_mut().insert(header::LINK, HeaderValue::from_str(&link).map_err(ApiError::internal)?);
    }
    Ok(resp)
}

/// Query parameters, percent-decoded. Values here are digests, media types, numbers and
/// tags, none of which has a space: a `+` left unencoded (`spdx+json`) stays a `+`.
fn url_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.replace(' ', "+"))).collect()
}

/// Append a request body to the upload file, hashing as it goes; returns the new length.
async fn append(s: &Shared, id: &str, body: Body) -> Result<u64, ApiError> {
    let (mut hasher, mut len) = s
        .uploads
        .lock()
        .unwrap()
        .remove(id)
        .ok_or_else(|| ApiError::not_found("BLOB_UPLOAD_UNKNOWN", id.to_string()))?;
    let path = s.store.upload_path(id);
    let mut file = tokio::fs::OpenOptions::new().append(true).open(&path).await?;
    let mut body = body;
    let result: Result<(), ApiError> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::bad("BLOB_UPLOAD_INVALID", format!("reading the upload: {e}")))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                len += data.len() as u64;
                if len > s.max_upload {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "SIZE_INVALID",
                        format!("uploads are limited to {} bytes (airlock serve --max-upload)", s.max_upload),
                    ));
                }
                file.write_all(&data).await?;
            }
        }
        file.flush().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        // A client that went away mid-upload leaves nothing visible; the session is gone.
        let _ = tokio::fs::remove_file(&path).await;
        return result.map(|()| 0);
    }
    s.uploads.lock().unwrap().insert(id.to_string(), (hasher, len));
    Ok(len)
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn accepted(name: &str, id: &str, len: u64) -> Response {
    let range = if len == 0 { "0-0".to_string() } else { format!("0-{}", len - 1) };
    (
        StatusCode::ACCEPTED,
        [
            (header::LOCATION.as_str(), upload_location(name, id)),
            ("Range", range),
            ("Docker-Upload-UUID", id.to_string()),
            (header::CONTENT_LENGTH.as_str(), "0".to_string()),
        ],
    )
        .into_response()
}

async fn start_upload(s: &Shared, name: &str, req: Request) -> Result<Response, ApiError> {
    let q = url_query(req.uri().query().unwrap_or(""));
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    if let Some(mount) = get("mount").and_then(|m| m.parse::<Digest>().ok())
        && tokio::fs::try_exists(s.store.blob_path_for_tool(&mount)).await.unwrap_or(false)
    {
        return Ok(created(name, &mount));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let path = s.store.upload_path(&id);
    tokio::fs::create_dir_all(path.parent().expect("uploads dir")).await?;
    tokio::fs::File::create(&path).await?;
    s.uploads.lock().unwrap().insert(id.clone(), (Hasher::new(), 0));
    if let Some(digest) = get("digest") {
        // Monolithic upload in one POST.
        let len = append(s, &id, req.into_body()).await?;
        return finish(s, name, &id, &digest, len).await;
    }
    Ok(accepted(name, &id, 0))
}

async fn patch_upload(s: &Shared, name: &str, id: &str, req: Request) -> Result<Response, ApiError> {
    let have = s.uploads.lock().unwrap().get(id).map(|(_, l)| *l);
    let Some(have) = have else { return Err(ApiError::not_found("BLOB_UPLOAD_UNKNOWN", id.to_string())) };
    if let Some(range) = req.headers().get("content-range").and_then(|v| v.to_str().ok()) {
        let start = range.trim_start_matches("bytes=").split('-').next().and_then(|n| n.parse::<u64>().ok());
        if start != Some(have) {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("expected a chunk starting at {have}"),
            ));
        }
    }
    let len = append(s, id, req.into_body()).await?;
    Ok(accepted(name, id, len))
}

async fn finish_upload(s: &Shared, name: &str, id: &str, req: Request) -> Result<Response, ApiError> {
    let q = url_query(req.uri().query().unwrap_or(""));
    let digest = q.iter().find(|(k, _)| k == "digest").map(|(_, v)| v.clone());
    let Some(digest) = digest else { return Err(ApiError::bad("DIGEST_INVALID", "the closing PUT needs ?digest=")) };
    let len = append(s, id, req.into_body()).await?;
    finish(s, name, id, &digest, len).await
}

async fn finish(s: &Shared, name: &str, id: &str, digest: &str, len: u64) -> Result<Response, ApiError> {
    let (hasher, _) = s
        .uploads
        .lock()
        .unwrap()
        .remove(id)
        .ok_or_else(|| ApiError::not_found("BLOB_UPLOAD_UNKNOWN", id.to_string()))?;
    let want: Digest =
        digest.parse().map_err(|_| ApiError::bad("DIGEST_INVALID", format!("`{digest}` is not a sha256 digest")))?;
    let (got, _) = hasher.finish();
    let (store, id) = (s.store.clone(), id.to_string());
    if got != want {
        let _ = tokio::fs::remove_file(store.upload_path(&id)).await;
        return Err(ApiError::bad("DIGEST_INVALID", format!("the {len} bytes uploaded hash to {got}, not {want}")));
    }
    let session = store.upload_path(&id);
    let adopted = locked(s, move || Ok(store.adopt_upload(&id, &want)?)).await;
    if adopted.is_err() {
        let _ = tokio::fs::remove_file(session).await;
    }
    adopted?;
    Ok(created(name, &want))
}

fn created(name: &str, d: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION.as_str(), format!("/v2/{name}/blobs/{d}")),
            digest_header(d),
            (header::CONTENT_LENGTH.as_str(), "0".to_string()),
        ],
    )
        .into_response()
}

fn upload_status(s: &Shared, name: &str, id: &str) -> Result<Response, ApiError> {
    let len = s.uploads.lock().unwrap().get(id).map(|(_, l)| *l);
    let Some(len) = len else { return Err(ApiError::not_found("BLOB_UPLOAD_UNKNOWN", id.to_string())) };
    let mut r = accepted(name, id, len);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

async fn put_manifest(s: &Shared, name: &str, reference: &str, req: Request) -> Result<Response, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_MANIFEST)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID", "manifests are at most 4 MiB"))?;
    let digest = Digest::of(&bytes);
    let tag = match reference.parse::<Digest>() {
        Ok(d) if d != digest => {
            return Err(ApiError::bad("DIGEST_INVALID", format!("the manifest hashes to {digest}, not {d}")));
        }
        Ok(_) => None,
        Err(_) => match names::image_tag(reference) {
            Ok(()) => Some(reference),
            Err(e) => return Err(ApiError::bad("TAG_INVALID", format!("{e}; nor is it a digest"))),
        },
    };
    let media_type = oci::media_type_of(&bytes, content_type.as_deref())
        .map_err(|e| ApiError::bad("MANIFEST_INVALID", format!("{e:#}")))?;
    let parsed = oci::parse(&bytes, &media_type).map_err(|e| ApiError::bad("MANIFEST_INVALID", format!("{e:#}")))?;
    let children: Vec<Digest> = match parsed {
        oci::Parsed::Index { manifests } => manifests.iter().map(|m| m.digest).collect(),
        oci::Parsed::Image { config, layers } => std::iter::once(&config).chain(&layers).map(|d| d.digest).collect(),
    };
    // A manifest with a `subject` is a referrer (a signature, an SBOM, an attestation):
    // its descriptor is recorded for the referrers API.
    let subject = oci::referrer_descriptor(&bytes, &media_type, &digest);
    let (store, n, t, sub) = (s.store.clone(), name.to_string(), tag.map(str::to_string), subject.clone());
    locked(s, move || {
        if let Some(missing) = children.iter().find(|d| !store.contains(d)) {
            return Err(ApiError::bad(
                "MANIFEST_BLOB_UNKNOWN",
                format!("the manifest names {missing}, which was not pushed"),
            ));
        }
        store.insert(&mut bytes.as_ref(), Some(&digest), &format!("manifest {digest}"))?;
        if let Some((subject, descriptor)) = &sub {
            store.add_oci_referrer(&n, subject, &digest, descriptor)?;
        }
        if let Some(t) = t {
            store.set_oci_tag(&n, &t, &digest)?;
        }
        Ok(())
    })
    .await?;
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::LOCATION.as_str(), format!("/v2/{name}/manifests/{digest}")),
            digest_header(&digest),
            (header::CONTENT_LENGTH.as_str(), "0".to_string()),
        ],
    )
        .into_response();
    if let Some((subject, _)) = subject
        && let Ok(v) = subject.to_string().parse()
    {
        resp.headers_mut().insert("OCI-Subject", v);
    }
    Ok(resp)
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=...]`: an image index of the
/// manifests whose subject is `<digest>` (OCI distribution spec 1.1).
async fn referrers(s: &Shared, name: &str, subject: &Digest, query: Option<String>) -> Result<Response, ApiError> {
    let filter = query
        .as_deref()
        .map(url_query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "artifactType")
        .map(|(_, v)| v);
    let mut manifests = Vec::new();
    let (store, n, subject) = (s.store.clone(), name.to_string(), *subject);
    for raw in blocking(move || Ok(store.oci_referrers(&n, &subject)?)).await? {
        let Ok(d) = serde_json::from_slice::<serde_json::Value>(&raw) else { continue };
        if filter.as_ref().is_some_and(|f| d.get("artifactType").and_then(|t| t.as_str()) != Some(f.as_str())) {
            continue;
        }
        manifests.push(d);
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_INDEX,
        "manifests": manifests,
    }))
    .expect("serializes");
    let mut resp = ([(header::CONTENT_TYPE.as_str(), oci::OCI_INDEX)], body).into_response();
    if filter.is_some() {
        resp.headers_mut().insert("OCI-Filters-Applied", axum::http::HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}
