//! Integration tests of the pipelines crate: one module per area.

mod engine;
mod exec;
mod expr;
mod mask;
mod workflow;
