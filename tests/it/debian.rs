//! Debian: a real upstream apt archive (built with dpkg-deb and dpkg-scanpackages, signed
//! with gpg, served by nginx) → mirror → export → verify → import → `airlock serve` →
//! apt-get (with gpgv) installs the closure's files from the site's signed repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::nginx::Nginx;
use crate::common::server::Server;
use crate::common::{TestContext, require, sh};

/// (package, version, architecture, extra control fields)
pub(crate) const PACKAGES: &[(&str, &str, &str, &str)] = &[
    (
        "hello-app",
        "1.0",
        "amd64",
        "Depends: libgreet (>= 1.1), mta-virtual, alt-one | alt-two, vprov (>= 2)\nPre-Depends: greet-base:any\n",
    ),
    (
        "hello-app",
        "2.0",
        "amd64",
        "Depends: libgreet (>= 1.1), mta-virtual, alt-one | alt-two, vprov (>= 2)\nPre-Depends: greet-base:any\n",
    ),
    (
        "hello-app",
        "2.0",
        "arm64",
        "Depends: libgreet (>= 1.1), mta-virtual, alt-one | alt-two, vprov (>= 2)\nPre-Depends: greet-base:any\n",
    ),
    ("libgreet", "1.0", "amd64", ""),
    ("libgreet", "1.2", "amd64", ""),
    ("libgreet", "1.2", "arm64", ""),
    ("mail-thing", "1.0", "all", "Provides: mta-virtual\n"),
    ("alt-two", "1.0", "all", ""),
    ("greet-base", "1.0", "all", "Multi-Arch: allowed\n"),
    ("vprov-old", "9.0", "all", "Provides: vprov\n"),
    ("vprov-impl", "1.0", "all", "Provides: vprov (= 3)\n"),
    ("unrelated", "1.0", "all", ""),
    ("second-app", "1.0", "all", "Depends: libgreet\n"),
];

/// The amd64 closure of hello-app, as apt must download it.
pub(crate) const CLOSURE_AMD64: &[&str] = &[
    "alt-two_1.0_all.deb",
    "greet-base_1.0_all.deb",
    "hello-app_2.0_amd64.deb",
    "libgreet_1.2_amd64.deb",
    "mail-thing_1.0_all.deb",
    "vprov-impl_1.0_all.deb",
];

pub(crate) fn build_deb(work: &Path, pool: &Path, (name, version, arch, extra): (&str, &str, &str, &str), salt: &str) {
    let dir = work.join(format!("build/{name}_{version}_{arch}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(dir.join(format!("usr/share/doc/{name}"))).unwrap();
    std::fs::write(dir.join(format!("usr/share/doc/{name}/README")), format!("{name} {version} {arch} {salt}\n"))
        .unwrap();
    std::fs::write(
        dir.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <test@example.org>\n{extra}Description: test package {name}\n A package built by airlock's tests.\n"
        ),
    )
    .unwrap();
    let dest = pool.join(format!("{name}_{version}_{arch}.deb"));
    std::fs::create_dir_all(pool).unwrap();
    sh(work, &format!("dpkg-deb --root-owner-group -Zgzip --build {} {} >/dev/null", dir.display(), dest.display()));
}

/// gpg in a private home: a throwaway ed25519 key. Returns GNUPGHOME.
pub(crate) fn gpg_home(work: &Path, name: &str) -> PathBuf {
    require("gpg");
    let home = work.join(name);
    std::fs::create_dir_all(&home).unwrap();
    sh(
        work,
        &format!(
            "chmod 700 {h} && GNUPGHOME={h} gpg --batch --quiet --passphrase '' --quick-gen-key 'Upstream {name} <{name}@example.org>' ed25519 sign never 2>/dev/null",
            h = home.display()
        ),
    );
    home
}

/// Write Packages indexes, Release and its signatures for `archive` (dists/stable, main).
pub(crate) fn publish(archive: &Path, gnupg: &Path) {
    let mut sums = String::new();
    for arch in ["amd64", "arm64"] {
        let rel = format!("main/binary-{arch}");
        let dir = archive.join("dists/stable").join(&rel);
        std::fs::create_dir_all(&dir).unwrap();
        sh(
            archive,
            &format!(
                "dpkg-scanpackages --multiversion --arch {arch} pool 2>/dev/null > {d}/Packages && xz -kf {d}/Packages && gzip -kf9 {d}/Packages",
                d = dir.display()
            ),
        );
        for f in ["Packages", "Packages.gz", "Packages.xz"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            sums.push_str(&format!(" {} {} {rel}/{f}\n", airlock::digest::Digest::of(&bytes).hex(), bytes.len()));
        }
    }
    let release = format!(
        "Origin: Test\nLabel: Test\nSuite: stable\nCodename: testing-codename\nDate: Sat, 07 Apr 2018 14:41:12 UTC\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n{sums}"
    );
    let dists = archive.join("dists/stable");
    std::fs::write(dists.join("Release"), release).unwrap();
    sh(
        &dists,
        &format!(
            "export GNUPGHOME={}; rm -f InRelease Release.gpg; gpg --batch --quiet --clearsign --digest-algo SHA512 -o InRelease Release && gpg --batch --quiet -abs --digest-algo SHA512 -o Release.gpg Release",
            gnupg.display()
        ),
    );
}

pub(crate) struct Upstream {
    pub(crate) nginx: Nginx,
    pub(crate) work: PathBuf,
    pub(crate) gnupg: PathBuf,
}

impl Upstream {
    /// A signed archive at `/debian` holding PACKAGES.
    pub(crate) fn new(cx: &TestContext) -> Self {
        for t in ["dpkg-deb", "dpkg-scanpackages", "xz", "gzip", "gpg", "gpgv", "apt-get"] {
            require(t);
        }
        let work = cx.path("upstream");
        std::fs::create_dir_all(&work).unwrap();
        let nginx = Nginx::start(&work);
        let gnupg = gpg_home(&work, "gnupg");
        sh(&work, &format!("GNUPGHOME={} gpg --export --armor > {}/upstream.asc", gnupg.display(), work.display()));
        let archive = nginx.root.join("debian");
        for p in PACKAGES {
            build_deb(&work, &archive.join(format!("pool/main/{}", p.0)), *p, "");
        }
        publish(&archive, &gnupg);
        Self { nginx, work, gnupg }
    }

    pub(crate) fn archive(&self, name: &str) -> PathBuf {
        self.nginx.root.join(name)
    }

    /// A copy of the archive at `/<name>`, to tamper with.
    pub(crate) fn copy(&self, name: &str) -> PathBuf {
        let dest = self.archive(name);
        crate::common::copy_dir(&self.archive("debian"), &dest);
        dest
    }

    pub(crate) fn spec(&self, cx: &TestContext, archive: &str, entries: &[(&str, &[&str], &[&str])]) -> PathBuf {
        let mut y = String::from("name: debs\nversion: \"1\"\ndebian:\n");
        for (name, packages, arches) in entries {
            y.push_str(&format!(
                "  - name: {name}\n    url: {}\n    suites: [stable]\n    components: [main]\n    architectures: [{}]\n    keyring: {}/upstream.asc\n    packages: [{}]\n",
                self.nginx.url(&format!("/{archive}")),
                arches.join(", "),
                self.work.display(),
                packages.join(", ")
            ));
        }
        cx.spec(&y)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new("gpgconf").env("GNUPGHOME", &self.gnupg).args(["--kill", "gpg-agent"]).status();
    }
}

/// apt-get with a private configuration, state and cache, for one architecture, trusting
/// only `keyring` for the site repository at `url`.
pub(crate) fn apt(
    cx: &TestContext,
    name: &str,
    arch: &str,
    url: &str,
    keyring: &Path,
) -> impl Fn(&str) -> String + use<> {
    let d = cx.path(&format!("apt-{name}"));
    let sources = format!("deb [arch={arch} signed-by={}] {url} site main\n", keyring.display());
    crate::common::apt::private(&d, &sources, arch, &[]);
    move |args: &str| sh(&d, &format!("APT_CONFIG={}/apt.conf apt-get -q {args} 2>&1", d.display()))
}

pub(crate) fn archives(cx: &TestContext, name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cx.path(&format!("apt-{name}/cache/archives")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deb"))
        .collect();
    v.sort();
    v
}

/// Every file of the apt repository and its bytes.
fn snapshot(cx: &TestContext) -> BTreeMap<String, Vec<u8>> {
    let root = cx.store().join("repository/apt");
    walkdir::WalkDir::new(&root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(&root).unwrap().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn apt_installs_the_closure_from_a_bundle() {
    let cx = TestContext::new();
    cx.key();
    let up = Upstream::new(&cx);

    // Mirror: the closure per architecture, with the choices recorded in the lock.
    let spec = up.spec(&cx, "debian", &[("site", &["hello-app"], &["amd64", "arm64"])]);
    let out = cx.bundle(&spec, "out1", &[]);
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let entry = &lock["debian"][0];
    let mut locked: Vec<String> = entry["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}_{}_{}",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            )
        })
        .collect();
    locked.sort();
    assert_eq!(
        locked,
        [
            "alt-two_1.0_all",
            "greet-base_1.0_all",
            "hello-app_2.0_amd64",
            "hello-app_2.0_arm64",
            "libgreet_1.2_amd64",
            "libgreet_1.2_arm64",
            "mail-thing_1.0_all",
            "vprov-impl_1.0_all"
        ]
    );
    assert_eq!(entry["alternatives"][0]["relation"], "alt-one | alt-two");
    assert_eq!(entry["alternatives"][0]["chosen"], "alt-two 1.0 (all)");
    assert_eq!(entry["releases"][0]["file"], "InRelease");
    let bundle1 = out.join("debs-1.airlock");
    cx.run(&["verify", bundle1.to_str().unwrap()]).ok();
    let manifest = cx.run(&["--json", "inspect", bundle1.to_str().unwrap()]).ok().stdout;
    assert!(manifest.contains("pkg:deb/debian/hello-app@2.0?arch=amd64"), "{manifest}");

    // Import needs the site's apt key.
    cx.run(&["import", bundle1.to_str().unwrap()]).fails(2, "airlock key apt generate");
    assert!(!cx.store().join("repository/apt").exists());
    cx.run(&["key", "apt", "generate", "--no-password"]).ok();
    let keyring = cx.path("site-keyring.gpg");
    cx.run(&["key", "apt", "export", "-o", cx.dir.path().to_str().unwrap(), "--name", "site-keyring"]).ok();
    let receipt = cx.run(&["--json", "import", bundle1.to_str().unwrap()]).ok().json();
    assert_eq!(receipt["apt"]["suites"], serde_json::json!(["site"]));
    let repo = cx.store().join("repository/apt");
    let release = std::fs::read_to_string(repo.join("dists/site/Release")).unwrap();
    assert!(
        release.contains("Architectures: amd64 arm64\n") && release.contains("main/binary-arm64/Packages.xz"),
        "{release}"
    );
    // gpgv (what apt runs) accepts the site's signatures.
    sh(
        &repo.join("dists/site"),
        &format!(
            "gpgv --keyring {} InRelease 2>&1 && gpgv --keyring {} Release.gpg Release 2>&1",
            keyring.display(),
            keyring.display()
        ),
    );

    // apt-get, through `airlock serve`, downloads exactly the closure, per architecture.
    let srv = Server::start(&cx, &[]);
    let url = format!("http://{}/repository/apt", srv.addr);
    let amd64 = apt(&cx, "amd64", "amd64", &url, &keyring);
    amd64("update");
    amd64("install -y --download-only --no-install-recommends hello-app");
    assert_eq!(archives(&cx, "amd64"), CLOSURE_AMD64);
    let arm64 = apt(&cx, "arm64", "arm64", &url, &cx.path("site-keyring.asc"));
    arm64("update");
    arm64("install -y --download-only hello-app");
    assert!(archives(&cx, "arm64").contains(&"hello-app_2.0_arm64.deb".to_string()));
    assert!(archives(&cx, "arm64").contains(&"libgreet_1.2_arm64.deb".to_string()));

    // A second, differential bundle adds second-app; what the first carried stays.
    let spec = up.spec(&cx, "debian", &[("site", &["hello-app", "second-app"], &["amd64", "arm64"])]);
    let out2 = cx.bundle(&spec, "out2", &["--since", bundle1.to_str().unwrap(), "--version", "2"]);
    let bundle2 = out2.join("debs-2.airlock");
    let m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cx.path("out2.unpacked-manifest")).unwrap()).unwrap();
    assert_eq!(m2["blobs"].as_array().map(Vec::len), Some(1), "only second-app's .deb travels: {m2}");
    let locked = crate::common::Locked::of(&spec);
    assert_eq!(m2["artifacts"].as_array().map(Vec::len), Some(locked.debian), "every package of the lock is listed");
    cx.run(&["import", bundle2.to_str().unwrap()]).ok();
    amd64("update");
    amd64("install -y --download-only hello-app second-app");
    let got = archives(&cx, "amd64");
    assert!(
        got.contains(&"second-app_1.0_all.deb".to_string()) && got.contains(&"hello-app_2.0_amd64.deb".to_string()),
        "{got:?}"
    );

    // A bundle whose second-app has other bytes under the same name and version is refused,
    // and the repository is left exactly as it was.
    let before = snapshot(&cx);
    let other = up.copy("other");
    build_deb(&up.work, &other.join("pool/main/second-app"), PACKAGES[12], "rebuilt");
    publish(&other, &up.gnupg);
    let cx_other_spec = up.spec(&cx, "other", &[("site", &["second-app"], &["amd64"])]);
    let out3 = cx.bundle(&cx_other_spec, "out3", &["--version", "3"]);
    cx.run(&["import", out3.join("debs-3.airlock").to_str().unwrap()]).fails(2, "already has");
    assert_eq!(snapshot(&cx), before);
    drop(srv);
}

#[test]
fn upstream_tampering_is_refused() {
    let cx = TestContext::new();
    let up = Upstream::new(&cx);
    let mirror = |archive: &str| {
        let spec = up.spec(&cx, archive, &[("site", &["hello-app"], &["amd64"])]);
        // A cache per archive: a blob already cached under the digest the Release names
        // is (rightly) never fetched again, which would hide the tampering.
        let cache = cx.path(&format!("cache-{archive}"));
        cx.run(&[
            "mirror",
            "-f",
            spec.to_str().unwrap(),
            "--backoff",
            "10ms",
            "--retries",
            "0",
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
    };

    // A changed InRelease no longer verifies.
    let a = up.copy("tampered");
    let inrelease = a.join("dists/stable/InRelease");
    let text = std::fs::read_to_string(&inrelease).unwrap().replace("Label: Test", "Label: Evil");
    std::fs::write(&inrelease, text).unwrap();
    mirror("tampered").fails(2, "suite `stable`: http://");
    mirror("tampered").fails(2, "/tampered/dists/stable/InRelease: no good signature");

    // A Release signed by a key the keyring does not hold.
    let b = up.copy("stranger");
    let stranger = gpg_home(&up.work, "stranger");
    publish(&b, &stranger);
    let _ = std::process::Command::new("gpgconf").env("GNUPGHOME", &stranger).args(["--kill", "gpg-agent"]).status();
    mirror("stranger").fails(2, "not by any key in");

    // No InRelease and no Release.gpg: unsigned.
    let c = up.copy("unsigned");
    std::fs::remove_file(c.join("dists/stable/InRelease")).unwrap();
    std::fs::remove_file(c.join("dists/stable/Release.gpg")).unwrap();
    mirror("unsigned").fails(2, "the suite is not signed");

    // Release + Release.gpg alone is fine.
    let d = up.copy("detached");
    std::fs::remove_file(d.join("dists/stable/InRelease")).unwrap();
    mirror("detached").ok();

    // A Packages index that differs from what the signed Release says.
    let e = up.copy("badindex");
    let idx = e.join("dists/stable/main/binary-amd64");
    std::fs::write(idx.join("Packages"), "Package: evil\n").unwrap();
    sh(&idx, "xz -kf Packages && gzip -kf9 Packages");
    mirror("badindex").fails(2, "the Release of suite `stable` lists main/binary-amd64/Packages.xz as SHA256");

    // A .deb whose bytes differ from its Packages SHA256: refused, and not cached.
    let f = up.copy("baddeb");
    let deb = f.join("pool/main/libgreet/libgreet_1.2_amd64.deb");
    build_deb(&up.work, &f.join("pool/main/libgreet"), PACKAGES[4], "evil");
    let evil = airlock::digest::Digest::of(&std::fs::read(&deb).unwrap());
    let run = mirror("baddeb").fails(2, "libgreet_1.2_amd64.deb");
    // Refused by its announced size before a byte is read when it is not the size its
    // Packages entry gives, else by its digest, which the error then shows.
    let evil_size = std::fs::metadata(&deb).unwrap().len();
    let listed =
        std::fs::metadata(up.archive("debian").join("pool/main/libgreet/libgreet_1.2_amd64.deb")).unwrap().len();
    let why = if evil_size == listed { evil.hex() } else { format!("the server announces {evil_size} bytes") };
    assert!(run.stderr.contains("sha256 mismatch") && run.stderr.contains(&why), "{}", run.stderr);
    assert!(!cx.path("cache-baddeb/blobs/sha256").join(evil.hex()).exists());
    assert!(cx.path("cache-baddeb/blobs/sha256").read_dir().unwrap().count() > 0, "the other debs were cached");

    // An unsatisfiable dependency names the package, the architecture and what was seen.
    let g = up.copy("broken");
    std::fs::remove_dir_all(g.join("pool/main/alt-two")).unwrap();
    publish(&g, &up.gnupg);
    mirror("broken").fails(2, "hello-app 2.0 (amd64) on amd64 depends on `alt-one | alt-two`, which nothing satisfies");
}
