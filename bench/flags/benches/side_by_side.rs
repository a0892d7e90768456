//! Mobius's in-process evaluator against unleash-yggdrasil, side by side in one run, on one
//! thread. First checks on 10,000 contexts that the engines agree (pairs 1–2 exactly, pair 3
//! within 2 points of its weights), then measures. Every benchmark iteration evaluates one flag
//! for each of `POOL` prebuilt contexts (about half of the mixed pool matches the targeting
//! rule), so divan's times are per `POOL` evaluations and its throughput rows are evaluations
//! per second. `bench/flags/run.sh` runs it and `summarize.py` turns the output into ns/eval,
//! evals/s and ratios.

use std::hint::black_box;
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use mobius_flags::{Context, FlagSet};
use mobius_flags_bench::{check_agreement, mobius_set, subjects, yggdrasil_engine};
use unleash_types::client_features::Context as UnleashContext;
use unleash_yggdrasil::EngineState;
use unleash_yggdrasil::state::EnrichedContext;

/// Contexts evaluated per iteration.
const POOL: usize = 256;
/// Contexts per iteration of the all-flags benchmarks (each is 75 evaluations).
const ALL_POOL: usize = 16;

static SET: LazyLock<FlagSet> = LazyLock::new(mobius_set);
static ENGINE: LazyLock<EngineState> = LazyLock::new(yggdrasil_engine);

struct Pool {
    mobius: Vec<Context>,
    unleash: Vec<UnleashContext>,
}

fn pool(n: usize, seed: u64, all_match: bool) -> Pool {
    let subjects = subjects(n, seed, all_match);
    Pool {
        mobius: subjects.iter().map(|s| s.mobius()).collect(),
        unleash: subjects.iter().map(|s| s.unleash()).collect(),
    }
}

static MIXED: LazyLock<Pool> = LazyLock::new(|| pool(POOL, 1, false));
static ALL_MATCH: LazyLock<Pool> = LazyLock::new(|| pool(POOL, 2, true));
static ALL_FLAGS: LazyLock<Pool> = LazyLock::new(|| pool(ALL_POOL, 3, false));

fn main() {
    let agreement = check_agreement(&SET, &ENGINE, 10_000);
    println!("{agreement}");
    LazyLock::force(&MIXED);
    LazyLock::force(&ALL_MATCH);
    LazyLock::force(&ALL_FLAGS);
    divan::main();
}

fn mobius_evaluate(bencher: Bencher, key: &str, pool: &Pool) {
    let (set, contexts) = (&*SET, &pool.mobius);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(set.evaluate(black_box(key), context));
        }
    });
}

fn mobius_boolean(bencher: Bencher, key: &str, pool: &Pool) {
    let (set, contexts) = (&*SET, &pool.mobius);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(set.boolean(black_box(key), context, false));
        }
    });
}

fn yggdrasil_get_variant(bencher: Bencher, key: &str, pool: &Pool) {
    let (engine, contexts) = (&*ENGINE, &pool.unleash);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(engine.get_variant(black_box(key), context, &None));
        }
    });
}

fn yggdrasil_check_variant(bencher: Bencher, key: &str, pool: &Pool) {
    let (engine, contexts) = (&*ENGINE, &pool.unleash);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(engine.check_variant(&EnrichedContext::from(context, black_box(key), None)));
        }
    });
}

fn yggdrasil_is_enabled(bencher: Bencher, key: &str, pool: &Pool) {
    let (engine, contexts) = (&*ENGINE, &pool.unleash);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(engine.is_enabled(black_box(key), context, &None));
        }
    });
}

fn yggdrasil_check_enabled(bencher: Bencher, key: &str, pool: &Pool) {
    let (engine, contexts) = (&*ENGINE, &pool.unleash);
    bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
        for context in contexts {
            black_box(engine.check_enabled(&EnrichedContext::from(context, black_box(key), None)));
        }
    });
}

/// The six entry points on one boolean flag: the variant answer (mobius `evaluate`,
/// yggdrasil `get_variant` / `check_variant`) and the boolean answer (mobius `boolean`,
/// yggdrasil `is_enabled` / `check_enabled`).
macro_rules! boolean_pair {
    ($module:ident, $key:literal, $pool:ident) => {
        mod $module {
            use super::*;

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn mobius_evaluate(bencher: Bencher) {
                super::mobius_evaluate(bencher, $key, &$pool);
            }

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn mobius_boolean(bencher: Bencher) {
                super::mobius_boolean(bencher, $key, &$pool);
            }

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn yggdrasil_get_variant(bencher: Bencher) {
                super::yggdrasil_get_variant(bencher, $key, &$pool);
            }

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn yggdrasil_check_variant(bencher: Bencher) {
                super::yggdrasil_check_variant(bencher, $key, &$pool);
            }

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn yggdrasil_is_enabled(bencher: Bencher) {
                super::yggdrasil_is_enabled(bencher, $key, &$pool);
            }

            #[divan::bench(sample_count = 1000, sample_size = 4)]
            fn yggdrasil_check_enabled(bencher: Bencher) {
                super::yggdrasil_check_enabled(bencher, $key, &$pool);
            }
        }
    };
}

boolean_pair!(p1_static, "static-7", MIXED);
boolean_pair!(p2_targeting, "targeting-7", MIXED);
boolean_pair!(p2_targeting_all_match, "targeting-7", ALL_MATCH);

mod p3_split {
    use super::*;

    #[divan::bench(sample_count = 1000, sample_size = 4)]
    fn mobius_evaluate(bencher: Bencher) {
        super::mobius_evaluate(bencher, "split-7", &MIXED);
    }

    #[divan::bench(sample_count = 1000, sample_size = 4)]
    fn yggdrasil_get_variant(bencher: Bencher) {
        super::yggdrasil_get_variant(bencher, "split-7", &MIXED);
    }

    #[divan::bench(sample_count = 1000, sample_size = 4)]
    fn yggdrasil_check_variant(bencher: Bencher) {
        super::yggdrasil_check_variant(bencher, "split-7", &MIXED);
    }
}

/// Every flag of the set (75) for one context: mobius `evaluate_all` (a `Vec` of evaluations)
/// against yggdrasil `resolve_all` (a `HashMap` of resolved toggles, each with its variant).
mod p4_all_flags {
    use super::*;

    #[divan::bench(sample_count = 200, sample_size = 1)]
    fn mobius_evaluate_all(bencher: Bencher) {
        let (set, contexts) = (&*SET, &ALL_FLAGS.mobius);
        bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
            for context in contexts {
                black_box(set.evaluate_all(context));
            }
        });
    }

    #[divan::bench(sample_count = 200, sample_size = 1)]
    fn yggdrasil_resolve_all(bencher: Bencher) {
        let (engine, contexts) = (&*ENGINE, &ALL_FLAGS.unleash);
        bencher.counter(ItemsCount::new(contexts.len())).bench(|| {
            for context in contexts {
                black_box(engine.resolve_all(context, &None));
            }
        });
    }
}
