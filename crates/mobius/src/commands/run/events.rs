//! Appends a local run's CDEvents (built by [`mobius_runs::cdevents`]) to the local
//! event log, so `mobius dora` and `mobius flow` see pipeline runs made on this machine too.

use std::path::Path;

use anyhow::{Context, Result};
use mobius_events::NewEvent;

pub(super) use mobius_runs::cdevents::{Recorder, RunIdentity};

use crate::commands::{off_runtime, open_store, settings};

/// Appends `events` (built, so validated, by the typed constructors) to the event log in
/// `data_dir` in one batch. Returns how many were stored and the data directory.
pub(super) fn append(data_dir: Option<&Path>, events: &[NewEvent]) -> Result<(usize, String)> {
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let ingestor = mobius_log::ingest::Ingestor::new(store, settings.rules);
    let statuses = off_runtime(|| ingestor.append(events)).context("cannot append the run events")?;
    let stored = statuses.iter().filter(|s| **s == mobius_events::AppendStatus::Stored).count();
    Ok((stored, settings.data_dir.display().to_string()))
}
