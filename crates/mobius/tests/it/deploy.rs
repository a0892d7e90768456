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

fn status(server: &Server) -> Value {
    http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap().json().unwrap()
}

/// Waits until the latest rollout satisfies `done`; returns it.
fn wait_until(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
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
struct Load {
    runtime: tokio::runtime::Runtime,
    handle: Option<load::LoadHandle>,
}

impl Load {
    fn start(port: u16, headers: Vec<(String, String)>) -> Load {
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

    fn stop(mut self) -> LoadReport {
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
    let started = Instant::now();
    let out = against(&dir, &server, ADMIN, &["rollout", "undo", "shop", "production"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let undone = finished(&server);
    assert_eq!(undone["phase"], "aborted", "{undone:#}");
    assert!(started.elapsed() < Duration::from_secs(5), "undo inside the delay is instant");
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
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read_link(e.path().join("cwd")).ok())
        .filter(|cwd| cwd.starts_with(&releases))
        .map(|cwd| cwd.display().to_string())
        .collect();
    assert_eq!(running.len(), 2, "only v1's two instances run, no orphan of v2: {running:?}");

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
    assert!(summary["seconds"].as_f64().unwrap() < 120.0);
}

#[test]
fn an_exhausted_error_budget_freezes_production_except_for_a_hotfix() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let slo = "slos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {availability: {}}\n";
    let with_slo = |version: &str| {
        let path = release(&dir, version, 0.0, port, "rolling", "");
        let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
        std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
        path
    };
    deployed(&dir, &server, &with_slo("v1"), "v1");
    finished(&server);

    // A bad hour: half of 2,000 requests failed, far past a 99.9% budget.
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let minute = mobius_store::SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: "v1".into(),
        minute: now - now.rem_euclid(60) - 60,
        requests: 2000,
        errors: 1000,
        latency: vec![2000],
    };
    mobius_store::Store::add_sli(&store, &[minute]).unwrap();

    let slos: Value = http().get(server.url("/api/v1/slos")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert!(slos[0]["budget"]["remaining"].as_f64().unwrap() < 0.0, "{slos:#}");
    assert_eq!(slos[0]["alert"], "page", "a 50% error ratio pages: {slos:#}");
    let metrics = http().get(server.url("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("slo:period_error_budget_remaining:ratio{sloth_id=\"shop-availability\""), "{metrics}");
    assert!(metrics.contains("slo:sli_error:ratio_rate1h{"), "{metrics}");
    assert!(
        metrics.contains("slo:sli_error:ratio_rate30d{sloth_id=\"shop-availability\""),
        "the period, as Sloth has it: {metrics}"
    );

    // What pipelines ask before deploying: refused (exit 1), or through as a hotfix.
    let check = against(&dir, &server, ADMIN, &["slo", "check", "shop"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{said}");
    assert!(said.contains("would be refused") && said.contains("error budget exhausted"), "{said}");
    let check = against(&dir, &server, ADMIN, &["slo", "check", "shop", "production", "--reason", "hotfix"]);
    assert!(check.status.success() && String::from_utf8_lossy(&check.stdout).contains("as an exception to the policy"));

    let v2 = with_slo("v2");
    let out = deploy(&dir, &server, &v2, "v2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("error budget exhausted"), "{err}");
    assert!(err.contains("--reason hotfix"), "the refusal says how to override: {err}");
    let out = against(
        &dir,
        &server,
        ADMIN,
        &["deploy", "shop", "production", "--dir", v2.to_str().unwrap(), "--as", "v2", "--reason", "hotfix"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(finished(&server)["phase"], "succeeded");
    let events = dir.json(&["events", "list", "--limit", "100"]);
    let exceptions: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "dev.cdeventsx.mobius-policy.exception.0.1.0")
        .collect();
    assert_eq!(exceptions.len(), 1, "the deploy's exception is recorded, the check's is not: {events:#}");
    let status = dir.ok(&["slo", "status"]);
    assert!(status.contains("availability") && status.contains("page"), "{status}");
}

/// Accepts HTTP requests on loopback and keeps their bodies (a webhook receiver).
fn webhook_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

#[test]
fn a_burning_canary_pages_and_the_incident_names_the_failing_version() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve_with_env(&[("MOBIUS_ALERT_EVERY", "1s")]);
    let (hook, bodies) = webhook_receiver();
    let port = free_port();
    let canary = "{canary: {steps: [{set_weight: 50}, {pause: {}}]}}";
    // A Slack URL's path is its secret; this one leads nowhere, so delivering to it fails.
    let slack = format!("http://127.0.0.1:{}/services/T0/B0/SLACKSECRET", free_port());
    let slo = format!(
        "owner: team-shop\nrunbook: docs/runbook.md\nslos:\n  - name: availability\n    objective: 99.9\n    window: 30d\n    sli: {{availability: {{}}}}\n    policy: warn\n    alerting:\n      webhooks: [\"http://127.0.0.1:{hook}/hook\"]\n      slack: [\"{slack}\"]\n"
    );
    let with_slo = |version: &str| {
        let path = release(&dir, version, 0.0, port, canary, "");
        let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
        std::fs::write(path.join("mobius.yaml"), format!("{spec}{slo}")).unwrap();
        path
    };
    deployed(&dir, &server, &with_slo("v1"), "v1");
    finished(&server);
    deployed(&dir, &server, &with_slo("v2"), "v2");
    let paused = wait_until(&server, "the canary's pause", |r| r["phase"] == "paused");
    let v2_artifact = paused["new"]["artifact"].as_str().unwrap().to_owned();

    // Both versions serve; v2 fails half of its requests, v1 none.
    let store = mobius_store::SqliteStore::open(&dir.data()).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let minute = |version: &str, errors| mobius_store::SliMinute {
        service: "shop".into(),
        environment: "production".into(),
        version: version.into(),
        minute: now - now.rem_euclid(60),
        requests: 2000,
        errors,
        latency: vec![2000],
    };
    mobius_store::Store::add_sli(&store, &[minute("v1", 0), minute("v2", 1000)]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let found = bodies.lock().unwrap().iter().find(|b| b.contains("\"severity\":\"page\"")).cloned();
        if let Some(body) = found {
            break body;
        }
        assert!(Instant::now() < deadline, "no page reached the webhook");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("\"state\":\"firing\"") && page.contains("\"slo\":\"availability\""), "{page}");
    assert!(page.contains("\"owner\":\"team-shop\"") && page.contains("\"runbook\":\"docs/runbook.md\""), "{page}");
    let events = dir.json(&["events", "list", "--limit", "200"]);
    let incident = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "dev.cdevents.incident.detected.0.3.0")
        .expect("an incident was opened");
    let raw: Value = serde_json::from_str(incident["raw"].as_str().unwrap()).unwrap();
    let content = &raw["subject"]["content"];
    assert!(content["description"].as_str().unwrap().contains("version v2 has the highest error ratio"), "{content:#}");
    assert_eq!(raw["customData"]["severity"], "sev2", "a page is a sev2: {raw:#}");
    assert_eq!(content["artifactId"], v2_artifact, "attributed to the failing version's artifact: {content:#}");
    let alerts: Value = http().get(server.url("/api/v1/alerts")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    assert_eq!(alerts[0]["firing"], "page", "{alerts:#}");
    assert!(alerts[0]["incident"].is_string(), "{alerts:#}");

    // Where the budget went: the canary's version, today, and the incident it opened.
    let out = against(&dir, &server, ADMIN, &["--json", "slo", "explain", "shop", "availability"]);
    let explained: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let versions = explained["versions"].as_array().unwrap();
    assert_eq!((versions[0]["name"].as_str(), versions[0]["bad"].as_u64()), (Some("v2"), Some(1000)), "{explained:#}");
    assert!(versions[0]["budget_share"].as_f64().unwrap() > 1.0, "{explained:#}");
    assert!(versions.iter().any(|v| v["name"] == "v1" && v["bad"] == 0), "{explained:#}");
    assert_eq!(explained["days"].as_array().unwrap().len(), 1, "{explained:#}");
    assert!(explained["incidents"][0]["key"].as_str().unwrap().ends_with(alerts[0]["incident"].as_str().unwrap()));
    let text =
        String::from_utf8_lossy(&against(&dir, &server, ADMIN, &["slo", "explain", "shop", "availability"]).stdout)
            .into_owned();
    assert!(text.contains("BY VERSION") && text.contains("INCIDENTS"), "{text}");
    let out = against(&dir, &server, ADMIN, &["slo", "explain", "shop", "latency"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("shop has no SLO `latency`"));

    // It burned far more than 20% of the budget: a post-mortem is required until recorded.
    // All of it through the server, as from an on-call laptop.
    let remote = |args: &[&str]| {
        let out = against(&dir, &server, ADMIN, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = remote(&["incident", "list", "--data-dir", "/nonexistent"]);
    assert!(listed.contains("[post-mortem required]"), "{listed}");
    let id = alerts[0]["incident"].as_str().unwrap();
    let shown = remote(&["incident", "show", id]);
    assert!(shown.contains("# Post-mortem:") && shown.contains("## Timeline"), "{shown}");
    let draft = remote(&["postmortem", id]);
    assert!(draft.contains("## Action items"), "{draft}");
    assert!(remote(&["postmortem", id, "--recorded", "docs/postmortems/shop-burn.md"]).contains("Recorded"));
    let listed = dir.ok(&["incident", "list"]);
    assert!(!listed.contains("[post-mortem required]"), "{listed}");
    let out = against(&dir, &server, ADMIN, &["postmortem", "no-such-incident"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no incident `no-such-incident`"));

    // The failed Slack delivery is logged without the URL's secret path.
    let log = dir.path().join("serve.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("alert notification failed") {
            break text;
        }
        assert!(Instant::now() < deadline, "the failed delivery is logged: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!logged.contains("SLACKSECRET") && logged.contains("127.0.0.1"), "{logged}");
}

#[test]
fn chaos_faults_fail_requests_until_cleared_and_a_game_day_is_an_exception() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    deployed(&dir, &server, &release(&dir, "v1", 0.0, port, "rolling", ""), "v1");
    finished(&server);
    let chaos = |args: &[&str]| {
        let mut all = vec!["chaos"];
        all.extend_from_slice(args);
        against(&dir, &server, ADMIN, &all)
    };
    let out =
        chaos(&["inject", "shop", "production", "--abort", "503", "--version", "v1", "--id", "outage", "--for", "5m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let response = http().get(format!("http://127.0.0.1:{port}/")).send().unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-mobius-fault"], "outage");
    let list = String::from_utf8_lossy(&chaos(&["list"]).stdout).into_owned();
    assert!(list.contains("shop production  outage  100.0% "), "{list}");
    let events = dir.json(&["events", "list", "--limit", "100"]);
    assert!(
        events.as_array().unwrap().iter().any(|e| e["type"] == "dev.cdeventsx.mobius-policy.exception.0.1.0"),
        "the game day is recorded as a policy exception"
    );
    let bad = chaos(&["inject", "shop", "production", "--abort", "42"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("42"), "a bad status is named");
    assert!(chaos(&["clear", "shop", "production"]).status.success());
    assert_eq!(body(port), "hello from v1");
}

#[test]
fn openslo_files_in_a_release_become_the_services_slos() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let closed = free_port();
    let path = release(&dir, "v1", 0.0, port, "rolling", "");
    std::fs::create_dir_all(path.join("openslo")).unwrap();
    let openslo = format!(
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata:\n  name: prom\nspec:\n  type: Prometheus\n  connectionDetails:\n    url: http://127.0.0.1:{closed}\n---\napiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: shop-latency-ok\nspec:\n  service: shop\n  timeWindow:\n    - duration: 7d\n      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n    - target: 0.99\n  indicator:\n    metadata:\n      name: ok\n    spec:\n      ratioMetric:\n        counter: true\n        good:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: http_requests_total{{code=\"200\"}}\n        total:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: http_requests_total\n---\napiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: not-ours\nspec:\n  service: billing\n  timeWindow:\n    - duration: 7d\n      isRolling: true\n  budgetingMethod: Occurrences\n  objectives:\n    - target: 0.99\n  indicator:\n    metadata:\n      name: b\n    spec:\n      ratioMetric:\n        counter: true\n        good:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: up\n        total:\n          metricSource:\n            metricSourceRef: prom\n            spec:\n              query: up\n"
    );
    std::fs::write(path.join("openslo/shop.yaml"), openslo).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);
    let slos = dir.json(&["slo", "status"]);
    let names: Vec<&str> = slos.as_array().unwrap().iter().filter_map(|s| s["slo"].as_str()).collect();
    assert_eq!(names, ["shop-latency-ok"], "only the SLO whose service is shop: {slos:#}");
    assert_eq!(slos[0]["objective"], 99.0);
    assert!(slos[0]["unknown"].as_str().unwrap().contains("cannot be queried"), "{slos:#}");
}
