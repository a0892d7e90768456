//! Leases: one row per piece of singleton work, taken when free or lapsed, renewed by its
//! holder (see `mobius_log::lease`).

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, params};

use crate::{LeaseRecord, StoreError};

/// Takes `name` for `holder` until `expires` when it is free, lapsed (`expires <= now`) or
/// already `holder`'s (a renewal keeps `acquired`); whether `holder` holds it now. One
/// statement, so two claimers never both win.
pub(super) fn claim(
    conn: &Connection,
    name: &str,
    holder: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "INSERT INTO leases (name, holder, acquired, expires) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET
             acquired = CASE WHEN leases.holder = excluded.holder THEN leases.acquired ELSE excluded.acquired END,
             holder = excluded.holder,
             expires = excluded.expires
         WHERE leases.holder = excluded.holder OR leases.expires <= ?3",
        params![name, holder, to_micros(now), to_micros(expires)],
    )?;
    Ok(changed == 1)
}

/// Gives `name` up when `holder` holds it; whether it did.
pub(super) fn release(conn: &Connection, name: &str, holder: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])? == 1)
}

pub(super) fn list(conn: &Connection) -> Result<Vec<LeaseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT name, holder, acquired, expires FROM leases ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(LeaseRecord {
            name: r.get(0)?,
            holder: r.get(1)?,
            acquired: from_micros(r.get(2)?),
            expires: from_micros(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
