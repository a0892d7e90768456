//! The run queue and the commit status claims (see [`crate::Store::claim_run`],
//! [`crate::Store::claim_statuses`]). The one writer connection serialises every change, and
//! each claim reads and writes in one `IMMEDIATE` transaction, so no other process sharing the
//! file claims in between.

use jiff::Timestamp;
use mobius_events::time::to_micros;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::StoreError;
use crate::forge::PendingStatus;
use crate::runs::NewRun;

pub(super) fn claim_run(conn: &mut Connection, driver: &str, run: Option<i64>) -> Result<Option<i64>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let claimed = claim(&tx, driver, run, run.is_none())?;
    tx.commit()?;
    Ok(claimed)
}

pub(super) fn queue_run(conn: &mut Connection, run: &NewRun, driver: &str) -> Result<(i64, bool), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = super::runs::create(&tx, run)?;
    let claimed = claim(&tx, driver, Some(id), true)?.is_some();
    tx.commit()?;
    Ok((id, claimed))
}

/// Claims for `driver` the oldest queued run nobody drives (or run `run` only); with
/// `grouped`, unless another driver has a run of its concurrency group in flight: a group's
/// runs all go to the replica driving it, whose memory orders them.
fn claim(tx: &Transaction<'_>, driver: &str, run: Option<i64>, grouped: bool) -> Result<Option<i64>, StoreError> {
    let id: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM runs r WHERE state = 'queued' AND driver IS NULL AND (?2 IS NULL OR id = ?2)
               AND (NOT ?3 OR concurrency_group IS NULL OR NOT EXISTS (
                   SELECT 1 FROM runs o WHERE o.concurrency_group = r.concurrency_group
                     AND o.state IN ('queued', 'waiting', 'running') AND o.driver IS NOT NULL AND o.driver <> ?1))
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![driver, run, grouped], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    tx.prepare_cached("UPDATE runs SET driver = ?2 WHERE id = ?1")?.execute(params![id, driver])?;
    if !driver.is_empty() {
        tx.prepare_cached(
            "INSERT INTO server_state (key, value, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )?
        .execute(params![crate::runs::driver_key(id), driver, to_micros(Timestamp::now())])?;
    }
    Ok(Some(id))
}

pub(super) fn claim_statuses(
    conn: &mut Connection,
    holder: &str,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<PendingStatus>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Whole contexts (a job of a run), oldest first: their states go out in order, so no
    // context is ever split between two holders. Only contexts with a status due: one waiting
    // for its retry stays unclaimed, so a replica that stops while it waits holds nothing.
    tx.prepare_cached(
        "UPDATE forge_statuses SET claimed_by = ?1, claimed_until = ?3 WHERE id IN (
             SELECT s.id FROM forge_statuses s WHERE s.delivery = 'pending' AND NOT EXISTS (
                 SELECT 1 FROM forge_statuses o WHERE o.run_id = s.run_id AND o.job = s.job
                   AND o.delivery = 'pending' AND o.claimed_by <> ?1 AND o.claimed_until > ?2)
               AND EXISTS (
                 SELECT 1 FROM forge_statuses d WHERE d.run_id = s.run_id AND d.job = s.job
                   AND d.delivery = 'pending' AND d.next_attempt <= ?2)
             ORDER BY s.id LIMIT ?4)",
    )?
    .execute(params![holder, to_micros(now), to_micros(until), limit])?;
    let claimed = super::forge::claimed(&tx, holder, until, limit)?;
    tx.commit()?;
    Ok(claimed)
}
