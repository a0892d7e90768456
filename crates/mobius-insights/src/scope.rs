//! Which facts a window's measurements are about; shared so DORA and the value stream agree.

use std::collections::HashMap;

use mobius_events::facts::{Deployment, DeploymentId, DeploymentOutcome, FactSet, ShippedChange};

use crate::Window;

/// Deployment attempts of `outcome` finished in the window, oldest first.
pub(crate) fn attempts(facts: &FactSet, window: Window, outcome: DeploymentOutcome) -> Vec<&Deployment> {
    let mut attempts: Vec<&Deployment> =
        facts.deployments.iter().filter(|d| d.outcome == outcome && window.contains(d.finished)).collect();
    // The store orders by finish time already; sorting again keeps explanations stable for
    // facts built any other way, with the id breaking ties.
    attempts.sort_by_key(|d| (d.finished, d.id));
    attempts
}

/// The changes first shipped by `deployments`, each with its deployment, in deployment order
/// and then commit order.
pub(crate) fn changes_of<'a>(
    facts: &'a FactSet,
    deployments: &[&'a Deployment],
) -> Vec<(&'a ShippedChange, &'a Deployment)> {
    let by_id: HashMap<DeploymentId, &Deployment> = deployments.iter().map(|d| (d.id, *d)).collect();
    let mut changes: Vec<(&ShippedChange, &Deployment)> =
        facts.changes.iter().filter_map(|change| Some((change, *by_id.get(&change.deployment_id)?))).collect();
    changes.sort_by(|(a, da), (b, db)| {
        (da.finished, da.id, a.commit_time, &a.sha).cmp(&(db.finished, db.id, b.commit_time, &b.sha))
    });
    changes
}
