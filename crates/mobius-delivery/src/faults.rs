//! Chaos faults in an environment's proxy (`mobius chaos`): injected, cleared, listed. They
//! reach the proxy of the replica that drives the environment.

use std::sync::Arc;

use mobius_events::emit::delivery as emit;

use crate::plane::{Injected, Plane};
use crate::{DeployError, Deployer};

impl Deployer {
    /// Injects a chaos fault into an environment's proxy (replacing one with the same id). A
    /// fault whose failures are not `counted` is a game day left out of error budgets, and is
    /// recorded as a policy exception.
    pub async fn inject(
        &self,
        service: &str,
        environment: &str,
        fault: mobius_proxy::chaos::Fault,
        counted: bool,
    ) -> Result<Vec<Injected>, DeployError> {
        fault.check()?;
        let plane = self.existing_plane(service, environment).await?;
        let mut faults = plane.faults();
        faults.retain(|f| f.fault.id != fault.id);
        let id = fault.id.clone();
        faults.push(Injected { fault, counted });
        plane.set_faults(faults.clone());
        if !counted {
            let message = format!("game day: failures injected by fault `{id}` are left out of error budgets");
            self.emit(emit::policy_exception(service, environment, "game-day", &message, self.now()).map(|e| vec![e]))
                .await;
        }
        Ok(faults)
    }

    /// Removes every fault from an environment's proxy.
    pub async fn clear_faults(&self, service: &str, environment: &str) -> Result<(), DeployError> {
        self.existing_plane(service, environment).await?.set_faults(Vec::new());
        Ok(())
    }

    /// Every environment's active faults.
    pub async fn faults(&self) -> Vec<(String, String, Vec<Injected>)> {
        let planes = self.inner.planes.lock().await;
        let mut out: Vec<_> = planes
            .iter()
            .map(|((s, e), p)| (s.clone(), e.clone(), p.faults()))
            .filter(|(_, _, f)| !f.is_empty())
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    async fn existing_plane(&self, service: &str, environment: &str) -> Result<Arc<Plane>, DeployError> {
        let planes = self.inner.planes.lock().await;
        planes.get(&(service.to_owned(), environment.to_owned())).cloned().ok_or_else(|| DeployError::NotRunningHere {
            service: service.to_owned(),
            environment: environment.to_owned(),
        })
    }
}
