//! Feature flag sets (see [`crate::flags`]): a compare-and-set on the version under the write
//! lock, the change's event appended and every replica told (`NOTIFY`) in the same transaction.

use ::postgres::{GenericClient, Row, Transaction};
use mobius_events::NewEvent;
use mobius_events::time::{from_micros, to_micros};

use crate::flags::CHANNEL;
use crate::{FlagSetPut, FlagSetRecord, FlagSetWrite, IngestContext, StoreError};

pub(super) fn put(
    tx: &mut Transaction<'_>,
    write: &FlagSetWrite<'_>,
    event: &NewEvent,
    ctx: &IngestContext<'_>,
) -> Result<FlagSetPut, StoreError> {
    // Writers hold the write lock one at a time: the version read is the one replaced.
    let current: i64 =
        tx.query_opt("SELECT version FROM flag_sets WHERE name = $1", &[&write.name])?.map_or(0, |r| r.get(0));
    if current != write.base {
        return Ok(FlagSetPut::Conflict { current });
    }
    let version = write.base + 1;
    tx.execute(
        "INSERT INTO flag_sets (name, environment, version, document, updated, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET environment = excluded.environment, version = excluded.version,
             document = excluded.document, updated = excluded.updated, updated_by = excluded.updated_by",
        &[&write.name, &write.environment, &version, &write.document, &to_micros(write.updated), &write.updated_by],
    )?;
    super::append_in(tx, std::slice::from_ref(event), ctx)?;
    // Delivered at commit, to every replica listening.
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("{}:{version}", write.name)])?;
    Ok(FlagSetPut::Written { version })
}

const COLUMNS: &str = "SELECT name, environment, version, document, updated, updated_by FROM flag_sets";

fn record(r: &Row) -> FlagSetRecord {
    FlagSetRecord {
        name: r.get(0),
        environment: r.get(1),
        version: r.get(2),
        document: r.get(3),
        updated: from_micros(r.get(4)),
        updated_by: r.get(5),
    }
}

pub(super) fn get(c: &mut impl GenericClient, name: &str) -> Result<Option<FlagSetRecord>, StoreError> {
    Ok(c.query_opt(&format!("{COLUMNS} WHERE name = $1"), &[&name])?.as_ref().map(record))
}

pub(super) fn list(c: &mut impl GenericClient) -> Result<Vec<FlagSetRecord>, StoreError> {
    Ok(c.query(&format!("{COLUMNS} ORDER BY name"), &[])?.iter().map(record).collect())
}

pub(super) fn versions(c: &mut impl GenericClient) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(c.query("SELECT name, version FROM flag_sets ORDER BY name", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
