//! The run queue and the commit status claims (see [`crate::Store::claim_run`],
//! [`crate::Store::claim_statuses`]), as River and Oban claim: the rows are picked with
//! `FOR UPDATE SKIP LOCKED` in a transaction that takes no write lock, so a row another
//! claimer (or a cancel) is changing is passed by rather than waited for. Each claim also
//! holds an advisory lock of its own for its transaction: what it checks about other rows
//! (a concurrency group's runs in flight, a context's other statuses) is then never being
//! claimed at the same instant, which `SKIP LOCKED` alone, reading a snapshot, cannot see.

use ::postgres::Transaction;
use jiff::Timestamp;
use mobius_events::time::to_micros;

use crate::StoreError;
use crate::forge::PendingStatus;
use crate::runs::NewRun;

/// Any number, the same in every process: one run claim at a time.
const RUN_CLAIM_LOCK: i64 = 0x6d6f_6269_7573_0010;
/// Any number, the same in every process: one status claim at a time.
const STATUS_CLAIM_LOCK: i64 = 0x6d6f_6269_7573_0011;

pub(super) fn claim_run(tx: &mut Transaction<'_>, driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RUN_CLAIM_LOCK])?;
    claim(tx, driver, run, run.is_none())
}

pub(super) fn queue_run(tx: &mut Transaction<'_>, run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&RUN_CLAIM_LOCK])?;
    let id = super::runs::insert(tx, run)?;
    let claimed = claim(tx, driver, Some(id), true)?.is_some();
    if !claimed {
        // Delivered at commit, to every replica listening (see `PgStore::listen`).
        tx.execute("SELECT pg_notify($1, 'queued')", &[&crate::runs::RUNS_CHANNEL])?;
    }
    Ok((id, claimed))
}

/// Claims for `driver` the oldest queued run nobody drives (or run `run` only); with
/// `grouped`, unless another driver has a run of its concurrency group in flight: a group's
/// runs all go to the replica driving it, whose memory orders them.
fn claim(tx: &mut Transaction<'_>, driver: &str, run: Option<i64>, grouped: bool) -> Result<Option<i64>, StoreError> {
    let row = tx.query_opt(
        "UPDATE runs SET driver = $1 WHERE state = 'queued' AND driver IS NULL AND id = (
             SELECT id FROM runs r WHERE state = 'queued' AND driver IS NULL AND ($2::bigint IS NULL OR id = $2)
               AND (NOT $3 OR concurrency_group IS NULL OR NOT EXISTS (
                   SELECT 1 FROM runs o WHERE o.concurrency_group = r.concurrency_group
                     AND o.state IN ('queued', 'waiting', 'running') AND o.driver IS NOT NULL AND o.driver <> $1))
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
         )
         RETURNING id",
        &[&driver, &run, &grouped],
    )?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.get(0);
    if !driver.is_empty() {
        super::upsert_state(tx, &crate::runs::driver_key(id), driver)?;
    }
    Ok(Some(id))
}

pub(super) fn claim_statuses(
    tx: &mut Transaction<'_>,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<PendingStatus>, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STATUS_CLAIM_LOCK])?;
    // Whole contexts (a job of a run), oldest first: their states go out in order, so no
    // context is ever split between two holders. Only contexts with a status due: one waiting
    // for its retry stays unclaimed, so a replica that stops while it waits holds nothing.
    tx.execute(
        "UPDATE forge_statuses SET claimed_by = $1, claimed_until = $3 WHERE id IN (
             SELECT s.id FROM forge_statuses s WHERE s.delivery = 'pending' AND NOT EXISTS (
                 SELECT 1 FROM forge_statuses o WHERE o.run_id = s.run_id AND o.job = s.job
                   AND o.delivery = 'pending' AND o.claimed_by <> $1 AND o.claimed_until > $2)
               AND EXISTS (
                 SELECT 1 FROM forge_statuses d WHERE d.run_id = s.run_id AND d.job = s.job
                   AND d.delivery = 'pending' AND d.next_attempt <= $2)
             ORDER BY s.id LIMIT $4 FOR UPDATE SKIP LOCKED)",
        &[&holder, &to_micros(now), &to_micros(until), &i64::from(limit)],
    )?;
    super::forge::claimed(tx, holder, until, limit)
}
