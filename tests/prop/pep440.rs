//! PEP 440 against its oracle: Python's `packaging` (pinned in `scripts/test.sh`), the
//! library pip is built on. airlock orders and filters Python versions with
//! `pep508_rs::pep440_rs`; this checks that crate against `packaging` on generated
//! versions and specifiers (every spelling PEP 440 normalizes: epochs, pre, post, dev and
//! local segments, `v` prefixes, separators, case, leading zeros, whitespace), all in one
//! Python process.
//!
//! Where the two differ on purpose, or the crate differs from PEP 440 in a corner that
//! does not matter to airlock, the difference is named in [`Known`] and every
//! disagreement found must be one of them: a new kind fails the test.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::str::FromStr;

use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `packaging` release `scripts/test.sh` installs.
const PACKAGING: &str = "26.4";
const VERSIONS: usize = 3000;
/// Versions each specifier is matched against (the first of the generated ones).
const MATRIX: usize = 1000;
const SPECIFIERS: usize = 400;

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.gen_range(0..from.len())]
}

/// A version as people write them, normalized or not; about 4% are not versions.
fn version(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.04) {
        return pick(
            rng,
            &["", "1.0-foo", "1..0", "a1", "1.0+", "1.0+a_", "1.0.", "1!", "1.0a1a2", "1.*", "1.0 2", "==1"],
        )
        .to_string();
    }
    let mut s = String::new();
    if rng.gen_bool(0.03) {
        s.push(' ');
    }
    if rng.gen_bool(0.05) {
        s.push_str(pick(rng, &["v", "V"]));
    }
    if rng.gen_bool(0.1) {
        write!(s, "{}!", rng.gen_range(0..3)).unwrap();
    }
    for i in 0..rng.gen_range(1..=4) {
        if i > 0 {
            s.push('.');
        }
        s.push_str(pick(rng, &["0", "1", "1", "2", "2", "3", "10", "00", "01"]));
    }
    if rng.gen_bool(0.3) {
        s.push_str(pick(rng, &["", "", ".", "-", "_"]));
        s.push_str(pick(rng, &["a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "A", "RC"]));
        s.push_str(pick(rng, &["", "", ".", "-"]));
        s.push_str(pick(rng, &["", "0", "1", "1", "2", "11"]));
    }
    if rng.gen_bool(0.2) {
        s.push_str(pick(rng, &[".post1", ".post0", "post2", "-1", ".post", "-post1", "_post_2", ".rev1", ".r2", "-3"]));
    }
    if rng.gen_bool(0.2) {
        s.push_str(pick(rng, &[".dev0", ".dev1", "dev", "-dev2", ".DEV3", "_dev"]));
    }
    if rng.gen_bool(0.12) {
        s.push('+');
        s.push_str(pick(rng, &["abc", "1", "1.2", "ubuntu-1", "abc.5", "A_1", "0", "2"]));
    }
    if rng.gen_bool(0.03) {
        s.push_str(pick(rng, &[" ", "\n", "\t"]));
    }
    s
}

/// A release prefix with an optional epoch, for `==V.*` and `!=V.*`.
fn release_prefix(rng: &mut StdRng) -> String {
    let mut s = String::new();
    if rng.gen_bool(0.1) {
        write!(s, "{}!", rng.gen_range(0..3)).unwrap();
    }
    for i in 0..rng.gen_range(1..=3) {
        if i > 0 {
            s.push('.');
        }
        s.push_str(pick(rng, &["0", "1", "2", "3", "10"]));
    }
    s
}

/// One specifier, its version taken from `pool` (so that matches happen) or made anew.
fn one_specifier(rng: &mut StdRng, pool: &[String]) -> String {
    let op = pick(rng, &["==", "===", "!=", "~=", "<", "<=", ">", ">=", "==*", "!=*"]);
    let ws = if rng.gen_bool(0.1) { " " } else { "" };
    if let Some(op) = op.strip_suffix('*') {
        return format!("{op}{ws}{}.*", release_prefix(rng));
    }
    let v = if rng.gen_bool(0.8) { pool[rng.gen_range(0..pool.len())].trim().to_string() } else { version(rng) };
    format!("{op}{ws}{v}")
}

/// A specifier set: mostly one specifier, sometimes two or three joined by commas.
fn specifier(rng: &mut StdRng, pool: &[String]) -> String {
    let n = if rng.gen_bool(0.75) { 1 } else { rng.gen_range(2..=3) };
    (0..n).map(|_| one_specifier(rng, pool)).collect::<Vec<_>>().join(if rng.gen_bool(0.5) { "," } else { ", " })
}

#[derive(serde::Deserialize)]
struct Oracle {
    packaging: String,
    versions: Vec<Option<String>>,
    ranks: Vec<Option<usize>>,
    specifiers: Vec<Option<(String, bool)>>,
    contains: Vec<String>,
}

fn ask_packaging(versions: &[String], specifiers: &[String]) -> Oracle {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/prop/pep440_oracle.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh puts its virtualenv first on PATH)");
    let input = serde_json::json!({"versions": versions, "specifiers": specifiers, "matrix": MATRIX});
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the packaging oracle failed (run scripts/test.sh, which installs packaging=={PACKAGING} in \
         target/test-tools/python, and put its bin/ first on PATH):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Oracle = serde_json::from_slice(&out.stdout).expect("the oracle writes JSON");
    assert_eq!(oracle.packaging, PACKAGING, "the oracle must be the pinned packaging (scripts/test.sh)");
    oracle
}

/// The places of `versions` in their sorted order (equal versions share one).
fn ranks(versions: &[Option<Version>]) -> Vec<Option<usize>> {
    let mut sorted: Vec<&Version> = versions.iter().flatten().collect();
    sorted.sort();
    sorted.dedup_by(|a, b| a == b);
    versions.iter().map(|v| v.as_ref().map(|v| sorted.binary_search(&v).unwrap())).collect()
}

/// The differences between `pep440_rs` and `packaging` that this test accepts, each
/// with its reason. Every disagreement must be one of these: the answers of the
/// specifiers a known difference makes wrong are flipped, and the set must then give
/// `packaging`'s answer.
///
/// [`Known::PrefixNotPadded`], [`Known::LessThanPre`] and [`Known::GreaterThanPost`] are
/// `pep440_rs` 0.7.3 departing from PEP 440; `uv-pep440` 0.0.72 (the crate's successor,
/// maintained in uv) agrees with `packaging` on all but [`Known::GreaterThanPost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Known {
    /// `===` compares strings. `packaging` compares the specifier as written with the
    /// candidate's normalized form (`===01.0` never matches); `pep440_rs` normalizes both
    /// sides (`===01.0` matches `1.0`), and refuses a `===` operand that is not a version
    /// (PEP 440 allows any string there). PEP 440 discourages `===`; in airlock it appears
    /// in OpenStack's upper-constraints, whose operands are normalized versions.
    ArbitraryEquality,
    /// `==V.*` and `!=V.*` against a candidate with a shorter release: PEP 440 pads the
    /// candidate with zeros (`2` is `2.0`, so `==2.1.*` does not match it); `pep440_rs`
    /// compares only the common length, so `==2.1.*` matches `2` and `!=2.1.*` refuses it.
    PrefixNotPadded,
    /// `<V` refuses every pre-release of V's release, even when V is itself a pre-, dev-
    /// or post-release (`<2.0rc1` refuses `2.0b1`, `<1.0.post1` refuses `1.0a1`), and
    /// even in another epoch. PEP 440 refuses them only when V is a final release.
    LessThanPre,
    /// `>V` refuses every post-release of V's release when V is a pre- or dev-release
    /// (`>1.0rc1` refuses `1.0.post1`). PEP 440 refuses only post-releases of V itself.
    GreaterThanPost,
    /// airlock counts a pre-release in any specifier as naming one (so `!=2.0rc1` lets
    /// pre-releases in); `packaging` does not count `!=`. The rule airlock applies on top
    /// of matching: pre-releases are candidates only when a specifier names one (or, in
    /// the backtracking resolver, when no final release fits).
    NotEqualNamesPre,
}

/// A release with its trailing zeros dropped: `1.0.0` and `1` are the same release.
fn release(v: &Version) -> &[u64] {
    let r = v.release();
    let n = r.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    &r[..n]
}

/// Which known difference makes `s` answer `v` otherwise than PEP 440 (as `packaging`
/// reads it), if any. `Some` only where the crate's answer is the wrong one, so flipping
/// it gives `packaging`'s answer. (`===` is left out: the sides compare different strings.)
fn explain(s: &VersionSpecifier, v: &Version) -> Option<Known> {
    let w = s.version();
    let same_release = release(v) == release(w);
    match s.operator() {
        Operator::EqualStar | Operator::NotEqualStar => {
            let n = v.release().len();
            let prefix = v.epoch() == w.epoch() && w.release().get(..n) == Some(v.release());
            (prefix && w.release()[n..].iter().any(|&x| x != 0)).then_some(Known::PrefixNotPadded)
        }
        Operator::LessThan => {
            // What PEP 440 says: V's own pre-releases stay out only for a final V; a
            // post-release V keeps out its own dev-releases.
            let own_dev = w.is_post() && !w.any_prerelease() && v.pre().is_none() && v.post() == w.post();
            let pep = v < w && !own_dev;
            let special = w.any_prerelease() || w.is_post() || v.epoch() != w.epoch();
            (same_release && v.any_prerelease() && special && pep).then_some(Known::LessThanPre)
        }
        Operator::GreaterThan => {
            let pep = v > w && (w.is_dev() || v.pre() != w.pre());
            (same_release && v.is_post() && !w.is_post() && w.any_prerelease() && pep).then_some(Known::GreaterThanPost)
        }
        _ => None,
    }
}

/// airlock's rule on top of matching: does the set name a pre-release?
fn names_pre(spec: &VersionSpecifiers) -> bool {
    spec.iter().any(|s| s.version().any_prerelease())
}

#[test]
fn pep440_agrees_with_packaging() {
    let _s = crate::serial();
    let mut rng = StdRng::seed_from_u64(0x0440_0440);
    let versions: Vec<String> = (0..VERSIONS).map(|_| version(&mut rng)).collect();
    let pool: Vec<String> = versions[..MATRIX].iter().filter(|v| Version::from_str(v).is_ok()).cloned().collect();
    let specifiers: Vec<String> = (0..SPECIFIERS).map(|_| specifier(&mut rng, &pool)).collect();
    let oracle = ask_packaging(&versions, &specifiers);

    let mut failures = Vec::new();
    // Parsing and normalization.
    let parsed: Vec<Option<Version>> = versions.iter().map(|s| Version::from_str(s).ok()).collect();
    for ((s, ours), theirs) in versions.iter().zip(&parsed).zip(&oracle.versions) {
        let ours = ours.as_ref().map(ToString::to_string);
        if ours != *theirs {
            failures.push(format!("version {s:?}: pep440_rs {ours:?}, packaging {theirs:?}"));
        }
    }
    // Order: the same total preorder over every version both accept.
    let both: Vec<Option<Version>> =
        parsed.iter().zip(&oracle.versions).map(|(p, o)| p.clone().filter(|_| o.is_some())).collect();
    let theirs: Vec<Option<usize>> = oracle.ranks.iter().zip(&both).map(|(r, b)| r.filter(|_| b.is_some())).collect();
    let theirs = {
        // Re-rank packaging's places over the common subset, so both count from 0.
        let mut distinct: Vec<usize> = theirs.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        theirs.iter().map(|r| r.map(|r| distinct.binary_search(&r).unwrap())).collect::<Vec<_>>()
    };
    let ours = ranks(&both);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            failures.push(format!("order of {:?}: pep440_rs place {a:?}, packaging place {b:?}", versions[i]));
        }
    }
    let ordered = both.iter().flatten().count();

    // Specifiers: validity, then matching against the first MATRIX versions.
    let mut known: std::collections::BTreeMap<Known, usize> = std::collections::BTreeMap::new();
    let mut matched = (0usize, 0usize);
    for (k, s) in specifiers.iter().enumerate() {
        let ours = VersionSpecifiers::from_str(s).ok();
        match (ours.is_some(), oracle.specifiers[k].is_some()) {
            (true, true) => {}
            (false, false) => continue,
            _ if s.contains("===") => {
                *known.entry(Known::ArbitraryEquality).or_default() += 1;
                continue;
            }
            (o, t) => {
                failures.push(format!("specifier {s:?}: pep440_rs valid {o}, packaging valid {t}"));
                continue;
            }
        }
        let spec = ours.unwrap();
        let (_, their_pre) = oracle.specifiers[k].clone().unwrap();
        if names_pre(&spec) != their_pre {
            let not_equal_only =
                spec.iter().all(|s| !s.version().any_prerelease() || *s.operator() == Operator::NotEqual);
            if not_equal_only && !their_pre {
                *known.entry(Known::NotEqualNamesPre).or_default() += 1;
            } else {
                failures
                    .push(format!("`{s}` names a pre-release: airlock {}, packaging {their_pre}", names_pre(&spec)));
            }
        }
        let row = oracle.contains[k].as_bytes();
        for (j, v) in parsed[..MATRIX].iter().enumerate() {
            let (Some(v), b'0' | b'1') = (v, row[j]) else { continue };
            let theirs = row[j] == b'1';
            let ours = spec.contains(v);
            matched.0 += 1;
            matched.1 += usize::from(ours);
            if ours != theirs {
                #[allow(deprecated)]
                if spec.iter().any(|s| *s.operator() == Operator::ExactEqual) {
                    *known.entry(Known::ArbitraryEquality).or_default() += 1;
                    continue;
                }
                // Flip the answers the known differences make wrong: they must account
                // for the whole disagreement.
                let why: Vec<Known> = spec.iter().filter_map(|s| explain(s, v)).collect();
                let corrected = spec.iter().all(|s| s.contains(v) != explain(s, v).is_some());
                if corrected == theirs && !why.is_empty() {
                    for k in why {
                        *known.entry(k).or_default() += 1;
                    }
                } else {
                    failures
                        .push(format!("`{s}` contains `{}`: pep440_rs {ours}, packaging {theirs}", versions[j].trim()));
                }
            }
        }
    }
    failures.sort();
    failures.dedup();
    assert!(ordered >= VERSIONS * 9 / 10, "only {ordered} versions ordered");
    assert!(matched.0 >= 300_000 && matched.1 >= matched.0 / 10, "{matched:?}: too few matches to mean much");
    assert!(
        failures.is_empty(),
        "{} disagreements with packaging {} (known and accepted: {known:?}):\n{}",
        failures.len(),
        oracle.packaging,
        failures.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}
