//! A TCP proxy on a loopback port in front of a real server, that "stops the server" at a
//! chosen point: after a given number of bytes from the client it cuts every connection
//! and refuses new ones, until resumed. Deterministic, unlike killing a process mid-run.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub struct Proxy {
    pub port: u16,
    down: Arc<AtomicBool>,
    budget: Arc<AtomicI64>,
    /// Whether the marker still brings the "server" down.
    armed: Arc<AtomicBool>,
}

/// When the "server" goes away.
#[derive(Clone)]
struct Limit {
    down: Arc<AtomicBool>,
    budget: Arc<AtomicI64>,
    /// Also as soon as a client sends these bytes (a request for some path), while armed.
    marker: Option<Arc<Vec<u8>>>,
    armed: Arc<AtomicBool>,
}

impl Proxy {
    /// Forward to `127.0.0.1:upstream`; go down after `budget` client bytes.
    pub fn start(upstream: u16, budget: i64) -> Self {
        Self::with(upstream, budget, None)
    }

    /// Forward to `127.0.0.1:upstream`; go down as a client sends `marker` (say
    /// `/manifests/`: the first request for a manifest), before it reaches the server.
    pub fn start_until(upstream: u16, marker: &str) -> Self {
        Self::with(upstream, i64::MAX, Some(Arc::new(marker.as_bytes().to_vec())))
    }

    fn with(upstream: u16, budget: i64, marker: Option<Arc<Vec<u8>>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicI64::new(budget));
        let armed = Arc::new(AtomicBool::new(true));
        let (d, b, a) = (down.clone(), left.clone(), armed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let limit = Limit { down: d.clone(), budget: b.clone(), marker: marker.clone(), armed: a.clone() };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, Some(limit)));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Self { port, down, budget: left, armed }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Bring the "server" back.
    pub fn resume(&self) {
        self.budget.store(i64::MAX, Ordering::SeqCst);
        self.armed.store(false, Ordering::SeqCst);
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<Limit>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(Limit { down, budget, marker, armed }) = &limit
            && (down.load(Ordering::SeqCst)
                || budget.fetch_sub(n as i64, Ordering::SeqCst) <= n as i64
                || (armed.load(Ordering::SeqCst)
                    && marker.as_ref().is_some_and(|m| buf[..n].windows(m.len()).any(|w| w == m.as_slice()))))
        {
            down.store(true, Ordering::SeqCst);
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
