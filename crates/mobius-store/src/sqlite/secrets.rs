//! Sealed secrets: the rows, and a key rotation's reseal with its check document.

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use rusqlite::Connection;

use crate::{SecretRecord, StoreError};

pub(super) fn put(conn: &Connection, secret: &SecretRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO secrets (repository, environment, name, nonce, ciphertext, updated, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (repository, environment, name) DO UPDATE SET nonce = excluded.nonce,
             ciphertext = excluded.ciphertext, updated = excluded.updated, updated_by = excluded.updated_by",
        rusqlite::params![
            secret.repository,
            secret.environment,
            secret.name,
            secret.nonce,
            secret.ciphertext,
            to_micros(secret.updated),
            secret.updated_by
        ],
    )?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, repository: &str, environment: &str, name: &str) -> Result<bool, StoreError> {
    let removed = conn.execute(
        "DELETE FROM secrets WHERE repository = ?1 AND environment = ?2 AND name = ?3",
        rusqlite::params![repository, environment, name],
    )?;
    Ok(removed > 0)
}

pub(super) fn list(conn: &Connection, repository: Option<&str>) -> Result<Vec<SecretRecord>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT repository, environment, name, nonce, ciphertext, updated, updated_by FROM secrets
         WHERE ?1 IS NULL OR repository = ?1 ORDER BY repository, environment, name",
    )?;
    let rows = statement.query_map([repository], |r| {
        Ok(SecretRecord {
            repository: r.get(0)?,
            environment: r.get(1)?,
            name: r.get(2)?,
            nonce: r.get(3)?,
            ciphertext: r.get(4)?,
            updated: from_micros(r.get(5)?),
            updated_by: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn reseal(
    conn: &mut Connection,
    secrets: &[SecretRecord],
    state_key: &str,
    state_value: &str,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for secret in secrets {
        tx.execute(
            "UPDATE secrets SET nonce = ?4, ciphertext = ?5 WHERE repository = ?1 AND environment = ?2 AND name = ?3",
            rusqlite::params![secret.repository, secret.environment, secret.name, secret.nonce, secret.ciphertext],
        )?;
    }
    tx.execute(
        "INSERT INTO server_state (key, value, updated) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        rusqlite::params![state_key, state_value, to_micros(Timestamp::now())],
    )?;
    tx.commit()?;
    Ok(())
}
