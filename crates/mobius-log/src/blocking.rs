//! Blocking work off the async workers, and a check that keeps it there.
//!
//! The store is SQLite (and git is a process): a call blocks its thread. On one of the
//! runtime's worker threads that stalls every request and controller scheduled on it, so every
//! such call from inside a task goes through [`spawn`] (tokio's blocking pool). [`Guarded`]
//! wraps the application's store and, in debug builds (every test), panics when a store method
//! is called from inside a task without that — so a regression fails the tests instead of
//! slowing a server under load. Code outside any task (the CLI's commands, a run's own thread)
//! may block: it stalls nothing else.

use std::cell::Cell;
use std::sync::Arc;

use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident};
use mobius_events::{AppendStatus, NewEvent, StoredEvent};
use mobius_store::{
    AgentJob, AgentRecord, EnvironmentRecord, EventQuery, FlagSetPut, FlagSetRecord, FlagSetWrite, ForgeSettings,
    Heads, IngestContext, LeaseRecord, Listener, LogAppend, NewAgentJob, NewRolloutCommand, NewRun, PendingStatus,
    Renewal, Repository, RolloutCommand, RolloutQuery, RolloutRow, RunDetail, RunQuery, RunRecord, RunUpdate, Scope,
    SecretRecord, SessionRecord, SliCompaction, SliCounts, SliMinute, StatusOutcome, Store, StoreError, TokenRecord,
};

thread_local! {
    /// Set while a closure given to [`spawn`] runs on this thread.
    static OFF_THE_WORKERS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on tokio's blocking pool and waits for it; a panic in `f` is resumed here.
pub async fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let marked = move || {
        /// Unmarks the thread however `f` ends: the pool reuses it for other work.
        struct Unmark;
        impl Drop for Unmark {
            fn drop(&mut self) {
                OFF_THE_WORKERS.set(false);
            }
        }
        OFF_THE_WORKERS.set(true);
        let _unmark = Unmark;
        f()
    };
    #[expect(clippy::disallowed_methods, reason = "the one place blocking work is handed to tokio")]
    let handle = tokio::task::spawn_blocking(marked);
    match handle.await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Whether a blocking call may be made here: outside any task, or inside [`spawn`].
pub fn allowed() -> bool {
    tokio::task::try_id().is_none() || OFF_THE_WORKERS.get()
}

/// Panics in debug builds when `what` (a blocking call) is made from inside a task without
/// [`spawn`]; nothing in release builds.
#[track_caller]
pub fn check(what: &str) {
    if cfg!(debug_assertions) && !allowed() {
        panic!("{what} was called on an async worker thread: run it through mobius_log::blocking::spawn");
    }
}

/// A store whose every call is [`check`]ed.
pub struct Guarded(pub Arc<dyn Store>);

/// A store whose every call runs on a thread of its own, outside any runtime: for the CLI's
/// commands that call the store from async code without [`spawn`] (the PostgreSQL client
/// runs a runtime of its own, which may not start on a thread inside one).
pub struct Detached(pub Arc<dyn Store>);

macro_rules! guarded {
    (
        inline { $($iname:ident($($iarg:ident: $ity:ty),*) -> $iret:ty;)* }
        $($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*
    ) => {
        impl Store for Guarded {
            $(
                fn $iname(&self, $($iarg: $ity),*) -> $iret {
                    check(concat!("Store::", stringify!($iname)));
                    self.0.$iname($($iarg),*)
                }
            )*
            $(
                fn $name(&self, $($arg: $ty),*) -> $ret {
                    check(concat!("Store::", stringify!($name)));
                    self.0.$name($($arg),*)
                }
            )*
        }

        impl Store for Detached {
            // What cannot cross threads (an append's ancestry) runs here; the CLI does not
            // append through a detached store.
            $(
                fn $iname(&self, $($iarg: $ity),*) -> $iret {
                    self.0.$iname($($iarg),*)
                }
            )*
            $(
                fn $name(&self, $($arg: $ty),*) -> $ret {
                    std::thread::scope(|scope| {
                        match scope.spawn(|| self.0.$name($($arg),*)).join() {
                            Ok(answer) => answer,
                            Err(panic) => std::panic::resume_unwind(panic),
                        }
                    })
                }
            )*
        }
    };
}

guarded! {
    inline {
        append(events: &[NewEvent], ctx: &IngestContext<'_>) -> Result<Vec<AppendStatus>, StoreError>;
        import(
            batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
            ctx: &IngestContext<'_>,
            appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>)
        ) -> Result<(), StoreError>;
        put_flag_set(write: &FlagSetWrite<'_>, event: &NewEvent, ctx: &IngestContext<'_>) -> Result<FlagSetPut, StoreError>;
    }
    events(query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    event_count() -> Result<u64, StoreError>;
    scopes() -> Result<Vec<Scope>, StoreError>;
    facts(scope: &Scope, from: Timestamp, to: Timestamp) -> Result<FactSet, StoreError>;
    facts_of_environment(environment: &str, from: Timestamp, to: Timestamp) -> Result<Vec<(Scope, FactSet)>, StoreError>;
    deployments(ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError>;
    claim_lease(name: &str, holder: &str, now: Timestamp, expires: Timestamp) -> Result<bool, StoreError>;
    release_lease(name: &str, holder: &str) -> Result<bool, StoreError>;
    leases() -> Result<Vec<LeaseRecord>, StoreError>;
    insert_token(token: &TokenRecord) -> Result<(), StoreError>;
    token(id: &str) -> Result<Option<TokenRecord>, StoreError>;
    token_by_secret_hash(secret_hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    token_count() -> Result<u64, StoreError>;
    incidents() -> Result<Vec<Incident>, StoreError>;
    tokens() -> Result<Vec<TokenRecord>, StoreError>;
    revoke_token(id: &str) -> Result<bool, StoreError>;
    insert_session(session: &SessionRecord) -> Result<(), StoreError>;
    session(id_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    delete_session(id_hash: &str) -> Result<bool, StoreError>;
    delete_expired_sessions(now: Timestamp) -> Result<usize, StoreError>;
    add_repository(repository: &Repository) -> Result<(), StoreError>;
    remove_repository(name: &str) -> Result<bool, StoreError>;
    repositories() -> Result<Vec<Repository>, StoreError>;
    create_run(run: &NewRun) -> Result<i64, StoreError>;
    claim_run(driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError>;
    queue_run(run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError>;
    update_runs(updates: &[RunUpdate]) -> Result<(), StoreError>;
    runs(query: &RunQuery) -> Result<Vec<RunRecord>, StoreError>;
    run(id: i64) -> Result<Option<RunDetail>, StoreError>;
    interrupt_in_flight(at: Timestamp) -> Result<Vec<RunRecord>, StoreError>;
    repository_heads(repository: &str) -> Result<Option<Heads>, StoreError>;
    set_repository_heads(repository: &str, heads: &Heads) -> Result<(), StoreError>;
    artifact(id_or_revision: &str) -> Result<Option<(String, Option<String>)>, StoreError>;
    save_rollout(rollout: &RolloutRow) -> Result<i64, StoreError>;
    rollouts(query: &RolloutQuery) -> Result<Vec<RolloutRow>, StoreError>;
    add_sli(minutes: &[SliMinute]) -> Result<(), StoreError>;
    sli(service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliMinute>, StoreError>;
    sli_counts(service: &str, environment: &str, from: i64, to: i64) -> Result<Vec<SliCounts>, StoreError>;
    compact_sli(hourly_before: i64, drop_before: i64) -> Result<SliCompaction, StoreError>;
    put_state(key: &str, value: &str) -> Result<(), StoreError>;
    put_state_once(key: &str, value: &str) -> Result<String, StoreError>;
    swap_state(key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreError>;
    state(key: &str) -> Result<Option<String>, StoreError>;
    put_secret(secret: &SecretRecord) -> Result<(), StoreError>;
    delete_secret(repository: &str, environment: &str, name: &str) -> Result<bool, StoreError>;
    secrets(repository: Option<&str>) -> Result<Vec<SecretRecord>, StoreError>;
    reseal_secrets(secrets: &[SecretRecord], state_key: &str, state_value: &str) -> Result<(), StoreError>;
    set_forge(forge: &ForgeSettings) -> Result<(), StoreError>;
    remove_forge(repository: &str) -> Result<bool, StoreError>;
    forge(repository: &str) -> Result<Option<ForgeSettings>, StoreError>;
    pending_statuses(limit: u32) -> Result<Vec<PendingStatus>, StoreError>;
    claim_statuses(holder: &str, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<PendingStatus>, StoreError>;
    record_status_outcomes(outcomes: &[StatusOutcome]) -> Result<(), StoreError>;
    put_environment(environment: &EnvironmentRecord) -> Result<(), StoreError>;
    delete_environment(repository: &str, name: &str) -> Result<bool, StoreError>;
    environments(repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError>;
    flag_set(name: &str) -> Result<Option<FlagSetRecord>, StoreError>;
    flag_sets() -> Result<Vec<FlagSetRecord>, StoreError>;
    flag_set_versions() -> Result<Vec<(String, i64)>, StoreError>;
    listen(channel: &str, wake: Listener) -> Result<bool, StoreError>;
    record_agent(agent: &AgentRecord) -> Result<(), StoreError>;
    agents() -> Result<Vec<AgentRecord>, StoreError>;
    enqueue_agent_job(job: &NewAgentJob) -> Result<i64, StoreError>;
    claim_agent_job(agent: &str, token: &str, labels: &[String], now: Timestamp, lease_expires: Timestamp) -> Result<Option<AgentJob>, StoreError>;
    claim_agent_jobs(agent: &str, token: &str, labels: &[String], now: Timestamp, lease_expires: Timestamp, limit: usize) -> Result<Vec<AgentJob>, StoreError>;
    renew_agent_job(id: i64, agent: &str, lease_expires: Timestamp) -> Result<Renewal, StoreError>;
    append_agent_log(id: i64, agent: &str, offset: u64, data: &[u8]) -> Result<LogAppend, StoreError>;
    agent_log(id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError>;
    finish_agent_job(id: i64, agent: &str, result: &str, at: Timestamp) -> Result<bool, StoreError>;
    finish_agent_job_with_log(id: i64, agent: &str, offset: u64, data: &[u8], result: &str, at: Timestamp) -> Result<LogAppend, StoreError>;
    cancel_agent_job(id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError>;
    agent_job(id: i64) -> Result<Option<AgentJob>, StoreError>;
    active_agent_jobs() -> Result<Vec<AgentJob>, StoreError>;
    expire_agent_jobs(now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError>;
    lose_agent_jobs_of_token(token: &str, reason: &str, at: Timestamp) -> Result<Vec<i64>, StoreError>;
    put_transfer_file(transfer: &str, name: &str, digest: &str, bytes: &[u8]) -> Result<(), StoreError>;
    hold_transfer_blobs(transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError>;
    transfer_file(transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    release_transfer(transfer: &str) -> Result<(), StoreError>;
    transfers(prefix: &str) -> Result<Vec<String>, StoreError>;
    enqueue_rollout_command(command: &NewRolloutCommand) -> Result<i64, StoreError>;
    claim_rollout_command(environments: &[Scope], holder: &str, now: Timestamp) -> Result<Option<RolloutCommand>, StoreError>;
    finish_rollout_command(id: i64, holder: &str, result: &str, at: Timestamp) -> Result<bool, StoreError>;
    withdraw_rollout_command(id: i64, at: Timestamp) -> Result<bool, StoreError>;
    lose_rollout_commands(environment: &Scope, holder: &str, at: Timestamp) -> Result<Vec<i64>, StoreError>;
    rollout_command(id: i64) -> Result<Option<RolloutCommand>, StoreError>;
    prune_rollout_commands(ended_before: Timestamp) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use mobius_store::SqliteStore;

    use super::*;

    /// The check the whole application relies on: it must fail where it should, and only there.
    #[tokio::test]
    async fn a_store_call_inside_a_task_must_go_through_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
        // Outside any task (this test's own future is not a spawned task): allowed.
        assert!(store.event_count().is_ok());
        let inside = store.clone();
        let on_a_worker = tokio::spawn(async move { inside.event_count().map(drop) }).await;
        assert!(on_a_worker.unwrap_err().is_panic(), "a store call on a worker panics in debug builds");
        let off = store.clone();
        let through = tokio::spawn(async move { spawn(move || off.event_count()).await }).await;
        assert_eq!(through.unwrap().unwrap(), 0, "through the blocking pool it is fine");
    }
}
