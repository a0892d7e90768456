//! The agent job queue (see [`crate::agents`]). The one writer connection serialises every
//! change, and each change that reads before it writes (a claim, a log chunk) does so in one
//! `IMMEDIATE` transaction, so no other process sharing the file writes in between.

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::StoreError;
use crate::agents::{AgentJob, AgentJobState, AgentRecord, LogAppend, NewAgentJob, Renewal};
use crate::log_offsets::{length, signed, take_slice, unseen};

const JOB_COLUMNS: &str = "id, run, job, labels, payload, state, agent, token, lease_expires, cancel, log_len, \
                           result, reason, queued, claimed, ended";

pub(super) fn record_agent(conn: &Connection, agent: &AgentRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO agents (id, name, labels, token, first_contact, last_contact) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, token = excluded.token,
             last_contact = excluded.last_contact",
    )?
    .execute(params![
        agent.id,
        agent.name,
        labels_json(&agent.labels)?,
        agent.token,
        to_micros(agent.first_contact),
        to_micros(agent.last_contact),
    ])?;
    Ok(())
}

pub(super) fn agents(conn: &Connection) -> Result<Vec<AgentRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, labels, token, first_contact, last_contact FROM agents ORDER BY name, id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            AgentRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                labels: Vec::new(),
                token: r.get(3)?,
                first_contact: from_micros(r.get(4)?),
                last_contact: from_micros(r.get(5)?),
            },
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut agents = Vec::new();
    for row in rows {
        let (mut agent, labels) = row?;
        agent.labels = parse_labels(&labels, || format!("agent {}", agent.id))?;
        agents.push(agent);
    }
    Ok(agents)
}

pub(super) fn enqueue(conn: &Connection, job: &NewAgentJob) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO agent_jobs (run, job, labels, payload, state, queued) VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
    )?
    .execute(params![job.run, job.job, labels_json(&job.labels)?, job.payload, to_micros(job.queued)])?;
    Ok(conn.last_insert_rowid())
}

/// Claims up to `limit` jobs, oldest first, in one `IMMEDIATE` transaction.
pub(super) fn claim(
    conn: &mut Connection,
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A job's labels must all be among the agent's: none of them may be missing from its list.
    let sql = format!(
        "UPDATE agent_jobs SET state = 'running', agent = ?2, token = ?3, claimed = ?4, lease_expires = ?5
         WHERE id IN (
             SELECT id FROM agent_jobs AS queued
             WHERE state = 'queued' AND NOT EXISTS (
                 SELECT 1 FROM json_each(queued.labels) AS wanted
                 WHERE wanted.value NOT IN (SELECT value FROM json_each(?1))
             )
             ORDER BY id LIMIT ?6
         )
         RETURNING {JOB_COLUMNS}"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let claimed = tx
        .prepare_cached(&sql)?
        .query_map(
            params![labels_json(labels)?, agent, token, to_micros(now), to_micros(lease_expires), limit],
            RawJob::read,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    let mut jobs = claimed.into_iter().map(RawJob::into_job).collect::<Result<Vec<_>, _>>()?;
    // `RETURNING` gives no order.
    jobs.sort_by_key(|job| job.id);
    Ok(jobs)
}

pub(super) fn renew(conn: &Connection, id: i64, agent: &str, lease_expires: Timestamp) -> Result<Renewal, StoreError> {
    let cancel: Option<bool> = conn
        .prepare_cached(
            "UPDATE agent_jobs SET lease_expires = ?3 WHERE id = ?1 AND state = 'running' AND agent = ?2
             RETURNING cancel",
        )?
        .query_row(params![id, agent, to_micros(lease_expires)], |r| r.get(0))
        .optional()?;
    Ok(cancel.map_or(Renewal::NotHeld, |cancel| Renewal::Held { cancel }))
}

pub(super) fn append_log(
    conn: &mut Connection,
    id: i64,
    agent: &str,
    offset: u64,
    data: &[u8],
) -> Result<LogAppend, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let log_len: Option<i64> = tx
        .prepare_cached("SELECT log_len FROM agent_jobs WHERE id = ?1 AND state = 'running' AND agent = ?2")?
        .query_row(params![id, agent], |r| r.get(0))
        .optional()?;
    let Some(log_len) = log_len else { return Ok(LogAppend::NotHeld) };
    let log_len = length(log_len, id)?;
    match unseen(log_len, offset, data) {
        Ok([]) => Ok(LogAppend::Appended(log_len)),
        Ok(tail) => {
            let end = log_len + tail.len() as u64;
            tx.prepare_cached("INSERT INTO agent_job_logs (job, start, data) VALUES (?1, ?2, ?3)")?
                .execute(params![id, signed(log_len)?, tail])?;
            tx.prepare_cached("UPDATE agent_jobs SET log_len = ?2 WHERE id = ?1")?
                .execute(params![id, signed(end)?])?;
            tx.commit()?;
            Ok(LogAppend::Appended(end))
        }
        // Nothing written: the transaction rolls back as it is dropped.
        Err(gap) => Ok(gap),
    }
}

pub(super) fn log(conn: &Connection, id: i64, from: u64, limit: u64) -> Result<Vec<u8>, StoreError> {
    // No read transaction needed: chunks are only ever added, in the transaction that grows
    // `log_len`, so those covering the length read first are there when they are read.
    let log_len: Option<i64> = conn
        .prepare_cached("SELECT log_len FROM agent_jobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let end = length(log_len.unwrap_or(0), id)?.min(from.saturating_add(limit));
    if from >= end {
        return Ok(Vec::new());
    }
    let (from_signed, end_signed) = (signed(from)?, signed(end)?);
    // From the chunk that holds `from` (the last one starting at or before it) to the one
    // that holds `end - 1`.
    let mut stmt = conn.prepare_cached(
        "SELECT start, data FROM agent_job_logs
         WHERE job = ?1 AND start < ?3
           AND start >= coalesce((SELECT max(start) FROM agent_job_logs WHERE job = ?1 AND start <= ?2), 0)
         ORDER BY start",
    )?;
    let chunks = stmt.query_map(params![id, from_signed, end_signed], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
    let mut out = Vec::with_capacity((end - from) as usize);
    for chunk in chunks {
        let (start, data): (i64, Vec<u8>) = chunk?;
        take_slice(&mut out, length(start, id)?, &data, from, end);
    }
    Ok(out)
}

pub(super) fn finish(conn: &Connection, id: i64, agent: &str, result: &str, at: Timestamp) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE agent_jobs SET state = 'finished', result = ?3, ended = ?4
             WHERE id = ?1 AND state = 'running' AND agent = ?2",
        )?
        .execute(params![id, agent, result, to_micros(at)])?;
    Ok(changed == 1)
}

/// The last chunk of the log and the report, in one `IMMEDIATE` transaction: both or neither.
pub(super) fn finish_with_log(
    conn: &mut Connection,
    id: i64,
    agent: &str,
    offset: u64,
    data: &[u8],
    result: &str,
    at: Timestamp,
) -> Result<LogAppend, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let log_len: Option<i64> = tx
        .prepare_cached("SELECT log_len FROM agent_jobs WHERE id = ?1 AND state = 'running' AND agent = ?2")?
        .query_row(params![id, agent], |r| r.get(0))
        .optional()?;
    let Some(log_len) = log_len else { return Ok(LogAppend::NotHeld) };
    let log_len = length(log_len, id)?;
    let end = match unseen(log_len, offset, data) {
        Ok([]) => log_len,
        Ok(tail) => {
            let end = log_len + tail.len() as u64;
            tx.prepare_cached("INSERT INTO agent_job_logs (job, start, data) VALUES (?1, ?2, ?3)")?
                .execute(params![id, signed(log_len)?, tail])?;
            end
        }
        // Nothing written: the transaction rolls back as it is dropped.
        Err(gap) => return Ok(gap),
    };
    tx.prepare_cached("UPDATE agent_jobs SET log_len = ?2, state = 'finished', result = ?3, ended = ?4 WHERE id = ?1")?
        .execute(params![id, signed(end)?, result, to_micros(at)])?;
    tx.commit()?;
    Ok(LogAppend::Appended(end))
}

pub(super) fn cancel(conn: &Connection, id: i64, reason: &str, at: Timestamp) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE agent_jobs SET
                 cancel = CASE WHEN state = 'running' THEN 1 ELSE cancel END,
                 reason = CASE WHEN state = 'queued' THEN ?2 ELSE reason END,
                 ended = CASE WHEN state = 'queued' THEN ?3 ELSE ended END,
                 state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
             WHERE id = ?1 AND state IN ('queued', 'running')",
        )?
        .execute(params![id, reason, to_micros(at)])?;
    Ok(changed == 1)
}

pub(super) fn job(conn: &Connection, id: i64) -> Result<Option<AgentJob>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM agent_jobs WHERE id = ?1");
    conn.prepare_cached(&sql)?.query_row([id], RawJob::read).optional()?.map(RawJob::into_job).transpose()
}

pub(super) fn active(conn: &Connection) -> Result<Vec<AgentJob>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM agent_jobs WHERE state IN ('queued', 'running') ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], RawJob::read)?;
    rows.map(|row| row?.into_job()).collect()
}

pub(super) fn expire(conn: &Connection, now: Timestamp, reason: &str) -> Result<Vec<i64>, StoreError> {
    let now = to_micros(now);
    lose(
        conn,
        "UPDATE agent_jobs SET state = 'lost', reason = ?2, ended = ?1
         WHERE state = 'running' AND lease_expires < ?1 RETURNING id",
        params![now, reason],
    )
}

pub(super) fn lose_of_token(
    conn: &Connection,
    token: &str,
    reason: &str,
    at: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    lose(
        conn,
        "UPDATE agent_jobs SET state = 'lost', reason = ?2, ended = ?3
         WHERE state = 'running' AND token = ?1 RETURNING id",
        params![token, reason, to_micros(at)],
    )
}

/// Runs an `UPDATE … RETURNING id`; the ids in ascending order.
fn lose(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<i64>, StoreError> {
    let mut ids = conn.prepare_cached(sql)?.query_map(params, |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

fn labels_json(labels: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(labels).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_labels(text: &str, what: impl FnOnce() -> String) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("{} has malformed labels", what())))
}

/// A row of `agent_jobs` as read, before its text is parsed.
struct RawJob {
    job: AgentJob,
    labels: String,
    state: String,
    log_len: i64,
}

impl RawJob {
    fn read(r: &Row<'_>) -> rusqlite::Result<RawJob> {
        Ok(RawJob {
            job: AgentJob {
                id: r.get(0)?,
                run: r.get(1)?,
                job: r.get(2)?,
                labels: Vec::new(),
                payload: r.get(4)?,
                state: AgentJobState::Queued,
                agent: r.get(6)?,
                token: r.get(7)?,
                lease_expires: r.get::<_, Option<i64>>(8)?.map(from_micros),
                cancel: r.get(9)?,
                log_len: 0,
                result: r.get(11)?,
                reason: r.get(12)?,
                queued: from_micros(r.get(13)?),
                claimed: r.get::<_, Option<i64>>(14)?.map(from_micros),
                ended: r.get::<_, Option<i64>>(15)?.map(from_micros),
            },
            labels: r.get(3)?,
            state: r.get(5)?,
            log_len: r.get(10)?,
        })
    }

    fn into_job(self) -> Result<AgentJob, StoreError> {
        let RawJob { mut job, labels, state, log_len } = self;
        let id = job.id;
        job.labels = parse_labels(&labels, || format!("agent job {id}"))?;
        job.state = AgentJobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("agent job {id} is in an unknown state {state:?}")))?;
        job.log_len = length(log_len, id)?;
        Ok(job)
    }
}
