//! The `x-mobius-flag` response header: which variant of which flag a response was made with.
//!
//! A service names, on each response, the variants that decided it, and Mobius's proxy counts
//! the response's status and latency for each of them, so a flag rollout is judged by its
//! variant's own error ratio:
//!
//! ```text
//! x-mobius-flag: checkout=on, banner=off
//! ```
//!
//! This module is the one codec both sides use: the OpenFeature provider writes the header
//! with [`format()`], the proxy reads it with [`parse`].
//!
//! **Writing** ([`format()`]). The value is a comma-separated list (RFC 9110 §5.6.1) of
//! `flag=variant` elements, joined with `", "`, in the order given. A flag appears at most
//! once: its first pair wins (the evaluation that chose the code path). Flag keys and variant
//! names are written byte for byte when every byte is an RFC 3986 unreserved character
//! (`A-Z a-z 0-9 - . _ ~`); every other byte of their UTF-8 — `%`, `,`, `=`, spaces, `/`, `:`,
//! non-ASCII — is percent-encoded as `%XX` with upper-case hex, so the value is visible ASCII
//! and `,` and `=` only ever separate. A pair with an empty flag or variant cannot be read back
//! and is left out. The value stays within [`MAX_VALUE_BYTES`]: an element that would pass it
//! is left out whole, never cut. No element, no value (`None`): send no header.
//!
//! **Reading** ([`parse`]). Split on `,`; trim spaces and tabs around each element and around
//! its `=`; skip empty elements (several header lines joined with `,` read as one); split each
//! at its `=` and percent-decode both sides (upper- or lower-case hex). A reader also takes `/`
//! and `:` unencoded, as hand-written headers carry them in namespaced keys
//! (`team/checkout=on`). Anything else is a [`Malformed`] element — no `=`, more than one, an
//! empty side, a `%` without two hex digits, another byte that should have been encoded,
//! escapes that are not UTF-8 — which the reader reports and skips: the well-formed elements
//! around it still count. Reading never panics and allocates only for a side that has escapes.
//!
//! ```
//! use mobius_flags::header;
//!
//! let value = header::format([("checkout", "on"), ("team/banner", "a b"), ("checkout", "off")]);
//! assert_eq!(value.as_deref(), Some("checkout=on, team%2Fbanner=a%20b"));
//!
//! let pairs: Vec<_> = header::parse("checkout=on, team%2Fbanner=a%20b, junk")
//!     .flatten() // keep the well-formed pairs, skip `junk`
//!     .map(|pair| (pair.flag.into_owned(), pair.variant.into_owned()))
//!     .collect();
//! assert_eq!(pairs, [("checkout".into(), "on".into()), ("team/banner".into(), "a b".into())]);
//! ```

use std::borrow::Cow;

/// The header's name.
pub const NAME: &str = "x-mobius-flag";

/// The longest value [`format()`] writes, in bytes: proxies cap a header block (8 KiB is
/// common), and a service with many flags must not lose its response to one header.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Formats `(flag, variant)` pairs as the header's value (see the module's documentation):
/// each flag once, pairs with an empty side left out, at most [`MAX_VALUE_BYTES`]. `None`
/// when no pair remains.
pub fn format<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut value = String::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut element = String::new();
    for (flag, variant) in pairs {
        if flag.is_empty() || variant.is_empty() || seen.contains(&flag) {
            continue;
        }
        seen.push(flag);
        element.clear();
        encode_into(&mut element, flag);
        element.push('=');
        encode_into(&mut element, variant);
        let separator = if value.is_empty() { 0 } else { 2 };
        if value.len() + separator + element.len() > MAX_VALUE_BYTES {
            continue;
        }
        if separator > 0 {
            value.push_str(", ");
        }
        value.push_str(&element);
    }
    (!value.is_empty()).then_some(value)
}

/// Reads a header value: each element, in order, as a [`Pair`] or as what is wrong with it
/// (see the module's documentation). `.flatten()` keeps the well-formed pairs. Pairs are not
/// de-duplicated: a flag named twice is read twice.
pub fn parse(value: &str) -> Pairs<'_> {
    Pairs { elements: value.split(',') }
}

/// The elements of a header value, read one by one ([`parse`]).
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    elements: std::str::Split<'a, char>,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, Malformed<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let element = trim(self.elements.next()?);
            if !element.is_empty() {
                return Some(read(element).map_err(|problem| Malformed { element, problem }));
            }
        }
    }
}

/// One `flag=variant` element, decoded. Each side borrows from the header value unless it had
/// escapes to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The flag's key.
    pub flag: Cow<'a, str>,
    /// The name of the variant the response was served with.
    pub variant: Cow<'a, str>,
}

/// An element of a header value that is not a `flag=variant` this format can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed x-mobius-flag element {element:?}: {problem}")]
pub struct Malformed<'a> {
    /// The element, as it appeared (trimmed).
    pub element: &'a str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What makes an element [`Malformed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs, reason = "the #[error] message of each variant says what it means")]
pub enum Problem {
    #[error("no `=`")]
    NoEquals,
    #[error("more than one `=`")]
    SeveralEquals,
    #[error("an empty flag or variant")]
    Empty,
    #[error("`%` without two hex digits")]
    BadEscape,
    #[error("a character that should have been percent-encoded")]
    Unencoded,
    #[error("percent-encoded bytes that are not UTF-8")]
    NotUtf8,
}

fn read(element: &str) -> Result<Pair<'_>, Problem> {
    let (flag, variant) = element.split_once('=').ok_or(Problem::NoEquals)?;
    if variant.contains('=') {
        return Err(Problem::SeveralEquals);
    }
    Ok(Pair { flag: decode(trim(flag))?, variant: decode(trim(variant))? })
}

/// RFC 9110's optional whitespace.
fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

fn decode(text: &str) -> Result<Cow<'_, str>, Problem> {
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    let bytes = text.as_bytes();
    if !bytes.iter().all(|&b| unreserved(b) || matches!(b, b'/' | b':' | b'%')) {
        return Err(Problem::Unencoded);
    }
    if !bytes.contains(&b'%') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let [first, tail @ ..] = rest {
        if *first == b'%' {
            let [high, low, after @ ..] = tail else { return Err(Problem::BadEscape) };
            let digit = |d: u8| char::from(d).to_digit(16).ok_or(Problem::BadEscape);
            // Two hex digits make at most 255.
            out.push((digit(*high)? * 16 + digit(*low)?) as u8);
            rest = after;
        } else {
            out.push(*first);
            rest = tail;
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| Problem::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats `pairs`, checks the value, and reads it back to the pairs kept.
    fn check_format(pairs: &[(&str, &str)], expected: Option<&str>) {
        let value = format(pairs.iter().copied());
        assert_eq!(value.as_deref(), expected, "{pairs:?}");
        let Some(value) = value else { return };
        assert!(value.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{value}");
        let mut kept: Vec<(&str, &str)> = Vec::new();
        for &(f, v) in pairs {
            if !f.is_empty() && !v.is_empty() && !kept.iter().any(|(k, _)| *k == f) {
                kept.push((f, v));
            }
        }
        let read: Vec<(String, String)> = parse(&value)
            .map(|p| p.map(|p| (p.flag.into_owned(), p.variant.into_owned())))
            .collect::<Result<_, _>>()
            .unwrap();
        let kept: Vec<(String, String)> = kept.iter().map(|(f, v)| ((*f).to_owned(), (*v).to_owned())).collect();
        assert_eq!(read, kept, "round trip of {value:?}");
    }

    #[test]
    fn pairs_are_written_once_each_and_escaped_when_they_must_be() {
        check_format(&[], None);
        check_format(&[("checkout", "on")], Some("checkout=on"));
        check_format(&[("checkout", "on"), ("banner", "off")], Some("checkout=on, banner=off"));
        check_format(&[("checkout", "on"), ("checkout", "off")], Some("checkout=on"));
        check_format(&[("new-checkout_v2.1~x", "A-b_c.d~e")], Some("new-checkout_v2.1~x=A-b_c.d~e"));
        check_format(&[("a,b", "c=d")], Some("a%2Cb=c%3Dd"));
        check_format(&[("=", ",")], Some("%3D=%2C"));
        check_format(&[("100%", "a b")], Some("100%25=a%20b"));
        check_format(&[(" padded ", "\ttab")], Some("%20padded%20=%09tab"));
        check_format(&[("team/checkout:v2", "on")], Some("team%2Fcheckout%3Av2=on"));
        check_format(&[("é", "\u{1F600}")], Some("%C3%A9=%F0%9F%98%80"));
        check_format(&[("line\nbreak", "\"q\"")], Some("line%0Abreak=%22q%22"));
        check_format(&[("%25", "%")], Some("%2525=%25"));
    }

    #[test]
    fn a_pair_with_an_empty_side_is_left_out() {
        // Written as `=on` or `checkout=`, no reader would take it back.
        check_format(&[("", "on")], None);
        check_format(&[("checkout", "")], None);
        check_format(
            &[("checkout", ""), ("checkout", "on"), ("", "x"), ("banner", "b")],
            Some("checkout=on, banner=b"),
        );
    }

    #[test]
    fn a_value_stays_under_its_limit_by_whole_elements() {
        let long = "x".repeat(MAX_VALUE_BYTES);
        let value = format([("a", "on"), ("b", long.as_str()), ("c", "off")]).unwrap();
        assert_eq!(value, "a=on, c=off", "the element past the limit is left out, the others kept");
        let value = format([("b", long.as_str()), ("b", "short")]);
        assert_eq!(value, None, "a flag's later pairs do not stand in for its first");
        let flags: Vec<String> = (0..2000).map(|i| format!("flag-{i}")).collect();
        let value = format(flags.iter().map(|f| (f.as_str(), "on"))).unwrap();
        assert!(value.len() <= MAX_VALUE_BYTES, "{}", value.len());
        assert!(value.ends_with("=on") && !value.contains("=o,"));
        let exact = "y".repeat(MAX_VALUE_BYTES - 2);
        assert_eq!(format([("f", exact.as_str())]).map(|v| v.len()), Some(MAX_VALUE_BYTES), "the limit itself fits");
    }

    /// Reads `value`: each element as `flag=variant` or as the problem with it.
    fn check_parse(value: &str, expected: &[Result<(&str, &str), Problem>]) {
        let read: Vec<Result<(String, String), Problem>> = parse(value)
            .map(|r| r.map(|p| (p.flag.into_owned(), p.variant.into_owned())).map_err(|m| m.problem))
            .collect();
        let expected: Vec<Result<(String, String), Problem>> =
            expected.iter().map(|r| r.map(|(f, v)| (f.to_owned(), v.to_owned()))).collect();
        assert_eq!(read, expected, "{value:?}");
    }

    #[test]
    fn reading_is_lenient_with_whitespace_and_empty_elements() {
        check_parse("", &[]);
        check_parse(" , ,\t,", &[]);
        check_parse("checkout=on", &[Ok(("checkout", "on"))]);
        check_parse(" checkout = on , banner=b ", &[Ok(("checkout", "on")), Ok(("banner", "b"))]);
        check_parse(" a=on ,\tb=off,, ", &[Ok(("a", "on")), Ok(("b", "off"))]);
        check_parse("a=on,a=off", &[Ok(("a", "on")), Ok(("a", "off"))]);
        check_parse("a%2c=%3d", &[Ok(("a,", "="))]);
        check_parse("%41%42=%e2%82%AC", &[Ok(("AB", "€"))]);
        check_parse("team/checkout:v2=on", &[Ok(("team/checkout:v2", "on"))]);
        check_parse("team%2Fcheckout%3Av2=on", &[Ok(("team/checkout:v2", "on"))]);
    }

    #[test]
    fn malformed_elements_are_reported_and_skipped_not_fatal() {
        use Problem::*;
        check_parse("checkout", &[Err(NoEquals)]);
        check_parse("a=b=c", &[Err(SeveralEquals)]);
        check_parse("=on", &[Err(Empty)]);
        check_parse("a=", &[Err(Empty)]);
        check_parse(" = ", &[Err(Empty)]);
        check_parse("a=%2", &[Err(BadEscape)]);
        check_parse("a=%", &[Err(BadEscape)]);
        check_parse("a=%zz", &[Err(BadEscape)]);
        check_parse("a=%1g", &[Err(BadEscape)]);
        // `u8::from_str_radix` takes a sign: a decoder built on it read this as byte 1.
        check_parse("a=%+1", &[Err(Unencoded)]);
        check_parse("a b=on", &[Err(Unencoded)]);
        check_parse("a=\"x\"", &[Err(Unencoded)]);
        check_parse("é=on", &[Err(Unencoded)]);
        check_parse("a=%FF", &[Err(NotUtf8)]);
        check_parse("a=%C3", &[Err(NotUtf8)]);
        check_parse(
            "=on,checkout=,a b=c, ok=fine, x=%C3%A9",
            &[Err(Empty), Err(Empty), Err(Unencoded), Ok(("ok", "fine")), Ok(("x", "é"))],
        );
        let malformed = parse(" a=b=c ").next().unwrap().unwrap_err();
        assert_eq!(malformed.to_string(), "malformed x-mobius-flag element \"a=b=c\": more than one `=`");
    }

    #[test]
    fn reading_borrows_unless_it_decodes() {
        let pair = parse("checkout=on%21").next().unwrap().unwrap();
        assert!(matches!(pair.flag, Cow::Borrowed("checkout")));
        assert!(matches!(pair.variant, Cow::Owned(ref v) if v == "on!"));
    }
}
