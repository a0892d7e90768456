//! Bulk imports: what `Store::import` stores is what appending the same events one at a time
//! stores — the same statuses, the same log in the same order, the same facts — on each backend,
//! whatever the batches.

use jiff::Timestamp;
use mobius_events::facts::{Deployment, FactSet, Incident, PipelineRunKind};
use mobius_events::materialise::{NoAncestry, Rules};
use mobius_events::observation::{
    ArtifactBuilt, DeploymentObserved, DeploymentOutcome, IncidentObserved, Observation, PipelineRunObserved,
};
use mobius_events::{AppendStatus, NewEvent, Origin};
use mobius_store::{EventQuery, IngestContext, PgStore, Scope, SqliteStore, Store};

use crate::at;

const GOLDEN: [&str; 3] = [
    include_str!("../../../mobius/tests/golden/github-incident-with-root-cause/events.ndjson"),
    include_str!("../../../mobius/tests/golden/rollback-and-incident-attribution/events.ndjson"),
    include_str!("../../../mobius/tests/golden/squash-and-multi-commit-pushes/events.ndjson"),
];

fn ctx() -> IngestContext<'static> {
    IngestContext { rules: Rules::default(), ancestry: &NoAncestry }
}

fn event(id: &str, origin: Origin, raw: &str, observations: Vec<Observation>) -> NewEvent {
    NewEvent {
        id: id.into(),
        source: "/import-test".into(),
        ty: "dev.cdevents.pipelinerun.finished.0.2.0".into(),
        subject: "thing".into(),
        timestamp: at(id.len() as i64),
        origin,
        raw: raw.into(),
        observations,
    }
}

fn run(name: &str, queued: Option<i64>, started: Option<i64>, finished: Option<i64>) -> Observation {
    Observation::PipelineRun(PipelineRunObserved {
        key: "run-1".into(),
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
}

/// An incident of `app` in production, detected at `detected`.
fn incident(key: &str, detected: i64) -> Observation {
    Observation::Incident(IncidentObserved {
        key: key.into(),
        service: "app".into(),
        environment: "production".into(),
        title: "slow".into(),
        detected: Some(at(detected)),
        acknowledged: None,
        resolved: None,
        reopened: false,
        cause: None,
        severity: None,
    })
}

fn artifact(revision: &str) -> Observation {
    Observation::Artifact(ArtifactBuilt {
        artifact_id: "pkg:oci/app@sha256:1".into(),
        repository: Some("acme/app".into()),
        revision: revision.into(),
    })
}

/// Every golden history, then again (all duplicates), then events made for what an import
/// does per batch rather than per event: a key twice in a batch, a signed delivery over its
/// imported record (in the batch that stored the record and in a later one), one pipeline run
/// and one artifact reported several times in a batch, a deployment of them reported twice, and
/// incidents
/// that arrive before it (in an earlier batch and in its own) and are attributed to it when it
/// does, or are not since they are too late.
fn history() -> Vec<NewEvent> {
    let mut events: Vec<NewEvent> = Vec::new();
    for _ in 0..2 {
        for history in GOLDEN {
            let parsed = mobius_events::record::parse_many(history, Origin::Import).unwrap();
            events.extend(parsed.into_iter().map(Result::unwrap));
        }
    }
    let deployed = Observation::Deployment(DeploymentObserved {
        key: "deploy-app".into(),
        service: "app".into(),
        environment: "production".into(),
        repository: Some("acme/app".into()),
        revision: Some("abc123".into()),
        artifact_id: Some("pkg:oci/app@sha256:1".into()),
        started: at(95),
        finished: at(100),
        outcome: DeploymentOutcome::Success,
    });
    events.extend([
        event("i", Origin::Api, "{}", vec![incident("inc-early", 3_600)]),
        event("ii", Origin::Api, "{}", vec![incident("inc-too-late", 100 + 2 * 86_400)]),
        event("a", Origin::Api, "{}", vec![artifact("old")]),
        event("a", Origin::Api, "{\"again\":1}", vec![artifact("older")]),
        event("b", Origin::Api, "{}", vec![artifact("abc123"), run("", None, Some(50), Some(90))]),
        event("cc", Origin::Api, "{}", vec![run("CI", Some(10), Some(60), None), incident("inc-close", 160)]),
        event("ddd", Origin::Api, "{}", vec![run("", Some(20), None, None), deployed.clone()]),
        // Another report of the same deployment: it is stored already.
        event("eeee", Origin::Api, "{}", vec![deployed]),
        event("signed", Origin::Import, "{\"forged\":1}", vec![run("forged", Some(5), None, None)]),
        event("signed", Origin::Github, "{\"signed\":1}", vec![run("signed", Some(7), None, None)]),
        event("signed", Origin::Github, "{\"signed\":1}", vec![]),
        event("later", Origin::Import, "{\"record\":1}", vec![]),
    ]);
    events.extend((0..12).map(|i| event(&format!("pad-{i}"), Origin::Api, "{}", vec![])));
    events.push(event("later", Origin::Gitlab, "{\"record\":1}", vec![]));
    events
}

/// Appends one event at a time.
fn by_append(store: &dyn Store, events: &[NewEvent]) -> Vec<AppendStatus> {
    events.iter().flat_map(|e| store.append(std::slice::from_ref(e), &ctx()).unwrap()).collect()
}

/// Imports in batches of `size`, checking each comes back whole and in order.
fn by_import(store: &dyn Store, events: &[NewEvent], size: usize) -> Vec<AppendStatus> {
    let mut batches = events.chunks(size).map(<[NewEvent]>::to_vec);
    let mut statuses = Vec::new();
    let mut back = 0;
    store
        .import(&mut batches, &ctx(), &mut |batch, appended| {
            assert_eq!(batch.len(), appended.len());
            assert_eq!(batch, events[back..back + batch.len()], "each batch comes back as it went");
            back += batch.len();
            statuses.extend(appended);
        })
        .unwrap();
    assert_eq!(back, events.len());
    statuses
}

/// An event of the log but when it was received: seq, source, id, type, subject, timestamp,
/// origin, body.
type Logged = (i64, String, String, String, String, Timestamp, Origin, String);

/// What a store holds, as measurements read it; when events were received is left out.
#[derive(Debug, PartialEq)]
struct Contents {
    log: Vec<Logged>,
    facts: Vec<(Scope, FactSet)>,
    incidents: Vec<Incident>,
    deployments: Vec<Deployment>,
    artifacts: Vec<Option<(String, Option<String>)>>,
}

fn contents(store: &dyn Store) -> Contents {
    let query = EventQuery { limit: 10_000, ..EventQuery::default() };
    let log = store.events(&query).unwrap().into_iter();
    let (from, to) = (Timestamp::from_second(0).unwrap(), Timestamp::from_second(4_102_444_800).unwrap());
    let facts: Vec<(Scope, FactSet)> =
        store.scopes().unwrap().into_iter().map(|s| (s.clone(), store.facts(&s, from, to).unwrap())).collect();
    for (scope, _) in &facts {
        let together = store.facts_of_environment(&scope.environment, from, to).unwrap();
        let alone: Vec<_> = facts.iter().filter(|(s, _)| s.environment == scope.environment).cloned().collect();
        assert_eq!(together, alone, "{}: one read gives what a read per scope does", scope.environment);
    }
    let deployments = store.deployments(&(0..1_000).collect::<Vec<_>>()).unwrap();
    let artifacts = deployments
        .iter()
        .flat_map(|d| [d.artifact_id.clone(), d.revision.clone()])
        .flatten()
        .map(|key| store.artifact(&key).unwrap())
        .collect();
    Contents {
        log: log.map(|e| (e.seq, e.source, e.id, e.ty, e.subject, e.timestamp, e.origin, e.raw)).collect(),
        facts,
        incidents: store.incidents().unwrap(),
        deployments,
        artifacts,
    }
}

#[test]
fn an_import_stores_what_appends_store_on_both_backends() {
    let events = history();
    let dir = tempfile::tempdir().unwrap();
    let appended = SqliteStore::open(&dir.path().join("appended")).unwrap();
    let statuses = by_append(&appended, &events);
    assert!(statuses.contains(&AppendStatus::Duplicate) && statuses.contains(&AppendStatus::Stored));
    let expected = contents(&appended);
    let signed = expected.log.iter().find(|e| e.2 == "signed").unwrap();
    assert_eq!((signed.6, signed.7.as_str()), (Origin::Github, "{\"signed\":1}"), "the signed delivery won");
    let app = &expected.facts.iter().find(|(s, _)| s.service == "app").unwrap().1;
    assert_eq!(app.pipeline_runs.len(), 1);
    let attributed: Vec<_> = app.incidents.iter().map(|i| (i.key.as_str(), i.deployment_id.is_some())).collect();
    assert_eq!(attributed, [("inc-close", true), ("inc-early", true), ("inc-too-late", false)]);

    for size in [1, 7, events.len()] {
        let imported = SqliteStore::open(&dir.path().join(format!("imported-{size}"))).unwrap();
        assert_eq!(by_import(&imported, &events, size), statuses, "SQLite, batches of {size}");
        assert_eq!(contents(&imported), expected, "SQLite, batches of {size}");
    }

    let database = crate::cluster::Database::create();
    let postgres = PgStore::connect(&database.url).unwrap();
    assert_eq!(by_import(&postgres, &events, 7), statuses, "PostgreSQL");
    assert_eq!(contents(&postgres), expected, "PostgreSQL");
    // Imported again, everything is a duplicate, and nothing changes.
    assert!(by_import(&postgres, &events, 1_000).iter().all(|s| *s == AppendStatus::Duplicate));
    assert_eq!(contents(&postgres), expected, "PostgreSQL, imported twice");
    drop(postgres);
    drop(database);

    let database = crate::cluster::Database::create();
    let postgres = PgStore::connect(&database.url).unwrap();
    assert_eq!(by_append(&postgres, &events), statuses, "PostgreSQL, appended");
    assert_eq!(contents(&postgres), expected, "PostgreSQL, appended");
    drop(postgres);
    drop(database);
}

/// An import into a store that already holds events appends after them, as appends would.
#[test]
fn an_import_into_a_store_with_events_continues_its_log() {
    let events = history();
    let (head, tail) = events.split_at(events.len() / 3);
    let dir = tempfile::tempdir().unwrap();
    let appended = SqliteStore::open(&dir.path().join("appended")).unwrap();
    let statuses = by_append(&appended, &events);
    let expected = contents(&appended);
    let check = |store: &dyn Store, name: &str| {
        let mut got = by_append(store, head);
        got.extend(by_import(store, tail, 5));
        assert_eq!(got, statuses, "{name}");
        assert_eq!(contents(store), expected, "{name}");
    };
    check(&SqliteStore::open(&dir.path().join("imported")).unwrap(), "SQLite");
    let database = crate::cluster::Database::create();
    let postgres = PgStore::connect(&database.url).unwrap();
    check(&postgres, "PostgreSQL");
    drop(postgres);
    drop(database);
}
