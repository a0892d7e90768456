//! `mobius runs list|show|logs|cancel|rerun`: the server's pipeline runs.
//!
//! Reads (`list`, `show`, `logs`) work on the local data directory, or through `--server`.
//! `cancel` and `rerun` act on the server that runs the pipelines, so they always go through
//! the API: `--server`, else the configured listen address.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mobius_runs::logs::{self, RunLogLine};
use mobius_store::{RunDetail, RunQuery, RunRecord, RunState};
use reqwest::Method;
use serde_json::Value;

use crate::cli::{Remote, RunsCommand};
use crate::client::Client;
use crate::output::{print_json, print_table};

pub async fn run(data_dir: Option<&Path>, json: bool, command: RunsCommand) -> Result<ExitCode> {
    match command {
        RunsCommand::List { repository, state, limit, remote } => {
            let runs: Vec<RunRecord> = match Client::from(&remote)? {
                Some(client) => {
                    let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
                    query.extend(repository.map(|r| ("repository", r)));
                    query.extend(state.map(|s| ("state", s)));
                    client.json(client.request(Method::GET, "/api/v1/runs").query(&query)).await?
                }
                None => {
                    let store = super::open_store(&super::settings(data_dir, None)?)?;
                    let state = state.as_deref().and_then(RunState::parse);
                    store.runs(&RunQuery { repository, state, limit, before: None })?
                }
            };
            if json {
                print_json(&runs)?;
            } else if runs.is_empty() {
                println!("No runs yet. Register a repository with `mobius repo add PATH` and commit to it.");
            } else {
                print_list(&runs);
            }
        }
        RunsCommand::Show { id, remote } => {
            let detail = fetch(data_dir, &remote, id).await?;
            if json {
                print_json(&detail)?;
            } else {
                print_detail(&detail);
            }
        }
        RunsCommand::Logs { id, follow, remote } => return print_logs(data_dir, json, &remote, id, follow).await,
        RunsCommand::Cancel { id, remote } => {
            let client = super::server_client(data_dir, &remote)?;
            let answer: Value = client.json(client.request(Method::POST, &format!("/api/v1/runs/{id}/cancel"))).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Cancelling run {id}");
            }
        }
        RunsCommand::Rerun { id, failed, remote } => {
            let client = super::server_client(data_dir, &remote)?;
            let path = format!("/api/v1/runs/{id}/rerun");
            let answer: Value = client.json(client.request(Method::POST, &path).query(&[("failed", failed)])).await?;
            if json {
                print_json(&answer)?;
            } else {
                println!("Queued run {} (a re-run of {id})", answer["id"]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(data_dir: Option<&Path>, remote: &Remote, id: i64) -> Result<RunDetail> {
    match Client::from(remote)? {
        Some(client) => client.json(client.request(Method::GET, &format!("/api/v1/runs/{id}"))).await,
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            store.run(id)?.with_context(|| format!("no run {id}"))
        }
    }
}

async fn print_logs(data_dir: Option<&Path>, json: bool, remote: &Remote, id: i64, follow: bool) -> Result<ExitCode> {
    let mut after = 0;
    loop {
        let lines: Vec<RunLogLine> = match Client::from(remote)? {
            Some(client) => {
                let request =
                    client.request(Method::GET, &format!("/api/v1/runs/{id}/logs")).query(&[("after", after)]);
                let response = request.send().await.context("cannot reach the server")?;
                if !response.status().is_success() {
                    bail!("server answered {}", response.status());
                }
                let text = response.text().await?;
                text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
            }
            None => {
                let settings = super::settings(data_dir, None)?;
                logs::read_after(&logs::path(&settings.data_dir, id), after)?
            }
        };
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
        let detail = fetch(data_dir, remote, id).await?;
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
        "  {} {}@{}  attempt {}  {}",
        r.run.event,
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
}

/// `1.2s`, or `-` when it never started; still running counts up to now.
fn duration(started: Option<Timestamp>, finished: Option<Timestamp>) -> String {
    let Some(started) = started else { return "-".to_owned() };
    let end = finished.unwrap_or_else(Timestamp::now);
    let seconds = end.duration_since(started).as_secs_f64().max(0.0);
    format!("{seconds:.1}s")
}
