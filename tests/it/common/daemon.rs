//! Starting real daemons on loopback ports without racing other tests for the port.
//!
//! Binding port 0, reading the port and dropping the socket before a daemon binds it
//! leaves a window in which another test can take the port: the daemon then fails to
//! start, or worse, the test talks to another test's server. So a daemon that accepts
//! port 0 is started on port 0 and the port it took is read from the kernel
//! ([`port_of`]); one that needs a port named ([`start_on_free_port`]) is started on a
//! free one and counts as started only once the kernel says that the daemon itself
//! listens there; if another process holds the port, or the daemon exits, it is
//! started again on another port, a bounded number of times.
//!
//! Who listens where is read from `/proc/net/tcp` and `/proc/<pid>/fd` (Linux).

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// How many ports a daemon is tried on before the test fails.
const ATTEMPTS: usize = 5;

/// The inodes of the sockets listening on `port` (any local address), per
/// `/proc/net/tcp{,6}`.
fn listeners(port: Option<u16>) -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some(p) = f[1].rsplit(':').next().and_then(|h| u16::from_str_radix(h, 16).ok()) else { continue };
            let Ok(inode) = f[9].parse::<u64>() else { continue };
            if inode != 0 && port.is_none_or(|want| want == p) {
                out.push((p, inode));
            }
        }
    }
    out
}

/// The socket inodes process `pid` has open.
fn sockets_of(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// Who listens on `port`, as seen from `pid`.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Nobody,
    It,
    Another,
}

fn owner(pid: u32, port: u16) -> Owner {
    let held = listeners(Some(port));
    if held.is_empty() {
        return Owner::Nobody;
    }
    let mine = sockets_of(pid);
    if held.iter().any(|(_, inode)| mine.contains(inode)) { Owner::It } else { Owner::Another }
}

/// The port a daemon started on port 0 listens on, once it does. Panics, pointing at
/// `log`, if it exits first or takes longer than `deadline`.
#[track_caller]
pub fn port_of(child: &mut Child, what: &str, log: &Path, deadline: Duration) -> u16 {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited ({status}) before it listened: see {}", log.display());
        }
        let mine = sockets_of(child.id());
        if let Some((port, _)) = listeners(None).into_iter().find(|(_, inode)| mine.contains(inode)) {
            return port;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("{what} did not listen within {deadline:?}: see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start a daemon that must be told its port: `spawn(port)` starts it on `port`, which
/// was free a moment before. Returns the daemon and its port once the daemon itself
/// listens there. If it exits, or another process holds the port, it is killed and
/// started again on another port, up to [`ATTEMPTS`] times.
#[track_caller]
pub fn start_on_free_port(
    what: &str,
    log: &Path,
    deadline: Duration,
    mut spawn: impl FnMut(u16) -> Child,
) -> (Child, u16) {
    let mut tried = Vec::new();
    for _ in 0..ATTEMPTS {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = spawn(port);
        let until = Instant::now() + deadline;
        let outcome = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break format!("exited ({status})");
            }
            match owner(child.id(), port) {
                Owner::It => return (child, port),
                Owner::Another => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break "found the port taken".to_string();
                }
                Owner::Nobody => {}
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not listen on {port} within {deadline:?}: see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        tried.push(format!("{port}: {outcome}"));
    }
    panic!("{what} could not be started on {ATTEMPTS} ports ({}): see {}", tried.join(", "), log.display());
}

/// A loopback port where a connection is refused, and stays refused while the test
/// runs: one below 1024, which binding port 0 never hands out and no test binds.
pub fn closed_port() -> u16 {
    (1..1024u16)
        .find(|&p| {
            listeners(Some(p)).is_empty()
                && std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], p).into(), Duration::from_secs(1))
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
        .expect("a closed port below 1024")
}

#[test]
fn a_daemon_is_not_fooled_by_a_port_someone_else_holds() {
    // The first port tried is taken (by this test) before the daemon binds it: it is
    // started again elsewhere, and the port returned is the daemon's own.
    let mut taken = Vec::new();
    let (mut child, port) =
        start_on_free_port("python3 -m http.server", Path::new("/dev/null"), Duration::from_secs(20), |port| {
            if taken.is_empty() {
                taken.push(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
            }
            std::process::Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        });
    assert_ne!(port, taken[0].local_addr().unwrap().port());
    assert_eq!(owner(child.id(), port), Owner::It);
    let _ = child.kill();
    let _ = child.wait();
    let refused = closed_port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", refused)).is_err());
}
