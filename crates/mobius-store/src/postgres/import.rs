//! Bulk imports into PostgreSQL ([`crate::Store::import`]): each batch's events go in by one
//! binary `COPY` into a staging table and one `INSERT … SELECT` from it, in the batch's order,
//! leaving out those whose `(source, id)` the log holds already — the rows `append` would have
//! inserted one by one, with the same `seq`s. Then each stored event's facts are materialised
//! in order, as `append` does, with the writes nothing waits for sent many rows to a statement
//! and the reads that are nearly always "no" (is this deployment stored? may an incident be
//! attributed to it?) answered for the whole batch in two queries ([`PgFacts`]).
//!
//! Transactions hold [`COMMIT_EVERY`] events and commit without waiting for the disk
//! (`synchronous_commit = off`) but the last, which waits for everything before it too: the
//! import is durable when it returns, and a crash loses at most the transactions since the
//! server last flushed its WAL.

use std::collections::{HashMap, HashSet};

use ::postgres::binary_copy::BinaryCopyInWriter;
use ::postgres::types::Type;
use ::postgres::{Client, Statement, Transaction};
use jiff::Timestamp;
use mobius_events::time::to_micros;
use mobius_events::{AppendStatus, NewEvent, Origin};

use super::WRITE_LOCK;
use super::facts::PgFacts;
use crate::{IngestContext, StoreError};

/// Events a transaction of an import holds.
const COMMIT_EVERY: usize = 100_000;

/// A batch's events as read, before they join the log; `n` is the position in the batch. The
/// key columns compare bytewise, as the log's do.
const STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS import_events (
    n integer NOT NULL,
    source text COLLATE \"C\" NOT NULL,
    id text COLLATE \"C\" NOT NULL,
    type text NOT NULL,
    subject text NOT NULL,
    ts bigint NOT NULL,
    origin text NOT NULL,
    raw text NOT NULL
)";

/// The staged events the log does not hold yet, the first of each `(source, id)`, in the
/// batch's order: `seq`s are taken in that order, and none is taken for a duplicate.
const INSERT_STAGED: &str = "INSERT INTO events (source, id, type, subject, ts, received, origin, raw)
    SELECT s.source, s.id, s.type, s.subject, s.ts, $1, s.origin, s.raw
    FROM (SELECT DISTINCT ON (source, id) * FROM import_events ORDER BY source, id, n) s
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.source = s.source AND e.id = s.id)
    ORDER BY s.n
    ON CONFLICT (source, id) DO NOTHING
    RETURNING source, id";

pub(super) fn import(
    client: &mut Client,
    batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
    ctx: &IngestContext<'_>,
    appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
) -> Result<(), StoreError> {
    client.batch_execute(STAGING)?;
    let mut statements = HashMap::new();
    let mut batches = batches.peekable();
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")?;
        let mut in_transaction = 0;
        while in_transaction < COMMIT_EVERY
            && let Some(batch) = batches.next()
        {
            let statuses = append_batch(&mut tx, &mut statements, ctx, &batch)?;
            in_transaction += batch.len();
            appended(batch, statuses);
        }
        let last = batches.peek().is_none();
        if last {
            // This commit waits for the WAL up to it: every earlier one's too.
            tx.batch_execute("SET LOCAL synchronous_commit = on")?;
        }
        tx.commit()?;
        if last {
            return Ok(());
        }
    }
}

fn append_batch(
    tx: &mut Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    ctx: &IngestContext<'_>,
    batch: &[NewEvent],
) -> Result<Vec<AppendStatus>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let received = to_micros(Timestamp::now());
    stage(tx, batch)?;
    // Not a statement prepared once: planned for each batch, for the log as large as it has
    // grown by then (a plan cached while it was small scans it whole to find duplicates).
    let inserted: HashSet<(String, String)> =
        tx.query(INSERT_STAGED, &[&received])?.iter().map(|row| (row.get(0), row.get(1))).collect();
    // Emptied without dead rows: nothing vacuums a temporary table.
    tx.batch_execute("TRUNCATE import_events")?;

    let mut facts = PgFacts::new(tx, statements);
    facts.read_ahead(batch, &ctx.rules)?;
    let mut first = HashSet::new();
    let mut statuses = Vec::with_capacity(batch.len());
    for event in batch {
        let key = (event.source.as_str(), event.id.as_str());
        // The first of a key in the batch is the one inserted, if any was.
        let status = if inserted.contains(&(event.source.clone(), event.id.clone())) && first.insert(key) {
            facts.apply(ctx, event)?;
            AppendStatus::Stored
        } else {
            duplicate(&mut facts, ctx, event)?
        };
        statuses.push(status);
    }
    facts.flush()?;
    Ok(statuses)
}

/// The batch's events into the staging table, by one binary `COPY`.
fn stage(tx: &mut Transaction<'_>, batch: &[NewEvent]) -> Result<(), StoreError> {
    let sink = tx.copy_in("COPY import_events (n, source, id, type, subject, ts, origin, raw) FROM STDIN BINARY")?;
    let types = [Type::INT4, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for (n, event) in batch.iter().enumerate() {
        let n = i32::try_from(n).map_err(|_| StoreError::Corrupt("a batch of more than 2^31 events".into()))?;
        writer.write(&[
            &n,
            &event.source,
            &event.id,
            &event.ty,
            &event.subject,
            &to_micros(event.timestamp),
            &event.origin.as_str(),
            &event.raw,
        ])?;
    }
    writer.finish()?;
    Ok(())
}

/// What an event that was not inserted is: the signed delivery taking the place of the
/// unverified record of it (stored, its facts materialised again when the bodies differ), or a
/// duplicate.
pub(super) fn duplicate(
    facts: &mut PgFacts<'_, '_>,
    ctx: &IngestContext<'_>,
    event: &NewEvent,
) -> Result<AppendStatus, StoreError> {
    match verified_over_import(facts.tx, event)? {
        Some(same_body) => {
            if !same_body {
                facts.apply(ctx, event)?;
            }
            Ok(AppendStatus::Stored)
        }
        None => Ok(AppendStatus::Duplicate),
    }
}

/// A recorded webhook delivery (origin `import`) never shadows the signed delivery of the same
/// thing: the verified event takes the record's place. Returns whether the bodies were the
/// same, or `None` when `event` is an ordinary duplicate (see the SQLite backend).
fn verified_over_import(tx: &mut Transaction<'_>, event: &NewEvent) -> Result<Option<bool>, StoreError> {
    if !matches!(event.origin, Origin::Github | Origin::Gitlab) {
        return Ok(None);
    }
    let stored = tx.query_opt(
        "SELECT raw FROM events WHERE source = $1 AND id = $2 AND origin = $3",
        &[&event.source, &event.id, &Origin::Import.as_str()],
    )?;
    let Some(stored) = stored else { return Ok(None) };
    let stored: String = stored.get(0);
    tx.execute(
        "UPDATE events SET origin = $3, raw = $4, type = $5, subject = $6, ts = $7 WHERE source = $1 AND id = $2",
        &[
            &event.source,
            &event.id,
            &event.origin.as_str(),
            &event.raw,
            &event.ty,
            &event.subject,
            &to_micros(event.timestamp),
        ],
    )?;
    Ok(Some(stored == event.raw))
}
