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
    /// The service, as named in `mobius.yaml` (`checkout`). For a flag change, the service a
    /// rollout judges its steps by; empty for a change by hand, which names no service.
    pub service: String,
    /// The environment the change lands in (`staging`, `production`).
    pub environment: String,
    /// The artifact being deployed, promoted or synced; for a flag change, the artifact the
    /// service runs in the environment now — every field empty (`""`, `false`, zeros) when the
    /// change names no service or it has never been deployed there.
    pub artifact: Artifact,
    /// Who asked for the change.
    pub actor: Actor,
    /// Optional: why the change is made, when the actor said (`hotfix`, `security`, or any
    /// word a policy looks for). Absent (`null`, or no field) when none was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the decision is made, in UTC.
    pub time: Time,
    /// The service's error budget in this environment (`ok` and `1.0` for a flag change that
    /// names no service).
    pub slo: Slo,
    /// Optional: the flag change, for `action: flag-change`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<FlagChange>,
    /// Optional: for `action: gitops-sync`, the deploy repository and the commit whose
    /// environment file declares the change; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitopsSource>,
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

/// A feature flag's change (`input.flag`), for `action: flag-change`.
///
/// In JSON every field is present in what Mobius sends (`null` where the change has none);
/// reading one, the optional fields may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagChange {
    /// The flag set (`shop.production`).
    pub set: String,
    /// The environment the set belongs to (`production`): what `input.environment` says too.
    pub environment: String,
    /// What the change does: `document`, `state`, `default-variant`, `rollout-step` or
    /// `delete`.
    pub change: FlagChangeKind,
    /// Optional: the one flag a `state`, `default-variant` or `rollout-step` change is about
    /// (`new-checkout`); `null` for a whole document or a deletion.
    #[serde(default)]
    pub flag: Option<String>,
    /// The set's version now (0: the set is new).
    pub version_before: u64,
    /// The version the change makes.
    pub version_after: u64,
    /// Optional: for a `rollout-step`, the step; `null` otherwise.
    #[serde(default)]
    pub rollout: Option<RolloutStep>,
    /// Every flag whose definition the change alters (added, removed or changed), with its
    /// flagd definition before and after: one entry for a one-flag change.
    pub flags: Vec<FlagDiff>,
}

/// What a flag change does (`input.flag.change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagChangeKind {
    /// `document`: the whole flagd document put (`mobius flags load`, `PUT /api/v1/flags/{set}`).
    Document,
    /// `state`: one flag turned on (`ENABLED`) or off (`DISABLED`).
    State,
    /// `default-variant`: one flag's default variant set.
    DefaultVariant,
    /// `rollout-step`: a flag rollout moving its variant's share up (its targeting set to a
    /// split); `input.flag.rollout` says to what.
    RolloutStep,
    /// `delete`: the set removed.
    Delete,
}

/// A step of a flag rollout (`input.flag.rollout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutStep {
    /// The variant whose share grows (`on`).
    pub variant: String,
    /// Its share after the step, in percent (0–100).
    pub weight: u32,
}

/// One flag a change alters (`input.flag.flags[_]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagDiff {
    /// The flag's key (`new-checkout`).
    pub key: String,
    /// Its definition before the change, in flagd's form (`state`, `variants`,
    /// `defaultVariant`, `targeting`); `null` for a flag the change adds.
    pub before: serde_json::Value,
    /// Its definition after the change; `null` for a flag the change removes.
    pub after: serde_json::Value,
}

/// Where a GitOps sync's desired state comes from (`input.gitops`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitopsSource {
    /// The registered deploy repository (`acme/deploy`).
    pub repository: String,
    /// The commit of it whose environment file was read (full SHA).
    pub revision: String,
    /// The environment file, relative to the repository (`environments/production.yaml`).
    pub file: String,
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
    fn a_flag_change_reads_as_documented_and_a_misspelt_field_is_refused() {
        let flag = r#"{"set": "shop.production", "environment": "production", "change": "rollout-step",
            "flag": "new-checkout", "version_before": 3, "version_after": 4,
            "rollout": {"variant": "on", "weight": 20},
            "flags": [{"key": "new-checkout", "before": null, "after": {"state": "ENABLED"}}]}"#;
        let read: FlagChange = serde_json::from_str(flag).unwrap();
        assert_eq!((read.change, read.version_after), (FlagChangeKind::RolloutStep, 4));
        assert_eq!(read.rollout, Some(RolloutStep { variant: "on".into(), weight: 20 }));
        assert_eq!(
            (read.flags[0].before.is_null(), &read.flags[0].after["state"]),
            (true, &serde_json::json!("ENABLED"))
        );
        let written = serde_json::to_value(&read).unwrap();
        assert_eq!(written["change"], "rollout-step");
        // Optional fields may be left out reading; a misspelt one is refused.
        let minimal = r#"{"set": "s", "environment": "e", "change": "default-variant", "version_before": 0,
            "version_after": 1, "flags": []}"#;
        let read: FlagChange = serde_json::from_str(minimal).unwrap();
        assert_eq!((read.flag, read.rollout), (None, None));
        let error = serde_json::from_str::<FlagChange>(&minimal.replace("\"flags\"", "\"flag_list\"")).unwrap_err();
        assert!(error.to_string().contains("unknown field `flag_list`"), "{error}");
        let gitops = r#"{"repository": "acme/deploy", "revision": "9f2c", "file": "environments/production.yaml"}"#;
        assert_eq!(serde_json::from_str::<GitopsSource>(gitops).unwrap().repository, "acme/deploy");
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
