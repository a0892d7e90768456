//! [`FactTxn`] over an open SQLite write transaction: the SQL behind materialisation, and the
//! event's own insert before it ([`Appender`]).

use jiff::Timestamp;
use mobius_events::facts::{Attribution, ChangeSource, Deployment, DeploymentId, Incident};
use mobius_events::materialise::{FactError, FactTxn, NewDeployment, StreamPosition};
use mobius_events::observation::{
    CauseHint, Commit, DeploymentOutcome, Merge, PipelineRunKind, PipelineRunObserved, RollbackObserved,
};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{AppendStatus, NewEvent, Origin, materialise};
use rusqlite::{Connection, OptionalExtension, Row, Statement, params};

use super::keys::{Interned, Name, event_key};
use crate::{IngestContext, StoreError};

type R<T> = Result<T, FactError>;

macro_rules! deployment_columns {
    () => {
        "id, key, service, environment, repository, revision, artifact_id, started, finished, outcome, rolled_back, \
         changes_from"
    };
}

macro_rules! incident_columns {
    () => {
        "key, service, environment, title, detected, acknowledged, resolved, deployment_id, attribution, cause, severity"
    };
}

pub(super) const DEPLOYMENT_COLUMNS: &str = deployment_columns!();

pub(super) fn deployment_row(r: &Row<'_>) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        id: r.get(0)?,
        key: r.get(1)?,
        service: r.get(2)?,
        environment: r.get(3)?,
        repository: r.get(4)?,
        revision: r.get(5)?,
        artifact_id: r.get(6)?,
        started: from_micros(r.get(7)?),
        finished: from_micros(r.get(8)?),
        outcome: if r.get::<_, String>(9)? == "success" {
            DeploymentOutcome::Success
        } else {
            DeploymentOutcome::Failure
        },
        rolled_back: r.get::<_, Option<i64>>(10)?.map(from_micros),
        changes_from: match r.get::<_, String>(11)?.as_str() {
            "git_ancestry" => ChangeSource::GitAncestry,
            "push_stream" => ChangeSource::PushStream,
            _ => ChangeSource::Unknown,
        },
    })
}

pub(super) const INCIDENT_COLUMNS: &str = incident_columns!();

pub(super) fn incident_row(r: &Row<'_>) -> rusqlite::Result<(Incident, Option<CauseHint>)> {
    let attribution = match r.get::<_, String>(8)?.as_str() {
        "explicit_artifact" => Attribution::ExplicitArtifact,
        "explicit_commit" => Attribution::ExplicitCommit,
        "window" => Attribution::Window,
        _ => Attribution::Unattributed,
    };
    let cause: Option<String> = r.get(9)?;
    let incident = Incident {
        key: r.get(0)?,
        service: r.get(1)?,
        environment: r.get(2)?,
        title: r.get(3)?,
        detected: from_micros(r.get(4)?),
        acknowledged: r.get::<_, Option<i64>>(5)?.map(from_micros),
        resolved: r.get::<_, Option<i64>>(6)?.map(from_micros),
        deployment_id: r.get(7)?,
        attribution,
        severity: r.get(10)?,
    };
    Ok((incident, cause.and_then(|c| serde_json::from_str(&c).ok())))
}

fn as_str<T: serde::Serialize>(value: &T) -> String {
    // Unit enums serialise to a JSON string; strip its quotes.
    serde_json::to_string(value).unwrap_or_default().trim_matches('"').to_owned()
}

fn micros(ts: Option<Timestamp>) -> Option<i64> {
    ts.map(to_micros)
}

/// Every statement of an append, by what it does.
#[derive(Debug, Clone, Copy)]
enum Sql {
    EventExists,
    InsertEvent,
    ImportedRaw,
    ReplaceImported,
    InsertChange,
    AppendPush,
    StreamPosition,
    StreamBetween,
    RecordMerge,
    Merge,
    RecordArtifact,
    ArtifactRevision,
    DeploymentExists,
    InsertDeployment,
    LastSuccess,
    Ship,
    MarkRolledBack,
    RecordRollback,
    DeploymentOfArtifact,
    DeploymentShipping,
    Incident,
    UpsertIncident,
    IncidentsOpenToAttribution,
    UpsertPipelineRun,
}

const STATEMENTS: usize = Sql::UpsertPipelineRun as usize + 1;

impl Sql {
    fn text(self) -> &'static str {
        match self {
            Sql::EventExists => "SELECT 1 FROM events WHERE key = ?1 AND source = ?2 AND id = ?3",
            Sql::InsertEvent => {
                "INSERT INTO events (source, id, type, subject, ts, received, origin, raw, key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            }
            Sql::ImportedRaw => "SELECT raw FROM events WHERE key = ?4 AND source = ?1 AND id = ?2 AND origin = ?3",
            Sql::ReplaceImported => {
                "UPDATE events SET origin = ?3, raw = ?4, type = ?5, subject = ?6, ts = ?7
                 WHERE key = ?8 AND source = ?1 AND id = ?2"
            }
            Sql::InsertChange => {
                "INSERT INTO changes (repository, sha, commit_time, author_time, message) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING"
            }
            Sql::AppendPush => "INSERT INTO push_stream (branch, sha) VALUES (?1, ?2)",
            Sql::StreamPosition => {
                "SELECT b.repository, b.branch, p.position FROM push_stream p JOIN push_branches b ON b.id = p.branch
                 WHERE p.sha = ?1 AND (?2 IS NULL OR b.repository = ?2) ORDER BY p.position DESC LIMIT 1"
            }
            Sql::StreamBetween => {
                "SELECT sha FROM push_stream WHERE branch = ?1 AND position > ?2 AND position <= ?3 ORDER BY position"
            }
            Sql::RecordMerge => {
                "INSERT INTO merges (repository, merge_sha, source_branch, target_branch, merged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING"
            }
            Sql::Merge => {
                "SELECT source_branch, target_branch, merged_at FROM merges WHERE repository = ?1 AND merge_sha = ?2"
            }
            Sql::RecordArtifact => {
                "INSERT INTO artifacts (artifact_id, repository, revision) VALUES (?1, ?2, ?3)
                 ON CONFLICT (artifact_id) DO UPDATE SET repository = excluded.repository, revision = excluded.revision"
            }
            Sql::ArtifactRevision => "SELECT repository, revision FROM artifacts WHERE artifact_id = ?1",
            Sql::DeploymentExists => "SELECT 1 FROM deployments WHERE key = ?1",
            Sql::InsertDeployment => {
                "INSERT INTO deployments (key, service, environment, repository, revision, artifact_id, started,
                 finished, outcome, changes_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            }
            Sql::LastSuccess => concat!(
                "SELECT ",
                deployment_columns!(),
                " FROM deployments
                 WHERE service = ?1 AND environment = ?2 AND outcome = 'success' AND finished <= ?3
                 ORDER BY finished DESC, id DESC LIMIT 1"
            ),
            Sql::Ship => {
                "INSERT INTO deployment_changes (scope, sha, repository, deployment_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO NOTHING"
            }
            Sql::MarkRolledBack => "UPDATE deployments SET rolled_back = ?2 WHERE id = ?1 AND rolled_back IS NULL",
            Sql::RecordRollback => {
                "INSERT INTO rollbacks (key, service, environment, artifact_id, at, deployment_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING"
            }
            Sql::DeploymentOfArtifact => {
                "SELECT id FROM deployments WHERE artifact_id = ?3 AND service = ?1 AND environment = ?2
                 AND outcome = 'success' AND finished <= ?4 ORDER BY finished DESC LIMIT 1"
            }
            // Hex shas sort below '~', so [prefix, prefix~) is every sha starting with the prefix.
            Sql::DeploymentShipping => {
                "SELECT deployment_id FROM deployment_changes
                 WHERE scope = ?1 AND sha >= ?2 AND sha < ?2 || '~' ORDER BY deployment_id LIMIT 1"
            }
            Sql::Incident => concat!("SELECT ", incident_columns!(), " FROM incidents WHERE key = ?1"),
            Sql::UpsertIncident => {
                "INSERT INTO incidents (key, service, environment, title, detected, acknowledged, resolved,
                 deployment_id, attribution, cause, severity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (key) DO UPDATE SET title = excluded.title, detected = excluded.detected,
                 acknowledged = excluded.acknowledged, resolved = excluded.resolved,
                 deployment_id = excluded.deployment_id, attribution = excluded.attribution, cause = excluded.cause,
                 severity = excluded.severity"
            }
            Sql::IncidentsOpenToAttribution => concat!(
                "SELECT ",
                incident_columns!(),
                " FROM incidents
                 WHERE service = ?1 AND environment = ?2 AND detected >= ?3 AND detected <= ?4
                 AND attribution NOT IN ('explicit_artifact', 'explicit_commit')"
            ),
            Sql::UpsertPipelineRun => {
                "INSERT INTO pipeline_runs (key, kind, name, repository, revision, branch, queued, started, finished, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (key) DO UPDATE SET
                   name = CASE WHEN excluded.name = '' THEN name ELSE excluded.name END,
                   repository = coalesce(excluded.repository, repository),
                   revision = coalesce(excluded.revision, revision),
                   branch = coalesce(excluded.branch, branch),
                   queued = min(coalesce(excluded.queued, queued), coalesce(queued, excluded.queued)),
                   started = min(coalesce(excluded.started, started), coalesce(started, excluded.started)),
                   finished = coalesce(excluded.finished, finished),
                   outcome = coalesce(excluded.outcome, outcome)"
            }
        }
    }
}

/// Appends events and materialises their facts on the writer, inside its open write
/// transaction. Each statement is prepared once, when first used, and kept for every event
/// after: a bulk import runs millions of them, and looking a statement up by its text in the
/// connection's cache costs as much as a small insert.
pub(super) struct Appender<'c> {
    conn: &'c Connection,
    prepared: [Option<Statement<'c>>; STATEMENTS],
    interned: Interned,
}

impl<'c> Appender<'c> {
    /// `conn` must be in a write transaction whenever the appender is used.
    pub(super) fn new(conn: &'c Connection) -> Appender<'c> {
        Appender { conn, prepared: std::array::from_fn(|_| None), interned: Interned::default() }
    }

    fn statement(&mut self, sql: Sql) -> rusqlite::Result<&mut Statement<'c>> {
        let conn = self.conn;
        let slot = &mut self.prepared[sql as usize];
        if slot.is_none() {
            *slot = Some(conn.prepare(sql.text())?);
        }
        Ok(slot.as_mut().expect("prepared above"))
    }

    /// The id of an interned name, made if new.
    fn id(&mut self, name: Name, a: &str, b: Option<&str>) -> Result<i64, StoreError> {
        Ok(self.interned.id(self.conn, name, a, b, true)?.expect("made when missing"))
    }

    /// Appends one event and materialises its facts.
    pub(super) fn append(
        &mut self,
        event: &NewEvent,
        ctx: &IngestContext<'_>,
        received: i64,
    ) -> Result<AppendStatus, StoreError> {
        let key = event_key(&event.source, &event.id);
        if self.statement(Sql::EventExists)?.exists(params![key, event.source, event.id])? {
            return match self.verified_over_import(event, key)? {
                // The signed delivery replaces the unverified record of it; its facts are the
                // record's when the bodies agree.
                Some(same_body) => {
                    if !same_body {
                        self.apply(ctx, event)?;
                    }
                    Ok(AppendStatus::Stored)
                }
                None => Ok(AppendStatus::Duplicate),
            };
        }
        self.statement(Sql::InsertEvent)?.execute(params![
            event.source,
            event.id,
            event.ty,
            event.subject,
            to_micros(event.timestamp),
            received,
            event.origin.as_str(),
            event.raw,
            key,
        ])?;
        self.apply(ctx, event)?;
        Ok(AppendStatus::Stored)
    }

    fn apply(&mut self, ctx: &IngestContext<'_>, event: &NewEvent) -> Result<(), StoreError> {
        materialise::apply(self, ctx.ancestry, &ctx.rules, &event.observations).map_err(StoreError::Facts)
    }

    /// A recorded webhook delivery (origin `import`: nobody verified it) never shadows the
    /// signed delivery of the same thing: when a verified event (`github`, `gitlab`) meets the
    /// record of it in the log, it takes the record's place. Returns whether the bodies were the
    /// same, or `None` when `event` is an ordinary duplicate.
    fn verified_over_import(&mut self, event: &NewEvent, key: i64) -> Result<Option<bool>, StoreError> {
        if !matches!(event.origin, Origin::Github | Origin::Gitlab) {
            return Ok(None);
        }
        let stored: Option<String> = self
            .statement(Sql::ImportedRaw)?
            .query_row(params![event.source, event.id, Origin::Import.as_str(), key], |r| r.get(0))
            .optional()?;
        let Some(stored) = stored else { return Ok(None) };
        self.statement(Sql::ReplaceImported)?.execute(params![
            event.source,
            event.id,
            event.origin.as_str(),
            event.raw,
            event.ty,
            event.subject,
            to_micros(event.timestamp),
            key
        ])?;
        Ok(Some(stored == event.raw))
    }
}

impl FactTxn for Appender<'_> {
    fn insert_change(&mut self, repository: &str, c: &Commit) -> R<()> {
        let repository = self.id(Name::Repository, repository, None)?;
        self.statement(Sql::InsertChange)?.execute(params![
            repository,
            c.sha,
            to_micros(c.commit_time),
            micros(c.author_time),
            c.message
        ])?;
        Ok(())
    }

    fn append_push(&mut self, repository: &str, branch: &str, shas: &[&str]) -> R<()> {
        if shas.is_empty() {
            return Ok(());
        }
        let branch = self.id(Name::Branch, repository, Some(branch))?;
        let stmt = self.statement(Sql::AppendPush)?;
        for sha in shas {
            stmt.execute(params![branch, sha])?;
        }
        Ok(())
    }

    fn stream_position(&mut self, repository: Option<&str>, sha: &str) -> R<Option<StreamPosition>> {
        let found = self
            .statement(Sql::StreamPosition)?
            .query_row(params![sha, repository], |r| {
                Ok(StreamPosition { repository: r.get(0)?, branch: r.get(1)?, position: r.get(2)? })
            })
            .optional()?;
        Ok(found)
    }

    fn stream_between(&mut self, repository: &str, branch: &str, after: Option<i64>, upto: i64) -> R<Vec<String>> {
        let Some(branch) = self.interned.id(self.conn, Name::Branch, repository, Some(branch), false)? else {
            return Ok(Vec::new());
        };
        let stmt = self.statement(Sql::StreamBetween)?;
        let rows = stmt.query_map(params![branch, after.unwrap_or(i64::MIN), upto], |r| r.get(0))?;
        let mut shas: Vec<String> = Vec::new();
        for sha in rows {
            let sha = sha?;
            // A commit pushed twice (to a branch, then again with a merge) counts once.
            if !shas.contains(&sha) {
                shas.push(sha);
            }
        }
        Ok(shas)
    }

    fn record_merge(&mut self, m: &Merge) -> R<()> {
        self.statement(Sql::RecordMerge)?.execute(params![
            m.repository,
            m.merge_sha,
            m.source_branch,
            m.target_branch,
            to_micros(m.merged_at)
        ])?;
        Ok(())
    }

    fn merge(&mut self, repository: &str, merge_sha: &str) -> R<Option<Merge>> {
        let found = self
            .statement(Sql::Merge)?
            .query_row(params![repository, merge_sha], |r| {
                Ok(Merge {
                    repository: repository.to_owned(),
                    merge_sha: merge_sha.to_owned(),
                    source_branch: r.get(0)?,
                    target_branch: r.get(1)?,
                    merged_at: from_micros(r.get(2)?),
                })
            })
            .optional()?;
        Ok(found)
    }

    fn record_artifact(&mut self, artifact_id: &str, repository: Option<&str>, revision: &str) -> R<()> {
        self.statement(Sql::RecordArtifact)?.execute(params![artifact_id, repository, revision])?;
        Ok(())
    }

    fn artifact_revision(&mut self, artifact_id: &str) -> R<Option<(Option<String>, String)>> {
        let found = self
            .statement(Sql::ArtifactRevision)?
            .query_row([artifact_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(found)
    }

    fn deployment_exists(&mut self, key: &str) -> R<bool> {
        Ok(self.statement(Sql::DeploymentExists)?.exists([key])?)
    }

    fn insert_deployment(&mut self, d: &NewDeployment<'_>) -> R<DeploymentId> {
        let o = d.observed;
        self.statement(Sql::InsertDeployment)?.execute(params![
            o.key,
            o.service,
            o.environment,
            d.repository,
            d.revision,
            o.artifact_id,
            to_micros(o.started),
            to_micros(o.finished),
            as_str(&o.outcome),
            as_str(&d.changes_from),
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn last_success(&mut self, service: &str, environment: &str, at: Timestamp) -> R<Option<Deployment>> {
        let found = self
            .statement(Sql::LastSuccess)?
            .query_row(params![service, environment, to_micros(at)], deployment_row)
            .optional()?;
        Ok(found)
    }

    fn ship(
        &mut self,
        deployment: DeploymentId,
        service: &str,
        environment: &str,
        repository: &str,
        shas: &[String],
    ) -> R<()> {
        if shas.is_empty() {
            return Ok(());
        }
        let scope = self.id(Name::Scope, service, Some(environment))?;
        let repository = self.id(Name::Repository, repository, None)?;
        let stmt = self.statement(Sql::Ship)?;
        for sha in shas {
            stmt.execute(params![scope, sha, repository, deployment])?;
        }
        Ok(())
    }

    fn mark_rolled_back(&mut self, deployment: DeploymentId, at: Timestamp) -> R<()> {
        self.statement(Sql::MarkRolledBack)?.execute(params![deployment, to_micros(at)])?;
        Ok(())
    }

    fn record_rollback(&mut self, r: &RollbackObserved, failed: Option<DeploymentId>) -> R<bool> {
        let inserted = self.statement(Sql::RecordRollback)?.execute(params![
            r.key,
            r.service,
            r.environment,
            r.artifact_id,
            to_micros(r.at),
            failed
        ])?;
        Ok(inserted == 1)
    }

    fn deployment_of_artifact(
        &mut self,
        service: &str,
        environment: &str,
        artifact_id: &str,
        at: Timestamp,
    ) -> R<Option<DeploymentId>> {
        let found = self
            .statement(Sql::DeploymentOfArtifact)?
            .query_row(params![service, environment, artifact_id, to_micros(at)], |r| r.get(0))
            .optional()?;
        Ok(found)
    }

    fn deployment_shipping(&mut self, service: &str, environment: &str, sha: &str) -> R<Option<DeploymentId>> {
        let Some(scope) = self.interned.id(self.conn, Name::Scope, service, Some(environment), false)? else {
            return Ok(None);
        };
        let prefix = sha.to_ascii_lowercase();
        let found =
            self.statement(Sql::DeploymentShipping)?.query_row(params![scope, prefix], |r| r.get(0)).optional()?;
        Ok(found)
    }

    fn incident(&mut self, key: &str) -> R<Option<(Incident, Option<CauseHint>)>> {
        Ok(self.statement(Sql::Incident)?.query_row([key], incident_row).optional()?)
    }

    fn upsert_incident(&mut self, i: &Incident, cause: Option<&CauseHint>) -> R<()> {
        let cause = cause.map(serde_json::to_string).transpose()?;
        self.statement(Sql::UpsertIncident)?.execute(params![
            i.key,
            i.service,
            i.environment,
            i.title,
            to_micros(i.detected),
            micros(i.acknowledged),
            micros(i.resolved),
            i.deployment_id,
            as_str(&i.attribution),
            cause,
            i.severity,
        ])?;
        Ok(())
    }

    fn incidents_open_to_attribution(
        &mut self,
        service: &str,
        environment: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> R<Vec<(Incident, Option<CauseHint>)>> {
        let stmt = self.statement(Sql::IncidentsOpenToAttribution)?;
        let rows = stmt.query_map(params![service, environment, to_micros(from), to_micros(to)], incident_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn upsert_pipeline_run(&mut self, run: &PipelineRunObserved) -> R<()> {
        let kind = match run.kind {
            PipelineRunKind::Run => "run",
            PipelineRunKind::Job => "job",
        };
        self.statement(Sql::UpsertPipelineRun)?.execute(params![
            run.key,
            kind,
            run.name,
            run.repository,
            run.revision,
            run.branch,
            micros(run.queued),
            micros(run.started),
            micros(run.finished),
            run.outcome,
        ])?;
        Ok(())
    }
}
