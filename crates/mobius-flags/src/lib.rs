//! Feature flags in flagd's format, evaluated in process with flagd's semantics.
//!
//! A flag set is a flagd JSON document (`flags`, `$evaluators`, `metadata`). Loading it
//! ([`FlagSet::from_json`], [`FlagSet::from_file`]) validates everything once — flagd's schema,
//! the rules, and what would only fail later (a `$ref` to nothing, a negative weight, a literal
//! that names no variant) — and refuses the document at `file:line:column` with the JSON
//! pointer of the value at fault ([`LoadError`]). What loads is an immutable, compiled
//! [`FlagSet`], cheap to clone and share.
//!
//! Evaluation ([`FlagSet::evaluate`], [`FlagSet::evaluate_all`], and typed helpers such as
//! [`FlagSet::boolean`]) follows flagd exactly: JsonLogic targeting with flagd's `fractional`
//! (bit-exact with flagd's bucketing, [`fractional`]), `sem_ver` ([`semver`]), `starts_with`
//! and `ends_with`; the injected `$flagd.flagKey` and `$flagd.timestamp`; reasons and OFREP
//! error codes ([`Reason`], [`ErrorCode`]). No evaluation panics or fails another flag, whatever
//! the context.
//!
//! `fractional` buckets with flagd's high-precision algorithm (flagd 0.15 and later) unless a
//! set asks for the legacy one its users were split with before, in its own metadata:
//! `"metadata": {"mobius.fractional": "legacy"}` (or `"high-precision"`; anything else is
//! refused at its position). See [`fractional`] and [`Algorithm`].
//!
//! ```
//! use mobius_flags::{Context, FlagSet, LoadOptions, Reason};
//!
//! let document = r#"{
//!   "flags": {
//!     "new-checkout": {
//!       "state": "ENABLED",
//!       "variants": {"on": true, "off": false},
//!       "defaultVariant": "off",
//!       "targeting": {"fractional": [["on", 10], ["off", 90]]}
//!     }
//!   }
//! }"#;
//! let set = FlagSet::from_json("shop.flagd.json", document, &LoadOptions::default())?;
//! let checkout = set.boolean("new-checkout", &Context::with_targeting_key("user-42"), false);
//! assert_eq!(checkout.reason, Reason::Split);
//!
//! let broken = document.replace("90]", "-90]");
//! let error = FlagSet::from_json("shop.flagd.json", &broken, &LoadOptions::default()).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "shop.flagd.json:7:56: at /flags/new-checkout/targeting/fractional/1/1: \
//!      a fractional weight must not be negative, found -90"
//! );
//! # Ok::<(), mobius_flags::LoadError>(())
//! ```
//!
//! Modules: `position` (a JSON parser that keeps offsets), `load` (validation), `logic`
//! (JsonLogic: compiling and evaluating rules, JavaScript's coercions), [`fractional`],
//! [`semver`], `evaluate` (outcomes), `set` (the loaded set), and [`header`]: the
//! `x-mobius-flag` response header naming the variants a response was served with, the one
//! codec the OpenFeature provider writes it with and Mobius's proxy reads it with.
//!
//! This crate has no I/O beyond reading a file on request, no async runtime and no network:
//! the server's OFREP endpoints and the OpenFeature provider are built on top of it.

#![warn(missing_docs)]

mod error;
mod evaluate;
pub mod fractional;
pub mod header;
mod load;
mod logic;
mod position;
pub mod semver;
mod set;

pub use error::{ErrorCode, LoadError, LoadErrorKind, Location, Reason};
pub use evaluate::{Context, ContextError, Evaluation, Resolved};
pub use fractional::Algorithm;
pub use load::{LoadOptions, Strictness};
pub use position::{MAX_DEPTH, locate};
pub use set::{Flag, FlagSet, VariantType};
