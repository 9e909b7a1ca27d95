//! Every name that becomes a path or a command argument, checked in one place: git
//! repository and ref names, image repositories, tags and digests, Python projects and
//! file names, Debian suites, components, architectures, packages and versions, raw file
//! paths, and the names of the store's repositories and of bundles.
//!
//! Names come from a spec (checked when it is loaded), from a manifest (checked with it,
//! before any target sees it: a trusted key can sign a hostile manifest too, if it is
//! stolen or signs what a compromised connected side produced), from flags and from
//! requests to `airlock serve`. Each validator returns a [`NameError`] that says which
//! kind of name it is, shows the name (escaped, and cut short if long) and the rule it
//! breaks, so a hostile name is refused early with a one-line cause, never joined to a
//! path or passed to git.

use std::fmt;

use crate::relpath::{RelPath, RelPathError};

/// What a name names, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `<store>/git/<name>.git`.
    GitRepository,
    /// A full ref name, `refs/...`.
    GitRef,
    /// A ref name or a pattern with one `*`, as the spec's `refs` lists them.
    GitRefPattern,
    /// A git object id.
    ObjectId,
    /// `registry.example/<repository>:<tag>`.
    ImageReference,
    ImageRepository,
    ImageTag,
    ImageDigest,
    /// A project name as written (PEP 508).
    PythonProject,
    /// A project name in normalized form (PEP 503): the directory of its files and page.
    NormalizedPythonProject,
    /// A wheel or sdist file name: `files/<project>/<file>`.
    PythonFile,
    /// A line of `requirements`.
    PythonRequirement,
    /// `dists/<suite>/`; may have `/` between parts (`trixie/updates`).
    DebianSuite,
    DebianComponent,
    DebianArchitecture,
    DebianPackage,
    DebianVersion,
    /// A path in a raw repository.
    RawPath,
    /// A repository of the store: `<store>/repository/<name>/` (`--raw-repo`,
    /// `--apt-repo`, `--python-index`, a spec's Python `name`).
    Repository,
    /// A bundle's `name`: `<name>-<version>.airlock`.
    BundleName,
    BundleVersion,
    /// A Debian entry's `vendor` (the purl namespace).
    Vendor,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::GitRepository => "git repository name",
            NameKind::GitRef => "git ref name",
            NameKind::GitRefPattern => "git ref name or pattern",
            NameKind::ObjectId => "git object id",
            NameKind::ImageReference => "image reference",
            NameKind::ImageRepository => "image repository name",
            NameKind::ImageTag => "image tag",
            NameKind::ImageDigest => "image digest",
            NameKind::PythonProject => "Python project name",
            NameKind::NormalizedPythonProject => "normalized Python project name",
            NameKind::PythonFile => "Python file name",
            NameKind::PythonRequirement => "Python requirement",
            NameKind::DebianSuite => "Debian suite",
            NameKind::DebianComponent => "Debian component",
            NameKind::DebianArchitecture => "Debian architecture",
            NameKind::DebianPackage => "Debian package name",
            NameKind::DebianVersion => "Debian version",
            NameKind::RawPath => "raw file path",
            NameKind::Repository => "repository name",
            NameKind::BundleName => "bundle name",
            NameKind::BundleVersion => "bundle version",
            NameKind::Vendor => "vendor name",
        })
    }
}

/// A name that breaks a rule: `` `<name>` is not a valid <kind>: <rule> ``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid {kind}: {rule}")]
pub struct NameError {
    pub kind: NameKind,
    /// The name as shown: control characters escaped, cut after [`SHOWN`] characters.
    pub name: String,
    pub rule: String,
}

/// How many characters of a refused name a message shows.
pub const SHOWN: usize = 80;

impl NameError {
    pub fn new(kind: NameKind, name: &str, rule: impl Into<String>) -> Self {
        Self { kind, name: shown(name), rule: rule.into() }
    }
}

/// A name as messages show it: control characters escaped (so a message stays one
/// line), cut after [`SHOWN`] characters.
pub fn shown(name: &str) -> String {
    let mut out: String = name.chars().take(SHOWN).collect::<String>().escape_debug().collect();
    if name.chars().count() > SHOWN {
        out.push_str(&format!("... ({} bytes)", name.len()));
    }
    out
}

type Check = Result<(), NameError>;

/// The longest plain name.
pub const PLAIN_MAX: usize = 128;

/// A part of a name quoted in a rule: escaped, and cut short if long.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect::<String>().escape_debug().collect();
    if s.chars().count() > 40 {
        out.push_str("...");
    }
    out
}

/// What is wrong with a character, for rules.
fn bad_char(c: char) -> String {
    match c {
        '\n' => "it has a newline".into(),
        '\0' => "it has a NUL character".into(),
        ' ' => "it has a space".into(),
        c if c.is_control() => format!("it has the control character {}", c.escape_debug()),
        c => format!("it has `{c}`"),
    }
}

/// A plain name: 1 to 128 ASCII letters, digits, `.`, `_`, `+` or `-`, not starting with
/// `.` or `-`. One path component, never `.` or `..`, never read as an option.
pub fn plain(kind: NameKind, s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(kind, s, rule));
    if s.is_empty() {
        return err("it is empty".into());
    }
    if s.len() > PLAIN_MAX {
        return err(format!("it is longer than {PLAIN_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "._+-".contains(*c))) {
        return err(format!("{} (only letters, digits, `.`, `_`, `+` and `-`)", bad_char(c)));
    }
    if s.starts_with(['.', '-']) {
        return err(format!("it starts with `{}`", &s[..1]));
    }
    Ok(())
}

/// The store's repository `<store>/repository/<name>/`.
pub fn repository(s: &str) -> Check {
    plain(NameKind::Repository, s)
}

pub fn bundle_name(s: &str) -> Check {
    plain(NameKind::BundleName, s)
}

pub fn bundle_version(s: &str) -> Check {
    plain(NameKind::BundleVersion, s)
}

// ---------------------------------------------------------------------------------------
// git

/// A git repository at the site is `<store>/git/<name>.git` (and `{name}` in `import
/// --git-push` URLs): one plain name, never a path.
pub fn git_repository(s: &str) -> Check {
    plain(NameKind::GitRepository, s)
}

/// The longest ref name.
pub const REF_MAX: usize = 1024;

/// A full ref name (`refs/...`): [`git check-ref-format`]'s rules, at most 1024 bytes.
/// A ref becomes an argument of git commands and a line of `git update-ref --stdin`, so
/// a newline or any other control character is never part of one.
///
/// [`git check-ref-format`]: https://git-scm.com/docs/git-check-ref-format
pub fn git_ref(s: &str) -> Check {
    ref_name(NameKind::GitRef, s, false)
}

/// A spec's `refs` entry: a full ref name, or one with a single `*` (`refs/tags/18.*`),
/// by the rules of `git check-ref-format --refspec-pattern`.
pub fn git_ref_pattern(s: &str) -> Check {
    ref_name(NameKind::GitRefPattern, s, true)
}

fn ref_name(kind: NameKind, s: &str, pattern: bool) -> Check {
    if s.len() > REF_MAX {
        return Err(NameError::new(kind, s, format!("it is longer than {REF_MAX} bytes")));
    }
    check_ref_format(s, pattern).map_err(|rule| NameError::new(kind, s, rule))?;
    if !s.starts_with("refs/") {
        return Err(NameError::new(kind, s, "it does not start with `refs/`"));
    }
    Ok(())
}

/// The rules of `git check-ref-format` (without `--allow-onelevel` and `--normalize`;
/// with `--refspec-pattern` when `pattern`), as git's `refs.c` applies them: the broken
/// rule, if any.
fn check_ref_format(s: &str, pattern: bool) -> Result<(), String> {
    if s == "@" {
        return Err("it is `@`".into());
    }
    let mut stars = 0;
    for c in s.chars() {
        match c {
            c if c.is_ascii_control() || c == ' ' => return Err(bad_char(c)),
            '~' | '^' | ':' | '?' | '[' | '\\' => return Err(bad_char(c)),
            '*' if !pattern => return Err(bad_char(c)),
            '*' => {
                stars += 1;
                if stars > 1 {
                    return Err("it has more than one `*`".into());
                }
            }
            _ => {}
        }
    }
    if s.contains("..") {
        return Err("it has `..`".into());
    }
    if s.contains("@{") {
        return Err("it has `@{`".into());
    }
    if s.starts_with('/') {
        return Err("it starts with `/`".into());
    }
    if s.ends_with('/') {
        return Err("it ends with `/`".into());
    }
    if s.contains("//") {
        return Err("it has an empty component (`//`)".into());
    }
    if s.is_empty() {
        return Err("it is empty".into());
    }
    for c in s.split('/') {
        if c.starts_with('.') {
            return Err(format!("its component `{}` starts with `.`", short(c)));
        }
        if c.ends_with(".lock") {
            return Err(format!("its component `{}` ends with `.lock`", short(c)));
        }
    }
    if s.ends_with('.') {
        return Err("it ends with `.`".into());
    }
    if !s.contains('/') {
        return Err("it has one component only (full names start with `refs/`)".into());
    }
    Ok(())
}

/// A git object id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
pub fn object_id(s: &str) -> Check {
    let hex = s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !matches!(s.len(), 40 | 64) || !hex {
        return Err(NameError::new(NameKind::ObjectId, s, "an object id is 40 or 64 lower-case hex digits"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// OCI

/// The longest image repository name (the distribution spec's limit on a name).
pub const IMAGE_REPOSITORY_MAX: usize = 255;
/// The longest tag.
pub const IMAGE_TAG_MAX: usize = 128;

/// An image repository by the distribution grammar: components of lower-case letters
/// and digits joined by `.`, `_`, `__` or a run of `-`, separated by `/`
/// (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`), at most
/// 255 bytes. It becomes `<store>/oci/<repository>/` and a path at a target registry.
pub fn image_repository(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::ImageRepository, s, rule));
    if s.is_empty() {
        return err("it is empty".into());
    }
    if s.len() > IMAGE_REPOSITORY_MAX {
        return err(format!("it is longer than {IMAGE_REPOSITORY_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(*c))) {
        return err(format!("{} (only lower-case letters, digits, `.`, `_`, `-` and `/`)", bad_char(c)));
    }
    for comp in s.split('/') {
        if comp.is_empty() {
            return err("it has an empty component".into());
        }
        let shown = short(comp);
        if !comp.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !comp.ends_with(|c: char| c.is_ascii_alphanumeric())
        {
            return err(format!("its component `{shown}` does not start and end with a letter or digit"));
        }
        for sep in comp.split(|c: char| c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
                return err(format!(
                    "its component `{shown}` joins letters and digits with `{sep}` (only `.`, `_`, `__` or `-`s)"
                ));
            }
        }
    }
    Ok(())
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`. It becomes `<store>/oci/<repository>/tags/<tag>`.
pub fn image_tag(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::ImageTag, s, rule));
    if s.is_empty() {
        return err("it is empty".into());
    }
    if s.len() > IMAGE_TAG_MAX {
        return err(format!("it is longer than {IMAGE_TAG_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))) {
        return err(format!("{} (only letters, digits, `_`, `.` and `-`)", bad_char(c)));
    }
    if s.starts_with(['.', '-']) {
        return err(format!("it starts with `{}`", &s[..1]));
    }
    Ok(())
}

/// A digest: `sha256:` and 64 lower-case hex digits (the only algorithm airlock carries).
pub fn image_digest(s: &str) -> Check {
    s.parse::<crate::digest::Digest>()
        .map(drop)
        .map_err(|_| NameError::new(NameKind::ImageDigest, s, "a digest is `sha256:` and 64 lower-case hex digits"))
}

/// The longest image reference.
pub const IMAGE_REFERENCE_MAX: usize = 1024;

/// An image reference, split: each part checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageParts<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Split and check `registry.example:5000/ns/name:tag` (or `...@sha256:<hex>`, or both).
/// The registry host is always explicit: airlock has no default registry.
pub fn image_parts(s: &str) -> Result<ImageParts<'_>, NameError> {
    let err = |rule: String| Err(NameError::new(NameKind::ImageReference, s, rule));
    if s.len() > IMAGE_REFERENCE_MAX {
        return err(format!("it is longer than {IMAGE_REFERENCE_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return err(bad_char(c));
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    let Some((registry, path)) = rest.split_once('/') else {
        return err("it must name its registry, like `registry.example:5000/ns/name:tag`".into());
    };
    if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
        return err(format!(
            "`{registry}` is not a registry host; write the registry explicitly (`registry.example/{rest}`)"
        ));
    }
    let (repository, tag) = match path.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (path, None),
    };
    if tag.is_none() && digest.is_none() {
        return err("it needs a tag (`:1.0`) or a digest (`@sha256:...`)".into());
    }
    if let Some(d) = digest {
        image_digest(d)?;
    }
    if let Some(t) = tag {
        image_tag(t)?;
    }
    image_repository(repository)?;
    Ok(ImageParts { registry, repository, tag, digest })
}

/// An image artifact's name is the reference written in the spec.
pub fn image_reference(s: &str) -> Check {
    image_parts(s).map(drop)
}

// ---------------------------------------------------------------------------------------
// Python

/// The longest Python project name.
pub const PROJECT_MAX: usize = 200;

/// A project name as PEP 508 has it: `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`, any case.
pub fn python_project(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::PythonProject, s, rule));
    if s.is_empty() {
        return err("it is empty".into());
    }
    if s.len() > PROJECT_MAX {
        return err(format!("it is longer than {PROJECT_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
        return err(format!("{} (only letters, digits, `.`, `_` and `-`)", bad_char(c)));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) || !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return err("it does not start and end with a letter or digit".into());
    }
    Ok(())
}

/// A project name in PEP 503 normalized form (lower case, each run of `-_.` one `-`):
/// the directory `files/<project>/` and `simple/<project>/` of an index.
pub fn python_project_normalized(s: &str) -> Check {
    python_project(s).map_err(|e| NameError { kind: NameKind::NormalizedPythonProject, ..e })?;
    let normal = crate::pypi::normalize(s);
    if normal != s {
        return Err(NameError::new(NameKind::NormalizedPythonProject, s, format!("its normalized form is `{normal}`")));
    }
    Ok(())
}

/// The suffixes of the distribution files an index carries: wheels and sdists.
pub const PYTHON_FILE_SUFFIXES: [&str; 5] = [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"];

/// A distribution file name: one path component (no `/`, `\`, control character, not
/// starting with `.`, at most 255 bytes) that ends like a wheel or an sdist. It becomes
/// `files/<project>/<file>` and `<file>.metadata` beside it.
pub fn python_file(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::PythonFile, s, rule));
    if s.is_empty() {
        return err("it is empty".into());
    }
    if s.len() > 255 {
        return err("it is longer than 255 bytes".into());
    }
    if let Some(c) = s.chars().find(|c| *c == '/' || *c == '\\' || c.is_control()) {
        return err(bad_char(c));
    }
    if s.starts_with('.') {
        return err("it starts with `.`".into());
    }
    if !PYTHON_FILE_SUFFIXES.iter().any(|x| s.len() > x.len() && s.ends_with(x)) {
        return err("it is not a wheel (`.whl`) or sdist (`.tar.gz`, `.zip`, `.tar.bz2`, `.tgz`) file name".into());
    }
    Ok(())
}

/// A requirement line's project name (what comes before extras, a version, a marker or
/// `@`), and no control character anywhere; the rest is PEP 508's to parse.
pub fn python_requirement(line: &str) -> Check {
    if let Some(c) = line.chars().find(|c| c.is_control()) {
        return Err(NameError::new(NameKind::PythonRequirement, line, bad_char(c)));
    }
    let line = line.trim_start();
    let end = line.find(|c: char| c.is_whitespace() || "[(<>=!~;@,".contains(c)).unwrap_or(line.len());
    match &line[..end] {
        "" => Ok(()),
        name => python_project(name),
    }
}

// ---------------------------------------------------------------------------------------
// Debian

/// A suite: plain names joined by `/` (`trixie/updates`), at most 128 bytes. It becomes
/// `dists/<suite>/`.
pub fn deb_suite(s: &str) -> Check {
    if s.len() > PLAIN_MAX {
        return Err(NameError::new(NameKind::DebianSuite, s, format!("it is longer than {PLAIN_MAX} bytes")));
    }
    for part in s.split('/') {
        plain(NameKind::DebianSuite, part).map_err(|e| {
            let rule =
                if part.is_empty() { "it has an empty part".into() } else { format!("part `{}`: {}", e.name, e.rule) };
            NameError::new(NameKind::DebianSuite, s, rule)
        })?;
    }
    Ok(())
}

/// A component: one plain name (`main`). It becomes `dists/<suite>/<component>/` and `pool/<component>/`.
pub fn deb_component(s: &str) -> Check {
    plain(NameKind::DebianComponent, s)
}

/// An architecture: one plain name (`amd64`, `all`). It becomes `binary-<arch>/` and
/// part of a .deb's file name.
pub fn deb_architecture(s: &str) -> Check {
    plain(NameKind::DebianArchitecture, s)
}

/// A package name (Debian Policy 5.6.1): at least two lower-case letters, digits, `+`,
/// `-` or `.`, starting with a letter or digit; at most 128 bytes.
pub fn deb_package(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::DebianPackage, s, rule));
    if s.len() < 2 {
        return err("it is shorter than two characters".into());
    }
    if s.len() > PLAIN_MAX {
        return err(format!("it is longer than {PLAIN_MAX} bytes"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(*c))) {
        return err(format!("{} (only lower-case letters, digits, `+`, `-` and `.`)", bad_char(c)));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return err("it does not start with a letter or digit".into());
    }
    Ok(())
}

/// The longest Debian version.
pub const DEB_VERSION_MAX: usize = 256;

/// A version (Debian Policy 5.6.12): `[epoch:]upstream[-revision]`, the epoch digits, the
/// upstream part starting with a digit, and only letters, digits, `.`, `+`, `~`, `-` and
/// `:`; at most 256 bytes. It becomes part of a .deb's file name in the pool.
pub fn deb_version(v: &str) -> Check {
    let err = |rule: &str| Err(NameError::new(NameKind::DebianVersion, v, rule));
    if v.len() > DEB_VERSION_MAX {
        return Err(NameError::new(NameKind::DebianVersion, v, format!("it is longer than {DEB_VERSION_MAX} bytes")));
    }
    if let Some(c) = v.chars().find(|c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(*c))) {
        return Err(NameError::new(
            NameKind::DebianVersion,
            v,
            format!("{} (only letters, digits, `.`, `+`, `~`, `-` and `:`)", bad_char(c)),
        ));
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, v),
    };
    if epoch.is_some_and(|e| e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
        return err("its epoch (before `:`) is not a number");
    }
    let upstream = rest.rsplit_once('-').map_or(rest, |(u, _)| u);
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return err("its upstream version does not start with a digit");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Raw files

/// Temporary files and directories in a store start with this; a raw path never has a
/// component that does (a later run would take it for a killed run's litter).
pub const RESERVED_PREFIX: &str = crate::store::atomic::TEMP_PREFIX;

/// A path in a raw repository: a [`RelPath`] (relative, no empty, `.` or `..` component,
/// no backslash or control character, at most 4096 bytes) with no component starting with
/// `.airlock-`, which the store keeps for its temporary files.
pub fn raw_path(s: &str) -> Check {
    let err = |rule: String| Err(NameError::new(NameKind::RawPath, s, rule));
    if let Err(e) = RelPath::new(s) {
        return err(match e {
            RelPathError::Empty => "it is empty".into(),
            RelPathError::Absolute(_) => "it is absolute".into(),
            RelPathError::ParentDir(_) => "it has a `..` component".into(),
            RelPathError::EmptyComponent(_) => "it has an empty or `.` component".into(),
            RelPathError::BadCharacter(_) => match s.chars().find(|c| *c == '\\' || c.is_control()) {
                Some(c) => bad_char(c),
                None => "it has a backslash or control character".into(),
            },
            RelPathError::NotUtf8 => "it is not UTF-8".into(),
            RelPathError::TooLong(_) => "it is longer than 4096 bytes".into(),
        });
    }
    if let Some(c) = s.split('/').find(|c| c.starts_with(RESERVED_PREFIX)) {
        return err(format!(
            "its component `{}` starts with `{RESERVED_PREFIX}`, which airlock keeps for its temporary files",
            short(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: Check) {
        r.unwrap();
    }

    #[track_caller]
    fn refused(r: Check, rule: &str) -> NameError {
        let e = r.expect_err(rule);
        assert!(e.rule.contains(rule), "{e} (expected the rule to say {rule:?})");
        assert!(!e.to_string().contains('\n'), "one line: {e:?}");
        e
    }

    /// The hostile cases every validator refuses.
    const HOSTILE: [&str; 9] = ["../x", "/abs", "a/../b", "a\0b", "a\nb", "a b", "", ".", ".."];

    fn overlong() -> String {
        "a".repeat(5000)
    }

    #[test]
    fn every_validator_refuses_the_hostile_cases() {
        type V = fn(&str) -> Check;
        let all: [(&str, V); 17] = [
            ("repository", repository),
            ("bundle_name", bundle_name),
            ("bundle_version", bundle_version),
            ("git_repository", git_repository),
            ("git_ref", git_ref),
            ("git_ref_pattern", git_ref_pattern),
            ("object_id", object_id),
            ("image_repository", image_repository),
            ("image_tag", image_tag),
            ("image_reference", image_reference),
            ("python_project", python_project),
            ("python_project_normalized", python_project_normalized),
            ("python_file", python_file),
            ("deb_suite", deb_suite),
            ("deb_component", deb_component),
            ("deb_package", deb_package),
            ("raw_path", raw_path),
        ];
        for (what, v) in all {
            // Spaces are fine in a raw file's path, nowhere else.
            let hostile = HOSTILE.iter().copied().filter(|h| what != "raw_path" || *h != "a b");
            for h in hostile.chain([overlong().as_str()]) {
                // `a/../b` is a path, `../x` a ref of one component: each refused by some rule.
                let e = v(h).expect_err(&format!("{what} accepts {h:?}"));
                let msg = e.to_string();
                assert!(!msg.contains('\n') && !msg.contains('\0'), "{what}: {msg:?}");
                assert!(msg.len() < 400, "{what}: a long name is cut short: {msg}");
            }
            // Names with `/` inside hostile refs and paths: refs/heads/../x and friends.
            for h in ["refs/heads/../x", "refs/heads/a\nb", "refs/heads/a\0b", "x/../../y"] {
                assert!(v(h).is_err(), "{what} accepts {h:?}");
            }
        }
        let e = raw_path(&overlong()).unwrap_err();
        assert!(
            e.to_string().ends_with("... (5000 bytes)` is not a valid raw file path: it is longer than 4096 bytes")
        );
    }

    #[test]
    fn messages_name_the_kind_the_name_and_the_rule() {
        assert_eq!(
            git_ref("refs/heads/x\ndelete refs/heads/main").unwrap_err().to_string(),
            "`refs/heads/x\\ndelete refs/heads/main` is not a valid git ref name: it has a newline"
        );
        assert_eq!(
            git_repository("../../x").unwrap_err().to_string(),
            "`../../x` is not a valid git repository name: it has `/` (only letters, digits, `.`, `_`, `+` and `-`)"
        );
        assert_eq!(
            image_repository("ns/Base").unwrap_err().to_string(),
            "`ns/Base` is not a valid image repository name: it has `B` (only lower-case letters, digits, `.`, `_`, `-` and `/`)"
        );
        assert_eq!(
            raw_path("a/.airlock-x.tmp").unwrap_err().to_string(),
            "`a/.airlock-x.tmp` is not a valid raw file path: its component `.airlock-x.tmp` starts with `.airlock-`, \
             which airlock keeps for its temporary files"
        );
    }

    #[test]
    fn plain_names() {
        for good in ["raw", "pypi", "site-inputs", "2026.11", "a_b+c", "A", "x.git"] {
            ok(repository(good));
        }
        refused(repository(""), "empty");
        refused(repository(".hidden"), "starts with `.`");
        refused(repository("-rf"), "starts with `-`");
        refused(repository("a/b"), "`/`");
        refused(repository("ü"), "`ü`");
        refused(repository(&"a".repeat(129)), "longer than 128");
        ok(repository(&"a".repeat(128)));
    }

    #[test]
    fn git_refs() {
        for good in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/stable/2024.1",
            "refs/heads/ünïcode",
            "refs/heads/a.b/c",
            "refs/heads/@",
            "refs/heads/a@b",
            "refs/heads/x{1}",
        ] {
            ok(git_ref(good));
        }
        for (bad, rule) in [
            ("heads/main", "does not start with `refs/`"),
            ("refs/heads/x\nupdate-ref refs/heads/main 0", "newline"),
            ("refs/heads/../x", "`..`"),
            ("refs/heads/.hidden", "starts with `.`"),
            ("refs/heads/x.lock", "ends with `.lock`"),
            ("refs/heads//x", "empty component"),
            ("refs/heads/x/", "ends with `/`"),
            ("/refs/heads/x", "starts with `/`"),
            ("refs/heads/x.", "ends with `.`"),
            ("refs/heads/a b", "space"),
            ("refs/heads/a~1", "`~`"),
            ("refs/heads/a^", "`^`"),
            ("refs/heads/a:b", "`:`"),
            ("refs/heads/a?", "`?`"),
            ("refs/heads/a*", "`*`"),
            ("refs/heads/a[", "`[`"),
            ("refs/heads/a\\b", "`\\`"),
            ("refs/heads/a@{1}", "`@{`"),
            ("refs/heads/\x7f", "control character"),
            ("refs/heads/a\0", "NUL"),
            ("@", "is `@`"),
            ("refs", "one component"),
        ] {
            refused(git_ref(bad), rule);
        }
        refused(git_ref(&format!("refs/heads/{}", "a".repeat(REF_MAX))), "longer than 1024");
        ok(git_ref_pattern("refs/tags/18.*"));
        ok(git_ref_pattern("refs/heads/*"));
        refused(git_ref_pattern("refs/*/x*"), "more than one `*`");
        refused(git_ref_pattern("heads/*"), "does not start with `refs/`");
        for good in ["a".repeat(40), "0".repeat(64), "0123456789abcdef0123456789abcdef01234567".into()] {
            ok(object_id(&good));
        }
        for bad in ["A".repeat(40), "HEAD".into(), "a".repeat(41), "HEAD; rm -rf /".into(), String::new()] {
            refused(object_id(&bad), "40 or 64");
        }
    }

    /// Candidate ref names: the rule-breaking pieces of `git check-ref-format` in the
    /// places they matter (start, middle, end of a component and of the name).
    fn ref_candidates() -> Vec<String> {
        let pieces = [
            "a", "main", ".", "..", "...", "/", "//", ".lock", "a.lock", "lock", "@", "@{", "{", "}", "~", "^", ":",
            "?", "*", "[", "]", "\\", " ", "\t", "\x01", "\x7f", "-", "_", "+", "=", "!", "#", "$", "%", "&", "'",
            "\"", "(", ")", ",", ";", "<", ">", "|", "ü", "€", "x.y", ".x", "x.", "@x", "x@",
        ];
        let mut out = Vec::new();
        for p in pieces {
            for form in [
                format!("refs/heads/{p}"),
                format!("refs/heads/{p}x"),
                format!("refs/heads/x{p}"),
                format!("refs/heads/x{p}y"),
                format!("refs/{p}/x"),
                format!("{p}refs/heads/x"),
                format!("refs/heads/x/{p}"),
                p.to_string(),
            ] {
                out.push(form);
            }
        }
        out.extend(
            [
                "refs/heads/a*b*c",
                "refs/*",
                "*",
                "refs/heads/x.lock/y",
                "refs/heads/x.lock.y",
                "refs/heads/.lock",
                "refs/heads/a..b",
                "refs/heads/a.b.c",
                "refs/heads/@{u}",
                "refs/heads/a@{",
                "refs/heads/{@",
                "a/b",
                "x",
                "",
            ]
            .map(String::from),
        );
        out.sort();
        out.dedup();
        out
    }

    /// The real `git check-ref-format` decides each candidate; the rules here agree with
    /// it on every one (git alone, without the `refs/` prefix airlock adds). Names that
    /// start with `-` are left out: git reads them as options.
    #[test]
    fn check_ref_format_agrees_with_git() {
        let names: Vec<String> = ref_candidates().into_iter().filter(|n| !n.starts_with('-')).collect();
        assert!(names.len() > 300, "{} candidates", names.len());
        for (flag, pattern) in [("", false), ("--refspec-pattern", true)] {
            let script = format!(
                "command -v git >/dev/null || {{ echo 'git is not installed' >&2; exit 99; }}; \
                 for n in \"$@\"; do git check-ref-format {flag} \"$n\" && echo 1 || echo 0; done"
            );
            let out = std::process::Command::new("sh").arg("-c").arg(script).arg("sh").args(&names).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let verdicts: Vec<bool> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l == "1").collect();
            assert_eq!(verdicts.len(), names.len());
            let mut wrong = Vec::new();
            for (n, git_ok) in names.iter().zip(verdicts) {
                let ours = check_ref_format(n, pattern);
                if ours.is_ok() != git_ok {
                    wrong.push(format!("{n:?}: git says {git_ok}, airlock {ours:?}"));
                }
            }
            assert!(wrong.is_empty(), "{flag}: {} disagreements:\n{}", wrong.len(), wrong.join("\n"));
        }
    }

    #[test]
    fn image_repositories_follow_the_distribution_grammar() {
        for good in [
            "a",
            "ns/base",
            "kolla/ubuntu-binary-nova",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "a-b.c_d__e",
            "0/1/2",
            "library/ubuntu",
            &format!("{}/{}", "a".repeat(127), "b".repeat(127)),
        ] {
            ok(image_repository(good));
        }
        for (bad, rule) in [
            ("", "empty"),
            ("NS/base", "`N`"),
            ("a..b", "`..`"),
            ("a___b", "`___`"),
            ("a._b", "`._`"),
            ("a-.b", "`-.`"),
            ("-a", "start and end"),
            ("a-", "start and end"),
            ("_a", "start and end"),
            ("a/", "empty component"),
            ("/a", "empty component"),
            ("a//b", "empty component"),
            ("../x", "start and end"),
            ("a:b", "`:`"),
            ("a@b", "`@`"),
            ("a b", "space"),
        ] {
            refused(image_repository(bad), rule);
        }
        refused(image_repository(&"a".repeat(256)), "longer than 255");
    }

    #[test]
    fn image_tags_and_digests() {
        for good in ["1.0", "latest", "_x", "A-b.C_d", "2024.1-ubuntu-jammy", &"a".repeat(128)] {
            ok(image_tag(good));
        }
        for (bad, rule) in [
            ("", "empty"),
            (".x", "starts with `.`"),
            ("-x", "starts with `-`"),
            ("a/b", "`/`"),
            ("a:b", "`:`"),
            ("1.0\nx", "newline"),
            ("ü", "`ü`"),
        ] {
            refused(image_tag(bad), rule);
        }
        refused(image_tag(&"a".repeat(129)), "longer than 128");
        ok(image_digest(&format!("sha256:{}", "a".repeat(64))));
        for bad in
            ["sha256:abc".to_string(), format!("sha256:{}", "A".repeat(64)), format!("sha512:{}", "a".repeat(64))]
        {
            refused(image_digest(&bad), "64 lower-case hex");
        }
    }

    #[test]
    fn image_references() {
        let p = image_parts("registry.example:5000/ns/base:1.0").unwrap();
        assert_eq!(
            (p.registry, p.repository, p.tag, p.digest),
            ("registry.example:5000", "ns/base", Some("1.0"), None)
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = format!("localhost/app:1@{d}");
        let p = image_parts(&r).unwrap();
        assert_eq!((p.repository, p.tag, p.digest), ("app", Some("1"), Some(d.as_str())));
        let e = image_reference("fixtures.example/../x:1.0").unwrap_err();
        assert_eq!((e.kind, e.name.as_str()), (NameKind::ImageRepository, "../x"));
        let e = image_reference("fixtures.example/hello/hello:1.0\nx").unwrap_err();
        assert_eq!(e.kind, NameKind::ImageReference);
        refused(image_reference("ubuntu:22.04"), "must name its registry");
        refused(image_reference("library/ubuntu:22.04"), "not a registry host");
        refused(image_reference("registry.example/ns/base"), "needs a tag");
        assert_eq!(image_reference("registry.example/ns/base:a/b").unwrap_err().kind, NameKind::ImageReference);
        assert_eq!(image_reference("registry.example/ns/base:x~").unwrap_err().kind, NameKind::ImageTag);
        assert_eq!(image_reference("registry.example/ns/base@sha256:x").unwrap_err().kind, NameKind::ImageDigest);
    }

    #[test]
    fn python_names() {
        for good in ["a", "oslo.config", "Django", "zope.interface", "a_b-c.d", "x1"] {
            ok(python_project(good));
        }
        for (bad, rule) in [("-x", "start and end"), ("x.", "start and end"), ("a b", "space"), ("a/b", "`/`")] {
            refused(python_project(bad), rule);
        }
        refused(python_project(&"a".repeat(201)), "longer than 200");
        ok(python_project_normalized("oslo-config"));
        refused(python_project_normalized("oslo.config"), "normalized form is `oslo-config`");
        refused(python_project_normalized("A_b"), "normalized form is `a-b`");
        assert_eq!(python_project_normalized("a/b").unwrap_err().kind, NameKind::NormalizedPythonProject);
        for good in ["a-1.0-py3-none-any.whl", "oslo.config-9.4.0.tar.gz", "x-1.zip", "y-2.tar.bz2", "z-3.tgz"] {
            ok(python_file(good));
        }
        for (bad, rule) in [
            ("../a-1.0-py3-none-any.whl", "`/`"),
            ("a\\b.whl", "`\\`"),
            (".a-1.0.tar.gz", "starts with `.`"),
            ("a\tb.whl", "control character"),
            ("setup.py", "not a wheel"),
            (".whl", "starts with `.`"),
        ] {
            refused(python_file(bad), rule);
        }
        for good in ["requests>=2.31", "oslo.config", "a[b]; python_version < '3.12'", "x @ https://h.example/x.whl"] {
            ok(python_requirement(good));
        }
        refused(python_requirement("../x"), "`/`");
        refused(python_requirement("a\nb"), "newline");
        assert_eq!(python_requirement("../x").unwrap_err().kind, NameKind::PythonProject);
    }

    #[test]
    fn debian_names() {
        for good in ["bookworm", "trixie/updates", "bookworm-security", "site"] {
            ok(deb_suite(good));
        }
        for (bad, rule) in [
            ("../x", "part `..`: it starts with `.`"),
            ("/etc/apt", "empty part"),
            ("a//b", "empty part"),
            ("a/", "empty"),
        ] {
            refused(deb_suite(bad), rule);
        }
        refused(deb_suite(&"a/".repeat(70)), "longer than 128");
        ok(deb_component("main"));
        refused(deb_component("main/debian-installer"), "`/`");
        ok(deb_architecture("amd64"));
        refused(deb_architecture("x/../../y"), "`/`");
        for good in ["libc6", "libc++1", "python3-yaml", "0ad", "g++-12"] {
            ok(deb_package(good));
        }
        for (bad, rule) in [
            ("p", "shorter than two"),
            ("Hello", "`H`"),
            ("a\nb", "newline"),
            ("-x", "letter or digit"),
            ("a_b", "`_`"),
            ("hello\nPackage: evil", "newline"),
        ] {
            refused(deb_package(bad), rule);
        }
        for good in ["1.0", "1:2.3~rc1-4+b1", "1:2.0~rc1-3", "2:1.0-1:2", "0", "1.0-a-b"] {
            ok(deb_version(good));
        }
        for (bad, rule) in [
            ("", "does not start with a digit"),
            ("a1.0", "does not start with a digit"),
            ("x:1.0", "epoch"),
            (":1.0", "epoch"),
            ("1.0 2", "space"),
            ("1.0\nPackage: x", "newline"),
            ("1.0/2", "`/`"),
            ("1:a", "does not start with a digit"),
        ] {
            refused(deb_version(bad), rule);
        }
        refused(deb_version(&format!("1.{}", "0".repeat(256))), "longer than 256");
    }

    #[test]
    fn raw_paths() {
        for good in ["a", "a/b.tar.gz", "bin/amd64/tool", "x..y", ".hidden/file", "airlock-x", "a/x.airlock-"] {
            ok(raw_path(good));
        }
        for (bad, rule) in [
            ("../x", "`..` component"),
            ("a/../b", "`..` component"),
            ("/abs", "absolute"),
            ("a//b", "empty or `.`"),
            ("a/./b", "empty or `.`"),
            ("a\\b", "`\\`"),
            ("a\nb", "newline"),
            ("a\0b", "NUL"),
            ("", "empty"),
            (".airlock-x.tmp", "`.airlock-`"),
            ("d/.airlock-Ab12Cd", "`.airlock-`"),
        ] {
            refused(raw_path(bad), rule);
        }
    }
}
