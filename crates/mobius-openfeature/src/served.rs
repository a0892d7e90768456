//! Which variant of which flag a response was made with, told to the proxy in one header.
//!
//! Mobius's proxy records per-variant SLIs (issue 15, item 5) from the `x-mobius-flag` header
//! of the service's responses, and a flag rollout stops when its variant's error ratio is bad.
//! So a service tells, on each response, which variants decided it:
//!
//! ```text
//! x-mobius-flag: checkout=on, banner=off
//! ```
//!
//! **The format, exactly.** The value is a comma-separated list (RFC 9110 §5.6.1) of
//! `flag=variant` elements, in the order the flags were first evaluated. A flag appears at
//! most once: the variant of its first evaluation in the request (the one that chose the code
//! path). Flag keys and variant names are written byte for byte when every byte is an RFC 3986
//! unreserved character (`A-Z a-z 0-9 - . _ ~`); every other byte of their UTF-8 — `%`, `,`,
//! `=`, spaces, `/`, `:`, non-ASCII — is percent-encoded as `%XX` with upper-case hex, so the
//! value is always visible ASCII and `,` and `=` only ever separate. Elements are joined with
//! `", "`. Only evaluations that served a variant of the set are listed: a flag answered with
//! the caller's default (disabled, not found, an error, no default variant) names no variant
//! and is left out. A value stays under [`MAX_HEADER_BYTES`]: an element that would pass it is
//! left out whole, never cut. Nothing served, no header.
//!
//! **Reading it** ([`parse_header_value`]): split on `,`, trim spaces and tabs around each
//! element, skip empty elements (so several header lines joined with `,` read as one), split
//! each at its `=`, and percent-decode both sides; an element without exactly one `=`, a `%`
//! not followed by two hex digits, a byte outside the unreserved set and `%`, an empty side,
//! or a decoding that is not UTF-8 is malformed.
//!
//! **Recording it.** Evaluations through [`MobiusProvider`](crate::MobiusProvider) record
//! themselves into the [`Served`] of the task they run in, when the request's handler runs
//! inside [`Served::scope`]. Work spawned onto other tasks is outside the scope (tokio's
//! task-locals do not follow `spawn`): record those evaluations with [`Served::record`].

use std::future::Future;
use std::sync::{Arc, Mutex};

/// The response header's name.
pub const HEADER: &str = "x-mobius-flag";

/// The longest header value written, in bytes: proxies cap a header block (8 KiB is common),
/// and a service with many flags must not lose its response to one header.
pub const MAX_HEADER_BYTES: usize = 4096;

tokio::task_local! {
    static SERVED: Served;
}

/// The variants served while handling one request. Cheap to clone: clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pairs: Arc<Mutex<Vec<(String, String)>>>,
}

impl Served {
    /// An empty record, for one request.
    pub fn new() -> Served {
        Served::default()
    }

    /// Runs `work` (the request's handler) with this record as the one the provider's
    /// evaluations go into.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        SERVED.scope(self.clone(), work).await
    }

    /// Records that `flag` served `variant`, unless the flag was already recorded.
    pub fn record(&self, flag: &str, variant: &str) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !pairs.iter().any(|(f, _)| f == flag) {
            pairs.push((flag.to_owned(), variant.to_owned()));
        }
    }

    /// The recorded `(flag, variant)` pairs, in the order first evaluated.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The header's value (see the module's documentation), or `None` when nothing was served.
    pub fn header_value(&self) -> Option<String> {
        let pairs = self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        header_value(pairs.iter().map(|(f, v)| (f.as_str(), v.as_str())))
    }
}

/// Records into the current task's [`Served`], when it runs inside [`Served::scope`].
pub(crate) fn record_in_scope(flag: &str, variant: &str) {
    let _ = SERVED.try_with(|served| served.record(flag, variant));
}

/// Formats `(flag, variant)` pairs as the header's value: for services that evaluate with
/// `mobius-flags` directly. A flag's second pair is left out; `None` when no pair remains.
pub fn header_value<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut value = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for (flag, variant) in pairs {
        if seen.contains(&flag) {
            continue;
        }
        seen.push(flag);
        let element = format!("{}={}", encode(flag), encode(variant));
        let separator = if value.is_empty() { 0 } else { 2 };
        if value.len() + separator + element.len() > MAX_HEADER_BYTES {
            continue;
        }
        if separator > 0 {
            value.push_str(", ");
        }
        value.push_str(&element);
    }
    (!value.is_empty()).then_some(value)
}

/// A header value that is not a list of `flag=variant`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed x-mobius-flag element {element:?}: {why}")]
pub struct MalformedHeader {
    /// The element at fault, as it appeared.
    pub element: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Reads a header value back into `(flag, variant)` pairs (see the module's documentation).
pub fn parse_header_value(value: &str) -> Result<Vec<(String, String)>, MalformedHeader> {
    let mut pairs = Vec::new();
    for element in value.split(',').map(|e| e.trim_matches([' ', '\t'])).filter(|e| !e.is_empty()) {
        let malformed = |why| MalformedHeader { element: element.to_owned(), why };
        let (flag, variant) = element.split_once('=').ok_or_else(|| malformed("no `=`"))?;
        if variant.contains('=') {
            return Err(malformed("more than one `=`"));
        }
        let flag = decode(flag).map_err(malformed)?;
        let variant = decode(variant).map_err(malformed)?;
        pairs.push((flag, variant));
    }
    Ok(pairs)
}

fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte but the unreserved ones (also used for the set's name in URLs).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Result<String, &'static str> {
    if text.is_empty() {
        return Err("an empty flag or variant");
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or("`%` without two hex digits")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "`%` without two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "`%` without two hex digits")?);
                i += 3;
            }
            byte if unreserved(byte) => {
                out.push(byte);
                i += 1;
            }
            _ => return Err("a character that should have been percent-encoded"),
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded bytes that are not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)], expected: Option<&str>) {
        let value = header_value(pairs.iter().copied());
        assert_eq!(value.as_deref(), expected);
        if let Some(value) = value {
            assert!(value.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{value}");
            let mut unique: Vec<(String, String)> = Vec::new();
            for (f, v) in pairs {
                if !unique.iter().any(|(u, _)| u == f) {
                    unique.push(((*f).to_owned(), (*v).to_owned()));
                }
            }
            assert_eq!(parse_header_value(&value).unwrap(), unique, "round trip");
        }
    }

    #[test]
    fn pairs_are_listed_once_each_and_escaped_when_they_must_be() {
        check(&[], None);
        check(&[("checkout", "on")], Some("checkout=on"));
        check(&[("checkout", "on"), ("banner", "off")], Some("checkout=on, banner=off"));
        check(&[("checkout", "on"), ("checkout", "off")], Some("checkout=on"));
        check(&[("new-checkout_v2.1~x", "A-b_c.d~e")], Some("new-checkout_v2.1~x=A-b_c.d~e"));
        check(&[("a,b", "c=d")], Some("a%2Cb=c%3Dd"));
        check(&[("100%", "a b")], Some("100%25=a%20b"));
        check(&[("team/checkout:v2", "on")], Some("team%2Fcheckout%3Av2=on"));
        check(&[("é", "\u{1F600}")], Some("%C3%A9=%F0%9F%98%80"));
        check(&[("line\nbreak", "\"q\"")], Some("line%0Abreak=%22q%22"));
    }

    #[test]
    fn a_value_stays_under_its_limit_by_whole_elements() {
        let long = "x".repeat(MAX_HEADER_BYTES);
        let value = header_value([("a", "on"), ("b", long.as_str()), ("c", "off")]).unwrap();
        assert_eq!(value, "a=on, c=off", "the element past the limit is left out, the others kept");
        let flags: Vec<String> = (0..2000).map(|i| format!("flag-{i}")).collect();
        let value = header_value(flags.iter().map(|f| (f.as_str(), "on"))).unwrap();
        assert!(value.len() <= MAX_HEADER_BYTES, "{}", value.len());
        assert!(value.ends_with("=on") && !value.contains("=o,"));
    }

    #[test]
    fn reading_is_lenient_with_spaces_and_strict_with_the_rest() {
        let read = |v: &str| parse_header_value(v);
        assert_eq!(read("").unwrap(), vec![]);
        assert_eq!(read(" a=on ,\tb=off,, ").unwrap(), vec![("a".into(), "on".into()), ("b".into(), "off".into())]);
        assert_eq!(read("a%2c=%3d").unwrap(), vec![("a,".into(), "=".into())], "lower-case hex reads too");
        for bad in ["a", "a=b=c", "=on", "a=", "a=%2", "a=%zz", "a b=on", "a=%FF", "a=\"x\""] {
            assert!(read(bad).is_err(), "{bad:?} is malformed");
        }
    }

    #[tokio::test]
    async fn evaluations_inside_a_scope_are_recorded_there_only() {
        let served = Served::new();
        record_in_scope("outside", "x");
        served
            .scope(async {
                record_in_scope("checkout", "on");
                tokio::task::yield_now().await;
                record_in_scope("banner", "off");
                record_in_scope("checkout", "off");
            })
            .await;
        let other = Served::new();
        other.scope(async { record_in_scope("other", "y") }).await;
        assert_eq!(served.header_value().as_deref(), Some("checkout=on, banner=off"));
        assert_eq!(other.pairs(), vec![("other".to_owned(), "y".to_owned())]);
    }
}
