//! A rollout as a persisted state machine, with Argo Rollouts' semantics.
//!
//! [`next`] looks at a [`Rollout`] and the time and returns the one [`Action`] to take; the
//! controller (in `mobius-server`) performs it — starting processes, changing the routing
//! table, taking an analysis measurement — and reports the result back through the methods
//! on [`Rollout`] (`started`, `weight_set`, `measured`, …), then stores the rollout. Nothing
//! here does I/O, so every transition is a unit test, and a controller that restarts picks up
//! a stored rollout exactly where it was.
//!
//! Strategies:
//! - *rolling*: one new instance at a time (health-gated), each followed by one old instance
//!   out of the routing table and stopped; traffic follows the share of new instances.
//! - *blue-green*: the new version at full size beside the old, then 100% of traffic at once;
//!   with analysis, judged after the switch (a failure switches back); the old version stays
//!   warm for `scale_down_delay`, during which `undo` is instant.
//! - *canary*: the stable version stays at full size throughout, so an abort snaps traffic
//!   back to 0% canary at once; steps set the weight, pause (for a time, or until promoted)
//!   and analyse. After the last step the canary is promoted: 100%, then it becomes stable.
//!
//! Abort (by hand or by a failed analysis) sends all traffic to stable and stops the new
//! version; an inconclusive analysis pauses the rollout for a human, as in Argo Rollouts.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::analysis::{AnalysisSpec, AnalysisState, Measurement, Outcome};
use crate::spec::{Approval, EnvironmentSpec, ServiceSpec, Step, Strategy};
use crate::supervisor::Instance;

mod stored;
pub use stored::Stored;

/// Why a user's change to a rollout (`promote`, `abort`, `undo`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("the rollout of {service} to {environment} is {phase}, not paused: nothing to promote")]
    NotPaused { service: String, environment: String, phase: &'static str },
    #[error("the rollout already {phase}")]
    Finished { phase: &'static str },
    #[error("the previous version is no longer running")]
    PreviousNotRunning,
}

/// An analysis step's own settings do not make an analysis (`mobius.yaml` was checked when it
/// was parsed, so this means the stored definition and this build disagree).
#[derive(Debug, thiserror::Error)]
#[error("an analysis step's settings are not valid")]
pub struct AnalysisStepError(#[from] pub serde_json::Error);

/// A strategy with every setting resolved (what a rollout stores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Rolling,
    BlueGreen { scale_down_delay_ms: u64, analysis: Option<AnalysisSpec> },
    Canary { steps: Vec<PlanStep> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStep {
    SetWeight(u8),
    /// Milliseconds, or `None` until promoted.
    Pause(Option<u64>),
    Analysis(AnalysisSpec),
}

impl Plan {
    /// The plan for deploying to `environment` of `spec`.
    pub fn for_environment(spec: &ServiceSpec, environment: &EnvironmentSpec) -> Result<Plan, AnalysisStepError> {
        let analysis = spec.analysis_for(environment);
        Ok(match &environment.strategy {
            Strategy::Rolling => Plan::Rolling,
            Strategy::BlueGreen(bg) => Plan::BlueGreen {
                scale_down_delay_ms: millis(bg.scale_down_delay.0),
                analysis: bg.analysis.then(|| analysis.clone()),
            },
            Strategy::Canary(canary) => {
                let mut steps = Vec::new();
                for step in &canary.steps {
                    steps.push(match &step.value {
                        Step::SetWeight(w) => PlanStep::SetWeight(*w),
                        Step::Pause(p) => PlanStep::Pause(p.duration.map(|d| millis(d.0))),
                        Step::Analysis(overrides) => {
                            PlanStep::Analysis(ServiceSpec::step_analysis(&analysis, overrides)?)
                        }
                    });
                }
                Plan::Canary { steps }
            }
        })
    }

    /// A plain immediate switch (for `undo`): blue-green without analysis or delay.
    pub fn switch() -> Plan {
        Plan::BlueGreen { scale_down_delay_ms: 0, analysis: None }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Plan::Rolling => "rolling",
            Plan::BlueGreen { .. } => "blue-green",
            Plan::Canary { .. } => "canary",
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One version as deployed: where its release is and its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub version: String,
    /// The release directory the instances run from.
    pub release: String,
    /// The artifact id (`pkg:generic/NAME@sha256%3A…`) when deployed from an artifact.
    pub artifact: Option<String>,
    /// The commit it was built from, when known.
    pub revision: Option<String>,
    pub instances: Vec<Instance>,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for `promote` (manual approval) before anything starts.
    Pending,
    Progressing,
    /// At an indefinite pause, or after an inconclusive analysis: `promote` goes on.
    Paused,
    /// Done: the new version is stable.
    Succeeded,
    /// Rolled back: stable serves everything, the new version is stopped.
    Aborted,
    /// The new version never served (it did not start or was not healthy); stable untouched.
    Failed,
}

impl Phase {
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Aborted | Phase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::Succeeded => "succeeded",
            Phase::Aborted => "aborted",
            Phase::Failed => "failed",
        }
    }
}

/// An analysis in progress: its state and when the next measurement is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRun {
    pub spec: AnalysisSpec,
    pub state: AnalysisState,
    pub next_at: Timestamp,
    /// The SLI counters at the start of the current interval (opaque to this module).
    pub baseline: serde_json::Value,
}

/// A line of the rollout's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: Timestamp,
    pub message: String,
}

/// One rollout of a version of a service to an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Assigned by the store (0 before it is stored).
    pub id: i64,
    pub service: String,
    pub environment: String,
    pub plan: Plan,
    pub phase: Phase,
    /// The next canary step to take.
    pub step: usize,
    /// Percentage of traffic to the new version.
    pub weight: u8,
    /// The version serving before this rollout (`None` for a first deployment).
    pub stable: Option<Deployed>,
    /// The version being rolled out; its `instances` fill in as they start.
    pub new: Deployed,
    /// How many instances a version runs.
    pub instances: u32,
    pub paused_until: Option<Timestamp>,
    pub analysis: Option<AnalysisRun>,
    /// The old version, kept warm until `at` after a blue-green switch.
    pub retire_at: Option<Timestamp>,
    /// Why it is paused, aborted or failed.
    pub message: String,
    pub history: Vec<Entry>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Every measurement taken, for `status` and the post-mortem.
    pub measurements: Vec<Measurement>,
}

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing until `until` (or until someone promotes or aborts, when `None`).
    Wait { until: Option<Timestamp> },
    /// Start `count` instances of the new version, health-gated (all or nothing).
    StartNew { count: u32 },
    /// Rolling: start new instance `index`, then take one old instance out and stop it.
    ReplaceOne { index: u32 },
    /// Route this share of traffic to the new version.
    SetWeight(u8),
    /// Take an analysis measurement of the interval that just ended.
    Measure,
    /// The new version takes all traffic and becomes stable.
    Promote,
    /// Stop the old version's instances (after a promotion).
    RetireOld,
    /// All traffic to stable, stop the new version.
    Abort { reason: String },
    /// Nothing left to do.
    Done,
}

impl Rollout {
    /// A rollout of `new` to `environment`, replacing `stable`.
    pub fn new(
        service: &str,
        environment: &EnvironmentSpec,
        plan: Plan,
        instances: u32,
        stable: Option<Deployed>,
        new: Deployed,
        now: Timestamp,
    ) -> Rollout {
        let phase = if environment.approval == Approval::Manual { Phase::Pending } else { Phase::Progressing };
        let mut rollout = Rollout {
            id: 0,
            service: service.to_owned(),
            environment: environment.name.value.clone(),
            plan,
            phase,
            step: 0,
            weight: 0,
            stable,
            new,
            instances,
            paused_until: None,
            analysis: None,
            retire_at: None,
            message: String::new(),
            history: Vec::new(),
            created_at: now,
            finished_at: None,
            measurements: Vec::new(),
        };
        let what = match &rollout.stable {
            Some(stable) => format!("{} → {} ({})", stable.version, rollout.new.version, rollout.plan.name()),
            None => format!("{} (first deployment)", rollout.new.version),
        };
        rollout.log(now, format!("rollout of {what} to {}", rollout.environment));
        if phase == Phase::Pending {
            rollout.message = "waiting for approval: `mobius rollout promote`".to_owned();
            rollout.log(now, rollout.message.clone());
        }
        rollout
    }

    pub fn log(&mut self, at: Timestamp, message: impl Into<String>) {
        self.history.push(Entry { at, message: message.into() });
    }

    /// `promote`: go on from a pause or an approval wait. Refused when not paused.
    pub fn promote(&mut self, now: Timestamp) -> Result<(), ChangeRefused> {
        match self.phase {
            Phase::Pending => {
                self.phase = Phase::Progressing;
                self.message.clear();
                self.log(now, "approved");
                Ok(())
            }
            Phase::Paused => {
                self.phase = Phase::Progressing;
                self.paused_until = None;
                // An inconclusive analysis is over once a human decides.
                self.analysis = None;
                self.step += 1;
                self.message.clear();
                self.log(now, "promoted: resuming");
                Ok(())
            }
            other => Err(ChangeRefused::NotPaused {
                service: self.service.clone(),
                environment: self.environment.clone(),
                phase: other.as_str(),
            }),
        }
    }

    /// `abort`: roll back now. Refused once finished.
    pub fn request_abort(&mut self, now: Timestamp, reason: &str) -> Result<(), ChangeRefused> {
        if self.phase.is_final() {
            return Err(ChangeRefused::Finished { phase: self.phase.as_str() });
        }
        self.phase = Phase::Progressing;
        self.message = format!("abort requested: {reason}");
        self.log(now, self.message.clone());
        // `next` sees the message and aborts.
        self.paused_until = None;
        Ok(())
    }

    /// The new version's instances are healthy.
    pub fn started(&mut self, now: Timestamp, instances: Vec<Instance>) {
        self.new.instances = instances;
        let first = self.stable.is_none();
        self.log(now, format!("{} instance(s) of {} healthy", self.new.instances.len(), self.new.version));
        if first {
            // Nothing to shift from: the new version takes all traffic at once.
            self.weight = 100;
        }
    }

    /// Starting the new version failed: stable is untouched.
    pub fn failed(&mut self, now: Timestamp, reason: &str) {
        self.phase = Phase::Failed;
        self.message = reason.to_owned();
        self.finished_at = Some(now);
        self.log(now, format!("failed: {reason}"));
    }

    /// Rolling: new instance `index` is up and one old instance is out.
    pub fn replaced(&mut self, now: Timestamp, new: Instance, retired_old: Option<Instance>) {
        self.new.instances.push(new);
        if let (Some(stable), Some(old)) = (&mut self.stable, retired_old) {
            stable.instances.retain(|i| i.addr != old.addr);
        }
        let total = self.instances.max(1);
        self.weight = u8::try_from(self.new.instances.len() as u32 * 100 / total).unwrap_or(100);
        self.log(now, format!("{} of {} instances replaced", self.new.instances.len(), total));
    }

    /// The routing table now sends `weight`% to the new version.
    pub fn weight_set(&mut self, now: Timestamp, weight: u8) {
        self.weight = weight;
        self.log(now, format!("weight {weight}%"));
        if let Plan::Canary { steps } = &self.plan
            && matches!(steps.get(self.step), Some(PlanStep::SetWeight(_)))
        {
            self.step += 1;
        }
    }

    /// Starts the current analysis step (or blue-green's) with the SLI baseline now.
    pub fn begin_analysis(&mut self, now: Timestamp, spec: AnalysisSpec, baseline: serde_json::Value) {
        let next_at = now + duration_ms((spec.interval_secs * 1000.0) as u64);
        self.log(now, format!("analysis started: a measurement every {} s", spec.interval_secs));
        self.analysis = Some(AnalysisRun { spec, state: AnalysisState::default(), next_at, baseline });
    }

    /// A measurement of the interval that ended; `baseline` starts the next one.
    pub fn measured(&mut self, now: Timestamp, measurement: Measurement, baseline: serde_json::Value) {
        let Some(run) = &mut self.analysis else { return };
        let outcome = run.state.record(&run.spec, measurement.clone());
        run.baseline = baseline;
        run.next_at = now + duration_ms((run.spec.interval_secs * 1000.0) as u64);
        let summary = format!("measurement {:?}: {}", measurement.verdict, describe(&measurement));
        self.measurements.push(measurement);
        self.log(now, summary);
        match outcome {
            Outcome::Running => {}
            Outcome::Succeeded => {
                self.analysis = None;
                self.log(now, "analysis passed");
                if let Plan::Canary { .. } = self.plan {
                    self.step += 1;
                }
                if let Plan::BlueGreen { .. } = self.plan {
                    self.step += 1;
                }
            }
            Outcome::Failed => {
                let last = self.measurements.last().map(describe).unwrap_or_default();
                self.message = format!("analysis failed: {last}");
            }
            Outcome::Inconclusive => {
                self.phase = Phase::Paused;
                self.message =
                    "analysis inconclusive (too little traffic or no clear verdict): promote or abort".to_owned();
                self.log(now, self.message.clone());
            }
        }
    }

    /// The new version is stable now; the old one is retired at once or after a delay.
    pub fn promoted(&mut self, now: Timestamp) {
        self.weight = 100;
        let delay = match self.plan {
            Plan::BlueGreen { scale_down_delay_ms, .. } => scale_down_delay_ms,
            _ => 0,
        };
        self.retire_at = self.stable.as_ref().map(|_| now + duration_ms(delay));
        self.log(now, format!("{} promoted: all traffic", self.new.version));
        // Done from the users' point of view; the old version may stay warm a while.
        self.succeed(now);
    }

    /// The old version's instances are stopped.
    pub fn retired(&mut self, now: Timestamp) {
        if let Some(stable) = &mut self.stable {
            stable.instances.clear();
        }
        self.retire_at = None;
        self.log(now, "previous version stopped");
        if self.phase != Phase::Succeeded {
            self.succeed(now);
        }
    }

    fn succeed(&mut self, now: Timestamp) {
        self.phase = Phase::Succeeded;
        self.finished_at = Some(now);
        self.message.clear();
        self.log(now, "succeeded");
    }

    /// Traffic is back on stable and the new version is stopped.
    pub fn aborted(&mut self, now: Timestamp, reason: &str) {
        self.weight = 0;
        self.new.instances.clear();
        self.phase = Phase::Aborted;
        self.analysis = None;
        self.message = reason.to_owned();
        self.finished_at = Some(now);
        self.log(now, format!("rolled back: {reason}"));
    }

    /// `undo` inside a blue-green's delay: the previous version is still running, so traffic
    /// goes back to it at once (the controller aborts).
    pub fn undo_switch(&mut self, now: Timestamp) -> Result<(), ChangeRefused> {
        if !self.old_is_warm() {
            return Err(ChangeRefused::PreviousNotRunning);
        }
        self.phase = Phase::Progressing;
        self.retire_at = None;
        self.finished_at = None;
        self.message = "abort requested: undone while the previous version was still warm".to_owned();
        self.log(now, self.message.clone());
        Ok(())
    }

    /// Whether the rollout was blue-green-switched and its old version is still warm.
    pub fn old_is_warm(&self) -> bool {
        self.retire_at.is_some() && self.stable.as_ref().is_some_and(|s| !s.instances.is_empty())
    }
}

fn duration_ms(ms: u64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn describe(m: &Measurement) -> String {
    let checks: Vec<String> = m
        .checks
        .iter()
        .map(|c| {
            let value = c.value.map_or_else(|| "no data".to_owned(), number);
            format!("{} {value} (limit {}) {}", c.name, number(c.threshold), if c.passed { "ok" } else { "FAILED" })
        })
        .collect();
    checks.join(", ")
}

/// `50`, `0.1935`: counts without decimals, rates with four.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.4}") }
}

/// The one action to take for `r` at `now`.
pub fn next(r: &Rollout, now: Timestamp) -> Action {
    if r.phase.is_final() {
        // A switched blue-green keeps its old version warm until the delay is over.
        return match r.retire_at {
            Some(at) if now >= at => Action::RetireOld,
            Some(at) => Action::Wait { until: Some(at) },
            None => Action::Done,
        };
    }
    if let Some(reason) = r.message.strip_prefix("abort requested: ") {
        return Action::Abort { reason: reason.to_owned() };
    }
    if let Some(run) = &r.analysis
        && run.state.outcome(&run.spec) == Outcome::Failed
    {
        return Action::Abort { reason: r.message.clone() };
    }
    match r.phase {
        Phase::Pending | Phase::Paused => return Action::Wait { until: None },
        Phase::Progressing => {}
        _ => return Action::Done,
    }
    if let Some(at) = r.retire_at {
        return if now >= at { Action::RetireOld } else { Action::Wait { until: Some(at) } };
    }
    // A first deployment has nothing to shift from.
    if r.stable.is_none() {
        return if r.new.instances.is_empty() { Action::StartNew { count: r.instances } } else { Action::Promote };
    }
    match &r.plan {
        Plan::Rolling => {
            let done = r.new.instances.len() as u32;
            if done < r.instances { Action::ReplaceOne { index: done } } else { Action::Promote }
        }
        Plan::BlueGreen { analysis, .. } => {
            if r.new.instances.is_empty() {
                return Action::StartNew { count: r.instances };
            }
            if r.weight < 100 {
                return Action::SetWeight(100);
            }
            match (analysis, &r.analysis) {
                // Judged after the switch, once; `step` 1 = passed.
                (Some(_), None) if r.step == 0 => Action::Measure,
                (Some(_), Some(run)) => due(run, now),
                _ => Action::Promote,
            }
        }
        Plan::Canary { steps } => {
            if r.new.instances.is_empty() {
                return Action::StartNew { count: r.instances };
            }
            match steps.get(r.step) {
                None => Action::Promote,
                Some(PlanStep::SetWeight(w)) => Action::SetWeight(*w),
                Some(PlanStep::Pause(Some(_))) => match r.paused_until {
                    Some(until) if now >= until => Action::Wait { until: None },
                    Some(until) => Action::Wait { until: Some(until) },
                    None => Action::Wait { until: None },
                },
                Some(PlanStep::Pause(None)) => Action::Wait { until: None },
                Some(PlanStep::Analysis(_)) => match &r.analysis {
                    None => Action::Measure,
                    Some(run) => due(run, now),
                },
            }
        }
    }
}

fn due(run: &AnalysisRun, now: Timestamp) -> Action {
    if now >= run.next_at { Action::Measure } else { Action::Wait { until: Some(run.next_at) } }
}

/// Moves a rollout through pauses: an indefinite one pauses it; a timed one starts its clock,
/// and once it is over, the rollout goes to the next step. Call before [`next`] each tick.
/// A rollout whose abort was requested is left for [`next`] to abort: pausing it again would
/// drop the request.
pub fn advance_pauses(r: &mut Rollout, now: Timestamp) {
    let aborting = r.message.starts_with("abort requested: ");
    if r.phase != Phase::Progressing || aborting || r.stable.is_none() || r.new.instances.is_empty() {
        return;
    }
    let Plan::Canary { steps } = &r.plan else { return };
    match steps.get(r.step) {
        Some(PlanStep::Pause(None)) => {
            r.phase = Phase::Paused;
            r.message = "paused: `mobius rollout promote` to go on".to_owned();
            r.log(now, r.message.clone());
        }
        Some(PlanStep::Pause(Some(ms))) => match r.paused_until {
            None => {
                r.paused_until = Some(now + duration_ms(*ms));
                r.log(now, format!("pause {} s", *ms as f64 / 1000.0));
            }
            Some(until) if now >= until => {
                r.paused_until = None;
                r.step += 1;
            }
            Some(_) => {}
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests;
