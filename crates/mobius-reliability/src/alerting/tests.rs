//! The alerter on a real store and an injected clock.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use mobius_events::StoredEvent;
use mobius_events::materialise::Rules;
use mobius_slo::alerts::Severity;
use mobius_store::{EventQuery, SqliteStore, Store};
use tempfile::TempDir;

use super::Alerter;
use mobius_log::Ingestor;

const FIRING: &str = "dev.cdeventsx.mobius-alert.firing.0.1.0";
const DETECTED: &str = "dev.cdevents.incident.detected.0.3.0";
const RESOLVED: &str = "dev.cdevents.incident.resolved.0.3.0";

/// `mobius.yaml` of `shop` without SLOs.
const SHOP: &str = "service: shop\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\n";

/// An availability SLO of 99.9% over 30 days, with `extra` lines (indented as its keys).
fn availability(extra: &str) -> String {
    format!("{SHOP}slos:\n  - name: availability\n    objective: 99.9\n    sli: {{availability: {{}}}}\n{extra}")
}

/// A new store in which `yaml` was deployed at `now`.
fn deployed(yaml: &str, now: Timestamp) -> (TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    crate::testing::deployed(store.as_ref(), yaml, now);
    (dir, store)
}

fn alerter(store: &Arc<dyn Store>) -> Alerter {
    Alerter::new(store.clone(), Ingestor::new(store.clone(), Rules::default()), mobius_log::Clock::System)
}

/// The events of type `ty` (at most 10).
fn events(store: &Arc<dyn Store>, ty: &str) -> Vec<StoredEvent> {
    store.events(&EventQuery { ty: Some(ty.into()), limit: 10, ..EventQuery::default() }).unwrap()
}

/// How many firing alerts and detected incidents were recorded.
fn announced(store: &Arc<dyn Store>) -> (usize, usize) {
    (events(store, FIRING).len(), events(store, DETECTED).len())
}

fn later(now: Timestamp, seconds: i64) -> Timestamp {
    now + SignedDuration::from_secs(seconds)
}

/// Records that every request of the hour up to `now` failed.
fn outage(store: &dyn Store, now: Timestamp) {
    let minute = now.as_second() - now.as_second().rem_euclid(60);
    let rows: Vec<mobius_store::SliMinute> = (0..60)
        .map(|m| mobius_store::SliMinute {
            service: "shop".into(),
            environment: "production".into(),
            version: "v1".into(),
            minute: minute - m * 60,
            requests: 100,
            errors: 100,
            latency: vec![100],
        })
        .collect();
    store.add_sli(&rows).unwrap();
}

/// An SLO whose Prometheus does not answer is never healthy: after the grace period a
/// ticket says so, once.
#[tokio::test]
async fn an_unknown_slo_raises_a_ticket_after_the_grace_period() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "{SHOP}slos:\n  - name: ok\n    objective: 99\n    window: 1d\n    sli:\n      prometheus:\n        url: http://127.0.0.1:{closed}\n        error_query: sum(increase(e[{{{{window}}}}]))\n        total_query: sum(increase(t[{{{{window}}}}]))\n"
    );
    let now = Timestamp::now();
    let (_dir, store) = deployed(&yaml, now);
    let alerter = alerter(&store);
    alerter.evaluate(now).await;
    assert_eq!(alerter.views()[0].firing, None, "within the grace period");
    alerter.evaluate(later(now, 301)).await;
    assert_eq!(alerter.views()[0].firing, Some(Severity::Ticket));
    alerter.evaluate(later(now, 400)).await;
    assert_eq!(events(&store, FIRING).len(), 1, "one ticket, not one per evaluation");
}

/// A restarted server takes up its alert states: a page that still fires is not announced
/// again and opens no second incident.
#[tokio::test]
async fn a_firing_page_survives_a_restart_without_a_second_announcement() {
    let now = Timestamp::now();
    let (_dir, store) = deployed(&availability(""), now);
    outage(store.as_ref(), now);

    let before = alerter(&store);
    before.evaluate(now).await;
    assert_eq!(announced(&store), (1, 1), "the page fires and opens an incident");
    let incident = before.views()[0].incident.clone();
    assert!(incident.is_some());

    let after = alerter(&store);
    after.restore().await;
    after.evaluate(later(now, 30)).await;
    assert_eq!(announced(&store), (1, 1), "nothing announced twice");
    let view = &after.views()[0];
    assert_eq!((view.firing, &view.incident, view.since), (Some(Severity::Page), &incident, Some(now)));
}

/// A replica taking the alerts over from states stored before a page its predecessor
/// announced (it died before storing the new ones) finds the page claimed: it is not
/// announced again, and the replica adopts the page and its incident. Later transitions are
/// announced as usual, by whoever makes them.
#[tokio::test]
async fn a_page_announced_by_a_replica_that_died_before_storing_it_is_not_announced_again() {
    let now = Timestamp::now();
    let (_dir, store) = deployed(&availability("    alerting: {quiet_period: 1m}\n"), now);
    let dead = alerter(&store).with_replica("dead");
    dead.evaluate(later(now, -30)).await;
    let stored_before = store.state("alerter").unwrap().expect("the states before the page");
    outage(store.as_ref(), now);
    dead.evaluate(now).await;
    assert_eq!(announced(&store), (1, 1), "the page fires and opens an incident");
    let incident = dead.views()[0].incident.clone().expect("an incident");
    // It died before its states were stored.
    store.put_state("alerter", &stored_before).unwrap();

    let survivor = alerter(&store).with_replica("survivor");
    survivor.restore().await;
    survivor.evaluate(later(now, 20)).await;
    assert_eq!(announced(&store), (1, 1), "nothing announced twice, no second incident");
    let view = &survivor.views()[0];
    assert_eq!((view.firing, view.incident.as_ref()), (Some(Severity::Page), Some(&incident)), "adopted");

    // The page resolving is the survivor's to announce, and the quiet period then resolves
    // the incident the dead replica opened.
    survivor.evaluate(later(now, 40 * 60)).await;
    assert_eq!(events(&store, "dev.cdeventsx.mobius-alert.resolved.0.1.0").len(), 1, "{:?}", survivor.views());
    survivor.evaluate(later(now, 42 * 60)).await;
    let resolved = events(&store, RESOLVED);
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0].subject.ends_with(&incident), "{}", resolved[0].subject);
}

/// The incident a page opened resolves once the page has stayed resolved for the SLO's
/// `alerting.quiet_period`, not before.
#[tokio::test]
async fn the_incident_resolves_after_the_configured_quiet_period() {
    let now = Timestamp::now();
    let (_dir, store) = deployed(&availability("    alerting: {quiet_period: 10m}\n"), now);
    outage(store.as_ref(), now);
    let alerter = alerter(&store);
    let at = |minutes: i64| later(now, minutes * 60);
    alerter.evaluate(now).await;
    assert_eq!(alerter.views()[0].firing, Some(Severity::Page));
    // The errors stopped at `now`; 35 minutes on, even the 30-minute short window is clean.
    alerter.evaluate(at(35)).await;
    assert_ne!(alerter.views()[0].firing, Some(Severity::Page), "{:?}", alerter.views()[0].rules);
    assert!(alerter.views()[0].incident.is_some(), "the incident waits for the quiet period");
    alerter.evaluate(at(41)).await;
    assert_eq!(events(&store, RESOLVED).len(), 0, "6 minutes quiet: past the default 5, short of the configured 10");
    alerter.evaluate(at(46)).await;
    assert_eq!(events(&store, RESOLVED).len(), 1, "11 minutes quiet");
    assert_eq!(alerter.views()[0].incident, None);
}

/// A release without the SLO ends its alerts: the incident its page opened is resolved and
/// the SLO leaves the alert list.
#[tokio::test]
async fn a_removed_slo_resolves_its_incident_and_leaves_the_alert_list() {
    let now = Timestamp::now();
    let (_dir, store) = deployed(&availability(""), now);
    outage(store.as_ref(), now);
    let alerter = alerter(&store);
    alerter.evaluate(now).await;
    assert!(alerter.views()[0].incident.is_some());

    crate::testing::deployed(store.as_ref(), SHOP, now);
    alerter.evaluate(later(now, 30)).await;
    assert!(alerter.views().is_empty(), "{:?}", alerter.views());
    let resolved = events(&store, RESOLVED);
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0].raw.contains("the SLO is no longer defined"), "{}", resolved[0].raw);
}

/// With `alerting.for`, a page is pending until its rules have kept firing that long: no
/// notification, no incident before.
#[tokio::test]
async fn a_page_is_pending_for_its_for_then_fires() {
    let now = Timestamp::now();
    let (_dir, store) = deployed(&availability("    alerting: {for: 2m}\n"), now);
    outage(store.as_ref(), now);
    let alerter = alerter(&store);
    for seconds in [0, 60] {
        alerter.evaluate(later(now, seconds)).await;
        let view = &alerter.views()[0];
        assert_eq!((view.pending, view.firing), (Some(Severity::Page), None), "at +{seconds} s");
        assert_eq!(announced(&store), (0, 0), "nothing announced while pending");
    }
    alerter.evaluate(later(now, 120)).await;
    let view = &alerter.views()[0];
    assert_eq!((view.pending, view.firing), (None, Some(Severity::Page)));
    assert_eq!(announced(&store), (1, 1));
}
