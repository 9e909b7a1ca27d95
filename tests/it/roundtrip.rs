//! The main job on the bundled fixtures: mirror → export → verify → inspect → import,
//! checked with airlock and with the stock tools an auditor has.

use crate::common::{Locked, TestContext, require, sh};

#[test]
fn round_trip_on_fixtures() {
    let cx = TestContext::new();
    let pubkey = cx.key();
    let spec = cx.fixtures();
    let out = cx.bundle(&spec, "out", &[]);
    let bundle = out.join("fixtures-1.0.airlock");
    let locked = Locked::of(&spec);
    assert!(locked.files > 0 && locked.git > 0 && locked.images > 0 && locked.python > 0 && locked.debian > 0);

    let v = cx.run(&["--json", "verify", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(v["status"], "verified");
    assert_eq!(v["artifacts"], locked.artifacts(), "{locked:?}");

    let i = cx.run(&["--json", "inspect", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(i["name"], "fixtures");
    assert_eq!(i["version"], "1.0");
    assert_eq!(i["totals"]["file"]["artifacts"], locked.files);
    assert_eq!(i["totals"]["git"]["artifacts"], locked.git);
    assert_eq!(i["totals"]["image"]["artifacts"], locked.images);
    assert_eq!(i["totals"]["python"]["artifacts"], locked.python);
    assert_eq!(i["totals"]["debian"]["artifacts"], locked.debian);
    assert!(i["signature"].as_str().unwrap().starts_with("trusted key"));
    let human = cx.run(&["inspect", bundle.to_str().unwrap()]).ok().stdout;
    assert!(human.contains("bin/arm64/tool-2.3") && human.contains("arm64"), "{human}");
    assert!(human.contains("fixtures.example/hello/hello:1.0") && human.contains("linux/amd64,linux/arm64"), "{human}");

    let r = cx.run(&["--json", "import", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"], locked.added(), "files, git refs, image tags, Python files and Debian packages: {locked:?}");
    let raw = cx.store().join("repository/raw");
    for (path, fixture) in [
        ("src/hello-1.0.tar.gz", "hello-1.0.tar.gz"),
        ("bin/amd64/tool-2.3", "tool-2.3-amd64"),
        ("bin/arm64/tool-2.3", "tool-2.3-arm64"),
        ("licenses/NOTICE.txt", "NOTICE.txt"),
    ] {
        assert_eq!(
            std::fs::read(raw.join(path)).unwrap(),
            std::fs::read(crate::common::root().join("fixtures/files").join(fixture)).unwrap(),
            "{path}"
        );
    }
    assert_eq!(std::fs::read_dir(cx.store().join("receipts/fixtures-1.0")).unwrap().count(), 1);

    // Importing again changes nothing and says so.
    let again = cx.run(&["--json", "import", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(again["added"], 0);
    assert_eq!(again["present"], locked.added());
    // The git fixture's refs, exactly as its bundle has them.
    let repo = cx.store().join("git/hello.git");
    let heads = sh(&repo, "git for-each-ref --format='%(objectname) %(refname)'");
    let want = sh(&crate::common::root().join("fixtures"), "git bundle list-heads git/hello.bundle | grep -v HEAD");
    assert_eq!(heads, want);
    sh(&repo, "git fsck --full --strict");
    assert_eq!(
        std::fs::read_dir(cx.store().join("receipts/fixtures-1.0")).unwrap().count(),
        2,
        "receipts keep history"
    );

    // The auditor's path: no airlock, only zstd, tar, minisign and sha256sum.
    require("minisign");
    require("zstd");
    require("sha256sum");
    let dir = cx.path("audit");
    std::fs::create_dir_all(&dir).unwrap();
    sh(&dir, &format!("zstd -dc {} | tar -x", bundle.display()));
    let m = sh(&dir, &format!("minisign -Vm manifest.json -p {}", pubkey.display()));
    assert!(m.contains("Signature and comment signature verified"), "{m}");
    let sums = sh(&dir, "sha256sum -c SHA256SUMS");
    // Every blob of the manifest, and the manifest, its signature, the SBOM, the
    // provenance and the OCI layout's two files (`oci-layout`, `index.json`).
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let blobs = manifest["blobs"].as_array().unwrap().len();
    assert!(blobs > locked.artifacts(), "images carry several blobs each");
    assert_eq!(sums.lines().filter(|l| l.ends_with(": OK")).count(), blobs + 6, "{sums}");
    // The unpacked bundle is an OCI image layout skopeo reads with no airlock.
    require("skopeo");
    let raw = sh(&dir, "skopeo inspect --raw oci:.:hello_hello-1.0");
    assert_eq!(
        format!("sha256:{}", airlock::digest::Digest::of(raw.as_bytes()).hex()),
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(crate::common::root().join("fixtures/images/hello/index.json")).unwrap()
        )
        .unwrap()["manifests"][0]["digest"]
            .as_str()
            .unwrap()
    );
    // ... and airlock accepts the unpacked directory as well.
    cx.run(&["verify", dir.to_str().unwrap()]).ok();
}

#[test]
fn exports_are_byte_identical() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let a = cx.bundle(&spec, "a", &[]);
    // A second mirror of an unchanged spec keeps the lock, and export is deterministic
    // whatever the number of zstd threads.
    let b = cx.bundle(&spec, "b", &["--threads", "1"]);
    let (x, y) = (
        std::fs::read(a.join("fixtures-1.0.airlock")).unwrap(),
        std::fs::read(b.join("fixtures-1.0.airlock")).unwrap(),
    );
    assert!(x == y, "two exports of the same lock differ");
    let c = cx.bundle(&spec, "c", &["--compression", "none"]);
    let d = cx.bundle(&spec, "d", &["--compression", "none"]);
    assert!(
        std::fs::read(c.join("fixtures-1.0.airlock")).unwrap()
            == std::fs::read(d.join("fixtures-1.0.airlock")).unwrap()
    );
}

#[test]
fn split_volumes_cat_to_the_bundle_and_verify() {
    let cx = TestContext::new();
    let pubkey = cx.key();
    let spec = cx.fixtures();
    let whole = cx.bundle(&spec, "whole", &[]);
    let split = cx.bundle(&spec, "split", &["--split", "512"]);
    let locked = Locked::of(&spec);
    let first = split.join("fixtures-1.0.airlock.001");
    assert!(split.join("fixtures-1.0.airlock.004").is_file(), "a 1.5 KiB bundle in 512-byte volumes");
    for v in std::fs::read_dir(&split).unwrap() {
        let p = v.unwrap().path();
        assert!(std::fs::metadata(&p).unwrap().len() <= 512 || p.to_string_lossy().contains("volumes"));
    }
    sh(&split, "cat fixtures-1.0.airlock.[0-9]* > joined.airlock");
    assert!(
        std::fs::read(split.join("joined.airlock")).unwrap()
            == std::fs::read(whole.join("fixtures-1.0.airlock")).unwrap()
    );
    std::fs::remove_file(split.join("joined.airlock")).unwrap();
    let m = sh(&split, &format!("minisign -Vm fixtures-1.0.airlock.volumes -p {}", pubkey.display()));
    assert!(m.contains("Signature and comment signature verified"));
    crate::common::validate_json(&split.join("fixtures-1.0.airlock.volumes"), "volumes.schema.json");
    cx.run(&["verify", first.to_str().unwrap()]).ok();
    cx.run(&["verify", split.join("fixtures-1.0.airlock.volumes").to_str().unwrap()]).ok();
    let r = cx.run(&["--json", "import", first.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"], locked.added());

    // Exporting again into the same directory with larger volumes leaves no stale volume
    // behind, so `cat` of the volumes is still exactly the bundle.
    let lock = spec.with_extension("lock");
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", split.to_str().unwrap(), "--split", "2KiB"])
        .fails(2, "fixtures-1.0.airlock.001 already exists: pass --force to replace it");
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", split.to_str().unwrap(), "--split", "2KiB", "--force"])
        .ok();
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(split.join("fixtures-1.0.airlock.volumes")).unwrap()).unwrap();
    let mut listed: Vec<String> =
        list["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    let mut present: Vec<String> = std::fs::read_dir(&split)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.rsplit('.').next().is_some_and(|x| x.len() == 3 && x.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    listed.sort();
    present.sort();
    assert_eq!(present, listed, "no stale volume is left behind");
    sh(&split, "cat fixtures-1.0.airlock.[0-9]* > ../joined.airlock");
    assert!(
        std::fs::read(cx.path("joined.airlock")).unwrap() == std::fs::read(whole.join("fixtures-1.0.airlock")).unwrap()
    );
}

#[test]
fn differential_bundle_carries_only_new_blobs() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let v1 = cx.bundle(&spec, "v1", &[]).join("fixtures-1.0.airlock");
    let new = b"added in 1.1\n";
    std::fs::write(cx.path("spec/files/new.txt"), new).unwrap();
    let yaml = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("version: \"1.0\"", "version: \"1.1\"")
        .replace("files:\n", "files:\n  - path: extra/new.txt\n    source: files/new.txt\n");
    std::fs::write(&spec, yaml).unwrap();
    let v2 = cx.bundle(&spec, "v2", &["--since", v1.to_str().unwrap()]).join("fixtures-1.1.airlock");
    let i = cx.run(&["--json", "inspect", v2.to_str().unwrap()]).ok().json();
    assert_eq!(i["base"]["version"], "1.0");
    // The signed manifest names its base by manifest digest, the base's identity.
    let v1_digest = cx.run(&["--json", "verify", v1.to_str().unwrap()]).ok().json()["manifest"].clone();
    assert_eq!(i["base"]["manifest"], v1_digest);
    // It lists every artifact of the lock, and carries only the new file: the git
    // repository did not change.
    assert_eq!(i["artifacts"].as_array().unwrap().len(), Locked::of(&spec).artifacts());
    assert_eq!(i["blobBytes"], new.len(), "only the new file travels: the git repository did not change");

    // Without its base, the site is told what to import first, and nothing changes.
    let other = TestContext::new();
    std::fs::create_dir_all(other.config()).unwrap();
    crate::common::copy_dir(&cx.config().join("trusted"), &other.config().join("trusted"));
    other.run(&["key", "apt", "generate", "--no-password"]).ok();
    // Before any target is planned: the cause names the base by name and manifest digest.
    let refused = other.run(&["import", v2.to_str().unwrap()]).fails(2, "import the base bundle `fixtures-1.0` first");
    let digest = v1_digest.as_str().unwrap();
    assert!(refused.stderr.contains(&format!("on top of fixtures-1.0 (manifest {digest})")), "{}", refused.stderr);
    assert!(!refused.stderr.contains("os error"), "{}", refused.stderr);
    assert_eq!(other.store_files(), Vec::<String>::new(), "nothing was imported");
    // With its base, it applies on top.
    other.run(&["import", v1.to_str().unwrap()]).ok();
    let r = other.run(&["--json", "import", v2.to_str().unwrap()]).ok().json();
    assert_eq!(r["added"], 1);
    assert_eq!(std::fs::read(other.store().join("repository/raw/extra/new.txt")).unwrap(), b"added in 1.1\n");

    // A store that imported the base before airlock kept `imported.json` knows it from
    // the base's receipt.
    let older = TestContext::new();
    crate::common::copy_dir(&other.config(), &older.config());
    older.run(&["import", v1.to_str().unwrap()]).ok();
    std::fs::remove_file(older.store().join("imported.json")).unwrap();
    older.run(&["import", v2.to_str().unwrap()]).ok();
}

/// Files under the store and their contents (what an import that is refused must not touch).
fn store_tree(cx: &TestContext) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = walkdir::WalkDir::new(cx.store())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() != ".import.lock")
        .filter(|e| !e.file_name().to_string_lossy().starts_with("ledger.sqlite"))
        .map(|e| (e.path().strip_prefix(cx.store()).unwrap().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn an_older_bundle_is_refused_unless_downgrade_is_allowed() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let v1 = cx.bundle(&spec, "v1", &[]).join("fixtures-1.0.airlock");
    let yaml = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, yaml.replace("version: \"1.0\"", "version: \"1.10\"")).unwrap();
    let v2 = cx.bundle(&spec, "v2", &[]).join("fixtures-1.10.airlock");
    cx.run(&["import", v2.to_str().unwrap()]).ok();
    let before = store_tree(&cx);
    // 1.0 sorts before 1.10 (digits compare as numbers), whatever the files hold.
    let refused = cx.run(&["import", v1.to_str().unwrap()]).fails(2, "is older than fixtures-1.10 (created ");
    assert!(refused.stderr.contains("error: fixtures-1.0 (created "), "{}", refused.stderr);
    assert!(store_tree(&cx) == before, "a refused downgrade changes nothing in the store");
    let r = cx.run(&["--json", "import", v1.to_str().unwrap(), "--allow-downgrade"]).ok().json();
    assert_eq!(r["bundle"], "fixtures-1.0");
    // The newest stays the reference: 1.0 is still older than 1.10.
    cx.run(&["import", v1.to_str().unwrap()]).fails(2, "refusing to roll back; pass --allow-downgrade");
    cx.run(&["import", v2.to_str().unwrap()]).ok();

    // Same version, created earlier: also older. `created` is the lock's `resolved` time.
    let lock = spec.with_extension("lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    let resolved = serde_json::from_str::<serde_json::Value>(&text).unwrap()["resolved"].as_str().unwrap().to_string();
    std::fs::write(&lock, text.replace(&resolved, "2020-01-01T00:00:00Z")).unwrap();
    let lock_s = lock.to_str().unwrap();
    cx.run(&["export", "--lock", lock_s, "-o", cx.path("early").to_str().unwrap()]).ok();
    let early = cx.path("early/fixtures-1.10.airlock");
    cx.run(&["import", early.to_str().unwrap()]).fails(2, "fixtures-1.10 (created 2020-01-01T00:00:00Z) is older than");
    // Importing the same bundle again is not a downgrade: an import resumes that way.
    cx.run(&["import", v2.to_str().unwrap()]).ok();
}

#[test]
fn export_never_replaces_a_bundle_nor_its_own_base() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let out = cx.bundle(&spec, "out", &[]);
    let base = out.join("fixtures-1.0.airlock");
    let base_bytes = std::fs::read(&base).unwrap();
    let lock = spec.with_extension("lock");
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--lock", lock.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        cx.run(&args)
    };
    export(&[]).fails(2, "fixtures-1.0.airlock already exists: pass --force to replace it");
    // A differential bundle whose version was not bumped has its base's name: writing it
    // would replace the base with the delta, so it is refused even with --force.
    std::fs::write(cx.path("spec/files/new.txt"), b"new\n").unwrap();
    let yaml = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, yaml.replace("files:\n", "files:\n  - path: extra/new.txt\n    source: files/new.txt\n"))
        .unwrap();
    cx.mirror(&spec).ok();
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["--since", base.to_str().unwrap()];
        args.extend_from_slice(force);
        export(&args).fails(2, "which is its own --since base");
        assert!(std::fs::read(&base).unwrap() == base_bytes, "the base bundle is intact");
    }
    // Split volumes of the base are protected the same way, whichever volume is named.
    let vols = cx.path("vols");
    let lock_s = lock.to_str().unwrap();
    cx.run(&["export", "--lock", lock_s, "-o", vols.to_str().unwrap(), "--split", "4KiB"]).ok();
    let v2 = vols.join("fixtures-1.0.airlock.002");
    let v2_bytes = std::fs::read(&v2).unwrap();
    cx.run(&["export", "--lock", lock_s, "-o", vols.to_str().unwrap(), "--since", v2.to_str().unwrap(), "--force"])
        .fails(2, "which is its own --since base");
    assert!(std::fs::read(&v2).unwrap() == v2_bytes);
    // Another version beside the base is fine.
    export(&["--since", base.to_str().unwrap(), "--version", "1.1"]).ok();
    assert!(std::fs::read(&base).unwrap() == base_bytes);
    cx.run(&["verify", out.join("fixtures-1.1.airlock").to_str().unwrap()]).ok();
}

#[test]
fn import_refuses_to_replace_other_content() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    let victim = cx.store().join("repository/raw/licenses/NOTICE.txt");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, b"local edit\n").unwrap();
    cx.run(&["import", bundle.to_str().unwrap()]).fails(2, "already has licenses/NOTICE.txt with other content");
    assert_eq!(std::fs::read(&victim).unwrap(), b"local edit\n");
    assert!(!cx.store().join("repository/raw/src").exists(), "nothing else was imported");
}

#[test]
fn names_that_would_escape_are_refused() {
    let cx = TestContext::new();
    cx.key();
    let spec = cx.fixtures();
    let bundle = cx.bundle(&spec, "out", &[]).join("fixtures-1.0.airlock");
    cx.run(&["import", bundle.to_str().unwrap(), "--raw-repo", "../outside"]).fails(2, "--raw-repo `../outside`");
    cx.run(&["import", bundle.to_str().unwrap(), "--raw-url", "ftp://nexus.site.example/x"])
        .fails(2, "http:// or https://");
    assert!(cx.store_files().is_empty());
    // A lock edited by hand is checked against its schema before anything is written.
    let lock = spec.with_extension("lock");
    let text = std::fs::read_to_string(&lock).unwrap().replace("\"name\": \"fixtures\"", "\"name\": \"../../x\"");
    std::fs::write(&lock, text).unwrap();
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", "evil"])
        .fails(2, "does not match its schema at `/name`");
    assert!(!cx.path("evil").exists() && !cx.dir.path().parent().unwrap().join("x-1.0.airlock").exists());
}

#[test]
fn help_teaches_every_verb() {
    let cx = TestContext::new();
    let top = cx.run(&["--help"]).ok().stdout;
    for verb in ["mirror", "export", "verify", "inspect", "import", "key", "trust"] {
        assert!(top.contains(verb), "{verb} missing from --help");
        let h = cx.run(&[verb, "--help"]).ok().stdout;
        assert!(h.len() > 200, "`{verb} --help` is too thin:\n{h}");
    }
    assert!(top.contains("Exit status"));
}

/// Content that spans several zstd jobs and many 1 MiB read chunks: half incompressible,
/// half text, from a fixed seed.
fn large_files(cx: &TestContext) -> std::path::PathBuf {
    let dir = cx.path("spec/files");
    std::fs::create_dir_all(&dir).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = Vec::with_capacity(13 << 20);
    while noise.len() < (13 << 20) + 77 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(dir.join("noise.bin"), &noise).unwrap();
    let text: String = (0..250_000).map(|i| format!("{i:08} GET /api/v1/items/{} status=200\n", i % 977)).collect();
    std::fs::write(dir.join("log.txt"), text).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("small"), b"small\n").unwrap();
    cx.spec(
        "name: big\nversion: \"1\"\nfiles:\n  - path: noise.bin\n    source: files/noise.bin\n  \
         - path: log.txt\n    source: files/log.txt\n  - path: empty\n    source: files/empty\n  \
         - path: small\n    source: files/small\n",
    )
}

#[test]
fn large_exports_are_byte_identical_whatever_the_threads() {
    let cx = TestContext::new();
    cx.key();
    let spec = large_files(&cx);
    let read = |dir: &std::path::Path| std::fs::read(dir.join("big-1.airlock")).unwrap();
    let default = read(&cx.bundle(&spec, "default", &[]));
    let one = read(&cx.bundle(&spec, "one", &["--threads", "1"]));
    let two = read(&cx.bundle(&spec, "two", &["--threads", "2"]));
    assert!(default == one && one == two, "exports of the same lock differ with the number of threads");
    let bundle = cx.path("default/big-1.airlock");
    let v = cx.run(&["--json", "verify", bundle.to_str().unwrap()]).ok().json();
    assert_eq!(v["status"], "verified");
    // The blobs in the stream are the files, byte for byte (zstd -d | tar, no airlock).
    let dir = cx.path("unpacked");
    std::fs::create_dir_all(&dir).unwrap();
    sh(&dir, &format!("zstd -dc {} | tar -xf -", bundle.display()));
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    // An auditor's coreutils agree: every member hashes as SHA256SUMS says.
    sh(&dir, "sha256sum -c --quiet SHA256SUMS");
    for f in ["noise.bin", "log.txt", "empty", "small"] {
        let hex = airlock::digest::Digest::of(&std::fs::read(cx.path(&format!("spec/files/{f}"))).unwrap()).hex();
        assert_eq!(
            std::fs::read(dir.join(format!("blobs/sha256/{hex}"))).unwrap(),
            std::fs::read(cx.path(&format!("spec/files/{f}"))).unwrap(),
            "{f}"
        );
        assert!(sums.contains(&hex), "{f} is in SHA256SUMS");
    }
}

#[test]
fn export_refuses_a_cache_blob_that_rotted_and_writes_no_bundle() {
    let cx = TestContext::new();
    cx.key();
    let spec = large_files(&cx);
    cx.mirror(&spec).ok();
    // Flip one byte deep inside the large blob (past the first read chunks).
    let hex = airlock::digest::Digest::of(&std::fs::read(cx.path("spec/files/noise.bin")).unwrap()).hex();
    let blob = cx.cache().join(format!("blobs/sha256/{hex}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[(9 << 20) + 5] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let out = cx.path("out");
    let lock = spec.with_extension("lock");
    cx.run(&["export", "--lock", lock.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .fails(2, &format!("cache blob sha256:{hex} is corrupt"));
    let left: Vec<_> = std::fs::read_dir(&out).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "no bundle and no temporary file is left: {left:?}");
}
