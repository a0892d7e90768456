//! Bulk imports ([`crate::Store::import`]): many batches to a transaction, each event appended
//! as `append` appends it, synced once at the end.
//!
//! What makes an import faster than appends of the same batches, measured on a 1M-event history
//! (`bench/RESULTS.md`): transactions of [`Options::import_commit_events`] events rather than
//! one a batch; `synchronous=NORMAL` while it runs, so that a commit does not wait for the disk
//! (a crash loses the transactions since the last checkpoint, never the store: the WAL is
//! synced before each checkpoint); statements prepared once for the whole import; and, into an
//! empty store, the secondary indexes materialisation never reads built once at the end.

use jiff::Timestamp;
use mobius_events::time::to_micros;
use mobius_events::{AppendStatus, NewEvent};
use rusqlite::Connection;

use super::Options;
use super::facts::Appender;
use crate::{IngestContext, StoreError};

/// Secondary indexes that materialisation never reads, as the migrations create them (`IF NOT
/// EXISTS` added). An import into an empty store drops them first and builds each once at the
/// end from sorted keys instead of inserting into it row by row. Should an import die between
/// the two, opening the store builds what is missing ([`restore_deferred_indexes`]).
const DEFERRED_INDEXES: [(&str, &str); 3] = [
    ("events_ts", "CREATE INDEX IF NOT EXISTS events_ts ON events (ts)"),
    (
        "deployment_changes_deployment",
        "CREATE INDEX IF NOT EXISTS deployment_changes_deployment ON deployment_changes (deployment_id)",
    ),
    ("pipeline_runs_revision", "CREATE INDEX IF NOT EXISTS pipeline_runs_revision ON pipeline_runs (revision)"),
];

/// The page cache while the deferred indexes are built: SQLite's sorter takes about as much
/// memory again as the cache, and the cache's pages are not needed for a sort.
const INDEX_BUILD_CACHE_KIB: i64 = 32 * 1024;

/// Builds any deferred index an interrupted import left missing; nothing when all are there.
pub(super) fn restore_deferred_indexes(conn: &Connection) -> Result<(), StoreError> {
    for (_, create) in DEFERRED_INDEXES {
        conn.execute_batch(create)?;
    }
    Ok(())
}

pub(super) fn import(
    conn: &Connection,
    options: Options,
    batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
    ctx: &IngestContext<'_>,
    appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let loaded = load(conn, options, batches, ctx, appended);
    if loaded.is_err() && !conn.is_autocommit() {
        // The last transaction is lost; the ones before it stay committed.
        let _ = conn.execute_batch("ROLLBACK");
    }
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    loaded?;
    restored?;
    // A checkpoint syncs the WAL before it copies anything, and the database file once it
    // has copied everything: after this one, every transaction of the import is on disk.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}

fn load(
    conn: &Connection,
    options: Options,
    batches: &mut dyn Iterator<Item = Vec<NewEvent>>,
    ctx: &IngestContext<'_>,
    appended: &mut dyn FnMut(Vec<NewEvent>, Vec<AppendStatus>),
) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let empty = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM events)", [], |r| r.get::<_, bool>(0))?;
    if empty {
        for (name, _) in DEFERRED_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }
    // One appender, its statements prepared once, for every transaction of the import.
    let mut appender = Appender::new(conn);
    let mut in_transaction = 0;
    for batch in batches {
        // Committed before the next batch rather than after a full one, so that the last
        // transaction is never empty.
        if in_transaction >= options.import_commit_events {
            conn.execute_batch("COMMIT; BEGIN IMMEDIATE")?;
            in_transaction = 0;
        }
        let received = to_micros(Timestamp::now());
        let statuses =
            batch.iter().map(|event| appender.append(event, ctx, received)).collect::<Result<Vec<_>, _>>()?;
        in_transaction += batch.len();
        appended(batch, statuses);
    }
    drop(appender);
    if empty {
        conn.pragma_update(None, "cache_size", -INDEX_BUILD_CACHE_KIB)?;
        let built = restore_deferred_indexes(conn);
        conn.pragma_update(None, "cache_size", -i64::from(options.writer_cache_kib))?;
        built?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}
