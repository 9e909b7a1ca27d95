//! deb822 paragraphs, as in Release files and Packages indexes: `Field: value` lines,
//! continuation lines starting with a space or tab, paragraphs separated by blank lines.

use anyhow::{Result, bail};

/// One paragraph: its fields in order, with values as written (continuation lines kept,
/// joined by `\n`, their leading space included).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
}

impl Paragraph {
    /// A field's value (case-insensitive name), first line trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }

    /// The paragraph as text, each line ending in `\n`, without the blank separator line.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            s.push_str(k);
            s.push(':');
            if !v.starts_with('\n') && !v.is_empty() {
                s.push(' ');
            }
            s.push_str(v);
            s.push('\n');
        }
        s
    }

    pub fn without(&self, names: &[&str]) -> Paragraph {
        Paragraph {
            fields: self
                .fields
                .iter()
                .filter(|(k, _)| !names.iter().any(|n| k.eq_ignore_ascii_case(n)))
                .cloned()
                .collect(),
        }
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push((name.to_string(), value.into()));
    }
}

fn valid_field_name(k: &str) -> bool {
    !k.is_empty() && !k.starts_with('-') && !k.starts_with('#') && k.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// Parse every paragraph of `text`. `what` names the file in errors.
pub fn parse(text: &str, what: &str) -> Result<Vec<Paragraph>> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some((_, v)) = cur.fields.last_mut() else {
                bail!("{what} line {}: a continuation line with no field before it", n + 1);
            };
            v.push('\n');
            v.push_str(line);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            bail!(
                "{what} line {}: `{}` is not a `Field: value` line",
                n + 1,
                line.chars().take(60).collect::<String>()
            );
        };
        if !valid_field_name(k) {
            bail!("{what} line {}: `{k}` is not a field name", n + 1);
        }
        cur.fields.push((k.to_string(), v.trim_start().to_string()));
    }
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Parse text that must hold exactly one paragraph (a Release file, a control stanza).
pub fn parse_one(text: &str, what: &str) -> Result<Paragraph> {
    let mut ps = parse(text, what)?;
    if ps.len() != 1 {
        bail!("{what} must hold exactly one paragraph, not {}", ps.len());
    }
    Ok(ps.remove(0))
}

/// The lines of a multi-line field (like Release's `SHA256:`), trimmed, empty ones dropped.
pub fn lines(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paragraphs() {
        let t = "Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n more\n\n\nPackage: b\nVersion: 2\n";
        let ps = parse(t, "Packages").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("package"), Some("a"));
        assert_eq!(ps[0].get("Description"), Some("short\n long line\n .\n more"));
        assert_eq!(ps[0].to_text(), "Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n more\n");
        assert_eq!(ps[1].get("Version"), Some("2"));
        let r = parse_one("SHA256:\n abc 12 main/x\n def 3 main/y\n", "Release").unwrap();
        assert_eq!(lines(r.get("SHA256").unwrap()).count(), 2);
        assert_eq!(r.to_text(), "SHA256:\n abc 12 main/x\n def 3 main/y\n");
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse(" leading\n", "x").is_err());
        assert!(parse("no colon here\n", "x").is_err());
        assert!(parse_one("A: 1\n\nB: 2\n", "x").is_err());
    }
}
