//! SQL for SLI counters (`sli_minutes`): adding a reading, reading a window, and folding old
//! minutes into hours as they age (see [`crate::Store::compact_sli`]).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::StoreError;
use crate::runs::{SliCompaction, SliCounts, SliMinute};

/// One bucket's row length: rows at an hour's start may hold a minute or, once compacted,
/// the whole hour.
const HOUR_S: i64 = 3_600;

pub(super) fn add_sli(tx: &Transaction<'_>, minutes: &[SliMinute]) -> Result<(), StoreError> {
    let mut read = tx.prepare_cached(
        "SELECT latency FROM sli_minutes WHERE service = ?1 AND environment = ?2 AND minute = ?3 AND version = ?4",
    )?;
    let mut write = tx.prepare_cached(
        "INSERT INTO sli_minutes (service, environment, version, minute, requests, errors, latency)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (service, environment, minute, version) DO UPDATE SET
             requests = requests + excluded.requests, errors = errors + excluded.errors, latency = excluded.latency",
    )?;
    for m in minutes {
        // Histograms add bucket by bucket; the stored one is merged here rather than in SQL.
        let stored: Option<String> =
            read.query_row(params![m.service, m.environment, m.minute, m.version], |r| r.get(0)).optional()?;
        let mut latency: Vec<u64> = stored.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        add_buckets(&mut latency, &m.latency);
        let latency = serde_json::to_string(&latency).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        write.execute(params![m.service, m.environment, m.version, m.minute, m.requests, m.errors, latency])?;
    }
    Ok(())
}

pub(super) fn sli(
    conn: &Connection,
    service: &str,
    environment: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SliMinute>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, minute, requests, errors, latency FROM sli_minutes
         WHERE service = ?1 AND environment = ?2 AND minute >= ?3 AND minute < ?4 ORDER BY minute, version",
    )?;
    let rows = stmt.query_map(params![service, environment, from, to], |r| {
        let latency: String = r.get(4)?;
        Ok(SliMinute {
            service: service.to_owned(),
            environment: environment.to_owned(),
            version: r.get(0)?,
            minute: r.get(1)?,
            requests: r.get(2)?,
            errors: r.get(3)?,
            latency: serde_json::from_str(&latency).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn counts(
    conn: &Connection,
    service: &str,
    environment: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SliCounts>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT minute, SUM(requests), SUM(errors) FROM sli_minutes
         WHERE service = ?1 AND environment = ?2 AND minute >= ?3 AND minute < ?4
         GROUP BY minute ORDER BY minute",
    )?;
    let rows = stmt.query_map(params![service, environment, from, to], |r| {
        Ok(SliCounts { minute: r.get(0)?, requests: r.get(1)?, errors: r.get(2)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn compact(tx: &Transaction<'_>, hourly_before: i64, drop_before: i64) -> Result<SliCompaction, StoreError> {
    // Rows not on an hour's start that are old enough fold into the row at their hour's start.
    let mut stmt = tx.prepare_cached(
        "SELECT service, environment, version, minute, requests, errors, latency FROM sli_minutes
         WHERE minute < ?1 AND minute % 3600 != 0",
    )?;
    let rows = stmt.query_map(params![hourly_before], |r| {
        let latency: String = r.get(6)?;
        Ok(SliMinute {
            service: r.get(0)?,
            environment: r.get(1)?,
            version: r.get(2)?,
            minute: r.get(3)?,
            requests: r.get(4)?,
            errors: r.get(5)?,
            latency: serde_json::from_str(&latency).unwrap_or_default(),
        })
    })?;
    let mut hours: BTreeMap<(String, String, String, i64), SliMinute> = BTreeMap::new();
    let mut folded = 0;
    for row in rows {
        let row = row?;
        folded += 1;
        let hour = row.minute - row.minute.rem_euclid(HOUR_S);
        let key = (row.service.clone(), row.environment.clone(), row.version.clone(), hour);
        let sum = hours.entry(key).or_insert_with(|| SliMinute {
            minute: hour,
            requests: 0,
            errors: 0,
            latency: Vec::new(),
            ..row.clone()
        });
        sum.requests += row.requests;
        sum.errors += row.errors;
        add_buckets(&mut sum.latency, &row.latency);
    }
    drop(stmt);
    tx.execute("DELETE FROM sli_minutes WHERE minute < ?1 AND minute % 3600 != 0", params![hourly_before])?;
    let sums: Vec<SliMinute> = hours.into_values().collect();
    add_sli(tx, &sums)?;
    let dropped = tx.execute("DELETE FROM sli_minutes WHERE minute < ?1", params![drop_before])?;
    Ok(SliCompaction { folded, hours: sums.len() as u64, dropped: dropped as u64 })
}

/// Adds a histogram to another bucket by bucket, growing it if it is shorter.
fn add_buckets(sum: &mut Vec<u64>, add: &[u64]) {
    if sum.len() < add.len() {
        sum.resize(add.len(), 0);
    }
    for (s, a) in sum.iter_mut().zip(add) {
        *s += a;
    }
}

#[cfg(test)]
mod tests {
    use crate::{SliMinute, SqliteStore, Store};

    fn minute(version: &str, minute: i64, requests: u64, errors: u64, latency: Vec<u64>) -> SliMinute {
        SliMinute {
            service: "shop".into(),
            environment: "production".into(),
            version: version.into(),
            minute,
            requests,
            errors,
            latency,
        }
    }

    #[test]
    fn sli_minutes_add_up_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.add_sli(&[minute("v1", 60, 10, 1, vec![5, 5]), minute("v2", 60, 4, 0, vec![4])]).unwrap();
        store.add_sli(&[minute("v1", 60, 5, 2, vec![1, 0, 4]), minute("v1", 120, 1, 0, vec![1])]).unwrap();
        let rows = store.sli("shop", "production", 0, 120).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0], minute("v1", 60, 15, 3, vec![6, 5, 4]));
        assert_eq!(rows[1].version, "v2");
        assert_eq!(store.sli("shop", "production", 120, 180).unwrap().len(), 1, "half-open window");
        assert!(store.sli("shop", "staging", 0, 999).unwrap().is_empty());
        let counts = store.sli_counts("shop", "production", 0, 180).unwrap();
        assert_eq!(
            counts,
            vec![
                crate::SliCounts { minute: 60, requests: 19, errors: 3 },
                crate::SliCounts { minute: 120, requests: 1, errors: 0 }
            ],
            "versions summed per minute"
        );
    }

    #[test]
    fn old_minutes_fold_into_hours_and_expired_hours_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let hour = 3_600;
        store
            .add_sli(&[
                // Expired: the hour before `drop_before`.
                minute("v1", 0, 7, 7, vec![7]),
                // Hour 1: three minutes of v1 (one at the hour's start), one of v2.
                minute("v1", hour, 10, 1, vec![5, 5]),
                minute("v1", hour + 60, 20, 2, vec![0, 10, 10]),
                minute("v1", hour + 3_540, 5, 0, vec![5]),
                minute("v2", hour + 120, 4, 4, vec![0, 0, 0, 4]),
                // Hour 2 is young enough to stay in minutes.
                minute("v1", 2 * hour + 60, 3, 0, vec![3]),
            ])
            .unwrap();
        let before = store.sli("shop", "production", hour, 3 * hour).unwrap();
        let report = store.compact_sli(2 * hour, hour).unwrap();
        assert_eq!(report, crate::SliCompaction { folded: 3, hours: 2, dropped: 1 });
        let after = store.sli("shop", "production", 0, 3 * hour).unwrap();
        assert_eq!(
            after,
            vec![
                minute("v1", hour, 35, 3, vec![10, 15, 10]),
                minute("v2", hour, 4, 4, vec![0, 0, 0, 4]),
                minute("v1", 2 * hour + 60, 3, 0, vec![3]),
            ]
        );
        let total = |rows: &[SliMinute]| {
            rows.iter().map(|m| (m.requests, m.errors)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        };
        assert_eq!(total(&before), total(&after), "folding keeps every request");
        assert_eq!(
            store.compact_sli(2 * hour, hour).unwrap(),
            crate::SliCompaction::default(),
            "compaction is idempotent"
        );
    }
}
