//! Debian closures across real-shaped archives: a release suite whose indexes exist only
//! by hash (its plain paths stale, as on a mirror caught mid-sync), an updates suite from
//! another URL and keyring whose package depends on the release suite, and a security-like
//! suite without `binary-all` (listed in its Release, but neither served nor named in
//! `Architectures`). One `debian:` entry resolves across all three, for amd64 with arm64 as
//! a foreign architecture (a `Multi-Arch: foreign` arm64 package meets an amd64
//! dependency). apt-get, run against the upstream archives with an empty dpkg status, is
//! the oracle: after mirror, export, import and `airlock serve`, apt-get downloads exactly
//! the same closure from the site repository, in both layouts (`merged`, `as-upstream`).
//! Then `--apt-valid-for` puts `Valid-Until` in the site's Release, and apt refuses the
//! repository once it has passed; and a corrupt by-hash file is named with its hashes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlock::digest::Digest;

use crate::common::nginx::Nginx;
use crate::common::server::Server;
use crate::common::{TestContext, require, sh};
use crate::debian::{build_deb, gpg_home};

/// (archive, package, version, architecture, extra control fields)
const PACKAGES: &[(&str, &str, &str, &str, &str)] = &[
    ("debian", "app", "1.0", "amd64", "Depends: libbase (>= 1.0), helper-tool, docs-common\n"),
    ("debian", "app", "1.0", "arm64", "Depends: libbase (>= 1.0), helper-tool, docs-common\n"),
    ("debian", "libbase", "1.0", "amd64", "Multi-Arch: same\n"),
    ("debian", "libbase", "1.0", "arm64", "Multi-Arch: same\n"),
    // Built for arm64 only; Multi-Arch: foreign, so it meets amd64 dependencies too.
    ("debian", "helper-tool", "1.0", "arm64", "Multi-Arch: foreign\nDepends: libbase\n"),
    ("debian", "docs-common", "1.0", "all", ""),
    ("debian", "interp", "1.0", "amd64", "Multi-Arch: allowed\n"),
    ("debian", "interp", "1.0", "arm64", "Multi-Arch: allowed\n"),
    ("debian", "unrelated", "1.0", "all", ""),
    // The updates suite: a newer libbase, and a package that needs the release suite.
    ("updates", "libbase", "1.1", "amd64", "Multi-Arch: same\n"),
    ("updates", "libbase", "1.1", "arm64", "Multi-Arch: same\n"),
    ("updates", "upd-tool", "2.0", "amd64", "Depends: libbase (>= 1.1), interp:any, docs-common\n"),
    ("updates", "upd-tool", "2.0", "arm64", "Depends: libbase (>= 1.1), interp:any, docs-common\n"),
    // The security suite: a docs-common that beats the release's, a libbase that does not
    // beat the updates' one.
    ("security", "docs-common", "1.0+sec1", "all", ""),
    ("security", "libbase", "1.0+sec1", "amd64", "Multi-Arch: same\n"),
    ("security", "libbase", "1.0+sec1", "arm64", "Multi-Arch: same\n"),
];

const ROOTS: &str = "app upd-tool";

/// How one suite is published.
struct Suite<'a> {
    archive: &'a str,
    name: &'a str,
    /// The `Architectures:` field.
    architectures: &'a str,
    extra_fields: &'a str,
    /// `by-hash/SHA256/<hex>` copies of every index.
    by_hash: bool,
    /// Overwrite the plain index paths with an older generation afterwards.
    stale_plain: bool,
    /// List `binary-all` in the Release but serve no such files.
    phantom_all: bool,
}

const SUITES: &[Suite] = &[
    Suite {
        archive: "debian",
        name: "rel",
        architectures: "amd64 arm64 all",
        extra_fields: "Acquire-By-Hash: yes\n",
        by_hash: true,
        stale_plain: true,
        phantom_all: false,
    },
    Suite {
        archive: "updates",
        name: "rel-updates",
        architectures: "amd64 arm64 all",
        extra_fields: "",
        by_hash: false,
        stale_plain: false,
        phantom_all: false,
    },
    // By-hash is announced but not served: apt (and airlock) fall back to the plain paths.
    Suite {
        archive: "security",
        name: "rel-security",
        architectures: "amd64 arm64",
        extra_fields: "Acquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\n",
        by_hash: false,
        stale_plain: false,
        phantom_all: true,
    },
];

/// Index a suite with dpkg-scanpackages, write its Release and sign it with `gnupg`.
fn publish(archive: &Path, s: &Suite, gnupg: &Path) {
    let mut sums = String::new();
    for arch in ["amd64", "arm64", "all"] {
        let rel = format!("main/binary-{arch}");
        let dir = archive.join("dists").join(s.name).join(&rel);
        std::fs::create_dir_all(&dir).unwrap();
        sh(
            archive,
            &format!(
                "dpkg-scanpackages --multiversion --arch {arch} pool 2>/dev/null > {d}/Packages && xz -kf {d}/Packages && gzip -kf9n {d}/Packages",
                d = dir.display()
            ),
        );
        for f in ["Packages", "Packages.gz", "Packages.xz"] {
            let bytes = std::fs::read(dir.join(f)).unwrap();
            let d = Digest::of(&bytes);
            sums.push_str(&format!(" {} {} {rel}/{f}\n", d.hex(), bytes.len()));
            if s.by_hash {
                std::fs::create_dir_all(dir.join("by-hash/SHA256")).unwrap();
                std::fs::write(dir.join("by-hash/SHA256").join(d.hex()), &bytes).unwrap();
            }
        }
        if s.stale_plain {
            // The previous generation: only the first stanza.
            let text = std::fs::read_to_string(dir.join("Packages")).unwrap();
            let first = text.split("\n\n").next().unwrap().to_string();
            std::fs::write(dir.join("Packages"), format!("{first}\n")).unwrap();
            sh(&dir, "xz -kf Packages && gzip -kf9n Packages");
        }
        if s.phantom_all && arch == "all" {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    let release = format!(
        "Origin: Test\nLabel: Test\nSuite: {n}\nCodename: {n}\nDate: Sat, 07 Apr 2018 14:41:12 UTC\nArchitectures: {}\nComponents: main\n{}SHA256:\n{sums}",
        s.architectures,
        s.extra_fields,
        n = s.name
    );
    let dists = archive.join("dists").join(s.name);
    std::fs::write(dists.join("Release"), release).unwrap();
    sh(
        &dists,
        &format!(
            "export GNUPGHOME={}; gpg --batch --quiet --clearsign --digest-algo SHA512 -o InRelease Release && gpg --batch --quiet -abs --digest-algo SHA512 -o Release.gpg Release",
            gnupg.display()
        ),
    );
}

/// Three archives on one nginx, each with its own signing key.
struct Upstream {
    nginx: Nginx,
    work: PathBuf,
    homes: Vec<PathBuf>,
}

impl Upstream {
    fn new(cx: &TestContext) -> Self {
        for t in ["dpkg-deb", "dpkg-scanpackages", "xz", "gzip", "gpg", "gpgv", "apt-get"] {
            require(t);
        }
        let work = cx.path("upstream");
        std::fs::create_dir_all(&work).unwrap();
        let nginx = Nginx::start(&work);
        let mut homes = Vec::new();
        for s in SUITES {
            let home = gpg_home(&work, &format!("gnupg-{}", s.archive));
            sh(
                &work,
                &format!("GNUPGHOME={} gpg --export --armor > {}/{}.asc", home.display(), work.display(), s.archive),
            );
            let archive = nginx.root.join(s.archive);
            for &(a, name, version, arch, extra) in PACKAGES.iter().filter(|p| p.0 == s.archive) {
                build_deb(&work, &archive.join(format!("pool/main/{name}")), (name, version, arch, extra), a);
            }
            publish(&archive, s, &home);
            homes.push(home);
        }
        Self { nginx, work, homes }
    }

    fn keyring(&self, archive: &str) -> PathBuf {
        self.work.join(format!("{archive}.asc"))
    }

    /// A `sources:` list naming the three archives.
    fn sources_yaml(&self) -> String {
        SUITES
            .iter()
            .map(|s| {
                format!(
                    "      - {{url: {}, suites: [{}], keyring: {}}}\n",
                    self.nginx.url(&format!("/{}", s.archive)),
                    s.name,
                    self.keyring(s.archive).display()
                )
            })
            .collect()
    }

    /// sources.list lines for apt-get against the upstream archives.
    fn sources_list(&self) -> String {
        SUITES
            .iter()
            .map(|s| {
                format!(
                    "deb [signed-by={}] {} {} main\n",
                    self.keyring(s.archive).display(),
                    self.nginx.url(&format!("/{}", s.archive)),
                    s.name
                )
            })
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for h in &self.homes {
            let _ = std::process::Command::new("gpgconf").env("GNUPGHOME", h).args(["--kill", "gpg-agent"]).status();
        }
    }
}

/// apt-get with a private configuration, state, cache and an empty dpkg status, for
/// `native` with `foreign` as an extra architecture. Returns a runner of apt-get
/// arguments (exit status, output).
fn apt(cx: &TestContext, name: &str, native: &str, foreign: &str, sources: &str) -> impl Fn(&str) -> (bool, String) {
    let d = cx.path(&format!("apt-{name}"));
    let conf = crate::common::apt::private(&d, sources, native, &[foreign]);
    move |args: &str| {
        let o = std::process::Command::new("apt-get")
            .args(["-q"])
            .args(args.split_whitespace())
            .env("APT_CONFIG", &conf)
            .output()
            .unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

/// apt-get update + install --download-only of ROOTS; the .deb files it downloaded.
fn apt_closure(cx: &TestContext, name: &str, native: &str, foreign: &str, sources: &str) -> BTreeSet<String> {
    let run = apt(cx, name, native, foreign, sources);
    for args in ["update", &format!("install -y --download-only --no-install-recommends {ROOTS}")] {
        let (ok, out) = run(args);
        assert!(ok, "apt-get {args} ({name}) failed:\n{out}");
        assert!(!out.contains("W: "), "apt-get {args} ({name}) warned:\n{out}");
    }
    std::fs::read_dir(cx.path(&format!("apt-{name}/cache/archives")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deb"))
        .collect()
}

fn locked_files(entry: &serde_json::Value) -> BTreeSet<String> {
    entry["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}_{}_{}.deb",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn overlay_suites_resolve_to_apts_closure() {
    let cx = TestContext::new();
    cx.key();
    let up = Upstream::new(&cx);

    // apt's own closure, against the upstream archives, for each native architecture.
    let apt_amd64 = apt_closure(&cx, "up-amd64", "amd64", "arm64", &up.sources_list());
    let apt_arm64 = apt_closure(&cx, "up-arm64", "arm64", "amd64", &up.sources_list());
    // What the fixture exercises, as apt sees it: the arm64 helper (Multi-Arch: foreign)
    // and its arm64 dependency in the amd64 closure; libbase from the updates suite (the
    // highest version of three suites), docs-common from the security suite.
    for want in ["helper-tool_1.0_arm64.deb", "libbase_1.1_arm64.deb", "libbase_1.1_amd64.deb", "interp_1.0_amd64.deb"]
    {
        assert!(apt_amd64.contains(want), "{want} not in apt's amd64 closure {apt_amd64:?}");
    }
    assert!(apt_arm64.contains("docs-common_1.0+sec1_all.deb") && apt_arm64.contains("upd-tool_2.0_arm64.deb"));

    // One entry over the three archives, in each layout.
    let entry = |name: &str, layout: &str| {
        format!(
            "  - name: {name}\n    layout: {layout}\n    architectures: [amd64, arm64]\n    packages: [{}]\n    sources:\n{}",
            ROOTS.replace(' ', ", "),
            up.sources_yaml()
        )
    };
    let spec = cx.spec(&format!(
        "name: suites\nversion: \"1\"\ndebian:\n{}{}",
        entry("site", "merged"),
        entry("by-suite", "as-upstream")
    ));
    let out = cx.bundle(&spec, "out", &[]);
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(spec.with_extension("lock")).unwrap()).unwrap();
    let union: BTreeSet<String> = apt_amd64.union(&apt_arm64).cloned().collect();
    for e in lock["debian"].as_array().unwrap() {
        assert_eq!(locked_files(e), union, "the lock of `{}` is apt's closure", e["name"]);
    }
    // Each package records the suite (and archive) it was chosen from.
    let site = &lock["debian"][0];
    let origin = |name: &str, arch: &str| {
        let p =
            site["packages"].as_array().unwrap().iter().find(|p| p["package"] == name && p["arch"] == arch).unwrap();
        (p["suite"].as_str().unwrap().to_string(), p["upstream"].as_str().map(String::from))
    };
    assert_eq!(origin("libbase", "amd64"), ("rel-updates".into(), Some(up.nginx.url("/updates"))));
    assert_eq!(origin("docs-common", "all"), ("rel-security".into(), Some(up.nginx.url("/security"))));
    assert_eq!(origin("app", "amd64"), ("rel".into(), None), "from the entry's first archive");
    assert_eq!(site["upstream"], up.nginx.url("/debian"));
    assert_eq!(lock["debian"][1]["layout"], "as-upstream");
    assert!(site.get("layout").is_none(), "merged is the default and is not written");

    // Import with Valid-Until, serve, and let apt-get fetch from the site.
    cx.run(&["key", "apt", "generate", "--no-password"]).ok();
    cx.run(&["key", "apt", "export", "-o", cx.dir.path().to_str().unwrap(), "--name", "site-keyring"]).ok();
    let keyring = cx.path("site-keyring.asc");
    let bundle = out.join("suites-1.airlock");
    let receipt = cx.run(&["--json", "import", bundle.to_str().unwrap(), "--apt-valid-for", "1h"]).ok().json();
    assert_eq!(receipt["apt"]["suites"], serde_json::json!(["rel", "rel-security", "rel-updates", "site"]));
    let srv = Server::start(&cx, &[]);
    let url = srv.url("/repository/apt");
    let merged = format!("deb [signed-by={}] {url} site main\n", keyring.display());
    let as_upstream: String =
        SUITES.iter().map(|s| format!("deb [signed-by={}] {url} {} main\n", keyring.display(), s.name)).collect();
    assert_eq!(apt_closure(&cx, "site-amd64", "amd64", "arm64", &merged), apt_amd64);
    assert_eq!(apt_closure(&cx, "site-arm64", "arm64", "amd64", &merged), apt_arm64);
    assert_eq!(apt_closure(&cx, "suites-amd64", "amd64", "arm64", &as_upstream), apt_amd64);
    assert_eq!(apt_closure(&cx, "suites-arm64", "arm64", "amd64", &as_upstream), apt_arm64);
    // as-upstream: each site suite holds what was chosen from the upstream suite.
    let repo = cx.store().join("repository/apt/dists");
    let rel = std::fs::read_to_string(repo.join("rel/main/binary-amd64/Packages")).unwrap();
    assert!(rel.contains("Package: app\n") && !rel.contains("Package: libbase\n"), "{rel}");

    // Valid-Until: an hour after Date, then (re-imported with 1s) expired for apt.
    let release = std::fs::read_to_string(repo.join("site/Release")).unwrap();
    let field = |r: &str, f: &str| {
        let v = r.lines().find_map(|l| l.strip_prefix(&format!("{f}: "))).unwrap_or_else(|| panic!("no {f}:\n{r}"));
        airlock::debian::parse_release_date(v).unwrap()
    };
    assert_eq!(field(&release, "Valid-Until") - field(&release, "Date"), 3600, "{release}");
    cx.run(&["import", bundle.to_str().unwrap(), "--apt-valid-for", "1s"]).ok();
    let release = std::fs::read_to_string(repo.join("site/Release")).unwrap();
    let until = field(&release, "Valid-Until");
    assert_eq!(until - field(&release, "Date"), 1);
    let run = apt(&cx, "site-amd64", "amd64", "arm64", &merged);
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    while now() <= until + 1 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (ok, text) = run("update");
    assert!(!ok && text.contains("is expired"), "apt-get update should refuse an expired Release:\n{text}");
    let (ok, text) = run("-o Acquire::Check-Valid-Until=false update");
    assert!(ok, "the expiry was the only problem:\n{text}");
    drop(srv);

    // A by-hash copy with other bytes: named by its URL, with the file and hash the
    // signed Release lists for it, and the hash it has (a fresh cache, which does not
    // hold the good copy).
    let dir = up.nginx.root.join("debian/dists/rel/main/binary-amd64");
    let release = std::fs::read_to_string(up.nginx.root.join("debian/dists/rel/Release")).unwrap();
    let xz = release.lines().find(|l| l.ends_with("main/binary-amd64/Packages.xz")).unwrap();
    let hex = xz.split_whitespace().next().unwrap();
    std::fs::write(dir.join("by-hash/SHA256").join(hex), b"not the index").unwrap();
    let cache = cx.path("cache-tampered");
    let run = cx
        .run(&["mirror", "-f", spec.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap(), "--retries", "0"])
        .fails(
            2,
            &format!(
                "/debian/dists/rel/main/binary-amd64/by-hash/SHA256/{hex}: the Release of suite `rel` lists main/binary-amd64/Packages.xz as SHA256 {hex}"
            ),
        );
    // The stand-in is shorter than the Release says: refused by its size, before it is read.
    assert!(run.stderr.contains("the server announces 13 bytes"), "{}", run.stderr);
}
