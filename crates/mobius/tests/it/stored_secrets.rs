//! `mobius secret`: values from standard input, sealed in the store, seen by the runs of their
//! repository (and the jobs of their environment) under `mobius serve`, masked, in no file in
//! clear; `rotate-key` keeps them readable; a wrong key stops the server from starting.

use std::process::{Output, Stdio};

use crate::runs::{commit, finished, get, repository, start, wait_for};
use crate::util::{ADMIN, Dir, files_holding, http, said, with_stdin};

const TOKEN: &str = "tok-7f3a9c2e51d4";
const DEPLOY_KEY: &str = "deploy-key-prod-88e1";
const OTHER: &str = "other-repo-secret-19";

/// `mobius secret ARGS` with `input` on standard input.
pub(crate) fn secret(dir: &Dir, args: &[&str], input: &str) -> Output {
    with_stdin(dir, &[&["secret"][..], args].concat(), input)
}

const WORKFLOW: &str = "on: push\njobs:\n  plain:\n    runs-on: ubuntu-latest\n    steps:\n      \
                        - run: echo \"token=${#TOKEN} deploy=${#KEY} $TOKEN\"\n        env:\n          \
                        TOKEN: ${{ secrets.TOKEN }}\n          KEY: ${{ secrets.DEPLOY_KEY }}\n  \
                        prod:\n    runs-on: ubuntu-latest\n    environment: production\n    steps:\n      \
                        - run: echo \"prod deploy=${#KEY} $KEY\"\n        env:\n          KEY: ${{ secrets.DEPLOY_KEY }}\n";

#[test]
fn stored_secrets_reach_their_repository_and_environment_sealed_masked_and_rotated() {
    let dir = Dir::new();
    // Bad input changes nothing.
    let bad = secret(&dir, &["set", "lower", "--repo", "acme/app"], "x\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(said(&bad).contains("secret name `lower` is not valid"), "{}", said(&bad));
    let empty = secret(&dir, &["set", "TOKEN", "--repo", "acme/app"], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(said(&empty).contains("value is empty"), "{}", said(&empty));
    assert!(dir.ok(&["secret", "list"]).starts_with("No secrets."));

    for (args, value) in [
        (vec!["set", "TOKEN", "--repo", "acme/app"], TOKEN),
        (vec!["set", "DEPLOY_KEY", "--repo", "acme/app", "--environment", "production"], DEPLOY_KEY),
        (vec!["set", "TOKEN", "--repo", "acme/other"], OTHER),
    ] {
        let out = secret(&dir, &args, &format!("{value}\n"));
        assert!(out.status.success(), "{}", said(&out));
    }
    let listed = dir.ok(&["secret", "list", "--repo", "acme/app"]);
    assert!(listed.contains("DEPLOY_KEY") && listed.contains("production") && listed.contains("TOKEN"), "{listed}");
    assert!(!listed.contains(TOKEN) && !listed.contains("acme/other"), "{listed}");

    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    commit(&repo, &[(".github/workflows/ci.yml", WORKFLOW)], "CI");
    let runs = wait_for("a run", || {
        let runs = get(&server, "/api/v1/runs");
        (!runs.as_array().unwrap().is_empty()).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    // The repository's secret for every job, the environment's only for its job; masked.
    assert!(logs.contains(&format!("token={} deploy=0 ***", TOKEN.len())), "{logs}");
    assert!(logs.contains(&format!("prod deploy={} ***", DEPLOY_KEY.len())), "{logs}");
    for value in [TOKEN, DEPLOY_KEY, OTHER] {
        assert!(!logs.contains(value), "{value} in the log: {logs}");
        assert!(
            files_holding(&dir.data(), value).is_empty(),
            "{value} in clear in {:?}",
            files_holding(&dir.data(), value)
        );
    }

    // The same through the API (admin only), values write-only; every change is an event.
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    let out = secret(&dir, &[&["set", "API_KEY", "--repo", "acme/app"][..], &remote[..]].concat(), "api-value-3141\n");
    assert!(out.status.success(), "{}", said(&out));
    let listed = dir.ok(&[&["secret", "list", "--repo", "acme/app"][..], &remote[..]].concat());
    assert!(listed.contains("API_KEY") && !listed.contains("api-value-3141"), "{listed}");
    let read_token = dir.json(&["token", "create", "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    let status = http()
        .put(server.url("/api/v1/secrets/acme/app/SNEAKY"))
        .bearer_auth(read_token["token"].as_str().unwrap())
        .json(&serde_json::json!({ "value": "x" }))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let listing = get(&server, "/api/v1/secrets").to_string();
    assert!(
        !listing.contains("api-value-3141") && !listing.contains(TOKEN) && !listing.contains("SNEAKY"),
        "{listing}"
    );
    let events = get(&server, "/api/v1/events?limit=500").to_string();
    assert!(events.contains("mobius-secret.changed") && events.contains("API_KEY"), "{events}");
    assert!(!events.contains("api-value-3141") && !events.contains(TOKEN), "a value in the event log");
    let out = secret(&dir, &[&["rm", "API_KEY", "--repo", "acme/app"][..], &remote[..]].concat(), "");
    assert!(out.status.success(), "{}", said(&out));
    drop(server);

    // Rotation: the key file changes, every secret still opens.
    let key_before = std::fs::read_to_string(dir.data().join("secret.key")).unwrap();
    let rotated = dir.ok(&["secret", "rotate-key"]);
    assert_eq!(rotated, "Resealed 3 secrets under a new key; restart a running server to use it.\n");
    assert_ne!(std::fs::read_to_string(dir.data().join("secret.key")).unwrap(), key_before);
    assert!(dir.ok(&["secret", "list"]).contains("acme/other"));

    // A server given another key refuses to start, saying why.
    let wrong = dir
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .env("MOBIUS_SECRET_KEY", "ab".repeat(32))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.contains("the secret key does not match the one the stored secrets were sealed with"), "{said}");

    let removed = dir.ok(&["secret", "rm", "TOKEN", "--repo", "acme/other"]);
    assert_eq!(removed, "Secret TOKEN removed from repository acme/other\n");
    let again = secret(&dir, &["rm", "TOKEN", "--repo", "acme/other"], "");
    assert_eq!(again.status.code(), Some(1));
}
