//! Prometheus metrics about the server itself, in the text exposition format.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route pattern, not the raw path, so cardinality stays bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    pub lease: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    pub origin: String,
    /// stored, duplicate or rejected.
    pub status: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub durations: Family<RouteLabels, Histogram>,
    pub ingested: Family<IngestLabels, Counter>,
    pub events_in_log: Gauge,
    pub resident_memory: Gauge,
    /// 1 for each lease this replica holds, 0 for one it wants and another holds.
    pub leases: Family<LeaseLabels, Gauge>,
    /// This replica's pipeline runs, by state (`running`, `waiting`).
    pub runs: Family<RunLabels, Gauge>,
    /// The agent job queue, shared by every replica, by state (`queued`, `running`).
    pub agent_jobs: Family<RunLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub state: String,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let ingested = Family::<IngestLabels, Counter>::default();
        let events_in_log = Gauge::default();
        let resident_memory = Gauge::default();
        registry.register("mobius_http_requests", "HTTP requests served", requests.clone());
        registry.register("mobius_http_request_duration_seconds", "HTTP request latency", durations.clone());
        registry.register("mobius_events_ingested", "Events received, by origin and result", ingested.clone());
        registry.register("mobius_events_in_log", "Events in the log", events_in_log.clone());
        registry.register("process_resident_memory_bytes", "Resident set size", resident_memory.clone());
        let leases = Family::<LeaseLabels, Gauge>::default();
        registry.register("mobius_lease_held", "Whether this replica holds the lease (singleton work)", leases.clone());
        let runs = Family::<RunLabels, Gauge>::default();
        registry.register("mobius_runs", "Pipeline runs this replica is running or holds waiting", runs.clone());
        let agent_jobs = Family::<RunLabels, Gauge>::default();
        registry.register("mobius_agent_jobs", "Jobs queued for agents or running on them", agent_jobs.clone());
        Metrics {
            registry: Mutex::new(registry),
            requests,
            durations,
            ingested,
            events_in_log,
            resident_memory,
            leases,
            runs,
            agent_jobs,
        }
    }

    pub fn count_ingest(&self, origin: &str, status: &str, n: usize) {
        if n > 0 {
            let labels = IngestLabels { origin: origin.to_owned(), status: status.to_owned() };
            self.ingested.get_or_create(&labels).inc_by(n as u64);
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.resident_memory.set(rss);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
