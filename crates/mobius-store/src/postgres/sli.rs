//! SQL for SLI counters (`sli_minutes`): adding a reading, reading a window, and folding old
//! minutes into hours as they age (see [`crate::Store::compact_sli`]).

use std::collections::BTreeMap;

use ::postgres::{GenericClient, Row, Transaction};

use crate::StoreError;
use crate::runs::{SliCompaction, SliCounts, SliMinute};

/// One bucket's row length: rows at an hour's start may hold a minute or, once compacted,
/// the whole hour.
const HOUR_S: i64 = 3_600;

/// Counters are BIGINT: a u64 past `i64::MAX` (never reached by a count) is stored as the most
/// it can hold rather than wrapping.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uncount(r: &Row, index: usize) -> u64 {
    u64::try_from(r.get::<_, i64>(index)).unwrap_or(0)
}

pub(super) fn add_sli(tx: &mut Transaction<'_>, minutes: &[SliMinute]) -> Result<(), StoreError> {
    let read = tx.prepare(
        "SELECT latency FROM sli_minutes WHERE service = $1 AND environment = $2 AND minute = $3 AND version = $4",
    )?;
    let write = tx.prepare(
        "INSERT INTO sli_minutes AS s (service, environment, version, minute, requests, errors, latency)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (service, environment, minute, version) DO UPDATE SET
             requests = s.requests + excluded.requests, errors = s.errors + excluded.errors,
             latency = excluded.latency",
    )?;
    for m in minutes {
        // Histograms add bucket by bucket; the stored one is merged here rather than in SQL.
        let stored = tx.query_opt(&read, &[&m.service, &m.environment, &m.minute, &m.version])?;
        let mut latency: Vec<u64> =
            stored.and_then(|r| serde_json::from_str(r.get::<_, &str>(0)).ok()).unwrap_or_default();
        add_buckets(&mut latency, &m.latency);
        let latency = serde_json::to_string(&latency).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            &write,
            &[&m.service, &m.environment, &m.version, &m.minute, &count(m.requests), &count(m.errors), &latency],
        )?;
    }
    Ok(())
}

pub(super) fn sli(
    c: &mut impl GenericClient,
    service: &str,
    environment: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SliMinute>, StoreError> {
    let rows = c.query(
        "SELECT version, minute, requests, errors, latency FROM sli_minutes
         WHERE service = $1 AND environment = $2 AND minute >= $3 AND minute < $4 ORDER BY minute, version",
        &[&service, &environment, &from, &to],
    )?;
    Ok(rows
        .iter()
        .map(|r| SliMinute {
            service: service.to_owned(),
            environment: environment.to_owned(),
            version: r.get(0),
            minute: r.get(1),
            requests: uncount(r, 2),
            errors: uncount(r, 3),
            latency: serde_json::from_str(r.get(4)).unwrap_or_default(),
        })
        .collect())
}

pub(super) fn counts(
    c: &mut impl GenericClient,
    service: &str,
    environment: &str,
    from: i64,
    to: i64,
) -> Result<Vec<SliCounts>, StoreError> {
    // `sum` of BIGINT is NUMERIC in PostgreSQL; the sums of one minute's versions fit a BIGINT.
    let rows = c.query(
        "SELECT minute, sum(requests)::bigint, sum(errors)::bigint FROM sli_minutes
         WHERE service = $1 AND environment = $2 AND minute >= $3 AND minute < $4
         GROUP BY minute ORDER BY minute",
        &[&service, &environment, &from, &to],
    )?;
    Ok(rows.iter().map(|r| SliCounts { minute: r.get(0), requests: uncount(r, 1), errors: uncount(r, 2) }).collect())
}

pub(super) fn compact(
    tx: &mut Transaction<'_>,
    hourly_before: i64,
    drop_before: i64,
) -> Result<SliCompaction, StoreError> {
    // Rows not on an hour's start that are old enough fold into the row at their hour's start.
    let rows = tx.query(
        "SELECT service, environment, version, minute, requests, errors, latency FROM sli_minutes
         WHERE minute < $1 AND minute % 3600 <> 0",
        &[&hourly_before],
    )?;
    let mut hours: BTreeMap<(String, String, String, i64), SliMinute> = BTreeMap::new();
    let mut folded = 0;
    for r in &rows {
        let row = SliMinute {
            service: r.get(0),
            environment: r.get(1),
            version: r.get(2),
            minute: r.get(3),
            requests: uncount(r, 4),
            errors: uncount(r, 5),
            latency: serde_json::from_str(r.get(6)).unwrap_or_default(),
        };
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
    tx.execute("DELETE FROM sli_minutes WHERE minute < $1 AND minute % 3600 <> 0", &[&hourly_before])?;
    let sums: Vec<SliMinute> = hours.into_values().collect();
    add_sli(tx, &sums)?;
    let dropped = tx.execute("DELETE FROM sli_minutes WHERE minute < $1", &[&drop_before])?;
    Ok(SliCompaction { folded, hours: sums.len() as u64, dropped })
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
