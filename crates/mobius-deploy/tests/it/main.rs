//! Integration tests of the deploy crate: one module per area.

mod supervisor;
