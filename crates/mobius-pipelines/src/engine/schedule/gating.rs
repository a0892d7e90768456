//! Asking an instance's environment's gate before it starts (see [`EnvironmentGate`]): the
//! question, the wait for a review, and what the answer does to the instance.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Slot, State, base_context, explain, fail_fast};
use crate::engine::gate::{Admission, EnvironmentGate};
use crate::engine::job::Event;
use crate::engine::{RunObserver, RunOptions, Status};
use crate::exec::CancellationSignal;
use crate::expr;
use crate::workflow::{Combination, Job, Workflow};

/// What an environment's gate said about an instance.
pub(super) enum Verdict {
    Admitted,
    Refused(String),
    /// The job (or the run) was cancelled while it waited.
    Cancelled,
}

/// Asks the gate about an instance, telling the observer when it waits for a review.
pub(super) async fn ask_gate(
    gate: Arc<dyn EnvironmentGate>,
    name: String,
    environment: String,
    sender: mpsc::UnboundedSender<Event>,
) -> Verdict {
    match gate.admit(&name, &environment).await {
        Admission::Admitted => Verdict::Admitted,
        Admission::Refused(why) => Verdict::Refused(why),
        Admission::Review(review) => {
            // The scheduler outlives its gate tasks: a send fails only while it shuts down.
            let _ = sender.send(Event::JobWaiting(name, environment));
            match review.await {
                Ok(()) => Verdict::Admitted,
                Err(why) => Verdict::Refused(why),
            }
        }
    }
}

/// Applies a gate's verdict: an admitted instance is ready to start; a refused one fails
/// without running a step (as a failed instance, it may fail its matrix fast); a cancelled one
/// ends cancelled.
pub(super) fn admitted(
    workflow: &Workflow,
    cancel: &[CancellationSignal],
    slots: &mut [Slot],
    index: usize,
    verdict: Verdict,
    observer: &mut dyn RunObserver,
) {
    let Some(slot) = slots.get_mut(index) else { return };
    let status = match verdict {
        Verdict::Admitted => {
            slot.admitted = true;
            slot.state = State::Ready;
            return;
        }
        Verdict::Refused(why) => {
            explain(observer, &slot.report.name, &why);
            if fail_fast(&workflow.jobs[slot.job], &slot.report.matrix).unwrap_or(true) {
                cancel[slot.job].cancel();
            }
            Status::Failure
        }
        Verdict::Cancelled => Status::Cancelled,
    };
    slot.report.outcome = status;
    slot.report.result = status;
    slot.state = State::Done;
    observer.job_finished(&slot.report.name, status, Duration::ZERO);
}

/// The environment an instance deploys to, with expressions (`${{ matrix.env }}`) rendered;
/// `None` without one, or with one that renders empty.
pub(super) fn environment_of(opts: &RunOptions, job: &Job, needs: &Value, matrix: &Combination) -> Option<String> {
    let written = job.environment.as_deref()?;
    if !written.contains("${{") {
        return Some(written.to_owned());
    }
    // One that does not render is taken as written: a gate then finds no rules for it unless
    // such a name is protected, rather than letting an error skip the rules.
    let rendered =
        expr::render(written, &base_context(opts, job, needs, matrix)).unwrap_or_else(|_| written.to_owned());
    Some(rendered).filter(|r| !r.is_empty())
}
