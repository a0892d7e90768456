//! The PostgreSQL backend: the same tables as [`crate::sqlite`], its own SQL.
//!
//! The `Store` trait is synchronous, so this uses the blocking `postgres` client, over a small
//! pool of its own ([`PgStore::connect`]). Every write transaction first takes one advisory
//! lock, so writers are serialised as SQLite's single writer is: materialisation reads the
//! facts earlier events wrote, and the log's `seq` order is its commit order (a reader tailing
//! by `after_seq` never skips an event that commits later with a smaller `seq`). The agent job
//! queue's writes and the rollout command queue's are the exception: they touch only their own
//! tables and lock only their rows (claimers skip each other's with `FOR UPDATE SKIP LOCKED`;
//! see `agents` and `commands`), so agents and replicas polling neither wait behind an import
//! nor hold one up.
//!
//! Connections are encrypted as the URL's `sslmode` asks, as libpq does, through rustls with
//! the ring provider (see `tls`): `verify-full` (with `sslrootcert=FILE` or the system's roots)
//! is the mode for a database across a network; `prefer`, the default, and `require` encrypt
//! without verifying who answers.

mod agents;
mod commands;
mod environments;
mod facts;
mod flags;
mod forge;
mod import;
mod leases;
mod listen;
mod migrations;
mod pool;
mod queue;
mod read;
mod runs;
mod sessions;
mod sli;
mod tls;
mod transfers;

use std::collections::HashMap;

use ::postgres::Transaction;
use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{AppendStatus, NewEvent, StoredEvent};

use self::pool::{Failed, Pool};
use crate::{
    AgentJob, AgentRecord, EnvironmentRecord, EventQuery, FlagSetPut, FlagSetRecord, FlagSetWrite, ForgeSettings,
    Heads, IngestContext, LeaseRecord, Listener, LogAppend, NewAgentJob, NewRolloutCommand, NewRun, PendingStatus,
    Renewal, Repository, RolloutCommand, RolloutQuery, RolloutRow, RunDetail, RunQuery, RunRecord, RunUpdate, Scope,
    SecretRecord, SessionRecord, SliCompaction, SliCounts, SliMinute, StatusOutcome, Store, StoreError, TokenRecord,
};

pub use self::pool::redact;

/// Taken by every write transaction (`pg_advisory_xact_lock`): one writer at a time.
const WRITE_LOCK: i64 = 0x6d6f_6269_7573_0002;

/// The event log and its facts in a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db` or the
    /// `host=… dbname=…` form) and migrates it. Errors name the URL with its password
    /// replaced by `***`. TLS follows libpq's `sslmode` (`disable`, `allow`, `prefer` — the
    /// default —, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file, or
    /// `system`); `prefer` and `require` encrypt but do not verify the server, as in libpq.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool = Pool::new(url)?;
        pool.with_client(|client| migrations::migrate(client).map_err(Failed::After))?;
        Ok(PgStore { pool })
    }

    /// The URL connected to, its password replaced by `***`.
    pub fn url(&self) -> &str {
        self.pool.url()
    }

    /// Runs `f`, which only reads (so it may be run again on a new connection should the one
    /// it met have died while idle).
    fn read<T>(&self, f: impl Fn(&mut ::postgres::Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.pool.with_client(|client| f(client).map_err(Failed::Before))
    }

    /// Runs `f` in a write transaction, after every other writer's; commits if it succeeds.
    fn write<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.transaction(true, f)
    }

    /// Runs `f` in a write transaction that takes no write lock, committing if it succeeds:
    /// the agent and rollout command queues', whose changes lock only the rows they touch (see
    /// `agents`, `commands`).
    fn write_rows<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.transaction(false, f)
    }

    /// Runs `f` in a transaction (after every other writer's with `lock`) and commits. Only a
    /// `BEGIN` that failed may be tried again (on a new connection): `f` runs at most once.
    fn transaction<T>(
        &self,
        lock: bool,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut f = Some(f);
        self.pool.with_client(|client| {
            let mut tx = client.transaction().map_err(|e| Failed::Before(e.into()))?;
            let f = f.take().expect("retried only when BEGIN failed, before `f` ran");
            let run = |tx: &mut Transaction<'_>| {
                if lock {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                }
                f(tx)
            };
            let value = run(&mut tx).map_err(Failed::After)?;
            tx.commit().map_err(|e| Failed::After(e.into()))?;
            Ok(value)
        })
    }
}

pub(super) fn upsert_state(tx: &mut Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO server_state (key, value, updated) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        &[&key, &value, &to_micros(Timestamp::now())],
    )?;
    Ok(())
}

/// Appends events and their facts inside `tx`, a write transaction holding the write lock:
/// [`Store::append`]'s work, shared with the writes whose audit event commits with them.
fn append_in(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    ctx: &IngestContext<'_>,
) -> Result<Vec<AppendStatus>, StoreError> {
    let received = to_micros(Timestamp::now());
    let insert = tx.prepare(
        // Not a bare `ON CONFLICT DO NOTHING`, which would take a `seq` for each
        // duplicate: with writers one at a time, the log's `seq`s are SQLite's, gapless.
        "INSERT INTO events (source, id, type, subject, ts, received, origin, raw)
         SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::text, $8::text
         WHERE NOT EXISTS (SELECT 1 FROM events WHERE source = $1 AND id = $2)
         ON CONFLICT (source, id) DO NOTHING",
    )?;
    let mut statuses = Vec::with_capacity(events.len());
    let mut statements = HashMap::new();
    let mut facts = facts::PgFacts::new(tx, &mut statements);
    for event in events {
        let inserted = facts.tx.execute(
            &insert,
            &[
                &event.source,
                &event.id,
                &event.ty,
                &event.subject,
                &to_micros(event.timestamp),
                &received,
                &event.origin.as_str(),
                &event.raw,
            ],
        )?;
        let status = if inserted == 1 {
            facts.apply(ctx, event)?;
            AppendStatus::Stored
        } else {
            import::duplicate(&mut facts, ctx, event)?
        };
        statuses.push(status);
    }
    facts.flush()?;
    Ok(statuses)
}

impl Store for PgStore {
    fn append(&self, events: &[NewEvent], ctx: &IngestContext<'_>) -> Result<Vec<AppendStatus>, StoreError> {
        self.write(|tx| append_in(tx, events, ctx))
    }

    fn import(
        &self,
        batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
        ctx: &IngestContext<'_>,
        appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
    ) -> Result<(), StoreError> {
        // An import may have written before it failed: never made twice.
        self.pool.with_client(|client| import::import(client, batches, ctx, appended).map_err(Failed::After))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|c| read::events(c, query))
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        self.read(|c| Ok(c.query_one("SELECT count(*) FROM events", &[])?.get::<_, i64>(0) as u64))
    }

    fn scopes(&self) -> Result<Vec<Scope>, StoreError> {
        self.read(read::scopes)
    }

    fn facts(&self, scope: &Scope, from: Timestamp, to: Timestamp) -> Result<FactSet, StoreError> {
        self.read(|c| read::facts(c, scope, from, to))
    }

    fn facts_of_environment(
        &self,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Scope, FactSet)>, StoreError> {
        self.read(|c| read::facts_of_environment(c, environment, from, to))
    }

    fn deployments(&self, ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError> {
        self.read(|c| read::deployments(c, ids))
    }

    fn claim_lease(&self, name: &str, holder: &str, now: Timestamp, expires: Timestamp) -> Result<bool, StoreError> {
        self.write(|tx| leases::claim(tx, name, holder, now, expires))
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        self.write(|tx| leases::release(tx, name, holder))
    }

    fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.read(leases::list)
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tokens (id, name, scope, created, secret_sha256, salt, expires, repository, run_id, flag_set)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &token.id,
                    &token.name,
                    &token.scope.as_str(),
                    &to_micros(token.created),
                    &token.secret_hash,
                    &token.salt,
                    &token.expires.map(to_micros),
                    &token.restriction.as_ref().map(|r| r.repository.as_str()),
                    &token.restriction.as_ref().map(|r| r.run),
                    &token.flag_set,
                ],
            )?;
            Ok(())
        })
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|c| read::token(c, read::TokenKey::Id(id)))
    }

    fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.read(|c| read::token(c, read::TokenKey::LegacyHash(secret_hash)))
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        self.read(|c| Ok(c.query_one("SELECT count(*) FROM tokens", &[])?.get::<_, i64>(0) as u64))
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.read(read::incidents)
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(read::tokens)
    }

    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM tokens WHERE id = $1", &[&id])? > 0))
    }

    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.write(|tx| sessions::insert(tx, session))
    }

    fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.read(|c| sessions::get(c, id_hash))
    }

    fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])? > 0))
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> Result<usize, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE expires < $1", &[&to_micros(now)])? as usize))
    }

    fn add_repository(&self, repository: &Repository) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO repositories (name, path, credentials) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET path = excluded.path, credentials = excluded.credentials",
                &[&repository.name, &repository.path, &repository.credentials],
            )?;
            Ok(())
        })
    }

    fn remove_repository(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            let removed = tx.execute("DELETE FROM repositories WHERE name = $1", &[&name])?;
            tx.execute("DELETE FROM repository_heads WHERE repository = $1", &[&name])?;
            tx.execute("DELETE FROM repository_heads_seen WHERE repository = $1", &[&name])?;
            tx.execute("DELETE FROM repository_forges WHERE repository = $1", &[&name])?;
            Ok(removed > 0)
        })
    }

    fn repositories(&self) -> Result<Vec<Repository>, StoreError> {
        self.read(|c| {
            let rows = c.query("SELECT name, path, credentials FROM repositories ORDER BY name", &[])?;
            Ok(rows.iter().map(|r| Repository { name: r.get(0), path: r.get(1), credentials: r.get(2) }).collect())
        })
    }

    fn create_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        self.write(|tx| runs::create(tx, run))
    }

    fn queue_run(&self, run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError> {
        self.write_rows(|tx| queue::queue_run(tx, run, driver))
    }

    fn claim_run(&self, driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError> {
        self.write_rows(|tx| queue::claim_run(tx, driver, run))
    }

    fn update_runs(&self, updates: &[RunUpdate]) -> Result<(), StoreError> {
        self.write(|tx| runs::update(tx, updates))
    }

    fn runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.read(|c| runs::list(c, query))
    }

    fn run(&self, id: i64) -> Result<Option<RunDetail>, StoreError> {
        self.read(|c| runs::detail(c, id))
    }

    fn interrupt_in_flight(&self, at: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        self.write(|tx| runs::interrupt_in_flight(tx, at))
    }

    fn repository_heads(&self, repository: &str) -> Result<Option<Heads>, StoreError> {
        self.read(|c| runs::heads(c, repository))
    }

    fn set_repository_heads(&self, repository: &str, heads: &Heads) -> Result<(), StoreError> {
        self.write(|tx| runs::set_heads(tx, repository, heads))
    }

    fn artifact(&self, id_or_revision: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.read(|c| {
            let row = c.query_opt(
                "SELECT artifact_id, revision FROM artifacts WHERE artifact_id = $1 OR revision = $1 LIMIT 1",
                &[&id_or_revision],
            )?;
            Ok(row.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn save_rollout(&self, rollout: &RolloutRow) -> Result<i64, StoreError> {
        self.write(|tx| runs::save_rollout(tx, rollout))
    }

    fn rollouts(&self, query: &RolloutQuery) -> Result<Vec<RolloutRow>, StoreError> {
        self.read(|c| runs::rollouts(c, query))
    }

    fn add_sli(&self, minutes: &[SliMinute]) -> Result<(), StoreError> {
        self.write(|tx| sli::add_sli(tx, minutes))
    }

    fn sli(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliMinute>, StoreError> {
        self.read(|c| sli::sli(c, service, environment, from, to))
    }

    fn sli_counts(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliCounts>, StoreError> {
        self.read(|c| sli::counts(c, service, environment, from, to))
    }

    fn compact_sli(&self, hourly_before: i64, drop_before: i64) -> Result<SliCompaction, StoreError> {
        self.write(|tx| sli::compact(tx, hourly_before, drop_before))
    }

    fn put_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| upsert_state(tx, key, value))
    }

    fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| Ok(c.query_opt("SELECT value FROM server_state WHERE key = $1", &[&key])?.map(|r| r.get(0))))
    }

    fn put_state_once(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // Under the write lock: the insert and the read see the same document.
        self.write(|tx| {
            tx.execute(
                "INSERT INTO server_state (key, value, updated) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                &[&key, &value, &to_micros(Timestamp::now())],
            )?;
            Ok(tx.query_one("SELECT value FROM server_state WHERE key = $1", &[&key])?.get(0))
        })
    }

    fn swap_state(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreError> {
        let now = to_micros(Timestamp::now());
        self.write(|tx| {
            let swapped = match expected {
                None => tx.execute(
                    "INSERT INTO server_state (key, value, updated) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                    &[&key, &value, &now],
                )?,
                Some(expected) => tx.execute(
                    "UPDATE server_state SET value = $2, updated = $3 WHERE key = $1 AND value = $4",
                    &[&key, &value, &now, &expected],
                )?,
            };
            Ok(swapped == 1)
        })
    }

    fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO secrets (repository, environment, name, nonce, ciphertext, updated, updated_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (repository, environment, name) DO UPDATE SET nonce = excluded.nonce,
                     ciphertext = excluded.ciphertext, updated = excluded.updated, updated_by = excluded.updated_by",
                &[
                    &secret.repository,
                    &secret.environment,
                    &secret.name,
                    &secret.nonce,
                    &secret.ciphertext,
                    &to_micros(secret.updated),
                    &secret.updated_by,
                ],
            )?;
            Ok(())
        })
    }

    fn delete_secret(&self, repository: &str, environment: &str, name: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            let removed = tx.execute(
                "DELETE FROM secrets WHERE repository = $1 AND environment = $2 AND name = $3",
                &[&repository, &environment, &name],
            )?;
            Ok(removed > 0)
        })
    }

    fn secrets(&self, repository: Option<&str>) -> Result<Vec<SecretRecord>, StoreError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT repository, environment, name, nonce, ciphertext, updated, updated_by FROM secrets
                 WHERE $1::text IS NULL OR repository = $1 ORDER BY repository, environment, name",
                &[&repository],
            )?;
            Ok(rows
                .iter()
                .map(|r| SecretRecord {
                    repository: r.get(0),
                    environment: r.get(1),
                    name: r.get(2),
                    nonce: r.get(3),
                    ciphertext: r.get(4),
                    updated: from_micros(r.get(5)),
                    updated_by: r.get(6),
                })
                .collect())
        })
    }

    fn reseal_secrets(&self, secrets: &[SecretRecord], state_key: &str, state_value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let update = tx.prepare(
                "UPDATE secrets SET nonce = $4, ciphertext = $5 WHERE repository = $1 AND environment = $2 AND name = $3",
            )?;
            for s in secrets {
                tx.execute(&update, &[&s.repository, &s.environment, &s.name, &s.nonce, &s.ciphertext])?;
            }
            upsert_state(tx, state_key, state_value)
        })
    }

    fn set_forge(&self, forge: &ForgeSettings) -> Result<(), StoreError> {
        self.write(|tx| forge::set(tx, forge))
    }

    fn remove_forge(&self, repository: &str) -> Result<bool, StoreError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM repository_forges WHERE repository = $1", &[&repository])? > 0))
    }

    fn forge(&self, repository: &str) -> Result<Option<ForgeSettings>, StoreError> {
        self.read(|c| forge::get(c, repository))
    }

    fn pending_statuses(&self, limit: u32) -> Result<Vec<PendingStatus>, StoreError> {
        self.read(|c| forge::pending(c, limit))
    }

    fn claim_statuses(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingStatus>, StoreError> {
        self.write_rows(|tx| queue::claim_statuses(tx, holder, now, until, limit))
    }

    fn record_status_outcomes(&self, outcomes: &[StatusOutcome]) -> Result<(), StoreError> {
        self.write(|tx| forge::record(tx, outcomes))
    }

    fn put_environment(&self, environment: &EnvironmentRecord) -> Result<(), StoreError> {
        self.write(|tx| environments::put(tx, environment))
    }

    fn delete_environment(&self, repository: &str, name: &str) -> Result<bool, StoreError> {
        self.write(|tx| environments::delete(tx, repository, name))
    }

    fn environments(&self, repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError> {
        self.read(|c| environments::list(c, repository))
    }

    fn record_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.write_rows(|tx| agents::record_agent(tx, agent))
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.read(agents::agents)
    }

    fn listen(&self, channel: &str, wake: Listener) -> Result<bool, StoreError> {
        listen::start(&self.pool, channel, wake)?;
        Ok(true)
    }

    fn put_flag_set(
        &self,
        write: &FlagSetWrite<'_>,
        event: &NewEvent,
        ctx: &IngestContext<'_>,
    ) -> Result<FlagSetPut, StoreError> {
        self.write(|tx| flags::put(tx, write, event, ctx))
    }

    fn flag_set(&self, name: &str) -> Result<Option<FlagSetRecord>, StoreError> {
        self.read(|c| flags::get(c, name))
    }

    fn flag_sets(&self) -> Result<Vec<FlagSetRecord>, StoreError> {
        self.read(flags::list)
    }

    fn flag_set_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(flags::versions)
    }

    fn enqueue_agent_job(&self, job: &NewAgentJob) -> Result<i64, StoreError> {
        self.write_rows(|tx| agents::enqueue(tx, job))
    }

    fn claim_agent_jobs(
        &self,
        agent: &str,
        token: &str,
        labels: &[String],
        now: Timestamp,
        lease_expires: Timestamp,
        limit: usize,
    ) -> Result<Vec<AgentJob>, StoreError> {
        self.write_rows(|tx| agents::claim(tx, agent, token, labels, now, lease_expires, limit))
    }

    fn renew_agent_job(&self, id: i64, agent: &str, lease_expires: Timestamp) -> Result<Renewal, StoreError> {
        self.write_rows(|tx| agents::renew(tx, id, agent, lease_expires))
    }

    fn append_agent_log(&self, id: i64, agent: &str, offset: u64, data: &[u8]) -> Result<LogAppend, StoreError> {
        self.write_rows(|tx| agents::append_log(tx, id, agent, offset, data))
    }

    fn agent_log(&self, id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.read(|c| agents::log(c, id, from, limit))
    }

    fn finish_agent_job(&self, id: i64, agent: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.write_rows(|tx| agents::finish(tx, id, agent, result, at))
    }

    fn finish_agent_job_with_log(
        &self,
        id: i64,
        agent: &str,
        offset: u64,
        data: &[u8],
        result: &str,
        at: Timestamp,
    ) -> Result<LogAppend, StoreError> {
        self.write_rows(|tx| agents::finish_with_log(tx, id, agent, offset, data, result, at))
    }

    fn cancel_agent_job(&self, id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.write_rows(|tx| agents::cancel(tx, id, reason, at))
    }

    fn agent_job(&self, id: i64) -> Result<Option<AgentJob>, StoreError> {
        self.read(|c| agents::job(c, id))
    }

    fn active_agent_jobs(&self) -> Result<Vec<AgentJob>, StoreError> {
        self.read(agents::active)
    }

    fn expire_agent_jobs(&self, now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError> {
        self.write_rows(|tx| agents::expire(tx, now, reason))
    }

    fn lose_agent_jobs_of_token(&self, token: &str, reason: &str, at: Timestamp) -> Result<Vec<i64>, StoreError> {
        self.write_rows(|tx| agents::lose_of_token(tx, token, reason, at))
    }

    fn put_transfer_file(&self, transfer: &str, name: &str, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_rows(|tx| transfers::put(tx, transfer, name, digest, bytes))
    }

    fn hold_transfer_blobs(&self, transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError> {
        self.write_rows(|tx| transfers::hold(tx, transfer, digests))
    }

    fn transfer_file(&self, transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| transfers::file(c, transfer, name))
    }

    fn release_transfer(&self, transfer: &str) -> Result<(), StoreError> {
        self.write_rows(|tx| transfers::release(tx, transfer))
    }

    fn transfers(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.read(|c| transfers::named(c, prefix))
    }

    fn enqueue_rollout_command(&self, command: &NewRolloutCommand) -> Result<i64, StoreError> {
        self.write_rows(|tx| commands::enqueue(tx, command))
    }

    fn claim_rollout_command(
        &self,
        environments: &[Scope],
        holder: &str,
        now: Timestamp,
    ) -> Result<Option<RolloutCommand>, StoreError> {
        self.write_rows(|tx| commands::claim(tx, environments, holder, now))
    }

    fn finish_rollout_command(&self, id: i64, holder: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.write_rows(|tx| commands::finish(tx, id, holder, result, at))
    }

    fn withdraw_rollout_command(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        self.write_rows(|tx| commands::withdraw(tx, id, at))
    }

    fn lose_rollout_commands(&self, environment: &Scope, holder: &str, at: Timestamp) -> Result<Vec<i64>, StoreError> {
        self.write_rows(|tx| commands::lose(tx, environment, holder, at))
    }

    fn rollout_command(&self, id: i64) -> Result<Option<RolloutCommand>, StoreError> {
        self.read(|c| commands::get(c, id))
    }

    fn prune_rollout_commands(&self, ended_before: Timestamp) -> Result<usize, StoreError> {
        self.write_rows(|tx| commands::prune(tx, ended_before))
    }
}
