//! The port of the `mobius/deploy` and `mobius/policy-check` actions: the engine does no
//! network I/O and knows no server, so a deployment, or a question to the error-budget policy,
//! is asked of a [`Deployments`] given in [`RunOptions::deployments`](super::RunOptions). The
//! server implements it over its control plane; `mobius run` over the HTTP API.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::actions::InputError;

/// The inputs of `mobius/deploy` that name a deployment.
pub const DEPLOY_INPUTS: &[&str] = &["service", "environment", "artifact", "version"];
/// The inputs `mobius/deploy` requires.
pub const DEPLOY_REQUIRED: &[&str] = &["service", "environment", "artifact"];

/// The inputs of `mobius/policy-check`.
pub const POLICY_INPUTS: &[&str] = &["service", "environment", "reason"];
/// The inputs `mobius/policy-check` requires.
pub const POLICY_REQUIRED: &[&str] = &["service"];

/// Why a `mobius/deploy` or `mobius/policy-check` step fails when the run has no [`Deployments`].
pub const NO_SERVER: &str = "mobius/deploy and mobius/policy-check need a Mobius server: run this workflow \
     under `mobius serve`, or set MOBIUS_SERVER for `mobius run`";

/// What a `mobius/deploy` step asks for: the same deployment as
/// `mobius deploy SERVICE ENVIRONMENT --artifact DIGEST [--as VERSION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployStep {
    pub service: String,
    pub environment: String,
    /// The artifact digest, `sha256:<hex>`.
    pub artifact: String,
    /// The version label; the server derives one from the content when `None`.
    pub version: Option<String>,
}

/// What a `mobius/policy-check` step asks: would the error-budget policy let a deploy of
/// `service` to `environment` (default `production`) through now — the question
/// `mobius slo check SERVICE ENVIRONMENT [--reason REASON]` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStep {
    pub service: String,
    pub environment: String,
    /// `hotfix` or `security`: would such a deploy go through as an exception.
    pub reason: Option<String>,
}

/// The policy's answer: `Ok` with what it says (empty when nothing) if a deploy would go
/// through, [`PolicyError::Refused`] with the refusal (the budget and when it recovers) if not,
/// or why it could not be asked.
pub type PolicyFuture = Pin<Box<dyn Future<Output = Result<String, PolicyError>> + Send + 'static>>;

/// An error of an implementation of the port (the store, the HTTP client), kept as the cause.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a `mobius/policy-check` step fails; its log shows the message and its causes.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy would refuse a deploy now; the message has the budget and when it recovers.
    #[error("{message}")]
    Refused { message: String },
    /// The step's `reason` is not an exception the policy knows (the policy's own words).
    #[error(transparent)]
    UnknownReason(Cause),
    /// The error budget could not be read where the policy is decided.
    #[error("cannot read the error budget")]
    BudgetUnreadable(#[source] Cause),
    /// The server that decides was not reached, or did not answer.
    #[error("cannot ask {server} about the error-budget policy")]
    ServerUnreachable {
        server: String,
        #[source]
        source: Cause,
    },
    /// The check stopped before it answered (its task panicked, or the server is shutting down).
    #[error("the policy check failed")]
    Interrupted(#[source] Cause),
}

/// A deployment that ended well: a line for the log and the step's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeployOutcome {
    pub summary: String,
    /// Step outputs (`rollout-id`, `version`, `phase`).
    pub outputs: BTreeMap<String, String>,
}

/// Where a deployment reports its progress while the step waits for it; the step logs each
/// line (masked) as it comes. Cheap to clone; sending after the step ended is a no-op.
#[derive(Debug, Clone)]
pub struct DeployProgress(UnboundedSender<String>);

impl DeployProgress {
    /// A progress sender and the receiving end the step reads.
    pub fn channel() -> (DeployProgress, UnboundedReceiver<String>) {
        let (sender, receiver) = unbounded_channel();
        (DeployProgress(sender), receiver)
    }

    /// Reports one line.
    pub fn line(&self, text: impl Into<String>) {
        // No receiver: the step stopped listening, and there is no one left to tell.
        let _ = self.0.send(text.into());
    }

    /// Whether the step stopped listening (it ended, or its job was cancelled): an
    /// implementation still following a rollout can stop then.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A deployment as a future: `Ok` once the rollout succeeded, `Err` with the reason when the
/// deployment was refused or the rollout ended `failed` or `aborted`.
pub type DeployFuture = Pin<Box<dyn Future<Output = Result<DeployOutcome, DeployError>> + Send + 'static>>;

/// Why a `mobius/deploy` step's deployment did not succeed; the step's log shows the message
/// and its causes after `mobius/deploy failed: `.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The deployment was not started: the server (named when it is another process) refused it.
    #[error("the deployment was refused{}", by(server))]
    Refused {
        /// The server asked over HTTP; `None` for the server the run is part of.
        server: Option<String>,
        #[source]
        source: Cause,
    },
    /// The rollout is over without having succeeded.
    #[error(transparent)]
    RolloutEnded(Box<RolloutEnded>),
    /// Another rollout of the service took the followed one's place before it was over.
    #[error("rollout {rollout} was replaced by rollout {by}")]
    Replaced { rollout: i64, by: i64 },
    /// The followed rollout is no longer stored.
    #[error("rollout {rollout} is no longer stored")]
    Vanished { rollout: i64 },
    /// The rollout could not be read for too long to keep following it.
    #[error("cannot follow rollout {rollout}")]
    Unfollowable {
        rollout: i64,
        #[source]
        source: Cause,
    },
    /// Nobody waits for the result any more (the step ended or its job was cancelled).
    #[error("the step stopped waiting")]
    Abandoned,
    /// The deployment stopped before it answered (its task panicked, or the server is shutting
    /// down).
    #[error("the deployment task failed")]
    Interrupted(#[source] Cause),
}

/// A rollout that is over without having succeeded, as a `mobius/deploy` step says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout {rollout} of {service} {version} to {environment} ended {phase}{}", reason(message))]
pub struct RolloutEnded {
    pub rollout: i64,
    pub service: String,
    pub version: String,
    pub environment: String,
    /// `failed` or `aborted`.
    pub phase: String,
    /// What the rollout says about it; empty when nothing.
    pub message: String,
}

impl From<RolloutEnded> for DeployError {
    fn from(ended: RolloutEnded) -> DeployError {
        DeployError::RolloutEnded(Box::new(ended))
    }
}

fn by(server: &Option<String>) -> String {
    server.as_ref().map(|server| format!(" by {server}")).unwrap_or_default()
}

fn reason(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

/// Runs deployments for `mobius/deploy` steps. The future must not depend on the runtime that
/// polls it beyond being polled (a server's runs each have their own short-lived runtime): an
/// implementation hands its work to where it lives and awaits the answer. Dropping the future
/// (the job was cancelled) stops the waiting, not the rollout.
pub trait Deployments: Send + Sync + fmt::Debug {
    fn deploy(&self, request: DeployStep, progress: DeployProgress) -> DeployFuture;
    /// Asks the error-budget policy; writes nothing (a check is not a deploy).
    fn check_policy(&self, request: PolicyStep) -> PolicyFuture;
}

/// The check a `mobius/policy-check` step's rendered inputs ask for, or why they do not make one.
pub(super) fn policy_request(with: &BTreeMap<String, String>) -> Result<PolicyStep, InputError> {
    let value = |name: &str| with.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    if let Some(unknown) = with.keys().find(|k| !POLICY_INPUTS.contains(&k.as_str())) {
        return Err(InputError::Unknown { input: unknown.clone(), known: POLICY_INPUTS });
    }
    if value("service").is_empty() {
        return Err(InputError::Missing { input: "service" });
    }
    let reason = Some(value("reason")).filter(|r| !r.is_empty());
    if let Some(reason) = &reason
        && reason != "hotfix"
        && reason != "security"
    {
        return Err(InputError::UnknownReason { reason: reason.clone() });
    }
    let environment = Some(value("environment")).filter(|e| !e.is_empty()).unwrap_or_else(|| "production".to_owned());
    Ok(PolicyStep { service: value("service"), environment, reason })
}

/// The request from a step's rendered inputs, or why they do not make one.
pub(super) fn request(with: &BTreeMap<String, String>) -> Result<DeployStep, InputError> {
    let value = |name: &str| with.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    if let Some(unknown) = with.keys().find(|k| !DEPLOY_INPUTS.contains(&k.as_str())) {
        return Err(InputError::Unknown { input: unknown.clone(), known: DEPLOY_INPUTS });
    }
    for name in DEPLOY_REQUIRED {
        if value(name).is_empty() {
            return Err(match *name {
                "artifact" => InputError::EmptyArtifact,
                _ => InputError::Missing { input: name },
            });
        }
    }
    let artifact = value("artifact");
    let hex = artifact.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InputError::NotADigest { artifact });
    }
    Ok(DeployStep {
        service: value("service"),
        environment: value("environment"),
        artifact,
        version: Some(value("version")).filter(|v| !v.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_inputs() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let with = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let ok = request(&with(&[("service", "shop"), ("environment", " staging "), ("artifact", &digest)])).unwrap();
        assert_eq!(ok.environment, "staging");
        assert_eq!(ok.version, None);
        let err = request(&with(&[("service", "shop"), ("environment", "staging"), ("artifact", "")])).unwrap_err();
        assert_eq!(err, InputError::EmptyArtifact);
        assert!(err.to_string().contains("`${{ steps.<upload step id>.outputs.artifact-digest }}`"), "{err}");
        let err = request(&with(&[("service", "shop"), ("artifact", &digest)])).unwrap_err();
        assert_eq!(err, InputError::Missing { input: "environment" });
        assert_eq!(err.to_string(), "input `environment` is required");
        let err = request(&with(&[("service", "shop"), ("environment", "s"), ("artifact", "v1")])).unwrap_err();
        assert_eq!(err, InputError::NotADigest { artifact: "v1".into() });
        let err = request(&with(&[("service", "a"), ("environment", "s"), ("artifact", &digest), ("x", "1")]));
        assert_eq!(err.unwrap_err().to_string(), "unknown input `x` (inputs: service, environment, artifact, version)");
        let err = policy_request(&with(&[("service", "a"), ("reason", "fun")])).unwrap_err();
        assert_eq!(err, InputError::UnknownReason { reason: "fun".into() });
    }

    #[test]
    fn deploy_errors_read_as_the_step_says_them() {
        let ended = |message: &str| {
            DeployError::from(RolloutEnded {
                rollout: 7,
                service: "shop".into(),
                version: "v1".into(),
                environment: "staging".into(),
                phase: "failed".into(),
                message: message.into(),
            })
        };
        assert_eq!(ended("").to_string(), "rollout 7 of shop v1 to staging ended failed");
        assert_eq!(ended("not healthy").to_string(), "rollout 7 of shop v1 to staging ended failed: not healthy");
        let refused = DeployError::Refused { server: Some("http://ci:8080".into()), source: "no such service".into() };
        assert_eq!(
            crate::chain::Chain(&refused).to_string(),
            "the deployment was refused by http://ci:8080: no such service"
        );
    }
}
