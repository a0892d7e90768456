//! Tokens (a salted hash of the secret, never the secret) and console sessions (SHA-256 of
//! the cookie, never the cookie; see `mobius_app::sessions`).

use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SessionRecord, StoreError, TokenRecord};

pub(super) fn insert_token(conn: &Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, name, scope, created, secret_sha256, salt, expires, repository, run_id, flag_set)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            token.id,
            token.name,
            token.scope.as_str(),
            to_micros(token.created),
            token.secret_hash,
            token.salt,
            token.expires.map(to_micros),
            token.restriction.as_ref().map(|r| r.repository.as_str()),
            token.restriction.as_ref().map(|r| r.run),
            token.flag_set,
        ],
    )?;
    Ok(())
}

pub(super) fn insert(conn: &Connection, session: &SessionRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (id_hash, token_id, csrf, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            session.id_hash,
            session.token_id,
            session.csrf,
            to_micros(session.created),
            to_micros(session.expires)
        ],
    )?;
    Ok(())
}

pub(super) fn get(conn: &Connection, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    let found = conn
        .query_row(
            "SELECT id_hash, token_id, csrf, created, expires FROM sessions WHERE id_hash = ?1",
            [id_hash],
            |r| {
                Ok(SessionRecord {
                    id_hash: r.get(0)?,
                    token_id: r.get(1)?,
                    csrf: r.get(2)?,
                    created: from_micros(r.get(3)?),
                    expires: from_micros(r.get(4)?),
                })
            },
        )
        .optional()?;
    Ok(found)
}
