//! airlock's two wildcard matchers against `globset` (ripgrep's), as an oracle.
//!
//! `globset` was considered as their replacement and kept out of the product: its syntax
//! is a superset of what the spec documents (`[...]` classes, `{a,b}` alternatives, `\`
//! escapes, `**`), and `{`, `}` and `]` are legal in git ref names, so every pattern
//! would have to be escaped into a glob, compiled (which can fail), and kept compiled
//! for each call site, to do what a dozen lines do: Debian `include`/`exclude` patterns
//! have `*` and `?`, git ref patterns one `*`, and both match `/` like any character.
//! What is checked here is that the hand-written matchers are exactly `globset` on
//! those documented patterns (the other characters escaped, `literal_separator` off).

use airlock::debian::resolve::glob;
use airlock::spec::ref_matches;
use globset::GlobBuilder;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// `pattern` with every character but `*` and `?` taken literally, as a `globset` glob.
fn oracle(pattern: &str, name: &str) -> bool {
    let mut glob = String::new();
    for c in pattern.chars() {
        match c {
            // A run of `*` is one `*`; globset gives `**` a meaning of its own.
            '*' if glob.ends_with('*') => {}
            '*' | '?' => glob.push(c),
            c if c.is_alphanumeric() => glob.push(c),
            // (`globset::escape` leaves `}` and `\` as they are.)
            c => {
                glob.push('\\');
                glob.push(c);
            }
        }
    }
    let matcher = GlobBuilder::new(&glob)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .unwrap_or_else(|e| panic!("the escaped glob of `{pattern}` does not compile: {e}"));
    matcher.compile_matcher().is_match(name)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x0006_10b5),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Debian package patterns: `*` and `?` over names (and, beyond the names Debian
    /// allows, any characters, glob syntax and `/` included).
    #[test]
    fn debian_globs_are_globset(pattern in "[ab.+*?/\\[\\]{},\\\\é-]{0,10}", name in "[ab.+/\\[{é-]{0,12}") {
        let _s = crate::serial();
        prop_assert_eq!(glob(&pattern, &name), oracle(&pattern, &name), "`{}` against `{}`", pattern, name);
    }

    /// Names built to match: a pattern is the name with some pieces replaced.
    #[test]
    fn debian_globs_match_what_they_were_made_from(name in "[a-z0-9.+-]{1,16}", cuts in proptest::collection::vec((0usize..16, 0usize..4, any::<bool>()), 0..3)) {
        let _s = crate::serial();
        // Replace pieces of the name that do not overlap: with `*`, or a `?` per character.
        let chars: Vec<char> = name.chars().collect();
        let mut cuts: Vec<(usize, usize, bool)> = cuts.into_iter().map(|(at, len, star)| {
            let at = at.min(chars.len());
            (at, (at + len).min(chars.len()), star)
        }).collect();
        cuts.sort_unstable();
        let (mut pattern, mut done) = (String::new(), 0);
        for (at, end, star) in cuts {
            if at < done {
                continue;
            }
            pattern.extend(&chars[done..at]);
            if star || end == at { pattern.push('*') } else { pattern.push_str(&"?".repeat(end - at)) }
            done = end;
        }
        pattern.extend(&chars[done..]);
        prop_assert!(glob(&pattern, &name), "`{}` must match `{}`", pattern, name);
        prop_assert!(oracle(&pattern, &name));
    }

    /// git ref patterns: a full name, or one `*` that matches any run of characters,
    /// `/` included (`refs/heads/stable/*` selects `refs/heads/stable/2024.1/hotfix`).
    #[test]
    fn ref_patterns_are_globset(
        pre in "refs/[a-z{}/.,!-]{0,8}", star in any::<bool>(), post in "[a-z{}/.,!-]{0,6}",
        name in "refs/[a-z{}/.,!-]{0,16}",
    ) {
        let _s = crate::serial();
        let pattern = if star { format!("{pre}*{post}") } else { format!("{pre}{post}") };
        prop_assert_eq!(ref_matches(&pattern, &name), oracle(&pattern, &name), "`{}` against `{}`", pattern, name);
        if star {
            let made = format!("{pre}x/y{post}");
            prop_assert!(ref_matches(&pattern, &made), "`{}` must match `{}`", pattern, made);
        }
    }
}
