//! A small HTTP/1.1 file server on a loopback port, for the one thing real servers
//! cannot be made to do on cue: fail. It serves GET and HEAD with `Range: bytes=N-` and
//! `If-Range` (each file has a strong ETag, as nginx gives), and can cut a transfer short,
//! change a file between two requests, or answer with an error status a given number of
//! times, so the retry and resume paths of `airlock mirror` are exercised over a real
//! socket. [`Stall`] is a server that accepts and then says nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub at: Instant,
}

#[derive(Clone, Debug)]
pub enum Fault {
    /// The next `times` GETs of the path send only `after` bytes of the body, then hang up.
    Cut { after: usize, times: usize },
    /// The next `times` requests for the path get this status.
    Status { code: u16, times: usize },
    /// The next `times` requests get 503 with `Retry-After: secs`.
    Busy { secs: u64, times: usize },
    /// The next GET sends `after` bytes and hangs up, and the file then becomes `next`
    /// (so it has another ETag).
    CutThenChange { after: usize, next: Vec<u8> },
}

/// The strong ETag of some content.
pub fn etag(data: &[u8]) -> String {
    format!("\"{}\"", &airlock::digest::Digest::of(data).hex()[..16])
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    log: Vec<Logged>,
}

pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let st = st.clone();
                    std::thread::spawn(move || handle(conn, &st));
                }
            }
        });
        Self { port, state, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn put(&self, path: &str, data: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.to_string(), data);
    }

    pub fn fault(&self, path: &str, f: Fault) {
        self.state.lock().unwrap().faults.insert(path.to_string(), f);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(conn: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut range, mut if_range) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            } else if k.eq_ignore_ascii_case("if-range") {
                if_range = Some(v.trim().to_string());
            }
        }
    }
    let (data, fault) = {
        let mut s = state.lock().unwrap();
        let at = Instant::now();
        s.log.push(Logged {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            if_range: if_range.clone(),
            at,
        });
        let data = s.files.get(&path).cloned();
        if let Some(Fault::CutThenChange { after, next }) = s.faults.get(&path).cloned()
            && method == "GET"
        {
            s.faults.remove(&path);
            s.files.insert(path.clone(), next);
            drop(s);
            let mut out = conn;
            let data = data.unwrap_or_default();
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                data.len(),
                etag(&data)
            );
            let _ = out.write_all(&data[..after.min(data.len())]);
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
        let fault = match s.faults.get_mut(&path) {
            Some(Fault::Cut { after, times }) if *times > 0 && method == "GET" => {
                *times -= 1;
                Some(Fault::Cut { after: *after, times: 0 })
            }
            Some(Fault::Status { code, times }) if *times > 0 => {
                *times -= 1;
                Some(Fault::Status { code: *code, times: 0 })
            }
            Some(Fault::Busy { secs, times }) if *times > 0 => {
                *times -= 1;
                Some(Fault::Busy { secs: *secs, times: 0 })
            }
            _ => None,
        };
        (data, fault)
    };
    let mut out = conn;
    if let Some(Fault::Status { code, .. }) = fault {
        let _ = write!(out, "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    if let Some(Fault::Busy { secs, .. }) = fault {
        let _ =
            write!(out, "HTTP/1.1 503 Busy\r\nRetry-After: {secs}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let Some(data) = data else {
        let _ = write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let tag = etag(&data);
    // RFC 9110: a Range whose If-Range does not match the current ETag gets the whole file.
    let range = range.filter(|_| if_range.as_ref().is_none_or(|v| *v == tag));
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, body, extra) = match start {
        Some(s) if s < data.len() => (
            "206 Partial Content",
            &data[s..],
            format!("Content-Range: bytes {s}-{}/{}\r\n", data.len() - 1, data.len()),
        ),
        Some(_) => ("416 Range Not Satisfiable", &data[..0], String::new()),
        None => ("200 OK", &data[..], String::new()),
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}ETag: {tag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method == "HEAD" {
        return;
    }
    match fault {
        Some(Fault::Cut { after, .. }) => {
            let _ = out.write_all(&body[..after.min(body.len())]);
            let _ = out.flush();
            let _ = out.shutdown(std::net::Shutdown::Both);
        }
        _ => {
            let _ = out.write_all(body);
        }
    }
}

/// A server that accepts connections and reads the request, then sends nothing more than
/// `prefix` (nothing at all, or headers and the start of a body) and keeps the connection
/// open: a stalled upstream.
pub struct Stall {
    pub port: u16,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Stall {
    pub fn start(prefix: &[u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, sp, prefix) = (accepted.clone(), stop.clone(), prefix.to_vec());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = conn.write_all(&prefix);
                let _ = conn.flush();
                acc.lock().unwrap().push(conn);
            }
        });
        Self { port, accepted, stop }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
