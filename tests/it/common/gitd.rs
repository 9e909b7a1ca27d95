//! Upstream git repositories made by the tests, served by a real `git daemon` on a
//! loopback port (git:// protocol), stopped on drop.
//!
//! The test holds the listening socket and hands each connection to `git daemon
//! --inetd` (as inetd would), so no other test can take the port between choosing it and
//! serving it.

use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct GitDaemon {
    pub port: u16,
    pub base: PathBuf,
    stop: Arc<AtomicBool>,
    children: Arc<Mutex<Vec<Child>>>,
}

impl GitDaemon {
    /// Serve every repository under `base` read-only.
    pub fn start(base: &Path) -> Self {
        super::require("git");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let children: Arc<Mutex<Vec<Child>>> = Arc::new(Mutex::new(Vec::new()));
        let (sp, kids, base_dir) = (stop.clone(), children.clone(), base.to_path_buf());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let Ok(out) = conn.try_clone() else { continue };
                let child = Command::new("git")
                    .args(["daemon", "--inetd", "--export-all", "--log-destination=none"])
                    .arg(format!("--base-path={}", base_dir.display()))
                    .arg(&base_dir)
                    .stdin(Stdio::from(OwnedFd::from(conn)))
                    .stdout(Stdio::from(OwnedFd::from(out)))
                    .stderr(Stdio::null())
                    // Its own process group: `git daemon` runs `git-daemon` as a child,
                    // and both must go when the test ends.
                    .process_group(0)
                    .spawn()
                    .expect("git daemon starts");
                let mut kids = kids.lock().unwrap();
                kids.retain_mut(|c| c.try_wait().ok().flatten().is_none());
                kids.push(child);
            }
        });
        Self { port, base: base.to_path_buf(), stop, children }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for mut c in self.children.lock().unwrap().drain(..) {
            if c.try_wait().ok().flatten().is_none() {
                let group = format!("-{}", c.id());
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run git in `dir` with a fixed identity and clock; returns trimmed stdout.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Upstream Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@upstream.example")
        .env("GIT_COMMITTER_NAME", "Upstream Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@upstream.example")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with two branches, a merge, an annotated and a lightweight tag, release
/// tags, and a file of a few MB. Returns its path (a non-bare repo; git daemon serves it).
pub fn make_upstream(dir: &Path) -> PathBuf {
    let repo = dir.join("service");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "service\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);
    git(&repo, &["tag", "-a", "17.0.0", "-m", "release 17.0.0"]);
    git(&repo, &["checkout", "-qb", "stable/2024.1"]);
    std::fs::write(repo.join("fix.txt"), "backport\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "backport a fix"]);
    git(&repo, &["tag", "18.0.0"]);
    git(&repo, &["checkout", "-q", "main"]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(repo.join("data.bin"), big).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "add data"]);
    git(&repo, &["merge", "-q", "--no-edit", "stable/2024.1"]);
    git(&repo, &["tag", "-a", "18.1.0", "-m", "release 18.1.0"]);
    repo
}
