//! Which variant of which flag a response was made with, told to the proxy in one header.
//!
//! Mobius's proxy records per-variant SLIs (issue 15, item 5) from the `x-mobius-flag` header
//! of the service's responses, and a flag rollout stops when its variant's error ratio is bad.
//! So a service tells, on each response, which variants decided it:
//!
//! ```text
//! x-mobius-flag: checkout=on, banner=off
//! ```
//!
//! The format — each flag once, its first evaluation's variant, names percent-encoded beyond
//! RFC 3986's unreserved characters, at most [`MAX_VALUE_BYTES`](crate::header::MAX_VALUE_BYTES)
//! — is [`mobius_flags::header`]'s (re-exported here as `mobius_openfeature::header`), the codec
//! the proxy reads it with. Only evaluations that served a variant of the set are recorded: a
//! flag answered with the caller's default (disabled, not found, an error, no default variant)
//! names no variant and is left out. Nothing served, no header.
//!
//! **Recording it.** Evaluations through [`MobiusProvider`](crate::MobiusProvider) record
//! themselves into the [`Served`] of the task they run in, when the request's handler runs
//! inside [`Served::scope`]. Work spawned onto other tasks is outside the scope (tokio's
//! task-locals do not follow `spawn`): record those evaluations with [`Served::record`]. A
//! service that evaluates with `mobius-flags` directly formats its pairs with
//! [`header::format`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use mobius_flags::header;

/// The response header's name.
pub const HEADER: &str = header::NAME;

tokio::task_local! {
    static SERVED: Served;
}

/// The variants served while handling one request. Cheap to clone: clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pairs: Arc<Mutex<Vec<(String, String)>>>,
}

impl Served {
    /// An empty record, for one request.
    pub fn new() -> Served {
        Served::default()
    }

    /// Runs `work` (the request's handler) with this record as the one the provider's
    /// evaluations go into.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        SERVED.scope(self.clone(), work).await
    }

    /// Records that `flag` served `variant`, unless the flag was already recorded.
    pub fn record(&self, flag: &str, variant: &str) {
        let mut pairs = self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !pairs.iter().any(|(f, _)| f == flag) {
            pairs.push((flag.to_owned(), variant.to_owned()));
        }
    }

    /// The recorded `(flag, variant)` pairs, in the order first evaluated.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The header's value ([`header::format`] of the pairs), or `None` when nothing was served.
    pub fn header_value(&self) -> Option<String> {
        let pairs = self.pairs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        header::format(pairs.iter().map(|(f, v)| (f.as_str(), v.as_str())))
    }
}

/// Records into the current task's [`Served`], when it runs inside [`Served::scope`].
pub(crate) fn record_in_scope(flag: &str, variant: &str) {
    let _ = SERVED.try_with(|served| served.record(flag, variant));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_the_shared_codecs() {
        let served = Served::new();
        assert_eq!(served.header_value(), None, "nothing served, no header");
        served.record("team/checkout", "on");
        served.record("banner", "a,b");
        served.record("team/checkout", "off");
        let value = served.header_value().unwrap();
        assert_eq!(value, "team%2Fcheckout=on, banner=a%2Cb");
        let read: Vec<(String, String)> =
            header::parse(&value).flatten().map(|p| (p.flag.into_owned(), p.variant.into_owned())).collect();
        assert_eq!(read, served.pairs(), "the proxy reads back what was recorded");
    }

    #[tokio::test]
    async fn evaluations_inside_a_scope_are_recorded_there_only() {
        let served = Served::new();
        record_in_scope("outside", "x");
        served
            .scope(async {
                record_in_scope("checkout", "on");
                tokio::task::yield_now().await;
                record_in_scope("banner", "off");
                record_in_scope("checkout", "off");
            })
            .await;
        let other = Served::new();
        other.scope(async { record_in_scope("other", "y") }).await;
        assert_eq!(served.header_value().as_deref(), Some("checkout=on, banner=off"));
        assert_eq!(other.pairs(), vec![("other".to_owned(), "y".to_owned())]);
    }
}
