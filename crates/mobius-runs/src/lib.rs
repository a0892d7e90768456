//! Pipelines on the server (the runs service): commits to registered repositories trigger their workflows, which
//! run here with the same engine as `mobius run`.
//!
//! - [`git`]: what the server asks git about a registered repository.
//! - [`remote`]: how git reaches a remote repository — the credentials it names, through the
//!   git process's environment only.
//! - [`trigger`]: a push, pull request or release → the runs it triggers.
//! - [`delivery`]: a verified forge webhook → the push, pull request or release it reports.
//! - [`Runner`] ([`runner`]): queues, concurrency groups, cancellation, re-runs, restart
//!   recovery, and each run's thread.
//! - [`logs`]: each run's log lines as NDJSON, live to SSE subscribers; `progress`: the
//!   observer that stores job and step states in batches and writes those lines.
//! - [`environments`]: protection rules enforced before a job deploys, the reviews that hold
//!   it, and each job's short-lived run token (`MOBIUS_TOKEN`).
//! - [`agents`]: jobs whose `runs-on` routes them to `mobius agent` workers: queued in the
//!   store, claimed by label, followed to their end.
//! - [`cdevents`]: the events every run emits (shared with `mobius run`).
//! - [`forge`]: commit statuses back to GitHub and GitLab, from the outbox the store writes
//!   with each job state, delivered in the background with retries.

pub mod agents;
pub mod cdevents;
pub mod delivery;
pub mod environments;
pub mod forge;
pub mod git;
pub mod graph;
pub mod logs;
mod progress;
pub mod provenance;
pub mod remote;
pub mod runner;
pub mod scans;
pub mod trigger;

pub use runner::{Dispatch, RunError, Runner, RunnerConfig};
