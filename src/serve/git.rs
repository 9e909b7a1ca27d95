//! Git over dumb HTTP: `git clone http://HOST/git/<name>.git` reads the bare repository's
//! files (`info/refs`, `objects/info/packs`, packs, loose objects), which import keeps
//! current with `git update-server-info`. Read-only.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::relpath::RelPath;
use crate::spec::valid_name;

use super::{Access, Shared, blocking};

pub async fn handle(State(s): State<Shared>, Path(path): Path<String>, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, "read-only\n").into_response();
    }
    let Some((repo, rest)) = path.split_once(".git/") else {
        return (StatusCode::NOT_FOUND, "not a repository path\n").into_response();
    };
    let (Ok(rel), true) = (RelPath::new(rest), valid_name(repo)) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    if let Err(r) = s.check(req.headers(), &format!("git/{repo}"), Access::Read) {
        return r;
    }
    let (store, r) = (s.store.clone(), repo.to_string());
    let Ok(Some(file)) = blocking(move || store.git_file(&r, &rel)).await else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match tower_http::services::ServeFile::new(file).with_buf_chunk_size(super::FILE_CHUNK).oneshot(req).await {
        Ok(r) => {
            let mut r = r.map(Body::new);
            // A dumb server must not claim the smart protocol's content types.
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            r
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
