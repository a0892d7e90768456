//! `mobius/deploy` steps: the pipelines engine's [`Deployments`] port over this control plane
//! ([`Deployer::for_steps`]), and [`Follow`], which turns the states of a rollout into the
//! step's log lines and result (shared with `mobius run`, which follows over the HTTP API).
//!
//! A run executes on a thread of its own with a current-thread runtime that ends with the run,
//! while rollout controllers must outlive it: the deployment is handed to the server's runtime
//! and the step only awaits the answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mobius_deploy::rollout::{Phase, Rollout};
use mobius_pipelines::engine::{
    DeployError, DeployFuture, DeployOutcome, DeployProgress, DeployStep, Deployments, PolicyError, PolicyFuture,
    PolicyStep, RolloutEnded,
};
use tokio::runtime::Handle;

use super::{DeployRequest, Deployer, Source};

/// How often a followed rollout is read again.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// The request `mobius deploy SERVICE ENV --artifact DIGEST [--as VERSION]` sends.
pub fn request(step: DeployStep) -> DeployRequest {
    DeployRequest {
        service: step.service,
        environment: step.environment,
        source: Source::Artifact(step.artifact),
        version: step.version,
        reason: None,
        by: None,
    }
}

/// Follows one rollout: logs each new line of its history, and gives the step's result once
/// it is over (final, and the old version retired).
#[derive(Debug)]
pub struct Follow {
    id: i64,
    seen: usize,
    told_retiring: bool,
}

impl Follow {
    pub fn new(rollout: &Rollout, progress: &DeployProgress) -> Follow {
        progress.line(format!(
            "rollout {} of {} {} to {} started ({})",
            rollout.id,
            rollout.service,
            rollout.new.version,
            rollout.environment,
            rollout.plan.name()
        ));
        Follow { id: rollout.id, seen: 0, told_retiring: false }
    }

    /// The rollout followed.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Logs what is new in `r` (the followed rollout, read again); the result once it is over.
    pub fn observe(&mut self, r: &Rollout, progress: &DeployProgress) -> Option<Result<DeployOutcome, DeployError>> {
        if r.history.len() < self.seen {
            self.seen = 0;
        }
        for entry in &r.history[self.seen..] {
            progress.line(format!("rollout {}: {}", r.id, entry.message));
        }
        self.seen = r.history.len();
        if !r.phase.is_final() {
            return None;
        }
        if r.retire_at.is_some() {
            if !self.told_retiring {
                self.told_retiring = true;
                progress.line(format!("rollout {} {}; waiting for the old version to retire", r.id, r.phase.as_str()));
            }
            return None;
        }
        Some(outcome(r))
    }
}

/// The step's result for a rollout that is over.
pub fn outcome(r: &Rollout) -> Result<DeployOutcome, DeployError> {
    if r.phase != Phase::Succeeded {
        return Err(RolloutEnded {
            rollout: r.id,
            service: r.service.clone(),
            version: r.new.version.clone(),
            environment: r.environment.clone(),
            phase: r.phase.as_str().to_owned(),
            message: r.message.clone(),
        }
        .into());
    }
    let what = format!("rollout {} of {} {} to {}", r.id, r.service, r.new.version, r.environment);
    let outputs = BTreeMap::from([
        ("rollout-id".to_owned(), r.id.to_string()),
        ("version".to_owned(), r.new.version.clone()),
        ("phase".to_owned(), r.phase.as_str().to_owned()),
    ]);
    Ok(DeployOutcome { summary: format!("{what} succeeded"), outputs })
}

/// [`Deployments`] over a [`Deployer`], on the runtime it was made on.
struct StepDeployments {
    deployer: Deployer,
    runtime: Handle,
}

impl std::fmt::Debug for StepDeployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDeployments").finish_non_exhaustive()
    }
}

impl Deployer {
    /// The deployments of `mobius/deploy` steps. Call it on the server's runtime: the
    /// deployments (and the controllers they start) run there, whatever runtime the step is on.
    pub fn for_steps(&self) -> Arc<dyn Deployments> {
        Arc::new(StepDeployments { deployer: self.clone(), runtime: Handle::current() })
    }
}

impl Deployments for StepDeployments {
    fn deploy(&self, step: DeployStep, progress: DeployProgress) -> DeployFuture {
        let deployer = self.deployer.clone();
        let task = self.runtime.spawn(async move {
            let stored = deployer
                .deploy(request(step))
                .await
                .map_err(|e| DeployError::Refused { server: None, source: Box::new(e) })?;
            let rollout = stored.rollout;
            let (service, environment) = (rollout.service.clone(), rollout.environment.clone());
            let mut follow = Follow::new(&rollout, &progress);
            let mut last = rollout;
            loop {
                if let Some(done) = follow.observe(&last, &progress) {
                    return done;
                }
                if progress.is_closed() {
                    return Err(DeployError::Abandoned);
                }
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                let (d, s, e) = (deployer.clone(), service.clone(), environment.clone());
                let latest = mobius_log::blocking::spawn(move || d.status(&s, &e)).await;
                match latest {
                    Ok(Some(stored)) if stored.rollout.id == follow.id() => last = stored.rollout,
                    // A newer rollout started once this one was final (its old version still
                    // warm): this one's result stands.
                    Ok(Some(_)) if last.phase.is_final() => return outcome(&last),
                    Ok(Some(other)) => {
                        return Err(DeployError::Replaced { rollout: follow.id(), by: other.rollout.id });
                    }
                    Ok(None) => return Err(DeployError::Vanished { rollout: follow.id() }),
                    Err(e) => tracing::warn!(rollout = follow.id(), error = %e, "cannot read a followed rollout"),
                }
            }
        });
        Box::pin(async move { task.await.unwrap_or_else(|e| Err(DeployError::Interrupted(Box::new(e)))) })
    }

    fn check_policy(&self, step: PolicyStep) -> PolicyFuture {
        let store = self.deployer.inner.store.clone();
        let now = self.deployer.now();
        let task = self.runtime.spawn(mobius_log::blocking::spawn(move || {
            let reason = step
                .reason
                .as_deref()
                .map(str::parse::<mobius_slo::policy::Reason>)
                .transpose()
                .map_err(|e| PolicyError::UnknownReason(Box::new(e)))?;
            let answer = mobius_reliability::slo::check(store.as_ref(), &step.service, &step.environment, reason, now)
                .map_err(|e| PolicyError::BudgetUnreadable(Box::new(e)))?;
            policy_answer(answer)
        }));
        Box::pin(async move { task.await.unwrap_or_else(|e| Err(PolicyError::Interrupted(Box::new(e)))) })
    }
}

/// The step's answer: `Ok` with what the policy says when it lets a deploy through, else
/// the refusal.
pub fn policy_answer(check: mobius_reliability::slo::PolicyCheck) -> Result<String, PolicyError> {
    let message = check.message.unwrap_or_default();
    if check.allowed { Ok(message) } else { Err(PolicyError::Refused { message }) }
}
