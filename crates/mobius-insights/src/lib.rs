//! Measurements read from facts: DORA's four keys with performance bands, and the value
//! stream. Everything here is pure computation over a [`FactSet`] of one service in one
//! environment; loading facts, serving HTTP and writing to a terminal belong to other crates.
//!
//! - [`Window`]: the half-open period `[from, to)` a measurement covers.
//! - [`dora`](mod@dora): deployment frequency, lead time for changes, change failure rate and
//!   failed deployment recovery time, each with its band and, on request, the facts behind it.
//!   The module documentation states every definition exactly.
//! - [`bands`]: band tables as versioned data (`seed-2023`, `dora-2024`), embedded JSON.
//! - [`flow`](mod@flow): the value stream: wait and work per stage from commit to deployment,
//!   flow efficiency and waiting share.
//! - [`stats`]: the median and percentile every metric uses.
//! - [`text`]: reports rendered as plain-text tables.
//!
//! Reports serialise with serde to the JSON the API serves. An empty sample is `null` with no
//! band, never zero: a quiet month did not have a zero-second lead time.
//!
//! [`FactSet`]: mobius_events::facts::FactSet

pub mod bands;
pub mod dora;
pub mod flow;
pub mod postmortem;
mod scope;
pub mod stats;
pub mod text;
mod window;

pub use bands::{Band, BandTable, UnknownBands};
pub use dora::{DoraReport, dora};
pub use flow::{FlowReport, flow};
pub use window::{InvalidWindow, Window};
