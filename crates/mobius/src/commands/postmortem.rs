//! `mobius postmortem INCIDENT [--output FILE] [--recorded LOCATION]`: a blameless post-mortem
//! draft from what the event log, the facts and the SLI counters say about an incident (see
//! `mobius_reliability::incidents` and `mobius_insights::postmortem`), from the local data
//! directory or `--server`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use jiff::Timestamp;
use mobius_reliability::incidents;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::PostmortemArgs;
use crate::client::Client;

pub async fn run(data_dir: Option<&Path>, args: PostmortemArgs) -> Result<ExitCode> {
    let client = Client::from(&args.remote)?;
    if let Some(location) = &args.recorded {
        let key = match &client {
            Some(client) => {
                let body = json!({ "incident": args.incident, "location": location });
                let answer: Value =
                    client.json(client.request(Method::POST, "/api/v1/postmortems").json(&body)).await?;
                answer["incident"].as_str().unwrap_or(&args.incident).to_owned()
            }
            None => {
                let settings = super::settings(data_dir, None)?;
                let store = super::open_store(&settings)?;
                let incident =
                    incidents::find(store.as_ref(), &args.incident)?.with_context(|| missing(&args.incident))?;
                let event = mobius_events::emit::reliability::postmortem_recorded(
                    &incident.key,
                    location,
                    mobius_events::emit::reliability::CLI_SOURCE,
                    Timestamp::now(),
                    mobius_events::Origin::Api,
                )?;
                mobius_log::ingest::Ingestor::new(store, settings.rules).append(&[event])?;
                incident.key
            }
        };
        println!("Recorded the post-mortem of {key} at {location}");
        return Ok(ExitCode::SUCCESS);
    }
    let text = draft(data_dir, client.as_ref(), &args.incident).await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("Wrote the draft to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The draft for `incident`, from the server or the local data directory.
pub async fn draft(data_dir: Option<&Path>, client: Option<&Client>, incident: &str) -> Result<String> {
    match client {
        Some(client) => {
            client.text(client.request(Method::GET, "/api/v1/postmortems").query(&[("incident", incident)])).await
        }
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            incidents::draft(store.as_ref(), incident)?.with_context(|| missing(incident))
        }
    }
}

fn missing(incident: &str) -> String {
    format!("no incident `{incident}`: give its key or the part after `#` (see `mobius incident list`)")
}
