//! A real nginx on a loopback port, started by the test and stopped on drop: a static
//! file server with Range support (an upstream for `files:` URLs) and a WebDAV PUT
//! endpoint with Basic auth (a raw repository like Nexus raw-hosted).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    pub port: u16,
    pub root: PathBuf,
    child: Child,
}

pub const USER: &str = "airlock";
pub const PASSWORD: &str = "s3cret-pass";

impl Nginx {
    /// Serve `root` at `/`; `/upload/` accepts PUT and DELETE with Basic auth (USER/PASSWORD).
    pub fn start(work: &Path) -> Self {
        super::require("nginx");
        super::require("openssl");
        let root = work.join("www");
        std::fs::create_dir_all(root.join("upload")).unwrap();
        let hash = super::sh(work, &format!("openssl passwd -apr1 {PASSWORD}"));
        std::fs::write(work.join("htpasswd"), format!("{USER}:{}\n", hash.trim())).unwrap();
        let conf = |port: u16| {
            format!(
                r#"{head}
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /upload/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            auth_basic "raw";
            auth_basic_user_file {work}/htpasswd;
        }}
    }}
}}
"#,
                head = head(work),
                work = work.display(),
                root = root.display()
            )
        };
        Self::launch(work, conf, root.clone())
    }

    /// A reverse proxy to `upstream` (`host:port`) that sets each request header of
    /// `headers` to the value given, whatever the client sent.
    pub fn proxy(work: &Path, upstream: &str, headers: &[(&str, &str)]) -> Self {
        super::require("nginx");
        std::fs::create_dir_all(work).unwrap();
        let set: String = headers.iter().map(|(k, v)| format!("proxy_set_header {k} \"{v}\";\n")).collect();
        let conf = |port: u16| {
            format!(
                r#"{head}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            {set}
        }}
    }}
}}
"#,
                head = head(work),
            )
        };
        Self::launch(work, conf, work.to_path_buf())
    }

    /// Start nginx with the configuration `conf(port)` on a free port; nginx must be told
    /// its port, so it is started again on another one if the port is taken.
    fn launch(work: &Path, conf: impl Fn(u16) -> String, root: PathBuf) -> Self {
        let log = work.join("nginx-error.log");
        let (child, port) = super::daemon::start_on_free_port("nginx", &log, Duration::from_secs(10), |port| {
            std::fs::write(work.join("nginx.conf"), conf(port)).unwrap();
            Command::new("nginx")
                .arg("-p")
                .arg(work)
                .arg("-c")
                .arg(work.join("nginx.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap())
                .spawn()
                .expect("nginx starts")
        });
        Self { port, root, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The start of every configuration: one foreground process, its files under `work`, and
/// the opening of the `http` block.
fn head(work: &Path) -> String {
    format!(
        "daemon off;
master_process off;
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;",
        work = work.display()
    )
}
