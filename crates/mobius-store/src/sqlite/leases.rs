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

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use crate::{SqliteStore, Store};

    #[test]
    fn a_lease_is_one_holders_until_it_lapses_and_renewals_keep_when_it_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t0: jiff::Timestamp = "2026-12-06T18:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        assert!(store.claim_lease("alerts", "a", at(0), at(15)).unwrap(), "free: a takes it");
        assert!(!store.claim_lease("alerts", "b", at(5), at(20)).unwrap(), "a's until 15 s");
        assert!(store.claim_lease("alerts", "a", at(5), at(20)).unwrap(), "a renews");
        assert!(!store.claim_lease("alerts", "b", at(19), at(34)).unwrap(), "renewed to 20 s");
        assert!(store.claim_lease("polling", "b", at(19), at(34)).unwrap(), "another lease is another row");
        let leases = store.leases().unwrap();
        assert_eq!(leases.len(), 2);
        assert_eq!((leases[0].holder.as_str(), leases[0].acquired, leases[0].expires), ("a", at(0), at(20)));

        // a stops renewing: at its expiry b takes it, and a's late renewal fails.
        assert!(store.claim_lease("alerts", "b", at(20), at(35)).unwrap(), "lapsed at 20 s");
        assert!(!store.claim_lease("alerts", "a", at(21), at(36)).unwrap());
        assert_eq!(store.leases().unwrap()[0].acquired, at(20), "b's term began when it took it");

        // Releasing is only the holder's.
        assert!(!store.release_lease("alerts", "a").unwrap());
        assert!(store.release_lease("alerts", "b").unwrap());
        assert!(store.claim_lease("alerts", "a", at(22), at(37)).unwrap(), "free again at once");
    }
}
