//! Gate policies at flag changes (issue 16, item 5): every change to a set that belongs to an
//! environment is put to the gate policies before anything of it is written, as a deploy is.
//!
//! This crate knows only the question ([`Question`]: which set, what change, the versions,
//! each altered flag before and after, who and why) and the answer ([`Answer`]); the policies,
//! their input document and where they are read from belong to the application, which
//! implements [`FlagGate`] over `mobius-policy` (the server's policy directory: a flag change
//! has no release, so no release `policies/`). So this crate depends on no policy engine.
//!
//! - No gate set ([`crate::FlagSets::set_gate`]), a set that belongs to no environment, or an
//!   answer of `None` (no policy): allowed, and nothing is recorded.
//! - Otherwise the decision is a `mobius-policy.decided` event (`action: flag-change`), allowed
//!   or not. A deny refuses the change with every message ([`crate::FlagError::PolicyDenied`])
//!   and writes nothing else; an allow's warnings are logged and returned in
//!   [`crate::Outcome::warnings`].
//!
//! Which changes ask: every `put`, `set_state`, `set_default` and `delete`, the first step of a
//! rollout when it starts, and each later step when it is due — a denied step holds the rollout
//! at its share (as a frozen budget does) and its `why` says so. Not asked: a rollout sending its
//! flag back to 0% (a stop or an abort undoes what its steps did, as a failed canary's rollback
//! asks no policy), and the flag files a release's deploy loads, which the deploy's own gate
//! decided (through [`crate::FlagSets::decided`]).

use std::sync::Arc;

use jiff::Timestamp;
use mobius_events::emit::flags::{self as emit, Action};
use serde_json::Value;

use crate::FlagError;

/// What a change does, as the policies see it (`input.flag.change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The whole document put.
    Document,
    /// One flag turned on or off.
    State,
    /// One flag's default variant set.
    DefaultVariant,
    /// A rollout's step: one flag's targeting set to a split.
    RolloutStep,
    /// The set removed.
    Delete,
}

impl Change {
    /// The word policies read in `input.flag.change`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Document => "document",
            Change::State => "state",
            Change::DefaultVariant => "default-variant",
            Change::RolloutStep => "rollout-step",
            Change::Delete => "delete",
        }
    }

    pub(crate) fn of(action: Action) -> Change {
        match action {
            Action::Loaded => Change::Document,
            Action::State => Change::State,
            Action::Default => Change::DefaultVariant,
            Action::Split => Change::RolloutStep,
            Action::Deleted => Change::Delete,
        }
    }
}

/// One flag a change alters: its flagd definition before and after (`None`: added, removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Altered {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A rollout's step: the variant, its share after the step, and the service judging it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub variant: String,
    /// Percent, 0–100.
    pub weight: u32,
    pub service: String,
}

/// The change the gate policies are asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub set: String,
    /// The environment the set belongs to (never empty: a set of none asks nothing).
    pub environment: String,
    pub change: Change,
    /// The one flag a one-flag change is about.
    pub flag: Option<String>,
    /// The set's version now (0: new), and the one the change makes.
    pub version_before: u64,
    pub version_after: u64,
    /// For a rollout step.
    pub step: Option<Step>,
    /// Every flag whose definition the change alters.
    pub altered: Vec<Altered>,
    /// Who asks: a token's name, `cli`, or the rollout's starter.
    pub by: String,
    pub reason: Option<String>,
    /// When, from the application's clock.
    pub at: Timestamp,
}

/// What the gate policies decided. The change is allowed when `deny` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// Every reason to refuse: deny messages, and a policy that does not load or errs (the
    /// gate fails closed), at its `file:line:col`.
    pub deny: Vec<String>,
    pub warn: Vec<String>,
    /// The rules an `exception` excepted.
    pub exceptions: Vec<String>,
}

/// The gate policies the application applies to flag changes (see the module's docs).
pub trait FlagGate: Send + Sync + 'static {
    /// The decision about `question`, or `None` when no policy applies (the server has no
    /// policy directory). Blocking (files, the store): called on the blocking pool. Never
    /// fails: whatever keeps a decision from being made is a deny.
    fn decide(&self, question: &Question) -> Option<Answer>;
}

/// How a change meets the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gating {
    /// Asked before it is written; `step` for a rollout's step.
    Ask { step: Option<Step> },
    /// Asked, and nothing written: a rollout's step, decided before its record moves.
    Only { step: Step },
    /// Not asked: decided elsewhere (a deploy's gate; a step asked already), or a rollout going
    /// back to 0%.
    Skip,
}

impl Gating {
    pub(crate) fn ask() -> Gating {
        Gating::Ask { step: None }
    }

    pub(crate) fn step(&self) -> Option<&Step> {
        match self {
            Gating::Ask { step } => step.as_ref(),
            Gating::Only { step } => Some(step),
            Gating::Skip => None,
        }
    }
}

/// Asks `gate` about `question` and records the decision in `log`: the warnings when allowed,
/// [`FlagError::PolicyDenied`] when not. Blocking.
pub(crate) fn ask(
    gate: &Arc<dyn FlagGate>,
    log: &mobius_log::Ingestor,
    question: &Question,
) -> Result<Vec<String>, FlagError> {
    let Some(answer) = gate.decide(question) else { return Ok(Vec::new()) };
    let decision = emit::FlagPolicyDecision {
        set: &question.set,
        environment: &question.environment,
        flag: question.flag.as_deref(),
        change: question.change.as_str(),
        version_before: question.version_before,
        version_after: question.version_after,
        by: &question.by,
        deny: &answer.deny,
        warn: &answer.warn,
        exceptions: &answer.exceptions,
        at: question.at,
    };
    match emit::policy_decided(&decision).map_err(FlagError::Event).and_then(|e| Ok(log.append(&[e])?)) {
        Ok(_) => {}
        // The decision stands; the log says it could not be recorded.
        Err(error) => {
            tracing::error!(set = %question.set, error = %format!("{error:#}"), "the gate policies' decision about a flag change cannot be recorded")
        }
    }
    let (set, environment) = (&question.set, &question.environment);
    for warning in &answer.warn {
        tracing::warn!(%set, %environment, change = question.change.as_str(), "gate policy: {warning}");
    }
    if answer.deny.is_empty() {
        return Ok(answer.warn);
    }
    tracing::info!(%set, %environment, denials = answer.deny.len(), "the gate policies refused the flag change");
    Err(FlagError::PolicyDenied {
        set: question.set.clone(),
        environment: question.environment.clone(),
        change: question.change.as_str(),
        deny: answer.deny,
    })
}

/// `- message` lines, as a refusal lists the deny messages.
pub(crate) fn listed(messages: &[String]) -> String {
    messages.iter().map(|m| format!("\n  - {m}")).collect()
}

/// Every flag whose definition differs between two documents, with both definitions.
pub(crate) fn altered(before: Option<&str>, after: Option<&str>) -> Vec<Altered> {
    let flags = |document: Option<&str>| -> serde_json::Map<String, Value> {
        document
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .and_then(|v| v.get("flags").and_then(Value::as_object).cloned())
            .unwrap_or_default()
    };
    let (before, after) = (flags(before), flags(after));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| Altered { key: key.clone(), before: before.get(key).cloned(), after: after.get(key).cloned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flags_whose_definitions_differ_are_altered() {
        let before = r#"{"flags": {"a": {"state": "ENABLED"}, "b": {"state": "ENABLED"}, "gone": {}}}"#;
        let after = r#"{"flags": {"a": {"state": "ENABLED"}, "b": {"state": "DISABLED"}, "new": {}}}"#;
        let altered = altered(Some(before), Some(after));
        let keys: Vec<(&str, bool, bool)> =
            altered.iter().map(|a| (a.key.as_str(), a.before.is_some(), a.after.is_some())).collect();
        assert_eq!(keys, [("b", true, true), ("gone", true, false), ("new", false, true)]);
        assert_eq!(altered[0].after.as_ref().unwrap()["state"], "DISABLED");
        assert_eq!(super::altered(None, Some(before)).len(), 3, "a new set adds every flag");
        assert_eq!(super::altered(Some(before), None).len(), 3, "a deletion removes every flag");
    }

    #[test]
    fn changes_are_named_as_policies_read_them() {
        let named: Vec<&str> = [Action::Loaded, Action::State, Action::Default, Action::Split, Action::Deleted]
            .into_iter()
            .map(|a| Change::of(a).as_str())
            .collect();
        assert_eq!(named, ["document", "state", "default-variant", "rollout-step", "delete"]);
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod flow;
