//! The two summaries every metric uses, written down once.
//!
//! - [`median`]: the middle of the sorted sample; for an even count, the mean of the two
//!   middle values (so the median of `[1, 2]` is `1.5`).
//! - [`percentile`]: nearest rank. The `p`-th percentile of `n` sorted values is the
//!   `⌈p·n/100⌉`-th smallest (1-based), always a value that occurred, never an interpolation.
//!
//! Both return `None` for an empty sample: no data is not a zero.

use jiff::Timestamp;

/// The median of `values`, or `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let sorted = sorted(values);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The nearest-rank `p`-th percentile of `values` (`p` from 1 to 100), or `None` when there
/// are none. Integer arithmetic picks the rank, so `p90` of ten values is exactly the ninth.
pub fn percentile(values: &[f64], p: u8) -> Option<f64> {
    assert!((1..=100).contains(&p), "percentile {p} is not in 1..=100");
    let sorted = sorted(values);
    let rank = (usize::from(p) * sorted.len()).div_ceil(100);
    rank.checked_sub(1).map(|index| sorted[index])
}

/// Seconds from `start` to `end`; negative spans (clock skew between the systems that
/// reported the two instants) count as zero rather than pulling a median down.
pub fn elapsed_seconds(start: Timestamp, end: Timestamp) -> f64 {
    end.duration_since(start).as_secs_f64().max(0.0)
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values: &[f64], expected_median: Option<f64>, expected_p90: Option<f64>) {
        assert_eq!(median(values), expected_median, "median of {values:?}");
        assert_eq!(percentile(values, 90), expected_p90, "p90 of {values:?}");
    }

    #[test]
    fn median_and_p90() {
        check(&[], None, None);
        check(&[7.0], Some(7.0), Some(7.0));
        check(&[3.0, 1.0], Some(2.0), Some(3.0));
        check(&[5.0, 1.0, 3.0], Some(3.0), Some(5.0));
        check(&[4.0, 1.0, 3.0, 2.0], Some(2.5), Some(4.0));
        // Ten values: rank ⌈0.9·10⌉ = 9.
        let ten: Vec<f64> = (1..=10).map(f64::from).rev().collect();
        check(&ten, Some(5.5), Some(9.0));
        // Eleven values: rank ⌈0.9·11⌉ = 10.
        let eleven: Vec<f64> = (1..=11).map(f64::from).collect();
        check(&eleven, Some(6.0), Some(10.0));
    }

    #[test]
    fn percentile_edges() {
        let values = [10.0, 20.0, 30.0];
        assert_eq!(percentile(&values, 1), Some(10.0));
        assert_eq!(percentile(&values, 34), Some(20.0));
        assert_eq!(percentile(&values, 100), Some(30.0));
    }

    #[test]
    fn negative_spans_clamp_to_zero() {
        let a: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2024-01-01T00:01:30Z".parse().unwrap();
        assert_eq!(elapsed_seconds(a, b), 90.0);
        assert_eq!(elapsed_seconds(b, a), 0.0);
    }
}
