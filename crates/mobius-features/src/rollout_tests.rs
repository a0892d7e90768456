//! The controller on tokio's paused clock over a real SQLite store; health and the budget gate
//! are scripted through the port, as the composition root would answer them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mobius_events::emit::flags::FLAG_CHANGED;
use mobius_events::materialise::Rules;
use mobius_log::Ingestor;
use mobius_log::blocking::Guarded;
use mobius_store::{EventQuery, SqliteStore};
use serde_json::Value;

use super::*;
use crate::Put;

const SHOP: &str = r#"{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off"
    }
  }
}"#;

/// What happens, once, while health is being read: another replica's action, in the middle
/// of a pass.
type During = Box<dyn FnOnce() + Send>;

/// Health and the gate as a test says they are, and every window health was asked about.
#[derive(Default)]
struct Scripted {
    verdict: Mutex<Option<String>>,
    refusal: Mutex<Option<String>>,
    asked: Mutex<Vec<(Timestamp, Option<Reason>)>>,
    during_verdict: Mutex<Option<During>>,
}

impl RolloutHealth for Scripted {
    fn verdict(&self, _: &FlagRollout, _since: Timestamp, _now: Timestamp) -> Result<Verdict, HealthError> {
        let during = self.during_verdict.lock().unwrap().take();
        if let Some(during) = during {
            during();
        }
        Ok(self.verdict.lock().unwrap().clone().map_or(Verdict::Healthy, Verdict::Unhealthy))
    }
    fn gate(&self, rollout: &FlagRollout, _weight: u32, now: Timestamp) -> Result<Gate, HealthError> {
        assert_eq!(rollout.environment.as_deref(), Some("production"));
        let reason = rollout.reason;
        self.asked.lock().unwrap().push((now, reason));
        let refusal = self.refusal.lock().unwrap().clone();
        Ok(match (refusal, reason) {
            (Some(message), None) => Gate::Refuse(message),
            _ => Gate::Allow,
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    flags: FlagSets,
    health: Arc<Scripted>,
    rollouts: Rollouts,
    clock: Clock,
}

async fn fixture(environment: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
    // In the past: a post-mortem reads the facts up to the machine's now.
    let clock = Clock::tokio("2026-12-01T10:00:00Z".parse().unwrap());
    let flags = FlagSets::new(store.clone(), Ingestor::new(store.clone(), Rules::default()), clock);
    let put = Put {
        set: "shop".into(),
        document: SHOP.into(),
        environment: environment.map(Into::into),
        expected: None,
        source_name: None,
    };
    flags.put(put, Actor { by: "alice".into(), reason: None }).await.unwrap();
    let health = Arc::new(Scripted::default());
    let rollouts = Rollouts::new(flags.clone(), store.clone(), clock, health.clone());
    Fixture { _dir: dir, store, flags, health, rollouts, clock }
}

fn start(to: u32, step: u32, every: u64) -> Start {
    Start {
        set: "shop".into(),
        flag: "checkout".into(),
        variant: "on".into(),
        service: "shop".into(),
        to,
        step,
        every: Duration::from_secs(every),
        reason: None,
    }
}

fn bob() -> Actor {
    Actor { by: "bob".into(), reason: None }
}

/// The share the set in force gives `on`, read from its document.
fn weight(f: &Fixture) -> u32 {
    let loaded = f.flags.current("shop").unwrap();
    split::weight_in(split::targeting_in(&loaded.document, "checkout").as_ref(), "on")
}

/// How many of 1,000 users the set in force sends to `on`.
fn users_on(f: &Fixture) -> usize {
    let loaded = f.flags.current("shop").unwrap();
    (0..1000)
        .filter(|i| {
            let context = mobius_flags::Context::with_targeting_key(format!("user-{i}"));
            loaded.set.evaluate("checkout", &context).variant == Some("on")
        })
        .count()
}

async fn reasons(store: &Arc<dyn Store>) -> Vec<String> {
    let store = store.clone();
    let query = EventQuery { ty: Some(FLAG_CHANGED.into()), limit: 100, ..EventQuery::default() };
    let events = mobius_log::blocking::spawn(move || store.events(&query)).await.unwrap();
    events
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.raw).unwrap()["subject"]["content"].clone())
        .filter(|c| c["action"] == "split")
        .map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn steps_advance_at_their_times_and_the_rollout_completes() {
    let f = fixture(None).await;
    let began = f.clock.now();
    let rollout = f.rollouts.start(start(50, 20, 600), bob()).await.unwrap();
    assert_eq!((rollout.weight, rollout.phase, rollout.default_variant.as_str()), (20, Phase::Running, "off"));
    assert_eq!(weight(&f), 20);
    let controller = tokio::spawn(f.rollouts.clone().run(std::future::pending()));
    let mut seen = Vec::new();
    for minute in [9, 10, 19, 20, 29, 30, 39, 40] {
        let at = began.saturating_add(SignedDuration::from_secs(minute * 60 + 1)).unwrap();
        tokio::time::sleep(Duration::try_from(f.clock.now().duration_until(at)).unwrap()).await;
        seen.push((minute, weight(&f)));
    }
    assert_eq!(seen, [(9, 20), (10, 40), (19, 40), (20, 50), (29, 50), (30, 50), (39, 50), (40, 50)]);
    // The last weight held one interval, healthy: done at 30 minutes.
    let done = f.rollouts.get("shop", "checkout").await.unwrap();
    assert_eq!((done.phase, done.weight), (Phase::Completed, 50));
    let share = users_on(&f);
    assert!((420..=580).contains(&share), "{share} of 1000 users on `on` at 50%");
    assert_eq!(
        reasons(&f.store).await,
        [
            "rollout of checkout=on to 50%: 20%",
            "rollout of checkout=on to 50%: 40%",
            "rollout of checkout=on to 50%: 50%"
        ]
    );
    controller.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failing_variant_stops_the_rollout_and_returns_it_to_zero() {
    let f = fixture(None).await;
    f.rollouts.start(start(50, 10, 60), bob()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    f.rollouts.reconcile().await.unwrap();
    assert_eq!(weight(&f), 20);
    *f.health.verdict.lock().unwrap() = Some("variant on: 40.0% errors over the 5.0% threshold".into());
    // Health is read between steps: no step is due, yet it stops.
    tokio::time::sleep(Duration::from_secs(10)).await;
    f.rollouts.reconcile().await.unwrap();
    let stopped = f.rollouts.get("shop", "checkout").await.unwrap();
    assert_eq!((stopped.phase, stopped.weight), (Phase::Stopped, 0));
    assert_eq!(stopped.why.as_deref(), Some("variant on: 40.0% errors over the 5.0% threshold"));
    assert_eq!((weight(&f), users_on(&f)), (0, 0), "nobody is sent to the failing variant");
    assert_eq!(reasons(&f.store).await.last().unwrap(), "rollout of checkout=on to 50%: 0%");
    // Stopped stays stopped: healthy again, nothing moves.
    *f.health.verdict.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_secs(600)).await;
    f.rollouts.reconcile().await.unwrap();
    assert_eq!(weight(&f), 0);
}

#[tokio::test(start_paused = true)]
async fn a_frozen_budget_refuses_a_step_in_production_unless_a_hotfix() {
    let f = fixture(Some("production")).await;
    let frozen = "error budget of availability exhausted (policy: freeze)".to_owned();
    *f.health.refusal.lock().unwrap() = Some(frozen.clone());
    let error = f.rollouts.start(start(30, 10, 60), bob()).await.unwrap_err();
    assert_eq!(error.to_string(), frozen);
    assert!(f.rollouts.list().await.unwrap().is_empty(), "a refused start keeps nothing");
    assert_eq!(f.flags.current("shop").unwrap().version, 1, "nor changes the flag");
    // Started while the budget was fine, then it froze: the step waits at its weight.
    *f.health.refusal.lock().unwrap() = None;
    f.rollouts.start(start(30, 10, 60), bob()).await.unwrap();
    *f.health.refusal.lock().unwrap() = Some(frozen.clone());
    tokio::time::sleep(Duration::from_secs(60)).await;
    f.rollouts.reconcile().await.unwrap();
    let held = f.rollouts.get("shop", "checkout").await.unwrap();
    assert_eq!((held.phase, held.weight), (Phase::Running, 10));
    assert_eq!(held.why, Some(format!("step to 20% refused: {frozen}")));
    // It goes on once the budget recovers.
    *f.health.refusal.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_secs(60)).await;
    f.rollouts.reconcile().await.unwrap();
    assert_eq!((weight(&f), f.rollouts.get("shop", "checkout").await.unwrap().why), (20, None));
    // A hotfix steps through a freeze; the gate is told why.
    f.rollouts.abort("shop", "checkout", bob()).await.unwrap();
    *f.health.refusal.lock().unwrap() = Some(frozen);
    let hotfix = Start { reason: Some("hotfix".into()), ..start(30, 10, 60) };
    f.rollouts.start(hotfix, bob()).await.unwrap();
    assert_eq!(weight(&f), 10);
    assert_eq!(f.health.asked.lock().unwrap().last().unwrap().1, Some(Reason::Hotfix));
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_and_changes_nothing() {
    let f = fixture(None).await;
    let check = |s: Start, expected: &'static str| {
        let rollouts = f.rollouts.clone();
        async move { assert_eq!(rollouts.start(s, bob()).await.unwrap_err().to_string(), expected) }
    };
    check(start(0, 10, 60), "--to must be 1–100, not 0").await;
    check(start(101, 10, 60), "--to must be 1–100, not 101").await;
    check(start(50, 60, 60), "--step must be 1–50 (the --to), not 60").await;
    check(start(50, 10, 0), "--every must be at least 1s, not 0ns").await;
    check(
        Start { reason: Some("because".into()), ..start(50, 10, 60) },
        "unknown reason \"because\": expected `hotfix` or `security`",
    )
    .await;
    check(
        Start { variant: "maybe".into(), ..start(50, 10, 60) },
        "flag `checkout` of set `shop` has no variant `maybe` (its variants: on, off)",
    )
    .await;
    check(
        Start { variant: "off".into(), ..start(50, 10, 60) },
        "variant `off` is flag `checkout`'s default in set `shop`: roll out another variant",
    )
    .await;
    check(Start { flag: "nope".into(), ..start(50, 10, 60) }, "flag set `shop` has no flag `nope`").await;
    assert!(f.rollouts.list().await.unwrap().is_empty());
    assert_eq!(f.flags.current("shop").unwrap().version, 1);
    // Targeting written by hand is not overwritten by a rollout.
    let targeted = SHOP.replace(
        "\"defaultVariant\": \"off\"",
        "\"defaultVariant\": \"off\", \"targeting\": {\"if\": [{\"==\": [{\"var\": \"plan\"}, \"pro\"]}, \"on\", null]}",
    );
    let put = Put { set: "shop".into(), document: targeted, environment: None, expected: None, source_name: None };
    f.flags.put(put, bob()).await.unwrap();
    let error = f.rollouts.start(start(50, 10, 60), bob()).await.unwrap_err().to_string();
    assert!(error.starts_with("flag `checkout` of set `shop` has targeting a rollout did not write"), "{error}");
    assert_eq!(f.flags.current("shop").unwrap().version, 2);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_survives_a_restart_pauses_resumes_and_aborts_to_zero() {
    let f = fixture(None).await;
    f.rollouts.start(start(100, 25, 60), bob()).await.unwrap();
    let error = f.rollouts.start(start(100, 25, 60), bob()).await.unwrap_err().to_string();
    assert_eq!(error, "flag `checkout` of set `shop` is in a rollout already (weight 25%, Running): abort it first");
    // Another service over the same store — a restarted server — takes it up where it stood.
    let restarted = Rollouts::new(f.flags.clone(), f.store.clone(), f.clock, f.health.clone());
    tokio::time::sleep(Duration::from_secs(60)).await;
    restarted.reconcile().await.unwrap();
    assert_eq!(weight(&f), 50);
    restarted.pause("shop", "checkout").await.unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    restarted.reconcile().await.unwrap();
    assert_eq!(weight(&f), 50, "paused holds");
    restarted.resume("shop", "checkout").await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    restarted.reconcile().await.unwrap();
    assert_eq!(weight(&f), 75);
    let aborted = restarted.abort("shop", "checkout", bob()).await.unwrap();
    assert_eq!((aborted.phase, aborted.weight, aborted.why.as_deref()), (Phase::Aborted, 0, Some("aborted by bob")));
    assert_eq!(weight(&f), 0);
    let error = restarted.resume("shop", "checkout").await.unwrap_err().to_string();
    assert_eq!(error, "the rollout of flag `checkout` of set `shop` is Aborted, not paused");
}

#[tokio::test(start_paused = true)]
async fn a_step_in_production_is_on_the_incident_timeline_and_the_suspect_of_its_post_mortem() {
    use mobius_events::emit::reliability::{SloIncident, slo_incident_detected, slo_incident_id};
    let f = fixture(Some("production")).await;
    f.rollouts.start(start(50, 10, 60), bob()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    f.rollouts.reconcile().await.unwrap();
    assert_eq!(weight(&f), 20);
    tokio::time::sleep(Duration::from_secs(120)).await;
    // Two minutes after the step, the service's availability SLO pages.
    let detected = f.clock.now();
    let id = slo_incident_id("shop", "availability", detected);
    let incident = SloIncident { id: &id, service: "shop", environment: "production" };
    let event = slo_incident_detected(&incident, "shop availability is burning its budget", None, detected).unwrap();
    let log = Ingestor::new(f.store.clone(), Rules::default());
    mobius_log::blocking::spawn(move || log.append(&[event])).await.unwrap();
    let store = f.store.clone();
    let draft = mobius_log::blocking::spawn(move || mobius_reliability::incidents::draft_of(store.as_ref(), &id))
        .await
        .unwrap()
        .expect("the incident is in the facts");
    let suspect = draft.flag_change.clone().expect("the step is the suspect");
    assert_eq!(
        (suspect.set.as_str(), suspect.flag.as_deref(), suspect.action.as_str()),
        ("shop", Some("checkout"), "split")
    );
    assert_eq!(
        suspect.reason.as_deref(),
        Some("rollout of checkout=on to 50%: 20%"),
        "the latest change, not the first"
    );
    let timeline: Vec<&str> = draft.timeline.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(
        timeline[..3],
        [
            "flag set `shop` changed (loaded), by alice",
            "flag `checkout` of set `shop` changed (split): rollout of checkout=on to 50%: 10%, by rollout:bob",
            "flag `checkout` of set `shop` changed (split): rollout of checkout=on to 50%: 20%, by rollout:bob",
        ]
    );
    let text = mobius_insights::postmortem::render(&draft);
    assert!(
        text.contains("A flag change shortly before detection is a suspect: flag `checkout` of set `shop`"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_abort_through_another_replica_during_a_pass_is_not_overwritten_by_it() {
    let f = fixture(None).await;
    f.rollouts.start(start(50, 10, 60), bob()).await.unwrap();
    let other = Rollouts::new(f.flags.clone(), f.store.clone(), f.clock, f.health.clone());
    tokio::time::sleep(Duration::from_secs(61)).await;
    // The controller has read the rollouts and judges a step due; meanwhile the other replica
    // aborts. The controller's save fails, it judges again from the abort, and steps nothing.
    let aborting = other.clone();
    *f.health.during_verdict.lock().unwrap() = Some(Box::new(move || {
        tokio::runtime::Handle::current().block_on(aborting.abort("shop", "checkout", bob())).unwrap();
    }));
    f.rollouts.reconcile().await.unwrap();
    assert!(f.health.during_verdict.lock().unwrap().is_none(), "the abort happened mid-pass");
    let after = f.rollouts.get("shop", "checkout").await.unwrap();
    assert_eq!((after.phase, after.weight, after.settled), (Phase::Aborted, 0, true));
    assert_eq!(weight(&f), 0, "the step the pass judged due never reached the flag");
    assert_eq!(
        reasons(&f.store).await,
        ["rollout of checkout=on to 50%: 10%", "rollout of checkout=on to 50%: 0%"],
        "no 20% in between"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_saved_before_a_crash_moves_its_flag_on_the_next_pass() {
    let f = fixture(None).await;
    f.rollouts.start(start(50, 10, 60), bob()).await.unwrap();
    assert_eq!(weight(&f), 10);
    // What a replica killed between saving a stop and moving the flag leaves.
    let mut all = f.rollouts.list().await.unwrap();
    (all[0].phase, all[0].weight, all[0].settled) = (Phase::Stopped, 0, false);
    let (store, text) = (f.store.clone(), serde_json::to_string(&all).unwrap());
    mobius_log::blocking::spawn(move || store.put_state(STATE_KEY, &text)).await.unwrap();
    f.rollouts.reconcile().await.unwrap();
    assert_eq!(weight(&f), 0);
    assert!(f.rollouts.get("shop", "checkout").await.unwrap().settled);
    // Settled, it is left alone: a hand-written split afterwards stays.
    f.flags.set_split("shop", "checkout", "on", 5, bob()).await.unwrap();
    f.rollouts.reconcile().await.unwrap();
    assert_eq!(weight(&f), 5);
}

/// SHOP with a `rollout` block on its flag.
fn with_block(block: &str) -> String {
    SHOP.replace("\"defaultVariant\": \"off\"", &format!("\"defaultVariant\": \"off\",\n      \"rollout\": {block}"))
}

fn put_doc(document: String) -> Put {
    Put {
        set: "shop".into(),
        document,
        environment: None,
        expected: None,
        source_name: Some("flags/shop.flagd.json".into()),
    }
}

#[tokio::test(start_paused = true)]
async fn a_flag_files_rollout_block_starts_once_keeps_its_split_and_starts_again_after_a_stop() {
    use crate::plan::BlockOutcome;
    let f = fixture(None).await;
    let file = with_block(r#"{"variant": "on", "to": 50, "step": 20, "every": "1m"}"#);
    let loading = f.rollouts.load(put_doc(file.clone()), bob(), Some("shop"), None).await.unwrap();
    let [(flag, BlockOutcome::Started(started))] = &loading.rollouts[..] else { panic!("{loading:?}") };
    assert_eq!((flag.as_str(), started.weight, started.to, started.service.as_str()), ("checkout", 20, 50, "shop"));
    assert_eq!(weight(&f), 20);
    // The same file again (the next deploy): the rollout goes on, and its split stays.
    let again = f.rollouts.load(put_doc(file.clone()), bob(), Some("shop"), None).await.unwrap();
    assert!(matches!(again.rollouts[..], [(_, BlockOutcome::Running(_))]), "{again:?}");
    assert_eq!(weight(&f), 20, "the reload kept the rollout's split");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(61)).await;
        f.rollouts.reconcile().await.unwrap();
    }
    let done = f.rollouts.get("shop", "checkout").await.unwrap();
    assert_eq!((done.phase, weight(&f)), (Phase::Completed, 50));
    let released = f.rollouts.load(put_doc(file.clone()), bob(), Some("shop"), None).await.unwrap();
    assert!(matches!(released.rollouts[..], [(_, BlockOutcome::Released)]), "{released:?}");
    assert_eq!(weight(&f), 50, "a released split stays released");
    // A new plan begins where the split stands.
    let further = with_block(r#"{"variant": "on", "to": 100, "step": 25, "every": "1m"}"#);
    let more = f.rollouts.load(put_doc(further.clone()), bob(), Some("shop"), None).await.unwrap();
    assert!(matches!(&more.rollouts[..], [(_, BlockOutcome::Started(r))] if r.weight == 75), "{more:?}");
    assert_eq!(weight(&f), 75);
    // Stopped by health; the next release's load starts it again from 0%.
    *f.health.verdict.lock().unwrap() = Some("variant on: failing".into());
    tokio::time::sleep(Duration::from_secs(10)).await;
    f.rollouts.reconcile().await.unwrap();
    assert_eq!((f.rollouts.get("shop", "checkout").await.unwrap().phase, weight(&f)), (Phase::Stopped, 0));
    *f.health.verdict.lock().unwrap() = None;
    let retried = f.rollouts.load(put_doc(further), bob(), Some("shop"), None).await.unwrap();
    assert!(matches!(&retried.rollouts[..], [(_, BlockOutcome::Started(r))] if r.weight == 25), "{retried:?}");
    assert_eq!(weight(&f), 25);
}

#[tokio::test(start_paused = true)]
async fn a_bad_rollout_block_is_refused_at_its_position_and_changes_nothing() {
    let f = fixture(None).await;
    let refused = |block: &str, service: Option<&'static str>| {
        let (rollouts, document) = (f.rollouts.clone(), with_block(block));
        async move { rollouts.load(put_doc(document), bob(), service, None).await.unwrap_err().to_string() }
    };
    assert_eq!(
        refused(r#"{"variant": "on", "to": 150, "every": "1m"}"#, Some("shop")).await,
        "flags/shop.flagd.json:7:42: flag `checkout`'s rollout: `to` must be 1–100, not 150"
    );
    assert_eq!(
        refused(r#"{"variant": "maybe", "every": "1m"}"#, Some("shop")).await,
        "flags/shop.flagd.json:7:30: flag `checkout`'s rollout: the flag has no variant `maybe` (its variants: on, off)"
    );
    assert_eq!(
        refused(r#"{"variant": "on", "every": "soon"}"#, Some("shop")).await,
        "flags/shop.flagd.json:7:45: flag `checkout`'s rollout: `every` must be a duration of at least 1s such as 30s, 10m or 1h, not `soon`"
    );
    let unknown = refused(r#"{"variant": "on", "every": "1m", "speed": 3}"#, Some("shop")).await;
    assert!(
        unknown.starts_with("flags/shop.flagd.json:7:18: flag `checkout`'s rollout: unknown field `speed`"),
        "{unknown}"
    );
    assert_eq!(
        refused(r#"{"variant": "on", "every": "1m"}"#, None).await,
        "flags/shop.flagd.json:7:18: flag `checkout`'s rollout: name the service whose health judges the rollout (`service`), or ship the file in the service's release"
    );
    // Checked wherever a document is, not only when loaded with rollouts.
    let error = crate::validate("f.json", &with_block(r#"{"variant": "off", "every": "1m"}"#)).unwrap_err();
    assert!(error.to_string().ends_with("`off` is the flag's defaultVariant: roll out another variant"), "{error}");
    assert_eq!(f.flags.current("shop").unwrap().version, 1, "the set in force is untouched");
    assert!(f.rollouts.list().await.unwrap().is_empty());
    // A block naming its service loads without one given.
    let named = with_block(r#"{"variant": "on", "every": "1m", "service": "checkout-api"}"#);
    let loading = f.rollouts.load(put_doc(named), bob(), None, None).await.unwrap();
    assert!(
        matches!(&loading.rollouts[..], [(_, crate::plan::BlockOutcome::Started(r))] if r.service == "checkout-api" && r.weight == 10)
    );
}
