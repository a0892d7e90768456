//! `mobius run`: run workflows locally ([`execute`]), or with `--list` show each workflow's
//! triggers and jobs.

mod context;
mod deployments;
mod events;
mod execute;
mod live;
mod observer;

use std::process::ExitCode;

use std::path::Path;

use anyhow::{Result, bail};
use mobius_pipelines::engine::{self, RunOptions};
use mobius_pipelines::workflow::{self, Job, MatrixError, Triggers, Workflow, expand_matrix};
use serde::Serialize;

use super::lint::{NO_WORKFLOWS, WorkflowFile, discover, plural, repo_root};
use crate::cli::RunArgs;
use crate::output::print_json;

pub fn run(data_dir: Option<&Path>, json: bool, args: RunArgs) -> Result<ExitCode> {
    if !args.list {
        return execute::run(data_dir, json, args);
    }
    let root = repo_root()?;
    let mut listed: Vec<Listed> = discover(&root, &[])?.iter().map(|file| list(&root, &args, file)).collect();
    if !args.targets.is_empty() {
        listed.retain(|w| args.targets.iter().any(|t| w.selected_by(t)));
        if listed.is_empty() {
            bail!("no workflow or job matches {}", args.targets.join(", "));
        }
    }
    if json {
        print_json(&listed)?;
    } else if listed.is_empty() {
        println!("{NO_WORKFLOWS}");
    } else {
        print_table(&listed);
    }
    Ok(ExitCode::SUCCESS)
}

/// One workflow file as `--list` shows it: its model's summary, or why it is invalid.
#[derive(Serialize)]
struct Listed {
    file: String,
    name: Option<String>,
    triggers: Vec<String>,
    jobs: Vec<ListedJob>,
    /// The first error, as `path:line:col: error: message`; `None` for a valid file.
    error: Option<String>,
}

#[derive(Serialize)]
struct ListedJob {
    id: String,
    /// `name:`, its expressions rendered with the `github`, `inputs` and `vars` contexts of a
    /// run of `--event` (a matrix job's name is the instances' to render).
    name: Option<String>,
    /// The instances' display names as the run would show them (`build (linux, 20)`); `None`
    /// when the matrix is computed at run time.
    instances: Option<Vec<String>>,
    needs: Vec<String>,
    /// How many jobs the matrix makes (1 without a matrix); `None` when it is computed at run
    /// time from an expression.
    matrix: Option<usize>,
    steps: usize,
}

impl Listed {
    /// Whether `target` names this workflow (its path, file name, file stem or `name:`) or
    /// one of its jobs — the same selectors `mobius run WORKFLOW|JOB` will take.
    fn selected_by(&self, target: &str) -> bool {
        selected_by(&self.file, self.name.as_deref(), target) || self.jobs.iter().any(|j| j.id == target)
    }
}

/// Whether `target` names the workflow in `file` (shown relative to the repository root) by
/// its path, file name, file stem or `name:`.
fn selected_by(file: &str, name: Option<&str>, target: &str) -> bool {
    let file_name = file.rsplit('/').next().unwrap_or(file);
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    [file, file_name, stem].contains(&target) || name == Some(target)
}

fn list(root: &Path, args: &RunArgs, file: &WorkflowFile) -> Listed {
    let parsed = file.read().map_err(|d| vec![d]).and_then(|text| workflow::parse(&file.display, &text));
    match parsed {
        Ok(w) => listed(file, &w, &naming_options(root, args, &w)),
        Err(errors) => Listed {
            file: file.display.clone(),
            name: None,
            triggers: Vec::new(),
            jobs: Vec::new(),
            error: Some(errors.first().map_or_else(|| "invalid workflow".to_owned(), ToString::to_string)),
        },
    }
}

fn listed(file: &WorkflowFile, w: &Workflow, opts: &RunOptions) -> Listed {
    Listed {
        file: file.display.clone(),
        name: w.name.clone(),
        triggers: triggers(&w.on),
        jobs: w.jobs.iter().map(|job| listed_job(job, opts)).collect(),
        error: None,
    }
}

/// What names are rendered with: the contexts a run of `--event` with `--input`s would have
/// before any job ran (a required input not given leaves `inputs` empty here: listing runs
/// nothing).
fn naming_options(root: &Path, args: &RunArgs, w: &Workflow) -> RunOptions {
    let called = w.on.workflow_call.is_some() && args.event == "workflow_call";
    let inputs = context::inputs(w, &args.event, called, &args.inputs).unwrap_or_default();
    let mut opts = RunOptions::new(root, root);
    opts.event_name.clone_from(&args.event);
    opts.github = context::github_context(root, &args.event, &inputs);
    opts.inputs = inputs;
    opts
}

fn listed_job(job: &Job, opts: &RunOptions) -> ListedJob {
    let matrix = match job.strategy.as_ref().map(expand_matrix) {
        None => Some(1),
        Some(Ok(combinations)) => Some(combinations.len()),
        // `parse` rejects matrices over the limit and empty ones, so only an expression is
        // left; it is known only once the jobs it needs have run.
        Some(Err(MatrixError::Dynamic | MatrixError::TooMany { .. } | MatrixError::Empty)) => None,
    };
    let instances = engine::instance_names(job, opts);
    let name = match (&job.strategy, &instances) {
        (None, Some(names)) if job.name.is_some() => names.first().cloned(),
        _ => job.name.clone(),
    };
    ListedJob {
        id: job.id.clone(),
        name,
        instances,
        needs: job.needs.iter().map(|(id, _)| id.clone()).collect(),
        matrix,
        steps: job.steps.len(),
    }
}

/// The events a workflow reacts to, in the order of [`Triggers`]' fields.
fn triggers(on: &Triggers) -> Vec<String> {
    let mut names = Vec::new();
    if on.push.is_some() {
        names.push("push".to_owned());
    }
    if on.pull_request.is_some() {
        names.push("pull_request".to_owned());
    }
    if on.workflow_dispatch.is_some() {
        names.push("workflow_dispatch".to_owned());
    }
    if on.workflow_call.is_some() {
        names.push("workflow_call".to_owned());
    }
    if !on.schedule.is_empty() {
        names.push("schedule".to_owned());
    }
    names.extend(on.other.iter().cloned());
    names
}

fn print_table(listed: &[Listed]) {
    for (i, w) in listed.iter().enumerate() {
        if i > 0 {
            println!();
        }
        if let Some(error) = &w.error {
            println!("{}  (invalid)", w.file);
            println!("  {error}");
            continue;
        }
        let name = w.name.as_deref().map(|n| format!("  \"{n}\"")).unwrap_or_default();
        let on = if w.triggers.is_empty() { "-".to_owned() } else { w.triggers.join(", ") };
        println!("{}{name}  on: {on}  ({})", w.file, plural(w.jobs.len(), "job"));
        let rows: Vec<[String; 5]> = w
            .jobs
            .iter()
            .map(|j| {
                [
                    j.id.clone(),
                    name_column(j),
                    if j.needs.is_empty() { "-".to_owned() } else { j.needs.join(",") },
                    j.matrix.map_or_else(|| "dynamic".to_owned(), |n| n.to_string()),
                    j.steps.to_string(),
                ]
            })
            .collect();
        crate::output::print_table(2, ["JOB", "NAME", "NEEDS", "MATRIX", "STEPS"], &rows);
    }
}

/// The NAME column: the name, or for a matrix job whose name has expressions, the first
/// instances' names.
fn name_column(job: &ListedJob) -> String {
    let Some(name) = &job.name else { return "-".to_owned() };
    match &job.instances {
        Some(names) if name.contains("${{") && !names.is_empty() => {
            let shown: Vec<&str> = names.iter().take(2).map(String::as_str).collect();
            let more = if names.len() > shown.len() { ", …" } else { "" };
            format!("{}{more}", shown.join(", "))
        }
        _ => name.clone(),
    }
}
