//! The run queue in the store, across two `mobius serve` replicas on one PostgreSQL database
//! that each drive one run at a time (`MOBIUS_RUNS=1`): a run queued through a replica with no
//! room is run by the other, and runs still waiting when the replica they were queued through
//! is killed with `kill -9` are run by the survivor — each exactly once.

use std::path::Path;

use serde_json::{Value, json};

use crate::runs::{get, repository};
use crate::util::{ADMIN, Dir, Server, http};

/// What two replicas share: a fresh PostgreSQL database and the secret key.
struct Shared {
    database: crate::postgres::cluster::Database,
    key: String,
}

impl Shared {
    fn env(&self) -> [(&str, &str); 3] {
        [
            ("MOBIUS_DATABASE_URL", self.database.url.as_str()),
            ("MOBIUS_SECRET_KEY", self.key.as_str()),
            ("MOBIUS_RUNS", "1"),
        ]
    }
}

/// Starts `workflow` of `acme/app` through `server`; the run's id.
fn dispatch(server: &Server, workflow: &str) -> i64 {
    let started = http()
        .post(server.url("/api/v1/runs"))
        .bearer_auth(ADMIN)
        .json(&json!({ "repository": "acme/app", "workflow": workflow }))
        .send()
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::CREATED, "{}", started.text().unwrap_or_default());
    started.json::<Value>().unwrap()["id"].as_i64().unwrap()
}

fn state(server: &Server, id: i64) -> String {
    get(server, &format!("/api/v1/runs/{id}"))["state"].as_str().unwrap_or_default().to_owned()
}

/// Waits for run `id` to be `wanted`, showing the run and what both replicas said if it is not.
fn reached(server: &Server, id: i64, wanted: &str, dirs: &[&Dir]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state(server, id) != wanted {
        if std::time::Instant::now() > deadline {
            let said: Vec<String> =
                dirs.iter().map(|d| std::fs::read_to_string(d.path().join("serve.log")).unwrap_or_default()).collect();
            let run = get(server, &format!("/api/v1/runs/{id}"));
            panic!("run {id} is not {wanted}: {run:#}\n{}", said.join("\n---\n"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The ids the short workflow's runs wrote, one line per run that ran.
fn ran(marks: &Path) -> Vec<i64> {
    let text = std::fs::read_to_string(marks).unwrap_or_default();
    let mut ids: Vec<i64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// Lets the long runs' steps end, also those of a killed replica, which outlive it.
struct Release<'a>(&'a Path);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, "");
    }
}

#[test]
fn runs_queued_through_a_saturated_or_killed_replica_run_once_on_the_other() {
    let shared =
        Shared { database: crate::postgres::cluster::Database::create(), key: "5ec12e7".repeat(10)[..64].to_owned() };
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let dirs = [&dir_a, &dir_b];
    // Steps run as `nobody` when the tests run as root: a directory every user may write.
    let out = dir_a.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (marks, release) = (out.join("marks"), out.join("release"));
    let long = format!(
        "on: workflow_dispatch\njobs:\n  hold:\n    runs-on: ubuntu-latest\n    steps:\n      - run: for i in $(seq 600); do [ -f {r} ] && break; sleep 0.2; done\n",
        r = release.display()
    );
    let short = format!(
        "on: workflow_dispatch\njobs:\n  mark:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"$GITHUB_RUN_ID\" >> {m}\n",
        m = marks.display()
    );
    let repo = repository(
        &dir_a,
        &[(".github/workflows/long.yml", long.as_str()), (".github/workflows/short.yml", short.as_str())],
    );
    let mut a = dir_a.serve_with_env(&shared.env());
    let b = dir_b.serve_with_env(&shared.env());
    let _release = Release(&release);
    let added =
        dir_a.cmd(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/app"]).envs(shared.env()).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    // a plans and drives its first run: it has room.
    let held_by_a = dispatch(&a, "long.yml");
    reached(&a, held_by_a, "running", &dirs);
    // a has no room for the next: b runs it meanwhile.
    let first = dispatch(&a, "short.yml");
    reached(&b, first, "success", &dirs);
    assert_eq!(state(&a, held_by_a), "running", "a was busy all along");
    assert_eq!(ran(&marks), [first]);

    // b gets busy too; two more runs queued through a wait for room in the store.
    let held_by_b = dispatch(&b, "long.yml");
    reached(&b, held_by_b, "running", &dirs);
    let waiting = [dispatch(&a, "short.yml"), dispatch(&a, "short.yml")];
    std::thread::sleep(std::time::Duration::from_secs(2));
    for id in waiting {
        assert_eq!(state(&b, id), "queued", "nobody has room for run {id}");
    }
    // a dies before starting them; once b's run ends, b runs both.
    a.kill9();
    std::fs::write(&release, "").unwrap();
    reached(&b, held_by_b, "success", &dirs);
    for id in waiting {
        reached(&b, id, "success", &dirs);
    }
    let mut expected = vec![first, waiting[0], waiting[1]];
    expected.sort_unstable();
    assert_eq!(ran(&marks), expected, "each queued run ran exactly once");
    // a's own run is interrupted once its liveness lease lapsed, and queued again by nobody.
    reached(&b, held_by_a, "interrupted", &dirs);
    let runs = get(&b, "/api/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 5, "nothing was queued again: {runs}");
    assert_eq!(ran(&marks), expected);
}

/// `MOBIUS_RUNS` is a number of runs above 0; anything else stops the server before it starts,
/// naming the variable and what it was given.
#[test]
fn a_run_slot_count_that_is_not_a_positive_number_is_refused() {
    for given in ["0", "many", "-1"] {
        let dir = Dir::new();
        let mut child = dir
            .cmd(&["serve", "--listen", "127.0.0.1:0"])
            .env("MOBIUS_ADMIN_TOKEN", ADMIN)
            .env("MOBIUS_RUNS", given)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server started with MOBIUS_RUNS={given}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut said = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
        assert!(!status.success(), "MOBIUS_RUNS={given}");
        assert!(said.contains(&format!("MOBIUS_RUNS must be a number of runs above 0, not `{given}`")), "{said}");
    }
}
