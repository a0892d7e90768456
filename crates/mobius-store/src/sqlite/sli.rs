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
