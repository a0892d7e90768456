//! The event log's domain: what an event is, what it says happened, and the facts derived
//! from it.
//!
//! - [`envelope`]: the log's unit ([`NewEvent`], [`StoredEvent`]) and where events come from.
//! - [`cdevents`]: CDEvents validation (v0.5.x; v0.4.x normalised) and translation.
//! - [`cloudevents`]: the CloudEvents HTTP binding: structured, binary and batched bodies.
//! - [`github`], [`gitlab`]: webhook verification and translation.
//! - [`record`]: batch and import records: CDEvents, or recorded webhook deliveries.
//! - [`emit`]: the CDEvents Mobius emits itself, each built by one typed constructor.
//! - [`limits`]: what every event and batch must respect (size, count, time range, text).
//! - [`observation`]: what an event says happened, independent of its wire format.
//! - [`facts`]: the rows measurements read (changes, deployments, incidents, pipeline runs).
//! - [`materialise`]: the rules that fold observations into facts, over a storage port.
//! - [`time`]: every timestamp format senders use.
//!
//! Nothing here knows HTTP servers or SQL: the server and the store depend on this crate.

pub mod cdevents;
pub mod cloudevents;
pub mod emit;
pub mod envelope;
pub mod facts;
pub mod github;
pub mod gitlab;
pub mod limits;
pub mod materialise;
pub mod observation;
mod payload;
pub mod record;
pub mod time;
mod webhook;

pub use envelope::{AppendStatus, NewEvent, Origin, StoredEvent};
pub use limits::{MAX_BATCH_ITEMS, MAX_EVENT_BYTES};
pub use webhook::{Webhook, WebhookError};

/// The environment an event lands in when its source has no notion of one (GitHub and GitLab
/// issues).
pub const DEFAULT_ENVIRONMENT: &str = "production";
