//! A Prometheus SLI's source, read through Prometheus's HTTP API: instant queries for each
//! window, one range query for the last 24 hours, sent at once from scoped threads. Blocking.

use std::collections::HashMap;

use mobius_slo::alerts::{self, DEFAULT_MIN_REQUESTS, RuleState};
use mobius_slo::budget::{Budget, Objective};
use mobius_slo::series::Counts;
use mobius_slo::spec::{PrometheusSli, Window, with_window};

use super::WINDOWS;
use crate::redact;

/// Why a Prometheus SLI could not be read. URLs are shown without credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrometheusError {
    #[error("cannot build an HTTP client: {reason}")]
    Client { reason: String },
    #[error("Prometheus at {url} cannot be queried: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} answered {status} without a JSON body: {reason}")]
    NotJson { url: String, status: u16, reason: String },
    #[error("Prometheus at {url} answered {status} to `{query}`: {error}")]
    Refused { url: String, status: u16, query: String, error: String },
    #[error("Prometheus at {url} answered a {kind} to `{query}`; an SLI query must give a vector or a scalar")]
    NotAVector { url: String, kind: String, query: String },
    #[error("Prometheus at {url} answered a range query without a matrix")]
    NotAMatrix { url: String },
    #[error("Prometheus at {url}: no value in {sample}")]
    NoValue { url: String, sample: String },
    #[error("Prometheus at {url}: `{text}` is not a number")]
    NotANumber { url: String, text: String },
    #[error("a Prometheus query panicked")]
    Panicked,
}

/// How long one Prometheus query may take.
const PROMETHEUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A Prometheus SLI's source, queried through the HTTP API (`/api/v1/query`).
pub(super) struct Prometheus<'a> {
    client: reqwest::blocking::Client,
    source: &'a PrometheusSli,
    /// The URL as messages show it: without credentials.
    shown: String,
}

/// What a Prometheus SLI gives at one instant.
#[derive(Clone)]
pub(super) struct Evaluated {
    pub(super) budget: Budget,
    pub(super) error_ratios: Vec<(String, f64)>,
    pub(super) burn_rates: Vec<(String, f64)>,
    pub(super) rules: Vec<RuleState>,
    pub(super) hourly_error_ratios: Vec<f64>,
}

impl<'a> Prometheus<'a> {
    pub(super) fn new(source: &'a PrometheusSli) -> Result<Prometheus<'a>, PrometheusError> {
        crate::install_tls_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(PROMETHEUS_TIMEOUT)
            .build()
            .map_err(|e| PrometheusError::Client { reason: redact::http_error(e) })?;
        let shown = redact::server_url(&source.url.value).trim_end_matches('/').to_owned();
        Ok(Prometheus { client, source, shown })
    }

    /// The budget over the SLO's `window`, the ratios and burn rates over [`WINDOWS`], the
    /// rules from those windows' counts and the last 24 hours, all as of `now_s`.
    ///
    /// That is 18 queries (a pair per window, and one range query per expression for the 24
    /// hours), sent at once from one thread per window, so a slow Prometheus costs about
    /// three of its slowest answers rather than their sum.
    pub(super) fn evaluate(
        &self,
        window: &str,
        objective: Objective,
        now_s: i64,
    ) -> Result<Evaluated, PrometheusError> {
        let (budget_counts, per_window, hourly) = std::thread::scope(|scope| {
            let budget = scope.spawn(|| self.counts(window, now_s));
            let windows: Vec<_> =
                WINDOWS.iter().map(|(name, _)| scope.spawn(move || self.counts(name, now_s))).collect();
            let hourly = self.hourly_counts(now_s);
            let join = |handle: std::thread::ScopedJoinHandle<'_, Result<Counts, PrometheusError>>| {
                handle.join().unwrap_or(Err(PrometheusError::Panicked))
            };
            let per_window = windows.into_iter().map(join).collect::<Result<Vec<Counts>, PrometheusError>>();
            (join(budget), per_window, hourly)
        });
        let budget = Budget::from_counts(objective, budget_counts?);
        let per_window: Vec<(i64, Counts)> = WINDOWS.iter().map(|(_, s)| *s).zip(per_window?).collect();
        let error_ratios =
            WINDOWS.iter().zip(&per_window).map(|((n, _), (_, c))| ((*n).to_owned(), c.error_ratio())).collect();
        let burn_rates = WINDOWS
            .iter()
            .zip(&per_window)
            .map(|((n, _), (_, c))| ((*n).to_owned(), objective.burn_rate(c.error_ratio())))
            .collect();
        // Every rule's windows are among WINDOWS.
        let rules = alerts::evaluate_counts(objective, DEFAULT_MIN_REQUESTS, |len| {
            per_window.iter().find(|(s, _)| *s == len).map_or(Counts::ZERO, |(_, c)| *c)
        });
        let hourly_error_ratios = hourly?.iter().map(Counts::error_ratio).collect();
        Ok(Evaluated { budget, error_ratios, burn_rates, rules, hourly_error_ratios })
    }

    /// Events in each of the 24 hours ending at `now_s`, oldest first: one range query per
    /// expression, evaluated hourly over `1h` windows.
    fn hourly_counts(&self, now_s: i64) -> Result<Vec<Counts>, PrometheusError> {
        let (start, end) = (now_s - 23 * 3600, now_s);
        let (query, counts_good) = self.source.ratio_query();
        let (total, other) = std::thread::scope(|scope| {
            let total = scope.spawn(|| self.range(&self.source.total_query.value, start, end));
            let other = self.range(query, start, end);
            (total.join().unwrap_or(Err(PrometheusError::Panicked)), other)
        });
        let (total, other) = (total?, other?);
        Ok((0..24)
            .map(|h| {
                let at = start + h * 3600;
                let total = total.get(&at).copied().unwrap_or(0.0);
                let other = other.get(&at).copied().unwrap_or(0.0);
                to_counts(total, if counts_good { total - other } else { other })
            })
            .collect())
    }

    /// Events over `1h` at each hour from `start_s` to `end_s`, by instant: a range query whose
    /// series are summed per instant (absent instants are 0).
    fn range(&self, query: &str, start_s: i64, end_s: i64) -> Result<HashMap<i64, f64>, PrometheusError> {
        let scale = if per_second(query) { 3600.0 } else { 1.0 };
        let data = self.api(
            "query_range",
            &with_window(query, "1h"),
            &[("start", start_s.to_string()), ("end", end_s.to_string()), ("step", "3600".to_owned())],
        )?;
        let url = &self.shown;
        if data["resultType"] != "matrix" {
            return Err(PrometheusError::NotAMatrix { url: url.clone() });
        }
        let mut sums = HashMap::new();
        for series in data["result"].as_array().into_iter().flatten() {
            for point in series["values"].as_array().into_iter().flatten() {
                let at = point[0].as_f64().map_or(0, |t| t.round() as i64);
                *sums.entry(at).or_insert(0.0) += sample(url, point)? * scale;
            }
        }
        Ok(sums)
    }

    /// Total and bad events over `window` ending at `at_s`: bad is the error query, or the
    /// total less the good query (rounded to whole events, bad at most the total).
    fn counts(&self, window: &str, at_s: i64) -> Result<Counts, PrometheusError> {
        let seconds = Window::parse(window).map_or(0.0, |w| w.seconds as f64);
        let total = self.events(&self.source.total_query.value, window, seconds, at_s)?;
        let (query, counts_good) = self.source.ratio_query();
        let other = self.events(query, window, seconds, at_s)?;
        Ok(to_counts(total, if counts_good { total - other } else { other }))
    }

    /// Events over `window` (of `seconds`) ending at `at_s`. A query written with `rate(` and
    /// no `increase(` (Sloth's style) answers per second: it is multiplied by the window's
    /// seconds, which is exactly `increase` in PromQL.
    fn events(&self, query: &str, window: &str, seconds: f64, at_s: i64) -> Result<f64, PrometheusError> {
        let value = self.query(&with_window(query, window), at_s)?;
        Ok(if per_second(query) { value * seconds } else { value })
    }

    /// An instant query's value at `at_s`: the sum of a vector's samples (0 when empty), or a
    /// scalar.
    pub(super) fn query(&self, query: &str, at_s: i64) -> Result<f64, PrometheusError> {
        let data = self.api("query", query, &[("time", at_s.to_string())])?;
        let url = &self.shown;
        match data["resultType"].as_str() {
            Some("vector") => data["result"].as_array().map_or(Ok(0.0), |samples| {
                samples.iter().map(|s| sample(url, &s["value"])).sum::<Result<f64, PrometheusError>>()
            }),
            Some("scalar") => sample(url, &data["result"]),
            other => Err(PrometheusError::NotAVector {
                url: url.clone(),
                kind: other.unwrap_or("result of no type").to_owned(),
                query: query.to_owned(),
            }),
        }
    }

    /// `GET {url}/api/v1/{endpoint}?query=…&…`: the `data` of a successful answer.
    fn api(
        &self,
        endpoint: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<serde_json::Value, PrometheusError> {
        let target = format!("{}/api/v1/{endpoint}", self.source.url.value.trim_end_matches('/'));
        let url = format!("{}/api/v1/{endpoint}", self.shown);
        let response = self
            .client
            .get(&target)
            .query(&[("query", query)])
            .query(params)
            .send()
            .map_err(|e| PrometheusError::Unreachable { url: url.clone(), reason: redact::http_error(e) })?;
        let code = response.status();
        let mut body: serde_json::Value = response.json().map_err(|e| PrometheusError::NotJson {
            url: url.clone(),
            status: code.as_u16(),
            reason: redact::http_error(e),
        })?;
        if body["status"] != "success" {
            let error = body["error"].as_str().unwrap_or("no error message").to_owned();
            return Err(PrometheusError::Refused { url, status: code.as_u16(), query: query.to_owned(), error });
        }
        Ok(body["data"].take())
    }
}

/// A sample's value (`[time, "value"]`); NaN (no events to divide by) is 0.
fn sample(url: &str, sample: &serde_json::Value) -> Result<f64, PrometheusError> {
    let text = sample[1]
        .as_str()
        .ok_or_else(|| PrometheusError::NoValue { url: url.to_owned(), sample: sample.to_string() })?;
    let value: f64 =
        text.parse().map_err(|_| PrometheusError::NotANumber { url: url.to_owned(), text: text.to_owned() })?;
    Ok(if value.is_nan() { 0.0 } else { value })
}

/// Whole events from a total and a bad count as Prometheus gives them (fractional, since
/// `increase` extrapolates): rounded, bad at most the total, negatives 0.
fn to_counts(total: f64, bad: f64) -> Counts {
    // `as` saturates: negative and NaN become 0.
    let total = total.round() as u64;
    Counts::new(total, (bad.round() as u64).min(total))
}

/// Whether a query answers events per second rather than events: it takes a `rate(` and no
/// `increase(`.
fn per_second(query: &str) -> bool {
    query.contains("rate(") && !query.contains("increase(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_queries_are_read_per_second() {
        assert!(per_second("sum(rate(http_requests_total{code=~\"5..\"}[{{window}}]))"));
        assert!(!per_second("sum(increase(http_requests_total[{{window}}]))"));
        assert!(!per_second("sum(http_requests_total)"));
    }
}
