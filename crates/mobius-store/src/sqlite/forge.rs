//! SQL for forge settings and the commit status outbox (see [`crate::forge`]).

use mobius_events::time::{from_micros, to_micros};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::StoreError;
use crate::forge::{CommitStatus, Delivery, ForgeKind, ForgeSettings, PendingStatus, StatusOutcome, status_context};
use crate::runs::RunState;

pub(super) fn set(conn: &Connection, forge: &ForgeSettings) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO repository_forges (repository, kind, api_url, token_secret, project) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (repository) DO UPDATE SET kind = excluded.kind, api_url = excluded.api_url,
             token_secret = excluded.token_secret, project = excluded.project",
        params![forge.repository, forge.kind.as_str(), forge.api_url, forge.token_secret, forge.project],
    )?;
    Ok(())
}

pub(super) fn get(conn: &Connection, repository: &str) -> Result<Option<ForgeSettings>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT repository, kind, api_url, token_secret, project FROM repository_forges WHERE repository = ?1",
        )?
        .query_row([repository], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((repository, kind, api_url, token_secret, project)) = row else { return Ok(None) };
    let kind = ForgeKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("forge kind `{kind}` of {repository} is unknown")))?;
    Ok(Some(ForgeSettings { repository, kind, api_url, token_secret, project }))
}

/// Puts a job's new state in the outbox when its run's repository reports to a forge and the
/// job's last reported state was a different one.
pub(super) fn enqueue(tx: &Transaction<'_>, run: i64, job: &str, state: RunState, at: i64) -> Result<(), StoreError> {
    let workflow: Option<String> = tx
        .prepare_cached(
            "SELECT r.workflow_name FROM runs r JOIN repository_forges f ON f.repository = r.repository
             WHERE r.id = ?1",
        )?
        .query_row([run], |r| r.get(0))
        .optional()?;
    let Some(workflow) = workflow else { return Ok(()) };
    let last: Option<String> = tx
        .prepare_cached("SELECT state FROM forge_statuses WHERE run_id = ?1 AND job = ?2 ORDER BY id DESC LIMIT 1")?
        .query_row(params![run, job], |r| r.get(0))
        .optional()?;
    if last.as_deref() == Some(state.as_str()) {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO forge_statuses (run_id, job, context, state, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![run, job, status_context(&workflow, job), state.as_str(), at])?;
    Ok(())
}

/// The jobs a restart is about to interrupt, in runs that report to a forge: their
/// `interrupted` state goes to the outbox, so the forge does not show them pending forever.
pub(super) fn enqueue_interrupted(tx: &Transaction<'_>, at: i64) -> Result<(), StoreError> {
    let jobs: Vec<(i64, String)> = tx
        .prepare(
            "SELECT j.run_id, j.name FROM run_jobs j JOIN runs r ON r.id = j.run_id
               JOIN repository_forges f ON f.repository = r.repository
             WHERE j.state IN ('queued', 'running') AND r.state IN ('queued', 'running')
             ORDER BY j.run_id, j.position",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (run, job) in jobs {
        enqueue(tx, run, &job, RunState::Interrupted, at)?;
    }
    Ok(())
}

pub(super) fn pending(conn: &Connection, limit: u32) -> Result<Vec<PendingStatus>, StoreError> {
    let mut stmt = conn.prepare_cached(
        // A pull request's run is on the forge's merge commit, which the pull request does not
        // show: its statuses go on the head commit, as the forge's own CI reports them.
        "SELECT s.id, s.run_id, r.repository,
             coalesce(json_extract(r.trigger, '$.github.event.pull_request.head.sha'), r.sha),
             coalesce(r.branch, json_extract(r.trigger, '$.github.head_ref')),
             s.context, s.state, s.attempts, s.next_attempt
         FROM forge_statuses s JOIN runs r ON r.id = s.run_id
         WHERE s.delivery = 'pending' ORDER BY s.id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(PendingStatus {
            id: r.get(0)?,
            run: r.get(1)?,
            repository: r.get(2)?,
            sha: r.get(3)?,
            branch: r.get(4)?,
            context: r.get(5)?,
            state: RunState::parse(&r.get::<_, String>(6)?).unwrap_or(RunState::Interrupted),
            attempts: r.get(7)?,
            next_attempt: from_micros(r.get(8)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn record(tx: &Transaction<'_>, outcomes: &[StatusOutcome]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "UPDATE forge_statuses SET delivery = ?2, attempts = max(attempts, ?3), next_attempt = ?4,
             last_error = coalesce(?5, last_error), updated = ?6 WHERE id = ?1",
    )?;
    for o in outcomes {
        stmt.execute(params![
            o.id,
            o.delivery.as_str(),
            o.attempts,
            to_micros(o.next_attempt),
            o.error,
            to_micros(o.at)
        ])?;
    }
    Ok(())
}

/// A run's statuses, oldest first.
pub(super) fn of_run(conn: &Connection, run: i64) -> Result<Vec<CommitStatus>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT context, state, delivery, attempts, last_error, updated FROM forge_statuses
         WHERE run_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([run], |r| {
        Ok(CommitStatus {
            context: r.get(0)?,
            state: RunState::parse(&r.get::<_, String>(1)?).unwrap_or(RunState::Interrupted),
            // Only this module writes deliveries: an unknown word means a newer build wrote it.
            delivery: Delivery::parse(&r.get::<_, String>(2)?).unwrap_or(Delivery::Pending),
            attempts: r.get(3)?,
            last_error: r.get(4)?,
            updated: from_micros(r.get(5)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use crate::{Delivery, ForgeKind, ForgeSettings, NewRun, RunState, RunUpdate, SqliteStore, StatusOutcome, Store};

    fn new_run(repository: &str) -> NewRun {
        NewRun {
            repository: repository.into(),
            workflow_file: ".github/workflows/ci.yml".into(),
            workflow_name: "CI".into(),
            event: "push".into(),
            branch: Some("main".into()),
            sha: "a1b2".into(),
            before_sha: None,
            concurrency_group: None,
            cancel_in_progress: false,
            only_jobs: Vec::new(),
            attempt: 1,
            rerun_of: None,
            requeue_of: None,
            queued_at: Timestamp::from_second(1_700_000_000).unwrap(),
            fork: false,
            trigger: None,
        }
    }

    /// A pull request's run is on the merge commit; its statuses go on the pull request's head.
    #[test]
    fn pull_request_statuses_go_on_the_head_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let at = Timestamp::from_second(1_700_000_100).unwrap();
        let settings = ForgeSettings {
            repository: "acme/app".into(),
            kind: ForgeKind::Github,
            api_url: "https://api.github.com".into(),
            token_secret: None,
            project: None,
        };
        store.set_forge(&settings).unwrap();
        let mut pr = new_run("acme/app");
        (pr.event, pr.branch, pr.sha) = ("pull_request".into(), None, "merge".into());
        pr.trigger = Some(serde_json::json!({ "github": {
            "head_ref": "feature", "event": { "pull_request": { "head": { "sha": "head" } } } } }));
        let pr = store.create_run(&pr).unwrap();
        store.update_runs(&[RunUpdate::Job { run: pr, job: "build".into(), state: RunState::Queued, at }]).unwrap();
        let pending = store.pending_statuses(10).unwrap();
        let last = &pending[0];
        assert_eq!((last.run, last.sha.as_str(), last.branch.as_deref()), (pr, "head", Some("feature")));
    }

    /// The outbox is written with the job states themselves, once per state change, only for
    /// repositories that report to a forge; a restart reports the jobs it interrupts.
    #[test]
    fn job_states_of_forge_repositories_enter_the_outbox_in_the_same_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let at = Timestamp::from_second(1_700_000_010).unwrap();
        let job = |run, job: &str, state| RunUpdate::Job { run, job: job.into(), state, at };
        let quiet = store.create_run(&new_run("acme/quiet")).unwrap();
        store.update_runs(&[job(quiet, "build", RunState::Queued)]).unwrap();
        assert!(store.pending_statuses(10).unwrap().is_empty(), "no forge, no statuses");

        let forge = ForgeSettings {
            repository: "acme/app".into(),
            kind: ForgeKind::Gitlab,
            api_url: "https://gitlab.example/api/v4".into(),
            token_secret: Some("GITLAB_TOKEN".into()),
            project: None,
        };
        store.set_forge(&forge).unwrap();
        assert_eq!(store.forge("acme/app").unwrap(), Some(forge.clone()));
        let run = store.create_run(&new_run("acme/app")).unwrap();
        store
            .update_runs(&[
                job(run, "build", RunState::Queued),
                job(run, "build", RunState::Running),
                job(run, "build", RunState::Running),
                job(run, "test", RunState::Queued),
                job(run, "build", RunState::Success),
            ])
            .unwrap();
        let pending = store.pending_statuses(10).unwrap();
        let seen: Vec<(&str, RunState)> = pending.iter().map(|p| (p.context.as_str(), p.state)).collect();
        assert_eq!(
            seen,
            [
                ("mobius/CI/build", RunState::Queued),
                ("mobius/CI/build", RunState::Running),
                ("mobius/CI/test", RunState::Queued),
                ("mobius/CI/build", RunState::Success),
            ],
            "a repeated state is not reported twice"
        );
        assert_eq!((pending[0].sha.as_str(), pending[0].branch.as_deref()), ("a1b2", Some("main")));
        let outcome = |id, delivery, error: Option<&str>| StatusOutcome {
            id,
            delivery,
            attempts: 1,
            next_attempt: at,
            error: error.map(str::to_owned),
            at,
        };
        store
            .record_status_outcomes(&[
                outcome(pending[0].id, Delivery::Delivered, None),
                outcome(pending[1].id, Delivery::Pending, Some("the forge answered 503")),
            ])
            .unwrap();
        assert_eq!(store.pending_statuses(10).unwrap().len(), 3);
        let shown = store.run(run).unwrap().unwrap().statuses;
        assert_eq!(shown.len(), 4);
        assert_eq!((shown[0].delivery, shown[0].attempts), (Delivery::Delivered, 1));
        assert_eq!(shown[1].last_error.as_deref(), Some("the forge answered 503"));

        // A restart interrupts `test` (queued) and reports it; `build` had ended.
        store.interrupt_in_flight(at).unwrap();
        let last = store.pending_statuses(10).unwrap().pop().unwrap();
        assert_eq!((last.context.as_str(), last.state), ("mobius/CI/test", RunState::Interrupted));

        assert!(store.remove_forge("acme/app").unwrap());
        assert!(!store.remove_forge("acme/app").unwrap());
        let later = store.create_run(&new_run("acme/app")).unwrap();
        store.update_runs(&[job(later, "build", RunState::Queued)]).unwrap();
        assert!(store.run(later).unwrap().unwrap().statuses.is_empty(), "reporting stopped");
    }
}
