//! Reliability: what the service level is, what to do about it, and what happened.
//!
//! - [`slo`]: SLO statuses — definitions from each service's deployed `mobius.yaml`, SLIs from
//!   the per-minute counters the proxies recorded or from Prometheus — with budgets, burn rates
//!   and alert rules; the error-budget policy (`gate`, `check`); where a budget went
//!   (`explain`); the Sloth-named `/metrics` series.
//! - [`alerting`]: the [`Alerter`] evaluates every SLO on a timer, notifies webhooks and Slack,
//!   records alert events and opens (and quietly resolves) incidents.
//! - [`incidents`]: every incident with whether it needs a post-mortem, and the draft.
//! - [`redact`]: URLs as logs and errors may show them (no credentials; webhooks by host).
//!
//! Nothing here knows HTTP as a server; evaluating a Prometheus SLI and notifying webhooks are
//! blocking HTTP calls, so callers on an async runtime use `spawn_blocking`.

pub mod alerting;
pub mod incidents;
pub mod redact;
pub mod slo;
#[cfg(test)]
mod testing;

pub use alerting::Alerter;

/// Installs the TLS provider the HTTP clients use (ring), unless one already is: this crate
/// calls webhooks and Prometheus itself, and a library must not rely on its binary for this.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
