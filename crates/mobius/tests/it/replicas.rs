//! Two `mobius serve` replicas on one PostgreSQL database, each with a data directory of its
//! own: an environment's rollouts, instances and proxy run on the replica holding its lease; a
//! deploy or a promote sent to the other is applied by the holder; and when the holder is
//! killed with `kill -9` in the middle of a canary, the other takes the environment over within
//! the lease's TTL — instances re-adopted, its own proxy on the environment's address, the
//! paused rollout resumed — and finishes it. A replica that stops cleanly gives the
//! environment up (its instances stopped), and the next holder starts instances of its own.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deploy::{Cleanup, body, deployed, finished, free_port, release, status, wait_until};
use crate::postgres::cluster;
use crate::util::{ADMIN, Dir, Server, http};

const LEASE: &str = "environment:shop/production";

/// What the replicas share: a fresh PostgreSQL database and the key secrets are sealed with.
struct Shared {
    database: cluster::Database,
    key: String,
}

impl Shared {
    fn new() -> Shared {
        Shared { database: cluster::Database::create(), key: "5ec12e7".repeat(10)[..64].to_owned() }
    }

    fn env(&self) -> [(&str, &str); 3] {
        [
            ("MOBIUS_DATABASE_URL", self.database.url.as_str()),
            ("MOBIUS_SECRET_KEY", self.key.as_str()),
            ("MOBIUS_LOG", "info"),
        ]
    }
}

/// The leases a replica says it holds (`/readyz`).
fn held(server: &Server) -> Vec<String> {
    let ready: Value = http().get(server.url("/readyz")).send().unwrap().json().unwrap();
    ready["leases"]["held"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect()
}

fn promote(server: &Server) -> (reqwest::StatusCode, Value) {
    let response =
        http().post(server.url("/api/v1/rollouts/shop/production/promote")).bearer_auth(ADMIN).send().unwrap();
    (response.status(), response.json().unwrap_or_default())
}

/// What both replicas said, for a failing assertion to show.
fn logs(dirs: &[&Dir]) -> String {
    dirs.iter()
        .map(|d| std::fs::read_to_string(d.path().join("serve.log")).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn wait<T>(what: &str, dirs: &[&Dir], mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", logs(dirs));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_replica_holding_an_environment_drives_it_and_another_finishes_its_canary_after_a_kill_9() {
    let shared = Shared::new();
    let env = shared.env();
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let _cleanup = (Cleanup(dir_a.path().to_owned()), Cleanup(dir_b.path().to_owned()));
    let dirs = [&dir_a, &dir_b];
    let mut a = dir_a.serve_with_env(&env);
    let mut b = dir_b.serve_with_env(&env);
    let port = free_port();
    let canary = "{canary: {steps: [{set_weight: 20}, {pause: {}}, {set_weight: 50}, {pause: {}}]}}";

    // The first deploy reaches a; nobody drives the environment, so a takes it.
    deployed(&dir_a, &a, &release(&dir_a, "v1", 0.0, port, canary, ""), "v1");
    let first = finished(&a);
    assert_eq!(first["phase"], "succeeded", "{first:#}\n{}", logs(&dirs));
    assert_eq!(body(port), "hello from v1");
    assert!(held(&a).iter().any(|l| l == LEASE), "a drives it: {:?}", held(&a));
    assert!(!held(&b).iter().any(|l| l == LEASE), "and only a: {:?}", held(&b));

    // v2 is uploaded to b, which hands the deploy to a; a starts the canary.
    deployed(&dir_b, &b, &release(&dir_b, "v2", 0.0, port, canary, ""), "v2");
    wait_until(&b, "the first pause", |r| r["phase"] == "paused" && r["weight"] == 20);
    // A promote sent to b is applied by a, and b answers with the rollout a left.
    let (code, promoted) = promote(&b);
    assert_eq!(code, 200, "{promoted:#}\n{}", logs(&dirs));
    assert_eq!(promoted["new"]["version"], "v2", "{promoted:#}");
    let paused = wait_until(&b, "the second pause", |r| r["phase"] == "paused" && r["weight"] == 50);
    assert!(!held(&b).iter().any(|l| l == LEASE), "a still drives it");
    let a_pids: Vec<u64> = ["stable", "new"]
        .iter()
        .flat_map(|v| paused[v]["instances"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["pid"].as_u64())
        .collect();
    assert_eq!(a_pids.len(), 4, "two instances of each version: {paused:#}");

    // a dies in the middle of the canary, without giving its leases up.
    a.kill9();
    wait("b to take the environment over", &dirs, || held(&b).iter().any(|l| l == LEASE).then_some(()));
    // b's own proxy serves the environment's address, to both versions a's instances run.
    wait("b's proxy on the environment's address", &dirs, || {
        let answer = http().get(format!("http://127.0.0.1:{port}/")).send().ok()?;
        (answer.status() == 200).then_some(())
    });
    let resumed = status(&b);
    assert_eq!((&resumed["phase"], &resumed["weight"]), (&"paused".into(), &50.into()), "{resumed:#}");
    let b_pids: Vec<u64> = ["stable", "new"]
        .iter()
        .flat_map(|v| resumed[v]["instances"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["pid"].as_u64())
        .collect();
    assert_eq!(b_pids, a_pids, "re-adopted on the same machine, not restarted: {resumed:#}");

    // b finishes the rollout it took over.
    let (code, promoted) = promote(&b);
    assert_eq!(code, 200, "{promoted:#}\n{}", logs(&dirs));
    let done = finished(&b);
    assert_eq!(done["phase"], "succeeded", "{done:#}\n{}", logs(&dirs));
    assert_eq!(body(port), "hello from v2");

    // b stops cleanly: it gives the environment up — instances stopped, proxy closed, lease
    // released — and a replica started since takes it over at its next renewal, starting
    // instances of its own.
    let a = dir_a.serve_with_env(&env);
    let serving = status(&b);
    let b_pids: Vec<u64> =
        serving["new"]["instances"].as_array().unwrap().iter().filter_map(|i| i["pid"].as_u64()).collect();
    assert_eq!(b_pids.len(), 2, "{serving:#}");
    assert!(b.terminate().success());
    for pid in &b_pids {
        let pid = u32::try_from(*pid).unwrap();
        assert!(!mobius_deploy::supervisor::alive(pid), "b stopped its instance {pid}\n{}", logs(&dirs));
    }
    wait("the new replica to take the environment over", &dirs, || held(&a).iter().any(|l| l == LEASE).then_some(()));
    wait("v2 served by the new replica's instances", &dirs, || {
        let answer = http().get(format!("http://127.0.0.1:{port}/")).send().ok()?;
        (answer.text().ok()?.trim() == "hello from v2").then_some(())
    });
    let restarted = status(&a);
    let a_pids: Vec<u64> =
        restarted["new"]["instances"].as_array().unwrap().iter().filter_map(|i| i["pid"].as_u64()).collect();
    assert_eq!(a_pids.len(), 2, "{restarted:#}");
    assert!(a_pids.iter().all(|pid| !b_pids.contains(pid)), "restarted, not adopted: {restarted:#}");
    assert_eq!(restarted["phase"], "succeeded");
    drop(a);
}

/// The pids of a rollout's instances, stable's and new's.
fn pids(rollout: &Value) -> Vec<u64> {
    ["stable", "new"]
        .iter()
        .flat_map(|v| rollout[v]["instances"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["pid"].as_u64())
        .collect()
}

/// The holder is lost with its machine — the server, its instances and its data directory
/// gone — and the next holder, which never had the release, starts the environment's
/// instances from the release kept in the store.
#[test]
fn a_holder_lost_with_its_machine_is_replaced_from_the_release_in_the_store() {
    let shared = Shared::new();
    let env = shared.env();
    let (dir_a, dir_b) = (Dir::new(), Dir::new());
    let _cleanup = (Cleanup(dir_a.path().to_owned()), Cleanup(dir_b.path().to_owned()));
    let dirs = [&dir_a, &dir_b];
    let mut a = dir_a.serve_with_env(&env);
    let b = dir_b.serve_with_env(&env);
    let port = free_port();
    deployed(&dir_a, &a, &release(&dir_a, "v1", 0.0, port, "{canary: {steps: []}}", ""), "v1");
    let first = finished(&a);
    assert_eq!(first["phase"], "succeeded", "{first:#}\n{}", logs(&dirs));
    assert!(held(&a).iter().any(|l| l == LEASE), "a drives it: {:?}", held(&a));
    let lost = pids(&first);
    assert_eq!(lost.len(), 2, "{first:#}");

    a.kill9();
    // Its instances go with it: every process working under its directory (a sandboxed
    // instance's pid is its sandbox's, which does not take the instance down with it).
    drop(Cleanup(dir_a.path().to_owned()));
    wait("a's instances to be gone", &dirs, || {
        http().get(format!("http://127.0.0.1:{port}/")).send().is_err().then_some(())
    });
    let releases = dir_a.data().join("releases");
    let _ = std::process::Command::new("chmod").arg("-R").arg("u+w").arg(&releases).status();
    std::fs::remove_dir_all(&releases).unwrap();

    wait("b to take the environment over", &dirs, || held(&b).iter().any(|l| l == LEASE).then_some(()));
    wait("v1 served by b's own instances", &dirs, || {
        let answer = http().get(format!("http://127.0.0.1:{port}/")).send().ok()?;
        (answer.text().ok()?.trim() == "hello from v1").then_some(())
    });
    let restarted = status(&b);
    let started = pids(&restarted);
    assert_eq!(started.len(), 2, "{restarted:#}");
    assert!(started.iter().all(|pid| !lost.contains(pid)), "started again, not adopted: {restarted:#}");
    let made: Vec<String> = std::fs::read_dir(dir_b.data().join("releases"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.len() == 64)
        .collect();
    assert_eq!(made.len(), 1, "b made the release from the store: {made:?}\n{}", logs(&dirs));
}
