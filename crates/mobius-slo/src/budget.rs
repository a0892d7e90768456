//! Error budgets and burn rates, as in the SRE Workbook's chapter 5 ("Alerting on SLOs").
//!
//! With an objective of `o` percent over a window `W`, the error budget is `b = 1 − o/100` of
//! the requests in the window (99.9% → 0.001), or `b × W` in time (99.9% of 30 days is 43.2
//! minutes). The burn rate over any window is that window's error ratio divided by `b`: at burn
//! 1 the budget lasts exactly `W`, at burn `r` it lasts `W / r`.
//!
//! Everything is **request-weighted**: the error ratio of a window is the bad requests in it
//! over all requests in it, from the window's sum of buckets — not an average of per-bucket
//! ratios (the flaw of Sloth's `ratio_rate30d`, where a quiet hour with one failure weighs as
//! much as a busy one).

use serde::{Deserialize, Serialize};

use crate::series::{Counts, Series};

/// How close to zero a remaining budget counts as none (see [`Budget::exhausted`]).
const EXHAUSTED_TOLERANCE: f64 = 1e-9;

/// What an SLO promises: `percent` of requests good over a rolling `window_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// The objective in percent, in (0, 100]; e.g. 99.9.
    pub percent: f64,
    /// The rolling window, in seconds; e.g. 30 days.
    pub window_s: i64,
}

/// `ratio / budget`, where a zero ratio burns nothing even against a zero budget (100%).
fn over_budget(ratio: f64, budget: f64) -> f64 {
    if ratio == 0.0 { 0.0 } else { ratio / budget }
}

impl Objective {
    pub fn new(percent: f64, window_s: i64) -> Objective {
        Objective { percent, window_s }
    }

    /// The error budget as a fraction of requests: `1 − percent/100`.
    pub fn budget_ratio(&self) -> f64 {
        1.0 - self.percent / 100.0
    }

    /// The error budget in time: `b × W` (the time a total outage takes to spend it).
    pub fn budget_time_s(&self) -> f64 {
        self.budget_ratio() * self.window_s as f64
    }

    /// Burn rate of an error ratio: `error_ratio / b`.
    pub fn burn_rate(&self, error_ratio: f64) -> f64 {
        over_budget(error_ratio, self.budget_ratio())
    }

    /// The burn rate at which `budget_fraction` of the budget is spent in `over_s`:
    /// `fraction × W / over` (2% in 1 h of a 30-day window is 14.4). This is Sloth's
    /// `getBurnRateFactor`, and how alert thresholds scale to windows other than 30 days.
    pub fn burn_factor(&self, budget_fraction: f64, over_s: i64) -> f64 {
        budget_fraction * self.window_s as f64 / over_s as f64
    }

    /// The fraction of the budget a burn rate spends in `over_s`: `burn × over / W`.
    pub fn budget_consumed(&self, burn: f64, over_s: i64) -> f64 {
        burn * over_s as f64 / self.window_s as f64
    }

    /// How long a whole budget lasts at a burn rate: `W / burn` (infinite at burn 0).
    pub fn time_to_exhaustion_s(&self, burn: f64) -> f64 {
        self.window_s as f64 / burn
    }

    /// The workbook's detection time of an alert on `burn` over `long_window_s` for a steady
    /// error ratio: `b / error_ratio × long_window × burn` (15% errors against 14.4 over 1 h of
    /// a 99.9% SLO: 5.76 min).
    pub fn detection_time_s(&self, error_ratio: f64, long_window_s: i64, burn: f64) -> f64 {
        self.budget_ratio() / error_ratio * long_window_s as f64 * burn
    }
}

/// The state of an SLO's error budget over its window, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The objective in percent.
    pub objective: f64,
    /// The rolling window, in seconds.
    pub window_s: i64,
    /// Requests in the window.
    pub total: u64,
    /// Bad requests in the window.
    pub bad: u64,
    /// `bad / total` (0 without traffic).
    pub error_ratio: f64,
    /// Fraction of the budget left: `1 − (bad/total) / b`. Negative once overspent.
    pub remaining: f64,
    /// The remaining budget in time, `remaining × b × W`: the full budget of 99.9% over
    /// 30 days is 2,592 s (43.2 min). Negative once overspent.
    pub remaining_time_s: f64,
    /// Fraction of the budget spent: `(bad/total) / b`, i.e. `1 − remaining`; this is also the
    /// burn rate averaged over the whole window.
    pub consumed: f64,
}

impl Budget {
    /// The budget for the requests of one window.
    pub fn from_counts(objective: Objective, counts: Counts) -> Budget {
        let b = objective.budget_ratio();
        let error_ratio = counts.error_ratio();
        let consumed = over_budget(error_ratio, b);
        let remaining = 1.0 - consumed;
        Budget {
            objective: objective.percent,
            window_s: objective.window_s,
            total: counts.total,
            bad: counts.bad,
            error_ratio,
            remaining,
            // A 100% objective has no budget in time: none left, rather than −∞ × 0.
            remaining_time_s: if objective.budget_time_s() == 0.0 {
                0.0
            } else {
                remaining * objective.budget_time_s()
            },
            consumed,
        }
    }

    /// The budget over `[now_s − W, now_s)` of `series` (see [`Series::sum`] for the edges).
    pub fn compute(series: &Series, objective: Objective, now_s: i64) -> Budget {
        Budget::from_counts(objective, series.sum(now_s - objective.window_s, now_s))
    }

    pub fn objective(&self) -> Objective {
        Objective::new(self.objective, self.window_s)
    }

    /// Nothing left (`remaining ≤ 0`): the error-budget policy's trigger. A budget spent to
    /// the request counts as exhausted, within a tolerance for the objective's decimal not
    /// being exact in binary (`1 − 0.99` is not quite `0.01`).
    pub fn exhausted(&self) -> bool {
        self.remaining <= EXHAUSTED_TOLERANCE
    }

    /// How long the **remaining** budget lasts at a burn rate: `remaining × W / burn`
    /// (0 when already exhausted, infinite at burn 0).
    pub fn time_to_exhaustion_s(&self, burn: f64) -> f64 {
        self.remaining.max(0.0) * self.window_s as f64 / burn
    }
}

/// Burn rate over `[now_s − window_s, now_s)`: that window's error ratio over the budget.
pub fn burn_rate(series: &Series, objective: Objective, window_s: i64, now_s: i64) -> f64 {
    objective.burn_rate(series.sum(now_s - window_s, now_s).error_ratio())
}

/// When an exhausted budget stops being exhausted if no new errors arrive: `None` if it is not
/// exhausted at `now_s`.
///
/// The model: traffic goes on at the current window's volume, all of it good, so the window's
/// total stays what it is now while its oldest bad requests age out of it. The answer is the
/// end of the bucket whose ageing-out brings the bad count under `b × total`, plus `W` — the
/// instant that whole bucket has left the window, so "about" this time, rounded up to the
/// bucket (a minute within the last 48 hours, an hour before that).
pub fn recovers_at(series: &Series, objective: Objective, now_s: i64) -> Option<i64> {
    let from = now_s - objective.window_s;
    let window = series.sum(from, now_s);
    if !Budget::from_counts(objective, window).exhausted() {
        return None;
    }
    let mut left = window;
    for bucket in series.buckets(from, now_s) {
        left.bad -= bucket.counts.bad;
        if bucket.counts.bad > 0 && !Budget::from_counts(objective, left).exhausted() {
            return Some(bucket.start_s + bucket.len_s + objective.window_s);
        }
    }
    // Only reachable for an objective of 100% with traffic: it recovers when the last bad
    // request has left, which the loop's final bad bucket already returned; keep a bound.
    Some(now_s + objective.window_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{HOUR_S, MINUTE_S};

    const DAY_S: i64 = 24 * HOUR_S;
    const T0: i64 = 1_795_651_200;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    fn check(actual: f64, expected: f64) {
        assert!(close(actual, expected), "{actual} != {expected}");
    }

    #[test]
    fn workbook_budget_in_time() {
        // 99.9% over 30 days: 43.2 minutes; over 28 days: 40.32 minutes.
        check(Objective::new(99.9, 30 * DAY_S).budget_time_s(), 43.2 * 60.0);
        check(Objective::new(99.9, 28 * DAY_S).budget_time_s(), 40.32 * 60.0);
        // Extreme availability: 99.999% is spent by a total outage in about 26 s.
        check(Objective::new(99.999, 30 * DAY_S).budget_time_s(), 25.92);
    }

    #[test]
    fn burn_14_4_exhausts_30_days_in_50_hours_and_is_2_percent_per_hour() {
        let slo = Objective::new(99.9, 30 * DAY_S);
        check(slo.time_to_exhaustion_s(14.4), 50.0 * 3600.0);
        check(slo.burn_factor(0.02, HOUR_S), 14.4);
        check(slo.budget_consumed(14.4, HOUR_S), 0.02);
        // Time to fire at 15% errors (workbook): 5.76 minutes.
        check(slo.detection_time_s(0.15, HOUR_S, 14.4), 5.76 * 60.0);
        // A 100% outage: about 52 s.
        check(slo.detection_time_s(1.0, HOUR_S, 14.4), 51.84);
    }

    #[test]
    fn workbook_table_5_4() {
        let slo = Objective::new(99.9, 30 * DAY_S);
        // (error ratio, burn rate, time to exhaustion)
        let rows = [
            (0.001, 1.0, 30.0 * DAY_S as f64),
            (0.002, 2.0, 15.0 * DAY_S as f64),
            (0.01, 10.0, 3.0 * DAY_S as f64),
            (1.0, 1000.0, 43.2 * 60.0),
        ];
        for (ratio, burn, exhaustion) in rows {
            let actual = slo.burn_rate(ratio);
            assert!((actual - burn).abs() < 1e-6, "{ratio}: {actual} != {burn}");
            assert!((slo.time_to_exhaustion_s(actual) - exhaustion).abs() < 1e-3);
        }
    }

    #[test]
    fn workbook_and_sloth_burn_factors() {
        let factors = |window_s| {
            let slo = Objective::new(99.9, window_s);
            [(0.02, HOUR_S), (0.05, 6 * HOUR_S), (0.10, DAY_S), (0.10, 3 * DAY_S)]
                .map(|(fraction, long)| slo.burn_factor(fraction, long))
        };
        let thirty = factors(30 * DAY_S);
        for (actual, expected) in thirty.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            check(*actual, expected);
        }
        let twenty_eight = factors(28 * DAY_S);
        for (actual, expected) in twenty_eight.iter().zip([13.44, 5.6, 2.8, 28.0 / 30.0]) {
            check(*actual, expected);
        }
        assert_eq!(format!("{:.3}", twenty_eight[3]), "0.933");
        let slo = Objective::new(99.9, 30 * DAY_S);
        for (burn, days) in [(14.4, 50.0 / 24.0), (6.0, 5.0), (3.0, 10.0), (1.0, 30.0)] {
            check(slo.time_to_exhaustion_s(burn), days * DAY_S as f64);
        }
    }

    #[test]
    fn budget_is_request_weighted_not_an_average_of_ratios() {
        let mut series = Series::default();
        // A busy hour with 1% errors and a quiet hour with 100%.
        for m in 0..60 {
            series.add(T0 + m * MINUTE_S, Counts::new(1000, 10));
        }
        series.add(T0 + HOUR_S, Counts::new(10, 10));
        let slo = Objective::new(99.0, 30 * DAY_S);
        let budget = Budget::compute(&series, slo, T0 + 2 * HOUR_S);
        assert_eq!((budget.total, budget.bad), (60_010, 610));
        check(budget.error_ratio, 610.0 / 60_010.0);
        check(budget.consumed, 610.0 / 60_010.0 / 0.01);
        check(budget.remaining, 1.0 - budget.consumed);
        check(budget.remaining_time_s, budget.remaining * 0.01 * 30.0 * DAY_S as f64);
        // Overspent: the remaining budget is negative (about −1.7%).
        assert!(budget.exhausted());
        assert!(budget.remaining < 0.0 && budget.remaining > -0.02);
        assert_eq!(budget.time_to_exhaustion_s(5.0), 0.0);
    }

    #[test]
    fn budget_without_traffic_is_whole() {
        let budget = Budget::compute(&Series::default(), Objective::new(99.9, 30 * DAY_S), T0);
        assert_eq!((budget.total, budget.bad, budget.error_ratio), (0, 0, 0.0));
        assert_eq!((budget.remaining, budget.consumed), (1.0, 0.0));
        check(budget.remaining_time_s, 2592.0);
        assert!(!budget.exhausted());
        assert_eq!(budget.time_to_exhaustion_s(0.0), f64::INFINITY);
        // Half the budget left at burn 14.4: 25 hours.
        let half = Budget::from_counts(Objective::new(99.9, 30 * DAY_S), Counts::new(2000, 1));
        check(half.remaining, 0.5);
        check(half.time_to_exhaustion_s(14.4), 25.0 * 3600.0);
    }

    #[test]
    fn burn_rate_of_a_window() {
        let mut series = Series::default();
        for m in 0..120 {
            series.add(T0 + m * MINUTE_S, Counts::new(100, u64::from(m >= 110) * 2));
        }
        let slo = Objective::new(99.9, 30 * DAY_S);
        let now = T0 + 120 * MINUTE_S;
        // Last 5 minutes: 2% errors = burn 20; last hour: 20/6000 = burn 3.33.
        check(burn_rate(&series, slo, 5 * MINUTE_S, now), 20.0);
        check(burn_rate(&series, slo, HOUR_S, now), 20.0 / 6.0);
    }

    #[test]
    fn recovers_when_old_errors_leave_the_window() {
        let slo = Objective::new(99.0, 7 * DAY_S);
        let mut series = Series::default();
        // Day 0: an incident, 300 bad minutes of 100; then 6 days of clean traffic.
        for m in 0..7 * 24 * 60 {
            let bad = if (60..360).contains(&m) { 100 } else { 0 };
            series.add(T0 + m * MINUTE_S, Counts::new(100, bad));
        }
        let now = T0 + 7 * DAY_S;
        let budget = Budget::compute(&series, slo, now);
        // 30,000 bad of 1,008,000: 2.98% against a 1% budget.
        assert!(budget.exhausted());
        // Recovered once fewer than 10,080 bad remain: 19,920 must leave, that is 200 bad
        // minutes, i.e. the bucket holding minute 259 (hour 4, an hour bucket by now).
        let at = recovers_at(&series, slo, now).unwrap();
        assert_eq!(at, T0 + 5 * HOUR_S + 7 * DAY_S);
        // Not exhausted: no recovery time.
        assert_eq!(recovers_at(&series, slo, at), None);
        assert!(!Budget::compute(&series, slo, at).exhausted());
        assert!(Budget::compute(&series, slo, at - HOUR_S).exhausted());
    }
}
