//! Numbers in the units people read them in.

use jiff::Timestamp;

/// Shown where a value is unknown.
pub(super) const UNKNOWN: &str = "—";

/// A duration as its two largest units: `4h 12m`, `3d 2h`, `45s`. Smaller units are
/// truncated: the figure is for reading, and the JSON keeps the seconds.
pub(super) fn duration(seconds: f64) -> String {
    const UNITS: [(&str, i64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let total = seconds.round() as i64;
    let Some(first) = UNITS.iter().position(|(_, size)| total >= *size) else {
        return "0s".to_owned();
    };
    let (unit, size) = UNITS[first];
    let mut text = format!("{}{unit}", total / size);
    if let Some((next_unit, next_size)) = UNITS.get(first + 1) {
        let next = total % size / next_size;
        if next > 0 {
            text.push_str(&format!(" {next}{next_unit}"));
        }
    }
    text
}

/// A ratio as a percentage: `12.5%`, `5%`.
pub(super) fn percent(ratio: f64) -> String {
    format!("{}%", decimal(ratio * 100.0))
}

/// Deployments per day in the largest unit that gives at least one: `2.3/day`, `2/week`,
/// `1.5/month` (of 30 days).
pub(super) fn frequency(per_day: f64) -> String {
    if per_day == 0.0 || per_day >= 1.0 {
        format!("{}/day", decimal(per_day))
    } else if per_day * 7.0 >= 1.0 {
        format!("{}/week", decimal(per_day * 7.0))
    } else {
        format!("{}/month", decimal(per_day * 30.0))
    }
}

/// One decimal place, without a trailing `.0`.
pub(super) fn decimal(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => text,
    }
}

/// `1 change`, `2 changes`.
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A UTC instant to the minute.
pub(super) fn timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

/// A commit id abbreviated as git does by default.
pub(super) fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(actual: String, expected: &str) {
        assert_eq!(actual, expected);
    }

    #[test]
    fn durations() {
        check(duration(0.0), "0s");
        check(duration(0.4), "0s");
        check(duration(45.0), "45s");
        check(duration(125.0), "2m 5s");
        check(duration(3_600.0), "1h");
        check(duration(15_120.0), "4h 12m");
        check(duration(90_061.0), "1d 1h");
        check(duration(604_800.0), "7d");
    }

    #[test]
    fn rates_and_percentages() {
        check(frequency(0.0), "0/day");
        check(frequency(2.2857), "2.3/day");
        check(frequency(1.0), "1/day");
        check(frequency(2.0 / 7.0), "2/week");
        check(frequency(1.0 / 20.0), "1.5/month");
        check(percent(0.125), "12.5%");
        check(percent(0.05), "5%");
        check(percent(0.0), "0%");
    }

    #[test]
    fn short_shas_and_counts() {
        assert_eq!(short_sha("0123456789abcdef"), "0123456");
        assert_eq!(short_sha("abc"), "abc");
        check(count(1, "change", "changes"), "1 change");
        check(count(0, "change", "changes"), "0 changes");
    }
}
