//! Queries: the raw log, and the facts one measurement needs, each in a single indexed pass.

use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident, PipelineRun, PipelineRunKind, ShippedChange};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{Origin, StoredEvent};
use rusqlite::{Connection, OptionalExtension, params};

use super::facts::{DEPLOYMENT_COLUMNS, INCIDENT_COLUMNS, deployment_row, incident_row};
use crate::{EventQuery, Scope, StoreError, TokenRecord, TokenRestriction, TokenScope};

pub(super) fn events(conn: &Connection, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
    // A time-bounded read goes through the `ts` index (then sorts the few rows by `seq`);
    // any other pages through the log in `seq` order, either way.
    let index = if q.happened.is_some() { "INDEXED BY events_ts" } else { "" };
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, id, source, type, subject, ts, received, origin, raw FROM events {index}
         WHERE ts >= ?5 AND ts < ?6 AND seq > ?1 AND seq < ?7
           AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR origin = ?3)
           AND (?8 IS NULL OR substr(subject, 1, length(?8)) = ?8)
         ORDER BY seq {order} LIMIT ?4"
    ))?;
    let limit = if q.limit == 0 { 100 } else { q.limit };
    let (from, to) = q.happened.map_or((i64::MIN, i64::MAX), |(from, to)| (to_micros(from), to_micros(to)));
    let params = params![
        q.after_seq.unwrap_or(0),
        q.ty,
        q.origin.map(Origin::as_str),
        limit,
        from,
        to,
        q.before_seq.unwrap_or(i64::MAX),
        q.subject.as_deref().filter(|s| !s.is_empty()),
    ];
    let rows = stmt.query_map(params, |r| {
        let origin: String = r.get(7)?;
        Ok(StoredEvent {
            seq: r.get(0)?,
            id: r.get(1)?,
            source: r.get(2)?,
            ty: r.get(3)?,
            subject: r.get(4)?,
            timestamp: from_micros(r.get(5)?),
            received: from_micros(r.get(6)?),
            origin: Origin::parse(&origin).unwrap_or(Origin::Api),
            raw: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every service and environment with deployments or incidents. Not `SELECT DISTINCT`, which
/// reads every deployment (175,000 of them in the benchmark's two years, some 15 ms): a skip
/// scan down the scope indexes instead — each service, then each of its environments, is one
/// `min()` seek — so the cost grows with the number of scopes, not of facts.
pub(super) fn scopes(conn: &Connection) -> Result<Vec<Scope>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE
           d_service(service) AS (
             SELECT min(service) FROM deployments
             UNION ALL
             SELECT (SELECT min(service) FROM deployments WHERE service > d.service)
             FROM d_service d WHERE d.service IS NOT NULL),
           d_scope(service, environment) AS (
             SELECT service, (SELECT min(environment) FROM deployments WHERE service = d.service)
             FROM d_service d WHERE d.service IS NOT NULL
             UNION ALL
             SELECT service, (SELECT min(environment) FROM deployments
                              WHERE service = d.service AND environment > d.environment)
             FROM d_scope d WHERE d.environment IS NOT NULL),
           i_service(service) AS (
             SELECT min(service) FROM incidents
             UNION ALL
             SELECT (SELECT min(service) FROM incidents WHERE service > i.service)
             FROM i_service i WHERE i.service IS NOT NULL),
           i_scope(service, environment) AS (
             SELECT service, (SELECT min(environment) FROM incidents WHERE service = i.service)
             FROM i_service i WHERE i.service IS NOT NULL
             UNION ALL
             SELECT service, (SELECT min(environment) FROM incidents
                              WHERE service = i.service AND environment > i.environment)
             FROM i_scope i WHERE i.environment IS NOT NULL)
         SELECT service, environment FROM d_scope WHERE environment IS NOT NULL
         UNION SELECT service, environment FROM i_scope WHERE environment IS NOT NULL
         ORDER BY 1, 2",
    )?;
    let rows = stmt.query_map([], |r| Ok(Scope { service: r.get(0)?, environment: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn deployments(conn: &Connection, ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError> {
    // One statement per call, the ids as a JSON array: no SQL built from their count.
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
    );
    let ids = format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([ids], deployment_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn facts(conn: &Connection, scope: &Scope, from: Timestamp, to: Timestamp) -> Result<FactSet, StoreError> {
    let window = params![scope.service, scope.environment, to_micros(from), to_micros(to)];

    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
         WHERE service = ?1 AND environment = ?2 AND finished >= ?3 AND finished < ?4
         ORDER BY finished, id"
    );
    let deployments = conn.prepare_cached(&sql)?.query_map(window, deployment_row)?.collect::<Result<Vec<_>, _>>()?;

    let mut stmt = conn.prepare_cached(
        "SELECT r.name, dc.sha, c.commit_time, c.author_time, c.message, dc.deployment_id
         FROM deployments d
         JOIN deployment_changes dc ON dc.deployment_id = d.id
         JOIN changes c ON c.repository = dc.repository AND c.sha = dc.sha
         JOIN fact_repositories r ON r.id = dc.repository
         WHERE d.service = ?1 AND d.environment = ?2 AND d.finished >= ?3 AND d.finished < ?4
           AND d.outcome = 'success'
         ORDER BY d.finished, c.commit_time",
    )?;
    let changes = stmt
        .query_map(window, |r| {
            Ok(ShippedChange {
                repository: r.get(0)?,
                sha: r.get(1)?,
                commit_time: from_micros(r.get(2)?),
                author_time: r.get::<_, Option<i64>>(3)?.map(from_micros),
                message: r.get(4)?,
                deployment_id: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents
         WHERE service = ?1 AND environment = ?2 AND (
             (detected >= ?3 AND detected < ?4) OR (resolved >= ?3 AND resolved < ?4)
             OR deployment_id IN (SELECT id FROM deployments
                                  WHERE service = ?1 AND environment = ?2 AND finished >= ?3 AND finished < ?4))
         ORDER BY detected, key"
    );
    let incidents = conn
        .prepare_cached(&sql)?
        .query_map(window, incident_row)?
        .map(|row| row.map(|(incident, _cause)| incident))
        .collect::<Result<Vec<_>, _>>()?;

    let mut stmt = conn.prepare_cached(
        "SELECT key, kind, name, repository, revision, queued, started, finished, outcome FROM pipeline_runs
         WHERE revision IN (SELECT revision FROM deployments
                            WHERE service = ?1 AND environment = ?2 AND finished >= ?3 AND finished < ?4
                              AND revision IS NOT NULL)
         ORDER BY queued, key",
    )?;
    let pipeline_runs = stmt
        .query_map(window, |r| {
            Ok(PipelineRun {
                key: r.get(0)?,
                kind: if r.get::<_, String>(1)? == "job" { PipelineRunKind::Job } else { PipelineRunKind::Run },
                name: r.get(2)?,
                repository: r.get(3)?,
                revision: r.get(4)?,
                queued: r.get::<_, Option<i64>>(5)?.map(from_micros),
                started: r.get::<_, Option<i64>>(6)?.map(from_micros),
                finished: r.get::<_, Option<i64>>(7)?.map(from_micros),
                outcome: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    Ok(FactSet { deployments, changes, incidents, pipeline_runs })
}

/// The facts of every scope of `environment`, in one read transaction: each scope's are read
/// by [`facts`] itself (its prepared statements, cached on this connection), so they are
/// exactly what a read of that scope alone gives, and no append lands between two scopes.
pub(super) fn facts_of_environment(
    conn: &Connection,
    environment: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Scope, FactSet)>, StoreError> {
    // A reader never writes: the transaction only pins one snapshot of the database.
    let snapshot = conn.unchecked_transaction()?;
    let scopes = scopes(&snapshot)?.into_iter().filter(|s| s.environment == environment);
    let facts = scopes
        .map(|scope| {
            let set = facts(&snapshot, &scope, from, to)?;
            Ok((scope, set))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    snapshot.finish()?;
    Ok(facts)
}

/// Every incident, newest first.
pub(super) fn incidents(conn: &Connection) -> Result<Vec<Incident>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY detected DESC, key");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], incident_row)?;
    Ok(rows.map(|row| row.map(|(incident, _cause)| incident)).collect::<Result<_, _>>()?)
}

/// Every token, oldest first (with their secrets' hashes, which never leave the server).
pub(super) fn tokens(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{TOKEN_COLUMNS} ORDER BY created, id"))?;
    let rows = stmt.query_map([], token_row)?;
    rows.map(|row| row?).collect()
}

/// The token with this id, or the token made before salts with this unsalted hash.
pub(super) fn token(conn: &Connection, by: TokenKey<'_>) -> Result<Option<TokenRecord>, StoreError> {
    let (sql, key) = match by {
        TokenKey::Id(id) => (format!("{TOKEN_COLUMNS} WHERE id = ?1"), id),
        TokenKey::LegacyHash(hash) => (format!("{TOKEN_COLUMNS} WHERE secret_sha256 = ?1 AND salt = ''"), hash),
    };
    conn.prepare_cached(&sql)?.query_row([key], token_row).optional()?.transpose()
}

/// How a token is looked up.
pub(super) enum TokenKey<'a> {
    Id(&'a str),
    LegacyHash(&'a str),
}

const TOKEN_COLUMNS: &str =
    "SELECT id, name, scope, created, secret_sha256, salt, expires, repository, run_id, flag_set FROM tokens";

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<TokenRecord, StoreError>> {
    let (id, name, scope): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (created, secret_hash, salt): (i64, String, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
    let (expires, repository, run): (Option<i64>, Option<String>, Option<i64>) = (r.get(6)?, r.get(7)?, r.get(8)?);
    let restriction = match (repository, run) {
        (Some(repository), Some(run)) => Some(TokenRestriction { repository, run }),
        (None, None) => None,
        _ => return Ok(Err(StoreError::Corrupt(format!("token {id} is restricted to a repository or a run alone")))),
    };
    Ok(match TokenScope::parse(&scope) {
        Some(scope) => Ok(TokenRecord {
            id,
            name,
            scope,
            created: from_micros(created),
            secret_hash,
            salt,
            expires: expires.map(from_micros),
            restriction,
            flag_set: r.get(9)?,
        }),
        None => Err(StoreError::Corrupt(format!("token {id} has scope `{scope}`"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The skip scan finds exactly what `SELECT DISTINCT` would, names that sort oddly too
    /// (the conformance suite checks the order on both backends; this, the SQL itself).
    #[test]
    fn scopes_are_every_distinct_service_and_environment_in_order() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join("mobius.db")).unwrap();
        assert_eq!(scopes(&conn).unwrap(), Vec::new(), "an empty store has none");
        let services = ["web", "a b", "B", "api", "é", "<script>", "api-2"];
        let environments = ["production", "staging", "", "Prod"];
        let mut n = 0;
        for (i, service) in services.iter().enumerate() {
            for environment in environments.iter().skip(i % 3) {
                for outcome in ["success", "failure"] {
                    n += 1;
                    conn.execute(
                        "INSERT INTO deployments (key, service, environment, started, finished, outcome, changes_from)
                         VALUES (?1, ?2, ?3, ?4, ?4, ?5, 'unknown')",
                        params![format!("d{n}"), service, environment, n, outcome],
                    )
                    .unwrap();
                }
            }
        }
        for (key, service, environment) in
            [("i1", "only-incidents", "production"), ("i2", "web", "dr"), ("i3", "web", "staging")]
        {
            conn.execute(
                "INSERT INTO incidents (key, service, environment, title, detected, attribution)
                 VALUES (?1, ?2, ?3, 't', 0, 'unattributed')",
                params![key, service, environment],
            )
            .unwrap();
        }
        let distinct: Vec<Scope> = conn
            .prepare(
                "SELECT service, environment FROM deployments UNION SELECT service, environment FROM incidents ORDER BY 1, 2",
            )
            .unwrap()
            .query_map([], |r| Ok(Scope { service: r.get(0)?, environment: r.get(1)? }))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(distinct.len() > 20, "{distinct:?}");
        assert_eq!(scopes(&conn).unwrap(), distinct);
    }
}
