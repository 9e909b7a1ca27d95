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
}

impl Proxy {
    /// Forward to `127.0.0.1:upstream`; go down after `budget` client bytes.
    pub fn start(upstream: u16, budget: i64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicI64::new(budget));
        let (d, b) = (down.clone(), left.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let (d1, b1) = (d.clone(), b.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, Some((d1, b1))));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Self { port, down, budget: left }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Bring the "server" back.
    pub fn resume(&self) {
        self.budget.store(i64::MAX, Ordering::SeqCst);
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, limit: Option<(Arc<AtomicBool>, Arc<AtomicI64>)>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((down, budget)) = &limit
            && (down.load(Ordering::SeqCst) || budget.fetch_sub(n as i64, Ordering::SeqCst) <= n as i64)
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
