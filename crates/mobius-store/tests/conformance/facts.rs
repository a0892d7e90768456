//! Facts: scopes, a scope's facts, every scope of an environment at once, deployments by id,
//! incidents and artifacts; and the DORA golden histories give the same facts on both backends.

use jiff::Timestamp;
use mobius_events::facts::PipelineRunKind;
use mobius_events::materialise::{NoAncestry, Rules};
use mobius_events::observation::{
    ArtifactBuilt, DeploymentObserved, DeploymentOutcome, IncidentObserved, Observation, PipelineRunObserved,
};
use mobius_events::{NewEvent, Origin};
use mobius_store::{EventQuery, IngestContext, Scope, Store};

use crate::at;

crate::conformance!(
    scopes_are_every_distinct_service_and_environment_in_bytewise_order,
    pipeline_runs_merge_what_each_event_says_and_artifacts_are_found_by_id_or_revision,
    the_golden_histories_read_back_consistently,
);

const GOLDEN: [&str; 3] = [
    include_str!("../../../mobius/tests/golden/github-incident-with-root-cause/events.ndjson"),
    include_str!("../../../mobius/tests/golden/rollback-and-incident-attribution/events.ndjson"),
    include_str!("../../../mobius/tests/golden/squash-and-multi-commit-pushes/events.ndjson"),
];

/// Every golden DORA history, appended as `mobius events import` would (without git ancestry).
fn ingest_golden(store: &dyn Store) {
    let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
    for history in GOLDEN {
        let events: Vec<NewEvent> = mobius_events::record::parse_many(history, Origin::Import)
            .unwrap()
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!events.is_empty());
        store.append(&events, &ctx).unwrap();
    }
}

/// All of time the histories could hold.
fn always() -> (Timestamp, Timestamp) {
    (Timestamp::from_second(0).unwrap(), Timestamp::from_second(4_102_444_800).unwrap())
}

fn with_observation(id: usize, observation: Observation) -> NewEvent {
    NewEvent {
        id: format!("o{id}"),
        source: "/test".into(),
        ty: "dev.cdevents.service.deployed.0.2.0".into(),
        subject: "thing".into(),
        timestamp: at(id as i64),
        origin: Origin::Api,
        raw: "{}".into(),
        observations: vec![observation],
    }
}

/// The skip scan finds exactly what `SELECT DISTINCT` would, in bytewise order (`B` before `a`,
/// `é` last), whatever the database's locale.
fn scopes_are_every_distinct_service_and_environment_in_bytewise_order(store: &dyn Store) {
    assert_eq!(store.scopes().unwrap(), Vec::new(), "an empty store has none");
    let services = ["web", "a b", "B", "api", "é", "<script>", "api-2"];
    let environments = ["production", "staging", "", "Prod"];
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for (i, service) in services.iter().enumerate() {
        for environment in environments.iter().skip(i % 3) {
            for outcome in [DeploymentOutcome::Success, DeploymentOutcome::Failure] {
                let n = events.len();
                events.push(with_observation(
                    n,
                    Observation::Deployment(DeploymentObserved {
                        key: format!("d{n}"),
                        service: (*service).into(),
                        environment: (*environment).into(),
                        repository: None,
                        revision: None,
                        artifact_id: None,
                        started: at(n as i64),
                        finished: at(n as i64),
                        outcome,
                    }),
                ));
            }
            expected.push(Scope { service: (*service).into(), environment: (*environment).into() });
        }
    }
    for (key, service, environment) in
        [("i1", "only-incidents", "production"), ("i2", "web", "dr"), ("i3", "web", "staging")]
    {
        events.push(with_observation(
            events.len(),
            Observation::Incident(IncidentObserved {
                key: key.into(),
                service: service.into(),
                environment: environment.into(),
                title: "t".into(),
                detected: Some(at(0)),
                acknowledged: None,
                resolved: None,
                reopened: false,
                cause: None,
                severity: None,
            }),
        ));
        expected.push(Scope { service: service.into(), environment: environment.into() });
    }
    store.append(&events, &IngestContext { rules: Rules::default(), ancestry: &NoAncestry }).unwrap();
    expected.sort_by(|a, b| {
        (a.service.as_bytes(), a.environment.as_bytes()).cmp(&(b.service.as_bytes(), b.environment.as_bytes()))
    });
    expected.dedup();
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(store.scopes().unwrap(), expected);
}

/// A pipeline run's events arrive in any order: the earliest queue and start win, a name or a
/// finish is never erased by an event without one.
fn pipeline_runs_merge_what_each_event_says_and_artifacts_are_found_by_id_or_revision(store: &dyn Store) {
    let run = |name: &str, queued: Option<i64>, started: Option<i64>, finished: Option<i64>| {
        Observation::PipelineRun(PipelineRunObserved {
            key: "github:acme/app/runs/1".into(),
            kind: PipelineRunKind::Run,
            name: name.into(),
            repository: finished.map(|_| "acme/app".into()),
            revision: Some("abc123".into()),
            branch: None,
            queued: queued.map(at),
            started: started.map(at),
            finished: finished.map(at),
            outcome: finished.map(|_| "success".into()),
        })
    };
    let artifact = |revision: &str| {
        Observation::Artifact(ArtifactBuilt {
            artifact_id: "pkg:oci/shop@sha256:1".into(),
            repository: Some("acme/app".into()),
            revision: revision.into(),
        })
    };
    let deployed = Observation::Deployment(DeploymentObserved {
        key: "deploy-1".into(),
        service: "shop".into(),
        environment: "production".into(),
        repository: Some("acme/app".into()),
        revision: Some("abc123".into()),
        artifact_id: Some("pkg:oci/shop@sha256:1".into()),
        started: at(95),
        finished: at(100),
        outcome: DeploymentOutcome::Success,
    });
    let observations = [
        artifact("old"),
        artifact("abc123"),
        run("", None, Some(50), Some(90)),
        run("CI", Some(10), Some(60), None),
        run("", Some(20), None, None),
        deployed,
    ];
    let events: Vec<NewEvent> = observations.into_iter().enumerate().map(|(i, o)| with_observation(i, o)).collect();
    store.append(&events, &IngestContext { rules: Rules::default(), ancestry: &NoAncestry }).unwrap();

    let scope = Scope { service: "shop".into(), environment: "production".into() };
    let (from, to) = always();
    let facts = store.facts(&scope, from, to).unwrap();
    assert_eq!(facts.deployments.len(), 1);
    assert_eq!(facts.pipeline_runs.len(), 1, "{:?}", facts.pipeline_runs);
    let merged = &facts.pipeline_runs[0];
    assert_eq!(merged.name, "CI");
    assert_eq!((merged.queued, merged.started, merged.finished), (Some(at(10)), Some(at(50)), Some(at(90))));
    assert_eq!((merged.repository.as_deref(), merged.outcome.as_deref()), (Some("acme/app"), Some("success")));

    let found = Some(("pkg:oci/shop@sha256:1".to_owned(), Some("abc123".to_owned())));
    assert_eq!(store.artifact("pkg:oci/shop@sha256:1").unwrap(), found, "the latest report of it");
    assert_eq!(store.artifact("abc123").unwrap(), found, "by the revision it was built from");
    assert_eq!(store.artifact("old").unwrap(), None);
}

fn the_golden_histories_read_back_consistently(store: &dyn Store) {
    ingest_golden(store);
    let (from, to) = always();
    let scopes = store.scopes().unwrap();
    assert!(scopes.iter().any(|s| s.environment == "production") && scopes.iter().any(|s| s.environment == "staging"));
    let mut all_deployments = Vec::new();
    for environment in ["production", "staging", "nowhere"] {
        let together = store.facts_of_environment(environment, from, to).unwrap();
        let one_by_one: Vec<_> = scopes
            .iter()
            .filter(|s| s.environment == environment)
            .map(|s| (s.clone(), store.facts(s, from, to).unwrap()))
            .collect();
        assert_eq!(together, one_by_one, "{environment}: one read gives what a read per scope does");
        for (_, facts) in together {
            all_deployments.extend(facts.deployments);
        }
    }
    assert!(all_deployments.len() >= 5, "{all_deployments:?}");
    all_deployments.sort_by_key(|d| d.id);
    let mut ids: Vec<i64> = all_deployments.iter().rev().map(|d| d.id).collect();
    ids.push(9_999);
    assert_eq!(store.deployments(&ids).unwrap(), all_deployments, "those that exist, in id order");
    assert_eq!(store.deployments(&[]).unwrap(), vec![]);

    let incidents = store.incidents().unwrap();
    assert!(!incidents.is_empty());
    assert!(incidents.windows(2).all(|w| w[0].detected >= w[1].detected), "newest first");
    // Artifacts are known from `artifact.packaged` events, by id or by the revision built.
    for deployment in &all_deployments {
        if let Some((found, revision)) = deployment.artifact_id.as_ref().and_then(|a| store.artifact(a).unwrap()) {
            assert_eq!(Some(&found), deployment.artifact_id.as_ref());
            if let Some(revision) = revision {
                assert_eq!(store.artifact(&revision).unwrap().map(|(_, r)| r), Some(Some(revision)));
            }
        }
    }
    assert_eq!(store.artifact("no-such-artifact").unwrap(), None);

    // A window that ends before everything holds nothing.
    let scope = &scopes[0];
    let empty = store.facts(scope, from, Timestamp::from_second(1).unwrap()).unwrap();
    assert!(empty.deployments.is_empty() && empty.changes.is_empty() && empty.incidents.is_empty());
}

/// The same histories give the same facts, field for field, on SQLite and on PostgreSQL.
#[test]
fn the_golden_histories_give_identical_facts_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = mobius_store::SqliteStore::open(dir.path()).unwrap();
    let database = crate::cluster::Database::create();
    let postgres = mobius_store::PgStore::connect(&database.url).unwrap();
    ingest_golden(&sqlite);
    ingest_golden(&postgres);
    // Appending them again is all duplicates, and changes nothing on either.
    ingest_golden(&sqlite);
    ingest_golden(&postgres);

    let scopes = sqlite.scopes().unwrap();
    assert_eq!(postgres.scopes().unwrap(), scopes);
    let (from, to) = always();
    for scope in &scopes {
        let facts = sqlite.facts(scope, from, to).unwrap();
        assert!(!facts.deployments.is_empty() || !facts.incidents.is_empty(), "{scope:?}");
        assert_eq!(postgres.facts(scope, from, to).unwrap(), facts, "{scope:?}");
        // A window in the middle of the history, too.
        let (a, b) = (at(-400 * 86_400), at(400 * 86_400));
        assert_eq!(postgres.facts(scope, a, b).unwrap(), sqlite.facts(scope, a, b).unwrap(), "{scope:?}");
    }
    assert_eq!(postgres.incidents().unwrap(), sqlite.incidents().unwrap());
    let every = sqlite.deployments(&(0..1_000).collect::<Vec<_>>()).unwrap();
    assert_eq!(postgres.deployments(&(0..1_000).collect::<Vec<_>>()).unwrap(), every);
    for key in every.iter().flat_map(|d| [d.artifact_id.clone(), d.revision.clone()]).flatten() {
        assert_eq!(postgres.artifact(&key).unwrap(), sqlite.artifact(&key).unwrap(), "{key}");
    }
    let strip = |store: &dyn Store| -> Vec<_> {
        let query = EventQuery { limit: 10_000, ..EventQuery::default() };
        store
            .events(&query)
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.source, e.id, e.ty, e.subject, e.timestamp, e.origin, e.raw))
            .collect()
    };
    assert_eq!(strip(&postgres), strip(&sqlite), "the same log, in the same order");
    drop(postgres);
    drop(database);
}
