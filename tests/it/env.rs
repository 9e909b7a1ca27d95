//! `airlock env`: each configuration it writes, used by the real client it is for, against
//! a real `airlock serve` on loopback holding the imported fixture bundle (plus a git
//! repository mirrored from a `git daemon` that is stopped before any client runs):
//! Debian's own pip and uv install with only the generated file; the constraints file
//! holds them to the bundle's versions when the index offers newer ones; apt-get updates
//! from the deb822 sources and the key written beside them; skopeo resolves the upstream
//! image name through registries.conf; git clones the upstream URL through insteadOf;
//! kolla-build.conf is read by configparser and by kolla-build itself; every URL of the
//! Zuul variables is one the server answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::gitd::{GitDaemon, git, make_upstream};
use crate::common::server::{Server, TOKEN};
use crate::common::{TestContext, require, root, sh};

struct World {
    cx: TestContext,
    srv: Server,
    url: String,
    bundle: PathBuf,
    /// The git repository's upstream URL (its server is stopped).
    git_upstream: String,
}

/// The fixtures plus a git repository served by `git daemon`, mirrored, exported,
/// imported and served; the git daemon is gone by the time this returns.
fn world() -> World {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let up = cx.path("upstream");
    make_upstream(&up);
    let daemon = GitDaemon::start(&up);
    let git_upstream = daemon.url("service");
    let yaml = std::fs::read_to_string(&spec).unwrap();
    let yaml = yaml.replacen("git:\n", &format!("git:\n  - url: {git_upstream}\n    name: service\n"), 1);
    std::fs::write(&spec, yaml).unwrap();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    cx.run(&["import", bundle.to_str().unwrap()]).ok();
    drop(daemon);
    let srv = Server::start(&cx, &[]);
    let url = srv.url("");
    World { cx, srv, url, bundle, git_upstream }
}

impl World {
    /// `airlock env --for CLIENT --url URL ARGS... -o FILE`; returns the file's path and
    /// stderr (the notes).
    #[track_caller]
    fn env(&self, client: &str, file: &str, extra: &[&str]) -> (PathBuf, String) {
        let out = self.cx.path(file);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let mut args = vec!["env", "--for", client, "--url", &self.url, "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let run = self.cx.run(&args).ok();
        assert!(run.stdout.is_empty(), "with -o nothing goes to stdout: {}", run.stdout);
        (out, run.stderr)
    }
}

/// `/usr/bin/python3 -m venv`: the pip Debian bundles (23.0.1 on bookworm), not upgraded.
fn debian_venv(dir: &Path) -> PathBuf {
    let out = Command::new("/usr/bin/python3").arg("-m").arg("venv").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "Debian's python3-venv is needed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("bin/python3")
}

/// A command with a clean environment: no pip, uv or git configuration but what it is given.
fn clean(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear().env("PATH", std::env::var_os("PATH").unwrap()).env("HOME", home);
    c
}

#[track_caller]
fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installed distributions in a `--target` directory: normalized name -> version.
fn installed(target: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(target)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_str()?.strip_suffix(".dist-info")?.to_string();
            let (n, v) = name.split_once('-')?;
            Some((n.replace(['_', '.'], "-").to_ascii_lowercase(), v.to_string()))
        })
        .collect()
}

/// The pins of a constraints file.
fn pins(file: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (n, v) = l.split_once("==").unwrap_or_else(|| panic!("not name==version: {l}"));
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn pip_and_uv_install_with_only_the_generated_config_and_constraints_hold_the_bundle_versions() {
    let w = world();
    let cx = &w.cx;
    let venv = cx.path("debian-venv");
    let maker = std::thread::spawn(move || debian_venv(&venv));
    let (pip_conf, _) = w.env("pip", "conf/pip.conf", &[]);
    let (uv_toml, _) = w.env("uv", "conf/uv.toml", &[]);
    let (constraints, _) = w.env("constraints", "conf/constraints.txt", &[]);
    let pinned = pins(&constraints);
    assert_eq!(pinned.get("aldemo-app").map(String::as_str), Some("2.0"), "{pinned:?}");
    let python = maker.join().unwrap();
    let home = cx.path("home");
    let pip = |target: &str, extra: &[&Path]| {
        let mut c = clean(&python, &home);
        c.args(["-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input", "--target"])
            .arg(cx.path(target))
            .env("PIP_CONFIG_FILE", &pip_conf);
        for f in extra {
            c.arg("-c").arg(f);
        }
        let out = c.arg("aldemo-app").output().unwrap();
        succeeded(&format!("pip install into {target}"), &out);
        installed(&cx.path(target))
    };
    let version = succeeded("pip --version", &clean(&python, &home).args(["-m", "pip", "--version"]).output().unwrap());
    assert!(version.starts_with("pip 23.0"), "bookworm's venv bundles pip 23.0.1, this one: {version}");

    // Debian's pip and uv, with nothing but the generated file: what they install is the
    // bundle's, version for version.
    let by_pip = pip("t-pip", &[]);
    require("uv");
    let out = clean("uv", &home)
        .args(["pip", "install", "--python"])
        .arg(&python)
        .arg("--target")
        .arg(cx.path("t-uv"))
        .arg("aldemo-app")
        .env("UV_CONFIG_FILE", &uv_toml)
        .env("UV_CACHE_DIR", cx.path("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    succeeded("uv pip install", &out);
    let by_uv = installed(&cx.path("t-uv"));
    // The shell forms: the same installs with only the exported variables.
    let (pip_sh, _) = w.env("pip", "conf/pip.sh", &["--format", "shell"]);
    let (uv_sh, _) = w.env("uv", "conf/uv.sh", &["--format", "shell"]);
    let script = format!(
        ". {pip_sh} && PIP_CONFIG_FILE=/dev/null {py} -m pip install -q --no-cache-dir --disable-pip-version-check \
         --target {t1} aldemo-app && . {uv_sh} && uv pip install -q --no-config --python {py} --target {t2} aldemo-app",
        pip_sh = pip_sh.display(),
        uv_sh = uv_sh.display(),
        py = python.display(),
        t1 = cx.path("t-pip-sh").display(),
        t2 = cx.path("t-uv-sh").display()
    );
    let out = clean("bash", &home)
        .args(["-euc", &script])
        .env("UV_CACHE_DIR", cx.path("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    succeeded("pip and uv with the shell forms", &out);
    assert_eq!(installed(&cx.path("t-pip-sh")), by_pip);
    assert_eq!(installed(&cx.path("t-uv-sh")), by_uv);
    for (who, got) in [("pip", &by_pip), ("uv", &by_uv)] {
        assert!(got.contains_key("aldemo-app") && got.contains_key("aldemo-lib"), "{who}: {got:?}");
        for (name, v) in got {
            assert_eq!(pinned.get(name), Some(v), "{who} installed {name} {v}, which the bundle does not pin");
        }
    }

    // The index then gets a newer aldemo-lib (an upload): pip takes it, unless held by the
    // constraints file, which gives exactly the bundle's versions again.
    require("twine");
    let newer = crate::installers::wheel(&cx.path("newer"), "aldemo-lib", "9.0", &[]);
    let out = clean("twine", &home)
        .args(["upload", "--non-interactive", "--disable-progress-bar", "--repository-url"])
        .arg(w.srv.url("/repository/pypi/"))
        .args(["-u", "__token__", "-p", TOKEN])
        .arg(cx.path("newer/files").join(newer))
        .output()
        .unwrap();
    succeeded("twine upload", &out);
    assert_eq!(pip("t-newer", &[]).get("aldemo-lib").map(String::as_str), Some("9.0"), "the upload is offered");
    let held = pip("t-held", &[&constraints]);
    assert_eq!(held.get("aldemo-lib"), pinned.get("aldemo-lib"), "{held:?}");
    for (name, v) in &held {
        assert_eq!(pinned.get(name), Some(v), "with -c, {name} {v} is not the bundle's");
    }
    assert_eq!(held, by_pip, "the constraints reproduce the bundle's install exactly");
}

#[test]
fn apt_skopeo_git_and_docker_reach_the_site_through_the_generated_files() {
    let w = world();
    let cx = &w.cx;
    let home = cx.path("home");

    // apt: the deb822 sources and the key they name, both written by airlock env.
    let apt = cx.path("apt");
    let conf = crate::common::apt::private(&apt, "", "amd64", &[]);
    let key = apt.join("keyrings/airlock.asc");
    let (sources, notes) = w.env(
        "apt",
        "apt/sources.d/airlock.sources",
        &["--key-out", key.to_str().unwrap(), "--signed-by", key.to_str().unwrap()],
    );
    assert!(notes.contains("Signed-By names"), "{notes}");
    let text = std::fs::read_to_string(&sources).unwrap();
    assert!(
        text.contains(&format!("URIs: {}/repository/apt\n", w.url)) && text.contains("Suites: fixtures\n"),
        "{text}"
    );
    let mut c = std::fs::read_to_string(&conf).unwrap();
    c.push_str(&format!("Dir::Etc::sourceparts \"{}\";\n", sources.parent().unwrap().display()));
    std::fs::write(&conf, c).unwrap();
    let apt_get = |args: &[&str]| {
        Command::new("apt-get").args(args).env("APT_CONFIG", &conf).env("LC_ALL", "C").output().unwrap()
    };
    let update = apt_get(&["update"]);
    let log = succeeded("apt-get update", &update) + &String::from_utf8_lossy(&update.stderr);
    assert!(!log.contains("W:") && !log.contains("E:"), "apt-get update warned:\n{log}");
    let got = apt_get(&["install", "-y", "--download-only", "hello-app"]);
    succeeded("apt-get install --download-only hello-app", &got);
    assert!(
        std::fs::read_dir(apt.join("cache/archives")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("hello-app_")),
        "the package came from the site"
    );

    // containers: the upstream name resolves to the site's registry.
    require("skopeo");
    let (registries, _) = w.env("containers", "conf/registries.conf", &[]);
    let skopeo = |conf: &Path| {
        clean("timeout", &home)
            .args(["60", "skopeo", "--registries-conf"])
            .arg(conf)
            .args(["inspect", "--raw", "docker://fixtures.example/hello/hello:1.0"])
            .output()
            .unwrap()
    };
    let raw = succeeded("skopeo inspect through registries.conf", &skopeo(&registries));
    let tag = std::fs::read_to_string(cx.store().join("oci/hello/hello/tags/1.0")).unwrap();
    assert_eq!(airlock::digest::Digest::of(raw.as_bytes()).to_string(), tag.trim(), "the site's manifest");
    std::fs::write(cx.path("conf/empty.conf"), "").unwrap();
    assert!(!skopeo(&cx.path("conf/empty.conf")).status.success(), "without it the upstream name goes nowhere");

    // git: the upstream URL (its server stopped) is cloned from the site.
    let (gitconfig, _) = w.env("git", "conf/site.gitconfig", &[]);
    let head = git(&cx.store().join("git/service.git"), &["rev-parse", "HEAD"]);
    for (i, url) in [w.git_upstream.clone(), format!("{}.git", w.git_upstream)].iter().enumerate() {
        let dest = cx.path(&format!("clone-{i}"));
        let out = clean("git", &home)
            .args(["clone", "-q", url])
            .arg(&dest)
            .env("GIT_CONFIG_GLOBAL", &gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        succeeded(&format!("git clone {url}"), &out);
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]), head);
        assert_eq!(git(&dest, &["remote", "get-url", "origin"]), *url, "the clone keeps the upstream name");
    }
    // The shell form: `git config --global` commands, run into an empty global file.
    let (git_sh, _) = w.env("git", "conf/git.sh", &["--format", "shell"]);
    let global = cx.path("conf/from-shell.gitconfig");
    std::fs::write(&global, "").unwrap();
    let out = clean("bash", &home)
        .args([
            "-euc",
            &format!(". {} && git clone -q {} {}", git_sh.display(), w.git_upstream, cx.path("clone-sh").display()),
        ])
        .env("GIT_CONFIG_GLOBAL", &global)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    succeeded("git config commands, then git clone", &out);
    assert_eq!(git(&cx.path("clone-sh"), &["rev-parse", "HEAD"]), head);
    let out = clean("git", &home)
        .args(["ls-remote", &w.git_upstream])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the upstream itself is gone");

    // docker: a daemon.json, and its limits said on stderr.
    let (daemon, notes) = w.env("docker", "conf/daemon.json", &[]);
    let d: serde_json::Value = serde_json::from_slice(&std::fs::read(daemon).unwrap()).unwrap();
    assert_eq!(d["registry-mirrors"][0], w.url.as_str());
    assert_eq!(d["insecure-registries"][0], w.srv.addr.as_str());
    assert!(notes.contains("only to images of Docker Hub") && notes.contains("fixtures.example"), "{notes}");
}

#[test]
fn kolla_build_reads_its_conf_and_every_zuul_url_is_answered() {
    let w = world();
    let cx = &w.cx;
    let home = cx.path("home");
    let (conf, _) = w.env(
        "kolla-build",
        "conf/kolla-build.conf",
        &["--kolla-base", "fixtures.example/hello/hello", "--kolla-distro", "debian"],
    );
    let read = sh(
        cx.dir.path(),
        &format!(
            "/usr/bin/python3 -c 'import configparser, json, sys; c = configparser.ConfigParser(); c.read_file(open(sys.argv[1])); \
             print(json.dumps({{s: dict(c[s]) for s in [\"DEFAULT\"] + c.sections()}}))' {}",
            conf.display()
        ),
    );
    let ini: serde_json::Value = serde_json::from_str(&read).unwrap();
    let site = &w.srv.addr;
    assert_eq!(ini["DEFAULT"]["base"], "debian");
    assert_eq!(ini["DEFAULT"]["base_image"], format!("{site}/hello/hello"));
    assert_eq!(ini["DEFAULT"]["base_tag"], "1.0");
    assert_eq!(ini["DEFAULT"]["registry"], site.as_str());
    assert_eq!(ini["DEFAULT"]["namespace"], "kolla");
    assert_eq!(ini["hello-base"]["type"], "url");
    let location = ini["hello-base"]["location"].as_str().unwrap();
    let fetched = sh(cx.dir.path(), &format!("curl -sf {location} | sha256sum"));
    assert!(fetched.starts_with("551befd9b46d0f6d48e27154c6a1ca126b7134b776d619b5bf72dc90355d758e"), "{fetched}");

    // kolla-build itself (from PyPI, in scripts/test.sh's kolla venv) renders its
    // Dockerfiles from the site's base image and registry.
    let kolla = root().join("target/test-tools/kolla/bin/kolla-build");
    assert!(kolla.is_file(), "{} is missing: run scripts/test.sh (it installs kolla)", kolla.display());
    let work = cx.path("kolla-work");
    let out = clean(&kolla, &home)
        .arg("--config-file")
        .arg(&conf)
        .args(["--template-only", "--work-dir"])
        .arg(&work)
        .arg("^base$")
        .output()
        .unwrap();
    succeeded("kolla-build --template-only", &out);
    let dockerfile = std::fs::read_to_string(work.join("docker/base/Dockerfile")).unwrap();
    assert_eq!(dockerfile.lines().next(), Some(format!("FROM {site}/hello/hello:1.0").as_str()), "{dockerfile}");

    // Zuul's site variables: the bundle as its manifest names it, and every URL answered.
    let (zuul, _) = w.env("zuul", "conf/site-vars.yaml", &[]);
    let vars: serde_json::Value = yaml_serde::from_str(&std::fs::read_to_string(&zuul).unwrap()).unwrap();
    let manifest = airlock::digest::Digest::of(&std::fs::read(cx.path("out.unpacked-manifest")).unwrap());
    assert_eq!(vars["airlock_bundle_name"], "fixtures");
    assert_eq!(vars["airlock_bundle_version"], "1.0");
    assert_eq!(vars["airlock_bundle_manifest"], manifest.to_string());
    let get = |url: &str| sh(cx.dir.path(), &format!("curl -s -o /dev/null -w '%{{http_code}}' '{url}'"));
    let s = |k: &str| vars[k].as_str().unwrap_or_else(|| panic!("{k} missing: {vars}")).to_string();
    let mut urls = vec![
        s("airlock_pypi_index_url") + "aldemo-app/",
        s("airlock_apt_url") + "/dists/fixtures/InRelease",
        s("airlock_apt_key_url"),
        format!("http://{}/v2/", s("airlock_registry")),
    ];
    for (upstream, local) in vars["airlock_images"].as_object().unwrap() {
        assert!(upstream.starts_with("fixtures.example/"), "{upstream}");
        let (repo, tag) = local.as_str().unwrap().split_once('/').unwrap().1.rsplit_once(':').unwrap();
        urls.push(format!("http://{}/v2/{repo}/manifests/{tag}", s("airlock_registry")));
    }
    for repo in vars["airlock_git_repos"].as_object().unwrap().values() {
        urls.push(format!("{}/info/refs?service=git-upload-pack", repo["url"].as_str().unwrap()));
    }
    for url in vars["airlock_files"].as_object().unwrap().values() {
        urls.push(url.as_str().unwrap().to_string());
    }
    assert!(urls.len() >= 10, "{urls:?}");
    for url in &urls {
        assert_eq!(get(url), if url.ends_with("/v2/") { "401" } else { "200" }, "{url}");
    }
    assert_eq!(vars["airlock_git_repos"]["service"]["upstream"], w.git_upstream.as_str());

    // The same from the bundle alone as from the store.
    let from_bundle = cx
        .run(&[
            "env",
            "--for",
            "zuul",
            "--url",
            &w.url,
            "--bundle",
            w.bundle.to_str().unwrap(),
            "--store",
            "/nonexistent",
        ])
        .ok();
    let b: serde_json::Value = yaml_serde::from_str(&from_bundle.stdout).unwrap();
    for k in ["airlock_bundle_manifest", "airlock_pypi_index_url", "airlock_images", "airlock_files", "airlock_apt_url"]
    {
        assert_eq!(b[k], vars[k], "{k}");
    }
    let json = cx.run(&["--json", "env", "--for", "zuul", "--url", &w.url]).ok().json();
    assert_eq!(json["airlock_bundle_manifest"], manifest.to_string());

    // An environment of site.yaml names the store (whatever AIRLOCK_STORE says) and the
    // raw repository its imports wrote to.
    let site = cx.path("site.yaml");
    std::fs::write(
        &site,
        format!(
            "environments:\n  staging:\n    store: {}\n    targets:\n      raw-repo: tarballs\n",
            cx.store().display()
        ),
    )
    .unwrap();
    let staged = cx
        .run_env(
            &["--json", "env", "--for", "zuul", "--url", &w.url, "--env", "staging", "--site", site.to_str().unwrap()],
            &[("AIRLOCK_STORE", "/nonexistent")],
        )
        .ok()
        .json();
    assert_eq!(staged["airlock_bundle_manifest"], manifest.to_string());
    let files = staged["airlock_files"].as_object().unwrap();
    assert!(
        !files.is_empty() && files.values().all(|u| u.as_str().unwrap().contains("/repository/tarballs/")),
        "{staged}"
    );
    cx.run(&["env", "--for", "zuul", "--url", &w.url, "--env", "prod", "--site", site.to_str().unwrap()])
        .fails(2, "declares no environment `prod`");

    // What import kept is the signed manifest, byte for byte; a store without it (an older
    // airlock's import) says what to do.
    let kept = cx.store().join(format!("manifests/{}.json", manifest.hex()));
    assert_eq!(std::fs::read(&kept).unwrap(), std::fs::read(cx.path("out.unpacked-manifest")).unwrap());
    std::fs::remove_file(&kept).unwrap();
    cx.run(&["env", "--for", "zuul", "--url", &w.url]).fails(2, "keeps no manifest of fixtures-1.0");
}

#[test]
fn what_cannot_be_configured_is_refused_on_one_line() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.spec(&format!(
        "name: only-files\nversion: \"1\"\nfiles:\n  - path: a.txt\n    source: {}\n",
        root().join("fixtures/files/NOTICE.txt").display()
    ));
    let bundle = cx.bundle(&spec, "out", &[]).join("only-files-1.airlock");
    let b = bundle.to_str().unwrap();
    let url = "http://airlock.site.example:8080";
    cx.run(&["env", "--for", "pip", "--url", url]).fails(2, "does not exist: pass --store DIR, or --bundle B");
    cx.run(&["env", "--for", "pip", "--url", url, "--bundle", b]).fails(2, "only-files-1 holds no Python index");
    cx.run(&["env", "--for", "apt", "--url", url, "--bundle", b]).fails(2, "holds no Debian packages");
    cx.run(&["env", "--for", "pip", "--url", "airlock.site.example:8080", "--bundle", b]).fails(2, "--url");
    cx.run(&["env", "--for", "docker", "--url", url, "--format", "yaml", "--bundle", b])
        .fails(2, "written as json, not yaml");
    cx.run(&["env", "--for", "containers", "--url", "http://h:1/prefix", "--bundle", b]).fails(2, "holds no images");
    let out = cx.path("kept.conf");
    std::fs::write(&out, "before\n").unwrap();
    cx.run(&["env", "--for", "uv", "--url", url, "--bundle", b, "-o", out.to_str().unwrap()]).fails(2, "Python index");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "before\n", "a refused run leaves the file as it was");
    // An untrusted bundle is not described.
    let other = TestContext::new();
    other.run(&["env", "--for", "zuul", "--url", url, "--bundle", b]).fails(3, "trusted");
}
