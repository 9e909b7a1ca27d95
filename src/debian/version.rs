//! Debian version comparison (Debian Policy §5.6.12): `[epoch:]upstream[-revision]`.
//! The epoch compares numerically; upstream and revision compare by the dpkg algorithm,
//! alternating non-digit runs (where `~` sorts before everything, even the end of the
//! string, then the end, then letters, then other characters in ASCII order) and digit
//! runs (compared as numbers, empty = 0).

use std::cmp::Ordering;

/// Is `v` a syntactically valid Debian version?
pub fn valid(v: &str) -> bool {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let upstream = rest.rsplit_once('-').map_or(rest, |(u, _)| u);
    !upstream.is_empty()
        && upstream.as_bytes()[0].is_ascii_digit()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
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
}
