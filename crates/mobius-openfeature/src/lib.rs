//! An [OpenFeature](https://openfeature.dev) provider for Rust services that evaluates a Mobius
//! flag set in process: no network per evaluation, flagd's semantics, and the flag set kept
//! current from the server's change stream.
//!
//! [`MobiusProvider`] fetches the set's flagd document from the server
//! (`GET /api/v1/flags/{set}`), loads it with [`mobius_flags`] — the evaluator the server's
//! OFREP endpoints use, so a context gets the same value, variant and reason in process as over
//! HTTP — and swaps it in whole. A background task refetches whenever
//! `/ofrep/v1/events` announces a change (reconnecting with backoff when the stream breaks) and
//! polls every 30 s as the fallback. When the server is away, or sends a document that does not
//! load, the set held stays in force and the provider reports itself `STALE`; before any set was
//! loaded, evaluations answer `PROVIDER_NOT_READY` and the caller's default applies.
//!
//! The proxy measures each variant's errors from the `x-mobius-flag` response header, which
//! [`Served`] fills from the evaluations made while handling a request (the format is
//! [`header`]'s, the codec the proxy reads it with).
//!
//! ```no_run
//! use mobius_openfeature::{HEADER, MobiusProvider, Served};
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A token that may read (`mobius token create --scope read`), from the environment.
//! let token = std::env::var("MOBIUS_FLAGS_TOKEN")?;
//! let provider = MobiusProvider::builder("https://mobius.example.com", token, "shop-production").build()?;
//! // `set_provider` initializes it: one fetch, then the task follows the change stream.
//! OpenFeature::singleton_mut().await.set_provider(provider.clone()).await;
//! let client = OpenFeature::singleton().await.create_client();
//!
//! // In a request's handler: evaluate inside the request's `Served` scope...
//! let served = Served::new();
//! let user = EvaluationContext::default().with_targeting_key("user-42").with_custom_field("plan", "pro");
//! let checkout = served
//!     .scope(async { client.get_bool_value("new-checkout", Some(&user), None).await.unwrap_or(false) })
//!     .await;
//! // ...and tell the proxy which variants made the response: `x-mobius-flag: new-checkout=on`.
//! if let Some(value) = served.header_value() {
//!     println!("{HEADER}: {value} (checkout on: {checkout})");
//! }
//!
//! // At exit: stop following the server.
//! provider.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! **What OpenFeature 0.3's trait cannot say.** Its provider is given no default value and its
//! client returns the caller's default only for an error. So a flag with no value for the
//! context — disabled (`DISABLED`), or no default variant and no targeting match (`DEFAULT`) —
//! is answered as an error with code `General("DISABLED")` or `General("DEFAULT")`, and the
//! caller's `unwrap_or(default)` gives what flagd would. For the reason itself, evaluate with
//! [`mobius_flags`] on [`MobiusProvider::flag_set`], whose typed helpers take the default.
//! The trait has no events either: [`MobiusProvider`]'s `status()` says where it stands.
//!
//! Modules: `provider` (the provider and its builder), `sync` (fetching, the stream, polling),
//! `sse` (Server-Sent Events), `context` (OpenFeature's context as JSON), `resolve` (reasons,
//! codes and typed values), [`served`] (recording the variants a response was served with),
//! `error`.

#![warn(missing_docs)]

mod context;
mod error;
mod provider;
mod resolve;
pub mod served;
mod sse;
mod sync;

pub use context::{InvalidContext, to_flags_context};
pub use error::{BuildError, SyncError};
/// The `x-mobius-flag` header's codec, [`mobius_flags::header`]: for services that format or
/// read the header themselves.
pub use mobius_flags::header;
pub use provider::{Builder, MobiusProvider, PROVIDER_NAME};
pub use served::{HEADER, Served};
pub use sync::MAX_DOCUMENT_BYTES;
