//! The limits every event and every batch must respect, whatever door they come through (the
//! API, a webhook, an import record, Mobius itself).
//!
//! They bound what one request can cost — a body of millions of tiny items, one huge event —
//! and keep out of the log what no sender means: identifiers with control characters, which
//! break every tool that prints or splits them, and instants centuries away, which no delivery
//! measurement can use and which poison every window they fall into.

use jiff::Timestamp;

/// The most events one batch may hold (a CloudEvents batch, a JSON array, NDJSON): a body with
/// more is refused as a whole while it is scanned, before any event in it is read.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// The most bytes one event's raw JSON may have (the text the log keeps).
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The earliest instant an event may say it happened: the Unix epoch.
pub const EARLIEST: Timestamp = Timestamp::UNIX_EPOCH;

/// The first instant past the range an event may say it happened: 2200-01-01T00:00:00Z. The
/// range is half-open, like every window in Mobius.
pub const LATEST: Timestamp = Timestamp::constant(7_258_118_400, 0);

/// The range of [`in_range`], as errors name it.
pub const RANGE: &str = "1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z";

/// Whether `at` lies in [`EARLIEST`, [`LATEST`]).
pub fn in_range(at: Timestamp) -> bool {
    (EARLIEST..LATEST).contains(&at)
}

/// The first control character in `s` (per [`char::is_control`], NUL included) and its byte
/// offset.
pub fn control_character(s: &str) -> Option<(usize, char)> {
    s.char_indices().find(|(_, c)| c.is_control())
}

/// A body with more than its limit of events. Counting stopped at the first event past the
/// limit, so nothing says how many more there were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a batch holds at most {limit} events; this one has more (event {} starts at line {line})", limit + 1)]
pub struct TooManyItems {
    pub limit: usize,
    /// The line where the first event past the limit starts.
    pub line: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_1970_to_2200_half_open() {
        assert_eq!(LATEST, "2200-01-01T00:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(RANGE, format!("{EARLIEST} to {LATEST}"));
        let check = |at: &str, expected: bool| assert_eq!(in_range(at.parse().unwrap()), expected, "{at}");
        check("1970-01-01T00:00:00Z", true);
        check("1969-12-31T23:59:59.999999Z", false);
        check("0001-01-01T00:00:00Z", false);
        check("2199-12-31T23:59:59.999Z", true);
        check("2200-01-01T00:00:00Z", false);
        check("2999-01-01T00:00:00Z", false);
    }

    #[test]
    fn control_characters_are_found_with_their_offset() {
        assert_eq!(control_character("abc"), None);
        assert_eq!(control_character("a\0b"), Some((1, '\0')));
        assert_eq!(control_character("é\n"), Some((2, '\n')));
        assert_eq!(control_character("x\u{7f}"), Some((1, '\u{7f}')));
        assert_eq!(control_character("x\u{85}"), Some((1, '\u{85}')));
        // Not control characters: spaces of other kinds, format characters.
        assert_eq!(control_character("a\u{a0}b\u{200b}"), None);
    }
}
