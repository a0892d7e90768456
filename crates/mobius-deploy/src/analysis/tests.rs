//! Tests of `analysis`.

use super::*;

fn sample(requests: u64, errors: u64, latencies_ms: &[f64]) -> Sample {
    Sample { requests, errors, latencies_ms: latencies_ms.to_vec(), ..Default::default() }
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

fn check(spec: &AnalysisSpec, canary: &Sample, stable: Option<&Sample>, expected: Verdict) {
    let m = measure(spec, canary, stable);
    assert_eq!(m.verdict, expected, "{m:#?}");
}

#[test]
fn spec_defaults_and_unknown_fields() {
    let spec: AnalysisSpec = serde_json::from_str(r#"{"max_error_rate": 0.01}"#).unwrap();
    assert_eq!(spec, AnalysisSpec { max_error_rate: Some(0.01), ..AnalysisSpec::default() });
    assert_eq!((spec.interval_secs, spec.count, spec.failure_limit), (10.0, 3, 0));
    assert_eq!((spec.min_requests, spec.max_inconclusive), (20, 3));
    assert!(serde_json::from_str::<AnalysisSpec>(r#"{"max_error_rte": 0.01}"#).is_err());
}

#[test]
fn percentile_interpolates() {
    assert_eq!(percentile(&[], 0.5), None);
    assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
    let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
    // numpy.percentile(range(1, 101), 99) == 99.01
    assert!(close(percentile(&hundred, 0.99).unwrap(), 99.01, 1e-9));
}

#[test]
fn thresholds() {
    let errors = AnalysisSpec { max_error_rate: Some(0.01), ..Default::default() };
    check(&errors, &sample(1000, 10, &[]), None, Verdict::Pass);
    check(&errors, &sample(1000, 11, &[]), None, Verdict::Fail);

    let success = AnalysisSpec { min_success_rate: Some(0.95), ..Default::default() };
    check(&success, &sample(100, 5, &[]), None, Verdict::Pass);
    check(&success, &sample(100, 6, &[]), None, Verdict::Fail);

    let latencies: Vec<f64> = (1..=100).map(f64::from).collect();
    let p50 = AnalysisSpec { max_p50_ms: Some(50.5), ..Default::default() };
    check(&p50, &sample(100, 0, &latencies), None, Verdict::Pass);
    let p50 = AnalysisSpec { max_p50_ms: Some(50.0), ..Default::default() };
    check(&p50, &sample(100, 0, &latencies), None, Verdict::Fail);

    let p99 = AnalysisSpec { max_p99_ms: Some(100.0), ..Default::default() };
    check(&p99, &sample(100, 0, &latencies), None, Verdict::Pass);
    let p99 = AnalysisSpec { max_p99_ms: Some(99.0), ..Default::default() };
    check(&p99, &sample(100, 0, &latencies), None, Verdict::Fail);
    // A histogram's p99 wins over the raw latencies.
    let from_histogram = Sample { p99_ms: Some(80.0), ..sample(100, 0, &latencies) };
    check(&p99, &from_histogram, None, Verdict::Pass);
    // Enough requests but no latency data: the check cannot be evaluated.
    check(&p99, &sample(100, 0, &[]), None, Verdict::Inconclusive);

    // A failure outweighs a check without data.
    let both = AnalysisSpec { max_error_rate: Some(0.01), ..p99.clone() };
    check(&both, &sample(100, 50, &[]), None, Verdict::Fail);

    let m = measure(&errors, &sample(1000, 11, &[]), None);
    let c = m.checks.iter().find(|c| c.name == "error_rate").unwrap();
    assert_eq!((c.value, c.threshold, c.passed), (Some(0.011), 0.01, false));
}

#[test]
fn too_few_requests_is_inconclusive_never_a_pass() {
    let spec = AnalysisSpec { max_error_rate: Some(0.01), ..Default::default() };
    check(&spec, &sample(0, 0, &[]), None, Verdict::Inconclusive);
    check(&spec, &sample(19, 0, &[]), None, Verdict::Inconclusive);
    check(&spec, &sample(20, 0, &[]), None, Verdict::Pass);
    // Even with no thresholds at all, and with a minimum of zero, no data is no pass.
    let bare = AnalysisSpec { min_requests: 0, ..Default::default() };
    check(&bare, &sample(0, 0, &[]), None, Verdict::Inconclusive);
    // Errors in a tiny sample do not fail it either: too little to judge.
    let m = measure(&spec, &sample(5, 5, &[]), None);
    assert_eq!(m.verdict, Verdict::Inconclusive);
    assert_eq!(m.checks.len(), 1);
    assert_eq!(m.checks[0].name, "min_requests");
    assert_eq!((m.checks[0].value, m.checks[0].passed), (Some(5.0), false));
}

#[test]
fn error_rate_is_request_weighted() {
    assert_eq!(sample(200, 3, &[]).error_rate(), Some(0.015));
    assert_eq!(sample(0, 0, &[]).error_rate(), None);
}

fn run(spec: &AnalysisSpec, verdicts: &[Verdict]) -> Vec<Outcome> {
    let mut state = AnalysisState::default();
    let outcomes = verdicts
        .iter()
        .map(|&verdict| state.record(spec, Measurement { verdict, checks: vec![], mann_whitney: None }))
        .collect();
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(serde_json::from_str::<AnalysisState>(&json).unwrap(), state);
    outcomes
}

#[test]
fn failure_limit_count_and_inconclusive() {
    use Outcome::{Failed, Inconclusive as I, Running, Succeeded};
    use Verdict::{Fail, Inconclusive, Pass};
    let spec = AnalysisSpec::default(); // count 3, failure_limit 0, max_inconclusive 3
    assert_eq!(run(&spec, &[Pass, Pass, Pass]), [Running, Running, Succeeded]);
    assert_eq!(run(&spec, &[Pass, Fail]), [Running, Failed]);
    // Terminal outcomes stick.
    assert_eq!(run(&spec, &[Fail, Pass, Pass, Pass]), [Failed; 4]);

    let tolerant = AnalysisSpec { failure_limit: 1, ..Default::default() };
    assert_eq!(run(&tolerant, &[Fail, Pass, Pass, Pass]), [Running, Running, Running, Succeeded]);
    assert_eq!(run(&tolerant, &[Fail, Pass, Fail]), [Running, Running, Failed]);

    let inconclusive = [Inconclusive, Inconclusive, Inconclusive, Inconclusive];
    assert_eq!(run(&spec, &inconclusive), [Running, Running, Running, I]);
    assert_eq!(
        run(&spec, &[Inconclusive, Pass, Inconclusive, Pass, Pass]),
        [Running, Running, Running, Running, Succeeded]
    );
}

// Expected values from scipy 1.17.1:
// `mannwhitneyu(a, b, alternative=..., method="asymptotic", use_continuity=True)`.
fn check_mw(a: &[f64], b: &[f64], u: f64, p_two_sided: f64, p_greater: f64) {
    let r = mann_whitney_u(a, b);
    assert!(close(r.u, u, 1e-9), "U {} != {u}", r.u);
    assert!(close(r.p_two_sided, p_two_sided, 1e-6), "p {} != {p_two_sided}", r.p_two_sided);
    assert!(close(r.p_greater, p_greater, 1e-6), "p> {} != {p_greater}", r.p_greater);
    assert!(close(r.effect, u / (a.len() * b.len()) as f64, 1e-12));
    // Swapping the samples mirrors U and keeps the two-sided p.
    let s = mann_whitney_u(b, a);
    assert!(close(s.u, (a.len() * b.len()) as f64 - u, 1e-9));
    assert!(close(s.p_two_sided, p_two_sided, 1e-6));
    assert!(close(s.z, -r.z, 1e-12));
}

#[test]
fn mann_whitney_against_scipy() {
    let canary = [12.0, 15.0, 11.0, 18.0, 14.0, 16.0, 13.0, 17.0, 19.0, 20.0];
    let stable = [10.0, 9.0, 11.0, 12.0, 8.0, 10.0, 13.0, 9.5, 11.5, 10.5];
    check_mw(&canary, &stable, 94.5, 0.00086503425572, 0.00043251712786);

    let a = [5.1, 4.9, 6.2, 5.7, 6.0, 5.5, 5.3];
    let b = [4.8, 5.0, 5.2, 4.7, 5.1, 4.9, 4.6, 5.3, 5.0];
    check_mw(&a, &b, 54.5, 0.016908633018, 0.00845431650901);
}

#[test]
fn mann_whitney_ties() {
    // Heavy ties: four tie groups, the variance's tie correction matters.
    let a = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 4.0];
    let b = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 4.0];
    check_mw(&a, &b, 47.5, 0.875826865979, 0.592659789293);

    // Every value tied: no evidence of a difference.
    let r = mann_whitney_u(&[5.0; 10], &[5.0; 12]);
    assert_eq!((r.u, r.z, r.p_two_sided, r.effect, r.score), (60.0, 0.0, 1.0, 0.5, 100.0));
}

#[test]
fn mann_whitney_by_hand() {
    // a = {1, 2, 4}, b = {3, 5, 6}: pooled ranks of a are 1, 2, 4, so R = 7 and
    // U = 7 - 3·4/2 = 1 — the single pair (4, 3) where a exceeds b.
    // μ = 4.5, σ² = 9/12 · 7 = 5.25, z = -(3.5 - 0.5)/√5.25 = -1.3093.
    let r = mann_whitney_u(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0]);
    assert_eq!(r.u, 1.0);
    assert!(close(r.z, -3.0 / 5.25f64.sqrt(), 1e-12));
    // 2·(1 - Φ(1.3093)) = 0.19043 (standard normal table).
    assert!(close(r.p_two_sided, 0.190_43, 1e-4), "{}", r.p_two_sided);
    // Ties take the average rank: a = {1, 2}, b = {2, 3} ranks 1, 2.5 | 2.5, 4;
    // U = 3.5 - 3 = 0.5 (the tied pair counts one half).
    assert_eq!(mann_whitney_u(&[1.0, 2.0], &[2.0, 3.0]).u, 0.5);
    // Empty sides compare as no difference.
    assert_eq!(mann_whitney_u(&[], &[1.0]).p_two_sided, 1.0);
}

#[test]
fn latency_comparison() {
    let spec = AnalysisSpec { compare_latency: true, ..Default::default() };
    let stable: Vec<f64> = (0..40).map(|i| 10.0 + (i % 10) as f64 * 0.5).collect();
    let slower: Vec<f64> = stable.iter().map(|v| v * 1.5).collect();
    let barely: Vec<f64> = stable.iter().map(|v| v * 1.02).collect();

    let m = measure(&spec, &sample(40, 0, &slower), Some(&sample(40, 0, &stable)));
    assert_eq!(m.verdict, Verdict::Fail);
    let mw = m.mann_whitney.unwrap();
    assert!(mw.canary_slower() && mw.score < 100.0 && mw.effect > 0.9, "{mw:?}");

    // Faster canary: significant, but not slower.
    let m = measure(&spec, &sample(40, 0, &stable), Some(&sample(40, 0, &slower)));
    assert_eq!(m.verdict, Verdict::Pass);
    assert_eq!(m.mann_whitney.unwrap().score, 100.0);

    // 2% slower on medians: may be significant, but below the 10% that matters.
    let m = measure(&spec, &sample(40, 0, &barely), Some(&sample(40, 0, &stable)));
    assert_eq!(m.verdict, Verdict::Pass);

    // Nothing to compare with: inconclusive, not a pass.
    check(&spec, &sample(40, 0, &stable), None, Verdict::Inconclusive);
    check(&spec, &sample(40, 0, &stable), Some(&sample(40, 0, &[1.0; 3])), Verdict::Inconclusive);
}

#[test]
fn erfc_is_accurate() {
    // Reference values: erfc(0) = 1, erfc(1) = 0.157299207050285, erfc(-1) = 1.842700792949715,
    // erfc(3) = 2.209049699858544e-05.
    for (x, expected) in
        [(0.0, 1.0), (1.0, 0.157_299_207_050_285), (-1.0, 1.842_700_792_949_715), (3.0, 2.209_049_699_858_544e-5)]
    {
        assert!(((erfc(x) - expected) / expected).abs() < 1.2e-7, "erfc({x})");
    }
}
