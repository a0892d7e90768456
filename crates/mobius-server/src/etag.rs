//! Entity tags for answers that depend on the request as well as on stored state (OFREP's bulk
//! evaluation: the flags *and* the context), and `If-None-Match` as RFC 9110 §13.1.2 reads it.
//!
//! The tag is a hash of the answer's body, so two requests get the same tag only when they
//! would get the same bytes: a tag made from the configuration alone would answer 304 to a
//! client whose context changed (flagd's bug, fixed the same way). Comparison is weak (`W/` is
//! ignored on both sides), `*` matches any current answer, and the header may list tags.

use sha2::{Digest, Sha256};

/// A strong tag for `body`: the first 128 bits of its SHA-256, quoted.
pub fn of_body(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether an `If-None-Match` header value names `tag` (weakly), or is `*`. A value that does
/// not parse matches nothing (the answer is sent whole).
pub fn none_match(header: &str, tag: &str) -> bool {
    let wanted = opaque(tag);
    let header = header.trim();
    if header == "*" {
        return true;
    }
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let Some((candidate, after)) = next_tag(rest) else { return false };
        if Some(candidate) == wanted {
            return true;
        }
        rest = after;
    }
}

/// The opaque part of a tag (`"…"`, without `W/`), or `None` when it is not a tag.
fn opaque(tag: &str) -> Option<&str> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let inner = tag.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then_some(inner)
}

/// The first tag of a list and what follows it.
fn next_tag(list: &str) -> Option<(&str, &str)> {
    let list = list.strip_prefix("W/").unwrap_or(list);
    let inner = list.strip_prefix('"')?;
    let end = inner.find('"')?;
    Some((&inner[..end], &inner[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_body() {
        let a = of_body(b"{\"flags\":[]}");
        assert_eq!(a, of_body(b"{\"flags\":[]}"));
        assert_ne!(a, of_body(b"{\"flags\":[1]}"));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34, "{a}");
    }

    #[test]
    fn if_none_match_is_weak_listed_and_starred() {
        let tag = "\"abc\"";
        assert!(none_match("\"abc\"", tag));
        assert!(none_match("W/\"abc\"", tag), "weak comparison");
        assert!(none_match("W/\"abc\"", "W/\"abc\""));
        assert!(none_match("\"x\", \"abc\"", tag), "a list");
        assert!(none_match("\"x\",W/\"abc\"", tag));
        assert!(none_match(" * ", tag));
        assert!(!none_match("\"abcd\"", tag));
        assert!(!none_match("\"x\", \"y\"", tag));
        assert!(!none_match("abc", tag), "unquoted is not a tag");
        assert!(!none_match("", tag));
        assert!(!none_match("\"abc", tag), "unterminated");
        assert!(!none_match("\"abc\"", "abc"), "our own tag must be quoted");
    }
}
