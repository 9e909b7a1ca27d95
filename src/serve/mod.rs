//! `airlock serve`: one HTTP server over the store that imports fill, speaking the
//! protocols the site's tools already speak: the OCI distribution API at `/v2/`, raw files
//! at `/repository/<name>/...` (Nexus-style), git at `/git/<name>.git` (smart HTTP through
//! `git http-backend`, with the dumb-HTTP files import keeps current as a fallback), and
//! `/healthz`.
//!
//! Reads are anonymous unless `--no-anonymous-read`; every write (OCI push, raw PUT,
//! Python upload, git push) needs a token whose scope covers it ([`auth`]), given as
//! `Authorization: Bearer <token>` or as the password of Basic auth. The server keeps only
//! SHA-256 hashes of tokens. Writes take the store's lock ([`lock`]), never replace a file
//! with other content, and run their filesystem work off the async workers. Uploads are
//! verified against their digest and become visible only when complete; no request path
//! can leave the store.

// Handlers and their helpers return the answer to send as their error: a `Response`.
#![allow(clippy::result_large_err)]

mod auth;
mod cache;
mod error;
mod files;
mod git;
mod lock;
mod oci;
mod pypi;
mod raw;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use http_body_util::BodyExt;

use crate::digest::Hasher;
use crate::store::Store;

pub use auth::{Access, Scope, Token, Tokens, parse_tokens};
pub use error::ApiError;

pub struct AppState {
    pub store: Store,
    pub tokens: Tokens,
    pub anonymous_read: bool,
    pub access_log: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    /// How long a write waits for the store's lock before answering 503.
    pub lock_wait: Duration,
    /// Let git pushes rewrite or delete refs.
    pub git_allow_force: bool,
    /// Blob upload sessions: id -> (hash so far, bytes so far).
    pub uploads: Mutex<std::collections::HashMap<String, (Hasher, u64)>>,
    /// Small blobs kept in memory ([`cache`]).
    pub blobs: cache::BlobCache,
}

pub type Shared = Arc<AppState>;

/// Read size for files served: large enough that a blob goes out in few writes.
pub const FILE_CHUNK: usize = 256 * 1024;

/// The whole application: every route and the access log.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v2", any(oci::base))
        .route("/v2/", any(oci::base))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/repository/{repo}/{*path}", any(raw::handle))
        // twine's upload form; uploads are bounded by --max-upload, not axum's default.
        .route("/repository/{repo}/", post(pypi::upload).layer(DefaultBodyLimit::disable()))
        .route("/git/{*path}", any(git::handle))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

async fn access_log(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if !s.access_log {
        return next.run(req).await;
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{method} {path} {} {}ms", resp.status().as_u16(), started.elapsed().as_millis());
    }
    resp
}

/// The token a request presents: `Authorization: Bearer <token>`, or the password of
/// Basic auth (any user name).
fn presented(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = auth.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let b = auth.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, pw)| pw.to_string())
}

impl AppState {
    /// May this request have `access` to `resource` (see [`auth`] for the names)?
    /// `Err` is the answer to send: 401 with a Basic challenge, or 403.
    pub fn check(&self, headers: &HeaderMap, resource: &str, access: Access) -> Result<(), Response> {
        let token = presented(headers);
        self.tokens.authorize(token.as_deref(), resource, access, self.anonymous_read).map_err(|d| match d {
            auth::Denied::Unauthenticated => unauthorized(),
            auth::Denied::Forbidden => text(
                StatusCode::FORBIDDEN,
                format!("this token may not {} {resource}", if access == Access::Write { "write to" } else { "read" }),
            ),
        })
    }

    /// Does the request present a token the server knows?
    pub fn known_token(&self, headers: &HeaderMap) -> bool {
        self.tokens.known(presented(headers).as_deref())
    }
}

/// A plain-text answer (one line, newline-terminated).
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, format!("{}\n", msg.into())).into_response()
}

/// 401 with a Basic challenge, as registries and raw repositories send it.
pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"airlock\"")], "authentication required\n")
        .into_response()
}

/// How much of a refused upload is read before answering; and for how long.
const DRAIN_LIMIT: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Answer `resp` to a request whose body is not wanted (an upload refused before it was
/// read: 401, 403, 405, 503). A client still sending its body when the answer comes and
/// the connection closes sees a reset ("broken pipe") instead of the answer, so the body
/// is read and dropped first, up to 16 MiB or 10 s; beyond that the connection is closed.
/// A client that sent `Expect: 100-continue` waits for the answer before it sends: it is
/// answered at once.
pub async fn refuse(headers: &HeaderMap, body: Body, mut resp: Response) -> Response {
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects {
        return resp;
    }
    let mut body = body;
    let drained = tokio::time::timeout(DRAIN_TIME, async {
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Ok(d) = frame.into_data() {
                n += d.len() as u64;
                if n > DRAIN_LIMIT {
                    return false;
                }
            }
        }
        true
    })
    .await;
    if drained != Ok(true) {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Run blocking filesystem work (and fsync) off the async workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// TLS certificate chain and private key (PEM).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub tokens: Vec<Token>,
    pub anonymous_read: bool,
    pub access_log: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    /// How long a write waits for the store's lock before answering 503.
    pub lock_wait: Duration,
    /// Let git pushes rewrite or delete refs.
    pub git_allow_force: bool,
}

/// Run the server until SIGINT or SIGTERM. `on_listen` is told the bound address.
pub fn run(store: Store, opts: ServeOptions, on_listen: impl FnOnce(SocketAddr)) -> Result<()> {
    let _ = std::fs::remove_dir_all(store.layout().uploads_dir());
    let state = Arc::new(AppState {
        store,
        tokens: Tokens::new(opts.tokens),
        anonymous_read: opts.anonymous_read,
        access_log: opts.access_log,
        max_upload: opts.max_upload,
        lock_wait: opts.lock_wait,
        git_allow_force: opts.git_allow_force,
        uploads: Mutex::new(Default::default()),
        blobs: Default::default(),
    });
    let tls = opts.tls.as_ref().map(|(c, k)| tls::config(c, k)).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        on_listen(listener.local_addr()?);
        match tls {
            Some(cfg) => {
                let tls = tls::TlsListener::new(listener, cfg, opts.access_log)?;
                axum::serve(tls, router(state)).with_graceful_shutdown(shutdown()).await.context("serving")
            }
            None => {
                // Headers and body go out in separate writes: without TCP_NODELAY, Nagle
                // holds the body back until the client's delayed ACK (~40 ms a response).
                use axum::serve::ListenerExt;
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, router(state)).with_graceful_shutdown(shutdown()).await.context("serving")
            }
        }
    })
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
