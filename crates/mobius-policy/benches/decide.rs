//! The cost of a decision: ten gate rules and an exception (`benches/policies/gate.rego`) on an
//! input that passes them all and on one that trips every rule, and of loading the policies.
//! Run with `cargo bench -p mobius-policy`; `examples/decide_latency.rs` gives percentiles over
//! 10,000 decisions.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::LazyLock;

use mobius_policy::{Input, Policies};

fn main() {
    divan::main();
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/policies")
}

static POLICIES: LazyLock<Policies> = LazyLock::new(|| Policies::load(dir()).unwrap());

/// `benches/inputs/{name}.json`: `allowed` passes every rule, `denied` trips every one.
fn input(name: &str) -> Input {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("benches/inputs/{name}.json"));
    Input::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

static ALLOWED_INPUT: LazyLock<Input> = LazyLock::new(|| input("allowed"));
static DENIED_INPUT: LazyLock<Input> = LazyLock::new(|| input("denied"));

#[divan::bench(sample_count = 200, sample_size = 20)]
fn decide_allowed() -> bool {
    POLICIES.decide(black_box(&ALLOWED_INPUT)).allow
}

#[divan::bench(sample_count = 200, sample_size = 20)]
fn decide_every_rule_fires() -> usize {
    POLICIES.decide(black_box(&DENIED_INPUT)).deny.len()
}

#[divan::bench(sample_count = 50, sample_size = 2)]
fn load_and_prepare() -> usize {
    Policies::load(black_box(dir())).unwrap().rules().count()
}
