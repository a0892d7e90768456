//! `mobius/deploy` steps under `mobius run`: deployments are the server's work, so with
//! `MOBIUS_SERVER` (and `MOBIUS_TOKEN`, a `deploy` token) set, a step asks that server over the
//! HTTP API, as `mobius deploy SERVICE ENV --artifact DIGEST` does, and follows the rollout
//! until it is over. Without `MOBIUS_SERVER` the run has no deployments and such a step fails
//! saying so.

use std::sync::Arc;

use anyhow::{Context, Result};
use mobius_delivery::steps::{self, FOLLOW_INTERVAL, Follow};
use mobius_deploy::rollout::Rollout;
use mobius_pipelines::engine::{
    DeployError, DeployFuture, DeployProgress, DeployStep, Deployments, PolicyError, PolicyFuture, PolicyStep,
};
use reqwest::Method;

use crate::cli::Remote;
use crate::client::Client;

/// Consecutive failed reads of the rollout after which the step gives up following it.
const MAX_READ_FAILURES: u32 = 40;

/// The deployments of `MOBIUS_SERVER`, when it is set.
pub(super) fn from_env() -> Result<Option<Arc<dyn Deployments>>> {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(server) = var("MOBIUS_SERVER") else { return Ok(None) };
    let remote = Remote { server: Some(server.clone()), token: var("MOBIUS_TOKEN") };
    let client = Client::from(&remote)?.context("no server")?;
    Ok(Some(Arc::new(HttpDeployments { client: Arc::new(client), server })))
}

struct HttpDeployments {
    client: Arc<Client>,
    server: String,
}

impl std::fmt::Debug for HttpDeployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeployments").field("server", &self.server).finish_non_exhaustive()
    }
}

impl Deployments for HttpDeployments {
    fn deploy(&self, step: DeployStep, progress: DeployProgress) -> DeployFuture {
        let (client, server) = (self.client.clone(), self.server.clone());
        Box::pin(async move {
            let request = steps::request(step);
            let rollout: Rollout = client
                .json(client.request(Method::POST, "/api/v1/deployments").json(&request))
                .await
                .map_err(|e| DeployError::Refused { server: Some(server), source: e.into() })?;
            let path = format!("/api/v1/rollouts/{}/{}", rollout.service, rollout.environment);
            let mut follow = Follow::new(&rollout, &progress);
            let mut last = rollout;
            let mut failures = 0;
            loop {
                if let Some(done) = follow.observe(&last, &progress) {
                    return done;
                }
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                match client.json::<Rollout>(client.request(Method::GET, &path)).await {
                    Ok(latest) if latest.id == follow.id() => {
                        failures = 0;
                        last = latest;
                    }
                    Ok(_) if last.phase.is_final() => return steps::outcome(&last),
                    Ok(other) => return Err(DeployError::Replaced { rollout: follow.id(), by: other.id }),
                    Err(e) => {
                        failures += 1;
                        if failures >= MAX_READ_FAILURES {
                            return Err(DeployError::Unfollowable { rollout: follow.id(), source: e.into() });
                        }
                        if failures == 1 {
                            progress.line(format!("cannot read rollout {} ({e:#}); retrying", follow.id()));
                        }
                    }
                }
            }
        })
    }

    fn check_policy(&self, step: PolicyStep) -> PolicyFuture {
        let (client, server) = (self.client.clone(), self.server.clone());
        Box::pin(async move {
            let path = format!("/api/v1/policy/{}/{}", step.service, step.environment);
            let reason: Vec<(&str, &str)> = step.reason.iter().map(|r| ("reason", r.as_str())).collect();
            let answer: mobius_reliability::slo::PolicyCheck = client
                .json(client.request(Method::GET, &path).query(&reason))
                .await
                .map_err(|e| PolicyError::ServerUnreachable { server, source: e.into() })?;
            steps::policy_answer(answer)
        })
    }
}
