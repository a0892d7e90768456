//! Integration tests of the pipelines crate: one module per area.

mod actions;
mod engine;
mod exec;
mod expr;
mod mask;
mod workflow;
