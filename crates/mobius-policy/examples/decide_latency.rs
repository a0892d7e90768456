//! Percentiles of a decision's latency: 10,000 decisions with the ten-rule bench policy
//! (`benches/policies/gate.rego`), half on an input every rule passes, half on one that trips
//! them all; then, for comparison, decisions made by loading the policies afresh each time
//! instead of cloning the prepared engine. Run with
//! `cargo run --release -p mobius-policy --example decide_latency [DECISIONS]`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mobius_policy::{Input, Policies};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let total: Duration = times.iter().sum();
    let over_1ms = times.iter().filter(|t| t.as_micros() > 1000).count();
    println!(
        "{what}: n={} p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms, {:.2} % over 1 ms \
         ({:.0} decisions/s on one thread)",
        times.len(),
        percentile(&times, 50.0).as_secs_f64() * 1e3,
        percentile(&times, 90.0).as_secs_f64() * 1e3,
        percentile(&times, 99.0).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        100.0 * over_1ms as f64 / times.len() as f64,
        times.len() as f64 / total.as_secs_f64(),
    );
}

fn main() {
    let decisions: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let benches = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
    let dir = benches.join("policies");
    // The bench's two inputs, so both measure the same thing.
    let input = |name: &str| {
        Input::from_json(&std::fs::read_to_string(benches.join(format!("inputs/{name}.json"))).unwrap()).unwrap()
    };
    let inputs = [input("allowed"), input("denied")];

    let load = Instant::now();
    let policies = Policies::load(&dir).unwrap();
    println!("load and prepare {} rules: {:.3} ms", policies.rules().count(), load.elapsed().as_secs_f64() * 1e3);
    let (allowed, denied) = (policies.decide(&inputs[0]), policies.decide(&inputs[1]));
    assert!(allowed.allow && allowed.warn.is_empty(), "{allowed:?}");
    assert_eq!((denied.deny.len(), denied.warn.len()), (8, 2), "{denied:?}");

    // Warm up, then measure.
    for input in inputs.iter().cycle().take(200) {
        std::hint::black_box(policies.decide(input));
    }
    let mut times = Vec::with_capacity(decisions);
    for input in inputs.iter().cycle().take(decisions) {
        let t = Instant::now();
        std::hint::black_box(policies.decide(input));
        times.push(t.elapsed());
    }
    report("decide (prepared engine, cloned per decision)", times);

    let fresh = (decisions / 50).max(20);
    let mut times = Vec::with_capacity(fresh);
    for input in inputs.iter().cycle().take(fresh) {
        let t = Instant::now();
        std::hint::black_box(Policies::load(&dir).unwrap().decide(input));
        times.push(t.elapsed());
    }
    report("load + decide (no prepared engine)", times);
}
