//! SLO alerts across a failover (issue 14: "alert notifications are sent once across
//! replicas"): two `mobius serve` replicas on one PostgreSQL, an SLO burning its budget, the
//! replica holding the `slo-alerts` lease killed (-9) right after it paged — before it saved
//! that it had — and the other taking the lease over: the page reaches the webhook once, and
//! one incident is opened.
//!
//! "Before it saved that it had" is made certain rather than left to timing: the test holds
//! the row the alert states are kept in (`server_state`, key `alerter`) locked from before the
//! burn until after the kill, so the holder's write of its new state waits, and dies with it.

use std::time::{Duration, Instant};

use mobius_store::{PgStore, RolloutRow, SliMinute, Store};
use serde_json::Value;

use crate::postgres::cluster::Database;
use crate::runs::wait_for;
use crate::util::{ADMIN, Dir, Server, http};

/// A service whose availability SLO (99.9%) pages `hook`.
fn spec(hook: u16) -> String {
    format!(
        "service: shop\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\n\
         slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {{availability: {{}}}}\n\
         \x20   alerting:\n      webhooks: [\"http://127.0.0.1:{hook}/hook\"]\n"
    )
}

/// Records that `yaml`'s service was deployed (as `v1`, to its first environment), which is
/// what defines its SLOs.
fn define_slos(store: &dyn Store, yaml: &str) {
    use mobius_deploy::rollout::{Deployed, Plan, Rollout, Stored};
    let spec = mobius_deploy::spec::ServiceSpec::parse("mobius.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    let environment = &spec.environments.value[0];
    let now = jiff::Timestamp::now();
    let new = Deployed {
        version: "v1".into(),
        release: "/nowhere".into(),
        artifact: None,
        revision: None,
        instances: Vec::new(),
    };
    let rollout = Rollout::new(spec.name(), environment, Plan::Rolling, 1, None, new, now);
    let body =
        serde_json::to_string(&Stored { rollout, spec: yaml.to_owned(), stable_spec: None, host: None }).unwrap();
    let row = RolloutRow {
        id: 0,
        service: spec.name().to_owned(),
        environment: environment.name.value.clone(),
        phase: "succeeded".into(),
        active: false,
        body,
        created: now,
        updated: now,
    };
    store.save_rollout(&row).unwrap();
}

/// This minute, half of 2,000 requests failed: far past a 99.9% budget, a page.
fn burn(store: &dyn Store) {
    let now = jiff::Timestamp::now().as_second();
    let minute = SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: "v1".into(),
        minute: now - now.rem_euclid(60),
        requests: 2000,
        errors: 1000,
        latency: vec![2000],
    };
    store.add_sli(&[minute]).unwrap();
}

fn holds_alerts(server: &Server) -> bool {
    let Ok(response) = http().get(server.url("/readyz")).send() else { return false };
    let ready: Value = response.json().unwrap_or(Value::Null);
    ready["leases"]["held"].as_array().is_some_and(|held| held.iter().any(|l| l == "slo-alerts"))
}

fn pages(bodies: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    bodies.lock().unwrap().iter().filter(|b| b.contains("\"severity\":\"page\"")).cloned().collect()
}

#[test]
fn a_page_is_sent_once_when_its_replica_dies_right_after_sending_it() {
    let database = Database::create();
    let key = "a1e47f0".repeat(10)[..64].to_owned();
    let env = [
        ("MOBIUS_DATABASE_URL", database.url.as_str()),
        ("MOBIUS_SECRET_KEY", key.as_str()),
        ("MOBIUS_ALERT_EVERY", "1s"),
    ];
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let mut servers = vec![dir_a.serve_with_env(&env), dir_b.serve_with_env(&env)];
    let store = PgStore::connect(&database.url).unwrap();
    let (hook, bodies) = crate::slo::webhook_receiver();

    // One of them evaluates the (no) SLOs, and has stored its alert states once.
    let holder = wait_for("a replica to hold slo-alerts", || servers.iter().position(holds_alerts));
    wait_for("the alert states stored", || store.state("alerter").unwrap().map(|_| ()));

    // The burn is there before the SLO is; the states' row is held from now on.
    burn(&store);
    let mut blocker = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let mut held = blocker.transaction().unwrap();
    held.query_one("SELECT value FROM server_state WHERE key = 'alerter' FOR UPDATE", &[]).unwrap();
    define_slos(&store, &spec(hook));

    let page = wait_for("the page", || pages(&bodies).into_iter().next());
    assert!(page.contains("\"state\":\"firing\"") && page.contains("\"slo\":\"availability\""), "{page}");
    servers[holder].kill9();
    let killed = Instant::now();
    held.rollback().unwrap();

    // The other takes the lease once the dead one's lapses (TTL 15 s, renewals every 5 s),
    // evaluates, and finds the page already sent.
    let survivor = &servers[1 - holder];
    wait_for("the survivor to take slo-alerts", || holds_alerts(survivor).then_some(()));
    let took = killed.elapsed();
    assert!(took <= Duration::from_secs(15 + 5 + 3), "taken over in {took:?}");
    let alerts = wait_for("the survivor's evaluation", || {
        let alerts: Value = http().get(survivor.url("/api/v1/alerts")).bearer_auth(ADMIN).send().ok()?.json().ok()?;
        // Paging and knowing the incident it opened are one evaluation apart under load.
        (alerts[0]["firing"] == "page" && alerts[0]["incident"].is_string()).then_some(alerts)
    });
    // A few more evaluations: nothing more arrives.
    std::thread::sleep(Duration::from_secs(4));
    let sent = pages(&bodies);
    assert_eq!(sent.len(), 1, "the page reached the webhook exactly once: {sent:#?}");

    // One firing alert and one incident in the log, which the survivor knows as its own.
    let count = |ty: &str| {
        let query = mobius_store::EventQuery { ty: Some(ty.into()), limit: 10, ..Default::default() };
        store.events(&query).unwrap()
    };
    assert_eq!(count("dev.cdeventsx.mobius-alert.firing.0.1.0").len(), 1);
    let incidents = count("dev.cdevents.incident.detected.0.3.0");
    assert_eq!(incidents.len(), 1, "one incident for one page");
    let incident = alerts[0]["incident"].as_str().expect("the survivor knows the open incident");
    assert!(incidents[0].subject.ends_with(incident), "{} vs {incident}", incidents[0].subject);
    drop((servers, store, blocker, database));
}
