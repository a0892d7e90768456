//! In-process evaluation costs on a 100-flag set: a static flag, a targeting rule with three
//! conditions, a three-way `fractional` split, a `sem_ver` gate, all 100 flags at once, and
//! loading the set. Run with `cargo bench -p mobius-flags`.

use std::hint::black_box;
use std::sync::LazyLock;

use mobius_flags::{Context, FlagSet, LoadOptions};

fn main() {
    divan::main();
}

/// 25 flags of each kind: static, three-condition targeting, three-way split, sem_ver.
fn document() -> String {
    let mut flags = Vec::new();
    for i in 0..25 {
        flags.push(format!(
            r#""static-{i}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "on"}}"#
        ));
        flags.push(format!(
            r#""targeting-{i}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "off",
              "targeting": {{"if": [{{"and": [
                {{"==": [{{"var": "country"}}, "NL"]}},
                {{"in": [{{"var": "plan"}}, ["pro", "enterprise"]]}},
                {{">=": [{{"var": "age"}}, 18]}}]}}, "on", "off"]}}}}"#
        ));
        flags.push(format!(
            r#""split-{i}": {{"state": "ENABLED", "variants": {{"a": "A", "b": "B", "c": "C"}}, "defaultVariant": "a",
              "targeting": {{"fractional": [["a", 34], ["b", 33], ["c", 33]]}}}}"#
        ));
        flags.push(format!(
            r#""semver-{i}": {{"state": "ENABLED", "variants": {{"new": "new", "old": "old"}}, "defaultVariant": "old",
              "targeting": {{"if": [{{"sem_ver": [{{"var": "appVersion"}}, ">=", "2.4.0"]}}, "new", "old"]}}}}"#
        ));
    }
    format!(r#"{{"metadata": {{"flagSetId": "bench"}}, "flags": {{{}}}}}"#, flags.join(",\n"))
}

static DOCUMENT: LazyLock<String> = LazyLock::new(document);
static SET: LazyLock<FlagSet> =
    LazyLock::new(|| FlagSet::from_json("bench.flagd.json", &DOCUMENT, &LoadOptions::default()).unwrap());
static CONTEXT: LazyLock<Context> = LazyLock::new(|| {
    Context::with_targeting_key("user-4711")
        .set("country", "NL")
        .set("plan", "pro")
        .set("age", 42)
        .set("appVersion", "2.5.1")
        .set("email", "someone@example.com")
});

#[divan::bench(sample_count = 1000, sample_size = 1000)]
fn static_flag() -> bool {
    SET.evaluate(black_box("static-7"), &CONTEXT).value.is_some()
}

#[divan::bench(sample_count = 1000, sample_size = 1000)]
fn targeting_three_conditions() -> bool {
    SET.evaluate(black_box("targeting-7"), &CONTEXT).value.is_some()
}

#[divan::bench(sample_count = 1000, sample_size = 1000)]
fn fractional_three_way() -> bool {
    SET.evaluate(black_box("split-7"), &CONTEXT).value.is_some()
}

#[divan::bench(sample_count = 1000, sample_size = 1000)]
fn sem_ver() -> bool {
    SET.evaluate(black_box("semver-7"), &CONTEXT).value.is_some()
}

#[divan::bench(sample_count = 1000, sample_size = 20)]
fn all_100_flags() -> usize {
    SET.evaluate_all(black_box(&CONTEXT)).len()
}

#[divan::bench(sample_count = 200, sample_size = 5)]
fn load_100_flags() -> usize {
    FlagSet::from_json("bench.flagd.json", black_box(&DOCUMENT), &LoadOptions::default()).unwrap().len()
}
