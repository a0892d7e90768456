//! GitOps flag files: a deploy repository's `environments/staging.yaml` names a flagd file
//! beside it, and the server loads it into `checkout.staging` as a release's flag file would
//! be loaded — by `gitops:<repository>`, with the revision in the reason. A commit changing the
//! file changes the set; a flag flipped by hand is drift, shown (self-heal off) until a manual
//! sync puts git's file back, or reverted at once (self-heal on); a flag file that is not a
//! flagd document, or is missing, refuses the revision at its place and changes nothing; a
//! load the gate policies deny changes nothing either, and is asked once.

use serde_json::Value;

use crate::deploy::{Cleanup, against, free_port};
use crate::gitops::{WORKFLOW, built, commit, gitops, registered, template};
use crate::runs::wait_for;
use crate::util::{ADMIN, Dir, Server, http};

fn flag_file(state: &str) -> String {
    format!(
        "{{\n  \"flags\": {{\n    \"new-checkout\": {{\n      \"state\": \"{state}\",\n      \"variants\": {{\"on\": true, \"off\": false}},\n      \"defaultVariant\": \"on\"\n    }}\n  }}\n}}\n"
    )
}

fn staging(digest: &str, flags: &str) -> String {
    format!("services:\n  shop:\n    artifact: {digest}\n    flags:\n      - {flags}\n")
}

/// The status row of shop in staging once `check` holds for it.
fn shop_row(server: &Server, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, || {
        let all = gitops(server);
        let row = all[0]["status"]["services"].as_array()?.iter().find(|s| s["service"] == "shop")?.clone();
        check(&row).then_some(row)
    })
}

/// The state of `new-checkout` in the stored set, and who made its version.
fn flag_state(server: &Server) -> String {
    let document: Value =
        http().get(server.url("/api/v1/flags/checkout.staging")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    document["flags"]["new-checkout"]["state"].as_str().unwrap().to_owned()
}

fn flip_by_hand(server: &Server, state: &str) {
    let response = http()
        .put(server.url("/api/v1/flags/checkout.staging/flags/new-checkout/state?reason=by+hand"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "state": state }))
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().unwrap());
}

#[test]
fn a_deploy_repositorys_flag_files_are_loaded_changed_by_commits_and_put_back_after_drift() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    // The server's gate policy: no flag named `forbidden` may be added.
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let gate = "package mobius.gate\n\ndeny contains \"flag `forbidden` may not be added\" if {\n  input.action == \"flag-change\"\n  some f in input.flag.flags\n  f.key == \"forbidden\"\n  f.before == null\n}\n";
    std::fs::write(policies.join("gate.rego"), gate).unwrap();
    let server = dir.serve_with_env(&[("MOBIUS_POLICY_DIR", policies.to_str().unwrap())]);
    let cli = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {said}");
        said
    };

    let shop = dir.path().join("shop");
    let files = [
        (".github/workflows/build.yml", WORKFLOW),
        ("mobius.template.yaml", &template(free_port(), free_port(), "")),
        ("version.txt", "v0"),
    ];
    registered(&dir, &server, &shop, "acme/shop", &files);
    let v1 = built(&server, &commit(&shop, &[("version.txt", "v1")], "v1"));

    // The deploy repository declares shop with a flag file, the flag off.
    let deploy = dir.path().join("deploy");
    let file = "flags/checkout.flagd.json";
    let first = [("environments/staging.yaml", staging(&v1, file)), (file, flag_file("DISABLED"))];
    let first: Vec<(&str, &str)> = first.iter().map(|(a, b)| (*a, b.as_str())).collect();
    registered(&dir, &server, &deploy, "acme/deploy", &first);
    cli(&["gitops", "add", "acme/deploy"]);
    let row = shop_row(&server, "the flag file loaded", |s| s["sync"] == "Synced" && s["health"] == "Healthy");
    assert_eq!(row["flags"][0]["set"], "checkout.staging", "{row}");
    assert_eq!(row["flags"][0]["file"], file, "{row}");
    let loaded = row["flags"][0]["version"].as_u64().unwrap();
    assert_eq!(flag_state(&server), "DISABLED");
    // The change is by the repository, and says which revision of which file.
    let events = dir.json(&["events", "list", "--limit", "200"]);
    let changes: Vec<&Value> =
        events.as_array().unwrap().iter().filter(|e| e["type"] == "dev.cdeventsx.mobius-flag.changed.0.1.0").collect();
    let raw = changes.first().and_then(|e| e["raw"].as_str()).expect("a flag change event");
    assert!(raw.contains("gitops:acme/deploy") && raw.contains("environments/staging.yaml"), "{raw}");

    // A commit turns the flag on.
    commit(&deploy, &[(file, &flag_file("ENABLED"))], "checkout: on in staging");
    let row = shop_row(&server, "the flag on", |s| s["flags"][0]["version"].as_u64() > Some(loaded));
    assert_eq!(row["flags"][0]["sync"], "Synced", "{row}");
    assert_eq!(flag_state(&server), "ENABLED");

    // Flipped by hand: drift, shown with who did it, and left alone while self-heal is off.
    flip_by_hand(&server, "DISABLED");
    let row = shop_row(&server, "the drift shown", |s| s["sync"] == "OutOfSync");
    let message = row["flags"][0]["message"].as_str().unwrap();
    assert!(message.contains("drift: changed outside git by bootstrap (MOBIUS_ADMIN_TOKEN)"), "{row}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(flag_state(&server), "DISABLED", "self-heal is off: the flag stays as flipped");
    // A manual sync puts git's file back.
    cli(&["gitops", "sync", "acme/deploy"]);
    shop_row(&server, "git's file back", |s| s["sync"] == "Synced");
    assert_eq!(flag_state(&server), "ENABLED");

    // Self-healing, a flip by hand is reverted by the next pass.
    cli(&["gitops", "add", "acme/deploy", "--self-heal"]);
    flip_by_hand(&server, "DISABLED");
    wait_for("the drift reverted", || (flag_state(&server) == "ENABLED").then_some(()));
    let history = cli(&["gitops", "history", "acme/deploy"]);
    assert!(history.contains("flags checkout.staging: drift reverted"), "{history}");

    // A flag file that is not a flagd document refuses the revision at its place; the set
    // stays as it was.
    let before = shop_row(&server, "in sync", |s| s["sync"] == "Synced")["flags"][0]["version"].clone();
    let broken = "{\n  \"flags\": {\n    \"new-checkout\": {\n      \"state\": \"MAYBE\"\n    }\n  }\n}\n";
    commit(&deploy, &[(file, broken)], "a broken flag file");
    let error = wait_for("the revision refused", || gitops(&server)[0]["status"]["error"].as_str().map(str::to_owned));
    assert!(error.starts_with("flags/checkout.flagd.json:4:"), "{error}");
    // A file the environment names that git does not have: refused at the `flags:` entry.
    let missing = staging(&v1, "flags/gone.flagd.json");
    commit(&deploy, &[(file, &flag_file("ENABLED")), ("environments/staging.yaml", &missing)], "a missing file");
    let error = wait_for("the missing file refused", || {
        let error = gitops(&server)[0]["status"]["error"].as_str()?.to_owned();
        error.contains("gone").then_some(error)
    });
    assert_eq!(
        error,
        "environments/staging.yaml:5:9: `flags`: `flags/gone.flagd.json` does not exist at ".to_owned()
            + &error[error.len() - 12..]
    );
    assert_eq!(shop_row(&server, "unchanged", |_| true)["flags"][0]["version"], before);
    assert_eq!(flag_state(&server), "ENABLED");

    // The gate policies decide each load: a file the policy denies changes nothing, says why,
    // and is not asked again every pass.
    let forbidden = flag_file("ENABLED").replacen(
        "\"flags\": {",
        "\"flags\": {\n    \"forbidden\": {\"state\": \"ENABLED\", \"variants\": {\"on\": true}, \"defaultVariant\": \"on\"},",
        1,
    );
    commit(&deploy, &[(file, &forbidden), ("environments/staging.yaml", &staging(&v1, file))], "a forbidden flag");
    let row = shop_row(&server, "the load denied", |s| {
        s["flags"][0]["message"].as_str().is_some_and(|m| m.contains("may not be added"))
    });
    assert_eq!(row["sync"], "OutOfSync", "{row}");
    assert_eq!(row["flags"][0]["version"], before, "a denied load writes nothing");
    let denials = || {
        let events = dir.json(&["events", "list", "--limit", "500"]);
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "dev.cdeventsx.mobius-policy.decided.0.1.0")
            .filter(|e| e["raw"].as_str().is_some_and(|r| r.contains("may not be added")))
            .count()
    };
    assert_eq!(denials(), 1, "one decision, recorded");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(denials(), 1, "not asked again on every pass");
}
