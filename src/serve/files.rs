//! Sending files: validators (`ETag`, answered with 304 on a matching `If-None-Match`)
//! and a fast path for whole-file GETs.
//!
//! A whole-file GET takes one trip to the blocking pool: open, stat, and for a file of up
//! to [`WHOLE_FILE`] (1 MiB) the whole read, into one buffer of the file's size (not
//! zeroed first), sent as one body. A larger file is read by one blocking task in
//! [`FILE_CHUNK`] pieces, at most two pieces ahead of the client, so a connection holds at
//! most about 1 MiB either way. A `Range` request goes to tower-http's `ServeFile`, which
//! answers ranges (206, 416) as before.
//!
//! Blobs of up to 64 KiB are also kept in memory ([`super::cache`]): a cached blob is
//! answered after one `stat` that checks it is still in the store, without the trip.
//!
//! Blobs and manifests are content-addressed, so their `ETag` is their digest: it never
//! changes while the name stays. A file that import replaces in place (apt's `InRelease`,
//! a simple index page) gets an `ETag` from its inode, size and modification time in
//! nanoseconds: import writes a new file and renames it over the old one, so a changed
//! file has a new inode, which the one-second resolution of `Last-Modified` could not tell.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::cache::BlobCache;
use super::{FILE_CHUNK, blocking, text};

/// Files up to this size are read whole in the trip that opens them.
const WHOLE_FILE: u64 = 1 << 20;

/// The `ETag` of a content-addressed object: its digest, quoted.
pub fn digest_etag(digest: &crate::digest::Digest) -> String {
    format!("\"{digest}\"")
}

/// The `ETag` of a file that can be replaced in place (see the module's documentation).
pub fn file_etag(meta: &std::fs::Metadata) -> String {
    format!("\"{:x}-{:x}-{:x}.{:x}\"", meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec())
}

/// Does the request's `If-None-Match` match `etag` (weak comparison, as RFC 9110 asks
/// for `If-None-Match`)?
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|t| t == "*" || bare(t) == bare(etag)))
}

/// 304 for `etag`.
pub fn not_modified(etag: &str) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// What the cache can say about a blob.
pub enum Cached {
    /// The answer, from memory.
    Answer(Response),
    /// Cached, but the file is no longer in the store: 404 (and dropped from the cache).
    Gone,
    /// Not cached (or a request the cache does not answer: a `Range`): read the file.
    Miss,
}

/// Answer a whole GET or HEAD of blob `d` (at `path`) from `cache`, after checking with one
/// `stat` that the file is still there with the same size. The `stat` runs on the
/// request's worker: the dentry and inode of a blob just served are in memory, and this is
/// far cheaper than a trip to the blocking pool.
pub fn cached(
    cache: &BlobCache,
    d: &crate::digest::Digest,
    path: &std::path::Path,
    etag: &str,
    req: &Request,
) -> Cached {
    if req.headers().contains_key(header::RANGE) {
        return Cached::Miss;
    }
    let Some(bytes) = cache.get(d) else { return Cached::Miss };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == bytes.len() as u64 => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cache.remove(d);
            return Cached::Gone;
        }
        _ => {
            cache.remove(d);
            return Cached::Miss;
        }
    }
    if none_match(req.headers(), etag) {
        return Cached::Answer(not_modified(etag));
    }
    let len = bytes.len() as u64;
    let body = if req.method() == Method::HEAD { Body::empty() } else { Body::from(bytes) };
    Cached::Answer(whole(body, len, etag))
}

/// A 200 answer with its length, `Accept-Ranges` and `ETag`.
fn whole(body: Body, len: u64, tag: &str) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// What the blocking trip found.
enum Opened {
    Missing,
    NotModified(String),
    Whole(Vec<u8>, String),
    Head(u64, String),
    Stream(std::fs::File, u64, String),
}

/// Answer a GET or HEAD of `path` with its bytes, or 304 when the request's
/// `If-None-Match` names the `ETag` (`etag` if given, else [`file_etag`]). `None` when
/// the file does not exist. The caller adds its content type and other headers. With
/// `cache`, a small file read whole is kept there under the digest given (a blob's).
pub async fn send(
    path: PathBuf,
    etag: Option<String>,
    cache: Option<(&BlobCache, crate::digest::Digest)>,
    req: Request,
) -> Option<Response> {
    let ranged = req.headers().contains_key(header::RANGE);
    let head = req.method() == Method::HEAD;
    let conditional = req.headers().clone();
    let p = path.clone();
    let opened = blocking(move || -> std::io::Result<Opened> {
        let mut file = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(Opened::Missing);
        }
        let tag = etag.unwrap_or_else(|| file_etag(&meta));
        if none_match(&conditional, &tag) {
            return Ok(Opened::NotModified(tag));
        }
        let len = meta.len();
        if head {
            return Ok(Opened::Head(len, tag));
        }
        if len <= WHOLE_FILE {
            // One spare byte: read_to_end finds the end without growing the buffer.
            let mut bytes = Vec::with_capacity(len as usize + 1);
            file.read_to_end(&mut bytes)?;
            return Ok(Opened::Whole(bytes, tag));
        }
        Ok(Opened::Stream(file, len, tag))
    })
    .await;
    let opened = match opened {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Some(text(StatusCode::INTERNAL_SERVER_ERROR, format!("reading {}: {e}", path.display()))),
        Err(r) => return Some(r),
    };
    let (body, len, tag) = match opened {
        Opened::Missing => return None,
        Opened::NotModified(tag) => return Some(not_modified(&tag)),
        Opened::Head(len, tag) if !ranged => (Body::empty(), len, tag),
        Opened::Whole(bytes, tag) if !ranged => {
            let n = bytes.len() as u64;
            let bytes = axum::body::Bytes::from(bytes);
            if let Some((c, d)) = cache {
                c.insert(d, bytes.clone());
            }
            (Body::from(bytes), n, tag)
        }
        Opened::Stream(file, len, tag) if !ranged => (stream(file), len, tag),
        Opened::Head(_, tag) | Opened::Whole(_, tag) | Opened::Stream(_, _, tag) => {
            // A range: tower-http answers it (206 with Content-Range, or 416).
            let mut r =
                match tower_http::services::ServeFile::new(&path).with_buf_chunk_size(FILE_CHUNK).oneshot(req).await {
                    Ok(r) => r.map(Body::new),
                    Err(e) => return Some(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                };
            if let Ok(v) = HeaderValue::from_str(&tag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            return Some(r);
        }
    };
    Some(whole(body, len, &tag))
}

/// The body of a large file: one blocking task reads it in [`FILE_CHUNK`] pieces, at
/// most two ahead of what the connection has taken. A read error ends the body early,
/// so the client sees a short response, never wrong bytes.
fn stream(mut file: std::fs::File) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        loop {
            // Filled by read_to_end, which reads into the spare capacity without zeroing it.
            let mut buf = Vec::with_capacity(FILE_CHUNK);
            match (&mut file).take(FILE_CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            if tx.blocking_send(Ok(axum::body::Bytes::from(buf))).is_err() {
                return; // the client went away
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_stars_and_weak_tags() {
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, "\"a\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\", W/\"a\""));
        assert!(none_match(&h, "\"a\""));
        assert!(!none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, "\"c\""));
    }
}
