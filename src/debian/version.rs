//! Debian version comparison (Debian Policy §5.6.12): `[epoch:]upstream[-revision]`.
//! The epoch compares numerically; upstream and revision compare by the dpkg algorithm,
//! alternating non-digit runs (where `~` sorts before everything, even the end of the
//! string, then the end, then letters, then other characters in ASCII order) and digit
//! runs (compared as numbers, empty = 0).

use std::cmp::Ordering;

/// Is `v` a syntactically valid Debian version? [`crate::names::deb_version`].
pub fn valid(v: &str) -> bool {
    crate::names::deb_version(v).is_ok()
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    (epoch, upstream, revision)
}

/// Compare two Debian versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb).then_with(|| compare_part(ua, ub)).then_with(|| compare_part(ra, rb))
}

fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix, character by character.
        loop {
            let ca = a.first().copied().filter(|c| !c.is_ascii_digit());
            let cb = b.first().copied().filter(|c| !c.is_ascii_digit());
            if ca.is_none() && cb.is_none() {
                break;
            }
            match order(ca).cmp(&order(cb)) {
                Ordering::Equal => {
                    a = &a[1..];
                    b = &b[1..];
                }
                o => return o,
            }
        }
        // Digit prefix, numerically.
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {}
            o => return o,
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n..]
}

/// A version relation as written in a dependency field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le, // `<` and `>` are obsolete forms of `<=` and `>=`
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Does `have` satisfy `have <op> want`?
    pub fn holds(self, have: &str, want: &str) -> bool {
        let o = compare(have, want);
        match self {
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Eq => o == Ordering::Equal,
            Op::Ge => o != Ordering::Less,
            Op::Gt => o == Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;
    use rand::Rng;

    #[test]
    fn dpkg_ordering() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.1", Less), // '+' < '.' in ASCII, both after letters
            ("1:0.1", "9.9", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("2.30-1+deb12u1", "2.30-1", Greater),
            ("1.001", "1.1", Equal),
            ("1.0", "1.0-0", Equal),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("1-2-3", "1-2-4", Less), // the revision is after the last '-'
            ("a", "", Greater),
            ("~", "", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn relations() {
        assert!(Op::Ge.holds("2.0", "2.0"));
        assert!(Op::Lt.holds("1.9", "2.0"));
        assert!(!Op::Lt.holds("2.0", "2.0"));
        assert!(Op::Gt.holds("1:0", "9"));
        assert!(Op::Eq.holds("0:1.0", "1.0"));
        assert_eq!(Op::parse(">"), Some(Op::Ge));
    }

    #[test]
    fn validity() {
        assert!(valid("1.0"));
        assert!(valid("1:2.3~rc1-4+b1"));
        assert!(!valid(""));
        assert!(!valid("a1.0"));
        assert!(!valid("x:1.0"));
        assert!(!valid("1.0 2"));
        assert!(!valid("1.0\n"));
    }

    /// A generated version: an optional epoch, an upstream part from pieces chosen to
    /// collide (`~`, leading zeros, empty digit runs, letters against symbols), an
    /// optional revision; `:` in the upstream only with an epoch, `-` only with a revision.
    fn generated(rng: &mut impl rand::Rng) -> String {
        const FIRST: &[&str] = &["0", "1", "2", "10", "007"];
        const UP: &[&str] =
            &["0", "1", "9", "10", "01", "00", "a", "b", "z", "A", "Z", "~", "~~", "+", ".", "..", "~a", "0~"];
        const REV: &[&str] = &["0", "1", "2", "10", "01", "a", "b", "~", "+", ".", "+b1", "~bpo1", "deb12u"];
        let epoch = rng.gen_bool(0.25).then(|| rng.gen_range(0..3));
        let revision = rng.gen_bool(0.5);
        let mut v = epoch.map(|e| format!("{e}:")).unwrap_or_default();
        v.push_str(FIRST[rng.gen_range(0..FIRST.len())]);
        for _ in 0..rng.gen_range(0..5) {
            match rng.gen_range(0..20) {
                0 if epoch.is_some() => v.push(':'),
                1 if revision => v.push('-'),
                _ => v.push_str(UP[rng.gen_range(0..UP.len())]),
            }
        }
        if revision {
            v.push('-');
            for _ in 0..rng.gen_range(1..4) {
                v.push_str(REV[rng.gen_range(0..REV.len())]);
            }
        }
        v
    }

    /// A small edit of `v` that often compares equal or adjacent to it.
    fn mutated(rng: &mut impl rand::Rng, v: &str) -> String {
        let has_rev = v.contains('-');
        match rng.gen_range(0..8) {
            0 => format!("{v}0"),
            1 => format!("{v}~"),
            2 => format!("{v}.0"),
            3 if !v.contains(':') => format!("0:{v}"),
            4 if !has_rev => format!("{v}-0"),
            5 => v.replacen('1', "01", 1),
            6 => format!("{v}a"),
            _ => format!("{v}+"),
        }
    }

    /// dpkg is the oracle. Each chain of generated versions is sorted with `compare`;
    /// `compare` must agree with that order on every pair (so it is a total preorder),
    /// and `dpkg --compare-versions` must confirm every adjacent step (`lt` or `eq`).
    /// dpkg's order is a total preorder too, so it then agrees with `compare` on every
    /// pair of the chain: 4 chains of 150 versions are 44,700 pairs, checked with 596
    /// dpkg runs. 400 random near-equal pairs are checked directly as well. The runs are
    /// batched in one shell loop per chunk, two chunks at a time.
    #[test]
    fn matches_dpkg_compare_versions() {
        use rand::SeedableRng as _;
        assert!(
            std::process::Command::new("dpkg").arg("--version").output().is_ok_and(|o| o.status.success()),
            "dpkg is needed (apt-get install dpkg)"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x00de_b1a2);
        let op = |o: Ordering| match o {
            Less => "lt",
            Equal => "eq",
            Greater => "gt",
        };
        let mut chunks: Vec<Vec<(String, &str, String)>> = Vec::new();
        let mut pairs = 0;
        for _ in 0..4 {
            let mut vs: Vec<String> = Vec::new();
            while vs.len() < 150 {
                let v = if vs.len() < 50 || rng.gen_bool(0.3) {
                    generated(&mut rng)
                } else {
                    let base = vs[rng.gen_range(0..vs.len())].clone();
                    mutated(&mut rng, &base)
                };
                assert!(valid(&v), "generated an invalid version `{v}`");
                vs.push(v);
            }
            vs.sort_by(|a, b| compare(a, b));
            // strict[k]: how many strict steps the sorted chain takes before index k.
            let mut strict = vec![0usize; vs.len()];
            for k in 1..vs.len() {
                strict[k] = strict[k - 1] + usize::from(compare(&vs[k - 1], &vs[k]) == Less);
            }
            for i in 0..vs.len() {
                for j in i + 1..vs.len() {
                    let implied = if strict[j] > strict[i] { Less } else { Equal };
                    assert_eq!(compare(&vs[i], &vs[j]), implied, "{} vs {}", vs[i], vs[j]);
                    assert_eq!(compare(&vs[j], &vs[i]), implied.reverse(), "{} vs {}", vs[j], vs[i]);
                    pairs += 1;
                }
            }
            chunks.push(vs.windows(2).map(|w| (w[0].clone(), op(compare(&w[0], &w[1])), w[1].clone())).collect());
        }
        let direct: Vec<(String, &str, String)> = (0..400)
            .map(|_| {
                let a = generated(&mut rng);
                let b = if rng.gen_bool(0.7) { mutated(&mut rng, &a) } else { generated(&mut rng) };
                let o = op(compare(&a, &b));
                (a, o, b)
            })
            .collect();
        pairs += direct.len();
        chunks.push(direct);
        assert!(pairs >= 10_000, "{pairs} pairs");
        let run = |chunk: &[(String, &str, String)]| -> Vec<String> {
            let input: String = chunk.iter().enumerate().map(|(i, (a, o, b))| format!("{i} {a} {o} {b}\n")).collect();
            let mut child = std::process::Command::new("bash")
                .arg("-c")
                .arg(r#"while read -r i a op b; do dpkg --compare-versions "$a" "$op" "$b" 2>&1 || echo "FAIL $i"; done"#)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("bash runs");
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("FAIL "))
                .map(|i| {
                    let (a, o, b) = &chunk[i.parse::<usize>().unwrap()];
                    format!("airlock says `{a}` {o} `{b}`, dpkg disagrees")
                })
                .collect()
        };
        let failures: Vec<String> = std::thread::scope(|s| {
            chunks
                .chunks(3)
                .map(|c| s.spawn(|| c.iter().flat_map(|c| run(c)).collect::<Vec<_>>()))
                .collect::<Vec<_>>()
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(failures.is_empty(), "{} disagreements with dpkg:\n{}", failures.len(), failures.join("\n"));
    }

    proptest::proptest! {
        /// Any strings: `valid` and `compare` never panic, and `compare` is antisymmetric.
        #[test]
        fn compare_is_total(a in "\\PC{0,24}", b in "[0-9a-z.+~:-]{0,24}") {
            let _ = valid(&a);
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&a, &a), Equal);
        }
    }
}
