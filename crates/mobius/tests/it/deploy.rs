//! Releases with real processes on loopback: `mobius serve` runs `mobius sample-app`
//! instances behind its proxy while a load generator keeps calling the environment, and the
//! strategies must not fail a single request; `mobius demo` plays the whole loop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mobius_deploy::load::{self, LoadReport, LoadSpec};
use serde_json::Value;

use crate::util::{ADMIN, Dir, Server, http};

/// Kills the instances a test's servers started (they outlive `mobius serve` by design): every
/// process whose working directory is under the test's directory.
pub(crate) struct Cleanup(pub(crate) PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for entry in entries.filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&self.0)) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A release directory of `mobius sample-app` at `version`.
pub(crate) fn release(
    dir: &Dir,
    version: &str,
    error_rate: f64,
    listen: u16,
    strategy: &str,
    extra_run: &str,
) -> PathBuf {
    let path = dir.path().join(format!("release-{version}"));
    std::fs::create_dir_all(&path).unwrap();
    let spec = format!(
        "service: shop\nrun:\n  command: mobius\n  args: [sample-app]\n  env:\n    SAMPLE_VERSION: {version}\n    SAMPLE_ERROR_RATE: \"{error_rate}\"\n  instances: 2\n  readiness_timeout: 5s\n  shutdown_grace: 5s\n{extra_run}environments:\n  - name: production\n    listen: 127.0.0.1:{listen}\n    strategy: {strategy}\nanalysis:\n  interval_secs: 1\n  count: 2\n  min_requests: 10\n  max_error_rate: 0.05\n"
    );
    std::fs::write(path.join("mobius.yaml"), spec).unwrap();
    path
}

/// `mobius ARGS…` against `server` with `token`.
pub(crate) fn against(dir: &Dir, server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    dir.cmd(args).env("MOBIUS_SERVER", &server.base).env("MOBIUS_TOKEN", token).output().unwrap()
}

pub(crate) fn deploy(dir: &Dir, server: &Server, release: &Path, version: &str) -> std::process::Output {
    against(dir, server, ADMIN, &["deploy", "shop", "production", "--dir", release.to_str().unwrap(), "--as", version])
}

pub(crate) fn deployed(dir: &Dir, server: &Server, release: &Path, version: &str) {
    let out = deploy(dir, server, release, version);
    assert!(out.status.success(), "deploy {version}: {}", String::from_utf8_lossy(&out.stderr));
}

pub(crate) fn status(server: &Server) -> Value {
    http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

/// Waits until the latest rollout satisfies `done`; returns it.
pub(crate) fn wait_until(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rollout = status(server);
        if done(&rollout) {
            return rollout;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {rollout:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn finished(server: &Server) -> Value {
    wait_until(server, "the rollout to finish", |r| {
        ["succeeded", "aborted", "failed"].contains(&r["phase"].as_str().unwrap_or("")) && r["retire_at"].is_null()
    })
}

/// Traffic against an environment on its own runtime, until stopped.
pub(crate) struct Load {
    runtime: tokio::runtime::Runtime,
    handle: Option<load::LoadHandle>,
}

impl Load {
    pub(crate) fn start(port: u16, headers: Vec<(String, String)>) -> Load {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let spec = LoadSpec {
            url: format!("http://127.0.0.1:{port}/"),
            connections: 4,
            rate_per_sec: Some(100.0),
            duration: Duration::from_secs(300),
            headers,
            sticky: false,
        };
        let handle = runtime.block_on(async { load::spawn(spec) });
        Load { runtime, handle: Some(handle) }
    }

    pub(crate) fn stop(mut self) -> LoadReport {
        let handle = self.handle.take().unwrap();
        self.runtime.block_on(handle.stop())
    }
}

pub(crate) fn body(port: u16) -> String {
    http().get(format!("http://127.0.0.1:{port}/")).send().unwrap().text().unwrap().trim().to_owned()
}

#[test]
fn blue_green_switches_under_load_without_a_failed_request_and_undo_is_instant() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let strategy = "{blue_green: {scale_down_delay: 30s}}";
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, strategy, ""), "v1");
    finished(&server);
    let load = Load::start(port, Vec::new());
    std::thread::sleep(Duration::from_millis(500));
    deployed(&dir, &server, &release(&dir, "v2", 0.0, port, strategy, ""), "v2");
    let switched = wait_until(&server, "the switch", |r| r["phase"] == "succeeded");
    assert!(switched["retire_at"].is_string(), "blue stays warm: {switched:#}");
    assert_eq!(body(port), "hello from v2");
    std::thread::sleep(Duration::from_millis(500));
    let out = against(&dir, &server, ADMIN, &["rollout", "undo", "shop", "production"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let undone = finished(&server);
    assert_eq!(undone["phase"], "aborted", "{undone:#}");
    // Instant: traffic went back to the warm blue instances themselves, none was started anew.
    let pids = |r: &Value| -> Vec<u64> {
        r["stable"]["instances"].as_array().unwrap().iter().map(|i| i["pid"].as_u64().unwrap()).collect()
    };
    assert_eq!(pids(&undone), pids(&switched), "the same warm instances serve: {undone:#}");
    assert!(undone["message"].as_str().unwrap().contains("still warm"), "{undone:#}");
    assert_eq!(body(port), "hello from v1");
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert_eq!((report.failed, report.errors_5xx), (0, 0), "{report:?}");
    assert!(report.by_version.contains_key("v1") && report.by_version.contains_key("v2"), "{report:?}");
}

#[test]
fn a_rolling_update_under_load_fails_no_request() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, "rolling", ""), "v1");
    finished(&server);
    let load = Load::start(port, Vec::new());
    std::thread::sleep(Duration::from_millis(500));
    deployed(&dir, &server, &release(&dir, "v2", 0.0, port, "rolling", ""), "v2");
    let done = finished(&server);
    assert_eq!(done["phase"], "succeeded", "{done:#}");
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    assert_eq!((report.failed, report.errors_5xx), (0, 0), "{report:?}");
    assert_eq!(body(port), "hello from v2");
}

#[test]
fn bad_deployments_are_refused_and_leave_stable_serving() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let canary = "{canary: {steps: [{set_weight: 50}, {pause: {}}]}}";
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, canary, ""), "v1");
    finished(&server);

    // A version that never becomes healthy: the rollout fails with the reason; v1 serves.
    let never = release(&dir, "v2", 0.0, port, canary, "  health: /never\n");
    deployed(&dir, &server, &never, "v2");
    let failed = finished(&server);
    assert_eq!(failed["phase"], "failed");
    assert!(failed["message"].as_str().unwrap().contains("not healthy within 5 s"), "{failed:#}");
    assert_eq!(body(port), "hello from v1");
    let releases = dir.data().join("releases");
    // Each instance may be several processes (behind bubblewrap: its wrapper and the app),
    // all in their release's directory: only v1's release has any.
    let running: std::collections::BTreeSet<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read_link(e.path().join("cwd")).ok())
        .filter(|cwd| cwd.starts_with(&releases))
        .map(|cwd| cwd.display().to_string())
        .collect();
    assert_eq!(running.len(), 1, "only v1's instances run, no orphan of v2: {running:?}");

    // Promote when nothing is paused; an unknown artifact; an invalid mobius.yaml; no deploy scope.
    let promote = |token: &str| {
        http().post(server.url("/api/v1/rollouts/shop/production/promote")).bearer_auth(token).send().unwrap()
    };
    let response = promote(ADMIN);
    assert_eq!(response.status(), 409);
    assert!(response.text().unwrap().contains("already failed"));
    let out = against(
        &dir,
        &server,
        ADMIN,
        &["deploy", "shop", "production", "--artifact", &format!("sha256:{}", "0".repeat(64))],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no artifact with digest sha256:000"), "{out:?}");
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("mobius.yaml"), "service: shop\nrun:\n  comand: x\n").unwrap();
    let out = deploy(&dir, &server, &broken, "v9");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mobius.yaml:3:3:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = dir.json(&["token", "create", "--scope", "read", "--server", &server.base, "--token", ADMIN]);
    let token = read["token"].as_str().expect("token");
    let out = against(&dir, &server, token, &["deploy", "shop", "production", "--dir", never.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));

    // The environment's address already taken by something else.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = taken.local_addr().unwrap().port();
    let release = release(&dir, "v1", 0.0, other, canary, "");
    let spec = std::fs::read_to_string(release.join("mobius.yaml")).unwrap().replace("service: shop", "service: other");
    let elsewhere = dir.path().join("other");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("mobius.yaml"), spec).unwrap();
    let out = against(&dir, &server, ADMIN, &["deploy", "other", "production", "--dir", elsewhere.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{other}")), "{err}");
}

#[test]
fn the_proxy_keeps_serving_through_a_kill_9_of_the_control_plane_and_the_rollout_resumes() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let port = free_port();
    let mut server = dir.serve_with_env(&[("MOBIUS_PROXY", "external")]);
    let mut proxy = dir
        .cmd(&["proxy", "--service", "shop", "--environment", "production", "--listen", &format!("127.0.0.1:{port}")])
        .env("MOBIUS_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("proxy.log")).unwrap())
        .spawn()
        .unwrap();
    let canary = "{canary: {steps: [{set_weight: 50}, {pause: {}}]}}";
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, canary, ""), "v1");
    finished(&server);
    // The separate proxy picks the first table up within its poll period.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http().get(format!("http://127.0.0.1:{port}/")).send().map(|r| r.status()).ok()
        != Some(reqwest::StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "the proxy never served v1");
        std::thread::sleep(Duration::from_millis(50));
    }
    let load = Load::start(port, Vec::new());
    std::thread::sleep(Duration::from_millis(800));
    deployed(&dir, &server, &release(&dir, "v2", 0.0, port, canary, ""), "v2");
    wait_until(&server, "the pause", |r| r["phase"] == "paused");
    server.kill9();
    // The control plane is gone; the proxy serves its last table to both versions.
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = dir.serve_with_env(&[("MOBIUS_PROXY", "external"), ("MOBIUS_LOG", "info")]);
    let paused = status(&server);
    assert_eq!(paused["phase"], "paused", "resumed where it was: {paused:#}");
    let response =
        http().post(server.url("/api/v1/rollouts/shop/production/promote")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let done = finished(&server);
    assert_eq!(done["phase"], "succeeded", "{done:#}");
    std::thread::sleep(Duration::from_millis(800));
    let report = load.stop();
    let mut log = std::fs::read_to_string(dir.path().join("proxy.log")).unwrap_or_default();
    log.push_str(&std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default());
    let notable: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("WARN")
                || l.contains("ERROR")
                || l.contains("retry")
                || l.contains("generation")
                || l.contains("adopt")
        })
        .collect();
    assert_eq!(
        (report.failed, report.errors_5xx),
        (0, 0),
        "the proxy dropped nothing: {report:?}\n{}",
        notable.join("\n")
    );
    assert!(report.by_version.get("v2").is_some_and(|(n, _)| *n > 0), "{report:?}");
    let _ = proxy.kill();
    let _ = proxy.wait();
    server.terminate();
}

#[test]
fn the_demo_plays_the_whole_loop() {
    let dir = Dir::new();
    let out = dir.cmd(&["--json", "demo"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&text).unwrap();
    let phase = |version: &str, env: &str| {
        summary["rollouts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == version && r["environment"] == env)
            .map(|r| r["phase"].as_str().unwrap().to_owned())
    };
    assert_eq!(phase("v1", "production").as_deref(), Some("succeeded"));
    assert_eq!(phase("v2", "production").as_deref(), Some("succeeded"), "v2 promoted");
    assert_eq!(phase("v3", "production").as_deref(), Some("aborted"), "v3 rolled back");
    assert_eq!(summary["stable_users"]["errors_5xx"], 0);
    assert_eq!(summary["all_users"]["failed"], 0);
    // Every error came from v3's canary share (20% of users during its analysis), so they are
    // bounded by weight × error rate of the requests in the window: at most 4% of all.
    let all = &summary["all_users"];
    let v3_errors = all["by_version"]["v3"][1].as_u64().unwrap_or(0);
    assert_eq!(all["errors_5xx"].as_u64(), Some(v3_errors), "{all}");
    assert!((v3_errors as f64) <= 0.04 * all["requests"].as_f64().unwrap(), "{all}");
    let dora = &summary["dora"][0];
    assert_eq!(dora["deployment_frequency"]["deployments"], 3, "{dora:#}");
    assert_eq!(dora["change_failure_rate"]["failed"], 1);
    assert!(dora["lead_time"]["median_seconds"].is_number(), "{dora:#}");
    assert!(dora["recovery_time"]["median_seconds"].is_number(), "{dora:#}");
    assert_eq!(summary["incidents"].as_array().unwrap().len(), 1);
    let slo = &summary["slos"][0];
    assert_eq!((slo["service"].as_str(), slo["slo"].as_str()), (Some("shop"), Some("availability")), "{slo:#}");
    assert!(slo["budget"]["bad"].as_u64().unwrap() > 0, "the failed canary spent budget: {slo:#}");
    let draft = summary["postmortem"].as_str().expect("a drafted post-mortem");
    for part in [
        "# Post-mortem: automatic rollback of shop v3 in production",
        "`",
        "Release v3",
        "## Timeline (UTC)",
        "## Root causes",
        "## Action items",
    ] {
        assert!(draft.contains(part), "{part} missing from:\n{draft}");
    }
    assert!(draft.contains("Detected by Mobius's canary analysis"), "{draft}");
    assert!(draft.contains("Error budget consumed: ") && draft.contains("of SLO `availability`"), "{draft}");
    // The flag every release carried dark, released to 20% of production's users over OFREP:
    // 1,000 users, the split's share within sampling noise (σ ≈ 1.3 points).
    let flag = &summary["flag"];
    assert_eq!((flag["set"].as_str(), flag["flag"].as_str()), (Some("shop.production"), Some("new-checkout")));
    let on = flag["on"].as_u64().unwrap();
    assert!((150..=250).contains(&on), "{flag}");
    assert!(flag["version"].as_u64().unwrap() >= 2, "loaded by a deploy, then released: {flag}");
    assert!(summary["seconds"].as_f64().unwrap() < 120.0);
}
