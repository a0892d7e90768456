//! SQL for forge settings and the commit status outbox (see [`crate::forge`]).

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::StoreError;
use crate::forge::{CommitStatus, Delivery, ForgeKind, ForgeSettings, PendingStatus, StatusOutcome, status_context};
use crate::runs::RunState;

pub(super) fn set(conn: &Connection, forge: &ForgeSettings) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO repository_forges (repository, kind, api_url, token_secret, project) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (repository) DO UPDATE SET kind = excluded.kind, api_url = excluded.api_url,
             token_secret = excluded.token_secret, project = excluded.project",
        params![forge.repository, forge.kind.as_str(), forge.api_url, forge.token_secret, forge.project],
    )?;
    Ok(())
}

pub(super) fn get(conn: &Connection, repository: &str) -> Result<Option<ForgeSettings>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT repository, kind, api_url, token_secret, project FROM repository_forges WHERE repository = ?1",
        )?
        .query_row([repository], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((repository, kind, api_url, token_secret, project)) = row else { return Ok(None) };
    let kind = ForgeKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("forge kind `{kind}` of {repository} is unknown")))?;
    Ok(Some(ForgeSettings { repository, kind, api_url, token_secret, project }))
}

/// Puts a job's new state in the outbox when its run's repository reports to a forge and the
/// job's last reported state was a different one.
pub(super) fn enqueue(tx: &Transaction<'_>, run: i64, job: &str, state: RunState, at: i64) -> Result<(), StoreError> {
    let workflow: Option<String> = tx
        .prepare_cached(
            "SELECT r.workflow_name FROM runs r JOIN repository_forges f ON f.repository = r.repository
             WHERE r.id = ?1",
        )?
        .query_row([run], |r| r.get(0))
        .optional()?;
    let Some(workflow) = workflow else { return Ok(()) };
    let last: Option<String> = tx
        .prepare_cached("SELECT state FROM forge_statuses WHERE run_id = ?1 AND job = ?2 ORDER BY id DESC LIMIT 1")?
        .query_row(params![run, job], |r| r.get(0))
        .optional()?;
    if last.as_deref() == Some(state.as_str()) {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO forge_statuses (run_id, job, context, state, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![run, job, status_context(&workflow, job), state.as_str(), at])?;
    Ok(())
}

/// The jobs a restart is about to interrupt, in runs that report to a forge: their
/// `interrupted` state goes to the outbox, so the forge does not show them pending forever.
pub(super) fn enqueue_interrupted(tx: &Transaction<'_>, at: i64) -> Result<(), StoreError> {
    let jobs: Vec<(i64, String)> = tx
        .prepare(
            "SELECT j.run_id, j.name FROM run_jobs j JOIN runs r ON r.id = j.run_id
               JOIN repository_forges f ON f.repository = r.repository
             WHERE j.state IN ('queued', 'running') AND r.state IN ('queued', 'running')
             ORDER BY j.run_id, j.position",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (run, job) in jobs {
        enqueue(tx, run, &job, RunState::Interrupted, at)?;
    }
    Ok(())
}

/// A pending status with what its request needs of its run (`s` is the status, `r` the run).
// A pull request's run is on the forge's merge commit, which the pull request does not show:
// its statuses go on the head commit, as the forge's own CI reports them.
const PENDING: &str = "SELECT s.id, s.run_id, r.repository,
         coalesce(json_extract(r.trigger, '$.github.event.pull_request.head.sha'), r.sha),
         coalesce(r.branch, json_extract(r.trigger, '$.github.head_ref')),
         s.context, s.state, s.attempts, s.next_attempt
     FROM forge_statuses s JOIN runs r ON r.id = s.run_id";

fn pending_status(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingStatus> {
    Ok(PendingStatus {
        id: r.get(0)?,
        run: r.get(1)?,
        repository: r.get(2)?,
        sha: r.get(3)?,
        branch: r.get(4)?,
        context: r.get(5)?,
        state: RunState::parse(&r.get::<_, String>(6)?).unwrap_or(RunState::Interrupted),
        attempts: r.get(7)?,
        next_attempt: from_micros(r.get(8)?),
    })
}

pub(super) fn pending(conn: &Connection, limit: u32) -> Result<Vec<PendingStatus>, StoreError> {
    let sql = format!("{PENDING} WHERE s.delivery = 'pending' ORDER BY s.id LIMIT ?1");
    let rows = conn.prepare_cached(&sql)?.query_map([limit], pending_status)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The pending statuses `holder` claimed until `until` (see `queue::claim_statuses`).
pub(super) fn claimed(
    conn: &Connection,
    holder: &str,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<PendingStatus>, StoreError> {
    let sql = format!(
        "{PENDING} WHERE s.delivery = 'pending' AND s.claimed_by = ?1 AND s.claimed_until = ?2 ORDER BY s.id LIMIT ?3"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![holder, to_micros(until), limit], pending_status)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn record(tx: &Transaction<'_>, outcomes: &[StatusOutcome]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        // The attempt is over: its claim ends with it.
        "UPDATE forge_statuses SET delivery = ?2, attempts = max(attempts, ?3), next_attempt = ?4,
             last_error = coalesce(?5, last_error), updated = ?6, claimed_by = NULL, claimed_until = NULL
         WHERE id = ?1",
    )?;
    for o in outcomes {
        stmt.execute(params![
            o.id,
            o.delivery.as_str(),
            o.attempts,
            to_micros(o.next_attempt),
            o.error,
            to_micros(o.at)
        ])?;
    }
    Ok(())
}

/// A run's statuses, oldest first.
pub(super) fn of_run(conn: &Connection, run: i64) -> Result<Vec<CommitStatus>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT context, state, delivery, attempts, last_error, updated FROM forge_statuses
         WHERE run_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([run], |r| {
        Ok(CommitStatus {
            context: r.get(0)?,
            state: RunState::parse(&r.get::<_, String>(1)?).unwrap_or(RunState::Interrupted),
            // Only this module writes deliveries: an unknown word means a newer build wrote it.
            delivery: Delivery::parse(&r.get::<_, String>(2)?).unwrap_or(Delivery::Pending),
            attempts: r.get(3)?,
            last_error: r.get(4)?,
            updated: from_micros(r.get(5)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
