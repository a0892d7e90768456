//! Gate policies at flag changes and GitOps syncs, through a real server with a policy
//! directory: a change to a production flag set the policies deny is 403 `policy_denied` (and
//! refused by `mobius flags`) with the message, writes nothing and is recorded; an allowed one
//! goes through; a policy that errs denies; and a GitOps sync is put to the policies as
//! `gitops-sync`, naming its deploy repository and revision.

use std::path::Path;

use serde_json::Value;

use crate::deploy::{Cleanup, against};
use crate::gitops::{built, commit, registered};
use crate::runs::{git, wait_for};
use crate::util::{ADMIN, Dir, Server, http};

const DECIDED: &str = "dev.cdeventsx.mobius-policy.decided.0.1.0";

const SHOP: &str = r#"{"flags": {"checkout": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#;

/// The server's policy directory, with the repository's shipped examples copied in.
fn example_policies(dir: &Dir) -> std::path::PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let policies = dir.path().join("server-policies");
    std::fs::create_dir_all(&policies).unwrap();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rego") {
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
        }
    }
    assert!(policies.join("flags.rego").is_file(), "the examples ship flags.rego");
    policies
}

/// Every decision the server recorded, oldest first (`subject.content`).
fn decisions(server: &Server) -> Vec<Value> {
    let url = server.url(&format!("/api/v1/events?type={DECIDED}&limit=100"));
    let events: Value = http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["raw"].as_str().unwrap()).unwrap()["subject"]["content"].clone())
        .collect()
}

fn version(server: &Server, set: &str) -> String {
    let response = http().get(server.url(&format!("/api/v1/flags/{set}"))).bearer_auth(ADMIN).send().unwrap();
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// `PUT /api/v1/flags/shop.production/flags/checkout/{what}` with `body`, and the answer.
fn change(server: &Server, what: &str, reason: Option<&str>, body: Value) -> (u16, Value) {
    let mut url = server.url(&format!("/api/v1/flags/shop.production/flags/checkout/{what}"));
    if let Some(reason) = reason {
        url = format!("{url}?reason={reason}");
    }
    let response = http().put(url).bearer_auth(ADMIN).json(&body).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn a_flag_change_in_production_is_decided_by_the_servers_policies() {
    let dir = Dir::new();
    let policies = example_policies(&dir);
    let server = dir.serve_with_env(&[("MOBIUS_POLICY_DIR", policies.to_str().unwrap())]);
    let put = http()
        .put(server.url("/api/v1/flags/shop.production?environment=production&reason=launch"))
        .bearer_auth(ADMIN)
        .body(SHOP)
        .send()
        .unwrap();
    assert_eq!(put.status(), 200, "a document with a reason is allowed: {}", put.text().unwrap());
    assert_eq!(version(&server, "shop.production"), "\"1\"");

    // The shipped `flags.rego`: no change in production without a reason.
    let (status, body) = change(&server, "state", None, serde_json::json!({"state": "ENABLED"}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("policy_denied")), "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "the gate policies refuse the state change of flag set `shop.production` in production:\n  - flag set shop.production: a state change in production needs a reason (--reason)"
    );
    let out = against(&dir, &server, ADMIN, &["flags", "set-state", "shop.production", "checkout", "on"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("the gate policies refuse the state change of flag set `shop.production`"), "{said}");
    assert!(said.contains("needs a reason (--reason)"), "{said}");
    assert_eq!(version(&server, "shop.production"), "\"1\"", "a denied change writes nothing");

    let decided = decisions(&server);
    assert_eq!(decided.len(), 3, "the load and both refusals: {decided:#?}");
    let last = &decided[2];
    assert_eq!((last["action"].as_str(), last["allow"].as_bool()), (Some("flag-change"), Some(false)), "{last:#}");
    assert_eq!(
        (last["set"].as_str(), last["flag"].as_str(), last["change"].as_str()),
        (Some("shop.production"), Some("checkout"), Some("state"))
    );
    assert_eq!(
        (last["environment"]["id"].as_str(), last["versionBefore"].as_u64(), last["versionAfter"].as_u64()),
        (Some("production"), Some(1), Some(2))
    );
    assert_eq!(decided[0]["allow"], true, "the allowed load is recorded too");

    // With a reason it goes through (a hotfix, so a Friday evening's run of this test passes too).
    let out = against(
        &dir,
        &server,
        ADMIN,
        &["flags", "set-state", "shop.production", "checkout", "on", "--reason", "hotfix"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(version(&server, "shop.production"), "\"2\"");
    let last = decisions(&server).pop().unwrap();
    assert_eq!((last["allow"].as_bool(), last["versionAfter"].as_u64()), (Some(true), Some(2)));

    // A policy that errs denies, with the error and where.
    let broken =
        "package mobius.gate\n\ndeny_broken contains msg if {\n\tflag_change\n\tmsg := sprintf(\"%v\", [1 / 0])\n}\n";
    std::fs::write(policies.join("broken.rego"), broken).unwrap();
    let (status, body) = change(&server, "default", Some("rollback"), serde_json::json!({"variant": "on"}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("policy_denied")), "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("broken.rego:5"), "the failing rule's place: {message}");
    assert_eq!(version(&server, "shop.production"), "\"2\"");

    // A set of no environment asks nothing.
    let before = decisions(&server).len();
    let put = http().put(server.url("/api/v1/flags/scratch")).bearer_auth(ADMIN).body(SHOP).send().unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(decisions(&server).len(), before);
}

const WORKFLOW: &str = "\
name: Build
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/upload-artifact@v4
        with:
          name: shop
          path: release
";

#[test]
fn a_gitops_sync_is_put_to_the_policies_as_a_gitops_sync_of_its_repository_and_revision() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let gate = "package mobius.gate\n\ndeny contains msg if {\n  input.action == \"gitops-sync\"\n  msg := sprintf(\"no syncs today (%s at %s)\", [input.gitops.repository, input.gitops.revision])\n}\n";
    std::fs::write(policies.join("gate.rego"), gate).unwrap();
    let server = dir.serve_with_env(&[("MOBIUS_POLICY_DIR", policies.to_str().unwrap())]);

    let spec = "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\nenvironments:\n  - name: staging\n    listen: 127.0.0.1:1\n";
    let shop = dir.path().join("shop");
    registered(&dir, &server, &shop, "acme/shop", &[("README", "the shop\n")]);
    // The push the server is told of builds the artifact.
    let pushed = [(".github/workflows/build.yml", WORKFLOW), ("release/mobius.yaml", spec)];
    let digest = built(&server, &commit(&shop, &pushed, "build"));
    let deploy = dir.path().join("deploy");
    let declared = format!("services:\n  shop:\n    artifact: {digest}\n");
    registered(&dir, &server, &deploy, "acme/deploy", &[("environments/staging.yaml", &declared)]);
    let revision = git(&deploy, &["rev-parse", "HEAD"]);
    let out = against(&dir, &server, ADMIN, &["gitops", "add", "acme/deploy"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let decided =
        wait_for("the sync's decision", || decisions(&server).into_iter().find(|d| d["action"] == "gitops-sync"));
    assert_eq!((decided["allow"].as_bool(), decided["environment"]["id"].as_str()), (Some(false), Some("staging")));
    assert_eq!(decided["deny"][0].as_str().unwrap(), format!("no syncs today (acme/deploy at {revision})"));
    assert!(decisions(&server).iter().all(|d| d["action"] != "deploy"), "a sync is never labelled a deploy");
}
