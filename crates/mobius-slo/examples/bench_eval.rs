//! Benchmark: evaluate 1,000 SLOs over 30 days of buckets — the budget over each SLO's window
//! and all four multi-window burn-rate rules — and measure the memory of that history.
//! Run by `bench/slo/run.sh` (release build); see `bench/README.md`.
//!
//! Knobs (environment): `SLOS` (1000), `DAYS` of history (30), `ROUNDS` of evaluation (30),
//! `SEED` (42). Deterministic: same knobs, same data.

use std::hint::black_box;
use std::time::Instant;

use mobius_slo::alerts::{self, Severity};
use mobius_slo::budget::{Budget, Objective, recovers_at};
use mobius_slo::series::{Counts, HOUR_S, MINUTE_S, Series};

const DAY_S: i64 = 24 * HOUR_S;
/// 2026-11-26T00:00:00Z: the history ends here.
const END: i64 = 1_795_651_200;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: enough for traffic shapes, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Resident memory of this process, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        })
        .map_or(0, |kb| kb * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let slos = knob("SLOS", 1000) as usize;
    let days = knob("DAYS", 30) as i64;
    let rounds = knob("ROUNDS", 30) as usize;
    let mut rng = Rng(knob("SEED", 42).max(1));

    // Each SLO its own series and objective: a mix of 99.9/99.5/99/99.95 over 30 or 28 days,
    // traffic of 5 to 5,000 requests a minute with a daily cycle, a background error ratio
    // and a few incidents (some of which exhaust the budget or are still burning at the end).
    let objectives = [99.9, 99.5, 99.0, 99.95];
    let rss_before = rss_bytes();
    let fill = Instant::now();
    let mut fleet: Vec<(Series, Objective)> = Vec::with_capacity(slos);
    let mut samples = 0u64;
    for i in 0..slos {
        let objective =
            Objective::new(objectives[i % objectives.len()], if i % 5 == 4 { 28 * DAY_S } else { 30 * DAY_S });
        let base = 5 + rng.below(5000);
        let background_per_million = rng.below(800);
        let incidents: Vec<(i64, i64, u64)> = (0..rng.below(4))
            .map(|_| {
                let start = rng.below((days * 24 * 60) as u64) as i64;
                (start, start + 5 + rng.below(240) as i64, 1 + rng.below(60))
            })
            .collect();
        let mut series = Series::default();
        let start = END - days * DAY_S;
        for m in 0..days * 24 * 60 {
            let minute_of_day = m % (24 * 60);
            // Busier by day than by night.
            let shape = if (8 * 60..20 * 60).contains(&minute_of_day) { 3 } else { 1 };
            let total = base * shape / 2 + rng.below(base / 10 + 1);
            let mut bad = (total * background_per_million + rng.below(1_000_000)) / 1_000_000;
            for &(from, to, percent) in &incidents {
                if (from..to).contains(&m) {
                    bad = bad.max(total * percent / 100);
                }
            }
            series.add(start + m * MINUTE_S + 17, Counts::new(total, bad));
            samples += 1;
        }
        series.compact(END);
        fleet.push((series, objective));
    }
    let fill_s = fill.elapsed().as_secs_f64();
    let rss_after = rss_bytes();

    // Evaluate every SLO at END, ROUNDS times.
    let mut times_ms = Vec::with_capacity(rounds);
    let (mut paging, mut ticketing, mut exhausted) = (0, 0, 0);
    for round in 0..rounds {
        let t = Instant::now();
        let (mut p, mut tk, mut ex) = (0, 0, 0);
        for (series, objective) in &fleet {
            let budget = Budget::compute(series, *objective, END);
            let states = alerts::evaluate(series, *objective, END);
            p += usize::from(alerts::firing(&states, Severity::Page));
            tk += usize::from(alerts::firing(&states, Severity::Ticket));
            if budget.exhausted() {
                ex += 1;
                black_box(recovers_at(series, *objective, END));
            }
            black_box((&budget, &states));
        }
        times_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if round == 0 {
            (paging, ticketing, exhausted) = (p, tk, ex);
        }
    }
    times_ms.sort_by(f64::total_cmp);

    let heap: usize = fleet.iter().map(|(s, _)| s.heap_bytes()).sum();
    let per_series = heap / slos + std::mem::size_of::<Series>();
    let (minutes, hours) = fleet[0].0.bucket_counts();
    let json = serde_json::to_vec(&fleet[0].0).expect("a series serialises").len();

    println!("## SLO evaluation: {slos} SLOs, {days} days of history each");
    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!(
        "| evaluate all {slos} (budget + 4 burn-rate rules each, + recovery time if exhausted) | \
         p50 **{:.2} ms**, min {:.2} ms, max {:.2} ms ({rounds} rounds) — target ≤ 100 ms: {} |",
        percentile(&times_ms, 50.0),
        times_ms[0],
        times_ms[times_ms.len() - 1],
        if percentile(&times_ms, 50.0) <= 100.0 { "met" } else { "MISSED" },
    );
    println!("| per SLO | {:.2} µs |", percentile(&times_ms, 50.0) * 1e3 / slos as f64);
    println!(
        "| history in memory | {:.1} KiB per series ({minutes} minute buckets of 8 B + {hours} hour \
         buckets of 16 B held; capacity for 35 days reserved up front) → **{:.1} MiB** for {slos} |",
        per_series as f64 / 1024.0,
        (per_series * slos) as f64 / 1024.0 / 1024.0
    );
    println!(
        "| process RSS growth while filling | {:.1} MiB |",
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / 1024.0
    );
    println!("| one series as JSON (persistence) | {:.1} KiB |", json as f64 / 1024.0);
    println!(
        "| filling the history (`Series::add`, one call a minute per series) | {samples} adds in \
         {fill_s:.2} s = {:.1} M adds/s |",
        samples as f64 / fill_s / 1e6
    );
    println!(
        "| outcome at the end of the history | {paging} paging, {ticketing} ticketing, \
         {exhausted} budgets exhausted |"
    );
}
