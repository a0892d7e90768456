//! SLI series kept between evaluations, so that evaluating an SLO reads only the minutes
//! recorded since the last evaluation instead of its whole window: the alert loop evaluates
//! every SLO every 30 s, and a 30-day window is some 3,500 rows per version.
//!
//! Only settled minutes are kept: the recorder adds to the minute in progress every few
//! seconds, so a row is final once its minute ended [`SETTLE_S`] ago. Each evaluation reads the
//! settled rows it does not have yet into the kept series, then adds the unsettled ones to a
//! copy. Downsampling in the store folds only rows older than 48 hours, which a kept series
//! already folded the same way. A clock that goes back, or a series unused for longer than
//! its window, is read afresh.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use mobius_slo::series::{Counts, Series};
use mobius_store::StoreError;

use super::prometheus::{Evaluated, PrometheusError};

/// How long after its minute ended a row may still grow.
pub const SETTLE_S: i64 = 120;

/// What a series counts as bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// 5xx responses.
    Availability,
    /// Responses slower than this threshold (its bits: thresholds are finite).
    Latency(u64),
}

/// One SLI's series: a service in an environment, counted one way, over one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub service: String,
    pub environment: String,
    pub kind: Kind,
    pub window_s: i64,
}

struct Kept {
    series: Series,
    /// Every settled row that started before this is in `series`.
    settled_before: i64,
}

/// Series kept between evaluations. Share one between everything that evaluates the same
/// SLOs; a new one (as a command-line run uses) simply reads every window whole.
#[derive(Default)]
pub struct SeriesCache {
    kept: Mutex<HashMap<Key, Kept>>,
    /// The last evaluation of each Prometheus source (its queries, window and objective), and
    /// when: the alert loop, `/metrics` scrapes and API reads within [`PROMETHEUS_REUSE_S`] of
    /// each other ask Prometheus once.
    prometheus: Mutex<HashMap<String, Asked>>,
}

/// A Prometheus source's evaluation, and the instant it was for.
type Asked = (i64, Result<Evaluated, PrometheusError>);

/// How long a Prometheus SLI's evaluation is reused.
pub const PROMETHEUS_REUSE_S: i64 = 10;

impl std::fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let series = self.kept.lock().map_or(0, |kept| kept.len());
        f.debug_struct("SeriesCache").field("series", &series).finish()
    }
}

impl SeriesCache {
    /// The series of `key` as of `now_s`. `read(from, to)` gives the store's rows with
    /// `from <= start < to`, in time order, as (start, counts).
    pub(crate) fn series(
        &self,
        key: Key,
        now_s: i64,
        read: impl Fn(i64, i64) -> Result<Vec<(i64, Counts)>, StoreError>,
    ) -> Result<Series, StoreError> {
        let from = now_s - key.window_s;
        let from = from - from.rem_euclid(60);
        let settled = (now_s - SETTLE_S) - (now_s - SETTLE_S).rem_euclid(60);
        // Taken out while reading, so other evaluations are not held up; one that wants the
        // same series meanwhile reads it afresh.
        let taken = self.kept.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        let mut kept = match taken {
            Some(kept) if kept.settled_before <= settled.max(from) && kept.settled_before >= from => kept,
            _ => Kept { series: Series::new(key.window_s), settled_before: from },
        };
        if settled > kept.settled_before {
            for (start, counts) in read(kept.settled_before, settled)? {
                kept.series.add(start, counts);
            }
            kept.settled_before = settled;
        }
        let mut series = kept.series.clone();
        for (start, counts) in read(kept.settled_before, now_s + 60)? {
            series.add(start, counts);
        }
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(key, kept);
        Ok(series)
    }

    /// The evaluation of the Prometheus source `key` at `now_s`: one made within
    /// [`PROMETHEUS_REUSE_S`] before (never after: a clock that went back asks again), or a
    /// new one from `evaluate`.
    pub(super) fn prometheus(
        &self,
        key: String,
        now_s: i64,
        evaluate: impl FnOnce() -> Result<Evaluated, PrometheusError>,
    ) -> Result<Evaluated, PrometheusError> {
        let reused = self
            .prometheus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .and_then(|(at, result)| (*at <= now_s && now_s - *at < PROMETHEUS_REUSE_S).then(|| result.clone()));
        if let Some(result) = reused {
            return result;
        }
        let result = evaluate();
        let mut kept = self.prometheus.lock().unwrap_or_else(|e| e.into_inner());
        // Sources that went away (or changed) leave no entry behind for long.
        kept.retain(|_, (at, _)| (now_s - *at).abs() < 60 * PROMETHEUS_REUSE_S);
        kept.insert(key, (now_s, result.clone()));
        result
    }

    /// Forgets every series but those of `keep` (SLOs that went away).
    pub(crate) fn retain(&self, keep: &HashSet<Key>) {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).retain(|key, _| keep.contains(key));
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use mobius_store::{SliMinute, SqliteStore, Store};

    use super::SeriesCache;
    use crate::slo::PrometheusError;
    use crate::slo::{statuses, statuses_with};

    /// A service with an availability and a latency SLO, both over a 3-day window.
    const YAML: &str = "service: shop\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\nslos:\n  - name: up\n    objective: 99.9\n    window: 3d\n    sli: {availability: {}}\n  - name: fast\n    objective: 99\n    window: 3d\n    sli: {latency: {threshold_ms: 5}}\n";

    fn row(minute: i64, version: &str, requests: u64, errors: u64) -> SliMinute {
        SliMinute {
            service: "shop".into(),
            environment: "production".into(),
            version: version.into(),
            minute,
            requests,
            errors,
            latency: vec![requests / 2, 0, requests - requests / 2],
        }
    }

    /// A Prometheus evaluation is reused for 10 s after it was made, not before it.
    #[test]
    fn a_prometheus_evaluation_is_reused_for_a_few_seconds() {
        let cache = SeriesCache::default();
        let calls = std::cell::Cell::new(0);
        let down = |reason: String| PrometheusError::Unreachable { url: "http://prometheus".into(), reason };
        let evaluate = || {
            calls.set(calls.get() + 1);
            Err(down(format!("call {}", calls.get())))
        };
        let at = |now: i64| cache.prometheus("source".into(), now, evaluate).err().unwrap();
        assert_eq!(at(1_000), down("call 1".into()));
        assert_eq!(at(1_009), down("call 1".into()), "reused within 10 s");
        assert_eq!(at(1_010), down("call 2".into()));
        assert_eq!(at(1_005), down("call 3".into()), "a clock that went back asks again");
        let other = cache.prometheus("other".into(), 1_005, || Err(down("x".into()))).err().unwrap();
        assert_eq!(other, down("x".into()));
    }

    /// Evaluating with kept series gives exactly what reading every window whole gives, as
    /// rows keep arriving (also into the minute in progress), the store is downsampled, time
    /// moves on by minutes and days, and goes back.
    #[test]
    fn kept_series_evaluate_exactly_like_fresh_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let start = 1_767_225_600; // 2026-01-01T00:00Z
        crate::testing::deployed(&store, YAML, Timestamp::from_second(start).unwrap());
        let cache = SeriesCache::default();
        let check = |now: i64| {
            let at = Timestamp::from_second(now).unwrap();
            let kept = statuses_with(&store, &cache, at).unwrap();
            assert_eq!(kept, statuses(&store, at).unwrap(), "at {at}");
            kept[0].budget.as_ref().map_or(0, |b| b.total)
        };
        // Four days, every 40 minutes: two versions write into the minute in progress, an
        // evaluation reads it, more arrives in the same minute and late into the one before,
        // with an evaluation after each. An outage on day 2; the store downsampled every 8 hours.
        let mut t = start;
        let mut step = 0u64;
        while t < start + 4 * 86_400 {
            t += 2_405; // never on a minute's first second: a bucket starting at `now` is not yet counted
            step += 1;
            let minute = t - t.rem_euclid(60);
            let errors = if (start + 86_400..start + 86_400 + 3_600).contains(&t) { 30 } else { step % 3 };
            store.add_sli(&[row(minute, "v1", 50, errors), row(minute, "v2", 7, 0)]).unwrap();
            assert!(check(t) > 0);
            store.add_sli(&[row(minute, "v1", 20, 1)]).unwrap();
            check(t + 10);
            // A reading of the minute before, committed late (the recorder raced the minute's end).
            store.add_sli(&[row(minute - 60, "v2", 3, 3)]).unwrap();
            check(t + 20);
            if step.is_multiple_of(12) {
                let hourly_before = t - 48 * 3_600;
                store.compact_sli(hourly_before - hourly_before.rem_euclid(3_600), 0).unwrap();
            }
        }
        check(t + 30); // the same minute again
        check(start + 86_400 + 1_800); // back in time, into the outage
        check(t + 5 * 86_400); // days later, past the window
    }
}
