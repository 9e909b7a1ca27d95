//! Relative paths that are safe to join under a directory: the paths of bundle members,
//! of files in a raw repository, and of files named in the spec.
//!
//! A `RelPath` is UTF-8, `/`-separated, not absolute, and has no empty, `.` or `..`
//! component, no backslash and no control character. Anything else is refused when it
//! is parsed, so no code that holds a `RelPath` can escape the directory it joins.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RelPathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path `{0}`")]
    Absolute(String),
    #[error("path `{0}` has a `..` component")]
    ParentDir(String),
    #[error("path `{0}` has an empty or `.` component")]
    EmptyComponent(String),
    #[error("path `{0}` has a backslash or control character")]
    BadCharacter(String),
    #[error("path is not UTF-8")]
    NotUtf8,
    #[error("path `{0}...` is longer than 4096 bytes")]
    TooLong(String),
}

impl RelPath {
    pub fn new(s: &str) -> Result<Self, RelPathError> {
        if s.is_empty() {
            return Err(RelPathError::Empty);
        }
        if s.len() > 4096 {
            return Err(RelPathError::TooLong(s.chars().take(40).collect()));
        }
        if s.starts_with('/') {
            return Err(RelPathError::Absolute(s.to_string()));
        }
        if s.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(RelPathError::BadCharacter(s.escape_debug().to_string()));
        }
        for c in s.split('/') {
            match c {
                ".." => return Err(RelPathError::ParentDir(s.to_string())),
                "" | "." => return Err(RelPathError::EmptyComponent(s.to_string())),
                _ => {}
            }
        }
        Ok(Self(s.to_string()))
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, RelPathError> {
        Self::new(std::str::from_utf8(b).map_err(|_| RelPathError::NotUtf8)?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for RelPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelPath::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        for ok in ["a", "a/b.tar.gz", "bin/amd64/tool", "x..y", ".hidden/file"] {
            assert_eq!(RelPath::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(RelPath::new("../x"), Err(RelPathError::ParentDir("../x".into())));
        assert_eq!(RelPath::new("a/../../x"), Err(RelPathError::ParentDir("a/../../x".into())));
        assert_eq!(RelPath::new("/etc/x"), Err(RelPathError::Absolute("/etc/x".into())));
        assert!(matches!(RelPath::new("a//b"), Err(RelPathError::EmptyComponent(_))));
        assert!(matches!(RelPath::new("a/./b"), Err(RelPathError::EmptyComponent(_))));
        assert!(matches!(RelPath::new("a/"), Err(RelPathError::EmptyComponent(_))));
        assert!(matches!(RelPath::new("a\\..\\b"), Err(RelPathError::BadCharacter(_))));
        assert!(matches!(RelPath::new("a\nb"), Err(RelPathError::BadCharacter(_))));
        assert_eq!(RelPath::new(""), Err(RelPathError::Empty));
        assert_eq!(RelPath::from_bytes(b"\xff"), Err(RelPathError::NotUtf8));
    }

    /// What every accepted path promises, whatever the input: it is the input, relative,
    /// made of plain components, and joined under a root it stays under the root.
    fn holds(input: &[u8], p: &RelPath) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert;
        use std::path::{Component, Path};
        prop_assert!(p.as_str().as_bytes() == input);
        prop_assert!(!p.as_str().starts_with('/') && p.as_str().len() <= 4096);
        prop_assert!(p.components().all(|c| !c.is_empty() && c != "." && c != ".."));
        prop_assert!(!p.as_str().chars().any(|c| c == '\\' || c.is_control()));
        let root = Path::new("/srv/root");
        let joined = root.join(p.as_str());
        prop_assert!(joined.starts_with(root), "{joined:?}");
        let rest: Vec<_> = joined.strip_prefix(root).unwrap().components().collect();
        prop_assert!(rest.iter().all(|c| matches!(c, Component::Normal(_))), "{rest:?}");
        prop_assert!(rest.len() == p.components().count(), "{rest:?}");
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::with_cases(1024)
        })]

        /// Any bytes, as a tar member name could be.
        #[test]
        fn arbitrary_bytes(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Ok(p) = RelPath::from_bytes(&b) {
                holds(&b, &p)?;
            }
        }

        /// Paths made of the pieces that matter: `.`, `..`, empty components, separators
        /// of both kinds, control and non-ASCII characters, long runs.
        #[test]
        fn path_shaped(parts in proptest::collection::vec(proptest::sample::select(&[
            "a", "b.txt", "..", ".", "", "...", ".hidden", "x..y", "/", "\\", "\0", "\n", "\u{7f}", "\u{85}",
            "é", "\u{202e}", "C:", "~", " ", "%2e%2e", "a/b", "../", "./",
        ][..]), 0..12), long in 0usize..2) {
            let mut s = parts.join("/");
            if long == 1 {
                s.push_str(&"x".repeat(4096));
            }
            if let Ok(p) = RelPath::new(&s) {
                holds(s.as_bytes(), &p)?;
            }
        }

        /// Plain names joined by `/` are always accepted.
        #[test]
        fn plain_paths_are_accepted(parts in proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._ -]{0,15}", 1..8)) {
            let s = parts.join("/");
            proptest::prop_assume!(parts.iter().all(|c| c != "." && c != ".."));
            let p = RelPath::new(&s);
            proptest::prop_assert!(p.is_ok(), "{s:?}: {p:?}");
            holds(s.as_bytes(), &p.unwrap())?;
        }
    }
}
