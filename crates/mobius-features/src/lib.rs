//! Feature flag sets on the server (issue 15, item 1): the one service every door — the HTTP
//! API, the CLI, a deploy's flag files, and next OFREP and the in-process provider — changes and
//! reads flag sets through.
//!
//! A **flag set** is a flagd document (`flags`, `$evaluators`, `metadata`) under a name
//! ([`names`]: `shop`, `shop.production`), optionally belonging to a deployment environment. The
//! store keeps each set's current document and its **version**, which grows by one with each
//! change; [`FlagSets`] keeps every set in memory, parsed ([`mobius_flags::FlagSet`]), as an
//! [`Arc<Loaded>`] that evaluations borrow and a change swaps whole.
//!
//! ```text
//!  put / set_state / set_default / delete            (API, CLI, deploys)
//!     │  validate (Strictness::Schema, positioned) ── refused: nothing written, old set stays
//!     ▼
//!  Store::put_flag_set ── one transaction: version base+1 if still base, + mobius-flag.changed
//!     │                                              (+ NOTIFY mobius_flag_sets on PostgreSQL)
//!     ▼
//!  memory: name ─► Arc<Loaded> ─► subscribers (Changed { set, version })     ◄── sync: every
//!                                                                             replica polls the
//!  current(set) ─► OFREP, the provider, GET /api/v1/flags/{set}                versions each
//!                                                                             second, and LISTENs
//! ```
//!
//! Invariants:
//! - A document is validated before anything is read or written; a refused one changes
//!   nothing, and the set in force stays.
//! - Every version written has its event in the log, written in the same transaction; a write
//!   that loses a race writes neither ([`mobius_store::flags`]).
//! - A set's version in memory never goes back, on any replica; a deleted set's version keeps
//!   counting (a tombstone), so a later set of the same name is never taken for the old one.
//! - An unchanged document, state or default is no change: no version, no event.
//! - A change to a set of an environment asks the gate policies ([`gate`]) before anything
//!   is written; a deny writes nothing.
//!
//! Modules: [`names`] (set and environment names, and the sets a release's files go to),
//! `edit` (one value replaced in a document's text), `diff` (what the event says changed),
//! `sync` (replicas), [`split`] (a flag's fractional split, as a rollout sets it), [`rollout`]
//! (flag rollouts gated by health: the plan, the state kept, the controller), [`gate`] (the
//! gate policies' port, asked at every change of a set of an environment).

mod diff;
mod edit;
pub mod gate;
pub mod names;
pub mod plan;
pub mod rollout;
pub mod split;
mod sync;

pub use sync::SYNC_EVERY;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use jiff::Timestamp;
use mobius_events::emit::flags::{self as emit, Action};
use mobius_flags::{FlagSet, LoadError, LoadOptions};
use mobius_log::{Clock, Ingestor};
use mobius_store::{FlagSetPut, FlagSetRecord, FlagSetWrite, Store, StoreError};
use serde::Serialize;
use tokio::sync::broadcast;

/// The largest document accepted: a set of 10,000 flags fits.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// How many times an unconditional change is tried again after another writer came first.
const ATTEMPTS: usize = 5;

/// A flag set in force: what evaluations read. Immutable; a change makes a new one.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The set's name (see [`names`]).
    pub name: String,
    /// Grows by one with each change of this set (1 for its first document).
    pub version: u64,
    /// The deployment environment it belongs to, if any.
    pub environment: Option<String>,
    /// The document as it was put (or as an edit left it).
    pub document: String,
    /// The document, validated and compiled.
    pub set: FlagSet,
    /// When the current version was made.
    pub updated: Timestamp,
    /// Who made the current version.
    pub updated_by: String,
}

/// A set changed: announced to [`FlagSets::subscribe`]rs on every replica, once the change is
/// durable and in memory (so [`FlagSets::current`] already answers with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// The set's name.
    pub set: String,
    /// Its version now (the tombstone's, for a deletion).
    pub version: u64,
    /// The set was deleted: [`FlagSets::current`] has nothing for it now.
    pub deleted: bool,
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The set now; `None` after a deletion.
    pub loaded: Option<Arc<Loaded>>,
    /// Whether anything changed (a new version and its event); `false` when the document,
    /// state or default was already what was asked.
    pub changed: bool,
    /// What the gate policies warned about while allowing the change (see [`gate`]).
    pub warnings: Vec<String>,
}

/// Who changes a set, and why: what its event records.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// A token's name, `cli`, or the deployer.
    pub by: String,
    /// Why (`--reason`, `X-Mobius-Reason`, the deploy), when said.
    pub reason: Option<String>,
}

/// A whole document to put.
#[derive(Debug, Clone)]
pub struct Put {
    /// The set's name (see [`names`]).
    pub set: String,
    /// The whole flagd document.
    pub document: String,
    /// The environment the set belongs to; `None` keeps the stored one (none for a new set).
    pub environment: Option<String>,
    /// Refuse unless the set is at this version now (`If-Match`).
    pub expected: Option<u64>,
    /// What errors call the document (a file's path); the set's name when `None`.
    pub source_name: Option<String>,
}

/// Why a change was refused or failed, in the domain's words.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("flag set name `{name}` is not valid: {why}")]
    BadName { name: String, why: &'static str },
    #[error("environment name `{name}` is not valid: {why}")]
    BadEnvironment { name: String, why: &'static str },
    /// The document breaks flagd's schema or Mobius's checks; the message is `source:line:col:
    /// at /pointer: what`.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// A flag's `rollout` block (see [`plan`]) is not one: `at` is `source:line:col`.
    #[error("{at}: flag `{flag}`'s rollout: {message}")]
    BadRollout { at: String, flag: String, message: String },
    #[error("the document is {bytes} bytes, over the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("there is no flag set `{set}`")]
    NoSet { set: String },
    #[error("flag set `{set}` has no flag `{flag}`")]
    NoFlag { set: String, flag: String },
    #[error("flag `{flag}` of set `{set}` has no variant `{variant}` (its variants: {known})")]
    NoVariant { set: String, flag: String, variant: String, known: String },
    /// `If-Match` named another version than the stored one.
    #[error("flag set `{set}` is at version {current}, not {expected}: read it again, then change it")]
    VersionConflict { set: String, expected: u64, current: u64 },
    #[error("flag set `{set}` belongs to environment `{stored}`, not `{asked}`")]
    OtherEnvironment { set: String, stored: String, asked: String },
    #[error("flag `{flag}` of set `{set}` has no default variant to split against")]
    NoDefault { set: String, flag: String },
    #[error("variant `{variant}` is flag `{flag}`'s default in set `{set}`: roll out another variant")]
    VariantIsDefault { set: String, flag: String, variant: String },
    #[error("a split's weight is a percentage (0–100), not {weight}")]
    BadWeight { weight: u32 },
    /// A rollout owns the flag's targeting while it runs; targeting written by hand is kept.
    #[error("flag `{flag}` of set `{set}` has targeting a rollout did not write ({targeting}): remove it first")]
    TargetingInUse { set: String, flag: String, targeting: String },
    /// The gate policies refuse the change; every deny message is listed.
    #[error("the gate policies refuse the {change} change of flag set `{set}` in {environment}:{}", gate::listed(deny))]
    PolicyDenied { set: String, environment: String, change: &'static str, deny: Vec<String> },
    #[error("flag set `{set}` kept changing under this change; try again")]
    Contended { set: String },
    #[error("the change's event cannot be built")]
    Event(#[source] mobius_events::emit::EmitError),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// The flag sets: stored, in memory, and announced. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct FlagSets {
    inner: Arc<Inner>,
    /// Changes through this handle were decided by another gate ([`FlagSets::decided`]).
    decided: bool,
}

struct Inner {
    store: Arc<dyn Store>,
    log: Ingestor,
    clock: Clock,
    sets: RwLock<Sets>,
    changes: broadcast::Sender<Changed>,
    /// Rung by another replica's change (PostgreSQL's `NOTIFY`): the sync reads at once.
    poke: tokio::sync::Notify,
    /// The gate policies changes to a set of an environment ask ([`gate`]); none: no gate.
    gate: OnceLock<Arc<dyn gate::FlagGate>>,
}

/// What this replica holds: the sets in force, and the version last seen of every set name
/// (deleted ones included), which only grows.
#[derive(Default)]
struct Sets {
    live: BTreeMap<String, Arc<Loaded>>,
    seen: HashMap<String, u64>,
}

/// How stored documents are loaded: flagd's schema, enforced, and the high-precision
/// `fractional` flagd uses now.
fn options() -> LoadOptions {
    LoadOptions::default()
}

/// Validates a document as `source_name` (what its errors call it).
pub fn validate(source_name: &str, document: &str) -> Result<FlagSet, FlagError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(FlagError::TooLarge { bytes: document.len(), limit: MAX_DOCUMENT_BYTES });
    }
    let set = FlagSet::from_json(source_name, document, &options())?;
    plan::blocks(source_name, document, &set)?;
    Ok(set)
}

/// A change worked out from the stored set: the document to store (`None`: delete) and what the
/// event says about it.
struct Proposal {
    document: Option<String>,
    set: Option<FlagSet>,
    environment: String,
    action: Action,
    flag: Option<String>,
}

impl FlagSets {
    /// The service over `store`, holding nothing yet: [`FlagSets::refresh`] reads the stored
    /// sets (the server's start does, then its sync task keeps them current).
    pub fn new(store: Arc<dyn Store>, log: Ingestor, clock: Clock) -> FlagSets {
        FlagSets {
            inner: Arc::new(Inner {
                store,
                log,
                clock,
                sets: RwLock::new(Sets::default()),
                changes: broadcast::channel(1024).0,
                poke: tokio::sync::Notify::new(),
                gate: OnceLock::new(),
            }),
            decided: false,
        }
    }

    /// Puts changes to sets of an environment to `gate` from now on, through every handle
    /// (see [`gate`]). Only the first gate set counts: the application sets it once, at start.
    pub fn set_gate(&self, gate: Arc<dyn gate::FlagGate>) {
        let _ = self.inner.gate.set(gate);
    }

    /// A handle to the same sets whose changes ask no gate policy: for the flag files of a
    /// release, which the deploy's own gate decided.
    pub fn decided(&self) -> FlagSets {
        FlagSets { inner: self.inner.clone(), decided: true }
    }

    /// The set in force under this name: what evaluations use. No I/O.
    pub fn current(&self, set: &str) -> Option<Arc<Loaded>> {
        self.read().live.get(set).cloned()
    }

    /// Every set in force, by name. No I/O.
    pub fn list(&self) -> Vec<Arc<Loaded>> {
        self.read().live.values().cloned().collect()
    }

    /// Every change of a set from now on, on this replica or another, once it is in force here.
    /// A receiver that falls behind gets `RecvError::Lagged`: then any set may have changed, and
    /// it reads [`FlagSets::list`] again.
    pub fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.inner.changes.subscribe()
    }

    /// Puts a whole document: validated first (positioned errors, nothing written when refused),
    /// no change when it is the stored document already.
    pub async fn put(&self, put: Put, actor: Actor) -> Result<Outcome, FlagError> {
        names::check_set(&put.set)?;
        if let Some(environment) = &put.environment {
            names::check_environment(environment)?;
        }
        let source = put.source_name.clone().unwrap_or_else(|| put.set.clone());
        let document = put.document;
        let parsed = {
            let document = document.clone();
            mobius_log::blocking::spawn(move || validate(&source, &document)).await?
        };
        let asked = put.environment;
        let set = put.set.clone();
        self.change(&put.set, put.expected, actor, gate::Gating::ask(), move |stored| {
            let environment = environment_of(&set, stored, asked.as_deref())?;
            if stored.is_some_and(|s| s.document.as_deref() == Some(document.as_str()) && s.environment == environment)
            {
                return Ok(None);
            }
            Ok(Some(Proposal {
                document: Some(document.clone()),
                set: Some(parsed.clone()),
                environment,
                action: Action::Loaded,
                flag: None,
            }))
        })
        .await
    }

    /// Turns a flag on (`ENABLED`) or off (`DISABLED`); no change when it already is.
    pub async fn set_state(
        &self,
        set: &str,
        flag: &str,
        enabled: bool,
        expected: Option<u64>,
        actor: Actor,
    ) -> Result<Outcome, FlagError> {
        let value = if enabled { "\"ENABLED\"" } else { "\"DISABLED\"" };
        self.edit(set, flag, expected, actor, Action::State, "state", value.to_owned(), move |loaded, key| {
            loaded.get(key).is_some_and(|f| f.is_enabled() == enabled)
        })
        .await
    }

    /// Makes `variant` the flag's default variant; refused when the flag has no such variant.
    pub async fn set_default(
        &self,
        set: &str,
        flag: &str,
        variant: &str,
        expected: Option<u64>,
        actor: Actor,
    ) -> Result<Outcome, FlagError> {
        let value = serde_json::Value::String(variant.to_owned()).to_string();
        let wanted = variant.to_owned();
        self.edit(set, flag, expected, actor, Action::Default, "defaultVariant", value, move |loaded, key| {
            loaded.get(key).is_some_and(|f| f.default_variant() == Some(wanted.as_str()))
        })
        .await
    }

    /// Deletes a set; its name's version keeps counting.
    pub async fn delete(&self, set: &str, expected: Option<u64>, actor: Actor) -> Result<Outcome, FlagError> {
        names::check_set(set)?;
        let name = set.to_owned();
        self.change(set, expected, actor, gate::Gating::ask(), move |stored| {
            let stored = stored.ok_or_else(|| FlagError::NoSet { set: name.clone() })?;
            Ok(Some(Proposal {
                document: None,
                set: None,
                environment: stored.environment.clone(),
                action: Action::Deleted,
                flag: None,
            }))
        })
        .await
    }

    /// One value of one flag set in the stored text, the result loaded like any document and
    /// checked to say what was asked (`holds`).
    #[expect(clippy::too_many_arguments, reason = "the two edits' shared body, private")]
    async fn edit(
        &self,
        set: &str,
        flag: &str,
        expected: Option<u64>,
        actor: Actor,
        action: Action,
        field: &'static str,
        value: String,
        holds: impl Fn(&FlagSet, &str) -> bool + Send + 'static,
    ) -> Result<Outcome, FlagError> {
        names::check_set(set)?;
        let (name, key) = (set.to_owned(), flag.to_owned());
        self.change(set, expected, actor, gate::Gating::ask(), move |stored| {
            let stored = stored.ok_or_else(|| FlagError::NoSet { set: name.clone() })?;
            let document = stored.document.as_deref().unwrap_or_default();
            let current = validate(&name, document)?;
            let Some(old) = current.get(&key) else {
                return Err(FlagError::NoFlag { set: name.clone(), flag: key.clone() });
            };
            // The variant as named: the value is its JSON text.
            let variant: String = serde_json::from_str(&value).unwrap_or_default();
            if action == Action::Default && old.variant(&variant).is_none() {
                let known: Vec<&str> = old.variants().map(|(n, _)| n).collect();
                return Err(FlagError::NoVariant {
                    set: name.clone(),
                    flag: key.clone(),
                    variant,
                    known: known.join(", "),
                });
            }
            if holds(&current, &key) {
                return Ok(None);
            }
            let edited = edit::set_field(document, &key, field, &value)
                .map_err(|_| FlagError::NoFlag { set: name.clone(), flag: key.clone() })?;
            let parsed = validate(&name, &edited)?;
            if !holds(&parsed, &key) {
                // Only a document with a key written twice could get here: the edit took the
                // other one. Refused rather than stored saying something else.
                return Err(FlagError::NoFlag { set: name.clone(), flag: key.clone() });
            }
            Ok(Some(Proposal {
                document: Some(edited),
                set: Some(parsed),
                environment: stored.environment.clone(),
                action,
                flag: Some(key.clone()),
            }))
        })
        .await
    }

    /// Reads the stored set, works out the change (`propose`: `None` for no change), asks the
    /// gate policies about it as `gating` says, and writes it with its event as the next
    /// version — again on a fresh read when another writer came first, unless the caller
    /// expected a version.
    async fn change(
        &self,
        set: &str,
        expected: Option<u64>,
        actor: Actor,
        gating: gate::Gating,
        propose: impl Fn(Option<&FlagSetRecord>) -> Result<Option<Proposal>, FlagError> + Send + 'static,
    ) -> Result<Outcome, FlagError> {
        let gating = if self.decided { gate::Gating::Skip } else { gating };
        let this = self.clone();
        let set = set.to_owned();
        mobius_log::blocking::spawn(move || {
            for _ in 0..ATTEMPTS {
                let record = this.inner.store.flag_set(&set)?;
                let base = record.as_ref().map_or(0, |r| r.version);
                let stored = record.as_ref().filter(|r| r.document.is_some());
                if let Some(expected) = expected {
                    let current = stored.map_or(0, |r| r.version as u64);
                    if current != expected {
                        return Err(FlagError::VersionConflict { set: set.clone(), expected, current });
                    }
                }
                let Some(proposal) = propose(stored)? else {
                    if let Some(record) = &record {
                        this.install(record.clone(), None);
                    }
                    return Ok(Outcome { loaded: this.current(&set), changed: false, warnings: Vec::new() });
                };
                let now = this.inner.clock.now();
                let warnings = this.ask(&set, base, stored, &proposal, &actor, &gating, now)?;
                if let gate::Gating::Only { .. } = gating {
                    // Asked only: the caller writes it later, decided.
                    return Ok(Outcome { loaded: this.current(&set), changed: false, warnings });
                }
                match this.write(&set, base, stored, &proposal, &actor, now)? {
                    FlagSetPut::Written { version } => {
                        let record = FlagSetRecord {
                            name: set.clone(),
                            environment: proposal.environment.clone(),
                            version,
                            document: proposal.document.clone(),
                            updated: now,
                            updated_by: actor.by.clone(),
                        };
                        this.install(record, proposal.set);
                        return Ok(Outcome { loaded: this.current(&set), changed: true, warnings });
                    }
                    FlagSetPut::Conflict { current } if expected.is_some() => {
                        let current = current as u64;
                        return Err(FlagError::VersionConflict { set, expected: expected.unwrap_or(0), current });
                    }
                    FlagSetPut::Conflict { .. } => continue,
                }
            }
            Err(FlagError::Contended { set })
        })
        .await
    }

    /// The gate policies' decision about a proposal to a set of an environment, as `gating`
    /// says (see [`gate`]): its warnings, or the refusal. Blocking.
    #[expect(clippy::too_many_arguments, reason = "the change's parts, private")]
    fn ask(
        &self,
        set: &str,
        base: i64,
        stored: Option<&FlagSetRecord>,
        proposal: &Proposal,
        actor: &Actor,
        gating: &gate::Gating,
        now: Timestamp,
    ) -> Result<Vec<String>, FlagError> {
        let Some(gate) = self.inner.gate.get().filter(|_| *gating != gate::Gating::Skip) else {
            return Ok(Vec::new());
        };
        if proposal.environment.is_empty() {
            return Ok(Vec::new());
        }
        let step = gating.step().filter(|_| proposal.action == Action::Split);
        let question = gate::Question {
            set: set.to_owned(),
            environment: proposal.environment.clone(),
            change: gate::Change::of(proposal.action),
            flag: proposal.flag.clone(),
            version_before: stored.map_or(0, |s| s.version as u64),
            version_after: (base + 1) as u64,
            step: step.cloned(),
            altered: gate::altered(stored.and_then(|s| s.document.as_deref()), proposal.document.as_deref()),
            by: actor.by.clone(),
            reason: actor.reason.clone(),
            at: now,
        };
        gate::ask(gate, &self.inner.log, &question)
    }

    /// Writes a proposal as version `base + 1` at `now` with its event, in one store
    /// transaction.
    fn write(
        &self,
        set: &str,
        base: i64,
        stored: Option<&FlagSetRecord>,
        proposal: &Proposal,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<FlagSetPut, FlagError> {
        let flags = diff::flags(stored.and_then(|s| s.document.as_deref()), proposal.document.as_deref());
        let environment = Some(proposal.environment.as_str()).filter(|e| !e.is_empty());
        let change = emit::FlagChange {
            set,
            environment,
            version: base + 1,
            previous_version: stored.map_or(0, |s| s.version),
            action: proposal.action,
            flag: proposal.flag.as_deref(),
            flags: &flags,
            by: &actor.by,
            reason: actor.reason.as_deref(),
            at: now,
        };
        let event = emit::changed(&change).map_err(FlagError::Event)?;
        let write = FlagSetWrite {
            name: set,
            environment: &proposal.environment,
            base,
            document: proposal.document.as_deref(),
            updated: now,
            updated_by: &actor.by,
        };
        let store = self.inner.store.clone();
        Ok(self.inner.log.with_context(|ctx| store.put_flag_set(&write, &event, ctx))??)
    }

    /// Puts a stored version in force here unless a newer one is (or this one was already),
    /// and announces it. `parsed`: the document already loaded, when the caller has it.
    fn install(&self, record: FlagSetRecord, parsed: Option<FlagSet>) {
        let version = record.version as u64;
        let mut sets = self.inner.sets.write().unwrap_or_else(|e| e.into_inner());
        if sets.seen.get(&record.name).is_some_and(|&seen| seen >= version) {
            return;
        }
        sets.seen.insert(record.name.clone(), version);
        let deleted = record.document.is_none();
        match record.document {
            None => {
                sets.live.remove(&record.name);
            }
            Some(document) => {
                let set = match parsed.map_or_else(|| validate(&record.name, &document), Ok) {
                    Ok(set) => set,
                    Err(error) => {
                        // Stored by a build whose checks this one does not share: the set in
                        // force stays, and the operator is told.
                        tracing::error!(set = %record.name, version, error = %error, "a stored flag set does not load; the previous version stays in force");
                        return;
                    }
                };
                let loaded = Loaded {
                    name: record.name.clone(),
                    version,
                    environment: Some(record.environment).filter(|e| !e.is_empty()),
                    document,
                    set,
                    updated: record.updated,
                    updated_by: record.updated_by,
                };
                sets.live.insert(record.name.clone(), Arc::new(loaded));
            }
        }
        drop(sets);
        // Nobody subscribed is not an error.
        let _ = self.inner.changes.send(Changed { set: record.name, version, deleted });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Sets> {
        self.inner.sets.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The environment a change leaves the set in: the one asked, which must be the stored one's
/// when the set has one; else the stored one.
fn environment_of(set: &str, stored: Option<&FlagSetRecord>, asked: Option<&str>) -> Result<String, FlagError> {
    let stored = stored.map(|s| s.environment.as_str()).filter(|e| !e.is_empty());
    match (stored, asked) {
        (Some(stored), Some(asked)) if stored != asked => {
            Err(FlagError::OtherEnvironment { set: set.to_owned(), stored: stored.to_owned(), asked: asked.to_owned() })
        }
        (_, Some(asked)) => Ok(asked.to_owned()),
        (stored, None) => Ok(stored.unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests;
