//! Files of agent jobs' transfers (see [`crate::transfers`]). The one writer connection
//! serialises putting, holding and releasing.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

pub(super) fn put(conn: &Connection, transfer: &str, name: &str, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    tx.prepare_cached("INSERT INTO blobs (digest, bytes) VALUES (?1, ?2) ON CONFLICT (digest) DO NOTHING")?
        .execute(params![digest, bytes])?;
    let replaced: Option<String> = tx
        .prepare_cached("SELECT digest FROM transfer_files WHERE transfer = ?1 AND name = ?2")?
        .query_row(params![transfer, name], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT INTO transfer_files (transfer, name, digest) VALUES (?1, ?2, ?3)
         ON CONFLICT (transfer, name) DO UPDATE SET digest = excluded.digest",
    )?
    .execute(params![transfer, name, digest])?;
    if let Some(replaced) = replaced.filter(|d| d != digest) {
        forget_unnamed(&tx, &replaced)?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn hold(conn: &Connection, transfer: &str, digests: &[String]) -> Result<Vec<String>, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let mut missing = Vec::new();
    for digest in digests {
        let present = tx
            .prepare_cached("SELECT 1 FROM blobs WHERE digest = ?1")?
            .query_row([digest], |_| Ok(()))
            .optional()?
            .is_some();
        if present {
            tx.prepare_cached(
                "INSERT INTO transfer_files (transfer, name, digest) VALUES (?1, ?2, ?2)
                 ON CONFLICT (transfer, name) DO NOTHING",
            )?
            .execute(params![transfer, digest])?;
        } else {
            missing.push(digest.clone());
        }
    }
    tx.commit()?;
    Ok(missing)
}

pub(super) fn file(conn: &Connection, transfer: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT b.bytes FROM transfer_files f JOIN blobs b ON b.digest = f.digest
             WHERE f.transfer = ?1 AND f.name = ?2",
        )?
        .query_row(params![transfer, name], |r| r.get(0))
        .optional()?)
}

pub(super) fn release(conn: &Connection, transfer: &str) -> Result<(), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let digests: Vec<String> = tx
        .prepare_cached("DELETE FROM transfer_files WHERE transfer = ?1 RETURNING digest")?
        .query_map([transfer], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for digest in digests {
        forget_unnamed(&tx, &digest)?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn named(conn: &Connection, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT transfer FROM transfer_files WHERE substr(transfer, 1, length(?1)) = ?1 ORDER BY transfer",
    )?;
    let names = stmt.query_map([prefix], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(names)
}

/// Deletes blob `digest` unless a transfer still names it.
fn forget_unnamed(conn: &Connection, digest: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM blobs WHERE digest = ?1 AND NOT EXISTS (SELECT 1 FROM transfer_files WHERE digest = ?1)",
    )?
    .execute([digest])?;
    Ok(())
}
