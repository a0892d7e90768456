//! SLOs whose SLI is a Prometheus query, evaluated against a real Prometheus: three days of
//! request counters backfilled with `promtool`, then `mobius slo status` reads the budget, burn
//! rates and alerts from its HTTP query API. A source that is unreachable, or rejects a query,
//! when a release is deployed refuses the deploy at the field's line; one that goes away later
//! leaves its SLOs unknown.

use std::fmt::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::deploy::{Cleanup, against, deploy, deployed, finished, free_port, release};
use crate::util::{ADMIN, Dir, http};

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

/// `slos:` with one SLO per `(name, prometheus: fields)`, each over 3 days at 99.9%.
fn slos(sources: &[(&str, String)]) -> String {
    let mut out = String::from("slos:\n");
    for (name, fields) in sources {
        write!(out, "  - name: {name}\n    objective: 99.9\n    window: 3d\n    sli:\n      prometheus:\n{fields}")
            .unwrap();
    }
    out
}

/// A Prometheus source's fields: its URL, then a good or error query and a total query over
/// `http_requests_total`, written with `increase` or (Sloth's style) `rate`.
fn source(url: &str, ratio: &str, function: &str) -> String {
    let code = if ratio == "good_query" { "200" } else { "500" };
    format!(
        "        url: {url}\n        {ratio}: 'sum({function}(http_requests_total{{code=\"{code}\"}}[{{{{window}}}}]))'\n        total_query: 'sum({function}(http_requests_total[{{{{window}}}}]))'\n"
    )
}

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("`{needle}` in {text}"));
    let line = text[..offset].matches('\n').count() + 1;
    (line, offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1)
}

#[test]
fn a_prometheus_sli_is_evaluated_from_real_prometheus_and_a_bad_source_is_refused_or_unknown() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let (prometheus, port) = prometheus(dir.path(), jiff::Timestamp::now().as_second());
    let url = format!("http://127.0.0.1:{port}");
    let server = dir.serve(&[]);
    let path = release(&dir, "v1", 0.0, free_port(), "rolling", "");
    let base = std::fs::read_to_string(path.join("mobius.yaml")).unwrap();
    let with_slos = |slos: &str| {
        let text = format!("{base}{slos}");
        std::fs::write(path.join("mobius.yaml"), &text).unwrap();
        text
    };
    let refused = |text: &str, at: &str| {
        let out = deploy(&dir, &server, &path, "v1");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let (line, column) = position(text, at);
        assert!(!out.status.success(), "refused: {err}");
        assert!(err.contains(&format!("mobius.yaml:{line}:{column}: SLO `")), "at {line}:{column}: {err}");
        let rollouts = http().get(server.url("/api/v1/rollouts")).bearer_auth(ADMIN).send().unwrap().text().unwrap();
        assert!(!rollouts.contains("shop"), "a refused deploy stores nothing: {rollouts}");
        err
    };

    // At deploy time: an unreachable source is refused at its `url`, ...
    // With credentials, which no message may show.
    let closed = format!("http://mobius:s3cret@127.0.0.1:{}", free_port());
    let text = with_slos(&slos(&[
        ("api", source(&url, "error_query", "increase")),
        ("down", source(&closed, "good_query", "increase")),
    ]));
    let err = refused(&text, &closed);
    assert!(err.contains("SLO `down`") && err.contains("cannot be queried"), "{err}");
    assert!(!err.contains("s3cret") && err.contains("http://***@127.0.0.1:"), "{err}");
    // ... and PromQL Prometheus cannot parse at that query.
    let broken = format!(
        "        url: {url}\n        error_query: 'sum(rate(http_requests_total[{{{{window}}}}])'\n        total_query: 'sum(increase(http_requests_total[{{{{window}}}}]))'\n"
    );
    let text = with_slos(&slos(&[("broken", broken)]));
    let err = refused(&text, "'sum(rate(");
    assert!(err.contains("SLO `broken`") && err.contains("parse error"), "{err}");

    with_slos(&slos(&[
        ("api", source(&url, "error_query", "increase")),
        ("api-rate", source(&format!("{url}/"), "good_query", "rate")),
    ]));
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
    let hourly: Vec<f64> = api["hourly_error_ratios"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap()).collect();
    assert_eq!(hourly.len(), 24);
    assert!((hourly[23] - 0.02).abs() < 0.002, "the last hour: {hourly:?}");
    // The hour before the last may hold a minute or two of the bad hour (samples are a minute
    // apart and the hours end at `now`, not on a sample).
    assert!(hourly[..22].iter().all(|r| (r - 0.0005).abs() < 0.0002), "the hours before: {hourly:?}");

    // Sloth-style per-second queries, with a good query: the same events.
    let rate = statuses.as_array().unwrap().iter().find(|s| s["slo"] == "api-rate").expect("the api-rate SLO");
    assert!(rate["unknown"].is_null(), "{rate:#}");
    let (rate_total, rate_bad) = (rate["budget"]["total"].as_u64().unwrap(), rate["budget"]["bad"].as_u64().unwrap());
    assert!(within(rate_total, total, 0.001) && within(rate_bad, bad, 0.02), "{rate:#}");
    assert_eq!(rate["alert"], "page", "{rate:#}");
    assert_eq!(rate["hourly_error_ratios"].as_array().unwrap().len(), 24);
    assert!((rate["hourly_error_ratios"][23].as_f64().unwrap() - 0.02).abs() < 0.002, "{rate:#}");

    // Prometheus goes away: its SLOs are unknown, never healthy.
    drop(prometheus);
    for down in dir.json(&["slo", "status"]).as_array().unwrap() {
        assert!(down["budget"].is_null() && down["alert"].is_null(), "{down:#}");
        let reason = down["unknown"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("127.0.0.1:{port}")) && reason.contains("cannot be queried"), "{down:#}");
    }

    // A fix is not held up by a monitoring outage: with a reason it deploys, with a warning.
    let release = path.to_str().unwrap();
    let args = ["deploy", "shop", "production", "--dir", release, "--as", "v2", "--reason", "hotfix"];
    let out = against(&dir, &server, ADMIN, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
