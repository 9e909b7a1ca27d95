//! Bad input, all derived from one good bundle built once per test: every member type
//! edited or removed, truncations, trailing data and frames, bad volumes, hostile names
//! signed by the trusted key, huge declared sizes. For each mutation `verify` and
//! `import` (into the store, into a registry, into a raw PUT target) must give the
//! documented exit status (1 corrupt, 3 not authentic, 4 not a bundle) and the same
//! one-line cause, write nothing to any target, and stay under 150 MiB of RSS.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock::bundle::sign::SecretKey;
use airlock::digest::Digest;
use serde_json::Value;

use crate::common::nginx::{Nginx, PASSWORD, USER};
use crate::common::registry::Registry;
use crate::common::tarhack::{self, Member};
use crate::common::{Run, TestContext, require};

const CORRUPT: i32 = 1;
const NOT_AUTHENTIC: i32 = 3;
const NOT_A_BUNDLE: i32 = 4;
/// The most a refusal may take, whatever the input (`/usr/bin/time` reports KiB).
const MAX_RSS_KIB: u64 = 150 * 1024;

/// One good bundle in every form, and what it is made of.
struct Good {
    cx: TestContext,
    /// An uncompressed bundle.
    plain: PathBuf,
    /// The default, zstd-compressed bundle.
    zstd: PathBuf,
    /// The zstd bundle split into 4 KiB volumes (this directory holds nothing else).
    vols: PathBuf,
    members: Vec<Member>,
    manifest: Value,
    key: SecretKey,
}

fn good() -> Good {
    require("/usr/bin/time");
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let plain = cx.bundle(&spec, "plain", &["--compression", "none"]).join("fixtures-1.0.airlock");
    let zstd = cx.bundle(&spec, "zstd", &[]).join("fixtures-1.0.airlock");
    let vols = cx.bundle(&spec, "vols", &["--split", "4KiB"]);
    let members = tarhack::parse(&std::fs::read(&plain).unwrap());
    let manifest = serde_json::from_slice(&members[0].data).unwrap();
    let key = SecretKey::load(&cx.config().join("keys/airlock.key")).unwrap();
    Good { cx, plain, zstd, vols, members, manifest, key }
}

impl Good {
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.cx.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn forge(&self, name: &str, edit: impl FnOnce(&mut Vec<Member>)) -> PathBuf {
        let mut m = self.members.clone();
        edit(&mut m);
        self.write(name, &tarhack::build(&m))
    }

    /// The members with the manifest replaced by `edit` of it, signed again by the
    /// trusted key, and its derived members (`index.json`, `SHA256SUMS`) made to match:
    /// a hostile manifest only a trusted key could make.
    fn resigned(&self, edit: impl FnOnce(&mut Value)) -> Vec<Member> {
        let mut v = self.manifest.clone();
        edit(&mut v);
        let mut bytes = serde_json::to_vec_pretty(&v).unwrap();
        bytes.push(b'\n');
        let mut m = self.members.clone();
        m[1].data = self.key.sign(&bytes, "timestamp:0\tfile:manifest.json\thashed").into_bytes();
        m[0].data = bytes;
        if let Ok(parsed) = serde_json::from_value::<airlock::bundle::manifest::Manifest>(v) {
            for (name, data) in airlock::bundle::layout::members(&parsed) {
                let i = m.iter().position(|x| x.name == name.as_bytes()).unwrap();
                m[i].data = data;
            }
        }
        let by_name: BTreeMap<Vec<u8>, Vec<u8>> = m.iter().map(|x| (x.name.clone(), x.data.clone())).collect();
        let sums: String = String::from_utf8(m[2].data.clone())
            .unwrap()
            .lines()
            .map(|l| {
                let name = l.split_once("  ").unwrap().1;
                format!("{}  {name}\n", Digest::of(&by_name[name.as_bytes()]).hex())
            })
            .collect();
        m[2].data = sums.into_bytes();
        m
    }

    fn blob_index(&self, m: &[Member], d: &str) -> usize {
        let hex = d.trim_start_matches("sha256:");
        m.iter().position(|x| x.name == format!("blobs/sha256/{hex}").as_bytes()).unwrap()
    }

    /// The first artifact of `kind` in a manifest.
    fn artifact<'a>(v: &'a mut Value, kind: &str) -> &'a mut Value {
        v["artifacts"].as_array_mut().unwrap().iter_mut().find(|a| a["kind"] == kind).unwrap()
    }
}

/// A measured run of airlock: its result and peak RSS in KiB.
fn measured(cx: &TestContext, args: &[&str], env: &[(&str, &str)], scratch: &Path) -> (Run, u64) {
    let inner = cx.command();
    let rss = scratch.join(format!("rss-{}", uuid_like()));
    let mut c = Command::new("/usr/bin/time");
    c.env_clear().current_dir(cx.dir.path());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.envs(env.iter().copied());
    c.arg("-f").arg("%M").arg("-o").arg(&rss).arg(inner.get_program()).args(args);
    let o = c.output().unwrap();
    let kib = std::fs::read_to_string(&rss).unwrap().lines().last().unwrap().trim().parse().unwrap();
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (run, kib)
}

fn uuid_like() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Every file under `root` with its content digest (what "nothing was written" compares).
fn tree(root: &Path, skip: &[&str]) -> Vec<(String, Digest)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir() && !skip.iter().any(|s| e.file_name() == *s))
        // The ledger records refused runs too: it is not a target.
        .filter(|e| !e.file_name().to_string_lossy().starts_with("ledger.sqlite"))
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            (rel, Digest::of(&std::fs::read(e.path()).unwrap_or_default()))
        })
        .collect();
    v.sort();
    v
}

struct Case {
    name: String,
    bundle: PathBuf,
    code: i32,
    needle: String,
}

/// The mutations, each written under `cases/`.
struct Cases<'a> {
    g: &'a Good,
    list: Vec<Case>,
}

impl Cases<'_> {
    fn add(&mut self, name: &str, bundle: PathBuf, code: i32, needle: &str) {
        assert!(!self.list.iter().any(|c| c.name == name), "two cases named {name}");
        self.list.push(Case { name: name.into(), bundle, code, needle: needle.into() });
    }
    fn bytes(&mut self, name: &str, bytes: &[u8], code: i32, needle: &str) {
        let p = self.g.write(&format!("cases/{name}.airlock"), bytes);
        self.add(name, p, code, needle);
    }
    fn forge(&mut self, name: &str, edit: impl FnOnce(&mut Vec<Member>), code: i32, needle: &str) {
        let p = self.g.forge(&format!("cases/{name}.airlock"), edit);
        self.add(name, p, code, needle);
    }
    /// The same mutation as a plain tar and as a zstd stream.
    fn forge_both(&mut self, name: &str, edit: impl Fn(&mut Vec<Member>), code: i32, needle: &str) {
        let p = self.g.forge(&format!("cases/{name}.airlock"), &edit);
        let z = tarhack::compress(&std::fs::read(&p).unwrap());
        self.add(name, p, code, needle);
        self.bytes(&format!("{name}.zst"), &z, code, needle);
    }
    fn resigned(&mut self, name: &str, edit: impl FnOnce(&mut Value), code: i32, needle: &str) {
        let m = self.g.resigned(edit);
        self.bytes(name, &tarhack::build(&m), code, needle);
    }
    /// A copy of the split bundle, changed by `edit` (given the directory and the volume
    /// names), named by its first volume.
    fn volumes(&mut self, name: &str, edit: impl FnOnce(&Path, &[String]), code: i32, needle: &str) {
        let dir = self.g.cx.path(&format!("cases/{name}"));
        crate::common::copy_dir(&self.g.vols, &dir);
        let list: Value =
            serde_json::from_slice(&std::fs::read(dir.join("fixtures-1.0.airlock.volumes")).unwrap()).unwrap();
        let names: Vec<String> =
            list["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().into()).collect();
        edit(&dir, &names);
        self.add(name, dir.join(&names[0]), code, needle);
    }
    /// The bundle unpacked into a directory, changed by `edit`.
    fn unpacked(&mut self, name: &str, edit: impl FnOnce(&Path), code: i32, needle: &str) {
        let dir = self.g.cx.path(&format!("cases/{name}"));
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        for m in &self.g.members {
            std::fs::write(dir.join(String::from_utf8(m.name.clone()).unwrap()), &m.data).unwrap();
        }
        edit(&dir);
        self.add(name, dir, code, needle);
    }
}

fn mutations(g: &Good) -> Vec<Case> {
    std::fs::create_dir_all(g.cx.path("cases")).unwrap();
    let mut c = Cases { g, list: Vec::new() };
    let plain = std::fs::read(&g.plain).unwrap();
    let zstd = std::fs::read(&g.zstd).unwrap();
    let at = |name: &str| g.members.iter().position(|m| m.name == name.as_bytes()).unwrap();

    // Every member type.
    c.forge(
        "manifest-edited",
        |m| m[0].data = String::from_utf8(m[0].data.clone()).unwrap().replace("NOTICE", "N0TICE").into_bytes(),
        NOT_AUTHENTIC,
        "manifest.json does not match its signature",
    );
    c.forge("manifest-missing", |m| drop(m.remove(0)), NOT_A_BUNDLE, "the first member is manifest.json.minisig");
    c.forge("manifest-after-signature", |m| m.swap(0, 1), NOT_A_BUNDLE, "not manifest.json");
    c.forge(
        "signature-edited",
        |m| {
            let text = String::from_utf8(m[1].data.clone()).unwrap();
            let line = text.lines().nth(1).unwrap().to_string();
            let flipped: String = line
                .chars()
                .enumerate()
                .map(|(i, ch)| if i == 20 { if ch == 'A' { 'B' } else { 'A' } } else { ch })
                .collect();
            m[1].data = text.replace(&line, &flipped).into_bytes();
        },
        NOT_AUTHENTIC,
        "manifest.json",
    );
    c.forge("signature-missing", |m| drop(m.remove(1)), NOT_AUTHENTIC, "is not followed by its signature");
    c.forge("signature-empty", |m| m[1].data.clear(), NOT_AUTHENTIC, "manifest.json is not signed");
    let stranger = TestContext::new();
    stranger.key();
    let other_key = SecretKey::load(&stranger.config().join("keys/airlock.key")).unwrap();
    c.forge(
        "signature-untrusted",
        |m| m[1].data = other_key.sign(&m[0].data, "timestamp:0\tfile:manifest.json\thashed").into_bytes(),
        NOT_AUTHENTIC,
        "which is not trusted",
    );
    c.forge(
        "sums-edited",
        |m| m[2].data = String::from_utf8(m[2].data.clone()).unwrap().replacen('a', "b", 1).into_bytes(),
        CORRUPT,
        "SHA256SUMS does not match the manifest",
    );
    c.forge("sums-extra-line", |m| m[2].data.extend_from_slice(b"00  x\n"), CORRUPT, "SHA256SUMS does not match");
    c.forge("sums-missing", |m| drop(m.remove(2)), CORRUPT, "comes where SHA256SUMS belongs");
    let layout = at("oci-layout");
    let index = at("index.json");
    c.forge("oci-layout-edited", |m| m[layout].data[2] ^= 1, CORRUPT, "oci-layout does not match the manifest");
    c.forge("oci-layout-missing", |m| drop(m.remove(layout)), CORRUPT, "index.json comes where oci-layout belongs");
    c.forge("index-json-edited", |m| m[index].data[10] ^= 1, CORRUPT, "index.json does not match the manifest");
    c.forge("index-json-missing", |m| drop(m.remove(index)), CORRUPT, "comes where index.json belongs");
    // The SBOM and the provenance: named members whose digests the manifest signs.
    let sbom = at("sbom.cdx.json");
    let prov = at("provenance.intoto.json");
    for (name, i) in [("sbom", sbom), ("provenance", prov)] {
        let member = String::from_utf8(g.members[i].name.clone()).unwrap();
        let flip = |m: &mut Vec<Member>| {
            let n = m[i].data.len();
            m[i].data[n / 2] ^= 0x20;
        };
        c.forge(&format!("{name}-edited"), flip, CORRUPT, &format!("{member} is damaged: its bytes hash to"));
        c.unpacked(
            &format!("{name}-edited-unpacked"),
            |d| {
                let p = d.join(&member);
                let mut b = std::fs::read(&p).unwrap();
                b[10] ^= 1;
                std::fs::write(&p, b).unwrap();
            },
            CORRUPT,
            &format!("{member} is damaged"),
        );
    }
    c.forge(
        "sbom-missing",
        |m| drop(m.remove(sbom)),
        CORRUPT,
        "provenance.intoto.json comes where sbom.cdx.json belongs",
    );
    c.forge(
        "provenance-missing",
        |m| drop(m.remove(prov)),
        CORRUPT,
        "oci-layout comes where provenance.intoto.json belongs",
    );
    c.resigned(
        "sbom-size-lies",
        |v| v["sbom"]["size"] = (v["sbom"]["size"].as_u64().unwrap() + 1).into(),
        CORRUPT,
        "sbom.cdx.json is",
    );
    // A provenance envelope the manifest's signer did not sign, named in a manifest it
    // did sign: its digest matches, its DSSE signature does not.
    let env: Value = serde_json::from_slice(&g.members[prov].data).unwrap();
    let payload = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap()
    };
    let foreign = airlock::bundle::provenance::envelope(&serde_json::from_slice(&payload).unwrap(), &other_key);
    let mut m = g.resigned(|v| {
        v["provenance"]["digest"] = Digest::of(&foreign).to_string().into();
        v["provenance"]["size"] = foreign.len().into();
    });
    m[prov].data = foreign.clone();
    let sums: String = String::from_utf8(m[2].data.clone())
        .unwrap()
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, "provenance.intoto.json")) => format!("{}  provenance.intoto.json\n", Digest::of(&foreign).hex()),
            _ => format!("{l}\n"),
        })
        .collect();
    m[2].data = sums.into_bytes();
    c.bytes(
        "provenance-signed-by-another-key",
        &tarhack::build(&m),
        CORRUPT,
        "provenance.intoto.json: no signature in the DSSE envelope verifies with key",
    );
    // Each kind of blob, by media type: one flipped byte, as plain tar and as zstd.
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for b in g.manifest["blobs"].as_array().unwrap() {
        kinds.entry(b["mediaType"].as_str().unwrap().into()).or_insert(b["digest"].as_str().unwrap().into());
    }
    assert!(kinds.len() >= 8, "the fixtures carry files, git, images, Python and Debian: {kinds:?}");
    for (i, (media_type, digest)) in kinds.iter().enumerate() {
        let b = g.blob_index(&g.members, digest);
        let name = format!("blob-{i}-{}", media_type.rsplit(['/', '.']).next().unwrap());
        let needle = format!("blob {digest} is damaged");
        c.forge_both(
            &name,
            |m| {
                let n = m[b].data.len();
                m[b].data[n / 2] ^= 0x20;
            },
            CORRUPT,
            &needle,
        );
    }
    let first_blob = g.members.iter().position(|m| m.name.starts_with(b"blobs/")).unwrap();
    let hex = String::from_utf8(g.members[first_blob].name[13..].to_vec()).unwrap();
    c.forge(
        "blob-missing",
        |m| drop(m.remove(first_blob)),
        CORRUPT,
        &format!("blob sha256:{hex} listed in the manifest is missing"),
    );
    c.forge(
        "blob-unlisted",
        |m| m.push(Member::file(&format!("blobs/sha256/{}", "0".repeat(64)), b"x".to_vec())),
        CORRUPT,
        "is not listed in the manifest",
    );
    c.forge("blob-twice", |m| m.push(m[first_blob].clone()), CORRUPT, "appears twice");
    c.forge("blobs-out-of-order", |m| m.swap(first_blob, first_blob + 1), CORRUPT, "is out of order");
    c.forge(
        "blob-short",
        |m| {
            m[first_blob].data.pop();
        },
        CORRUPT,
        "bytes in the bundle, the manifest says",
    );
    c.forge(
        "member-escapes",
        |m| m.push(Member::file("../x", b"owned\n".to_vec())),
        CORRUPT,
        "member ../x has an unsafe path",
    );
    c.forge(
        "member-absolute",
        |m| m.push(Member::file("/etc/x", b"owned\n".to_vec())),
        CORRUPT,
        "member /etc/x has an unsafe path",
    );
    c.forge(
        "member-symlink",
        |m| {
            let mut l = Member::file("blobs/sha256/link", Vec::new());
            l.kind = b'2';
            l.link = b"/etc/passwd".to_vec();
            m.push(l);
        },
        CORRUPT,
        "member blobs/sha256/link is a symlink",
    );
    c.forge(
        "member-hardlink",
        |m| {
            let mut l = Member::file("blobs/sha256/link", Vec::new());
            l.kind = b'1';
            l.link = b"manifest.json".to_vec();
            m.insert(3, l);
        },
        CORRUPT,
        "is a hard link",
    );
    c.forge(
        "member-directory",
        |m| {
            let mut d = Member::file("blobs/", Vec::new());
            d.kind = b'5';
            m.insert(3, d);
        },
        CORRUPT,
        "is a directory",
    );
    c.forge(
        "first-member-other",
        |m| m[0].name = b"README".to_vec(),
        NOT_A_BUNDLE,
        "the first member is README, not manifest.json",
    );

    // Truncations: ten points through the compressed stream, and the plain stream cut in
    // its head, at its last blob, and inside or before its end-of-archive blocks.
    for k in 1..=10 {
        c.bytes(&format!("zstd-cut-{k}"), &zstd[..zstd.len() * k / 11], CORRUPT, "truncated");
    }
    c.bytes("zstd-cut-last-byte", &zstd[..zstd.len() - 1], CORRUPT, "zstd stream is truncated or damaged");
    c.bytes("plain-cut-in-manifest", &plain[..900], CORRUPT, "truncated: manifest.json ends after");
    let last = g.members.last().unwrap().data.len();
    let last_start = plain.len() - 1024 - last.div_ceil(512) * 512;
    c.bytes("plain-cut-in-last-blob", &plain[..last_start + last / 2], CORRUPT, "truncated: blob");
    c.bytes(
        "plain-without-end-blocks",
        &plain[..plain.len() - 1024],
        CORRUPT,
        "ends without its end-of-archive marker",
    );
    c.bytes("plain-with-one-end-block", &plain[..plain.len() - 512], CORRUPT, "ends without its end-of-archive marker");
    c.bytes("plain-cut-in-end-block", &plain[..plain.len() - 100], CORRUPT, "ends without its end-of-archive marker");

    // Trailing data and frames.
    let with = |base: &[u8], tail: &[u8]| [base, tail].concat();
    c.bytes("plain-zero-padding", &with(&plain, &[0; 512]), CORRUPT, "data after the end of the archive");
    c.bytes("plain-record-padding", &with(&plain, &[0; 8192]), CORRUPT, "data after the end of the archive");
    c.bytes("plain-garbage", &with(&plain, b"garbage\n"), CORRUPT, "data after the end of the archive");
    c.bytes("zstd-zero-padding", &with(&zstd, &[0; 512]), CORRUPT, "zero padding after the zstd frame");
    c.bytes("zstd-garbage", &with(&zstd, b"garbage\n"), CORRUPT, "data after the zstd frame");
    let skippable = [&[0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0][..], b"evil"].concat();
    c.bytes("zstd-skippable-frame", &with(&zstd, &skippable), CORRUPT, "a skippable zstd frame after the zstd frame");
    c.bytes("zstd-second-frame", &with(&zstd, &tarhack::compress(b"more")), CORRUPT, "a second zstd frame");
    c.bytes("zstd-second-tar", &with(&zstd, &zstd), CORRUPT, "a second zstd frame");
    c.bytes(
        "zstd-leading-skippable-frame",
        &with(&skippable, &zstd),
        NOT_A_BUNDLE,
        "neither a zstd stream nor a tar archive",
    );
    // A frame that asks for a 128 MiB window is refused before the window is allocated.
    let mut wide = zstd::Encoder::new(Vec::new(), 3).unwrap();
    wide.window_log(27).unwrap();
    wide.include_checksum(true).unwrap();
    wide.write_all(&plain).unwrap();
    c.bytes("zstd-window-128mib", &wide.finish().unwrap(), CORRUPT, "Frame requires too much memory");
    c.bytes(
        "zstd-tar-with-garbage",
        &tarhack::compress(&with(&plain, b"garbage")),
        CORRUPT,
        "data after the end of the archive",
    );

    // Volumes: extra, missing, swapped, truncated, padded, damaged, and their signed list.
    c.volumes(
        "volume-extra",
        |d, v| {
            std::fs::copy(d.join(&v[0]), d.join(format!("fixtures-1.0.airlock.{:03}", v.len() + 1))).unwrap();
        },
        CORRUPT,
        "is beside the volumes of fixtures-1.0 but not in their signed volume list",
    );
    c.volumes(
        "volume-extra-backup",
        |d, v| {
            std::fs::copy(d.join(&v[1]), d.join(format!("{}.bak", v[1]))).unwrap();
        },
        CORRUPT,
        ".002.bak is beside the volumes",
    );
    c.volumes(
        "volume-missing",
        |d, v| std::fs::remove_file(d.join(&v[1])).unwrap(),
        CORRUPT,
        "volume fixtures-1.0.airlock.002 is missing",
    );
    c.volumes(
        "volume-missing-last",
        |d, v| std::fs::remove_file(d.join(v.last().unwrap())).unwrap(),
        CORRUPT,
        "is missing",
    );
    c.volumes(
        "volumes-swapped",
        |d, v| {
            let (a, b) = (d.join(&v[0]), d.join(&v[1]));
            let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            std::fs::write(&a, y).unwrap();
            std::fs::write(&b, x).unwrap();
        },
        CORRUPT,
        "volume fixtures-1.0.airlock.001 is damaged",
    );
    c.volumes(
        "volume-truncated",
        |d, v| {
            let p = d.join(&v[1]);
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..100]).unwrap();
        },
        CORRUPT,
        "volume fixtures-1.0.airlock.002 is truncated or padded",
    );
    c.volumes(
        "volume-padded",
        |d, v| {
            let p = d.join(v.last().unwrap());
            let mut b = std::fs::read(&p).unwrap();
            b.push(0);
            std::fs::write(&p, b).unwrap();
        },
        CORRUPT,
        "is truncated or padded",
    );
    c.volumes(
        "volume-damaged",
        |d, v| {
            let p = d.join(&v[1]);
            let mut b = std::fs::read(&p).unwrap();
            b[7] ^= 1;
            std::fs::write(&p, b).unwrap();
        },
        CORRUPT,
        "volume fixtures-1.0.airlock.002 is damaged",
    );
    c.volumes(
        "volume-list-edited",
        |d, _| {
            let p = d.join("fixtures-1.0.airlock.volumes");
            let t = std::fs::read_to_string(&p).unwrap().replacen("\"size\": 4096", "\"size\": 4095", 1);
            std::fs::write(&p, t).unwrap();
        },
        NOT_AUTHENTIC,
        "does not match its signature",
    );
    c.volumes(
        "volume-list-unsigned",
        |d, _| std::fs::remove_file(d.join("fixtures-1.0.airlock.volumes.minisig")).unwrap(),
        NOT_AUTHENTIC,
        "volume list signature",
    );
    c.volumes(
        "volume-list-missing",
        |d, _| std::fs::remove_file(d.join("fixtures-1.0.airlock.volumes")).unwrap(),
        NOT_A_BUNDLE,
        "volume list",
    );

    // Hostile names, signed by the trusted key: refused when the manifest is checked.
    c.resigned(
        "git-name-escapes",
        |v| Good::artifact(v, "git")["name"] = "../../x".into(),
        NOT_A_BUNDLE,
        "/name`: \"../../x\" does not match",
    );
    c.resigned(
        "git-ref-newline",
        |v| {
            let refs = Good::artifact(v, "git")["refs"].as_object_mut().unwrap();
            let oid = refs.values().next().unwrap().clone();
            refs.insert("refs/heads/x\ndelete refs/heads/main".into(), oid);
        },
        NOT_A_BUNDLE,
        "`refs/heads/x\\ndelete refs/heads/main` is not a valid git ref name",
    );
    c.resigned(
        "git-ref-dotdot",
        |v| {
            let refs = Good::artifact(v, "git")["refs"].as_object_mut().unwrap();
            let oid = refs.values().next().unwrap().clone();
            refs.insert("refs/heads/../../../config".into(), oid);
        },
        NOT_A_BUNDLE,
        "is not a valid git ref name",
    );
    c.resigned(
        "git-head-elsewhere",
        |v| Good::artifact(v, "git")["head"] = "refs/heads/nowhere".into(),
        NOT_A_BUNDLE,
        "head `refs/heads/nowhere` is not one of its refs",
    );
    c.resigned(
        "git-object-id",
        |v| {
            let refs = Good::artifact(v, "git")["refs"].as_object_mut().unwrap();
            let k = refs.keys().next().unwrap().clone();
            refs[&k] = "HEAD; rm -rf /".into();
        },
        NOT_A_BUNDLE,
        "\"HEAD; rm -rf /\" does not match",
    );
    c.resigned(
        "oci-repository-escapes",
        |v| Good::artifact(v, "image")["name"] = "fixtures.example/../x:1.0".into(),
        NOT_A_BUNDLE,
        "`../x` is not a valid image repository name",
    );
    c.resigned(
        "oci-tag-newline",
        |v| Good::artifact(v, "image")["name"] = "fixtures.example/hello/hello:1.0\nx".into(),
        NOT_A_BUNDLE,
        "is not a valid image reference",
    );
    c.resigned(
        "python-project-escapes",
        |v| Good::artifact(v, "python")["project"] = "../x".into(),
        NOT_A_BUNDLE,
        "/project`: \"../x\" does not match",
    );
    c.resigned(
        "python-file-escapes",
        |v| Good::artifact(v, "python")["name"] = "../x-1.0-py3-none-any.whl".into(),
        NOT_A_BUNDLE,
        "is not a valid Python file name",
    );
    c.resigned(
        "raw-path-escapes",
        |v| {
            let a = Good::artifact(v, "file");
            a["name"] = "../../etc/x".into();
            a["path"] = "../../etc/x".into();
        },
        NOT_A_BUNDLE,
        "../../etc/x",
    );
    // A raw path the store keeps for its temporary files: verify once passed it, and only
    // the store's raw target refused it at import.
    c.resigned(
        "raw-path-reserved",
        |v| {
            let a = Good::artifact(v, "file");
            a["name"] = "dl/.airlock-x.tmp".into();
            a["path"] = "dl/.airlock-x.tmp".into();
        },
        NOT_A_BUNDLE,
        "`dl/.airlock-x.tmp` is not a valid raw file path: its component `.airlock-x.tmp` starts with `.airlock-`",
    );
    c.resigned(
        "debian-suite-escapes",
        |v| Good::artifact(v, "debian")["suite"] = "../x".into(),
        NOT_A_BUNDLE,
        "/suite`: \"../x\" does not match",
    );
    c.resigned(
        "debian-package-newline",
        |v| Good::artifact(v, "debian")["name"] = "hello\nPackage: evil".into(),
        NOT_A_BUNDLE,
        "is not a valid Debian package name",
    );
    c.resigned(
        "bundle-name-escapes",
        |v| v["name"] = "../x".into(),
        NOT_A_BUNDLE,
        "does not match the schema at `/name`",
    );

    // Huge declared sizes: refused from the header, before anything is read or allocated.
    let huge = 400u64 << 20;
    c.forge(
        "manifest-declared-huge",
        |m| m[0].declared = Some(huge),
        CORRUPT,
        "manifest.json is 419430400 bytes: airlock reads at most 67108864 bytes (64.00 MiB) of it",
    );
    c.forge("sums-declared-huge", |m| m[2].declared = Some(1 << 30), CORRUPT, "SHA256SUMS does not match the manifest");
    c.forge(
        "blob-declared-huge",
        |m| m[first_blob].declared = Some(4 << 30),
        CORRUPT,
        "bytes in the bundle, the manifest says",
    );
    // ... and a manifest that really is 400 MiB (of zeros), compressed to a few KiB.
    let path = g.cx.path("cases/manifest-huge.airlock");
    let mut e = zstd::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    e.include_checksum(true).unwrap();
    e.write_all(&tarhack::header(b"manifest.json", huge, b'0', b"")).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(huge >> 20) + 1 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap();
    c.add("manifest-huge", path, CORRUPT, "manifest.json is 419430400 bytes: airlock reads at most");

    // Not a bundle at all.
    c.bytes("random-bytes", &[0x42; 4096], NOT_A_BUNDLE, "neither a zstd stream nor a tar archive");
    c.bytes("empty-file", &[], NOT_A_BUNDLE, "neither a zstd stream nor a tar archive");
    c.bytes("empty-archive", &[0; 1024], NOT_A_BUNDLE, "neither a zstd stream nor a tar archive");

    // An unpacked directory.
    let blob = String::from_utf8(g.members[first_blob].name.clone()).unwrap();
    c.unpacked(
        "dir-symlink",
        |d| std::os::unix::fs::symlink("/etc/passwd", d.join("blobs/sha256/evil")).unwrap(),
        CORRUPT,
        "member blobs/sha256/evil is a symlink",
    );
    c.unpacked(
        "dir-unsigned",
        |d| std::fs::remove_file(d.join("manifest.json.minisig")).unwrap(),
        NOT_AUTHENTIC,
        "manifest.json.minisig",
    );
    c.unpacked(
        "dir-extra-file",
        |d| std::fs::write(d.join("notes.txt"), b"hi").unwrap(),
        CORRUPT,
        "notes.txt is not listed in the manifest",
    );
    c.unpacked(
        "dir-blob-flipped",
        |d| {
            let p = d.join(&blob);
            let mut b = std::fs::read(&p).unwrap();
            b[0] ^= 1;
            std::fs::write(&p, b).unwrap();
        },
        CORRUPT,
        "is damaged",
    );
    c.unpacked(
        "dir-manifest-huge",
        |d| std::fs::File::options().write(true).open(d.join("manifest.json")).unwrap().set_len(huge).unwrap(),
        CORRUPT,
        "manifest.json is 419430400 bytes: airlock reads at most",
    );
    c.list
}

/// The targets every case imports into, shared by all cases.
struct Targets {
    store: PathBuf,
    registry: Registry,
    nginx: Nginx,
    raw_url: String,
}

type Env = [(&'static str, &'static str)];

const AUTH: [(&str, &str); 2] = [("AIRLOCK_RAW_USERNAME", USER), ("AIRLOCK_RAW_PASSWORD", PASSWORD)];

/// The cause in `error: verifying <bundle>[ (nothing was imported)]: <cause>`.
fn cause<'a>(line: &'a str, bundle: &str) -> &'a str {
    let rest = line.strip_prefix("error: verifying ").and_then(|r| r.strip_prefix(bundle)).unwrap_or(line);
    let rest = rest.strip_prefix(" (nothing was imported)").unwrap_or(rest);
    rest.strip_prefix(": ").unwrap_or(rest)
}

/// Is this run the refusal `case` expects? Records what is wrong; returns the cause.
fn judge(case: &Case, what: &str, r: &Run, rss: u64, problems: &mut Vec<String>) -> Option<String> {
    let lines: Vec<_> = r.stderr.lines().collect();
    if rss > MAX_RSS_KIB {
        problems.push(format!("{what}: peak RSS {} MiB", rss / 1024));
    }
    if r.code != case.code || lines.len() != 1 || !lines[0].starts_with("error: ") || !lines[0].contains(&case.needle) {
        problems.push(format!(
            "{what}: exit {} (want {}), stderr {:?} (want one line with {:?}), stdout {:?}",
            r.code, case.code, r.stderr, case.needle, r.stdout
        ));
        return None;
    }
    if !r.stdout.is_empty() {
        problems.push(format!("{what}: printed {:?}", r.stdout));
    }
    Some(cause(lines[0], case.bundle.to_str().unwrap()).to_string())
}

/// Run one case through verify and the three imports; every problem found, in words.
fn check(g: &Good, t: &Targets, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let scratch = g.cx.path(&format!("scratch/{}", case.name));
    std::fs::create_dir_all(&scratch).unwrap();
    let bundle = case.bundle.to_str().unwrap();
    let (r, rss) = measured(&g.cx, &["verify", bundle], &[], &scratch);
    let verified = judge(case, "verify", &r, rss, &mut problems);

    let store = scratch.join("store");
    crate::common::copy_dir(&t.store, &store);
    let before = tree(&store, &[".import.lock"]);
    let store_arg = store.to_str().unwrap();
    let host = t.registry.host();
    let imports: [(&str, Vec<&str>, &Env); 3] = [
        ("import into the store", vec![], &[]),
        ("import into a registry", vec!["--oci-registry", &host, "--oci-insecure"], &[]),
        ("import into a raw PUT target", vec!["--raw-url", &t.raw_url], &AUTH),
    ];
    for (what, extra, env) in imports {
        let mut args = vec!["import", bundle, "--store", store_arg];
        args.extend(extra);
        let (r, rss) = measured(&g.cx, &args, env, &scratch);
        let imported = judge(case, what, &r, rss, &mut problems);
        if let (Some(v), Some(i)) = (&verified, &imported)
            && v != i
        {
            problems.push(format!("{what}: the cause differs from verify's:\n  {v}\n  {i}"));
        }
        if tree(&store, &[".import.lock"]) != before {
            problems.push(format!("{what}: the store changed"));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    problems.into_iter().map(|p| format!("{}: {p}", case.name)).collect()
}

#[test]
fn every_mutation_is_refused_alike_by_verify_and_import_and_writes_nothing() {
    let g = good();
    // The targets already hold the good bundle: a damaged copy of a blob they have must
    // be refused all the same.
    let store = g.cx.path("target-store");
    let registry = Registry::start(&g.cx.path("registry"));
    let nginx = Nginx::start(&g.cx.path("nginx"));
    let raw_url = nginx.url("/upload/files/");
    let plain = g.plain.to_str().unwrap();
    let s = store.to_str().unwrap();
    g.cx.run(&["import", plain, "--store", s]).ok();
    let elsewhere = g.cx.path("elsewhere");
    let e = elsewhere.to_str().unwrap();
    g.cx.run(&["import", plain, "--store", e, "--oci-registry", &registry.host(), "--oci-insecure"]).ok();
    g.cx.run_env(&["import", plain, "--store", e, "--raw-url", &raw_url], &AUTH).ok();
    let t = Targets { store, registry, nginx, raw_url };
    let registry_before = tree(&t.registry.root.join("storage"), &[]);
    let raw_before = tree(&t.nginx.root, &[]);
    assert!(registry_before.len() > 10 && raw_before.len() >= 4, "the targets hold the good bundle");

    let cases = mutations(&g);
    assert!(cases.len() >= 60, "{} mutations", cases.len());
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let p = check(&g, &t, case);
                    problems.lock().unwrap().extend(p);
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{} problems in {} mutations:\n{}", problems.len(), cases.len(), problems.join("\n"));
    assert!(tree(&t.registry.root.join("storage"), &[]) == registry_before, "the registry changed");
    assert!(tree(&t.nginx.root, &[]) == raw_before, "the raw target changed");
}

/// The hole this suite first found: when the store already held a blob, import did not
/// hash the bundle's copy, and imported a damaged bundle that verify refused.
#[test]
fn import_refuses_a_damaged_copy_of_a_blob_the_store_already_holds() {
    let g = good();
    g.cx.run(&["import", g.plain.to_str().unwrap()]).ok();
    let before = tree(&g.cx.store(), &[".import.lock"]);
    let layer = g.manifest["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["mediaType"].as_str().unwrap().contains("layer"))
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = g.forge("flipped-layer.airlock", |m| {
        let i = g.blob_index(m, &layer);
        m[i].data[20] ^= 0x01;
    });
    let needle = format!("blob {layer} is damaged");
    g.cx.run(&["verify", bad.to_str().unwrap()]).fails(CORRUPT, &needle);
    g.cx.run(&["import", bad.to_str().unwrap()]).fails(CORRUPT, &needle);
    assert!(tree(&g.cx.store(), &[".import.lock"]) == before, "no receipt, no change");
    // The same through the stream path (zstd).
    let z = g.write("flipped-layer.zst.airlock", &tarhack::compress(&std::fs::read(&bad).unwrap()));
    g.cx.run(&["import", z.to_str().unwrap()]).fails(CORRUPT, &needle);
}

/// The container is strict: the end-of-archive blocks are required, a zstd bundle is one
/// frame with nothing after it, and a stray volume beside the listed ones is named.
#[test]
fn the_container_is_strict() {
    let g = good();
    let plain = std::fs::read(&g.plain).unwrap();
    let cut = g.write("no-end.airlock", &plain[..plain.len() - 1024]);
    for verb in ["verify", "import"] {
        g.cx.run(&[verb, cut.to_str().unwrap()]).fails(CORRUPT, "ends without its end-of-archive marker");
    }
    let zstd = std::fs::read(&g.zstd).unwrap();
    let skippable = [&zstd[..], &[0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0], b"evil"].concat();
    let skip = g.write("skippable.airlock", &skippable);
    for verb in ["verify", "import"] {
        g.cx.run(&[verb, skip.to_str().unwrap()]).fails(CORRUPT, "a skippable zstd frame after the zstd frame");
    }
    let list: Value =
        serde_json::from_slice(&std::fs::read(g.vols.join("fixtures-1.0.airlock.volumes")).unwrap()).unwrap();
    let n = list["volumes"].as_array().unwrap().len();
    let stray = format!("fixtures-1.0.airlock.{:03}", n + 1);
    std::fs::write(g.vols.join(&stray), b"not listed").unwrap();
    let first = g.vols.join("fixtures-1.0.airlock.001");
    for verb in ["verify", "import"] {
        g.cx.run(&[verb, first.to_str().unwrap()])
            .fails(CORRUPT, &format!("{stray} is beside the volumes of fixtures-1.0"));
    }
    assert_eq!(g.cx.store_files(), Vec::<String>::new());
}

/// A manifest that claims 400 MiB is refused from its header, in little memory.
#[test]
fn a_huge_declared_manifest_is_refused_in_bounded_memory() {
    let g = good();
    let path = g.cx.path("huge.airlock");
    let mut e = zstd::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    e.write_all(&tarhack::header(b"manifest.json", 400 << 20, b'0', b"")).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..401 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap();
    let scratch = g.cx.path("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for verb in ["verify", "import"] {
        let (r, rss) = measured(&g.cx, &[verb, path.to_str().unwrap()], &[], &scratch);
        assert_eq!(r.code, CORRUPT, "{}", r.stderr);
        assert!(r.stderr.contains("manifest.json is 419430400 bytes: airlock reads at most"), "{}", r.stderr);
        assert!(rss < MAX_RSS_KIB, "{verb}: peak RSS {} MiB", rss / 1024);
    }
}
