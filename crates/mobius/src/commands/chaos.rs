//! `mobius chaos inject|list|clear`: faults on a service's proxy for game days, through the
//! server that runs the proxies (`backend::delivery`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_deploy::spec::Span;
use mobius_proxy::chaos::{Fault, FaultKind};

use super::backend;
use crate::cli::ChaosCommand;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: ChaosCommand) -> Result<ExitCode> {
    match command {
        ChaosCommand::Inject {
            service,
            environment,
            abort,
            delay,
            jitter,
            percent,
            version,
            header,
            duration,
            id,
            count,
            remote,
        } => {
            let span = |what: &str, text: &str| {
                Span::parse(text).with_context(|| format!("{what} `{text}` is not a duration like 300ms, 30s or 10m"))
            };
            let kind = match (abort, delay) {
                (Some(status), None) => FaultKind::Abort { status },
                (None, Some(delay)) => FaultKind::Delay {
                    ms: span("--delay", &delay)?.0.as_millis() as u64,
                    jitter_ms: span("--jitter", &jitter)?.0.as_millis() as u64,
                },
                _ => bail!("say what to inject: --abort STATUS or --delay DURATION"),
            };
            let now = jiff::Timestamp::now();
            let lasts = span("--for", &duration)?.0;
            let fault = Fault {
                id: id.unwrap_or_else(|| format!("fault-{}", now.as_second())),
                kind,
                percent,
                version,
                header,
                expires_at_ms: u64::try_from(now.as_millisecond()).unwrap_or_default() + lasts.as_millis() as u64,
            };
            // Checked here too, so a mistake is named before anything is sent.
            fault.check().map_err(anyhow::Error::msg)?;
            let faults =
                backend::server(data_dir, &remote)?.inject_fault(&service, &environment, &fault, count).await?;
            if json {
                print_json(&faults)?;
            } else {
                let budget = if count { "counted in error budgets" } else { "left out of error budgets (a game day)" };
                println!(
                    "Injected `{}` into {service} in {environment} for {duration}; its failures are {budget}.",
                    fault.id
                );
            }
        }
        ChaosCommand::List { remote } => {
            let list = backend::server(data_dir, &remote)?.faults().await?;
            if json {
                print_json(&list)?;
            } else if list.is_empty() {
                println!("No faults.");
            } else {
                for env in &list {
                    for f in env["faults"].as_array().into_iter().flatten() {
                        println!(
                            "{} {}  {}  {}% {}",
                            env["service"].as_str().unwrap_or_default(),
                            env["environment"].as_str().unwrap_or_default(),
                            f["fault"]["id"].as_str().unwrap_or_default(),
                            f["fault"]["percent"],
                            f["fault"]["kind"]
                        );
                    }
                }
            }
        }
        ChaosCommand::Clear { service, environment, remote } => {
            backend::server(data_dir, &remote)?.clear_faults(&service, &environment).await?;
            println!("Cleared the faults of {service} in {environment}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
