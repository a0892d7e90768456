//! The crate's one integration-test binary: scenarios as facts plus the expected numbers.

mod bands;
mod dora;
mod fixtures;
mod flow;
mod text;
