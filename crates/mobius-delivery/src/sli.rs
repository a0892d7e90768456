//! Recording the proxies' SLIs: every few seconds each environment's cumulative per-version
//! counters are read, and what they gained since the last reading is added to the current
//! minute in the store (`sli_minutes`), which SLOs sum over their windows. Reading snapshots
//! costs the proxy nothing per request beyond the atomics it keeps anyway.
//!
//! Once an hour the counters are downsampled as they age: minutes older than 48 hours fold
//! into hours (what `mobius_slo::series::Series` reads at hour resolution anyway, so no budget
//! changes), and hours older than the longest SLO window (plus a day; at least 35 days) go.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use mobius_proxy::sli::{SliSnapshot, VersionSli};
use mobius_store::{SliCompaction, SliMinute};

use super::Deployer;

/// The last snapshot read from each (service, environment).
pub(super) type Readings = HashMap<(String, String), SliSnapshot>;

impl Deployer {
    /// What the proxy of `service` in `environment` has counted since it started (per version
    /// and per flag variant), when this control plane runs it: a flag rollout judges its
    /// variant by the difference between two of these, as a canary's analysis does.
    pub async fn live_slis(&self, service: &str, environment: &str) -> Option<SliSnapshot> {
        let planes = self.inner.planes.lock().await;
        planes.get(&(service.to_owned(), environment.to_owned())).map(|plane| plane.slis())
    }

    /// Records what this process's proxies counted every `every` until `shutdown`, and once
    /// more then. Every replica records its own proxies: the store adds the counts up.
    pub async fn record_slis(self, every: Duration, shutdown: impl Future<Output = ()>) {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    self.record_slis_now().await;
                    return;
                }
                _ = timer.tick() => self.record_slis_now().await,
            }
        }
    }

    /// Downsamples the stored counters now and every hour until `shutdown`: work for one
    /// replica (the holder of its lease).
    pub async fn compact_slis_forever(self, shutdown: impl Future<Output = ()>) {
        let mut timer = tokio::time::interval(COMPACT_EVERY);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = timer.tick() => self.compact_slis(self.now()).await,
            }
        }
    }

    /// Downsamples the stored counters as of `now` (see the module documentation).
    pub(super) async fn compact_slis(&self, now: Timestamp) {
        let store = self.inner.store.clone();
        let compacted = mobius_log::blocking::spawn(move || {
            let longest = mobius_reliability::slo::definitions(store.as_ref())?
                .iter()
                .map(|(_, slo)| i64::try_from(slo.window_seconds()).unwrap_or(i64::MAX))
                .max()
                .unwrap_or(0);
            let (hourly_before, drop_before) = mobius_reliability::slo::compaction_bounds(now.as_second(), longest);
            store.compact_sli(hourly_before, drop_before)
        })
        .await;
        match compacted {
            Ok(report) if report != SliCompaction::default() => tracing::info!(
                folded = report.folded,
                hours = report.hours,
                dropped = report.dropped,
                "SLI counters downsampled"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot downsample SLI counters"),
        }
    }

    /// Adds what every proxy counted since the last reading to the current minute.
    pub async fn record_slis_now(&self) {
        // One recording at a time: each reads what the previous one left.
        let mut readings = self.inner.readings.lock().await;
        let planes: Vec<_> = self.inner.planes.lock().await.iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        let now = self.now().as_second();
        let minute = now - now.rem_euclid(60);
        let mut rows = Vec::new();
        for ((service, environment), plane) in planes {
            let snapshot = plane.slis();
            let exclude_injected = plane.excludes_injected();
            let previous = readings.get(&(service.clone(), environment.clone()));
            for (version, now) in &snapshot.versions {
                let gained = gained(now, previous.and_then(|p| p.versions.get(version)));
                if gained.requests == 0 {
                    continue;
                }
                // A game day's injected failures stay out of the budget unless counted.
                let errors =
                    if exclude_injected { gained.errors.saturating_sub(gained.injected_errors) } else { gained.errors };
                rows.push(SliMinute {
                    service: service.clone(),
                    environment: environment.clone(),
                    version: version.clone(),
                    minute,
                    requests: gained.requests,
                    errors,
                    latency: gained.bucket_counts,
                });
            }
            readings.insert((service, environment), snapshot);
        }
        if rows.is_empty() {
            return;
        }
        let store = self.inner.store.clone();
        match mobius_log::blocking::spawn(move || store.add_sli(&rows)).await {
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, "cannot record SLIs"),
        }
    }
}

/// How often the stored counters are downsampled.
const COMPACT_EVERY: Duration = Duration::from_secs(3_600);

/// What a version's counters gained since `earlier`. Counters that went down mean the proxy
/// restarted (a separate `mobius proxy`): everything it counted since is new.
fn gained(now: &VersionSli, earlier: Option<&VersionSli>) -> VersionSli {
    match earlier {
        Some(earlier) if now.requests >= earlier.requests => now.since(earlier),
        _ => now.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sli(requests: u64, errors: u64) -> VersionSli {
        VersionSli {
            requests,
            errors,
            responses_2xx: requests - errors,
            responses_3xx: 0,
            responses_4xx: 0,
            buckets_ms: vec![1.0],
            bucket_counts: vec![requests, 0],
            recent_latencies_ms: Vec::new(),
            ..VersionSli::default()
        }
    }

    #[test]
    fn gains_are_deltas_and_a_restarted_proxy_starts_over() {
        assert_eq!(gained(&sli(10, 2), Some(&sli(4, 1))).requests, 6);
        assert_eq!(gained(&sli(10, 2), Some(&sli(4, 1))).errors, 1);
        assert_eq!(gained(&sli(3, 0), Some(&sli(40, 1))).requests, 3, "counters went down: a restart");
        assert_eq!(gained(&sli(5, 5), None).errors, 5);
    }
}
