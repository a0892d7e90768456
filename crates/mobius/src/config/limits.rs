//! `[limits]` in `mobius.toml`: connections and request bodies the server accepts.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::parse_interval;

/// `[limits]` in `mobius.toml`: what the server accepts from clients. Each defaults to
/// `mobius_server::limits::Limits::default()`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// Connections open at once (4096); more wait in the listen backlog.
    pub max_connections: Option<usize>,
    /// Time to receive a request's head, also the longest a kept-alive connection may wait for
    /// its next request (`10s`).
    pub header_read_timeout: Option<String>,
    /// Time to receive a whole request body (`30s`).
    pub body_read_timeout: Option<String>,
    /// A connection with no byte read or written for this long is closed (`60s`).
    pub idle_timeout: Option<String>,
    /// The largest request body, in MiB (10).
    pub max_body_mib: Option<usize>,
    /// Request body bytes held in memory at once across all requests, in MiB (64).
    pub body_budget_mib: Option<usize>,
    /// Bodies read at once before the sender is known (webhooks) (8).
    pub unauthenticated_reads: Option<usize>,
}

/// The server's limits: the defaults, with what `[limits]` says over them.
pub(super) fn limits(file: FileLimits) -> Result<mobius_server::limits::Limits> {
    let mut limits = mobius_server::limits::Limits::default();
    let positive = |name: &str, n: usize| if n == 0 { bail!("`{name}` must be at least 1") } else { Ok(n) };
    if let Some(n) = file.max_connections {
        limits.max_connections = positive("max_connections", n)?;
    }
    if let Some(text) = file.header_read_timeout {
        limits.header_read_timeout = parse_interval(&text).context("`header_read_timeout`")?;
    }
    if let Some(text) = file.body_read_timeout {
        limits.body_read_timeout = parse_interval(&text).context("`body_read_timeout`")?;
    }
    if let Some(text) = file.idle_timeout {
        limits.idle_timeout = parse_interval(&text).context("`idle_timeout`")?;
    }
    if let Some(mib) = file.max_body_mib {
        limits.max_body_bytes = positive("max_body_mib", mib)?.saturating_mul(1 << 20);
    }
    if let Some(mib) = file.body_budget_mib {
        limits.body_budget_bytes = positive("body_budget_mib", mib)?.saturating_mul(1 << 20);
    }
    if let Some(n) = file.unauthenticated_reads {
        limits.unauthenticated_reads = positive("unauthenticated_reads", n)?;
    }
    if limits.body_budget_bytes < limits.max_body_bytes {
        bail!("`body_budget_mib` must be at least `max_body_mib`: one body must fit in the budget");
    }
    Ok(limits)
}
