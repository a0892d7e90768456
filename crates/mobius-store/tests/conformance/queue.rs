//! The run queue and the commit status claims: what replicas sharing a store claim, each
//! thing by exactly one of them.

use std::collections::BTreeSet;

use mobius_store::{
    Delivery, ForgeKind, ForgeSettings, NewRun, PendingStatus, RunState, RunUpdate, StatusOutcome, Store, driver_key,
};

use crate::at;

crate::conformance!(
    concurrent_claimers_get_every_queued_run_exactly_once,
    a_concurrency_group_stays_with_the_driver_of_its_run_in_flight,
    a_run_asked_for_by_id_is_claimed_only_while_nobody_drives_it,
    a_planner_claims_its_run_as_it_stores_it_unless_another_drives_its_group,
    two_holders_never_hold_one_status_and_a_lapsed_claim_is_claimable,
    a_context_waiting_for_its_retry_is_nobodys_until_it_is_due,
    concurrent_status_claimers_share_nothing,
);

fn queued(sha: &str, group: Option<&str>) -> NewRun {
    NewRun {
        repository: "acme/app".into(),
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_name: "CI".into(),
        event: "push".into(),
        branch: Some("main".into()),
        sha: sha.into(),
        before_sha: None,
        concurrency_group: group.map(str::to_owned),
        cancel_in_progress: false,
        only_jobs: Vec::new(),
        attempt: 1,
        rerun_of: None,
        requeue_of: None,
        queued_at: at(0),
        fork: false,
        trigger: Some(serde_json::json!({ "github": { "ref": "refs/heads/main" }, "inputs": {} })),
    }
}

fn concurrent_claimers_get_every_queued_run_exactly_once(store: &dyn Store) {
    let ids: BTreeSet<i64> = (0..24).map(|n| store.create_run(&queued(&format!("c{n}"), None)).unwrap()).collect();
    assert!(!store.run(*ids.first().unwrap()).unwrap().unwrap().record.claimed, "nobody drives a queued run");
    let claims: Vec<(String, i64)> = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..4)
            .map(|n| {
                scope.spawn(move || {
                    let driver = format!("node-{n} replica-{n}");
                    let mut mine = Vec::new();
                    while let Some(id) = store.claim_run(&driver, None).unwrap() {
                        mine.push((driver.clone(), id));
                    }
                    mine
                })
            })
            .collect();
        claimers.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let claimed: BTreeSet<i64> = claims.iter().map(|(_, id)| *id).collect();
    assert_eq!(claims.len(), ids.len(), "no run claimed twice: {claims:?}");
    assert_eq!(claimed, ids, "every run claimed");
    assert_eq!(store.claim_run("node-9 replica-9", None).unwrap(), None, "nothing left");
    for (driver, id) in &claims {
        assert_eq!(store.state(&driver_key(*id)).unwrap().as_deref(), Some(driver.as_str()), "run {id}'s driver");
        let record = store.run(*id).unwrap().unwrap().record;
        assert!(record.claimed && record.state == RunState::Queued, "claimed, still queued until it starts");
    }
    // A process that names no driver claims without recording one.
    let unnamed = store.create_run(&queued("d", None)).unwrap();
    assert_eq!(store.claim_run("", None).unwrap(), Some(unnamed));
    assert_eq!(store.state(&driver_key(unnamed)).unwrap(), None);
    assert!(store.run(unnamed).unwrap().unwrap().record.claimed);
}

fn a_concurrency_group_stays_with_the_driver_of_its_run_in_flight(store: &dyn Store) {
    let (a, b) = ("node-a replica-a", "node-b replica-b");
    let first = store.create_run(&queued("g1", Some("ci-main"))).unwrap();
    let second = store.create_run(&queued("g2", Some("ci-main"))).unwrap();
    let free = store.create_run(&queued("f", None)).unwrap();
    assert_eq!(store.claim_run(a, None).unwrap(), Some(first));
    assert_eq!(store.claim_run(b, None).unwrap(), Some(free), "the group's next run is left for its driver");
    assert_eq!(store.claim_run(b, None).unwrap(), None);
    assert_eq!(store.claim_run(a, None).unwrap(), Some(second), "its driver takes it");
    let third = store.create_run(&queued("g3", Some("ci-main"))).unwrap();
    let end = |run| RunUpdate::Run { run, state: RunState::Success, at: at(5), reason: None };
    store.update_runs(&[end(first)]).unwrap();
    assert_eq!(store.claim_run(b, None).unwrap(), None, "a run of the group is still in flight under a");
    store.update_runs(&[end(second)]).unwrap();
    assert_eq!(store.claim_run(b, None).unwrap(), Some(third), "the group is free once its runs ended");
}

fn a_run_asked_for_by_id_is_claimed_only_while_nobody_drives_it(store: &dyn Store) {
    let (a, b) = ("node-a replica-a", "node-b replica-b");
    let held = store.create_run(&queued("h", Some("ci-main"))).unwrap();
    let asked = store.create_run(&queued("q", Some("ci-main"))).unwrap();
    assert_eq!(store.claim_run(a, None).unwrap(), Some(held));
    assert_eq!(store.claim_run(b, Some(held)).unwrap(), None, "already driven");
    assert_eq!(store.claim_run(b, Some(asked)).unwrap(), Some(asked), "by id, whatever its group");
    assert_eq!(store.claim_run(a, Some(asked)).unwrap(), None);
    assert_eq!(store.claim_run(a, Some(asked + 100)).unwrap(), None, "no such run");
    let ended = store.create_run(&queued("e", None)).unwrap();
    let at = at(5);
    store.update_runs(&[RunUpdate::Run { run: ended, state: RunState::Cancelled, at, reason: None }]).unwrap();
    assert_eq!(store.claim_run(a, Some(ended)).unwrap(), None, "only queued runs");
    assert_eq!(store.claim_run(a, None).unwrap(), None);
}

fn a_planner_claims_its_run_as_it_stores_it_unless_another_drives_its_group(store: &dyn Store) {
    let (a, b) = ("node-a replica-a", "node-b replica-b");
    let (mine, claimed) = store.queue_run(&queued("p", Some("ci-main")), a).unwrap();
    assert!(claimed);
    assert_eq!(store.state(&driver_key(mine)).unwrap().as_deref(), Some(a));
    let (other, claimed) = store.queue_run(&queued("q", Some("ci-main")), b).unwrap();
    assert!(!claimed, "a drives the group: the run waits for a");
    assert!(!store.run(other).unwrap().unwrap().record.claimed);
    assert_eq!(store.claim_run(a, None).unwrap(), Some(other));
    let (free, claimed) = store.queue_run(&queued("r", None), b).unwrap();
    assert!(claimed && store.claim_run(a, Some(free)).unwrap().is_none(), "nobody else takes it");
}

/// Two runs of a forge repository, two jobs each with two states: four contexts, eight
/// statuses.
fn outbox(store: &dyn Store) {
    store
        .set_forge(&ForgeSettings {
            repository: "acme/app".into(),
            kind: ForgeKind::Github,
            api_url: "https://api.github.example".into(),
            token_secret: None,
            project: None,
        })
        .unwrap();
    for sha in ["s1", "s2"] {
        let run = store.create_run(&queued(sha, None)).unwrap();
        let job = |job: &str, state| RunUpdate::Job { run, job: job.into(), state, at: at(1) };
        store
            .update_runs(&[
                job("build", RunState::Queued),
                job("test", RunState::Queued),
                job("build", RunState::Running),
                job("test", RunState::Running),
            ])
            .unwrap();
    }
}

fn contexts(statuses: &[PendingStatus]) -> BTreeSet<(i64, String)> {
    statuses.iter().map(|s| (s.run, s.context.clone())).collect()
}

fn two_holders_never_hold_one_status_and_a_lapsed_claim_is_claimable(store: &dyn Store) {
    outbox(store);
    let (now, until) = (at(10), at(70));
    // A small claim takes its limit, oldest first, but no context is split: the rest of a
    // context it holds is nobody else's.
    let a = store.claim_statuses("replica-a", now, until, 3).unwrap();
    assert_eq!(a.len(), 3);
    assert!(a.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let b = store.claim_statuses("replica-b", now, until, 100).unwrap();
    assert_eq!(b.len(), 4, "the other run's four statuses: {b:?}");
    assert!(contexts(&a).is_disjoint(&contexts(&b)), "contexts are never split");
    assert!(store.claim_statuses("replica-c", now, until, 100).unwrap().is_empty(), "everything is held");
    // The holder renews its own claim, taking the rest of its contexts.
    let renewed = store.claim_statuses("replica-a", at(20), at(80), 100).unwrap();
    assert_eq!(renewed.len(), 4);
    assert!(renewed.iter().all(|s| s.run == a[0].run));

    // An outcome ends the claim; a pending one (a retry) may go to anyone then.
    let outcome =
        |id, delivery| StatusOutcome { id, delivery, attempts: 1, next_attempt: at(21), error: None, at: at(21) };
    store
        .record_status_outcomes(&[
            outcome(renewed[0].id, Delivery::Delivered),
            outcome(renewed[1].id, Delivery::Pending),
        ])
        .unwrap();
    let c = store.claim_statuses("replica-c", at(21), at(90), 100).unwrap();
    assert!(c.is_empty(), "the rest of that context is still a's: {c:?}");

    // Replicas a and b die mid-send: once their claims lapsed, another takes their contexts
    // whole again, in order.
    let taken = store.claim_statuses("replica-c", at(81), at(150), 100).unwrap();
    let mut lapsed: Vec<i64> = renewed[1..].iter().chain(&b).map(|s| s.id).collect();
    lapsed.sort_unstable();
    assert_eq!(taken.iter().map(|s| s.id).collect::<Vec<_>>(), lapsed, "the lapsed claims, in order");
    assert_eq!(taken[0].attempts, 1, "the attempt made is counted");
    assert!(store.claim_statuses("replica-a", at(82), at(160), 100).unwrap().is_empty(), "c holds them now");
}

fn a_context_waiting_for_its_retry_is_nobodys_until_it_is_due(store: &dyn Store) {
    outbox(store);
    let claimed = store.claim_statuses("replica-a", at(10), at(70), 100).unwrap();
    let run = claimed[0].run;
    let failed = |s: &PendingStatus| StatusOutcome {
        id: s.id,
        delivery: Delivery::Pending,
        attempts: 1,
        next_attempt: at(40),
        error: Some("github answered 503".into()),
        at: at(11),
    };
    // Every status of one run failed, to be tried again at 40; the other run's are delivered.
    let outcomes: Vec<StatusOutcome> = claimed
        .iter()
        .map(|s| if s.run == run { failed(s) } else { StatusOutcome { delivery: Delivery::Delivered, ..failed(s) } })
        .collect();
    store.record_status_outcomes(&outcomes).unwrap();
    // Replica a stops while they wait: nothing is held, nobody takes them before 40, and any
    // replica (a new process among them) takes them once due.
    assert!(store.claim_statuses("replica-a", at(20), at(80), 100).unwrap().is_empty(), "not due: not claimed");
    assert!(store.claim_statuses("replica-b", at(39), at(99), 100).unwrap().is_empty());
    let due = store.claim_statuses("replica-b", at(40), at(100), 100).unwrap();
    assert!(!due.is_empty() && due.iter().all(|s| s.run == run), "{due:?}");
    assert_eq!(due.len(), outcomes.iter().filter(|o| o.delivery == Delivery::Pending).count());
}

fn concurrent_status_claimers_share_nothing(store: &dyn Store) {
    outbox(store);
    outbox(store);
    let claims: Vec<Vec<PendingStatus>> = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..4)
            .map(|n| scope.spawn(move || store.claim_statuses(&format!("replica-{n}"), at(10), at(70), 3).unwrap()))
            .collect();
        claimers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut seen = BTreeSet::new();
    for (n, claim) in claims.iter().enumerate() {
        for status in claim {
            assert!(seen.insert(status.id), "status {} claimed twice (replica-{n})", status.id);
        }
    }
    for (n, m) in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] {
        assert!(contexts(&claims[n]).is_disjoint(&contexts(&claims[m])), "a context split between {n} and {m}");
    }
}
