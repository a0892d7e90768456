//! Storage for the event log and its facts.
//!
//! [`Store`] is the one interface the server and the CLI use; each backend is a module behind
//! it with its own SQL: [`sqlite`], the embedded default, and [`postgres`] (cargo feature
//! `postgres`, on by default), which nothing in the server selects yet. Domain rules stay in
//! `mobius-events`: a backend only implements the narrow
//! [`mobius_events::materialise::FactTxn`] port and runs [`mobius_events::materialise::apply`]
//! inside its write transaction, so an event and the facts derived from it commit together or
//! not at all. The behaviour every backend shares is tested once, on each, in
//! `tests/conformance`.
//!
//! The trait is synchronous: SQLite is, and async callers use `spawn_blocking`; the PostgreSQL
//! backend uses the blocking `postgres` client over a small pool of its own.

pub mod agents;
pub mod commands;
pub mod flags;
pub mod forge;
mod log_offsets;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod runs;
pub mod sqlite;
pub mod transfers;

use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident};
use mobius_events::materialise::{Ancestry, Rules};
use mobius_events::{AppendStatus, NewEvent, Origin, StoredEvent};
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
pub use self::postgres::PgStore;
pub use agents::{AgentJob, AgentJobState, AgentRecord, LogAppend, NewAgentJob, Renewal};
pub use commands::{CommandState, NewRolloutCommand, RolloutCommand};
pub use flags::{FlagSetPut, FlagSetRecord, FlagSetWrite};
pub use forge::{CommitStatus, Delivery, ForgeKind, ForgeSettings, PendingStatus, StatusOutcome};
pub use runs::{
    Heads, JobRecord, NewRun, RUNS_CHANNEL, RolloutQuery, RolloutRow, RunDetail, RunQuery, RunRecord, RunState,
    RunUpdate, SliCompaction, SliCounts, SliMinute, StepRecord, driver_key,
};
pub use sqlite::{Options as SqliteOptions, SqliteStore};

/// A storage failure. Messages never contain event bodies or token values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[cfg(feature = "postgres")]
    #[error("database error")]
    Postgres(#[from] ::postgres::Error),
    /// `url` is the server's URL with its password replaced by `***`.
    #[cfg(feature = "postgres")]
    #[error("cannot connect to PostgreSQL at {url}")]
    PgConnect { url: String, source: ::postgres::Error },
    /// A URL this build cannot honour (an unknown `sslmode`, an unreadable `sslrootcert`);
    /// `url` is redacted.
    #[cfg(feature = "postgres")]
    #[error("cannot use the PostgreSQL URL {url}: {reason}")]
    PgUrl { url: String, reason: String },
    #[error("cannot create the data directory {path}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the database schema is version {found}, newer than this build knows ({known}); upgrade mobius")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("materialising facts failed")]
    Facts(#[source] mobius_events::materialise::FactError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not serve the call for now — busy past the wait, locked, out
    /// of disk, an I/O failure, PostgreSQL not answering or gone mid-call — rather than
    /// refusing it: the call was not acknowledged, and the same call may succeed later (a
    /// write cut off at its commit may have been stored: retried, an idempotent write finds
    /// it). Doors answer these with 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(error) => sqlite_unavailable(error),
            #[cfg(feature = "postgres")]
            StoreError::PgConnect { .. } => true,
            #[cfg(feature = "postgres")]
            StoreError::Postgres(error) => postgres_unavailable(error),
            // Materialisation runs inside the append's transaction: the database's failure
            // reaches here as the rules' error.
            StoreError::Facts(error) => {
                if let Some(error) = error.downcast_ref::<rusqlite::Error>() {
                    return sqlite_unavailable(error);
                }
                #[cfg(feature = "postgres")]
                if let Some(error) = error.downcast_ref::<::postgres::Error>() {
                    return postgres_unavailable(error);
                }
                false
            }
            _ => false,
        }
    }
}

fn sqlite_unavailable(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, SystemIoFailure};
    matches!(error, rusqlite::Error::SqliteFailure(failure, _)
        if matches!(failure.code, DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen))
}

/// The server cannot be reached, went away mid-call (the connection closed or its socket
/// failed), or answered with a class of error that passes: 08 connection exception, 53
/// insufficient resources, 57 operator intervention (a shutdown).
#[cfg(feature = "postgres")]
fn postgres_unavailable(error: &::postgres::Error) -> bool {
    let socket = std::error::Error::source(error).is_some_and(|e| e.is::<std::io::Error>());
    let class = error.as_db_error().map(|db| &db.code().code()[..2]);
    error.is_closed() || socket || matches!(class, Some("08" | "53" | "57"))
}

/// What rules and repositories shape materialisation during an append.
pub struct IngestContext<'a> {
    pub rules: Rules,
    pub ancestry: &'a dyn Ancestry,
}

/// A filter over the raw log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only events with `seq` greater than this (for paging and tailing).
    pub after_seq: Option<i64>,
    /// Only events with `seq` less than this (paging newest first).
    pub before_seq: Option<i64>,
    pub ty: Option<String>,
    /// Only events whose subject starts with this.
    pub subject: Option<String>,
    pub origin: Option<Origin>,
    /// Only events that happened in `[from, to)` (their `timestamp`).
    pub happened: Option<(Timestamp, Timestamp)>,
    /// Newest first (descending `seq`) rather than in log order.
    pub newest_first: bool,
    pub limit: u32,
}

/// A service in an environment that has facts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    pub service: String,
    pub environment: String,
}

/// What an API token may do. Every scope but `metrics` may read; `admin` may do everything;
/// `ingest` (append events), `deploy` (deployments and rollouts) and `run` (trigger, cancel and
/// re-run pipelines — what a repository's git hook holds) grant only their own mutations;
/// `metrics` only lets Prometheus scrape `/metrics`; `agent` only lets a `mobius agent` take and
/// run jobs (it reads nothing else); `flags` is a client key that only evaluates its one flag
/// set over OFREP (a frontend may hold it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    Read,
    Ingest,
    Deploy,
    Run,
    Admin,
    Metrics,
    Agent,
    Flags,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Ingest => "ingest",
            TokenScope::Deploy => "deploy",
            TokenScope::Run => "run",
            TokenScope::Admin => "admin",
            TokenScope::Metrics => "metrics",
            TokenScope::Agent => "agent",
            TokenScope::Flags => "flags",
        }
    }

    pub fn parse(s: &str) -> Option<TokenScope> {
        Some(match s {
            "read" => TokenScope::Read,
            "ingest" => TokenScope::Ingest,
            "deploy" => TokenScope::Deploy,
            "run" => TokenScope::Run,
            "admin" => TokenScope::Admin,
            "metrics" => TokenScope::Metrics,
            "agent" => TokenScope::Agent,
            "flags" => TokenScope::Flags,
            _ => return None,
        })
    }

    /// Whether a token of this scope may do what `needed` guards.
    pub fn allows(self, needed: TokenScope) -> bool {
        match (self, needed) {
            (TokenScope::Admin, _) => true,
            // A scrape token reads nothing else; every reading token may scrape.
            (TokenScope::Metrics, need) => need == TokenScope::Metrics,
            // An agent's token takes and runs jobs, nothing more; no other token may.
            (TokenScope::Agent, need) | (need, TokenScope::Agent) => need == TokenScope::Agent,
            // A flags client key evaluates flags, nothing more; no other token is one.
            (TokenScope::Flags, need) | (need, TokenScope::Flags) => need == TokenScope::Flags,
            (_, TokenScope::Read | TokenScope::Metrics) => true,
            (have, need) => have == need,
        }
    }
}

/// A token as stored: never its secret, only a salted hash of it (see `mobius_app::tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    pub created: Timestamp,
    /// Hex SHA-256 of `salt` followed by the token; for tokens made before salts, of the token
    /// alone (and `salt` is empty).
    #[serde(skip)]
    pub secret_hash: String,
    /// Hex random bytes, the token's own; empty for tokens made before salts.
    #[serde(skip)]
    pub salt: String,
    /// When it stops authenticating, whatever happens to the process that made it (a job's
    /// run token outlives no crash); `None`: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// The one repository and run it acts for (a job's run token); `None`: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction: Option<TokenRestriction>,
    /// The flag set a `flags` token evaluates (and only that one); `None` for other scopes.
    #[serde(default, rename = "set", skip_serializing_if = "Option::is_none")]
    pub flag_set: Option<String>,
}

/// A lease on a piece of work that must happen once across replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub name: String,
    /// Who holds (or last held) it: a replica's id.
    pub holder: String,
    /// When this holder took it; renewals keep it.
    pub acquired: Timestamp,
    /// Free to take from this instant unless renewed.
    pub expires: Timestamp,
}

/// A console session as stored: never the cookie, only SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hex SHA-256 of the cookie's value.
    pub id_hash: String,
    /// The token the session was opened with; when it is revoked or expires, so is the session.
    pub token_id: String,
    /// The session's CSRF token, which every form carries.
    pub csrf: String,
    pub created: Timestamp,
    pub expires: Timestamp,
}

/// What a restricted token is limited to: the runs of one repository, for one run's job. The
/// server refuses it everything else (secrets, tokens, deployments, other repositories).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRestriction {
    /// The repository (`owner/name`) whose runs it may read and start.
    pub repository: String,
    /// The run whose job holds it.
    pub run: i64,
}

/// The protection rules of a deployment environment of a repository (GitHub's environment
/// settings): who must approve a job that deploys there, and from which branches it may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    /// `owner/name`.
    pub repository: String,
    /// The name jobs give in `environment:`.
    pub name: String,
    /// Whether a job waits for a review before it starts.
    pub require_review: bool,
    /// The token names that may review; empty: any `deploy` or `admin` token.
    pub reviewers: Vec<String>,
    /// Glob patterns of the branches (and `refs/tags/…` of the tags) whose runs may deploy
    /// here; empty: every branch and tag.
    pub branches: Vec<String>,
    /// When the rules last changed.
    pub updated: Timestamp,
    /// Who changed them (a token's name, `cli` for the local command).
    pub updated_by: String,
}

/// A git repository available on this machine, used for commit ancestry: a clone, or the
/// mirror of a remote the server keeps in its data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// The key events use (`owner/name` for GitHub, the project path for GitLab).
    pub name: String,
    pub path: String,
    /// The name of the repository's stored secret holding what git authenticates to its
    /// remote with (an HTTPS token or an SSH private key); `None` for a clone on this machine
    /// or an anonymous remote. The name only: the value stays sealed in the secret store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// One encrypted secret: where it applies and its sealed value. The plaintext never reaches
/// the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// The repository (`owner/name`) whose jobs see it.
    pub repository: String,
    /// The deployment environment it is limited to; `""` for every job of the repository.
    pub environment: String,
    /// `[A-Z_][A-Z0-9_]*`.
    pub name: String,
    /// The AEAD nonce.
    pub nonce: Vec<u8>,
    /// The sealed value.
    pub ciphertext: Vec<u8>,
    /// When it last changed.
    pub updated: Timestamp,
    /// Who changed it (a token's id or name, `cli` for the local command).
    pub updated_by: String,
}

/// What [`Store::listen`] calls with each notification's payload; `false` stops listening.
pub type Listener = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The event log and its facts.
pub trait Store: Send + Sync {
    /// Appends events in one transaction, materialising each one's facts. Each event is
    /// [`AppendStatus::Stored`], or [`AppendStatus::Duplicate`] when `(source, id)` is already in
    /// the log (then nothing changes). On return the transaction is durable.
    fn append(&self, events: &[NewEvent], ctx: &IngestContext<'_>) -> Result<Vec<AppendStatus>, StoreError>;
    /// Appends a bulk import's batches in order, each event as [`Store::append`] would — the
    /// same statuses, the same facts — for an import that has the store to itself while it
    /// runs. Each batch goes back to `appended` with its statuses as soon as it is in, before
    /// it is durable: the whole import is durable once this returns `Ok`. A backend may commit
    /// several batches together and sync less often until the end, so after an error or a
    /// crash the batches before its last commit may be stored and the rest not; re-running the
    /// import is safe, since what is stored already is a duplicate the second time.
    ///
    /// By default each batch is one [`Store::append`].
    fn import(
        &self,
        batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
        ctx: &IngestContext<'_>,
        appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
    ) -> Result<(), StoreError> {
        for batch in batches {
            let statuses = if batch.is_empty() { Vec::new() } else { self.append(&batch, ctx)? };
            appended(batch, statuses);
        }
        Ok(())
    }
    /// Raw events in log order.
    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    fn event_count(&self) -> Result<u64, StoreError>;
    /// Every service and environment with deployments or incidents.
    fn scopes(&self) -> Result<Vec<Scope>, StoreError>;
    /// The facts measurements need for one scope: deployment attempts finished in
    /// `[from, to)`, the changes they first shipped, the incidents attributed to them or
    /// resolved in the window, and the pipeline runs on their revisions.
    fn facts(&self, scope: &Scope, from: Timestamp, to: Timestamp) -> Result<FactSet, StoreError>;
    /// [`Store::facts`] of every scope of `environment` (as [`Store::scopes`] lists them, in
    /// that order), read together in one read transaction: what a page about every service
    /// needs, in one call however many services there are, and consistent across them.
    fn facts_of_environment(
        &self,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Scope, FactSet)>, StoreError>;
    /// The deployment attempts with these ids (those that exist, in id order): what a list of
    /// incidents names, without reading each scope's history.
    fn deployments(&self, ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError>;

    /// Takes the lease `name` for `holder` until `expires` when it is free, lapsed at `now`, or
    /// already `holder`'s (a renewal); whether `holder` holds it now. Atomic: of two claimers
    /// of a free lease, one wins.
    fn claim_lease(&self, name: &str, holder: &str, now: Timestamp, expires: Timestamp) -> Result<bool, StoreError>;
    /// Gives the lease up at once when `holder` holds it; whether it did.
    fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError>;
    /// Every lease, held or lapsed, by name.
    fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError>;

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The token with this id.
    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// A token made before salts (empty `salt`) by the unsalted hash of its secret.
    fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    fn token_count(&self) -> Result<u64, StoreError>;
    /// Every incident of every service and environment, newest first (by detection).
    fn incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// Every token, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Deletes a token, so its secret no longer authenticates; `false` if there was none.
    fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;
    /// Stores a new console session.
    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// The session whose cookie hashes to `id_hash`, expired or not.
    fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session; `false` if there was none.
    fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError>;
    /// Forgets the sessions that expired before `now`; how many.
    fn delete_expired_sessions(&self, now: Timestamp) -> Result<usize, StoreError>;

    fn add_repository(&self, repository: &Repository) -> Result<(), StoreError>;
    /// Unregisters a repository and forgets its recorded heads (its runs stay); `false` if it
    /// was not registered.
    fn remove_repository(&self, name: &str) -> Result<bool, StoreError>;
    fn repositories(&self) -> Result<Vec<Repository>, StoreError>;

    /// Creates a run (in the state `queued`, claimed by nobody) and returns its id; on
    /// PostgreSQL its commit is announced on [`runs::RUNS_CHANNEL`].
    fn create_run(&self, run: &NewRun) -> Result<i64, StoreError>;
    /// Claims for `driver` (`<node> <holder>`; empty for a process that names none) the oldest
    /// queued run nobody drives — or run `run` only, when given — and returns its id; `None`
    /// when there is none. A run whose concurrency group has a run in flight under another
    /// driver is left for that driver (unless asked for by id). The claim records `driver` as
    /// the run's driver (also under [`runs::driver_key`], when not empty) in the same
    /// transaction. Two claimers never get the same run.
    fn claim_run(&self, driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError>;
    /// Creates a run (in the state `queued`) and claims it for `driver` in the same
    /// transaction, as [`Store::claim_run`] would (so not when another driver has a run of its
    /// concurrency group in flight): what a process with a free run slot does with the runs it
    /// plans. Returns its id and whether it was claimed; one left unclaimed is announced as
    /// [`Store::create_run`]'s are.
    fn queue_run(&self, run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError>;
    /// Applies run, job and step changes in one transaction, in order.
    fn update_runs(&self, updates: &[RunUpdate]) -> Result<(), StoreError>;
    fn runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError>;
    fn run(&self, id: i64) -> Result<Option<RunDetail>, StoreError>;
    /// Marks every queued or running run `interrupted` (finished at `at`) and returns them as
    /// they were before: what a server starting up must deal with.
    fn interrupt_in_flight(&self, at: Timestamp) -> Result<Vec<RunRecord>, StoreError>;

    /// The branch heads last recorded for a repository; `None` if never recorded.
    fn repository_heads(&self, repository: &str) -> Result<Option<Heads>, StoreError>;
    /// Replaces the recorded branch heads of a repository.
    fn set_repository_heads(&self, repository: &str, heads: &Heads) -> Result<(), StoreError>;

    /// An artifact known from `artifact.packaged` facts, by its id or by the revision it was
    /// built from: `(artifact id, revision)`.
    fn artifact(&self, id_or_revision: &str) -> Result<Option<(String, Option<String>)>, StoreError>;

    /// Inserts a rollout (`id` 0) or replaces the stored one; returns its id.
    fn save_rollout(&self, rollout: &RolloutRow) -> Result<i64, StoreError>;
    fn rollouts(&self, query: &RolloutQuery) -> Result<Vec<RolloutRow>, StoreError>;

    /// Adds SLI counts to their minutes (a minute recorded twice sums), in one transaction.
    fn add_sli(&self, minutes: &[SliMinute]) -> Result<(), StoreError>;
    /// The SLI minutes of a service in an environment with `from <= minute < to`, every
    /// version, in time order.
    fn sli(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliMinute>, StoreError>;
    /// Requests and 5xx per minute (or per hour, for compacted rows) of a service in an
    /// environment with `from <= minute < to`, every version summed, in time order: what an
    /// availability SLO reads, without the histograms.
    fn sli_counts(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliCounts>, StoreError>;
    /// Downsamples SLI counters as they age, in one transaction: rows that started before
    /// `hourly_before` fold into one row per hour (at the hour's start; requests, errors and
    /// histogram buckets summed), and rows that started before `drop_before` are deleted.
    fn compact_sli(&self, hourly_before: i64, drop_before: i64) -> Result<SliCompaction, StoreError>;

    /// Replaces the document kept under `key` (durable when this returns).
    fn put_state(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// The document kept under `key`, if any.
    fn state(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Keeps `value` under `key` unless a document is kept there already, and returns the
    /// document that stands: `value` itself when this call put it. Atomic: of any number of
    /// callers (replicas), exactly one puts. What deduplicates work across replicas (an alert's
    /// notification is claimed under its key before it is sent).
    fn put_state_once(&self, key: &str, value: &str) -> Result<String, StoreError>;
    /// Replaces the document under `key` with `value` only if it is still `expected` (`None`:
    /// only if there is none), and says whether it did: a compare-and-swap, atomic across
    /// replicas. What a read-modify-write of a shared document retries on.
    fn swap_state(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreError>;

    /// Adds or replaces a secret (by repository, environment and name).
    fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError>;
    /// Removes a secret; `false` if there was none.
    fn delete_secret(&self, repository: &str, environment: &str, name: &str) -> Result<bool, StoreError>;
    /// The secrets of one repository, or of all, ordered by repository, environment and name.
    fn secrets(&self, repository: Option<&str>) -> Result<Vec<SecretRecord>, StoreError>;
    /// Replaces every secret's sealed value in one transaction (a key rotation), and the
    /// document `state_key` with `state_value` in the same transaction.
    fn reseal_secrets(&self, secrets: &[SecretRecord], state_key: &str, state_value: &str) -> Result<(), StoreError>;

    /// Adds or replaces where a repository's commit statuses go. From then on every job
    /// state stored for its runs is also put in the status outbox (see [`forge`]).
    fn set_forge(&self, forge: &ForgeSettings) -> Result<(), StoreError>;
    /// Stops reporting a repository's statuses; `false` if it had no forge settings.
    fn remove_forge(&self, repository: &str) -> Result<bool, StoreError>;
    /// Where a repository's commit statuses go, if anywhere.
    fn forge(&self, repository: &str) -> Result<Option<ForgeSettings>, StoreError>;
    /// Up to `limit` statuses not delivered yet, oldest first.
    fn pending_statuses(&self, limit: u32) -> Result<Vec<PendingStatus>, StoreError>;
    /// Claims for `holder` until `until` up to `limit` statuses not delivered yet, oldest
    /// first, by whole contexts (a job of a run): those of contexts with a status due at `now`
    /// (`next_attempt` passed) that no other holder has a claim on that lasts past `now`, with
    /// `holder`'s own claims renewed. Returns what it
    /// claimed. Two holders never hold a status at once; recording an outcome
    /// ([`Store::record_status_outcomes`]) ends its claim.
    fn claim_statuses(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingStatus>, StoreError>;
    /// Records what delivery attempts did, in one transaction.
    fn record_status_outcomes(&self, outcomes: &[StatusOutcome]) -> Result<(), StoreError>;
    /// Adds or replaces an environment's protection rules (by repository and name).
    fn put_environment(&self, environment: &EnvironmentRecord) -> Result<(), StoreError>;
    /// Removes an environment's protection rules; `false` if there were none.
    fn delete_environment(&self, repository: &str, name: &str) -> Result<bool, StoreError>;
    /// The protected environments of one repository, or of all, by repository and name.
    fn environments(&self, repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError>;

    /// Calls `wake` with the payload of each notification on `channel` that any process
    /// sharing the store sends (PostgreSQL's `LISTEN`, on a connection and thread of its own,
    /// reconnecting when it drops) until `wake` returns `false`. `false` when the backend has
    /// no notifications (SQLite: one process, which wakes its own waiters). Waiters keep
    /// polling as well: a notification lost while reconnecting only delays them.
    fn listen(&self, channel: &str, wake: Listener) -> Result<bool, StoreError> {
        let _ = (channel, wake);
        Ok(false)
    }

    // Feature flag sets (see [`flags`]).

    /// Writes a flag set's change as `write.base + 1` and appends `event` (its audit record, with
    /// the facts it implies) in the same transaction — only while the stored version is still
    /// `write.base`; else nothing is written and the answer is [`FlagSetPut::Conflict`].
    /// Durable when it returns.
    fn put_flag_set(
        &self,
        write: &FlagSetWrite<'_>,
        event: &NewEvent,
        ctx: &IngestContext<'_>,
    ) -> Result<FlagSetPut, StoreError>;
    /// One set as stored, a deleted one's tombstone included.
    fn flag_set(&self, name: &str) -> Result<Option<FlagSetRecord>, StoreError>;
    /// Every set as stored, tombstones included, by name.
    fn flag_sets(&self) -> Result<Vec<FlagSetRecord>, StoreError>;
    /// Every set's name and version, tombstones included, by name: what replicas compare with
    /// the sets they hold, every second, without reading the documents.
    fn flag_set_versions(&self) -> Result<Vec<(String, i64)>, StoreError>;

    // The agent job queue (see [`agents`]).

    /// Records an agent's contact: inserted the first time, else its labels, token and
    /// `last_contact` updated (`first_contact` kept).
    fn record_agent(&self, agent: &AgentRecord) -> Result<(), StoreError>;
    /// Every agent ever recorded, by name then id.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;
    /// Queues a job; its id.
    fn enqueue_agent_job(&self, job: &NewAgentJob) -> Result<i64, StoreError>;
    /// Claims for `agent` (whose token is `token`) the oldest queued job whose labels are all in
    /// `labels`, running under a lease until `lease_expires`; `None` when there is none. Two
    /// claimers never get the same job.
    fn claim_agent_job(
        &self,
        agent: &str,
        token: &str,
        labels: &[String],
        now: Timestamp,
        lease_expires: Timestamp,
    ) -> Result<Option<AgentJob>, StoreError> {
        Ok(self.claim_agent_jobs(agent, token, labels, now, lease_expires, 1)?.pop())
    }
    /// Claims for `agent` up to `limit` of the oldest queued jobs whose labels are all in
    /// `labels`, in one transaction, each under a lease until `lease_expires`; oldest first,
    /// empty when there is none. Two claimers never get the same job.
    fn claim_agent_jobs(
        &self,
        agent: &str,
        token: &str,
        labels: &[String],
        now: Timestamp,
        lease_expires: Timestamp,
        limit: usize,
    ) -> Result<Vec<AgentJob>, StoreError>;
    /// Extends the lease of a job `agent` holds to `lease_expires`. A running job whose lease
    /// lapsed is still its holder's until [`Store::expire_agent_jobs`] makes it lost: the sweep
    /// decides the loss, not the clock of the renewal.
    fn renew_agent_job(&self, id: i64, agent: &str, lease_expires: Timestamp) -> Result<Renewal, StoreError>;
    /// Appends a chunk of the log of a job `agent` holds, at byte `offset` (see [`LogAppend`]).
    fn append_agent_log(&self, id: i64, agent: &str, offset: u64, data: &[u8]) -> Result<LogAppend, StoreError>;
    /// The job's log from byte `from` to its end, at most `limit` bytes; empty from its end
    /// on, or for a job that does not exist.
    fn agent_log(&self, id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError>;
    /// Ends a job `agent` holds with its report; `false` (and nothing changes) when it does not
    /// hold it.
    fn finish_agent_job(&self, id: i64, agent: &str, result: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Appends the last chunk of the log of a job `agent` holds at byte `offset` and ends the
    /// job with its report, in one transaction: [`LogAppend::Appended`] with the log's length
    /// when it ended, else (a gap, a job not held) nothing changes.
    fn finish_agent_job_with_log(
        &self,
        id: i64,
        agent: &str,
        offset: u64,
        data: &[u8],
        result: &str,
        at: Timestamp,
    ) -> Result<LogAppend, StoreError>;
    /// Asks a job to cancel: a queued one is [`AgentJobState::Cancelled`] at once (with
    /// `reason`), a running one has `cancel` set for its agent's next renewal. `false` when the
    /// job has ended or does not exist.
    fn cancel_agent_job(&self, id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// One job.
    fn agent_job(&self, id: i64) -> Result<Option<AgentJob>, StoreError>;
    /// The queued and running jobs, oldest first.
    fn active_agent_jobs(&self) -> Result<Vec<AgentJob>, StoreError>;
    /// Makes every running job whose lease lapsed before `now` (`lease_expires < now`)
    /// [`AgentJobState::Lost`] with `reason`, ended at `now`; their ids, ascending.
    fn expire_agent_jobs(&self, now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError>;
    /// Makes every running job held with the token `token` [`AgentJobState::Lost`] with
    /// `reason`, ended at `at` (the token was revoked); their ids, ascending.
    fn lose_agent_jobs_of_token(&self, token: &str, reason: &str, at: Timestamp) -> Result<Vec<i64>, StoreError>;

    // Files passing through the store for agent jobs (see [`transfers`]).

    /// Names `bytes` (whose digest is `digest`) `name` in `transfer`, replacing what that name
    /// was; the content is stored once per digest.
    fn put_transfer_file(&self, transfer: &str, name: &str, digest: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Names in `transfer` each of `digests` the store has (by the digest itself); the ones it
    /// lacks, in order, to be put.
    fn hold_transfer_blobs(&self, transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError>;
    /// The content `transfer` names `name`; `None` when it names nothing so.
    fn transfer_file(&self, transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Forgets `transfer`'s names, and the content no other transfer names.
    fn release_transfer(&self, transfer: &str) -> Result<(), StoreError>;
    /// The transfers whose name starts with `prefix`, in order (for sweeping those whose owner
    /// is gone).
    fn transfers(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    // The rollout command queue (see [`commands`]).

    /// Queues a change to an environment's rollouts; its id.
    fn enqueue_rollout_command(&self, command: &NewRolloutCommand) -> Result<i64, StoreError>;
    /// Claims for `holder` the oldest queued command of any of `environments`; `None` when
    /// there is none. Two claimers never get the same command.
    fn claim_rollout_command(
        &self,
        environments: &[Scope],
        holder: &str,
        now: Timestamp,
    ) -> Result<Option<RolloutCommand>, StoreError>;
    /// Stores the answer to a command `holder` claimed; `false` (and nothing changes) when it
    /// does not hold it (it was lost meanwhile).
    fn finish_rollout_command(&self, id: i64, holder: &str, result: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Withdraws a command nobody has claimed (its asker stopped waiting); `false` when it was
    /// claimed or has ended.
    fn withdraw_rollout_command(&self, id: i64, at: Timestamp) -> Result<bool, StoreError>;
    /// Makes every command of `environment` claimed by a replica other than `holder` (the one
    /// taking the environment over) [`CommandState::Lost`], ended at `at`; their ids, ascending.
    fn lose_rollout_commands(&self, environment: &Scope, holder: &str, at: Timestamp) -> Result<Vec<i64>, StoreError>;
    /// One command.
    fn rollout_command(&self, id: i64) -> Result<Option<RolloutCommand>, StoreError>;
    /// Forgets the commands that ended before `ended_before`; how many.
    fn prune_rollout_commands(&self, ended_before: Timestamp) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_failing_under_materialisation_is_unavailable_too() {
        let busy = || rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(StoreError::Sqlite(busy()).is_unavailable());
        assert!(StoreError::Facts(Box::new(busy())).is_unavailable(), "the rules' error wraps the database's");
        assert!(!StoreError::Facts("a rule failed".into()).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
    }
}
