//! The service definition: `mobius.yaml` at the root of a repository (or of a deployed
//! directory or artifact).
//!
//! ```yaml
//! service: shop
//! owner: team-shop
//! runbook: docs/runbook.md
//! run:
//!   command: ./shop            # found in the release directory, else on PATH
//!   args: [--verbose]
//!   env: {LOG: info}
//!   port_env: PORT             # the variable that carries the assigned port
//!   health: /healthz
//!   readiness_timeout: 30s
//!   shutdown_grace: 10s
//!   instances: 2
//! environments:               # in promotion order
//!   - name: staging
//!     listen: 127.0.0.1:8081
//!     strategy: rolling
//!   - name: production
//!     listen: 127.0.0.1:8080
//!     approval: manual
//!     strategy:
//!       canary:
//!         steps:
//!           - set_weight: 10
//!           - analysis: {}       # the environment's (else the service's) analysis settings
//!           - set_weight: 50
//!           - pause: {duration: 30s}
//!           - pause: {}          # until `mobius rollout promote`
//! analysis:
//!   interval_secs: 10
//!   max_error_rate: 0.01
//! slos:                      # see `mobius_slo::spec` for every field
//!   - name: availability
//!     objective: 99.9
//!     window: 30d
//!     sli: {availability: {}}
//! ```
//!
//! Parsing is typed (unknown keys are errors with a suggestion from the YAML library); the
//! checks serde cannot express are made after, and every error says `file:line:col`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Spanned;

use mobius_slo::spec::SloSpec;

use crate::analysis::AnalysisSpec;

/// A whole `mobius.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service's name: what deployments, SLIs and incidents are keyed by.
    #[schemars(with = "String")]
    pub service: Spanned<String>,
    /// The team that runs it.
    #[serde(default)]
    pub owner: Option<String>,
    /// Path of its runbook, relative to the repository.
    #[serde(default)]
    pub runbook: Option<String>,
    /// The repository it is built from (`owner/name`, as registered with `mobius repo add`):
    /// whose stored secrets `${{ secrets.NAME }}` in `run.env` reads.
    #[serde(default)]
    pub repository: Option<String>,
    /// How to run one instance.
    pub run: RunSpec,
    /// The environments, in promotion order.
    #[schemars(with = "Vec<EnvironmentSpec>")]
    pub environments: Spanned<Vec<EnvironmentSpec>>,
    /// Analysis settings for every environment that does not set its own.
    #[serde(default)]
    pub analysis: Option<AnalysisSpec>,
    /// The service's service level objectives (names unique within the service).
    #[serde(default)]
    pub slos: Vec<SloSpec>,
}

/// How to run one instance of the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The program: a path relative to the release directory, or a name found on `PATH`;
    /// `mobius` is the Mobius binary itself (for `mobius sample-app`).
    #[schemars(with = "String")]
    pub command: Spanned<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The environment variable that carries the port the instance must listen on.
    #[serde(default = "default_port_env")]
    pub port_env: String,
    /// The HTTP path that answers 2xx when the instance is ready.
    #[serde(default = "default_health")]
    #[schemars(with = "String")]
    pub health: Spanned<String>,
    /// How long an instance may take to become healthy.
    #[serde(default = "default_readiness")]
    pub readiness_timeout: Span,
    /// How long an instance has between SIGTERM and SIGKILL.
    #[serde(default = "default_grace")]
    pub shutdown_grace: Span,
    /// How many instances each version runs.
    #[serde(default = "default_instances")]
    #[schemars(with = "u32")]
    pub instances: Spanned<u32>,
}

/// One environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Where the environment's proxy listens (the address users call), e.g. `127.0.0.1:8080`.
    #[schemars(with = "String")]
    pub listen: Spanned<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// `auto` starts a deployment at once; `manual` waits for `mobius rollout promote`.
    #[serde(default)]
    pub approval: Approval,
    /// Analysis settings for this environment (else the service's, else the defaults).
    #[serde(default)]
    pub analysis: Option<AnalysisSpec>,
}

/// How a new version replaces the old one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Strategy {
    /// Replace instances one at a time, each gated on health.
    #[default]
    Rolling,
    /// Start the new version beside the old, switch all traffic at once.
    BlueGreen(BlueGreen),
    /// Shift traffic in steps, with pauses and analysis.
    Canary(Canary),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreen {
    /// How long the old version stays warm after the switch, so rollback is instant.
    #[serde(default = "default_scale_down_delay")]
    pub scale_down_delay: Span,
    /// Judge the new version after the switch; failure switches back.
    #[serde(default)]
    pub analysis: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    #[schemars(with = "Vec<Step>")]
    pub steps: Vec<Spanned<Step>>,
}

/// One canary step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Send this percentage of new users to the canary.
    SetWeight(u8),
    /// Wait `duration`, or without one until `mobius rollout promote`.
    Pause(Pause),
    /// Judge the canary: the environment's analysis settings, with the ones given here over
    /// them (`analysis: {}` uses them as they are).
    Analysis(serde_json::Map<String, serde_json::Value>),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    #[serde(default)]
    pub duration: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    #[default]
    Auto,
    Manual,
}

/// A span of time written `500ms`, `30s`, `5m`, `1h` (or a number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    pub fn parse(text: &str) -> Option<Span> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let nanos_per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" | "" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        // Decimal arithmetic in nanoseconds, not f64 seconds: through f64 a span printed in
        // milliseconds did not always read back as the same span (`8400000.484s`), and
        // `Duration::from_secs_f64` panics past what a `Duration` holds.
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return None;
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        // Digits past the 18th are far below a nanosecond of any unit.
        let fraction = &fraction[..fraction.len().min(18)];
        let scale = 10u128.pow(fraction.len() as u32);
        let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
        let nanos = whole.checked_mul(nanos_per_unit)?.checked_add(fraction * nanos_per_unit / scale)?;
        let seconds = u64::try_from(nanos / 1_000_000_000).ok()?;
        Some(Span(Duration::new(seconds, (nanos % 1_000_000_000) as u32)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if !ms.is_multiple_of(60_000) || ms == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{}m", ms / 60_000)
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        Span::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a duration like 500ms, 30s, 5m or 1h")))
    }
}

impl JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Span".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: 500ms, 30s, 5m, 1h, or a number of seconds.",
            "anyOf": [
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)?$" },
                { "type": "number", "minimum": 0 }
            ]
        })
    }
}

fn default_port_env() -> String {
    "PORT".to_owned()
}
fn default_health() -> Spanned<String> {
    unspanned("/healthz".to_owned())
}
fn default_readiness() -> Span {
    Span(Duration::from_secs(30))
}
fn default_grace() -> Span {
    Span(Duration::from_secs(10))
}
fn default_instances() -> Spanned<u32> {
    unspanned(1)
}
fn default_scale_down_delay() -> Span {
    Span(Duration::from_secs(30))
}

/// A value that was not in the file (a default), at line 0.
fn unspanned<T>(value: T) -> Spanned<T> {
    let nowhere = serde_saphyr::Location::UNKNOWN;
    Spanned::new(value, nowhere, nowhere)
}

/// Why a `mobius.yaml` was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl ServiceSpec {
    /// Parses and validates `text` (read from `file`, which errors name).
    pub fn parse(file: &str, text: &str) -> Result<ServiceSpec, SpecError> {
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
        let spec: ServiceSpec = serde_saphyr::from_str_with_options(text, options).map_err(|err| {
            let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
            let rendered = err.without_snippet().to_string();
            let mut message = rendered.lines().next().unwrap_or("invalid YAML").to_owned();
            if let Some(i) = message.rfind(" at line ") {
                message.truncate(i);
            }
            SpecError { file: file.to_owned(), line, column, message }
        })?;
        spec.validate(file)?;
        crate::secret_refs::check_spec(&spec, file, text)?;
        Ok(spec)
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.service.value
    }

    /// The environment called `name`.
    pub fn environment(&self, name: &str) -> Option<&EnvironmentSpec> {
        self.environments.value.iter().find(|e| e.name.value == name)
    }

    /// The analysis settings for an environment: its own, else the service's, else defaults.
    pub fn analysis_for(&self, environment: &EnvironmentSpec) -> AnalysisSpec {
        environment.analysis.clone().or_else(|| self.analysis.clone()).unwrap_or_default()
    }

    /// The settings of an analysis step: `base` with the step's own settings over it.
    pub fn step_analysis(
        base: &AnalysisSpec,
        overrides: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<AnalysisSpec, crate::rollout::AnalysisStepError> {
        let mut merged = serde_json::to_value(base)?;
        if let serde_json::Value::Object(map) = &mut merged {
            for (key, value) in overrides {
                map.insert(key.clone(), value.clone());
            }
        }
        Ok(serde_json::from_value(merged)?)
    }

    fn validate(&self, file: &str) -> Result<(), SpecError> {
        let at = |location: serde_saphyr::Location, message: String| SpecError {
            file: file.to_owned(),
            line: location.line(),
            column: location.column(),
            message,
        };
        let name = &self.service;
        if !valid_name(&name.value) {
            return Err(at(
                name.referenced,
                format!("`service`: `{}` must be letters, digits, `-` or `_` (it names files and URLs)", name.value),
            ));
        }
        let command = &self.run.command;
        if command.value.trim().is_empty() {
            return Err(at(command.referenced, "`run.command` is empty".to_owned()));
        }
        if !self.run.health.value.starts_with('/') {
            let health = &self.run.health;
            return Err(at(
                health.referenced,
                format!("`run.health`: `{}` must be a path starting with /", health.value),
            ));
        }
        let instances = &self.run.instances;
        if instances.value == 0 || instances.value > 64 {
            return Err(at(
                instances.referenced,
                format!("`run.instances`: {} is not between 1 and 64", instances.value),
            ));
        }
        if self.environments.value.is_empty() {
            return Err(at(self.environments.referenced, "`environments` is empty: name at least one".to_owned()));
        }
        let mut seen: Vec<(&str, SocketAddr)> = Vec::new();
        for env in &self.environments.value {
            if !valid_name(&env.name.value) {
                return Err(at(
                    env.name.referenced,
                    format!("environment name `{}` must be letters, digits, `-` or `_`", env.name.value),
                ));
            }
            if seen.iter().any(|(n, _)| *n == env.name.value) {
                return Err(at(env.name.referenced, format!("environment `{}` is listed twice", env.name.value)));
            }
            let listen: SocketAddr = env.listen.value.parse().map_err(|_| {
                at(
                    env.listen.referenced,
                    format!("`listen`: `{}` is not HOST:PORT (e.g. 127.0.0.1:8080)", env.listen.value),
                )
            })?;
            if let Some((other, _)) = seen.iter().find(|(_, a)| *a == listen) {
                return Err(at(
                    env.listen.referenced,
                    format!("`listen`: {listen} is also environment `{other}`'s address"),
                ));
            }
            seen.push((&env.name.value, listen));
            if let Strategy::Canary(canary) = &env.strategy {
                validate_steps(&canary.steps, &self.analysis_for(env), &at)?;
            }
        }
        mobius_slo::spec::check_all(&self.slos).map_err(|e| at(e.at, e.message))?;
        for slo in &self.slos {
            if let Some(environment) = &slo.environment
                && self.environment(&environment.value).is_none()
            {
                return Err(at(
                    environment.referenced,
                    format!(
                        "SLO `{}`: environment `{}` is not listed in `environments`",
                        slo.name(),
                        environment.value
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn validate_steps(
    steps: &[Spanned<Step>],
    analysis: &AnalysisSpec,
    at: &dyn Fn(serde_saphyr::Location, String) -> SpecError,
) -> Result<(), SpecError> {
    for step in steps {
        match &step.value {
            Step::SetWeight(weight) if *weight > 100 => {
                return Err(at(step.referenced, format!("`set_weight`: {weight} is over 100")));
            }
            Step::Analysis(overrides) => {
                ServiceSpec::step_analysis(analysis, overrides)
                    .map_err(|e| at(step.referenced, format!("`analysis`: {}", e.0)))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The JSON schema of `mobius.yaml`, generated from these types (committed as
/// `schemas/mobius.schema.json`; a test keeps the two equal).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ServiceSpec);
    // A schema is JSON already: serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// A commented starter `mobius.yaml` (what `mobius init` writes).
pub const STARTER: &str = r#"# Mobius service definition. Schema: schemas/mobius.schema.json in the Mobius repository.
service: my-service
owner: my-team
runbook: docs/runbook.md
run:
  # A path relative to the deployed directory or artifact, else a program on PATH.
  command: ./server
  args: []
  env: {}
  # The instance must listen on 127.0.0.1 and the port in this variable.
  port_env: PORT
  health: /healthz
  readiness_timeout: 30s
  shutdown_grace: 10s
  instances: 2
# In promotion order. `listen` is where users reach the environment (Mobius's proxy).
environments:
  - name: staging
    listen: 127.0.0.1:8081
    strategy: rolling
  - name: production
    listen: 127.0.0.1:8080
    approval: auto
    strategy:
      canary:
        steps:
          - set_weight: 10
          - analysis: {}
          - set_weight: 50
          - analysis: {}
# Canary analysis: judged on the proxy's per-version SLIs.
analysis:
  interval_secs: 10
  count: 3
  min_requests: 20
  max_error_rate: 0.01
  max_p99_ms: 500
  compare_latency: true
# Service level objectives on production traffic. Under the default `policy: freeze`, an
# exhausted error budget refuses production deploys except `--reason hotfix|security`.
slos:
  - name: availability
    objective: 99.9
    window: 30d
    sli: {availability: {}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        ServiceSpec::parse("mobius.yaml", text).unwrap_err().to_string()
    }

    const BASE: &str =
        "service: shop\nrun:\n  command: ./shop\nenvironments:\n  - name: production\n    listen: 127.0.0.1:8080\n";

    #[test]
    fn the_starter_parses_with_defaults_filled_in() {
        let spec = ServiceSpec::parse("mobius.yaml", STARTER).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name(), "my-service");
        assert_eq!(spec.run.instances.value, 2);
        assert_eq!(spec.run.readiness_timeout, Span(Duration::from_secs(30)));
        let production = spec.environment("production").unwrap();
        let Strategy::Canary(canary) = &production.strategy else { panic!("{:?}", production.strategy) };
        assert_eq!(canary.steps.len(), 4);
        assert_eq!(spec.analysis_for(production).max_error_rate, Some(0.01));
        let minimal = ServiceSpec::parse("mobius.yaml", BASE).unwrap();
        assert_eq!((minimal.run.port_env.as_str(), minimal.run.health.value.as_str()), ("PORT", "/healthz"));
        assert_eq!(minimal.environments.value[0].strategy, Strategy::Rolling);
        assert!(minimal.slos.is_empty());
        let [slo] = spec.slos.as_slice() else { panic!("{:?}", spec.slos) };
        assert_eq!(
            (slo.name(), slo.window_seconds(), slo.environment_name()),
            ("availability", 30 * 86_400, "production")
        );
    }

    #[test]
    fn bad_slos_are_refused_with_file_line_and_column() {
        let slo = "slos:\n  - name: up\n    objective: 99.9\n    sli: {availability: {}}\n";
        let e = error(&format!("{BASE}{}", slo.replace("99.9", "100")));
        assert!(e.starts_with("mobius.yaml:9:16: `objective`: 100 is not a percentage"), "{e}");
        let e = error(&format!("{BASE}{slo}{}", &slo["slos:\n".len()..]));
        assert_eq!(e, "mobius.yaml:11:11: SLO `up` is listed twice");
        let e = error(&format!("{BASE}{slo}    environment: staging\n"));
        assert_eq!(e, "mobius.yaml:11:18: SLO `up`: environment `staging` is not listed in `environments`");
        let e = error(&format!("{BASE}{}", slo.replace("availability: {}", "saturation: {}")));
        assert!(e.starts_with("mobius.yaml:10:11: unknown variant `saturation`"), "{e}");
        let e = error(&format!("{BASE}{slo}    window: a month\n"));
        assert!(e.starts_with("mobius.yaml:11:13: `a month` is not a window"), "{e}");
    }

    #[test]
    fn bad_input_is_refused_with_file_line_and_column() {
        let e = error(&BASE.replace("  command:", "  comand:"));
        assert!(e.starts_with("mobius.yaml:3:3: ") && e.contains("comand"), "{e}");
        let e = error(&BASE.replace("127.0.0.1:8080", "localhost"));
        assert_eq!(e, "mobius.yaml:6:13: `listen`: `localhost` is not HOST:PORT (e.g. 127.0.0.1:8080)");
        let e = error(&format!("{BASE}  - name: production\n    listen: 127.0.0.1:8081\n"));
        assert_eq!(e, "mobius.yaml:7:11: environment `production` is listed twice");
        let e = error(&format!("{BASE}  - name: staging\n    listen: 127.0.0.1:8080\n"));
        assert!(e.starts_with("mobius.yaml:8:13: `listen`: 127.0.0.1:8080 is also environment `production`"), "{e}");
        let e = error(&format!("{BASE}    strategy:\n      canary:\n        steps:\n          - set_weight: 150\n"));
        assert!(e.starts_with("mobius.yaml:10:13: `set_weight`: 150 is over 100"), "{e}");
        let e = error(&format!(
            "{BASE}    strategy:\n      canary:\n        steps:\n          - analysis: {{max_eror_rate: 1}}\n"
        ));
        assert!(e.starts_with("mobius.yaml:10:13: `analysis`: unknown field `max_eror_rate`"), "{e}");
        let e = error(&format!("{BASE}    strategy: {{blue_green: {{scale_down_delay: soon}}}}\n"));
        assert!(e.starts_with("mobius.yaml:7:") && e.contains("`soon` is not a duration"), "{e}");
        let e = error(&BASE.replace("service: shop", "service: my shop"));
        assert!(e.starts_with("mobius.yaml:1:10: `service`: `my shop` must be"), "{e}");
        let e = error("service: shop\nrun:\n  command: x\n  instances: 0\nenvironments: []\n");
        assert!(e.starts_with("mobius.yaml:4:14: `run.instances`: 0"), "{e}");
        let e = error("service: shop\nrun:\n  command: x\nenvironments: []\n");
        assert!(e.starts_with("mobius.yaml:4:15: `environments` is empty"), "{e}");
        let e = error("service: shop\nservice: again\n");
        assert!(e.starts_with("mobius.yaml:2:1: ") && e.to_lowercase().contains("duplicate"), "{e}");
    }

    #[test]
    fn spans_read_and_print() {
        for (text, ms) in
            [("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("2", 2000), ("1.5s", 1500)]
        {
            assert_eq!(Span::parse(text).map(|s| s.0.as_millis()), Some(ms), "{text}");
        }
        assert_eq!(Span::parse("5d"), None);
        // Found by the property `any_span_text_is_read_or_refused`: a span longer than a
        // `Duration` holds panicked, in a file or as a number of seconds; and a span read
        // through f64 seconds did not read back the same once printed in milliseconds.
        let span = Span::parse("8400000.484s").unwrap();
        assert_eq!(span.0.as_millis(), 8_400_000_484);
        assert_eq!(Span::parse(&span.to_string()), Some(span));
        assert_eq!(Span::parse(".5").map(|s| s.0.as_millis()), Some(500));
        for bad in [".", "1.2.3s", "", "ms", "-1s", "1 s"] {
            assert_eq!(Span::parse(bad), None, "{bad}");
        }
        assert_eq!(Span::parse("99999999999999999999h"), None);
        let e = error(
            &BASE.replace("  command: ./shop\n", "  command: ./shop\n  readiness_timeout: 99999999999999999999h\n"),
        );
        assert!(e.starts_with("mobius.yaml:4:22: `99999999999999999999h` is not a duration"), "{e}");
        let e = error(&BASE.replace("  command: ./shop\n", "  command: ./shop\n  shutdown_grace: 1e300\n"));
        assert!(e.starts_with("mobius.yaml:4:19: `1000000") && e.contains("is not a duration"), "{e}");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Span(Duration::from_secs(300)).to_string(), "5m");
    }

    #[test]
    fn secret_references_in_run_env_need_a_repository_and_the_right_form() {
        let spec = |head: &str, env: &str| {
            format!(
                "service: shop\n{head}run:\n  command: ./shop\n  env:\n    LOG: info\n    {env}\nenvironments:\n  - name: production\n    listen: 127.0.0.1:8080\n"
            )
        };
        let ok = ServiceSpec::parse("mobius.yaml", &spec("repository: acme/shop\n", "DB: \"${{ secrets.DB_URL }}\""))
            .unwrap();
        assert_eq!(ok.repository.as_deref(), Some("acme/shop"));
        assert_eq!(ok.run.env["DB"], "${{ secrets.DB_URL }}", "the reference is kept, not resolved");
        let error =
            ServiceSpec::parse("mobius.yaml", &spec("", "DB: \"${{ secrets.DB_URL }}\"")).unwrap_err().to_string();
        assert!(
            error.starts_with("mobius.yaml:6:5: `run.env.DB` uses secret `DB_URL`: set `repository: owner/name`"),
            "{error}"
        );
        let error = ServiceSpec::parse("mobius.yaml", &spec("repository: acme/shop\n", "DB: \"${{ vars.DB }}\""))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("mobius.yaml:7:5: `run.env.DB`: only `${{ secrets.NAME }}` is resolved"), "{error}");
        let error = ServiceSpec::parse("mobius.yaml", &spec("repository: shop\n", "DB: \"${{ secrets.DB_URL }}\""))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("mobius.yaml:2:1: `repository`: `shop` is not owner/name"), "{error}");
    }

    /// The committed schema is what the types generate: regenerate it with
    /// `MOBIUS_WRITE_SCHEMA=1 cargo test -p mobius-deploy schema`.
    #[test]
    fn the_committed_json_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/mobius.schema.json");
        let generated = json_schema();
        if std::env::var_os("MOBIUS_WRITE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == generated, "{} is stale: regenerate it (see this test's doc)", path.display());
        let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
        assert!(schema["properties"]["environments"].is_object());
    }
}
