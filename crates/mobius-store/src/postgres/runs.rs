//! SQL for pipeline runs, repository heads and rollouts (see [`crate::runs`]).

use ::postgres::{GenericClient, Row, Transaction};
use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};

use crate::StoreError;
use crate::runs::{
    Heads, JobRecord, NewRun, RolloutQuery, RolloutRow, RunDetail, RunQuery, RunRecord, RunState, RunUpdate, StepRecord,
};

const RUN_COLUMNS: &str = "id, repository, workflow_file, workflow_name, event, branch, sha, before_sha,
    concurrency_group, cancel_in_progress, only_jobs, attempt, rerun_of, requeue_of, state, reason,
    queued_at, started_at, finished_at, fork, trigger, driver IS NOT NULL";

pub(super) fn create(tx: &mut Transaction<'_>, run: &NewRun) -> Result<i64, StoreError> {
    let id = insert(tx, run)?;
    // Delivered at commit, to every replica listening (see `PgStore::listen`).
    tx.execute("SELECT pg_notify($1, 'queued')", &[&crate::runs::RUNS_CHANNEL])?;
    Ok(id)
}

/// Stores a new run, queued.
pub(super) fn insert(tx: &mut Transaction<'_>, run: &NewRun) -> Result<i64, StoreError> {
    let only_jobs = serde_json::to_string(&run.only_jobs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let row = tx.query_one(
        "INSERT INTO runs (repository, workflow_file, workflow_name, event, branch, sha, before_sha,
             concurrency_group, cancel_in_progress, only_jobs, attempt, rerun_of, requeue_of, state, queued_at,
             fork, trigger)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'queued', $14, $15, $16) RETURNING id",
        &[
            &run.repository,
            &run.workflow_file,
            &run.workflow_name,
            &run.event,
            &run.branch,
            &run.sha,
            &run.before_sha,
            &run.concurrency_group,
            &run.cancel_in_progress,
            &only_jobs,
            &i64::from(run.attempt),
            &run.rerun_of,
            &run.requeue_of,
            &to_micros(run.queued_at),
            &run.fork,
            &run.trigger.as_ref().map(serde_json::Value::to_string),
        ],
    )?;
    Ok(row.get(0))
}

pub(super) fn update(tx: &mut Transaction<'_>, updates: &[RunUpdate]) -> Result<(), StoreError> {
    for update in updates {
        match update {
            RunUpdate::Run { run, state, at, reason } => {
                let at = to_micros(*at);
                if *state == RunState::Running {
                    tx.execute(
                        "UPDATE runs SET state = $2, started_at = coalesce(started_at, $3) WHERE id = $1",
                        &[run, &state.as_str(), &at],
                    )?;
                } else if state.is_final() {
                    tx.execute(
                        "UPDATE runs SET state = $2, finished_at = $3, reason = coalesce($4, reason) WHERE id = $1",
                        &[run, &state.as_str(), &at, reason],
                    )?;
                } else {
                    tx.execute("UPDATE runs SET state = $2 WHERE id = $1", &[run, &state.as_str()])?;
                }
            }
            RunUpdate::Job { run, job, state, at } => {
                let at = to_micros(*at);
                let (started, finished) = times(*state, at);
                tx.execute(
                    "INSERT INTO run_jobs (run_id, name, position, state, started_at, finished_at)
                     VALUES ($1, $2, (SELECT count(*) FROM run_jobs WHERE run_id = $1), $3, $4, $5)
                     ON CONFLICT (run_id, name) DO UPDATE SET state = excluded.state,
                         started_at = coalesce(run_jobs.started_at, excluded.started_at),
                         finished_at = coalesce(excluded.finished_at, run_jobs.finished_at)",
                    &[run, job, &state.as_str(), &started, &finished],
                )?;
                super::forge::enqueue(tx, *run, job, *state, at)?;
            }
            RunUpdate::Step { run, job, position, name, state, at } => {
                let at = to_micros(*at);
                let (started, finished) = times(*state, at);
                tx.execute(
                    "INSERT INTO run_steps (run_id, job, position, name, state, started_at, finished_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (run_id, job, position) DO UPDATE SET state = excluded.state,
                         started_at = coalesce(run_steps.started_at, excluded.started_at),
                         finished_at = coalesce(excluded.finished_at, run_steps.finished_at)",
                    &[run, job, &i64::from(*position), name, &state.as_str(), &started, &finished],
                )?;
            }
        }
    }
    Ok(())
}

/// `(started_at, finished_at)` implied by moving to `state` at `at`.
fn times(state: RunState, at: i64) -> (Option<i64>, Option<i64>) {
    match state {
        RunState::Queued => (None, None),
        RunState::Running => (Some(at), None),
        // A job waiting for its environment's reviewers has not started.
        RunState::Waiting => (None, None),
        // A job skipped or cancelled before it started has no start.
        _ => (None, Some(at)),
    }
}

fn state(word: &str) -> RunState {
    // Only this module writes states, so an unknown word means a newer build wrote it.
    RunState::parse(word).unwrap_or(RunState::Interrupted)
}

fn run_record(r: &Row) -> RunRecord {
    RunRecord {
        id: r.get(0),
        run: NewRun {
            repository: r.get(1),
            workflow_file: r.get(2),
            workflow_name: r.get(3),
            event: r.get(4),
            branch: r.get(5),
            sha: r.get(6),
            before_sha: r.get(7),
            concurrency_group: r.get(8),
            cancel_in_progress: r.get(9),
            only_jobs: serde_json::from_str(r.get(10)).unwrap_or_default(),
            attempt: u32::try_from(r.get::<_, i64>(11)).unwrap_or(u32::MAX),
            rerun_of: r.get(12),
            requeue_of: r.get(13),
            queued_at: from_micros(r.get(16)),
            fork: r.get(19),
            trigger: r.get::<_, Option<&str>>(20).and_then(|t| serde_json::from_str(t).ok()),
        },
        state: state(r.get(14)),
        reason: r.get(15),
        started_at: r.get::<_, Option<i64>>(17).map(from_micros),
        finished_at: r.get::<_, Option<i64>>(18).map(from_micros),
        claimed: r.get(21),
    }
}

pub(super) fn list(c: &mut impl GenericClient, query: &RunQuery) -> Result<Vec<RunRecord>, StoreError> {
    let limit = i64::from(if query.limit == 0 { 50 } else { query.limit });
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE ($1::text IS NULL OR repository = $1) AND ($2::text IS NULL OR state = $2)
           AND ($4::bigint IS NULL OR id < $4) AND ($5::text IS NULL OR branch = $5)
         ORDER BY id DESC LIMIT $3"
    );
    let state = query.state.map(RunState::as_str);
    let rows = c.query(&sql, &[&query.repository, &state, &limit, &query.before, &query.branch])?;
    Ok(rows.iter().map(run_record).collect())
}

pub(super) fn detail(c: &mut impl GenericClient, id: i64) -> Result<Option<RunDetail>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
    let Some(record) = c.query_opt(&sql, &[&id])?.as_ref().map(run_record) else {
        return Ok(None);
    };
    let mut jobs: Vec<JobRecord> = c
        .query("SELECT name, state, started_at, finished_at FROM run_jobs WHERE run_id = $1 ORDER BY position", &[&id])?
        .iter()
        .map(|r| JobRecord {
            name: r.get(0),
            state: state(r.get(1)),
            started_at: r.get::<_, Option<i64>>(2).map(from_micros),
            finished_at: r.get::<_, Option<i64>>(3).map(from_micros),
            steps: Vec::new(),
        })
        .collect();
    let steps = c.query(
        "SELECT job, name, state, started_at, finished_at FROM run_steps WHERE run_id = $1 ORDER BY job, position",
        &[&id],
    )?;
    for r in &steps {
        let job: &str = r.get(0);
        let step = StepRecord {
            name: r.get(1),
            state: state(r.get(2)),
            started_at: r.get::<_, Option<i64>>(3).map(from_micros),
            finished_at: r.get::<_, Option<i64>>(4).map(from_micros),
        };
        if let Some(j) = jobs.iter_mut().find(|j| j.name == job) {
            j.steps.push(step);
        }
    }
    let statuses = super::forge::of_run(c, id)?;
    Ok(Some(RunDetail { record, jobs, statuses }))
}

pub(super) fn interrupt_in_flight(tx: &mut Transaction<'_>, at: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE state IN ('queued', 'running') ORDER BY id");
    let runs: Vec<RunRecord> = tx.query(&sql, &[])?.iter().map(run_record).collect();
    let at = to_micros(at);
    super::forge::enqueue_interrupted(tx, at)?;
    tx.execute(
        "UPDATE runs SET state = 'interrupted', finished_at = $1, reason = 'the server stopped during the run'
         WHERE state IN ('queued', 'running')",
        &[&at],
    )?;
    tx.execute(
        "UPDATE run_jobs SET state = 'interrupted', finished_at = $1
         WHERE state IN ('queued', 'running', 'waiting') AND run_id IN (SELECT id FROM runs WHERE state = 'interrupted')",
        &[&at],
    )?;
    tx.execute(
        "UPDATE run_steps SET state = 'interrupted', finished_at = $1
         WHERE state IN ('queued', 'running') AND run_id IN (SELECT id FROM runs WHERE state = 'interrupted')",
        &[&at],
    )?;
    Ok(runs)
}

pub(super) fn heads(c: &mut impl GenericClient, repository: &str) -> Result<Option<Heads>, StoreError> {
    if c.query_opt("SELECT 1 FROM repository_heads_seen WHERE repository = $1", &[&repository])?.is_none() {
        return Ok(None);
    }
    let rows = c.query("SELECT ref, sha FROM repository_heads WHERE repository = $1", &[&repository])?;
    Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

pub(super) fn set_heads(tx: &mut Transaction<'_>, repository: &str, heads: &Heads) -> Result<(), StoreError> {
    tx.execute("INSERT INTO repository_heads_seen (repository) VALUES ($1) ON CONFLICT DO NOTHING", &[&repository])?;
    tx.execute("DELETE FROM repository_heads WHERE repository = $1", &[&repository])?;
    let insert = tx.prepare("INSERT INTO repository_heads (repository, ref, sha) VALUES ($1, $2, $3)")?;
    for (branch, sha) in heads {
        tx.execute(&insert, &[&repository, branch, sha])?;
    }
    Ok(())
}

pub(super) fn save_rollout(tx: &mut Transaction<'_>, r: &RolloutRow) -> Result<i64, StoreError> {
    let (created, updated) = (to_micros(r.created), to_micros(r.updated));
    if r.id == 0 {
        let row = tx.query_one(
            "INSERT INTO rollouts (service, environment, phase, active, body, created, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[&r.service, &r.environment, &r.phase, &r.active, &r.body, &created, &updated],
        )?;
        return Ok(row.get(0));
    }
    let changed = tx.execute(
        "UPDATE rollouts SET phase = $2, active = $3, body = $4, updated = $5 WHERE id = $1",
        &[&r.id, &r.phase, &r.active, &r.body, &updated],
    )?;
    if changed == 0 {
        return Err(StoreError::Corrupt(format!("no rollout {} to update", r.id)));
    }
    Ok(r.id)
}

pub(super) fn rollouts(c: &mut impl GenericClient, q: &RolloutQuery) -> Result<Vec<RolloutRow>, StoreError> {
    let limit = i64::from(if q.limit == 0 { 50 } else { q.limit });
    let rows = c.query(
        "SELECT id, service, environment, phase, active, body, created, updated FROM rollouts
         WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR environment = $2) AND (NOT $3 OR active)
           AND (NOT $5 OR id IN (SELECT max(id) FROM rollouts GROUP BY service)) AND ($6::bigint IS NULL OR id < $6)
         ORDER BY id DESC LIMIT $4",
        &[&q.service, &q.environment, &q.active_only, &limit, &q.latest_per_service, &q.before],
    )?;
    Ok(rows
        .iter()
        .map(|r| RolloutRow {
            id: r.get(0),
            service: r.get(1),
            environment: r.get(2),
            phase: r.get(3),
            active: r.get(4),
            body: r.get(5),
            created: from_micros(r.get(6)),
            updated: from_micros(r.get(7)),
        })
        .collect())
}
