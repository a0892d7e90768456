//! The embedded default backend: one SQLite file in WAL mode.
//!
//! One writer connection (SQLite allows one writer at a time anyway) and a small pool of
//! readers, so queries never wait behind an import. `synchronous=FULL` makes every committed
//! transaction durable before `append` returns: an acknowledged write survives kill -9 and
//! power loss. A bulk import ([`Store::import`], in `import`) relaxes that to a sync at its
//! end, and the agent job queue and its transfers to `synchronous=NORMAL`
//! ([`SqliteStore::with_queue_writer`]): their commits survive kill -9 of the server (the WAL
//! is written before the commit returns) but not the loss of the machine, which ends every
//! run they serve anyway; the next `FULL` commit syncs them too.

mod agents;
mod commands;
mod environments;
mod facts;
mod flags;
mod forge;
mod import;
mod keys;
mod leases;
mod migrations;
mod queue;
mod read;
mod repositories;
mod runs;
mod secrets;
mod sessions;
mod sli;
mod transfers;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident};
use mobius_events::time::to_micros;
use mobius_events::{AppendStatus, NewEvent, StoredEvent};
use rusqlite::{Connection, OpenFlags};

use crate::{
    AgentJob, AgentRecord, EnvironmentRecord, EventQuery, FlagSetPut, FlagSetRecord, FlagSetWrite, ForgeSettings,
    Heads, IngestContext, LeaseRecord, LogAppend, NewAgentJob, NewRolloutCommand, NewRun, PendingStatus, Renewal,
    Repository, RolloutCommand, RolloutQuery, RolloutRow, RunDetail, RunQuery, RunRecord, RunUpdate, Scope,
    SecretRecord, SessionRecord, SliCompaction, SliCounts, SliMinute, StatusOutcome, Store, StoreError, TokenRecord,
};

/// Bigger pages than SQLite's 4 KiB default halve the write calls of a bulk import.
const PAGE_SIZE: i64 = 8192;

/// Tuning that differs between a long-running server and a one-off bulk import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The writer's page cache, in KiB. Inserts land all over the unique and fact indexes;
    /// once the file outgrows this cache each miss is a read syscall. SQLite's memory grows to
    /// this (and a little more) while writing and keeps it, so a server wants it modest and an
    /// import (a process that exits) wants it as large as its memory budget allows.
    pub writer_cache_kib: u32,
    /// WAL pages between automatic checkpoints. Each checkpoint copies every page changed
    /// since the last one into the database file and syncs it; indexes on random keys change
    /// pages all over the file, so fewer checkpoints rewrite far fewer pages.
    pub wal_autocheckpoint_pages: u32,
    /// Events a bulk import ([`Store::import`]) commits together: larger transactions write
    /// each changed page of the random-key indexes less often.
    pub import_commit_events: usize,
}

impl Options {
    /// For `mobius serve`: about 17 MB of SQLite memory at most.
    pub const SERVER: Options =
        Options { writer_cache_kib: 16 * 1024, wal_autocheckpoint_pages: 1000, import_commit_events: 20_000 };
    /// For `mobius events import`: the whole process stays under 256 MB.
    pub const BULK: Options =
        Options { writer_cache_kib: 160 * 1024, wal_autocheckpoint_pages: 32 * 1024, import_commit_events: 1_000_000 };
}

impl Default for Options {
    fn default() -> Self {
        Options::SERVER
    }
}

/// How many idle reader connections to keep.
const READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    // Readers are declared (so dropped) before the writer: the last connection to close
    // checkpoints the WAL into the database and removes it, which a read-only one cannot do.
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Connection>,
    options: Options,
}

impl SqliteStore {
    /// Opens (creating if needed) `mobius.db` in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, Options::default())
    }

    pub fn open_with(data_dir: &Path, options: Options) -> Result<SqliteStore, StoreError> {
        let path = data_dir.join("mobius.db");
        private_files(data_dir, &path)
            .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
        let mut writer = Connection::open(&path)?;
        configure(&writer)?;
        writer.pragma_update(None, "wal_autocheckpoint", options.wal_autocheckpoint_pages)?;
        // Only takes effect while the file is new (before WAL mode is set).
        writer.pragma_update(None, "page_size", PAGE_SIZE)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::migrate(&mut writer)?;
        keys::backfill_event_keys(&writer)?;
        import::restore_deferred_indexes(&writer)?;
        // Sized in KiB only once the file's page size is known: before it is read, SQLite
        // counts pages of the default 4 KiB, and the cache held twice the memory asked for.
        writer.pragma_update(None, "cache_size", -i64::from(options.writer_cache_kib))?;
        Ok(SqliteStore { path, readers: Mutex::new(Vec::new()), writer: Mutex::new(writer), options })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }

    /// As [`Self::with_writer`], committing with `synchronous=NORMAL` (see the module doc):
    /// the agent queue's many small transactions do not each wait for the disk.
    fn with_queue_writer<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let done = f(&mut conn);
        let restored = conn.pragma_update(None, "synchronous", "FULL");
        let value = done?;
        restored?;
        Ok(value)
    }
}

/// The data directory is the server's alone: it is created 0700 and the database 0600 (SQLite
/// gives its `-wal` and `-shm` files the database's mode). A directory or file that others
/// could read is tightened, with a warning, since it may already hold tokens' hashes, webhook
/// URLs and everything the log recorded.
fn private_files(data_dir: &Path, database: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(data_dir)?;
    if !database.exists() {
        // An empty file is a new database to SQLite; made here so it is 0600 from the start.
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(database)?;
    }
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = database.as_os_str().to_owned();
    shm.push("-shm");
    let files = [(data_dir.to_owned(), 0o700), (database.to_owned(), 0o600), (wal.into(), 0o600), (shm.into(), 0o600)];
    for (path, private) in files {
        let Ok(metadata) = std::fs::metadata(&path) else { continue };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private))?;
            tracing::warn!(path = %path.display(), "{} was readable by others ({mode:o}); it is now {private:o}", path.display());
        }
    }
    Ok(())
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl Store for SqliteStore {
    fn append(&self, events: &[NewEvent], ctx: &IngestContext<'_>) -> Result<Vec<AppendStatus>, StoreError> {
        let received = to_micros(Timestamp::now());
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let mut appender = facts::Appender::new(&tx);
            let statuses =
                events.iter().map(|event| appender.append(event, ctx, received)).collect::<Result<_, _>>()?;
            drop(appender);
            tx.commit()?;
            Ok(statuses)
        })
    }

    fn import(
        &self,
        batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
        ctx: &IngestContext<'_>,
        appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
    ) -> Result<(), StoreError> {
        self.with_writer(|conn| import::import(conn, self.options, batches, ctx, appended))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_reader(|conn| read::events(conn, query))
    }

    fn event_count(&self) -> Result<u64, StoreError> {
        self.with_reader(|conn| Ok(conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn scopes(&self) -> Result<Vec<Scope>, StoreError> {
        self.with_reader(read::scopes)
    }

    fn facts(&self, scope: &Scope, from: Timestamp, to: Timestamp) -> Result<FactSet, StoreError> {
        self.with_reader(|conn| read::facts(conn, scope, from, to))
    }

    fn facts_of_environment(
        &self,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(Scope, FactSet)>, StoreError> {
        self.with_reader(|conn| read::facts_of_environment(conn, environment, from, to))
    }

    fn deployments(&self, ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError> {
        self.with_reader(|conn| read::deployments(conn, ids))
    }

    fn claim_lease(&self, name: &str, holder: &str, now: Timestamp, expires: Timestamp) -> Result<bool, StoreError> {
        self.with_writer(|conn| leases::claim(conn, name, holder, now, expires))
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| leases::release(conn, name, holder))
    }

    fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        self.with_reader(leases::list)
    }

    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.with_writer(|conn| sessions::insert_token(conn, token))
    }

    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with_reader(|conn| read::token(conn, read::TokenKey::Id(id)))
    }

    fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with_reader(|conn| read::token(conn, read::TokenKey::LegacyHash(secret_hash)))
    }

    fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.with_reader(read::incidents)
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with_reader(read::tokens)
    }

    fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| Ok(conn.execute("DELETE FROM tokens WHERE id = ?1", [id])? > 0))
    }

    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.with_writer(|conn| sessions::insert(conn, session))
    }

    fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.with_reader(|conn| sessions::get(conn, id_hash))
    }

    fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| Ok(conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])? > 0))
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> Result<usize, StoreError> {
        self.with_writer(|conn| Ok(conn.execute("DELETE FROM sessions WHERE expires < ?1", [to_micros(now)])?))
    }

    fn token_count(&self) -> Result<u64, StoreError> {
        self.with_reader(|conn| Ok(conn.query_row("SELECT count(*) FROM tokens", [], |r| r.get::<_, i64>(0))? as u64))
    }

    fn add_repository(&self, repository: &Repository) -> Result<(), StoreError> {
        self.with_writer(|conn| repositories::add(conn, repository))
    }

    fn remove_repository(&self, name: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| repositories::remove(conn, name))
    }

    fn repositories(&self) -> Result<Vec<Repository>, StoreError> {
        self.with_reader(repositories::list)
    }

    fn create_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        self.with_writer(|conn| runs::create(conn, run))
    }

    fn queue_run(&self, run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError> {
        self.with_writer(|conn| queue::queue_run(conn, run, driver))
    }

    fn claim_run(&self, driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError> {
        self.with_writer(|conn| queue::claim_run(conn, driver, run))
    }

    fn update_runs(&self, updates: &[RunUpdate]) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            runs::update(&tx, updates)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn runs(&self, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        self.with_reader(|conn| runs::list(conn, query))
    }

    fn run(&self, id: i64) -> Result<Option<RunDetail>, StoreError> {
        self.with_reader(|conn| runs::detail(conn, id))
    }

    fn interrupt_in_flight(&self, at: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let runs = runs::interrupt_in_flight(&tx, at)?;
            tx.commit()?;
            Ok(runs)
        })
    }

    fn repository_heads(&self, repository: &str) -> Result<Option<Heads>, StoreError> {
        self.with_reader(|conn| runs::heads(conn, repository))
    }

    fn set_repository_heads(&self, repository: &str, heads: &Heads) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            runs::set_heads(&tx, repository, heads)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn save_rollout(&self, rollout: &RolloutRow) -> Result<i64, StoreError> {
        self.with_writer(|conn| runs::save_rollout(conn, rollout))
    }

    fn rollouts(&self, query: &RolloutQuery) -> Result<Vec<RolloutRow>, StoreError> {
        self.with_reader(|conn| runs::rollouts(conn, query))
    }

    fn artifact(&self, id_or_revision: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.with_reader(|conn| {
            use rusqlite::OptionalExtension;
            Ok(conn
                .prepare_cached(
                    "SELECT artifact_id, revision FROM artifacts WHERE artifact_id = ?1 OR revision = ?1 LIMIT 1",
                )?
                .query_row([id_or_revision], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    fn add_sli(&self, minutes: &[SliMinute]) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            sli::add_sli(&tx, minutes)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn sli(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliMinute>, StoreError> {
        self.with_reader(|conn| sli::sli(conn, service, environment, from, to))
    }

    fn put_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            conn.execute(
                "INSERT INTO server_state (key, value, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                rusqlite::params![key, value, to_micros(Timestamp::now())],
            )?;
            Ok(())
        })
    }

    fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with_reader(|conn| {
            use rusqlite::OptionalExtension;
            let value =
                conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get(0)).optional()?;
            Ok(value)
        })
    }

    fn put_state_once(&self, key: &str, value: &str) -> Result<String, StoreError> {
        // One writer at a time: the insert and the read see the same document.
        self.with_writer(|conn| {
            conn.execute(
                "INSERT INTO server_state (key, value, updated) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
                rusqlite::params![key, value, to_micros(Timestamp::now())],
            )?;
            Ok(conn.query_row("SELECT value FROM server_state WHERE key = ?1", [key], |r| r.get(0))?)
        })
    }

    fn swap_state(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreError> {
        let now = to_micros(Timestamp::now());
        // One statement each way: atomic whoever else writes.
        self.with_writer(|conn| {
            let swapped = match expected {
                None => conn.execute(
                    "INSERT INTO server_state (key, value, updated) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
                    rusqlite::params![key, value, now],
                )?,
                Some(expected) => conn.execute(
                    "UPDATE server_state SET value = ?2, updated = ?3 WHERE key = ?1 AND value = ?4",
                    rusqlite::params![key, value, now, expected],
                )?,
            };
            Ok(swapped == 1)
        })
    }

    fn put_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        self.with_writer(|conn| secrets::put(conn, secret))
    }

    fn delete_secret(&self, repository: &str, environment: &str, name: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| secrets::delete(conn, repository, environment, name))
    }

    fn secrets(&self, repository: Option<&str>) -> Result<Vec<SecretRecord>, StoreError> {
        self.with_reader(|conn| secrets::list(conn, repository))
    }

    fn reseal_secrets(&self, secrets: &[SecretRecord], state_key: &str, state_value: &str) -> Result<(), StoreError> {
        self.with_writer(|conn| secrets::reseal(conn, secrets, state_key, state_value))
    }

    fn set_forge(&self, forge: &ForgeSettings) -> Result<(), StoreError> {
        self.with_writer(|conn| forge::set(conn, forge))
    }

    fn remove_forge(&self, repository: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| {
            Ok(conn.execute("DELETE FROM repository_forges WHERE repository = ?1", [repository])? > 0)
        })
    }

    fn forge(&self, repository: &str) -> Result<Option<ForgeSettings>, StoreError> {
        self.with_reader(|conn| forge::get(conn, repository))
    }

    fn pending_statuses(&self, limit: u32) -> Result<Vec<PendingStatus>, StoreError> {
        self.with_reader(|conn| forge::pending(conn, limit))
    }

    fn claim_statuses(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingStatus>, StoreError> {
        self.with_queue_writer(|conn| queue::claim_statuses(conn, holder, now, until, limit))
    }

    fn record_status_outcomes(&self, outcomes: &[StatusOutcome]) -> Result<(), StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            forge::record(&tx, outcomes)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn put_environment(&self, environment: &EnvironmentRecord) -> Result<(), StoreError> {
        self.with_writer(|conn| environments::put(conn, environment))
    }

    fn delete_environment(&self, repository: &str, name: &str) -> Result<bool, StoreError> {
        self.with_writer(|conn| environments::delete(conn, repository, name))
    }

    fn environments(&self, repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError> {
        self.with_reader(|conn| environments::list(conn, repository))
    }

    fn sli_counts(&self, service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliCounts>, StoreError> {
        self.with_reader(|conn| sli::counts(conn, service, environment, from, to))
    }

    fn compact_sli(&self, hourly_before: i64, drop_before: i64) -> Result<SliCompaction, StoreError> {
        self.with_writer(|conn| {
            let tx = conn.transaction()?;
            let report = sli::compact(&tx, hourly_before, drop_before)?;
            tx.commit()?;
            Ok(report)
        })
    }

    fn put_flag_set(
        &self,
        write: &FlagSetWrite<'_>,
        event: &NewEvent,
        ctx: &IngestContext<'_>,
    ) -> Result<FlagSetPut, StoreError> {
        self.with_writer(|conn| flags::put(conn, write, event, ctx))
    }

    fn flag_set(&self, name: &str) -> Result<Option<FlagSetRecord>, StoreError> {
        self.with_reader(|conn| flags::get(conn, name))
    }

    fn flag_sets(&self) -> Result<Vec<FlagSetRecord>, StoreError> {
        self.with_reader(flags::list)
    }

    fn flag_set_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_reader(flags::versions)
    }

    fn record_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        self.with_queue_writer(|conn| agents::record_agent(conn, agent))
    }

    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.with_reader(agents::agents)
    }

    fn enqueue_agent_job(&self, job: &NewAgentJob) -> Result<i64, StoreError> {
        self.with_queue_writer(|conn| agents::enqueue(conn, job))
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
        self.with_queue_writer(|conn| agents::claim(conn, agent, token, labels, now, lease_expires, limit))
    }

    fn renew_agent_job(&self, id: i64, agent: &str, lease_expires: Timestamp) -> Result<Renewal, StoreError> {
        self.with_queue_writer(|conn| agents::renew(conn, id, agent, lease_expires))
    }

    fn append_agent_log(&self, id: i64, agent: &str, offset: u64, data: &[u8]) -> Result<LogAppend, StoreError> {
        self.with_queue_writer(|conn| agents::append_log(conn, id, agent, offset, data))
    }

    fn agent_log(&self, id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.with_reader(|conn| agents::log(conn, id, from, limit))
    }

    fn finish_agent_job(&self, id: i64, agent: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.with_queue_writer(|conn| agents::finish(conn, id, agent, result, at))
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
        self.with_queue_writer(|conn| agents::finish_with_log(conn, id, agent, offset, data, result, at))
    }

    fn cancel_agent_job(&self, id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.with_writer(|conn| agents::cancel(conn, id, reason, at))
    }

    fn agent_job(&self, id: i64) -> Result<Option<AgentJob>, StoreError> {
        self.with_reader(|conn| agents::job(conn, id))
    }

    fn active_agent_jobs(&self) -> Result<Vec<AgentJob>, StoreError> {
        self.with_reader(agents::active)
    }

    fn expire_agent_jobs(&self, now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError> {
        self.with_writer(|conn| agents::expire(conn, now, reason))
    }

    fn lose_agent_jobs_of_token(&self, token: &str, reason: &str, at: Timestamp) -> Result<Vec<i64>, StoreError> {
        self.with_writer(|conn| agents::lose_of_token(conn, token, reason, at))
    }

    fn put_transfer_file(&self, transfer: &str, name: &str, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.with_queue_writer(|conn| transfers::put(conn, transfer, name, digest, bytes))
    }

    fn hold_transfer_blobs(&self, transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError> {
        self.with_queue_writer(|conn| transfers::hold(conn, transfer, digests))
    }

    fn transfer_file(&self, transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_reader(|conn| transfers::file(conn, transfer, name))
    }

    fn release_transfer(&self, transfer: &str) -> Result<(), StoreError> {
        self.with_queue_writer(|conn| transfers::release(conn, transfer))
    }

    fn transfers(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.with_reader(|conn| transfers::named(conn, prefix))
    }

    fn enqueue_rollout_command(&self, command: &NewRolloutCommand) -> Result<i64, StoreError> {
        self.with_writer(|conn| commands::enqueue(conn, command))
    }

    fn claim_rollout_command(
        &self,
        environments: &[Scope],
        holder: &str,
        now: Timestamp,
    ) -> Result<Option<RolloutCommand>, StoreError> {
        self.with_writer(|conn| commands::claim(conn, environments, holder, now))
    }

    fn finish_rollout_command(&self, id: i64, holder: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.with_writer(|conn| commands::finish(conn, id, holder, result, at))
    }

    fn withdraw_rollout_command(&self, id: i64, at: Timestamp) -> Result<bool, StoreError> {
        self.with_writer(|conn| commands::withdraw(conn, id, at))
    }

    fn lose_rollout_commands(&self, environment: &Scope, holder: &str, at: Timestamp) -> Result<Vec<i64>, StoreError> {
        self.with_writer(|conn| commands::lose(conn, environment, holder, at))
    }

    fn rollout_command(&self, id: i64) -> Result<Option<RolloutCommand>, StoreError> {
        self.with_reader(|conn| commands::get(conn, id))
    }

    fn prune_rollout_commands(&self, ended_before: Timestamp) -> Result<usize, StoreError> {
        self.with_writer(|conn| commands::prune(conn, ended_before))
    }
}

#[cfg(test)]
mod tests;
