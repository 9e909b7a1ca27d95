//! Repositories, Nexus-style: `GET /repository/<name>/<path>` serves a file of the
//! store's repository `<name>` (with Range): raw files, Python indexes (a directory answers
//! with its `index.json` or `index.html`, chosen by `Accept`, so pip and uv read
//! `/repository/<name>/simple/`), apt repositories. `PUT` stores a raw file (hashed while
//! written, visible only when complete, needs a token).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::pypi;
use crate::relpath::RelPath;
use crate::spec::valid_name;

use super::{Shared, text, unauthorized};

pub async fn handle(State(s): State<Shared>, Path((repo, path)): Path<(String, String)>, mut req: Request) -> Response {
    // Index files (InRelease, Packages, simple/ pages) change in place, possibly twice
    // within one second, and Last-Modified has one-second resolution: answering
    // If-Modified-Since with 304 could hide an import from apt. Always send the file.
    req.headers_mut().remove(header::IF_MODIFIED_SINCE);
    let slash = path.ends_with('/');
    let Ok(rel) = RelPath::new(path.trim_end_matches('/')) else {
        return text(StatusCode::BAD_REQUEST, "invalid path");
    };
    if !valid_name(&repo) {
        return text(StatusCode::BAD_REQUEST, "invalid repository name");
    }
    match *req.method() {
        Method::GET | Method::HEAD => {
            if !s.allowed(req.headers(), false) {
                return unauthorized();
            }
            let dir = s.store.repository_dir(&repo).join(rel.as_str());
            if dir.is_dir() {
                return index_page(&dir, slash, req).await;
            }
            let Some(file) = s.store.repository_file(&repo, &rel) else {
                return text(StatusCode::NOT_FOUND, format!("{repo}/{rel}: not found"));
            };
            match tower_http::services::ServeFile::new(file).with_buf_chunk_size(super::FILE_CHUNK).oneshot(req).await {
                Ok(r) => r.map(Body::new),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Method::PUT => {
            if !s.allowed(req.headers(), true) {
                return unauthorized();
            }
            match put(&s, &repo, &rel, req.into_body()).await {
                Ok(()) => text(StatusCode::CREATED, format!("{repo}/{rel}")),
                Err(e) => e,
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or PUT"),
    }
}

/// A directory: a package index page (`index.json` or `index.html`, chosen by `Accept`
/// or `?format=` as PEP 691 says), or 404 when it has none. Index URLs end in `/`; the
/// slash-less form redirects.
async fn index_page(dir: &std::path::Path, slash: bool, req: Request) -> Response {
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
    if !file.is_file() {
        return text(StatusCode::NOT_FOUND, "no index page here");
    }
    match tower_http::services::ServeFile::new(file).oneshot(req).await {
        Ok(mut r) => {
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
            r.map(Body::new)
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn put(s: &Shared, repo: &str, rel: &RelPath, mut body: Body) -> Result<(), Response> {
    let err = |e: &dyn std::fmt::Display| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    // Stream into a blob writer on a blocking thread; the body arrives through a channel.
    let (tx, rx) = std::sync::mpsc::sync_channel::<bytes_chunk::Chunk>(8);
    let store = s.store.clone();
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::digest::Digest> {
        let mut w = store.writer()?;
        for chunk in rx {
            match chunk {
                bytes_chunk::Chunk::Data(d) => std::io::Write::write_all(&mut w, &d)?,
                bytes_chunk::Chunk::Abort => anyhow::bail!("the client went away"),
            }
        }
        Ok(w.commit(None, "an upload")?.0)
    });
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                let Ok(data) = f.into_data() else { continue };
                len += data.len() as u64;
                if len > s.max_upload {
                    let _ = tx.send(bytes_chunk::Chunk::Abort);
                    drop(tx);
                    let _ = writer.await;
                    return Err(text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("uploads are limited to {} bytes (airlock serve --max-upload)", s.max_upload),
                    ));
                }
                if tx.send(bytes_chunk::Chunk::Data(data.to_vec())).is_err() {
                    break;
                }
            }
            Err(_) => {
                let _ = tx.send(bytes_chunk::Chunk::Abort);
                break;
            }
        }
    }
    drop(tx);
    let digest = writer.await.map_err(|e| err(&e))?.map_err(|e| text(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    s.store.place_in_repository(repo, rel, &digest).map_err(|e| err(&format!("{e:#}")))
}

mod bytes_chunk {
    pub enum Chunk {
        Data(Vec<u8>),
        Abort,
    }
}
