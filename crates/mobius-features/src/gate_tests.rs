//! The port as the flag sets and the rollouts ask it, over a real SQLite store: the gate's
//! answers are scripted (the policies' own tests are `mobius-policy`'s and `mobius-app`'s).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mobius_events::emit::delivery::POLICY_DECIDED;
use mobius_events::materialise::Rules;
use mobius_log::blocking::Guarded;
use mobius_log::{Clock, Ingestor};
use mobius_store::{EventQuery, SqliteStore, Store};
use serde_json::Value;

use super::*;
use crate::rollout::{FlagRollout, Gate, HealthError, Phase, RolloutHealth, Rollouts, Start, Verdict};
use crate::{Actor, FlagSets, Put};

const SHOP: &str = r#"{"flags": {"checkout": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#;

/// Denies what `deny` says while it is set, warns always, and keeps every question.
#[derive(Default)]
struct Scripted {
    deny: Mutex<Option<String>>,
    asked: Mutex<Vec<Question>>,
}

impl FlagGate for Scripted {
    fn decide(&self, question: &Question) -> Option<Answer> {
        self.asked.lock().unwrap().push(question.clone());
        let deny = self.deny.lock().unwrap().clone().into_iter().collect();
        Some(Answer { deny, warn: vec!["it is late".into()], exceptions: Vec::new() })
    }
}

struct Healthy;

impl RolloutHealth for Healthy {
    fn verdict(&self, _: &FlagRollout, _: Timestamp, _: Timestamp) -> Result<Verdict, HealthError> {
        Ok(Verdict::Healthy)
    }
    fn gate(&self, _: &FlagRollout, _: u32, _: Timestamp) -> Result<Gate, HealthError> {
        Ok(Gate::Allow)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    flags: FlagSets,
    gate: Arc<Scripted>,
}

async fn fixture(clock: Clock) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
    let flags = FlagSets::new(store.clone(), Ingestor::new(store.clone(), Rules::default()), clock);
    let gate = Arc::new(Scripted::default());
    for (set, environment) in [("shop.production", Some("production")), ("shop", None)] {
        let put = Put {
            set: set.into(),
            document: SHOP.into(),
            environment: environment.map(Into::into),
            expected: None,
            source_name: None,
        };
        flags.put(put, alice(None)).await.unwrap();
    }
    flags.set_gate(gate.clone());
    Fixture { _dir: dir, store, flags, gate }
}

fn alice(reason: Option<&str>) -> Actor {
    Actor { by: "alice".into(), reason: reason.map(Into::into) }
}

/// The content of every recorded decision, in order.
async fn decisions(store: &Arc<dyn Store>) -> Vec<Value> {
    let store = store.clone();
    let query = EventQuery { ty: Some(POLICY_DECIDED.into()), limit: 100, ..EventQuery::default() };
    let events = mobius_log::blocking::spawn(move || store.events(&query)).await.unwrap();
    events.iter().map(|e| serde_json::from_str::<Value>(&e.raw).unwrap()["subject"]["content"].clone()).collect()
}

#[tokio::test]
async fn a_denied_change_writes_nothing_and_its_decision_is_recorded() {
    let f = fixture(Clock::System).await;
    *f.gate.deny.lock().unwrap() = Some("no flag turned on without a reason".into());
    let error = f.flags.set_state("shop.production", "checkout", true, None, alice(None)).await.unwrap_err();
    assert!(matches!(error, FlagError::PolicyDenied { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "the gate policies refuse the state change of flag set `shop.production` in production:\n  - no flag turned on without a reason"
    );
    let loaded = f.flags.current("shop.production").unwrap();
    assert_eq!((loaded.version, loaded.set.get("checkout").unwrap().is_enabled()), (1, false), "nothing written");
    let asked = f.gate.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    let question = &asked[0];
    assert_eq!((question.set.as_str(), question.environment.as_str()), ("shop.production", "production"));
    assert_eq!((question.change, question.flag.as_deref()), (Change::State, Some("checkout")));
    assert_eq!((question.version_before, question.version_after, question.by.as_str()), (1, 2, "alice"));
    assert_eq!(question.altered.len(), 1);
    assert_eq!(question.altered[0].before.as_ref().unwrap()["state"], "DISABLED");
    assert_eq!(question.altered[0].after.as_ref().unwrap()["state"], "ENABLED");
    let recorded = decisions(&f.store).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0]["allow"].as_bool(), recorded[0]["action"].as_str()), (Some(false), Some("flag-change")));
    assert_eq!(recorded[0]["deny"][0], "no flag turned on without a reason");

    // Allowed: written, with the gate's warnings, and recorded too.
    *f.gate.deny.lock().unwrap() = None;
    let outcome = f.flags.set_state("shop.production", "checkout", true, None, alice(Some("launch"))).await.unwrap();
    assert_eq!((outcome.changed, outcome.loaded.unwrap().version), (true, 2));
    assert_eq!(outcome.warnings, ["it is late"]);
    let recorded = decisions(&f.store).await;
    assert_eq!((recorded.len(), recorded[1]["allow"].as_bool()), (2, Some(true)));
    assert_eq!(f.gate.asked.lock().unwrap()[1].reason.as_deref(), Some("launch"));
}

#[tokio::test]
async fn every_change_of_a_set_of_an_environment_asks_and_no_other_does() {
    let f = fixture(Clock::System).await;
    let put = |set: &str, document: &str| Put {
        set: set.into(),
        document: document.into(),
        environment: None,
        expected: None,
        source_name: None,
    };
    let on = SHOP.replace("DISABLED", "ENABLED");
    f.flags.put(put("shop.production", &on), alice(None)).await.unwrap();
    f.flags.set_default("shop.production", "checkout", "on", None, alice(None)).await.unwrap();
    f.flags.set_split("shop.production", "checkout", "off", 10, alice(None)).await.unwrap();
    f.flags.delete("shop.production", None, alice(None)).await.unwrap();
    let changes: Vec<(Change, u64)> =
        f.gate.asked.lock().unwrap().iter().map(|q| (q.change, q.version_after)).collect();
    assert_eq!(
        changes,
        [(Change::Document, 2), (Change::DefaultVariant, 3), (Change::RolloutStep, 4), (Change::Delete, 5)]
    );
    assert_eq!(f.gate.asked.lock().unwrap()[3].altered.len(), 1, "a deletion removes its flag");
    // Unchanged: nothing to decide. A set of no environment, or a decided handle: not asked.
    f.gate.asked.lock().unwrap().clear();
    f.flags.set_state("shop", "checkout", true, None, alice(None)).await.unwrap();
    f.flags.decided().put(put("shop.production", SHOP), alice(None)).await.unwrap();
    assert!(f.gate.asked.lock().unwrap().is_empty());
    assert_eq!(decisions(&f.store).await.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_denied_step_holds_the_rollout_and_going_back_to_zero_asks_nothing() {
    let clock = Clock::tokio("2026-12-01T10:00:00Z".parse().unwrap());
    let f = fixture(clock).await;
    let rollouts = Rollouts::new(f.flags.clone(), f.store.clone(), clock, Arc::new(Healthy));
    let start = Start {
        set: "shop.production".into(),
        flag: "checkout".into(),
        variant: "on".into(),
        service: "shop".into(),
        to: 30,
        step: 10,
        every: Duration::from_secs(60),
        reason: None,
    };
    *f.gate.deny.lock().unwrap() = Some("not today".into());
    let refused = rollouts.start(start.clone(), alice(None)).await.unwrap_err();
    assert!(matches!(refused, crate::rollout::RolloutError::Flag(FlagError::PolicyDenied { .. })), "{refused}");
    assert!(rollouts.list().await.unwrap().is_empty(), "a refused start keeps nothing");
    assert_eq!(f.flags.current("shop.production").unwrap().version, 1);

    *f.gate.deny.lock().unwrap() = None;
    rollouts.start(start, alice(Some("launch"))).await.unwrap();
    let first = f.gate.asked.lock().unwrap().last().cloned().unwrap();
    assert_eq!(first.step, Some(Step { variant: "on".into(), weight: 10, service: "shop".into() }));
    assert_eq!(first.change, Change::RolloutStep);
    let asked = f.gate.asked.lock().unwrap().len();
    assert_eq!(asked, 2, "the first step asked once, not again as its flag follows");
    assert_eq!(f.flags.current("shop.production").unwrap().version, 2);

    *f.gate.deny.lock().unwrap() = Some("not today".into());
    tokio::time::sleep(Duration::from_secs(61)).await;
    rollouts.reconcile().await.unwrap();
    let held = rollouts.get("shop.production", "checkout").await.unwrap();
    assert_eq!((held.phase, held.weight), (Phase::Running, 10), "held at its share");
    assert_eq!(held.why.as_deref(), Some("step to 20% refused by policy: not today"));
    assert_eq!(f.flags.current("shop.production").unwrap().version, 2, "the flag did not move");

    // Allowed again: it goes on at the next interval.
    *f.gate.deny.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_secs(61)).await;
    rollouts.reconcile().await.unwrap();
    let on = rollouts.get("shop.production", "checkout").await.unwrap();
    assert_eq!((on.weight, on.why), (20, None));
    let asked = f.gate.asked.lock().unwrap().len();

    // An abort sends it back to 0% whatever the policies say, asking nothing.
    *f.gate.deny.lock().unwrap() = Some("not today".into());
    rollouts.abort("shop.production", "checkout", alice(None)).await.unwrap();
    let loaded = f.flags.current("shop.production").unwrap();
    assert_eq!(crate::split::weight_in(crate::split::targeting_in(&loaded.document, "checkout").as_ref(), "on"), 0);
    assert_eq!(f.gate.asked.lock().unwrap().len(), asked);
}
