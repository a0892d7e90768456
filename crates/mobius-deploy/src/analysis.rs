//! Judging a canary from per-version SLIs.
//!
//! One interval's observations of the canary (and optionally of stable) become a
//! [`Measurement`] through [`measure`]: absolute thresholds (error rate, success rate, p50, p99),
//! a minimum-request rule, and optionally a Mann-Whitney U comparison of canary latencies against
//! stable's. Measurements accumulate in an [`AnalysisState`], which decides the analysis'
//! [`Outcome`] with Argo Rollouts' counting rules (`failureLimit`, `count`, `inconclusiveLimit`).
//!
//! Everything here is pure: the caller gathers the samples and persists the state.

use serde::{Deserialize, Serialize};

/// How a canary is judged: what one measurement checks and how many of them decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Seconds between measurements (each measurement covers one interval).
    pub interval_secs: f64,
    /// Passing measurements needed for the analysis to succeed.
    pub count: u32,
    /// Failed measurements tolerated; one more fails the analysis (0: the first failure fails).
    pub failure_limit: u32,
    /// Canary requests needed in an interval for a verdict; fewer is inconclusive, never a pass.
    pub min_requests: u64,
    /// Highest tolerated canary error rate, as a fraction of requests (e.g. `0.01`).
    pub max_error_rate: Option<f64>,
    /// Highest tolerated canary p99 latency, in milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Highest tolerated canary p50 latency, in milliseconds.
    pub max_p50_ms: Option<f64>,
    /// Lowest tolerated canary success rate, as a fraction of requests (e.g. `0.99`).
    pub min_success_rate: Option<f64>,
    /// Compare canary latencies with stable's (Mann-Whitney U); fail when canary is
    /// significantly slower (see [`MannWhitney::canary_slower`]).
    pub compare_latency: bool,
    /// Inconclusive measurements tolerated; one more makes the analysis inconclusive.
    pub max_inconclusive: u32,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        Self {
            interval_secs: 10.0,
            count: 3,
            failure_limit: 0,
            min_requests: 20,
            max_error_rate: None,
            max_p99_ms: None,
            max_p50_ms: None,
            min_success_rate: None,
            compare_latency: false,
            max_inconclusive: 3,
        }
    }
}

/// One interval's SLIs for one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Requests served in the interval.
    pub requests: u64,
    /// Of those, the failed ones (5xx).
    pub errors: u64,
    /// Individual request latencies in milliseconds (may be a subset of all requests).
    pub latencies_ms: Vec<f64>,
    /// Median latency, when known from elsewhere (e.g. a histogram); else computed from
    /// `latencies_ms`.
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency, when known from elsewhere; else computed from `latencies_ms`.
    pub p99_ms: Option<f64>,
}

impl Sample {
    /// `errors / requests`, weighted by request (not an average of per-instance rates).
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors.min(self.requests) as f64 / self.requests as f64)
    }

    /// The median latency: `p50_ms` if given, else computed from `latencies_ms`.
    pub fn p50(&self) -> Option<f64> {
        self.p50_ms.or_else(|| percentile(&self.latencies_ms, 0.50))
    }

    /// The 99th-percentile latency: `p99_ms` if given, else computed from `latencies_ms`.
    pub fn p99(&self) -> Option<f64> {
        self.p99_ms.or_else(|| percentile(&self.latencies_ms, 0.99))
    }
}

/// The `q` quantile (`0.0..=1.0`) of `values`, by linear interpolation between closest ranks
/// (numpy's default, Hyndman & Fan type 7). NaNs are ignored; `None` when nothing is left.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// What one measurement says about the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not enough data to say (too few requests, no latencies, no stable to compare with).
    Inconclusive,
}

/// One check of a measurement, e.g. `error_rate` 0.02 against 0.01.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `min_requests`, `error_rate`, `success_rate`, `p50_ms`, `p99_ms` or `latency_vs_stable`.
    pub name: String,
    /// The observed value; `None` when there was no data to compute it (the check is then
    /// inconclusive). For `latency_vs_stable`, the one-sided p-value that canary is slower.
    pub value: Option<f64>,
    /// The limit it was held to (a maximum, or a minimum for `min_requests`/`success_rate`;
    /// for `latency_vs_stable`, the significance level).
    pub threshold: f64,
    /// Whether the check held. An inconclusive check has `passed: false` and `value: None`,
    /// except `min_requests`, whose value is the request count.
    pub passed: bool,
}

/// One interval's judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    /// The latency comparison, when `compare_latency` was on and both sides had data.
    pub mann_whitney: Option<MannWhitney>,
}

/// Significance level of the latency comparison (one-sided, canary slower).
pub const LATENCY_ALPHA: f64 = 0.05;
/// Canary's median latency must exceed stable's by this factor for a significant difference to
/// count: with many requests, a 1% slowdown is significant but not worth a rollback.
pub const LATENCY_MIN_RATIO: f64 = 1.1;
/// Fewest latencies on each side for a comparison; below it the normal approximation is poor
/// and the check is inconclusive.
pub const MIN_LATENCY_SAMPLES: usize = 8;

/// Judges one interval. The canary needs `spec.min_requests` requests for any verdict but
/// [`Verdict::Inconclusive`]; then any failed check fails the measurement, and otherwise any
/// check without data makes it inconclusive.
pub fn measure(spec: &AnalysisSpec, canary: &Sample, stable: Option<&Sample>) -> Measurement {
    let enough = canary.requests >= spec.min_requests && canary.requests > 0;
    let mut checks = vec![Check {
        name: "min_requests".into(),
        value: Some(canary.requests as f64),
        threshold: spec.min_requests as f64,
        passed: enough,
    }];
    if !enough {
        return Measurement { verdict: Verdict::Inconclusive, checks, mann_whitney: None };
    }

    let at_most = |name: &str, value: Option<f64>, max: f64| Check {
        name: name.into(),
        value,
        threshold: max,
        passed: value.is_some_and(|v| v <= max),
    };
    if let Some(max) = spec.max_error_rate {
        checks.push(at_most("error_rate", canary.error_rate(), max));
    }
    if let Some(min) = spec.min_success_rate {
        let value = canary.error_rate().map(|e| 1.0 - e);
        checks.push(Check {
            name: "success_rate".into(),
            value,
            threshold: min,
            passed: value.is_some_and(|v| v >= min),
        });
    }
    if let Some(max) = spec.max_p50_ms {
        checks.push(at_most("p50_ms", canary.p50(), max));
    }
    if let Some(max) = spec.max_p99_ms {
        checks.push(at_most("p99_ms", canary.p99(), max));
    }

    let mut mann_whitney = None;
    if spec.compare_latency {
        let comparable = stable.filter(|s| {
            s.latencies_ms.len() >= MIN_LATENCY_SAMPLES && canary.latencies_ms.len() >= MIN_LATENCY_SAMPLES
        });
        let result = comparable.map(|s| mann_whitney_u(&canary.latencies_ms, &s.latencies_ms));
        checks.push(Check {
            name: "latency_vs_stable".into(),
            value: result.as_ref().map(|r| r.p_greater),
            threshold: LATENCY_ALPHA,
            passed: result.as_ref().is_some_and(|r| !r.canary_slower()),
        });
        mann_whitney = result;
    }

    let verdict = if checks.iter().any(|c| !c.passed && c.value.is_some()) {
        Verdict::Fail
    } else if checks.iter().any(|c| c.value.is_none()) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    };
    Measurement { verdict, checks, mann_whitney }
}

/// A Mann-Whitney U (Wilcoxon rank-sum) comparison of sample `a` (canary) with `b` (stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MannWhitney {
    /// `U` of `a`: the number of pairs `(a_i, b_j)` with `a_i > b_j`, ties counting one half.
    pub u: f64,
    /// Standardised `U`, continuity-corrected towards zero; positive when `a` tends to be larger.
    pub z: f64,
    /// Two-sided p-value: `a` and `b` come from the same distribution.
    pub p_two_sided: f64,
    /// One-sided p-value against the alternative "`a` tends to be larger" (canary slower).
    pub p_greater: f64,
    /// Probability of superiority, `U / (n_a n_b)`: the chance that a random `a` exceeds a random
    /// `b` (ties half). 0.5 means no difference; 1.0 means every `a` exceeds every `b`.
    pub effect: f64,
    /// 0..100 in the spirit of Kayenta's canary score: 100 unless `a` is significantly larger
    /// ([`MannWhitney::canary_slower`]), then `200 (1 - effect)`, reaching 0 when every `a`
    /// exceeds every `b`.
    pub score: f64,
    /// Median of `a`.
    pub median_a: f64,
    /// Median of `b`.
    pub median_b: f64,
}

impl MannWhitney {
    /// The rule that fails a canary on latency: significantly slower (one-sided
    /// `p_greater < LATENCY_ALPHA`) *and* meaningfully slower (canary median above
    /// `LATENCY_MIN_RATIO` × stable median). Significance alone is not enough: with thousands of
    /// requests a negligible slowdown is significant.
    pub fn canary_slower(&self) -> bool {
        self.p_greater < LATENCY_ALPHA && self.median_a > self.median_b * LATENCY_MIN_RATIO
    }
}

/// The Mann-Whitney U test of `a` against `b` with the normal approximation.
///
/// With `n = n_a + n_b` values ranked together (ties get the average of the ranks they span) and
/// `R_a` the sum of `a`'s ranks:
///
/// - `U = R_a - n_a (n_a + 1) / 2`, `μ = n_a n_b / 2`;
/// - `σ² = n_a n_b / 12 · ((n + 1) - Σ (t³ - t) / (n (n - 1)))`, summing over each group of `t`
///   tied values (the tie correction);
/// - `z = sign(U - μ) · max(|U - μ| - ½, 0) / σ` (continuity correction);
/// - `p_two_sided = 2 (1 - Φ(|z|))`, `p_greater = 1 - Φ((U - μ - ½) / σ)`, both clipped to 1.
///
/// This matches `scipy.stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True)`.
/// NaNs are dropped. With an empty side, or every value tied (`σ = 0`), there is no evidence of a
/// difference: `z = 0`, `p = 1`, `effect = 0.5`.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> MannWhitney {
    let a: Vec<f64> = a.iter().copied().filter(|v| !v.is_nan()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|v| !v.is_nan()).collect();
    let median_a = percentile(&a, 0.5).unwrap_or(f64::NAN);
    let median_b = percentile(&b, 0.5).unwrap_or(f64::NAN);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let no_difference = |u: f64| MannWhitney {
        u,
        z: 0.0,
        p_two_sided: 1.0,
        p_greater: 1.0,
        effect: 0.5,
        score: 100.0,
        median_a,
        median_b,
    };
    if a.is_empty() || b.is_empty() {
        return no_difference(0.0);
    }

    // Rank the pooled values; `true` marks a value of `a`.
    let mut pooled: Vec<(f64, bool)> = a.iter().map(|&v| (v, true)).chain(b.iter().map(|&v| (v, false))).collect();
    pooled.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        // Ranks start..end (1-based: start+1..=end) share their average.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let in_a = pooled[start..end].iter().filter(|(_, from_a)| *from_a).count();
        rank_sum_a += average_rank * in_a as f64;
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }

    let n = na + nb;
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let mu = na * nb / 2.0;
    let variance = na * nb / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance <= 0.0 {
        return no_difference(u);
    }
    let sigma = variance.sqrt();
    let d = u - mu;
    let z = d.signum() * (d.abs() - 0.5).max(0.0) / sigma;
    let p_two_sided = (2.0 * normal_sf(z.abs())).min(1.0);
    let p_greater = normal_sf((d - 0.5) / sigma).min(1.0);
    let effect = u / (na * nb);
    let mut result = MannWhitney { u, z, p_two_sided, p_greater, effect, score: 100.0, median_a, median_b };
    if result.canary_slower() {
        result.score = (200.0 * (1.0 - effect)).clamp(0.0, 100.0);
    }
    result
}

/// `1 - Φ(x)`, the standard normal survival function.
fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// The complementary error function, Chebyshev-fitted (Numerical Recipes in C, 2nd ed., §6.2,
/// `erfcc`): fractional error below 1.2e-7 everywhere, plenty for a p-value.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Where an analysis stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// More measurements are needed.
    Running,
    /// `count` measurements passed before the limits were exceeded: promote.
    Succeeded,
    /// More than `failure_limit` measurements failed: abort.
    Failed,
    /// More than `max_inconclusive` measurements were inconclusive: pause for a human.
    Inconclusive,
}

impl Outcome {
    /// Whether the analysis is over.
    pub fn is_terminal(self) -> bool {
        self != Outcome::Running
    }
}

/// The measurements of one analysis so far, persisted between intervals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisState {
    /// Every recorded measurement, oldest first. Bounded: an analysis ends after at most
    /// `count + failure_limit + max_inconclusive + 1` of them.
    pub measurements: Vec<Measurement>,
    pub failures: u32,
    pub inconclusive: u32,
    pub successes: u32,
}

impl AnalysisState {
    /// Records one measurement and returns the analysis' outcome. Once the outcome is terminal,
    /// further measurements are ignored and the same outcome is returned.
    pub fn record(&mut self, spec: &AnalysisSpec, m: Measurement) -> Outcome {
        let before = self.outcome(spec);
        if before.is_terminal() {
            return before;
        }
        match m.verdict {
            Verdict::Pass => self.successes += 1,
            Verdict::Fail => self.failures += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
        }
        self.measurements.push(m);
        self.outcome(spec)
    }

    /// The outcome of the counts so far, in Argo Rollouts' order: too many failures fail,
    /// then too many inconclusive measurements make it inconclusive, then `count` successes
    /// succeed.
    pub fn outcome(&self, spec: &AnalysisSpec) -> Outcome {
        if self.failures > spec.failure_limit {
            Outcome::Failed
        } else if self.inconclusive > spec.max_inconclusive {
            Outcome::Inconclusive
        } else if self.successes >= spec.count && !self.measurements.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Running
        }
    }
}

#[cfg(test)]
mod tests;
