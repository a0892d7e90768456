//! SLOs on the server: the definitions come from each service's deployed `mobius.yaml`
//! (`slos:`), the SLIs from the per-minute counters the proxies recorded or, for a Prometheus
//! SLI, from instant queries to that Prometheus; `statuses` turns them into budgets, burn rates
//! and alert states with `mobius_slo` at a given time, and `gate` applies the error-budget
//! policy to a deployment.
//!
//! Evaluating a Prometheus SLI does blocking HTTP: call `status`, `statuses` and `gate` outside
//! an async context (`spawn_blocking`).

use jiff::Timestamp;
use mobius_deploy::spec::ServiceSpec;
use mobius_proxy::sli::BUCKETS_MS;
use mobius_slo::alerts::{self, RuleState, Severity};
use mobius_slo::budget::{self, Budget, Objective};
use mobius_slo::policy::{self, Decision, Mode, Reason};
use mobius_slo::series::Counts;
use mobius_slo::spec::{Policy, Sli, SloSpec, with_window};
use mobius_store::{RolloutQuery, SliMinute, Store, StoreError};
use serde::{Deserialize, Serialize};

use mobius_deploy::rollout::Stored;

mod cache;
mod explain;
mod prometheus;
pub use cache::SeriesCache;
pub use explain::{Explanation, IncidentShare, Share, explain};
use prometheus::Prometheus;
pub use prometheus::PrometheusError;

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
    /// `None` when the SLI cannot be read (an unreachable or failing Prometheus; see `unknown`).
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
    /// How long the remaining budget lasts at the last hour's burn rate: `None` while nothing
    /// burns it (or it cannot be read), 0 once it is spent.
    #[serde(default)]
    pub exhausted_in_s: Option<f64>,
    /// Error ratio of each of the last 24 hours, oldest first (for a sparkline).
    pub hourly_error_ratios: Vec<f64>,
    /// Why it is not evaluated, when it is not.
    pub unknown: Option<String>,
}

/// The SLOs every deployed service declares, each with the spec it came from.
pub fn definitions(store: &dyn Store) -> Result<Vec<(String, SloSpec)>, StoreError> {
    let query = RolloutQuery { latest_per_service: true, limit: 100_000, ..RolloutQuery::default() };
    let rows = store.rollouts(&query)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    // Newest first: the latest definition of a service wins.
    for row in rows {
        if !seen.insert(row.service.clone()) {
            continue;
        }
        let stored = match serde_json::from_str::<Stored>(&row.body) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(rollout = row.id, error = %e, "a stored rollout does not decode: its service's SLOs are left out");
                continue;
            }
        };
        let spec = match ServiceSpec::parse("mobius.yaml", &stored.spec) {
            Ok(spec) => spec,
            Err(e) => {
                tracing::warn!(rollout = row.id, error = %e, "a deployed mobius.yaml does not parse: its SLOs are left out");
                continue;
            }
        };
        for slo in spec.slos {
            out.push((row.service.clone(), slo));
        }
        for slo in openslo_files(std::path::Path::new(&stored.rollout.new.release), &row.service) {
            out.push((row.service.clone(), slo));
        }
    }
    Ok(out)
}

/// Who to call about a service, from its latest deployed `mobius.yaml`: `owner` and `runbook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contacts {
    pub owner: Option<String>,
    pub runbook: Option<String>,
}

/// [`Contacts`] of `service`; empty when it was never deployed or says neither.
pub fn contacts(store: &dyn Store, service: &str) -> Result<Contacts, StoreError> {
    let query = RolloutQuery { service: Some(service.to_owned()), limit: 1, ..RolloutQuery::default() };
    let Some(row) = store.rollouts(&query)?.into_iter().next() else { return Ok(Contacts::default()) };
    let spec =
        serde_json::from_str::<Stored>(&row.body).ok().and_then(|s| ServiceSpec::parse("mobius.yaml", &s.spec).ok());
    Ok(spec.map(|spec| Contacts { owner: spec.owner, runbook: spec.runbook }).unwrap_or_default())
}

/// The SLOs of `service` in the release's OpenSLO v1 files (`openslo/*.yaml|yml`, or
/// `*.openslo.yaml` beside `mobius.yaml`). A file that does not parse, or an SLO that cannot
/// be converted, is logged and left out.
fn openslo_files(release: &std::path::Path, service: &str) -> Vec<SloSpec> {
    use mobius_slo::openslo::{self, Document};
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for dir in [release.join("openslo"), release.to_owned()] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A release without an `openslo/` directory is the usual case.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot look for OpenSLO files in a release");
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            if yaml && (dir != release || name.contains(".openslo.")) {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    let mut slos = Vec::new();
    for file in files {
        let path = file.display().to_string();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(file = %path, error = %e, "cannot read an OpenSLO file of the release");
                continue;
            }
        };
        let docs = match openslo::parse_documents(&path, &text) {
            Ok(docs) => docs,
            Err(e) => {
                tracing::warn!(error = %e, "an OpenSLO file of the release does not parse");
                continue;
            }
        };
        let owners = docs.iter().filter_map(|d| match d {
            Document::Slo(slo) => Some(slo.spec.service.clone()),
            _ => None,
        });
        for (owner, converted) in owners.zip(openslo::to_slos(&docs)) {
            match converted {
                Ok(slo) if owner == service => slos.push(slo),
                Ok(_) => {}
                Err(why) => tracing::warn!(file = %path, %why, "an OpenSLO SLO cannot be evaluated"),
            }
        }
    }
    slos
}

/// Every SLO's status at `now`.
pub fn statuses(store: &dyn Store, now: Timestamp) -> Result<Vec<SloStatus>, StoreError> {
    statuses_with(store, &SeriesCache::default(), now)
}

/// Every SLO's status at `now`, reading only what `cache` does not hold yet — for what
/// evaluates every SLO again and again (the alert loop, the API). Forgets the series of SLOs
/// that are gone.
pub fn statuses_with(store: &dyn Store, cache: &SeriesCache, now: Timestamp) -> Result<Vec<SloStatus>, StoreError> {
    statuses_of(store, cache, &definitions(store)?, now)
}

/// [`statuses_with`] for definitions already read (see [`definitions`]).
pub fn statuses_of(
    store: &dyn Store,
    cache: &SeriesCache,
    definitions: &[(String, SloSpec)],
    now: Timestamp,
) -> Result<Vec<SloStatus>, StoreError> {
    let statuses = definitions
        .iter()
        .map(|(service, slo)| status_with(store, cache, service, slo, now))
        .collect::<Result<_, _>>()?;
    cache.retain(&definitions.iter().filter_map(|(service, slo)| key(service, slo)).collect());
    Ok(statuses)
}

/// Which kept series an SLO reads, if it reads the store's counters.
fn key(service: &str, slo: &SloSpec) -> Option<cache::Key> {
    let kind = match &slo.sli {
        Sli::Availability {} => cache::Kind::Availability,
        Sli::Latency { threshold_ms } => cache::Kind::Latency(threshold_ms.value.to_bits()),
        Sli::Prometheus(_) => return None,
    };
    Some(cache::Key {
        service: service.to_owned(),
        environment: slo.environment_name().to_owned(),
        kind,
        window_s: i64::try_from(slo.window_seconds()).unwrap_or(i64::MAX),
    })
}

/// One SLO's status at `now`.
pub fn status(store: &dyn Store, service: &str, slo: &SloSpec, now: Timestamp) -> Result<SloStatus, StoreError> {
    status_with(store, &SeriesCache::default(), service, slo, now)
}

fn status_with(
    store: &dyn Store,
    cache: &SeriesCache,
    service: &str,
    slo: &SloSpec,
    now: Timestamp,
) -> Result<SloStatus, StoreError> {
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
        exhausted_in_s: None,
        hourly_error_ratios: Vec::new(),
        unknown: None,
    };
    let Some(key) = key(service, slo) else {
        // Not the store's counters: a Prometheus SLI.
        if let Sli::Prometheus(source) = &slo.sli {
            let window = slo.window.value.to_string();
            let (query, _) = source.ratio_query();
            let key = format!(
                "{}\n{}\n{query}\n{window}\n{}",
                source.url.value, source.total_query.value, slo.objective.value
            );
            let evaluate = || Prometheus::new(source).and_then(|p| p.evaluate(&window, objective, now_s));
            match cache.prometheus(key, now_s, evaluate) {
                Ok(evaluated) => {
                    status.error_ratios = evaluated.error_ratios;
                    status.burn_rates = evaluated.burn_rates;
                    status.hourly_error_ratios = evaluated.hourly_error_ratios;
                    status.alert = alert_of(&evaluated.rules);
                    status.rules = evaluated.rules;
                    status.budget = Some(evaluated.budget);
                }
                Err(reason) => status.unknown = Some(format!("{reason}: the SLO is unknown, never healthy")),
            }
        }
        status.exhausted_in_s = exhaustion(&status);
        return Ok(status);
    };
    // Rows in time order: (start, requests, bad). An availability SLI reads sums per minute
    // alone; a latency SLI needs each version's histogram.
    let series = cache.series(key, now_s, |from, to| match &slo.sli {
        Sli::Latency { threshold_ms } => Ok(store
            .sli(service, &environment, from, to)?
            .iter()
            .map(|m| (m.minute, Counts::new(m.requests, slow(m, threshold_ms.value))))
            .collect()),
        _ => Ok(store
            .sli_counts(service, &environment, from, to)?
            .into_iter()
            .map(|c| (c.minute, Counts::new(c.requests, c.errors)))
            .collect()),
    })?;
    let budget = Budget::compute(&series, objective, now_s);
    for (name, seconds) in WINDOWS {
        let counts = series.sum(now_s - seconds, now_s);
        status.error_ratios.push((name.to_owned(), counts.error_ratio()));
        status.burn_rates.push((name.to_owned(), budget::burn_rate(&series, objective, seconds, now_s)));
    }
    status.hourly_error_ratios =
        (0..24).rev().map(|h| series.sum(now_s - (h + 1) * 3600, now_s - h * 3600).error_ratio()).collect();
    status.rules = alerts::evaluate(&series, objective, now_s);
    status.alert = alert_of(&status.rules);
    status.recovers_at = budget::recovers_at(&series, objective, now_s).and_then(|s| Timestamp::from_second(s).ok());
    status.budget = Some(budget);
    status.exhausted_in_s = exhaustion(&status);
    Ok(status)
}

/// How long the remaining budget lasts at the last hour's burn rate (0 once it is spent;
/// `None` while nothing burns it, or without a budget).
fn exhaustion(status: &SloStatus) -> Option<f64> {
    let budget = status.budget.as_ref()?;
    if budget.exhausted() {
        return Some(0.0);
    }
    let (_, burn) = status.burn_rates.iter().find(|(window, _)| window == "1h")?;
    (*burn > 0.0).then(|| budget.time_to_exhaustion_s(*burn))
}

/// Checks, when a release is deployed, that every Prometheus SLI source among `slos` answers
/// its queries: an unreachable server is an error at its `url`, a query the server rejects
/// (PromQL that does not parse, say) an error at that query, each as `file:line:col`.
/// Blocking HTTP, like [`status`].
pub fn check_sources(file: &str, slos: &[SloSpec], now: Timestamp) -> Result<(), SourceError> {
    for slo in slos {
        let Sli::Prometheus(source) = &slo.sli else { continue };
        let at = |field: &mobius_slo::spec::Spanned<String>, problem: PrometheusError| SourceError {
            file: file.to_owned(),
            line: field.referenced.line(),
            column: field.referenced.column(),
            slo: slo.name().to_owned(),
            problem: Box::new(problem),
        };
        let prometheus = Prometheus::new(source).map_err(|e| at(&source.url, e))?;
        prometheus.query("vector(1)", now.as_second()).map_err(|e| at(&source.url, e))?;
        let queries = [Some(&source.total_query), source.good_query.as_ref(), source.error_query.as_ref()];
        for query in queries.into_iter().flatten() {
            let shortest = WINDOWS[0].0;
            prometheus.query(&with_window(&query.value, shortest), now.as_second()).map_err(|e| at(query, e))?;
        }
    }
    Ok(())
}

/// A Prometheus SLI source a release names does not answer, at the `url` or query in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: SLO `{slo}`: {problem}")]
pub struct SourceError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub slo: String,
    /// What Prometheus did; part of the message, as the position is what the user acts on.
    pub problem: Box<PrometheusError>,
}

/// The most urgent severity whose rules fire.
fn alert_of(rules: &[RuleState]) -> Option<Severity> {
    [Severity::Page, Severity::Ticket].into_iter().find(|severity| alerts::firing(rules, *severity))
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

/// The error-budget policy's answer about deploying a service to an environment now, as
/// `GET /api/v1/policy/{service}/{environment}`, `mobius slo check` and `mobius/policy-check`
/// steps give it. Asking records nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyCheck {
    pub service: String,
    pub environment: String,
    /// Whether a deploy (or a promotion) would go through.
    pub allowed: bool,
    /// `allow`, `warn`, `exception` (through a freeze for the given reason) or `refuse`.
    pub decision: String,
    /// What the policy says — the budget and when it recovers — when it says anything.
    pub message: Option<String>,
}

/// [`gate`]'s decision as a [`PolicyCheck`].
pub fn check(
    store: &dyn Store,
    service: &str,
    environment: &str,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<PolicyCheck, StoreError> {
    let (allowed, decision, message) = match gate(store, service, environment, reason, now)? {
        Decision::Allow => (true, "allow", None),
        Decision::AllowWithWarning(message) => (true, "warn", Some(message)),
        Decision::AllowAsException { message, .. } => (true, "exception", Some(message)),
        Decision::Refuse(message) => (false, "refuse", Some(message)),
    };
    let message = match message {
        Some(message) => Some(message),
        None => {
            let gated =
                definitions(store)?.iter().any(|(s, slo)| s == service && slo.environment_name() == environment);
            (!gated)
                .then(|| format!("{service} has no SLOs in {environment}: the error-budget policy has nothing to gate"))
        }
    };
    Ok(PolicyCheck {
        service: service.to_owned(),
        environment: environment.to_owned(),
        allowed,
        decision: decision.to_owned(),
        message,
    })
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
    // The SLO's own period, as Sloth records it (`slo:sli_error:ratio_rate30d`): one metric
    // name per distinct period, each SLO under its own.
    let mut periods: Vec<(String, Vec<&SloStatus>)> = Vec::new();
    for s in &evaluated {
        let period = mobius_slo::spec::Window { seconds: u64::try_from(s.window_s).unwrap_or(0) }.to_string();
        if WINDOWS.iter().any(|(w, _)| *w == period) {
            continue;
        }
        match periods.iter_mut().find(|(p, _)| *p == period) {
            Some((_, of)) => of.push(s),
            None => periods.push((period, vec![s])),
        }
    }
    for (period, of) in &periods {
        let _ = writeln!(out, "# TYPE slo:sli_error:ratio_rate{period} gauge");
        for s in of {
            let ratio = s.budget.as_ref().map_or(0.0, |b| b.error_ratio);
            let _ =
                writeln!(out, "slo:sli_error:ratio_rate{period}{{{},sloth_window=\"{period}\"}} {ratio}", labels(s));
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

/// `(hourly_before, drop_before)` at `now_s` for SLOs whose longest window is `longest_s`:
/// minutes fold into hours past the same 48 hours (rounded down to the hour) as in a
/// `Series`, and rows go once older than the longest window plus a day, or 35 days.
pub fn compaction_bounds(now_s: i64, longest_s: i64) -> (i64, i64) {
    use mobius_slo::series::{DEFAULT_RETENTION_S, FINE_SPAN_S, HOUR_S};
    let hourly_before = now_s - FINE_SPAN_S;
    let retention = DEFAULT_RETENTION_S.max(longest_s.saturating_add(24 * HOUR_S));
    let drop_before = now_s.saturating_sub(retention);
    (hourly_before - hourly_before.rem_euclid(HOUR_S), drop_before - drop_before.rem_euclid(HOUR_S))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_for_the_longest_window_and_a_day() {
        let day = 86_400;
        let now = 100 * day + 1_800;
        let (hourly, drop) = compaction_bounds(now, 30 * day);
        assert_eq!(hourly, 98 * day, "48 hours back, rounded down to the hour");
        assert_eq!(drop, 65 * day, "35 days (more than 30 + 1) back, rounded down to the hour");
        assert_eq!(compaction_bounds(now, 90 * day).1, 9 * day, "a 90-day window keeps 91 days");
        assert!(compaction_bounds(now, i64::MAX).1 < 0, "an endless window keeps everything, without overflow");
    }

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

    /// The error-budget policy on an injected clock: a month of good traffic, then an hour in
    /// which everything fails. Production deploys are refused from then until the refusal's
    /// recovery time, except as a hotfix; downsampling the counters changes no decision.
    #[test]
    fn an_exhausted_budget_freezes_production_until_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = mobius_store::SqliteStore::open(dir.path()).unwrap();
        let yaml = "service: shop\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\n  - name: staging\n    listen: 127.0.0.1:10\nslos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";
        let day = 86_400;
        let start = Timestamp::from_second(1_767_225_600).unwrap(); // 2026-01-01T00:00Z
        let outage = start.as_second() + 40 * day;
        crate::testing::deployed(&store, yaml, start);
        let row = |minute: i64, requests: u64, errors: u64| SliMinute {
            service: "shop".into(),
            environment: "production".into(),
            version: "v1".into(),
            minute,
            requests,
            errors,
            latency: vec![requests],
        };
        // 6,000 good requests an hour for 71 days, but for the outage's hour: 200 a minute,
        // all failing (12,000 errors against a budget of about 4,300).
        let mut rows: Vec<SliMinute> = (0..71 * 24)
            .map(|h| start.as_second() + h * 3_600)
            .filter(|&t| t != outage)
            .map(|t| row(t, 6_000, 0))
            .collect();
        rows.extend((0..60).map(|m| row(outage + m * 60, 200, 200)));
        store.add_sli(&rows).unwrap();
        let at = |s: i64| Timestamp::from_second(s).unwrap();
        let gate_at = |s: i64, environment: &str, reason| gate(&store, "shop", environment, reason, at(s)).unwrap();

        assert_eq!(gate_at(outage, "production", None), Decision::Allow, "before the outage");
        let after = outage + 3_600;
        let Decision::Refuse(message) = gate_at(after, "production", None) else {
            panic!("an exhausted budget freezes")
        };
        assert!(message.contains("error budget exhausted") && message.contains("12,000 of"), "{message}");
        assert!(message.contains("until about") && message.contains("--reason hotfix"), "{message}");
        assert!(
            matches!(
                gate_at(after, "production", Some(Reason::Hotfix)),
                Decision::AllowAsException { reason: Reason::Hotfix, .. }
            ),
            "a hotfix goes through as an exception"
        );
        assert_eq!(gate_at(after, "staging", None), Decision::Allow, "only production is frozen");
        let asked = check(&store, "shop", "production", None, at(after)).unwrap();
        assert_eq!((asked.allowed, asked.decision.as_str(), asked.message), (false, "refuse", Some(message.clone())));
        let unknown = check(&store, "cart", "production", None, at(after)).unwrap();
        assert!(unknown.allowed && unknown.message.unwrap().contains("has no SLOs"));

        let slo = &definitions(&store).unwrap()[0].1;
        assert_eq!(status(&store, "shop", slo, at(outage)).unwrap().exhausted_in_s, None, "nothing burns it");
        let half = status(&store, "shop", slo, at(outage + 600)).unwrap();
        let (left, burn) = (half.budget.as_ref().unwrap().remaining, half.burn_rates[2].1);
        let expected = left * 30.0 * 86_400.0 / burn;
        assert!((half.exhausted_in_s.unwrap() - expected).abs() < 1.0, "{half:?}");
        assert_eq!(status(&store, "shop", slo, at(after)).unwrap().exhausted_in_s, Some(0.0));
        let recovers = status(&store, "shop", slo, at(after)).unwrap().recovers_at.expect("exhausted").as_second();
        assert!(recovers > outage + 30 * day && recovers <= outage + 30 * day + 3_600, "{recovers}");
        assert!(matches!(gate_at(outage + 30 * day - 3_600, "production", None), Decision::Refuse(_)), "still frozen");
        assert_eq!(gate_at(recovers, "production", None), Decision::Allow, "recovered when it said it would");

        // Three days on, the outage's minutes are older than 48 hours and fold into an hour.
        let later = outage + 3 * day;
        let before = status(&store, "shop", slo, at(later)).unwrap();
        let (hourly_before, drop_before) = compaction_bounds(later, 30 * day);
        let report = store.compact_sli(hourly_before, drop_before).unwrap();
        assert_eq!(report.folded, 59, "all the outage's minutes but the one at the hour's start");
        assert!(report.dropped > 0, "hours older than 35 days go");
        let compacted = status(&store, "shop", slo, at(later)).unwrap();
        assert_eq!(compacted.budget, before.budget);
        assert_eq!(compacted.recovers_at, before.recovers_at);
        assert_eq!(compacted.burn_rates, before.burn_rates);
    }
}
