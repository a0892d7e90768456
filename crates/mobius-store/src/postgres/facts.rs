//! [`FactTxn`] over an open PostgreSQL write transaction: the SQL behind materialisation, the
//! same statements as SQLite's (`crate::sqlite::facts`) in PostgreSQL's dialect, with the writes
//! nothing waits for sent many rows at a time ([`PgFacts`]).

mod held;

use std::collections::HashMap;

use ::postgres::types::ToSql;
use ::postgres::{Row, Statement, Transaction};
use jiff::Timestamp;
use mobius_events::facts::{Attribution, ChangeSource, Deployment, DeploymentId, Incident};
use mobius_events::materialise::{FactError, FactTxn, NewDeployment, StreamPosition};
use mobius_events::observation::{CauseHint, Commit, DeploymentOutcome, Merge, PipelineRunObserved, RollbackObserved};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{NewEvent, materialise};

use self::held::{Known, Pending, Table};
use crate::{IngestContext, StoreError};

type R<T> = Result<T, FactError>;

type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Materialisation's reads and writes on a write transaction.
pub(super) struct PgFacts<'a, 'c> {
    pub(super) tx: &'a mut Transaction<'c>,
    /// Statements prepared in this append, by their SQL: each is parsed once per batch, not
    /// once per event (a round trip each).
    statements: &'a mut HashMap<String, Statement>,
    /// Writes not sent yet.
    pending: Pending,
    /// What a batch of an import let be known before it was materialised.
    known: Known,
}

impl<'a, 'c> PgFacts<'a, 'c> {
    pub(super) fn new(tx: &'a mut Transaction<'c>, statements: &'a mut HashMap<String, Statement>) -> Self {
        PgFacts { tx, statements, pending: Pending::default(), known: Known::default() }
    }

    /// Materialises one event's facts.
    pub(super) fn apply(&mut self, ctx: &IngestContext<'_>, event: &NewEvent) -> Result<(), StoreError> {
        materialise::apply(self, ctx.ancestry, &ctx.rules, &event.observations).map_err(StoreError::Facts)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, ::postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, ::postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }

    /// A read of `table`, after the writes held back for it.
    fn query(&mut self, table: Table, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, ::postgres::Error> {
        self.flush_table(table)?;
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params)
    }

    /// A read of `table` (if it is one writes are held back for), after those writes.
    fn query_opt(
        &mut self,
        table: Option<Table>,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, ::postgres::Error> {
        if let Some(table) = table {
            self.flush_table(table)?;
        }
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }

    fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row, ::postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }
}

pub(super) const DEPLOYMENT_COLUMNS: &str = "id, key, service, environment, repository, revision, artifact_id, \
     started, finished, outcome, rolled_back, changes_from";

pub(super) fn deployment_row(r: &Row) -> Deployment {
    Deployment {
        id: r.get(0),
        key: r.get(1),
        service: r.get(2),
        environment: r.get(3),
        repository: r.get(4),
        revision: r.get(5),
        artifact_id: r.get(6),
        started: from_micros(r.get(7)),
        finished: from_micros(r.get(8)),
        outcome: if r.get::<_, &str>(9) == "success" { DeploymentOutcome::Success } else { DeploymentOutcome::Failure },
        rolled_back: r.get::<_, Option<i64>>(10).map(from_micros),
        changes_from: match r.get::<_, &str>(11) {
            "git_ancestry" => ChangeSource::GitAncestry,
            "push_stream" => ChangeSource::PushStream,
            _ => ChangeSource::Unknown,
        },
    }
}

pub(super) const INCIDENT_COLUMNS: &str =
    "key, service, environment, title, detected, acknowledged, resolved, deployment_id, attribution, cause, severity";

pub(super) fn incident_row(r: &Row) -> (Incident, Option<CauseHint>) {
    let attribution = match r.get::<_, &str>(8) {
        "explicit_artifact" => Attribution::ExplicitArtifact,
        "explicit_commit" => Attribution::ExplicitCommit,
        "window" => Attribution::Window,
        _ => Attribution::Unattributed,
    };
    let cause: Option<&str> = r.get(9);
    let incident = Incident {
        key: r.get(0),
        service: r.get(1),
        environment: r.get(2),
        title: r.get(3),
        detected: from_micros(r.get(4)),
        acknowledged: r.get::<_, Option<i64>>(5).map(from_micros),
        resolved: r.get::<_, Option<i64>>(6).map(from_micros),
        deployment_id: r.get(7),
        attribution,
        severity: r.get(10),
    };
    (incident, cause.and_then(|c| serde_json::from_str(c).ok()))
}

fn as_str<T: serde::Serialize>(value: &T) -> String {
    // Unit enums serialise to a JSON string; strip its quotes.
    serde_json::to_string(value).unwrap_or_default().trim_matches('"').to_owned()
}

fn micros(ts: Option<Timestamp>) -> Option<i64> {
    ts.map(to_micros)
}

impl FactTxn for PgFacts<'_, '_> {
    fn insert_change(&mut self, repository: &str, c: &Commit) -> R<()> {
        let row =
            (repository.to_owned(), c.sha.clone(), to_micros(c.commit_time), micros(c.author_time), c.message.clone());
        self.pending.changes.push(row);
        Ok(())
    }

    fn append_push(&mut self, repository: &str, branch: &str, shas: &[&str]) -> R<()> {
        let rows = shas.iter().map(|sha| (repository.to_owned(), branch.to_owned(), (*sha).to_owned()));
        self.pending.pushes.extend(rows);
        Ok(())
    }

    fn stream_position(&mut self, repository: Option<&str>, sha: &str) -> R<Option<StreamPosition>> {
        let found = self.query_opt(
            Some(Table::PushStream),
            "SELECT repository, branch, position FROM push_stream
             WHERE sha = $1 AND ($2::text IS NULL OR repository = $2) ORDER BY position DESC LIMIT 1",
            &[&sha, &repository],
        )?;
        Ok(found.map(|r| StreamPosition { repository: r.get(0), branch: r.get(1), position: r.get(2) }))
    }

    fn stream_between(&mut self, repository: &str, branch: &str, after: Option<i64>, upto: i64) -> R<Vec<String>> {
        let rows = self.query(
            Table::PushStream,
            "SELECT sha FROM push_stream WHERE repository = $1 AND branch = $2 AND position > $3 AND position <= $4
             ORDER BY position",
            &[&repository, &branch, &after.unwrap_or(i64::MIN), &upto],
        )?;
        let mut shas: Vec<String> = Vec::new();
        for row in rows {
            let sha: String = row.get(0);
            // A commit pushed twice (to a branch, then again with a merge) counts once.
            if !shas.contains(&sha) {
                shas.push(sha);
            }
        }
        Ok(shas)
    }

    fn record_merge(&mut self, m: &Merge) -> R<()> {
        self.pending.merges.push(m.clone());
        Ok(())
    }

    fn merge(&mut self, repository: &str, merge_sha: &str) -> R<Option<Merge>> {
        Ok(self.merges(repository, &[merge_sha.to_owned()])?.pop().flatten())
    }

    fn merges(&mut self, repository: &str, shas: &[String]) -> R<Vec<Option<Merge>>> {
        if shas.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.query(
            Table::Merges,
            "SELECT merge_sha, source_branch, target_branch, merged_at FROM merges
             WHERE repository = $1 AND merge_sha = ANY($2)",
            &[&repository, &shas],
        )?;
        let found: HashMap<String, Merge> = rows
            .iter()
            .map(|r| {
                let merge = Merge {
                    repository: repository.to_owned(),
                    merge_sha: r.get(0),
                    source_branch: r.get(1),
                    target_branch: r.get(2),
                    merged_at: from_micros(r.get(3)),
                };
                (merge.merge_sha.clone(), merge)
            })
            .collect();
        Ok(shas.iter().map(|sha| found.get(sha).cloned()).collect())
    }

    fn record_artifact(&mut self, artifact_id: &str, repository: Option<&str>, revision: &str) -> R<()> {
        let row = (artifact_id.to_owned(), repository.map(str::to_owned), revision.to_owned());
        self.pending.artifacts.push(row);
        Ok(())
    }

    fn artifact_revision(&mut self, artifact_id: &str) -> R<Option<(Option<String>, String)>> {
        // A write held back sets the whole row: the last one is what a read would find.
        if let Some((_, repository, revision)) =
            self.pending.artifacts.iter().rev().find(|(id, _, _)| id == artifact_id)
        {
            return Ok(Some((repository.clone(), revision.clone())));
        }
        let found = self.query_opt(
            Some(Table::Artifacts),
            "SELECT repository, revision FROM artifacts WHERE artifact_id = $1",
            &[&artifact_id],
        )?;
        Ok(found.map(|r| (r.get(0), r.get(1))))
    }

    fn deployment_exists(&mut self, key: &str) -> R<bool> {
        if let Some(stored) = self.known.deployments.get(key) {
            return Ok(*stored);
        }
        Ok(self.query_opt(None, "SELECT 1 FROM deployments WHERE key = $1", &[&key])?.is_some())
    }

    fn insert_deployment(&mut self, d: &NewDeployment<'_>) -> R<DeploymentId> {
        let o = d.observed;
        let row = self.query_one(
            "INSERT INTO deployments (key, service, environment, repository, revision, artifact_id, started,
             finished, outcome, changes_from) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &o.key,
                &o.service,
                &o.environment,
                &d.repository,
                &d.revision,
                &o.artifact_id,
                &to_micros(o.started),
                &to_micros(o.finished),
                &as_str(&o.outcome),
                &as_str(&d.changes_from),
            ],
        )?;
        if let Some(stored) = self.known.deployments.get_mut(&o.key) {
            *stored = true;
        }
        Ok(row.get(0))
    }

    fn last_success(&mut self, service: &str, environment: &str, at: Timestamp) -> R<Option<Deployment>> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments
             WHERE service = $1 AND environment = $2 AND outcome = 'success' AND finished <= $3
             ORDER BY finished DESC, id DESC LIMIT 1"
        );
        let found = self.query_opt(None, &sql, &[&service, &environment, &to_micros(at)])?;
        Ok(found.as_ref().map(deployment_row))
    }

    fn ship(
        &mut self,
        deployment: DeploymentId,
        service: &str,
        environment: &str,
        repository: &str,
        shas: &[String],
    ) -> R<()> {
        let rows = shas
            .iter()
            .map(|sha| (service.to_owned(), environment.to_owned(), repository.to_owned(), sha.clone(), deployment));
        self.pending.shipped.extend(rows);
        Ok(())
    }

    fn mark_rolled_back(&mut self, deployment: DeploymentId, at: Timestamp) -> R<()> {
        self.execute(
            "UPDATE deployments SET rolled_back = $2 WHERE id = $1 AND rolled_back IS NULL",
            &[&deployment, &to_micros(at)],
        )?;
        Ok(())
    }

    fn record_rollback(&mut self, r: &RollbackObserved, failed: Option<DeploymentId>) -> R<bool> {
        let inserted = self.execute(
            "INSERT INTO rollbacks (key, service, environment, artifact_id, at, deployment_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[&r.key, &r.service, &r.environment, &r.artifact_id, &to_micros(r.at), &failed],
        )?;
        Ok(inserted == 1)
    }

    fn deployment_of_artifact(
        &mut self,
        service: &str,
        environment: &str,
        artifact_id: &str,
        at: Timestamp,
    ) -> R<Option<DeploymentId>> {
        let found = self.query_opt(
            None,
            "SELECT id FROM deployments WHERE artifact_id = $3 AND service = $1 AND environment = $2
             AND outcome = 'success' AND finished <= $4 ORDER BY finished DESC LIMIT 1",
            &[&service, &environment, &artifact_id, &to_micros(at)],
        )?;
        Ok(found.map(|r| r.get(0)))
    }

    fn deployment_shipping(&mut self, service: &str, environment: &str, sha: &str) -> R<Option<DeploymentId>> {
        // Hex shas sort below '~' (the columns compare bytewise), so [prefix, prefix~) is every
        // sha starting with the prefix, through the primary key.
        let prefix = sha.to_ascii_lowercase();
        let found = self.query_opt(
            Some(Table::DeploymentChanges),
            "SELECT deployment_id FROM deployment_changes
             WHERE service = $1 AND environment = $2 AND sha >= $3 AND sha < $3 || '~'
             ORDER BY deployment_id LIMIT 1",
            &[&service, &environment, &prefix],
        )?;
        Ok(found.map(|r| r.get(0)))
    }

    fn incident(&mut self, key: &str) -> R<Option<(Incident, Option<CauseHint>)>> {
        let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE key = $1");
        Ok(self.query_opt(None, &sql, &[&key])?.as_ref().map(incident_row))
    }

    fn upsert_incident(&mut self, i: &Incident, cause: Option<&CauseHint>) -> R<()> {
        let explicit = matches!(i.attribution, Attribution::ExplicitArtifact | Attribution::ExplicitCommit);
        let state = (i.service.clone(), i.environment.clone(), to_micros(i.detected), explicit);
        self.known.incidents.insert(i.key.clone(), state);
        let cause = cause.map(serde_json::to_string).transpose()?;
        self.execute(
            "INSERT INTO incidents (key, service, environment, title, detected, acknowledged, resolved,
             deployment_id, attribution, cause, severity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (key) DO UPDATE SET title = excluded.title, detected = excluded.detected,
             acknowledged = excluded.acknowledged, resolved = excluded.resolved,
             deployment_id = excluded.deployment_id, attribution = excluded.attribution, cause = excluded.cause,
             severity = excluded.severity",
            &[
                &i.key,
                &i.service,
                &i.environment,
                &i.title,
                &to_micros(i.detected),
                &micros(i.acknowledged),
                &micros(i.resolved),
                &i.deployment_id,
                &as_str(&i.attribution),
                &cause,
                &i.severity,
            ],
        )?;
        Ok(())
    }

    fn incidents_open_to_attribution(
        &mut self,
        service: &str,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> R<Vec<(Incident, Option<CauseHint>)>> {
        if self.known.open_incidents(service, environment, to_micros(from), to_micros(to)) == Some(false) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE service = $1 AND environment = $2 AND detected >= $3 AND detected <= $4
             AND attribution NOT IN ('explicit_artifact', 'explicit_commit')"
        );
        let statement = self.statement(&sql)?;
        let rows = self.tx.query(&statement, &[&service, &environment, &to_micros(from), &to_micros(to)])?;
        Ok(rows.iter().map(incident_row).collect())
    }

    fn upsert_pipeline_run(&mut self, run: &PipelineRunObserved) -> R<()> {
        self.pending.pipeline_runs.push(run.clone());
        Ok(())
    }
}
