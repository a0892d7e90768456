//! The scans a server run ran (`mobius/secret-scan@v1`, `mobius/dependency-audit@v1`), kept
//! beside each artifact it uploaded: what the gate policies read as `input.artifact.scan`.
//!
//! A document of the store under `scan:<digest>`, written as the run ends with its
//! provenance: the secret findings and the vulnerabilities by severity, summed over the run's
//! scanner steps. A run without a scanner step records nothing, so "not scanned" stays
//! distinguishable from "scanned clean".

use mobius_pipelines::engine::{RunReport, SCANNER};
use mobius_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// What a run's scanners found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scanned {
    /// Secret findings not accepted by a baseline or `.gitleaksignore`.
    pub secrets: u32,
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    /// Whether a secret scan and a dependency audit ran.
    pub secret_scan: bool,
    pub dependency_audit: bool,
}

fn key(digest: &str) -> String {
    format!("scan:{digest}")
}

/// What the scanner steps of `report` found; `None` when none ran.
pub fn of_run(report: &RunReport) -> Option<Scanned> {
    let mut scanned = Scanned::default();
    let mut any = false;
    for step in report.jobs.iter().flat_map(|j| &j.steps) {
        let count = |name: &str| step.outputs.get(name).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
        match step.outputs.get(SCANNER).map(String::as_str) {
            Some("secret-scan") => {
                scanned.secrets += count("findings");
                scanned.secret_scan = true;
            }
            Some("dependency-audit") => {
                scanned.critical += count("critical");
                scanned.high += count("high");
                scanned.medium += count("medium");
                scanned.low += count("low");
                scanned.dependency_audit = true;
            }
            _ => continue,
        }
        any = true;
    }
    any.then_some(scanned)
}

/// Records `scanned` beside each artifact a run uploaded. A failure is logged.
pub fn record(store: &dyn Store, scanned: &Scanned, uploaded: &[(String, String)]) {
    let Ok(text) = serde_json::to_string(scanned) else { return };
    for (name, digest) in uploaded {
        if let Err(error) = store.put_state(&key(digest), &text) {
            tracing::error!(%error, artifact = %name, %digest, "cannot record an artifact's scans");
        }
    }
}

/// The scans recorded for the artifact `digest`, if any.
pub fn of(store: &dyn Store, digest: &str) -> Result<Option<Scanned>, StoreError> {
    let Some(text) = store.state(&key(digest))? else { return Ok(None) };
    Ok(serde_json::from_str(&text).ok())
}
