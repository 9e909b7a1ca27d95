//! Who may do what: tokens, each known only by its SHA-256, with scopes that grant `read`
//! or `write` on everything (`*`) or on a resource prefix (`repository/files`, `v2/kolla`,
//! `git/hello`). `write` implies `read`.
//!
//! A request names one resource: `repository/<name>/<path>` for repository files (a
//! Python upload is `repository/<name>`), `v2/<repository>` for the registry, `git/<name>`
//! for git. A prefix covers a resource when it is the resource or one of its parents, whole
//! path components only: `repository/files` covers `repository/files/a.tar.gz`, not
//! `repository/files-old/a.tar.gz`; a trailing `/` changes nothing.
//!
//! The token a client presents is hashed and compared with every known hash in constant
//! time (`subtle`), all of them whatever matches, so timing tells nothing about the hashes.

use std::fmt;

use sha2::Digest as _;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One grant: an access on everything (`prefix == None`) or under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access: Access,
    pub prefix: Option<String>,
}

impl Scope {
    /// Write access to everything: what `AIRLOCK_SERVE_TOKEN` and `--token-hashes` grant.
    pub fn write_all() -> Self {
        Self { access: Access::Write, prefix: None }
    }

    /// `read:*`, `write:*`, `read:<prefix>`, `write:<prefix>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (access, prefix) = match s.split_once(':') {
            Some(("read", p)) => (Access::Read, p),
            Some(("write", p)) => (Access::Write, p),
            _ => return Err(format!("`{s}` is not a scope: use read:<prefix>, write:<prefix>, read:* or write:*")),
        };
        if prefix == "*" {
            return Ok(Self { access, prefix: None });
        }
        let trimmed = prefix.trim_end_matches('/');
        let valid = !trimmed.is_empty()
            && !prefix.starts_with('/')
            && trimmed.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-/".contains(&b));
        if !valid {
            return Err(format!(
                "`{s}`: the prefix must be `*` or a path like repository/files, v2/kolla or git/hello"
            ));
        }
        Ok(Self { access, prefix: Some(trimmed.to_string()) })
    }

    fn covers(&self, resource: &str, access: Access) -> bool {
        if access == Access::Write && self.access == Access::Read {
            return false;
        }
        match &self.prefix {
            None => true,
            Some(p) => resource == p || resource.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/')),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = if self.access == Access::Read { "read" } else { "write" };
        write!(f, "{access}:{}", self.prefix.as_deref().unwrap_or("*"))
    }
}

/// A token the server accepts: the SHA-256 of its text, and what it may do.
#[derive(Debug, Clone)]
pub struct Token {
    hash: [u8; 32],
    pub scopes: Vec<Scope>,
}

impl Token {
    /// A token given in clear (`AIRLOCK_SERVE_TOKEN`), hashed at once.
    pub fn from_secret(secret: &str, scopes: Vec<Scope>) -> Self {
        Self { hash: sha256(secret), scopes }
    }
}

fn sha256(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// Read a token file: one token per line, `sha256:<hex of the token's SHA-256>` followed by
/// its scopes, separated by spaces; `#` starts a comment. Lines with no scope get
/// `default` (the `--token-hashes` format, a hash alone per line), or are an error when
/// there is no default. Errors name the line.
pub fn parse_tokens(text: &str, default: Option<&Scope>) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", i + 1);
        let mut words = line.split_whitespace();
        let first = words.next().expect("not empty");
        let hex = first.strip_prefix("sha256:").unwrap_or(first);
        let mut hash = [0u8; 32];
        match base16ct::mixed::decode(hex, &mut hash) {
            Ok(b) if b.len() == 32 => {}
            _ => {
                return Err(at(format!(
                    "`{first}` is not a token hash: write sha256:<64 hex digits> (printf %s \"$TOKEN\" | sha256sum)"
                )));
            }
        }
        let mut scopes = words.map(Scope::parse).collect::<Result<Vec<_>, _>>().map_err(at)?;
        if scopes.is_empty() {
            match default {
                Some(d) => scopes.push(d.clone()),
                None => return Err(at("no scope after the hash: add e.g. read:* or write:repository/files".into())),
            }
        }
        out.push(Token { hash, scopes });
    }
    Ok(out)
}

/// Why a request may not go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one the server does not know: 401, so that clients send credentials.
    Unauthenticated,
    /// A known token without the scope this request needs: 403.
    Forbidden,
}

/// Every token the server accepts.
#[derive(Debug, Default)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    pub fn new(tokens: Vec<Token>) -> Self {
        Self(tokens)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes of `presented`, or `None` when no known token has its hash. Every entry
    /// is compared, in constant time.
    fn scopes_of(&self, presented: &str) -> Option<Vec<&Scope>> {
        let h = sha256(presented);
        let mut found: Option<Vec<&Scope>> = None;
        for t in &self.0 {
            if bool::from(t.hash.ct_eq(&h)) {
                found.get_or_insert_with(Vec::new).extend(&t.scopes);
            }
        }
        found
    }

    /// May a request presenting `presented` (if any) have `access` to `resource`?
    /// `anonymous_read` lets anyone read.
    pub fn authorize(
        &self,
        presented: Option<&str>,
        resource: &str,
        access: Access,
        anonymous_read: bool,
    ) -> Result<(), Denied> {
        if access == Access::Read && anonymous_read {
            return Ok(());
        }
        let scopes = presented.and_then(|p| self.scopes_of(p)).ok_or(Denied::Unauthenticated)?;
        if scopes.iter().any(|s| s.covers(resource, access)) { Ok(()) } else { Err(Denied::Forbidden) }
    }

    /// Is `presented` a token the server knows (whatever it may do)?
    pub fn known(&self, presented: Option<&str>) -> bool {
        presented.and_then(|p| self.scopes_of(p)).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(file: &str) -> Tokens {
        Tokens::new(parse_tokens(file, None).unwrap())
    }

    fn line(secret: &str, scopes: &str) -> String {
        format!("sha256:{} {scopes}\n", base16ct::lower::encode_string(&sha256(secret)))
    }

    #[test]
    fn scopes_cover_whole_path_components() {
        let t = tokens(
            &(line("files-writer", "write:repository/files # the files team")
                + &line("kolla", "write:v2/kolla/ write:git/kolla")
                + &line("reader", "read:*")),
        );
        let can = |who: &str, res: &str, a: Access| t.authorize(Some(who), res, a, false);
        assert_eq!(can("files-writer", "repository/files/src/a.tar.gz", Access::Write), Ok(()));
        assert_eq!(can("files-writer", "repository/files", Access::Write), Ok(()));
        assert_eq!(can("files-writer", "repository/files/x", Access::Read), Ok(()), "write implies read");
        assert_eq!(can("files-writer", "repository/files-old/a", Access::Write), Err(Denied::Forbidden));
        assert_eq!(can("files-writer", "repository/pypi", Access::Write), Err(Denied::Forbidden));
        assert_eq!(can("files-writer", "repository/pypi/simple/", Access::Read), Err(Denied::Forbidden));
        assert_eq!(can("kolla", "v2/kolla/base", Access::Write), Ok(()));
        assert_eq!(can("kolla", "v2/kolla", Access::Write), Ok(()));
        assert_eq!(can("kolla", "v2/kollaX/base", Access::Write), Err(Denied::Forbidden));
        assert_eq!(can("kolla", "git/kolla", Access::Write), Ok(()));
        assert_eq!(can("kolla", "git/kolla-ansible", Access::Write), Err(Denied::Forbidden));
        assert_eq!(can("reader", "v2/anything", Access::Read), Ok(()));
        assert_eq!(can("reader", "v2/anything", Access::Write), Err(Denied::Forbidden));
        assert_eq!(can("stranger", "v2/anything", Access::Read), Err(Denied::Unauthenticated));
        assert_eq!(t.authorize(None, "v2/anything", Access::Write, true), Err(Denied::Unauthenticated));
        assert_eq!(t.authorize(None, "v2/anything", Access::Read, true), Ok(()));
        assert!(t.known(Some("reader")) && !t.known(Some("stranger")) && !t.known(None));
    }

    #[test]
    fn token_files_name_the_bad_line() {
        let err = parse_tokens(&format!("# tokens\n\n{}sha256:abc write:*\n", line("a", "read:*")), None).unwrap_err();
        assert!(err.starts_with("line 4:"), "{err}");
        let err = parse_tokens(&line("a", "admin"), None).unwrap_err();
        assert!(err.contains("`admin` is not a scope"), "{err}");
        for bad in ["write:../x", "write:/etc", "write:a//b", "read:", "write:a b"] {
            assert!(Scope::parse(bad).is_err() || bad.contains(' '), "{bad}");
        }
        let err = parse_tokens(&line("a", ""), None).unwrap_err();
        assert!(err.contains("no scope"), "{err}");
        // The --token-hashes format: a hash alone is a write token for everything.
        let t = Tokens::new(parse_tokens(&line("a", ""), Some(&Scope::write_all())).unwrap());
        assert_eq!(t.authorize(Some("a"), "repository/x/y", Access::Write, false), Ok(()));
        assert_eq!(Scope::parse("write:v2/kolla/").unwrap().to_string(), "write:v2/kolla");
    }
}
