//! One rollout's controller: a task that performs [`next`]'s actions until the rollout is
//! done, storing it after every change. `promote`, `abort` and `undo` reach it as commands
//! (between actions, and while it waits), so the rollout has one writer. With replicas it runs
//! while its replica drives the environment, and stops between two actions when it gives the
//! environment up (the next holder resumes it from what was stored).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mobius_deploy::analysis::{self, Sample};
use mobius_deploy::rollout::{Action, Phase, Plan, PlanStep, Rollout, advance_pauses, next};
use mobius_deploy::spec::ServiceSpec;
use mobius_proxy::routing::{Backend, RoutingTable};
use mobius_proxy::sli::{SliSnapshot, VersionSli};
use tokio::sync::{mpsc, oneshot, watch};

use super::plane::Plane;
use mobius_deploy::rollout::{ChangeRefused, Stored};

use super::Deployer;
use mobius_events::emit::delivery as emit;

/// What a user asks of a running rollout.
pub(super) enum Command {
    Promote,
    Abort(String),
    UndoSwitch,
}

/// A command and where its answer goes.
pub(super) type Request = (Command, oneshot::Sender<Result<Stored, ChangeRefused>>);

/// How long a wait lasts at most before the controller looks again.
const TICK: Duration = Duration::from_millis(250);

/// The routing table a rollout implies now.
pub(super) fn table(r: &Rollout) -> RoutingTable {
    let backend = |d: &mobius_deploy::rollout::Deployed| Backend {
        version: d.version.clone(),
        addrs: d.instances.iter().map(|i| i.addr).collect(),
    };
    let mut table = RoutingTable::empty(&r.service, &r.environment);
    table.generation = u64::try_from(Timestamp::now().as_microsecond()).unwrap_or_default();
    let new_serves_all = match r.phase {
        Phase::Succeeded => true,
        Phase::Aborted | Phase::Failed => false,
        // A blue-green switch is all at once: no sticky users left on the old version.
        _ => matches!(r.plan, Plan::BlueGreen { .. }) && r.weight == 100 || r.stable.is_none(),
    };
    if new_serves_all {
        if !r.new.instances.is_empty() {
            table.stable = Some(backend(&r.new));
        }
        return table;
    }
    table.stable = r.stable.as_ref().filter(|s| !s.instances.is_empty()).map(backend);
    if !matches!(r.phase, Phase::Aborted | Phase::Failed) && !r.new.instances.is_empty() {
        table.canary = Some(backend(&r.new));
        table.canary_weight = r.weight;
    }
    table
}

impl Deployer {
    pub(super) fn spawn_controller(&self, stored: Stored, plane: Arc<Plane>) {
        let (service, environment) = (stored.rollout.service.clone(), stored.rollout.environment.clone());
        // One server drives everything; a replica only the environments it holds.
        let running = if self.inner.config.leases.is_none() {
            self.inner.always.subscribe()
        } else if let Some(running) = self.inner.replicas.running(&service, &environment) {
            running
        } else {
            // It lost the environment meanwhile: the next holder resumes the stored rollout.
            return tracing::info!(rollout = stored.rollout.id, %service, %environment, "not driven here any more: not started");
        };
        let (sender, commands) = mpsc::unbounded_channel::<Request>();
        let id = stored.rollout.id;
        self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, sender);
        let this = self.clone();
        let handle = tokio::spawn(async move {
            this.control(stored, plane, commands, running).await;
            this.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        if self.inner.config.leases.is_some() {
            self.inner.replicas.track(&service, &environment, handle);
        }
    }

    async fn control(
        &self,
        mut stored: Stored,
        plane: Arc<Plane>,
        mut commands: mpsc::UnboundedReceiver<Request>,
        mut running: watch::Receiver<bool>,
    ) {
        let spec = match ServiceSpec::parse("mobius.yaml", &stored.spec) {
            Ok(spec) => spec,
            Err(e) => {
                return tracing::error!(rollout = stored.rollout.id, error = %e, "the rollout's mobius.yaml does not parse: it is left as it is");
            }
        };
        // Without its own (an unreadable stored one), the stable version stops as the new one does.
        let stable_spec = stored.stable_spec.as_deref().and_then(|t| {
            ServiceSpec::parse("mobius.yaml", t)
                .map_err(|e| tracing::warn!(rollout = stored.rollout.id, error = %e, "the stable version's mobius.yaml does not parse"))
                .ok()
        });
        // The caller stored the rollout just before starting its controller.
        let mut saved = serde_json::to_string(&stored).unwrap_or_default();
        loop {
            if !*running.borrow() {
                // Given up between two actions: everything done so far is stored.
                return tracing::info!(
                    rollout = stored.rollout.id,
                    "the rollout's controller stops here: the environment is driven elsewhere now"
                );
            }
            while let Ok((command, reply)) = commands.try_recv() {
                let answer = self.command(&mut stored, &mut saved, command).await;
                // The asker may have gone (a dropped request); the change stands either way.
                let _ = reply.send(answer);
            }
            let now = self.now();
            advance_pauses(&mut stored.rollout, now);
            let action = next(&stored.rollout, now);
            match action {
                Action::Done => {
                    self.persist(&mut stored, &mut saved).await;
                    return;
                }
                Action::Wait { until } => {
                    self.persist(&mut stored, &mut saved).await;
                    let wait = until
                        .map(|u| Duration::try_from(u.duration_since(now)).unwrap_or_default())
                        .unwrap_or(TICK)
                        .min(TICK);
                    tokio::select! {
                        Some((command, reply)) = commands.recv() => {
                            let answer = self.command(&mut stored, &mut saved, command).await;
                            let _ = reply.send(answer);
                        }
                        changed = running.changed() => if changed.is_err() { return },
                        _ = tokio::time::sleep(wait) => {}
                    }
                    continue;
                }
                Action::StartNew { count } => {
                    // A secret removed since the deploy fails the rollout, saying which.
                    let started = match self.launch(&spec, &stored.rollout.environment, &stored.rollout.new).await {
                        Ok(launch) => self.inner.supervisor.start(&launch, count).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match started {
                        Ok(instances) => stored.rollout.started(self.now(), instances),
                        Err(e) => stored.rollout.failed(self.now(), &e),
                    }
                    plane.set_table(table(&stored.rollout));
                }
                Action::ReplaceOne { index } => {
                    let started = match self.launch(&spec, &stored.rollout.environment, &stored.rollout.new).await {
                        Ok(launch) => {
                            self.inner.supervisor.start_one(&launch, index, None).await.map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    match started {
                        Ok(instance) => {
                            let old = stored.rollout.stable.as_ref().and_then(|s| s.instances.first().cloned());
                            stored.rollout.replaced(self.now(), instance, old.clone());
                            // Out of the table first, then stopped: no request reaches a stopping instance.
                            plane.set_table(table(&stored.rollout));
                            if let Some(old) = old {
                                self.stop_after_drain(&plane, &old, stable_spec.as_ref().unwrap_or(&spec)).await;
                            }
                        }
                        Err(e) => {
                            // Instances of the new version that did start are stopped; stable serves.
                            let started = std::mem::take(&mut stored.rollout.new.instances);
                            stored.rollout.failed(self.now(), &e);
                            plane.set_table(table(&stored.rollout));
                            for instance in &started {
                                self.inner.supervisor.stop(instance, spec.run.shutdown_grace.0).await;
                            }
                        }
                    }
                }
                Action::SetWeight(weight) => {
                    stored.rollout.weight_set(self.now(), weight);
                    plane.set_table(table(&stored.rollout));
                }
                Action::Measure => self.measure(&mut stored.rollout, &plane),
                Action::Promote => {
                    let first = stored.rollout.stable.is_none();
                    stored.rollout.promoted(self.now());
                    plane.set_table(table(&stored.rollout));
                    let artifact = stored.rollout.new.artifact.clone().unwrap_or_default();
                    let r = &stored.rollout;
                    let deployed = emit::deployed(&r.service, &r.environment, &artifact, r.id, first, self.now());
                    self.emit(deployed.map(|e| vec![e])).await;
                }
                Action::RetireOld => {
                    let old = stored.rollout.stable.as_ref().map(|s| s.instances.clone()).unwrap_or_default();
                    for instance in &old {
                        self.stop_after_drain(&plane, instance, stable_spec.as_ref().unwrap_or(&spec)).await;
                    }
                    stored.rollout.retired(self.now());
                }
                Action::Abort { reason } => {
                    let stopping = stored.rollout.new.instances.clone();
                    stored.rollout.aborted(self.now(), &reason);
                    plane.set_table(table(&stored.rollout));
                    for instance in &stopping {
                        self.stop_after_drain(&plane, instance, &spec).await;
                    }
                    let r = &stored.rollout;
                    let failed = r.new.artifact.clone().unwrap_or_default();
                    let stable = r.stable.as_ref().and_then(|s| s.artifact.clone()).unwrap_or_default();
                    let at = self.now();
                    // Users first got the new version at its first weight (or its switch).
                    let impact_from = r.history.iter().find(|e| e.message.starts_with("weight ")).map_or(at, |e| e.at);
                    self.emit(emit::rolled_back(&emit::Rollback {
                        service: &r.service,
                        version: &r.new.version,
                        environment: &r.environment,
                        failed_artifact: &failed,
                        stable_artifact: &stable,
                        rollout: r.id,
                        reason: &reason,
                        impact_from,
                        at,
                    }))
                    .await;
                }
            }
            self.persist(&mut stored, &mut saved).await;
        }
    }

    async fn command(
        &self,
        stored: &mut Stored,
        saved: &mut String,
        command: Command,
    ) -> Result<Stored, ChangeRefused> {
        let now = self.now();
        let result = match command {
            Command::Promote => stored.rollout.promote(now),
            Command::Abort(reason) => stored.rollout.request_abort(now, &reason),
            Command::UndoSwitch => stored.rollout.undo_switch(now),
        };
        result?;
        self.persist(stored, saved).await;
        Ok(stored.clone())
    }

    /// Stores the rollout if it changed since `saved` (what was stored last): a rollout that
    /// waits is looked at every tick, and each store is a durable write.
    async fn persist(&self, stored: &mut Stored, saved: &mut String) {
        let body = match serde_json::to_string(&*stored) {
            Ok(body) => body,
            Err(e) => return tracing::error!(rollout = stored.rollout.id, error = %e, "cannot encode the rollout"),
        };
        if body == *saved {
            return;
        }
        match self.save(stored).await {
            Ok(()) => *saved = body,
            Err(e) => tracing::error!(rollout = stored.rollout.id, error = %e, "cannot store the rollout"),
        }
    }

    /// Stops an instance once the proxy no longer sends it new requests; in-flight ones are
    /// finished by the instance itself on SIGTERM within the grace period.
    async fn stop_after_drain(
        &self,
        plane: &Plane,
        instance: &mobius_deploy::supervisor::Instance,
        spec: &ServiceSpec,
    ) {
        // Until the proxy has the new table, requests may still be sent to the instance.
        tokio::time::sleep(plane.settle()).await;
        let current = self.inner.supervisor.current(instance.addr).unwrap_or_else(|| instance.clone());
        self.inner.supervisor.stop(&current, spec.run.shutdown_grace.0).await;
    }

    /// Starts the analysis of the current step, or judges the interval that just ended.
    fn measure(&self, r: &mut Rollout, plane: &Plane) {
        let now = self.now();
        let snapshot = plane.slis();
        let baseline = serde_json::to_value(&snapshot).unwrap_or_default();
        let Some(run) = &r.analysis else {
            let spec = match &r.plan {
                Plan::Canary { steps } => match steps.get(r.step) {
                    Some(PlanStep::Analysis(spec)) => spec.clone(),
                    _ => return,
                },
                Plan::BlueGreen { analysis: Some(spec), .. } => spec.clone(),
                _ => return,
            };
            r.begin_analysis(now, spec, baseline);
            return;
        };
        let before: SliSnapshot = serde_json::from_value(run.baseline.clone()).unwrap_or_else(|_| SliSnapshot {
            taken_at_ms: 0,
            versions: Default::default(),
            variants: Default::default(),
        });
        let sample = |version: &str| -> Option<Sample> {
            let after = snapshot.versions.get(version)?;
            let interval = match before.versions.get(version) {
                Some(earlier) => after.since(earlier),
                None => after.clone(),
            };
            Some(to_sample(&interval))
        };
        let canary = sample(&r.new.version).unwrap_or_default();
        let stable = r.stable.as_ref().and_then(|s| sample(&s.version));
        let measurement = analysis::measure(&run.spec, &canary, stable.as_ref());
        r.measured(now, measurement, baseline);
    }
}

fn to_sample(sli: &VersionSli) -> Sample {
    Sample {
        requests: sli.requests,
        errors: sli.errors,
        latencies_ms: sli.recent_latencies_ms.clone(),
        p50_ms: sli.quantile_ms(0.5),
        p99_ms: sli.quantile_ms(0.99),
    }
}

impl Deployer {
    /// Sends a command to the controller of the latest rollout, or explains why there is none.
    pub(super) async fn send(&self, id: i64, command: Command) -> Option<Result<Stored, ChangeRefused>> {
        let sender = self.inner.wakers.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()?;
        let (reply, answer) = oneshot::channel();
        sender.send((command, reply)).ok()?;
        answer.await.ok()
    }
}
