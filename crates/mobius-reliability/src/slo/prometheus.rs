//! A Prometheus SLI's source, read through Prometheus's HTTP API: instant queries for each
//! window, one range query for the last 24 hours, sent at once from scoped threads. Blocking.

use std::collections::HashMap;

use mobius_slo::alerts::{self, DEFAULT_MIN_REQUESTS, RuleState};
use mobius_slo::budget::{Budget, Objective};
use mobius_slo::series::Counts;
use mobius_slo::spec::{PrometheusSli, Window, with_window};

use super::WINDOWS;
use crate::redact;

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
    pub(super) fn new(source: &'a PrometheusSli) -> Result<Prometheus<'a>, String> {
        crate::install_tls_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(PROMETHEUS_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {}", redact::http_error(e)))?;
        let shown = redact::server_url(&source.url.value).trim_end_matches('/').to_owned();
        Ok(Prometheus { client, source, shown })
    }

    /// The budget over the SLO's `window`, the ratios and burn rates over [`WINDOWS`], the
    /// rules from those windows' counts and the last 24 hours, all as of `now_s`.
    ///
    /// That is 18 queries (a pair per window, and one range query per expression for the 24
    /// hours), sent at once from one thread per window, so a slow Prometheus costs about
    /// three of its slowest answers rather than their sum.
    pub(super) fn evaluate(&self, window: &str, objective: Objective, now_s: i64) -> Result<Evaluated, String> {
        let (budget_counts, per_window, hourly) = std::thread::scope(|scope| {
            let budget = scope.spawn(|| self.counts(window, now_s));
            let windows: Vec<_> =
                WINDOWS.iter().map(|(name, _)| scope.spawn(move || self.counts(name, now_s))).collect();
            let hourly = self.hourly_counts(now_s);
            let join = |handle: std::thread::ScopedJoinHandle<'_, Result<Counts, String>>| {
                handle.join().unwrap_or_else(|_| Err("a Prometheus query panicked".to_owned()))
            };
            let per_window = windows.into_iter().map(join).collect::<Result<Vec<Counts>, String>>();
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
    fn hourly_counts(&self, now_s: i64) -> Result<Vec<Counts>, String> {
        let (start, end) = (now_s - 23 * 3600, now_s);
        let (query, counts_good) = self.source.ratio_query();
        let (total, other) = std::thread::scope(|scope| {
            let total = scope.spawn(|| self.range(&self.source.total_query.value, start, end));
            let other = self.range(query, start, end);
            (total.join().unwrap_or_else(|_| Err("a Prometheus query panicked".to_owned())), other)
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
    fn range(&self, query: &str, start_s: i64, end_s: i64) -> Result<HashMap<i64, f64>, String> {
        let scale = if per_second(query) { 3600.0 } else { 1.0 };
        let data = self.api(
            "query_range",
            &with_window(query, "1h"),
            &[("start", start_s.to_string()), ("end", end_s.to_string()), ("step", "3600".to_owned())],
        )?;
        let url = &self.shown;
        if data["resultType"] != "matrix" {
            return Err(format!("Prometheus at {url} answered a range query without a matrix"));
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
    fn counts(&self, window: &str, at_s: i64) -> Result<Counts, String> {
        let seconds = Window::parse(window).map_or(0.0, |w| w.seconds as f64);
        let total = self.events(&self.source.total_query.value, window, seconds, at_s)?;
        let (query, counts_good) = self.source.ratio_query();
        let other = self.events(query, window, seconds, at_s)?;
        Ok(to_counts(total, if counts_good { total - other } else { other }))
    }

    /// Events over `window` (of `seconds`) ending at `at_s`. A query written with `rate(` and
    /// no `increase(` (Sloth's style) answers per second: it is multiplied by the window's
    /// seconds, which is exactly `increase` in PromQL.
    fn events(&self, query: &str, window: &str, seconds: f64, at_s: i64) -> Result<f64, String> {
        let value = self.query(&with_window(query, window), at_s)?;
        Ok(if per_second(query) { value * seconds } else { value })
    }

    /// An instant query's value at `at_s`: the sum of a vector's samples (0 when empty), or a
    /// scalar.
    pub(super) fn query(&self, query: &str, at_s: i64) -> Result<f64, String> {
        let data = self.api("query", query, &[("time", at_s.to_string())])?;
        let url = &self.shown;
        match data["resultType"].as_str() {
            Some("vector") => data["result"].as_array().map_or(Ok(0.0), |samples| {
                samples.iter().map(|s| sample(url, &s["value"])).sum::<Result<f64, String>>()
            }),
            Some("scalar") => sample(url, &data["result"]),
            other => Err(format!(
                "Prometheus at {url} answered a {} to `{query}`; an SLI query must give a vector or a scalar",
                other.unwrap_or("result of no type")
            )),
        }
    }

    /// `GET {url}/api/v1/{endpoint}?query=…&…`: the `data` of a successful answer.
    fn api(&self, endpoint: &str, query: &str, params: &[(&str, String)]) -> Result<serde_json::Value, String> {
        let target = format!("{}/api/v1/{endpoint}", self.source.url.value.trim_end_matches('/'));
        let url = format!("{}/api/v1/{endpoint}", self.shown);
        let response = self
            .client
            .get(&target)
            .query(&[("query", query)])
            .query(params)
            .send()
            .map_err(|e| format!("Prometheus at {url} cannot be queried: {}", redact::http_error(e)))?;
        let code = response.status();
        let mut body: serde_json::Value = response.json().map_err(|e| {
            format!("Prometheus at {url} answered {code} without a JSON body: {}", redact::http_error(e))
        })?;
        if body["status"] != "success" {
            let error = body["error"].as_str().unwrap_or("no error message");
            return Err(format!("Prometheus at {url} answered {code} to `{query}`: {error}"));
        }
        Ok(body["data"].take())
    }
}

/// A sample's value (`[time, "value"]`); NaN (no events to divide by) is 0.
fn sample(url: &str, sample: &serde_json::Value) -> Result<f64, String> {
    let text = sample[1].as_str().ok_or_else(|| format!("Prometheus at {url}: no value in {sample}"))?;
    let value: f64 = text.parse().map_err(|_| format!("Prometheus at {url}: `{text}` is not a number"))?;
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
