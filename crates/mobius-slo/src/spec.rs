//! The SLO definition Mobius uses: the `slos:` list of a `mobius.yaml`, or a file of SLOs.
//!
//! ```yaml
//! slos:
//!   - name: availability
//!     description: Requests that do not fail
//!     objective: 99.9            # percent, strictly between 0 and 100
//!     window: 30d                # rolling; default 30d (28d, 7d, 1h, 2w… also read)
//!     sli: {availability: {}}    # non-5xx ÷ all, from the proxy's per-version SLIs
//!     environment: production    # default production
//!     policy: freeze             # freeze (default) | warn | off
//!     alerting:
//!       webhooks: [https://hooks.example.com/mobius]
//!       slack: [https://hooks.slack.com/services/T000/B000/XXX]
//!       quiet_period: 5m         # a page's incident resolves once the page stayed resolved this long
//!   - name: fast-checkout
//!     objective: 99
//!     sli: {latency: {threshold_ms: 300}}   # requests answered under 300 ms ÷ all
//!   - name: api-errors
//!     objective: 99.5
//!     window: 28d
//!     sli:
//!       prometheus:
//!         url: http://127.0.0.1:9090
//!         error_query: sum(rate(http_requests_total{job="api",code=~"5.."}[{{window}}]))
//!         total_query: sum(rate(http_requests_total{job="api"}[{{window}}]))
//! ```
//!
//! A Prometheus SLI gives `total_query` and exactly one of `good_query` or `error_query`, each
//! with the `{{window}}` placeholder (Sloth's `{{.window}}` is read too) that Mobius replaces by
//! the window it evaluates (`5m`, `1h`, `30d`…).
//!
//! Parsing is typed (unknown keys and unknown SLI kinds are errors from the YAML library, at
//! their position); the checks serde cannot express are made after, and every error says
//! `file:line:col`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Location;
pub use serde_saphyr::Spanned;

/// One service level objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Names the SLO in the service: letters, digits, `-` or `_` (it names metrics and URLs).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the SLO promises, in words.
    #[serde(default)]
    pub description: Option<String>,
    /// The percentage of good events promised, strictly between 0 and 100 (e.g. 99.9).
    #[schemars(with = "f64")]
    pub objective: Spanned<f64>,
    /// The rolling window the objective holds over, e.g. `30d` (the default) or `28d`.
    #[serde(default = "default_window")]
    #[schemars(with = "Window")]
    pub window: Spanned<Window>,
    /// How good and bad events are counted.
    pub sli: Sli,
    /// The environment whose traffic counts (default `production`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// What an exhausted error budget does to deploys.
    #[serde(default)]
    pub policy: Policy,
    /// Where burn-rate alerts are sent, beside the event log.
    #[serde(default)]
    pub alerting: Option<Alerting>,
}

/// The service level indicator: how good and bad events are counted.
// Definitions are read once and kept few; boxing the larger variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sli {
    /// Requests not answered 5xx ÷ all requests, from the proxy's per-version SLIs
    /// (`availability: {}`).
    Availability {},
    /// Requests answered within `threshold_ms` ÷ all requests, from the proxy's latency
    /// histograms.
    Latency {
        /// The latency a request must beat to count as good, in milliseconds.
        #[schemars(with = "f64")]
        threshold_ms: Spanned<f64>,
    },
    /// Ratios queried from a Prometheus server through its HTTP query API.
    Prometheus(PrometheusSli),
}

/// An SLI read from Prometheus: `total_query` and one of `good_query` or `error_query`, each an
/// instant PromQL query with the `{{window}}` placeholder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSli {
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Good events over `{{window}}` (then bad = total − good).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub good_query: Option<Spanned<String>>,
    /// Bad events over `{{window}}` (Sloth's `error_query`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub error_query: Option<Spanned<String>>,
    /// All events over `{{window}}`.
    #[schemars(with = "String")]
    pub total_query: Spanned<String>,
}

/// What an exhausted error budget does (the workbook's error-budget policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Refuse deploys and promotions to production, except hotfixes and security fixes.
    #[default]
    Freeze,
    /// Let them through with a warning.
    Warn,
    /// Ignore the budget.
    Off,
}

/// Where an SLO's alerts are sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    /// URLs that receive each alert as generic JSON.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub webhooks: Vec<Spanned<String>>,
    /// Slack incoming-webhook URLs (or anything that takes Slack's body).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub slack: Vec<Spanned<String>>,
    /// How long a resolved page must stay resolved before the incident it opened is resolved
    /// too (default 5m; at most 1d).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub quiet_period: Option<Spanned<Window>>,
    /// How long the rules must keep firing before an alert fires — Prometheus's `for`; until
    /// then the alert is pending (default 0s: the short window already is the "still burning"
    /// check, and the workbook advises against durations; at most 1h).
    #[serde(default, rename = "for")]
    #[schemars(with = "Option<String>")]
    pub pending_for: Option<Spanned<Window>>,
}

/// A page's incident resolves once the page has stayed resolved this long, by default.
pub const DEFAULT_QUIET_PERIOD: Window = Window { seconds: 300 };

/// The longest quiet period.
pub const MAX_QUIET_PERIOD: Window = Window { seconds: 86_400 };

/// The longest `for`.
pub const MAX_PENDING_FOR: Window = Window { seconds: 3_600 };

impl Alerting {
    /// The quiet period, or [`DEFAULT_QUIET_PERIOD`].
    pub fn quiet_period(&self) -> Window {
        self.quiet_period.as_ref().map_or(DEFAULT_QUIET_PERIOD, |q| q.value)
    }

    /// The `for`, or 0.
    pub fn pending_for(&self) -> Window {
        self.pending_for.as_ref().map_or(Window { seconds: 0 }, |f| f.value)
    }
}

/// A rolling window, in seconds; written `30d`, `28d`, `2w`, `7d`, `1h`, `90m` or `3600s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub seconds: u64,
}

/// The longest window Mobius keeps SLI history for.
pub const MAX_WINDOW: Window = Window { seconds: 366 * 86_400 };

impl Window {
    /// 30 days, the default.
    pub const THIRTY_DAYS: Window = Window { seconds: 30 * 86_400 };

    /// Reads `<integer><s|m|h|d|w>`; `None` for anything else (months are not a fixed length).
    pub fn parse(text: &str) -> Option<Window> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).filter(|i| *i > 0)?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok()?;
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return None,
        };
        Some(Window { seconds: n.checked_mul(unit)? })
    }
}

impl fmt::Display for Window {
    /// The largest of d, h, m, s that divides the window (`28d`, not `4w`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match s {
            0 => write!(f, "0s"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Window, D::Error> {
        let text = String::deserialize(deserializer)?;
        Window::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a window like 30d, 28d, 7d or 1h")))
    }
}

impl JsonSchema for Window {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Window".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A rolling window: 30d, 28d, 2w, 7d, 1h, 90m or 3600s.",
            "type": "string",
            "pattern": "^[0-9]+(s|m|h|d|w)$"
        })
    }
}

fn default_window() -> Spanned<Window> {
    unspanned(Window::THIRTY_DAYS)
}

/// A value that was not read from a file (a default, or converted from OpenSLO), at line 0.
pub fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// What is wrong with an SLO, and where (line 0 when the value was not read from a file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub at: Location,
    pub message: String,
}

/// Why a file of SLOs (or an OpenSLO file) was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl SpecError {
    /// The error at `at` in `file`.
    pub fn at(file: &str, at: Location, message: String) -> SpecError {
        SpecError { file: file.to_owned(), line: at.line(), column: at.column(), message }
    }

    /// A YAML library error, with its position and its first line as the message.
    pub fn from_yaml(file: &str, err: &serde_saphyr::Error) -> SpecError {
        let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
        let rendered = err.without_snippet().to_string();
        let mut message = rendered.lines().next().unwrap_or("invalid YAML").to_owned();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        SpecError { file: file.to_owned(), line, column, message }
    }
}

/// The options Mobius parses its YAML with: booleans are `true`/`false` only, and a key given
/// twice is an error.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options
}

/// The environment an SLO counts when it names none.
pub const DEFAULT_ENVIRONMENT: &str = "production";

impl SloSpec {
    /// The SLO's name.
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// The objective as a fraction (99.9 → 0.999).
    pub fn target(&self) -> f64 {
        self.objective.value / 100.0
    }

    /// The fraction of events allowed to be bad: 1 − objective/100 (99.9 → 0.001).
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective.value / 100.0
    }

    /// The rolling window, in seconds.
    pub fn window_seconds(&self) -> u64 {
        self.window.value.seconds
    }

    /// The environment whose traffic counts: the one named, else `production`.
    pub fn environment_name(&self) -> &str {
        self.environment.as_ref().map_or(DEFAULT_ENVIRONMENT, |e| e.value.as_str())
    }

    /// The checks serde cannot make, with the position of the value at fault.
    pub fn check(&self) -> Result<(), Invalid> {
        let invalid = |at: Location, message: String| Invalid { at, message };
        let name = &self.name;
        if !valid_name(&name.value) {
            return Err(invalid(
                name.referenced,
                format!("SLO name `{}` must be 1 to 63 letters, digits, `-` or `_`", name.value),
            ));
        }
        let objective = &self.objective;
        if !(objective.value > 0.0 && objective.value < 100.0) {
            return Err(invalid(
                objective.referenced,
                format!("`objective`: {} is not a percentage strictly between 0 and 100 (e.g. 99.9)", objective.value),
            ));
        }
        let window = &self.window;
        if window.value.seconds == 0 || window.value > MAX_WINDOW {
            return Err(invalid(
                window.referenced,
                format!("`window`: {} is not between 1s and {}", window.value, MAX_WINDOW),
            ));
        }
        if let Some(environment) = &self.environment
            && !valid_name(&environment.value)
        {
            return Err(invalid(
                environment.referenced,
                format!("`environment`: `{}` must be letters, digits, `-` or `_`", environment.value),
            ));
        }
        match &self.sli {
            Sli::Availability {} => {}
            Sli::Latency { threshold_ms } => {
                if !(threshold_ms.value.is_finite() && threshold_ms.value > 0.0) {
                    return Err(invalid(
                        threshold_ms.referenced,
                        format!("`threshold_ms`: {} must be above 0", threshold_ms.value),
                    ));
                }
            }
            Sli::Prometheus(prometheus) => prometheus.check()?,
        }
        if let Some(alerting) = &self.alerting {
            for url in alerting.webhooks.iter().chain(&alerting.slack) {
                check_url(url, "alerting")?;
            }
            if let Some(quiet) = &alerting.quiet_period
                && quiet.value > MAX_QUIET_PERIOD
            {
                return Err(invalid(
                    quiet.referenced,
                    format!("`alerting.quiet_period`: {} is longer than {}", quiet.value, MAX_QUIET_PERIOD),
                ));
            }
            if let Some(pending) = &alerting.pending_for
                && pending.value > MAX_PENDING_FOR
            {
                return Err(invalid(
                    pending.referenced,
                    format!("`alerting.for`: {} is longer than {}", pending.value, MAX_PENDING_FOR),
                ));
            }
        }
        Ok(())
    }
}

impl PrometheusSli {
    /// The query that counts bad events, as `(query, counts_good)`: `good_query` when given
    /// (bad = total − good), else `error_query`.
    pub fn ratio_query(&self) -> (&str, bool) {
        match (&self.good_query, &self.error_query) {
            (Some(good), _) => (&good.value, true),
            (None, Some(error)) => (&error.value, false),
            (None, None) => ("", false),
        }
    }

    fn check(&self) -> Result<(), Invalid> {
        check_url(&self.url, "prometheus.url")?;
        match (&self.good_query, &self.error_query) {
            (Some(_), Some(error)) => {
                return Err(Invalid {
                    at: error.referenced,
                    message: "`good_query` and `error_query` are both given: keep one".to_owned(),
                });
            }
            (None, None) => {
                return Err(Invalid {
                    at: self.total_query.referenced,
                    message: "a Prometheus SLI needs `good_query` or `error_query` beside `total_query`".to_owned(),
                });
            }
            _ => {}
        }
        let queries = [("good_query", &self.good_query), ("error_query", &self.error_query)];
        for (field, query) in
            queries.iter().filter_map(|(f, q)| q.as_ref().map(|q| (f, q))).chain([(&"total_query", &self.total_query)])
        {
            if query.value.trim().is_empty() {
                return Err(Invalid { at: query.referenced, message: format!("`{field}` is empty") });
            }
            if !has_window_placeholder(&query.value) {
                return Err(Invalid {
                    at: query.referenced,
                    message: format!("`{field}` has no `{{{{window}}}}` placeholder (e.g. `rate(x[{{{{window}}}}])`)"),
                });
            }
        }
        Ok(())
    }
}

fn check_url(url: &Spanned<String>, field: &str) -> Result<(), Invalid> {
    let ok = ["http://", "https://"]
        .iter()
        .any(|scheme| url.value.strip_prefix(scheme).is_some_and(|rest| !rest.is_empty() && !rest.contains(' ')));
    if ok {
        Ok(())
    } else {
        // Not echoed: a webhook's URL is often its secret, and the position says which it is.
        Err(Invalid {
            at: url.referenced, message: format!("`{field}`: not an http(s) URL (http://… or https://…)")
        })
    }
}

/// Where `{{window}}` (or Sloth's `{{.window}}`, spaces allowed) is in `query`: `(start, end)`.
fn find_placeholder(query: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = query[from..].find("{{") {
        let start = from + i;
        let rest = &query[start + 2..];
        let end = rest.find("}}")?;
        let inner = rest[..end].trim();
        if inner == "window" || inner == ".window" {
            return Some((start, start + 2 + end + 2));
        }
        from = start + 2;
    }
    None
}

/// Whether `query` holds the window placeholder.
pub fn has_window_placeholder(query: &str) -> bool {
    find_placeholder(query).is_some()
}

/// `query` with every window placeholder replaced by `window` (e.g. `5m`).
pub fn with_window(query: &str, window: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some((start, end)) = find_placeholder(rest) {
        out.push_str(&rest[..start]);
        out.push_str(window);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Letters, digits, `-` and `_`, 1 to 63 of them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks a list of SLOs: each one, and that no name is used twice.
pub fn check_all(slos: &[SloSpec]) -> Result<(), Invalid> {
    for (i, slo) in slos.iter().enumerate() {
        slo.check()?;
        if slos[..i].iter().any(|other| other.name.value == slo.name.value) {
            return Err(Invalid {
                at: slo.name.referenced,
                message: format!("SLO `{}` is listed twice", slo.name.value),
            });
        }
    }
    Ok(())
}

/// Parses and checks a YAML list of SLOs (read from `file`, which errors name).
pub fn parse_slos(file: &str, text: &str) -> Result<Vec<SloSpec>, SpecError> {
    let slos: Vec<SloSpec> =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| SpecError::from_yaml(file, &e))?;
    check_all(&slos).map_err(|e| SpecError::at(file, e.at, e.message))?;
    Ok(slos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_and_print() {
        for (text, seconds, shown) in [
            ("30d", 30 * 86_400, "30d"),
            ("28d", 28 * 86_400, "28d"),
            ("2w", 14 * 86_400, "14d"),
            ("1h", 3600, "1h"),
            ("90m", 5400, "90m"),
            ("45s", 45, "45s"),
        ] {
            let window = Window::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!((window.seconds, window.to_string().as_str()), (seconds, shown), "{text}");
        }
        for bad in ["", "d", "30", "1M", "thirty days", "1.5d", "-1d", "30 d"] {
            assert_eq!(Window::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn placeholders_are_found_and_replaced() {
        let q = "sum(rate(x[{{window}}])) / sum(rate(y[{{ .window }}]))";
        assert_eq!(with_window(q, "5m"), "sum(rate(x[5m])) / sum(rate(y[5m]))");
        assert!(has_window_placeholder("rate(x[{{.window}}])"));
        assert!(!has_window_placeholder("rate(x[5m]) {{other}}"));
        assert_eq!(with_window("no placeholder", "1h"), "no placeholder");
    }

    #[test]
    fn budget_and_window_follow_the_objective() {
        let slos = parse_slos("slos.yaml", "- name: a\n  objective: 99.9\n  sli: {availability: {}}\n").unwrap();
        let slo = &slos[0];
        assert!((slo.error_budget() - 0.001).abs() < 1e-12);
        assert_eq!(slo.window_seconds(), 30 * 86_400);
        assert_eq!(slo.environment_name(), "production");
        assert_eq!(slo.policy, Policy::Freeze);
        // 99.9% over 30 days is 43.2 minutes of budget.
        assert!((slo.error_budget() * slo.window_seconds() as f64 / 60.0 - 43.2).abs() < 1e-6);
    }
}
