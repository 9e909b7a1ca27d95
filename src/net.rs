//! The one network layer that every source and target speaking HTTP goes through: the
//! client (timeouts, keepalive, user agent), the retry policy, resumable downloads and
//! the size caps. The rules are written here once, and documented for users in
//! `docs/spec.md` (Network).
//!
//! - **Timeouts.** Connecting may take `connect_timeout`. After that, `timeout` is an *idle*
//!   timeout: a request may wait that long for its response headers, and each read of a
//!   body that long for its next bytes, so a peer that stalls fails the request however
//!   large the transfer is. (reqwest's blocking client applies its `timeout` to the send
//!   and to each body read, which is exactly that.) An upload's request may also take one
//!   second per 64 KiB of its body, since the peer only answers once it has it all.
//! - **Retries.** Network errors, timeouts, 408, 425, 429 and 5xx (but 501 and 505) are
//!   transient: retried `retries` times, after an exponential backoff from `backoff`
//!   (doubling, at most 32 times `backoff`) with random jitter of up to as much again, from
//!   `backon`. A `Retry-After` (seconds or an HTTP date) lengthens the wait to what the
//!   server asks; one longer than [`RETRY_AFTER_MAX`] ends the retries at once.
//! - **Permanent errors are not retried**: any other 4xx (404, 401, 403, ...), refused
//!   credentials, TLS certificate and protocol errors, a response larger than its cap or
//!   than its declared size, and a host name that does not resolve (NXDOMAIN: the name
//!   will not appear during the seconds of a retry; a *temporary* resolver failure is
//!   retried).
//! - **Resume.** A broken download resumes with `Range`, and `If-Range` carrying the strong
//!   `ETag` (else the `Last-Modified`) of the response the partial bytes came from, kept
//!   beside them so a later run resumes too. A server that answers 200 instead of 206 (the
//!   file changed) restarts the download from its first byte. Without a validator a
//!   partial file is resumed only when the digest it must have is known.
//! - **Caps.** A download with a declared size (an OCI blob's descriptor, a file's locked
//!   size, a package index's size) stops at it; a document read whole (index pages, JSON
//!   answers, manifests) is read through a capped reader ([`PAGE_MAX`], [`MANIFEST_MAX`],
//!   [`SMALL_MAX`]). Either error names the URL and the limit.
//! - **Errors** name the method and URL, then the root cause on the same line: connection
//!   refused, DNS, TLS, or which timeout ran out.

use std::cell::Cell;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use backon::{BlockingRetryable, ExponentialBuilder};
use reqwest::StatusCode;
use reqwest::blocking::{Client, ClientBuilder, Response};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_RANGE, LAST_MODIFIED, RANGE};

use crate::digest::{Digest, Hasher};
use crate::store::Partial;

pub const USER_AGENT: &str = concat!("airlock/", env!("CARGO_PKG_VERSION"));

/// The most read of one index page (a PEP 503/691 project page, a PEP 658 metadata file).
pub const PAGE_MAX: u64 = 64 << 20;
/// The most read of one image manifest or index (the distribution spec asks registries
/// to accept at least 4 MiB).
pub const MANIFEST_MAX: u64 = 16 << 20;
/// The most read of a small answer: a token server's JSON, an error body, a `.sha256`.
pub const SMALL_MAX: u64 = 1 << 20;
/// The longest `Retry-After` airlock waits for; a server asking for more ends the retries.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(120);
/// Uploads may take one extra second of request time per this many bytes of body.
const UPLOAD_RATE_FLOOR: u64 = 64 << 10;

/// The network settings of a run (`airlock mirror --retries --backoff --timeout
/// --connect-timeout`; the defaults elsewhere).
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Attempts after the first, for a transient failure.
    pub retries: u32,
    /// The wait before the first retry; doubled for each further one, with jitter.
    pub backoff: Duration,
    /// The idle timeout: how long a response's headers, or a body's next bytes, may take.
    pub timeout: Duration,
    /// How long connecting (TCP and TLS) may take.
    pub connect_timeout: Duration,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            retries: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl NetOptions {
    /// The defaults, as `AIRLOCK_RETRIES`, `AIRLOCK_BACKOFF`, `AIRLOCK_TIMEOUT` and
    /// `AIRLOCK_CONNECT_TIMEOUT` change them: the settings of commands without network
    /// flags (import into remote targets). `airlock mirror`'s flags read the same variables.
    pub fn from_env() -> Result<Self> {
        let mut o = Self::default();
        if let Some(v) = env_var("AIRLOCK_RETRIES") {
            o.retries = v.parse().map_err(|_| anyhow!("AIRLOCK_RETRIES=`{v}` is not a number"))?;
        }
        for (name, field) in [
            ("AIRLOCK_BACKOFF", &mut o.backoff),
            ("AIRLOCK_TIMEOUT", &mut o.timeout),
            ("AIRLOCK_CONNECT_TIMEOUT", &mut o.connect_timeout),
        ] {
            if let Some(v) = env_var(name) {
                *field = humantime::parse_duration(&v)
                    .map_err(|e| anyhow!("{name}=`{v}` is not a duration like 500ms or 30s: {e}"))?;
            }
        }
        Ok(o)
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Run `attempt` until it succeeds, fails permanently, or the retries run out. The error
/// names `what` and, when there was more than one attempt, how many were made.
pub fn retry<T>(opts: &NetOptions, what: impl Display, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
    let asked = Rc::new(Cell::new(None::<Duration>));
    let attempts = Cell::new(0u32);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(opts.backoff)
        .with_factor(2.0)
        .with_max_delay(opts.backoff.saturating_mul(32))
        .with_max_times(opts.retries as usize)
        .with_jitter();
    let wait = asked.clone();
    let result = (|| {
        attempts.set(attempts.get() + 1);
        attempt()
    })
    .retry(backoff)
    .when(Failure::is_transient)
    .notify(|f: &Failure, _| asked.set(f.retry_after()))
    .sleep(move |d: Duration| std::thread::sleep(d.max(wait.take().unwrap_or_default())))
    .call();
    result.map_err(|f| match attempts.get() {
        n if n > 1 || (f.is_transient() && opts.retries == 0) => {
            f.error.context(format!("giving up on {what} after {n} attempt{}", if n == 1 { "" } else { "s" }))
        }
        _ => f.error.context(what.to_string()),
    })
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
pub struct Failure {
    pub error: anyhow::Error,
    retry: Retry,
}

#[derive(Debug, Clone, Copy)]
enum Retry {
    No,
    /// Transient; the server may have asked for a wait.
    Yes(Option<Duration>),
}

impl Failure {
    pub fn permanent(e: impl Into<anyhow::Error>) -> Self {
        Self { error: e.into(), retry: Retry::No }
    }

    pub fn transient(e: impl Into<anyhow::Error>) -> Self {
        Self { error: e.into(), retry: Retry::Yes(None) }
    }

    /// The same failure, its error given more context.
    #[must_use]
    pub fn context(self, c: impl Display + Send + Sync + 'static) -> Self {
        Self { error: self.error.context(c), retry: self.retry }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self.retry, Retry::Yes(_))
    }

    fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::Yes(d) => d,
            Retry::No => None,
        }
    }

    /// A response whose status the caller did not want: transient or not by the status
    /// (and its `Retry-After`), described by `error`.
    pub fn status_with(status: StatusCode, headers: &HeaderMap, error: anyhow::Error) -> Self {
        if !is_transient_status(status) {
            return Self::permanent(error);
        }
        match retry_after(headers) {
            Some(d) if d > RETRY_AFTER_MAX => Self::permanent(error.context(format!(
                "the server asks to retry after {} (Retry-After), longer than airlock waits: try again later",
                humantime::format_duration(d)
            ))),
            d => Self { error, retry: Retry::Yes(d) },
        }
    }

    /// A response whose status the caller did not want, described by its status (a 404 or
    /// 410 as [`NotFound`]).
    pub fn status(resp: &Response) -> Self {
        let s = resp.status();
        let error = if matches!(s, StatusCode::NOT_FOUND | StatusCode::GONE) {
            anyhow::Error::new(NotFound(resp.url().to_string(), s))
        } else {
            anyhow!("{s}")
        };
        Self::status_with(s, resp.headers(), error)
    }
}

impl From<anyhow::Error> for Failure {
    /// Local errors (the disk, a bad URL) are not cured by asking again.
    fn from(e: anyhow::Error) -> Self {
        Self::permanent(e)
    }
}

/// The server answered 404 or 410: the thing is not there, which callers may expect
/// (an apt archive without InRelease, a project an index does not have).
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct NotFound(pub String, pub StatusCode);

/// 408, 425, 429 and 5xx but 501 (not implemented) and 505 (version not supported).
pub fn is_transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 425 | 429) || (s.is_server_error() && !matches!(s.as_u16(), 501 | 505))
}

/// `Retry-After` as a wait: delay-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or_default())
}

/// What a download must be, when known.
#[derive(Clone, Copy, Default)]
pub struct Want<'a> {
    pub digest: Option<&'a Digest>,
    pub size: Option<u64>,
    /// Where `size` comes from, for errors: "its descriptor", "the lock", "the index".
    pub size_from: &'a str,
}

/// One HTTP attempt of a download: send the request for the URL with these extra
/// headers (`Range`, `If-Range`). The caller adds what it needs (registry auth).
pub type SendFn<'a> = dyn Fn(&HeaderMap) -> Result<Response, Failure> + 'a;

/// The shared client and the run's network settings.
#[derive(Clone)]
pub struct Net {
    client: Client,
    opts: NetOptions,
}

/// TLS for every client and for `airlock serve`: rustls with the `ring` provider, installed
/// once as the process default (reqwest and rustls pick it up from there).
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only if a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Net {
    pub fn new(opts: &NetOptions) -> Result<Self> {
        Self::build(opts, |b| b)
    }

    /// A client with the common settings, adjusted by `adjust` (a redirect policy).
    pub fn build(opts: &NetOptions, adjust: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Result<Self> {
        install_tls_provider();
        let builder = Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(USER_AGENT);
        let client = adjust(builder).build().context("setting up the HTTP client")?;
        Ok(Self { client, opts: opts.clone() })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn options(&self) -> &NetOptions {
        &self.opts
    }

    /// [`retry`] with this run's settings.
    pub fn retry<T>(&self, what: impl Display, attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        retry(&self.opts, what, attempt)
    }

    /// The request time an upload of `len` bytes may take: the idle timeout plus one second
    /// per 64 KiB (a slow link is not a stalled peer).
    pub fn upload_timeout(&self, len: u64) -> Duration {
        self.opts.timeout + Duration::from_secs(len / UPLOAD_RATE_FLOOR)
    }

    /// A transport error (no response, or a broken one), classified and described.
    pub fn failure(&self, e: reqwest::Error) -> Failure {
        classify(&e.without_url(), &self.opts)
    }

    /// A failed read of a response body.
    pub fn read_failure(&self, e: std::io::Error, after: u64) -> Failure {
        classify(&e, &self.opts).context(format!("the transfer broke after {after} bytes"))
    }

    /// GET a document whole (an index page, a JSON answer), at most `max` bytes: `None` on
    /// 404 or 410; else the body, its content type and the URL it came from after redirects.
    pub fn get_document(
        &self,
        url: &reqwest::Url,
        accept: &str,
        max: u64,
    ) -> Result<Option<(Vec<u8>, String, reqwest::Url)>> {
        self.retry(format!("GET {url}"), || {
            let mut req = self.client.get(url.clone());
            if !accept.is_empty() {
                req = req.header(reqwest::header::ACCEPT, accept);
            }
            let mut resp = req.send().map_err(|e| self.failure(e))?;
            match resp.status() {
                StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(None),
                s if s.is_success() => {}
                _ => return Err(Failure::status(&resp)),
            }
            let ty = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let final_url = resp.url().clone();
            let body = self.read_capped(&mut resp, max)?;
            Ok(Some((body, ty, final_url)))
        })
    }

    /// A response body, whole, refusing more than `max` bytes (also when its
    /// `Content-Length` announces more, before reading any).
    pub fn read_capped(&self, resp: &mut Response, max: u64) -> Result<Vec<u8>, Failure> {
        if let Some(n) = resp.content_length()
            && n > max
        {
            return Err(too_large(n, max));
        }
        let mut body = Vec::new();
        let mut limited = resp.take(max + 1);
        loop {
            let mut buf = [0u8; 64 * 1024];
            match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_failure(e, body.len() as u64)),
            }
        }
        if body.len() as u64 > max {
            return Err(too_large(body.len() as u64, max));
        }
        Ok(body)
    }

    /// Download `url` into `partial`, resuming and retrying, checked against `want`; the
    /// finished file becomes a blob. `send` makes one request with the given extra headers.
    /// A digest other than `want.digest` is reported by `mismatch(got, size)`.
    pub fn download(
        &self,
        url: &str,
        partial: &Partial,
        want: &Want,
        send: &SendFn,
        mismatch: &dyn Fn(&Digest, u64) -> anyhow::Error,
    ) -> Result<(Digest, u64)> {
        let (file, hasher) = self.retry(format!("GET {url}"), || self.attempt_download(partial, want, send))?;
        let (digest, size) = hasher.finish();
        if let Some(w) = want.digest
            && *w != digest
        {
            drop(file);
            partial.discard();
            return Err(mismatch(&digest, size));
        }
        partial.commit(file, &digest)?;
        Ok((digest, size))
    }

    fn attempt_download(&self, partial: &Partial, want: &Want, send: &SendFn) -> Result<(File, Hasher), Failure> {
        let mut have = partial.downloaded();
        if want.size.is_some_and(|s| have >= s) {
            partial.discard(); // complete but never committed, or too long: start again
            have = 0;
        }
        let validator = if have > 0 { partial.validator() } else { None };
        let resuming = have > 0 && (validator.is_some() || want.digest.is_some());
        let mut headers = HeaderMap::new();
        if resuming {
            headers.insert(RANGE, header_value(&format!("bytes={have}-"))?);
            if let Some(v) = &validator {
                headers.insert(IF_RANGE, header_value(v)?);
            }
        }
        let mut resp = send(&headers)?;
        let resume = match resp.status() {
            StatusCode::PARTIAL_CONTENT if resuming => {
                let range = resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !range.starts_with(&format!("bytes {have}-")) {
                    partial.discard();
                    return Err(Failure::transient(anyhow!(
                        "unexpected Content-Range `{range}` for a resume from byte {have}"
                    )));
                }
                if let (Some(v), Some(now)) = (&validator, validator_of(resp.headers()))
                    && *v != now
                {
                    partial.discard();
                    return Err(Failure::transient(anyhow!("the file changed while it was downloaded ({v} -> {now})")));
                }
                let total = range.rsplit_once('/').and_then(|(_, t)| t.parse::<u64>().ok());
                if let (Some(s), Some(t)) = (want.size, total)
                    && t != s
                {
                    partial.discard();
                    return Err(size_differs(t, s, want.size_from));
                }
                true
            }
            StatusCode::OK => false,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                partial.discard();
                return Err(Failure::transient(anyhow!("the partial download could not be resumed (416)")));
            }
            _ => return Err(Failure::status(&resp)),
        };
        let offset = if resume { have } else { 0 };
        let announced = resp.content_length().map(|n| n + offset);
        if let (Some(s), Some(a)) = (want.size, announced)
            && a != s
        {
            partial.discard();
            return Err(size_differs(a, s, want.size_from));
        }
        let (mut file, mut hasher) = partial.open(resume)?;
        if !resume {
            partial.set_validator(validator_of(resp.headers()).as_deref())?;
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = file.sync_data();
                    return Err(self.read_failure(e, hasher.bytes()));
                }
            };
            if let Some(s) = want.size
                && hasher.bytes() + n as u64 > s
            {
                drop(file);
                partial.discard();
                return Err(Failure::permanent(SizeMismatch { got: None, size: s, from: want.size_from.to_string() }));
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).with_context(|| "writing the download to the cache".to_string())?;
        }
        let expected = announced.or(want.size);
        if let Some(e) = expected
            && hasher.bytes() < e
        {
            let _ = file.sync_data();
            return Err(Failure::transient(anyhow!("the transfer ended early, at {} of {e} bytes", hasher.bytes())));
        }
        Ok((file, hasher))
    }
}

fn header_value(s: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(s).map_err(|e| Failure::permanent(anyhow!("bad header value `{s}`: {e}")))
}

fn too_large(n: u64, max: u64) -> Failure {
    Failure::permanent(anyhow!("the answer is {n} bytes or more, larger than the {max} bytes airlock reads for it"))
}

fn size_differs(announced: u64, size: u64, from: &str) -> Failure {
    Failure::permanent(SizeMismatch { got: Some(announced), size, from: from.to_string() })
}

/// A download whose size is not the one declared for it.
#[derive(Debug, thiserror::Error)]
pub struct SizeMismatch {
    /// What the server announced, or `None` when it sent more than `size`.
    pub got: Option<u64>,
    pub size: u64,
    /// Where `size` comes from ("its descriptor").
    pub from: String,
}

impl Display for SizeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (size, from) = (self.size, &self.from);
        match self.got {
            Some(n) => {
                let more = if n > size { "more" } else { "fewer" };
                write!(f, "the server announces {n} bytes, {more} than the {size} bytes {from} gives; nothing was kept")
            }
            None => write!(
                f,
                "the server sent more than the {size} bytes {from} gives; airlock stopped reading there and kept nothing"
            ),
        }
    }
}

/// What `If-Range` may carry for a response: its strong `ETag`, else its `Last-Modified`
/// (a weak ETag is not allowed there).
pub fn validator_of(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(ETAG).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(e) = etag
        && !e.starts_with("W/")
        && e.starts_with('"')
    {
        return Some(e.to_string());
    }
    headers.get(LAST_MODIFIED).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

/// Classify an error (a reqwest error, or an I/O error from reading a body) and describe
/// its root cause on one line.
fn classify(e: &(dyn std::error::Error + 'static), opts: &NetOptions) -> Failure {
    let chain = chain_of(e);
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    let timed_out = sources(e).any(|s| {
        s.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
            || s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    }) || lower.contains("timed out")
        || lower.contains("deadline has elapsed");
    let connecting = sources(e).any(|s| s.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect));
    if timed_out {
        let why = if connecting {
            format!(
                "could not connect within {} (the connect timeout, --connect-timeout)",
                humantime::format_duration(opts.connect_timeout)
            )
        } else {
            format!(
                "timed out: the server sent nothing for {} (the idle timeout, --timeout)",
                humantime::format_duration(opts.timeout)
            )
        };
        return Failure::transient(anyhow!("{why}"));
    }
    let dns = lower.contains("dns error") || lower.contains("lookup address");
    if dns {
        let temporary = lower.contains("temporary failure") || lower.contains("try again");
        let error = anyhow!("the host name does not resolve: {}", chain.last().map_or("", String::as_str));
        return if temporary { Failure::transient(error) } else { Failure::permanent(error) };
    }
    let tls = ["certificate", "corrupt message", "handshakefailure", "peer is incompatible", "unknownissuer", "tls"]
        .iter()
        .any(|w| lower.contains(w));
    if tls && !lower.contains("connection reset") && !lower.contains("broken pipe") {
        return Failure::permanent(anyhow!("TLS failed: {text}"));
    }
    if sources(e).any(|s| s.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_builder)) {
        return Failure::permanent(anyhow!("{text}"));
    }
    Failure::transient(anyhow!("{text}"))
}

fn sources<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The distinct messages of an error's chain, without reqwest's generic words and URLs.
fn chain_of(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sources(e) {
        let mut m = s.to_string();
        if let Some(i) = m.find(" for url (") {
            m.truncate(i);
        }
        let m = m.trim().to_string();
        if m.is_empty() || out.iter().any(|o| o == &m) {
            continue;
        }
        out.push(m);
    }
    // "error sending request" and "client error (Connect)" say nothing the rest does not.
    if out.len() > 1 {
        out.retain(|m| {
            !matches!(
                m.as_str(),
                "error sending request"
                    | "client error (Connect)"
                    | "request or response body error"
                    | "error decoding response body"
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 416, 501, 505] {
            assert!(!is_transient_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28), "{d:?}");
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "a date in the past means now");
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_long_retry_after_ends_the_retries() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("3600"));
        let f = Failure::status_with(StatusCode::SERVICE_UNAVAILABLE, &h, anyhow!("503"));
        assert!(!f.is_transient());
        assert!(format!("{:#}", f.error).contains("try again later"));
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("2"));
        let f = Failure::status_with(StatusCode::TOO_MANY_REQUESTS, &h, anyhow!("429"));
        assert_eq!(f.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn validators_prefer_a_strong_etag() {
        let mut h = HeaderMap::new();
        h.insert(LAST_MODIFIED, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(validator_of(&h).as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert(ETAG, HeaderValue::from_static("W/\"weak\""));
        assert_eq!(validator_of(&h).as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"), "a weak ETag is not used");
        h.insert(ETAG, HeaderValue::from_static("\"abc\""));
        assert_eq!(validator_of(&h).as_deref(), Some("\"abc\""));
    }

    #[test]
    fn permanent_failures_are_tried_once_and_transient_ones_retries_plus_one_times() {
        let opts = NetOptions { retries: 3, backoff: Duration::from_millis(1), ..NetOptions::default() };
        let mut n = 0;
        let e = retry(&opts, "GET x", || -> Result<(), Failure> {
            n += 1;
            Err(Failure::permanent(anyhow!("404 Not Found")))
        })
        .unwrap_err();
        assert_eq!(n, 1);
        assert_eq!(format!("{e:#}"), "GET x: 404 Not Found");
        let mut n = 0;
        let e = retry(&opts, "GET x", || -> Result<(), Failure> {
            n += 1;
            Err(Failure::transient(anyhow!("503 Service Unavailable")))
        })
        .unwrap_err();
        assert_eq!(n, 4);
        assert_eq!(format!("{e:#}"), "giving up on GET x after 4 attempts: 503 Service Unavailable");
        let mut n = 0;
        let v = retry(&opts, "GET x", || {
            n += 1;
            if n < 3 { Err(Failure::transient(anyhow!("reset"))) } else { Ok(n) }
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn root_causes_on_one_line() {
        let opts = NetOptions { connect_timeout: Duration::from_secs(3), ..NetOptions::default() };
        // A port nobody listens on: connection refused, retried.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let net = Net::new(&opts).unwrap();
        let e = net.client().get(format!("http://127.0.0.1:{port}/")).send().unwrap_err();
        let f = net.failure(e);
        assert!(f.is_transient());
        let m = format!("{:#}", f.error);
        assert!(m.to_ascii_lowercase().contains("connection refused"), "{m}");
        assert!(!m.contains('\n'), "{m}");
    }

    /// A server that answers one request with `head` and `body`, then closes.
    fn one_shot(head: &'static str, body: Vec<u8>) -> String {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                let mut r = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        url
    }

    #[test]
    fn a_body_without_length_stops_at_the_declared_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let net = Net::new(&NetOptions { retries: 0, ..NetOptions::default() }).unwrap();
        // No Content-Length: the body ends when the server closes, 3 MB later.
        let url = one_shot("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", vec![7u8; 3_000_000]);
        let partial = store.partial("k").unwrap();
        let want = Want { digest: None, size: Some(1000), size_from: "the index" };
        let send = |h: &HeaderMap| net.client().get(&url).headers(h.clone()).send().map_err(|e| net.failure(e));
        let e = net.download(&url, &partial, &want, &send, &|_, _| anyhow!("mismatch")).unwrap_err();
        let m = format!("{e:#}");
        assert!(m.contains("the server sent more than the 1000 bytes the index gives"), "{m}");
        assert_eq!(partial.downloaded(), 0, "nothing is kept");
        // Announced larger: refused before the body is read.
        let url = one_shot("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", vec![1u8; 5000]);
        let send = |h: &HeaderMap| net.client().get(&url).headers(h.clone()).send().map_err(|e| net.failure(e));
        let e = net.download(&url, &partial, &want, &send, &|_, _| anyhow!("mismatch")).unwrap_err();
        assert!(format!("{e:#}").contains("announces 5000 bytes, more than the 1000 bytes the index gives"));
    }
}
