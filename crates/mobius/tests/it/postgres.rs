//! `mobius serve` and the CLI on PostgreSQL (`MOBIUS_DATABASE_URL`): the same answers as on
//! SQLite, nothing kept in the data directory's `mobius.db`, two servers on one database,
//! and a URL's password never shown. The cluster is the store conformance suite's own: a
//! throwaway PostgreSQL 15 the tests start (or `MOBIUS_TEST_DATABASE_URL`).

#[path = "../../../mobius-store/tests/conformance/cluster.rs"]
pub(crate) mod cluster;

use serde_json::Value;

use crate::util::{ADMIN, Dir, deployed, http};

fn post(server: &crate::util::Server, events: &[Value]) {
    for event in events {
        let response = http()
            .post(server.url("/api/v1/events"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{}", response.text().unwrap());
    }
}

#[test]
fn serve_and_the_cli_keep_the_store_in_postgres_and_two_servers_share_it() {
    let database = cluster::Database::create();
    // Replicas share the database and the key its secrets are sealed with.
    let key = "5ec12e7".repeat(10)[..64].to_owned();
    let env = [("MOBIUS_DATABASE_URL", database.url.as_str()), ("MOBIUS_SECRET_KEY", key.as_str())];
    let (dir, other) = (Dir::new(), Dir::new());
    let first = dir.serve_with_env(&env);
    post(
        &first,
        &[
            deployed("p1", "shop", "production", "2024-05-01T10:00:00Z"),
            deployed("p2", "shop", "production", "2024-05-02T10:00:00Z"),
            deployed("p2", "shop", "production", "2024-05-02T10:00:00Z"),
        ],
    );
    assert!(!dir.data().join("mobius.db").exists(), "nothing in the data directory's SQLite file");

    // A second server with a data directory of its own reads the same store.
    let second = other.serve_with_env(&env);
    let dora = |server: &crate::util::Server| -> Value {
        let query = "/api/v1/dora?service=shop&environment=production&from=2024-05-01&to=2024-06-01";
        http().get(server.url(query)).bearer_auth(ADMIN).send().unwrap().json().unwrap()
    };
    assert_eq!(dora(&first)["deployment_frequency"]["deployments"], 2, "{}", dora(&first));
    assert_eq!(dora(&second), dora(&first));

    // The CLI on the same database, without a server.
    let mut cli = dir.cmd(&[
        "--json",
        "dora",
        "--service",
        "shop",
        "--environment",
        "production",
        "--from",
        "2024-05-01",
        "--to",
        "2024-06-01",
    ]);
    let out = cli.env("MOBIUS_DATABASE_URL", &database.url).env("MOBIUS_SECRET_KEY", &key).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let local: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(local["deployment_frequency"], dora(&first)["deployment_frequency"]);

    // Each lease has one holder between them.
    let held = |server: &crate::util::Server| -> Vec<String> {
        let ready: Value = http().get(server.url("/readyz")).send().unwrap().json().unwrap();
        ready["leases"]["held"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect()
    };
    let (a, b) = crate::runs::wait_for("the leases shared out", || {
        let (a, b) = (held(&first), held(&second));
        // Seven singleton leases, and each replica's own liveness lease.
        (a.len() + b.len() == 9).then_some((a, b))
    });
    assert!(a.iter().all(|lease| !b.contains(lease)), "no lease held twice: {a:?} {b:?}");
    drop((first, second));
}

#[test]
fn a_database_that_does_not_answer_stops_the_start_without_showing_its_password() {
    let dir = Dir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://mobius:hunter2-secret@127.0.0.1:{port}/mobius?connect_timeout=2");
    let out = dir.cmd(&["serve", "--listen", "127.0.0.1:0"]).env("MOBIUS_DATABASE_URL", &url).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot open the PostgreSQL store") && said.contains("127.0.0.1"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
    // And a URL that is not PostgreSQL's is refused, saying why.
    let out = dir.cmd(&["serve", "--database-url", "mysql://x@y/z"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a postgres:// URL"), "{:?}", out);
}

/// The commands that write to the store without a server — `mobius run` recording its events,
/// `secret set`, `environment protect` — on PostgreSQL. They call the store from async code,
/// where PostgreSQL's blocking client must not run (each of them panicked there once).
#[test]
fn the_commands_that_record_events_without_a_server_work_on_postgres() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let database = cluster::Database::create();
    let key = "5ec12e7".repeat(10)[..64].to_owned();
    let dir = Dir::new();
    let on_postgres = |args: &[&str]| -> Command {
        let mut cmd = dir.cmd(args);
        cmd.env("MOBIUS_DATABASE_URL", &database.url).env("MOBIUS_SECRET_KEY", &key);
        cmd
    };
    let run = |args: &[&str], input: &str, cwd: Option<&std::path::Path>| -> String {
        let mut cmd = on_postgres(args);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = crate::util::said(&out);
        assert!(out.status.success() && !said.contains("panicked"), "{args:?}: {said}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let repo = dir.path().join("shop");
    std::fs::create_dir_all(repo.join(".github/workflows")).unwrap();
    let workflow = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo built\n";
    std::fs::write(repo.join(".github/workflows/ci.yml"), workflow).unwrap();
    crate::runs::git(&repo, &["init", "-q", "-b", "main"]);
    crate::runs::git(&repo, &["add", "-A"]);
    crate::runs::git(&repo, &["commit", "-qm", "ci"]);

    let said = run(&["run"], "", Some(&repo));
    assert!(said.contains("built"), "{said}");
    let events: Value = serde_json::from_str(&run(&["--json", "events", "list", "--limit", "50"], "", None)).unwrap();
    let types: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.iter().any(|t| t.starts_with("dev.cdevents.pipelinerun.finished")), "{types:?}");

    run(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/shop"], "", None);
    run(&["secret", "set", "DEPLOY_KEY", "--repo", "acme/shop"], "s3cr3t-value", None);
    run(&["environment", "protect", "acme/shop", "production", "--require-review"], "", None);
    let listed = run(&["environment", "list"], "", None);
    assert!(listed.contains("production"), "{listed}");
    let secrets = run(&["secret", "list"], "", None);
    assert!(secrets.contains("DEPLOY_KEY") && !secrets.contains("s3cr3t-value"), "{secrets}");
}
