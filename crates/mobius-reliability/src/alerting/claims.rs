//! Each notification is claimed in the store before it is sent, so that it goes out once
//! however many replicas see the transition: the replica holding the alerts' lease that dies
//! after sending but before storing its alert states, the one that takes the lease over from
//! the states stored before, or two that both believe they hold it (one paused past the
//! lease's TTL) — they all step to the same transition, under the same key, and only the first
//! claim of a key sends it.
//!
//! A key names the SLO, the severity, the *episode* (how many times that severity has fired:
//! kept with the alert states, so replicas restoring the same states agree on it) and the
//! transition: `alert-sent:shop/availability/page/3/firing`. Its document says which replica
//! claimed it and when, which is also when the page's incident opened (so a replica adopting
//! the page knows the incident to resolve later).
//!
//! At most once, not exactly once: the claim is durable before the webhook is called, so a
//! replica that dies after claiming and before its webhook answered (milliseconds, or the
//! retries' few seconds when the webhook fails) leaves that notification unsent; no replica
//! sends it again. Sending again after an unanswered claim would risk the duplicate page this
//! exists to prevent, and the alert itself is not lost: `GET /api/v1/alerts` shows it firing,
//! its incident is opened by whichever replica adopts it (the incident's id is derived from
//! the claim, so opening it twice records it once).

use jiff::Timestamp;
use mobius_events::time::{from_micros, to_micros};
use mobius_slo::alerts::{Notification, Severity};
use mobius_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// How many times each severity of one SLO has fired, as the alert states keep it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Episodes {
    page: u64,
    ticket: u64,
}

impl Episodes {
    fn count(&mut self, severity: Severity) -> &mut u64 {
        match severity {
            Severity::Page => &mut self.page,
            Severity::Ticket => &mut self.ticket,
        }
    }

    /// The episode `n` belongs to: a firing starts the next one, a resolution ends the current.
    fn of(mut self, n: &Notification) -> u64 {
        let count = *self.count(n.severity);
        if n.firing { count + 1 } else { count }
    }

    /// Counts `n`, once it is claimed (by anyone).
    pub(super) fn record(&mut self, n: &Notification) {
        if n.firing {
            *self.count(n.severity) += 1;
        }
    }
}

/// The key of `n`, a transition of `service`'s SLO `slo` in the episodes `episodes` counted.
pub(super) fn transition_key(service: &str, slo: &str, n: &Notification, episodes: Episodes) -> String {
    let state = if n.firing { "firing" } else { "resolved" };
    format!("alert-sent:{service}/{slo}/{}/{}/{state}", n.severity, episodes.of(n))
}

/// The key of the ticket saying `service`'s SLO `slo` cannot be evaluated, since `since_s`.
pub(super) fn unknown_key(service: &str, slo: &str, since_s: i64) -> String {
    format!("alert-sent:{service}/{slo}/unknown/{since_s}")
}

/// Who sends a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Claim {
    /// Whether this replica claimed it (and so sends it).
    pub(super) ours: bool,
    /// When it was claimed.
    pub(super) at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct Claimed {
    by: String,
    /// µs.
    at: i64,
}

/// Claims `key` for `replica` at `now`, or finds whose it is. A claim of this replica's own
/// that stands from an earlier, interrupted evaluation is still its own to send. Blocking.
pub(super) fn claim(store: &dyn Store, key: &str, replica: &str, now: Timestamp) -> Result<Claim, StoreError> {
    let mine = Claimed { by: replica.to_owned(), at: to_micros(now) };
    let value = serde_json::to_string(&mine).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let standing = store.put_state_once(key, &value)?;
    match serde_json::from_str::<Claimed>(&standing) {
        Ok(claimed) => Ok(Claim { ours: claimed.by == replica, at: from_micros(claimed.at) }),
        // Whatever stands there, someone claimed it: it is not this replica's to send.
        Err(_) => Ok(Claim { ours: false, at: now }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(severity: Severity, firing: bool) -> Notification {
        Notification { severity, firing, at_s: 0 }
    }

    #[test]
    fn a_firing_opens_the_next_episode_and_its_resolution_closes_it() {
        let mut episodes = Episodes::default();
        let key = |n: &Notification, e: Episodes| transition_key("shop", "availability", n, e);
        assert_eq!(key(&n(Severity::Page, true), episodes), "alert-sent:shop/availability/page/1/firing");
        episodes.record(&n(Severity::Page, true));
        assert_eq!(key(&n(Severity::Page, false), episodes), "alert-sent:shop/availability/page/1/resolved");
        episodes.record(&n(Severity::Page, false));
        assert_eq!(key(&n(Severity::Ticket, true), episodes), "alert-sent:shop/availability/ticket/1/firing");
        assert_eq!(key(&n(Severity::Page, true), episodes), "alert-sent:shop/availability/page/2/firing");
    }

    #[test]
    fn the_first_claim_sends_and_the_others_learn_when() {
        let dir = tempfile::tempdir().unwrap();
        let store = mobius_store::SqliteStore::open(dir.path()).unwrap();
        let (t0, t1) = (from_micros(1_700_000_000_000_000), from_micros(1_700_000_005_000_000));
        assert_eq!(claim(&store, "k", "a", t0).unwrap(), Claim { ours: true, at: t0 });
        assert_eq!(claim(&store, "k", "b", t1).unwrap(), Claim { ours: false, at: t0 }, "a's, since t0");
        assert_eq!(claim(&store, "k", "a", t1).unwrap(), Claim { ours: true, at: t0 }, "still a's own");
    }
}
