//! Timestamps as senders write them.
//!
//! CDEvents and GitHub use RFC 3339. GitLab sends at least five shapes depending on the hook
//! and its version (`2016-08-12 15:23:28 UTC`, `2021-04-28 21:50:00 +0200`,
//! `2013-12-03T17:15:43Z`, `2012-01-03T23:36:29+02:00`, `2021-02-23T02:41:37.886Z`), and
//! older hooks a zone-less `2022-01-18 05:35:35.320020` that GitLab means as UTC.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// A timestamp that no supported format could read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a timestamp (expected RFC 3339, e.g. 2024-05-01T12:00:00Z)")]
pub struct BadTimestamp {
    pub value: String,
}

/// Parses a timestamp in any format CDEvents, GitHub or GitLab sends.
pub fn parse_timestamp(value: &str) -> Result<Timestamp, BadTimestamp> {
    let bad = || BadTimestamp { value: value.to_owned() };
    let s = value.trim();
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    // `YYYY-MM-DD hh:mm:ss[.frac] (UTC|Z|±hhmm|±hh:mm)?`
    let (civil, zone) = match s.rsplit_once(' ') {
        Some((head, tail)) if head.contains(' ') || !tail.contains(':') || tail.starts_with(['+', '-']) => {
            (head, Some(tail))
        }
        _ => (s, None),
    };
    let civil: DateTime = civil.replacen(' ', "T", 1).parse().map_err(|_| bad())?;
    let offset = match zone {
        None | Some("UTC") | Some("Z") | Some("GMT") => Offset::UTC,
        Some(z) => parse_offset(z).ok_or_else(bad)?,
    };
    offset.to_timestamp(civil).map_err(|_| bad())
}

fn parse_offset(z: &str) -> Option<Offset> {
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// Microseconds since the Unix epoch: how the store keeps every instant.
pub fn to_micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

/// The inverse of [`to_micros`]; out-of-range values clamp to the supported range.
pub fn from_micros(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = parse_timestamp(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got.to_string(), expected, "{input}");
    }

    #[test]
    fn every_format_gitlab_and_github_send() {
        check("2016-08-12 15:23:28 UTC", "2016-08-12T15:23:28Z");
        check("2021-04-28 21:50:00 +0200", "2021-04-28T19:50:00Z");
        check("2013-12-03T17:15:43Z", "2013-12-03T17:15:43Z");
        check("2012-01-03T23:36:29+02:00", "2012-01-03T21:36:29Z");
        check("2021-02-23T02:41:37.886Z", "2021-02-23T02:41:37.886Z");
        check("2022-01-18 05:35:35.320020", "2022-01-18T05:35:35.32002Z");
        check("2022-01-05 04:36:28 -0800", "2022-01-05T12:36:28Z");
        check("2023-03-20T14:27:05.315384Z", "2023-03-20T14:27:05.315384Z");
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        for bad in ["", "yesterday", "2021-13-01T00:00:00Z", "2021-01-01 10:00:00 +99", "12:00"] {
            let err = parse_timestamp(bad).unwrap_err();
            assert_eq!(err.value, bad);
        }
    }
}
