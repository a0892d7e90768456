//! The event log as the application sees it.
//!
//! - [`ingest`]: [`Ingestor`] appends validated events (CDEvents, webhooks, Mobius's own) with
//!   the facts they imply, and reports what became of each one.
//! - [`query`]: the read side the measurements use — windows, DORA's four keys and the value
//!   stream over a store.
//!
//! Every application service (runs, delivery, reliability) records what happened through this
//! crate; none of it knows HTTP.

pub mod ingest;
pub mod query;

pub use ingest::{EventResult, IngestReport, Ingestor, Status};
