//! Gate policies at deploy time: the Rego policies (`policies/*.rego`, `package mobius.gate`)
//! a release ships, and the server's own, asked before a rollout starts.
//!
//! The deployer knows only the question ([`GateChange`]: what is about to happen, to which
//! release, by whom) and the answer ([`Verdict`]); what the input document holds — the
//! artifact's build, its provenance, the error budget — and how the policies are loaded and
//! evaluated belong to the application, which implements [`GatePolicies`] over
//! `mobius-policy` and the store. So this crate depends on no policy engine.
//!
//! Every decision is recorded (`dev.cdeventsx.mobius-policy.decided.0.1.0`), allowed or not;
//! warnings are logged; a deny refuses the change with every message
//! ([`DeployError::PolicyDenied`]) before anything of it is written.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mobius_events::emit::delivery::{PolicyDecision, policy_decided};
use serde::{Deserialize, Serialize};

use crate::release::Release;
use crate::{DeployError, DeployRequest, Deployer};

/// Where a release keeps its gate policies.
pub const DIR: &str = "policies";

/// What is about to happen, as the gate policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// A release rolled out to an environment.
    Deploy,
    /// A release that ran in one environment promoted to the next.
    Promotion,
    /// Desired state from a Git repository applied to an environment.
    GitopsSync,
}

impl GateAction {
    /// The word policies read in `input.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::Deploy => "deploy",
            GateAction::Promotion => "promotion",
            GateAction::GitopsSync => "gitops-sync",
        }
    }
}

/// Where a deploy comes from: what the gate policies are told it is. Travels with the change
/// to the replica driving the environment (`replicas::Change::Deploy`), `asked` for a change
/// queued by a replica that did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Asked for (the API, the CLI, a pipeline step): `action: deploy`.
    #[default]
    Asked,
    /// Applied by GitOps as a deploy repository declares it: `action: gitops-sync`.
    GitopsSync(SyncSource),
}

impl Origin {
    /// The gate's action for a deploy of this origin.
    pub fn action(&self) -> GateAction {
        match self {
            Origin::Asked => GateAction::Deploy,
            Origin::GitopsSync(_) => GateAction::GitopsSync,
        }
    }

    fn source(&self) -> Option<&SyncSource> {
        match self {
            Origin::Asked => None,
            Origin::GitopsSync(source) => Some(source),
        }
    }
}

/// The deploy repository a GitOps sync applies (`input.gitops`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSource {
    /// The registered repository (`acme/deploy`).
    pub repository: String,
    /// The commit whose environment file declares the change.
    pub revision: String,
    /// That file, relative to the repository (`environments/production.yaml`).
    pub file: String,
}

/// The change the gate policies are asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateChange {
    pub action: GateAction,
    pub service: String,
    pub environment: String,
    /// The release directory; its [`DIR`] holds the release's own policies, if any.
    pub release: PathBuf,
    /// The artifact it ships, as events name it (`pkg:generic/NAME@sha256%3A…`).
    pub artifact: String,
    /// The commit it was built from, when known.
    pub revision: Option<String>,
    /// Who asks: the deploying token's name.
    pub by: Option<String>,
    /// Why, when said (`hotfix`, `security`).
    pub reason: Option<String>,
    /// When, from the control plane's clock.
    pub at: Timestamp,
}

impl GateChange {
    /// The artifact's digest (`sha256:…`), from its id.
    pub fn digest(&self) -> String {
        let encoded = self.artifact.rsplit_once('@').map_or(self.artifact.as_str(), |(_, d)| d);
        encoded.replace("%3A", ":")
    }

    /// The release's own policy directory.
    pub fn release_policies(&self) -> PathBuf {
        self.release.join(DIR)
    }
}

/// What the gate policies decided. The change is allowed when `deny` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Every reason to refuse: deny messages, and a policy that does not load or errs (the
    /// gate fails closed), at its `file:line:col`.
    pub deny: Vec<String>,
    pub warn: Vec<String>,
    /// The rules an `exception` excepted.
    pub exceptions: Vec<String>,
}

/// The gate policies the application applies (see the module's docs).
pub trait GatePolicies: Send + Sync {
    /// The decision about `change`, or `None` when no policy applies to it (neither the
    /// release nor the server has any). Blocking (files, the store): called on the blocking
    /// pool. Never fails: whatever keeps a decision from being made is a deny.
    fn decide(&self, change: &GateChange) -> Option<Verdict>;

    /// [`GatePolicies::decide`] about a GitOps sync of `source` (`None`: not a sync); the
    /// policies see where it comes from. By default, `decide` alone.
    fn decide_from(&self, change: &GateChange, source: Option<&SyncSource>) -> Option<Verdict> {
        let _ = source;
        self.decide(change)
    }
}

impl std::fmt::Debug for dyn GatePolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatePolicies")
    }
}

/// `- message` lines, as a refusal lists the deny messages.
pub fn listed(messages: &[String]) -> String {
    messages.iter().map(|m| format!("\n  - {m}")).collect()
}

impl Deployer {
    /// Asks the gate policies about deploying `release` as `request` says: records the
    /// decision, logs its warnings, and refuses on a deny. No gate configured, or no policy
    /// for the release: allowed, and nothing recorded.
    pub(crate) async fn check_gate(
        &self,
        request: &DeployRequest,
        release: &Release,
        origin: &Origin,
    ) -> Result<(), DeployError> {
        let change = GateChange {
            action: origin.action(),
            service: request.service.clone(),
            environment: request.environment.clone(),
            release: release.dir.clone(),
            artifact: release.artifact.clone(),
            revision: release.revision.clone(),
            by: request.by.clone(),
            reason: request.reason.map(|r| r.to_string()),
            at: self.now(),
        };
        self.ask_gate_from(change, origin.source().cloned()).await
    }

    /// Asks the gate policies about `change` (see [`Deployer::check_gate`]): records the
    /// decision, logs its warnings, and refuses on a deny. What a change that is not a deploy
    /// of this control plane calls first (a promotion written to git, a GitOps sync), with its
    /// own [`GateAction`].
    pub async fn ask_gate(&self, change: GateChange) -> Result<(), DeployError> {
        self.ask_gate_from(change, None).await
    }

    async fn ask_gate_from(&self, change: GateChange, source: Option<SyncSource>) -> Result<(), DeployError> {
        let Some(gate) = self.inner.config.policy.clone() else { return Ok(()) };
        let (verdict, change) =
            mobius_log::blocking::spawn(move || (gate.decide_from(&change, source.as_ref()), change)).await;
        let Some(verdict) = verdict else { return Ok(()) };
        let decision = PolicyDecision {
            environment: &change.environment,
            action: change.action.as_str(),
            artifact: &change.artifact,
            deny: &verdict.deny,
            warn: &verdict.warn,
            exceptions: &verdict.exceptions,
        };
        self.emit(policy_decided(&change.service, &decision, change.at).map(|e| vec![e])).await;
        let (service, environment) = (&change.service, &change.environment);
        for warning in &verdict.warn {
            tracing::warn!(%service, %environment, action = change.action.as_str(), "gate policy: {warning}");
        }
        if verdict.deny.is_empty() {
            return Ok(());
        }
        tracing::info!(%service, %environment, denials = verdict.deny.len(), "the gate policies refused the change");
        Err(DeployError::PolicyDenied {
            service: change.service,
            environment: change.environment,
            action: change.action.as_str(),
            deny: verdict.deny,
        })
    }
}

/// Whether `dir` holds any policy file (`*.rego` that is not a `*_test.rego`).
pub fn has_policies(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".rego") && !name.ends_with("_test.rego") && e.path().is_file()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_from_artifact_id() {
        let change = GateChange {
            action: GateAction::Deploy,
            service: "shop".into(),
            environment: "production".into(),
            release: PathBuf::from("/r"),
            artifact: "pkg:generic/dist@sha256%3Aabc".into(),
            revision: None,
            by: None,
            reason: None,
            at: Timestamp::UNIX_EPOCH,
        };
        assert_eq!(change.digest(), "sha256:abc");
        assert_eq!(change.release_policies(), PathBuf::from("/r/policies"));
    }

    #[test]
    fn a_deploys_origin_survives_the_replicas_queue_and_old_rows_read_as_asked() {
        let source = SyncSource {
            repository: "acme/deploy".into(),
            revision: "9f2c1e7a".into(),
            file: "environments/production.yaml".into(),
        };
        let change = crate::replicas::Change::Deploy {
            release: PathBuf::from("/r"),
            version: "v1".into(),
            artifact: "pkg:generic/dist@sha256%3Aabc".into(),
            revision: None,
            reason: None,
            by: Some("gitops:acme/deploy".into()),
            origin: Origin::GitopsSync(source.clone()),
        };
        let body = serde_json::to_string(&change).unwrap();
        let crate::replicas::Change::Deploy { origin, .. } = serde_json::from_str(&body).unwrap() else {
            panic!("not a deploy: {body}")
        };
        assert_eq!((origin.action(), origin.source()), (GateAction::GitopsSync, Some(&source)));
        // A row queued before the origin travelled: a deploy asked for.
        let old =
            r#"{"deploy": {"release": "/r", "version": "v1", "artifact": "a", "revision": null, "reason": null}}"#;
        let crate::replicas::Change::Deploy { origin, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not a deploy")
        };
        assert_eq!(origin.action(), GateAction::Deploy);
    }

    #[test]
    fn policy_files_are_found_but_tests_alone_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_policies(dir.path()), "an empty directory has none");
        assert!(!has_policies(&dir.path().join("missing")), "a missing directory has none");
        std::fs::write(dir.path().join("gate_test.rego"), "package mobius.gate\n").unwrap();
        assert!(!has_policies(dir.path()), "tests alone are no policy");
        std::fs::write(dir.path().join("gate.rego"), "package mobius.gate\n").unwrap();
        assert!(has_policies(dir.path()));
    }
}
