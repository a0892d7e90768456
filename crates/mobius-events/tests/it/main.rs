//! The crate's integration tests: one binary (`cargo test -p mobius-events --test it`), one
//! module per area.

mod cdevents;
mod webhooks;
