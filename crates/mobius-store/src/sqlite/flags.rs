//! Feature flag sets (see [`crate::flags`]): a compare-and-set on the version, with the change's
//! event appended in the same write transaction.

use jiff::Timestamp;
use mobius_events::NewEvent;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::facts::Appender;
use crate::{FlagSetPut, FlagSetRecord, FlagSetWrite, IngestContext, StoreError};

pub(super) fn put(
    conn: &mut Connection,
    write: &FlagSetWrite<'_>,
    event: &NewEvent,
    ctx: &IngestContext<'_>,
) -> Result<FlagSetPut, StoreError> {
    // IMMEDIATE, though the one writer connection already serialises writers: the version read
    // below is the one the write replaces.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx
        .query_row("SELECT version FROM flag_sets WHERE name = ?1", [write.name], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if current != write.base {
        return Ok(FlagSetPut::Conflict { current });
    }
    let version = write.base + 1;
    tx.execute(
        "INSERT INTO flag_sets (name, environment, version, document, updated, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET environment = excluded.environment, version = excluded.version,
             document = excluded.document, updated = excluded.updated, updated_by = excluded.updated_by",
        params![write.name, write.environment, version, write.document, to_micros(write.updated), write.updated_by],
    )?;
    let mut appender = Appender::new(&tx);
    appender.append(event, ctx, to_micros(Timestamp::now()))?;
    drop(appender);
    tx.commit()?;
    Ok(FlagSetPut::Written { version })
}

const COLUMNS: &str = "SELECT name, environment, version, document, updated, updated_by FROM flag_sets";

fn record(r: &Row<'_>) -> rusqlite::Result<FlagSetRecord> {
    Ok(FlagSetRecord {
        name: r.get(0)?,
        environment: r.get(1)?,
        version: r.get(2)?,
        document: r.get(3)?,
        updated: from_micros(r.get(4)?),
        updated_by: r.get(5)?,
    })
}

pub(super) fn get(conn: &Connection, name: &str) -> Result<Option<FlagSetRecord>, StoreError> {
    Ok(conn.prepare_cached(&format!("{COLUMNS} WHERE name = ?1"))?.query_row([name], record).optional()?)
}

pub(super) fn list(conn: &Connection) -> Result<Vec<FlagSetRecord>, StoreError> {
    let mut statement = conn.prepare_cached(&format!("{COLUMNS} ORDER BY name"))?;
    Ok(statement.query_map([], record)?.collect::<Result<_, _>>()?)
}

pub(super) fn versions(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT name, version FROM flag_sets ORDER BY name")?;
    Ok(statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
}
