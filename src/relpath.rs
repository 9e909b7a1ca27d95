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
}
