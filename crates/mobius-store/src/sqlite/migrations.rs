//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each migration is a SQL file applied once, in order, in its own transaction. Never edit a
//! released migration: add the next one.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_event_log.sql"),
    include_str!("migrations/0002_runs.sql"),
    include_str!("migrations/0003_rollouts.sql"),
    include_str!("migrations/0004_sli.sql"),
    include_str!("migrations/0005_state.sql"),
    include_str!("migrations/0006_incident_severity.sql"),
    include_str!("migrations/0007_events_ts.sql"),
    include_str!("migrations/0008_token_salt.sql"),
    include_str!("migrations/0009_secrets.sql"),
    include_str!("migrations/0010_forge_statuses.sql"),
    include_str!("migrations/0011_environments.sql"),
    include_str!("migrations/0012_repository_credentials.sql"),
    include_str!("migrations/0013_run_trigger.sql"),
    include_str!("migrations/0014_sessions.sql"),
    include_str!("migrations/0015_leases.sql"),
    include_str!("migrations/0016_agents.sql"),
    include_str!("migrations/0017_rollout_commands.sql"),
    include_str!("migrations/0018_transfers.sql"),
    include_str!("migrations/0019_flag_sets.sql"),
    include_str!("migrations/0020_token_flag_set.sql"),
    include_str!("migrations/0021_run_queue.sql"),
    include_str!("migrations/0022_narrow_fact_keys.sql"),
];

/// Brings the schema up to date; refuses a database written by a newer build.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
