//! [`FactTxn`] over an open PostgreSQL write transaction: the SQL behind materialisation, the
//! same statements as SQLite's (`crate::sqlite::facts`) in PostgreSQL's dialect, with the writes
//! nothing waits for sent many rows at a time ([`PgFacts`]).

use std::collections::{HashMap, HashSet};

use ::postgres::types::ToSql;
use ::postgres::{Row, Statement, Transaction};
use jiff::Timestamp;
use mobius_events::facts::{Attribution, ChangeSource, Deployment, DeploymentId, Incident};
use mobius_events::materialise::{FactError, FactTxn, NewDeployment, Rules, StreamPosition};
use mobius_events::observation::{
    CauseHint, Commit, DeploymentOutcome, Merge, Observation, PipelineRunKind, PipelineRunObserved, RollbackObserved,
};
use mobius_events::time::{from_micros, to_micros};
use mobius_events::{NewEvent, materialise};

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

/// Writes held back to go many rows to a statement rather than a round trip each: those whose
/// result materialisation does not wait for. A table's rows go, in the order they were
/// written, before anything reads that table ([`PgFacts::flush_table`]) and at the end of an
/// append or of a batch of an import ([`PgFacts::flush`]). The rest — deployments, which are
/// read back by their id, rollbacks and incidents — are written at once.
#[derive(Default)]
struct Pending {
    /// repository, sha, commit time, author time, message.
    changes: Vec<(String, String, i64, Option<i64>, String)>,
    /// repository, branch, sha.
    pushes: Vec<(String, String, String)>,
    merges: Vec<Merge>,
    /// artifact id, repository, revision.
    artifacts: Vec<(String, Option<String>, String)>,
    /// service, environment, repository, sha, deployment id.
    shipped: Vec<(String, String, String, String, i64)>,
    pipeline_runs: Vec<PipelineRunObserved>,
}

/// The tables [`Pending`] holds writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Changes,
    PushStream,
    Merges,
    Artifacts,
    DeploymentChanges,
    PipelineRuns,
}

/// Answers read ahead for a batch of an import ([`PgFacts::read_ahead`]), kept true by the
/// writes of the batch: reads that are nearly always "no" are answered here instead of by a
/// round trip each.
#[derive(Default)]
struct Known {
    /// The deployment keys of the batch, and whether each is stored.
    deployments: HashMap<String, bool>,
    /// The scopes of the batch's deployments and the instants their incidents may be
    /// attributed in: what `incidents` covers.
    scopes: HashSet<(String, String)>,
    span: Option<(i64, i64)>,
    /// Incidents detected in `span` in one of `scopes`, and every incident written since: key →
    /// service, environment, detected, whether an explicit link attributes it.
    incidents: HashMap<String, (String, String, i64, bool)>,
}

impl Known {
    /// Whether incidents open to attribution in this scope and window are known here: `None`
    /// when a read must tell.
    fn open_incidents(&self, service: &str, environment: &str, from: i64, to: i64) -> Option<bool> {
        let (first, last) = self.span?;
        if from < first || to > last || !self.scopes.contains(&(service.to_owned(), environment.to_owned())) {
            return None;
        }
        Some(self.incidents.values().any(|(s, e, detected, explicit)| {
            !explicit && s == service && e == environment && (from..=to).contains(detected)
        }))
    }
}

impl<'a, 'c> PgFacts<'a, 'c> {
    /// Reads ahead, in two queries, what materialising `events` would otherwise ask a round
    /// trip at a time: whether each deployment is stored already, and which incidents its
    /// attribution window could reach. Exact as long as nothing but this writes the tables
    /// (the import holds the write lock).
    pub(super) fn read_ahead(&mut self, events: &[NewEvent], rules: &Rules) -> Result<(), ::postgres::Error> {
        let mut known = Known::default();
        let mut keys = Vec::new();
        for observation in events.iter().flat_map(|e| &e.observations) {
            if let Observation::Deployment(d) = observation {
                keys.push(d.key.clone());
                known.scopes.insert((d.service.clone(), d.environment.clone()));
                let until = d.finished.checked_add(rules.attribution_window).unwrap_or(Timestamp::MAX);
                let (from, to) = (to_micros(d.finished), to_micros(until));
                known.span = Some(known.span.map_or((from, to), |(a, b)| (a.min(from), b.max(to))));
            }
        }
        let Some((from, to)) = known.span else {
            self.known = known;
            return Ok(());
        };
        // Planned each time, for the tables as large as they have grown: a plan cached while
        // they were small would scan them whole.
        let stored = self.tx.query("SELECT key FROM deployments WHERE key = ANY($1)", &[&keys])?;
        known.deployments = keys.into_iter().map(|key| (key, false)).collect();
        for row in stored {
            known.deployments.insert(row.get(0), true);
        }
        let (services, environments): (Vec<String>, Vec<String>) = known.scopes.iter().cloned().unzip();
        let rows = self.tx.query(
            "SELECT i.key, i.service, i.environment, i.detected, i.attribution FROM incidents i
             JOIN unnest($1::text[], $2::text[]) AS s (service, environment)
               ON i.service = s.service AND i.environment = s.environment
             WHERE i.detected >= $3 AND i.detected <= $4",
            &[&services, &environments, &from, &to],
        )?;
        for row in rows {
            let explicit = matches!(row.get::<_, &str>(4), "explicit_artifact" | "explicit_commit");
            known.incidents.insert(row.get(0), (row.get(1), row.get(2), row.get(3), explicit));
        }
        self.known = known;
        Ok(())
    }

    pub(super) fn new(tx: &'a mut Transaction<'c>, statements: &'a mut HashMap<String, Statement>) -> Self {
        PgFacts { tx, statements, pending: Pending::default(), known: Known::default() }
    }

    /// Materialises one event's facts.
    pub(super) fn apply(&mut self, ctx: &IngestContext<'_>, event: &NewEvent) -> Result<(), StoreError> {
        materialise::apply(self, ctx.ancestry, &ctx.rules, &event.observations).map_err(StoreError::Facts)
    }

    /// Sends every write held back.
    pub(super) fn flush(&mut self) -> Result<(), ::postgres::Error> {
        for table in [
            Table::Changes,
            Table::PushStream,
            Table::Merges,
            Table::Artifacts,
            Table::DeploymentChanges,
            Table::PipelineRuns,
        ] {
            self.flush_table(table)?;
        }
        Ok(())
    }

    /// Sends the writes held back for `table`, in the order they were made.
    fn flush_table(&mut self, table: Table) -> Result<(), ::postgres::Error> {
        match table {
            Table::Changes if !self.pending.changes.is_empty() => {
                let rows = std::mem::take(&mut self.pending.changes);
                let (mut repos, mut shas, mut commit, mut author, mut messages) = columns(rows.len());
                for (repo, sha, c, a, message) in rows {
                    repos.push(repo);
                    shas.push(sha);
                    commit.push(c);
                    author.push(a);
                    messages.push(message);
                }
                // Of one key twice, the first row stays, as it would one statement each.
                self.execute(
                    "INSERT INTO changes (repository, sha, commit_time, author_time, message)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[])
                     ON CONFLICT DO NOTHING",
                    &[&repos, &shas, &commit, &author, &messages],
                )?;
            }
            Table::PushStream if !self.pending.pushes.is_empty() => {
                let rows = std::mem::take(&mut self.pending.pushes);
                let (mut repos, mut branches, mut shas) = (Vec::new(), Vec::new(), Vec::new());
                for (repo, branch, sha) in rows {
                    repos.push(repo);
                    branches.push(branch);
                    shas.push(sha);
                }
                // Positions are taken in the order the rows come: the push order.
                self.execute(
                    "INSERT INTO push_stream (repository, branch, sha)
                     SELECT r, b, s FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u (r, b, s, n)
                     ORDER BY n",
                    &[&repos, &branches, &shas],
                )?;
            }
            Table::Merges if !self.pending.merges.is_empty() => {
                let rows = std::mem::take(&mut self.pending.merges);
                let (mut repos, mut shas, mut sources, mut targets, mut at) = columns(rows.len());
                for m in rows {
                    repos.push(m.repository);
                    shas.push(m.merge_sha);
                    sources.push(m.source_branch);
                    targets.push(m.target_branch);
                    at.push(to_micros(m.merged_at));
                }
                self.execute(
                    "INSERT INTO merges (repository, merge_sha, source_branch, target_branch, merged_at)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
                     ON CONFLICT DO NOTHING",
                    &[&repos, &shas, &sources, &targets, &at],
                )?;
            }
            Table::Artifacts if !self.pending.artifacts.is_empty() => {
                let rows = std::mem::take(&mut self.pending.artifacts);
                // An upsert may not touch a row twice in one statement.
                for rows in generations(rows, |(id, _, _)| id.as_str()) {
                    let (mut ids, mut repos, mut revisions) = (Vec::new(), Vec::new(), Vec::new());
                    for (id, repo, revision) in rows {
                        ids.push(id);
                        repos.push(repo);
                        revisions.push(revision);
                    }
                    self.execute(
                        "INSERT INTO artifacts (artifact_id, repository, revision)
                         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                         ON CONFLICT (artifact_id) DO UPDATE SET repository = excluded.repository,
                           revision = excluded.revision",
                        &[&ids, &repos, &revisions],
                    )?;
                }
            }
            Table::DeploymentChanges if !self.pending.shipped.is_empty() => {
                let rows = std::mem::take(&mut self.pending.shipped);
                let (mut services, mut environments, mut repos, mut shas, mut ids) = columns(rows.len());
                for (service, environment, repo, sha, id) in rows {
                    services.push(service);
                    environments.push(environment);
                    repos.push(repo);
                    shas.push(sha);
                    ids.push(id);
                }
                self.execute(
                    "INSERT INTO deployment_changes (service, environment, repository, sha, deployment_id)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
                     ON CONFLICT DO NOTHING",
                    &[&services, &environments, &repos, &shas, &ids],
                )?;
            }
            Table::PipelineRuns if !self.pending.pipeline_runs.is_empty() => {
                let rows = std::mem::take(&mut self.pending.pipeline_runs);
                for runs in generations(rows, |run| run.key.as_str()) {
                    self.upsert_pipeline_runs(runs)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Runs whose keys are all different, merged into what is known.
    fn upsert_pipeline_runs(&mut self, runs: Vec<PipelineRunObserved>) -> Result<(), ::postgres::Error> {
        let n = runs.len();
        let (mut keys, mut kinds, mut names, mut repos, mut revisions) = columns(n);
        let (mut branches, mut queued, mut started, mut finished, mut outcomes) = columns(n);
        for run in runs {
            keys.push(run.key);
            kinds.push(match run.kind {
                PipelineRunKind::Run => "run",
                PipelineRunKind::Job => "job",
            });
            names.push(run.name);
            repos.push(run.repository);
            revisions.push(run.revision);
            branches.push(run.branch);
            queued.push(micros(run.queued));
            started.push(micros(run.started));
            finished.push(micros(run.finished));
            outcomes.push(run.outcome);
        }
        // `least` skips NULLs where SQLite's `min` would return one; both arguments are only
        // NULL together here, so the two agree.
        self.execute(
            "INSERT INTO pipeline_runs AS p (key, kind, name, repository, revision, branch, queued, started, finished, outcome)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[],
               $8::int8[], $9::int8[], $10::text[])
             ON CONFLICT (key) DO UPDATE SET
               name = CASE WHEN excluded.name = '' THEN p.name ELSE excluded.name END,
               repository = coalesce(excluded.repository, p.repository),
               revision = coalesce(excluded.revision, p.revision),
               branch = coalesce(excluded.branch, p.branch),
               queued = least(coalesce(excluded.queued, p.queued), coalesce(p.queued, excluded.queued)),
               started = least(coalesce(excluded.started, p.started), coalesce(p.started, excluded.started)),
               finished = coalesce(excluded.finished, p.finished),
               outcome = coalesce(excluded.outcome, p.outcome)",
            &[&keys, &kinds, &names, &repos, &revisions, &branches, &queued, &started, &finished, &outcomes],
        )?;
        Ok(())
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

/// Five columns of a multi-row statement's parameters.
type Columns<A, B, C, D, E> = (Vec<A>, Vec<B>, Vec<C>, Vec<D>, Vec<E>);

/// Five empty columns with room for `n` rows.
fn columns<A, B, C, D, E>(n: usize) -> Columns<A, B, C, D, E> {
    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n))
}

/// `rows` as pieces in which no key comes twice: the first write of each key, then the second
/// of each, and so on, each piece in the order of the rows. Writes to different keys do not
/// meet, and each key's writes stay in order, so applying the pieces one after another is
/// applying the rows one after another.
fn generations<T>(rows: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<Vec<T>> {
    let mut pieces: Vec<Vec<T>> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let count = seen.entry(key(&row).to_owned()).or_insert(0);
        if *count == pieces.len() {
            pieces.push(Vec::new());
        }
        pieces[*count].push(row);
        *count += 1;
    }
    pieces
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
