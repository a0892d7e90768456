//! Changes to feature flag sets: Mobius's own `mobius-flag.changed`, the audit trail of every
//! flag set (issue 15). One event per version of a set, written in the transaction that stores
//! the version (see `mobius_features`), so the log and the stored sets never disagree.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use super::delivery::POLICY_DECIDED;
use super::{EmitError, Parts, Ref, build, random_id};
use crate::envelope::{NewEvent, Origin};

/// Mobius's own: a flag set changed (loaded, a flag's state or default variant set, deleted).
pub const FLAG_CHANGED: &str = "dev.cdeventsx.mobius-flag.changed.0.1.0";

/// The source of every flag set change.
pub const SOURCE: &str = "/mobius/flags";

/// At most this many flags are described one by one; `flagsChanged` counts them all. Keeps a
/// change of a large set well under the event size limit.
pub const MAX_LISTED_FLAGS: usize = 100;

/// What was done to the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A whole document put (the API, `mobius flags load`, a deploy's flag file).
    Loaded,
    /// One flag's `state` set.
    State,
    /// One flag's `defaultVariant` set.
    Default,
    /// One flag's `targeting` set to a fractional split between two variants: a step of a flag
    /// rollout (`mobius flags rollout`), which the reason names.
    Split,
    /// The set removed.
    Deleted,
}

/// A flag as the audit trail shows it: what a change to it can change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagSnapshot {
    /// `ENABLED` or `DISABLED`.
    pub state: &'static str,
    /// `None` when the flag has no default variant.
    pub default_variant: Option<String>,
    /// The variants by name, with their values.
    pub variants: Map<String, Value>,
    /// Whether the flag has targeting rules.
    pub targeting: bool,
}

/// One flag that changed: `before` is `None` for a flag added, `after` for one removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagDiff {
    pub key: String,
    pub before: Option<FlagSnapshot>,
    pub after: Option<FlagSnapshot>,
}

/// A change to a flag set.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagChange<'a> {
    pub set: &'a str,
    /// The deployment environment the set belongs to; `None` for none.
    pub environment: Option<&'a str>,
    /// The version this change makes, and the one it replaces (0: the set was new).
    pub version: i64,
    pub previous_version: i64,
    pub action: Action,
    /// The flag a one-flag change is about; `None` for the whole set.
    pub flag: Option<&'a str>,
    /// The flags whose state, default, variants or targeting changed, by key.
    pub flags: &'a [FlagDiff],
    /// Who: a token's name, `cli`, or the deployer.
    pub by: &'a str,
    pub reason: Option<&'a str>,
    pub at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    set: &'a str,
    environment: Option<&'a str>,
    version: i64,
    previous_version: i64,
    action: Action,
    flag: Option<&'a str>,
    flags: &'a [FlagDiff],
    flags_changed: usize,
    by: &'a str,
    reason: Option<&'a str>,
}

/// The event of `change`, id `<set>@<version>` (versions of a set never repeat, a deleted
/// set's included, so a change is never taken for another).
pub fn changed(change: &FlagChange<'_>) -> Result<NewEvent, EmitError> {
    let listed = &change.flags[..change.flags.len().min(MAX_LISTED_FLAGS)];
    let content = Content {
        set: change.set,
        environment: change.environment,
        version: change.version,
        previous_version: change.previous_version,
        action: change.action,
        flag: change.flag,
        flags: listed,
        flags_changed: change.flags.len(),
        by: change.by,
        reason: change.reason,
    };
    let id = format!("{}@{}", change.set, change.version);
    match build(Parts::new(FLAG_CHANGED, id.clone(), SOURCE, change.at, change.set, &content), Origin::Internal) {
        // Large variant values (objects) can outgrow the event: the names still say what changed.
        Err(EmitError::Invalid { source: crate::cdevents::EventError::TooLarge { .. }, .. }) => {
            let names: Vec<FlagDiff> = listed.iter().map(without_values).collect();
            let content = Content { flags: &names, ..content };
            build(Parts::new(FLAG_CHANGED, id, SOURCE, change.at, change.set, &content), Origin::Internal)
        }
        built => built,
    }
}

/// What the gate policies decided about a change to a flag set of an environment (see
/// `mobius_features::gate`).
#[derive(Debug, Clone, Copy)]
pub struct FlagPolicyDecision<'a> {
    pub set: &'a str,
    pub environment: &'a str,
    /// The one flag a one-flag change is about; `None` for the whole set.
    pub flag: Option<&'a str>,
    /// `document`, `state`, `default-variant`, `rollout-step` or `delete`.
    pub change: &'a str,
    /// The set's version now, and the one the change would make.
    pub version_before: u64,
    pub version_after: u64,
    pub by: &'a str,
    /// The deny messages: the change is allowed when there are none.
    pub deny: &'a [String],
    pub warn: &'a [String],
    /// The rules excepted by an `exception` rule.
    pub exceptions: &'a [String],
    pub at: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DecidedContent<'a> {
    environment: Ref<'a>,
    action: &'static str,
    set: &'a str,
    flag: Option<&'a str>,
    change: &'a str,
    version_before: u64,
    version_after: u64,
    by: &'a str,
    allow: bool,
    deny: &'a [String],
    warn: &'a [String],
    exceptions: &'a [String],
}

/// The gate policies' decision about a flag change: the deploys' `mobius-policy.decided`, from
/// [`SOURCE`] with the set as its subject and `action: flag-change`, recorded whether it
/// allows the change or not. Each decision is its own event.
pub fn policy_decided(decision: &FlagPolicyDecision<'_>) -> Result<NewEvent, EmitError> {
    let content = DecidedContent {
        environment: Ref { id: decision.environment },
        action: "flag-change",
        set: decision.set,
        flag: decision.flag,
        change: decision.change,
        version_before: decision.version_before,
        version_after: decision.version_after,
        by: decision.by,
        allow: decision.deny.is_empty(),
        deny: decision.deny,
        warn: decision.warn,
        exceptions: decision.exceptions,
    };
    let parts = Parts::new(POLICY_DECIDED, random_id(), SOURCE, decision.at, decision.set, content);
    build(parts, Origin::Internal)
}

fn without_values(diff: &FlagDiff) -> FlagDiff {
    let names = |snapshot: &Option<FlagSnapshot>| {
        snapshot.as_ref().map(|s| FlagSnapshot {
            variants: s.variants.keys().map(|k| (k.clone(), Value::Null)).collect(),
            ..s.clone()
        })
    };
    FlagDiff { key: diff.key.clone(), before: names(&diff.before), after: names(&diff.after) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_a_valid_event_with_its_diff_and_a_content_id() {
        let after = FlagSnapshot {
            state: "DISABLED",
            default_variant: Some("off".into()),
            variants: [("on".to_owned(), Value::Bool(true)), ("off".to_owned(), Value::Bool(false))]
                .into_iter()
                .collect(),
            targeting: false,
        };
        let before = FlagSnapshot { state: "ENABLED", ..after.clone() };
        let flags = [FlagDiff { key: "checkout".into(), before: Some(before), after: Some(after) }];
        let change = FlagChange {
            set: "shop",
            environment: Some("production"),
            version: 4,
            previous_version: 3,
            action: Action::State,
            flag: Some("checkout"),
            flags: &flags,
            by: "alice",
            reason: Some("incident 12"),
            at: Timestamp::from_second(1_700_000_000).unwrap(),
        };
        let event = changed(&change).unwrap();
        assert_eq!((event.ty.as_str(), event.id.as_str(), event.subject.as_str()), (FLAG_CHANGED, "shop@4", "shop"));
        let raw: Value = serde_json::from_str(&event.raw).unwrap();
        let content = &raw["subject"]["content"];
        assert_eq!(content["flags"][0]["before"]["state"], "ENABLED");
        assert_eq!(content["flags"][0]["after"]["state"], "DISABLED");
        assert_eq!((content["by"].as_str(), content["reason"].as_str()), (Some("alice"), Some("incident 12")));
        assert_eq!((content["version"].as_i64(), content["flagsChanged"].as_i64()), (Some(4), Some(1)));
    }

    #[test]
    fn a_flag_changes_policy_decision_is_a_valid_event_naming_the_set_and_versions() {
        let (deny, warn) = (vec!["no reason given".to_owned()], vec!["late".to_owned()]);
        let decision = FlagPolicyDecision {
            set: "shop.production",
            environment: "production",
            flag: Some("checkout"),
            change: "state",
            version_before: 3,
            version_after: 4,
            by: "alice",
            deny: &deny,
            warn: &warn,
            exceptions: &[],
            at: Timestamp::from_second(1_700_000_000).unwrap(),
        };
        let event = policy_decided(&decision).unwrap();
        assert_eq!((event.ty.as_str(), event.subject.as_str()), (POLICY_DECIDED, "shop.production"));
        let raw: Value = serde_json::from_str(&event.raw).unwrap();
        let content = &raw["subject"]["content"];
        assert_eq!((content["action"].as_str(), content["allow"].as_bool()), (Some("flag-change"), Some(false)));
        assert_eq!(
            (content["environment"]["id"].as_str(), content["flag"].as_str()),
            (Some("production"), Some("checkout"))
        );
        assert_eq!((content["versionBefore"].as_u64(), content["versionAfter"].as_u64()), (Some(3), Some(4)));
        assert_eq!(content["deny"][0], "no reason given");
        assert_eq!(raw["context"]["source"], SOURCE);
    }

    #[test]
    fn a_change_too_large_for_an_event_keeps_the_variant_names() {
        let big = Value::String("x".repeat(20_000));
        let snapshot = |state| FlagSnapshot {
            state,
            default_variant: None,
            variants: [("blob".to_owned(), big.clone())].into_iter().collect(),
            targeting: false,
        };
        let flags: Vec<FlagDiff> = (0..80)
            .map(|i| FlagDiff { key: format!("f{i}"), before: None, after: Some(snapshot("ENABLED")) })
            .collect();
        let change = FlagChange {
            set: "big",
            environment: None,
            version: 1,
            previous_version: 0,
            action: Action::Loaded,
            flag: None,
            flags: &flags,
            by: "cli",
            reason: None,
            at: Timestamp::from_second(1_700_000_000).unwrap(),
        };
        let event = changed(&change).unwrap();
        let raw: Value = serde_json::from_str(&event.raw).unwrap();
        assert_eq!(raw["subject"]["content"]["flags"][79]["after"]["variants"]["blob"], Value::Null);
    }
}
