//! `mobius agent` on loopback: jobs routed by label, exactly once across agents, secrets masked
//! in what agents stream, an agent killed mid-job ("agent lost"), cancel reaching a running
//! agent job, a revoked token, the protocol's refusals (409 for a gap or a job not held), a
//! batch claim with a finish carrying the log, and `mobius/secret-scan` reading a push range
//! on an agent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::runs::{commit, finished, get, repository, wait_for};
use crate::util::{ADMIN, Dir, Server, bin, http, with_stdin};

/// A `mobius agent` process, killed when dropped.
struct AgentProcess {
    child: Child,
    work_dir: PathBuf,
}

impl AgentProcess {
    fn start(dir: &Dir, server: &Server, token: &str, name: &str, labels: &str) -> AgentProcess {
        let work_dir = dir.path().join(format!("agent-{name}"));
        let child = Command::new(bin())
            .args(["agent", "--server", &server.base, "--name", name, "--work-dir"])
            .arg(&work_dir)
            .args(["--labels", labels, "--jobs", "2"])
            .env("MOBIUS_AGENT_TOKEN", token)
            .env_remove("MOBIUS_SERVER")
            .env_remove("MOBIUS_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(format!("agent-{name}.log"))).unwrap())
            .spawn()
            .expect("the agent starts");
        AgentProcess { child, work_dir }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn agent_token(dir: &Dir, name: &str) -> String {
    let created = dir.json(&["token", "create", "--scope", "agent", "--name", name]);
    created["token"].as_str().expect("a token").to_owned()
}

/// A server (agents renew every second, a lapsed lease fails the job after 3 s) with the
/// repository registered, and its first run's id once `workflow` is committed.
fn server_with(dir: &Dir, workflow: &str, extra: &[(&str, &str)]) -> (Server, PathBuf) {
    let repo = repository(dir, &[("README.md", "hello\n")]);
    let mut env = vec![("MOBIUS_AGENT_LEASE", "3s")];
    env.extend_from_slice(extra);
    let server = dir.serve_with_env(&env);
    let added = dir.json(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/app", "--hook-server", &server.base]);
    assert_eq!(added["branches"], 1, "{added}");
    let _ = workflow;
    (server, repo)
}

fn push(repo: &Path, server: &Server, workflow: &str) -> i64 {
    commit(repo, &[(".github/workflows/ci.yml", workflow)], "CI");
    wait_for("the run", || {
        let runs = get(server, "/api/v1/runs");
        runs.as_array().and_then(|r| r.first()).and_then(|r| r["id"].as_i64())
    })
}

fn logs(server: &Server, id: i64) -> String {
    http().get(server.url(&format!("/api/v1/runs/{id}/logs"))).bearer_auth(ADMIN).send().unwrap().text().unwrap()
}

/// The run's log lines as (job, text).
fn lines(server: &Server, id: i64) -> Vec<(String, String)> {
    logs(server, id)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| (l["job"].as_str().unwrap_or("").to_owned(), l["text"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn said_by(lines: &[(String, String)], job: &str, text: &str) -> bool {
    lines.iter().any(|(j, t)| j == job && t == text)
}

fn job<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["jobs"].as_array().unwrap().iter().find(|j| j["name"] == name).unwrap_or_else(|| panic!("no job {name}: {run}"))
}

const ROUTED: &str = "\
on: push
jobs:
  prep:
    runs-on: ubuntu-latest
    steps:
      - run: echo seed-from-the-server > seed.txt
      - uses: actions/upload-artifact@v4
        with:
          name: seed
          path: seed.txt
  gpu:
    needs: prep
    runs-on: [self-hosted, gpu]
    outputs:
      where: ${{ steps.w.outputs.where }}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/download-artifact@v4
        with:
          name: seed
      - id: w
        run: |
          echo \"where=$(pwd)\" >> \"$GITHUB_OUTPUT\"
          echo \"the key is ${{ secrets.DEPLOY_KEY }}\"
          cat README.md seed.txt
          echo built-on-the-agent > out.txt
      - uses: actions/upload-artifact@v4
        with:
          name: out
          path: out.txt
  cpu:
    runs-on: [self-hosted, cpu]
    steps:
      - run: pwd
  here:
    needs: gpu
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: out
      - run: echo \"gpu ran in ${{ needs.gpu.outputs.where }}\" && cat out.txt
";

#[test]
fn labels_route_jobs_to_their_agents_and_secrets_stay_masked() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, ROUTED, &[]);
    let set = with_stdin(&dir, &["secret", "set", "DEPLOY_KEY", "--repo", "acme/app"], "s3cr3t-deploy-key-4711\n");
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let token = agent_token(&dir, "agents");
    let gpu = AgentProcess::start(&dir, &server, &token, "gpu-box", "gpu");
    let cpu = AgentProcess::start(&dir, &server, &token, "cpu-box", "cpu");
    let id = push(&repo, &server, ROUTED);
    let run = finished(&server, id);
    assert_eq!(run["state"], "success", "{run}");
    let log = logs(&server, id);
    let said = lines(&server, id);
    assert!(said_by(&said, "gpu", "the key is ***"), "the secret is masked in what the agent streamed: {log}");
    assert!(!log.contains("s3cr3t-deploy-key-4711"));
    assert!(said_by(&said, "gpu", "hello"), "the agent checked out the commit: {log}");
    assert!(said_by(&said, "gpu", "seed-from-the-server"), "the agent downloaded the server's artifact: {log}");
    assert!(said_by(&said, "here", "built-on-the-agent"), "the server downloaded the agent's artifact: {log}");
    // The artifact the agent built has its provenance on the server, naming this run.
    let digest = log
        .split("uploaded artifact `out`: ")
        .nth(1)
        .and_then(|rest| rest.split("digest ").nth(1))
        .map(|rest| rest.chars().take(71).collect::<String>())
        .unwrap_or_else(|| panic!("the agent's upload is not in the log: {log}"));
    let statement = get(&server, &format!("/api/v1/artifacts/{digest}/provenance"));
    assert_eq!(statement["subject"][0]["name"], "out");
    assert_eq!(statement["subject"][0]["digest"]["sha256"], digest.trim_start_matches("sha256:"));
    assert_eq!(statement["predicate"]["buildDefinition"]["internalParameters"]["runId"], id.to_string());
    let gpu_dir = gpu.work_dir.canonicalize().unwrap();
    assert!(log.contains(&format!("gpu ran in {}", gpu_dir.display())), "the gpu job ran on the gpu agent: {log}");
    assert!(log.contains(&cpu.work_dir.canonicalize().unwrap().display().to_string()), "{log}");
    assert_eq!(job(&run, "here")["state"], "success");
    // The store keeps the secret out of the queue's payload too.
    let agents = get(&server, "/api/v1/agents");
    let names: Vec<&str> = agents["agents"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["cpu-box", "gpu-box"], "{agents}");
    assert!(agents["agents"][1]["labels"].as_array().unwrap().contains(&json!("gpu")));
}

#[test]
fn three_agents_run_150_jobs_exactly_once() {
    let dir = Dir::new();
    let marks = dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let n: Vec<String> = (1..=150).map(|i| i.to_string()).collect();
    let workflow = format!(
        "on: push\njobs:\n  many:\n    runs-on: self-hosted\n    strategy:\n      matrix:\n        n: [{}]\n    steps:\n      - run: echo \"$PWD\" >> {}/${{{{ matrix.n }}}}\n",
        n.join(", "),
        marks.display()
    );
    let (server, repo) = server_with(&dir, &workflow, &[]);
    let token = agent_token(&dir, "agents");
    let agents: Vec<AgentProcess> =
        ["a", "b", "c"].iter().map(|name| AgentProcess::start(&dir, &server, &token, name, "")).collect();
    let id = push(&repo, &server, &workflow);
    let run = finished(&server, id);
    assert_eq!(run["state"], "success", "{}", run["reason"]);
    let mut by_agent = std::collections::BTreeMap::new();
    for i in 1..=150 {
        let ran = std::fs::read_to_string(marks.join(i.to_string())).unwrap_or_default();
        let lines: Vec<&str> = ran.lines().collect();
        assert_eq!(lines.len(), 1, "job {i} ran {} times", lines.len());
        let agent = agents.iter().position(|a| lines[0].starts_with(&a.work_dir.display().to_string()));
        *by_agent.entry(agent.expect("ran on one of the agents")).or_insert(0) += 1;
    }
    assert!(by_agent.len() >= 2, "the jobs spread over the agents: {by_agent:?}");
}

const SLEEPY: &str = "\
on: push
jobs:
  long:
    runs-on: self-hosted
    steps:
      - run: echo started && sleep 300
";

fn running_on_agent(server: &Server, id: i64) {
    wait_for("the agent's job to start", || logs(server, id).contains("started").then_some(()));
}

#[test]
fn an_agent_killed_mid_job_fails_it_with_agent_lost_after_the_lease() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, SLEEPY, &[]);
    let token = agent_token(&dir, "agents");
    let mut agent = AgentProcess::start(&dir, &server, &token, "doomed", "");
    let id = push(&repo, &server, SLEEPY);
    running_on_agent(&server, id);
    agent.kill9();
    let run = finished(&server, id);
    assert_eq!(run["state"], "failure", "{run}");
    assert!(logs(&server, id).contains("agent lost"), "{}", logs(&server, id));
    // Never run twice: a second agent that comes later finds nothing.
    let _late = AgentProcess::start(&dir, &server, &token, "late", "");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let runs = get(&server, "/api/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 1, "nothing was queued again: {runs}");
}

#[test]
fn cancel_reaches_a_running_agent_job() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, SLEEPY, &[]);
    let token = agent_token(&dir, "agents");
    let _agent = AgentProcess::start(&dir, &server, &token, "worker", "");
    let id = push(&repo, &server, SLEEPY);
    running_on_agent(&server, id);
    let cancelled = http().post(server.url(&format!("/api/v1/runs/{id}/cancel"))).bearer_auth(ADMIN).send().unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.status());
    let started = std::time::Instant::now();
    let run = finished(&server, id);
    assert_eq!(run["state"], "cancelled", "{run}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the agent stopped the step, it did not sleep on");
    // The agent reported the job itself: its step is cancelled, not lost.
    assert!(!logs(&server, id).contains("agent lost"));
}

#[test]
fn a_revoked_agent_token_fails_its_job_and_stops_the_agent() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, SLEEPY, &[]);
    let created = dir.json(&["token", "create", "--scope", "agent", "--name", "agent-x"]);
    let (token, token_id) = (created["token"].as_str().unwrap(), created["id"].as_str().unwrap());
    let mut agent = AgentProcess::start(&dir, &server, token, "x", "");
    let id = push(&repo, &server, SLEEPY);
    running_on_agent(&server, id);
    let revoked = http().delete(server.url(&format!("/api/v1/tokens/{token_id}"))).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(revoked.status(), reqwest::StatusCode::NO_CONTENT);
    let run = finished(&server, id);
    assert_eq!(run["state"], "failure");
    assert!(logs(&server, id).contains("token was revoked"), "{}", logs(&server, id));
    let status = wait_for("the agent to stop", || agent.child.try_wait().unwrap());
    assert!(!status.success(), "the agent exits when its token is refused");
}

#[test]
fn the_protocol_refuses_gaps_jobs_not_held_and_other_scopes() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, SLEEPY, &[]);
    let token = agent_token(&dir, "raw");
    let hello = json!({ "id": "raw#1", "name": "raw", "labels": ["self-hosted"] });
    // Only an agent (or admin) token may ask for jobs; an agent token reads nothing else.
    let read = dir.json(&["token", "create", "--scope", "read", "--name", "r"]);
    let asked = http()
        .post(server.url("/api/v1/agent/jobs/request?wait=0"))
        .bearer_auth(read["token"].as_str().unwrap())
        .json(&hello)
        .send()
        .unwrap();
    assert_eq!(asked.status(), reqwest::StatusCode::FORBIDDEN);
    let listed = http().get(server.url("/api/v1/runs")).bearer_auth(&token).send().unwrap();
    assert_eq!(listed.status(), reqwest::StatusCode::FORBIDDEN);
    let none =
        http().post(server.url("/api/v1/agent/jobs/request?wait=0")).bearer_auth(&token).json(&hello).send().unwrap();
    assert_eq!(none.status(), reqwest::StatusCode::NO_CONTENT);

    let run = push(&repo, &server, SLEEPY);
    wait_for("the job to show in the queue gauge", || {
        let metrics = http().get(server.url("/metrics")).bearer_auth(ADMIN).send().unwrap().text().unwrap();
        metrics.contains("mobius_agent_jobs{state=\"queued\"} 1").then_some(())
    });
    let claimed: Value = wait_for("a job", || {
        let r = http()
            .post(server.url("/api/v1/agent/jobs/request?wait=5"))
            .bearer_auth(&token)
            .json(&hello)
            .send()
            .unwrap();
        (r.status() == reqwest::StatusCode::CREATED).then(|| r.json().unwrap())
    });
    assert_eq!(claimed["run"], run);
    assert!(claimed["job"]["workflow_text"].as_str().unwrap().contains("sleep 300"));
    let id = claimed["id"].as_i64().unwrap();
    let log = |agent: &str, offset: u64, body: &str| {
        http()
            .post(
                server.url(&format!("/api/v1/agent/jobs/{id}/log?agent={}&offset={offset}", agent.replace('#', "%23"))),
            )
            .bearer_auth(&token)
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    let line = "{\"t\":\"step_started\",\"step\":\"Run sleep\"}\n";
    let gap = log("raw#1", 10, line);
    assert_eq!(gap.status(), reqwest::StatusCode::CONFLICT);
    assert_eq!(gap.json::<Value>().unwrap()["expected"], 0);
    let first = log("raw#1", 0, line);
    assert_eq!(first.json::<Value>().unwrap()["length"], line.len());
    let again = log("raw#1", 0, line);
    assert_eq!(again.json::<Value>().unwrap()["length"], line.len(), "a resent chunk is taken once");
    assert_eq!(log("other#2", line.len() as u64, line).status(), reqwest::StatusCode::CONFLICT);
    // Another agent token cannot act for this agent, even knowing its id.
    let stranger = agent_token(&dir, "stranger");
    let spoofed = http()
        .post(server.url(&format!("/api/v1/agent/jobs/{id}/log?agent=raw%231&offset={}", line.len())))
        .bearer_auth(&stranger)
        .body(line.to_owned())
        .send()
        .unwrap();
    assert_eq!(spoofed.status(), reqwest::StatusCode::CONFLICT, "the agent's id is bound to its token");
    let report = json!({"id": "long", "name": "long", "matrix": {}, "outcome": "success", "result": "success", "outputs": {}, "steps": []});
    let stolen = http()
        .put(server.url(&format!("/api/v1/agent/jobs/{id}/finish?agent=other%232")))
        .bearer_auth(&token)
        .json(&report)
        .send()
        .unwrap();
    assert_eq!(stolen.status(), reqwest::StatusCode::CONFLICT, "only the holder finishes a job");
    let done = http()
        .put(server.url(&format!("/api/v1/agent/jobs/{id}/finish?agent=raw%231")))
        .bearer_auth(&token)
        .json(&report)
        .send()
        .unwrap();
    assert_eq!(done.status(), reqwest::StatusCode::NO_CONTENT, "{}", done.text().unwrap_or_default());
    let ended = finished(&server, run);
    assert_eq!(ended["state"], "success", "{ended}");
    let renewed = http()
        .put(server.url(&format!("/api/v1/agent/jobs/{id}/renew")))
        .bearer_auth(&token)
        .json(&hello)
        .send()
        .unwrap();
    assert_eq!(renewed.status(), reqwest::StatusCode::CONFLICT, "a finished job is not held any more");
}

/// What two replicas share: a fresh PostgreSQL database and the secret key.
struct Shared {
    database: crate::postgres::cluster::Database,
    key: String,
}

impl Shared {
    fn new() -> Shared {
        Shared { database: crate::postgres::cluster::Database::create(), key: "5ec12e7".repeat(10)[..64].to_owned() }
    }

    /// Each replica's environment (agents renew every second, a lapsed lease after 3 s).
    fn env(&self) -> [(&str, &str); 3] {
        [
            ("MOBIUS_DATABASE_URL", self.database.url.as_str()),
            ("MOBIUS_SECRET_KEY", self.key.as_str()),
            ("MOBIUS_AGENT_LEASE", "3s"),
        ]
    }

    /// `mobius ARGS…` on the shared store, which must succeed; its standard output.
    fn cli(&self, dir: &Dir, args: &[&str]) -> Vec<u8> {
        let out = dir.cmd(args).envs(self.env()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Registers `repo` as `acme/app`; an `agent` token for it.
    fn agent_token(&self, dir: &Dir, repo: &Path) -> String {
        self.cli(dir, &["repo", "add", repo.to_str().unwrap(), "--name", "acme/app"]);
        let created: Value = serde_json::from_slice(
            &self.cli(dir, &["--json", "token", "create", "--scope", "agent", "--name", "farm"]),
        )
        .unwrap();
        created["token"].as_str().unwrap().to_owned()
    }
}

/// Starts `ci.yml` of `acme/app` through `server`; the run's id.
fn dispatch(server: &Server) -> i64 {
    let started = http()
        .post(server.url("/api/v1/runs"))
        .bearer_auth(ADMIN)
        .json(&json!({ "repository": "acme/app", "workflow": "ci.yml" }))
        .send()
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::CREATED, "{}", started.text().unwrap_or_default());
    started.json::<Value>().unwrap()["id"].as_i64().unwrap()
}

/// Two replicas on one PostgreSQL database: the run's driver (the replica it was started
/// through) is killed while its job runs on an agent talking to the other replica. The agent
/// finishes the job, once; the survivor finds the run orphaned once the dead replica's
/// liveness lease lapses and ends it `interrupted`, queuing nothing again (re-run is explicit).
#[test]
fn a_replica_killed_mid_run_leaves_its_agent_job_to_finish_once() {
    let shared = Shared::new();
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let marks = dir_a.path().join("marks");
    let workflow = format!(
        "on: workflow_dispatch\njobs:\n  long:\n    runs-on: self-hosted\n    steps:\n      - uses: actions/checkout@v4\n      - run: echo ran >> {m} && sleep 6 && echo done >> {m}\n",
        m = marks.display()
    );
    let repo = repository(&dir_a, &[(".github/workflows/ci.yml", workflow.as_str())]);
    let mut a = dir_a.serve_with_env(&shared.env());
    let b = dir_b.serve_with_env(&shared.env());
    let token = shared.agent_token(&dir_a, &repo);
    let _agent = AgentProcess::start(&dir_b, &b, &token, "farm", "");
    let id = dispatch(&a);
    wait_for("the agent to run the job", || {
        let agents = get(&b, "/api/v1/agents");
        agents["agents"].as_array().unwrap().iter().any(|a| a["job"]["run"] == id).then_some(())
    });
    let mut client = ::postgres::Client::connect(&shared.database.url, ::postgres::NoTls).unwrap();
    let held: i64 = client.query_one("SELECT count(*) FROM transfer_files", &[]).unwrap().get(0);
    assert!(held > 0, "the dispatcher put the job's workspace in the store");
    a.kill9();
    let run = wait_for("the survivor to end the orphaned run", || {
        let run = get(&b, &format!("/api/v1/runs/{id}"));
        (run["state"] == "interrupted").then_some(run)
    });
    assert!(run["reason"].as_str().unwrap().contains("stopped during the run"), "{run}");
    let ran = wait_for("the agent to finish the job", || {
        let ran = std::fs::read_to_string(&marks).unwrap_or_default();
        ran.contains("done").then_some(ran)
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), ran);
    assert_eq!(ran, "ran\ndone\n", "the job ran once, to its end, on its agent");
    let runs = get(&b, "/api/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 1, "nothing was queued again: {runs}");
    // The dead replica never released its job's files (its workspace): the survivor's sweep
    // does, the run having ended and its job being off the agent.
    wait_for("the survivor to release the dead replica's transfer", || {
        let left: i64 = client
            .query_one("SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM transfer_files)", &[])
            .unwrap()
            .get(0);
        (left == 0).then_some(())
    });
}

/// Two replicas on PostgreSQL, the run queued through one, the agent talking only to the
/// other: the agent still checks out the commit, downloads the artifact the run made on the
/// first replica and uploads its own for the next job there — every file passes through the
/// store — and the store keeps none of them once the run is over.
#[test]
fn an_agent_on_another_replica_gets_the_jobs_files_through_the_store() {
    let shared = Shared::new();
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let workflow = ROUTED.replace("on: push", "on: workflow_dispatch").replace("self-hosted, cpu", "self-hosted, gpu");
    let repo = repository(&dir_a, &[("README.md", "hello\n"), (".github/workflows/ci.yml", workflow.as_str())]);
    let a = dir_a.serve_with_env(&shared.env());
    let b = dir_b.serve_with_env(&shared.env());
    let token = shared.agent_token(&dir_a, &repo);
    let _agent = AgentProcess::start(&dir_b, &b, &token, "farm", "gpu");
    let id = dispatch(&a);
    let run = finished(&a, id);
    let log = logs(&a, id);
    assert_eq!(run["state"], "success", "{run}\n{log}");
    let said = lines(&a, id);
    assert!(said_by(&said, "gpu", "hello"), "the agent checked out the commit through replica B: {log}");
    assert!(said_by(&said, "gpu", "seed-from-the-server"), "and downloaded replica A's artifact: {log}");
    assert!(said_by(&said, "here", "built-on-the-agent"), "replica A has the agent's artifact: {log}");
    let mut client = ::postgres::Client::connect(&shared.database.url, ::postgres::NoTls).unwrap();
    let left: i64 = client
        .query_one("SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM transfer_files)", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "every transfer was released with its job");
}

const TELLS: &str = "\
on: push
jobs:
  tell:
    runs-on: self-hosted
    steps:
      - run: echo \"${{ secrets.DEPLOY_KEY }}\"
";

#[test]
fn a_batch_claim_and_a_finish_carrying_the_log_keep_offsets_and_masking() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, TELLS, &[]);
    let set = with_stdin(&dir, &["secret", "set", "DEPLOY_KEY", "--repo", "acme/app"], "s3cr3t-deploy-key-4711\n");
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let token = agent_token(&dir, "raw");
    let hello = json!({ "id": "raw#1", "name": "raw", "labels": ["self-hosted"] });
    let run = push(&repo, &server, TELLS);
    let claimed: Value = wait_for("a job", || {
        let r = http()
            .post(server.url("/api/v1/agent/jobs/request?wait=5&max=4"))
            .bearer_auth(&token)
            .json(&hello)
            .send()
            .unwrap();
        (r.status() == reqwest::StatusCode::CREATED).then(|| r.json().unwrap())
    });
    let jobs = claimed["jobs"].as_array().expect("a batch answer lists its jobs");
    assert_eq!(jobs.len(), 1, "one job was queued: {claimed}");
    assert_eq!(jobs[0]["run"], run);
    assert_eq!(jobs[0]["records"], json!([]), "the records come with the job");
    let id = jobs[0]["id"].as_i64().unwrap();
    let started = "{\"t\":\"step_started\",\"step\":\"Run echo\"}\n";
    let said = "{\"t\":\"log\",\"step\":\"Run echo\",\"at_ms\":1,\"stderr\":false,\"text\":\"leaked s3cr3t-deploy-key-4711\"}\n";
    let first = http()
        .post(server.url(&format!("/api/v1/agent/jobs/{id}/log?agent=raw%231&offset=0")))
        .bearer_auth(&token)
        .body(started.to_owned())
        .send()
        .unwrap();
    assert_eq!(first.json::<Value>().unwrap()["length"], started.len());
    let report = json!({"id": "tell", "name": "tell", "matrix": {}, "outcome": "success", "result": "success", "outputs": {}, "steps": []});
    let finish = |offset: usize, log: &str| {
        http()
            .put(server.url(&format!("/api/v1/agent/jobs/{id}/finish?agent=raw%231&offset={offset}")))
            .bearer_auth(&token)
            .json(&json!({ "report": report, "log": log }))
            .send()
            .unwrap()
    };
    let gap = finish(started.len() + 5, said);
    assert_eq!(gap.status(), reqwest::StatusCode::CONFLICT);
    assert_eq!(gap.json::<Value>().unwrap()["expected"], started.len(), "resend from what the server holds");
    let bad = http()
        .put(server.url(&format!("/api/v1/agent/jobs/{id}/finish?agent=raw%231&offset=0")))
        .bearer_auth(&token)
        .json(&report)
        .send()
        .unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST, "with an offset the body carries the log");
    // The chunk overlaps what was sent: only its unseen tail is taken, with the report.
    let done = finish(0, &format!("{started}{said}"));
    assert_eq!(done.status(), reqwest::StatusCode::OK, "{}", done.text().unwrap_or_default());
    assert_eq!(done.json::<Value>().unwrap()["length"], started.len() + said.len());
    let ended = finished(&server, run);
    assert_eq!(ended["state"], "success", "{ended}");
    let log = logs(&server, run);
    assert!(said_by(&lines(&server, run), "tell", "leaked ***"), "masked on the server: {log}");
    assert!(!log.contains("s3cr3t-deploy-key-4711"), "{log}");
    assert_eq!(finish(started.len() + said.len(), "").status(), reqwest::StatusCode::CONFLICT, "ended: not held");
}

const SCANS: &str = "\
on: push
jobs:
  scan:
    runs-on: self-hosted
    steps:
      - uses: actions/checkout@v4
      - name: secrets
        uses: mobius/secret-scan@v1
      - run: echo scanned
";

/// The newest run, once it is not `after`.
fn run_after(server: &Server, after: i64) -> i64 {
    wait_for("a new run", || {
        let runs = get(server, "/api/v1/runs");
        runs.as_array().and_then(|r| r.first()).and_then(|r| r["id"].as_i64()).filter(|id| *id != after)
    })
}

#[test]
fn secret_scan_on_an_agent_reads_the_push_range_and_fails_a_range_that_adds_a_secret() {
    let dir = Dir::new();
    let (server, repo) = server_with(&dir, SCANS, &[]);
    let token = agent_token(&dir, "agents");
    let _agent = AgentProcess::start(&dir, &server, &token, "scanner", "");
    let clean = push(&repo, &server, SCANS);
    let run = finished(&server, clean);
    let log = logs(&server, clean);
    assert_eq!(run["state"], "success", "{run} {log}");
    assert!(log.contains("no leaks found in the lines added by"), "the push range was scanned on the agent: {log}");

    let secret = format!("ghp_{}", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5");
    commit(&repo, &[("settings.py", &format!("TOKEN = '{secret}'\n"))], "settings");
    let leaky = run_after(&server, clean);
    let run = finished(&server, leaky);
    let log = logs(&server, leaky);
    assert_eq!(run["state"], "failure", "{run} {log}");
    let said = lines(&server, leaky);
    let masked = format!("ghp_{}", "*".repeat(36));
    assert!(
        said.iter().any(|(job, text)| job == "scan"
            && text.starts_with("settings.py:1: github-pat")
            && text.contains("in commit")
            && text.contains(&masked)),
        "the finding, masked, in the streamed log: {log}"
    );
    assert!(log.contains("1 leak(s) found in the lines added by"), "{log}");
    assert!(!log.contains(&secret), "the secret reached the log: {log}");
    assert!(!said_by(&said, "scan", "scanned"), "the step after the scan ran: {log}");
}
