//! Leases, as `sqlite/leases.rs` keeps them: one upsert that wins only when the row is free,
//! lapsed or the claimer's own.

use ::postgres::{GenericClient, Transaction};
use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};

use crate::{LeaseRecord, StoreError};

pub(super) fn claim(
    tx: &mut Transaction<'_>,
    name: &str,
    holder: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx.execute(
        "INSERT INTO leases (name, holder, acquired, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET
             acquired = CASE WHEN leases.holder = excluded.holder THEN leases.acquired ELSE excluded.acquired END,
             holder = excluded.holder,
             expires = excluded.expires
         WHERE leases.holder = excluded.holder OR leases.expires <= $3",
        &[&name, &holder, &to_micros(now), &to_micros(expires)],
    )?;
    Ok(changed == 1)
}

pub(super) fn release(tx: &mut Transaction<'_>, name: &str, holder: &str) -> Result<bool, StoreError> {
    Ok(tx.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder])? == 1)
}

pub(super) fn list(c: &mut impl GenericClient) -> Result<Vec<LeaseRecord>, StoreError> {
    let rows = c.query("SELECT name, holder, acquired, expires FROM leases ORDER BY name", &[])?;
    Ok(rows
        .iter()
        .map(|r| LeaseRecord {
            name: r.get(0),
            holder: r.get(1),
            acquired: from_micros(r.get(2)),
            expires: from_micros(r.get(3)),
        })
        .collect())
}
