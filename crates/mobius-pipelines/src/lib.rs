//! Pipelines as code: GitHub Actions workflows, run natively.
//!
//! This crate grows with the pipelines issue. So far:
//! - [`expr`]: the `${{ }}` expression language — parsing with positions, GitHub's coercion
//!   and comparison rules, the built-in functions and status functions.
//! - [`mask`]: a streaming secret masker for step logs, which also catches a secret split
//!   across writes and its base64 forms.
//!
//! Nothing here runs processes or touches the network; the executor and scheduler come next.

pub mod expr;
pub mod mask;
