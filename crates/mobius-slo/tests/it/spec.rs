//! Mobius SLO definitions: what they read as, and bad input refused at its position.

use mobius_slo::spec::{Policy, Sli, parse_slos, with_window};

fn error(text: &str) -> String {
    parse_slos("slos.yaml", text).unwrap_err().to_string()
}

const ONE: &str = "- name: availability\n  objective: 99.9\n  sli: {availability: {}}\n";

#[test]
fn slos_read_with_defaults_filled_in() {
    let text = "\
- name: availability
  objective: 99.9
  sli: {availability: {}}
- name: fast
  description: Pages answered under 300 ms
  objective: 99
  window: 28d
  sli: {latency: {threshold_ms: 300}}
  environment: staging
  policy: warn
  alerting:
    webhooks: [https://hooks.example.com/mobius]
    slack: [https://hooks.slack.com/services/T/B/X]
- name: api-errors
  objective: 99.5
  window: 7d
  policy: 'off'
  sli:
    prometheus:
      url: http://127.0.0.1:9090
      error_query: sum(rate(http_requests_total{code=~\"5..\"}[{{window}}]))
      total_query: sum(rate(http_requests_total[{{ .window }}]))
";
    let slos = parse_slos("slos.yaml", text).unwrap_or_else(|e| panic!("{e}"));
    let [availability, fast, api] = slos.as_slice() else { panic!("{slos:?}") };
    assert_eq!((availability.name(), availability.window_seconds()), ("availability", 30 * 86_400));
    assert_eq!((availability.environment_name(), availability.policy), ("production", Policy::Freeze));
    assert_eq!(availability.sli, Sli::Availability {});
    assert!((availability.error_budget() - 0.001).abs() < 1e-12);

    assert_eq!((fast.window_seconds(), fast.environment_name(), fast.policy), (28 * 86_400, "staging", Policy::Warn));
    let Sli::Latency { threshold_ms } = &fast.sli else { panic!("{:?}", fast.sli) };
    assert_eq!(threshold_ms.value, 300.0);
    assert_eq!(fast.alerting.as_ref().map(|a| (a.webhooks.len(), a.slack.len())), Some((1, 1)));

    assert_eq!((api.window_seconds(), api.policy), (7 * 86_400, Policy::Off));
    let Sli::Prometheus(prometheus) = &api.sli else { panic!("{:?}", api.sli) };
    let (query, counts_good) = prometheus.ratio_query();
    assert!(!counts_good);
    assert_eq!(with_window(query, "5m"), "sum(rate(http_requests_total{code=~\"5..\"}[5m]))");
    assert_eq!(with_window(&prometheus.total_query.value, "1h"), "sum(rate(http_requests_total[1h]))");
}

#[test]
fn bad_slos_are_refused_with_file_line_and_column() {
    let check = |text: String, expected: &str| {
        let e = error(&text);
        assert!(e.starts_with(expected), "{e}\nexpected: {expected}");
    };
    for objective in ["100", "0", "150", "-5"] {
        check(
            ONE.replace("99.9", objective),
            &format!("slos.yaml:2:14: `objective`: {objective} is not a percentage strictly between 0 and 100"),
        );
    }
    check(format!("{ONE}  window: thirty days\n"), "slos.yaml:4:11: `thirty days` is not a window like 30d");
    check(format!("{ONE}  window: 1M\n"), "slos.yaml:4:11: `1M` is not a window like 30d");
    check(format!("{ONE}  window: 400d\n"), "slos.yaml:4:11: `window`: 400d is not between 1s and 366d");
    check(
        ONE.replace("availability: {}", "errors: {}"),
        "slos.yaml:3:9: unknown variant `errors`, expected one of availability, latency, prometheus",
    );
    check(
        ONE.replace("sli: {availability: {}}", "sli:\n    availabilty: {}"),
        "slos.yaml:4:5: unknown variant `availabilty`",
    );
    check(
        ONE.replace("{availability: {}}", "{latency: {threshold_ms: 0}}"),
        "slos.yaml:3:33: `threshold_ms`: 0 must be above 0",
    );
    check(format!("{ONE}  objectve: 99\n"), "slos.yaml:4:3: unknown field `objectve`");
    check(
        format!("{ONE}  policy: freze\n"),
        "slos.yaml:4:11: unknown variant `freze`, expected one of freeze, warn, off",
    );
    check(format!("{ONE}{ONE}"), "slos.yaml:4:9: SLO `availability` is listed twice");
    check(ONE.replace("name: availability", "name: my slo"), "slos.yaml:1:9: SLO name `my slo` must be");
    check(
        format!("{ONE}  alerting: {{webhooks: [ftp://x]}}\n"),
        "slos.yaml:4:25: `alerting`: not an http(s) URL (http://… or https://…)",
    );
    check(
        format!("{ONE}  alerting: {{quiet_period: 2d}}\n"),
        "slos.yaml:4:28: `alerting.quiet_period`: 2d is longer than 1d",
    );
    check(format!("{ONE}  alerting: {{quiet_period: soon}}\n"), "slos.yaml:4:28: `soon` is not a window like 30d");
    check(format!("{ONE}  alerting: {{for: 2h}}\n"), "slos.yaml:4:19: `alerting.for`: 2h is longer than 1h");
    let prometheus = |queries: &str| {
        ONE.replace("{availability: {}}", &format!("\n    prometheus:\n      url: http://127.0.0.1:9090\n{queries}"))
    };
    check(
        prometheus("      error_query: sum(rate(x[5m]))\n      total_query: sum(rate(y[{{window}}]))\n"),
        "slos.yaml:6:20: `error_query` has no `{{window}}` placeholder",
    );
    check(
        prometheus("      total_query: sum(rate(y[{{window}}]))\n"),
        "slos.yaml:6:20: a Prometheus SLI needs `good_query` or `error_query` beside `total_query`",
    );
    check(
        prometheus(
            "      good_query: a[{{window}}]\n      error_query: b[{{window}}]\n      total_query: c[{{window}}]\n",
        ),
        "slos.yaml:7:20: `good_query` and `error_query` are both given: keep one",
    );
    check(
        prometheus(
            "      url: http://127.0.0.1:9090\n      error_query: b[{{window}}]\n      total_query: c[{{window}}]\n",
        ),
        "slos.yaml:6:7: duplicate",
    );
}
