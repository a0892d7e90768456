//! `mobius init`, `mobius deploy`, `mobius rollout status|promote|abort|undo`.
//!
//! Deployments are the server's work (it runs the instances and the proxies), so `deploy` and
//! `rollout` always go through the API (`backend::delivery`): `--server`, else the configured
//! listen address.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_delivery::{DeployRequest, Source};
use mobius_deploy::rollout::{Plan, PlanStep, Rollout};

use super::backend;
use super::backend::delivery::RolloutAction;
use crate::cli::{DeployArgs, InitArgs, RolloutCommand};
use crate::output::print_json;

pub fn init(args: InitArgs) -> Result<ExitCode> {
    if args.schema {
        print!("{}", mobius_deploy::spec::json_schema());
        return Ok(ExitCode::SUCCESS);
    }
    let path = Path::new("mobius.yaml");
    if path.exists() && !args.force {
        bail!("mobius.yaml already exists; --force overwrites it");
    }
    std::fs::write(path, mobius_deploy::spec::STARTER).context("cannot write mobius.yaml")?;
    println!("Wrote mobius.yaml: edit `service`, `run` and `environments`, then `mobius deploy SERVICE ENV --dir .`");
    Ok(ExitCode::SUCCESS)
}

pub async fn deploy(data_dir: Option<&Path>, json: bool, args: DeployArgs) -> Result<ExitCode> {
    let server = backend::server(data_dir, &args.remote)?;
    let source = match (args.artifact, args.commit, args.dir) {
        (Some(digest), None, None) => Source::Artifact(digest),
        (None, Some(sha), None) => Source::Commit(sha),
        (None, None, Some(dir)) => Source::Upload(server.upload(&dir).await?),
        _ => bail!("say what to deploy: --artifact DIGEST, --commit SHA or --dir PATH"),
    };
    let request = DeployRequest {
        service: args.service,
        environment: args.environment,
        source,
        version: args.label,
        reason: args.reason,
        by: None,
    };
    let rollout = server.deploy(&request).await?;
    if json {
        print_json(&rollout)?;
    } else {
        println!(
            "Rollout {} of {} {} to {} started ({}); follow it with `mobius rollout status {} {}`",
            rollout.id,
            rollout.service,
            rollout.new.version,
            rollout.environment,
            rollout.plan.name(),
            rollout.service,
            rollout.environment
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollout(data_dir: Option<&Path>, json: bool, command: RolloutCommand) -> Result<ExitCode> {
    let (service, environment, action, remote) = match command {
        RolloutCommand::Status { service, environment, remote } => (service, environment, None, remote),
        RolloutCommand::Promote { service, environment, remote } => {
            (service, environment, Some(RolloutAction::Promote), remote)
        }
        RolloutCommand::Abort { service, environment, remote } => {
            (service, environment, Some(RolloutAction::Abort), remote)
        }
        RolloutCommand::Undo { service, environment, remote } => {
            (service, environment, Some(RolloutAction::Undo), remote)
        }
    };
    let server = backend::server(data_dir, &remote)?;
    let rollout = match action {
        None => server.rollout(&service, &environment).await?,
        Some(action) => server.change_rollout(&service, &environment, action).await?,
    };
    if json {
        print_json(&rollout)?;
    } else {
        print_status(&rollout);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(r: &Rollout) {
    let from = r.stable.as_ref().map(|s| format!("{} → ", s.version)).unwrap_or_default();
    println!(
        "rollout {}: {} {from}{} in {} ({}) — {}",
        r.id,
        r.service,
        r.new.version,
        r.environment,
        r.plan.name(),
        r.phase.as_str()
    );
    println!("  traffic to {}: {}%", r.new.version, r.weight);
    if let Plan::Canary { steps } = &r.plan {
        let marks: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let text = match step {
                    PlanStep::SetWeight(w) => format!("weight {w}%"),
                    PlanStep::Pause(Some(ms)) => format!("pause {}s", ms / 1000),
                    PlanStep::Pause(None) => "pause".to_owned(),
                    PlanStep::Analysis(_) => "analysis".to_owned(),
                };
                let mark = if i < r.step {
                    "✓"
                } else if i == r.step && !r.phase.is_final() {
                    "▶"
                } else {
                    " "
                };
                format!("{mark} {text}")
            })
            .collect();
        println!("  steps: {}", marks.join("  "));
    }
    if !r.message.is_empty() {
        println!("  {}", r.message);
    }
    if let Some(m) = r.measurements.last() {
        let checks: Vec<String> = m
            .checks
            .iter()
            .map(|c| {
                let value = c.value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
                format!("{} {value}{}", c.name, if c.passed { "" } else { " ✗" })
            })
            .collect();
        println!("  last measurement ({:?}): {}", m.verdict, checks.join(", "));
    }
    for entry in r.history.iter().rev().take(5).collect::<Vec<_>>().into_iter().rev() {
        println!("  {}  {}", entry.at.strftime("%H:%M:%S"), entry.message);
    }
}
