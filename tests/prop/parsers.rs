//! The parsers that read what others wrote: the PEP 691 JSON and PEP 503 HTML project
//! pages an index serves, requirement lines (from the spec, requirement files and the
//! Requires-Dist of downloaded metadata), and `manifest.json` (which `airlock inspect`
//! parses before it trusts it). On arbitrary bytes and on well-formed input carrying
//! hostile values: no panic, answers that keep their promises, and memory in proportion
//! to the input.
//!
//! The memory factors are measured on 1 MiB inputs of the most expensive shapes found:
//! a JSON page of minimal file entries takes about 43 times its size (each entry becomes
//! an `IndexFile` with an absolute URL), an HTML page of minimal links about 20, a
//! manifest of tiny JSON values about 54 (a `serde_json::Value` per value, for the
//! schema check), a requirement line of many specifiers about 36. The bounds below leave
//! some room above those; they exist to catch growth that is not linear and regressions
//! like the schema check that built every error before reporting the first (1 MiB of
//! `{}` artifacts took 1.3 GB).

use std::collections::BTreeMap;

use airlock::bundle::manifest;
use airlock::digest::Digest;
use airlock::pypi;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Value, json};

use crate::{peak, serial};

/// What any parse may take regardless of its input's size.
const SLACK: usize = 256 << 10;
/// Peak allocation per input byte, at most.
const JSON_PAGE_FACTOR: usize = 48;
const HTML_PAGE_FACTOR: usize = 24;
const REQUIREMENT_FACTOR: usize = 48;
const MANIFEST_FACTOR: usize = 64;

fn page_url() -> reqwest::Url {
    "https://pypi.mirror.example/simple/project/".parse().unwrap()
}

fn bounded(what: &str, input: usize, peak: usize, factor: usize) -> Result<(), TestCaseError> {
    prop_assert!(
        peak <= factor * input + SLACK,
        "{what}: {input} bytes of input took {peak} bytes at peak (more than {factor}x)"
    );
    Ok(())
}

/// What a parsed index file promises: an absolute URL without fragment, and a digest
/// only where the page gave a valid one.
fn index_files_hold(files: &[pypi::IndexFile]) -> Result<(), TestCaseError> {
    for f in files {
        let url = reqwest::Url::parse(&f.url);
        prop_assert!(url.is_ok(), "not an absolute URL: {:?}", f.url);
        prop_assert!(url.unwrap().fragment().is_none(), "a fragment is left in {:?}", f.url);
    }
    Ok(())
}

/// Build what each parser builds once per process (the compiled schema, its regexes)
/// before anything is measured.
fn warm() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let m = manifest::parse(&serde_json::to_vec(&sample_manifest()).unwrap()).unwrap();
        let _ = manifest::parse(&m.to_bytes());
        let _ = pypi::parse_json_page(br#"{"files":[{"filename":"a","url":"a"}]}"#, &page_url());
        let _ = pypi::parse_html_page(r#"<a href="a">a</a>"#, &page_url());
        let _ = pypi::parse_requirement_line("a[b]>=1; python_version > '3'");
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x00a1_710c),
        ..ProptestConfig::default()
    }
}

fn json_page(bytes: &[u8]) -> Result<Vec<pypi::IndexFile>, TestCaseError> {
    warm();
    let (r, p) = peak(|| pypi::parse_json_page(bytes, &page_url()));
    bounded("PEP 691 page", bytes.len(), p, JSON_PAGE_FACTOR)?;
    let files = r.unwrap_or_default();
    index_files_hold(&files)?;
    Ok(files)
}

fn html_page(html: &str) -> Result<Vec<pypi::IndexFile>, TestCaseError> {
    warm();
    let (r, p) = peak(|| pypi::parse_html_page(html, &page_url()));
    bounded("PEP 503 page", html.len(), p, HTML_PAGE_FACTOR)?;
    let files = r.unwrap_or_default();
    index_files_hold(&files)?;
    Ok(files)
}

fn requirement(line: &str) -> Result<(), TestCaseError> {
    warm();
    let (r, p) = peak(|| pypi::parse_requirement_line(line).map(|r| r.to_string()));
    bounded("requirement line", line.len(), p, REQUIREMENT_FACTOR)?;
    if let Ok(r) = r {
        prop_assert!(!r.is_empty());
    }
    Ok(())
}

/// Parse a manifest; what parses must also survive the uses that follow (totals, the
/// round trip through its own bytes).
fn manifest_bytes(bytes: &[u8]) -> Result<Option<manifest::Manifest>, TestCaseError> {
    warm();
    let (r, p) = peak(|| manifest::parse(bytes));
    bounded("manifest", bytes.len(), p, MANIFEST_FACTOR)?;
    let Ok(m) = r else { return Ok(None) };
    let _ = m.total_blob_bytes();
    let again = manifest::parse(&m.to_bytes());
    prop_assert_eq!(again.as_ref(), Ok(&m), "the manifest does not round-trip");
    Ok(Some(m))
}

/// Values a hostile page or manifest may put anywhere.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1.5e300)),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(hostile_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("../../etc/passwd".to_string()),
        Just("/absolute".to_string()),
        Just("//other.example/x".to_string()),
        Just("file:///etc/passwd".to_string()),
        Just("javascript:alert(1)".to_string()),
        Just("http://[::1".to_string()),
        Just("a\nb\0c\r\n".to_string()),
        Just("x#sha256=zz".to_string()),
        Just(format!("x#sha256={}", "A".repeat(64))),
        Just("sha256:".to_string() + &"0".repeat(64)),
        Just("é\u{202e}\u{feff}".to_string()),
        Just("x".repeat(5000)),
        "\\PC{0,24}",
        "[a-z0-9._/-]{1,16}",
    ]
}

/// The pieces a PEP 503 page is made of, and some it should not have.
const HTML_TOKENS: &[&str] = &[
    "<a",
    "<A HREF=",
    " href=\"",
    " href='",
    "\"",
    "'",
    ">",
    "</a>",
    "</A >",
    "<base href=\"https://other.example/x/\">",
    "<base href=\"::\">",
    "&amp;",
    "&#x110000;",
    "&#99999999999;",
    "&#xD800;",
    "&",
    ";",
    " data-yanked",
    " data-requires-python=\"&gt;=3\"",
    " data-core-metadata=\"sha256=zz\"",
    " data-dist-info-metadata=true",
    "=",
    " ",
    "/",
    "#sha256=",
    "é",
    "<",
    "<!--",
    "-->",
];

/// The pieces of a requirement line.
const REQUIREMENT_TOKENS: &[&str] = &[
    "name",
    "Name_2.x",
    "[",
    "]",
    ",",
    "extra",
    "==",
    "===",
    "~=",
    "!=",
    ">=",
    "<",
    "1.0",
    "1.*",
    "1.0a1.post2.dev3+local",
    "@",
    " https://files.example/x.whl",
    " file:///x",
    ";",
    " python_version",
    " '3.11'",
    " and",
    " or",
    " not in",
    " extra == 'x'",
    "(",
    ")",
    "\"",
    "'",
    " ",
    "\\",
    "#",
    "--hash=sha256:00",
    "é",
    "\0",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_page_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _s = serial();
        json_page(&bytes)?;
    }

    /// A page of the right shape whose every value may be hostile.
    #[test]
    fn json_page_hostile_values(
        files in proptest::collection::vec(
            (hostile_string(), hostile_string(), proptest::collection::btree_map(hostile_string(), hostile_string(), 0..3),
             hostile_value(), hostile_value(), hostile_value(), hostile_value()),
            0..12),
        extra in hostile_value(),
    ) {
        let _s = serial();
        let files: Vec<Value> = files
            .into_iter()
            .map(|(filename, url, hashes, yanked, meta, rp, size)| {
                json!({"filename": filename, "url": url, "hashes": hashes, "yanked": yanked,
                       "core-metadata": meta, "requires-python": rp, "size": size})
            })
            .collect();
        let page = json!({"meta": {"api-version": "1.1"}, "name": "p", "files": files.clone(), "extra": extra});
        let bytes = serde_json::to_vec(&page).unwrap();
        let parsed = json_page(&bytes)?;
        if !parsed.is_empty() {
            prop_assert_eq!(parsed.len(), files.len());
        }
        for (f, v) in parsed.iter().zip(&files) {
            prop_assert_eq!(Some(f.filename.as_str()), v["filename"].as_str());
            let given = v["hashes"]["sha256"].as_str().map(str::to_ascii_lowercase);
            prop_assert_eq!(f.sha256.map(|d| d.hex()), given.filter(|h| Digest::from_hex(h).is_ok()));
            prop_assert_eq!(f.size, v["size"].as_u64());
            let yanked = match &v["yanked"] { Value::Bool(true) => Some(String::new()), Value::String(s) => Some(s.clone()), _ => None };
            prop_assert_eq!(&f.yanked, &yanked);
        }
    }

    #[test]
    fn html_page_arbitrary_text(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _s = serial();
        html_page(&String::from_utf8_lossy(&bytes))?;
    }

    /// Tag soup from the pieces a PEP 503 page is made of, in any order.
    #[test]
    fn html_page_tag_soup(tokens in proptest::collection::vec(prop_oneof![
        proptest::sample::select(HTML_TOKENS).prop_map(String::from),
        hostile_string(),
], 0..64)) {
        let _s = serial();
        html_page(&tokens.concat())?;
    }

    /// A well-formed page: every link is found, with the digest its fragment gives.
    #[test]
    fn html_page_links_are_found(links in proptest::collection::vec(
        ("[a-z][a-z0-9_.-]{0,12}", proptest::option::of("[0-9a-f]{64}"), any::<bool>()), 0..16)
    ) {
        let _s = serial();
        let body: String = links
            .iter()
            .map(|(name, sha, yanked)| {
                let frag = sha.as_ref().map(|h| format!("#sha256={h}")).unwrap_or_default();
                let y = if *yanked { " data-yanked=\"\"" } else { "" };
                format!("<a href=\"../../files/{name}{frag}\"{y}>{name}</a>\n")
            })
            .collect();
        let files = html_page(&format!("<!DOCTYPE html><html><body>\n{body}</body></html>"))?;
        prop_assert_eq!(files.len(), links.len());
        for (f, (name, sha, yanked)) in files.iter().zip(&links) {
            prop_assert_eq!(&f.filename, name);
            prop_assert_eq!(&f.url, &format!("https://pypi.mirror.example/files/{name}"));
            prop_assert_eq!(f.sha256.map(|d| d.hex()), sha.clone());
            prop_assert_eq!(f.yanked.is_some(), *yanked);
        }
    }

    #[test]
    fn requirement_line_arbitrary(line in "\\PC{0,256}") {
        let _s = serial();
        requirement(&line)?;
    }

    /// Requirement-shaped lines: names, extras, specifiers, URLs and markers, jumbled.
    #[test]
    fn requirement_line_shaped(tokens in proptest::collection::vec(proptest::sample::select(REQUIREMENT_TOKENS), 0..40)) {
        let _s = serial();
        requirement(&tokens.concat())?;
    }

    #[test]
    fn manifest_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _s = serial();
        manifest_bytes(&bytes)?;
    }

    /// A valid manifest with one value, anywhere in it, replaced by a hostile one (or a
    /// key added): a parse that succeeds still keeps every promise.
    #[test]
    fn manifest_hostile_values(at in any::<proptest::sample::Index>(), value in hostile_value(), key in hostile_string()) {
        let _s = serial();
        let mut m = sample_manifest();
        let mut slots = Vec::new();
        paths(&m, &mut Vec::new(), &mut slots);
        let slot = &slots[at.index(slots.len())];
        let target = slot.iter().fold(&mut m, |v, k| match k {
            Step::Key(k) => &mut v[k.as_str()],
            Step::At(i) => &mut v[*i],
        });
        match target {
            Value::Object(o) if key.len() % 3 == 0 => { o.insert(key, value); }
            t => *t = value,
        }
        manifest_bytes(&serde_json::to_vec(&m).unwrap())?;
    }
}

enum Step {
    Key(String),
    At(usize),
}

/// Every place in `v` (each value, nested ones included).
fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    let copy = |h: &Vec<Step>| {
        h.iter()
            .map(|s| match s {
                Step::Key(k) => Step::Key(k.clone()),
                Step::At(i) => Step::At(*i),
            })
            .collect()
    };
    out.push(copy(here));
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                here.push(Step::Key(k.clone()));
                paths(v, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                here.push(Step::At(i));
                paths(v, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// A valid manifest with an artifact of every kind.
fn sample_manifest() -> Value {
    let d = |s: &str| Digest::of(s.as_bytes());
    let mut blobs: Vec<(Digest, u64, &str)> = vec![
        (d("file"), 5, "application/octet-stream"),
        (d("image manifest"), 300, "application/vnd.oci.image.manifest.v1+json"),
        (d("layer"), 1 << 20, "application/vnd.oci.image.layer.v1.tar"),
        (d("git"), 4096, "application/x-git-bundle"),
        (d("wheel"), 2048, "application/vnd.python.wheel"),
        (d("deb"), 1024, "application/vnd.debian.binary-package"),
    ];
    blobs.sort_by_key(|b| b.0);
    let oid = "a".repeat(40);
    let refs: BTreeMap<&str, &str> = [("refs/heads/main", oid.as_str()), ("refs/tags/1.0", oid.as_str())].into();
    json!({
        "mediaType": manifest::MANIFEST_MEDIA_TYPE,
        "schemaVersion": 1,
        "name": "site",
        "version": "1",
        "created": "2026-01-01T00:00:00Z",
        "generator": "airlock test",
        "artifacts": [
            {"kind": "file", "name": "tool.tar.gz", "upstream": "https://files.mirror.example/tool.tar.gz",
             "purl": "pkg:generic/tool.tar.gz", "path": "tools/tool.tar.gz", "blobs": [d("file").to_string()]},
            {"kind": "image", "name": "registry.mirror.example/library/app:1.0", "upstream": "registry.mirror.example/library/app:1.0",
             "purl": "pkg:oci/app", "platform": "linux/amd64", "topSize": 300,
             "topMediaType": "application/vnd.oci.image.manifest.v1+json",
             "blobs": [d("image manifest").to_string(), d("layer").to_string()]},
            {"kind": "git", "name": "service", "upstream": "https://git.mirror.example/service.git",
             "purl": "pkg:generic/service", "refs": refs, "head": "refs/heads/main",
             "prerequisites": ["b".repeat(40)], "blobs": [d("git").to_string()]},
            {"kind": "python", "name": "pkg-1.0-py3-none-any.whl", "version": "1.0",
             "upstream": "https://pypi.mirror.example/simple/pkg/", "purl": "pkg:pypi/pkg@1.0",
             "index": "pypi", "project": "pkg", "requiresPython": ">=3.8", "blobs": [d("wheel").to_string()]},
            {"kind": "debian", "name": "hello", "version": "2.10-3", "arch": "amd64",
             "upstream": "https://deb.mirror.example/debian", "purl": "pkg:deb/debian/hello@2.10-3?arch=amd64",
             "path": "pool/main/h/hello/hello_2.10-3_amd64.deb", "control": "Package: hello\nVersion: 2.10-3\n",
             "suite": "site", "component": "main", "architectures": ["amd64"], "blobs": [d("deb").to_string()]},
        ],
        "blobs": blobs.iter().map(|(d, size, mt)| json!({"digest": d.to_string(), "size": size, "mediaType": mt})).collect::<Vec<_>>(),
    })
}

#[test]
fn the_sample_manifest_is_valid() {
    let _s = serial();
    let bytes = serde_json::to_vec(&sample_manifest()).unwrap();
    let m = manifest::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.artifacts.len(), 5);
}

/// `n` bytes: `head`, then `unit` repeated with `sep` between, then `tail`.
fn repeated(n: usize, head: &str, unit: &str, sep: &str, tail: &str) -> String {
    let mut s = String::from(head);
    while s.len() + unit.len() + tail.len() < n {
        s.push_str(unit);
        s.push_str(sep);
    }
    s.truncate(s.len() - sep.len());
    s.push_str(tail);
    s
}

/// 1 MiB inputs of the shapes that cost each parser most per byte.
#[test]
fn memory_stays_in_proportion_on_large_hostile_input() {
    let _s = serial();
    let n = 1 << 20;
    let check = |r: Result<(), TestCaseError>| r.unwrap_or_else(|e| panic!("{e}"));
    for page in [
        repeated(n, r#"{"files":["#, r#"{"filename":"","url":""}"#, ",", "]}"),
        repeated(n, r#"{"files":["#, r#"{"filename":"","url":"","hashes":{"a":"","b":""},"yanked":true}"#, ",", "]}"),
        repeated(n, r#"{"files":[],"x":["#, "0", ",", "]}"),
    ] {
        check(json_page(page.as_bytes()).map(drop));
    }
    for page in [
        repeated(n, "", r#"<a href="">x</a>"#, "", ""),
        repeated(n, "", r##"<a href="#sha256=00" data-yanked data-core-metadata="sha256=00">x</a>"##, "\n", ""),
        repeated(n, "<a href=\"x\">", "&#x41;&amp;", "", "</a>"),
        repeated(n, "", "<a href=\"x\"", " ", ""),
    ] {
        check(html_page(&page).map(drop));
    }
    // 64 KiB: requirement lines are short, and pep508_rs takes time quadratic in the
    // number of extras (1 MiB of `name[e,e,...]` took about 40 s).
    for line in [
        repeated(n / 16, "name[", "e", ",", "]"),
        repeated(n / 16, "name", ">=1.0", ",", ""),
        repeated(n / 16, "name; ", "python_version > '3'", " and ", ""),
        repeated(n / 16, "name @ https://files.example/", "x", "/", ".whl"),
    ] {
        check(requirement(&line));
    }
    for m in [
        repeated(n, r#"{"x":["#, "0", ",", "]}"),
        repeated(n, r#"{"artifacts":["#, "{}", ",", "]}"),
        repeated(n, r#"{"artifacts":[{"kind":"git","architectures":["#, r#""""#, ",", "]}]}"),
    ] {
        check(manifest_bytes(m.as_bytes()).map(drop));
    }
}

/// Declared sizes are the signer's word (or, for `airlock inspect`, anyone's), and they
/// are added up: a manifest whose sizes overflow a sum is refused, not a panic (debug)
/// or a wrong total (release).
#[test]
fn declared_sizes_that_overflow_a_sum_are_refused() {
    let _s = serial();
    let mut m = sample_manifest();
    for b in m["blobs"].as_array_mut().unwrap() {
        b["size"] = json!(u64::MAX / 4);
    }
    let bytes = serde_json::to_vec(&m).unwrap();
    assert_eq!(manifest_bytes(&bytes).unwrap_or_else(|e| panic!("{e}")), None);
    let err = manifest::parse(&bytes).unwrap_err();
    assert!(err.contains("the blob sizes add up to more than 2^64 bytes"), "{err}");
    m["blobs"][0]["size"] = json!(u64::MAX - (1 << 20));
    for b in m["blobs"].as_array_mut().unwrap().iter_mut().skip(1) {
        b["size"] = json!(1);
    }
    let big = manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(big.total_blob_bytes(), u64::MAX - (1 << 20) + 5);
}
