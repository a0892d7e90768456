//! OFREP over HTTP against the real binary, as a client sees it: a `flags` client key bound to
//! one set evaluates that set and nothing else; one flag and every flag in OFREP's shapes, its
//! status codes (401, 403, 404, 400, 413, 429 with `Retry-After`); the bulk answer's `ETag`
//! following the context as well as the flags (304 only for the same answer, weak and listed
//! tags, `*`); CORS for the configured origins; and the change stream telling a client to
//! fetch again when the set changes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::{ADMIN, Dir, Server, http};

const SET: &str = r#"{
  "flags": {
    "banner": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]}
    },
    "color": {"state": "ENABLED", "variants": {"red": "red", "blue": "blue"}, "defaultVariant": "red"},
    "split": {
      "state": "ENABLED",
      "variants": {"a": "a", "b": "b"},
      "defaultVariant": "a",
      "targeting": {"fractional": [["a", 50], ["b", 50]]}
    }
  },
  "metadata": {"team": "web"}
}
"#;

/// A server with the set `web` loaded, a `flags` key for it, and the server's other settings.
fn serve(dir: &Dir, env: &[(&str, &str)]) -> (Server, String) {
    let server = dir.serve_with_env(env);
    let put = http()
        .put(server.url("/api/v1/flags/web"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(SET)
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().unwrap_or_default());
    let key = key_for(dir, &server, "web");
    (server, key)
}

fn key_for(dir: &Dir, server: &Server, set: &str) -> String {
    let made = dir.json(&[
        "token",
        "create",
        "--scope",
        "flags",
        "--set",
        set,
        "--name",
        "frontend",
        "--server",
        &server.base,
        "--token",
        ADMIN,
    ]);
    assert_eq!(made["set"], set, "{made}");
    made["token"].as_str().unwrap().to_owned()
}

fn token(dir: &Dir, server: &Server, scope: &str) -> String {
    let made = dir.json(&["token", "create", "--scope", scope, "--server", &server.base, "--token", ADMIN]);
    made["token"].as_str().unwrap().to_owned()
}

/// POSTs `body` to an OFREP path with the given headers.
fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> reqwest::blocking::Response {
    let mut request = http().post(server.url(path)).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body.to_owned()).send().unwrap()
}

fn one(server: &Server, key: &str, flag: &str, context: Value) -> (StatusCode, Value) {
    let body = json!({ "context": context }).to_string();
    let answer = post(server, &format!("/ofrep/v1/evaluate/flags/{flag}"), &[("x-api-key", key)], &body);
    (answer.status(), answer.json().unwrap_or(Value::Null))
}

#[test]
fn a_client_key_evaluates_its_set_in_ofreps_shapes_and_nothing_else() {
    let dir = Dir::new();
    let (server, key) = serve(&dir, &[]);
    let (status, body) = one(&server, &key, "banner", json!({"targetingKey": "u1", "email": "ana@example.com"}));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"key": "banner", "value": true, "reason": "TARGETING_MATCH", "variant": "on", "metadata": {"team": "web"}})
    );
    let (_, body) = one(&server, &key, "color", json!({"targetingKey": "u1"}));
    assert_eq!((&body["value"], &body["reason"]), (&json!("red"), &json!("STATIC")));
    let (_, body) = one(&server, &key, "split", json!({"targetingKey": "u1"}));
    assert_eq!(body["reason"], "SPLIT", "{body}");
    // The same key as a bearer token.
    let bearer = post(&server, "/ofrep/v1/evaluate/flags/color", &[("authorization", &format!("Bearer {key}"))], "{}");
    assert_eq!(bearer.status(), 200);

    let (status, body) = one(&server, &key, "nope", json!({"targetingKey": "u1"}));
    assert_eq!((status.as_u16(), &body["errorCode"], &body["key"]), (404, &json!("FLAG_NOT_FOUND"), &json!("nope")));
    let (status, body) = one(&server, &key, "banner", json!({"targetingKey": 7}));
    assert_eq!((status.as_u16(), &body["errorCode"]), (400, &json!("INVALID_CONTEXT")), "{body}");
    let garbage = post(&server, "/ofrep/v1/evaluate/flags/banner", &[("x-api-key", &key)], "{not json");
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.json::<Value>().unwrap()["errorCode"], "PARSE_ERROR");

    // Who may ask: no token, a bad token, scopes that do not read, a key naming another set.
    assert_eq!(post(&server, "/ofrep/v1/evaluate/flags/color", &[], "{}").status(), 401);
    assert_eq!(post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", "mbx_nope")], "{}").status(), 401);
    for scope in ["agent", "metrics"] {
        let other = token(&dir, &server, scope);
        let refused = post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", &other)], "{}");
        assert_eq!(refused.status(), 403, "a `{scope}` token");
    }
    let elsewhere =
        post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", &key), ("x-mobius-flag-set", "ops")], "{}");
    assert_eq!(elsewhere.status(), 403, "a client key evaluates its own set only");
    // A reading token names the set; without the header it is told to.
    let reader = token(&dir, &server, "read");
    let unnamed = post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", &reader)], "{}");
    assert_eq!(unnamed.status(), 400);
    let named =
        post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", &reader), ("x-mobius-flag-set", "web")], "{}");
    assert_eq!(named.status(), 200);
    // And the client key reads nothing else of the API.
    let api = http().get(server.url("/api/v1/flags/web")).bearer_auth(&key).send().unwrap();
    assert_eq!(api.status(), 403, "a client key cannot read the set's rules");
    let events = http().get(server.url("/api/v1/events")).bearer_auth(&key).send().unwrap();
    assert_eq!(events.status(), 403);
    // A client key needs its set; no other scope takes one.
    let out =
        dir.cmd(&["token", "create", "--scope", "flags", "--server", &server.base, "--token", ADMIN]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--set"), "{out:?}");
    let out = dir
        .cmd(&["token", "create", "--scope", "read", "--set", "web", "--server", &server.base, "--token", ADMIN])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a read token names no set");
    // A revoked key stops at once, though OFREP remembers keys for a few seconds.
    let id = key.split('_').nth(1).unwrap();
    let revoked = http().delete(server.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(post(&server, "/ofrep/v1/evaluate/flags/color", &[("x-api-key", &key)], "{}").status(), 401);
}

#[test]
fn the_bulk_tag_follows_the_answer_and_changes_reach_the_stream() {
    let dir = Dir::new();
    let (server, key) = serve(&dir, &[]);
    let bulk = |context: Value, if_none_match: Option<&str>| {
        let body = json!({ "context": context }).to_string();
        let mut headers = vec![("x-api-key", key.as_str())];
        if let Some(tag) = if_none_match {
            headers.push(("if-none-match", tag));
        }
        post(&server, "/ofrep/v1/evaluate/flags", &headers, &body)
    };
    let first = bulk(json!({"targetingKey": "u1", "email": "ana@example.com"}), None);
    assert_eq!(first.status(), 200);
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let answer: Value = first.json().unwrap();
    let keys: Vec<&str> = answer["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["banner", "color", "split"]);
    assert_eq!(answer["metadata"], json!({"team": "web"}));
    assert_eq!(answer["eventStreams"][0]["type"], "sse");

    let same = json!({"targetingKey": "u1", "email": "ana@example.com"});
    assert_eq!(bulk(same.clone(), Some(&tag)).status(), 304);
    assert_eq!(bulk(same.clone(), Some(&format!("W/{tag}"))).status(), 304, "weak comparison");
    assert_eq!(bulk(same.clone(), Some(&format!("\"other\", {tag}"))).status(), 304, "a list");
    assert_eq!(bulk(same.clone(), Some("*")).status(), 304);
    let other_context = bulk(json!({"targetingKey": "u1", "email": "bo@elsewhere.org"}), Some(&tag));
    assert_eq!(other_context.status(), 200, "a changed context is never answered 304");
    assert_ne!(other_context.headers()["etag"].to_str().unwrap(), tag);

    // The change stream: a client connected to it hears of a change and fetches again.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /ofrep/v1/events HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let flipped = http()
        .put(server.url("/api/v1/flags/web/flags/color/default"))
        .bearer_auth(ADMIN)
        .json(&json!({"variant": "blue"}))
        .send()
        .unwrap();
    assert!(flipped.status().is_success(), "{}", flipped.text().unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(15);
    let event = loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(data) = line.trim().strip_prefix("data:") {
            break serde_json::from_str::<Value>(data.trim()).unwrap();
        }
        assert!(Instant::now() < deadline, "no event");
    };
    assert_eq!(event["type"], "refetchEvaluation");
    assert_eq!(event["etag"], "2", "the set's new version");
    let after = bulk(same, Some(&tag));
    assert_eq!(after.status(), 200, "the flags changed, so the answer did");
    let flags: Value = after.json().unwrap();
    assert_eq!(flags["flags"][1]["value"], "blue");
}

#[test]
fn rates_sizes_and_browsers_are_held_to_their_limits() {
    let dir = Dir::new();
    let (server, key) =
        serve(&dir, &[("MOBIUS_OFREP_RATE", "1"), ("MOBIUS_OFREP_CORS_ORIGINS", "https://shop.example.com")]);
    let ask = |headers: &[(&str, &str)]| post(&server, "/ofrep/v1/evaluate/flags/color", headers, "{}");
    // A burst of two, then one a second: the third at once is 429 with when to come back.
    assert_eq!(ask(&[("x-api-key", &key)]).status(), 200);
    assert_eq!(ask(&[("x-api-key", &key)]).status(), 200);
    let limited = ask(&[("x-api-key", &key)]);
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let reader = token(&dir, &server, "read");
    assert_eq!(ask(&[("x-api-key", &reader), ("x-mobius-flag-set", "web")]).status(), 200, "another key, its own rate");

    let big = format!("{{\"context\":{{\"targetingKey\":\"u\",\"pad\":\"{}\"}}}}", "x".repeat(70 * 1024));
    let too_large =
        post(&server, "/ofrep/v1/evaluate/flags", &[("x-api-key", &reader), ("x-mobius-flag-set", "web")], &big);
    assert_eq!(too_large.status(), 413);
    // Past any body limit, without a token: 401, not 413 — nothing of the body was read.
    let huge = format!("{{\"context\":{{\"pad\":\"{}\"}}}}", "x".repeat(3 << 20));
    let stranger = post(&server, "/ofrep/v1/evaluate/flags", &[], &huge);
    assert_eq!(stranger.status(), 401, "who is asking is settled before the body is read");

    let preflight = |origin: &str| {
        http()
            .request(reqwest::Method::OPTIONS, server.url("/ofrep/v1/evaluate/flags"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-api-key, content-type")
            .send()
            .unwrap()
    };
    let allowed = preflight("https://shop.example.com");
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://shop.example.com");
    assert!(allowed.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-API-Key"));
    let other = preflight("https://evil.example.net");
    assert!(other.headers().get("access-control-allow-origin").is_none(), "an origin not configured gets nothing");
    std::thread::sleep(Duration::from_millis(1100));
    let answered = post(
        &server,
        "/ofrep/v1/evaluate/flags/color",
        &[("x-api-key", &key), ("origin", "https://shop.example.com")],
        "{}",
    );
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["access-control-allow-origin"], "https://shop.example.com");
    assert!(answered.headers()["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
}

/// OpenFeature's own OFREP provider for Rust (`open-feature-ofrep` from crates.io), as a black
/// box: it resolves our flags through `/ofrep/v1` with the client key, typed as it asks.
#[test]
fn openfeatures_ofrep_provider_resolves_the_flags() {
    use open_feature::EvaluationContext;
    use open_feature::provider::FeatureProvider;
    use open_feature_ofrep::{OfrepOptions, OfrepProvider};

    let dir = Dir::new();
    let (server, key) = serve(&dir, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-api-key", key.parse().unwrap());
        let options = OfrepOptions { base_url: server.base.clone(), headers, ..Default::default() };
        let provider = OfrepProvider::new(options).await.expect("the provider starts");
        let ana = EvaluationContext::default().with_targeting_key("u1").with_custom_field("email", "ana@example.com");
        let banner = provider.resolve_bool_value("banner", &ana).await.expect("banner resolves");
        assert!(banner.value);
        assert_eq!(banner.variant.as_deref(), Some("on"));
        let bo = EvaluationContext::default().with_targeting_key("u2").with_custom_field("email", "bo@elsewhere.org");
        assert!(!provider.resolve_bool_value("banner", &bo).await.expect("banner resolves").value);
        let color = provider.resolve_string_value("color", &ana).await.expect("color resolves");
        assert_eq!(color.value, "red");
        let missing = provider.resolve_bool_value("nope", &ana).await.expect_err("no such flag");
        assert_eq!(missing.code, open_feature::EvaluationErrorCode::FlagNotFound, "{missing:?}");
        // OFREP has no types (ADR-0003): the provider finds the mismatch itself, and this one
        // reports it as a parse error of the value.
        let mistyped = provider.resolve_bool_value("color", &ana).await.expect_err("a string is no boolean");
        assert!(
            matches!(
                mistyped.code,
                open_feature::EvaluationErrorCode::TypeMismatch | open_feature::EvaluationErrorCode::ParseError
            ),
            "{mistyped:?}"
        );
    });
}
