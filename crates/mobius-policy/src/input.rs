//! The input document a gate policy sees as `input`: one change Mobius is about to make.
//!
//! Every field is documented here; `README.md` has a complete example. Field names are the JSON
//! names. An input read from JSON ([`Input::from_json`]) must have every field that is not
//! marked optional, and no other: a misspelt field is refused at its line and column rather
//! than read as absent, because an absent field reads as *undefined* in Rego, and a policy
//! that says `not input.artifact.built_by_mobius` would then deny, or one that says
//! `input.slo.status == "frozen"` would silently allow.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::PolicyError;

/// The change being decided, as the policies see it in `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// What is about to happen: `deploy`, `promotion`, `gitops-sync` or `flag-change`.
    pub action: Action,
    /// The service, as named in `mobius.yaml` (`checkout`).
    pub service: String,
    /// The environment the change lands in (`staging`, `production`).
    pub environment: String,
    /// The artifact being deployed, promoted or synced; for a flag change, the artifact the
    /// environment runs now.
    pub artifact: Artifact,
    /// Who asked for the change.
    pub actor: Actor,
    /// Optional: why the change is made, when the actor said (`hotfix`, `security`, or any
    /// word a policy looks for). Absent (`null`, or no field) when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the decision is made, in UTC.
    pub time: Time,
    /// The service's error budget in this environment.
    pub slo: Slo,
    /// Optional: the flag change, for `action: flag-change`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<FlagChange>,
}

/// What is about to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// `deploy`: an artifact rolled out to an environment.
    Deploy,
    /// `promotion`: an artifact that ran in one environment promoted to the next.
    Promotion,
    /// `gitops-sync`: desired state from a Git repository applied to an environment.
    GitopsSync,
    /// `flag-change`: a feature flag's definition changed in an environment.
    FlagChange,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Deploy => "deploy",
            Action::Promotion => "promotion",
            Action::GitopsSync => "gitops-sync",
            Action::FlagChange => "flag-change",
        })
    }
}

/// The artifact a change ships (`input.artifact`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Its content digest, `sha256:…`.
    pub digest: String,
    /// The commit it was built from (full SHA).
    pub commit: String,
    /// The branch that commit was built on (`main`, `release/2.4`); empty for a tag build.
    pub branch: String,
    /// The repository's default branch, so a policy compares without knowing it (`main`).
    pub default_branch: String,
    /// The workflow (pipeline) that built it (`build`).
    pub workflow: String,
    /// The run of that workflow that built it: a Mobius run number, or another CI's run id,
    /// as a string; empty when unknown.
    pub run: String,
    /// Whether Mobius built it (a Mobius run, recorded by Mobius), rather than an outside CI
    /// reporting it.
    pub built_by_mobius: bool,
    /// What the scans of the artifact found.
    pub scan: Scan,
    /// Optional: the artifact's provenance as recorded (a SLSA provenance statement or
    /// whatever the builder attached), as JSON; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
}

/// Scan results of an artifact (`input.artifact.scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    /// The secret scan of the commit.
    pub secrets: SecretScan,
    /// Known vulnerabilities of the artifact's dependencies, by severity.
    pub vulnerabilities: Vulnerabilities,
}

/// The secret scan (`input.artifact.scan.secrets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretScan {
    /// Every finding, resolved or not.
    pub findings: u32,
    /// Findings nobody has resolved (revoked, or marked a false positive) yet.
    pub unresolved: u32,
}

/// Vulnerability counts by severity (`input.artifact.scan.vulnerabilities`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vulnerabilities {
    /// Critical.
    pub critical: u32,
    /// High.
    pub high: u32,
    /// Medium.
    pub medium: u32,
    /// Low.
    pub low: u32,
}

/// Who asked for the change (`input.actor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The user or token's name.
    pub name: String,
    /// The scope of the token that asked (`deploy`, `admin`, …).
    pub token_scope: String,
}

/// The service's error budget (`input.slo`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// `ok`, `warning` (burning fast) or `frozen` (budget exhausted).
    pub status: SloStatus,
    /// The share of the error budget left over the SLO's window: `1.0` untouched, `0.0`
    /// spent, below zero overspent. A service without an SLO reports `ok` and `1.0`.
    pub budget_remaining: f64,
}

/// The state of a service's error budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SloStatus {
    /// `ok`.
    Ok,
    /// `warning`.
    Warning,
    /// `frozen`.
    Frozen,
}

/// A feature flag's change (`input.flag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagChange {
    /// The flag set (`checkout`).
    pub set: String,
    /// The flag's key (`new-checkout`).
    pub flag: String,
    /// Its definition before the change, in flagd's form; `null` for a new flag.
    pub before: serde_json::Value,
    /// Its definition after the change, in flagd's form; `null` for a removed flag.
    pub after: serde_json::Value,
}

/// When a decision is made (`input.time`): the instant in RFC 3339, UTC, and the weekday
/// and hour of it, in UTC, so a policy about deploy hours needs no time builtins.
///
/// In JSON: `{"rfc3339": "2026-12-04T16:30:00Z", "weekday": "Friday", "hour": 16}`. Reading
/// one, `weekday` and `hour` may be left out; when given they must agree with `rfc3339`.
/// Weekdays are spelled as OPA's `time.weekday` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(jiff::Timestamp);

impl Time {
    /// The instant.
    pub fn new(at: jiff::Timestamp) -> Self {
        Self(at)
    }

    /// The instant.
    pub fn at(&self) -> jiff::Timestamp {
        self.0
    }

    /// `Monday` … `Sunday`, in UTC.
    pub fn weekday(&self) -> &'static str {
        match self.0.to_zoned(jiff::tz::TimeZone::UTC).weekday() {
            jiff::civil::Weekday::Monday => "Monday",
            jiff::civil::Weekday::Tuesday => "Tuesday",
            jiff::civil::Weekday::Wednesday => "Wednesday",
            jiff::civil::Weekday::Thursday => "Thursday",
            jiff::civil::Weekday::Friday => "Friday",
            jiff::civil::Weekday::Saturday => "Saturday",
            jiff::civil::Weekday::Sunday => "Sunday",
        }
    }

    /// 0 … 23, in UTC.
    pub fn hour(&self) -> u8 {
        // An hour of the day is 0..=23; the conversion cannot fail.
        u8::try_from(self.0.to_zoned(jiff::tz::TimeZone::UTC).hour()).unwrap_or(0)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeJson {
    rfc3339: String,
    #[serde(default)]
    weekday: Option<String>,
    #[serde(default)]
    hour: Option<u8>,
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        TimeJson { rfc3339: self.0.to_string(), weekday: Some(self.weekday().to_owned()), hour: Some(self.hour()) }
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let json = TimeJson::deserialize(deserializer)?;
        let at: jiff::Timestamp = json.rfc3339.parse().map_err(|e| {
            D::Error::custom(format!("time.rfc3339 {:?} is not an RFC 3339 instant: {e}", json.rfc3339))
        })?;
        let time = Time(at);
        if let Some(weekday) = json.weekday.filter(|w| w != time.weekday()) {
            return Err(D::Error::custom(format!(
                "time.weekday {weekday:?} disagrees with time.rfc3339 {:?}, a {} in UTC",
                json.rfc3339,
                time.weekday()
            )));
        }
        if let Some(hour) = json.hour.filter(|&h| h != time.hour()) {
            return Err(D::Error::custom(format!(
                "time.hour {hour} disagrees with time.rfc3339 {:?}, hour {} in UTC",
                json.rfc3339,
                time.hour()
            )));
        }
        Ok(time)
    }
}

impl Input {
    /// Reads an input document, refusing one that is not the documented input at its line
    /// and column.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        serde_json::from_str(json).map_err(|e| PolicyError::input(&e))
    }

    /// The document as the policies see it.
    pub fn to_json(&self) -> String {
        // Every field is a string, a number, a bool or JSON already: this cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("an Input serialises: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(json: &str) -> Result<Time, String> {
        serde_json::from_str::<Time>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn time_derives_weekday_and_hour_in_utc() {
        let t = time(r#"{"rfc3339": "2026-12-04T17:30:00+01:00"}"#).unwrap();
        assert_eq!((t.weekday(), t.hour()), ("Friday", 16));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"rfc3339":"2026-12-04T16:30:00Z","weekday":"Friday","hour":16}"#
        );
        let t = time(r#"{"rfc3339": "2026-12-06T23:59:59Z", "weekday": "Sunday", "hour": 23}"#).unwrap();
        assert_eq!((t.weekday(), t.hour()), ("Sunday", 23));
    }

    #[test]
    fn time_refuses_what_disagrees() {
        let e = time(r#"{"rfc3339": "2026-12-04T16:30:00Z", "weekday": "Thursday"}"#).unwrap_err();
        assert!(e.contains("time.weekday \"Thursday\" disagrees"), "{e}");
        let e = time(r#"{"rfc3339": "2026-12-04T16:30:00Z", "hour": 15}"#).unwrap_err();
        assert!(e.contains("time.hour 15 disagrees"), "{e}");
        let e = time(r#"{"rfc3339": "Friday afternoon"}"#).unwrap_err();
        assert!(e.contains("is not an RFC 3339 instant"), "{e}");
    }
}
