//! `airlock env`: configuration for the site's clients, written for each client's own
//! parser, from what the site holds (the manifests of the bundles a store imported, or a
//! bundle's manifest) and the URL where `airlock serve` answers.
//!
//! Every URL written here is one that `airlock serve` answers (docs/serve.md): the Python
//! indexes at `/repository/<index>/simple/`, the apt repository at
//! `/repository/<apt>/` with its key beside `dists/`, raw files at
//! `/repository/<raw>/<path>`, git at `/git/<name>.git`, and the registry at the server's
//! root, where the store keeps each image under its upstream repository path (the
//! upstream host dropped), so `registry.example/ns/base:1` is `<site>/ns/base:1`.
//!
//! Rendering is pure (a [`Site`] in, text out), so each format's quoting is tested here;
//! the tests in `tests/it/env.rs` feed the output to the real clients.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use crate::bundle::manifest::{Artifact, Kind};
use crate::digest::Digest;
use crate::store::APT_KEYRING_STEM;

/// The clients `airlock env` writes configuration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// pip.conf (`PIP_CONFIG_FILE`)
    Pip,
    /// uv.toml (`UV_CONFIG_FILE`)
    Uv,
    /// a deb822 `.sources` file with `Signed-By`
    Apt,
    /// containers-registries.conf(5) for podman, skopeo, buildah, CRI-O
    Containers,
    /// Docker's daemon.json (mirrors Docker Hub only)
    Docker,
    /// a gitconfig of `url.<site>.insteadOf <upstream>`
    Git,
    /// kolla-build.conf: base image, registry, namespace, sources
    #[value(name = "kolla-build")]
    KollaBuild,
    /// YAML site variables for Zuul jobs
    Zuul,
    /// a pip constraints file of the bundles' Python versions
    Constraints,
}

/// Output formats; each client takes those that fit it (see [`Client::formats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Ini,
    Toml,
    Yaml,
    Json,
    /// POSIX shell: `export NAME='value'` lines (or `git config` commands)
    Shell,
    /// deb822 stanzas (apt `.sources`)
    Deb822,
    /// plain lines (pip requirements syntax)
    Text,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ini => "ini",
            Format::Toml => "toml",
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Shell => "shell",
            Format::Deb822 => "deb822",
            Format::Text => "text",
        }
    }
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Pip => "pip",
            Client::Uv => "uv",
            Client::Apt => "apt",
            Client::Containers => "containers",
            Client::Docker => "docker",
            Client::Git => "git",
            Client::KollaBuild => "kolla-build",
            Client::Zuul => "zuul",
            Client::Constraints => "constraints",
        }
    }

    /// The formats this client's configuration can be written in; the first is the
    /// default (the client's own file format).
    pub fn formats(self) -> &'static [Format] {
        use Format::*;
        match self {
            Client::Pip => &[Ini, Shell, Json],
            Client::Uv => &[Toml, Shell, Json],
            Client::Apt => &[Deb822, Json],
            Client::Containers => &[Toml, Json],
            Client::Docker => &[Json],
            Client::Git => &[Ini, Shell, Json],
            Client::KollaBuild => &[Ini, Json],
            Client::Zuul => &[Yaml, Json, Shell],
            Client::Constraints => &[Text, Json],
        }
    }
}

/// The server clients reach: `http(s)://host[:port][/prefix]`.
#[derive(Debug, Clone)]
pub struct SiteUrl {
    /// Without a trailing `/`.
    pub base: String,
    pub http: bool,
    pub host: String,
    /// `host:port` (the port always written: registry names need it).
    pub authority: String,
    /// The path prefix a reverse proxy adds, without a trailing `/` (usually empty).
    pub prefix: String,
}

impl SiteUrl {
    pub fn parse(s: &str) -> Result<Self> {
        let url = reqwest::Url::parse(s).map_err(|e| anyhow!("--url `{s}` is not a URL: {e}"))?;
        let http = match url.scheme() {
            "http" => true,
            "https" => false,
            other => bail!("--url `{s}`: the scheme is `{other}`; airlock serve speaks http or https"),
        };
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            bail!("--url `{s}`: give only scheme, host, port and path (no credentials, query or fragment)");
        }
        let host = url.host_str().ok_or_else(|| anyhow!("--url `{s}` has no host"))?.to_string();
        let port = url.port_or_known_default().unwrap_or(if http { 80 } else { 443 });
        let prefix = url.path().trim_end_matches('/').to_string();
        let base = format!("{}://{host}:{port}{prefix}", url.scheme());
        let base = match url.port() {
            Some(_) => base,
            None => format!("{}://{host}{prefix}", url.scheme()),
        };
        Ok(Self { base, http, authority: format!("{host}:{port}"), host, prefix })
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The registry's name for clients (`host:port`); a registry lives at the root.
    fn registry(&self, client: Client) -> Result<&str> {
        if !self.prefix.is_empty() {
            bail!(
                "--for {}: a registry is served at the root of its host (`/v2/`), and --url has the path `{}`",
                client.name(),
                self.prefix
            );
        }
        Ok(&self.authority)
    }
}

/// One bundle the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BundleId {
    pub name: String,
    pub version: String,
    pub manifest: Digest,
}

/// What the site holds, as the configuration needs it.
#[derive(Debug, Clone)]
pub struct Site {
    pub url: SiteUrl,
    pub bundles: Vec<BundleId>,
    /// Every artifact of those bundles.
    pub artifacts: Vec<Artifact>,
    /// The Python indexes the store holds, when there is a store: only these are served
    /// (an import with `--python-index` put the bundles' files into another one, an
    /// import with `--python-upload` into none), and any the bundles do not name are
    /// added (uploads, older imports).
    pub store_indexes: Option<BTreeSet<String>>,
    /// Git repositories the store holds besides the bundles'.
    pub extra_git: BTreeSet<String>,
    pub raw_repo: String,
    pub apt_repo: String,
}

/// A carried image: the name the bundle gives it and where the site serves it.
#[derive(Debug, Clone)]
struct Image {
    upstream: String,
    registry: String,
    repository: String,
    tag: Option<String>,
}

/// Options only some clients read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// apt: the path `Signed-By` names.
    pub signed_by: String,
    /// kolla-build: the base image, as the bundle names it (with or without its tag).
    pub kolla_base: Option<String>,
    /// kolla-build: `base`, the distribution of the base image.
    pub kolla_distro: Option<String>,
    pub kolla_namespace: String,
    /// kolla-build: `SECTION=PATH`, a raw file to use as the source `SECTION`.
    pub kolla_sources: Vec<(String, String)>,
}

/// What was written, and what the user should know about it (printed on stderr).
#[derive(Debug)]
pub struct Rendered {
    pub text: String,
    pub notes: Vec<String>,
}

impl Site {
    fn of(&self, kind: Kind) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter().filter(move |a| a.kind == kind)
    }

    fn python_indexes(&self) -> Vec<String> {
        let named: BTreeSet<String> = self.of(Kind::Python).filter_map(|a| a.index.clone()).collect();
        let Some(held) = &self.store_indexes else { return named.into_iter().collect() };
        // The bundles' indexes first (the first is pip's index-url), then the store's others.
        let mut out: Vec<String> = named.iter().filter(|i| held.contains(*i)).cloned().collect();
        out.extend(held.iter().filter(|i| !named.contains(*i)).cloned());
        out
    }

    fn index_url(&self, index: &str) -> String {
        self.url.at(&format!("/repository/{index}/simple/"))
    }

    /// project -> versions, from the bundles' Python files.
    fn python_versions(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for a in self.of(Kind::Python) {
            if let (Some(p), Some(v)) = (&a.project, &a.version) {
                out.entry(p.clone()).or_default().insert(v.clone());
            }
        }
        out
    }

    /// suite -> components, from the bundles' Debian packages.
    fn apt_suites(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for a in self.of(Kind::Debian) {
            if let (Some(s), Some(c)) = (&a.suite, &a.component) {
                out.entry(s.clone()).or_default().insert(c.clone());
            }
        }
        out
    }

    fn apt_url(&self) -> String {
        self.url.at(&format!("/repository/{}", self.apt_repo))
    }

    fn apt_key_url(&self) -> String {
        self.url.at(&format!("/repository/{}/{APT_KEYRING_STEM}.asc", self.apt_repo))
    }

    fn images(&self) -> Vec<Image> {
        let mut out: Vec<Image> = self
            .of(Kind::Image)
            .filter_map(|a| {
                let p = crate::names::image_parts(&a.name).ok()?;
                Some(Image {
                    upstream: a.name.clone(),
                    registry: p.registry.to_string(),
                    repository: p.repository.to_string(),
                    tag: p.tag.map(str::to_string),
                })
            })
            .collect();
        out.sort_by(|a, b| a.upstream.cmp(&b.upstream));
        out.dedup_by(|a, b| a.upstream == b.upstream);
        out
    }

    /// name -> upstream URL (None for a repository only the store knows).
    fn git_repos(&self) -> BTreeMap<String, Option<String>> {
        let mut out: BTreeMap<String, Option<String>> =
            self.of(Kind::Git).map(|a| (a.name.clone(), Some(a.upstream.clone()))).collect();
        for name in &self.extra_git {
            out.entry(name.clone()).or_insert(None);
        }
        out
    }

    fn git_url(&self, name: &str) -> String {
        self.url.at(&format!("/git/{name}.git"))
    }

    /// path -> URL of every carried file.
    fn files(&self) -> BTreeMap<String, String> {
        self.of(Kind::File)
            .filter_map(|a| a.path.as_ref())
            .map(|p| (p.to_string(), self.file_url(p.as_str())))
            .collect()
    }

    fn file_url(&self, path: &str) -> String {
        self.url.at(&format!("/repository/{}/{}", self.raw_repo, crate::target::raw::url_path(path)))
    }

    fn source(&self) -> String {
        match &self.bundles[..] {
            [] => "the store".to_string(),
            [b] => format!("{}-{}", b.name, b.version),
            many => many.iter().map(|b| format!("{}-{}", b.name, b.version)).collect::<Vec<_>>().join(", "),
        }
    }

    /// A header comment naming where the configuration comes from.
    fn header(&self, client: Client, comment: &str) -> String {
        let mut s =
            format!("{comment} airlock env --for {}: {} from {}\n", client.name(), self.url.base, self.source());
        for b in &self.bundles {
            let _ = writeln!(s, "{comment}   {}-{} manifest {}", b.name, b.version, b.manifest);
        }
        s
    }

    /// The configuration for `client` in `format` (one of [`Client::formats`]).
    pub fn render(&self, client: Client, format: Format, opts: &Options) -> Result<Rendered> {
        if !client.formats().contains(&format) {
            let names: Vec<&str> = client.formats().iter().map(|f| f.name()).collect();
            bail!("--for {} is written as {}, not {}", client.name(), names.join(", "), format.name());
        }
        match client {
            Client::Pip => self.pip(format),
            Client::Uv => self.uv(format),
            Client::Apt => self.apt(format, opts),
            Client::Containers => self.containers(format),
            Client::Docker => self.docker(),
            Client::Git => self.git(format),
            Client::KollaBuild => self.kolla(format, opts),
            Client::Zuul => self.zuul(format),
            Client::Constraints => self.constraints(format),
        }
    }

    fn nothing(&self, client: Client, what: &str) -> anyhow::Error {
        anyhow!("--for {}: {} holds no {what}; nothing to configure", client.name(), self.source())
    }

    fn pip(&self, format: Format) -> Result<Rendered> {
        let indexes = self.python_indexes();
        let Some((first, extra)) = indexes.split_first() else { return Err(self.nothing(Client::Pip, "Python index")) };
        let index_url = self.index_url(first);
        let extra: Vec<String> = extra.iter().map(|i| self.index_url(i)).collect();
        // pip matches a trusted host with its port, or any port without one.
        let trusted = self.url.http.then(|| self.url.authority.clone());
        let text = match format {
            Format::Json => {
                json_text(&json!({"index-url": index_url, "extra-index-url": extra, "trusted-host": trusted}))
            }
            Format::Shell => {
                let mut s = self.header(Client::Pip, "#");
                s.push_str(&export("PIP_INDEX_URL", &index_url));
                if !extra.is_empty() {
                    s.push_str(&export("PIP_EXTRA_INDEX_URL", &extra.join(" ")));
                }
                if let Some(t) = &trusted {
                    s.push_str(&export("PIP_TRUSTED_HOST", t));
                }
                s
            }
            _ => {
                let mut s = self.header(Client::Pip, "#");
                s.push_str("[global]\n");
                let _ = writeln!(s, "index-url = {}", ini_value(&index_url)?);
                if !extra.is_empty() {
                    s.push_str("extra-index-url =\n");
                    for e in &extra {
                        let _ = writeln!(s, "    {}", ini_value(e)?);
                    }
                }
                if let Some(t) = &trusted {
                    let _ = writeln!(s, "trusted-host = {}", ini_value(t)?);
                }
                s
            }
        };
        Ok(Rendered { text, notes: Vec::new() })
    }

    fn uv(&self, format: Format) -> Result<Rendered> {
        let indexes = self.python_indexes();
        if indexes.is_empty() {
            return Err(self.nothing(Client::Uv, "Python index"));
        }
        let text = match format {
            Format::Json => json_text(&json!({
                "index": indexes.iter().enumerate().map(|(i, n)| json!({"name": n, "url": self.index_url(n), "default": i == 0})).collect::<Vec<_>>()
            })),
            Format::Shell => {
                let mut s = self.header(Client::Uv, "#");
                s.push_str(&export("UV_DEFAULT_INDEX", &self.index_url(&indexes[0])));
                if indexes.len() > 1 {
                    let extra: Vec<String> = indexes[1..].iter().map(|i| self.index_url(i)).collect();
                    s.push_str(&export("UV_INDEX", &extra.join(" ")));
                }
                s
            }
            _ => {
                #[derive(serde::Serialize)]
                struct Index {
                    name: String,
                    url: String,
                    #[serde(skip_serializing_if = "std::ops::Not::not")]
                    default: bool,
                }
                #[derive(serde::Serialize)]
                struct Doc {
                    index: Vec<Index>,
                }
                let index = indexes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Index { name: n.clone(), url: self.index_url(n), default: i == 0 })
                    .collect();
                format!("{}{}", self.header(Client::Uv, "#"), toml::to_string(&Doc { index })?)
            }
        };
        Ok(Rendered { text, notes: Vec::new() })
    }

    fn apt(&self, format: Format, opts: &Options) -> Result<Rendered> {
        let suites = self.apt_suites();
        if suites.is_empty() {
            return Err(self.nothing(Client::Apt, "Debian packages"));
        }
        // One stanza per set of components, naming every suite that has exactly that set.
        let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (suite, comps) in &suites {
            groups.entry(comps.iter().cloned().collect()).or_default().push(suite.clone());
        }
        let url = self.apt_url();
        let notes = vec![format!(
            "apt: Signed-By names {}: install the site key there (`--key-out`, or fetch {})",
            opts.signed_by,
            self.apt_key_url()
        )];
        let text = match format {
            Format::Json => json_text(&json!({
                "sources": groups.iter().map(|(c, s)| json!({"Types": "deb", "URIs": url, "Suites": s, "Components": c, "Signed-By": opts.signed_by})).collect::<Vec<_>>(),
                "key": self.apt_key_url(),
            })),
            _ => {
                let mut s = self.header(Client::Apt, "#");
                for (i, (comps, suites)) in groups.iter().enumerate() {
                    if i > 0 {
                        s.push('\n');
                    }
                    let _ = write!(
                        s,
                        "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\nSigned-By: {}\n",
                        deb822_value(&url)?,
                        deb822_value(&suites.join(" "))?,
                        deb822_value(&comps.join(" "))?,
                        deb822_value(&opts.signed_by)?
                    );
                }
                s
            }
        };
        Ok(Rendered { text, notes })
    }

    fn containers(&self, format: Format) -> Result<Rendered> {
        let images = self.images();
        if images.is_empty() {
            return Err(self.nothing(Client::Containers, "images"));
        }
        let site = self.url.registry(Client::Containers)?;
        let registries: BTreeSet<&str> = images.iter().map(|i| i.registry.as_str()).collect();
        let entries: Vec<(String, String)> = registries.iter().map(|r| (r.to_string(), site.to_string())).collect();
        let text = match format {
            Format::Json => json_text(&json!({
                "registry": entries.iter().map(|(p, l)| json!({"prefix": p, "location": l, "insecure": self.url.http})).collect::<Vec<_>>()
            })),
            _ => {
                #[derive(serde::Serialize)]
                struct Registry {
                    prefix: String,
                    location: String,
                    #[serde(skip_serializing_if = "std::ops::Not::not")]
                    insecure: bool,
                }
                #[derive(serde::Serialize)]
                struct Doc {
                    registry: Vec<Registry>,
                }
                let registry = entries
                    .iter()
                    .map(|(p, l)| Registry { prefix: p.clone(), location: l.clone(), insecure: self.url.http })
                    .collect();
                let doc = Doc { registry };
                let mut s = self.header(Client::Containers, "#");
                s.push_str("# Each upstream registry the bundles name is served by the site, same paths and tags.\n");
                for i in &images {
                    let _ = writeln!(s, "#   {} -> {site}/{}{}", i.upstream, i.repository, tag_suffix(i));
                }
                s.push_str(&toml::to_string(&doc)?);
                s
            }
        };
        Ok(Rendered { text, notes: Vec::new() })
    }

    fn docker(&self) -> Result<Rendered> {
        let images = self.images();
        let site = self.url.registry(Client::Docker)?;
        let mirror = format!("{}://{site}", if self.url.http { "http" } else { "https" });
        let mut doc = json!({"registry-mirrors": [mirror]});
        if self.url.http {
            doc["insecure-registries"] = json!([site]);
        }
        let registries: BTreeSet<&str> = images.iter().map(|i| i.registry.as_str()).collect();
        let mut notes = vec![
            "docker: registry-mirrors apply only to images of Docker Hub; \
             a daemon.json cannot send another registry's names to the site"
                .to_string(),
        ];
        if !registries.is_empty() {
            notes.push(format!(
                "docker: the bundles name these registries: {}; unless one is Docker Hub, pull their images \
                 by the site's name ({site}/<repository>:<tag>), or use --for containers (podman, skopeo, \
                 buildah, CRI-O)",
                registries.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Rendered { text: json_text(&doc), notes })
    }

    fn git(&self, format: Format) -> Result<Rendered> {
        let repos = self.git_repos();
        let mut rewrites: Vec<(String, Vec<String>)> = Vec::new();
        let mut notes = Vec::new();
        for (name, upstream) in &repos {
            match upstream {
                Some(u) if is_remote_url(u) => {
                    let bare = u.trim_end_matches('/').trim_end_matches(".git").to_string();
                    rewrites.push((self.git_url(name), vec![bare.clone(), format!("{bare}.git")]));
                }
                Some(u) => {
                    notes.push(format!("git: `{name}` came from the local path `{u}`: no upstream URL to rewrite"))
                }
                None => notes.push(format!(
                    "git: `{name}` is in the store but in no bundle read here: its upstream URL is not known"
                )),
            }
        }
        if rewrites.is_empty() {
            return Err(self.nothing(Client::Git, "git repositories with an upstream URL"));
        }
        let text = match format {
            Format::Json => json_text(&json!({
                "url": rewrites.iter().map(|(site, ups)| (site.clone(), json!({"insteadOf": ups}))).collect::<serde_json::Map<_, _>>()
            })),
            Format::Shell => {
                let mut s = self.header(Client::Git, "#");
                for (site, ups) in &rewrites {
                    for u in ups {
                        let _ = writeln!(
                            s,
                            "git config --global --add {} {}",
                            shell_quote(&format!("url.{site}.insteadOf")),
                            shell_quote(u)
                        );
                    }
                }
                s
            }
            _ => {
                let mut s = self.header(Client::Git, "#");
                for (site, ups) in &rewrites {
                    let _ = writeln!(s, "[url {}]", git_quote(site)?);
                    for u in ups {
                        let _ = writeln!(s, "\tinsteadOf = {}", git_quote(u)?);
                    }
                }
                s
            }
        };
        Ok(Rendered { text, notes })
    }

    fn kolla(&self, format: Format, opts: &Options) -> Result<Rendered> {
        let images = self.images();
        let files = self.files();
        if images.is_empty() && files.is_empty() {
            return Err(self.nothing(Client::KollaBuild, "images or files"));
        }
        let site = self.url.registry(Client::KollaBuild)?;
        let mut notes = Vec::new();
        let base = match &opts.kolla_base {
            Some(want) => Some(
                images
                    .iter()
                    .find(|i| i.upstream == *want || i.upstream.rsplit_once(':').is_some_and(|(n, _)| n == want))
                    .ok_or_else(|| anyhow!("--kolla-base `{want}` is not an image of {}", self.source()))?,
            ),
            None if images.len() == 1 => images.first(),
            None => {
                if !images.is_empty() {
                    notes.push(format!(
                        "kolla-build: {} images, so no base image was chosen: pass --kolla-base NAME",
                        images.len()
                    ));
                }
                None
            }
        };
        let mut defaults: Vec<(&str, String)> = Vec::new();
        if let Some(b) = base {
            let last = b.repository.rsplit('/').next().unwrap_or_default();
            let distro = opts.kolla_distro.clone().or_else(|| {
                ["centos", "debian", "rocky", "ubuntu"].iter().find(|d| last.starts_with(**d)).map(|d| d.to_string())
            });
            match distro {
                Some(d) => defaults.push(("base", d)),
                None => notes.push(format!(
                    "kolla-build: the distribution of {} is not known: pass --kolla-distro (debian, ubuntu, rocky, centos)",
                    b.upstream
                )),
            }
            defaults.push(("base_image", format!("{site}/{}", b.repository)));
            if let Some(t) = &b.tag {
                defaults.push(("base_tag", t.clone()));
            }
        }
        defaults.push(("registry", site.to_string()));
        defaults.push(("namespace", opts.kolla_namespace.clone()));
        // Sources: explicit ones first, then one per carried tarball not named already.
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        let mut used: BTreeSet<&str> = BTreeSet::new();
        for (section, path) in &opts.kolla_sources {
            if !files.contains_key(path) {
                bail!("--kolla-source {section}={path}: {} carries no file `{path}`", self.source());
            }
            used.insert(path);
            sources.insert(section.clone(), self.file_url(path));
        }
        for (path, url) in &files {
            if used.contains(path.as_str()) {
                continue;
            }
            if let Some(section) = kolla_section(path) {
                sources.entry(section).or_insert_with(|| url.clone());
            }
        }
        let text = match format {
            Format::Json => json_text(&json!({
                "DEFAULT": defaults.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "sources": sources.iter().map(|(k, v)| (k.clone(), json!({"type": "url", "location": v}))).collect::<serde_json::Map<_, _>>(),
            })),
            _ => {
                let mut s = self.header(Client::KollaBuild, "#");
                s.push_str("[DEFAULT]\n");
                for (k, v) in &defaults {
                    let _ = writeln!(s, "{k} = {}", ini_value(v)?);
                }
                for (section, url) in &sources {
                    let _ = write!(s, "\n[{}]\ntype = url\nlocation = {}\n", ini_section(section)?, ini_value(url)?);
                }
                s
            }
        };
        Ok(Rendered { text, notes })
    }

    fn zuul(&self, format: Format) -> Result<Rendered> {
        let mut v = serde_json::Map::new();
        let mut put = |k: &str, val: Value| {
            v.insert(format!("airlock_{k}"), val);
        };
        put("url", json!(self.url.base));
        put(
            "bundles",
            json!(
                self.bundles
                    .iter()
                    .map(|b| json!({"name": b.name, "version": b.version, "manifest": b.manifest}))
                    .collect::<Vec<_>>()
            ),
        );
        if let [b] = &self.bundles[..] {
            put("bundle_name", json!(b.name));
            put("bundle_version", json!(b.version));
            put("bundle_manifest", json!(b.manifest));
        }
        let indexes = self.python_indexes();
        if let Some(first) = indexes.first() {
            put("pypi_index_url", json!(self.index_url(first)));
            put(
                "pypi_indexes",
                json!(indexes.iter().map(|i| (i.clone(), json!(self.index_url(i)))).collect::<serde_json::Map<_, _>>()),
            );
            if self.url.http {
                put("pypi_trusted_host", json!(self.url.authority));
            }
        }
        let suites = self.apt_suites();
        if !suites.is_empty() {
            put("apt_url", json!(self.apt_url()));
            put("apt_suites", json!(suites.keys().collect::<Vec<_>>()));
            put("apt_components", json!(suites.values().flatten().collect::<BTreeSet<_>>()));
            put("apt_key_url", json!(self.apt_key_url()));
        }
        let images = self.images();
        if !images.is_empty() && self.url.prefix.is_empty() {
            let site = &self.url.authority;
            put("registry", json!(site));
            put("registry_insecure", json!(self.url.http));
            put(
                "images",
                json!(
                    images
                        .iter()
                        .map(|i| (i.upstream.clone(), json!(format!("{site}/{}{}", i.repository, tag_suffix(i)))))
                        .collect::<serde_json::Map<_, _>>()
                ),
            );
        }
        let git = self.git_repos();
        if !git.is_empty() {
            put("git_base_url", json!(self.url.at("/git")));
            put(
                "git_repos",
                json!(
                    git.iter()
                        .map(|(n, u)| (n.clone(), json!({"url": self.git_url(n), "upstream": u})))
                        .collect::<serde_json::Map<_, _>>()
                ),
            );
        }
        let files = self.files();
        if !files.is_empty() {
            put("files_url", json!(self.url.at(&format!("/repository/{}/", self.raw_repo))));
            put("files", json!(files));
        }
        let doc = Value::Object(v);
        let text = match format {
            Format::Json => json_text(&doc),
            Format::Shell => {
                let mut s = self.header(Client::Zuul, "#");
                for (k, val) in doc.as_object().into_iter().flatten() {
                    let val = match val {
                        Value::String(x) => x.clone(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    s.push_str(&export(&k.to_ascii_uppercase(), &val));
                }
                s
            }
            _ => format!("{}{}", self.header(Client::Zuul, "#"), yaml_serde::to_string(&doc)?),
        };
        Ok(Rendered { text, notes: Vec::new() })
    }

    fn constraints(&self, format: Format) -> Result<Rendered> {
        let versions = self.python_versions();
        if versions.is_empty() {
            return Err(self.nothing(Client::Constraints, "Python files"));
        }
        if let Some((p, vs)) = versions.iter().find(|(_, vs)| vs.len() > 1) {
            bail!(
                "--for constraints: {} carries {p} in {} versions ({}); a constraints file pins one",
                self.source(),
                vs.len(),
                vs.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let pins: Vec<(String, String)> =
            versions.into_iter().map(|(p, vs)| (p, vs.into_iter().next().expect("one version"))).collect();
        let text = match format {
            Format::Json => json_text(&json!(pins.iter().cloned().collect::<BTreeMap<_, _>>())),
            _ => {
                let mut s = self.header(Client::Constraints, "#");
                for (p, v) in &pins {
                    let _ = writeln!(s, "{p}=={v}");
                }
                s
            }
        };
        Ok(Rendered { text, notes: Vec::new() })
    }
}

fn tag_suffix(i: &Image) -> String {
    i.tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
}

fn json_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("serializable");
    s.push('\n');
    s
}

/// `export NAME='value'`, quoted for any POSIX shell.
fn export(name: &str, value: &str) -> String {
    format!("export {name}={}\n", shell_quote(value))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A value for an INI file read by Python's configparser (pip) or oslo.config (kolla):
/// one line, no leading or trailing space (both parsers strip it), no `%` (configparser's
/// interpolation would read it).
fn ini_value(s: &str) -> Result<&str> {
    if s.contains(['\n', '\r', '%']) || s.trim() != s {
        bail!("`{}` cannot be written as an INI value", s.escape_debug());
    }
    Ok(s)
}

fn ini_section(s: &str) -> Result<&str> {
    if s.is_empty() || s.contains(['[', ']', '\n', '\r']) || s.trim() != s {
        bail!("`{}` cannot be an INI section name", s.escape_debug());
    }
    Ok(s)
}

/// A deb822 field value on one line.
fn deb822_value(s: &str) -> Result<&str> {
    if s.contains(['\n', '\r']) || s.is_empty() {
        bail!("`{}` cannot be a deb822 field value", s.escape_debug());
    }
    Ok(s)
}

/// A gitconfig subsection name or value, double-quoted (git-config(1): `\"` and `\\`
/// are the escapes; a newline cannot be written).
fn git_quote(s: &str) -> Result<String> {
    if s.contains(['\n', '\r', '\0']) {
        bail!("`{}` cannot be written in a gitconfig", s.escape_debug());
    }
    Ok(format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\"")))
}

/// A URL git can fetch from (`scheme://...` or scp-like `host:path`), not a local path.
fn is_remote_url(s: &str) -> bool {
    if s.contains("://") {
        return !s.starts_with("file://");
    }
    // scp-like: `user@host:path` or `host:path`, with no slash before the colon.
    s.split_once(':').is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

/// Kolla's name for the source of a tarball: `<project>-base` for
/// `<project>-<version>.tar.gz` (keystone-25.0.0.tar.gz is `keystone-base`, as in
/// kolla's own sources); None for files that are not source archives.
fn kolla_section(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip"].iter().find_map(|e| file.strip_suffix(e))?;
    let project = match stem.char_indices().find(|(i, c)| c.is_ascii_digit() && stem[..*i].ends_with('-')) {
        Some((i, _)) => &stem[..i - 1],
        None => stem,
    };
    (!project.is_empty()).then(|| format!("{project}-base"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relpath::RelPath;

    fn site(url: &str) -> Site {
        let d = Digest::of(b"m");
        let a = |kind, name: &str| Artifact { kind, name: name.into(), ..Default::default() };
        Site {
            url: SiteUrl::parse(url).unwrap(),
            bundles: vec![BundleId { name: "site".into(), version: "1".into(), manifest: d }],
            artifacts: vec![
                Artifact {
                    index: Some("pypi".into()),
                    project: Some("a-b".into()),
                    version: Some("1.0".into()),
                    ..a(Kind::Python, "a_b-1.0-py3-none-any.whl")
                },
                Artifact { suite: Some("bookworm".into()), component: Some("main".into()), ..a(Kind::Debian, "hello") },
                a(Kind::Image, "registry.example:5000/kolla/debian:12"),
                a(Kind::Image, "hub.mirror.example/library/debian:12"),
                Artifact { upstream: "https://git.example/openstack/kolla".into(), ..a(Kind::Git, "kolla") },
                Artifact {
                    path: Some(RelPath::new("src/keystone-25.0.0.tar.gz").unwrap()),
                    ..a(Kind::File, "keystone-25.0.0.tar.gz")
                },
            ],
            store_indexes: None,
            extra_git: BTreeSet::new(),
            raw_repo: "raw".into(),
            apt_repo: "apt".into(),
        }
    }

    fn opts() -> Options {
        Options { signed_by: "/k.asc".into(), kolla_namespace: "kolla".into(), ..Default::default() }
    }

    #[test]
    fn file_urls_keep_odd_characters_in_the_name() {
        let mut s = site("http://airlock.site.example:8080");
        s.artifacts.push(Artifact {
            path: Some(RelPath::new("src/a b#1?.tar.gz").unwrap()),
            ..Artifact { kind: Kind::File, name: "a b#1?.tar.gz".into(), ..Default::default() }
        });
        assert_eq!(
            s.files()["src/a b#1?.tar.gz"],
            "http://airlock.site.example:8080/repository/raw/src/a%20b%231%3F.tar.gz"
        );
        assert_eq!(
            s.files()["src/keystone-25.0.0.tar.gz"],
            "http://airlock.site.example:8080/repository/raw/src/keystone-25.0.0.tar.gz"
        );
    }

    fn render(s: &Site, c: Client, f: Format) -> String {
        s.render(c, f, &Options { kolla_base: Some("registry.example:5000/kolla/debian".into()), ..opts() })
            .unwrap()
            .text
    }

    #[test]
    fn urls() {
        let u = SiteUrl::parse("http://airlock.site.example:8080/").unwrap();
        assert_eq!(
            (u.base.as_str(), u.authority.as_str(), u.http),
            ("http://airlock.site.example:8080", "airlock.site.example:8080", true)
        );
        let u = SiteUrl::parse("https://airlock.site.example/mirror/").unwrap();
        assert_eq!(
            (u.base.as_str(), u.authority.as_str(), u.prefix.as_str()),
            ("https://airlock.site.example/mirror", "airlock.site.example:443", "/mirror")
        );
        assert!(SiteUrl::parse("ftp://x").is_err());
        assert!(SiteUrl::parse("http://u:p@x/").is_err());
        assert!(SiteUrl::parse("airlock.site.example:8080").is_err());
    }

    #[test]
    fn pip_and_uv() {
        let s = site("http://airlock.site.example:8080");
        let pip = render(&s, Client::Pip, Format::Ini);
        assert!(pip.contains("[global]\nindex-url = http://airlock.site.example:8080/repository/pypi/simple/\ntrusted-host = airlock.site.example:8080\n"), "{pip}");
        let uv: toml::Table = toml::from_str(&render(&s, Client::Uv, Format::Toml)).unwrap();
        assert_eq!(uv["index"][0]["url"].as_str(), Some("http://airlock.site.example:8080/repository/pypi/simple/"));
        assert_eq!(uv["index"][0]["default"].as_bool(), Some(true));
        let https = site("https://airlock.site.example");
        assert!(!render(&https, Client::Pip, Format::Ini).contains("trusted-host"));
        assert_eq!(
            render(&s, Client::Pip, Format::Shell).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
            [
                "export PIP_INDEX_URL='http://airlock.site.example:8080/repository/pypi/simple/'",
                "export PIP_TRUSTED_HOST='airlock.site.example:8080'"
            ]
        );
        assert!(s.render(Client::Pip, Format::Yaml, &opts()).unwrap_err().to_string().contains("ini, shell, json"));
        // A store names only the indexes it holds: the bundle's files went into `other`.
        let moved = Site { store_indexes: Some(["other".to_string()].into()), ..s.clone() };
        assert!(
            render(&moved, Client::Pip, Format::Ini)
                .contains("index-url = http://airlock.site.example:8080/repository/other/simple/\n")
        );
        let uploaded = Site { store_indexes: Some(BTreeSet::new()), ..s };
        assert!(
            uploaded.render(Client::Pip, Format::Ini, &opts()).unwrap_err().to_string().contains("no Python index")
        );
    }

    #[test]
    fn containers_git_kolla() {
        let s = site("http://airlock.site.example:8080");
        let reg: toml::Table = toml::from_str(&render(&s, Client::Containers, Format::Toml)).unwrap();
        let entries = reg["registry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1]["prefix"].as_str(), Some("registry.example:5000"));
        assert_eq!(entries[1]["location"].as_str(), Some("airlock.site.example:8080"));
        assert_eq!(entries[1]["insecure"].as_bool(), Some(true));
        let git = render(&s, Client::Git, Format::Ini);
        assert!(git.contains("[url \"http://airlock.site.example:8080/git/kolla.git\"]\n\tinsteadOf = \"https://git.example/openstack/kolla\"\n\tinsteadOf = \"https://git.example/openstack/kolla.git\"\n"), "{git}");
        let kolla = render(&s, Client::KollaBuild, Format::Ini);
        assert!(kolla.contains("[DEFAULT]\nbase = debian\nbase_image = airlock.site.example:8080/kolla/debian\nbase_tag = 12\nregistry = airlock.site.example:8080\nnamespace = kolla\n"), "{kolla}");
        assert!(kolla.contains("[keystone-base]\ntype = url\nlocation = http://airlock.site.example:8080/repository/raw/src/keystone-25.0.0.tar.gz\n"), "{kolla}");
        let docker = s.render(Client::Docker, Format::Json, &opts()).unwrap();
        let d: Value = serde_json::from_str(&docker.text).unwrap();
        assert_eq!(
            d,
            json!({"registry-mirrors": ["http://airlock.site.example:8080"], "insecure-registries": ["airlock.site.example:8080"]})
        );
        assert!(docker.notes.iter().any(|n| n.contains("registry.example:5000")), "{:?}", docker.notes);
        let prefixed = site("http://airlock.site.example:8080/airlock");
        assert!(prefixed.render(Client::Containers, Format::Toml, &opts()).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(git_quote(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(git_quote("a\nb").is_err());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert!(ini_value("50%").is_err());
        assert!(is_remote_url("git@git.example:openstack/kolla.git"));
        assert!(is_remote_url("git://127.0.0.1:9418/x"));
        assert!(!is_remote_url("git/hello.bundle"));
        assert!(!is_remote_url("/srv/git/hello"));
        assert_eq!(kolla_section("src/keystone-25.0.0.tar.gz").as_deref(), Some("keystone-base"));
        assert_eq!(kolla_section("openstack/nova-api-2024.1.tgz").as_deref(), Some("nova-api-base"));
        assert_eq!(kolla_section("bin/tool-2.3"), None);
    }

    #[test]
    fn constraints_pin_one_version() {
        let mut s = site("http://h:1");
        assert!(render(&s, Client::Constraints, Format::Text).ends_with("\na-b==1.0\n"));
        let mut second = s.artifacts[0].clone();
        second.version = Some("2.0".into());
        s.artifacts.push(second);
        let e = s.render(Client::Constraints, Format::Text, &opts()).unwrap_err().to_string();
        assert!(e.contains("a-b in 2 versions (1.0, 2.0)"), "{e}");
    }

    #[test]
    fn zuul_yaml_parses_back() {
        let s = site("http://airlock.site.example:8080");
        let y: Value = yaml_serde::from_str(&render(&s, Client::Zuul, Format::Yaml)).unwrap();
        assert_eq!(y["airlock_bundle_name"], "site");
        assert_eq!(y["airlock_pypi_index_url"], "http://airlock.site.example:8080/repository/pypi/simple/");
        assert_eq!(
            y["airlock_images"]["hub.mirror.example/library/debian:12"],
            "airlock.site.example:8080/library/debian:12"
        );
        assert_eq!(y["airlock_git_repos"]["kolla"]["url"], "http://airlock.site.example:8080/git/kolla.git");
    }
}
