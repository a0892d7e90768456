//! The rollout command queue (see [`crate::commands`]), as the agent job queue is kept: in
//! transactions that lock only the rows they touch. A claimer skips the rows other claimers
//! hold (`FOR UPDATE SKIP LOCKED`), so two never take the same command and none waits for
//! another; every other change is one statement over the rows it names.

use ::postgres::{GenericClient, Row, Transaction};
use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};

use crate::commands::{CommandState, NewRolloutCommand, RolloutCommand};
use crate::{Scope, StoreError};

const COLUMNS: &str = "id, service, environment, body, state, holder, result, queued, claimed, ended";

pub(super) fn enqueue(tx: &mut Transaction<'_>, command: &NewRolloutCommand) -> Result<i64, StoreError> {
    let row = tx.query_one(
        "INSERT INTO rollout_commands (service, environment, body, state, queued) VALUES ($1, $2, $3, 'queued', $4)
         RETURNING id",
        &[&command.service, &command.environment, &command.body, &to_micros(command.queued)],
    )?;
    Ok(row.get(0))
}

pub(super) fn claim(
    tx: &mut Transaction<'_>,
    environments: &[Scope],
    holder: &str,
    now: Timestamp,
) -> Result<Option<RolloutCommand>, StoreError> {
    if environments.is_empty() {
        return Ok(None);
    }
    let services: Vec<&str> = environments.iter().map(|s| s.service.as_str()).collect();
    let names: Vec<&str> = environments.iter().map(|s| s.environment.as_str()).collect();
    // The oldest queued command of these environments that no other claimer holds at this
    // instant; locked, it is re-read, so one another claimer took meanwhile is passed by.
    let sql = format!(
        "UPDATE rollout_commands SET state = 'claimed', holder = $3, claimed = $4
         WHERE state = 'queued' AND id = (
             SELECT id FROM rollout_commands
             WHERE state = 'queued' AND (service, environment) IN (
                 SELECT s COLLATE \"C\", e COLLATE \"C\" FROM unnest($1::text[], $2::text[]) AS wanted (s, e)
             )
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
         )
         RETURNING {COLUMNS}"
    );
    let row = tx.query_opt(&sql, &[&services, &names, &holder, &to_micros(now)])?;
    row.as_ref().map(command_of).transpose()
}

pub(super) fn finish(
    tx: &mut Transaction<'_>,
    id: i64,
    holder: &str,
    result: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx.execute(
        "UPDATE rollout_commands SET state = 'done', result = $3, ended = $4
         WHERE id = $1 AND state = 'claimed' AND holder = $2",
        &[&id, &holder, &result, &to_micros(at)],
    )?;
    Ok(changed == 1)
}

pub(super) fn withdraw(tx: &mut Transaction<'_>, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    // One statement: if a claimer holds the row, this waits, then reads it claimed.
    let changed = tx.execute(
        "UPDATE rollout_commands SET state = 'withdrawn', ended = $2 WHERE id = $1 AND state = 'queued'",
        &[&id, &to_micros(at)],
    )?;
    Ok(changed == 1)
}

pub(super) fn lose(
    tx: &mut Transaction<'_>,
    environment: &Scope,
    holder: &str,
    at: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    let rows = tx.query(
        "WITH claimed AS (
             SELECT id FROM rollout_commands
             WHERE state = 'claimed' AND service = $1 AND environment = $2 AND holder <> $3
             ORDER BY id FOR UPDATE
         )
         UPDATE rollout_commands SET state = 'lost', ended = $4
         FROM claimed WHERE rollout_commands.id = claimed.id AND rollout_commands.state = 'claimed'
         RETURNING rollout_commands.id",
        &[&environment.service, &environment.environment, &holder, &to_micros(at)],
    )?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    Ok(ids)
}

pub(super) fn get(c: &mut impl GenericClient, id: i64) -> Result<Option<RolloutCommand>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM rollout_commands WHERE id = $1");
    c.query_opt(&sql, &[&id])?.as_ref().map(command_of).transpose()
}

pub(super) fn prune(tx: &mut Transaction<'_>, ended_before: Timestamp) -> Result<usize, StoreError> {
    let deleted = tx.execute(
        "DELETE FROM rollout_commands WHERE state IN ('done', 'lost', 'withdrawn') AND ended < $1",
        &[&to_micros(ended_before)],
    )?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}

fn command_of(r: &Row) -> Result<RolloutCommand, StoreError> {
    let id: i64 = r.get(0);
    let state: &str = r.get(4);
    Ok(RolloutCommand {
        id,
        service: r.get(1),
        environment: r.get(2),
        body: r.get(3),
        state: CommandState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("rollout command {id} is in an unknown state {state:?}")))?,
        holder: r.get(5),
        result: r.get(6),
        queued: from_micros(r.get(7)),
        claimed: r.get::<_, Option<i64>>(8).map(from_micros),
        ended: r.get::<_, Option<i64>>(9).map(from_micros),
    })
}
