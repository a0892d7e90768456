//! Appends a local run's CDEvents (built by [`mobius_runs::cdevents`]) to the local
//! event log, so `mobius dora` and `mobius flow` see pipeline runs made on this machine too.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub(super) use mobius_runs::cdevents::{Recorder, RunIdentity};

use crate::commands::{open_store, settings};

/// Validates `events` with the API's CDEvents parser and appends them to the event log in
/// `data_dir` in one batch. Returns how many were stored and the data directory.
pub(super) fn append(data_dir: Option<&Path>, events: &[Value]) -> Result<(usize, String)> {
    // Validated before anything is written: a bad event means a bug, and it must not leave a
    // partial or malformed record in the log.
    let parsed = mobius_log::ingest::validate(events).map_err(anyhow::Error::msg)?;
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let ingestor = mobius_log::ingest::Ingestor::new(store, settings.rules);
    let report = ingestor.ingest(parsed).context("cannot append the run events")?;
    if report.rejected > 0 {
        bail!("{} run events were rejected", report.rejected);
    }
    Ok((report.stored, settings.data_dir.display().to_string()))
}
