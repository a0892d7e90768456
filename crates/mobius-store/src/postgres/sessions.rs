//! Console sessions: SHA-256 of the cookie, never the cookie (see `mobius_app::sessions`).

use ::postgres::{GenericClient, Transaction};
use mobius_events::time::{from_micros, to_micros};

use crate::{SessionRecord, StoreError};

pub(super) fn insert(tx: &mut Transaction<'_>, session: &SessionRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sessions (id_hash, token_id, csrf, created, expires) VALUES ($1, $2, $3, $4, $5)",
        &[&session.id_hash, &session.token_id, &session.csrf, &to_micros(session.created), &to_micros(session.expires)],
    )?;
    Ok(())
}

pub(super) fn get(c: &mut impl GenericClient, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    let found =
        c.query_opt("SELECT id_hash, token_id, csrf, created, expires FROM sessions WHERE id_hash = $1", &[&id_hash])?;
    Ok(found.map(|r| SessionRecord {
        id_hash: r.get(0),
        token_id: r.get(1),
        csrf: r.get(2),
        created: from_micros(r.get(3)),
        expires: from_micros(r.get(4)),
    }))
}
