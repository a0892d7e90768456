//! Pipeline runs with their jobs and steps, a restart's interruption, run queries, branch
//! heads, rollouts, and the commit status outbox written with job states.

use mobius_store::{
    Delivery, ForgeKind, ForgeSettings, NewRun, Repository, RolloutQuery, RolloutRow, RunQuery, RunState, RunUpdate,
    StatusOutcome, Store,
};

use crate::at;

crate::conformance!(
    a_run_records_its_jobs_and_steps_and_is_interrupted_by_a_restart,
    runs_are_listed_newest_first_and_filtered,
    heads_are_unknown_until_recorded_then_replaced_whole,
    removing_a_repository_forgets_its_heads_and_forge,
    rollouts_insert_update_and_filter,
    pull_request_statuses_go_on_the_head_commit,
    job_states_of_forge_repositories_enter_the_outbox_in_the_same_transaction,
);

fn new_run(repository: &str, sha: &str) -> NewRun {
    NewRun {
        repository: repository.into(),
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_name: "CI".into(),
        event: "push".into(),
        branch: Some("main".into()),
        sha: sha.into(),
        before_sha: Some("0000".into()),
        concurrency_group: Some("ci-main".into()),
        cancel_in_progress: true,
        only_jobs: vec!["test".into()],
        attempt: 2,
        rerun_of: None,
        requeue_of: None,
        fork: true,
        trigger: Some(serde_json::json!({ "github": { "ref": "refs/heads/main" }, "inputs": { "n": 1 } })),
        queued_at: at(0),
    }
}

fn a_run_records_its_jobs_and_steps_and_is_interrupted_by_a_restart(store: &dyn Store) {
    let first = store.create_run(&new_run("acme/app", "a1")).unwrap();
    let second = store.create_run(&new_run("acme/app", "b2")).unwrap();
    let at = at(10);
    let job = |job: &str, state| RunUpdate::Job { run: first, job: job.into(), state, at };
    let step = |position, state| RunUpdate::Step {
        run: first,
        job: "build".into(),
        position,
        name: format!("step {position}"),
        state,
        at,
    };
    store
        .update_runs(&[
            RunUpdate::Run { run: first, state: RunState::Running, at, reason: None },
            job("build", RunState::Queued),
            job("test", RunState::Queued),
            job("deploy", RunState::Waiting),
            job("build", RunState::Running),
            step(0, RunState::Running),
            step(0, RunState::Success),
            step(1, RunState::Running),
            job("test", RunState::Skipped),
        ])
        .unwrap();
    let detail = store.run(first).unwrap().expect("run");
    assert_eq!(detail.record.state, RunState::Running);
    assert_eq!(detail.record.started_at, Some(at));
    assert_eq!(detail.record.run, new_run("acme/app", "a1"), "what was created reads back");
    let jobs: Vec<(&str, RunState)> = detail.jobs.iter().map(|j| (j.name.as_str(), j.state)).collect();
    assert_eq!(jobs, [("build", RunState::Running), ("test", RunState::Skipped), ("deploy", RunState::Waiting)]);
    let steps: Vec<RunState> = detail.jobs[0].steps.iter().map(|s| s.state).collect();
    assert_eq!(steps, [RunState::Success, RunState::Running]);
    assert_eq!(detail.jobs[0].steps[0].name, "step 0");
    assert_eq!((detail.jobs[1].started_at, detail.jobs[1].finished_at), (None, Some(at)), "skipped: never started");
    assert!(detail.statuses.is_empty(), "no forge, no statuses");

    let interrupted = store.interrupt_in_flight(at).unwrap();
    assert_eq!(interrupted.iter().map(|r| r.id).collect::<Vec<_>>(), [first, second]);
    assert_eq!(interrupted[0].state, RunState::Running, "returned as they were");
    let after = store.run(first).unwrap().unwrap();
    assert_eq!(after.record.state, RunState::Interrupted);
    assert_eq!(after.record.reason.as_deref(), Some("the server stopped during the run"));
    assert_eq!(after.record.finished_at, Some(at));
    assert_eq!(after.jobs[0].state, RunState::Interrupted);
    assert_eq!(after.jobs[0].steps[1].state, RunState::Interrupted);
    assert_eq!(after.jobs[0].steps[0].state, RunState::Success, "finished steps keep their state");
    assert_eq!(after.jobs[1].state, RunState::Skipped, "finished jobs keep their state");
    assert_eq!(after.jobs[2].state, RunState::Interrupted, "a job waiting for review is interrupted too");
    assert!(store.interrupt_in_flight(at).unwrap().is_empty());
    assert!(store.run(999).unwrap().is_none());

    // A run that ends keeps the first reason given unless a new one is.
    store
        .update_runs(&[
            RunUpdate::Run { run: second, state: RunState::Cancelled, at, reason: Some("by alice".into()) },
            RunUpdate::Run { run: second, state: RunState::Cancelled, at, reason: None },
        ])
        .unwrap();
    assert_eq!(store.run(second).unwrap().unwrap().record.reason.as_deref(), Some("by alice"));
}

fn runs_are_listed_newest_first_and_filtered(store: &dyn Store) {
    let mut plain = new_run("acme/web", "c3");
    (plain.branch, plain.trigger, plain.before_sha, plain.fork) = (None, None, None, false);
    let a = store.create_run(&new_run("acme/app", "a1")).unwrap();
    let b = store.create_run(&plain).unwrap();
    let c = store.create_run(&new_run("acme/app", "b2")).unwrap();
    assert_eq!(store.run(b).unwrap().unwrap().record.run, plain, "NULLs read back as None");
    store.update_runs(&[RunUpdate::Run { run: c, state: RunState::Success, at: at(5), reason: None }]).unwrap();
    let ids = |query: RunQuery| store.runs(&query).unwrap().iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(RunQuery::default()), [c, b, a]);
    assert_eq!(ids(RunQuery { limit: 2, ..RunQuery::default() }), [c, b]);
    assert_eq!(ids(RunQuery { before: Some(b), ..RunQuery::default() }), [a]);
    assert_eq!(ids(RunQuery { repository: Some("acme/app".into()), ..RunQuery::default() }), [c, a]);
    assert_eq!(ids(RunQuery { state: Some(RunState::Queued), ..RunQuery::default() }), [b, a]);
    assert_eq!(ids(RunQuery { branch: Some("main".into()), ..RunQuery::default() }), [c, a]);
    let success = store.runs(&RunQuery { state: Some(RunState::Success), ..RunQuery::default() }).unwrap();
    assert_eq!((success[0].finished_at, success[0].started_at), (Some(at(5)), None));
}

fn heads_are_unknown_until_recorded_then_replaced_whole(store: &dyn Store) {
    assert_eq!(store.repository_heads("acme/app").unwrap(), None);
    store.set_repository_heads("acme/app", &Default::default()).unwrap();
    assert_eq!(store.repository_heads("acme/app").unwrap(), Some(Default::default()));
    let heads = [("main".to_owned(), "a1".to_owned()), ("dev".to_owned(), "b2".to_owned())].into();
    store.set_repository_heads("acme/app", &heads).unwrap();
    assert_eq!(store.repository_heads("acme/app").unwrap(), Some(heads));
    store.set_repository_heads("acme/app", &[("main".to_owned(), "c3".to_owned())].into()).unwrap();
    assert_eq!(store.repository_heads("acme/app").unwrap(), Some([("main".to_owned(), "c3".to_owned())].into()));
    assert_eq!(store.repository_heads("acme/other").unwrap(), None);
}

fn removing_a_repository_forgets_its_heads_and_forge(store: &dyn Store) {
    let repository = Repository { name: "acme/app".into(), path: "/m/app.git".into(), credentials: None };
    store.add_repository(&repository).unwrap();
    store.set_repository_heads("acme/app", &[("main".to_owned(), "a1".to_owned())].into()).unwrap();
    store.set_forge(&forge("acme/app")).unwrap();
    let run = store.create_run(&new_run("acme/app", "a1")).unwrap();
    assert!(store.remove_repository("acme/app").unwrap());
    assert!(!store.remove_repository("acme/app").unwrap(), "removing twice finds nothing");
    assert_eq!(store.repositories().unwrap(), vec![]);
    assert_eq!(store.repository_heads("acme/app").unwrap(), None);
    assert_eq!(store.forge("acme/app").unwrap(), None);
    assert!(store.run(run).unwrap().is_some(), "its runs stay");
}

fn rollouts_insert_update_and_filter(store: &dyn Store) {
    let row = |id, environment: &str, active| RolloutRow {
        id,
        service: "shop".into(),
        environment: environment.into(),
        phase: "progressing".into(),
        active,
        body: "{\"step\":1}".into(),
        created: at(0),
        updated: at(0),
    };
    let first = store.save_rollout(&row(0, "production", true)).unwrap();
    let second = store.save_rollout(&row(0, "staging", false)).unwrap();
    let active = RolloutQuery { active_only: true, ..RolloutQuery::default() };
    assert_eq!(store.rollouts(&active).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
    let mut done = row(first, "production", false);
    (done.phase, done.updated, done.body) = ("succeeded".into(), at(60), "{\"step\":2}".into());
    assert_eq!(store.save_rollout(&done).unwrap(), first);
    assert!(store.save_rollout(&row(99, "production", true)).is_err(), "no such rollout");
    let all = store.rollouts(&RolloutQuery::default()).unwrap();
    assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [second, first]);
    assert_eq!(all[1], done, "replaced, its creation kept");
    let production = RolloutQuery { environment: Some("production".into()), ..RolloutQuery::default() };
    assert_eq!(store.rollouts(&production).unwrap().len(), 1);
    assert!(store.rollouts(&active).unwrap().is_empty());
    let mut cart = row(0, "production", false);
    cart.service = "cart".into();
    let cart = store.save_rollout(&cart).unwrap();
    let latest = RolloutQuery { latest_per_service: true, ..RolloutQuery::default() };
    let ids: Vec<i64> = store.rollouts(&latest).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, [cart, second], "each service's newest rollout, in any environment");
    let shop = RolloutQuery { service: Some("shop".into()), before: Some(second), limit: 1, ..RolloutQuery::default() };
    assert_eq!(store.rollouts(&shop).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [first]);
}

fn forge(repository: &str) -> ForgeSettings {
    ForgeSettings {
        repository: repository.into(),
        kind: ForgeKind::Github,
        api_url: "https://api.github.com".into(),
        token_secret: None,
        project: None,
    }
}

/// A pull request's run is on the merge commit; its statuses go on the pull request's head.
fn pull_request_statuses_go_on_the_head_commit(store: &dyn Store) {
    store.set_forge(&forge("acme/app")).unwrap();
    let mut pr = new_run("acme/app", "merge");
    (pr.event, pr.branch) = ("pull_request".into(), None);
    pr.trigger = Some(serde_json::json!({ "github": {
        "head_ref": "feature", "event": { "pull_request": { "head": { "sha": "head" } } } } }));
    let pr = store.create_run(&pr).unwrap();
    let queued = |run| RunUpdate::Job { run, job: "build".into(), state: RunState::Queued, at: at(1) };
    store.update_runs(&[queued(pr)]).unwrap();
    let mut push = new_run("acme/app", "pushed");
    push.trigger = None;
    let push = store.create_run(&push).unwrap();
    store.update_runs(&[queued(push)]).unwrap();
    let pending = store.pending_statuses(10).unwrap();
    let seen: Vec<_> = pending.iter().map(|p| (p.run, p.sha.as_str(), p.branch.as_deref())).collect();
    assert_eq!(seen, [(pr, "head", Some("feature")), (push, "pushed", Some("main"))]);
}

/// The outbox is written with the job states themselves, once per state change, only for
/// repositories that report to a forge; a restart reports the jobs it interrupts.
fn job_states_of_forge_repositories_enter_the_outbox_in_the_same_transaction(store: &dyn Store) {
    let at = at(10);
    let job = |run, job: &str, state| RunUpdate::Job { run, job: job.into(), state, at };
    let quiet = store.create_run(&new_run("acme/quiet", "a1b2")).unwrap();
    store.update_runs(&[job(quiet, "build", RunState::Queued)]).unwrap();
    assert!(store.pending_statuses(10).unwrap().is_empty(), "no forge, no statuses");

    let gitlab = ForgeSettings {
        repository: "acme/app".into(),
        kind: ForgeKind::Gitlab,
        api_url: "https://gitlab.example/api/v4".into(),
        token_secret: Some("GITLAB_TOKEN".into()),
        project: Some("acme/app-project".into()),
    };
    store.set_forge(&forge("acme/app")).unwrap();
    store.set_forge(&gitlab).unwrap();
    assert_eq!(store.forge("acme/app").unwrap(), Some(gitlab), "replaced");
    let mut run = new_run("acme/app", "a1b2");
    run.trigger = None;
    let run = store.create_run(&run).unwrap();
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
    assert_eq!(store.pending_statuses(2).unwrap().len(), 2, "up to the limit");
    assert_eq!((pending[0].sha.as_str(), pending[0].branch.as_deref()), ("a1b2", Some("main")));
    assert_eq!((pending[0].attempts, pending[0].next_attempt, pending[0].repository.as_str()), (0, at0(), "acme/app"));
    let outcome = |id, delivery, attempts, error: Option<&str>| StatusOutcome {
        id,
        delivery,
        attempts,
        next_attempt: at,
        error: error.map(str::to_owned),
        at,
    };
    store
        .record_status_outcomes(&[
            outcome(pending[0].id, Delivery::Delivered, 1, None),
            outcome(pending[1].id, Delivery::Pending, 3, Some("the forge answered 503")),
            outcome(pending[1].id, Delivery::Pending, 2, None),
        ])
        .unwrap();
    assert_eq!(store.pending_statuses(10).unwrap().len(), 3);
    let shown = store.run(run).unwrap().unwrap().statuses;
    assert_eq!(shown.len(), 4);
    assert_eq!((shown[0].delivery, shown[0].attempts, shown[0].updated), (Delivery::Delivered, 1, at));
    assert_eq!(shown[1].attempts, 3, "the store never lowers the count it has");
    assert_eq!(shown[1].last_error.as_deref(), Some("the forge answered 503"), "kept when no new error");

    // A restart interrupts `test` (queued) and reports it; `build` had ended.
    store.interrupt_in_flight(at).unwrap();
    let last = store.pending_statuses(10).unwrap().pop().unwrap();
    assert_eq!((last.context.as_str(), last.state), ("mobius/CI/test", RunState::Interrupted));

    assert!(store.remove_forge("acme/app").unwrap());
    assert!(!store.remove_forge("acme/app").unwrap());
    let later = store.create_run(&new_run("acme/app", "c3")).unwrap();
    store.update_runs(&[job(later, "build", RunState::Queued)]).unwrap();
    assert!(store.run(later).unwrap().unwrap().statuses.is_empty(), "reporting stopped");
}

/// A status not attempted yet may be sent at once: its next attempt is the epoch.
fn at0() -> jiff::Timestamp {
    jiff::Timestamp::UNIX_EPOCH
}
