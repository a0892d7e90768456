//! The event log as the application sees it.
//!
//! - [`ingest`]: [`Ingestor`] appends validated events (CDEvents, webhooks, Mobius's own) with
//!   the facts they imply, and reports what became of each one.
//! - [`query`]: the read side the measurements use — windows, DORA's four keys and the value
//!   stream over a store.
//!
//! - [`clock`]: where every service reads the time (the machine's, or tokio's for tests).
//! - [`blocking`]: store and git calls off the async workers, and the check that keeps them
//!   there.
//!
//! Every application service (runs, delivery, reliability) records what happened through this
//! crate; none of it knows HTTP.

pub mod blocking;
pub mod clock;
pub mod ingest;
pub mod lease;
pub mod query;

pub use clock::Clock;

pub use ingest::{EventResult, IngestReport, Ingestor, Status};
