//! Debian packages into a real aptly (`aptly api serve`, started here with its own config,
//! root and gpg key): import → aptly's signed publish (served by nginx) → apt-get downloads
//! the closure; a differential bundle updates the publish; a conflicting package is
//! refused before anything is uploaded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::nginx::Nginx;
use crate::common::{TestContext, require, sh};
use crate::debian::{CLOSURE_AMD64, PACKAGES, Upstream, apt, archives, build_deb, gpg_home, publish};

struct AptlyServer {
    child: Child,
    port: u16,
    gnupg: PathBuf,
    /// aptly's `public/` directory, served by nginx at `/aptly`.
    web: Nginx,
    client: reqwest::blocking::Client,
}

impl AptlyServer {
    fn start(cx: &TestContext) -> Self {
        require("aptly");
        let work = cx.path("aptly");
        std::fs::create_dir_all(work.join("root/public")).unwrap();
        let gnupg = gpg_home(&work, "gnupg");
        let config = work.join("aptly.conf");
        std::fs::write(
            &config,
            serde_json::to_vec_pretty(&serde_json::json!({
                "rootDir": work.join("root"),
                "gpgProvider": "gpg",
                "architectures": [],
            }))
            .unwrap(),
        )
        .unwrap();
        let log = work.join("aptly.log");
        let (child, port) = crate::common::daemon::start_on_free_port("aptly", &log, Duration::from_secs(20), |port| {
            Command::new("aptly")
                .args(["api", "serve", "-no-lock", "-listen", &format!("127.0.0.1:{port}"), "-config"])
                .arg(&config)
                .env("GNUPGHOME", &gnupg)
                .stdout(Stdio::null())
                .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap())
                .spawn()
                .expect("aptly starts")
        });
        let web_work = work.join("web");
        std::fs::create_dir_all(&web_work).unwrap();
        let web = Nginx::start(&web_work);
        std::os::unix::fs::symlink(work.join("root/public"), web.root.join("aptly")).unwrap();
        airlock::net::install_tls_provider();
        Self { child, port, gnupg, web, client: reqwest::blocking::Client::new() }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let resp = self.client.get(format!("{}/api/{path}", self.url())).send().unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        serde_json::from_slice(&resp.bytes().unwrap()).unwrap()
    }

    /// The repository's packages, as aptly lists them (`Pamd64 name version hash`), sorted.
    fn packages(&self, repo: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .get(&format!("repos/{repo}/packages"))
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// The server's public key, for apt's Signed-By.
    fn keyring(&self, dest: &Path) {
        sh(dest.parent().unwrap(), &format!("GNUPGHOME={} gpg --export > {}", self.gnupg.display(), dest.display()));
    }
}

impl Drop for AptlyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("gpgconf").env("GNUPGHOME", &self.gnupg).args(["--kill", "gpg-agent"]).status();
    }
}

#[test]
fn aptly_publishes_what_apt_get_installs() {
    let cx = TestContext::new();
    cx.key();
    let up = Upstream::new(&cx);
    let aptly = AptlyServer::start(&cx);
    let url = aptly.url();
    let import = |bundle: &Path, extra: &[&str]| {
        let mut args = vec!["--json", "import", bundle.to_str().unwrap(), "--apt-aptly", url.as_str()];
        args.extend(extra);
        cx.run(&args)
    };

    let spec = up.spec(&cx, "debian", &[("site", &["hello-app"], &["amd64", "arm64"])]);
    let out1 = cx.bundle(&spec, "out1", &[]);
    let bundle1 = out1.join("debs-1.airlock");

    // Without --apt-aptly-create, a missing repository is refused with nothing changed.
    import(&bundle1, &[]).fails(2, "--apt-aptly-create");
    assert_eq!(aptly.get("repos"), serde_json::json!([]));

    let receipt = import(&bundle1, &["--apt-aptly-create"]).ok().json();
    assert_eq!(receipt["added"], 8, "{receipt}");
    assert!(receipt["apt"].is_null(), "the store's apt repository is not written: {receipt}");
    assert!(!cx.store().join("repository/apt").exists());
    assert_eq!(aptly.packages("airlock").len(), 8);
    assert_eq!(aptly.get("files"), serde_json::json!([]), "the upload directory is gone");

    // apt-get, from aptly's signed publish served by nginx, downloads the closure.
    let keyring = cx.path("aptly-keyring.gpg");
    aptly.keyring(&keyring);
    let site = aptly.web.url("/aptly");
    let amd64 = apt(&cx, "amd64", "amd64", &site, &keyring);
    amd64("update");
    amd64("install -y --download-only --no-install-recommends hello-app");
    assert_eq!(archives(&cx, "amd64"), CLOSURE_AMD64);
    let arm64 = apt(&cx, "arm64", "arm64", &site, &keyring);
    arm64("update");
    arm64("install -y --download-only hello-app");
    assert!(archives(&cx, "arm64").contains(&"hello-app_2.0_arm64.deb".to_string()));

    // The same bundle again: everything is present, nothing changes.
    let again = import(&bundle1, &[]).ok().json();
    assert_eq!((again["added"].as_u64(), again["present"].as_u64()), (Some(0), Some(8)), "{again}");

    // A failure after aptly loaded (here: the store cannot record the bundle's manifest)
    // takes back what the import added and publishes the repository again as it was.
    let packages_file = aptly.web.root.join("aptly/dists/site/main/binary-amd64/Packages");
    let (listed, index) = (aptly.packages("airlock"), std::fs::read(&packages_file).unwrap());
    // Upstream gains libgreet 1.3; a differential bundle carries it and second-app, and
    // the import updates the publish: apt-get now gets the new version.
    build_deb(&up.work, &up.archive("debian").join("pool/main/libgreet"), ("libgreet", "1.3", "amd64", ""), "");
    publish(&up.archive("debian"), &up.gnupg);
    let spec = up.spec(&cx, "debian", &[("site", &["hello-app", "second-app"], &["amd64", "arm64"])]);
    let out2 = cx.bundle(&spec, "out2", &["--since", bundle1.to_str().unwrap(), "--version", "2"]);
    let bundle2 = out2.join("debs-2.airlock");
    let manifest =
        cx.run(&["--json", "verify", bundle2.to_str().unwrap()]).ok().json()["manifest"].as_str().unwrap().to_string();
    let blocker = cx.store().join("manifests").join(format!("{}.json", manifest.trim_start_matches("sha256:")));
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let failed = import(&bundle2, &[]).fails(2, "rolled back");
    assert!(failed.stderr.contains("2 debian"), "{}", failed.stderr);
    assert_eq!(aptly.packages("airlock"), listed);
    assert_eq!(std::fs::read(&packages_file).unwrap(), index);
    assert_eq!(aptly.get("files"), serde_json::json!([]));
    std::fs::remove_dir_all(&blocker).unwrap();

    let receipt = import(&bundle2, &[]).ok().json();
    assert_eq!(receipt["added"], 2, "{receipt}");
    let listed = aptly.packages("airlock");
    assert_eq!(listed.len(), 10, "{listed:?}");
    assert!(listed.iter().any(|p| p.starts_with("Pamd64 libgreet 1.3 ")), "{listed:?}");
    // apt-get refuses a Release whose Date did not move on; aptly's has one-second resolution.
    std::thread::sleep(Duration::from_secs(1));
    amd64("update");
    amd64("install -y --download-only hello-app second-app");
    let got = archives(&cx, "amd64");
    assert!(
        got.contains(&"libgreet_1.3_amd64.deb".to_string()) && got.contains(&"second-app_1.0_all.deb".to_string()),
        "{got:?}"
    );

    // second-app rebuilt with other bytes under the same name and version: refused before
    // anything is uploaded, naming the package and both SHA-256s.
    let before = aptly.packages("airlock");
    let release = std::fs::read(aptly.web.root.join("aptly/dists/site/Release")).unwrap();
    let other = up.copy("other");
    build_deb(&up.work, &other.join("pool/main/second-app"), PACKAGES[12], "rebuilt");
    publish(&other, &up.gnupg);
    let spec3 = up.spec(&cx, "other", &[("site", &["second-app"], &["amd64"])]);
    let out3 = cx.bundle(&spec3, "out3", &["--version", "3"]);
    let rebuilt =
        airlock::digest::Digest::of(&std::fs::read(other.join("pool/main/second-app/second-app_1.0_all.deb")).unwrap());
    let run = import(&out3.join("debs-3.airlock"), &[]).fails(2, "conflict");
    assert!(run.stderr.contains("second-app 1.0 (all)") && run.stderr.contains(&rebuilt.hex()), "{}", run.stderr);
    assert_eq!(aptly.packages("airlock"), before);
    assert_eq!(aptly.get("files"), serde_json::json!([]), "nothing was uploaded");
    assert_eq!(std::fs::read(aptly.web.root.join("aptly/dists/site/Release")).unwrap(), release);
}

/// A stand-in for a Nexus apt-hosted repository (tests/data/nexus/apt_hosted.py): no Nexus
/// runs on this machine.
struct NexusStandIn {
    child: Child,
    port: u16,
    work: PathBuf,
}

impl NexusStandIn {
    fn start(cx: &TestContext) -> Self {
        require("python3");
        let work = cx.path("nexus");
        std::fs::create_dir_all(&work).unwrap();
        let log = work.join("nexus.log");
        let mut child = Command::new("python3")
            .arg(crate::common::root().join("tests/data/nexus/apt_hosted.py"))
            .arg(work.join("repo"))
            .args(["site", crate::common::nginx::USER, crate::common::nginx::PASSWORD])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let port = crate::common::daemon::port_of(&mut child, "nexus stand-in", &log, Duration::from_secs(10));
        Self { child, port, work }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/repository/apt-hosted/", self.port)
    }

    fn uploads(&self) -> usize {
        std::fs::read_to_string(self.work.join("uploads.log")).unwrap_or_default().lines().count()
    }
}

impl Drop for NexusStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nexus_apt_hosted_gets_each_package_once_and_conflicts_are_refused() {
    let cx = TestContext::new();
    cx.key();
    let up = Upstream::new(&cx);
    let nexus = NexusStandIn::start(&cx);
    let url = nexus.url();
    let auth = [
        ("AIRLOCK_APT_USERNAME", crate::common::nginx::USER),
        ("AIRLOCK_APT_PASSWORD", crate::common::nginx::PASSWORD),
    ];
    let import = |bundle: &Path, env: &[(&str, &str)]| {
        cx.run_env(&["--json", "import", bundle.to_str().unwrap(), "--apt-nexus", url.as_str()], env)
    };
    let spec = up.spec(&cx, "debian", &[("site", &["hello-app"], &["amd64", "arm64"])]);
    let bundle1 = cx.bundle(&spec, "out1", &[]).join("debs-1.airlock");

    // Without credentials the upload is refused, and the error says what to check.
    import(&bundle1, &[]).fails(2, "AIRLOCK_APT_PASSWORD");
    let receipt = import(&bundle1, &auth).ok().json();
    assert_eq!(receipt["added"], 8, "{receipt}");
    assert_eq!(nexus.uploads(), 8);
    let index = std::fs::read_to_string(nexus.work.join("repo/dists/site/main/binary-amd64/Packages")).unwrap();
    assert!(index.contains("Package: hello-app\nVersion: 2.0\nArchitecture: amd64"), "{index}");

    // Again: all present, nothing uploaded.
    let again = import(&bundle1, &auth).ok().json();
    assert_eq!((again["added"].as_u64(), again["present"].as_u64()), (Some(0), Some(8)), "{again}");
    assert_eq!(nexus.uploads(), 8);

    // alt-two rebuilt with other bytes under its name, version and arch: refused before any upload.
    let other = up.copy("other");
    build_deb(&up.work, &other.join("pool/main/alt-two"), PACKAGES[7], "rebuilt");
    publish(&other, &up.gnupg);
    let spec3 = up.spec(&cx, "other", &[("site", &["hello-app", "second-app"], &["amd64"])]);
    let bundle3 = cx.bundle(&spec3, "out3", &["--version", "3"]).join("debs-3.airlock");
    let run = import(&bundle3, &auth).fails(2, "conflict");
    assert!(run.stderr.contains("alt-two 1.0 (all)"), "{}", run.stderr);
    assert_eq!(nexus.uploads(), 8, "nothing was uploaded, not even second-app");
}
