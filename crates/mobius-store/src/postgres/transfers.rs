//! Files of agent jobs' transfers (see [`crate::transfers`]). Putting, holding and releasing
//! take an advisory lock of their own, so a release deleting a blob no transfer names never
//! runs beside a put or a hold naming it (which, under READ COMMITTED, neither would see).
//! Readers take no lock: a transfer's names are written before its job is queued.

use ::postgres::{GenericClient, Transaction};

use crate::StoreError;

/// Any number, the same in every process, other than the store's write lock.
const TRANSFER_LOCK: i64 = 0x6d6f_6269_7573_0003;

fn lock(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TRANSFER_LOCK])?;
    Ok(())
}

pub(super) fn put(
    tx: &mut Transaction<'_>,
    transfer: &str,
    name: &str,
    digest: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    lock(tx)?;
    tx.execute(
        "INSERT INTO blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        &[&digest, &bytes],
    )?;
    let replaced = tx
        .query_opt("SELECT digest FROM transfer_files WHERE transfer = $1 AND name = $2", &[&transfer, &name])?
        .map(|r| r.get::<_, String>(0));
    tx.execute(
        "INSERT INTO transfer_files (transfer, name, digest) VALUES ($1, $2, $3)
         ON CONFLICT (transfer, name) DO UPDATE SET digest = excluded.digest",
        &[&transfer, &name, &digest],
    )?;
    if let Some(replaced) = replaced.filter(|d| d != digest) {
        forget_unnamed(tx, &[replaced])?;
    }
    Ok(())
}

pub(super) fn hold(tx: &mut Transaction<'_>, transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError> {
    lock(tx)?;
    let present: Vec<String> =
        tx.query("SELECT digest FROM blobs WHERE digest = ANY($1)", &[&digests])?.iter().map(|r| r.get(0)).collect();
    tx.execute(
        "INSERT INTO transfer_files (transfer, name, digest) SELECT $1, d, d FROM unnest($2::text[]) AS d
         ON CONFLICT (transfer, name) DO NOTHING",
        &[&transfer, &present],
    )?;
    Ok(digests.iter().filter(|d| !present.contains(d)).cloned().collect())
}

pub(super) fn file(c: &mut impl GenericClient, transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(c.query_opt(
        "SELECT b.bytes FROM transfer_files f JOIN blobs b ON b.digest = f.digest
         WHERE f.transfer = $1 AND f.name = $2",
        &[&transfer, &name],
    )?
    .map(|r| r.get(0)))
}

pub(super) fn release(tx: &mut Transaction<'_>, transfer: &str) -> Result<(), StoreError> {
    lock(tx)?;
    let digests: Vec<String> = tx
        .query("DELETE FROM transfer_files WHERE transfer = $1 RETURNING digest", &[&transfer])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    forget_unnamed(tx, &digests)
}

pub(super) fn named(c: &mut impl GenericClient, prefix: &str) -> Result<Vec<String>, StoreError> {
    let rows = c.query(
        "SELECT DISTINCT transfer FROM transfer_files WHERE left(transfer, length($1)) = $1 ORDER BY transfer",
        &[&prefix],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Deletes the blobs of `digests` that no transfer names any more.
fn forget_unnamed(tx: &mut Transaction<'_>, digests: &[String]) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM blobs b WHERE b.digest = ANY($1)
         AND NOT EXISTS (SELECT 1 FROM transfer_files f WHERE f.digest = b.digest)",
        &[&digests],
    )?;
    Ok(())
}
