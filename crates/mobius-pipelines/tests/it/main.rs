//! Integration tests of the pipelines crate: one module per area.

mod expr;
mod mask;
