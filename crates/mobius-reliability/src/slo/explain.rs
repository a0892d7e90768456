//! Where an SLO's error budget went: its bad requests by version (each version is a
//! deployment's), by day, and the incidents of the window with the share of the budget each
//! consumed — so the number in `mobius slo status` can list what is behind it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use mobius_slo::spec::{Sli, SloSpec};
use mobius_store::{SliMinute, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::slow;

/// An SLO's budget, taken apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub service: String,
    pub slo: String,
    pub environment: String,
    /// Start of the window, and now.
    pub from: Timestamp,
    pub to: Timestamp,
    /// The budget in bad requests: (1 − objective) × requests in the window.
    pub allowed_bad: f64,
    /// Per version, most bad requests first.
    pub versions: Vec<Share>,
    /// Per UTC day that had bad requests, oldest first.
    pub days: Vec<Share>,
    /// Incidents of the service in the environment detected in the window, newest first, with
    /// the bad requests between their detection and resolution (whole minutes).
    pub incidents: Vec<IncidentShare>,
}

/// Requests and bad requests of one part of the window, and the share of the budget they used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// A version, or a day (`2026-11-26`).
    pub name: String,
    pub requests: u64,
    pub bad: u64,
    /// `bad / allowed_bad` (0 when nothing was allowed).
    pub budget_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentShare {
    pub key: String,
    pub title: String,
    pub detected: Timestamp,
    pub resolved: Option<Timestamp>,
    pub bad: u64,
    pub budget_share: f64,
}

/// Takes `slo` of `service` apart as of `now`; `None` for a Prometheus SLI (its requests are
/// not in the store).
pub fn explain(
    store: &dyn Store,
    service: &str,
    slo: &SloSpec,
    now: Timestamp,
) -> Result<Option<Explanation>, StoreError> {
    let bad_of: Box<dyn Fn(&SliMinute) -> u64> = match &slo.sli {
        Sli::Availability {} => Box::new(|m: &SliMinute| m.errors),
        Sli::Latency { threshold_ms } => {
            let threshold = threshold_ms.value;
            Box::new(move |m: &SliMinute| slow(m, threshold))
        }
        Sli::Prometheus(_) => return Ok(None),
    };
    let environment = slo.environment_name().to_owned();
    let window_s = i64::try_from(slo.window_seconds()).unwrap_or(i64::MAX);
    let now_s = now.as_second();
    let from_s = now_s.saturating_sub(window_s);
    // Whole buckets that began in the window, as the budget counts them.
    let rows = store.sli(service, &environment, from_s + (60 - from_s.rem_euclid(60)) % 60, now_s + 60)?;
    let total: u64 = rows.iter().map(|m| m.requests).sum();
    let allowed_bad = slo.error_budget() * total as f64;
    let share = |bad: u64| if allowed_bad > 0.0 { bad as f64 / allowed_bad } else { 0.0 };
    let mut by_version: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut by_day: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for m in &rows {
        let bad = bad_of(m);
        let v = by_version.entry(&m.version).or_default();
        *v = (v.0 + m.requests, v.1 + bad);
        let d = by_day.entry(m.minute - m.minute.rem_euclid(86_400)).or_default();
        *d = (d.0 + m.requests, d.1 + bad);
    }
    let mut versions: Vec<Share> = by_version
        .into_iter()
        .map(|(name, (requests, bad))| Share { name: name.to_owned(), requests, bad, budget_share: share(bad) })
        .collect();
    versions.sort_by(|a, b| b.bad.cmp(&a.bad).then(a.name.cmp(&b.name)));
    let days = by_day
        .into_iter()
        .filter(|(_, (_, bad))| *bad > 0)
        .map(|(day, (requests, bad))| {
            let name =
                Timestamp::from_second(day).map_or_else(|_| day.to_string(), |t| t.strftime("%Y-%m-%d").to_string());
            Share { name, requests, bad, budget_share: share(bad) }
        })
        .collect();
    let from = Timestamp::from_second(from_s).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut incidents = Vec::new();
    for i in store.incidents()? {
        if i.service != service || i.environment != environment || i.detected < from {
            continue;
        }
        let (start, end) = (i.detected.as_second(), i.resolved.unwrap_or(now).as_second());
        // The minutes from the one it was detected in to the one it was resolved in.
        let first = start - start.rem_euclid(60);
        let bad: u64 = rows.iter().filter(|m| m.minute >= first && m.minute <= end).map(&bad_of).sum();
        incidents.push(IncidentShare {
            key: i.key,
            title: i.title,
            detected: i.detected,
            resolved: i.resolved,
            bad,
            budget_share: share(bad),
        });
    }
    Ok(Some(Explanation {
        service: service.to_owned(),
        slo: slo.name().to_owned(),
        environment,
        from,
        to: now,
        allowed_bad,
        versions,
        days,
        incidents,
    }))
}
