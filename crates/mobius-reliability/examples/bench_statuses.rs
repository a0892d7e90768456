//! Benchmark: the server's SLO evaluation as it runs — `slo::statuses` over a real SQLite
//! store holding 30 days of SLI counters per service, kept as the recorder keeps them (minutes
//! for the last 48 hours, hours before that) — for `SLOS` services with one availability SLO
//! each. This is what the alert loop does every 30 s and what `GET /api/v1/slos` answers.
//! Run by `bench/slo/store.sh` (release build); see `bench/README.md`.
//!
//! Knobs (environment): `SLOS` (1000), `ROUNDS` (5), `DIR` (a temporary directory).

use std::time::Instant;

use jiff::Timestamp;
use mobius_deploy::rollout::Stored;
use mobius_deploy::rollout::{Deployed, Plan, Rollout};
use mobius_deploy::spec::ServiceSpec;
use mobius_store::{RolloutRow, SliMinute, SqliteOptions, SqliteStore, Store};

/// 2026-11-26T00:00:00Z: the history ends here.
const END: i64 = 1_795_651_200;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let slos = knob("SLOS", 1000);
    let rounds = knob("ROUNDS", 5).max(1);
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::var_os("DIR").map_or_else(|| temp.path().to_owned(), Into::into);
    let store = SqliteStore::open_with(&dir, SqliteOptions::SERVER).expect("the store opens");
    let now = Timestamp::from_second(END).unwrap();

    let started = Instant::now();
    let mut rows_per_service = 0;
    for i in 0..slos {
        let service = format!("svc-{i:04}");
        let yaml = format!(
            "service: {service}\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:{}\nslos:\n  - name: availability\n    objective: 99.9\n    sli: {{availability: {{}}}}\n",
            10_000 + i
        );
        let spec = ServiceSpec::parse("mobius.yaml", &yaml).expect("a valid spec");
        let new = Deployed {
            version: "v1".into(),
            release: "/nowhere".into(),
            artifact: None,
            revision: None,
            instances: Vec::new(),
        };
        let rollout = Rollout::new(&service, &spec.environments.value[0], Plan::Rolling, 1, None, new, now);
        let body = serde_json::to_string(&Stored { rollout, spec: yaml, stable_spec: None, host: None }).unwrap();
        let row = RolloutRow {
            id: 0,
            service: service.clone(),
            environment: "production".into(),
            phase: "succeeded".into(),
            active: false,
            body,
            created: now,
            updated: now,
        };
        store.save_rollout(&row).unwrap();
        // Hours from 30 days back to 48 hours back, then minutes: 100 requests a minute, one
        // in a thousand failing, 12 histogram buckets.
        let mut rows = Vec::new();
        let fine_from = END - 48 * 3600;
        for hour in (END - 30 * 86_400..fine_from).step_by(3600) {
            rows.push(minute(&service, hour, 6000, 6));
        }
        for m in (fine_from..END).step_by(60) {
            rows.push(minute(&service, m, 100, u64::from(m % 1000 == 0)));
        }
        rows_per_service = rows.len();
        store.add_sli(&rows).unwrap();
    }
    let filled = started.elapsed();

    let mut times = Vec::new();
    let mut evaluated = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let statuses = mobius_reliability::slo::statuses(&store, now).expect("statuses");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        evaluated = statuses.iter().filter(|s| s.budget.is_some()).count();
    }
    times.sort_by(f64::total_cmp);

    // As the alert loop runs: series kept between evaluations, 30 s apart, each service having
    // recorded a little more since the last. The first round reads every window whole.
    let cache = mobius_reliability::slo::SeriesCache::default();
    let mut kept_times = Vec::new();
    let mut first = 0.0;
    for round in 0..rounds + 1 {
        let at = END + 30 * round as i64;
        let rows: Vec<SliMinute> =
            (0..slos).map(|i| minute(&format!("svc-{i:04}"), at - at.rem_euclid(60), 50, 0)).collect();
        store.add_sli(&rows).unwrap();
        let started = Instant::now();
        let statuses =
            mobius_reliability::slo::statuses_with(&store, &cache, Timestamp::from_second(at).unwrap()).unwrap();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(statuses.len() as u64, slos);
        if round == 0 { first = ms } else { kept_times.push(ms) }
    }
    kept_times.sort_by(f64::total_cmp);
    // For comparison: every row with its histogram, as a latency SLO reads them.
    let started = Instant::now();
    let mut read = 0;
    for i in 0..slos {
        let from = END - 30 * 86_400;
        read += store.sli(&format!("svc-{i:04}"), "production", from, END + 60).unwrap().len();
    }
    let reading = started.elapsed().as_secs_f64() * 1000.0;
    let size: u64 = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!("| measure | value |");
    println!("|---|---|");
    println!("| SLOs (services, one version each) | {slos} ({evaluated} evaluated) |");
    println!("| SLI rows per service (672 hours + 2,880 minutes) | {rows_per_service} |");
    println!("| store size | {:.1} MB |", size as f64 / 1e6);
    println!("| filling the store | {:.1} s |", filled.as_secs_f64());
    println!(
        "| `slo::statuses` for all ({rounds} rounds) | p50 {:.0} ms, min {:.0} ms, max {:.0} ms |",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    println!("| per SLO (p50) | {:.2} ms |", times[times.len() / 2] / slos.max(1) as f64);
    println!(
        "| `slo::statuses_with` a kept `SeriesCache`, 30 s apart ({rounds} rounds after a first of {first:.0} ms) | p50 {:.1} ms, min {:.1} ms, max {:.1} ms |",
        kept_times[kept_times.len() / 2],
        kept_times[0],
        kept_times[kept_times.len() - 1]
    );
    println!("| reading every row with its histogram (what a latency SLO reads; {read} rows) | {reading:.0} ms |");
}

fn minute(service: &str, minute: i64, requests: u64, errors: u64) -> SliMinute {
    SliMinute {
        service: service.to_owned(),
        environment: "production".into(),
        version: "v1".into(),
        minute,
        requests,
        errors,
        latency: vec![requests / 2, requests / 4, requests / 8, requests / 8, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    }
}
