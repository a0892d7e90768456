//! Integration tests of the `mobius` binary: the CLI, the server over loopback, durability
//! under kill -9, DORA golden histories, workflow linting and listing, and pipelines run by
//! the server.

mod cli;
mod deploy;
mod durability;
mod golden;
mod pipelines;
mod prometheus;
mod runs;
mod runs_deploy;
mod secrets;
mod server;
mod slo;
mod util;
