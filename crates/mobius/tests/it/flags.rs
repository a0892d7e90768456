//! Feature flag sets through the real binary: loaded from a file with the CLI, read and
//! changed through the API with the right scopes (and refused without them), every change a
//! `mobius-flag.changed` event naming the token, a bad file refused at its position with the
//! set in force kept; a change through one replica seen through the other on PostgreSQL; and a
//! release's flag file loaded into `<set>.<environment>` by its deploy.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::deploy::{Cleanup, against, finished, free_port, release};
use crate::postgres::cluster;
use crate::util::{ADMIN, Dir, Server, http};

const CHANGED: &str = "dev.cdeventsx.mobius-flag.changed.0.1.0";

const SHOP: &str = r#"{
  "flags": {
    "checkout": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"fractional": [["on", 10], ["off", 90]]}
    }
  }
}
"#;

/// SHOP with an unknown default variant, at line 6 column 25.
fn broken() -> String {
    SHOP.replace("\"defaultVariant\": \"off\"", "\"defaultVariant\": \"maybe\"")
}

fn token(dir: &Dir, server: &Server, scope: &str, name: &str) -> String {
    let made =
        dir.json(&["token", "create", "--scope", scope, "--name", name, "--server", &server.base, "--token", ADMIN]);
    made["token"].as_str().unwrap().to_owned()
}

/// `mobius --json ARGS… --server … --token TOKEN`, required to succeed.
fn cli(dir: &Dir, server: &Server, token: &str, args: &[&str]) -> Value {
    let out = against(dir, server, token, &[&["--json"], args].concat());
    assert!(out.status.success(), "mobius {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The content of every flag change in the server's log, in order.
fn changes(server: &Server) -> Vec<Value> {
    let url = server.url(&format!("/api/v1/events?type={CHANGED}"));
    let events: Value = http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    let events = events.as_array().unwrap().iter();
    events
        .map(|e| serde_json::from_str::<Value>(e["raw"].as_str().unwrap()).unwrap()["subject"]["content"].clone())
        .collect()
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut request = http().get(server.url(path)).bearer_auth(ADMIN);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn put(
    server: &Server,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: String,
) -> (StatusCode, Value) {
    let mut request = http().put(server.url(path)).header("content-type", "application/json").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    (response.status(), response.json().unwrap_or_default())
}

#[test]
fn a_flag_file_is_loaded_shown_flipped_and_every_change_recorded_with_who_and_why() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let file = dir.write("shop.flagd.json", SHOP);
    let loaded = cli(
        &dir,
        &server,
        ADMIN,
        &[
            "flags",
            "load",
            file.to_str().unwrap(),
            "--set",
            "shop",
            "--environment",
            "production",
            "--reason",
            "launch",
        ],
    );
    assert_eq!((loaded["version"].as_u64(), loaded["changed"].as_bool()), (Some(1), Some(true)), "{loaded}");
    assert_eq!(loaded["environment"], "production");
    let listed = cli(&dir, &server, ADMIN, &["flags", "list"]);
    assert_eq!((listed[0]["set"].as_str(), listed[0]["flags"].as_u64()), (Some("shop"), Some(1)), "{listed}");
    let flag = cli(&dir, &server, ADMIN, &["flags", "show", "shop", "checkout"]);
    assert_eq!((flag["state"].as_str(), flag["defaultVariant"].as_str()), (Some("ENABLED"), Some("off")));

    // A deploy token flips it; the event names that token and the reason.
    let alice = token(&dir, &server, "deploy", "alice");
    let flipped =
        cli(&dir, &server, &alice, &["flags", "set-state", "shop", "checkout", "off", "--reason", "incident 7"]);
    assert_eq!(flipped["version"], 2);
    let again = cli(&dir, &server, &alice, &["flags", "set-state", "shop", "checkout", "off"]);
    assert_eq!((again["version"].as_u64(), again["changed"].as_bool()), (Some(2), Some(false)), "no change");
    let events = changes(&server);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(
        (events[0]["by"].as_str(), events[0]["reason"].as_str()),
        (Some("bootstrap (MOBIUS_ADMIN_TOKEN)"), Some("launch"))
    );
    let last = &events[1];
    assert_eq!((last["by"].as_str(), last["reason"].as_str()), (Some("alice"), Some("incident 7")));
    assert_eq!(
        (last["set"].as_str(), last["environment"].as_str(), last["version"].as_u64()),
        (Some("shop"), Some("production"), Some(2))
    );
    assert_eq!(last["flags"][0]["before"]["state"], "ENABLED");
    assert_eq!(last["flags"][0]["after"]["state"], "DISABLED");

    // The document keeps its layout; its version is its ETag.
    let shown = get(&server, "/api/v1/flags/shop", &[]);
    assert_eq!(shown.headers()["etag"], "\"2\"");
    assert_eq!(shown.text().unwrap(), SHOP.replace("\"ENABLED\"", "\"DISABLED\""));
    assert_eq!(get(&server, "/api/v1/flags/shop", &[("if-none-match", "W/\"2\"")]).status(), StatusCode::NOT_MODIFIED);
    assert_eq!(get(&server, "/api/v1/flags/shop", &[("if-none-match", "\"1\", \"3\"")]).status(), StatusCode::OK);
    assert_eq!(get(&server, "/api/v1/flags/nothing", &[]).status(), StatusCode::NOT_FOUND);
    let (code, body) = put(&server, "/api/v1/flags/shop", Some(&alice), &[("if-match", "\"1\"")], SHOP.into());
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("at version 2, not 1"), "{body}");

    // A bad file is refused at its own position, by the CLI and by the API; the set stays.
    let bad = dir.write("broken.flagd.json", &broken());
    let out = against(&dir, &server, &alice, &["flags", "load", bad.to_str().unwrap(), "--set", "shop"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("broken.flagd.json:6:25: at /flags/checkout/defaultVariant"),
        "{said}"
    );
    let (code, body) = put(&server, "/api/v1/flags/shop", Some(&alice), &[], broken());
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("shop:6:25: at /flags/checkout/defaultVariant"),
        "{body}"
    );
    assert_eq!(get(&server, "/api/v1/flags/shop", &[]).headers()["etag"], "\"2\"");
    assert_eq!(changes(&server).len(), 2, "refusals write no event");
}

#[test]
fn an_acknowledged_change_survives_a_kill_9() {
    let dir = Dir::new();
    let mut server = dir.serve(&[]);
    let (code, body) = put(&server, "/api/v1/flags/shop?environment=production", Some(ADMIN), &[], SHOP.into());
    assert_eq!((code, body["version"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
    server.kill9();
    let server = dir.serve(&[]);
    let shown = get(&server, "/api/v1/flags/shop", &[]);
    assert_eq!((shown.status(), shown.headers()["etag"].to_str().unwrap()), (StatusCode::OK, "\"1\""));
    assert_eq!(shown.text().unwrap(), SHOP, "in force again from the store at start");
    assert_eq!(changes(&server).len(), 1, "and its event with it");
}

#[test]
fn changing_flags_needs_a_deploy_token_and_reading_them_any_token() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let reader = token(&dir, &server, "read", "viewer");
    let runner = token(&dir, &server, "run", "hooks");
    let (code, _) = put(&server, "/api/v1/flags/shop", None, &[], SHOP.into());
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    for other in [&reader, &runner] {
        let (code, body) = put(&server, "/api/v1/flags/shop", Some(other), &[], SHOP.into());
        assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    }
    let state = "{\"state\": \"DISABLED\"}".to_owned();
    let (code, _) = put(&server, "/api/v1/flags/shop/flags/checkout/state", Some(&reader), &[], state);
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(changes(&server).is_empty(), "nothing refused was recorded");
    let (code, _) = put(&server, "/api/v1/flags/shop", Some(ADMIN), &[], SHOP.into());
    assert_eq!(code, StatusCode::OK);
    let listed = http().get(server.url("/api/v1/flags")).bearer_auth(&reader).send().unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(http().get(server.url("/api/v1/flags")).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    // Past the document limit (4 MiB): 413, and nothing changes.
    let huge = format!("{{\"flags\": {{}}, \"metadata\": {{\"pad\": \"{}\"}}}}", "x".repeat(5 << 20));
    let (code, _) = put(&server, "/api/v1/flags/shop", Some(ADMIN), &[], huge);
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(changes(&server).len(), 1);
}

#[test]
fn the_cli_changes_the_local_store_without_a_server() {
    let dir = Dir::new();
    let file = dir.write("shop.flagd.json", SHOP);
    let loaded = dir.json(&["flags", "load", file.to_str().unwrap(), "--set", "shop"]);
    assert_eq!(loaded["version"], 1);
    let changed = dir.json(&["flags", "set-default", "shop", "checkout", "on", "--reason", "go"]);
    assert_eq!(changed["version"], 2);
    let out = dir.run(&["flags", "set-default", "shop", "checkout", "maybe"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no variant `maybe` (its variants: on, off)"));
    let listed = dir.ok(&["flags", "list"]);
    assert!(listed.contains("shop") && listed.contains("cli"), "{listed}");
    let events = dir.json(&["events", "list", "--type", CHANGED]);
    assert_eq!(events.as_array().map(Vec::len), Some(2), "{events}");
}

/// Polls `check` for up to ten seconds.
fn within<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_change_through_one_replica_is_in_force_on_the_other() {
    let database = cluster::Database::create();
    let key = "5ec12e7".repeat(10)[..64].to_owned();
    let env = [("MOBIUS_DATABASE_URL", database.url.as_str()), ("MOBIUS_SECRET_KEY", key.as_str())];
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let a = dir_a.serve_with_env(&env);
    let b = dir_b.serve_with_env(&env);
    let (code, body) = put(&a, "/api/v1/flags/shop", Some(ADMIN), &[], SHOP.into());
    assert_eq!(code, StatusCode::OK, "{body}");
    within("b to serve version 1", || {
        let shown = get(&b, "/api/v1/flags/shop", &[]);
        (shown.status() == StatusCode::OK && shown.headers()["etag"] == "\"1\"").then_some(())
    });
    let state = "{\"state\": \"DISABLED\"}".to_owned();
    let (code, body) = put(&b, "/api/v1/flags/shop/flags/checkout/state", Some(ADMIN), &[], state);
    assert_eq!((code, body["version"].as_u64()), (StatusCode::OK, Some(2)), "{body}");
    let seen = within("a to serve version 2", || {
        let shown = get(&a, "/api/v1/flags/shop", &[]);
        (shown.headers()["etag"] == "\"2\"").then(|| shown.text().unwrap())
    });
    assert!(seen.contains("\"DISABLED\""), "{seen}");
    // Writers on two replicas from one version: one wins, the other is told.
    let (first, _) = put(&a, "/api/v1/flags/shop", Some(ADMIN), &[("if-match", "\"2\"")], SHOP.into());
    let (second, _) =
        put(&b, "/api/v1/flags/shop", Some(ADMIN), &[("if-match", "\"2\"")], broken().replace("maybe", "on"));
    assert_eq!((first, second), (StatusCode::OK, StatusCode::CONFLICT));
    assert_eq!(changes(&a).len(), 3);
}

#[test]
fn a_release_flag_file_is_loaded_by_its_deploy_and_a_bad_one_refuses_it() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let deployer = token(&dir, &server, "deploy", "release-bot");

    // A bad flag file: refused before anything starts, at its position.
    let bad = release(&dir, "v0", 0.0, port, "rolling", "");
    std::fs::create_dir_all(bad.join("flags")).unwrap();
    std::fs::write(bad.join("flags/shop.flagd.json"), broken()).unwrap();
    let out = against(&dir, &server, &deployer, &["deploy", "shop", "production", "--dir", bad.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("flags/shop.flagd.json:6:25: at /flags/checkout/defaultVariant"),
        "{said}"
    );
    let rollouts: Value = http().get(server.url("/api/v1/rollouts")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(rollouts, Value::Array(vec![]), "no rollout started");

    let good = release(&dir, "v1", 0.0, port, "rolling", "");
    std::fs::create_dir_all(good.join("flags")).unwrap();
    std::fs::write(good.join("flags/shop.flagd.json"), SHOP).unwrap();
    let out = against(
        &dir,
        &server,
        &deployer,
        &["deploy", "shop", "production", "--dir", good.to_str().unwrap(), "--as", "v1"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = get(&server, "/api/v1/flags/shop.production", &[]);
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(shown.headers()["x-mobius-environment"], "production");
    assert_eq!(shown.text().unwrap(), SHOP);
    let events = changes(&server);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        (events[0]["by"].as_str(), events[0]["reason"].as_str()),
        (Some("release-bot"), Some("deploy of shop v1 to production"))
    );
    assert_eq!(finished(&server)["phase"], "succeeded");
}
