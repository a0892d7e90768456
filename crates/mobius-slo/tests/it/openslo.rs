//! OpenSLO v1: every example of the OpenSLO corpus parsed, and converted to a Mobius SLO or
//! refused with the reason; a stream of every kind; bad input refused at its position.

use std::path::{Path, PathBuf};

use mobius_slo::openslo::{self, Document, Unconvertible, parse_documents, to_slos};
use mobius_slo::spec::Sli;

fn corpus_dir() -> PathBuf {
    crate::shared_corpus().join("openslo")
}
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openslo");

/// What Mobius does with an SLO of the corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Converts to a Mobius SLO with this objective (percent) and window (seconds).
    #[allow(dead_code)]
    Converts(f64, u64),
    /// Refused, for these reasons (joined with `; `).
    Unsupported(&'static str),
}
use Outcome::*;

const DAY: u64 = 86_400;

/// Every YAML file of the corpus (path relative to it) and the outcome of each SLO in it.
/// None of the OpenSLO examples converts: they are time-slice or threshold SLOs on a
/// placeholder data source (`type: Any`); `all-kinds.yaml` in the fixtures covers conversion.
const EXAMPLES: &[(&str, &[Outcome])] = &[
    (
        "examples/budgeting-method/occurences-slo.yaml",
        &[Unsupported(
            "thresholdMetric SLIs (a bound on a metric's value) are not supported: use a ratioMetric of good or bad and total events",
        )],
    ),
    (
        "examples/budgeting-method/ratio-timeslices.yaml",
        &[Unsupported(
            "budgetingMethod RatioTimeslices: Mobius budgets are request-weighted (Occurrences); \
             metricSource type `Any`: Mobius queries Prometheus only",
        )],
    ),
    (
        "examples/budgeting-method/timeslices-slo.yaml",
        &[Unsupported(
            "2 objectives: a Mobius SLO has one (write one SLO per objective); \
             calendar window of 1m: Mobius windows are rolling; \
             budgetingMethod Timeslices: Mobius budgets are request-weighted (Occurrences); \
             metricSource type `Any`: Mobius queries Prometheus only",
        )],
    ),
    (
        "examples/treat-low-traffic-as-equally-important/timeslices-slo.yaml",
        &[Unsupported(
            "calendar window of 1w: Mobius windows are rolling; \
             budgetingMethod Timeslices: Mobius budgets are request-weighted (Occurrences); \
             metricSource type `Any`: Mobius queries Prometheus only",
        )],
    ),
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn outcomes(docs: &[Document]) -> Vec<Outcome> {
    to_slos(docs)
        .into_iter()
        .map(|result| match result {
            Ok(slo) => Converts(slo.objective.value, slo.window_seconds()),
            Err(reasons) => Unsupported(Box::leak(reasons.to_string().into_boxed_str())),
        })
        .collect()
}

#[test]
fn every_corpus_example_parses_and_converts_or_says_why_not() {
    let root = corpus_dir();
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    let found: Vec<String> =
        files.iter().map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/")).collect();
    let listed: Vec<&str> = EXAMPLES.iter().map(|(path, _)| *path).collect();
    assert_eq!(found, listed, "the table must list every file of the corpus, in order");
    for (path, expected) in EXAMPLES {
        let text = std::fs::read_to_string(root.join(path)).unwrap();
        let docs = parse_documents(path, &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!docs.is_empty(), "{path}");
        assert_eq!(outcomes(&docs), *expected, "{path}");
    }
}

#[test]
fn a_stream_of_every_kind_parses_and_its_slos_convert() {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("all-kinds.yaml")).unwrap();
    let docs = parse_documents("all-kinds.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<(&str, &str)> = docs.iter().map(|d| (d.kind(), d.name())).collect();
    assert_eq!(
        kinds,
        [
            ("Service", "shop"),
            ("DataSource", "prometheus"),
            ("SLI", "shop-requests"),
            ("SLO", "shop-availability"),
            ("SLO", "checkout-errors"),
            ("AlertPolicy", "fast-burn"),
            ("AlertCondition", "slow-burn"),
            ("AlertNotificationTarget", "on-call"),
        ]
    );
    assert_eq!(outcomes(&docs), [Converts(99.9, 28 * DAY), Converts(99.5, 28 * DAY)]);

    let slos: Vec<_> = to_slos(&docs).into_iter().map(Result::unwrap).collect();
    let Sli::Prometheus(availability) = &slos[0].sli else { panic!("{:?}", slos[0].sli) };
    assert_eq!(availability.url.value, "http://127.0.0.1:9090");
    // A counter that is a plain selector is windowed by Mobius.
    assert_eq!(
        availability.good_query.as_ref().map(|q| q.value.as_str()),
        Some(r#"sum(increase(http_requests_total{job="shop",code!~"5.."}[{{window}}]))"#)
    );
    assert_eq!(availability.total_query.value, r#"sum(increase(http_requests_total{job="shop"}[{{window}}]))"#);
    assert_eq!(availability.error_query, None);
    assert_eq!(slos[0].description.as_deref(), Some("Shop availability"));
    assert!((slos[0].error_budget() - 0.001).abs() < 1e-12);

    let Sli::Prometheus(checkout) = &slos[1].sli else { panic!("{:?}", slos[1].sli) };
    assert_eq!(checkout.good_query, None);
    assert_eq!(
        checkout.error_query.as_ref().map(|q| q.value.as_str()),
        Some(r#"sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{window}}]))"#)
    );
    assert_eq!(slos[1].environment_name(), "production");
}

fn converted(slo: &str, extra: &str) -> Result<(), Unconvertible> {
    let text = format!(
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {{name: prom}}\nspec:\n  type: Prometheus\n  \
         connectionDetails: {{url: 'http://127.0.0.1:9090'}}\n---\n{extra}---\n{slo}"
    );
    let docs = parse_documents("f.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    to_slos(&docs).remove(0).map(|_| ())
}

const GOOD_SLO: &str = "apiVersion: openslo/v1
kind: SLO
metadata: {name: s}
spec:
  service: shop
  indicatorRef: requests
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
";
const GOOD_SLI: &str = "apiVersion: openslo/v1
kind: SLI
metadata: {name: requests}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {metricSourceRef: prom, spec: {query: 'good_total'}}}
    total: {metricSource: {metricSourceRef: prom, spec: {query: 'all_total'}}}
";

#[test]
fn slos_mobius_cannot_evaluate_are_refused_with_the_reason() {
    let check = |slo: &str, sli: &str, expected: Result<(), &str>| {
        let reasons = converted(slo, sli).map_err(|e| e.to_string());
        assert_eq!(reasons, expected.map_err(str::to_owned), "{slo}\n{sli}");
    };
    check(GOOD_SLO, GOOD_SLI, Ok(()));
    check(
        &GOOD_SLO.replace("30d", "1M"),
        GOOD_SLI,
        Err("timeWindow 1M: months, quarters and years are calendar lengths, not a rolling window"),
    );
    check(
        &GOOD_SLO.replace("indicatorRef: requests", "indicatorRef: other"),
        GOOD_SLI,
        Err("indicatorRef `other`: no SLI of that name in the same set"),
    );
    check(
        GOOD_SLO,
        &GOOD_SLI.replace("counter: true", "counter: false"),
        Err("query `good_total` has no `{{window}}` placeholder and is not a plain counter selector (`counter: true`)"),
    );
    check(
        GOOD_SLO,
        &GOOD_SLI.replace("metricSourceRef: prom, ", "type: Prometheus, "),
        Err("a Prometheus metricSource needs metricSourceRef to a DataSource with `connectionDetails.url`"),
    );
    check(
        GOOD_SLO,
        &GOOD_SLI.replace("good:", "raw:").replace("rawType: x", ""),
        Err("raw ratioMetric (a precomputed ratio) is not supported: Mobius needs good or bad and total event counts"),
    );
    check(
        &GOOD_SLO.replace("target: 0.99", "target: 0"),
        GOOD_SLI,
        Err("`objective`: 0 is not a percentage strictly between 0 and 100 (e.g. 99.9)"),
    );
}

#[test]
fn every_reason_an_slo_is_refused_is_kept() {
    let slo = GOOD_SLO.replace("30d", "1M").replace("Occurrences", "Timeslices");
    let reasons = converted(&slo, GOOD_SLI).unwrap_err().reasons;
    assert_eq!(
        reasons,
        [
            openslo::Unsupported::CalendarLength { duration: "1M".into() },
            openslo::Unsupported::BudgetingMethod { method: openslo::BudgetingMethod::Timeslices },
        ]
    );
}

#[test]
fn bad_openslo_is_refused_with_file_line_and_column() {
    let error = |text: &str| parse_documents("f.yaml", text).unwrap_err().to_string();
    let service = "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\nspec: {}\n";
    let e = error(&service.replace("kind: Service", "kind: Slo"));
    assert!(e.starts_with("f.yaml:2:7: unknown kind `Slo`, expected one of SLO, SLI"), "{e}");
    let e = error(&service.replace("openslo/v1", "openslo/v1alpha"));
    assert_eq!(e, "f.yaml:1:13: `apiVersion`: `openslo/v1alpha` is not `openslo/v1` (the only version Mobius reads)");
    let e = error(&service.replace("spec: {}", "spec:\n  descripton: y"));
    assert!(e.starts_with("f.yaml:5:3: unknown field `descripton`"), "{e}");
    let e = error(&format!("{service}status: {{}}\n"));
    assert!(e.starts_with("f.yaml:5:1: unknown field `status`"), "{e}");
    let e = error(&service.replace("name: x", "name: Shop"));
    assert_eq!(e, "f.yaml:3:18: `metadata.name`: `Shop` must be 1 to 63 lowercase letters, digits or `-`");
    let e = error(&format!("{service}---\n{}", GOOD_SLO.replace("target: 0.99", "target: 1.5")));
    assert_eq!(e, "f.yaml:14:25: `target`: 1.5 is not in [0, 1)");
    let e = error(&GOOD_SLO.replace("target: 0.99", "targetPercent: 100"));
    assert_eq!(e, "f.yaml:9:32: `targetPercent`: 100 is not in [0, 100)");
    let e = error(&GOOD_SLO.replace("Occurrences", "Sometimes"));
    assert!(e.starts_with("f.yaml:8:20: unknown variant `Sometimes`"), "{e}");
    let e = error(&GOOD_SLO.replace("[{duration: 30d, isRolling: true}]", "[]"));
    assert_eq!(e, "f.yaml:7:15: `timeWindow` has 0 items: OpenSLO v1 takes exactly one");
    let e = error(&GOOD_SLI.replace("    total:", "    bad: {metricSource: {spec: {query: b}}}\n    total:"));
    assert_eq!(e, "f.yaml:3:18: SLI `requests`: `ratioMetric` has `good` or `bad`, not both");
    let e = error(&GOOD_SLO.replace("  indicatorRef: requests\n", ""));
    assert_eq!(e, "f.yaml:3:18: an SLO has `indicator` or `indicatorRef`, not both nor neither");
}
