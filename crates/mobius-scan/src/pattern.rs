//! Go RE2 patterns, as gitleaks configs write them, compiled with Rust's `regex`.
//!
//! Both engines are RE2-style (no lookaround, no backreferences, linear time), so most patterns
//! carry over as they are. The differences handled here:
//! - Go's `\d`, `\w`, `\s` and `\b` are ASCII-only; Rust's are Unicode by default. Patterns are
//!   compiled with Unicode off (over bytes), which gives Go's meaning, unless they need Unicode
//!   (`\p{..}` classes), in which case they are compiled with it on.
//! - Go accepts `\Q...\E` literal quoting; Rust's `regex` does not, so the quoted text is
//!   escaped before compiling.
//! - Go's default repetition limit is 1000 and Rust's compiled-size limit is what bounds a
//!   pattern; the size limit is raised so that gitleaks' long alternations compile.
//!
//! Everything else (flags `(?i)`, `(?s)`, `(?m)`, `(?U)`; named groups `(?P<n>)` and `(?<n>)`;
//! POSIX classes `[[:alpha:]]`) means the same in both.

use regex::bytes::{Regex, RegexBuilder};

/// A compiled pattern that runs over bytes (file content need not be UTF-8).
pub type Pattern = Regex;

const SIZE_LIMIT: usize = 64 << 20;

/// Compiles a Go RE2 pattern.
pub fn compile(go_pattern: &str) -> Result<Pattern, regex::Error> {
    let pattern = unquote_literals(go_pattern);
    let build = |unicode: bool| {
        RegexBuilder::new(&pattern).unicode(unicode).size_limit(SIZE_LIMIT).dfa_size_limit(SIZE_LIMIT).build()
    };
    build(false).or_else(|_| build(true))
}

/// Rewrites `\Q...\E` (quoted literal text) as escaped text; the rest is left as it is.
fn unquote_literals(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(at) = find_unescaped(rest, "\\Q") {
        out.push_str(&rest[..at]);
        let quoted = &rest[at + 2..];
        let (literal, after) = match quoted.find("\\E") {
            Some(end) => (&quoted[..end], &quoted[end + 2..]),
            None => (quoted, ""),
        };
        out.push_str(&regex::escape(literal));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The byte offset of `needle` (an escape sequence) where it is not itself escaped.
fn find_unescaped(haystack: &str, needle: &str) -> Option<usize> {
    let bytes = haystack.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if haystack[i..].starts_with(needle) {
                return Some(i);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, haystack: &str, expected: Option<&str>) {
        let re = compile(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let found = re.find(haystack.as_bytes()).map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned());
        assert_eq!(found.as_deref(), expected, "{pattern} on {haystack:?}");
    }

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        check(r"\d+", "٣٤5", Some("5"));
        check(r"\w+", "é_x1", Some("_x1"));
        check(r"\bkey\b", "ékey", Some("key"));
    }

    #[test]
    fn unicode_classes_still_compile() {
        check(r"\p{Greek}+", "abc αβγ", Some("αβγ"));
    }

    #[test]
    fn quoted_literals_are_escaped() {
        check(r"\Qa.b*c\E+", "a.b*cc", Some("a.b*cc"));
        check(r"x\Q(y)", "x(y)", Some("x(y)"));
        check(r"\\Q", r"\Q", Some(r"\Q"));
    }

    #[test]
    fn bad_patterns_fail() {
        assert!(compile("(unclosed").is_err());
        assert!(compile("(?=lookahead)").is_err());
    }
}
