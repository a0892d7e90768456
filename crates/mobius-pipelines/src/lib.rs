//! Pipelines as code: GitHub Actions workflows, run natively.
//!
//! This crate grows with the pipelines issue. So far:
//! - [`expr`]: the `${{ }}` expression language — parsing with positions, GitHub's coercion
//!   and comparison rules, the built-in functions and status functions.
//! - [`mask`]: a streaming secret masker for step logs, which also catches a secret split
//!   across writes and its base64 forms.
//!
//! - [`workflow`]: workflow files — the model, YAML 1.2 parsing with positions, validation
//!   (`mobius lint`), and matrix expansion.
//! - [`exec`]: running one job's `run:` steps as local processes: clean environment, process
//!   groups, timeouts, the `GITHUB_ENV`/`GITHUB_OUTPUT`/`GITHUB_PATH` files, masked logs.
//! - [`engine`]: running a workflow's jobs as a DAG on this machine: matrix, `needs`, fail-fast.
//! - [`artifacts`]: the content-addressed artifact store (`actions/upload-artifact` /
//!   `actions/download-artifact`) with reproducible SHA-256 digests.
//! - [`cache`]: the `actions/cache` store, scoped per repository and branch as on GitHub.
//!
//! The scheduler (the DAG of jobs) and `mobius run` come next.

pub mod artifacts;
pub mod cache;
mod chain;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod mask;
pub mod remote;
pub mod workflow;
