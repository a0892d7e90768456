//! SLOs over real rollouts: the error-budget policy freezing production, a burning canary
//! paging with its incident and post-mortem, chaos faults, and OpenSLO files in a release.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{Cleanup, against, body, deploy, deployed, finished, free_port, release, wait_until};
use crate::util::{ADMIN, Dir, http};

#[test]
fn an_exhausted_error_budget_freezes_production_except_for_a_hotfix() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let slo = "slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";
    let with_slo = |version: &str| {
        let path = release(&dir, version, 0.0, port, "rolling", "");
        let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
        std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
        path
    };
    deployed(&dir, &server, &with_slo("v1"), "v1");
    finished(&server);

    // A bad hour: half of 2,000 requests failed, far past a 99.9% budget.
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let minute = mobius_store::SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: "v1".into(),
        minute: now - now.rem_euclid(60) - 60,
        requests: 2000,
        errors: 1000,
        latency: vec![2000],
    };
    mobius_store::Store::add_sli(&store, &[minute]).unwrap();

    let slos: Value = http().get(server.url("/api/v1/slos")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert!(slos[0]["budget"]["remaining"].as_f64().unwrap() < 0.0, "{slos:#}");
    assert_eq!(slos[0]["alert"], "page", "a 50% error ratio pages: {slos:#}");
    let metrics = http().get(server.url("/metrics")).bearer_auth(ADMIN).send().unwrap().text().unwrap();
    assert!(metrics.contains("slo:period_error_budget_remaining:ratio{sloth_id=\"shop-availability\""), "{metrics}");
    assert!(metrics.contains("slo:sli_error:ratio_rate1h{"), "{metrics}");
    assert!(
        metrics.contains("slo:sli_error:ratio_rate30d{sloth_id=\"shop-availability\""),
        "the period, as Sloth has it: {metrics}"
    );

    // What pipelines ask before deploying: refused (exit 1), or through as a hotfix.
    let check = against(&dir, &server, ADMIN, &["slo", "check", "shop"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains("would be refused") && said.contains("error budget exhausted"), "{said}");
    let check = against(&dir, &server, ADMIN, &["slo", "check", "shop", "production", "--reason", "hotfix"]);
    assert!(check.status.success() && String::from_utf8_lossy(&check.stdout).contains("as an exception to the policy"));

    let v2 = with_slo("v2");
    let out = deploy(&dir, &server, &v2, "v2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("error budget exhausted"), "{err}");
    assert!(err.contains("--reason hotfix"), "the refusal says how to override: {err}");
    let out = against(
        &dir,
        &server,
        ADMIN,
        &["deploy", "shop", "production", "--dir", v2.to_str().unwrap(), "--as", "v2", "--reason", "hotfix"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(finished(&server)["phase"], "succeeded");
    let events = dir.json(&["events", "list", "--limit", "100"]);
    let exceptions: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "dev.cdeventsx.mobius-policy.exception.0.1.0")
        .collect();
    assert_eq!(exceptions.len(), 1, "the deploy's exception is recorded, the check's is not: {events:#}");
    let status = dir.ok(&["slo", "status"]);
    assert!(status.contains("availability") && status.contains("page"), "{status}");
}

/// Accepts HTTP requests on loopback and keeps their bodies (a webhook receiver).
pub(crate) fn webhook_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

#[test]
fn a_burning_canary_pages_and_the_incident_names_the_failing_version() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve_with_env(&[("MOBIUS_ALERT_EVERY", "1s")]);
    let (hook, bodies) = webhook_receiver();
    let port = free_port();
    let canary = "{canary: {steps: [{set_weight: 50}, {pause: {}}]}}";
    // A Slack URL's path is its secret; this one leads nowhere, so delivering to it fails.
    let slack = format!("http://127.0.0.1:{}/services/T0/B0/SLACKSECRET", free_port());
    let slo = format!(
        "owner: team-shop\nrunbook: docs/runbook.md\nslos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {{availability: {{}}}}\n    policy: warn\n    alerting:\n      webhooks: [\"http://127.0.0.1:{hook}/hook\"]\n      slack: [\"{slack}\"]\n"
    );
    let with_slo = |version: &str| {
        let path = release(&dir, version, 0.0, port, canary, "");
        let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
        std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
        path
    };
    deployed(&dir, &server, &with_slo("v1"), "v1");
    finished(&server);
    deployed(&dir, &server, &with_slo("v2"), "v2");
    let paused = wait_until(&server, "the canary's pause", |r| r["phase"] == "paused");
    let v2_artifact = paused["new"]["artifact"].as_str().unwrap().to_owned();

    // Both versions serve; v2 fails half of its requests, v1 none.
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let minute = |version: &str, errors| mobius_store::SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: version.into(),
        minute: now - now.rem_euclid(60),
        requests: 2000,
        errors,
        latency: vec![2000],
    };
    mobius_store::Store::add_sli(&store, &[minute("v1", 0), minute("v2", 1000)]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let found = bodies.lock().unwrap().iter().find(|b| b.contains("\"severity\":\"page\"")).cloned();
        if let Some(body) = found {
            break body;
        }
        assert!(Instant::now() < deadline, "no page reached the webhook");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("\"state\":\"firing\"") && page.contains("\"slo\":\"availability\""), "{page}");
    assert!(page.contains("\"owner\":\"team-shop\"") && page.contains("\"runbook\":\"docs/runbook.md\""), "{page}");
    let events = dir.json(&["events", "list", "--limit", "200"]);
    let incident = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "dev.cdevents.incident.detected.0.3.0")
        .expect("an incident was opened");
    let raw: Value = serde_json::from_str(incident["raw"].as_str().unwrap()).unwrap();
    let content = &raw["subject"]["content"];
    assert!(content["description"].as_str().unwrap().contains("version v2 has the highest error ratio"), "{content:#}");
    assert_eq!(raw["customData"]["severity"], "sev2", "a page is a sev2: {raw:#}");
    assert_eq!(content["artifactId"], v2_artifact, "attributed to the failing version's artifact: {content:#}");
    let alerts: Value = http().get(server.url("/api/v1/alerts")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(alerts[0]["firing"], "page", "{alerts:#}");
    assert!(alerts[0]["incident"].is_string(), "{alerts:#}");

    // Where the budget went: the canary's version, today, and the incident it opened.
    let out = against(&dir, &server, ADMIN, &["--json", "slo", "explain", "shop", "availability"]);
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let versions = explained["versions"].as_array().unwrap();
    assert_eq!((versions[0]["name"].as_str(), versions[0]["bad"].as_u64()), (Some("v2"), Some(1000)), "{explained:#}");
    assert!(versions[0]["budget_share"].as_f64().unwrap() > 1.0, "{explained:#}");
    assert!(versions.iter().any(|v| v["name"] == "v1" && v["bad"] == 0), "{explained:#}");
    assert_eq!(explained["days"].as_array().unwrap().len(), 1, "{explained:#}");
    assert!(explained["incidents"][0]["key"].as_str().unwrap().ends_with(alerts[0]["incident"].as_str().unwrap()));
    let text =
        String::from_utf8_lossy(&against(&dir, &server, ADMIN, &["slo", "explain", "shop", "availability"]).stdout)
            .into_owned();
    assert!(text.contains("BY VERSION") && text.contains("INCIDENTS"), "{text}");
    let out = against(&dir, &server, ADMIN, &["slo", "explain", "shop", "latency"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("shop has no SLO `latency`"));

    // It burned far more than 20% of the budget: a post-mortem is required until recorded.
    // All of it through the server, as from an on-call laptop.
    let remote = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = remote(&["incident", "list", "--data-dir", "/nonexistent"]);
    assert!(listed.contains("[post-mortem required]"), "{listed}");
    let id = alerts[0]["incident"].as_str().unwrap();
    let shown = remote(&["incident", "show", id]);
    assert!(shown.contains("# Post-mortem:") && shown.contains("## Timeline"), "{shown}");
    let draft = remote(&["postmortem", id]);
    assert!(draft.contains("## Action items"), "{draft}");
    assert!(remote(&["postmortem", id, "--recorded", "docs/postmortems/shop-burn.md"]).contains("Recorded"));
    let listed = dir.ok(&["incident", "list"]);
    assert!(!listed.contains("[post-mortem required]"), "{listed}");
    let out = against(&dir, &server, ADMIN, &["postmortem", "no-such-incident"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no incident `no-such-incident`"));

    // The failed Slack delivery is logged without the URL's secret path.
    let log = dir.path().join("serve.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("alert notification failed") {
            break text;
        }
        assert!(Instant::now() < deadline, "the failed delivery is logged: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!logged.contains("SLACKSECRET") && logged.contains("127.0.0.1"), "{logged}");
}

#[test]
fn chaos_faults_fail_requests_until_cleared_and_a_game_day_is_an_exception() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, "rolling", ""), "v1");
    finished(&server);
    let chaos = |args: &[&str]| {
        let mut all = vec!["chaos"];
        all.extend_from_slice(args);
        against(&dir, &server, ADMIN, &all)
    };
    let out =
        chaos(&["inject", "shop", "production", "--abort", "503", "--version", "v1", "--id", "outage", "--for", "5m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let response = http().get(format!("http://127.0.0.1:{port}/")).send().unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-mobius-fault"], "outage");
    let list = String::from_utf8_lossy(&chaos(&["list"]).stdout).into_owned();
    assert!(list.contains("shop production  outage  100.0% "), "{list}");
    let events = dir.json(&["events", "list", "--limit", "100"]);
    assert!(
        events.as_array().unwrap().iter().any(|e| e["type"] == "dev.cdeventsx.mobius-policy.exception.0.1.0"),
        "the game day is recorded as a policy exception"
    );
    let bad = chaos(&["inject", "shop", "production", "--abort", "42"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("42"), "a bad status is named");
    assert!(chaos(&["clear", "shop", "production"]).status.success());
    assert_eq!(body(port), "hello from v1");
}

#[test]
fn openslo_files_in_a_release_become_the_services_slos() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let closed = free_port();
    let path = release(&dir, "v1", 0.0, port, "rolling", "");
    std::fs::create_dir_all(path.join("openslo")).unwrap();
    let openslo = format!(
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata:\n  name: prom\nspec:\n  type: Prometheus\n  connectionDetails:\n    url: http://127.0.0.1:{closed}\n---\napiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: shop-latency-ok\nspec:\n  service: shop\n  timeWindow:\n    - duration: 7d\n      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n    - target: 0.99\n  indicator:\n    metadata:\n      name: ok\n    spec:\n      ratioMetric:\n        counter: true\n        good:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: http_requests_total{{code=\"200\"}}\n        total:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: http_requests_total\n---\napiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: not-ours\nspec:\n  service: billing\n  timeWindow:\n    - duration: 7d\n      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n    - target: 0.99\n  indicator:\n    metadata:\n      name: b\n    spec:\n      ratioMetric:\n        counter: true\n        good:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: up\n        total:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: up\n"
    );
    std::fs::write(path.join("openslo/shop.yaml"), openslo).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);
    let slos = dir.json(&["slo", "status"]);
    let names: Vec<&str> = slos.as_array().unwrap().iter().filter_map(|s| s["slo"].as_str()).collect();
    assert_eq!(names, ["shop-latency-ok"], "only the SLO whose service is shop: {slos:#}");
    assert_eq!(slos[0]["objective"], 99.0);
    assert!(slos[0]["unknown"].as_str().unwrap().contains("cannot be queried"), "{slos:#}");
}
