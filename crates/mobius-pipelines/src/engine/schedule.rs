//! The scheduler: matrix expansion (computed matrices once their needs are done), `needs`,
//! job `if:`, parallelism, fail-fast, cancelling the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::call::{CallStack, run_call};
use super::dispatch::{Route, route_of, run_routed};
use super::job::{Event, Instance};
use super::workspace::DirPool;
use super::{JobReport, RunObserver, RunOptions, RunReport, Status};
use crate::chain::Chain;
use crate::exec::{CancellationSignal, LogLine, Stream};
use crate::expr::{self, JobStatus, MapContext};
use crate::workflow::{Combination, Job, MatrixSpec, Workflow, expand_matrix};

mod expand;
mod gating;
mod strategy;

use expand::expand_ready;
use gating::{Verdict, admitted, ask_gate, environment_of};
use strategy::{ComputedMatrixError, fail_fast, is_dynamic, max_parallel, resolve_matrix, strategy_context};
pub(super) use strategy::{setting_bool, setting_number};

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Needs are met and its `if:` is true; waiting for a slot.
    Ready,
    /// Asking its environment's gate (and maybe waiting for a review); takes no slot.
    Gated,
    Running,
    Done,
}

struct Slot {
    job: usize,
    report: JobReport,
    /// The jobs of the workflow the instance called (`uses:`), named `caller / job`.
    called: Vec<JobReport>,
    state: State,
    /// The `strategy` context of a ready instance (`job-index`, `job-total`…); `null` for an
    /// instance that ends without running.
    strategy: Value,
    /// Whether its environment's gate admitted it (or it needs none asked).
    admitted: bool,
    /// Where it runs, once decided (when it could first start).
    route: Option<Route>,
}

/// Runs the workflow's jobs and reports each instance's result. Never panics on a workflow that
/// parsed: a matrix that cannot be expanded or an `if:` that cannot be evaluated fails that job.
/// The jobs of called workflows follow their calling instance in [`RunReport::jobs`].
pub async fn run(workflow: &Workflow, mut opts: RunOptions, observer: &mut dyn RunObserver) -> RunReport {
    // The limit on unique called workflows counts per run, also when options are reused.
    opts.calls = CallStack::default();
    let ran = run_jobs(workflow, opts, &mut Borrowed(observer)).await;
    let jobs = ran.instances.into_iter().flat_map(|(report, called)| std::iter::once(report).chain(called)).collect();
    RunReport { result: ran.result, jobs }
}

/// A run's instances, each with the jobs of the workflow it called.
pub(super) struct Ran {
    pub result: Status,
    pub instances: Vec<(JobReport, Vec<JobReport>)>,
}

/// The caller's observer, for [`run_jobs`], which is generic so that a nested run (whose
/// observer forwards to a channel) is a `Send` future a job task can await.
struct Borrowed<'o>(&'o mut dyn RunObserver);

impl RunObserver for Borrowed<'_> {
    fn job_queued(&mut self, job: &str) {
        self.0.job_queued(job);
    }
    fn job_waiting(&mut self, job: &str, environment: &str) {
        self.0.job_waiting(job, environment);
    }
    fn job_started(&mut self, job: &str) {
        self.0.job_started(job);
    }
    fn job_finished(&mut self, job: &str, result: Status, duration: Duration) {
        self.0.job_finished(job, result, duration);
    }
    fn step_started(&mut self, job: &str, step: &str) {
        self.0.step_started(job, step);
    }
    fn step_finished(&mut self, job: &str, step: &super::StepReport) {
        self.0.step_finished(job, step);
    }
    fn log_line(&mut self, job: &str, step: &str, line: &LogLine) {
        self.0.log_line(job, step, line);
    }
}

/// [`run`] for the top-level workflow and for a called one (`call.rs`).
pub(super) async fn run_jobs<O: RunObserver>(workflow: &Workflow, opts: RunOptions, observer: &mut O) -> Ran {
    let workflow = Arc::new(workflow.clone());
    let opts = Arc::new(opts);
    let wanted = wanted_jobs(&workflow, &opts.selected_jobs);
    let mut slots: Vec<Slot> = Vec::new();
    // A job's instances are created when its needs are done, because a failed need means one
    // skipped entry rather than one per combination; until then the job has one placeholder.
    let mut expanded = vec![false; workflow.jobs.len()];
    let cancel: Vec<CancellationSignal> = workflow.jobs.iter().map(|_| CancellationSignal::new()).collect();
    let (sender, mut events) = mpsc::unbounded_channel::<Event>();
    let mut tasks: JoinSet<Joined> = JoinSet::new();
    // Instances asking their environment's gate: they hold no slot while a review takes.
    let mut gates: JoinSet<(usize, Verdict)> = JoinSet::new();
    let mut running = 0usize;
    let (pool, mut pool_gone) = DirPool::new();
    // Whether a job ended or the run was cancelled since the last look for jobs to expand and
    // start: only then can there be any, and looking is quadratic in the number of jobs, while
    // most wake-ups are log lines.
    let mut changed = true;
    loop {
        if opts.cancel.is_cancelled() {
            // Every job's signal: running instances stop, ready ones end cancelled.
            for signal in &cancel {
                signal.cancel();
            }
        }
        if changed {
            expand_ready(&workflow, &opts, &wanted, &mut expanded, &mut slots, observer);
            let starting = Starting { workflow: &workflow, opts: &opts, cancel: &cancel, pool: &pool, sender: &sender };
            start_ready(&starting, &mut slots, &mut tasks, &mut gates, &mut running, observer);
            changed = false;
        }
        if running == 0 && gates.is_empty() {
            break;
        }
        tokio::select! {
            () = opts.cancel.cancelled(), if !cancel.iter().all(CancellationSignal::is_cancelled) => changed = true,
            Some(event) = events.recv() => forward(event, observer),
            Some(gated) = gates.join_next() => {
                changed = true;
                match gated {
                    Ok((index, verdict)) => admitted(&workflow, &cancel, &mut slots, index, verdict, observer),
                    // The slot stays gated and ends cancelled with the run.
                    Err(error) => tracing::error!(error = %Chain(&error), "a job's gate task panicked"),
                }
            }
            Some(joined) = tasks.join_next() => {
                changed = true;
                running -= 1;
                // A panicking job task is a bug; its slot then ends as cancelled rather than hang.
                let (index, report, called, duration) = match joined {
                    Ok(joined) => joined,
                    Err(error) => {
                        tracing::error!(error = %Chain(&error), "a job task panicked; its instance ends cancelled");
                        continue;
                    }
                };
                while let Ok(event) = events.try_recv() {
                    forward(event, observer);
                }
                let Some(slot) = slots.get_mut(index) else { continue };
                let job = slot.job;
                // A fail-fast that does not evaluate was told in the instance's log when it was queued.
                let fails_fast = fail_fast(&workflow.jobs[job], &report.matrix).unwrap_or(true);
                if report.outcome == Status::Failure && report.result == Status::Failure && fails_fast {
                    cancel[job].cancel();
                }
                observer.job_finished(&report.name, report.result, duration);
                slot.report = report;
                slot.called = called;
                slot.state = State::Done;
            }
        }
    }
    // Jobs whose needs never completed (impossible once validated: unknown needs and cycles
    // are lint errors) are reported skipped rather than silently dropped.
    for (index, job) in workflow.jobs.iter().enumerate() {
        if wanted.contains(&job.id) && !expanded[index] {
            let ctx = base_context(&opts, job, &json!({}), &Combination::new());
            let report = blank_report(&ctx, job, Combination::new(), Status::Skipped);
            observer.job_finished(&report.name, report.result, Duration::ZERO);
            slots.push(Slot {
                job: index,
                report,
                called: Vec::new(),
                state: State::Done,
                strategy: Value::Null,
                admitted: false,
                route: None,
            });
        }
    }
    // The last jobs' directories are still being emptied: wait, so that nothing touches the
    // work dir once the run has returned.
    drop(pool);
    let _ = pool_gone.recv().await;
    // Instances still not done (only after a job task panicked) end as cancelled.
    for slot in slots.iter_mut().filter(|s| s.state != State::Done) {
        slot.report.outcome = Status::Cancelled;
        slot.report.result = Status::Cancelled;
        observer.job_finished(&slot.report.name, Status::Cancelled, Duration::ZERO);
    }
    let mut instances: Vec<(JobReport, Vec<JobReport>)> = Vec::new();
    for index in 0..workflow.jobs.len() {
        instances.extend(slots.iter().filter(|s| s.job == index).map(|s| (s.report.clone(), s.called.clone())));
    }
    let jobs: Vec<&JobReport> = instances.iter().map(|(report, _)| report).collect();
    let result = if opts.cancel.is_cancelled() {
        // Cancelling the run concludes it as cancelled, whatever its jobs did before.
        Status::Cancelled
    } else if jobs.iter().any(|j| j.result == Status::Failure) {
        Status::Failure
    } else if jobs.iter().any(|j| j.result == Status::Cancelled) {
        Status::Cancelled
    } else {
        Status::Success
    };
    Ran { result, instances }
}

/// What a job task gives back: the slot, the report, the called workflow's jobs, the time.
type Joined = (usize, JobReport, Vec<JobReport>, Duration);

/// Tells the observer what a job task said.
pub(super) fn forward<O: RunObserver + ?Sized>(event: Event, observer: &mut O) {
    match event {
        Event::JobQueued(job) => observer.job_queued(&job),
        Event::JobFinished(job, result, duration) => observer.job_finished(&job, result, duration),
        Event::JobWaiting(job, environment) => observer.job_waiting(&job, &environment),
        Event::JobStarted(job) => observer.job_started(&job),
        Event::StepStarted(job, step) => observer.step_started(&job, &step),
        Event::StepFinished(job, step) => observer.step_finished(&job, &step),
        Event::Log(job, step, line) => observer.log_line(&job, &step, &line),
    }
}

/// The selected jobs and everything they need, transitively; every job when none is selected.
fn wanted_jobs(workflow: &Workflow, selected: &[String]) -> BTreeSet<String> {
    if selected.is_empty() {
        return workflow.jobs.iter().map(|j| j.id.clone()).collect();
    }
    let mut wanted = BTreeSet::new();
    let mut todo: Vec<String> = selected.to_vec();
    while let Some(id) = todo.pop() {
        if let Some(job) = workflow.job(&id)
            && wanted.insert(id)
        {
            todo.extend(job.needs.iter().map(|(n, _)| n.clone()));
        }
    }
    wanted
}

/// `build (linux, 20)`: GitHub's name for a matrix instance — the values, not the keys. A
/// `name:` with expressions is rendered with `ctx` and the instance's `matrix` instead, and
/// gets no values appended, as on GitHub (`name: test ${{ matrix.os }}` is `test linux`); one
/// that does not render stays as written.
pub(super) fn display_name(job: &Job, matrix: &Combination, ctx: &MapContext) -> String {
    if let Some(name) = job.name.as_deref().filter(|n| n.contains("${{")) {
        let ctx = ctx.clone().with("matrix", Value::Object(matrix.clone()));
        return expr::render(name, &ctx).unwrap_or_else(|_| name.to_owned());
    }
    let base = job.name.clone().unwrap_or_else(|| job.id.clone());
    if matrix.is_empty() {
        return base;
    }
    // The combination's map is sorted by key; GitHub lists the axes in file order, then the
    // keys that `include` added.
    let mut keys: Vec<&String> = match job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) {
        Some(MatrixSpec::Static(m)) => m.axes.iter().map(|(k, _)| k).filter(|k| matrix.contains_key(*k)).collect(),
        _ => Vec::new(),
    };
    let added: Vec<&String> = matrix.keys().filter(|k| !keys.contains(k)).collect();
    keys.extend(added);
    let values: Vec<String> =
        keys.iter().filter_map(|k| matrix.get(*k)).map(|v| expr::Value::from_json(v).to_display_string()).collect();
    format!("{base} ({})", values.join(", "))
}

/// The display names of a job's instances before anything runs (what `mobius run --list`
/// shows), rendered with the run's `github`, `inputs` and `vars`; `None` when the matrix is
/// computed at run time or does not expand.
pub fn instance_names(job: &Job, opts: &RunOptions) -> Option<Vec<String>> {
    let ctx = base_context(opts, job, &json!({}), &Combination::new());
    match job.strategy.as_ref().map(expand_matrix) {
        None => Some(vec![display_name(job, &Combination::new(), &ctx)]),
        Some(Ok(combos)) => Some(combos.iter().map(|c| display_name(job, c, &ctx)).collect()),
        Some(Err(_)) => None,
    }
}

/// The `needs` context for a job, when every needed job is done; `None` while one is not. A
/// matrix job's result is failure if an instance failed, else cancelled, else success (GitHub
/// reports skipped only when every instance was); its outputs merge its instances'. The
/// context holds the direct needs only, but the status functions see every ancestor, as on
/// GitHub: after `a` fails, `c` (needing `b`, which needs `a` and ran with `always()`) is
/// skipped.
fn needs_context(workflow: &Workflow, job: &Job, slots: &[Slot], expanded: &[bool]) -> Option<Needs> {
    let mut needs = Map::new();
    for (need, _) in &job.needs {
        let index = workflow.jobs.iter().position(|j| &j.id == need)?;
        let result = job_result(slots, expanded, index)?;
        let mut outputs = Map::new();
        for slot in slots.iter().filter(|s| s.job == index) {
            for (k, v) in &slot.report.outputs {
                outputs.insert(k.clone(), Value::String(v.clone()));
            }
        }
        needs.insert(need.clone(), json!({ "result": result.as_str(), "outputs": outputs }));
    }
    let mut status = JobStatus::Success;
    let mut skipped = false;
    for index in ancestors(workflow, job) {
        // Every ancestor is done once the direct needs are: each waited for its own.
        match job_result(slots, expanded, index)? {
            Status::Failure if status == JobStatus::Success => status = JobStatus::Failure,
            Status::Cancelled => status = JobStatus::Cancelled,
            Status::Skipped => skipped = true,
            _ => {}
        }
    }
    Some(Needs { context: Value::Object(needs), status, skipped })
}

/// The positions of the jobs `job` needs, directly or through others.
fn ancestors(workflow: &Workflow, job: &Job) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<&str> = job.needs.iter().map(|(n, _)| n.as_str()).collect();
    while let Some(id) = todo.pop() {
        if let Some(index) = workflow.jobs.iter().position(|j| j.id == id)
            && found.insert(index)
        {
            todo.extend(workflow.jobs[index].needs.iter().map(|(n, _)| n.as_str()));
        }
    }
    found
}

/// A job's result over its instances once they are all done (`None` before): failure if one
/// failed, else cancelled, else success; skipped only when every instance was.
fn job_result(slots: &[Slot], expanded: &[bool], index: usize) -> Option<Status> {
    if !expanded.get(index).copied().unwrap_or(false) {
        return None;
    }
    let instances: Vec<&Slot> = slots.iter().filter(|s| s.job == index).collect();
    if instances.iter().any(|s| s.state != State::Done) {
        return None;
    }
    let results: Vec<Status> = instances.iter().map(|s| s.report.result).collect();
    Some(
        [Status::Failure, Status::Cancelled, Status::Success]
            .into_iter()
            .find(|r| results.contains(r))
            .unwrap_or(Status::Skipped),
    )
}

/// What a job's needs say once they are all done.
struct Needs {
    /// The `needs` context.
    context: Value,
    /// Failure if a job needed directly or transitively failed, cancelled if one was
    /// cancelled: the status functions' view.
    status: JobStatus,
    /// A job needed directly or transitively was skipped: the job is skipped too unless its
    /// `if:` uses a status function, but `failure()` stays false, since nothing failed.
    skipped: bool,
}

/// The run's `github` context: the caller's, with `event_name` and `run_id`, and what GitHub
/// always fills in when the caller did not: `repository_owner` (the part of `repository`
/// before `/`), `actor` (`mobius`) and `triggering_actor` (the actor).
pub(super) fn github_context(opts: &RunOptions) -> Value {
    let mut github = opts.github.clone();
    if let Value::Object(map) = &mut github {
        map.insert("event_name".into(), Value::String(opts.event_name.clone()));
        map.insert("run_id".into(), Value::String(opts.run_id.to_string()));
        let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        if text(map.get("repository_owner")).is_none()
            && let Some(repository) = text(map.get("repository"))
        {
            let owner = repository.split_once('/').map_or(repository.as_str(), |(owner, _)| owner).to_owned();
            map.insert("repository_owner".into(), Value::String(owner));
        }
        let actor = text(map.get("actor")).unwrap_or_else(|| "mobius".to_owned());
        if text(map.get("triggering_actor")).is_none() {
            map.insert("triggering_actor".into(), Value::String(actor.clone()));
        }
        map.insert("actor".into(), Value::String(actor));
    }
    github
}

/// The context for a job-level expression (`if:`, `strategy`).
pub(super) fn base_context(opts: &RunOptions, job: &Job, needs: &Value, matrix: &Combination) -> MapContext {
    let mut github = github_context(opts);
    if let Value::Object(map) = &mut github {
        map.insert("job".into(), Value::String(job.id.clone()));
    }
    MapContext::new()
        .with("github", github)
        .with("inputs", Value::Object(opts.inputs.clone()))
        .with("vars", json!(opts.vars))
        .with("secrets", json!(opts.secrets_for(job)))
        .with("needs", needs.clone())
        .with("matrix", Value::Object(matrix.clone()))
        .with("strategy", json!({}))
}

/// The report of an instance not started yet, named with `ctx` (see [`display_name`]).
fn blank_report(ctx: &MapContext, job: &Job, matrix: Combination, status: Status) -> JobReport {
    JobReport {
        id: job.id.clone(),
        name: display_name(job, &matrix, ctx),
        matrix,
        outcome: status,
        result: status,
        outputs: BTreeMap::new(),
        steps: Vec::new(),
    }
}

/// Tells the observer why a job failed before it started.
fn explain(observer: &mut dyn RunObserver, job: &str, text: &str) {
    let line = LogLine { at: SystemTime::now(), stream: Stream::Stderr, text: text.to_owned() };
    observer.log_line(job, "Set up job", &line);
}

/// Records an instance that ends without running (skipped, or failed to evaluate).
fn finish(observer: &mut dyn RunObserver, slots: &mut Vec<Slot>, job: usize, report: JobReport) {
    observer.job_finished(&report.name, report.result, Duration::ZERO);
    let strategy = Value::Null;
    slots.push(Slot { job, report, called: Vec::new(), state: State::Done, strategy, admitted: false, route: None });
}

/// The text of a condition without its optional `${{ }}`.
fn strip_braces(condition: &str) -> &str {
    let trimmed = condition.trim();
    trimmed.strip_prefix("${{").and_then(|s| s.strip_suffix("}}")).unwrap_or(trimmed)
}

/// What starting an instance takes from the run.
struct Starting<'a> {
    workflow: &'a Arc<Workflow>,
    opts: &'a Arc<RunOptions>,
    cancel: &'a [CancellationSignal],
    pool: &'a DirPool,
    sender: &'a mpsc::UnboundedSender<Event>,
}

fn start_ready(
    starting: &Starting<'_>,
    slots: &mut [Slot],
    tasks: &mut JoinSet<Joined>,
    gates: &mut JoinSet<(usize, Verdict)>,
    running: &mut usize,
    observer: &mut dyn RunObserver,
) {
    let Starting { workflow, opts, cancel, pool, sender } = *starting;
    for index in 0..slots.len() {
        if slots[index].state != State::Ready {
            continue;
        }
        let job = slots[index].job;
        if cancel[job].is_cancelled() {
            let slot = &mut slots[index];
            slot.report.outcome = Status::Cancelled;
            slot.report.result = Status::Cancelled;
            slot.state = State::Done;
            observer.job_finished(&slot.report.name, Status::Cancelled, Duration::ZERO);
            continue;
        }
        if !slots[index].admitted
            && let Some(gate) = &opts.gate
        {
            let needs = needs_of(workflow, &workflow.jobs[job], slots);
            let slot = &mut slots[index];
            slot.admitted = true;
            if let Some(environment) = environment_of(opts, &workflow.jobs[job], &needs, &slot.report.matrix) {
                slot.state = State::Gated;
                let (gate, name, sender, signal) =
                    (gate.clone(), slot.report.name.clone(), sender.clone(), cancel[job].clone());
                gates.spawn(async move {
                    let verdict = tokio::select! {
                        () = signal.cancelled() => Verdict::Cancelled,
                        verdict = ask_gate(gate, name, environment, sender) => verdict,
                    };
                    (index, verdict)
                });
                continue;
            }
        }
        let route = match slots[index].route.clone() {
            Some(route) => route,
            None => {
                let needs = needs_of(workflow, &workflow.jobs[job], slots);
                let slot = &slots[index];
                let route = route_of(opts, &workflow.jobs[job], &needs, &slot.report.matrix, &slot.strategy);
                slots[index].route = Some(route.clone());
                route
            }
        };
        // Jobs on agents take no slot here: `jobs_parallelism` is this machine's.
        let here = slots.iter().filter(|s| s.state == State::Running && s.route == Some(Route::Here)).count();
        if route == Route::Here && here >= opts.jobs_parallelism.max(1) {
            continue;
        }
        let siblings = slots.iter().filter(|s| s.job == job && s.state == State::Running).count();
        // A max-parallel that does not evaluate was told in the instance's log when it was queued.
        if siblings >= max_parallel(&workflow.jobs[job]).unwrap_or(usize::MAX) {
            continue;
        }
        let needs = needs_of(workflow, &workflow.jobs[job], slots);
        let slot = &mut slots[index];
        slot.state = State::Running;
        *running += 1;
        let instance = Instance {
            index,
            job,
            name: slot.report.name.clone(),
            matrix: slot.report.matrix.clone(),
            strategy: slot.strategy.clone(),
            needs,
            cancel: cancel[job].clone(),
            pool: pool.clone(),
        };
        let (workflow, opts, sender) = (workflow.clone(), opts.clone(), sender.clone());
        let calls = workflow.jobs[job].uses.is_some();
        tasks.spawn(async move {
            let started = Instant::now();
            let (report, called) = match calls {
                true => run_call(&workflow, &opts, instance, sender).await,
                false => (run_routed(&workflow, &opts, instance, sender, route).await, Vec::new()),
            };
            (index, report, called, started.elapsed())
        });
    }
}

fn needs_of(workflow: &Workflow, job: &Job, slots: &[Slot]) -> Value {
    let expanded = vec![true; workflow.jobs.len()];
    needs_context(workflow, job, slots, &expanded).map(|n| n.context).unwrap_or_else(|| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml_jobs: &str) -> Workflow {
        crate::workflow::parse("t.yml", &format!("on: push\njobs:\n{yaml_jobs}")).unwrap_or_default()
    }

    #[test]
    fn names_matrix_instances_in_axis_order() {
        let workflow = job(
            "  b:\n    runs-on: x\n    strategy:\n      matrix:\n        z: [1]\n        a: [x]\n    steps:\n      - run: 'true'\n",
        );
        let b = &workflow.jobs[0];
        let combos = expand_matrix(b.strategy.as_ref().expect("strategy")).expect("matrix");
        let ctx = MapContext::new();
        assert_eq!(display_name(b, &combos[0], &ctx), "b (1, x)");
        assert_eq!(display_name(b, &Combination::new(), &ctx), "b");
    }

    #[test]
    fn selection_includes_needs_transitively() {
        let steps = "    runs-on: x\n    steps:\n      - run: 'true'\n";
        let workflow =
            job(&format!("  a:\n{steps}  b:\n    needs: a\n{steps}  c:\n    needs: b\n{steps}  d:\n{steps}"));
        let wanted = wanted_jobs(&workflow, &["c".to_owned()]);
        assert_eq!(wanted.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(wanted_jobs(&workflow, &[]).len(), 4);
    }
}
