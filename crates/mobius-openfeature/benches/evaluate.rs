//! Evaluations per second through the provider's trait (an async call, polled once: it never
//! waits) against `mobius-flags` directly, on the same set and the same subject: what the
//! OpenFeature layer costs — converting the context, typing the value, building the details.
//!
//! `cargo bench -p mobius-openfeature`

use std::future::Future;
use std::pin::pin;
use std::task::{Context as Task, Poll, Waker};

use mobius_flags::{Context, FlagSet, LoadOptions};
use mobius_openfeature::MobiusProvider;
use open_feature::EvaluationContext;
use open_feature::provider::FeatureProvider;

const SET: &str = r#"{
  "flags": {
    "static": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a"},
    "targeting": {
      "state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "b",
      "targeting": {"if": [{"and": [
        {"ends_with": [{"var": "email"}, "@example.com"]},
        {"in": [{"var": "plan"}, ["pro", "enterprise"]]},
        {">=": [{"var": "age"}, 18]}
      ]}, "a", "b"]}
    },
    "split": {
      "state": "ENABLED", "variants": {"a": "a", "b": "b", "c": "c"}, "defaultVariant": "a",
      "targeting": {"fractional": [["a", 34], ["b", 33], ["c", 33]]}
    }
  }
}"#;

const FLAGS: [&str; 3] = ["static", "targeting", "split"];

fn main() {
    divan::main();
}

fn set() -> FlagSet {
    FlagSet::from_json("bench.flagd.json", SET, &LoadOptions::default()).expect("loads")
}

/// The value of a future that never waits.
fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).as_mut().poll(&mut Task::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an evaluation waited"),
    }
}

#[divan::bench(args = FLAGS)]
fn provider(bencher: divan::Bencher, flag: &str) {
    let provider = MobiusProvider::builder("http://127.0.0.1:9", "bench", "bench").bootstrap(set()).build().unwrap();
    let context = EvaluationContext::default()
        .with_targeting_key("user-42")
        .with_custom_field("email", "ana@example.com")
        .with_custom_field("plan", "pro")
        .with_custom_field("age", 30);
    bencher
        .bench_local(|| now(provider.resolve_string_value(divan::black_box(flag), &context)).expect("resolves").value);
}

#[divan::bench(args = FLAGS)]
fn direct(bencher: divan::Bencher, flag: &str) {
    let set = set();
    let context =
        Context::with_targeting_key("user-42").set("email", "ana@example.com").set("plan", "pro").set("age", 30);
    bencher.bench_local(|| set.string(divan::black_box(flag), &context, "").value);
}
