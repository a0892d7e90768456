//! Appending events, shared by the HTTP API and the CLI's embedded mode.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use mobius_events::cdevents::EventError;
use mobius_events::materialise::Rules;
use mobius_events::{AppendStatus, NewEvent};
use mobius_git::GitAncestry;
use mobius_store::{IngestContext, Store, StoreError};
use serde::{Deserialize, Serialize};

/// What happened to one event of a request or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Stored,
    Duplicate,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult {
    /// Position in the request (0-based).
    pub index: usize,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why it was rejected, naming the field or position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per-event results and their totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// Appends events to a store under the configured rules.
#[derive(Clone)]
pub struct Ingestor {
    pub store: Arc<dyn Store>,
    pub rules: Rules,
}

impl Ingestor {
    pub fn new(store: Arc<dyn Store>, rules: Rules) -> Ingestor {
        Ingestor { store, rules }
    }

    /// Appends valid events in one transaction; rejected ones are reported and write nothing.
    pub fn ingest(&self, items: Vec<Result<NewEvent, EventError>>) -> Result<IngestReport, StoreError> {
        let (mut report, slots, valid) = sort_out(items);
        let statuses = self.append(&valid)?;
        complete(&mut report, slots, &valid, statuses);
        Ok(report)
    }

    /// Appends a bulk import's batches, in order, each as [`Ingestor::ingest`] would, and hands
    /// each batch's report to `done` as soon as it is in — before it is durable: the import is
    /// durable once this returns `Ok` (see [`Store::import`]).
    pub fn import(
        &self,
        batches: impl Iterator<Item = Vec<Result<NewEvent, EventError>>>,
        mut done: impl FnMut(IngestReport),
    ) -> Result<(), StoreError> {
        let repositories = self.store.repositories()?;
        let ancestry = GitAncestry::new(repositories.into_iter().map(|r| (r.name, r.path.into())));
        // The store takes the valid events of a batch and gives them back appended, in order:
        // the rest of each batch's report waits here meanwhile.
        let waiting = RefCell::new(VecDeque::new());
        let mut valid = batches.map(|items| {
            let (report, slots, valid) = sort_out(items);
            waiting.borrow_mut().push_back((report, slots));
            valid
        });
        self.store.import(
            &mut valid,
            &IngestContext { rules: self.rules, ancestry: &ancestry },
            &mut |events, statuses| {
                let (mut report, slots) = waiting.borrow_mut().pop_front().expect("a report waits for each batch");
                complete(&mut report, slots, &events, statuses);
                done(report);
            },
        )
    }

    /// Appends already-validated events.
    pub fn append(&self, events: &[NewEvent]) -> Result<Vec<AppendStatus>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Read per call so that `mobius repo add` takes effect without a restart; it is one
        // small indexed read next to a durable write.
        let repositories = self.store.repositories()?;
        let ancestry = GitAncestry::new(repositories.into_iter().map(|r| (r.name, r.path.into())));
        self.store.append(events, &IngestContext { rules: self.rules, ancestry: &ancestry })
    }
}

impl Ingestor {
    /// Runs `write` with the context appends materialise under: for a store write that
    /// appends its own audit event in its transaction (a flag set's change), so the change and
    /// its event commit together or not at all.
    pub fn with_context<T>(&self, write: impl FnOnce(&IngestContext<'_>) -> T) -> Result<T, StoreError> {
        let repositories = self.store.repositories()?;
        let ancestry = GitAncestry::new(repositories.into_iter().map(|r| (r.name, r.path.into())));
        Ok(write(&IngestContext { rules: self.rules, ancestry: &ancestry }))
    }
}

/// The report of a batch's rejected items, the positions of its valid events, and those events.
fn sort_out(items: Vec<Result<NewEvent, EventError>>) -> (IngestReport, Vec<usize>, Vec<NewEvent>) {
    let mut report = IngestReport::default();
    let mut valid = Vec::with_capacity(items.len());
    let mut slots = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Ok(event) => {
                slots.push(index);
                valid.push(event);
            }
            Err(error) => {
                report.rejected += 1;
                report.results.push(EventResult {
                    index,
                    status: Status::Rejected,
                    id: None,
                    source: None,
                    error: Some(error.to_string()),
                });
            }
        }
    }
    (report, slots, valid)
}

/// Adds the appended events' statuses to the report of their batch, in the batch's order.
fn complete(report: &mut IngestReport, slots: Vec<usize>, events: &[NewEvent], statuses: Vec<AppendStatus>) {
    for ((index, event), status) in slots.into_iter().zip(events).zip(statuses) {
        let status = match status {
            AppendStatus::Stored => {
                report.stored += 1;
                Status::Stored
            }
            AppendStatus::Duplicate => {
                report.duplicates += 1;
                Status::Duplicate
            }
        };
        report.results.push(EventResult {
            index,
            status,
            id: Some(event.id.clone()),
            source: Some(event.source.clone()),
            error: None,
        });
    }
    report.results.sort_by_key(|r| r.index);
}
