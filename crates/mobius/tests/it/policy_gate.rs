//! Gate policies at deploy time, through a real server: the `policies/` a release ships (the
//! repository's shipped examples, copied in) and the server's `--policy-dir` decide each
//! deploy; a deny refuses it before anything starts, with every message, and each decision is
//! an event in the log.

use std::path::Path;

use serde_json::Value;

use crate::deploy::{Cleanup, deploy, deployed, finished, free_port, release};
use crate::util::{ADMIN, Dir, Server, http};

const DECIDED: &str = "dev.cdeventsx.mobius-policy.decided.0.1.0";

/// Copies the repository's `examples/policies/*.rego` into `release/policies/`.
fn ship_example_policies(release: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
    let policies = release.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rego") {
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
            copied += 1;
        }
    }
    assert!(copied > 0, "no example policies in {}", examples.display());
}

/// The decisions recorded, as their CDEvents (`subject.content` is the decision).
fn decisions(dir: &Dir) -> Vec<Value> {
    let events = dir.json(&["events", "list", "--limit", "200"]);
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == DECIDED)
        .map(|e| serde_json::from_str(e["raw"].as_str().expect("the event's raw JSON")).unwrap())
        .collect()
}

/// The rollouts of shop in production: 404 while it was never deployed.
fn never_deployed(server: &Server) -> bool {
    let response = http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap();
    response.status() == 404
}

#[test]
fn an_artifact_not_built_by_mobius_is_refused_for_production_with_the_message_and_the_decision_recorded() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let v1 = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    ship_example_policies(&v1);

    let out = deploy(&dir, &server, &v1, "v1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a --dir release is not built by Mobius: {err}");
    assert!(err.contains("the gate policies refuse the deploy of shop to production"), "{err}");
    assert!(err.contains("only artifacts built by Mobius go to production"), "{err}");
    assert!(never_deployed(&server), "a refused deploy starts nothing");

    let decided = decisions(&dir);
    assert_eq!(decided.len(), 1, "{decided:#?}");
    let content = &decided[0]["subject"]["content"];
    assert_eq!(content["environment"]["id"], "production");
    assert_eq!(content["action"], "deploy");
    assert_eq!(content["allow"], false);
    let deny: Vec<&str> = content["deny"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(deny.iter().any(|m| m.contains("only artifacts built by Mobius go to production")), "{deny:?}");
    assert!(content["artifact"].as_str().unwrap().starts_with("pkg:generic/"), "{content:#}");
}

#[test]
fn the_api_refuses_a_denied_deploy_with_403_and_policy_denied() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let policies = dir.path().join("server-policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("gate.rego"),
        "package mobius.gate\n\ndeny_everything contains msg if {\n\tinput.environment == \"production\"\n\tmsg := sprintf(\"nothing reaches production today (asked by %s with a %s token)\", [input.actor.name, input.actor.token_scope])\n}\n\ndeny_second contains \"and a second reason\"\n",
    )
    .unwrap();
    let server = dir.serve(&["--policy-dir", policies.to_str().unwrap()]);
    let v1 = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    // The release goes up as the CLI sends it, then the deploy is asked for through the API.
    let out = deploy(&dir, &server, &v1, "v1");
    assert!(!out.status.success());
    let uploaded = std::fs::read_dir(dir.data().join("uploads"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find_map(|name| name.strip_suffix(".tar").map(|hex| format!("sha256:{hex}")));
    let Some(digest) = uploaded else { panic!("no upload kept in {}", dir.data().display()) };
    let response = http()
        .post(server.url("/api/v1/deployments"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({
            "service": "shop",
            "environment": "production",
            "source": { "upload": digest },
        }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "policy_denied", "{body:#}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message
            .contains("nothing reaches production today (asked by bootstrap (MOBIUS_ADMIN_TOKEN) with a admin token)"),
        "{message}"
    );
    assert!(message.contains("and a second reason"), "every deny message is given: {message}");
    assert!(never_deployed(&server));
    assert_eq!(decisions(&dir).len(), 2, "each refusal is recorded");
}

#[test]
fn a_policy_that_does_not_parse_refuses_at_its_position_and_a_fixed_one_lets_the_deploy_through() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let v1 = release(&dir, "v1", 0.0, port, "rolling", "");
    std::fs::create_dir_all(v1.join("policies")).unwrap();
    std::fs::write(v1.join("policies/broken.rego"), "package mobius.gate\n\ndeny contains msg if {\n\tmsg := \n}\n")
        .unwrap();
    let out = deploy(&dir, &server, &v1, "v1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the gate policies do not load"), "{err}");
    assert!(err.contains("policies/broken.rego:4:6: expecting `}`"), "{err}");
    assert!(!err.contains(&dir.data().display().to_string()), "the release's files are named inside it: {err}");
    assert!(never_deployed(&server));

    // The same release with a policy that only warns: it deploys, and the decision says so.
    let v2 = release(&dir, "v2", 0.0, port, "rolling", "");
    std::fs::create_dir_all(v2.join("policies")).unwrap();
    std::fs::write(
        v2.join("policies/gate.rego"),
        "package mobius.gate\n\nwarn_small contains msg if {\n\tinput.action == \"deploy\"\n\tmsg := sprintf(\"%s goes out at %s\", [input.service, input.time.rfc3339])\n}\n",
    )
    .unwrap();
    deployed(&dir, &server, &v2, "v2");
    assert_eq!(finished(&server)["phase"], "succeeded");
    let decided = decisions(&dir);
    assert_eq!(decided.len(), 2, "{decided:#?}");
    let allowed = decided.iter().find(|e| e["subject"]["content"]["allow"] == true).expect("an allowed decision");
    let warn = allowed["subject"]["content"]["warn"].as_array().unwrap();
    assert_eq!(warn.len(), 1);
    assert!(warn[0].as_str().unwrap().starts_with("shop goes out at "), "{warn:?}");
}

#[test]
fn a_release_without_policies_deploys_as_before_and_records_no_decision() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    deployed(&dir, &server, &release(&dir, "v1", 0.0, free_port(), "rolling", ""), "v1");
    assert_eq!(finished(&server)["phase"], "succeeded");
    assert!(decisions(&dir).is_empty(), "no policy, no gate, nothing decided");
}

#[test]
fn a_policy_that_fails_at_evaluation_denies() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let v1 = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    std::fs::create_dir_all(v1.join("policies")).unwrap();
    std::fs::write(
        v1.join("policies/gate.rego"),
        "package mobius.gate\n\ndeny_broken contains msg if {\n\tmsg := sprintf(\"%d\", [1 / 0])\n}\n",
    )
    .unwrap();
    let out = deploy(&dir, &server, &v1, "v1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a policy that errs fails closed: {err}");
    assert!(err.contains("the gate policies refuse the deploy of shop to production"), "{err}");
    assert!(err.contains("deny_broken: policies/gate.rego:4:26: divide by zero"), "the error says where: {err}");
    assert!(never_deployed(&server));
    let decided = decisions(&dir);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["subject"]["content"]["allow"], false);
}

const BUILD: &str = "\
name: Build
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: mobius/secret-scan@v1
        with:
          fail: false
      - run: mkdir release && cp mobius.yaml version.txt release/ && cp -r policies release/
      - uses: actions/upload-artifact@v4
        with:
          name: shop
          path: release
";

#[test]
fn a_workflow_run_records_provenance_beside_its_artifact_and_the_examples_let_it_into_production() {
    use crate::runs::{commit, finished as run_finished, get, repository, start, wait_for};

    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let port = free_port();
    let spec = std::fs::read_to_string(release(&dir, "v1", 0.0, port, "rolling", "").join("mobius.yaml")).unwrap();
    let examples = dir.path().join("examples");
    ship_example_policies(&examples);
    let mut files: Vec<(String, String)> =
        vec![(".github/workflows/build.yml".into(), BUILD.into()), ("mobius.yaml".into(), spec)];
    for entry in std::fs::read_dir(examples.join("policies")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("policies/{}", path.file_name().unwrap().to_string_lossy());
        files.push((name, std::fs::read_to_string(&path).unwrap()));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let repo = repository(&dir, &files);
    let server = start(&dir, &repo);
    let sha = commit(&repo, &[("version.txt", "v1")], "Build v1");
    let runs = wait_for("the push to trigger a run", || {
        let runs = get(&server, "/api/v1/runs");
        (!runs.as_array().unwrap().is_empty()).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    let run = run_finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    let digest = logs
        .split("uploaded artifact `shop`: ")
        .nth(1)
        .and_then(|rest| rest.split("digest ").nth(1))
        .map(|rest| rest.chars().take(71).collect::<String>())
        .unwrap_or_else(|| panic!("no upload in:\n{logs}"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");

    // The statement: the artifact by digest, the commit, the workflow and the run.
    let statement = get(&server, &format!("/api/v1/artifacts/{digest}/provenance"));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["name"], "shop");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["externalParameters"]["workflow"]["ref"], sha.as_str());
    assert_eq!(definition["externalParameters"]["workflow"]["path"], ".github/workflows/build.yml");
    assert_eq!(definition["internalParameters"]["runId"], id.to_string());
    assert_eq!(statement["predicate"]["runDetails"]["builder"]["id"], "https://mobius.dev/builder/v1");
    let unknown = format!("/api/v1/artifacts/sha256:{}/provenance", "0".repeat(64));
    assert_eq!(http().get(server.url(&unknown)).bearer_auth(ADMIN).send().unwrap().status(), 404);
    let bad = http().get(server.url("/api/v1/artifacts/sha256:xyz/provenance")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(bad.status(), 400);
    let anonymous = http().get(server.url(&format!("/api/v1/artifacts/{digest}/provenance"))).send().unwrap();
    assert_eq!(anonymous.status(), 401, "reading provenance needs a token");

    // Built by Mobius from the default branch: the shipped policies let it into production,
    // and the decision saw its provenance.
    let out = crate::deploy::against(&dir, &server, ADMIN, &["deploy", "shop", "production", "--artifact", &digest]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(finished(&server)["phase"], "succeeded");
    let decided = decisions(&dir);
    assert_eq!(decided.len(), 1, "{decided:#?}");
    assert_eq!(decided[0]["subject"]["content"]["allow"], true, "{:#}", decided[0]);

    // The next push adds a secret: its scan reports it without failing the run, the scan is
    // recorded beside the artifact, and the shipped policy keeps that artifact out.
    let token = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    commit(&repo, &[("version.txt", "v2"), ("config.env", &format!("GITHUB_TOKEN={token}\n"))], "Build v2");
    let runs = wait_for("the second run", || {
        let runs = get(&server, "/api/v1/runs");
        (runs.as_array().unwrap().len() > 1).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    let run = run_finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "fail: false reports without failing\n{logs}");
    assert!(logs.contains("1 leak(s) found") && !logs.contains(&token), "{logs}");
    let leaky = logs
        .split("uploaded artifact `shop`: ")
        .nth(1)
        .and_then(|rest| rest.split("digest ").nth(1))
        .map(|rest| rest.chars().take(71).collect::<String>())
        .unwrap_or_else(|| panic!("no upload in:\n{logs}"));
    assert_ne!(leaky, digest);
    let out = crate::deploy::against(&dir, &server, ADMIN, &["deploy", "shop", "production", "--artifact", &leaky]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("1 unresolved secret-scan finding(s)"), "{said}");
    let decided = decisions(&dir);
    assert!(decided.iter().any(|d| d["subject"]["content"]["allow"] == false), "{decided:#?}");
}
