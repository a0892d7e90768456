//! DORA's four keys over a [`FactSet`], with bands and, on request, the facts behind them.
//!
//! The definitions, exactly as computed (a window is half-open, `[from, to)`):
//!
//! - **Deployments** are the successful deployment attempts whose `finished` is in the window.
//!   Failed attempts finished in the window are counted apart (`failed_attempts`) and are not
//!   deployments anywhere below.
//! - **Deployment frequency**: `per_day` is deployments over the window's length in days of
//!   86 400 s (fractional). `deploy_days_per_week_median` takes every ISO week (Monday to
//!   Sunday, UTC) the window overlaps, counts the distinct UTC calendar days on which a
//!   deployment finished, and takes the median of those counts; a week with no deployment
//!   counts 0, and a week the window only partly covers counts only its covered days, so
//!   short edges pull the median down. The band comes from `per_day`; no deployments is a
//!   rate of zero and band low.
//! - **Lead time for changes**: for each change first shipped by one of the window's
//!   deployments, the seconds from its `commit_time` to that deployment's `finished`
//!   (negative spans, from clock skew, count as zero). The median and the nearest-rank 90th
//!   percentile are in [`crate::stats`]; the band comes from the median.
//! - **Change failure rate**: a deployment failed if it was rolled back or any incident in
//!   the facts is attributed to it, whenever that incident was detected; it counts once
//!   however many reasons it has. The rate is failed deployments over deployments.
//! - **Failed deployment recovery time**: for each incident whose `resolved` is in the
//!   window, the seconds from `detected` to `resolved` (negative spans count as zero); the
//!   median, and the band from it. Every incident of the service counts, attributed or not:
//!   an unattributed outage is still time users spent without the service.
//!
//! An empty sample gives `null` and no band, never zero.

mod report;

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use mobius_events::facts::{Deployment, DeploymentId, DeploymentOutcome, FactSet, Incident};

pub use self::report::{
    ChangeFailureRate, DeploymentFrequency, DoraExplain, DoraReport, ExplainedChange, ExplainedDeployment,
    ExplainedIncident, FailedAttempt, LeadTime, RecoveryTime,
};
use crate::Window;
use crate::bands::{BandTable, Metric};
use crate::scope;
use crate::stats::{elapsed_seconds, median, percentile};

/// Measures DORA's four keys for `service` in `environment` from `facts`, which must hold that
/// service's facts in that environment; `service` and `environment` only label the report.
/// Facts outside `window` are left out as the [module documentation](self) defines. With
/// `explain`, the report lists the deployments, failed attempts, changes and incidents behind
/// each number.
pub fn dora(
    service: &str,
    environment: &str,
    facts: &FactSet,
    window: Window,
    bands: &BandTable,
    explain: bool,
) -> DoraReport {
    let deployments = scope::attempts(facts, window, DeploymentOutcome::Success);
    let failed_attempts = scope::attempts(facts, window, DeploymentOutcome::Failure);
    let changes = lead_times(facts, &deployments);
    let judged = judge(facts, &deployments);
    let incidents = recovered(facts, window);

    DoraReport {
        service: service.to_owned(),
        environment: environment.to_owned(),
        from: window.from,
        to: window.to,
        bands: bands.name().to_owned(),
        deployment_frequency: deployment_frequency(&deployments, failed_attempts.len(), window, bands),
        lead_time: lead_time(&changes, bands),
        change_failure_rate: change_failure_rate(&judged, bands),
        recovery_time: recovery_time(&incidents, bands),
        explain: explain.then(|| DoraExplain {
            deployments: judged,
            failed_attempts: failed_attempts
                .iter()
                .map(|d| FailedAttempt {
                    id: d.id,
                    key: d.key.clone(),
                    revision: d.revision.clone(),
                    finished: d.finished,
                })
                .collect(),
            changes,
            incidents,
        }),
    }
}

fn deployment_frequency(
    deployments: &[&Deployment],
    failed_attempts: usize,
    window: Window,
    bands: &BandTable,
) -> DeploymentFrequency {
    let days = window.days();
    let per_day = if days > 0.0 { deployments.len() as f64 / days } else { 0.0 };
    DeploymentFrequency {
        deployments: deployments.len(),
        failed_attempts,
        per_day,
        deploy_days_per_week_median: deploy_days_per_week_median(deployments, window),
        band: bands.classify(Metric::DeploymentFrequency, per_day),
    }
}

fn lead_time(changes: &[ExplainedChange], bands: &BandTable) -> LeadTime {
    let seconds: Vec<f64> = changes.iter().map(|c| c.lead_time_seconds).collect();
    let median = median(&seconds);
    LeadTime {
        changes: changes.len(),
        median_seconds: median,
        p90_seconds: percentile(&seconds, 90),
        band: median.map(|m| bands.classify(Metric::LeadTime, m)),
    }
}

fn change_failure_rate(judged: &[ExplainedDeployment], bands: &BandTable) -> ChangeFailureRate {
    let failed = judged.iter().filter(|d| d.failed).count();
    let rate = (!judged.is_empty()).then(|| failed as f64 / judged.len() as f64);
    ChangeFailureRate {
        deployments: judged.len(),
        failed,
        rate,
        band: rate.map(|r| bands.classify(Metric::ChangeFailureRate, r)),
    }
}

fn recovery_time(incidents: &[ExplainedIncident], bands: &BandTable) -> RecoveryTime {
    let seconds: Vec<f64> = incidents.iter().map(|i| i.recovery_seconds).collect();
    let median = median(&seconds);
    RecoveryTime {
        incidents: incidents.len(),
        median_seconds: median,
        band: median.map(|m| bands.classify(Metric::RecoveryTime, m)),
    }
}

/// Each change first shipped by one of `deployments`, with its lead time.
fn lead_times(facts: &FactSet, deployments: &[&Deployment]) -> Vec<ExplainedChange> {
    scope::changes_of(facts, deployments)
        .into_iter()
        .map(|(change, deployment)| ExplainedChange {
            sha: change.sha.clone(),
            repository: change.repository.clone(),
            summary: change.message.lines().next().unwrap_or_default().to_owned(),
            commit_time: change.commit_time,
            deployment_id: change.deployment_id,
            lead_time_seconds: elapsed_seconds(change.commit_time, deployment.finished),
        })
        .collect()
}

/// Decides, for each deployment, whether it failed and why.
fn judge(facts: &FactSet, deployments: &[&Deployment]) -> Vec<ExplainedDeployment> {
    let mut attributed: HashMap<DeploymentId, Vec<&Incident>> = HashMap::new();
    for incident in &facts.incidents {
        if let Some(id) = incident.deployment_id {
            attributed.entry(id).or_default().push(incident);
        }
    }
    deployments
        .iter()
        .map(|d| {
            let mut incidents = attributed.get(&d.id).cloned().unwrap_or_default();
            incidents.sort_by(|a, b| (a.detected, &a.key).cmp(&(b.detected, &b.key)));
            let why: Vec<String> = d
                .rolled_back
                .map(|_| "rolled_back".to_owned())
                .into_iter()
                .chain(incidents.iter().map(|i| format!("incident {}", i.key)))
                .collect();
            ExplainedDeployment {
                id: d.id,
                key: d.key.clone(),
                revision: d.revision.clone(),
                finished: d.finished,
                failed: !why.is_empty(),
                why,
            }
        })
        .collect()
}

/// The incidents resolved in the window, in order of resolution.
fn recovered(facts: &FactSet, window: Window) -> Vec<ExplainedIncident> {
    let mut incidents: Vec<ExplainedIncident> = facts
        .incidents
        .iter()
        .filter_map(|i| {
            let resolved = i.resolved.filter(|r| window.contains(*r))?;
            Some(ExplainedIncident {
                key: i.key.clone(),
                detected: i.detected,
                resolved,
                recovery_seconds: elapsed_seconds(i.detected, resolved),
                deployment_id: i.deployment_id,
                attribution: i.attribution,
            })
        })
        .collect();
    incidents.sort_by(|a, b| (a.resolved, &a.key).cmp(&(b.resolved, &b.key)));
    incidents
}

/// The median number of deployment days over the ISO weeks the window overlaps.
fn deploy_days_per_week_median(deployments: &[&Deployment], window: Window) -> f64 {
    // An empty or reversed window overlaps no week: no deployment days, not an error.
    if window.validate().is_err() {
        return 0.0;
    }
    // The window is half-open, so its last day is the day of the instant just before `to`.
    let last = window.to.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(window.to);
    let weeks = iso_week(utc_day(window.from))..=iso_week(utc_day(last));

    let mut days: Vec<i64> = deployments.iter().map(|d| utc_day(d.finished)).collect();
    days.sort_unstable();
    days.dedup();
    let mut per_week: BTreeMap<i64, usize> = BTreeMap::new();
    for day in days {
        *per_week.entry(iso_week(day)).or_default() += 1;
    }
    let counts: Vec<f64> = weeks.map(|week| per_week.get(&week).copied().unwrap_or(0) as f64).collect();
    median(&counts).unwrap_or(0.0)
}

/// Days since 1970-01-01 of the UTC calendar day `at` falls on.
fn utc_day(at: Timestamp) -> i64 {
    // `as_second` truncates towards zero; step back a second for instants just before a
    // whole second before the epoch so flooring stays right.
    let second = at.as_second() - i64::from(at.subsec_nanosecond() < 0);
    second.div_euclid(86_400)
}

/// A number for the ISO week (Monday to Sunday) of a day from [`utc_day`]; consecutive weeks
/// get consecutive numbers. 1970-01-01 was a Thursday, three days after its week's Monday.
fn iso_week(day: i64) -> i64 {
    (day + 3).div_euclid(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2024-01-07 is a Sunday, 2024-01-08 a Monday.
        let sunday = utc_day(ts("2024-01-07T23:59:59Z"));
        let monday = utc_day(ts("2024-01-08T00:00:00Z"));
        assert_eq!(monday, sunday + 1);
        assert_eq!(iso_week(monday), iso_week(sunday) + 1);
        assert_eq!(iso_week(monday), iso_week(utc_day(ts("2024-01-14T12:00:00Z"))));
    }

    #[test]
    fn days_before_the_epoch_floor() {
        assert_eq!(utc_day(ts("1969-12-31T23:59:59.5Z")), -1);
        assert_eq!(utc_day(ts("1970-01-01T00:00:00Z")), 0);
        // 1969-12-29 was the Monday of the epoch's week.
        assert_eq!(iso_week(utc_day(ts("1969-12-29T00:00:00Z"))), 0);
        assert_eq!(iso_week(utc_day(ts("1969-12-28T23:00:00Z"))), -1);
    }
}
