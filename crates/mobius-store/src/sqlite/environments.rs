//! Environments' protection rules: one row per repository and environment, the lists as JSON.

use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, params};

use crate::{EnvironmentRecord, StoreError};

pub(super) fn put(conn: &Connection, environment: &EnvironmentRecord) -> Result<(), StoreError> {
    let json = |list: &[String]| serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()));
    conn.execute(
        "INSERT INTO environments (repository, name, require_review, reviewers, branches, updated, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (repository, name) DO UPDATE SET require_review = excluded.require_review,
           reviewers = excluded.reviewers, branches = excluded.branches, updated = excluded.updated,
           updated_by = excluded.updated_by",
        params![
            environment.repository,
            environment.name,
            environment.require_review,
            json(&environment.reviewers)?,
            json(&environment.branches)?,
            to_micros(environment.updated),
            environment.updated_by,
        ],
    )?;
    Ok(())
}

pub(super) fn delete(conn: &Connection, repository: &str, name: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM environments WHERE repository = ?1 AND name = ?2", params![repository, name])? > 0)
}

pub(super) fn list(conn: &Connection, repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT repository, name, require_review, reviewers, branches, updated, updated_by FROM environments
         WHERE ?1 IS NULL OR repository = ?1 ORDER BY repository, name",
    )?;
    let rows = statement.query_map([repository], |r| {
        let lists: (String, String) = (r.get(3)?, r.get(4)?);
        let record = EnvironmentRecord {
            repository: r.get(0)?,
            name: r.get(1)?,
            require_review: r.get(2)?,
            reviewers: Vec::new(),
            branches: Vec::new(),
            updated: from_micros(r.get(5)?),
            updated_by: r.get(6)?,
        };
        Ok((record, lists))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut record, (reviewers, branches)) = row?;
        let parse = |text: &str| {
            serde_json::from_str::<Vec<String>>(text).map_err(|_| {
                StoreError::Corrupt(format!("environment {} of {} has malformed rules", record.name, record.repository))
            })
        };
        record.reviewers = parse(&reviewers)?;
        record.branches = parse(&branches)?;
        out.push(record);
    }
    Ok(out)
}
