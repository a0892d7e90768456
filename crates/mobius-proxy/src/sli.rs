//! Per-version SLIs: requests, responses by status class, a latency histogram and the last
//! latencies, kept with relaxed atomics only (no lock on the request path).
//!
//! Beside them, per flag variant: a response that carries `x-mobius-flag: <flag>=<variant>`
//! (the in-process provider adds it; several pairs are comma-separated; read with
//! [`mobius_flags::header`], the codec the provider writes it with) is counted for each
//! variant it names too, so a flag rollout is judged by its variant's own error ratio and
//! latency, as a canary is by its version's. Only responses that carry the header pay for it (a
//! lookup under a lock), and the number of variants kept is bounded.
//!
//! Latency is the time from the request arriving to the upstream's response head (or to the
//! proxy's own 502), so it measures the version, not the client's download speed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Upper bounds of the histogram buckets, in ms. One more bucket counts everything above the
/// last bound (JSON has no infinity, so it is implicit: `bucket_counts` is one longer).
pub const BUCKETS_MS: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];
/// How many recent latencies each version keeps, for rank tests.
pub const RECENT: usize = 1024;

/// All versions' SLIs at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliSnapshot {
    /// Unix time in ms.
    pub taken_at_ms: u64,
    pub versions: BTreeMap<String, VersionSli>,
    /// By `<flag>=<variant>`: the responses that said they were served with that variant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, VersionSli>,
}

/// At most this many `<flag>=<variant>` are counted: an upstream that names a new variant per
/// request cannot grow the proxy's memory without bound.
pub const MAX_VARIANTS: usize = 512;

/// The longest flag key or variant name counted, in bytes (decoded): longer ones are skipped,
/// so one response cannot make a key of kilobytes.
pub const MAX_NAME_BYTES: usize = 128;

/// One version's SLIs; counters are cumulative since the proxy started.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VersionSli {
    pub requests: u64,
    /// 5xx responses, including the proxy's own 502 when the upstream cannot be reached.
    pub errors: u64,
    #[serde(default)]
    pub responses_2xx: u64,
    #[serde(default)]
    pub responses_3xx: u64,
    #[serde(default)]
    pub responses_4xx: u64,
    /// Requests an injected fault ([`crate::chaos`]) touched (aborted or delayed); they are also
    /// in the other counters and the latencies.
    #[serde(default)]
    pub injected: u64,
    /// 5xx answered by an abort fault; they are also in `errors`.
    #[serde(default)]
    pub injected_errors: u64,
    /// Upper bounds in ms ([`BUCKETS_MS`]).
    pub buckets_ms: Vec<f64>,
    /// One count per bound, then one for everything above the last bound.
    pub bucket_counts: Vec<u64>,
    /// The last (up to) [`RECENT`] latencies in ms, oldest first.
    pub recent_latencies_ms: Vec<f64>,
}

impl VersionSli {
    /// What happened between `earlier` and `self`: counter deltas (saturating, so a restarted
    /// proxy gives its own counts rather than garbage); the latencies are `self`'s recent ones.
    pub fn since(&self, earlier: &VersionSli) -> VersionSli {
        let counts = if self.buckets_ms == earlier.buckets_ms && self.bucket_counts.len() == earlier.bucket_counts.len()
        {
            self.bucket_counts.iter().zip(&earlier.bucket_counts).map(|(a, b)| a.saturating_sub(*b)).collect()
        } else {
            self.bucket_counts.clone()
        };
        VersionSli {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            responses_2xx: self.responses_2xx.saturating_sub(earlier.responses_2xx),
            responses_3xx: self.responses_3xx.saturating_sub(earlier.responses_3xx),
            responses_4xx: self.responses_4xx.saturating_sub(earlier.responses_4xx),
            injected: self.injected.saturating_sub(earlier.injected),
            injected_errors: self.injected_errors.saturating_sub(earlier.injected_errors),
            buckets_ms: self.buckets_ms.clone(),
            bucket_counts: counts,
            recent_latencies_ms: self.recent_latencies_ms.clone(),
        }
    }

    /// Responses counted in the histogram.
    pub fn responses(&self) -> u64 {
        self.bucket_counts.iter().sum()
    }

    /// The `q` quantile (0..=1) in ms from the histogram, interpolating linearly inside the
    /// bucket (from 0 for the first). Above the last bound it answers the last bound. `None`
    /// without responses.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.responses();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (i, &count) in self.bucket_counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if (seen + count) as f64 >= rank {
                let Some(&upper) = self.buckets_ms.get(i) else {
                    return self.buckets_ms.last().copied();
                };
                let lower = if i == 0 { 0.0 } else { self.buckets_ms[i - 1] };
                let within = ((rank - seen as f64) / count as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            seen += count;
        }
        self.buckets_ms.last().copied()
    }
}

/// The live counters of one version.
#[derive(Debug)]
pub struct VersionCounters {
    requests: AtomicU64,
    classes: [AtomicU64; 4],
    injected: AtomicU64,
    injected_errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    recent_next: AtomicU64,
    recent: Box<[AtomicU64]>,
}

impl Default for VersionCounters {
    fn default() -> Self {
        VersionCounters {
            requests: AtomicU64::new(0),
            classes: Default::default(),
            injected: AtomicU64::new(0),
            injected_errors: AtomicU64::new(0),
            buckets: Default::default(),
            recent_next: AtomicU64::new(0),
            recent: (0..RECENT).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl VersionCounters {
    /// A request was routed to this version.
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// An injected fault touched a request; `aborted_with` is the status of an abort fault's
    /// answer (a 5xx counts as an injected error). Counted besides [`Self::request`] and
    /// [`Self::response`].
    pub fn injected(&self, aborted_with: Option<u16>) {
        self.injected.fetch_add(1, Relaxed);
        if aborted_with.is_some_and(|status| status >= 500) {
            self.injected_errors.fetch_add(1, Relaxed);
        }
    }

    /// A response (status code) came back after `latency_ms`.
    pub fn response(&self, status: u16, latency_ms: f64) {
        let class = match status {
            500.. => 3,
            400..=499 => 2,
            300..=399 => 1,
            _ => 0,
        };
        self.classes[class].fetch_add(1, Relaxed);
        let bucket = BUCKETS_MS.iter().position(|&b| latency_ms <= b).unwrap_or(BUCKETS_MS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        let slot = self.recent_next.fetch_add(1, Relaxed) as usize % RECENT;
        // Microseconds are plenty, and keep the JSON short.
        let rounded = (latency_ms * 1000.0).round() / 1000.0;
        self.recent[slot].store(rounded.to_bits(), Relaxed);
    }

    /// A consistent-enough copy (each counter is exact; they are read one after another).
    pub fn snapshot(&self) -> VersionSli {
        let written = self.recent_next.load(Relaxed) as usize;
        let recent = if written <= RECENT {
            (0..written).map(|i| f64::from_bits(self.recent[i].load(Relaxed))).collect()
        } else {
            (0..RECENT).map(|i| f64::from_bits(self.recent[(written + i) % RECENT].load(Relaxed))).collect()
        };
        VersionSli {
            requests: self.requests.load(Relaxed),
            errors: self.classes[3].load(Relaxed),
            responses_2xx: self.classes[0].load(Relaxed),
            responses_3xx: self.classes[1].load(Relaxed),
            responses_4xx: self.classes[2].load(Relaxed),
            injected: self.injected.load(Relaxed),
            injected_errors: self.injected_errors.load(Relaxed),
            buckets_ms: BUCKETS_MS.to_vec(),
            bucket_counts: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            recent_latencies_ms: recent,
        }
    }
}

/// Every version's counters, found by version name. Looked up when a table is swapped in, not
/// per request (the live table holds the `Arc`s).
#[derive(Debug, Default)]
pub struct SliRegistry {
    versions: Mutex<BTreeMap<String, Arc<VersionCounters>>>,
    variants: Mutex<BTreeMap<String, Arc<VersionCounters>>>,
}

impl SliRegistry {
    /// The counters of `version`, created on first use.
    pub fn counters(&self, version: &str) -> Arc<VersionCounters> {
        let mut versions = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        versions.entry(version.to_owned()).or_default().clone()
    }

    /// The counters of `<flag>=<variant>`, created on first use; `None` once [`MAX_VARIANTS`]
    /// are kept and this is not one of them.
    pub fn variant(&self, flag: &str, variant: &str) -> Option<Arc<VersionCounters>> {
        let key = format!("{flag}={variant}");
        let mut variants = self.variants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counters) = variants.get(&key) {
            return Some(counters.clone());
        }
        if variants.len() >= MAX_VARIANTS {
            return None;
        }
        Some(variants.entry(key).or_default().clone())
    }

    /// Counts one response for every variant an `x-mobius-flag` value names. Malformed
    /// elements are skipped (the others count), and so are names over [`MAX_NAME_BYTES`] and
    /// flag keys holding `=`, which would make the `<flag>=<variant>` key ambiguous.
    pub fn record_variants(&self, header: &str, status: u16, latency_ms: f64) {
        for pair in mobius_flags::header::parse(header).flatten() {
            let (flag, variant) = (pair.flag.as_ref(), pair.variant.as_ref());
            if flag.len() > MAX_NAME_BYTES || variant.len() > MAX_NAME_BYTES || flag.contains('=') {
                continue;
            }
            if let Some(counters) = self.variant(flag, variant) {
                counters.request();
                counters.response(status, latency_ms);
            }
        }
    }

    pub fn snapshot(&self) -> SliSnapshot {
        let copy = |map: &Mutex<BTreeMap<String, Arc<VersionCounters>>>| {
            let guard = map.lock().unwrap_or_else(|e| e.into_inner());
            guard.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
        };
        let (versions, variants) = (copy(&self.versions), copy(&self.variants));
        let taken_at_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        SliSnapshot {
            taken_at_ms,
            versions: versions.into_iter().map(|(k, v)| (k, v.snapshot())).collect(),
            variants: variants.into_iter().map(|(k, v)| (k, v.snapshot())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_classes_buckets_and_recent() {
        let c = VersionCounters::default();
        for (status, ms) in [(200, 0.5), (200, 3.0), (302, 7.0), (404, 1.0), (503, 9000.0)] {
            c.request();
            c.response(status, ms);
        }
        let s = c.snapshot();
        assert_eq!((s.requests, s.errors, s.responses_2xx, s.responses_3xx, s.responses_4xx), (5, 1, 2, 1, 1));
        assert_eq!(s.bucket_counts, vec![2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(s.recent_latencies_ms, vec![0.5, 3.0, 7.0, 1.0, 9000.0]);
        assert_eq!(s.quantile_ms(1.0), Some(5000.0));
        assert_eq!(s.quantile_ms(0.2), Some(0.5));
    }

    #[test]
    fn ring_keeps_the_last_1024_in_order() {
        let c = VersionCounters::default();
        for i in 0..(RECENT + 10) {
            c.response(200, i as f64);
        }
        let s = c.snapshot();
        assert_eq!(s.recent_latencies_ms.len(), RECENT);
        assert_eq!(s.recent_latencies_ms[0], 10.0);
        assert_eq!(*s.recent_latencies_ms.last().unwrap(), (RECENT + 9) as f64);
    }

    #[test]
    fn since_subtracts_counters() {
        let c = VersionCounters::default();
        c.request();
        c.response(500, 20.0);
        let before = c.snapshot();
        c.request();
        c.response(200, 20.0);
        let delta = c.snapshot().since(&before);
        assert_eq!((delta.requests, delta.errors, delta.responses_2xx), (1, 0, 1));
        assert_eq!(delta.responses(), 1);
        let median = delta.quantile_ms(0.5).unwrap();
        assert!((10.0..=25.0).contains(&median), "{median}");
    }

    #[test]
    fn injected_counts_and_subtracts() {
        let c = VersionCounters::default();
        for aborted_with in [None, Some(503), Some(429), Some(500)] {
            c.request();
            c.injected(aborted_with);
        }
        let before = c.snapshot();
        assert_eq!((before.injected, before.injected_errors), (4, 2));
        c.injected(Some(502));
        let delta = c.snapshot().since(&before);
        assert_eq!((delta.injected, delta.injected_errors), (1, 1));
        let old: VersionSli = serde_json::from_str(
            r#"{"requests":1,"errors":0,"buckets_ms":[],"bucket_counts":[],"recent_latencies_ms":[]}"#,
        )
        .unwrap();
        assert_eq!((old.injected, old.injected_errors), (0, 0));
    }

    #[test]
    fn variants_are_counted_per_flag_and_malformed_pairs_skipped() {
        // The keys a header's value is counted under.
        let check = |value: &str, expected: &[&str]| {
            let registry = SliRegistry::default();
            registry.record_variants(value, 200, 1.0);
            assert_eq!(registry.snapshot().variants.keys().collect::<Vec<_>>(), expected, "{value}");
        };
        check("checkout=on", &["checkout=on"]);
        check(" checkout = on , banner=b ", &["banner=b", "checkout=on"]);
        check("checkout", &[]);
        check("=on,checkout=,a b=c, ok=fine", &["ok=fine"]);
        check(&format!("{}=on", "x".repeat(MAX_NAME_BYTES + 1)), &[]);
        check(&format!("{}=on", "x".repeat(MAX_NAME_BYTES)), &[format!("{}=on", "x".repeat(MAX_NAME_BYTES)).as_str()]);
        // As the provider writes them: decoded, so the key is the flag's own (what a rollout
        // looks up). Before the shared codec these were all dropped: `%` was not a name's.
        check("team%2Fcheckout%3Av2=on", &["team/checkout:v2=on"]);
        check("team/checkout:v2=on", &["team/checkout:v2=on"]);
        check("%C3%A9t%C3%A9=a%20b, 100%25=on", &["100%=on", "été=a b"]);
        check("x=a%3Db", &["x=a=b"]);
        check("a%3Db=c", &[]);
        let registry = SliRegistry::default();
        registry.record_variants("checkout=on", 503, 20.0);
        registry.record_variants("checkout=on, banner=b", 200, 3.0);
        registry.record_variants("checkout=off", 200, 3.0);
        let snapshot = registry.snapshot();
        let on = &snapshot.variants["checkout=on"];
        assert_eq!((on.requests, on.errors), (2, 1));
        assert_eq!(snapshot.variants.keys().collect::<Vec<_>>(), ["banner=b", "checkout=off", "checkout=on"]);
        assert!(snapshot.versions.is_empty(), "variants are counted beside versions, not as them");
        for i in 0..MAX_VARIANTS {
            registry.record_variants(&format!("f{i}=v"), 200, 1.0);
        }
        assert_eq!(registry.snapshot().variants.len(), MAX_VARIANTS);
    }

    #[test]
    fn quantile_of_nothing_is_none() {
        assert_eq!(VersionCounters::default().snapshot().quantile_ms(0.5), None);
    }
}
