//! `airlock serve`: one HTTP server over the store that imports fill, speaking the
//! protocols the site's tools already speak: the OCI distribution API at `/v2/`, raw files
//! at `/repository/<name>/...` (Nexus-style), git at `/git/<name>.git` (dumb HTTP, which
//! `git clone` reads from the files import keeps current), and `/healthz`.
//!
//! Reads are anonymous unless `--no-anonymous-read`; every write (OCI push, raw PUT) needs
//! a token, given as `Authorization: Bearer <token>` or as the password of Basic auth. The
//! server keeps only SHA-256 hashes of tokens. Uploads are verified against their digest
//! and become visible only when complete; no request path can leave the store.

mod error;
mod git;
mod oci;
mod pypi;
mod raw;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;

use crate::digest::{Digest, Hasher};
use crate::store::Store;

pub use error::ApiError;

pub struct AppState {
    pub store: Store,
    /// SHA-256 of every token that may write.
    pub tokens: Vec<Digest>,
    pub anonymous_read: bool,
    pub access_log: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    /// Blob upload sessions: id -> (hash so far, bytes so far).
    pub uploads: Mutex<std::collections::HashMap<String, (Hasher, u64)>>,
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
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    if s.access_log {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{method} {path} {} {}ms", resp.status().as_u16(), started.elapsed().as_millis());
        }
    }
    resp
}

impl AppState {
    /// May this request read (`write == false`) or write?
    pub fn allowed(&self, headers: &HeaderMap, write: bool) -> bool {
        if !write && self.anonymous_read {
            return true;
        }
        let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        let token = if let Some(t) = auth.strip_prefix("Bearer ") {
            t.to_string()
        } else if let Some(b) = auth.strip_prefix("Basic ") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else { return false };
            let text = String::from_utf8_lossy(&decoded).into_owned();
            match text.split_once(':') {
                Some((_, pw)) => pw.to_string(),
                None => return false,
            }
        } else {
            return false;
        };
        let h = Digest::of(token.as_bytes());
        self.tokens.contains(&h)
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

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// TLS certificate chain and private key (PEM).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub tokens: Vec<Digest>,
    pub anonymous_read: bool,
    pub access_log: bool,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
}

/// Run the server until SIGINT or SIGTERM. `on_listen` is told the bound address.
pub fn run(store: Store, opts: ServeOptions, on_listen: impl FnOnce(SocketAddr)) -> Result<()> {
    let _ = std::fs::remove_dir_all(store.root().join("tmp").join("uploads"));
    let state = Arc::new(AppState {
        store,
        tokens: opts.tokens,
        anonymous_read: opts.anonymous_read,
        access_log: opts.access_log,
        max_upload: opts.max_upload,
        uploads: Mutex::new(Default::default()),
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
