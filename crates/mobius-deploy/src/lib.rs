//! The control plane of releases.
//!
//! - `spec`: the service definition, `mobius.yaml`.
//! - `analysis`: judging a canary from per-version SLIs (thresholds, minimum requests,
//!   Mann-Whitney U against stable).
//! - `rollout`: a rollout as a persisted state machine; `reconcile` returns the next actions.
//! - `supervisor`: the embedded runtime — instances as processes on loopback ports.
//! - `load`: a small HTTP load generator (the demo's traffic, benchmarks).
pub mod analysis;
pub mod credentials;
pub mod load;
pub mod rollout;
pub mod secret_refs;
pub mod spec;
pub mod supervisor;
