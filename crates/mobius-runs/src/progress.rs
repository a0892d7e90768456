//! A server run's progress as it happens: job and step states to the store in batches, and
//! log lines to the run's log (file and live subscribers).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use jiff::Timestamp;
use mobius_pipelines::engine::{RunObserver, Status, StepReport};
use mobius_pipelines::exec::LogLine;
use mobius_store::{RunState, RunUpdate, Store};

use super::logs::LogWriter;

/// Writes progress in batches: whatever arrived while the previous batch was being written
/// goes in the next transaction, so a busy run costs a few commits, not one per step.
pub(super) fn write_updates(store: &dyn Store, received: mpsc::Receiver<RunUpdate>) {
    while let Ok(first) = received.recv() {
        let mut batch = vec![first];
        batch.extend(received.try_iter());
        if let Err(e) = store.update_runs(&batch) {
            tracing::error!(error = %e, "cannot record a run's progress");
        }
    }
}

/// The observer that records a run's progress: states to the store, lines to the log.
pub(super) struct Progress {
    pub run: i64,
    pub updates: mpsc::Sender<RunUpdate>,
    pub log: LogWriter,
    /// Job → (next step position, the step running now and its position).
    pub steps: HashMap<String, (u32, Option<(u32, String)>)>,
}

impl Progress {
    fn job(&self, job: &str, state: RunState) {
        let _ = self.updates.send(RunUpdate::Job { run: self.run, job: job.to_owned(), state, at: Timestamp::now() });
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
        let _ = self.updates.send(update);
    }
}

impl RunObserver for Progress {
    fn job_queued(&mut self, job: &str) {
        self.job(job, RunState::Queued);
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
