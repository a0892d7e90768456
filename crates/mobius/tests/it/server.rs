//! The HTTP API over loopback: authentication, ingestion with per-event results, bad input,
//! webhooks, health and metrics.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{ADMIN, Dir, GITHUB_SECRET, GITLAB_TOKEN, deployed, http, sign};

fn event_count(dir: &Dir) -> usize {
    dir.json(&["events", "list", "--limit", "1000"]).as_array().expect("list").len()
}

#[test]
fn mutations_need_a_token_of_the_right_scope() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let client = http();
    let body = deployed("a1", "shop", "production", "2024-05-01T10:00:00Z").to_string();
    let post = |token: Option<&str>| {
        let mut request =
            client.post(server.url("/api/v1/events")).header("content-type", "application/json").body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().expect("request")
    };

    let response = post(None);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = response.json().unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    assert_eq!(post(Some("not-a-token")).status(), StatusCode::UNAUTHORIZED);

    // A read token cannot write; an ingest token can; reads need a token too.
    let created: Value = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"scope": "read", "name": "dashboards"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let read = created["token"].as_str().unwrap().to_owned();
    assert_eq!(post(Some(&read)).status(), StatusCode::FORBIDDEN);
    let created: Value = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&read)
        .json(&json!({"scope": "admin"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(created["error"]["code"], "forbidden", "a read token cannot mint tokens");
    let ingest: Value = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"scope": "ingest"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let response = post(Some(ingest["token"].as_str().unwrap()));
    assert_eq!(response.status(), StatusCode::CREATED);

    assert_eq!(client.get(server.url("/api/v1/dora")).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    let dora = client
        .get(server.url("/api/v1/dora?service=shop&from=2024-04-15&to=2024-05-15"))
        .bearer_auth(&read)
        .send()
        .unwrap();
    assert_eq!(dora.status(), StatusCode::OK);
    let dora: Value = dora.json().unwrap();
    assert_eq!(dora["deployment_frequency"]["deployments"], 1);
}

#[test]
fn tokens_are_listed_without_secrets_and_a_revoked_one_stops_working_at_once() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    // `mobius ARGS… --server … --token ADMIN`: the exit status, stdout and stderr.
    let mobius = |args: &[&str]| {
        let out = crate::deploy::against(&dir, &server, ADMIN, args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (_, created, _) = mobius(&["--json", "token", "create", "--scope", "read", "--name", "dashboards"]);
    let created: Value = serde_json::from_str(&created).unwrap();
    let (id, secret) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let reads = |token: &str| http().get(server.url("/api/v1/slos")).bearer_auth(token).send().unwrap().status();
    assert_eq!(reads(secret), StatusCode::OK);

    let (_, text, _) = mobius(&["--json", "token", "list"]);
    let listed: Value = serde_json::from_str(&text).unwrap();
    let mine = listed.as_array().unwrap().iter().find(|t| t["id"] == id).expect("the new token is listed");
    assert_eq!((mine["scope"].as_str(), mine["name"].as_str()), (Some("read"), Some("dashboards")));
    assert!(!text.contains(secret) && !text.contains("sha256"), "no secret, no hash: {text}");
    let (_, table, _) = mobius(&["token", "list"]);
    assert!(table.contains(id) && table.contains("dashboards"), "{table}");

    assert!(mobius(&["token", "revoke", id]).1.contains("Revoked"));
    assert_eq!(reads(secret), StatusCode::UNAUTHORIZED, "revoked at once");
    let (ok, _, err) = mobius(&["token", "revoke", id]);
    assert!(!ok && err.contains(&format!("no token has id `{id}`")), "{err}");
    // An admin token cannot revoke itself (no lock-out by mistake).
    let admin = listed.as_array().unwrap().iter().find(|t| t["scope"] == "admin").unwrap()["id"].as_str().unwrap();
    let (ok, _, err) = mobius(&["token", "revoke", admin]);
    assert!(!ok && err.contains("cannot revoke itself"), "{err}");
    assert_eq!(reads(ADMIN), StatusCode::OK);
}

#[test]
fn a_first_start_generates_an_admin_token_shown_once() {
    let dir = Dir::new();
    let (server, printed) = dir.serve_without_admin_token();
    let token = printed.split_whitespace().find(|w| w.starts_with("mbx_")).expect("a generated token").to_owned();
    let client = http();
    let created =
        client.post(server.url("/api/v1/tokens")).bearer_auth(&token).json(&json!({"scope": "read"})).send().unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    drop(server);
    for file in std::fs::read_dir(dir.data()).unwrap() {
        let stored = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()), "only the token's hash is stored");
    }

    let (server, printed) = dir.serve_without_admin_token();
    assert!(!printed.contains("mbx_"), "shown only on the first start: {printed}");
    let still =
        client.post(server.url("/api/v1/tokens")).bearer_auth(&token).json(&json!({"scope": "read"})).send().unwrap();
    assert_eq!(still.status(), StatusCode::CREATED);
}

#[test]
fn public_read_serves_queries_without_a_token_but_still_guards_writes() {
    let dir = Dir::new();
    let server = dir.serve(&["--public-read"]);
    let client = http();
    assert_eq!(client.get(server.url("/api/v1/dora")).send().unwrap().status(), StatusCode::OK);
    let response = client
        .post(server.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(deployed("x", "shop", "production", "2024-05-01T10:00:00Z").to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn every_binding_mode_is_accepted_and_duplicates_change_nothing() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let client = http();
    let post = |content_type: &str, body: String, headers: &[(&str, &str)]| {
        let mut request =
            client.post(server.url("/api/v1/events")).bearer_auth(ADMIN).header("content-type", content_type);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.body(body).send().unwrap();
        let status = response.status();
        (status, response.json::<Value>().unwrap())
    };

    // Structured mode: a CloudEvent whose data is the CDEvent.
    let cdevent = deployed("s1", "shop", "production", "2024-05-01T10:00:00Z");
    let cloudevent = json!({"specversion": "1.0", "id": "s1", "source": "/test/ci", "type": "dev.cdevents.service.deployed.0.3.0", "datacontenttype": "application/json", "data": cdevent});
    let (status, body) = post("application/cloudevents+json", cloudevent.to_string(), &[]);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["results"][0]["status"], "stored");
    let (status, body) = post("application/cloudevents+json", cloudevent.to_string(), &[]);
    assert_eq!((status, &body["results"][0]["status"]), (StatusCode::OK, &json!("duplicate")));

    // Binary mode: ce-* headers, the CDEvent as the body; headers must agree with it.
    let cdevent = deployed("b1", "shop", "production", "2024-05-02T10:00:00Z");
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "b1"),
        ("ce-source", "/test/ci"),
        ("ce-type", "dev.cdevents.service.deployed.0.3.0"),
    ];
    let (status, body) = post("application/json", cdevent.to_string(), &headers);
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let wrong = [
        ("ce-specversion", "1.0"),
        ("ce-id", "other"),
        ("ce-source", "/test/ci"),
        ("ce-type", "dev.cdevents.service.deployed.0.3.0"),
    ];
    let (status, body) =
        post("application/json", deployed("b2", "shop", "production", "2024-05-02T11:00:00Z").to_string(), &wrong);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["results"][0]["error"].as_str().unwrap().contains("ce-id"), "{body}");

    // A batch reports per event; the valid ones are stored.
    let batch = json!([
        {"specversion": "1.0", "id": "c1", "source": "/test/ci", "type": "dev.cdevents.service.deployed.0.3.0", "data": deployed("c1", "shop", "production", "2024-05-03T10:00:00Z")},
        {"specversion": "1.0", "id": "c2", "source": "/test/ci", "type": "dev.cdevents.service.deployed.0.3.0", "data": {"context": {"specversion": "0.5.1", "id": "c2", "source": "/test/ci", "type": "dev.cdevents.service.deployed.0.3.0", "timestamp": "yesterday"}, "subject": {"id": "shop", "content": {}}}},
        deployed("c1", "shop", "production", "2024-05-03T10:00:00Z")
    ]);
    let (status, body) = post("application/cloudevents-batch+json", batch.to_string(), &[]);
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<&str> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["stored", "rejected", "duplicate"]);
    assert!(body["results"][1]["error"].as_str().unwrap().contains("context.timestamp"), "{body}");

    // NDJSON, with a malformed line reported by its line number.
    let ndjson = format!("{}\n{{\"context\": oops}}\n", deployed("n1", "shop", "production", "2024-05-04T10:00:00Z"));
    let (status, body) = post("application/x-ndjson", ndjson, &[]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stored"], 1);
    let error = body["results"][1]["error"].as_str().unwrap();
    assert!(error.contains("line 2"), "{error}");
    drop(server);
    assert_eq!(event_count(&dir), 4);
}

/// A malformed query string or JSON body gets the API's JSON error, naming the field.
#[test]
fn malformed_queries_and_bodies_get_the_api_error_shape() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let error = |response: reqwest::blocking::Response| {
        let status = response.status();
        let body: Value = response.json().expect("a JSON error");
        (status, body["error"]["code"].as_str().unwrap_or_default().to_owned(), body["error"]["message"].to_string())
    };
    let (status, code, message) =
        error(http().get(server.url("/api/v1/policy/shop/production?reason=bogus")).bearer_auth(ADMIN).send().unwrap());
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(message.contains("reason") && message.contains("bogus"), "{message}");
    let (status, code, message) = error(
        http()
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(r#"{"scope": 1}"#)
            .send()
            .unwrap(),
    );
    assert_eq!((status.as_u16(), code.as_str()), (422, "bad_request"));
    assert!(message.contains("scope") && message.contains("line 1 column"), "{message}");
    let listed: Value = http().get(server.url("/api/v1/tokens")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "no token was made: {listed}");
    let post =
        |body: Value| http().post(server.url("/api/v1/postmortems")).bearer_auth(ADMIN).json(&body).send().unwrap();
    let (status, _, message) = error(post(json!({"incident": "inc-1", "location": " "})));
    assert!(status == StatusCode::BAD_REQUEST && message.contains("location"), "{message}");
    let (status, code, _) = error(post(json!({"incident": "inc-1", "location": "docs/pm.md"})));
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _, message) =
        error(http().get(server.url("/api/v1/slos/explain?service=shop")).bearer_auth(ADMIN).send().unwrap());
    assert!(status == StatusCode::BAD_REQUEST && message.contains("slo"), "{message}");
    let events: Value = http().get(server.url("/api/v1/events")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(events.as_array().map(Vec::len), Some(0), "nothing recorded: {events}");
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let client = http();
    let post = |body: String| {
        let response = client
            .post(server.url("/api/v1/events"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/cloudevents+json")
            .body(body)
            .send()
            .unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap();
        (status, body["results"][0]["error"].as_str().unwrap_or_default().to_owned())
    };
    let good = deployed("g", "shop", "production", "2024-05-01T10:00:00Z");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut event = good.clone();
        f(&mut event);
        event.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{\"context\": {".to_owned(), "line 1 column"),
        (
            mutate(&|e| e["context"].as_object_mut().unwrap().remove("id").map(drop).unwrap()),
            "`context.id` is required",
        ),
        (
            mutate(&|e| e["context"]["type"] = json!("dev.cdevents.service.deployed.9.9.9")),
            "dev.cdevents.service.deployed.9.9.9",
        ),
        (mutate(&|e| e["context"]["type"] = json!("com.example.deployed")), "not a CDEvents type"),
        (mutate(&|e| e["context"]["timestamp"] = json!("2024-13-45")), "2024-13-45"),
        (mutate(&|e| e["context"]["specversion"] = json!("0.2.0")), "specversion"),
        (
            mutate(&|e| e["subject"]["content"].as_object_mut().unwrap().remove("environment").map(drop).unwrap()),
            "environment",
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = post(body.clone());
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(error.contains(expected), "expected `{expected}` in `{error}`");
    }

    // Over 10 MiB: 413 from the declared length alone, before the body is read.
    let (status, body) = raw_request(
        &server.base,
        &format!(
            "POST /api/v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            11 << 20
        ),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");

    let response = client
        .post(server.url("/api/v1/events"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body("a,b")
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    drop(server);
    assert_eq!(event_count(&dir), 0, "nothing from a rejected request is written");
}

#[test]
fn github_webhooks_are_verified_before_anything_is_stored() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let client = http();
    let body = std::fs::read(crate::util::corpus("github-webhooks/ping/payload.json"))
        .unwrap_or_else(|_| br#"{"zen":"x","hook_id":1}"#.to_vec());
    let push = json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": "1111111111111111111111111111111111111111",
        "repository": {"name": "shop", "full_name": "acme/shop"},
        "commits": [{"id": "1111111111111111111111111111111111111111", "timestamp": "2024-05-01T09:00:00Z", "message": "feat: cart"}],
        "head_commit": {"id": "1111111111111111111111111111111111111111", "timestamp": "2024-05-01T09:00:00Z", "message": "feat: cart"}
    })
    .to_string();
    let send = |event: &str, body: &[u8], signature: Option<String>| {
        let mut request =
            client.post(server.url("/api/v1/webhooks/github")).header("x-github-event", event).body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().unwrap()
    };
    assert_eq!(send("push", push.as_bytes(), None).status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        send("push", push.as_bytes(), Some(sign("wrong-secret", push.as_bytes()))).status(),
        StatusCode::UNAUTHORIZED
    );
    let tampered = push.replace("feat: cart", "feat: carts");
    assert_eq!(
        send("push", tampered.as_bytes(), Some(sign(GITHUB_SECRET, push.as_bytes()))).status(),
        StatusCode::UNAUTHORIZED
    );

    let ping = send("ping", &body, Some(sign(GITHUB_SECRET, &body)));
    assert_eq!(ping.status(), StatusCode::OK);
    let stored = send("push", push.as_bytes(), Some(sign(GITHUB_SECRET, push.as_bytes())));
    assert_eq!(stored.status(), StatusCode::OK);
    let again = send("push", push.as_bytes(), Some(sign(GITHUB_SECRET, push.as_bytes())));
    let again: Value = again.json().unwrap();
    assert_eq!(again["status"], "duplicate", "a re-delivered webhook changes nothing");
    let star = br#"{"action":"created","repository":{"name":"shop","full_name":"acme/shop"}}"#;
    assert_eq!(send("star", star, Some(sign(GITHUB_SECRET, star))).status(), StatusCode::ACCEPTED);

    let gitlab = |token: Option<&str>| {
        let mut request = client
            .post(server.url("/api/v1/webhooks/gitlab"))
            .header("x-gitlab-event", "Push Hook")
            .body(r#"{"object_kind":"push","ref":"refs/heads/main","before":"0","after":"2222222222222222222222222222222222222222","project":{"name":"api","path_with_namespace":"acme/api"},"commits":[{"id":"2222222222222222222222222222222222222222","timestamp":"2024-05-01T09:00:00+02:00","message":"fix"}]}"#);
        if let Some(token) = token {
            request = request.header("x-gitlab-token", token);
        }
        request.send().unwrap().status()
    };
    assert_eq!(gitlab(None), StatusCode::UNAUTHORIZED);
    assert_eq!(gitlab(Some("nope")), StatusCode::UNAUTHORIZED);
    assert_eq!(gitlab(Some(GITLAB_TOKEN)), StatusCode::OK);
    drop(server);
    assert_eq!(event_count(&dir), 3, "push, star and the GitLab push; nothing from refused deliveries");
}

#[test]
fn health_metrics_and_graceful_shutdown() {
    let dir = Dir::new();
    let mut server = dir.serve(&[]);
    let client = http();
    assert_eq!(client.get(server.url("/healthz")).send().unwrap().text().unwrap(), "ok\n");
    // Ready, holding every lease: one process on SQLite does all the singleton work.
    let ready = crate::runs::wait_for("every lease held", || {
        let ready: serde_json::Value = client.get(server.url("/readyz")).send().unwrap().json().unwrap();
        // Seven singleton leases, and the replica's own liveness lease.
        (ready["leases"]["held"].as_array().map_or(0, Vec::len) == 8).then_some(ready)
    });
    assert_eq!((&ready["status"], &ready["database"]), (&json!("ready"), &json!("ok")), "{ready}");
    assert!(ready["leases"]["held"].as_array().unwrap().contains(&json!("slo-alerts")), "{ready}");
    // `/metrics` names services and SLOs, which the API guards: it needs a token too.
    assert_eq!(client.get(server.url("/metrics")).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    let scrape = dir.json(&["token", "create", "--scope", "metrics", "--server", &server.base, "--token", ADMIN]);
    let scrape = scrape["token"].as_str().unwrap().to_owned();
    let metrics = client.get(server.url("/metrics")).bearer_auth(&scrape).send().unwrap().text().unwrap();
    assert!(metrics.contains("mobius_http_requests_total"), "{metrics}");
    assert!(metrics.contains("mobius_lease_held{lease=\"repository-polling\"} 1"), "{metrics}");
    assert!(metrics.contains("mobius_runs{state=\"waiting\"} 0"), "{metrics}");
    assert!(metrics.contains("mobius_agent_jobs{state=\"queued\"} 0"), "{metrics}");
    let api = client.get(server.url("/api/v1/slos")).bearer_auth(&scrape).send().unwrap();
    assert_eq!(api.status(), StatusCode::FORBIDDEN, "a scrape token reads nothing else");
    assert!(metrics.contains("process_resident_memory_bytes"), "{metrics}");
    assert!(metrics.contains("mobius_events_in_log 0"), "{metrics}");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
}

/// Sends raw request bytes and reads the status and body of the answer.
fn raw_request(base: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&answer).contains('}') {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// The singleton leases `/readyz` says a server holds (not its own liveness lease,
/// `replica:<id>`, which every replica holds).
fn leases_held(server: &crate::util::Server) -> Vec<String> {
    let ready: Value = http().get(server.url("/readyz")).send().unwrap().json().unwrap();
    let held = ready["leases"]["held"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned());
    held.filter(|l| !l.starts_with("replica:")).collect()
}

#[test]
fn two_servers_on_one_store_do_the_singleton_work_once_and_the_survivor_takes_it_over() {
    let dir = Dir::new();
    let mut first = dir.serve(&[]);
    let all = crate::runs::wait_for("the first server to hold every lease", || {
        Some(leases_held(&first)).filter(|held| held.len() == 7)
    });
    // A second replica on the same store (SQLite in WAL mode serves both processes): it
    // serves requests but runs none of the singleton work while the first renews.
    let second = dir.serve(&[]);
    std::thread::sleep(mobius_log::lease::RENEW_EVERY + std::time::Duration::from_secs(1));
    assert_eq!(leases_held(&second), Vec::<String>::new(), "the first holds them all");
    assert_eq!(leases_held(&first), all);

    // The first dies without giving them up: the second takes every lease once they lapse.
    let killed = std::time::Instant::now();
    first.kill9();
    crate::runs::wait_for("the survivor to take every lease", || {
        Some(leases_held(&second)).filter(|held| *held == all)
    });
    let took = killed.elapsed();
    let bound = mobius_log::lease::TTL + mobius_log::lease::RENEW_EVERY + std::time::Duration::from_secs(2);
    assert!(took <= bound, "taken over in {took:?}, within the lease time and one renewal");
}

#[test]
fn a_store_that_cannot_take_a_write_answers_503_with_a_clear_word_and_loses_nothing_acknowledged() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let post = |id: &str| {
        http()
            .post(server.url("/api/v1/events"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(deployed(id, "shop", "production", "2024-05-01T10:00:00Z").to_string())
            .send()
            .unwrap()
    };
    assert!(post("before").status().is_success());

    // Another process holds the database's write lock longer than the server waits (5 s).
    let conn = rusqlite::Connection::open(dir.data().join("mobius.db")).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let refused = post("during");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("unavailable") && message.contains("try again"), "{message}");
    assert!(!message.to_lowercase().contains("sqlite"), "{message}");
    // Reads go on meanwhile (WAL): the server is ready, and says so.
    assert_eq!(http().get(server.url("/readyz")).send().unwrap().status(), StatusCode::OK);
    conn.execute_batch("COMMIT").unwrap();

    assert!(post("after").status().is_success(), "writes resume once the lock is gone");
    let events: Value = http().get(server.url("/api/v1/events")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    let ids: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["before", "after"], "the refused one was not half-written");
}
