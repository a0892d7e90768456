//! The crate's integration tests: one binary (`cargo test -p mobius-deploy --test it`), one
//! module per area.

mod props;
mod supervisor;
