//! `mobius runs list|show|logs|start|cancel|approve|reject|rerun`: the server's pipeline runs.
//!
//! Reads (`list`, `show`, `logs`) go through the runs interface: the local data directory, or
//! `--server`. `cancel`, `approve`, `reject` and `rerun` act on the server that runs the pipelines, so they always
//! go through the API: `--server`, else the configured listen address.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use mobius_store::{RunDetail, RunRecord};

use super::backend::runs::RunList;
use super::backend::{self, Backend, Runs};
use crate::cli::RunsCommand;
use crate::output::{print_json, print_table};

pub async fn run(data_dir: Option<&Path>, json: bool, command: RunsCommand) -> Result<ExitCode> {
    match command {
        RunsCommand::List { repository, state, limit, remote } => {
            let runs =
                Backend::choose(data_dir, &remote, None)?.runs().list(&RunList { repository, state, limit }).await?;
            if json {
                print_json(&runs)?;
            } else if runs.is_empty() {
                println!("No runs yet. Register a repository with `mobius repo add PATH` and commit to it.");
            } else {
                print_list(&runs);
            }
        }
        RunsCommand::Show { id, remote } => {
            let detail = Backend::choose(data_dir, &remote, None)?.runs().show(id).await?;
            if json {
                print_json(&detail)?;
            } else {
                print_detail(&detail);
            }
        }
        RunsCommand::Logs { id, follow, remote } => {
            let runs = Backend::choose(data_dir, &remote, None)?.runs();
            return print_logs(runs.as_ref(), json, id, follow).await;
        }
        RunsCommand::Start { workflow, repo, git_ref, inputs, remote } => {
            let inputs: serde_json::Map<String, serde_json::Value> =
                inputs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            let mut body = serde_json::json!({ "repository": repo, "workflow": workflow, "inputs": inputs });
            if let Some(git_ref) = git_ref {
                body["ref"] = serde_json::Value::String(git_ref);
            }
            let answer = backend::server(data_dir, &remote)?.start_run(&body).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Queued run {}", answer["id"]);
            }
        }
        RunsCommand::Cancel { id, remote } => {
            let answer = backend::server(data_dir, &remote)?.cancel_run(id).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Cancelling run {id}");
            }
        }
        RunsCommand::Approve { id, job, comment, remote } => {
            let answer = backend::server(data_dir, &remote)?.review(id, &job, true, comment.as_deref()).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Approved {job} of run {id} to deploy to {}", answer["environment"].as_str().unwrap_or("?"));
            }
        }
        RunsCommand::Reject { id, job, comment, remote } => {
            let answer = backend::server(data_dir, &remote)?.review(id, &job, false, comment.as_deref()).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!(
                    "Rejected {job} of run {id}: it will not deploy to {}",
                    answer["environment"].as_str().unwrap_or("?")
                );
            }
        }
        RunsCommand::Rerun { id, failed, remote } => {
            let answer = backend::server(data_dir, &remote)?.rerun(id, failed).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Queued run {} (a re-run of {id})", answer["id"]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn print_logs(runs: &dyn Runs, json: bool, id: i64, follow: bool) -> Result<ExitCode> {
    let mut after = 0;
    loop {
        let lines = runs.log_after(id, after).await?;
        for line in &lines {
            after = line.seq;
            if json {
                println!("{}", serde_json::to_string(line)?);
            } else {
                println!("{} › {} | {}", line.job, line.step, line.text);
            }
        }
        if !follow {
            break;
        }
        // Ended runs have written their last line; read once more after the end to be sure.
        let detail = runs.show(id).await?;
        if detail.record.state.is_final() {
            if lines.is_empty() {
                break;
            }
            continue;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(runs: &[RunRecord]) {
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.state.as_str().to_owned(),
                r.run.workflow_name.clone(),
                r.run.branch.clone().unwrap_or_else(|| "-".to_owned()),
                r.run.sha.chars().take(8).collect(),
                r.run.queued_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                duration(r.started_at, r.finished_at),
            ]
        })
        .collect();
    print_table(0, ["ID", "STATE", "WORKFLOW", "BRANCH", "COMMIT", "QUEUED (UTC)", "TIME"], &rows);
}

fn print_detail(d: &RunDetail) {
    let r = &d.record;
    println!("run {}  {}  {} ({})", r.id, r.state.as_str(), r.run.workflow_name, r.run.workflow_file);
    println!(
        "  {}{} {}@{}  attempt {}  {}",
        r.run.event,
        if r.run.fork { " (from a fork: no secrets, no deployments)" } else { "" },
        r.run.repository,
        r.run.branch.as_deref().unwrap_or("-"),
        r.run.attempt,
        &r.run.sha,
    );
    if let Some(reason) = &r.reason {
        println!("  {reason}");
    }
    for job in &d.jobs {
        println!("  {:<10} {}  {}", job.state.as_str(), job.name, duration(job.started_at, job.finished_at));
        for step in &job.steps {
            println!("    {:<10} {}  {}", step.state.as_str(), step.name, duration(step.started_at, step.finished_at));
        }
    }
    print_statuses(&d.statuses);
}

/// Each context's latest commit status and its delivery (the JSON has every one).
fn print_statuses(statuses: &[mobius_store::CommitStatus]) {
    if statuses.is_empty() {
        return;
    }
    println!("  commit statuses:");
    let mut contexts: Vec<&str> = Vec::new();
    for status in statuses {
        if !contexts.contains(&status.context.as_str()) {
            contexts.push(&status.context);
        }
    }
    for context in contexts {
        let Some(latest) = statuses.iter().rev().find(|s| s.context == context) else { continue };
        let attempts = match latest.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        let error = match (&latest.last_error, latest.delivery) {
            (Some(error), mobius_store::Delivery::Pending | mobius_store::Delivery::Failed) => format!(": {error}"),
            _ => String::new(),
        };
        println!("    {:<10} {context}  {} ({attempts}){error}", latest.delivery.as_str(), latest.state.as_str());
    }
}

/// `1.2s`, or `-` when it never started; still running counts up to now.
fn duration(started: Option<Timestamp>, finished: Option<Timestamp>) -> String {
    let Some(started) = started else { return "-".to_owned() };
    let end = finished.unwrap_or_else(Timestamp::now);
    let seconds = end.duration_since(started).as_secs_f64().max(0.0);
    format!("{seconds:.1}s")
}
