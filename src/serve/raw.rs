//! Repositories, Nexus-style: `GET /repository/<name>/<path>` serves a file of the
//! store's repository `<name>` (with Range): raw files, Python indexes (a directory answers
//! with its `index.json` or `index.html`, chosen by `Accept`, so pip and uv read
//! `/repository/<name>/simple/`), apt repositories.
//!
//! `PUT` stores a file in a raw repository: hashed while it arrives, visible only when
//! complete, under the store's lock. A repository is a Python index when it has `simple/`,
//! an apt repository when it has `dists/`, raw otherwise (a new one included); `PUT` goes
//! only into raw repositories, and never creates `simple/` or `dists/` at the top of one.
//! A file is never replaced by other bytes: the same bytes again answer `200`, other bytes
//! `409 Conflict`, and nothing changes.

use std::path::Path;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;

use crate::digest::{Digest, Hasher};
use crate::names;
use crate::pypi;
use crate::relpath::RelPath;
use crate::store::{PathState, Store};

use super::{Access, Shared, blocking, lock, refuse, text};

/// What a repository of the store holds, by its top-level directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// Nothing there yet.
    New,
    Raw,
    /// Has `simple/`: written by Python imports and uploads.
    Python,
    /// Has `dists/`: written by apt imports.
    Apt,
}

impl RepoKind {
    /// Blocking (it reads the directory).
    pub fn of(store: &Store, repo: &str) -> Self {
        let (layout, dir) = (store.layout(), store.repository_dir(repo));
        if layout.apt_dists(repo).is_dir() {
            RepoKind::Apt
        } else if layout.python_simple(repo).is_dir() {
            RepoKind::Python
        } else if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            RepoKind::Raw
        } else {
            RepoKind::New
        }
    }
}

/// The top-level names that make a repository an index rather than raw files.
const RESERVED: [&str; 2] = ["simple", "dists"];

pub async fn handle(
    State(s): State<Shared>,
    UrlPath((repo, path)): UrlPath<(String, String)>,
    mut req: Request,
) -> Response {
    // Index files (InRelease, Packages, simple/ pages) change in place, possibly twice
    // within one second, and Last-Modified has one-second resolution: answering
    // If-Modified-Since with 304 could hide an import from apt. Always send the file.
    req.headers_mut().remove(header::IF_MODIFIED_SINCE);
    let slash = path.ends_with('/');
    if let Err(e) = names::repository(&repo) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    // Never a path a temporary file of the store could have (`.airlock-*`).
    let trimmed = path.trim_end_matches('/');
    if let Err(e) = names::raw_path(trimmed) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    let Ok(rel) = RelPath::new(trimmed) else {
        return text(StatusCode::BAD_REQUEST, "invalid path");
    };
    let resource = format!("repository/{repo}/{rel}");
    match *req.method() {
        Method::GET | Method::HEAD => {
            if let Err(r) = s.check(req.headers(), &resource, Access::Read) {
                return r;
            }
            let (store, r, p) = (s.store.clone(), repo.clone(), rel.clone());
            let found = blocking(move || {
                let dir = store.layout().repository_file(&r, &p);
                if dir.is_dir() {
                    Found::Dir(dir)
                } else {
                    store.repository_file(&r, &p).map_or(Found::None, Found::File)
                }
            })
            .await;
            match found {
                Err(r) => r,
                Ok(Found::Dir(dir)) => index_page(&dir, slash, req).await,
                Ok(Found::None) => text(StatusCode::NOT_FOUND, format!("{repo}/{rel}: not found")),
                Ok(Found::File(file)) => {
                    let etag = tokio::fs::metadata(&file).await.ok().map(|m| super::files::file_etag(&m));
                    if let Some(tag) = &etag
                        && super::files::none_match(req.headers(), tag)
                    {
                        return super::files::not_modified(tag);
                    }
                    match tower_http::services::ServeFile::new(file)
                        .with_buf_chunk_size(super::FILE_CHUNK)
                        .oneshot(req)
                        .await
                    {
                        Ok(r) => with_etag(r.map(Body::new), etag.as_deref()),
                        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                }
            }
        }
        Method::PUT => {
            let (headers, body) = {
                let (parts, body) = req.into_parts();
                (parts.headers, body)
            };
            if let Err(r) = s.check(&headers, &resource, Access::Write) {
                return refuse(&headers, body, r).await;
            }
            if let Err(r) = writable(&s, &repo, &rel).await {
                return refuse(&headers, body, r).await;
            }
            put(&s, &repo, &rel, body).await
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or PUT"),
    }
}

fn with_etag(mut r: Response, etag: Option<&str>) -> Response {
    if let Some(v) = etag.and_then(|t| HeaderValue::from_str(t).ok())
        && r.status().is_success()
    {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

enum Found {
    Dir(std::path::PathBuf),
    File(std::path::PathBuf),
    None,
}

/// May a raw `PUT` write `repo/rel`? Checked before the body is read, and again under
/// the lock.
async fn writable(s: &Shared, repo: &str, rel: &RelPath) -> Result<(), Response> {
    let (store, r, p) = (s.store.clone(), repo.to_string(), rel.clone());
    blocking(move || writable_now(&store, &r, &p)).await?
}

fn writable_now(store: &Store, repo: &str, rel: &RelPath) -> Result<(), Response> {
    let refused = |msg: String| {
        (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], format!("{msg}\n")).into_response()
    };
    match RepoKind::of(store, repo) {
        RepoKind::Python => Err(refused(format!(
            "`{repo}` is a Python index: upload with twine's form (POST /repository/{repo}/), not PUT"
        ))),
        RepoKind::Apt => Err(refused(format!("`{repo}` is an apt repository: only `airlock import` writes into it"))),
        RepoKind::New | RepoKind::Raw => {
            let top = rel.components().next().unwrap_or("");
            if RESERVED.contains(&top) {
                return Err(refused(format!(
                    "`{top}/` at the top of a repository is where an index keeps its pages: PUT cannot create it"
                )));
            }
            Ok(())
        }
    }
}

/// A directory: a package index page (`index.json` or `index.html`, chosen by `Accept`
/// or `?format=` as PEP 691 says), or 404 when it has none. Index URLs end in `/`; the
/// slash-less form redirects.
async fn index_page(dir: &Path, slash: bool, req: Request) -> Response {
    if !slash {
        let location = format!("{}/", req.uri().path());
        return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response();
    }
    let format = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "format"))
        // A media type has no spaces: a `+` left unencoded (`v1+json`) is still a `+`.
        .map(|(_, v)| v.replace(' ', "+"));
    let accept = format.or_else(|| req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_string));
    let Some(content_type) = pypi::negotiate(accept.as_deref()) else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            format!("acceptable: {}, {}, text/html", pypi::JSON_V1, pypi::HTML_V1),
        );
    };
    let file = dir.join(if content_type == pypi::JSON_V1 { "index.json" } else { "index.html" });
    let Some(meta) = tokio::fs::metadata(&file).await.ok().filter(|m| m.is_file()) else {
        return text(StatusCode::NOT_FOUND, "no index page here");
    };
    // The JSON and HTML pages are different files, so their tags differ too.
    let etag = super::files::file_etag(&meta);
    if super::files::none_match(req.headers(), &etag) {
        let mut r = super::files::not_modified(&etag);
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        return r;
    }
    match tower_http::services::ServeFile::new(file).oneshot(req).await {
        Ok(mut r) => {
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
            with_etag(r.map(Body::new), Some(&etag))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// An upload received into a session file of the store (`tmp/uploads/`), hashed as it
/// came: not yet a blob, not yet visible.
pub struct Received {
    pub id: String,
    pub digest: Digest,
    pub size: u64,
}

/// Stream an upload (a request body, a form's file field) into a new upload session
/// file, bounded by `--max-upload`. On failure the file is gone and the error is the answer.
pub async fn receive<S, E>(s: &Shared, mut chunks: S) -> Result<Received, Response>
where
    S: futures_util::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures_util::StreamExt;
    let id = uuid::Uuid::new_v4().to_string();
    let path = s.store.upload_path(&id);
    let fail = |status: StatusCode, msg: String| text(status, msg);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    let mut file =
        tokio::fs::File::create(&path).await.map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut hasher = Hasher::new();
    let result: Result<(), Response> = async {
        while let Some(data) = chunks.next().await {
            let data = data.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("reading the upload: {e}")))?;
            hasher.update(&data);
            if hasher.bytes() > s.max_upload {
                let mut r = fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("uploads are limited to {} bytes (airlock serve --max-upload)", s.max_upload),
                );
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return Err(r);
            }
            file.write_all(&data).await.map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        }
        file.flush().await.map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
    .await;
    drop(file);
    if let Err(r) = result {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(r);
    }
    let (digest, size) = hasher.finish();
    Ok(Received { id, digest, size })
}

/// Drop an upload session file that will not become a blob.
pub fn discard(store: &Store, id: &str) {
    let _ = std::fs::remove_file(store.upload_path(id));
}

async fn put(s: &Shared, repo: &str, rel: &RelPath, body: Body) -> Response {
    let up = match receive(s, body.into_data_stream()).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (store, wait, repo, rel) = (s.store.clone(), s.lock_wait, repo.to_string(), rel.clone());
    let placed = blocking(move || {
        let answer = place(&store, wait, &repo, &rel, &up);
        if !matches!(answer, Ok(StatusCode::CREATED)) {
            discard(&store, &up.id);
        }
        match answer {
            Ok(status) => text(status, format!("{repo}/{rel}")),
            Err(r) => r,
        }
    })
    .await;
    placed.unwrap_or_else(|r| r)
}

/// Under the lock: put the upload at `repo/rel` unless something is there. `201` when
/// placed (the session file became a blob), `200` when the same bytes were there already.
fn place(
    store: &Store,
    wait: std::time::Duration,
    repo: &str,
    rel: &RelPath,
    up: &Received,
) -> Result<StatusCode, Response> {
    let internal = |e: &dyn std::fmt::Display| text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    let Some(_lock) = lock::acquire(store, wait).map_err(|e| internal(&e))? else {
        return Err(lock::busy());
    };
    writable_now(store, repo, rel)?;
    // A parent that is a file, or a directory where the file would go: a conflict too.
    let mut p = store.repository_dir(repo);
    let parts: Vec<&str> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if !last && !m.is_dir() => {
                return Err(text(
                    StatusCode::CONFLICT,
                    format!("{repo}/{}: is a file, not a directory", parts[..=i].join("/")),
                ));
            }
            Ok(m) if last && !m.is_file() => {
                return Err(text(StatusCode::CONFLICT, format!("{repo}/{rel}: is a directory")));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    match store.repository_state(repo, rel, &up.digest).map_err(|e| internal(&e))? {
        PathState::Same => Ok(StatusCode::OK),
        PathState::Different(have) => Err(text(
            StatusCode::CONFLICT,
            format!(
                "{repo}/{rel} already exists with other content ({have}; this upload is {}): a published file never changes",
                up.digest
            ),
        )),
        PathState::Missing => {
            store.adopt_upload(&up.id, &up.digest).map_err(|e| internal(&e))?;
            store.place_in_repository(repo, rel, &up.digest).map_err(|e| internal(&e))?;
            Ok(StatusCode::CREATED)
        }
    }
}
