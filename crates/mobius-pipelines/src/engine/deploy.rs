//! The port of the `mobius/deploy` and `mobius/policy-check` actions: the engine does no
//! network I/O and knows no server, so a deployment, or a question to the error-budget policy,
//! is asked of a [`Deployments`] given in [`RunOptions::deployments`](super::RunOptions). The
//! server implements it over its control plane; `mobius run` over the HTTP API.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

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
/// through, `Err` with the refusal (the budget and when it recovers) if not.
pub type PolicyFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'static>>;

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
pub type DeployFuture = Pin<Box<dyn Future<Output = Result<DeployOutcome, String>> + Send + 'static>>;

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
pub(super) fn policy_request(with: &BTreeMap<String, String>) -> Result<PolicyStep, String> {
    let value = |name: &str| with.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    if let Some(unknown) = with.keys().find(|k| !POLICY_INPUTS.contains(&k.as_str())) {
        return Err(format!("unknown input `{unknown}` (inputs: {})", POLICY_INPUTS.join(", ")));
    }
    if value("service").is_empty() {
        return Err("input `service` is required".to_owned());
    }
    let reason = Some(value("reason")).filter(|r| !r.is_empty());
    if let Some(reason) = &reason
        && reason != "hotfix"
        && reason != "security"
    {
        return Err(format!("input `reason` must be `hotfix` or `security`, not `{reason}`"));
    }
    let environment = Some(value("environment")).filter(|e| !e.is_empty()).unwrap_or_else(|| "production".to_owned());
    Ok(PolicyStep { service: value("service"), environment, reason })
}

/// The request from a step's rendered inputs, or why they do not make one.
pub(super) fn request(with: &BTreeMap<String, String>) -> Result<DeployStep, String> {
    let value = |name: &str| with.get(name).map(|v| v.trim().to_owned()).unwrap_or_default();
    if let Some(unknown) = with.keys().find(|k| !DEPLOY_INPUTS.contains(&k.as_str())) {
        return Err(format!("unknown input `{unknown}` (inputs: {})", DEPLOY_INPUTS.join(", ")));
    }
    for name in DEPLOY_REQUIRED {
        if value(name).is_empty() {
            return Err(match *name {
                "artifact" => "input `artifact` is empty: give the digest of an uploaded artifact, \
                     e.g. `${{ steps.<upload step id>.outputs.artifact-digest }}` (through the build job's outputs)"
                    .to_owned(),
                _ => format!("input `{name}` is required"),
            });
        }
    }
    let artifact = value("artifact");
    let hex = artifact.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("input `artifact` must be an artifact digest `sha256:<64 hex digits>`, not `{artifact}`"));
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
        assert!(err.contains("input `artifact` is empty"), "{err}");
        let err = request(&with(&[("service", "shop"), ("artifact", &digest)])).unwrap_err();
        assert_eq!(err, "input `environment` is required");
        let err = request(&with(&[("service", "shop"), ("environment", "s"), ("artifact", "v1")])).unwrap_err();
        assert!(err.contains("sha256:<64 hex digits>"), "{err}");
        let err = request(&with(&[("service", "a"), ("environment", "s"), ("artifact", &digest), ("x", "1")]));
        assert!(err.unwrap_err().starts_with("unknown input `x`"));
    }
}
