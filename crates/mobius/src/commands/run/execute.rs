//! `mobius run [WORKFLOW|JOB…]`: pick workflows, lint them, run each one after another on
//! this machine, and report.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mobius_pipelines::engine::{self, RunOptions, RunReport, Status};
use mobius_pipelines::workflow::{self, Severity, Workflow};
use serde::Serialize;

use super::context;
use super::events::{self, Recorder, RunIdentity};
use super::live;
use super::observer::{Printer, TAIL_LINES, seconds};
use super::selected_by;
use crate::cli::RunArgs;
use crate::commands::lint::{NO_WORKFLOWS, discover, plural, repo_root};
use crate::output::print_json;

/// `println!` that ignores a closed stdout (`mobius run | head`): the run's result and exit
/// code matter more than the rest of its report.
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// A workflow chosen to run, with the job ids the targets named in it (empty: all jobs).
struct Chosen {
    file: String,
    workflow: Workflow,
    jobs: Vec<String>,
}

/// `--json` output: one entry per workflow run, in the order they ran.
#[derive(Serialize)]
struct JsonRuns<'a> {
    result: Status,
    runs: Vec<JsonRun<'a>>,
    /// How many CDEvents were appended to the event log; absent with `--no-events` or
    /// when the log could not be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    events_recorded: Option<usize>,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    file: &'a str,
    #[serde(flatten)]
    report: &'a RunReport,
}

pub(super) fn run(data_dir: Option<&std::path::Path>, json: bool, args: RunArgs) -> Result<ExitCode> {
    let root = repo_root()?;
    let files = discover(&root, &[])?;
    let default_branch = context::default_branch(&root);
    // Lint every file before anything runs. A file with errors stops the run only if the run
    // would include it (a target names it or one of its jobs, or its `on:` has the event);
    // the errors of other files are warnings, as a broken file does not stop GitHub from
    // running the others.
    let branch = context::current_branch(&root);
    let mut parsed = Vec::new();
    let mut blocking = 0;
    for file in &files {
        let (model, diagnostics) = match file.read() {
            // `$default-branch` in a filter means the repository's default branch, as GitHub
            // substitutes it when a starter workflow is added.
            Ok(text) => workflow::parse_partial(&file.display, &workflow::with_default_branch(&text, &default_branch)),
            Err(unreadable) => (None, vec![unreadable]),
        };
        let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let blocks = errors > 0 && would_run(&file.display, model.as_ref(), &args, branch.as_deref());
        for mut d in diagnostics {
            if !blocks {
                d.severity = Severity::Warning;
            }
            // Warnings go to stderr so `--json` stays parseable; errors stop the run.
            eprintln!("{d}");
        }
        match model {
            Some(w) if errors == 0 => parsed.push((file.display.clone(), w)),
            _ if blocks => blocking += errors,
            _ if errors > 0 => {
                eprintln!("warning: {} is not run: it has {}", file.display, plural(errors, "lint error"))
            }
            _ => {}
        }
    }
    if blocking > 0 {
        eprintln!("{}; nothing was run", plural(blocking, "lint error"));
        return Ok(ExitCode::FAILURE);
    }
    if files.is_empty() {
        say!("{NO_WORKFLOWS}");
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = choose(parsed, &args, branch.as_deref())?;
    if chosen.is_empty() {
        say!("no workflow runs on `{}`", args.event);
        return Ok(ExitCode::SUCCESS);
    }
    let secrets = context::secrets(args.secrets_file.as_deref(), &args.secrets)?;
    if !args.allow_missing_secrets {
        let missing = missing_secrets(&root, &chosen, &secrets);
        if !missing.is_empty() {
            for m in &missing {
                eprintln!("{m}");
            }
            eprintln!(
                "{} not set; pass --secret NAME=VALUE or --secrets-file FILE (or --allow-missing-secrets); nothing was run",
                plural(missing.len(), "secret")
            );
            return Ok(ExitCode::FAILURE);
        }
    }

    let settings = crate::commands::settings(data_dir, None).ok();
    let store_dir = settings.as_ref().map(|s| s.data_dir.join("pipelines"));
    // Actions from repositories are cached in the data directory, shared with the server's.
    let actions = settings.map(|mut s| {
        if let Some(url) = &args.actions_url {
            s.actions_url.clone_from(url);
        }
        s.require_pinned_actions |= args.require_pinned_actions;
        s.action_cache()
    });
    // `mobius/deploy` steps deploy through MOBIUS_SERVER, when it is set.
    let deployments = super::deployments::from_env()?;
    let started = Instant::now();
    let mut printer = if live::wanted(json) { Printer::live() } else { Printer::new(json) };
    let mut reports = Vec::new();
    let mut cdevents = Vec::new();
    // One for every workflow of this command: what a run leaves in it (pooled connections of
    // the `mobius/deploy` client) stays usable by the next.
    let runtime = RunRuntime(Some(
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the run's runtime")?,
    ));
    for c in &chosen {
        // A reusable workflow named on the command line runs as if called, with its inputs.
        let called = c.workflow.on.workflow_call.is_some()
            && (args.event == "workflow_call" || !triggered_by(&c.workflow, &args.event, branch.as_deref()));
        let inputs = context::inputs(&c.workflow, &args.event, called, &args.inputs)?;
        // Each run gets a fresh work dir, removed when it is dropped after the run.
        let work =
            tempfile::Builder::new().prefix("mobius-run-").tempdir().context("cannot create a work directory")?;
        let mut opts = RunOptions::new(&root, work.path());
        // Caches and artifacts outlive the run in the data directory, as they outlive a
        // workflow run on GitHub; without one (no HOME), they stay in the run's temp dir.
        opts.store_dir = store_dir.clone();
        if let Some(n) = args.jobs {
            opts.jobs_parallelism = usize::from(n);
        }
        opts.event_name.clone_from(&args.event);
        opts.github = context::github_context(&root, &args.event, &inputs);
        let identity = RunIdentity {
            repository: opts.github["repository"].as_str().unwrap_or_default().to_owned(),
            file: c.file.clone(),
            pipeline_name: c.workflow.name.clone().unwrap_or_else(|| c.file.clone()),
            run_id: opts.run_id,
            uri: format!("file://{}/{}", root.display(), c.file),
            sha: opts.github["sha"].as_str().map(str::to_owned),
            branch: opts.github["ref_name"].as_str().map(str::to_owned),
            source: format!("/mobius/run/{}", opts.github["repository"].as_str().unwrap_or_default()),
        };
        opts.inputs = inputs;
        opts.secrets = secrets.clone();
        opts.selected_jobs.clone_from(&c.jobs);
        opts.matrix_filter.clone_from(&args.matrix);
        opts.deployments.clone_from(&deployments);
        opts.actions.clone_from(&actions);
        opts.workflow_file.clone_from(&c.file);
        if !json && chosen.len() > 1 {
            say!("== {}", c.file);
        }
        // The engine's future is not `Send` (it borrows the observer), so it cannot be
        // spawned. It runs on a current-thread runtime of its own, as a run does in the
        // server: a job's work between its processes is small, and handing it between threads
        // (a step's end, the scheduler, the next job's start) cost more than it saved while the
        // steps' processes hold both cores (the 200-job DAG took ~8% longer, bench/RESULTS.md).
        let mut recorder = Recorder::new(&mut printer, &c.workflow, identity);
        let report = tokio::task::block_in_place(|| runtime.block_on(engine::run(&c.workflow, opts, &mut recorder)));
        match recorder.finish(report.result) {
            Ok(events) => cdevents.extend(events),
            Err(e) => eprintln!("warning: the run's events cannot be built: {e}"),
        }
        printer.finish_run();
        reports.push(report);
    }
    let ok = reports.iter().all(|r| r.result == Status::Success);
    let events_recorded = if args.no_events { None } else { record(data_dir, &cdevents) };

    if json {
        let runs = chosen.iter().zip(&reports).map(|(c, report)| JsonRun { file: &c.file, report }).collect();
        let result = reports.iter().map(|r| r.result).find(|r| *r != Status::Success).unwrap_or(Status::Success);
        print_json(&JsonRuns { result, runs, events_recorded: events_recorded.map(|(n, _)| n) })?;
    } else {
        print_failures(&printer, &reports);
        print_summary(&reports, started);
        if let Some((n, dir)) = &events_recorded {
            say!("recorded {} in {dir}", plural(*n, "event"));
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `file:line: error: secret `NAME` is not set` for each secret a chosen workflow names that
/// was not given (names compare case-insensitively, as GitHub's do).
fn missing_secrets(
    root: &std::path::Path,
    chosen: &[Chosen],
    secrets: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for c in chosen {
        let text = std::fs::read_to_string(root.join(&c.file)).unwrap_or_default();
        for used in workflow::referenced_secrets(&text) {
            if !secrets.keys().any(|k| k.eq_ignore_ascii_case(&used.name)) {
                missing.push(format!("{}:{}: error: secret `{}` is not set", c.file, used.line, used.name));
            }
        }
    }
    missing
}

/// Appends the runs' events to the local event log. A log that cannot be written must not
/// fail a run that itself went fine, so that is a warning on stderr, and `None`.
fn record(data_dir: Option<&std::path::Path>, cdevents: &[mobius_events::NewEvent]) -> Option<(usize, String)> {
    match events::append(data_dir, cdevents) {
        Ok(recorded) => Some(recorded),
        Err(e) => {
            eprintln!("warning: the run's events were not recorded: {e:#}");
            None
        }
    }
}

/// The workflows the targets select. A target naming a workflow (path, file name, stem or
/// `name:`) selects all its jobs; any other target is a job id, selecting the workflows that
/// have it with only that job (and what it needs). Without targets, the workflows the event
/// triggers.
fn choose(parsed: Vec<(String, Workflow)>, args: &RunArgs, branch: Option<&str>) -> Result<Vec<Chosen>> {
    if args.targets.is_empty() {
        return Ok(parsed
            .into_iter()
            .filter(|(_, w)| triggered_by(w, &args.event, branch))
            .map(|(file, workflow)| Chosen { file, workflow, jobs: Vec::new() })
            .collect());
    }
    for target in &args.targets {
        let known = parsed
            .iter()
            .any(|(file, w)| selected_by(file, w.name.as_deref(), target) || w.jobs.iter().any(|j| j.id == *target));
        if !known {
            bail!("no workflow or job matches `{target}`; see `mobius run --list`");
        }
    }
    let mut chosen = Vec::new();
    for (file, workflow) in parsed {
        let whole = args.targets.iter().any(|t| selected_by(&file, workflow.name.as_deref(), t));
        let jobs: Vec<String> =
            args.targets.iter().filter(|t| workflow.jobs.iter().any(|j| j.id == **t)).cloned().collect();
        if whole || !jobs.is_empty() {
            chosen.push(Chosen { jobs: if whole { Vec::new() } else { jobs }, file, workflow });
        }
    }
    Ok(chosen)
}

/// Whether the run would include the workflow in `file`, read as far as it can be (`model`
/// is `None` when not even its YAML reads): a target names the file (path, file name, stem or
/// `name:`) or one of its jobs, or, without targets, its `on:` has the event. A file whose
/// triggers cannot be read counts only when named.
fn would_run(file: &str, model: Option<&Workflow>, args: &RunArgs, branch: Option<&str>) -> bool {
    if !args.targets.is_empty() {
        let name = model.and_then(|w| w.name.as_deref());
        let jobs = model.map(|w| w.jobs.as_slice()).unwrap_or_default();
        return args.targets.iter().any(|t| selected_by(file, name, t) || jobs.iter().any(|j| j.id == *t));
    }
    model.is_some_and(|w| triggered_by(w, &args.event, branch))
}

/// Whether `event` on this working tree runs `w`. A push is to the branch checked out (its
/// branch filters apply; path filters pass, since an uncommitted tree has no push diff).
fn triggered_by(w: &Workflow, event: &str, branch: Option<&str>) -> bool {
    match event {
        "push" => w.on.push.as_ref().is_some_and(|filter| match branch {
            Some(branch) => {
                workflow::push_matches(filter, &workflow::PushedRef { branch: Some(branch), tag: None, changed: None })
            }
            None => true,
        }),
        "pull_request" => w.on.pull_request.is_some(),
        "workflow_dispatch" => w.on.workflow_dispatch.is_some(),
        "workflow_call" => w.on.workflow_call.is_some(),
        other => w.on.other.iter().any(|e| e == other),
    }
}

/// Each failed step's last lines again, after the interleaved live output, so the reason
/// for a failure is the last thing on screen.
fn print_failures(printer: &Printer, reports: &[RunReport]) {
    for job in reports.iter().flat_map(|r| &r.jobs) {
        for step in job.steps.iter().filter(|s| s.outcome == Status::Failure) {
            say!();
            say!("── {} › {} failed (last {TAIL_LINES} lines at most):", job.name, step.name);
            for line in printer.tail(&job.name, &step.name) {
                say!("   {line}");
            }
        }
    }
}

/// `N jobs: P passed, F failed, S skipped in 1.2s`.
fn print_summary(reports: &[RunReport], started: Instant) {
    let jobs: Vec<Status> = reports.iter().flat_map(|r| &r.jobs).map(|j| j.result).collect();
    let count = |s: Status| jobs.iter().filter(|r| **r == s).count();
    let cancelled = count(Status::Cancelled);
    let cancelled = if cancelled > 0 { format!(", {cancelled} cancelled") } else { String::new() };
    say!();
    say!(
        "{}: {} passed, {} failed, {} skipped{cancelled} in {}",
        plural(jobs.len(), "job"),
        count(Status::Success),
        count(Status::Failure),
        count(Status::Skipped),
        seconds(started.elapsed())
    );
}

/// The runtime the runs of one `mobius run` are driven on. This command is called from the
/// CLI's own runtime, where dropping another runtime (which blocks) would panic: it is shut
/// down in the background instead, once its runs are over.
struct RunRuntime(Option<tokio::runtime::Runtime>);

impl RunRuntime {
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime is only taken when dropped"),
        }
    }
}

impl Drop for RunRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
