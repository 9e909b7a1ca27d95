//! deb822 paragraphs, as in Release files and Packages indexes: `Field: value` lines,
//! continuation lines starting with a space or tab, paragraphs separated by blank lines.
//!
//! [`Reader`] reads paragraphs one at a time from any byte stream, so a Packages index
//! is parsed while it is decompressed and never held whole. Memory stays bounded by
//! [`MAX_PARAGRAPH`] whatever the input: a longer paragraph (or line) is an error, not
//! an allocation.

use std::io::{BufRead, Read};

use anyhow::{Context, Result, bail};

/// The largest paragraph read, in bytes. A Packages stanza is a few KiB and the Release
/// of a whole distribution a few hundred; anything larger is refused as malformed.
pub const MAX_PARAGRAPH: usize = 8 << 20;

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

/// Paragraphs read one by one from a byte stream (see the module docs). `what` names
/// the file in errors, with the line number.
pub struct Reader<R> {
    inner: R,
    what: String,
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R, what: impl Into<String>) -> Self {
        Self { inner, what: what.into(), line_no: 0, buf: Vec::new(), done: false }
    }

    /// Read the next line into `buf`, with at most `limit` bytes; its length without
    /// the `\n` and trailing `\r`s, or None at the end of the input.
    fn line(&mut self, limit: usize) -> Result<Option<usize>> {
        self.buf.clear();
        let n = (&mut self.inner)
            .take(limit as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .with_context(|| format!("reading {}", self.what))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if n > limit {
            bail!("{} line {}: a paragraph longer than {MAX_PARAGRAPH} bytes", self.what, self.line_no);
        }
        let mut len = n;
        if self.buf[len - 1] == b'\n' {
            len -= 1;
        }
        while len > 0 && self.buf[len - 1] == b'\r' {
            len -= 1;
        }
        Ok(Some(len))
    }

    fn next_paragraph(&mut self) -> Result<Option<Paragraph>> {
        let mut cur = Paragraph::default();
        let mut size = 0usize;
        while let Some(len) = self.line(MAX_PARAGRAPH - size)? {
            let (what, n) = (&self.what, self.line_no);
            size += self.buf.len();
            let Ok(line) = std::str::from_utf8(&self.buf[..len]) else {
                bail!("{what} line {n}: not UTF-8 text");
            };
            if line.trim().is_empty() {
                if cur.fields.is_empty() {
                    size = 0;
                    continue;
                }
                break;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                let Some((_, v)) = cur.fields.last_mut() else {
                    bail!("{what} line {n}: a continuation line with no field before it");
                };
                v.push('\n');
                v.push_str(line);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                bail!("{what} line {n}: `{}` is not a `Field: value` line", line.chars().take(60).collect::<String>());
            };
            if !valid_field_name(k) {
                bail!("{what} line {n}: `{}` is not a field name", k.chars().take(60).collect::<String>());
            }
            cur.fields.push((k.to_string(), v.trim_start().to_string()));
        }
        Ok((!cur.fields.is_empty()).then_some(cur))
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Paragraph>;

    /// The next paragraph; after an error, None.
    fn next(&mut self) -> Option<Result<Paragraph>> {
        if self.done {
            return None;
        }
        let r = self.next_paragraph().transpose();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }
}

/// Parse every paragraph of `text`. `what` names the file in errors.
pub fn parse(text: &str, what: &str) -> Result<Vec<Paragraph>> {
    Reader::new(text.as_bytes(), what).collect()
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

    #[test]
    fn streams_and_bounds_memory() {
        let t = "A: 1\r\nB: x\r\n y\r\n\r\n\n\nC: 3";
        let ps: Vec<_> = Reader::new(t.as_bytes(), "t").collect::<Result<_>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].get("B"), Some("x\n y"));
        assert_eq!(ps[1].get("C"), Some("3"));
        // An endless line, or an endless paragraph, is refused after MAX_PARAGRAPH bytes,
        // not read into memory until it ends (it never does).
        let endless = std::io::BufReader::new(std::io::repeat(b'a'));
        let err = Reader::new(endless, "Packages").next().unwrap().unwrap_err().to_string();
        assert!(err.contains("Packages line 1: a paragraph longer than"), "{err}");
        let endless = std::io::BufReader::new(b"Field: value\n".as_slice().chain(std::io::repeat(b' ')));
        let err = Reader::new(endless, "Packages").next().unwrap().unwrap_err().to_string();
        assert!(err.contains("a paragraph longer than 8388608 bytes"), "{err}");
        // Many small paragraphs are fine: the bound is per paragraph.
        let many = "A: 1\n\n".repeat(200_000);
        assert_eq!(Reader::new(many.as_bytes(), "t").count(), 200_000);
        assert_eq!(parse("A: \u{0}\u{ff}\n", "t").unwrap()[0].get("A"), Some("\u{0}\u{ff}"));
        let bad: &[u8] = b"A: 1\nB: \xff\n";
        let err = Reader::new(bad, "Packages").next().unwrap().unwrap_err().to_string();
        assert_eq!(err, "Packages line 2: not UTF-8 text");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Arbitrary bytes: an error or paragraphs, never a panic; what is parsed prints
        /// back to text that parses to the same paragraphs.
        #[test]
        fn arbitrary_input(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let parsed: Result<Vec<Paragraph>> = Reader::new(bytes.as_slice(), "fuzz").collect();
            if let Ok(ps) = parsed {
                for p in &ps {
                    let again = parse_one(&p.to_text(), "again").unwrap();
                    proptest::prop_assert_eq!(&again, p);
                }
            }
        }

        /// Text shaped like deb822 (fields, continuations, blank lines, comments, CRLF).
        #[test]
        fn deb822_shaped(lines in proptest::collection::vec("([A-Za-z-]{1,8}: ?[ -~]{0,12}| [ -~]{0,10}|#.{0,5}|\r?|\t.{0,4}|[^\n]{0,6})", 0..40)) {
            let text = lines.join("\n");
            if let Ok(ps) = parse(&text, "fuzz") {
                proptest::prop_assert!(ps.iter().all(|p| !p.fields.is_empty()));
                for p in &ps {
                    proptest::prop_assert_eq!(&parse_one(&p.to_text(), "again").unwrap(), p);
                }
            }
        }
    }
}
