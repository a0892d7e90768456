//! The agent job queue (see [`crate::agents`]), in transactions that lock only the rows they
//! touch rather than taking the store's write lock: agents poll through every replica, and
//! their claims, renewals and log chunks should neither wait behind an import nor hold one up.
//! A claimer skips the rows other claimers hold (`FOR UPDATE SKIP LOCKED`), so two never take
//! the same job and none waits for another; every other change is one row's `UPDATE` or
//! `SELECT … FOR UPDATE`, and the sweeps that change many lock theirs in id order, so no two
//! of these transactions wait for each other in a circle.

use ::postgres::{GenericClient, Row, Transaction};
use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};

use crate::StoreError;
use crate::agents::{AgentJob, AgentJobState, AgentRecord, LogAppend, NewAgentJob, Renewal};
use crate::log_offsets::{length, signed, take_slice, unseen};

const JOB_COLUMNS: &str = "id, run, job, labels, payload, state, agent, token, lease_expires, cancel, log_len, \
                           result, reason, queued, claimed, ended";

pub(super) fn record_agent(tx: &mut Transaction<'_>, agent: &AgentRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO agents (id, name, labels, token, first_contact, last_contact) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, token = excluded.token,
             last_contact = excluded.last_contact",
        &[
            &agent.id,
            &agent.name,
            &agent.labels,
            &agent.token,
            &to_micros(agent.first_contact),
            &to_micros(agent.last_contact),
        ],
    )?;
    Ok(())
}

pub(super) fn agents(c: &mut impl GenericClient) -> Result<Vec<AgentRecord>, StoreError> {
    let rows =
        c.query("SELECT id, name, labels, token, first_contact, last_contact FROM agents ORDER BY name, id", &[])?;
    Ok(rows
        .iter()
        .map(|r| AgentRecord {
            id: r.get(0),
            name: r.get(1),
            labels: r.get(2),
            token: r.get(3),
            first_contact: from_micros(r.get(4)),
            last_contact: from_micros(r.get(5)),
        })
        .collect())
}

pub(super) fn enqueue(tx: &mut Transaction<'_>, job: &NewAgentJob) -> Result<i64, StoreError> {
    let row = tx.query_one(
        "INSERT INTO agent_jobs (run, job, labels, payload, state, queued) VALUES ($1, $2, $3, $4, 'queued', $5)
         RETURNING id",
        &[&job.run, &job.job, &job.labels, &job.payload, &to_micros(job.queued)],
    )?;
    // Delivered at commit, to every replica listening (see `PgStore::listen`).
    tx.execute("SELECT pg_notify($1, 'queued')", &[&CHANNEL])?;
    Ok(row.get(0))
}

/// The channel the queue's changes are announced on: `queued` when a job is queued,
/// `job:<id>` when one changed, `jobs` when several did.
pub const CHANNEL: &str = "mobius_agent_jobs";

fn announce(tx: &mut Transaction<'_>, what: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &what])?;
    Ok(())
}

/// Claims up to `limit` jobs, oldest first, in one transaction.
pub(super) fn claim(
    tx: &mut Transaction<'_>,
    agent: &str,
    token: &str,
    labels: &[String],
    now: Timestamp,
    lease_expires: Timestamp,
    limit: usize,
) -> Result<Vec<AgentJob>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // The oldest queued jobs whose labels are all the agent's that no other claimer holds at
    // this instant; locked, they are re-read, so one another claimer took meanwhile is passed by.
    // The pick is a CTE run once: as `id IN (subquery)` the planner may run the subquery again
    // per row and take more than the limit.
    let columns: String = JOB_COLUMNS.split(", ").map(|c| format!("agent_jobs.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "WITH picked AS MATERIALIZED (
             SELECT id FROM agent_jobs WHERE state = 'queued' AND labels <@ $1::text[]
             ORDER BY id LIMIT $6 FOR UPDATE SKIP LOCKED
         )
         UPDATE agent_jobs SET state = 'running', agent = $2, token = $3, claimed = $4, lease_expires = $5
         FROM picked WHERE agent_jobs.id = picked.id AND agent_jobs.state = 'queued'
         RETURNING {columns}"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = tx.query(&sql, &[&labels, &agent, &token, &to_micros(now), &to_micros(lease_expires), &limit])?;
    let mut jobs = rows.iter().map(job_of).collect::<Result<Vec<_>, _>>()?;
    // `RETURNING` gives no order.
    jobs.sort_by_key(|job| job.id);
    if !jobs.is_empty() {
        let ids: Vec<i64> = jobs.iter().map(|job| job.id).collect();
        tx.execute("SELECT pg_notify($1, 'job:' || id) FROM unnest($2::bigint[]) AS id", &[&CHANNEL, &ids])?;
    }
    Ok(jobs)
}

pub(super) fn renew(
    tx: &mut Transaction<'_>,
    id: i64,
    agent: &str,
    lease_expires: Timestamp,
) -> Result<Renewal, StoreError> {
    // A renewal lost to a crash of PostgreSQL leaves the lease where the last durable one put
    // it (a third of it ago at most, when renewals come on time): it does not wait for the disk.
    tx.batch_execute("SET LOCAL synchronous_commit = off")?;
    let row = tx.query_opt(
        "UPDATE agent_jobs SET lease_expires = $3 WHERE id = $1 AND state = 'running' AND agent = $2 RETURNING cancel",
        &[&id, &agent, &to_micros(lease_expires)],
    )?;
    Ok(row.map_or(Renewal::NotHeld, |r| Renewal::Held { cancel: r.get(0) }))
}

pub(super) fn append_log(
    tx: &mut Transaction<'_>,
    id: i64,
    agent: &str,
    offset: u64,
    data: &[u8],
) -> Result<LogAppend, StoreError> {
    // A chunk does not wait for the disk: one a crash of PostgreSQL loses leaves a gap the
    // agent is told of at its next chunk or its finish (409 with `expected`), and it resends
    // from there (it keeps the job's whole log); a finish's commit waits for the disk, so every
    // chunk before an acknowledged finish is durable with it.
    tx.batch_execute("SET LOCAL synchronous_commit = off")?;
    // The job's row lock orders the chunks of one job: a second sender waits, then reads the
    // length the first left.
    let row = tx.query_opt(
        "SELECT log_len FROM agent_jobs WHERE id = $1 AND state = 'running' AND agent = $2 FOR UPDATE",
        &[&id, &agent],
    )?;
    let Some(row) = row else { return Ok(LogAppend::NotHeld) };
    let log_len = length(row.get(0), id)?;
    match unseen(log_len, offset, data) {
        Ok([]) => Ok(LogAppend::Appended(log_len)),
        Ok(tail) => {
            let end = log_len + tail.len() as u64;
            tx.execute(
                "INSERT INTO agent_job_logs (job, start, data) VALUES ($1, $2, $3)",
                &[&id, &signed(log_len)?, &tail],
            )?;
            tx.execute("UPDATE agent_jobs SET log_len = $2 WHERE id = $1", &[&id, &signed(end)?])?;
            announce(tx, &format!("job:{id}"))?;
            Ok(LogAppend::Appended(end))
        }
        Err(gap) => Ok(gap),
    }
}

pub(super) fn log(c: &mut impl GenericClient, id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError> {
    // No snapshot needed: chunks are only ever added, in the transaction that grows `log_len`,
    // so those covering the length read first are there when they are read.
    let log_len = c.query_opt("SELECT log_len FROM agent_jobs WHERE id = $1", &[&id])?.map_or(0, |r| r.get(0));
    let end = length(log_len, id)?.min(from.saturating_add(limit));
    if from >= end {
        return Ok(Vec::new());
    }
    // From the chunk that holds `from` (the last one starting at or before it) to the one that
    // holds `end - 1`.
    let rows = c.query(
        "SELECT start, data FROM agent_job_logs
         WHERE job = $1 AND start < $3
           AND start >= coalesce((SELECT max(start) FROM agent_job_logs WHERE job = $1 AND start <= $2), 0)
         ORDER BY start",
        &[&id, &signed(from)?, &signed(end)?],
    )?;
    let mut out = Vec::with_capacity((end - from) as usize);
    for r in &rows {
        take_slice(&mut out, length(r.get(0), id)?, r.get(1), from, end);
    }
    Ok(out)
}

pub(super) fn finish(
    tx: &mut Transaction<'_>,
    id: i64,
    agent: &str,
    result: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx.execute(
        "UPDATE agent_jobs SET state = 'finished', result = $3, ended = $4
         WHERE id = $1 AND state = 'running' AND agent = $2",
        &[&id, &agent, &result, &to_micros(at)],
    )?;
    if changed == 1 {
        announce(tx, &format!("job:{id}"))?;
    }
    Ok(changed == 1)
}

/// The last chunk of the log and the report in one transaction: both or neither.
pub(super) fn finish_with_log(
    tx: &mut Transaction<'_>,
    id: i64,
    agent: &str,
    offset: u64,
    data: &[u8],
    result: &str,
    at: Timestamp,
) -> Result<LogAppend, StoreError> {
    let row = tx.query_opt(
        "SELECT log_len FROM agent_jobs WHERE id = $1 AND state = 'running' AND agent = $2 FOR UPDATE",
        &[&id, &agent],
    )?;
    let Some(row) = row else { return Ok(LogAppend::NotHeld) };
    let log_len = length(row.get(0), id)?;
    let end = match unseen(log_len, offset, data) {
        Ok([]) => log_len,
        Ok(tail) => {
            tx.execute(
                "INSERT INTO agent_job_logs (job, start, data) VALUES ($1, $2, $3)",
                &[&id, &signed(log_len)?, &tail],
            )?;
            log_len + tail.len() as u64
        }
        Err(gap) => return Ok(gap),
    };
    tx.execute(
        "UPDATE agent_jobs SET log_len = $2, state = 'finished', result = $3, ended = $4 WHERE id = $1",
        &[&id, &signed(end)?, &result, &to_micros(at)],
    )?;
    announce(tx, &format!("job:{id}"))?;
    Ok(LogAppend::Appended(end))
}

pub(super) fn cancel(tx: &mut Transaction<'_>, id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError> {
    // One statement: if a claimer holds the row, this waits, then reads it running.
    let changed = tx.execute(
        "UPDATE agent_jobs SET
             cancel = CASE WHEN state = 'running' THEN TRUE ELSE cancel END,
             reason = CASE WHEN state = 'queued' THEN $2 ELSE reason END,
             ended = CASE WHEN state = 'queued' THEN $3 ELSE ended END,
             state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
         WHERE id = $1 AND state IN ('queued', 'running')",
        &[&id, &reason, &to_micros(at)],
    )?;
    if changed == 1 {
        announce(tx, &format!("job:{id}"))?;
    }
    Ok(changed == 1)
}

pub(super) fn job(c: &mut impl GenericClient, id: i64) -> Result<Option<AgentJob>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM agent_jobs WHERE id = $1");
    c.query_opt(&sql, &[&id])?.as_ref().map(job_of).transpose()
}

pub(super) fn active(c: &mut impl GenericClient) -> Result<Vec<AgentJob>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM agent_jobs WHERE state IN ('queued', 'running') ORDER BY id");
    c.query(&sql, &[])?.iter().map(job_of).collect()
}

pub(super) fn expire(tx: &mut Transaction<'_>, now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError> {
    let rows = tx.query(
        "WITH lapsed AS (
             SELECT id FROM agent_jobs WHERE state = 'running' AND lease_expires < $1 ORDER BY id FOR UPDATE
         )
         UPDATE agent_jobs SET state = 'lost', reason = $2, ended = $1
         FROM lapsed WHERE agent_jobs.id = lapsed.id AND agent_jobs.state = 'running'
         RETURNING agent_jobs.id",
        &[&to_micros(now), &reason],
    )?;
    if !rows.is_empty() {
        announce(tx, "jobs")?;
    }
    Ok(sorted_ids(&rows))
}

pub(super) fn lose_of_token(
    tx: &mut Transaction<'_>,
    token: &str,
    reason: &str,
    at: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    let rows = tx.query(
        "WITH held AS (SELECT id FROM agent_jobs WHERE state = 'running' AND token = $1 ORDER BY id FOR UPDATE)
         UPDATE agent_jobs SET state = 'lost', reason = $2, ended = $3
         FROM held WHERE agent_jobs.id = held.id AND agent_jobs.state = 'running'
         RETURNING agent_jobs.id",
        &[&token, &reason, &to_micros(at)],
    )?;
    if !rows.is_empty() {
        announce(tx, "jobs")?;
    }
    Ok(sorted_ids(&rows))
}

fn sorted_ids(rows: &[Row]) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    ids
}

fn job_of(r: &Row) -> Result<AgentJob, StoreError> {
    let id: i64 = r.get(0);
    let state: &str = r.get(5);
    Ok(AgentJob {
        id,
        run: r.get(1),
        job: r.get(2),
        labels: r.get(3),
        payload: r.get(4),
        state: AgentJobState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("agent job {id} is in an unknown state {state:?}")))?,
        agent: r.get(6),
        token: r.get(7),
        lease_expires: r.get::<_, Option<i64>>(8).map(from_micros),
        cancel: r.get(9),
        log_len: length(r.get(10), id)?,
        result: r.get(11),
        reason: r.get(12),
        queued: from_micros(r.get(13)),
        claimed: r.get::<_, Option<i64>>(14).map(from_micros),
        ended: r.get::<_, Option<i64>>(15).map(from_micros),
    })
}
