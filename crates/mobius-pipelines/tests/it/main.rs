//! Integration tests of the pipelines crate: one module per area.

mod exec;
mod expr;
mod mask;
mod workflow;
