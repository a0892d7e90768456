//! Flag rollouts gated by health (issue 15, item 5): a variant's share of a flag moved from 0
//! to `to`% by `step` every `every`, as Flagger moves a canary's weight — and stopped, back to
//! 0%, when the variant or the service is unhealthy.
//!
//! The flag document stays the source of truth for the split: each step is
//! [`FlagSets::set_split`], a version of the set and a `mobius-flag.changed` event whose reason
//! names the rollout. What the rollout itself is (its plan, where it stands, why it stopped) is a
//! state document of the store (`flag-rollouts`), so a restarted server resumes it where it
//! stood. Every change to it is a compare-and-swap ([`Store::swap_state`]): a start or abort
//! through one replica and the controller's pass on another never overwrite each other. The
//! record is written before its flag moves, and the controller moves each flag to what is
//! recorded, so the flag follows the record even across a crash between the two.
//!
//! The controller is a reconcile loop on the application's clock: [`next`] reads a rollout, the
//! time and the health verdict and returns the one thing to do; [`Rollouts::reconcile`] does it.
//! Health and the error-budget gate are a port ([`RolloutHealth`]) the composition root
//! implements over the proxy's per-variant SLIs, the SLOs' alerts and the policy, so this crate
//! depends on neither delivery nor reliability.
//!
//! Each step up — the first when the rollout starts, the others when they are due — is also put
//! to the gate policies ([`crate::gate`]) before it is recorded: a denied start is refused, a
//! denied later step holds the rollout at its share with `why` saying so (`step to 20%
//! refused by policy: …`), asked again each interval, as a frozen budget holds it. Going back
//! to 0% (a stop, an abort) asks no policy.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use mobius_log::Clock;
use mobius_slo::policy::{Reason, UnknownReason};
use mobius_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::gate::{Gating, Step};
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
    /// Whether the flag is where the rollout says: false between a stop being saved and its
    /// flag being sent back to 0%, which the controller finishes if a crash came in between.
    #[serde(default = "settled")]
    pub settled: bool,
}

fn settled() -> bool {
    true
}

impl FlagRollout {
    fn every(&self) -> SignedDuration {
        SignedDuration::from_secs(self.every_s as i64)
    }

    /// Whether `other` is a rollout of the same flag.
    fn same_flag(&self, other: &FlagRollout) -> bool {
        self.set == other.set && self.flag == other.flag
    }

    fn already_rolling(&self) -> RolloutError {
        let (set, flag) = (self.set.clone(), self.flag.clone());
        RolloutError::AlreadyRolling { set, flag, weight: self.weight, phase: self.phase }
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
    /// The error-budget policy for a step of the rollout to `weight`% in its environment
    /// (asked only of a rollout that has one), under the rollout's `reason`. A step let through
    /// a freeze as an exception is recorded by the implementation, as a deploy's is.
    fn gate(&self, rollout: &FlagRollout, weight: u32, now: Timestamp) -> Result<Gate, HealthError>;
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
    #[error("the rollouts kept changing under this change ({ATTEMPTS} attempts): try again")]
    Contended,
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
    /// Loads and starts through this handle were decided by another gate ([`Rollouts::decided`]).
    decided: bool,
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

/// The stored rollouts and the text they were read from: what a swap must find still there.
struct Read {
    all: Vec<FlagRollout>,
    text: Option<String>,
}

/// How many times a change is tried again when another replica changed the rollouts between
/// its read and its write.
const ATTEMPTS: usize = 16;

impl Rollouts {
    /// The service over the flag sets and the store, judged by `health`.
    pub fn new(flags: FlagSets, store: Arc<dyn Store>, clock: Clock, health: Arc<dyn RolloutHealth>) -> Rollouts {
        let (write, wake) = (tokio::sync::Mutex::new(()), tokio::sync::Notify::new());
        Rollouts { inner: Arc::new(Inner { flags, store, clock, health, write, wake }), decided: false }
    }

    /// A handle to the same rollouts whose loads and starts ask no gate policy: for the flag
    /// files of a release, which the deploy's own gate decided. Later steps ask as any do.
    pub fn decided(&self) -> Rollouts {
        Rollouts { inner: self.inner.clone(), decided: true }
    }

    /// The flag sets the rollouts move (through this handle's gate).
    pub(crate) fn flags(&self) -> FlagSets {
        if self.decided { self.inner.flags.decided() } else { self.inner.flags.clone() }
    }

    /// Every rollout kept, active or finished, ordered by set and flag.
    pub async fn list(&self) -> Result<Vec<FlagRollout>, RolloutError> {
        Ok(self.read().await?.all)
    }

    /// The rollout of one flag (the last one, when it has finished).
    pub async fn get(&self, set: &str, flag: &str) -> Result<FlagRollout, RolloutError> {
        let all = self.list().await?;
        all.into_iter()
            .find(|r| r.set == set && r.flag == flag)
            .ok_or_else(|| RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() })
    }

    /// Starts a rollout: the plan checked, the first step gated like every step, the rollout
    /// saved (so a start racing it on another replica is refused), and then the split set to
    /// the first step's weight — one step on from the flag's split, which a finished rollout
    /// may have left above 0%. Bad input changes nothing.
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
        // It begins where the flag's split stands (a plan's second rollout does not take
        // users back): one step on from there.
        let standing = split::targeting_in(&loaded.document, &start.flag)
            .filter(|t| split::is_split(t, &start.variant, &default))
            .map_or(0, |t| split::weight_in(Some(&t), &start.variant));
        let first = (standing + start.step).min(start.to).max(standing);
        let _write = self.inner.write.lock().await;
        let now = self.inner.clock.now();
        let every = SignedDuration::from_secs(start.every.as_secs() as i64);
        let rollout = FlagRollout {
            set: start.set,
            flag: start.flag,
            variant: start.variant,
            default_variant: default,
            service: start.service,
            environment: loaded.environment.clone(),
            to: start.to,
            step: start.step,
            every_s: start.every.as_secs(),
            weight: first,
            phase: Phase::Running,
            step_at: now,
            next_at: now.saturating_add(every).unwrap_or(now),
            started: now,
            by: actor.by.clone(),
            reason,
            why: None,
            settled: true,
        };
        if let Some(active) = self.list().await?.into_iter().find(|r| r.same_flag(&rollout) && r.phase.is_active()) {
            return Err(active.already_rolling());
        }
        self.gate(&rollout, rollout.weight, now).await?;
        if !self.decided {
            self.ask(&rollout, rollout.weight, actor.clone()).await?;
        }
        let replaced = self
            .transact(|all, _| {
                if let Some(active) = all.iter().find(|r| r.same_flag(&rollout) && r.phase.is_active()) {
                    return Err(active.already_rolling());
                }
                let replaced = all.iter().position(|r| r.same_flag(&rollout)).map(|at| all.remove(at));
                all.push(rollout.clone());
                Ok(replaced)
            })
            .await?;
        if let Err(error) = self.split(&rollout, rollout.weight).await {
            // The flag refused the split (targeting written by hand, the set gone): the rollout
            // saved for it goes, and the one it replaced comes back.
            self.transact(|all, _| {
                all.retain(|r| !(r.same_flag(&rollout) && r.started == rollout.started));
                all.extend(replaced.clone());
                Ok(())
            })
            .await?;
            return Err(error);
        }
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
        let why = format!("aborted by {}{}", actor.by, actor.reason.map(|r| format!(": {r}")).unwrap_or_default());
        let aborted = {
            let _write = self.inner.write.lock().await;
            self.transact(|all, _| {
                let Some(rollout) = all.iter_mut().find(|r| r.set == set && r.flag == flag) else {
                    return Err(RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() });
                };
                if !rollout.phase.is_active() {
                    let phase = rollout.phase;
                    return Err(RolloutError::WrongPhase {
                        set: set.into(),
                        flag: flag.into(),
                        phase,
                        wanted: "active",
                    });
                }
                (rollout.weight, rollout.phase, rollout.why, rollout.settled) =
                    (0, Phase::Aborted, Some(why.clone()), false);
                Ok(rollout.clone())
            })
            .await?
        };
        self.settle(&aborted).await?;
        Ok(FlagRollout { settled: true, ..aborted })
    }

    /// One pass of the controller over every running rollout: each read, judged and moved by
    /// [`next`]. Returns when it should run again at the latest.
    ///
    /// The decisions are saved first, in one swap of the stored rollouts that fails if anything
    /// changed them since they were read (a start, pause or abort through another replica):
    /// then the pass judges again from what is stored. Only then does each flag follow what was
    /// saved — a step's weight, a stop's 0% — which is idempotent, so a flag left behind by a
    /// crash between the two catches up on the next pass.
    pub async fn reconcile(&self) -> Result<Timestamp, RolloutError> {
        let _write = self.inner.write.lock().await;
        let now = self.inner.clock.now();
        let check = now.saturating_add(SignedDuration::try_from(CHECK_EVERY).unwrap_or_default()).unwrap_or(now);
        let mut attempt = 0;
        let (all, wake) = loop {
            attempt += 1;
            let Read { mut all, text } = self.read().await?;
            let (changed, wake) = self.judge(&mut all, now, check).await?;
            if !changed || self.swap(text.as_deref(), &all).await? {
                break (all, wake);
            }
            if attempt == ATTEMPTS {
                return Err(RolloutError::Contended);
            }
        };
        for rollout in &all {
            let moved = match rollout.phase {
                Phase::Running | Phase::Paused => self.split(rollout, rollout.weight).await,
                Phase::Stopped | Phase::Aborted if !rollout.settled => self.settle(rollout).await,
                Phase::Stopped | Phase::Aborted | Phase::Completed => Ok(()),
            };
            if let Err(error) = moved {
                tracing::error!(set = %rollout.set, flag = %rollout.flag, error = %format!("{error:#}"),
                    "flag rollout: the flag cannot follow the rollout; trying again next pass");
            }
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

    /// Judges every running rollout of `all` at `now` and applies what [`next`] says to the
    /// records (not yet to the flags); whether any changed, and when to look again.
    async fn judge(
        &self,
        all: &mut [FlagRollout],
        now: Timestamp,
        check: Timestamp,
    ) -> Result<(bool, Timestamp), RolloutError> {
        let (mut changed, mut wake) = (false, check);
        for rollout in all.iter_mut().filter(|r| r.phase == Phase::Running) {
            let verdict = self.verdict(rollout, now).await?;
            match next(rollout, &verdict, now) {
                Next::Idle => {}
                Next::Wait(at) => wake = wake.min(at),
                Next::Stop(why) => {
                    tracing::warn!(set = %rollout.set, flag = %rollout.flag, %why, "flag rollout stopped: back to 0%");
                    (rollout.weight, rollout.phase, rollout.why, rollout.settled) =
                        (0, Phase::Stopped, Some(why), false);
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
                    let actor =
                        Actor { by: rollout.by.clone(), reason: Some(format!("{}: {weight}%", rollout.label())) };
                    let gated = match self.gate(rollout, weight, now).await {
                        Ok(()) => self.ask(rollout, weight, actor).await,
                        Err(error) => Err(error),
                    };
                    match gated {
                        Ok(()) => (rollout.weight, rollout.step_at, rollout.why) = (weight, now, None),
                        // Held at its weight, as a frozen deploy waits: asked again next
                        // interval, so it goes on once the budget recovers.
                        Err(RolloutError::BudgetExhausted { message, .. }) => {
                            rollout.why = Some(format!("step to {weight}% refused: {message}"));
                        }
                        // Held alike until the policies allow it.
                        Err(RolloutError::Flag(FlagError::PolicyDenied { deny, .. })) => {
                            rollout.why = Some(format!("step to {weight}% refused by policy: {}", deny.join("; ")));
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        Ok((changed, wake))
    }

    async fn update(
        &self,
        set: &str,
        flag: &str,
        from: Phase,
        wanted: &'static str,
        change: impl Fn(&mut FlagRollout, Timestamp),
    ) -> Result<FlagRollout, RolloutError> {
        let _write = self.inner.write.lock().await;
        self.transact(|all, now| {
            let Some(rollout) = all.iter_mut().find(|r| r.set == set && r.flag == flag) else {
                return Err(RolloutError::NoRollout { set: set.to_owned(), flag: flag.to_owned() });
            };
            if rollout.phase != from {
                let phase = rollout.phase;
                return Err(RolloutError::WrongPhase { set: set.into(), flag: flag.into(), phase, wanted });
            }
            change(rollout, now);
            Ok(rollout.clone())
        })
        .await
    }

    /// A read-modify-write of the stored rollouts: `change` applied to what is stored and saved
    /// only if nobody saved in between, else applied again to what they saved. An error from
    /// `change` saves nothing.
    async fn transact<T>(
        &self,
        mut change: impl FnMut(&mut Vec<FlagRollout>, Timestamp) -> Result<T, RolloutError>,
    ) -> Result<T, RolloutError> {
        for _ in 0..ATTEMPTS {
            let Read { mut all, text } = self.read().await?;
            let done = change(&mut all, self.inner.clock.now())?;
            if self.swap(text.as_deref(), &all).await? {
                return Ok(done);
            }
        }
        Err(RolloutError::Contended)
    }

    /// The flag of a stopped or aborted rollout back to 0%, and the rollout marked as settled.
    async fn settle(&self, rollout: &FlagRollout) -> Result<(), RolloutError> {
        self.split(rollout, 0).await?;
        self.transact(|all, _| {
            if let Some(r) = all.iter_mut().find(|r| r.same_flag(rollout) && r.started == rollout.started) {
                r.settled = true;
            }
            Ok(())
        })
        .await
    }

    /// The error-budget gate for a step to `weight`: asked only of a set that belongs to an
    /// environment.
    async fn gate(&self, rollout: &FlagRollout, weight: u32, now: Timestamp) -> Result<(), RolloutError> {
        let Some(environment) = rollout.environment.clone() else { return Ok(()) };
        let (health, copy) = (self.inner.health.clone(), rollout.clone());
        let gate = mobius_log::blocking::spawn(move || health.gate(&copy, weight, now)).await?;
        match gate {
            Gate::Allow => Ok(()),
            Gate::Refuse(message) => {
                Err(RolloutError::BudgetExhausted { set: rollout.set.clone(), environment, message })
            }
        }
    }

    /// The gate policies about the step of `rollout` to `weight` (nothing written: the step is
    /// recorded, then its flag follows). A refusal other than the policies' is not this step's
    /// to judge: the flag's move says it, as it did before any policy.
    async fn ask(&self, rollout: &FlagRollout, weight: u32, actor: Actor) -> Result<(), RolloutError> {
        let step = Step { variant: rollout.variant.clone(), weight, service: rollout.service.clone() };
        let asked = self
            .inner
            .flags
            .split_as(&rollout.set, &rollout.flag, &rollout.variant, weight, actor, Gating::Only { step })
            .await;
        match asked {
            Ok(_) => Ok(()),
            Err(error @ (FlagError::PolicyDenied { .. } | FlagError::Store(_) | FlagError::Event(_))) => {
                Err(error.into())
            }
            Err(_) => Ok(()),
        }
    }

    async fn verdict(&self, rollout: &FlagRollout, now: Timestamp) -> Result<Verdict, RolloutError> {
        let (health, copy) = (self.inner.health.clone(), rollout.clone());
        Ok(mobius_log::blocking::spawn(move || health.verdict(&copy, copy.step_at, now)).await?)
    }

    async fn split(&self, rollout: &FlagRollout, weight: u32) -> Result<(), RolloutError> {
        let actor =
            Actor { by: format!("rollout:{}", rollout.by), reason: Some(format!("{}: {weight}%", rollout.label())) };
        // Asked before it was recorded (a step), or a way back to 0%: not asked again.
        self.inner.flags.split_as(&rollout.set, &rollout.flag, &rollout.variant, weight, actor, Gating::Skip).await?;
        Ok(())
    }

    async fn read(&self) -> Result<Read, RolloutError> {
        let store = self.inner.store.clone();
        mobius_log::blocking::spawn(move || read(store.as_ref())).await
    }

    /// Saves `all` if the stored rollouts are still `expected`; whether it did.
    async fn swap(&self, expected: Option<&str>, all: &[FlagRollout]) -> Result<bool, RolloutError> {
        let mut all = all.to_vec();
        all.sort_by(|a, b| (&a.set, &a.flag).cmp(&(&b.set, &b.flag)));
        let text = serde_json::to_string(&all).map_err(RolloutError::Corrupt)?;
        let (store, expected) = (self.inner.store.clone(), expected.map(str::to_owned));
        Ok(mobius_log::blocking::spawn(move || store.swap_state(STATE_KEY, expected.as_deref(), &text)).await?)
    }
}

fn read(store: &dyn Store) -> Result<Read, RolloutError> {
    let text = store.state(STATE_KEY)?;
    let all = match &text {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(RolloutError::Corrupt)?,
    };
    Ok(Read { all, text })
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
