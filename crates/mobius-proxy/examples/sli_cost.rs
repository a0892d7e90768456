//! What recording SLIs costs the proxy per request, measured directly: the calls
//! `Proxy::handle` makes for every request, in a tight loop, with nothing else around them.
//!
//! `cargo run --release -p mobius-proxy --example sli_cost [-- --iterations N --rounds R]`
//!
//! Per request the proxy does, in `handle` (`src/proxy.rs`):
//!
//! - `let started = Instant::now()` (only used for the latency SLI);
//! - `backend.counters.request()` once the version is chosen;
//! - `started.elapsed()` → ms, then `backend.counters.response(status, latency_ms)` when the
//!   upstream's response head (or the proxy's own 502) is there.
//!
//! Cases, each timed `--rounds` times (median, min and max reported):
//!
//! - `loop only`: the same loop with the inputs but no calls (what the loop itself costs);
//! - `counters`: `request()` + `response(status, latency)`, one thread;
//! - `counters + clock`: the same plus `Instant::now()` and `elapsed()`, i.e. everything the
//!   proxy does for SLIs per request;
//! - `counters, cold caches`: one thread cycling over 8,192 versions' counters (67 MB, more
//!   than the caches hold), so every request finds its counters' cache lines cold;
//! - `counters, 2 threads, one version`: two threads recording into the same
//!   `VersionCounters` at once (every atomic contended: the worst case for `--threads 2`,
//!   where both event loops route to the same version);
//! - `counters, 2 threads, own versions`: two threads, each on its own counters (the control
//!   for the contended case).
//!
//! Inputs cycle through 1,024 precomputed (status, latency) pairs: 99.9% `200`, 0.1% `503`;
//! latencies spread over the histogram's buckets (mostly under 1 ms, as in the proxy
//! benchmark), so the bucket search is not always the first comparison.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use mobius_proxy::sli::VersionCounters;

const INPUTS: usize = 1024;

fn inputs() -> Vec<(u16, f64)> {
    // A small deterministic generator (xorshift), so every run records the same sequence.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..INPUTS)
        .map(|i| {
            let status = if i % 1000 == 999 { 503 } else { 200 };
            let r = (next() % 10_000) as f64 / 10_000.0;
            // 80% in 0.3–1 ms, 15% in 1–5 ms, 4% in 5–50 ms, 1% in 50–1,000 ms.
            let latency = match next() % 100 {
                0..=79 => 0.3 + 0.7 * r,
                80..=94 => 1.0 + 4.0 * r,
                95..=98 => 5.0 + 45.0 * r,
                _ => 50.0 + 950.0 * r,
            };
            (status, latency)
        })
        .collect()
}

fn loop_only(inputs: &[(u16, f64)], n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let (status, latency) = inputs[i as usize % INPUTS];
        black_box((black_box(status), black_box(latency)));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn counters(c: &VersionCounters, inputs: &[(u16, f64)], n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let (status, latency) = inputs[i as usize % INPUTS];
        c.request();
        c.response(black_box(status), black_box(latency));
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn counters_and_clock(c: &VersionCounters, inputs: &[(u16, f64)], n: u64) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let started = Instant::now();
        let (status, _) = inputs[i as usize % INPUTS];
        c.request();
        let latency_ms = black_box(started).elapsed().as_secs_f64() * 1000.0;
        c.response(black_box(status), latency_ms);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Like [`counters`], but each request records into the next of `many` counters (far more
/// memory than the caches hold), so every request finds its counters' lines cold: the worst
/// case for a proxy that does a lot of other work between two requests of one version.
fn counters_cold(many: &[VersionCounters], inputs: &[(u16, f64)], n: u64) -> f64 {
    // A stride coprime with the count, so consecutive requests are far apart in memory.
    let stride = (2_654_435_761usize % many.len()) | 1;
    let mut k = 0usize;
    let start = Instant::now();
    for i in 0..n {
        let (status, latency) = inputs[i as usize % INPUTS];
        let c = &many[k];
        c.request();
        c.response(black_box(status), black_box(latency));
        k = (k + stride) % many.len();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Two threads, each recording `n` requests into its counters; ns per request per thread
/// (each thread's own elapsed time ÷ n, averaged over the two).
fn two_threads(shared: bool, inputs: &Arc<Vec<(u16, f64)>>, n: u64) -> f64 {
    let one = Arc::new(VersionCounters::default());
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|t| {
            let c = if shared { one.clone() } else { Arc::new(VersionCounters::default()) };
            let (inputs, barrier) = (inputs.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let ns = counters(&c, &inputs[t * 7..], n);
                black_box(c.snapshot().requests);
                ns
            })
        })
        .collect();
    let per_thread: Vec<f64> = handles.into_iter().map(|h| h.join().expect("bench thread")).collect();
    per_thread.iter().sum::<f64>() / per_thread.len() as f64
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut iterations, mut rounds) = (20_000_000u64, 7usize);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--iterations" => iterations = value.parse()?,
            "--rounds" => rounds = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let rounds = rounds.max(1);
    let inputs = Arc::new(inputs());
    // Padded so the two-thread cases can start at different offsets without going out of range.
    let mut padded = (*inputs).clone();
    padded.extend_from_slice(&inputs[..16]);
    let padded = Arc::new(padded);

    type Case = (&'static str, Box<dyn Fn() -> f64>);
    let c1 = Arc::new(VersionCounters::default());
    let c2 = Arc::new(VersionCounters::default());
    let cases: Vec<Case> = vec![
        ("loop only (no recording)", {
            let i = inputs.clone();
            Box::new(move || loop_only(&i, iterations))
        }),
        ("counters: request() + response(), 1 thread", {
            let (i, c) = (inputs.clone(), c1.clone());
            Box::new(move || counters(&c, &i, iterations))
        }),
        ("counters + clock (all SLI work per request), 1 thread", {
            let (i, c) = (inputs.clone(), c2.clone());
            Box::new(move || counters_and_clock(&c, &i, iterations))
        }),
        ("counters, cold caches (8,192 versions cycled, 67 MB), 1 thread", {
            let i = inputs.clone();
            let many: Vec<VersionCounters> = (0..8192).map(|_| VersionCounters::default()).collect();
            let n = iterations / 4;
            Box::new(move || counters_cold(&many, &i, n))
        }),
        ("counters, 2 threads, one version (contended)", {
            let i = padded.clone();
            Box::new(move || two_threads(true, &i, iterations))
        }),
        ("counters, 2 threads, own versions (control)", {
            let i = padded.clone();
            Box::new(move || two_threads(false, &i, iterations))
        }),
    ];

    // Warm up once, then interleave the rounds so background load hits every case alike.
    for (_, run) in &cases {
        black_box(run());
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (k, (_, run)) in cases.iter().enumerate() {
            samples[k].push(run());
        }
    }

    println!("SLI recording cost: {iterations} requests per case and round, {rounds} rounds (interleaved)\n");
    println!("| case | ns per request, median | min | max |");
    println!("|---|---|---|---|");
    let mut medians = Vec::new();
    for ((name, _), s) in cases.iter().zip(samples) {
        let (median, min, max) = stats(s);
        medians.push(median);
        println!("| {name} | {median:.1} | {min:.1} | {max:.1} |");
    }

    // The proxy's per-request time from bench/RESULTS.md (bench/proxy/run.sh, 2026-11-26):
    // (c) 90/10, median of 5 rounds: 46,653 rps with 1 proxy thread, 46,831 with 2.
    // One thread's wall time per request bounds its CPU time per request from above.
    let per_request_ns_1 = 1e9 / 46_653.0;
    let per_request_ns_2 = 2.0 * 1e9 / 46_831.0;
    println!();
    println!(
        "Against the proxy's time per request (bench/RESULTS.md: 46,653 rps on 1 thread = {:.1} µs; \
         46,831 rps on 2 threads = {:.1} µs per thread):\n",
        per_request_ns_1 / 1000.0,
        per_request_ns_2 / 1000.0
    );
    println!("| case | ns | share of 1-thread request time | share of 2-thread request time |");
    println!("|---|---|---|---|");
    let loop_ns = medians[0];
    for (k, (name, _)) in cases.iter().enumerate().skip(1) {
        let net = (medians[k] - loop_ns).max(0.0);
        println!(
            "| {name}, minus the loop | {net:.1} | {:.3}% | {:.3}% |",
            100.0 * net / per_request_ns_1,
            100.0 * net / per_request_ns_2
        );
    }
    Ok(())
}
