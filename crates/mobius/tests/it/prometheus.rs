//! SLOs whose SLI is a Prometheus query, evaluated against a real Prometheus: three days of
//! request counters backfilled with `promtool`, then `mobius slo status` reads the budget, burn
//! rates and alerts from its HTTP query API; an unreachable Prometheus leaves the SLO unknown.

use std::fmt::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::deploy::{Cleanup, deployed, finished, free_port, release};
use crate::util::{Dir, http};

/// Requests a minute, and the failed ones among them before and during the last hour.
const PER_MINUTE: u64 = 2000;
const BAD_BEFORE: u64 = 1;
const BAD_LAST_HOUR: u64 = 40;

/// A Prometheus server, killed on drop.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes `http_requests_total{code="200"|"500"}` at 1-minute steps from 3 days and an hour ago
/// to the last whole minute (0.05% errors, 2% in the last hour), backfills it into `tsdb` and
/// starts Prometheus on it; returns it with its port.
fn prometheus(dir: &Path, now_s: i64) -> (Prometheus, u16) {
    let last = now_s - now_s.rem_euclid(60) - 60;
    let first = last - 3 * 86_400 - 3600;
    let (mut good, mut bad) = (0u64, 0u64);
    let (mut ok_samples, mut bad_samples) = (String::new(), String::new());
    for t in (first..=last).step_by(60) {
        let failed = if t > last - 3600 { BAD_LAST_HOUR } else { BAD_BEFORE };
        good += PER_MINUTE - failed;
        bad += failed;
        writeln!(ok_samples, "http_requests_total{{code=\"200\"}} {good} {t}").unwrap();
        writeln!(bad_samples, "http_requests_total{{code=\"500\"}} {bad} {t}").unwrap();
    }
    let metrics = dir.join("metrics.om");
    std::fs::write(&metrics, format!("# TYPE http_requests counter\n{ok_samples}{bad_samples}# EOF\n")).unwrap();
    let tsdb = dir.join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&metrics)
        .arg(&tsdb)
        .output()
        .expect("promtool (Debian's prometheus package) is installed");
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed");
    let server = Prometheus(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    while !http().get(&ready).send().is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "Prometheus did not get ready on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

fn within(actual: u64, expected: u64, tolerance: f64) -> bool {
    (actual as f64 - expected as f64).abs() <= tolerance * expected as f64
}

#[test]
fn a_prometheus_sli_is_evaluated_from_real_prometheus_and_an_unreachable_one_is_unknown() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let (_prometheus, port) = prometheus(dir.path(), jiff::Timestamp::now().as_second());
    let closed = free_port();
    let slos = format!(
        "slos:
  - name: api
    objective: 99.9
    window: 3d
    sli:
      prometheus:
        url: http://127.0.0.1:{port}
        error_query: 'sum(increase(http_requests_total{{code=\"500\"}}[{{{{window}}}}]))'
        total_query: 'sum(increase(http_requests_total[{{{{window}}}}]))'
  - name: api-rate
    objective: 99.9
    window: 3d
    sli:
      prometheus:
        url: http://127.0.0.1:{port}/
        good_query: 'sum(rate(http_requests_total{{code=\"200\"}}[{{{{window}}}}]))'
        total_query: 'sum(rate(http_requests_total[{{{{window}}}}]))'
  - name: unreachable
    objective: 99.9
    sli:
      prometheus:
        url: http://127.0.0.1:{closed}
        good_query: 'sum(increase(http_requests_total{{code=\"200\"}}[{{{{window}}}}]))'
        total_query: 'sum(increase(http_requests_total[{{{{window}}}}]))'
"
    );
    let server = dir.serve(&[]);
    let path = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    let spec = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    std::fs::write(path.join("mobius.yaml"), format!("{spec}{slos}")).unwrap();
    deployed(&dir, &server, &path, "v1");
    finished(&server);

    let statuses = dir.json(&["slo", "status"]);
    let api = statuses.as_array().unwrap().iter().find(|s| s["slo"] == "api").expect("the api SLO");
    assert!(api["unknown"].is_null(), "{api:#}");
    let budget = &api["budget"];
    // The 3-day window holds 3 days of minutes; `increase` extrapolates by up to a minute.
    let minutes = 3 * 24 * 60;
    let total = budget["total"].as_u64().unwrap();
    let bad = budget["bad"].as_u64().unwrap();
    assert!(within(total, minutes * PER_MINUTE, 0.01), "total {total}: {api:#}");
    let expected_bad = (minutes - 60) * BAD_BEFORE + 60 * BAD_LAST_HOUR;
    assert!(within(bad, expected_bad, 0.02), "bad {bad}, expected about {expected_bad}: {api:#}");
    assert!(budget["remaining"].as_f64().unwrap() > 0.0, "0.077% errors leave budget: {api:#}");
    // 2% over the last hour is a burn of 20 against 99.9%: the fast page fires.
    let ratio_1h = api["error_ratios"].as_array().unwrap().iter().find(|w| w[0] == "1h").unwrap()[1].as_f64().unwrap();
    assert!((ratio_1h - 0.02).abs() < 0.002, "1h error ratio {ratio_1h}: {api:#}");
    assert_eq!(api["alert"], "page", "{api:#}");
    assert_eq!(api["rules"].as_array().unwrap().len(), 4);
    assert_eq!(api["hourly_error_ratios"].as_array().unwrap().len(), 24);

    // Sloth-style per-second queries, with a good query: the same events.
    let rate = statuses.as_array().unwrap().iter().find(|s| s["slo"] == "api-rate").expect("the api-rate SLO");
    assert!(rate["unknown"].is_null(), "{rate:#}");
    let (rate_total, rate_bad) = (rate["budget"]["total"].as_u64().unwrap(), rate["budget"]["bad"].as_u64().unwrap());
    assert!(within(rate_total, total, 0.001) && within(rate_bad, bad, 0.02), "{rate:#}");
    assert_eq!(rate["alert"], "page", "{rate:#}");

    let down = statuses.as_array().unwrap().iter().find(|s| s["slo"] == "unreachable").expect("the second SLO");
    assert!(down["budget"].is_null(), "{down:#}");
    let reason = down["unknown"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("127.0.0.1:{closed}")) && reason.contains("cannot be queried"), "{down:#}");
}
