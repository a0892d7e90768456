//! GitOps against the real binary and real git repositories: a service repository whose
//! pipeline builds artifacts, and a deploy repository whose `environments/*.yaml` declare which
//! artifact runs where. The server syncs what git declares (production through its canary),
//! refuses manual deploys, holds a change in a deny window, promotes as a commit, reverts drift
//! when self-healing, shows a failed rollout as out of sync with its reason, and prunes only
//! when told; the gate policies decide promotions before anything is committed.

use std::path::Path;

use serde_json::Value;

use crate::deploy::{Cleanup, against, body, free_port};
use crate::runs::{git, wait_for};
use crate::util::{ADMIN, Dir, Server, http};

pub(crate) const WORKFLOW: &str = "\
name: Build
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: mkdir release && sed \"s/{version}/$(cat version.txt)/\" mobius.template.yaml > release/mobius.yaml
      - uses: actions/upload-artifact@v4
        with:
          name: shop
          path: release
";

/// `mobius.yaml` for the sample app, `{version}` filled by the build; production is a canary.
pub(crate) fn template(staging: u16, production: u16, extra_run: &str) -> String {
    format!(
        "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\n  env:\n    SAMPLE_VERSION: \"{{version}}\"\n  instances: 1\n  readiness_timeout: 3s\n  shutdown_grace: 1s\n{extra_run}environments:\n  - name: staging\n    listen: 127.0.0.1:{staging}\n    strategy: rolling\n  - name: production\n    listen: 127.0.0.1:{production}\n    strategy: {{canary: {{steps: [{{set_weight: 50}}, {{pause: {{duration: 1s}}}}]}}}}\n"
    )
}

/// A git repository at `path` with `files` committed on `main`, registered with the server as
/// `name` (its hooks tell the server of every commit).
pub(crate) fn registered(dir: &Dir, server: &Server, path: &Path, name: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(path).unwrap();
    git(path, &["init", "-q", "-b", "main"]);
    commit(path, files, "Initial commit");
    let added = dir.json(&["repo", "add", path.to_str().unwrap(), "--name", name, "--hook-server", &server.base]);
    assert_eq!(added["branches"], 1, "{added}");
}

pub(crate) fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        let file = repo.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// The digest of the artifact the build of commit `sha` uploaded.
pub(crate) fn built(server: &Server, sha: &str) -> String {
    wait_for("the build's artifact", || {
        let events: Value = http()
            .get(server.url("/api/v1/events?type=dev.cdevents.artifact.packaged.0.3.0&limit=50"))
            .bearer_auth(ADMIN)
            .send()
            .unwrap()
            .json()
            .unwrap();
        events.as_array()?.iter().find_map(|e| {
            let raw: Value = serde_json::from_str(e["raw"].as_str()?).ok()?;
            let digest = raw["subject"]["id"].as_str()?.rsplit_once('@').map(|(_, d)| d.replace("%3A", ":"))?;
            (raw["subject"]["content"]["change"]["id"] == sha).then_some(digest)
        })
    })
}

pub(crate) fn environment(digest: &str, windows: &str) -> String {
    format!("# what runs here\nservices:\n  shop:\n    artifact: {digest}\n{windows}")
}

pub(crate) fn gitops(server: &Server) -> Value {
    http().get(server.url("/api/v1/gitops")).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

/// The status row of shop in `environment`, once `check` holds for it.
pub(crate) fn shop_in(server: &Server, environment: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, || {
        let all = gitops(server);
        let row = all[0]["status"]["services"]
            .as_array()?
            .iter()
            .find(|s| s["service"] == "shop" && s["environment"] == environment)?
            .clone();
        check(&row).then_some(row)
    })
}

pub(crate) fn rollout(server: &Server, environment: &str) -> Value {
    let url = server.url(&format!("/api/v1/rollouts/shop/{environment}"));
    http().get(url).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

pub(crate) fn events_of(dir: &Dir, ty: &str) -> Vec<Value> {
    let events = dir.json(&["events", "list", "--limit", "500"]);
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == ty)
        .map(|e| serde_json::from_str::<Value>(e["raw"].as_str().unwrap()).unwrap()["subject"]["content"].clone())
        .collect()
}

#[test]
fn a_deploy_repository_drives_its_environments_through_sync_promotion_drift_and_failure() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    // The server's own gate policy: a promotion said to be blocked is refused before any commit.
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let gate = "package mobius.gate\n\ndeny contains \"promotions marked blocked wait for approval\" if {\n  input.action == \"promotion\"\n  input.reason == \"blocked\"\n}\n";
    std::fs::write(policies.join("gate.rego"), gate).unwrap();
    let server = dir.serve_with_env(&[("MOBIUS_POLICY_DIR", policies.to_str().unwrap())]);
    let (staging, production) = (free_port(), free_port());
    let cli = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };

    // The service's pipeline builds three artifacts: v1, v2, and a v3 that never gets healthy.
    let shop = dir.path().join("shop");
    registered(
        &dir,
        &server,
        &shop,
        "acme/shop",
        &[
            (".github/workflows/build.yml", WORKFLOW),
            ("mobius.template.yaml", &template(staging, production, "")),
            ("version.txt", "v0"),
        ],
    );
    let v1 = built(&server, &commit(&shop, &[("version.txt", "v1")], "v1"));
    let v2 = built(&server, &commit(&shop, &[("version.txt", "v2")], "v2"));
    let broken = template(staging, production, "  health: /never\n");
    let v3 = built(&server, &commit(&shop, &[("version.txt", "v3"), ("mobius.template.yaml", &broken)], "v3"));

    // The deploy repository declares v1 in both environments.
    let deploy = dir.path().join("deploy");
    registered(
        &dir,
        &server,
        &deploy,
        "acme/deploy",
        &[
            ("environments/staging.yaml", &environment(&v1, "")),
            ("environments/production.yaml", &environment(&v1, "")),
        ],
    );
    let (ok, said) = cli(&["gitops", "add", "acme/deploy", "--interval", "soon"]);
    assert!(!ok && said.contains("--interval must be a duration such as 3m, not `soon`"), "{said}");
    let (ok, said) = cli(&["gitops", "add", "acme/deploy"]);
    assert!(ok && said.contains("Following acme/deploy (environments/ at HEAD)"), "{said}");
    for environment in ["staging", "production"] {
        shop_in(&server, environment, "v1 synced", |s| s["sync"] == "Synced" && s["health"] == "Healthy");
    }
    assert_eq!(body(production), "hello from v1");
    let (ok, said) = cli(&["gitops", "status"]);
    assert!(ok && said.contains("shop/production") && said.contains("Synced") && said.contains("Healthy"), "{said}");

    // A deploy by hand to a declared environment is refused, naming the repository.
    let (ok, said) = cli(&["deploy", "shop", "production", "--artifact", &v2]);
    assert!(!ok && said.contains("production is managed by GitOps from repository `acme/deploy`"), "{said}");

    // A commit to the deploy repository moves staging to v2 (rolling).
    let to_v2 = commit(&deploy, &[("environments/staging.yaml", &environment(&v2, ""))], "staging: v2");
    shop_in(&server, "staging", "staging on v2", |s| s["live"] == v2.as_str() && s["health"] == "Healthy");
    assert_eq!(body(staging), "hello from v2");
    let synced = events_of(&dir, "dev.cdeventsx.mobius-gitops.synced.0.1.0");
    assert!(synced.iter().any(|e| e["revision"] == to_v2.as_str() && e["environment"] == "staging"), "{synced:#?}");

    // Promotion: what serves staging, committed into production's file; production's canary
    // takes it.
    let before = git(&deploy, &["rev-parse", "HEAD"]);
    let (ok, said) = cli(&["promote", "shop", "--from", "staging", "--to", "production", "--reason", "blocked"]);
    assert!(!ok && said.contains("promotions marked blocked wait for approval"), "{said}");
    assert_eq!(git(&deploy, &["rev-parse", "HEAD"]), before, "a refused promotion commits nothing");
    let (ok, said) = cli(&["promote", "shop", "--from", "staging", "--to", "production", "--reason", "release 2"]);
    assert!(ok && said.contains("Committed") && said.contains("environments/production.yaml"), "{said}");
    let head = git(&deploy, &["log", "-1", "--format=%an%n%s%n%b"]);
    // The author is the token that asked.
    let by = "bootstrap (MOBIUS_ADMIN_TOKEN)";
    assert!(head.starts_with(&format!("{by}\nPromote shop to production: {}", &v2[..19])), "{head}");
    assert!(
        head.contains(&format!("shop serves {v2} in staging; {by} promoted it to production (release 2)")),
        "{head}"
    );
    let file = git(&deploy, &["show", "HEAD:environments/production.yaml"]);
    assert_eq!(file, environment(&v2, "").trim_end(), "only the digest changed, the comment kept");
    shop_in(&server, "production", "production on v2", |s| s["live"] == v2.as_str() && s["sync"] == "Synced");
    let canary = rollout(&server, "production");
    assert_eq!(
        (canary["plan"]["canary"].is_object().then_some("canary"), canary["phase"].as_str()),
        (Some("canary"), Some("succeeded")),
        "{canary:#}"
    );
    assert_eq!(body(production), "hello from v2");

    // A deny window holds a change; a forced sync goes through it.
    let deny = "sync_windows:\n  - kind: deny\n    schedule: \"* * * * *\"\n    duration: 1h\n";
    commit(&deploy, &[("environments/production.yaml", &environment(&v1, deny))], "production: back to v1");
    let held = shop_in(&server, "production", "the window to hold it", |s| s["sync"] == "OutOfSync");
    assert_eq!(held["message"], "held by the deny window `* * * * *` for 1h", "{held:#}");
    let (ok, said) = cli(&["gitops", "diff"]);
    assert!(ok && said.contains(&format!("git:  {v1}")) && said.contains(&format!("live: {v2}")), "{said}");
    let (ok, said) = cli(&["gitops", "sync", "acme/deploy", "--force"]);
    assert!(ok, "{said}");
    shop_in(&server, "production", "production back on v1", |s| s["live"] == v1.as_str() && s["sync"] == "Synced");

    // Self-heal: a deploy by hand goes through, and is put back with a drift event.
    let (ok, said) = cli(&["gitops", "add", "acme/deploy", "--self-heal"]);
    assert!(ok, "{said}");
    let (ok, said) = cli(&["deploy", "shop", "staging", "--artifact", &v1]);
    assert!(ok, "{said}");
    let manual = rollout(&server, "staging")["id"].as_i64().unwrap();
    wait_for("the drift reverted", || {
        let drifted = events_of(&dir, "dev.cdeventsx.mobius-gitops.drifted.0.1.0");
        drifted
            .into_iter()
            .find(|e| e["environment"] == "staging" && e["action"] == "reverted" && e["live"] == v1.as_str())
    });
    shop_in(&server, "staging", "staging back on v2", |s| {
        s["live"] == v2.as_str() && s["health"] == "Healthy" && s["rollout"].as_i64() > Some(manual)
    });
    assert_eq!(body(staging), "hello from v2");

    // v3 never gets healthy: the rollout fails, v2 serves, and git stays out of sync, saying why.
    commit(&deploy, &[("environments/staging.yaml", &environment(&v3, ""))], "staging: v3");
    let failed = shop_in(&server, "staging", "the failure shown", |s| s["health"] == "Degraded");
    assert_eq!(
        (failed["sync"].as_str(), failed["live"].as_str()),
        (Some("OutOfSync"), Some(v2.as_str())),
        "{failed:#}"
    );
    let why = failed["message"].as_str().unwrap();
    assert!(why.starts_with(&format!("the rollout of {} ended failed", &v3[..19])), "{why}");
    assert!(why.ends_with("change git (or `mobius gitops sync --force`) to try again"), "{why}");
    assert_eq!(body(staging), "hello from v2");
    let (ok, said) = cli(&["gitops", "history", "acme/deploy"]);
    // Newest first: the failed sync, the self-heal, the promotion's sync.
    assert!(ok && said.contains("self-heal to sha256:") && said.contains("out-of-sync"), "{said}");

    // Prune: staging's file declares nothing now. Off, shop keeps running; on, a whole
    // environment is not emptied without --allow-empty; with it, shop is retired.
    commit(&deploy, &[("environments/staging.yaml", "services: {}\n")], "staging: nothing");
    let kept = shop_in(&server, "staging", "shop undeclared", |s| s["desired"].is_null());
    assert_eq!(kept["message"], "not declared in environments/staging.yaml: prune is off, so it keeps running");
    let (ok, said) = cli(&["gitops", "add", "acme/deploy", "--self-heal", "--prune"]);
    assert!(ok, "{said}");
    shop_in(&server, "staging", "prune to refuse emptying staging", |s| {
        s["message"].as_str().is_some_and(|m| m.contains("prune retires a whole environment only with --allow-empty"))
    });
    assert_eq!(body(staging), "hello from v2");
    let (ok, said) = cli(&["gitops", "add", "acme/deploy", "--self-heal", "--prune", "--allow-empty"]);
    assert!(ok, "{said}");
    wait_for("staging retired", || {
        let all = gitops(&server);
        let rows = all[0]["status"]["services"].as_array()?.clone();
        rows.iter().all(|s| s["environment"] != "staging").then_some(())
    });
    let closed = http().get(format!("http://127.0.0.1:{staging}/")).send();
    assert!(closed.is_err(), "staging's proxy is closed: {closed:?}");
    let removed = events_of(&dir, "dev.cdevents.service.removed.0.3.0");
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert_eq!(removed[0]["environment"]["id"], "staging");
    assert_eq!(body(production), "hello from v1", "production is untouched");

    // A bad file is refused at its position, and what runs stays.
    commit(&deploy, &[("environments/production.yaml", "services:\n  shop:\n    artifact: latest\n")], "oops");
    let error = wait_for("the bad file reported", || {
        let all = gitops(&server);
        all[0]["status"]["error"].as_str().map(str::to_owned)
    });
    assert_eq!(
        error,
        "environments/production.yaml:3:15: `artifact` must be a digest `sha256:` and 64 hex digits, not `latest`"
    );
    assert_eq!(body(production), "hello from v1");
}
