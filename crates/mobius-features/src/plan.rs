//! The `rollout` block a flag may carry in its document: `mobius flags rollout` written down,
//! so a release ships the flag and the way it is released together.
//!
//! ```json
//! "new-checkout": {
//!   "state": "ENABLED",
//!   "variants": { "on": true, "off": false },
//!   "defaultVariant": "off",
//!   "rollout": { "variant": "on", "to": 50, "step": 10, "every": "10m" }
//! }
//! ```
//!
//! It is Mobius's extension to flagd's format: flagd's schema lets a flag carry keys of its
//! own, and flagd and every provider ignore them, so the document stays a flagd document. The
//! block is checked wherever a document is (a bad one refuses the whole document at its
//! position) and acted on when the document is loaded through [`Rollouts::load`] — a release's
//! deploy or the server's `PUT`:
//! - the flag in a rollout already: it goes on as it was (abort it to change the plan);
//! - the flag's last rollout completed this plan (same variant and target): nothing, it is
//!   released;
//! - otherwise (never rolled out, stopped by health, aborted, another plan): a rollout starts
//!   at its first step — a new release after a stop is the usual way to try again.
//!
//! A load never takes the split from a rollout: when the loaded flag has no `targeting`, its
//! last rollout is running or completed, and it still splits against the same default, the
//! split in force is kept in the new document. Without this, each deploy of the release would
//! send every user back to the default variant. To end a released split, give the flag
//! targeting of its own or another `defaultVariant` (usually the released variant).

use std::time::Duration;

use mobius_flags::FlagSet;
use serde::Deserialize;
use serde_json::Value;

use crate::rollout::{FlagRollout, MIN_EVERY, Phase, RolloutError, Rollouts, Start, parse_every};
use crate::{Actor, FlagError, Outcome, Put, edit, split};

/// A flag's `rollout` block, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub flag: String,
    pub variant: String,
    /// Percent, 1–100 (100 when left out).
    pub to: u32,
    /// Percent, 1–`to` (10, or `to` if smaller, when left out).
    pub step: u32,
    pub every: Duration,
    /// The service whose health judges it; a release's own service when left out.
    pub service: Option<String>,
}

/// The block as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    variant: String,
    to: Option<u32>,
    step: Option<u32>,
    every: String,
    service: Option<String>,
}

/// The `rollout` blocks of a document already loaded as `set`, in document order; the first
/// bad one is an error at its position (`source:line:col`).
pub fn blocks(source_name: &str, document: &str, set: &FlagSet) -> Result<Vec<Block>, FlagError> {
    let Ok(parsed) = serde_json::from_str::<Value>(document) else { return Ok(Vec::new()) };
    let Some(flags) = parsed.get("flags").and_then(Value::as_object) else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    for (flag, body) in flags {
        let Some(block) = body.get("rollout") else { continue };
        let bad = |field: Option<&str>, message: String| {
            let mut pointer = vec!["flags", flag.as_str(), "rollout"];
            pointer.extend(field);
            let (line, column) = mobius_flags::locate(document, &pointer).unwrap_or((1, 1));
            FlagError::BadRollout { at: format!("{source_name}:{line}:{column}"), flag: flag.clone(), message }
        };
        let written = Written::deserialize(block).map_err(|e| bad(None, e.to_string()))?;
        let to = written.to.unwrap_or(split::WHOLE);
        if !(1..=split::WHOLE).contains(&to) {
            return Err(bad(Some("to"), format!("`to` must be 1–100, not {to}")));
        }
        let step = written.step.unwrap_or(10.min(to));
        if !(1..=to).contains(&step) {
            return Err(bad(Some("step"), format!("`step` must be 1–{to} (the `to`), not {step}")));
        }
        let every = parse_every(&written.every).ok().filter(|every| *every >= MIN_EVERY).ok_or_else(|| {
            bad(
                Some("every"),
                format!("`every` must be a duration of at least 1s such as 30s, 10m or 1h, not `{}`", written.every),
            )
        })?;
        if written.service.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(bad(Some("service"), "`service` must name a service".to_owned()));
        }
        // The variant against the flag as loaded: one of its variants, not its default.
        split::split_of(set, "", flag, &written.variant).map_err(|e| {
            let message = match e {
                FlagError::NoVariant { known, .. } => {
                    format!("the flag has no variant `{}` (its variants: {known})", written.variant)
                }
                FlagError::NoDefault { .. } => "the flag has no defaultVariant to split against".to_owned(),
                FlagError::VariantIsDefault { .. } => {
                    format!("`{}` is the flag's defaultVariant: roll out another variant", written.variant)
                }
                other => other.to_string(),
            };
            bad(Some("variant"), message)
        })?;
        found.push(Block { flag: flag.clone(), variant: written.variant, to, step, every, service: written.service });
    }
    Ok(found)
}

/// What [`Rollouts::load`] did: the document's change, and each block's rollout.
#[derive(Debug)]
pub struct Loading {
    pub outcome: Outcome,
    /// One per block, in document order: the rollout started, or why none did.
    pub rollouts: Vec<(String, BlockOutcome)>,
}

#[derive(Debug)]
pub enum BlockOutcome {
    Started(FlagRollout),
    /// In a rollout already, which goes on.
    Running(FlagRollout),
    /// Its last rollout completed this plan.
    Released,
    /// The start was refused (a frozen budget, targeting written by hand); the document is
    /// loaded all the same.
    Refused(String),
}

impl Rollouts {
    /// Loads a whole document as [`crate::FlagSets::put`] does, keeping the split of each flag
    /// a rollout owns, then starts the rollouts its `rollout` blocks ask for (see the module's
    /// documentation). `service` judges blocks that name none (a release's service); without
    /// one, such a block refuses the document. `exception` (`hotfix`, `security`) takes the
    /// starts through a frozen budget, as it takes the deploy.
    pub async fn load(
        &self,
        put: Put,
        actor: Actor,
        service: Option<&str>,
        exception: Option<&str>,
    ) -> Result<Loading, RolloutError> {
        let source = put.source_name.clone().unwrap_or_else(|| put.set.clone());
        let parsed = crate::validate(&source, &put.document)?;
        let blocks = blocks(&source, &put.document, &parsed)?;
        if let Some(block) = blocks.iter().find(|b| b.service.is_none() && service.is_none()) {
            let (line, column) =
                mobius_flags::locate(&put.document, &["flags", &block.flag, "rollout"]).unwrap_or((1, 1));
            return Err(RolloutError::Flag(FlagError::BadRollout {
                at: format!("{source}:{line}:{column}"),
                flag: block.flag.clone(),
                message: "name the service whose health judges the rollout (`service`), or ship the file in the service's release".to_owned(),
            }));
        }
        let set = put.set.clone();
        let existing = self.list().await?;
        let last = |flag: &str| existing.iter().find(|r| r.set == set && r.flag == flag);
        // The splits running or completed rollouts left go into the new document where its
        // flag has no targeting and splits against the same default.
        let mut document = put.document.clone();
        if let Some(current) = self.flags().current(&put.set) {
            for flag in parsed.flags() {
                let key = flag.key();
                let Some(rollout) = last(key).filter(|r| r.phase.is_active() || r.phase == Phase::Completed) else {
                    continue;
                };
                let (Some(split), None) =
                    (split::targeting_in(&current.document, key), split::targeting_in(&document, key))
                else {
                    continue;
                };
                if flag.default_variant() == Some(rollout.default_variant.as_str())
                    && flag.variant(&rollout.variant).is_some()
                    && split::is_split(&split, &rollout.variant, &rollout.default_variant)
                {
                    document = edit::set_field(&document, key, "targeting", &split.to_string())
                        .map_err(|_| FlagError::NoFlag { set: put.set.clone(), flag: key.to_owned() })?;
                }
            }
        }
        let outcome = self.flags().put(Put { document, ..put }, actor.clone()).await?;

        let mut rollouts = Vec::new();
        for block in blocks {
            let answer = match last(&block.flag) {
                Some(r) if r.phase.is_active() => BlockOutcome::Running(r.clone()),
                Some(r) if r.phase == Phase::Completed && r.variant == block.variant && r.to == block.to => {
                    BlockOutcome::Released
                }
                _ => {
                    let start = Start {
                        set: set.clone(),
                        flag: block.flag.clone(),
                        variant: block.variant.clone(),
                        service: block.service.clone().or(service.map(str::to_owned)).unwrap_or_default(),
                        to: block.to,
                        step: block.step,
                        every: block.every,
                        reason: exception.map(str::to_owned),
                    };
                    match self.start(start, actor.clone()).await {
                        Ok(started) => BlockOutcome::Started(started),
                        Err(refused @ (RolloutError::BudgetExhausted { .. } | RolloutError::Flag(_))) => {
                            tracing::warn!(%set, flag = %block.flag, error = %refused, "the flag file's rollout did not start");
                            BlockOutcome::Refused(refused.to_string())
                        }
                        Err(error) => return Err(error),
                    }
                }
            };
            rollouts.push((block.flag, answer));
        }
        Ok(Loading { outcome, rollouts })
    }
}
