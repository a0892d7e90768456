//! The deployer's gate policies (`mobius_delivery::policy::GatePolicies`) over
//! `mobius-policy` and the store: the `policies/` a release ships and the server's policy
//! directory (`Config::policy_dir`), each deciding on the same input; both apply when present,
//! and with neither there is no gate.
//!
//! The input is built from what the store knows about the change:
//!
//! - `artifact.built_by_mobius`: an `artifact.packaged` fact names the artifact (a Mobius run
//!   uploaded it); a tree sent with `mobius deploy --dir` was not built by Mobius.
//! - `artifact.provenance`: the statement recorded when a run uploaded it
//!   (`mobius_runs::provenance`), for an artifact built by Mobius.
//! - `artifact.commit`: the commit the fact (or the release) names; `workflow`, `run` and
//!   `branch` from the run the provenance names (else the newest run of that commit),
//!   `default_branch` from its repository's clone.
//! - `artifact.scan`: what the building run's `mobius/secret-scan` and
//!   `mobius/dependency-audit` steps found (`mobius_runs::scans`); zeros when none ran.
//! - `actor.token_scope`: the scope of the token named as the deployer (the newest of that
//!   name).
//! - `gitops`: for a GitOps sync, the deploy repository, the revision read and the environment
//!   file (`Origin::GitopsSync`, carried from the reconciler through the replicas' queue).
//! - `slo`: the error-budget policy's state for the service in the environment (`frozen` when
//!   it would refuse, `warning` when it warns) and the smallest budget left among its SLOs there
//!   (`1.0` without SLOs).
//!
//! Policies are loaded at each decision (a deploy is rare, and the release's own are new each
//! time). A directory that does not load, or an input that cannot be built, is a deny — the
//! gate fails closed — with the error at its `file:line:col`, paths given inside the release.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mobius_delivery::policy::{GateAction, GateChange, GatePolicies, SyncSource, Verdict, has_policies};
use mobius_policy::{
    Action, Actor, Artifact, Decision, GitopsSource, Input, Policies, Scan, SecretScan, Slo, SloStatus, Time,
    Vulnerabilities,
};
use mobius_store::{RunQuery, Store, StoreError};

/// How many of the newest runs are searched for the one that built an artifact.
const RUNS_SEARCHED: u32 = 500;

/// The gate policies of releases and of the server.
pub struct PolicyGate {
    store: Arc<dyn Store>,
    /// The server's policy directory, if any.
    server: Option<PathBuf>,
}

impl PolicyGate {
    pub fn new(store: Arc<dyn Store>, server: Option<PathBuf>) -> Self {
        PolicyGate { store, server }
    }

    /// The server's policy directory, if any: what flag changes are decided by.
    pub fn server(&self) -> Option<&Path> {
        self.server.as_deref()
    }

    /// The input document policies decide on.
    pub fn input(&self, change: &GateChange) -> Result<Input, StoreError> {
        let artifact = self.artifact(&change.artifact, &change.digest(), change.revision.clone())?;
        let token_scope = self.token_scope(change.by.as_deref())?;
        Ok(Input {
            action: action(change.action),
            service: change.service.clone(),
            environment: change.environment.clone(),
            artifact,
            actor: Actor { name: change.by.clone().unwrap_or_default(), token_scope },
            reason: change.reason.clone(),
            time: Time::new(change.at),
            slo: self.slo(&change.service, &change.environment, change.at)?,
            flag: None,
            gitops: None,
        })
    }

    /// What the store knows of an artifact (`pkg:generic/NAME@sha256%3A…`, whose digest is
    /// `digest`) built from `revision`, as `input.artifact` says it.
    pub(crate) fn artifact(&self, id: &str, digest: &str, revision: Option<String>) -> Result<Artifact, StoreError> {
        let store = self.store.as_ref();
        let fact = store.artifact(id)?;
        let commit = fact.as_ref().and_then(|(_, revision)| revision.clone()).or(revision);
        let mut artifact = Artifact {
            digest: digest.to_owned(),
            commit: commit.clone().unwrap_or_default(),
            branch: String::new(),
            default_branch: String::new(),
            workflow: String::new(),
            run: String::new(),
            built_by_mobius: fact.is_some(),
            // What the building run's scanner steps found (zeros when none ran).
            scan: Scan {
                secrets: SecretScan { findings: 0, unresolved: 0 },
                vulnerabilities: Vulnerabilities { critical: 0, high: 0, medium: 0, low: 0 },
            },
            provenance: None,
        };
        if artifact.built_by_mobius {
            artifact.provenance = mobius_runs::provenance::of(store, &artifact.digest)?;
            if let Some(s) = mobius_runs::scans::of(store, &artifact.digest)? {
                artifact.scan = Scan {
                    secrets: SecretScan { findings: s.secrets, unresolved: s.secrets },
                    vulnerabilities: Vulnerabilities {
                        critical: s.critical,
                        high: s.high,
                        medium: s.medium,
                        low: s.low,
                    },
                };
            }
        }
        // The run that built it: the one its provenance names, else the newest of its commit.
        let named = artifact.provenance.as_ref().and_then(|statement| {
            statement["predicate"]["buildDefinition"]["internalParameters"]["runId"].as_str()?.parse::<i64>().ok()
        });
        let run = match named {
            Some(id) => store.run(id)?.map(|detail| detail.record),
            None => None,
        };
        let run = match (run, &commit) {
            (Some(run), _) => Some(run),
            (None, Some(commit)) => store
                .runs(&RunQuery { limit: RUNS_SEARCHED, ..RunQuery::default() })?
                .into_iter()
                .find(|r| &r.run.sha == commit),
            (None, None) => None,
        };
        if let Some(run) = &run {
            artifact.workflow = run.run.workflow_file.clone();
            artifact.run = run.id.to_string();
            artifact.branch = run.run.branch.clone().unwrap_or_default();
            if let Some(repository) = store.repositories()?.into_iter().find(|r| r.name == run.run.repository) {
                artifact.default_branch = mobius_runs::runner::default_branch(Path::new(&repository.path));
            }
        }
        Ok(artifact)
    }

    /// The scope of the newest token of this name (empty when none is).
    pub(crate) fn token_scope(&self, name: Option<&str>) -> Result<String, StoreError> {
        let Some(name) = name else { return Ok(String::new()) };
        Ok(self
            .store
            .tokens()?
            .into_iter()
            .filter(|t| t.name == name)
            .max_by_key(|t| t.created)
            .map(|t| t.scope.as_str().to_owned())
            .unwrap_or_default())
    }

    /// The store the gate reads.
    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// `input.slo` for `service` in `environment` at `at`.
    pub(crate) fn slo(&self, service: &str, environment: &str, at: jiff::Timestamp) -> Result<Slo, StoreError> {
        let store = self.store.as_ref();
        let status = match mobius_reliability::slo::gate(store, service, environment, None, at)? {
            mobius_slo::policy::Decision::Refuse(_) => SloStatus::Frozen,
            mobius_slo::policy::Decision::AllowWithWarning(_) => SloStatus::Warning,
            mobius_slo::policy::Decision::Allow | mobius_slo::policy::Decision::AllowAsException { .. } => {
                SloStatus::Ok
            }
        };
        let mut budget_remaining: f64 = 1.0;
        for (owner, slo) in mobius_reliability::slo::definitions(store)? {
            if owner != service || slo.environment_name() != environment {
                continue;
            }
            if let Some(budget) = mobius_reliability::slo::status(store, service, &slo, at)?.budget {
                budget_remaining = budget_remaining.min(budget.remaining);
            }
        }
        Ok(Slo { status, budget_remaining })
    }
}

/// `input.gitops` for a sync of `source`.
fn gitops(source: &SyncSource) -> GitopsSource {
    GitopsSource { repository: source.repository.clone(), revision: source.revision.clone(), file: source.file.clone() }
}

/// The input's action for the deployer's.
fn action(action: GateAction) -> Action {
    match action {
        GateAction::Deploy => Action::Deploy,
        GateAction::Promotion => Action::Promotion,
        GateAction::GitopsSync => Action::GitopsSync,
    }
}

impl GatePolicies for PolicyGate {
    fn decide(&self, change: &GateChange) -> Option<Verdict> {
        self.decide_from(change, None)
    }

    fn decide_from(&self, change: &GateChange, source: Option<&SyncSource>) -> Option<Verdict> {
        let release = change.release_policies();
        let mut dirs: Vec<&Path> = Vec::new();
        if has_policies(&release) {
            dirs.push(&release);
        }
        // The server's directory always applies once set: one left empty by mistake is a
        // deny (`NoPolicies`), never a gate that lets everything through.
        if let Some(server) = &self.server {
            dirs.push(server);
        }
        if dirs.is_empty() {
            return None;
        }
        // Messages name a release's files as the release does (`policies/gate.rego:3:7`).
        let inside = format!("{}/", change.release.display());
        let relative = |message: String| message.replace(&inside, "");
        let input = match self.input(change) {
            Ok(input) => Input { gitops: source.map(gitops), ..input },
            Err(error) => {
                tracing::error!(%error, service = %change.service, "cannot build the gate policies' input");
                let deny = vec![format!("the gate policies' input cannot be read (so the gate denies): {error}")];
                return Some(Verdict { deny, ..Verdict::default() });
            }
        };
        let mut verdict = Verdict::default();
        for dir in dirs {
            let decision = match Policies::load(dir) {
                Ok(policies) => policies.decide(&input),
                Err(error) => Decision {
                    allow: false,
                    deny: vec![format!("the gate policies do not load (so the gate denies): {error}")],
                    ..Decision::default()
                },
            };
            verdict.deny.extend(decision.deny.into_iter().map(relative));
            verdict.warn.extend(decision.warn.into_iter().map(relative));
            verdict.exceptions.extend(decision.exceptions);
        }
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_store::{SqliteStore, TokenScope};

    fn change(release: &Path) -> GateChange {
        GateChange {
            action: GateAction::Deploy,
            service: "shop".into(),
            environment: "production".into(),
            release: release.to_path_buf(),
            artifact: format!("pkg:generic/upload@sha256%3A{}", "a".repeat(64)),
            revision: None,
            by: Some("ci".into()),
            reason: Some("hotfix".into()),
            at: jiff::Timestamp::from_second(1_765_000_000).unwrap(),
        }
    }

    fn gate(server: Option<PathBuf>) -> (tempfile::TempDir, PolicyGate) {
        let data = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path()).unwrap());
        store.insert_token(&crate::tokens::issue("ci", TokenScope::Deploy).record).unwrap();
        (data, PolicyGate::new(store, server))
    }

    #[test]
    fn the_input_says_what_the_store_knows_of_an_artifact_mobius_did_not_build() {
        let release = tempfile::tempdir().unwrap();
        let (_data, gate) = gate(None);
        let input = gate.input(&change(release.path())).unwrap();
        assert_eq!(input.artifact.digest, format!("sha256:{}", "a".repeat(64)));
        assert!(!input.artifact.built_by_mobius, "no artifact.packaged fact names it");
        assert_eq!((input.artifact.commit.as_str(), input.artifact.run.as_str()), ("", ""));
        assert_eq!(input.artifact.provenance, None);
        assert_eq!((input.actor.name.as_str(), input.actor.token_scope.as_str()), ("ci", "deploy"));
        assert_eq!(input.reason.as_deref(), Some("hotfix"));
        assert_eq!((input.slo.status, input.slo.budget_remaining), (SloStatus::Ok, 1.0), "no SLOs: nothing spent");
        assert_eq!(input.time.at(), change(release.path()).at);
    }

    #[test]
    fn the_decision_event_and_the_input_name_an_action_alike() {
        for gate_action in [GateAction::Deploy, GateAction::Promotion, GateAction::GitopsSync] {
            assert_eq!(action(gate_action).to_string(), gate_action.as_str());
        }
    }

    #[test]
    fn no_policy_is_no_gate_and_an_empty_server_directory_denies() {
        let release = tempfile::tempdir().unwrap();
        let (_data, without) = gate(None);
        assert_eq!(without.decide(&change(release.path())), None, "neither the release nor the server has policies");
        let server = tempfile::tempdir().unwrap();
        let (_data, with) = gate(Some(server.path().to_path_buf()));
        let verdict = with.decide(&change(release.path())).expect("the server's directory always applies");
        assert_eq!(verdict.deny.len(), 1, "{verdict:?}");
        assert!(verdict.deny[0].contains("no policy (*.rego) files"), "{verdict:?}");
    }

    #[test]
    fn both_directories_decide_and_their_messages_are_merged() {
        let release = tempfile::tempdir().unwrap();
        let rego = |dir: &Path, body: &str| {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("gate.rego"), format!("package mobius.gate\n\n{body}\n")).unwrap();
        };
        rego(&release.path().join("policies"), "warn_hotfix contains \"a hotfix\" if input.reason == \"hotfix\"");
        let server = tempfile::tempdir().unwrap();
        rego(server.path(), "deny_outside contains \"not built here\" if not input.artifact.built_by_mobius");
        let (_data, gate) = gate(Some(server.path().to_path_buf()));
        let verdict = gate.decide(&change(release.path())).unwrap();
        assert_eq!(verdict.deny, ["not built here"]);
        assert_eq!(verdict.warn, ["a hotfix"]);
    }
}
