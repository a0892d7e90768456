//! Pipelines on the server (the runs service): commits to registered repositories trigger their workflows, which
//! run here with the same engine as `mobius run`.
//!
//! - [`git`]: what the server asks git about a registered repository.
//! - [`trigger`]: a repository's branch heads moved → the runs the push triggers.
//! - [`Runner`] ([`runner`]): queues, concurrency groups, cancellation, re-runs, restart
//!   recovery, and each run's thread.
//! - [`logs`]: each run's log lines as NDJSON, live to SSE subscribers; `progress`: the
//!   observer that stores job and step states in batches and writes those lines.
//! - [`environments`]: protection rules enforced before a job deploys, the reviews that hold
//!   it, and each job's short-lived run token (`MOBIUS_TOKEN`).
//! - [`cdevents`]: the events every run emits (shared with `mobius run`).

pub mod cdevents;
pub mod environments;
pub mod git;
pub mod logs;
mod progress;
pub mod runner;
pub mod trigger;

pub use runner::{Dispatch, RunError, Runner, RunnerConfig};
