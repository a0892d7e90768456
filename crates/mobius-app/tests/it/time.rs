//! Timing on tokio's paused clock: the application's clock (`Clock::tokio`) and its timers move
//! together, and only as fast as the runtime lets them, so hours pass in milliseconds and
//! nothing is asserted about the wall clock.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mobius_app::{App, Config};
use mobius_deploy::rollout::{Deployed, Plan, Rollout, Stored};
use mobius_deploy::spec::ServiceSpec;
use mobius_log::Clock;
use mobius_store::{EventQuery, Repository, RolloutRow, RunQuery, SliMinute, Store};

use crate::support::{commit, repository};

/// 2026-11-26T00:00:00Z.
const BASE: i64 = 1_795_651_200;

fn base() -> Timestamp {
    Timestamp::from_second(BASE).unwrap()
}

/// Waits (on the paused clock) until `check` gives something, at most `limit` of virtual time.
async fn eventually<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "not within {limit:?} of (virtual) time");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// With no git hook at all, the server's fallback poll picks a commit up within one
/// `poll_interval` — here ten minutes, which pass without anyone waiting for them.
#[tokio::test(start_paused = true)]
async fn the_fallback_poll_picks_a_commit_up_within_its_interval() {
    let root = tempfile::tempdir().unwrap();
    let repo = repository(root.path(), "on: push\njobs:\n  a:\n    runs-on: local\n    steps:\n      - run: true\n");
    let mut config = Config::new(root.path().join("data"));
    config.poll_interval = Duration::from_secs(600);
    config.clock = Clock::tokio(base());
    let app = App::open(config).unwrap();
    let (store, path) = (app.store.clone(), repo.display().to_string());
    mobius_log::blocking::spawn(move || {
        store.add_repository(&Repository { name: "acme/app".into(), path, credentials: None })
    })
    .await
    .unwrap();
    app.runs.poll("acme/app").await.unwrap();
    let background = app.start();
    let sha = {
        let repo = repo.clone();
        mobius_log::blocking::spawn(move || commit(&repo, "a.txt", "one")).await
    };
    let started = tokio::time::Instant::now();
    let runs = eventually(Duration::from_secs(1200), async || {
        let store = app.store.clone();
        let runs = mobius_log::blocking::spawn(move || store.runs(&RunQuery::default())).await.unwrap();
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert_eq!(runs[0].run.sha, sha);
    assert!(started.elapsed() <= Duration::from_secs(601), "by the next poll: {:?} (virtual)", started.elapsed());
    let queued = runs[0].run.queued_at;
    assert!(
        queued >= base() && queued <= base() + jiff::SignedDuration::from_secs(601),
        "queued at {queued}, by the app's clock"
    );
    background.stop().await;
}

/// `schedule` on the app's clock (paused tokio time, from 00:00:00Z): `*/5` runs at :05 and
/// :10 of the first eleven minutes, on the default branch's head, with `github.event.schedule`;
/// a minute that passed before the server started is not made up for.
#[tokio::test(start_paused = true)]
async fn scheduled_workflows_run_at_their_minutes_by_the_app_clock() {
    let root = tempfile::tempdir().unwrap();
    let workflow = "on:\n  schedule:\n    - cron: '*/5 * * * *'\njobs:\n  a:\n    runs-on: local\n    steps:\n      \
                    - run: echo \"scheduled by ${{ github.event.schedule }} on ${{ github.ref }}\"\n";
    let repo = repository(root.path(), workflow);
    let mut config = Config::new(root.path().join("data"));
    config.poll_interval = Duration::from_secs(86_400);
    // Started half a minute past 00:00: the tick at 00:00 is gone.
    config.clock = Clock::tokio(base() + jiff::SignedDuration::from_secs(30));
    let app = App::open(config).unwrap();
    let (store, path) = (app.store.clone(), repo.display().to_string());
    mobius_log::blocking::spawn(move || {
        store.add_repository(&Repository { name: "acme/app".into(), path, credentials: None })
    })
    .await
    .unwrap();
    let background = app.start();
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    let runs = eventually(Duration::from_secs(60), async || {
        let store = app.store.clone();
        let runs = mobius_log::blocking::spawn(move || store.runs(&RunQuery::default())).await.unwrap();
        let done = runs.iter().all(|r| r.state.is_final());
        (runs.len() >= 2 && done).then_some(runs)
    })
    .await;
    let mut queued: Vec<(String, String)> =
        runs.iter().map(|r| (r.run.event.clone(), r.run.queued_at.strftime("%H:%M").to_string())).collect();
    queued.sort();
    assert_eq!(queued, [("schedule".to_owned(), "00:05".to_owned()), ("schedule".to_owned(), "00:10".to_owned())]);
    let log = std::fs::read_to_string(app.runs.log_path(runs[0].id)).unwrap();
    assert!(log.contains("scheduled by */5 * * * * on refs/heads/main"), "{log}");
    background.stop().await;
}

const SHOP: &str = "service: shop
run:
  command: ./shop
environments:
  - name: production
    listen: 127.0.0.1:9
slos:
  - name: availability
    objective: 99.9
    sli: {availability: {}}
";

/// Stores `SHOP` as deployed, so its SLO is defined.
fn deployed(store: &dyn Store, now: Timestamp) {
    let spec = ServiceSpec::parse("mobius.yaml", SHOP).unwrap();
    let new = Deployed {
        version: "v1".into(),
        release: "/nowhere".into(),
        artifact: None,
        revision: None,
        instances: Vec::new(),
    };
    let rollout = Rollout::new("shop", &spec.environments.value[0], Plan::Rolling, 1, None, new, now);
    let body = serde_json::to_string(&Stored { rollout, spec: SHOP.into(), stable_spec: None, host: None }).unwrap();
    let row = RolloutRow {
        id: 0,
        service: "shop".into(),
        environment: "production".into(),
        phase: "succeeded".into(),
        active: false,
        body,
        created: now,
        updated: now,
    };
    store.save_rollout(&row).unwrap();
}

/// Ten minutes of an outage then silence: the alert loop (every 30 s of the app's clock)
/// pages and opens an incident at once; the page resolves once the short windows of both page
/// rules are clean (the 6 h rule's is 30 minutes), and the incident once the page stayed quiet
/// for its 5-minute quiet period — about 34 minutes of virtual time (the last bad minute ends a
/// minute before the outage data does), on the paused clock.
#[tokio::test(start_paused = true)]
async fn an_outage_pages_and_its_incident_resolves_after_the_quiet_period() {
    let root = tempfile::tempdir().unwrap();
    let mut config = Config::new(root.path().join("data"));
    config.clock = Clock::tokio(base());
    config.alert_every = Duration::from_secs(30);
    config.poll_interval = Duration::from_secs(86_400);
    let app = App::open(config).unwrap();
    let store: Arc<dyn Store> = app.store.clone();
    mobius_log::blocking::spawn(move || {
        deployed(store.as_ref(), base() - jiff::SignedDuration::from_hours(1));
        let minutes: Vec<SliMinute> = (1..=10)
            .map(|m| SliMinute {
                service: "shop".into(),
                environment: "production".into(),
                version: "v1".into(),
                minute: BASE - 60 * m,
                requests: 1000,
                errors: 500,
                latency: vec![1000],
            })
            .collect();
        store.add_sli(&minutes).unwrap();
    })
    .await;
    let background = app.start();
    let incident_events = async |ty: &'static str| {
        let store = app.store.clone();
        let query = EventQuery { ty: Some(ty.into()), limit: 10, ..EventQuery::default() };
        mobius_log::blocking::spawn(move || store.events(&query)).await.unwrap()
    };
    let detected = eventually(Duration::from_secs(120), async || {
        let found = incident_events("dev.cdevents.incident.detected.0.3.0").await;
        found.into_iter().next()
    })
    .await;
    assert!(
        detected.timestamp <= base() + jiff::SignedDuration::from_secs(60),
        "paged at once: {}",
        detected.timestamp
    );
    let resolved = eventually(Duration::from_secs(3600), async || {
        incident_events("dev.cdevents.incident.resolved.0.3.0").await.into_iter().next()
    })
    .await;
    let quiet = resolved.timestamp.duration_since(base());
    assert!(
        quiet >= jiff::SignedDuration::from_mins(33) && quiet <= jiff::SignedDuration::from_mins(36),
        "the 30-minute short window cleared, then 5 quiet minutes: resolved {quiet} after the outage"
    );
    background.stop().await;
}
