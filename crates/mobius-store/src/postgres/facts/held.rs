//! The writes [`PgFacts`] holds back to send many rows to a statement, and what it reads
//! ahead for a batch of an import.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use mobius_events::NewEvent;
use mobius_events::materialise::Rules;
use mobius_events::observation::{Merge, Observation, PipelineRunKind, PipelineRunObserved};
use mobius_events::time::to_micros;

use super::{PgFacts, micros};

/// Writes held back to go many rows to a statement rather than a round trip each: those whose
/// result materialisation does not wait for. A table's rows go, in the order they were
/// written, before anything reads that table ([`PgFacts::flush_table`]) and at the end of an
/// append or of a batch of an import ([`PgFacts::flush`]). The rest — deployments, which are
/// read back by their id, rollbacks and incidents — are written at once.
#[derive(Default)]
pub(super) struct Pending {
    /// repository, sha, commit time, author time, message.
    pub(super) changes: Vec<(String, String, i64, Option<i64>, String)>,
    /// repository, branch, sha.
    pub(super) pushes: Vec<(String, String, String)>,
    pub(super) merges: Vec<Merge>,
    /// artifact id, repository, revision.
    pub(super) artifacts: Vec<(String, Option<String>, String)>,
    /// service, environment, repository, sha, deployment id.
    pub(super) shipped: Vec<(String, String, String, String, i64)>,
    pub(super) pipeline_runs: Vec<PipelineRunObserved>,
}

/// The tables [`Pending`] holds writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
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
pub(super) struct Known {
    /// The deployment keys of the batch, and whether each is stored.
    pub(super) deployments: HashMap<String, bool>,
    /// The scopes of the batch's deployments and the instants their incidents may be
    /// attributed in: what `incidents` covers.
    pub(super) scopes: HashSet<(String, String)>,
    pub(super) span: Option<(i64, i64)>,
    /// Incidents detected in `span` in one of `scopes`, and every incident written since: key →
    /// service, environment, detected, whether an explicit link attributes it.
    pub(super) incidents: HashMap<String, (String, String, i64, bool)>,
}

impl Known {
    /// Whether incidents open to attribution in this scope and window are known here: `None`
    /// when a read must tell.
    pub(super) fn open_incidents(&self, service: &str, environment: &str, from: i64, to: i64) -> Option<bool> {
        let (first, last) = self.span?;
        if from < first || to > last || !self.scopes.contains(&(service.to_owned(), environment.to_owned())) {
            return None;
        }
        Some(self.incidents.values().any(|(s, e, detected, explicit)| {
            !explicit && s == service && e == environment && (from..=to).contains(detected)
        }))
    }
}

impl PgFacts<'_, '_> {
    /// Reads ahead, in two queries, what materialising `events` would otherwise ask a round
    /// trip at a time: whether each deployment is stored already, and which incidents its
    /// attribution window could reach. Exact as long as nothing but this writes the tables
    /// (the import holds the write lock).
    pub(in crate::postgres) fn read_ahead(
        &mut self,
        events: &[NewEvent],
        rules: &Rules,
    ) -> Result<(), ::postgres::Error> {
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

    /// Sends every write held back.
    pub(in crate::postgres) fn flush(&mut self) -> Result<(), ::postgres::Error> {
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
    pub(super) fn flush_table(&mut self, table: Table) -> Result<(), ::postgres::Error> {
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

#[cfg(test)]
mod tests {
    use super::generations;

    #[test]
    fn each_piece_holds_a_key_once_and_each_key_keeps_its_order() {
        let rows = vec![("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)];
        let pieces = generations(rows, |row: &(&str, i32)| row.0);
        assert_eq!(pieces, [vec![("a", 1), ("b", 1), ("c", 1)], vec![("a", 2), ("b", 2)], vec![("a", 3)]]);
        assert!(generations(Vec::<(&str, i32)>::new(), |row| row.0).is_empty());
    }
}
