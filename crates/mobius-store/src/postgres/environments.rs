//! Environments' protection rules: one row per repository and environment, the lists as JSON.

use ::postgres::{GenericClient, Transaction};
use mobius_events::time::{from_micros, to_micros};

use crate::{EnvironmentRecord, StoreError};

pub(super) fn put(tx: &mut Transaction<'_>, environment: &EnvironmentRecord) -> Result<(), StoreError> {
    let json = |list: &[String]| serde_json::to_string(list).map_err(|e| StoreError::Corrupt(e.to_string()));
    tx.execute(
        "INSERT INTO environments (repository, name, require_review, reviewers, branches, updated, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (repository, name) DO UPDATE SET require_review = excluded.require_review,
           reviewers = excluded.reviewers, branches = excluded.branches, updated = excluded.updated,
           updated_by = excluded.updated_by",
        &[
            &environment.repository,
            &environment.name,
            &environment.require_review,
            &json(&environment.reviewers)?,
            &json(&environment.branches)?,
            &to_micros(environment.updated),
            &environment.updated_by,
        ],
    )?;
    Ok(())
}

pub(super) fn delete(tx: &mut Transaction<'_>, repository: &str, name: &str) -> Result<bool, StoreError> {
    Ok(tx.execute("DELETE FROM environments WHERE repository = $1 AND name = $2", &[&repository, &name])? > 0)
}

pub(super) fn list(c: &mut impl GenericClient, repository: Option<&str>) -> Result<Vec<EnvironmentRecord>, StoreError> {
    let rows = c.query(
        "SELECT repository, name, require_review, reviewers, branches, updated, updated_by FROM environments
         WHERE $1::text IS NULL OR repository = $1 ORDER BY repository, name",
        &[&repository],
    )?;
    rows.iter()
        .map(|r| {
            let (repository, name): (String, String) = (r.get(0), r.get(1));
            let parse = |text: &str| {
                serde_json::from_str::<Vec<String>>(text)
                    .map_err(|_| StoreError::Corrupt(format!("environment {name} of {repository} has malformed rules")))
            };
            let (reviewers, branches) = (parse(r.get(3))?, parse(r.get(4))?);
            Ok(EnvironmentRecord {
                repository,
                name,
                require_review: r.get(2),
                reviewers,
                branches,
                updated: from_micros(r.get(5)),
                updated_by: r.get(6),
            })
        })
        .collect()
}
