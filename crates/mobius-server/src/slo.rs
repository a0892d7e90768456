//! SLOs on the server: the definitions come from each service's deployed `mobius.yaml`
//! (`slos:`), the SLIs from the per-minute counters the proxies recorded; `statuses` turns them
//! into budgets, burn rates and alert states with `mobius_slo` at a given time, and `gate`
//! applies the error-budget policy to a deployment.

use jiff::Timestamp;
use mobius_deploy::spec::ServiceSpec;
use mobius_proxy::sli::BUCKETS_MS;
use mobius_slo::alerts::{self, RuleState, Severity};
use mobius_slo::budget::{self, Budget, Objective};
use mobius_slo::policy::{self, Decision, Mode, Reason};
use mobius_slo::series::{Counts, Series};
use mobius_slo::spec::{Policy, Sli, SloSpec};
use mobius_store::{RolloutQuery, SliMinute, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::deploy::Stored;

/// Sloth's recording windows, for burn rates and `/metrics`.
pub const WINDOWS: [(&str, i64); 7] =
    [("5m", 300), ("30m", 1800), ("1h", 3600), ("2h", 7200), ("6h", 21_600), ("1d", 86_400), ("3d", 259_200)];

/// One SLO, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    pub service: String,
    pub slo: String,
    pub environment: String,
    pub objective: f64,
    pub window_s: i64,
    pub policy: Mode,
    /// `None` when the SLI cannot be read (a Prometheus source: not evaluated yet).
    pub budget: Option<Budget>,
    /// Error ratio over each of [`WINDOWS`].
    pub error_ratios: Vec<(String, f64)>,
    /// Burn rate over each of [`WINDOWS`].
    pub burn_rates: Vec<(String, f64)>,
    /// The multi-window multi-burn-rate rules now.
    pub rules: Vec<RuleState>,
    /// `page`, `ticket` or `None`.
    pub alert: Option<Severity>,
    /// When an exhausted budget is expected to recover.
    pub recovers_at: Option<Timestamp>,
    /// Error ratio of each of the last 24 hours, oldest first (for a sparkline).
    pub hourly_error_ratios: Vec<f64>,
    /// Why it is not evaluated, when it is not.
    pub unknown: Option<String>,
}

/// The SLOs every deployed service declares, each with the spec it came from.
pub fn definitions(store: &dyn Store) -> Result<Vec<(String, SloSpec)>, StoreError> {
    let rows = store.rollouts(&RolloutQuery { limit: 10_000, ..RolloutQuery::default() })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    // Newest first: the latest definition of a service wins.
    for row in rows {
        if !seen.insert(row.service.clone()) {
            continue;
        }
        let Ok(stored) = serde_json::from_str::<Stored>(&row.body) else { continue };
        let Ok(spec) = ServiceSpec::parse("mobius.yaml", &stored.spec) else { continue };
        for slo in spec.slos {
            out.push((row.service.clone(), slo));
        }
    }
    Ok(out)
}

/// Every SLO's status at `now`.
pub fn statuses(store: &dyn Store, now: Timestamp) -> Result<Vec<SloStatus>, StoreError> {
    definitions(store)?.into_iter().map(|(service, slo)| status(store, &service, &slo, now)).collect()
}

/// One SLO's status at `now`.
pub fn status(store: &dyn Store, service: &str, slo: &SloSpec, now: Timestamp) -> Result<SloStatus, StoreError> {
    let window_s = i64::try_from(slo.window_seconds()).unwrap_or(i64::MAX);
    let objective = Objective::new(slo.objective.value, window_s);
    let now_s = now.as_second();
    let environment = slo.environment_name().to_owned();
    let mut status = SloStatus {
        service: service.to_owned(),
        slo: slo.name().to_owned(),
        environment: environment.clone(),
        objective: slo.objective.value,
        window_s,
        policy: mode(slo.policy),
        budget: None,
        error_ratios: Vec::new(),
        burn_rates: Vec::new(),
        rules: Vec::new(),
        alert: None,
        recovers_at: None,
        hourly_error_ratios: Vec::new(),
        unknown: None,
    };
    let bad_of: Box<dyn Fn(&SliMinute) -> u64> = match &slo.sli {
        Sli::Availability {} => Box::new(|m: &SliMinute| m.errors),
        Sli::Latency { threshold_ms } => {
            let threshold = threshold_ms.value;
            Box::new(move |m: &SliMinute| slow(m, threshold))
        }
        Sli::Prometheus(_) => {
            status.unknown =
                Some("Prometheus sources are not evaluated yet: the SLO is unknown, never healthy".to_owned());
            return Ok(status);
        }
    };
    let from = now_s - window_s;
    let minutes = store.sli(service, &environment, from - from.rem_euclid(60), now_s + 60)?;
    let mut series = Series::new(window_s);
    for m in &minutes {
        series.add(m.minute, Counts::new(m.requests, bad_of(m)));
    }
    let budget = Budget::compute(&series, objective, now_s);
    for (name, seconds) in WINDOWS {
        let counts = series.sum(now_s - seconds, now_s);
        status.error_ratios.push((name.to_owned(), counts.error_ratio()));
        status.burn_rates.push((name.to_owned(), budget::burn_rate(&series, objective, seconds, now_s)));
    }
    status.hourly_error_ratios =
        (0..24).rev().map(|h| series.sum(now_s - (h + 1) * 3600, now_s - h * 3600).error_ratio()).collect();
    status.rules = alerts::evaluate(&series, objective, now_s);
    status.alert = if alerts::firing(&status.rules, Severity::Page) {
        Some(Severity::Page)
    } else if alerts::firing(&status.rules, Severity::Ticket) {
        Some(Severity::Ticket)
    } else {
        None
    };
    status.recovers_at = budget::recovers_at(&series, objective, now_s).and_then(|s| Timestamp::from_second(s).ok());
    status.budget = Some(budget);
    Ok(status)
}

/// Responses slower than `threshold_ms` in a minute, from the proxy's histogram: a bucket
/// counts as fast only if its upper bound is at or under the threshold (conservative when the
/// threshold falls inside a bucket).
fn slow(m: &SliMinute, threshold_ms: f64) -> u64 {
    let fast: u64 = m.latency.iter().zip(BUCKETS_MS).filter(|(_, bound)| *bound <= threshold_ms).map(|(n, _)| n).sum();
    m.requests.saturating_sub(fast)
}

fn mode(policy: Policy) -> Mode {
    match policy {
        Policy::Freeze => Mode::Freeze,
        Policy::Warn => Mode::Warn,
        Policy::Off => Mode::Off,
    }
}

/// What the error-budget policy says about deploying `service` to `environment` now: the
/// first refusal among its SLOs for that environment, else the first exception or warning.
pub fn gate(
    store: &dyn Store,
    service: &str,
    environment: &str,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<Decision, StoreError> {
    let production = environment == mobius_slo::spec::DEFAULT_ENVIRONMENT;
    let mut decision = Decision::Allow;
    for (owner, slo) in definitions(store)? {
        if owner != service || slo.environment_name() != environment {
            continue;
        }
        let status = status(store, service, &slo, now)?;
        let Some(budget) = &status.budget else { continue };
        match policy::decide(status.policy, budget, production, reason, status.recovers_at) {
            Decision::Allow => {}
            refused @ Decision::Refuse(_) => return Ok(refused),
            other => {
                if decision == Decision::Allow {
                    decision = other;
                }
            }
        }
    }
    Ok(decision)
}

/// The SLO series in Prometheus text format, named as Sloth names its recording rules
/// (`slo:sli_error:ratio_rate5m`, `slo:error_budget:ratio`, …) with Sloth's labels, so
/// dashboards made for Sloth read them.
pub fn exposition(slos: &[SloStatus]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let labels = |s: &SloStatus| {
        format!(
            "sloth_id=\"{}-{}\",sloth_service=\"{}\",sloth_slo=\"{}\"",
            escape(&s.service),
            escape(&s.slo),
            escape(&s.service),
            escape(&s.slo)
        )
    };
    let evaluated: Vec<&SloStatus> = slos.iter().filter(|s| s.budget.is_some()).collect();
    for (window, _) in WINDOWS {
        let _ = writeln!(out, "# TYPE slo:sli_error:ratio_rate{window} gauge");
        for s in &evaluated {
            if let Some((_, ratio)) = s.error_ratios.iter().find(|(w, _)| w == window) {
                let _ = writeln!(
                    out,
                    "slo:sli_error:ratio_rate{window}{{{},sloth_window=\"{window}\"}} {ratio}",
                    labels(s)
                );
            }
        }
    }
    let gauge = |out: &mut String, name: &str, value: &dyn Fn(&SloStatus) -> f64| {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for s in &evaluated {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(s), value(s));
        }
    };
    gauge(&mut out, "slo:objective:ratio", &|s| s.objective / 100.0);
    gauge(&mut out, "slo:error_budget:ratio", &|s| 1.0 - s.objective / 100.0);
    gauge(&mut out, "slo:time_period:days", &|s| s.window_s as f64 / 86_400.0);
    gauge(&mut out, "slo:current_burn_rate:ratio", &|s| s.burn_rates.first().map_or(0.0, |(_, b)| *b));
    gauge(&mut out, "slo:period_burn_rate:ratio", &|s| {
        s.budget.as_ref().map_or(0.0, |b| b.error_ratio / (1.0 - s.objective / 100.0))
    });
    gauge(&mut out, "slo:period_error_budget_remaining:ratio", &|s| s.budget.as_ref().map_or(0.0, |b| b.remaining));
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_requests_come_from_the_histogram() {
        let minute = SliMinute {
            service: "s".into(),
            environment: "e".into(),
            version: "v".into(),
            minute: 0,
            requests: 10,
            errors: 0,
            // Buckets ≤1, ≤2, ≤5, ≤10, ≤25 ms …
            latency: vec![2, 3, 1, 0, 4],
        };
        assert_eq!(slow(&minute, 5.0), 4, "the 25 ms bucket is slow");
        assert_eq!(slow(&minute, 7.0), 4, "a threshold inside a bucket counts the bucket slow");
        assert_eq!(slow(&minute, 25.0), 0);
    }
}
