//! Versioned migrations, tracked in `schema_migrations`: each applied version is a row.
//! Never edit a released migration: add the next one.

use ::postgres::Client;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_leases.sql"),
    include_str!("migrations/0003_agents.sql"),
    include_str!("migrations/0004_rollout_commands.sql"),
    include_str!("migrations/0005_transfers.sql"),
    include_str!("migrations/0006_deployments_by_environment.sql"),
    include_str!("migrations/0007_flag_sets.sql"),
    include_str!("migrations/0008_token_flag_set.sql"),
    include_str!("migrations/0009_run_queue.sql"),
];

/// Any number, the same in every process: migrations of one database never run side by side.
const MIGRATION_LOCK: i64 = 0x6d6f_6269_7573_0001;

/// Brings the schema up to date in one transaction; refuses a database written by a newer
/// build.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
    )?;
    let found: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])?.get(0);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let now = mobius_events::time::to_micros(jiff::Timestamp::now());
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)", &[&(index as i64 + 1), &now])?;
    }
    tx.commit()?;
    Ok(())
}
