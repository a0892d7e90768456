//! The service on a real SQLite store, behind the application's blocking check.

use std::sync::Arc;

use mobius_events::emit::flags::FLAG_CHANGED;
use mobius_events::materialise::Rules;
use mobius_log::blocking::Guarded;
use mobius_store::{EventQuery, SqliteStore};
use serde_json::Value;

use super::*;

const SHOP: &str = r#"{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    }
  }
}"#;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    flags: FlagSets,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
    let flags = replica(&store);
    Fixture { _dir: dir, store, flags }
}

/// Another service on the same store: what a second replica holds.
fn replica(store: &Arc<dyn Store>) -> FlagSets {
    FlagSets::new(store.clone(), Ingestor::new(store.clone(), Rules::default()), Clock::System)
}

fn put(set: &str, document: &str) -> Put {
    Put { set: set.into(), document: document.into(), environment: None, expected: None, source_name: None }
}

fn alice(reason: &str) -> Actor {
    Actor { by: "alice".into(), reason: Some(reason.into()) }
}

/// The content of every flag change in the log, in order.
async fn changes(store: &Arc<dyn Store>) -> Vec<Value> {
    let store = store.clone();
    let query = EventQuery { ty: Some(FLAG_CHANGED.into()), limit: 100, ..EventQuery::default() };
    let events = mobius_log::blocking::spawn(move || store.events(&query)).await.unwrap();
    events.iter().map(|e| serde_json::from_str::<Value>(&e.raw).unwrap()["subject"]["content"].clone()).collect()
}

#[tokio::test]
async fn a_refused_document_leaves_the_set_in_force_and_writes_no_event() {
    let f = fixture();
    f.flags.put(put("shop", SHOP), alice("first")).await.unwrap();
    let broken = SHOP.replace("\"defaultVariant\": \"off\"", "\"defaultVariant\": \"maybe\"");
    let error = f.flags.put(put("shop", &broken), alice("broken")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "shop:6:25: at /flags/checkout/defaultVariant: defaultVariant \"maybe\" is not one of the flag's variants"
    );
    let current = f.flags.current("shop").unwrap();
    assert_eq!((current.version, current.document.as_str()), (1, SHOP));
    assert_eq!(changes(&f.store).await.len(), 1, "only the first document's event");
    let named = Put { source_name: Some("flags/shop.flagd.json".into()), ..put("shop", &broken) };
    let error = f.flags.put(named, alice("broken")).await.unwrap_err();
    assert!(error.to_string().starts_with("flags/shop.flagd.json:6:25: "), "{error}");
}

#[tokio::test]
async fn an_unchanged_document_state_or_default_is_no_change() {
    let f = fixture();
    assert!(f.flags.put(put("shop", SHOP), alice("first")).await.unwrap().changed);
    assert!(!f.flags.put(put("shop", SHOP), alice("again")).await.unwrap().changed);
    assert!(!f.flags.set_state("shop", "checkout", true, None, alice("on")).await.unwrap().changed);
    assert!(!f.flags.set_default("shop", "checkout", "off", None, alice("off")).await.unwrap().changed);
    assert_eq!(f.flags.current("shop").unwrap().version, 1);
    assert_eq!(changes(&f.store).await.len(), 1);
}

#[tokio::test]
async fn a_state_change_is_an_edit_of_the_text_and_an_event_with_before_and_after() {
    let f = fixture();
    let production = Put { environment: Some("production".into()), ..put("shop", SHOP) };
    f.flags.put(production, alice("first")).await.unwrap();
    let outcome = f.flags.set_state("shop", "checkout", false, Some(1), alice("incident 12")).await.unwrap();
    let loaded = outcome.loaded.unwrap();
    assert_eq!(loaded.version, 2);
    assert_eq!(loaded.document, SHOP.replace("\"ENABLED\"", "\"DISABLED\""), "only the state's text changed");
    assert!(!loaded.set.get("checkout").unwrap().is_enabled());
    assert_eq!(loaded.environment.as_deref(), Some("production"));
    let events = changes(&f.store).await;
    let last = &events[1];
    assert_eq!((last["set"].as_str(), last["environment"].as_str()), (Some("shop"), Some("production")));
    assert_eq!((last["version"].as_i64(), last["previousVersion"].as_i64()), (Some(2), Some(1)));
    assert_eq!((last["action"].as_str(), last["flag"].as_str()), (Some("state"), Some("checkout")));
    assert_eq!((last["by"].as_str(), last["reason"].as_str()), (Some("alice"), Some("incident 12")));
    let diff = &last["flags"][0];
    assert_eq!(
        (diff["before"]["state"].as_str(), diff["after"]["state"].as_str()),
        (Some("ENABLED"), Some("DISABLED"))
    );
    assert_eq!(events[0]["flags"][0]["before"], Value::Null, "the first load adds the flag");

    let outcome = f.flags.set_default("shop", "checkout", "on", None, alice("launch")).await.unwrap();
    assert_eq!(outcome.loaded.unwrap().set.get("checkout").unwrap().default_variant(), Some("on"));
    let error = f.flags.set_default("shop", "checkout", "maybe", None, alice("x")).await.unwrap_err();
    assert_eq!(error.to_string(), "flag `checkout` of set `shop` has no variant `maybe` (its variants: on, off)");
    let error = f.flags.set_state("shop", "nope", true, None, alice("x")).await.unwrap_err();
    assert!(matches!(error, FlagError::NoFlag { .. }), "{error}");
    let error = f.flags.set_state("nothing", "checkout", true, None, alice("x")).await.unwrap_err();
    assert!(matches!(error, FlagError::NoSet { .. }), "{error}");
    assert_eq!(changes(&f.store).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_puts_expecting_one_version_exactly_one_wins() {
    let f = fixture();
    f.flags.put(put("shop", SHOP), alice("first")).await.unwrap();
    let tries = (0..6).map(|i| {
        let flags = f.flags.clone();
        let document = SHOP.replace("\"off\"\n", &format!("\"off\", \"metadata\": {{\"try\": {i}}}\n"));
        tokio::spawn(async move {
            let expecting = Put { expected: Some(1), ..put("shop", &document) };
            flags.put(expecting, alice("race")).await
        })
    });
    let mut won = 0;
    for outcome in futures_join(tries).await {
        match outcome {
            Ok(outcome) => {
                assert_eq!(outcome.loaded.unwrap().version, 2);
                won += 1;
            }
            Err(FlagError::VersionConflict { expected: 1, current: 2, .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(changes(&f.store).await.len(), 2, "one event for the winner only");
    let error = f.flags.put(Put { expected: Some(1), ..put("shop", SHOP) }, alice("stale")).await.unwrap_err();
    assert_eq!(error.to_string(), "flag set `shop` is at version 2, not 1: read it again, then change it");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_set_keeps_its_environment_and_a_deleted_one_its_version() {
    let f = fixture();
    let production = Put { environment: Some("production".into()), ..put("shop", SHOP) };
    f.flags.put(production, alice("first")).await.unwrap();
    let staging = Put { environment: Some("staging".into()), ..put("shop", "{\"flags\": {}}") };
    let error = f.flags.put(staging, alice("wrong")).await.unwrap_err();
    assert_eq!(error.to_string(), "flag set `shop` belongs to environment `production`, not `staging`");
    let kept = f.flags.put(put("shop", "{\"flags\": {}}"), alice("empty")).await.unwrap().loaded.unwrap();
    assert_eq!((kept.version, kept.environment.as_deref()), (2, Some("production")));
    let deleted = f.flags.delete("shop", None, alice("gone")).await.unwrap();
    assert!(deleted.loaded.is_none() && f.flags.current("shop").is_none());
    let again = f.flags.put(put("shop", SHOP), alice("back")).await.unwrap().loaded.unwrap();
    assert_eq!((again.version, again.environment.as_deref()), (4, None), "the version went on from the tombstone");
    assert!(matches!(f.flags.delete("nothing", None, alice("x")).await, Err(FlagError::NoSet { .. })));
    let error = f.flags.put(put("bad name", SHOP), alice("x")).await.unwrap_err();
    assert!(matches!(error, FlagError::BadName { .. }), "{error}");
}

#[tokio::test]
async fn a_change_through_one_replica_reaches_the_other_and_its_subscribers() {
    let f = fixture();
    let other = replica(&f.store);
    let mut changed = other.subscribe();
    f.flags.put(put("shop", SHOP), alice("first")).await.unwrap();
    assert!(other.current("shop").is_none(), "not before it reads the store");
    assert_eq!(other.refresh().await.unwrap(), 1);
    assert_eq!(other.current("shop").unwrap().version, 1);
    assert_eq!(changed.recv().await.unwrap(), Changed { set: "shop".into(), version: 1, deleted: false });
    f.flags.set_state("shop", "checkout", false, None, alice("off")).await.unwrap();
    f.flags.delete("shop", None, alice("gone")).await.unwrap();
    assert_eq!(other.refresh().await.unwrap(), 1, "the newest version is read, not each one");
    assert_eq!(changed.recv().await.unwrap(), Changed { set: "shop".into(), version: 3, deleted: true });
    assert!(other.current("shop").is_none());
    assert_eq!(other.refresh().await.unwrap(), 0, "nothing newer");
}

#[tokio::test(start_paused = true)]
async fn the_sync_task_picks_up_another_replicas_change_within_its_interval() {
    let f = fixture();
    let other = replica(&f.store);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(other.clone().sync_forever(async move { drop(stopped.await) }));
    let mut changed = other.subscribe();
    f.flags.put(put("shop", SHOP), alice("first")).await.unwrap();
    let seen = tokio::time::timeout(SYNC_EVERY * 3, changed.recv()).await.expect("within the interval").unwrap();
    assert_eq!(seen.version, 1);
    stop.send(()).unwrap();
    task.await.unwrap();
}
