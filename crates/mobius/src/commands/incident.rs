//! `mobius incident open|ack|resolve|list|show`: incidents by hand. Each change is a CDEvent
//! (`incident.detected`, Mobius's `…mobius-incident.acknowledged`, `incident.resolved`, built by
//! `mobius_events::emit::reliability`) appended to the log — locally, or through `--server`
//! with an `ingest` token — so hand-made incidents go through the same rules (attribution,
//! recovery time) as every other source.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::Timestamp;
use mobius_events::emit::reliability::{CLI_SOURCE, IncidentRef};
use serde_json::json;

use super::backend::reliability::Change;
use super::backend::{Backend, Reliability};
use crate::cli::IncidentCommand;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: IncidentCommand) -> Result<ExitCode> {
    match command {
        IncidentCommand::Open { service, environment, title, severity, remote } => {
            let reliability = Backend::choose(data_dir, &remote, None)?.reliability();
            let now = Timestamp::now();
            let id = format!("inc-{}", now.as_millisecond());
            let incident = IncidentRef { id: &id, source: CLI_SOURCE, service: &service, environment: &environment };
            reliability.change(incident, Change::Opened { title: &title, severity: &severity }, now).await?;
            if json {
                print_json(&json!({ "incident": id, "key": incident.key() }))?;
            } else {
                println!("Opened incident {id} ({severity}) for {service} in {environment}");
            }
        }
        IncidentCommand::Ack { id, remote } => {
            let reliability = Backend::choose(data_dir, &remote, None)?.reliability();
            change(reliability.as_ref(), &id, Change::Acknowledged, "acknowledged").await?;
        }
        IncidentCommand::Resolve { id, remote } => {
            let reliability = Backend::choose(data_dir, &remote, None)?.reliability();
            change(reliability.as_ref(), &id, Change::Resolved, "resolved").await?;
        }
        IncidentCommand::List { open, remote } => {
            let incidents = Backend::choose(data_dir, &remote, None)?.reliability().incidents(open).await?;
            if json {
                print_json(&incidents)?;
            } else if incidents.is_empty() {
                println!("No incidents.");
            } else {
                println!(
                    "{:<28} {:<12} {:<5} {:<24} {:<16}  TITLE",
                    "INCIDENT", "STATE", "SEV", "SERVICE ENVIRONMENT", "DETECTED (UTC)"
                );
                for listed in &incidents {
                    let i = &listed.incident;
                    let state = match (i.acknowledged, i.resolved) {
                        (_, Some(_)) => "resolved",
                        (Some(_), None) => "acknowledged",
                        (None, None) => "triggered",
                    };
                    let short = i.key.rsplit('#').next().unwrap_or(&i.key);
                    let needs = if listed.postmortem_required { "  [post-mortem required]" } else { "" };
                    let severity = i.severity.as_deref().unwrap_or("—");
                    let scope = format!("{} {}", i.service, i.environment);
                    println!(
                        "{short:<28} {state:<12} {severity:<5} {scope:<24} {:<16}  {}{needs}",
                        i.detected.strftime("%Y-%m-%d %H:%M").to_string(),
                        i.title
                    );
                }
            }
        }
        IncidentCommand::Show { id, remote } => {
            let draft = Backend::choose(data_dir, &remote, None)?.reliability().postmortem_draft(&id).await?;
            if json {
                print_json(&json!({ "draft": draft }))?;
            } else {
                // The draft's facts and timeline, without the sections left for people.
                for line in draft.lines().take_while(|l| !l.starts_with("## Root causes")) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Acknowledges or resolves the incident whose key ends with `#id` (or is `id`).
async fn change(reliability: &dyn Reliability, id: &str, change: Change<'_>, word: &str) -> Result<()> {
    let found =
        reliability.incident(id).await?.with_context(|| format!("no incident `{id}`; see `mobius incident list`"))?;
    let incident = IncidentRef::from_key(&found.key, &found.service, &found.environment)
        .with_context(|| format!("incident {} did not come from CDEvents; change it where it came from", found.key))?;
    reliability.change(incident, change, Timestamp::now()).await?;
    println!("Incident {} {word}", incident.id);
    Ok(())
}
