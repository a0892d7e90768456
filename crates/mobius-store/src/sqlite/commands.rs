//! The rollout command queue (see [`crate::commands`]). The one writer connection serialises
//! every change, and a claim reads and writes in one `IMMEDIATE` transaction, so no other
//! process sharing the file claims in between.

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::commands::{CommandState, NewRolloutCommand, RolloutCommand};
use crate::{Scope, StoreError};

const COLUMNS: &str = "id, service, environment, body, state, holder, result, queued, claimed, ended";

pub(super) fn enqueue(conn: &Connection, command: &NewRolloutCommand) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO rollout_commands (service, environment, body, state, queued) VALUES (?1, ?2, ?3, 'queued', ?4)",
    )?
    .execute(params![command.service, command.environment, command.body, to_micros(command.queued)])?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn claim(
    conn: &mut Connection,
    environments: &[Scope],
    holder: &str,
    now: Timestamp,
) -> Result<Option<RolloutCommand>, StoreError> {
    if environments.is_empty() {
        return Ok(None);
    }
    let pairs: Vec<[&str; 2]> = environments.iter().map(|s| [s.service.as_str(), s.environment.as_str()]).collect();
    let pairs = serde_json::to_string(&pairs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let sql = format!(
        "UPDATE rollout_commands SET state = 'claimed', holder = ?2, claimed = ?3
         WHERE id = (
             SELECT id FROM rollout_commands
             WHERE state = 'queued' AND (service, environment) IN (
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)
             )
             ORDER BY id LIMIT 1
         )
         RETURNING {COLUMNS}"
    );
    let claimed = tx.prepare_cached(&sql)?.query_row(params![pairs, holder, to_micros(now)], Raw::read).optional()?;
    tx.commit()?;
    claimed.map(Raw::into_command).transpose()
}

pub(super) fn finish(
    conn: &Connection,
    id: i64,
    holder: &str,
    result: &str,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE rollout_commands SET state = 'done', result = ?3, ended = ?4
             WHERE id = ?1 AND state = 'claimed' AND holder = ?2",
        )?
        .execute(params![id, holder, result, to_micros(at)])?;
    Ok(changed == 1)
}

pub(super) fn withdraw(conn: &Connection, id: i64, at: Timestamp) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE rollout_commands SET state = 'withdrawn', ended = ?2 WHERE id = ?1 AND state = 'queued'",
        )?
        .execute(params![id, to_micros(at)])?;
    Ok(changed == 1)
}

pub(super) fn lose(
    conn: &Connection,
    environment: &Scope,
    holder: &str,
    at: Timestamp,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = conn
        .prepare_cached(
            "UPDATE rollout_commands SET state = 'lost', ended = ?4
             WHERE state = 'claimed' AND service = ?1 AND environment = ?2 AND holder <> ?3
             RETURNING id",
        )?
        .query_map(params![environment.service, environment.environment, holder, to_micros(at)], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

pub(super) fn get(conn: &Connection, id: i64) -> Result<Option<RolloutCommand>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM rollout_commands WHERE id = ?1");
    conn.prepare_cached(&sql)?.query_row([id], Raw::read).optional()?.map(Raw::into_command).transpose()
}

pub(super) fn prune(conn: &Connection, ended_before: Timestamp) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM rollout_commands WHERE state IN ('done', 'lost', 'withdrawn') AND ended < ?1")?
        .execute([to_micros(ended_before)])?)
}

/// A row as read, before its state is parsed.
struct Raw {
    command: RolloutCommand,
    state: String,
}

impl Raw {
    fn read(r: &Row<'_>) -> rusqlite::Result<Raw> {
        Ok(Raw {
            command: RolloutCommand {
                id: r.get(0)?,
                service: r.get(1)?,
                environment: r.get(2)?,
                body: r.get(3)?,
                state: CommandState::Queued,
                holder: r.get(5)?,
                result: r.get(6)?,
                queued: from_micros(r.get(7)?),
                claimed: r.get::<_, Option<i64>>(8)?.map(from_micros),
                ended: r.get::<_, Option<i64>>(9)?.map(from_micros),
            },
            state: r.get(4)?,
        })
    }

    fn into_command(self) -> Result<RolloutCommand, StoreError> {
        let Raw { mut command, state } = self;
        command.state = CommandState::parse(&state).ok_or_else(|| {
            StoreError::Corrupt(format!("rollout command {} is in an unknown state {state:?}", command.id))
        })?;
        Ok(command)
    }
}
