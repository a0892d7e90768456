//! Taking up what another control plane left: a restarted server takes up every environment
//! ([`Deployer::recover`]); with replicas, the replica that gains an environment's lease takes
//! up that one (see [`crate::replicas`]). Either way: the recorded instances that are still
//! alive on this machine are re-adopted and the others restarted on their ports, the data plane
//! is opened with the routing the rollout implies, and an unfinished rollout's controller
//! resumes where it was.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use mobius_deploy::rollout::Stored;
use mobius_deploy::spec::ServiceSpec;
use mobius_store::RolloutQuery;

use crate::{DeployError, Deployer, controller, decode, replicas};

/// Resolves when a replica must stop taking an environment up (its lease was lost).
pub(crate) type Until = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How often a replica taking an environment over tries its proxy's address again while the
/// previous holder's proxy still has it.
const LISTEN_RETRY: Duration = Duration::from_millis(500);

impl Deployer {
    /// After a restart: data planes back, instances re-adopted, controllers resumed; how many
    /// rollouts resumed. With replicas nothing here: each environment is taken up by the
    /// replica that gains its lease.
    pub async fn recover(&self) -> Result<usize, DeployError> {
        if self.inner.config.leases.is_some() {
            return Ok(0);
        }
        let store = self.inner.store.clone();
        let rows = mobius_log::blocking::spawn(move || {
            store.rollouts(&RolloutQuery { limit: 10_000, ..RolloutQuery::default() })
        })
        .await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut resumed = 0;
        for row in rows {
            if !seen.insert((row.service.clone(), row.environment.clone())) {
                continue;
            }
            let Some(stored) = decode(&row) else { continue };
            if self.take_up(stored, None).await? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Takes up an environment whose latest rollout is `stored`; whether its controller
    /// resumed. With `until` (a replica taking the environment over), an address the
    /// previous holder's proxy still has is tried again until it is free or `until` resolves.
    pub(crate) async fn take_up(&self, mut stored: Stored, mut until: Option<&mut Until>) -> Result<bool, DeployError> {
        let id = stored.rollout.id;
        if self.retired(&stored.rollout.service, &stored.rollout.environment).await? == Some(id) {
            return Ok(false);
        }
        let spec = match ServiceSpec::parse("mobius.yaml", &stored.spec) {
            Ok(spec) => spec,
            Err(e) => {
                tracing::error!(rollout = id, error = %e, "a stored rollout's mobius.yaml does not parse: not resumed");
                return Ok(false);
            }
        };
        // Pids are only this machine's to adopt: instances recorded on another one are
        // restarted here (their ports with them).
        let host = self.inner.config.leases.as_ref().map(|_| replicas::this_host());
        let adoptable = stored.host.is_none() || stored.host == host;
        // Re-adopt both versions' instances; the ones that did not survive are restarted.
        let mut versions = vec![false];
        if stored.rollout.stable.is_some() {
            versions.push(true);
        }
        for stable in versions {
            let (deployed, text) = if stable {
                (stored.rollout.stable.clone(), stored.stable_spec.clone().unwrap_or_else(|| stored.spec.clone()))
            } else {
                (Some(stored.rollout.new.clone()), stored.spec.clone())
            };
            let Some(deployed) = deployed else { continue };
            if deployed.instances.is_empty() {
                continue;
            }
            let its_spec = match ServiceSpec::parse("mobius.yaml", &text) {
                Ok(spec) => spec,
                Err(e) => {
                    tracing::error!(rollout = id, error = %e, "a version's stored mobius.yaml does not parse: its instances are not re-adopted");
                    continue;
                }
            };
            let launch = match self.launch(&its_spec, &stored.rollout.environment, &deployed).await {
                Ok(launch) => launch,
                Err(e) => {
                    tracing::error!(rollout = id, error = %e, "cannot start this version's instances: they are not re-adopted");
                    continue;
                }
            };
            let mut kept =
                if adoptable { self.inner.supervisor.adopt(&launch, &deployed.instances).await } else { Vec::new() };
            let lost: Vec<_> =
                deployed.instances.iter().filter(|i| !kept.iter().any(|k| k.addr == i.addr)).cloned().collect();
            for lost in lost {
                match self.inner.supervisor.start_one(&launch, lost.index, Some(lost.addr.port())).await {
                    Ok(instance) => kept.push(instance),
                    Err(e) => tracing::warn!(addr = %lost.addr, error = %e, "cannot restart an instance"),
                }
            }
            kept.sort_by_key(|i| i.index);
            tracing::info!(
                service = %stored.rollout.service,
                environment = %stored.rollout.environment,
                version = %deployed.version,
                "re-adopted {} of {} instance(s)",
                kept.len(),
                deployed.instances.len()
            );
            if stable {
                if let Some(s) = &mut stored.rollout.stable {
                    s.instances = kept;
                }
            } else {
                stored.rollout.new.instances = kept;
            }
        }
        stored.host = host;
        let serving = self.serving(Some(&stored)).0;
        let environment = stored.rollout.environment.clone();
        let plane = loop {
            match (self.plane(&spec, &environment, serving.as_ref()).await, until.as_deref_mut()) {
                (Ok(plane), _) => break plane,
                (Err(DeployError::Listen { listen, .. }), Some(until)) => {
                    tracing::info!(%listen, service = spec.name(), %environment, "the proxy's address is still taken (by the previous holder?): trying again");
                    tokio::select! {
                        () = until => return Ok(false),
                        () = tokio::time::sleep(LISTEN_RETRY) => {}
                    }
                }
                (Err(e), _) => return Err(e),
            }
        };
        plane.set_table(controller::table(&stored.rollout));
        self.save(&mut stored).await?;
        if !stored.rollout.phase.is_final() || stored.rollout.retire_at.is_some() {
            self.spawn_controller(stored, plane);
            return Ok(true);
        }
        Ok(false)
    }
}
