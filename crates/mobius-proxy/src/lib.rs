//! The data plane: a reverse proxy per service and environment that splits traffic between
//! the stable and the canary version by weight, keeps a user on one version with a cookie, and
//! records per-version SLIs (requests, 5xx, latency). It runs inside `mobius serve`, or alone
//! as `mobius proxy`, reading its routing table from a file the control plane writes and
//! writing its SLIs beside it, so it keeps serving when the control plane is down.
//!
//! - [`routing`]: the [`RoutingTable`] and the rule that picks a version for a request
//!   (forcing header, sticky cookie, weighted draw);
//! - [`sli`]: per-version counters and latency histograms, snapshotted as [`SliSnapshot`];
//! - [`proxy`]: the [`Proxy`] — HTTP/1.1 in, keep-alive HTTP/1.1 out (one upstream connection
//!   per downstream connection and address), swappable table, graceful shutdown; one event loop
//!   per thread with [`Proxy::serve_std`];
//! - [`chaos`]: faults (abort, delay) carried by the table and injected for game days, counted
//!   apart in the SLIs;
//! - [`files`]: the table and SLI files that let the proxy run apart from the control plane.

pub mod chaos;
pub mod files;
pub mod proxy;
pub mod routing;
pub mod sli;

pub use chaos::{Fault, FaultKind};
pub use files::{FileError, follow_table, publish_slis, sli_path, table_path, write_atomic};
pub use proxy::Proxy;
pub use routing::{Backend, RoutingTable};
pub use sli::{SliSnapshot, VersionSli};
