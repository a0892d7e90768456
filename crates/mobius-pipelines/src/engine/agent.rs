//! The agent's side of a remote job: running one [`RemoteJob`] with this engine, as the
//! server would have run it (see `dispatch.rs` for the server's side).

use std::time::Instant;

use tokio::sync::mpsc;

use super::dispatch::RemoteJob;
use super::job::{Instance, run_steps};
use super::schedule::forward;
use super::workspace::DirPool;
use super::{JobReport, RunObserver, RunOptions};
use crate::workflow::{self, Diagnostic};

/// Why an agent cannot run a [`RemoteJob`]; the job has not started. The agent reports it as
/// [`JobReport::failed`], with this error in the job's log.
#[derive(Debug, thiserror::Error)]
pub enum RemoteJobError {
    /// A payload of another format than [`RemoteJob::FORMAT`] (a server of another version).
    #[error("the job is in format {found}; this agent runs format {}", RemoteJob::FORMAT)]
    Format {
        /// Its format.
        found: u32,
    },
    /// The workflow text does not parse; each diagnostic names the file, line and column.
    #[error("`{file}` is not a valid workflow:\n{}", diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The workflow file.
        file: String,
        /// Its errors.
        diagnostics: Vec<Diagnostic>,
    },
    /// The workflow has no job with the job's id.
    #[error("`{file}` has no job `{job}`")]
    UnknownJob {
        /// The workflow file.
        file: String,
        /// The id.
        job: String,
    },
    /// The job calls a reusable workflow: such jobs run on the server, never on an agent.
    #[error("job `{job}` of `{file}` calls a reusable workflow, which runs on the server")]
    CallsWorkflow {
        /// The workflow file.
        file: String,
        /// The job's id.
        job: String,
    },
}

/// Runs one job instance an agent received, with the contexts, secrets and credential the
/// [`RemoteJob`] carries, and tells `observer` as it goes: the job started, each step started
/// and finished, every (masked) log line with its step's name, the job finished. Gives the
/// job's report, to send back to the server.
///
/// From `opts` it takes the agent's own settings: [`RunOptions::workspace_source`] (the tree
/// the agent checked out for the run), [`RunOptions::work_dir`] (give each job running at the
/// same time its own: the job's directories are named after it in there),
/// [`RunOptions::store_dir`] (see [`crate::store_sync`] for keeping it in step with the
/// server's), [`RunOptions::sandbox`], [`RunOptions::actions`], [`RunOptions::deployments`] and
/// [`RunOptions::cancel`] (trigger it when the server cancels the job). The `github` context,
/// event, inputs, vars, secrets and run id come from `job`; the run's selection, matrix filter,
/// gate, credentials and dispatcher are not used (the server applied them).
///
/// As [`super::run`], it must be called inside a Tokio runtime with timers enabled; its future
/// is `Send` when the observer is.
pub async fn run_job<O: RunObserver + ?Sized>(
    job: &RemoteJob,
    opts: RunOptions,
    observer: &mut O,
) -> Result<JobReport, RemoteJobError> {
    if job.format != RemoteJob::FORMAT {
        return Err(RemoteJobError::Format { found: job.format });
    }
    let file = || job.workflow_file.clone();
    let workflow = workflow::parse(&job.workflow_file, &job.workflow_text)
        .map_err(|diagnostics| RemoteJobError::Invalid { file: file(), diagnostics })?;
    let index = workflow
        .jobs
        .iter()
        .position(|j| j.id == job.job)
        .ok_or_else(|| RemoteJobError::UnknownJob { file: file(), job: job.job.clone() })?;
    if workflow.jobs[index].uses.is_some() {
        return Err(RemoteJobError::CallsWorkflow { file: file(), job: job.job.clone() });
    }
    let opts = RunOptions {
        event_name: job.event_name.clone(),
        github: job.github.clone(),
        inputs: job.inputs.clone(),
        secrets: job.secrets.clone(),
        environment_secrets: Default::default(),
        vars: job.vars.clone(),
        selected_jobs: Vec::new(),
        matrix_filter: Vec::new(),
        run_id: job.run_id,
        gate: None,
        credentials: None,
        dispatch: None,
        workflow_file: job.workflow_file.clone(),
        workflow_text: Some(job.workflow_text.clone()),
        calls: Default::default(),
        ..opts
    };
    let (pool, mut pool_gone) = DirPool::new();
    let instance = Instance {
        index: 0,
        job: index,
        name: job.name.clone(),
        matrix: job.matrix.clone(),
        strategy: job.strategy.clone(),
        needs: job.needs.clone(),
        cancel: opts.cancel.clone(),
        pool,
    };
    let (sender, mut events) = mpsc::unbounded_channel();
    let credential = (job.credential_env.clone(), job.credential_secret_env.clone());
    let started = Instant::now();
    let steps = run_steps(&workflow, &opts, instance, sender, Some(credential));
    tokio::pin!(steps);
    let report = loop {
        tokio::select! {
            report = &mut steps => break report,
            Some(event) = events.recv() => forward(event, observer),
        }
    };
    while let Ok(event) = events.try_recv() {
        forward(event, observer);
    }
    observer.job_finished(&report.name, report.result, started.elapsed());
    // The job's directories are being emptied: wait, so that nothing touches the work dir
    // once the job has returned (the agent may clean it or start the next job there).
    let _ = pool_gone.recv().await;
    Ok(report)
}
