//! A server run's progress as it happens: job and step states to the store in batches, each
//! finished job's events appended before its final state, and log lines to the run's log (file
//! and live subscribers).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use mobius_events::NewEvent;
use mobius_log::Ingestor;
use mobius_pipelines::engine::{RunObserver, Status, StepReport};
use mobius_pipelines::exec::LogLine;
use mobius_store::{RunState, RunUpdate, Store};
use tokio::sync::Notify;

use super::logs::LogWriter;

/// What the writer thread writes, in the order it is sent.
pub(super) enum Write {
    Update(RunUpdate),
    /// A finished job's events: appended before anything sent after them is stored.
    Events(Vec<NewEvent>),
}

/// Writes progress in batches: whatever arrived while the previous batch was being written
/// goes in the next transaction, so a busy run costs a few commits, not one per step. Events
/// are appended in their place in the order, so a job's final state is stored only once the
/// events it caused are.
/// Each batch stored wakes the commit status delivery (`statuses`): it may have put job
/// states in the outbox.
pub(super) fn write_updates(store: &dyn Store, log: &Ingestor, statuses: &Notify, received: mpsc::Receiver<Write>) {
    let flush = |batch: &mut Vec<RunUpdate>| {
        if batch.is_empty() {
            return;
        }
        match store.update_runs(batch) {
            Ok(()) => statuses.notify_one(),
            Err(e) => tracing::error!(error = %e, "cannot record a run's progress"),
        }
        batch.clear();
    };
    while let Ok(first) = received.recv() {
        let mut batch = Vec::new();
        for write in std::iter::once(first).chain(received.try_iter()) {
            match write {
                Write::Update(update) => batch.push(update),
                Write::Events(events) => {
                    flush(&mut batch);
                    if let Err(e) = log.append(&events) {
                        tracing::error!(error = %e, "cannot append a job's events");
                    }
                }
            }
        }
        flush(&mut batch);
    }
}

/// The observer that records a run's progress: states to the store, lines to the log.
pub(super) struct Progress {
    pub run: i64,
    pub updates: mpsc::Sender<Write>,
    pub log: LogWriter,
    /// Job → (next step position, the step running now and its position).
    pub steps: HashMap<String, (u32, Option<(u32, String)>)>,
}

impl Progress {
    fn job(&self, job: &str, state: RunState) {
        self.send(RunUpdate::Job { run: self.run, job: job.to_owned(), state, at: Timestamp::now() });
    }

    fn step(&self, job: &str, position: u32, name: &str, state: RunState) {
        let update = RunUpdate::Step {
            run: self.run,
            job: job.to_owned(),
            position,
            name: name.to_owned(),
            state,
            at: Timestamp::now(),
        };
        self.send(update);
    }

    fn send(&self, update: RunUpdate) {
        // The writer ends only after the run does (it holds the receiver until every sender,
        // this one included, is gone), so a failed send is a bug worth a line in the log.
        if self.updates.send(Write::Update(update)).is_err() {
            tracing::error!(run = self.run, "the run's state writer is gone");
        }
    }
}

impl RunObserver for Progress {
    fn job_queued(&mut self, job: &str) {
        self.job(job, RunState::Queued);
    }

    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.job(job, RunState::Waiting);
        let text = format!(
            "waiting for a review to deploy to `{environment}`: `mobius runs approve {run} '{job}'` (or `reject`)",
            run = self.run
        );
        let line = LogLine { at: std::time::SystemTime::now(), stream: mobius_pipelines::exec::Stream::Stderr, text };
        self.log.write(job, "Set up job", &line);
    }

    fn job_started(&mut self, job: &str) {
        self.job(job, RunState::Running);
    }

    fn job_finished(&mut self, job: &str, result: Status, _duration: Duration) {
        self.job(job, run_state(result));
    }

    fn step_started(&mut self, job: &str, step: &str) {
        let (next, current) = self.steps.entry(job.to_owned()).or_default();
        let position = *next;
        *next += 1;
        *current = Some((position, step.to_owned()));
        self.step(job, position, step, RunState::Running);
    }

    fn step_finished(&mut self, job: &str, step: &StepReport) {
        let (next, current) = self.steps.entry(job.to_owned()).or_default();
        // A skipped step never started: it takes the next position.
        let position = match current.take() {
            Some((position, name)) if name == step.name => position,
            _ => {
                let position = *next;
                *next += 1;
                position
            }
        };
        self.step(job, position, &step.name, run_state(step.outcome));
    }

    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.log.write(job, step, line);
    }
}

/// The store's word for how a run, job or step ended.
pub(super) fn run_state(status: Status) -> RunState {
    match status {
        Status::Success => RunState::Success,
        Status::Failure => RunState::Failure,
        Status::Cancelled => RunState::Cancelled,
        Status::Skipped => RunState::Skipped,
    }
}
