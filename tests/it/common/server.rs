//! `airlock serve` started on an ephemeral port for a test, with a write token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use airlock::digest::Digest;

use super::TestContext;

/// The write token every test server accepts.
pub const TOKEN: &str = "a-long-enough-test-token-1234";

pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(cx: &TestContext, extra: &[&str]) -> Self {
        Self::start_env(cx, extra, &[])
    }

    /// With these environment variables set for the server.
    pub fn start_env(cx: &TestContext, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let hashes = cx.path("tokens");
        std::fs::write(&hashes, format!("# writers\nsha256:{}\n", Digest::of(TOKEN.as_bytes()).hex())).unwrap();
        let mut child = cx
            .command()
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0", "--token-hashes", hashes.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .split_whitespace()
            .nth(2)
            .expect("listening on ADDR")
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        Self { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
