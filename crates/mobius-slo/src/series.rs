//! Time-bucketed SLI counters for one series: a service / environment / version, or an
//! aggregate of them.
//!
//! A [`Series`] keeps one bucket per minute for at least the most recent 48 hours and one bucket
//! per hour beyond that, back to its retention (35 days by default, enough for a 30-day window
//! plus a 3-day alert window). Minute buckets are folded into hour buckets as they age
//! ([`Series::compact`], also done by [`Series::add`] whenever time moves forward), so the
//! memory of a series is bounded: about 2,940 minute buckets of 8 bytes and, with the default
//! retention, 790 hour buckets of 16 bytes — about 36 KiB, reserved once.
//!
//! Both kinds of bucket live in a `VecDeque` of fixed-size counters: the minute region starts
//! on an hour boundary and the hour region ends exactly where the minute region starts, so a
//! bucket's start is its index times its length from the region's start, and no timestamps are
//! stored per bucket.

use std::collections::VecDeque;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

/// Length of a fine bucket, in seconds.
pub const MINUTE_S: i64 = 60;
/// Length of a coarse bucket, in seconds.
pub const HOUR_S: i64 = 3_600;
/// How far back minute buckets are kept (at least; up to one hour more, since minute buckets
/// are folded an hour at a time).
pub const FINE_SPAN_S: i64 = 48 * HOUR_S;
/// Default retention: a 30-day SLO window plus the 3-day ticket window plus slack.
pub const DEFAULT_RETENTION_S: i64 = 35 * 24 * HOUR_S;

/// Request counts: all requests, and those that were bad (failed the SLI).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Counts {
    /// Requests counted by the SLI.
    pub total: u64,
    /// Of those, the ones that failed it (5xx, or slower than the latency threshold).
    pub bad: u64,
}

impl Counts {
    /// No requests.
    pub const ZERO: Counts = Counts { total: 0, bad: 0 };

    pub fn new(total: u64, bad: u64) -> Counts {
        Counts { total, bad }
    }

    /// Requests that met the SLI.
    pub fn good(&self) -> u64 {
        self.total.saturating_sub(self.bad)
    }

    /// `bad / total`, or 0 when there were no requests (no traffic burns no budget).
    pub fn error_ratio(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.bad as f64 / self.total as f64 }
    }
}

impl Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts { total: self.total.saturating_add(other.total), bad: self.bad.saturating_add(other.bad) }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        *self = *self + other;
    }
}

/// Saturates at zero: subtracting more than was counted is a caller's mistake, not a wrap.
impl Sub for Counts {
    type Output = Counts;
    fn sub(self, other: Counts) -> Counts {
        Counts { total: self.total.saturating_sub(other.total), bad: self.bad.saturating_sub(other.bad) }
    }
}

impl SubAssign for Counts {
    fn sub_assign(&mut self, other: Counts) {
        *self = *self - other;
    }
}

impl Sum for Counts {
    fn sum<I: Iterator<Item = Counts>>(iter: I) -> Counts {
        iter.fold(Counts::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Counts> for Counts {
    fn sum<I: Iterator<Item = &'a Counts>>(iter: I) -> Counts {
        iter.fold(Counts::ZERO, |acc, c| acc + *c)
    }
}

/// A minute's counts in 32 bits each, which halves the minute region: 4.29 billion requests
/// in a minute (71 million a second) is more than one series sees. Saturates rather than wraps.
/// Persisted with the same fields as [`Counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MinuteCounts {
    total: u32,
    bad: u32,
}

impl MinuteCounts {
    fn add(&mut self, c: Counts) {
        let add = |have: u32, more: u64| u32::try_from(u64::from(have) + more).unwrap_or(u32::MAX);
        self.total = add(self.total, c.total);
        self.bad = add(self.bad, c.bad);
    }

    fn counts(self) -> Counts {
        Counts { total: u64::from(self.total), bad: u64::from(self.bad) }
    }
}

/// One bucket as [`Series::buckets`] yields it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket, unix seconds.
    pub start_s: i64,
    /// [`MINUTE_S`] or [`HOUR_S`].
    pub len_s: i64,
    pub counts: Counts,
}

/// Why a persisted series was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeriesError {
    #[error("retention of {retention_s} s is shorter than the {FINE_SPAN_S} s of minute buckets")]
    RetentionTooShort { retention_s: i64 },
    #[error("minute buckets start at {minute_start}, which is not on an hour boundary")]
    MinutesNotHourAligned { minute_start: i64 },
    #[error("hour buckets ({hours} from {hour_start}) do not end where minute buckets start ({minute_start})")]
    NotContiguous { hour_start: i64, hours: usize, minute_start: i64 },
}

/// Per-minute and per-hour request counts for one series. See the module documentation.
///
/// Times are unix seconds, passed in by the caller; nothing here reads a clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SeriesRepr")]
pub struct Series {
    retention_s: i64,
    /// Start of `hours[0]`; hour-aligned.
    hour_start: i64,
    hours: VecDeque<Counts>,
    /// Start of `minutes[0]`; hour-aligned, and `hour_start + hours.len() * HOUR_S`.
    minute_start: i64,
    minutes: VecDeque<MinuteCounts>,
}

/// The persisted form, checked before it becomes a [`Series`].
#[derive(Deserialize)]
struct SeriesRepr {
    retention_s: i64,
    hour_start: i64,
    hours: VecDeque<Counts>,
    minute_start: i64,
    minutes: VecDeque<MinuteCounts>,
}

impl TryFrom<SeriesRepr> for Series {
    type Error = SeriesError;

    fn try_from(r: SeriesRepr) -> Result<Series, SeriesError> {
        if r.retention_s < FINE_SPAN_S + HOUR_S {
            return Err(SeriesError::RetentionTooShort { retention_s: r.retention_s });
        }
        if r.minute_start.rem_euclid(HOUR_S) != 0 {
            return Err(SeriesError::MinutesNotHourAligned { minute_start: r.minute_start });
        }
        if r.hour_start + r.hours.len() as i64 * HOUR_S != r.minute_start {
            return Err(SeriesError::NotContiguous {
                hour_start: r.hour_start,
                hours: r.hours.len(),
                minute_start: r.minute_start,
            });
        }
        Ok(Series {
            retention_s: r.retention_s,
            hour_start: r.hour_start,
            hours: r.hours,
            minute_start: r.minute_start,
            minutes: r.minutes,
        })
    }
}

impl Default for Series {
    fn default() -> Series {
        Series::new(DEFAULT_RETENTION_S)
    }
}

fn floor_to(t: i64, len: i64) -> i64 {
    t - t.rem_euclid(len)
}

/// `ceil(a / b)` for `b > 0`, correct for negative `a`.
fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Index range of the buckets of a region whose start lies in `[from_s, to_s)`.
fn index_range(start: i64, len_s: i64, n: usize, from_s: i64, to_s: i64) -> (usize, usize) {
    let lo = ceil_div(from_s - start, len_s).clamp(0, n as i64) as usize;
    let hi = ceil_div(to_s - start, len_s).clamp(0, n as i64) as usize;
    (lo, hi.max(lo))
}

impl Series {
    /// An empty series keeping `retention_s` of history: at least 49 hours (the minute region
    /// plus the hour being folded), rounded up to whole hours.
    pub fn new(retention_s: i64) -> Series {
        let retention_s = ceil_div(retention_s.max(FINE_SPAN_S + HOUR_S), HOUR_S) * HOUR_S;
        Series { retention_s, hour_start: 0, hours: VecDeque::new(), minute_start: 0, minutes: VecDeque::new() }
    }

    pub fn retention_s(&self) -> i64 {
        self.retention_s
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty() && self.minutes.is_empty()
    }

    /// Start of the oldest bucket held, if any.
    pub fn start_s(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.hour_start)
    }

    /// End of the newest bucket held, if any.
    pub fn end_s(&self) -> Option<i64> {
        (!self.is_empty()).then(|| self.minute_start + self.minutes.len() as i64 * MINUTE_S)
    }

    /// Number of (minute, hour) buckets held.
    pub fn bucket_counts(&self) -> (usize, usize) {
        (self.minutes.len(), self.hours.len())
    }

    /// Bytes allocated on the heap for the buckets (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.minutes.capacity() * std::mem::size_of::<MinuteCounts>()
            + self.hours.capacity() * std::mem::size_of::<Counts>()
    }

    /// Records `counts` in the bucket holding `at_s`.
    ///
    /// A sample newer than any before it first compacts the series relative to `at_s`, so a
    /// series that is only ever added to stays bounded without calling [`Series::compact`].
    /// A late sample lands in its minute bucket if that is still held, else in its hour bucket;
    /// one older than the retention (relative to the newest sample) is dropped.
    pub fn add(&mut self, at_s: i64, counts: Counts) {
        if self.is_empty() {
            let hour = floor_to(at_s, HOUR_S);
            self.hour_start = hour;
            self.minute_start = hour;
            // Sized once to the most either region holds, so neither ever reallocates.
            self.minutes.reserve_exact(((FINE_SPAN_S + HOUR_S) / MINUTE_S) as usize + 1);
            self.hours.reserve_exact(((self.retention_s - FINE_SPAN_S) / HOUR_S) as usize + 1);
        }
        if at_s >= self.minute_start {
            let mut index = ((at_s - self.minute_start) / MINUTE_S) as usize;
            if index >= self.minutes.len() {
                self.compact(at_s);
                index = ((at_s - self.minute_start) / MINUTE_S) as usize;
                self.minutes.resize(index + 1, MinuteCounts::default());
            }
            self.minutes[index].add(counts);
            return;
        }
        let hour = floor_to(at_s, HOUR_S);
        if hour < self.hour_start {
            let newest = self.end_s().unwrap_or(at_s);
            if hour < floor_to(newest - self.retention_s, HOUR_S) {
                return;
            }
            while self.hour_start > hour {
                self.hours.push_front(Counts::ZERO);
                self.hour_start -= HOUR_S;
            }
        }
        let index = ((hour - self.hour_start) / HOUR_S) as usize;
        self.hours[index] += counts;
    }

    /// Folds minute buckets older than 48 hours (rounded down to the hour) into hour buckets,
    /// and drops hour buckets that started before `now_s − retention` (rounded down to the
    /// hour). Idempotent; an earlier `now_s` than a previous call does nothing.
    pub fn compact(&mut self, now_s: i64) {
        if self.is_empty() {
            return;
        }
        let fine_from = floor_to(now_s - FINE_SPAN_S, HOUR_S);
        let keep_from = floor_to(now_s - self.retention_s, HOUR_S);
        while self.minute_start < fine_from {
            if self.minutes.is_empty() && self.minute_start < keep_from {
                // Nothing recorded from here to the retention horizon: skip the gap at once
                // instead of pushing empty hours only to expire them.
                self.hours.clear();
                self.minute_start = keep_from;
                self.hour_start = keep_from;
                continue;
            }
            let n = self.minutes.len().min((HOUR_S / MINUTE_S) as usize);
            let hour: Counts = self.minutes.drain(..n).map(MinuteCounts::counts).sum();
            self.hours.push_back(hour);
            self.minute_start += HOUR_S;
        }
        while self.hour_start < keep_from && !self.hours.is_empty() {
            self.hours.pop_front();
            self.hour_start += HOUR_S;
        }
        if self.hours.is_empty() {
            self.hour_start = self.minute_start;
        }
        if self.is_empty() {
            // Nothing held: the next add starts afresh from its own hour.
            *self = Series::new(self.retention_s);
        }
    }

    /// Requests over `[from_s, to_s)`.
    ///
    /// Rounding at the edges: a bucket counts when its **start** lies in `[from_s, to_s)`, and
    /// then it counts whole. So both edges round up to a bucket boundary: the bucket in progress
    /// at `to_s` counts (fresh data is never left out), and a bucket that began before `from_s`
    /// does not. A window of N minutes ending now therefore holds exactly N minute buckets,
    /// the newest one partial. Where only hour buckets remain (older than about 48 hours) the
    /// older edge rounds up to the next whole hour, so such a window can be up to an hour short
    /// at that end; a 30-day window is 719–720 whole hours plus the minute region.
    pub fn sum(&self, from_s: i64, to_s: i64) -> Counts {
        if from_s >= to_s || self.is_empty() {
            return Counts::ZERO;
        }
        let (lo, hi) = index_range(self.hour_start, HOUR_S, self.hours.len(), from_s, to_s);
        let (mlo, mhi) = index_range(self.minute_start, MINUTE_S, self.minutes.len(), from_s, to_s);
        let minutes = self.minutes.range(mlo..mhi).fold(Counts::ZERO, |acc, m| acc + m.counts());
        self.hours.range(lo..hi).sum::<Counts>() + minutes
    }

    /// The buckets [`Series::sum`] would add up for `[from_s, to_s)`, oldest first.
    pub fn buckets(&self, from_s: i64, to_s: i64) -> impl Iterator<Item = Bucket> + '_ {
        let (lo, hi) = if self.is_empty() || from_s >= to_s {
            (0, 0)
        } else {
            index_range(self.hour_start, HOUR_S, self.hours.len(), from_s, to_s)
        };
        let (mlo, mhi) = if self.is_empty() || from_s >= to_s {
            (0, 0)
        } else {
            index_range(self.minute_start, MINUTE_S, self.minutes.len(), from_s, to_s)
        };
        let hours = self.hours.range(lo..hi).enumerate().map(move |(i, c)| Bucket {
            start_s: self.hour_start + (lo + i) as i64 * HOUR_S,
            len_s: HOUR_S,
            counts: *c,
        });
        let minutes = self.minutes.range(mlo..mhi).enumerate().map(move |(i, c)| Bucket {
            start_s: self.minute_start + (mlo + i) as i64 * MINUTE_S,
            len_s: MINUTE_S,
            counts: c.counts(),
        });
        hours.chain(minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: i64 = 24 * HOUR_S;
    /// 2026-11-26T00:00:00Z, hour-aligned.
    const T0: i64 = 1_795_651_200;

    fn c(total: u64, bad: u64) -> Counts {
        Counts::new(total, bad)
    }

    #[test]
    fn counts_arithmetic_saturates() {
        assert_eq!(c(10, 2) + c(5, 1), c(15, 3));
        assert_eq!(c(10, 2) - c(5, 1), c(5, 1));
        assert_eq!(c(1, 1) - c(5, 3), c(0, 0));
        assert_eq!(c(u64::MAX, 0) + c(1, 0), c(u64::MAX, 0));
        assert_eq!([c(1, 0), c(2, 1)].iter().sum::<Counts>(), c(3, 1));
        assert_eq!(c(0, 0).error_ratio(), 0.0);
        assert_eq!(c(4, 1).error_ratio(), 0.25);
        assert_eq!(c(4, 1).good(), 3);
    }

    #[test]
    fn a_minute_bucket_saturates_instead_of_wrapping() {
        let mut s = Series::default();
        s.add(T0, c(u64::from(u32::MAX) - 1, 3));
        s.add(T0 + 1, c(5, 1));
        assert_eq!(s.sum(T0, T0 + MINUTE_S), c(u64::from(u32::MAX), 4));
        // Hour buckets hold 64 bits: late samples into them add up past 32 bits.
        s.add(T0 + 3 * HOUR_S, c(1, 0));
        s.add(T0 - HOUR_S, c(u64::from(u32::MAX), 0));
        s.add(T0 - HOUR_S, c(u64::from(u32::MAX), 0));
        assert_eq!(s.sum(T0 - HOUR_S, T0), c(2 * u64::from(u32::MAX), 0));
    }

    #[test]
    fn sum_counts_buckets_whose_start_is_in_range() {
        let mut s = Series::default();
        for m in 0..10 {
            s.add(T0 + m * MINUTE_S + 30, c(10, m as u64));
        }
        // Exactly the minutes 2..5.
        assert_eq!(s.sum(T0 + 2 * MINUTE_S, T0 + 5 * MINUTE_S), c(30, 2 + 3 + 4));
        // Both edges round up: from 1:30 starts at minute 2; to 4:30 includes minute 4.
        assert_eq!(s.sum(T0 + 90, T0 + 4 * MINUTE_S + 30), c(30, 2 + 3 + 4));
        // The minute in progress counts.
        assert_eq!(s.sum(T0 + 9 * MINUTE_S, T0 + 9 * MINUTE_S + 1), c(10, 9));
        assert_eq!(s.sum(T0, T0 + 10 * MINUTE_S), c(100, 45));
        assert_eq!(s.sum(T0 - DAY_S, T0 + DAY_S), c(100, 45));
        assert_eq!(s.sum(T0 + 5 * MINUTE_S, T0 + 5 * MINUTE_S), Counts::ZERO);
        assert_eq!(s.sum(T0 + 20 * MINUTE_S, T0 + 30 * MINUTE_S), Counts::ZERO);
        assert_eq!(Series::default().sum(T0, T0 + DAY_S), Counts::ZERO);
    }

    #[test]
    fn minutes_older_than_48_hours_fold_into_hours() {
        let mut s = Series::default();
        let days = 5;
        for m in 0..days * 24 * 60 {
            s.add(T0 + m * MINUTE_S, c(2, u64::from(m % 60 == 0)));
        }
        let now = T0 + days * DAY_S;
        s.compact(now);
        let (minutes, hours) = s.bucket_counts();
        assert_eq!(minutes, 48 * 60);
        assert_eq!(hours, (days as usize - 2) * 24);
        // Nothing lost in the folding.
        assert_eq!(s.sum(T0, now), c(2 * days as u64 * 24 * 60, days as u64 * 24));
        // An hour-region window counts whole hours.
        assert_eq!(s.sum(T0 + HOUR_S, T0 + 3 * HOUR_S), c(240, 2));
        assert_eq!(s.sum(T0 + HOUR_S + 1, T0 + 3 * HOUR_S), c(120, 1));
        // Across the boundary between regions: the last hour bucket plus minute buckets.
        let boundary = now - 48 * HOUR_S;
        assert_eq!(s.sum(boundary - HOUR_S, boundary + 30 * MINUTE_S), c(180, 2));
        let buckets: Vec<Bucket> = s.buckets(boundary - HOUR_S, boundary + 2 * MINUTE_S).collect();
        assert_eq!(
            buckets.iter().map(|b| (b.start_s, b.len_s)).collect::<Vec<_>>(),
            vec![(boundary - HOUR_S, HOUR_S), (boundary, MINUTE_S), (boundary + MINUTE_S, MINUTE_S)]
        );
    }

    #[test]
    fn history_past_retention_expires() {
        let mut s = Series::new(3 * DAY_S);
        for h in 0..6 * 24 {
            s.add(T0 + h * HOUR_S, c(1, 0));
        }
        let now = T0 + 6 * DAY_S;
        s.compact(now);
        assert_eq!(s.start_s(), Some(now - 3 * DAY_S));
        assert_eq!(s.sum(T0, now), c(3 * 24, 0));
        // Memory stays within what was reserved up front.
        assert!(s.heap_bytes() <= ((49 * 60 + 1) + (24 + 1)) * 16);
    }

    #[test]
    fn a_long_gap_skips_straight_to_the_retention_horizon() {
        let mut s = Series::default();
        s.add(T0, c(5, 1));
        let later = T0 + 100 * DAY_S;
        s.add(later, c(3, 0));
        assert_eq!(s.sum(T0 - DAY_S, later + DAY_S), c(3, 0));
        assert!(s.bucket_counts().1 <= (33 * 24) as usize);
        let much_later = later + 200 * DAY_S;
        s.compact(much_later);
        assert_eq!(s.sum(T0 - DAY_S, much_later), Counts::ZERO);
        s.add(much_later, c(1, 1));
        assert_eq!(s.sum(T0 - DAY_S, much_later + DAY_S), c(1, 1));
        assert!(s.bucket_counts().1 <= (33 * 24) as usize);
    }

    #[test]
    fn late_samples_land_in_the_bucket_still_held() {
        let mut s = Series::default();
        s.add(T0 + 10 * HOUR_S, c(1, 0));
        // Before the first sample's hour: prepended hour buckets.
        s.add(T0 + 2 * HOUR_S + 5, c(1, 1));
        assert_eq!(s.start_s(), Some(T0 + 2 * HOUR_S));
        assert_eq!(s.sum(T0, T0 + 3 * HOUR_S), c(1, 1));
        // Older than the retention relative to the newest sample: dropped.
        s.add(T0 - 40 * DAY_S, c(7, 7));
        assert_eq!(s.sum(T0 - 50 * DAY_S, T0 + DAY_S), c(2, 1));
        // Late, but within the minute region.
        s.add(T0 + 10 * HOUR_S + 5 * MINUTE_S, c(1, 0));
        s.add(T0 + 10 * HOUR_S + 2 * MINUTE_S + 1, c(4, 2));
        let minute_two = T0 + 10 * HOUR_S + 2 * MINUTE_S;
        assert_eq!(s.sum(minute_two, minute_two + MINUTE_S), c(4, 2));
    }

    #[test]
    fn compaction_is_idempotent_and_ignores_the_past() {
        let mut s = Series::default();
        for m in 0..3 * 24 * 60 {
            s.add(T0 + m * MINUTE_S, c(1, 0));
        }
        let now = T0 + 3 * DAY_S;
        s.compact(now);
        let once = s.clone();
        s.compact(now);
        s.compact(now - DAY_S);
        assert_eq!(s, once);
    }

    #[test]
    fn round_trips_through_json_and_rejects_broken_state() {
        let mut s = Series::default();
        for m in 0..3 * 24 * 60 {
            s.add(T0 + m * MINUTE_S, c(3, u64::from(m % 7 == 0)));
        }
        let json = serde_json::to_string(&s).unwrap();
        let back: Series = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);

        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["minute_start"] = serde_json::json!(T0 + 60);
        let err = serde_json::from_value::<Series>(value.clone()).unwrap_err();
        assert!(err.to_string().contains("not on an hour boundary"), "{err}");
        value["minute_start"] = serde_json::json!(T0 + 7 * HOUR_S);
        let err = serde_json::from_value::<Series>(value).unwrap_err();
        assert!(err.to_string().contains("do not end where"), "{err}");
    }
}
