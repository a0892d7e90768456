//! Integration tests of the `mobius` binary: the CLI, the server over loopback, durability
//! under kill -9, DORA golden histories, and workflow linting and listing.

mod cli;
mod durability;
mod golden;
mod pipelines;
mod server;
mod util;
