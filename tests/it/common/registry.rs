//! The real distribution registry (Debian's `docker-registry`) on a loopback port, with its
//! storage in a test directory, and OCI images made by the tests and pushed with skopeo.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use airlock::digest::Digest;
use serde_json::json;

pub struct Registry {
    pub port: u16,
    pub root: PathBuf,
    child: Child,
}

impl Registry {
    pub fn start(dir: &Path) -> Self {
        Self::launch(dir, 0, "")
    }

    /// (Re)start on a given port, keeping the storage in `dir`.
    pub fn start_on(dir: &Path, port: u16) -> Self {
        Self::launch(dir, port, "")
    }

    /// (Re)start on `port`, keeping the storage in `dir`, sending its notifications (the
    /// `events` envelope) to `url` with `Authorization: Bearer <token>`.
    pub fn start_notifying(dir: &Path, port: u16, url: &str, token: &str) -> Self {
        Self::launch(
            dir,
            port,
            &format!(
                "notifications:\n  endpoints:\n    - name: watcher\n      url: {url}\n      headers:\n        Authorization: [\"Bearer {token}\"]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
            ),
        )
    }

    /// A registry that demands Basic auth (htpasswd) from every client.
    pub fn start_with_auth(dir: &Path, user: &str, password: &str) -> Self {
        super::require("htpasswd");
        std::fs::create_dir_all(dir).unwrap();
        let htpasswd = dir.join("htpasswd");
        super::sh(dir, &format!("htpasswd -Bbn {user} {password} > {}", htpasswd.display()));
        Self::launch(
            dir,
            0,
            &format!("auth:\n  htpasswd:\n    realm: airlock-test\n    path: {}\n", htpasswd.display()),
        )
    }

    /// Start on `port`; on port 0 the registry takes a free port itself, and the one it
    /// took is read back (no other test can take it in between).
    fn launch(dir: &Path, port: u16, extra: &str) -> Self {
        super::require("docker-registry");
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let conf = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), conf).unwrap();
        let log = dir.join("registry.log");
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("docker-registry starts");
        let port = super::daemon::port_of(&mut child, "docker-registry", &log, Duration::from_secs(15));
        Self { port, root: dir.to_path_buf(), child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Where the registry keeps a blob's bytes (to corrupt it on purpose).
    pub fn blob_data(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(&hex).join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A layer: an uncompressed tar holding one file.
pub fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, content).unwrap();
    b.into_inner().unwrap()
}

pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes OCI image layouts and pushes them with skopeo.
pub struct ImageMaker {
    dir: PathBuf,
}

impl ImageMaker {
    pub fn new(dir: &Path) -> Self {
        super::require("skopeo");
        Self { dir: dir.to_path_buf() }
    }

    fn put(&self, layout: &Path, bytes: &[u8]) -> (Digest, u64) {
        let d = Digest::of(bytes);
        let p = layout.join("blobs/sha256").join(d.hex());
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        (d, bytes.len() as u64)
    }

    /// An image for each (arch, layers); an index when there is more than one. Pushed to
    /// `registry/repo:tag`; returns the pushed top manifest digest.
    pub fn push(&self, registry: &str, repo: &str, tag: &str, platforms: &[(&str, Vec<Vec<u8>>)]) -> Digest {
        self.push_with(registry, repo, tag, platforms, "")
    }

    /// [`Self::push`], with more skopeo arguments (`--dest-creds user:password`).
    pub fn push_with(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        platforms: &[(&str, Vec<Vec<u8>>)],
        extra: &str,
    ) -> Digest {
        let layout = self.dir.join(format!("{}-{tag}", repo.replace('/', "_")));
        let _ = std::fs::remove_dir_all(&layout);
        std::fs::create_dir_all(&layout).unwrap();
        std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let mut descs = Vec::new();
        for (arch, layers) in platforms {
            let mut layer_descs = Vec::new();
            let mut diff_ids = Vec::new();
            for l in layers {
                let (d, size) = self.put(&layout, l);
                layer_descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": size}));
                diff_ids.push(d.to_string());
            }
            let config = serde_json::to_vec(&json!({
                "architecture": arch, "os": "linux", "config": {"Env": [format!("IMAGE={repo}:{tag}")]},
                "rootfs": {"type": "layers", "diff_ids": diff_ids}
            }))
            .unwrap();
            let (cd, cs) = self.put(&layout, &config);
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cs},
                "layers": layer_descs
            }))
            .unwrap();
            let (md, ms) = self.put(&layout, &manifest);
            descs.push(
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": ms,
                "platform": {"architecture": arch, "os": "linux"}}),
            );
        }
        let top = if descs.len() == 1 {
            let mut d = descs.remove(0);
            d.as_object_mut().unwrap().remove("platform");
            d
        } else {
            let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs})).unwrap();
            let (d, s) = self.put(&layout, &index);
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d.to_string(), "size": s})
        };
        let mut top_ref = top.clone();
        top_ref["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top_ref]})).unwrap(),
        )
        .unwrap();
        super::sh(
            &self.dir,
            &format!(
                "skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false {extra} oci:{}:{tag} docker://{registry}/{repo}:{tag}",
                layout.display()
            ),
        );
        top["digest"].as_str().unwrap().parse().unwrap()
    }
}

/// `skopeo inspect --raw` of a reference: the manifest bytes' digest.
pub fn remote_digest(reference: &str) -> Digest {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo inspect {reference}: {}", String::from_utf8_lossy(&out.stderr));
    Digest::of(&out.stdout)
}
