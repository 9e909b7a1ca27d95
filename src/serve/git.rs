//! Git over HTTP at `/git/<name>.git`, for the bare repositories import keeps in the store.
//!
//! Smart HTTP (what git uses by default: protocol v2, shallow and partial clones and
//! fetches, pushes) runs `git http-backend` as a CGI child process per request: the
//! request's method, path, query, content type and `Git-Protocol` header become its
//! environment, the request body streams into its stdin, and its stdout (CGI headers, a
//! blank line, the body) streams back as the answer. Clones and fetches need read access
//! to `git/<name>`; a push (`git-receive-pack`) needs a write token for it, holds the
//! store's lock while it runs, and only fast-forwards (refs are neither rewritten nor
//! deleted) unless `airlock serve --git-allow-force`.
//!
//! Anything else is the dumb-HTTP fallback: the repository's files (`info/refs`,
//! `objects/info/packs`, packs, loose objects), which import and pushes keep current with
//! `git update-server-info`. Read-only.

use std::process::Stdio;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use crate::git::HttpBackend;
use crate::names;
use crate::relpath::RelPath;

use super::{Access, Shared, blocking, lock, refuse, text};

/// The two services of smart HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "git-upload-pack" => Some(Self::UploadPack),
            "git-receive-pack" => Some(Self::ReceivePack),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::UploadPack => "git-upload-pack",
            Self::ReceivePack => "git-receive-pack",
        }
    }
}

pub async fn handle(State(s): State<Shared>, Path(path): Path<String>, req: Request) -> Response {
    let Some((repo, rest)) = path.split_once(".git/") else {
        return text(StatusCode::NOT_FOUND, "not a repository path");
    };
    let repo = repo.to_string();
    if let Err(e) = names::git_repository(&repo) {
        return text(StatusCode::BAD_REQUEST, e.to_string());
    }
    // Smart HTTP: `info/refs?service=git-...` (GET), `git-upload-pack`, `git-receive-pack` (POST).
    let service_query = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "service"))
        .map(|(_, v)| v.into_owned());
    let smart = match (req.method(), rest) {
        (&Method::GET, "info/refs") => service_query.as_deref().map(|q| Service::parse(q).ok_or(q.to_string())),
        (&Method::POST, r) => Some(Service::parse(r).ok_or(r.to_string())),
        _ => None,
    };
    match smart {
        Some(Ok(service)) => return smart_http(&s, &repo, rest == "info/refs", service, req).await,
        Some(Err(other)) => return text(StatusCode::FORBIDDEN, format!("`{other}` is not a git service served here")),
        None => {}
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD, or git's smart HTTP");
    }
    let Ok(rel) = RelPath::new(rest) else {
        return text(StatusCode::BAD_REQUEST, "invalid path");
    };
    if let Err(r) = s.check(req.headers(), &format!("git/{repo}"), Access::Read) {
        return r;
    }
    let store = s.store.clone();
    let Ok(Some(file)) = blocking(move || store.git_file(&repo, &rel)).await else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    match tower_http::services::ServeFile::new(file).with_buf_chunk_size(super::FILE_CHUNK).oneshot(req).await {
        Ok(r) => {
            let mut r = r.map(Body::new);
            // A dumb server must not claim the smart protocol's content types.
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The most CGI header bytes read from `git http-backend` before its body.
const MAX_CGI_HEADERS: usize = 64 * 1024;

async fn smart_http(s: &Shared, repo: &str, advertise: bool, service: Service, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let access = if service == Service::ReceivePack { Access::Write } else { Access::Read };
    if let Err(r) = s.check(&parts.headers, &format!("git/{repo}"), access) {
        return refuse(&parts.headers, body, r).await;
    }
    let (store, name, wait) = (s.store.clone(), repo.to_string(), s.lock_wait);
    let push_post = service == Service::ReceivePack && !advertise;
    // A push holds the store's lock for as long as git receives it.
    let prepared = blocking(move || -> Result<_, Response> {
        let dir = std::path::absolute(store.git_repo(&name))
            .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        if !dir.join("HEAD").is_file() {
            return Err(text(StatusCode::NOT_FOUND, format!("no git repository `{name}`")));
        }
        let guard = if push_post {
            match lock::acquire(&store, wait) {
                Ok(Some(g)) => Some(g),
                Ok(None) => return Err(lock::busy()),
                Err(e) => return Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            }
        } else {
            None
        };
        let root = dir.parent().expect("repositories live in a directory").to_path_buf();
        Ok((root, dir, guard))
    })
    .await
    .and_then(|r| r);
    let (root, dir, guard) = match prepared {
        Ok(p) => p,
        Err(r) => return refuse(&parts.headers, body, r).await,
    };

    let backend = HttpBackend { push: service == Service::ReceivePack, allow_force: s.git_allow_force };
    let mut cmd = tokio::process::Command::from(backend.command(&root, &dir));
    let path_info =
        if advertise { format!("/{repo}.git/info/refs") } else { format!("/{repo}.git/{}", service.name()) };
    cmd.env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", if advertise { format!("service={}", service.name()) } else { String::new() })
        .env("REMOTE_USER", "airlock-token")
        .env("REMOTE_ADDR", "127.0.0.1");
    let header = |name: &HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    for (var, value) in [
        ("CONTENT_TYPE", header(&header::CONTENT_TYPE)),
        ("CONTENT_LENGTH", header(&header::CONTENT_LENGTH)),
        ("HTTP_CONTENT_ENCODING", header(&header::CONTENT_ENCODING)),
        ("GIT_PROTOCOL", header(&HeaderName::from_static("git-protocol"))),
    ] {
        if let Some(v) = value.filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b))) {
            cmd.env(var, v);
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let r =
                text(StatusCode::INTERNAL_SERVER_ERROR, format!("running git http-backend (is git installed?): {e}"));
            return refuse(&parts.headers, body, r).await;
        }
    };
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    // The request body goes to git as it arrives.
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        while let Some(Ok(chunk)) = body.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    // git's messages go to the access log; the lock is released when git is done.
    let log = s.access_log;
    let what = format!("git {} {repo}", service.name());
    tokio::spawn(async move {
        let mut said = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut said).await;
        let status = child.wait().await;
        drop(guard);
        let said = String::from_utf8_lossy(&said);
        if log && (!said.trim().is_empty() || !status.as_ref().is_ok_and(|s| s.success())) {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{what}: {} {}", status.map(|s| s.to_string()).unwrap_or_default(), said.trim());
            }
        }
    });
    match cgi_response(stdout).await {
        Ok(r) => r,
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("git http-backend: {e}")),
    }
}

/// Read the CGI headers `git http-backend` writes, then stream the rest as the body.
async fn cgi_response(stdout: tokio::process::ChildStdout) -> Result<Response, String> {
    let mut out = tokio::io::BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).await.map_err(|e| e.to_string())?;
        read += n;
        if n == 0 {
            return Err("it ended before its headers did".into());
        }
        if read > MAX_CGI_HEADERS {
            return Err("its headers are too long".into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else { return Err(format!("not a header: `{line}`")) };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v.split_whitespace().next().and_then(|c| c.parse::<u16>().ok());
            status = code.and_then(|c| StatusCode::from_u16(c).ok()).ok_or(format!("bad status `{v}`"))?;
        } else if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            headers.append(k, v);
        }
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(out, 64 * 1024));
    let mut resp = (status, body).into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}
