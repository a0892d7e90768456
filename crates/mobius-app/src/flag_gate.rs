//! The flag sets' [`FlagGate`] port over the gate policies (`mobius_features::gate`): a change
//! to a set of an environment is decided by the server's policy directory
//! (`Config::policy_dir`) — a flag change has no release, so no release `policies/` — on the
//! same input a deploy's decision reads, with `action: flag-change` and `input.flag` saying
//! what changes. Without a server directory there is no gate.
//!
//! The input, from what the store knows:
//! - `service`: the service a rollout step is judged by; empty for a change by hand;
//! - `artifact`: what that service runs in the environment now (the newest rollout's new
//!   version once it succeeded, its stable one otherwise), as a deploy's input says an artifact;
//!   every field empty without a service or a deployment;
//! - `actor.token_scope`: the scope of the newest token of the actor's name;
//! - `slo`: the service's error budget in the environment (`ok`, `1.0` without a service).

use std::sync::Arc;

use mobius_features::gate::{Answer, Change, FlagGate, Question};
use mobius_policy::{
    Action, Actor, Artifact, Decision, FlagChange, FlagChangeKind, FlagDiff, Input, Policies, RolloutStep, Scan,
    SecretScan, Slo, SloStatus, Time, Vulnerabilities,
};
use mobius_store::{RolloutQuery, StoreError};

use crate::gate::PolicyGate;

/// The server's gate policies, asked about flag changes.
pub struct FlagPolicies {
    gate: Arc<PolicyGate>,
}

impl FlagPolicies {
    pub fn new(gate: Arc<PolicyGate>) -> FlagPolicies {
        FlagPolicies { gate }
    }

    /// The input document policies decide a flag change on.
    pub fn input(&self, question: &Question) -> Result<Input, StoreError> {
        let service = question.step.as_ref().map(|s| s.service.clone()).unwrap_or_default();
        let artifact = match self.running(&service, &question.environment)? {
            Some((id, revision)) => {
                let digest = id.rsplit_once('@').map_or(id.as_str(), |(_, d)| d).replace("%3A", ":");
                self.gate.artifact(&id, &digest, revision)?
            }
            None => nothing(),
        };
        let slo = if service.is_empty() {
            Slo { status: SloStatus::Ok, budget_remaining: 1.0 }
        } else {
            self.gate.slo(&service, &question.environment, question.at)?
        };
        let flag = FlagChange {
            set: question.set.clone(),
            environment: question.environment.clone(),
            change: kind(question.change),
            flag: question.flag.clone(),
            version_before: question.version_before,
            version_after: question.version_after,
            rollout: question.step.as_ref().map(|s| RolloutStep { variant: s.variant.clone(), weight: s.weight }),
            flags: question
                .altered
                .iter()
                .map(|a| FlagDiff {
                    key: a.key.clone(),
                    before: a.before.clone().unwrap_or_default(),
                    after: a.after.clone().unwrap_or_default(),
                })
                .collect(),
        };
        Ok(Input {
            action: Action::FlagChange,
            service,
            environment: question.environment.clone(),
            artifact,
            actor: Actor { name: question.by.clone(), token_scope: self.gate.token_scope(Some(&question.by))? },
            reason: question.reason.clone(),
            time: Time::new(question.at),
            slo,
            flag: Some(flag),
            gitops: None,
        })
    }

    /// The artifact `service` runs in `environment` now, and its commit.
    fn running(&self, service: &str, environment: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        if service.is_empty() {
            return Ok(None);
        }
        let query = RolloutQuery {
            service: Some(service.to_owned()),
            environment: Some(environment.to_owned()),
            limit: 1,
            ..RolloutQuery::default()
        };
        let rows = self.gate.store().rollouts(&query)?;
        let Some(stored) =
            rows.first().and_then(|r| serde_json::from_str::<mobius_deploy::rollout::Stored>(&r.body).ok())
        else {
            return Ok(None);
        };
        let rollout = stored.rollout;
        let serving = match rollout.phase {
            mobius_deploy::rollout::Phase::Succeeded => Some(rollout.new),
            _ => rollout.stable,
        };
        Ok(serving.and_then(|d| Some((d.artifact?, d.revision))))
    }
}

/// `input.artifact` when there is none to speak of.
fn nothing() -> Artifact {
    Artifact {
        digest: String::new(),
        commit: String::new(),
        branch: String::new(),
        default_branch: String::new(),
        workflow: String::new(),
        run: String::new(),
        built_by_mobius: false,
        scan: Scan {
            secrets: SecretScan { findings: 0, unresolved: 0 },
            vulnerabilities: Vulnerabilities { critical: 0, high: 0, medium: 0, low: 0 },
        },
        provenance: None,
    }
}

fn kind(change: Change) -> FlagChangeKind {
    match change {
        Change::Document => FlagChangeKind::Document,
        Change::State => FlagChangeKind::State,
        Change::DefaultVariant => FlagChangeKind::DefaultVariant,
        Change::RolloutStep => FlagChangeKind::RolloutStep,
        Change::Delete => FlagChangeKind::Delete,
    }
}

impl FlagGate for FlagPolicies {
    fn decide(&self, question: &Question) -> Option<Answer> {
        let dir = self.gate.server()?;
        let input = match self.input(question) {
            Ok(input) => input,
            Err(error) => {
                tracing::error!(%error, set = %question.set, "cannot build the gate policies' input");
                let deny = vec![format!("the gate policies' input cannot be read (so the gate denies): {error}")];
                return Some(Answer { deny, ..Answer::default() });
            }
        };
        // The server's directory always applies once set: one left empty denies.
        let decision = match Policies::load(dir) {
            Ok(policies) => policies.decide(&input),
            Err(error) => Decision {
                allow: false,
                deny: vec![format!("the gate policies do not load (so the gate denies): {error}")],
                ..Decision::default()
            },
        };
        Some(Answer { deny: decision.deny, warn: decision.warn, exceptions: decision.exceptions })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mobius_features::gate::{Altered, Step};
    use mobius_store::{SqliteStore, Store, TokenScope};
    use serde_json::json;

    use super::*;

    fn question(change: Change, step: Option<Step>) -> Question {
        Question {
            set: "shop.production".into(),
            environment: "production".into(),
            change,
            flag: Some("new-checkout".into()),
            version_before: 3,
            version_after: 4,
            step,
            altered: vec![Altered {
                key: "new-checkout".into(),
                before: Some(
                    json!({"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}),
                ),
                after: Some(
                    json!({"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}),
                ),
            }],
            by: "ci".into(),
            reason: None,
            at: jiff::Timestamp::from_second(1_765_000_000).unwrap(),
        }
    }

    fn policies(server: Option<&Path>) -> (tempfile::TempDir, FlagPolicies) {
        let data = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path()).unwrap());
        store.insert_token(&crate::tokens::issue("ci", TokenScope::Deploy).record).unwrap();
        (data, FlagPolicies::new(Arc::new(PolicyGate::new(store, server.map(Path::to_path_buf)))))
    }

    #[test]
    fn the_input_says_what_the_flag_change_is_and_reads_as_the_documented_input() {
        let (_data, gate) = policies(None);
        let input = gate.input(&question(Change::State, None)).unwrap();
        assert_eq!(
            (input.action, input.service.as_str()),
            (Action::FlagChange, ""),
            "a change by hand names no service"
        );
        assert_eq!((input.actor.name.as_str(), input.actor.token_scope.as_str()), ("ci", "deploy"));
        assert_eq!((input.slo.status, input.artifact.digest.as_str()), (SloStatus::Ok, ""));
        let flag = input.flag.as_ref().unwrap();
        assert_eq!((flag.change, flag.version_before, flag.version_after), (FlagChangeKind::State, 3, 4));
        assert_eq!(flag.flags[0].after["state"], "ENABLED");
        let json: serde_json::Value = serde_json::from_str(&input.to_json()).unwrap();
        assert_eq!(json["flag"]["change"], "state");
        assert_eq!(json["flag"]["rollout"], serde_json::Value::Null, "present, null, for a change by hand");
        assert_eq!(Input::from_json(&input.to_json()).unwrap(), input, "what Mobius sends is the documented input");

        let step = Step { variant: "on".into(), weight: 20, service: "shop".into() };
        let input = gate.input(&question(Change::RolloutStep, Some(step))).unwrap();
        assert_eq!(input.service, "shop", "a rollout's step names the service judging it");
        assert_eq!(input.flag.unwrap().rollout, Some(RolloutStep { variant: "on".into(), weight: 20 }));
    }

    #[test]
    fn the_server_directory_decides_and_without_one_there_is_no_gate() {
        let (_data, without) = policies(None);
        assert_eq!(without.decide(&question(Change::State, None)), None);
        let server = tempfile::tempdir().unwrap();
        let rego = "package mobius.gate\n\ndeny_unsaid contains \"say why\" if {\n\tinput.flag.change == \"state\"\n\tnot input.reason\n}\n\nwarn_late contains \"late\" if input.time.hour >= 0\n";
        std::fs::write(server.path().join("flags.rego"), rego).unwrap();
        let (_data, with) = policies(Some(server.path()));
        let answer = with.decide(&question(Change::State, None)).unwrap();
        assert_eq!((answer.deny, answer.warn), (vec!["say why".to_owned()], vec!["late".to_owned()]));
        let said = Question { reason: Some("incident 7".into()), ..question(Change::State, None) };
        assert_eq!(with.decide(&said).unwrap().deny, Vec::<String>::new());

        std::fs::write(
            server.path().join("flags.rego"),
            "package mobius.gate\n\ndeny_x contains msg if {\n\tmsg := 1 / 0\n}\n",
        )
        .unwrap();
        let answer = with.decide(&question(Change::State, None)).unwrap();
        assert_eq!(answer.deny.len(), 1, "a policy that errs denies: {answer:?}");
        assert!(answer.deny[0].contains("flags.rego"), "{answer:?}");
    }
}
