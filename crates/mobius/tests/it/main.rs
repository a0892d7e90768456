//! Integration tests of the `mobius` binary: the CLI, the server over loopback, durability
//! under kill -9, and DORA golden histories.

mod cli;
mod durability;
mod golden;
mod server;
mod util;
