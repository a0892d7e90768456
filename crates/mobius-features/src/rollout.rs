//! Flag rollouts gated by health (issue 15, item 5): a variant's share of a flag moved from 0
//! to `to`% by `step` every `every`, as Flagger moves a canary's weight — and stopped, back to
//! 0%, when the variant or the service is unhealthy.
//!
//! The flag document stays the source of truth for the split: each step is
//! [`FlagSets::set_split`], a version of the set and a `mobius-flag.changed` event whose reason
//! names the rollout. What the rollout itself is (its plan, where it stands, why it stopped) is a
//! state document of the store (`flag-rollouts`), written after every action, so a restarted
//! server resumes it where it stood.
//!
//! The controller is a reconcile loop on the application's clock: [`next`] reads a rollout, the
//! time and the health verdict and returns the one thing to do; [`Rollouts::reconcile`] does it.
//! Health and the error-budget gate are a port ([`RolloutHealth`]) the composition root
//! implements over the proxy's per-variant SLIs, the SLOs' alerts and the policy, so this crate
//! depends on neither delivery nor reliability.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mobius_log::Clock;
use mobius_slo::policy::{Reason, UnknownReason};
use mobius_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::{Actor, FlagError, FlagSets, split};

/// The state document every rollout is kept in.
const STATE_KEY: &str = "flag-rollouts";

/// How often a running rollout's health is read between steps: a failing variant is stopped
/// within this, however long its steps are.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The shortest step interval accepted: a step must leave time to measure it.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Stepping: the next step is due at `next_at`.
    Running,
    /// Held at its weight by `pause` until `resume`.
    Paused,
    /// At `to`: done.
    Completed,
    /// Stopped by health, back at 0% (`why` says what failed).
    Stopped,
    /// Stopped by hand, back at 0%.
    Aborted,
}

impl Phase {
    /// Whether the rollout still owns its flag's split.
    pub fn is_active(self) -> bool {
        matches!(self, Phase::Running | Phase::Paused)
    }
}

/// What `mobius flags rollout SET FLAG --variant V --to N --step S --every D` asks.
#[derive(Debug, Clone)]
pub struct Start {
    /// The flag set.
    pub set: String,
    /// The flag in it.
    pub flag: String,
    /// The variant whose share grows; the rest goes to the flag's default variant.
    pub variant: String,
    /// The service whose SLOs, analysis thresholds and per-variant SLIs judge the rollout.
    pub service: String,
    /// The share the rollout ends at, in percent (1–100).
    pub to: u32,
    /// The share added at each step, in percent (1–`to`).
    pub step: u32,
    /// The time between steps.
    pub every: Duration,
    /// `hotfix` or `security`: steps go through a frozen error budget, as a deploy's would.
    pub reason: Option<String>,
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagRollout {
    pub set: String,
    pub flag: String,
    pub variant: String,
    /// The flag's default variant: what the rest of the split gets.
    pub default_variant: String,
    pub service: String,
    /// The set's environment when the rollout started: what the error-budget gate is asked
    /// about. `None`: the set belongs to no environment, and no budget gates it.
    pub environment: Option<String>,
    pub to: u32,
    pub step: u32,
    /// Seconds between steps.
    pub every_s: u64,
    /// The variant's share now, in percent.
    pub weight: u32,
    pub phase: Phase,
    /// When the current weight took effect: the variant's SLIs are judged from here.
    pub step_at: Timestamp,
    /// When the next step is due (while running).
    pub next_at: Timestamp,
    pub started: Timestamp,
    /// Who started it.
    pub by: String,
    /// The policy exception it steps under.
    pub reason: Option<Reason>,
    /// Why it stopped, or why its last step was refused.
    pub why: Option<String>,
}

impl FlagRollout {
    fn every(&self) -> SignedDuration {
        SignedDuration::from_secs(self.every_s as i64)
    }

    /// What each step's flag change records as its reason.
    fn label(&self) -> String {
        format!("rollout of {}={} to {}%", self.flag, self.variant, self.to)
    }
}

/// What health says about a running rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    /// Stop and go back to 0%; the text says why (`variant on: 12.0% errors over 0.05 …`).
    Unhealthy(String),
}

/// What the error-budget policy says about a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Allow,
    /// Refused with the policy's message — the one a deploy's refusal shows.
    Refuse(String),
}

/// The health of a rollout and the gate on its steps, read where they are measured. Called on
/// the blocking pool: implementations may read the store.
pub trait RolloutHealth: Send + Sync + 'static {
    /// The variant's SLIs since `since`, against the service's analysis thresholds, and whether
    /// one of the service's SLOs pages.
    fn verdict(&self, rollout: &FlagRollout, since: Timestamp, now: Timestamp) -> Result<Verdict, HealthError>;
    /// The error-budget policy for a step of `service` in `environment`.
    fn gate(
        &self,
        service: &str,
        environment: &str,
        reason: Option<Reason>,
        now: Timestamp,
    ) -> Result<Gate, HealthError>;
}

/// Health could not be read (the store, Prometheus): the rollout holds and tries again.
#[derive(Debug, thiserror::Error)]
#[error("the rollout's health cannot be read")]
pub struct HealthError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Why a rollout was refused or failed, in the domain's words.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("--to must be 1–100, not {to}")]
    BadTarget { to: u32 },
    #[error("--step must be 1–{to} (the --to), not {step}")]
    BadStep { step: u32, to: u32 },
    #[error("--every must be at least {}s, not {every:?}", MIN_EVERY.as_secs())]
    BadEvery { every: Duration },
    #[error("--every must be a duration such as 30s, 10m or 1h, not `{text}`")]
    BadEveryText { text: String },
    #[error("the service of the rollout is empty: name it with --service")]
    NoService,
    #[error(transparent)]
    BadReason(#[from] UnknownReason),
    #[error("flag `{flag}` of set `{set}` is in a rollout already (weight {weight}%, {phase:?}): abort it first")]
    AlreadyRolling { set: String, flag: String, weight: u32, phase: Phase },
    #[error("flag `{flag}` of set `{set}` has no rollout")]
    NoRollout { set: String, flag: String },
    #[error("the rollout of flag `{flag}` of set `{set}` is {phase:?}, not {wanted}")]
    WrongPhase { set: String, flag: String, phase: Phase, wanted: &'static str },
    /// The error-budget policy refused the step (the same message a deploy's refusal shows).
    #[error("{message}")]
    BudgetExhausted { set: String, environment: String, message: String },
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error("the stored rollouts cannot be read")]
    Corrupt(#[source] serde_json::Error),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// `--every`: whole seconds, minutes or hours (`30s`, `10m`, `1h`), as Flagger's `interval`.
pub fn parse_every(text: &str) -> Result<Duration, RolloutError> {
    let bad = || RolloutError::BadEveryText { text: text.to_owned() };
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        _ => None,
    };
    seconds.map(Duration::from_secs).ok_or_else(bad)
}

/// The one thing to do for a rollout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Not running: nothing.
    Idle,
    /// Unhealthy: back to 0%, stopped, with why.
    Stop(String),
    /// Move the split to this weight (the gate permitting).
    Step(u32),
    /// At its target and healthy through the last interval: done.
    Complete,
    /// Nothing until then (health is read again before).
    Wait(Timestamp),
}

/// The reconcile rule: health first (a failing variant stops whatever else is due), then the
/// step when it is due, and completion once the last weight held healthy for one interval.
pub fn next(rollout: &FlagRollout, verdict: &Verdict, now: Timestamp) -> Next {
    if rollout.phase != Phase::Running {
        return Next::Idle;
    }
    if let Verdict::Unhealthy(why) = verdict {
        return Next::Stop(why.clone());
    }
    if now < rollout.next_at {
        return Next::Wait(rollout.next_at);
    }
    if rollout.weight >= rollout.to {
        return Next::Complete;
    }
    Next::Step((rollout.weight + rollout.step).min(rollout.to))
}

/// The flag rollouts: started, driven and stopped through this one service. Cheap to clone.
#[derive(Clone)]
pub struct Rollouts {
    inner: Arc<Inner>,
}

struct Inner {
    flags: FlagSets,
    store: Arc<dyn Store>,
    clock: Clock,
    health: Arc<dyn RolloutHealth>,
    /// One writer of the state document at a time on this replica.
    write: tokio::sync::Mutex<()>,
    /// Rung by a start or a resume: the controller reads health at once, rather than at its
    /// next wake.
    wake: tokio::sync::Notify,
}

impl Rollouts {
    /// The service over the flag sets and the store, judged by `health`.
    pub fn new(flags: FlagSets, store: Arc<dyn Store>, clock: Clock, health: Arc<dyn RolloutHealth>) -> Rollouts {
        let (write, wake) = (tokio::sync::Mutex::new(()), tokio::sync::Notify::new());
        Rollouts { inner: Arc::new(Inner { flags, store, clock, health, write, wake }) }
    }

    /// Every rollout kept, active or finished, ordered by set and flag.
    pub async fn list(&self) -> Result<Vec<FlagRollout>, RolloutError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || read(store.as_ref())).await
    }

    /// The rollout of one flag (the last one, when it has finished).
    pub async fn get(&self, set: &str, flag: &str) -> Result<FlagRollout, RolloutError> {
        let all = self.list().await?;
        all.into_iter()
            .find(|r| r.set == set && r.flag == flag)
            .ok_or_else(|| RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() })
    }

    /// Starts a rollout: the plan checked, the first step gated like every step, and the split
    /// set to the first step's weight. Bad input changes nothing.
    pub async fn start(&self, start: Start, actor: Actor) -> Result<FlagRollout, RolloutError> {
        if !(1..=split::WHOLE).contains(&start.to) {
            return Err(RolloutError::BadTarget { to: start.to });
        }
        if !(1..=start.to).contains(&start.step) {
            return Err(RolloutError::BadStep { step: start.step, to: start.to });
        }
        if start.every < MIN_EVERY {
            return Err(RolloutError::BadEvery { every: start.every });
        }
        if start.service.trim().is_empty() {
            return Err(RolloutError::NoService);
        }
        let reason = start.reason.as_deref().map(str::parse::<Reason>).transpose()?;
        let loaded = self.inner.flags.current(&start.set).ok_or_else(|| FlagError::NoSet { set: start.set.clone() })?;
        let default = split::split_of(&loaded.set, &start.set, &start.flag, &start.variant)?;
        let _write = self.inner.write.lock().await;
        let mut all = self.list().await?;
        if let Some(r) = all.iter().find(|r| r.set == start.set && r.flag == start.flag && r.phase.is_active()) {
            return Err(RolloutError::AlreadyRolling {
                set: r.set.clone(),
                flag: r.flag.clone(),
                weight: r.weight,
                phase: r.phase,
            });
        }
        let now = self.inner.clock.now();
        let mut rollout = FlagRollout {
            set: start.set,
            flag: start.flag,
            variant: start.variant,
            default_variant: default,
            service: start.service,
            environment: loaded.environment.clone(),
            to: start.to,
            step: start.step,
            every_s: start.every.as_secs(),
            weight: 0,
            phase: Phase::Running,
            step_at: now,
            next_at: now,
            started: now,
            by: actor.by.clone(),
            reason,
            why: None,
        };
        self.gate(&rollout, now).await?;
        let first = rollout.step;
        self.split(&rollout, first).await?;
        rollout.weight = first;
        rollout.next_at = now.saturating_add(rollout.every()).unwrap_or(now);
        all.retain(|r| !(r.set == rollout.set && r.flag == rollout.flag));
        all.push(rollout.clone());
        self.save(all).await?;
        self.inner.wake.notify_one();
        Ok(rollout)
    }

    /// Holds a running rollout at its weight.
    pub async fn pause(&self, set: &str, flag: &str) -> Result<FlagRollout, RolloutError> {
        self.update(set, flag, Phase::Running, "running", |r, _| r.phase = Phase::Paused).await
    }

    /// Lets a paused rollout step again, one interval from now.
    pub async fn resume(&self, set: &str, flag: &str) -> Result<FlagRollout, RolloutError> {
        let resumed = self
            .update(set, flag, Phase::Paused, "paused", |r, now| {
                r.phase = Phase::Running;
                r.next_at = now.saturating_add(r.every()).unwrap_or(now);
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(resumed)
    }

    /// Stops an active rollout by hand and sends its flag back to 0%.
    pub async fn abort(&self, set: &str, flag: &str, actor: Actor) -> Result<FlagRollout, RolloutError> {
        let _write = self.inner.write.lock().await;
        let mut all = self.list().await?;
        let Some(rollout) = all.iter_mut().find(|r| r.set == set && r.flag == flag) else {
            return Err(RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() });
        };
        if !rollout.phase.is_active() {
            let phase = rollout.phase;
            return Err(RolloutError::WrongPhase { set: set.into(), flag: flag.into(), phase, wanted: "active" });
        }
        let why = format!("aborted by {}{}", actor.by, actor.reason.map(|r| format!(": {r}")).unwrap_or_default());
        self.split(rollout, 0).await?;
        rollout.weight = 0;
        rollout.phase = Phase::Aborted;
        rollout.why = Some(why);
        let done = rollout.clone();
        self.save(all).await?;
        Ok(done)
    }

    /// One pass of the controller over every running rollout: each read, judged and moved by
    /// [`next`]. Returns when it should run again at the latest.
    pub async fn reconcile(&self) -> Result<Timestamp, RolloutError> {
        let _write = self.inner.write.lock().await;
        let now = self.inner.clock.now();
        let mut wake = now.saturating_add(SignedDuration::try_from(CHECK_EVERY).unwrap_or_default()).unwrap_or(now);
        let mut all = self.list().await?;
        let mut changed = false;
        for rollout in all.iter_mut().filter(|r| r.phase == Phase::Running) {
            let verdict = self.verdict(rollout, now).await?;
            match next(rollout, &verdict, now) {
                Next::Idle => {}
                Next::Wait(at) => wake = wake.min(at),
                Next::Stop(why) => {
                    self.split(rollout, 0).await?;
                    tracing::warn!(set = %rollout.set, flag = %rollout.flag, %why, "flag rollout stopped: back to 0%");
                    (rollout.weight, rollout.phase, rollout.why) = (0, Phase::Stopped, Some(why));
                    changed = true;
                }
                Next::Complete => {
                    (rollout.phase, rollout.why) = (Phase::Completed, None);
                    changed = true;
                }
                Next::Step(weight) => {
                    rollout.next_at = now.saturating_add(rollout.every()).unwrap_or(now);
                    wake = wake.min(rollout.next_at);
                    changed = true;
                    match self.gate(rollout, now).await {
                        Ok(()) => {}
                        Err(RolloutError::BudgetExhausted { message, .. }) => {
                            // Held at its weight, as a frozen deploy waits: asked again next
                            // interval, so it goes on once the budget recovers.
                            rollout.why = Some(format!("step to {weight}% refused: {message}"));
                            continue;
                        }
                        Err(error) => return Err(error),
                    }
                    self.split(rollout, weight).await?;
                    (rollout.weight, rollout.step_at, rollout.why) = (weight, now, None);
                }
            }
        }
        if changed {
            self.save(all).await?;
        }
        Ok(wake)
    }

    /// The controller: [`Rollouts::reconcile`] until `shutdown`, waking when a step is due and
    /// every [`CHECK_EVERY`] to read health. A failed pass is logged and tried again.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = match self.reconcile().await {
                Ok(wake) => {
                    let now = self.inner.clock.now();
                    Duration::try_from(now.duration_until(wake)).unwrap_or_default().max(Duration::from_millis(100))
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "flag rollouts: the pass failed; trying again");
                    CHECK_EVERY
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    async fn update(
        &self,
        set: &str,
        flag: &str,
        from: Phase,
        wanted: &'static str,
        change: impl FnOnce(&mut FlagRollout, Timestamp),
    ) -> Result<FlagRollout, RolloutError> {
        let _write = self.inner.write.lock().await;
        let mut all = self.list().await?;
        let Some(rollout) = all.iter_mut().find(|r| r.set == set && r.flag == flag) else {
            return Err(RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() });
        };
        if rollout.phase != from {
            let phase = rollout.phase;
            return Err(RolloutError::WrongPhase { set: set.into(), flag: flag.into(), phase, wanted });
        }
        change(rollout, self.inner.clock.now());
        let done = rollout.clone();
        self.save(all).await?;
        Ok(done)
    }

    /// The error-budget gate for a step: asked only of a set that belongs to an environment.
    async fn gate(&self, rollout: &FlagRollout, now: Timestamp) -> Result<(), RolloutError> {
        let Some(environment) = rollout.environment.clone() else { return Ok(()) };
        let (health, service, reason) = (self.inner.health.clone(), rollout.service.clone(), rollout.reason);
        let env = environment.clone();
        let gate = mobius_log::blocking::spawn(move || health.gate(&service, &env, reason, now)).await?;
        match gate {
            Gate::Allow => Ok(()),
            Gate::Refuse(message) => {
                Err(RolloutError::BudgetExhausted { set: rollout.set.clone(), environment, message })
            }
        }
    }

    async fn verdict(&self, rollout: &FlagRollout, now: Timestamp) -> Result<Verdict, RolloutError> {
        let (health, copy) = (self.inner.health.clone(), rollout.clone());
        Ok(mobius_log::blocking::spawn(move || health.verdict(&copy, copy.step_at, now)).await?)
    }

    async fn split(&self, rollout: &FlagRollout, weight: u32) -> Result<(), RolloutError> {
        let actor =
            Actor { by: format!("rollout:{}", rollout.by), reason: Some(format!("{}: {weight}%", rollout.label())) };
        self.inner.flags.set_split(&rollout.set, &rollout.flag, &rollout.variant, weight, actor).await?;
        Ok(())
    }

    async fn save(&self, mut all: Vec<FlagRollout>) -> Result<(), RolloutError> {
        all.sort_by(|a, b| (&a.set, &a.flag).cmp(&(&b.set, &b.flag)));
        let text = serde_json::to_string(&all).map_err(RolloutError::Corrupt)?;
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || store.put_state(STATE_KEY, &text)).await?;
        Ok(())
    }
}

fn read(store: &dyn Store) -> Result<Vec<FlagRollout>, RolloutError> {
    match store.state(STATE_KEY)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).map_err(RolloutError::Corrupt),
    }
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
