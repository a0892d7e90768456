//! Text renderings, compared as plain strings with colour off.

use mobius_insights::text::{render_dora, render_flow};
use mobius_insights::{bands, dora, flow};

use crate::fixtures::{ENVIRONMENT, Facts, SERVICE, window};

fn scenario() -> Facts {
    Facts::new()
        .deploy(1, "2024-01-02T12:00:00Z")
        .change("1111111aaaa", "2024-01-02T07:48:00Z", 1)
        .roll_back(1)
        .incident("INC-7", "2024-01-02T12:30:00Z", Some("2024-01-02T13:05:00Z"), Some(1))
        .fail(2, "2024-01-03T12:00:00Z")
        .deploy(3, "2024-01-04T12:00:00Z")
        .change("3333333cccc", "2024-01-03T10:00:00Z", 3)
        .run("ci-3", 3, Some("2024-01-03T10:02:00Z"), Some("2024-01-03T10:03:00Z"), Some("2024-01-03T10:11:00Z"))
}

fn dora_text(explain: bool, color: bool) -> String {
    let facts = scenario().build();
    let w = window("2024-01-01", "2024-01-29");
    let reports = [
        dora(SERVICE, ENVIRONMENT, &facts, w, bands::default_table(), explain),
        dora("search", "staging", &Default::default(), w, bands::default_table(), explain),
    ];
    render_dora(&reports, color)
}

fn flow_text(explain: bool) -> String {
    let facts = scenario().build();
    render_flow(&[flow(SERVICE, ENVIRONMENT, &facts, window("2024-01-01", "2024-01-29"), explain)], false)
}

/// Compares whole renderings; `expected` starts with a newline for readability.
fn check(actual: String, expected: &str) {
    let expected = expected.strip_prefix('\n').unwrap();
    assert_eq!(actual, expected, "\nactual:\n{actual}\nexpected:\n{expected}");
}

#[test]
fn dora_tables_line_up_across_services_and_show_unknowns_as_dashes() {
    check(
        dora_text(false, false),
        "
checkout in production, 2024-01-01 00:00 to 2024-01-29 00:00 UTC (28 days), bands seed-2023

  metric                 value      band    basis
  deployment frequency   2.1/month  medium  2 deployments, 1 failed attempt; 0 deploy days a week (median)
  lead time for changes  15h 6m     high    2 changes; p90 1d 2h
  change failure rate    50%        low     1 of 2 deployments failed
  recovery time          35m        elite   1 incident resolved

search in staging, 2024-01-01 00:00 to 2024-01-29 00:00 UTC (28 days), bands seed-2023

  metric                 value      band    basis
  deployment frequency   0/day      low     0 deployments, 0 failed attempts; 0 deploy days a week (median)
  lead time for changes  —          —       0 changes; p90 —
  change failure rate    —          —       0 of 0 deployments failed
  recovery time          —          —       0 incidents resolved
",
    );
}

#[test]
fn dora_explain_lists_the_items_of_each_metric() {
    let rendered = dora_text(true, false);
    let first = rendered.split("\nsearch in staging").next().unwrap().to_owned();
    check(
        first,
        "
checkout in production, 2024-01-01 00:00 to 2024-01-29 00:00 UTC (28 days), bands seed-2023

  metric                 value      band    basis
  deployment frequency   2.1/month  medium  2 deployments, 1 failed attempt; 0 deploy days a week (median)
  lead time for changes  15h 6m     high    2 changes; p90 1d 2h
  change failure rate    50%        low     1 of 2 deployments failed
  recovery time          35m        elite   1 incident resolved

  deployments, behind deployment frequency and change failure rate (2)
    id  key       revision  finished          failed
    #1  deploy-1  0001aaa   2024-01-02 12:00  rolled_back, incident INC-7
    #3  deploy-3  0003aaa   2024-01-04 12:00  no

  failed attempts, not counted as deployments (1)
    id  key       revision  finished
    #2  deploy-2  0002aaa   2024-01-03 12:00

  changes, behind lead time (2)
    sha      repository     committed         deployment  lead time
    1111111  acme/checkout  2024-01-02 07:48  #1          4h 12m
    3333333  acme/checkout  2024-01-03 10:00  #3          1d 2h

  incidents, behind recovery time (1)
    key    detected          resolved          recovery  deployment
    INC-7  2024-01-02 12:30  2024-01-02 13:05  35m       #1 (window)
",
    );
    assert!(rendered.ends_with(
        "
  deployments, behind deployment frequency and change failure rate (0)
    none

  failed attempts, not counted as deployments (0)
    none

  changes, behind lead time (0)
    none

  incidents, behind recovery time (0)
    none
"
    ));
}

#[test]
fn flow_shows_each_stage_and_the_shares() {
    check(
        flow_text(true),
        "
checkout in production, 2024-01-01 00:00 to 2024-01-29 00:00 UTC (28 days), 2 changes

  stage                               kind  median  samples
  commit → pipeline queued            wait  2m      1
  pipeline queued → started           wait  1m      1
  pipeline started → finished         work  8m      1
  pipeline finished → deploy started  wait  1d 1h   1
  deploy started → finished           work  5m      2

  flow efficiency 0.8%, waiting 99.2%

  changes (2)
    sha      deployment  runs  to queue  in queue  pipeline  to deploy  deploy
    1111111  #1          0     —         —         —         —          5m
    3333333  #3          1     2m        1m        8m        1d 1h      5m
",
    );
}

#[test]
fn colour_paints_bands_only_and_keeps_alignment() {
    let plain = dora_text(false, false);
    let painted = dora_text(false, true);
    assert!(!plain.contains('\x1b'));
    assert!(painted.contains("  \x1b[33mmedium\x1b[0m  2 deployments"));
    assert!(painted.contains("  \x1b[1;32melite\x1b[0m   1 incident resolved"));
    assert!(painted.contains("  \x1b[31mlow\x1b[0m     0 deployments"));
    // Without the escapes, the coloured rendering is the plain one.
    let stripped = painted
        .replace("\x1b[0m", "")
        .replace("\x1b[1;32m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[31m", "");
    assert_eq!(stripped, plain);
}
