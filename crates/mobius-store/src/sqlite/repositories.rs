//! Registered repositories: a name, where Mobius reads it, and the secret its remote takes.
//! Removing one removes what polling kept of it (heads seen, forge settings) in the same
//! transaction.

use rusqlite::{Connection, params};

use crate::{Repository, StoreError};

pub(super) fn add(conn: &Connection, repository: &Repository) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO repositories (name, path, credentials) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET path = excluded.path, credentials = excluded.credentials",
        params![repository.name, repository.path, repository.credentials],
    )?;
    Ok(())
}

pub(super) fn remove(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let removed = tx.execute("DELETE FROM repositories WHERE name = ?1", [name])?;
    tx.execute("DELETE FROM repository_heads WHERE repository = ?1", [name])?;
    tx.execute("DELETE FROM repository_heads_seen WHERE repository = ?1", [name])?;
    tx.execute("DELETE FROM repository_forges WHERE repository = ?1", [name])?;
    tx.commit()?;
    Ok(removed > 0)
}

pub(super) fn list(conn: &Connection) -> Result<Vec<Repository>, StoreError> {
    let mut stmt = conn.prepare("SELECT name, path, credentials FROM repositories ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok(Repository { name: r.get(0)?, path: r.get(1)?, credentials: r.get(2)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
