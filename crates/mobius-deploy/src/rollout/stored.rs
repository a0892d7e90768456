//! A rollout as the control plane stores it: the state machine and the definitions it was made
//! from. Delivery writes it after every action; reliability reads the deployed `mobius.yaml`
//! (SLOs, owner, runbook) from it, so both share this one shape.

use serde::{Deserialize, Serialize};

use super::Rollout;

/// A rollout as stored: the state machine and the definition it was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub rollout: Rollout,
    /// The `mobius.yaml` text of the new version (instances of either version are launched
    /// from their own release's file).
    pub spec: String,
    /// The stable version's `mobius.yaml`, when there is one.
    pub stable_spec: Option<String>,
    /// With replicas: the machine whose processes the recorded instances are (its host name).
    /// A replica on another machine restarts them rather than adopt a pid that is not theirs
    /// there. `None`: this machine's (one server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}
