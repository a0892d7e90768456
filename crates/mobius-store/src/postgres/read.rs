//! Queries: the raw log, and the facts one measurement needs (see `crate::sqlite::read`).

use std::collections::HashMap;

use ::postgres::{GenericClient, IsolationLevel, Row};
use jiff::Timestamp;
use mobius_events::facts::{Deployment, DeploymentId, FactSet, Incident, PipelineRun, PipelineRunKind, ShippedChange};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{Origin, StoredEvent};

use super::facts::{DEPLOYMENT_COLUMNS, INCIDENT_COLUMNS, deployment_row, incident_row};
use crate::{EventQuery, Scope, StoreError, TokenRecord, TokenRestriction, TokenScope};

pub(super) fn events(c: &mut impl GenericClient, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
    let order = if q.newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT seq, id, source, type, subject, ts, received, origin, raw FROM events
         WHERE ts >= $5 AND ts < $6 AND seq > $1 AND seq < $7
           AND ($2::text IS NULL OR type = $2) AND ($3::text IS NULL OR origin = $3)
           AND ($8::text IS NULL OR left(subject, length($8)) = $8)
         ORDER BY seq {order} LIMIT $4"
    );
    let limit = i64::from(if q.limit == 0 { 100 } else { q.limit });
    let (from, to) = q.happened.map_or((i64::MIN, i64::MAX), |(from, to)| (to_micros(from), to_micros(to)));
    let subject = q.subject.as_deref().filter(|s| !s.is_empty());
    let rows = c.query(
        &sql,
        &[
            &q.after_seq.unwrap_or(0),
            &q.ty,
            &q.origin.map(Origin::as_str),
            &limit,
            &from,
            &to,
            &q.before_seq.unwrap_or(i64::MAX),
            &subject,
        ],
    )?;
    Ok(rows
        .iter()
        .map(|r| StoredEvent {
            seq: r.get(0),
            id: r.get(1),
            source: r.get(2),
            ty: r.get(3),
            subject: r.get(4),
            timestamp: from_micros(r.get(5)),
            received: from_micros(r.get(6)),
            origin: Origin::parse(r.get(7)).unwrap_or(Origin::Api),
            raw: r.get(8),
        })
        .collect())
}

/// Every service and environment with deployments or incidents, by a skip scan down the scope
/// indexes (each service, then each of its environments, is one `min()` seek), as SQLite does.
pub(super) fn scopes(c: &mut impl GenericClient) -> Result<Vec<Scope>, StoreError> {
    let rows = c.query(
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
        &[],
    )?;
    Ok(rows.iter().map(|r| Scope { service: r.get(0), environment: r.get(1) }).collect())
}

pub(super) fn deployments(c: &mut impl GenericClient, ids: &[DeploymentId]) -> Result<Vec<Deployment>, StoreError> {
    let sql = format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ANY($1) ORDER BY id");
    Ok(c.query(&sql, &[&ids])?.iter().map(deployment_row).collect())
}

pub(super) fn facts(
    c: &mut impl GenericClient,
    scope: &Scope,
    from: Timestamp,
    to: Timestamp,
) -> Result<FactSet, StoreError> {
    let (from, to) = (to_micros(from), to_micros(to));
    let window: [&(dyn ::postgres::types::ToSql + Sync); 4] = [&scope.service, &scope.environment, &from, &to];

    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
         WHERE service = $1 AND environment = $2 AND finished >= $3 AND finished < $4
         ORDER BY finished, id"
    );
    let deployments = c.query(&sql, &window)?.iter().map(deployment_row).collect();

    let changes = c
        .query(
            "SELECT dc.repository, dc.sha, ch.commit_time, ch.author_time, ch.message, dc.deployment_id
             FROM deployments d
             JOIN deployment_changes dc ON dc.deployment_id = d.id
             JOIN changes ch ON ch.repository = dc.repository AND ch.sha = dc.sha
             WHERE d.service = $1 AND d.environment = $2 AND d.finished >= $3 AND d.finished < $4
               AND d.outcome = 'success'
             ORDER BY d.finished, ch.commit_time, d.id, dc.repository, dc.sha",
            &window,
        )?
        .iter()
        .map(shipped_change)
        .collect();

    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents
         WHERE service = $1 AND environment = $2 AND (
             (detected >= $3 AND detected < $4) OR (resolved >= $3 AND resolved < $4)
             OR deployment_id IN (SELECT id FROM deployments
                                  WHERE service = $1 AND environment = $2 AND finished >= $3 AND finished < $4))
         ORDER BY detected, key"
    );
    let incidents = c.query(&sql, &window)?.iter().map(|r| incident_row(r).0).collect();

    let pipeline_runs = c
        .query(
            "SELECT key, kind, name, repository, revision, queued, started, finished, outcome FROM pipeline_runs
             WHERE revision IN (SELECT revision FROM deployments
                                WHERE service = $1 AND environment = $2 AND finished >= $3 AND finished < $4
                                  AND revision IS NOT NULL)
             ORDER BY queued, key",
            &window,
        )?
        .iter()
        .map(pipeline_run)
        .collect();

    Ok(FactSet { deployments, changes, incidents, pipeline_runs })
}

/// Ties of finish and commit time are broken by deployment and commit, so that a scope's changes
/// come in the same order read alone or with its environment's.
fn shipped_change(r: &Row) -> ShippedChange {
    ShippedChange {
        repository: r.get(0),
        sha: r.get(1),
        commit_time: from_micros(r.get(2)),
        author_time: r.get::<_, Option<i64>>(3).map(from_micros),
        message: r.get(4),
        deployment_id: r.get(5),
    }
}

fn pipeline_run(r: &Row) -> PipelineRun {
    PipelineRun {
        key: r.get(0),
        kind: if r.get::<_, &str>(1) == "job" { PipelineRunKind::Job } else { PipelineRunKind::Run },
        name: r.get(2),
        repository: r.get(3),
        revision: r.get(4),
        queued: r.get::<_, Option<i64>>(5).map(from_micros),
        started: r.get::<_, Option<i64>>(6).map(from_micros),
        finished: r.get::<_, Option<i64>>(7).map(from_micros),
        outcome: r.get(8),
    }
}

/// The facts of every scope of `environment` in one repeatable-read transaction (one snapshot,
/// so no append lands between two scopes), with one query per kind of fact for them all rather
/// than one per scope: each gives every scope's rows, in [`facts`]'s order within a scope.
pub(super) fn facts_of_environment(
    c: &mut ::postgres::Client,
    environment: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<(Scope, FactSet)>, StoreError> {
    let mut snapshot = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
    let mut out: Vec<(Scope, FactSet)> = scopes(&mut snapshot)?
        .into_iter()
        .filter(|s| s.environment == environment)
        .map(|scope| (scope, FactSet::default()))
        .collect();
    let index: HashMap<String, usize> = out.iter().enumerate().map(|(i, (s, _))| (s.service.clone(), i)).collect();
    let (from, to) = (to_micros(from), to_micros(to));
    let window: [&(dyn ::postgres::types::ToSql + Sync); 3] = [&environment, &from, &to];

    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
         WHERE environment = $1 AND finished >= $2 AND finished < $3
         ORDER BY service, finished, id"
    );
    for row in snapshot.query(&sql, &window)? {
        let deployment = deployment_row(&row);
        if let Some(i) = index.get(&deployment.service) {
            out[*i].1.deployments.push(deployment);
        }
    }

    let rows = snapshot.query(
        "SELECT dc.repository, dc.sha, ch.commit_time, ch.author_time, ch.message, dc.deployment_id, d.service
         FROM deployments d
         JOIN deployment_changes dc ON dc.deployment_id = d.id
         JOIN changes ch ON ch.repository = dc.repository AND ch.sha = dc.sha
         WHERE d.environment = $1 AND d.finished >= $2 AND d.finished < $3 AND d.outcome = 'success'
         ORDER BY d.service, d.finished, ch.commit_time, d.id, dc.repository, dc.sha",
        &window,
    )?;
    for row in rows {
        if let Some(i) = index.get(row.get::<_, &str>(6)) {
            out[*i].1.changes.push(shipped_change(&row));
        }
    }

    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i
         WHERE environment = $1 AND (
             (detected >= $2 AND detected < $3) OR (resolved >= $2 AND resolved < $3)
             OR EXISTS (SELECT 1 FROM deployments d
                        WHERE d.id = i.deployment_id AND d.service = i.service AND d.environment = $1
                          AND d.finished >= $2 AND d.finished < $3))
         ORDER BY service, detected, key"
    );
    for row in snapshot.query(&sql, &window)? {
        let (incident, _cause) = incident_row(&row);
        if let Some(i) = index.get(&incident.service) {
            out[*i].1.incidents.push(incident);
        }
    }

    // A run is a scope's once however many of its deployments were of the run's revision.
    let rows = snapshot.query(
        "SELECT p.key, p.kind, p.name, p.repository, p.revision, p.queued, p.started, p.finished, p.outcome, d.service
         FROM pipeline_runs p
         JOIN (SELECT DISTINCT service, revision FROM deployments
               WHERE environment = $1 AND finished >= $2 AND finished < $3 AND revision IS NOT NULL) d
           ON p.revision = d.revision
         ORDER BY d.service, p.queued, p.key",
        &window,
    )?;
    for row in rows {
        if let Some(i) = index.get(row.get::<_, &str>(9)) {
            out[*i].1.pipeline_runs.push(pipeline_run(&row));
        }
    }
    snapshot.commit()?;
    Ok(out)
}

/// Every incident, newest first.
pub(super) fn incidents(c: &mut impl GenericClient) -> Result<Vec<Incident>, StoreError> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY detected DESC, key");
    Ok(c.query(&sql, &[])?.iter().map(|r| incident_row(r).0).collect())
}

/// Every token, oldest first (with their secrets' hashes, which never leave the server).
pub(super) fn tokens(c: &mut impl GenericClient) -> Result<Vec<TokenRecord>, StoreError> {
    c.query(&format!("{TOKEN_COLUMNS} ORDER BY created, id"), &[])?.iter().map(token_row).collect()
}

/// The token with this id, or the token made before salts with this unsalted hash.
pub(super) fn token(c: &mut impl GenericClient, by: TokenKey<'_>) -> Result<Option<TokenRecord>, StoreError> {
    let (sql, key) = match by {
        TokenKey::Id(id) => (format!("{TOKEN_COLUMNS} WHERE id = $1"), id),
        TokenKey::LegacyHash(hash) => (format!("{TOKEN_COLUMNS} WHERE secret_sha256 = $1 AND salt = ''"), hash),
    };
    c.query_opt(&sql, &[&key])?.as_ref().map(token_row).transpose()
}

/// How a token is looked up.
pub(super) enum TokenKey<'a> {
    Id(&'a str),
    LegacyHash(&'a str),
}

const TOKEN_COLUMNS: &str =
    "SELECT id, name, scope, created, secret_sha256, salt, expires, repository, run_id, flag_set FROM tokens";

fn token_row(r: &Row) -> Result<TokenRecord, StoreError> {
    let (id, scope): (String, &str) = (r.get(0), r.get(2));
    let restriction = match (r.get::<_, Option<String>>(7), r.get::<_, Option<i64>>(8)) {
        (Some(repository), Some(run)) => Some(TokenRestriction { repository, run }),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt(format!("token {id} is restricted to a repository or a run alone"))),
    };
    let Some(scope) = TokenScope::parse(scope) else {
        return Err(StoreError::Corrupt(format!("token {id} has scope `{scope}`")));
    };
    Ok(TokenRecord {
        id,
        name: r.get(1),
        scope,
        created: from_micros(r.get(3)),
        secret_hash: r.get(4),
        salt: r.get(5),
        expires: r.get::<_, Option<i64>>(6).map(from_micros),
        restriction,
        flag_set: r.get(9),
    })
}
