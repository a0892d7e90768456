//! Pipelines as code: GitHub Actions workflows, run natively.
//!
//! - [`workflow`]: workflow files and `action.yml` — the model, YAML 1.2 parsing with
//!   positions, validation (`mobius lint`), and matrix expansion.
//! - [`expr`]: the `${{ }}` expression language — parsing with positions, GitHub's coercion
//!   and comparison rules, the built-in functions and status functions.
//! - [`engine`]: running a workflow's jobs as a DAG on this machine: matrix, `needs`,
//!   fail-fast, built-in actions, actions from repositories (JavaScript, composite, local) and
//!   reusable workflows; and, through the `JobDispatch` port, jobs whose `runs-on` labels route
//!   to agents on other machines, which run them with `engine::run_job`.
//! - [`exec`]: running one step as a local process: clean environment, process groups,
//!   timeouts, the environment files, workflow commands, masked logs.
//! - [`remote`]: the action cache — repositories fetched with `git` and kept by commit.
//! - [`artifacts`]: the content-addressed artifact store (`actions/upload-artifact` /
//!   `actions/download-artifact`) with reproducible SHA-256 digests.
//! - [`cache`]: the `actions/cache` store, scoped per repository and branch as on GitHub.
//! - [`store_sync`]: syncing those stores' records and blobs between the server and an agent
//!   around a remote job.
//! - [`mask`]: a streaming secret masker for step logs, which also catches a secret split
//!   across writes and its base64 forms.

pub mod archive;
pub mod artifacts;
pub mod cache;
pub mod chain;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod mask;
pub mod remote;
pub mod store_sync;
pub mod workflow;
