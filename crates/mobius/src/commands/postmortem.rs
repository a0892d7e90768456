//! `mobius postmortem INCIDENT [--output FILE]`: a blameless post-mortem draft from what the
//! event log, the facts and the SLI counters say about an incident (see
//! `mobius_insights::postmortem` for the shape).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use mobius_events::facts::Incident;
use mobius_insights::postmortem::{self, Draft, Impact, Moment};
use mobius_store::{EventQuery, Store};
use serde_json::Value;

use crate::cli::PostmortemArgs;

/// How far before detection and after resolution the timeline reaches.
const BEFORE: SignedDuration = SignedDuration::from_mins(30);
const AFTER: SignedDuration = SignedDuration::from_mins(5);

pub fn run(data_dir: Option<&Path>, args: PostmortemArgs) -> Result<ExitCode> {
    let settings = super::settings(data_dir, None)?;
    let store = super::open_store(&settings)?;
    if let Some(location) = &args.recorded {
        let incident = find(store.as_ref(), &args.incident)?;
        let event = serde_json::json!({
            "context": {
                "specversion": "0.5.1",
                "id": format!("postmortem:{}", incident.key),
                "source": "/mobius/cli",
                "type": RECORDED_TYPE,
                "timestamp": Timestamp::now().to_string(),
            },
            "subject": { "id": incident.key, "content": { "location": location } },
        });
        let parsed = mobius_events::cdevents::parse(&event.to_string(), mobius_events::Origin::Api)?;
        mobius_server::ingest::Ingestor::new(store, settings.rules).ingest(vec![Ok(parsed)])?;
        println!("Recorded the post-mortem of {} at {location}", incident.key);
        return Ok(ExitCode::SUCCESS);
    }
    let text = draft(store.as_ref(), &args.incident)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("Wrote the draft to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The event saying an incident's post-mortem was written (its subject is the incident's key).
pub const RECORDED_TYPE: &str = "dev.cdeventsx.mobius-postmortem.recorded.0.1.0";

/// The incident whose key is or ends with `#wanted`.
fn find(store: &dyn Store, wanted: &str) -> Result<Incident> {
    let now = Timestamp::now() + SignedDuration::from_hours(1);
    for scope in store.scopes()? {
        let facts = store.facts(&scope, Timestamp::UNIX_EPOCH, now)?;
        if let Some(i) = facts.incidents.into_iter().find(|i| i.key == wanted || i.key.ends_with(&format!("#{wanted}")))
        {
            return Ok(i);
        }
    }
    bail!("no incident `{wanted}`: give its key or the part after `#` (see `mobius incident list`)")
}

/// Whether an incident needs a post-mortem nobody recorded yet: it consumed more than
/// [`postmortem::REQUIRED_ABOVE`] of its service's availability budget.
pub fn required(store: &dyn Store, incident: &Incident) -> Result<bool> {
    let end = incident.resolved.unwrap_or_else(Timestamp::now);
    let Some((_, share)) = budget_consumed(store, incident, end, Timestamp::now())? else { return Ok(false) };
    if share <= postmortem::REQUIRED_ABOVE {
        return Ok(false);
    }
    let recorded = store.events(&mobius_store::EventQuery {
        ty: Some(RECORDED_TYPE.to_owned()),
        limit: 10_000,
        ..mobius_store::EventQuery::default()
    })?;
    Ok(!recorded.iter().any(|e| e.subject == incident.key))
}

/// The Markdown draft for the incident whose key is or ends with `wanted`.
pub fn draft(store: &dyn Store, wanted: &str) -> Result<String> {
    let now = Timestamp::now();
    let since = Timestamp::UNIX_EPOCH;
    let mut found = None;
    for scope in store.scopes()? {
        let facts = store.facts(&scope, since, now + SignedDuration::from_hours(1))?;
        if let Some(incident) =
            facts.incidents.iter().find(|i| i.key == wanted || i.key.ends_with(&format!("#{wanted}")))
        {
            found = Some((incident.clone(), facts));
            break;
        }
    }
    let Some((incident, facts)) = found else {
        bail!("no incident `{wanted}`: give its key or the part after `#` (see `mobius dora --explain`)");
    };
    let deployment = incident.deployment_id.and_then(|id| facts.deployments.iter().find(|d| d.id == id).cloned());
    let changes = match &deployment {
        Some(d) => facts.changes.iter().filter(|c| c.deployment_id == d.id).cloned().collect(),
        None => Vec::new(),
    };
    let end = incident.resolved.unwrap_or(now);
    let impact = Impact {
        failed_requests: failed_requests(store, &incident, end)?,
        budget_consumed: budget_consumed(store, &incident, end, now)?,
    };
    let (timeline, detected_by) = timeline(store, &incident, end)?;
    Ok(postmortem::render(&Draft { incident, deployment, changes, impact, detected_by, timeline }))
}

/// 5xx and all responses of the service's proxy from detection to `end` (whole minutes).
fn failed_requests(store: &dyn Store, incident: &Incident, end: Timestamp) -> Result<Option<(u64, u64)>> {
    let from = incident.detected.as_second();
    let to = end.as_second() + 60;
    let minutes = store.sli(&incident.service, &incident.environment, from - from.rem_euclid(60), to)?;
    let (failed, total) = minutes.iter().fold((0, 0), |(f, t), m| (f + m.errors, t + m.requests));
    Ok((total > 0).then_some((failed, total)))
}

/// The share of the service's first availability SLO's error budget (in that environment)
/// that the incident's failed requests consumed: failed during the incident ÷ (budget × every
/// request in the SLO's window).
fn budget_consumed(
    store: &dyn Store,
    incident: &Incident,
    end: Timestamp,
    now: Timestamp,
) -> Result<Option<(String, f64)>> {
    let slo = mobius_server::slo::definitions(store)?.into_iter().find(|(service, slo)| {
        *service == incident.service
            && slo.environment_name() == incident.environment
            && matches!(slo.sli, mobius_slo::spec::Sli::Availability {})
    });
    let Some((_, slo)) = slo else { return Ok(None) };
    let window = i64::try_from(slo.window_seconds()).unwrap_or(i64::MAX);
    let in_window =
        store.sli(&incident.service, &incident.environment, now.as_second() - window, now.as_second() + 60)?;
    let total: u64 = in_window.iter().map(|m| m.requests).sum();
    let Some((failed, _)) = failed_requests(store, incident, end)? else { return Ok(None) };
    let budget = slo.error_budget() * total as f64;
    Ok((budget > 0.0).then(|| (slo.name().to_owned(), failed as f64 / budget)))
}

/// What the log says happened to the service around the incident, and who reported it.
fn timeline(store: &dyn Store, incident: &Incident, end: Timestamp) -> Result<(Vec<Moment>, Option<String>)> {
    let (from, to) = (incident.detected - BEFORE, end + AFTER);
    let mut moments = Vec::new();
    let mut detected_by = None;
    let mut after = None;
    loop {
        let page = store.events(&EventQuery { after_seq: after, ty: None, origin: None, limit: 1000 })?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for event in &page {
            if event.timestamp < from || event.timestamp > to {
                continue;
            }
            let Ok(raw) = serde_json::from_str::<Value>(&event.raw) else { continue };
            let Some(what) = describe(&event.ty, &raw, &incident.service) else { continue };
            if event.ty.contains(".incident.detected.") && detected_by.is_none() && what.contains(&incident.title) {
                detected_by = Some(event.source.clone());
            }
            moments.push(Moment { at: event.timestamp, what });
        }
    }
    moments.sort_by_key(|m| m.at);
    Ok((moments, detected_by))
}

/// A line for an event about `service`, or `None` for events about something else.
fn describe(ty: &str, raw: &Value, service: &str) -> Option<String> {
    let content = &raw["subject"]["content"];
    let subject = raw["subject"]["id"].as_str().unwrap_or_default();
    let text = |path: &[&str]| {
        let mut v = content;
        for key in path {
            v = &v[*key];
        }
        v.as_str().unwrap_or_default().to_owned()
    };
    let environment = text(&["environment", "id"]);
    let kind = ty.split('.').nth(2).unwrap_or_default().to_owned() + "." + ty.split('.').nth(3).unwrap_or_default();
    Some(match kind.as_str() {
        "service.deployed" | "service.upgraded" if subject == service => {
            format!("{} deployed to {environment}", text(&["artifactId"]))
        }
        "service.rolledback" if subject == service => {
            format!("rolled back to {} in {environment}", text(&["artifactId"]))
        }
        "incident.detected" | "incident.reported" if text(&["service", "id"]) == service => {
            format!("incident detected: {}", text(&["description"]))
        }
        "incident.resolved" if text(&["service", "id"]) == service => "incident resolved".to_owned(),
        "environment.created"
            if raw["context"]["source"].as_str().is_some_and(|s| s.ends_with(&format!("/{service}"))) =>
        {
            format!("environment {subject} created")
        }
        "change.merged" => {
            let message = raw["customData"]["message"].as_str().unwrap_or_default();
            let branch = raw["customData"]["branch"].as_str().unwrap_or_default();
            format!("commit {} landed on {branch}: {message}", subject.chars().take(10).collect::<String>())
        }
        "pipelinerun.finished" => {
            format!("pipeline {} finished: {}", text(&["pipelineName"]), text(&["outcome"]))
        }
        _ => return None,
    })
}
