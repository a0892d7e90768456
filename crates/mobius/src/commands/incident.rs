//! `mobius incident open|ack|resolve|list|show`: incidents by hand. Each change is a CDEvent
//! (`incident.detected`, Mobius's `…mobius-incident.acknowledged`, `incident.resolved`) appended
//! to the log — locally, or through `--server` with an `ingest` token — so hand-made incidents
//! go through the same rules (attribution, recovery time) as every other source.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mobius_events::Origin;
use mobius_events::cdevents::{self, ACKNOWLEDGED};
use mobius_reliability::incidents::{self, Listed};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{IncidentCommand, Remote};
use crate::client::Client;
use crate::output::print_json;

/// The source of incidents made by hand.
const SOURCE: &str = "/mobius/cli";

pub async fn run(data_dir: Option<&Path>, json: bool, command: IncidentCommand) -> Result<ExitCode> {
    match command {
        IncidentCommand::Open { service, environment, title, severity, remote } => {
            let now = Timestamp::now();
            let id = format!("inc-{}", now.as_millisecond());
            let mut event = incident_event("dev.cdevents.incident.detected.0.3.0", &id, &service, &environment, now);
            event["subject"]["content"]["description"] = json!(title);
            event["customData"] = json!({ "severity": severity });
            send(data_dir, &remote, &event).await?;
            if json {
                print_json(&json!({ "incident": id, "key": format!("cdevents:{SOURCE}#{id}") }))?;
            } else {
                println!("Opened incident {id} ({severity}) for {service} in {environment}");
            }
        }
        IncidentCommand::Ack { id, remote } => change(data_dir, &remote, &id, ACKNOWLEDGED, "acknowledged").await?,
        IncidentCommand::Resolve { id, remote } => {
            change(data_dir, &remote, &id, "dev.cdevents.incident.resolved.", "resolved").await?
        }
        IncidentCommand::List { open, remote } => {
            let incidents = list(data_dir, &remote, open).await?;
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
            let client = Client::from(&remote)?;
            let draft = super::postmortem::draft(data_dir, client.as_ref(), &id).await?;
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
async fn change(data_dir: Option<&Path>, remote: &Remote, id: &str, ty: &str, word: &str) -> Result<()> {
    let incident = list(data_dir, remote, false)
        .await?
        .into_iter()
        .map(|l| l.incident)
        .find(|i| incidents::matches(&i.key, id))
        .with_context(|| format!("no incident `{id}`; see `mobius incident list`"))?;
    let (source, subject) = incident
        .key
        .strip_prefix("cdevents:")
        .and_then(|rest| rest.split_once('#'))
        .map(|(s, i)| (s.to_owned(), i.to_owned()))
        .with_context(|| {
            format!("incident {} did not come from CDEvents; change it where it came from", incident.key)
        })?;
    let ty = if ty == ACKNOWLEDGED { format!("{ACKNOWLEDGED}0.1.0") } else { format!("{ty}0.3.0") };
    let mut event = incident_event(&ty, &subject, &incident.service, &incident.environment, Timestamp::now());
    event["subject"]["source"] = json!(source);
    send(data_dir, remote, &event).await?;
    println!("Incident {subject} {word}");
    Ok(())
}

fn incident_event(ty: &str, subject: &str, service: &str, environment: &str, at: Timestamp) -> Value {
    json!({
        "context": {
            "specversion": "0.5.1",
            "id": uuid::Uuid::new_v4().to_string(),
            "source": SOURCE,
            "type": ty,
            "timestamp": at.to_string(),
        },
        "subject": {
            "id": subject,
            "source": SOURCE,
            "content": { "environment": { "id": environment }, "service": { "id": service } },
        },
    })
}

/// Appends one event locally, or through `--server`.
async fn send(data_dir: Option<&Path>, remote: &Remote, event: &Value) -> Result<()> {
    match Client::from(remote)? {
        Some(client) => {
            let answer: Value = client.json(client.request(Method::POST, "/api/v1/events").json(event)).await?;
            if answer["rejected"].as_u64().unwrap_or(0) > 0 {
                bail!("the server refused the event: {answer}");
            }
        }
        None => {
            let parsed = cdevents::parse(&event.to_string(), Origin::Api).context("a hand-made incident event")?;
            let settings = super::settings(data_dir, None)?;
            let store = super::open_store(&settings)?;
            let ingestor = mobius_log::ingest::Ingestor::new(store, settings.rules);
            ingestor.ingest(vec![Ok(parsed)])?;
        }
    }
    Ok(())
}

/// Every incident (only the unresolved ones with `open_only`), newest first, from the server
/// or the local data directory.
async fn list(data_dir: Option<&Path>, remote: &Remote, open_only: bool) -> Result<Vec<Listed>> {
    match Client::from(remote)? {
        Some(client) => {
            let path = if open_only { "/api/v1/incidents?open=true" } else { "/api/v1/incidents" };
            client.json(client.request(Method::GET, path)).await
        }
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            Ok(incidents::list(store.as_ref(), open_only)?)
        }
    }
}
