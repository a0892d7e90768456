//! The database lost while serving (issue 14): `mobius serve` on a PostgreSQL cluster of the
//! test's own, events posted continuously, the cluster stopped (`pg_ctl stop -m fast`) and
//! started again on the same port and data directory. Meanwhile `/readyz` fails and writes
//! answer 503 with a clear error — never a 500, never the driver's words — and afterwards
//! everything resumes, with every event acknowledged (2xx) in the store.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::postgres::cluster::Cluster;
use crate::runs::wait_for;
use crate::util::{ADMIN, Dir, Server, deployed, http};

/// What a writer saw: the ids acknowledged, and every other answer (when it was asked,
/// status, body).
#[derive(Default)]
struct Seen {
    acknowledged: Vec<String>,
    refused: Vec<(Instant, u16, String)>,
}

/// Posts one event after another (bounded in count and time) until `stop`, recording answers.
fn writer(
    name: usize,
    server_base: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let client = http();
        let deadline = Instant::now() + Duration::from_secs(240);
        for n in 0..20_000 {
            if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                return;
            }
            let id = format!("fault-{name}-{n}");
            let asked = Instant::now();
            let event = deployed(&id, "shop", "production", "2024-05-01T10:00:00Z");
            let answer = client
                .post(format!("{server_base}/api/v1/events"))
                .bearer_auth(ADMIN)
                .header("content-type", "application/json")
                .body(event.to_string())
                .send();
            let mut seen = seen.lock().unwrap();
            match answer {
                Ok(response) if response.status().is_success() => seen.acknowledged.push(id),
                Ok(response) => {
                    let status = response.status().as_u16();
                    seen.refused.push((asked, status, response.text().unwrap_or_default()));
                }
                Err(error) => seen.refused.push((asked, 0, format!("{error:#}"))),
            }
            drop(seen);
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// Words of the driver, the database or the network that must never reach a client.
const DRIVER_TEXT: &[&str] =
    &["db error", "FATAL", "57P", "terminating connection", "refused", "error connecting", "postgres://", "127.0.0.1"];

/// A 503 as the API promises it: JSON `{"error": {"code": "unavailable", "message": …}}` in
/// the API's words, with `Retry-After`.
fn check_unavailable(status: u16, body: &str, dir: &Dir) {
    let log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert_eq!(status, 503, "a lost database is a 503, never another status: {body}\n{}", log());
    let error: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(error["error"]["code"], "unavailable", "{body}");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("unavailable") && message.contains("try again"), "{body}");
    for driver in DRIVER_TEXT {
        assert!(!body.contains(driver), "the driver's words reached the client ({driver}): {body}");
    }
}

fn ready(server: &Server) -> (u16, Value) {
    let response = http().get(server.url("/readyz")).send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Every event id in the log, paging with `after`.
fn stored_ids(server: &Server) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut after = 0_i64;
    loop {
        let path = format!("/api/v1/events?limit=1000&after={after}");
        let page: Value = http().get(server.url(&path)).bearer_auth(ADMIN).send().unwrap().json().unwrap();
        let page = page.as_array().unwrap();
        let Some(last) = page.last() else { return ids };
        after = last["seq"].as_i64().unwrap();
        ids.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
}

#[test]
fn the_database_lost_under_load_is_a_503_and_everything_resumes_with_nothing_acknowledged_lost() {
    let mut cluster = Cluster::init().unwrap_or_else(|why| panic!("no PostgreSQL: {why}"));
    cluster.start().unwrap_or_else(|why| panic!("{why}"));
    cluster.create_database("faults");
    let dir = Dir::new();
    let server = dir.serve_with_env(&[("MOBIUS_DATABASE_URL", cluster.url("faults").as_str())]);
    assert_eq!(ready(&server).0, 200);

    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Seen::default())));
    // Writers at once, so several of the pool's connections are in use when the database goes.
    let writing: Vec<_> = (0..3).map(|n| writer(n, server.base.clone(), stop.clone(), seen.clone())).collect();
    let acknowledged = || seen.lock().unwrap().acknowledged.len();
    wait_for("events acknowledged before the database goes", || (acknowledged() >= 30).then_some(()));

    cluster.stop().unwrap_or_else(|why| panic!("{why}"));
    let before_restart = acknowledged();

    // Not ready, saying why in its own words.
    let (status, body) = ready(&server);
    assert_eq!(status, 503, "{body}");
    assert_eq!((body["status"].as_str(), body["database"].as_str()), (Some("unavailable"), Some("not answering")));
    // A write is a clear 503; the writer meets the same.
    let response = http()
        .post(server.url("/api/v1/events"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(deployed("while-down", "shop", "production", "2024-05-01T10:00:00Z").to_string())
        .send()
        .unwrap();
    assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("5"));
    let status = response.status().as_u16();
    check_unavailable(status, &response.text().unwrap(), &dir);
    wait_for("the writer to be refused a few times", || (seen.lock().unwrap().refused.len() >= 5).then_some(()));
    let during = acknowledged();
    assert!(during <= before_restart + 3, "nothing is acknowledged while the database is down");

    // Back on the same port and data directory: ready again, and writes go through.
    cluster.start().unwrap_or_else(|why| panic!("{why}"));
    wait_for("/readyz to recover", || (ready(&server).0 == 200).then_some(()));
    let recovered = Instant::now();
    wait_for("writes to be acknowledged again", || (acknowledged() >= during + 30).then_some(()));
    stop.store(true, Ordering::SeqCst);
    writing.into_iter().for_each(|w| w.join().unwrap());

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!seen.refused.is_empty(), "the writer met the database down");
    for (asked, status, body) in &seen.refused {
        check_unavailable(*status, body, &dir);
        // Connections from before the restart are not handed out again.
        assert!(*asked < recovered, "refused after the database was back: {status} {body}");
    }
    let stored = stored_ids(&server);
    let lost: Vec<&String> = seen.acknowledged.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(!stored.contains("while-down"), "a refused write left nothing");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert!(cluster.log().contains("received fast shutdown request"), "{}", cluster.log());
    eprintln!(
        "{} events acknowledged, {} refused with 503 while the database was down",
        seen.acknowledged.len(),
        seen.refused.len()
    );
    drop(server);
}
