//! Retiring a service from an environment (what GitOps's prune does): its instances stopped,
//! its proxy closed, a `service.removed` event, and a marker that recovery and the next deploy
//! honour.

use mobius_deploy::rollout::Stored;
use mobius_events::emit::delivery as emit;

use crate::{DeployError, Deployer, replicas};

impl Deployer {
    /// Retires a service from an environment: both versions' instances stopped and its proxy
    /// closed, a `service.removed` event. Its rollouts stay in the store as history; a restart
    /// does not take it up again, and a later deploy there is a first deploy. Refused while a
    /// rollout is unfinished.
    pub async fn retire(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        if let Some(leases) = &self.inner.config.leases {
            return self.ask(leases, service, environment, replicas::Change::Retire).await;
        }
        self.retire_here(service, environment).await
    }

    pub(crate) async fn retire_here(&self, service: &str, environment: &str) -> Result<Stored, DeployError> {
        let _one = self.inner.changes.lock().await;
        let never = || DeployError::NeverDeployed { service: service.to_owned(), environment: environment.to_owned() };
        let latest = self.latest(service, environment).await?.ok_or_else(never)?;
        let r = &latest.rollout;
        if !r.phase.is_final() {
            return Err(DeployError::RolloutUnfinished {
                id: r.id,
                service: service.to_owned(),
                environment: environment.to_owned(),
                phase: r.phase.as_str(),
            });
        }
        if self.retired(service, environment).await? == Some(r.id) {
            return Err(never());
        }
        // Marked first: a restart in between does not take up what is being stopped.
        let (store, key, id) = (self.inner.store.clone(), retired_key(service, environment), r.id.to_string());
        mobius_log::blocking::spawn(move || store.put_state(&key, &id)).await?;
        for deployed in r.stable.iter().chain(std::iter::once(&r.new)) {
            for instance in &deployed.instances {
                if let Some(current) = self.inner.supervisor.current(instance.addr) {
                    self.inner.supervisor.stop(&current, std::time::Duration::from_secs(5)).await;
                }
            }
        }
        // Dropping the plane closes its proxy.
        self.inner.planes.lock().await.remove(&(service.to_owned(), environment.to_owned()));
        self.emit(emit::service_removed(service, environment, self.now()).map(|e| vec![e])).await;
        Ok(latest)
    }

    /// The id of the rollout a service was retired at in an environment, if it was retired
    /// and not deployed there since.
    pub async fn retired(&self, service: &str, environment: &str) -> Result<Option<i64>, DeployError> {
        let (store, key) = (self.inner.store.clone(), retired_key(service, environment));
        let marked = mobius_log::blocking::spawn(move || store.state(&key)).await?;
        let Some(id) = marked.and_then(|m| m.parse::<i64>().ok()) else { return Ok(None) };
        let latest = self.latest(service, environment).await?;
        Ok(latest.filter(|l| l.rollout.id == id).map(|_| id))
    }
}

/// The state document marking a service retired from an environment: the id of its last
/// rollout then.
fn retired_key(service: &str, environment: &str) -> String {
    format!("retired:{service}/{environment}")
}
