//! Polling, for upstreams that cannot call back: each kind asks the cheapest question
//! that tells whether a refresh would change anything, and answers with a fingerprint.
//!
//! - git: `git ls-remote` of the selected refs;
//! - images: a HEAD of the tag's manifest (its `Docker-Content-Digest`);
//! - Python: each requirement's project page, asked with `If-None-Match` /
//!   `If-Modified-Since`, so an unchanged page costs a 304;
//! - Debian: each suite's InRelease `Date`;
//! - files: a pinned `sha256` never changes; a URL's `ETag` or `Last-Modified` (HEAD); a
//!   local source's size and modification time.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};

use crate::digest::Digest;
use crate::net::{Net, NetOptions};
use crate::spec::{Spec, ref_matches};

/// A page's `ETag`, `Last-Modified` and fingerprint, as last answered.
type Page = (Option<String>, Option<String>, String);

pub struct Poller {
    net: Net,
    opts: NetOptions,
    /// URL -> (ETag, Last-Modified, fingerprint) of the last answer.
    pages: Mutex<HashMap<String, Page>>,
}

impl Poller {
    pub fn new(opts: &NetOptions) -> Result<Self> {
        Ok(Self { net: Net::new(opts)?, opts: opts.clone(), pages: Mutex::new(HashMap::new()) })
    }

    /// The fingerprint of one entry now; a different one than last time means it changed.
    pub fn fingerprint(&self, spec: &Spec, key: &str) -> Result<String> {
        let (kind, name) = key.split_once(':').unwrap_or((key, ""));
        match kind {
            "git" => {
                let e = spec.git.iter().find(|e| e.name() == name).ok_or_else(|| anyhow!("no entry {key}"))?;
                let url = crate::source::git::fetch_url(&spec.dir, &e.url);
                let out = crate::git::run(None, &["ls-remote", "--refs", url.as_str()], None)
                    .with_context(|| format!("git {}: asking {url}", e.name()))?;
                let patterns = e.patterns();
                let mut lines: Vec<&str> = out
                    .lines()
                    .filter(|l| l.split_once('\t').is_some_and(|(_, r)| patterns.iter().any(|p| ref_matches(p, r))))
                    .collect();
                lines.sort_unstable();
                Ok(lines.join("\n"))
            }
            "images" => {
                let e = spec.images.iter().find(|e| e.reference == name).ok_or_else(|| anyhow!("no entry {key}"))?;
                if let Some(dir) = &e.layout {
                    return self.local(&spec.dir.join(dir).join("index.json"));
                }
                let r = crate::oci::Reference::parse(&e.reference)?;
                if let Some(d) = &r.digest {
                    return Ok(d.to_string());
                }
                let insecure = spec.registries.get(&r.registry).is_some_and(|s| s.insecure);
                let reg = crate::registry::Registry::with_options(&r.registry, insecure, &self.opts)?;
                let d = reg.manifest_digest(&r.repository, &r.reference()).with_context(|| format!("image {r}"))?;
                Ok(d.map_or_else(|| "absent".into(), |d| d.to_string()))
            }
            "python" => {
                let e = spec.python.iter().find(|e| e.name == name).ok_or_else(|| anyhow!("no entry {key}"))?;
                let mut parts = Vec::new();
                for index in e.index_urls(&spec.dir)? {
                    for project in e.requirements.iter().filter_map(|r| project_name(r)) {
                        let url = index.join(&format!("{project}/")).context("a project URL")?;
                        if url.scheme() == "file" {
                            let p = url.to_file_path().map_err(|()| anyhow!("{url} is no local path"))?;
                            parts.push(self.local(&p.join("index.html")).unwrap_or_default());
                        } else {
                            parts.push(self.page(url.as_str(), &format!("python {name}: project {project}"))?);
                        }
                    }
                }
                Ok(parts.join("\n"))
            }
            "debian" => {
                let e = spec.debian.iter().find(|e| e.name == name).ok_or_else(|| anyhow!("no entry {key}"))?;
                let mut parts = Vec::new();
                for s in e.sources() {
                    for suite in &s.suites {
                        let url = format!("{}/dists/{suite}/InRelease", s.url.trim_end_matches('/'));
                        let body = self.get_text(&url).with_context(|| format!("debian {name}: {url}"))?;
                        let date = body.lines().find_map(|l| l.strip_prefix("Date:")).map(str::trim);
                        parts.push(format!(
                            "{suite}: {}",
                            date.ok_or_else(|| anyhow!("debian {name}: {url} has no Date"))?
                        ));
                    }
                }
                Ok(parts.join("\n"))
            }
            "files" => {
                let e = spec.files.iter().find(|e| e.path.as_str() == name).ok_or_else(|| anyhow!("no entry {key}"))?;
                if let Some(d) = e.expected()? {
                    return Ok(d.to_string());
                }
                match (&e.url, &e.source) {
                    (Some(url), _) => self.head(url).with_context(|| format!("file {name}: {url}")),
                    (None, Some(src)) => self.local(&spec.resolve_source(src)),
                    (None, None) => Ok(String::new()),
                }
            }
            _ => bail!("no entry {key}"),
        }
    }

    fn local(&self, p: &std::path::Path) -> Result<String> {
        let m = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
        Ok(format!("{} {}", m.len(), mtime.as_nanos()))
    }

    fn head(&self, url: &str) -> Result<String> {
        let resp = self.net.client().head(url).send().map_err(|e| anyhow!("{:#}", self.net.failure(e).error))?;
        if !resp.status().is_success() {
            bail!("HEAD answered {}", resp.status());
        }
        let h = resp.headers();
        let get = |n| h.get(n).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).unwrap_or("").to_string();
        Ok(format!("{} {}", get(ETAG), get(LAST_MODIFIED)))
    }

    fn get_text(&self, url: &str) -> Result<String> {
        let mut resp = self.net.client().get(url).send().map_err(|e| anyhow!("{:#}", self.net.failure(e).error))?;
        if !resp.status().is_success() {
            bail!("GET answered {}", resp.status());
        }
        let body = self.net.read_capped(&mut resp, 16 << 20).map_err(|e| e.error)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// A page's fingerprint, asked conditionally: a 304 keeps the last one.
    fn page(&self, url: &str, what: &str) -> Result<String> {
        let last = self.pages.lock().expect("not poisoned").get(url).cloned();
        let mut req = self
            .net
            .client()
            .get(url)
            .header(reqwest::header::ACCEPT, "text/html, application/vnd.pypi.simple.v1+json;q=0.9");
        if let Some((etag, modified, _)) = &last {
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            if let Some(m) = modified {
                req = req.header(IF_MODIFIED_SINCE, m);
            }
        }
        let mut resp = req.send().map_err(|e| anyhow!("{what}: {:#}", self.net.failure(e).error))?;
        if resp.status() == StatusCode::NOT_MODIFIED
            && let Some((_, _, fp)) = last
        {
            return Ok(fp);
        }
        if !resp.status().is_success() {
            bail!("{what}: {url} answered {}", resp.status());
        }
        let header =
            |n| resp.headers().get(n).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string);
        let (etag, modified) = (header(ETAG), header(LAST_MODIFIED));
        let body = self.net.read_capped(&mut resp, 64 << 20).map_err(|e| e.error.context(what.to_string()))?;
        let fp = Digest::of(&body).to_string();
        self.pages.lock().expect("not poisoned").insert(url.to_string(), (etag, modified, fp.clone()));
        Ok(fp)
    }
}

/// The PEP 503 normalized project name a requirement line starts with.
fn project_name(req: &str) -> Option<String> {
    let name: String =
        req.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
    if name.is_empty() {
        return None;
    }
    Some(crate::pypi::normalize(&name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn project_names_are_normalized() {
        assert_eq!(super::project_name("Oslo_Config>=9").as_deref(), Some("oslo-config"));
        assert_eq!(super::project_name("requests[socks] ; python_version>'3'").as_deref(), Some("requests"));
        assert_eq!(super::project_name(">=1"), None);
    }
}
