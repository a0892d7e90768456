//! Incidents as the server and the CLI show them: every incident in the facts, which need a
//! post-mortem, and the post-mortem draft — what the event log, the facts and the SLI counters
//! say about one incident, in the shape of `mobius_insights::postmortem`.

use jiff::{SignedDuration, Timestamp};
use mobius_events::facts::Attribution;
use mobius_events::facts::Incident;
use mobius_insights::postmortem::{self, Draft, FlagChange, Impact, Moment};
use mobius_slo::spec::SloSpec;
use mobius_store::{EventQuery, Scope, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far before detection and after resolution the timeline reaches.
const BEFORE: SignedDuration = SignedDuration::from_mins(30);
const AFTER: SignedDuration = SignedDuration::from_mins(5);

/// How long before detection a flag change is a suspect: a flag flip takes effect at once (no
/// instances to start), so only a change shortly before the first errors explains them.
pub const FLAG_SUSPECT_WINDOW: SignedDuration = SignedDuration::from_mins(30);

/// The event saying an incident's post-mortem was written (its subject is the incident's key).
pub use mobius_events::emit::reliability::POSTMORTEM_RECORDED as RECORDED_TYPE;

/// An incident as listed: its facts, and whether it still needs a post-mortem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    #[serde(flatten)]
    pub incident: Incident,
    pub postmortem_required: bool,
}

/// Whether `key` is `wanted`, or ends with `#wanted` (the part users type).
pub fn matches(key: &str, wanted: &str) -> bool {
    key == wanted || key.strip_suffix(wanted).is_some_and(|head| head.ends_with('#'))
}

/// Every incident, newest first; only the unresolved ones with `open_only`.
pub fn list(store: &dyn Store, open_only: bool) -> Result<Vec<Listed>, StoreError> {
    // Read only if some incident burned enough to need a post-mortem: it scans the log.
    let mut recorded = None;
    let definitions = crate::slo::definitions(store)?;
    let mut incidents = store.incidents()?;
    incidents.retain(|i| !open_only || i.resolved.is_none());
    let mut listed = Vec::with_capacity(incidents.len());
    for incident in incidents {
        let postmortem_required = needs_postmortem(store, &definitions, &incident, &mut recorded)?;
        listed.push(Listed { incident, postmortem_required });
    }
    Ok(listed)
}

/// The incident whose key is or ends with `#wanted`.
pub fn find(store: &dyn Store, wanted: &str) -> Result<Option<Incident>, StoreError> {
    Ok(store.incidents()?.into_iter().find(|i| matches(&i.key, wanted)))
}

/// The keys of the incidents whose post-mortem was recorded.
fn recorded(store: &dyn Store) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut keys = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let query =
            EventQuery { ty: Some(RECORDED_TYPE.to_owned()), after_seq: after, limit: 1000, ..EventQuery::default() };
        let page = store.events(&query)?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        keys.extend(page.into_iter().map(|e| e.subject));
    }
    Ok(keys)
}

/// Whether an incident needs a post-mortem nobody recorded yet: it consumed more than
/// [`postmortem::REQUIRED_ABOVE`] of its service's availability budget.
fn needs_postmortem(
    store: &dyn Store,
    definitions: &[(String, SloSpec)],
    incident: &Incident,
    recorded: &mut Option<std::collections::HashSet<String>>,
) -> Result<bool, StoreError> {
    let end = incident.resolved.unwrap_or_else(Timestamp::now);
    let consumed = budget_consumed(store, definitions, incident, end, Timestamp::now())?;
    if !consumed.is_some_and(|(_, share)| share > postmortem::REQUIRED_ABOVE) {
        return Ok(false);
    }
    if recorded.is_none() {
        *recorded = Some(self::recorded(store)?);
    }
    Ok(!recorded.as_ref().is_some_and(|keys| keys.contains(&incident.key)))
}

/// The Markdown draft for the incident whose key is or ends with `#wanted`.
pub fn draft(store: &dyn Store, wanted: &str) -> Result<Option<String>, StoreError> {
    Ok(draft_of(store, wanted)?.map(|draft| postmortem::render(&draft)))
}

/// What the draft of the incident whose key is or ends with `#wanted` is made from — its
/// facts, the deployment it is attributed to, its impact and its timeline — for a door that
/// shows them beside the Markdown ([`postmortem::render`] of it) without reading them twice.
pub fn draft_of(store: &dyn Store, wanted: &str) -> Result<Option<Draft>, StoreError> {
    let now = Timestamp::now();
    let Some(incident) = find(store, wanted)? else { return Ok(None) };
    // Its service's facts, for the deployment it is attributed to and what that shipped.
    let scope = Scope { service: incident.service.clone(), environment: incident.environment.clone() };
    let facts = store.facts(&scope, Timestamp::UNIX_EPOCH, now + SignedDuration::from_hours(1))?;
    let deployment = incident.deployment_id.and_then(|id| facts.deployments.iter().find(|d| d.id == id).cloned());
    let changes = match &deployment {
        Some(d) => facts.changes.iter().filter(|c| c.deployment_id == d.id).cloned().collect(),
        None => Vec::new(),
    };
    let end = incident.resolved.unwrap_or(now);
    let impact = Impact {
        failed_requests: failed_requests(store, &incident, end)?,
        budget_consumed: budget_consumed(store, &crate::slo::definitions(store)?, &incident, end, now)?,
    };
    let Around { moments: timeline, detected_by, flag_changes } = timeline(store, &incident, end)?;
    let flag_change = flag_suspect(&incident, flag_changes);
    Ok(Some(Draft { incident, deployment, changes, impact, detected_by, timeline, flag_change }))
}

/// The latest flag change of the incident's environment within [`FLAG_SUSPECT_WINDOW`] before
/// detection — unless the incident names its change (an explicit link wins, as it does over a
/// deployment found by the window).
fn flag_suspect(incident: &Incident, changes: Vec<FlagChange>) -> Option<FlagChange> {
    if matches!(incident.attribution, Attribution::ExplicitArtifact | Attribution::ExplicitCommit) {
        return None;
    }
    let from = incident.detected - FLAG_SUSPECT_WINDOW;
    changes.into_iter().filter(|c| c.at >= from && c.at <= incident.detected).max_by_key(|c| c.at)
}

/// How long before its detection an incident's impact is counted from: a burn-rate page fires
/// on the last 5 minutes' errors (the short window of the fastest alert), so the requests that
/// made it fire are the incident's, even when the minute turned between them and the page.
const IMPACT_BEFORE_DETECTION: i64 = 5 * 60;

/// 5xx and all responses of the service's proxy from 5 minutes before detection to `end`
/// (whole minutes).
fn failed_requests(store: &dyn Store, incident: &Incident, end: Timestamp) -> Result<Option<(u64, u64)>, StoreError> {
    let from = incident.detected.as_second() - IMPACT_BEFORE_DETECTION;
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
    definitions: &[(String, SloSpec)],
    incident: &Incident,
    end: Timestamp,
    now: Timestamp,
) -> Result<Option<(String, f64)>, StoreError> {
    let slo = definitions.iter().find(|(service, slo)| {
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

/// What the log says happened to the service around the incident, who reported it, and the
/// changes to flag sets of its environment.
fn timeline(store: &dyn Store, incident: &Incident, end: Timestamp) -> Result<Around, StoreError> {
    let (from, to) = (incident.detected - BEFORE, end + AFTER);
    let mut moments = Vec::new();
    let mut flag_changes = Vec::new();
    let mut detected_by = None;
    let mut after = None;
    loop {
        // `to` itself counts: the bound is exclusive.
        let happened = Some((from, to + SignedDuration::from_micros(1)));
        let query = EventQuery { after_seq: after, happened, limit: 1000, ..EventQuery::default() };
        let page = store.events(&query)?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        for event in &page {
            if event.timestamp < from || event.timestamp > to {
                continue;
            }
            // Every event in the log was JSON when it was appended.
            let Ok(raw) = serde_json::from_str::<Value>(&event.raw) else { continue };
            if event.ty == mobius_events::emit::flags::FLAG_CHANGED {
                if let Some(change) = flag_change(&raw, &incident.environment, event.timestamp) {
                    moments.push(Moment { at: event.timestamp, what: change.describe() });
                    flag_changes.push(change);
                }
                continue;
            }
            let Some(what) = describe(&event.ty, &raw, &incident.service) else { continue };
            if event.ty.contains(".incident.detected.") && detected_by.is_none() && what.contains(&incident.title) {
                detected_by = Some(event.source.clone());
            }
            moments.push(Moment { at: event.timestamp, what });
        }
    }
    moments.sort_by_key(|m| m.at);
    Ok(Around { moments, detected_by, flag_changes })
}

/// What the log holds around an incident.
struct Around {
    moments: Vec<Moment>,
    detected_by: Option<String>,
    flag_changes: Vec<FlagChange>,
}

/// A `mobius-flag.changed` event as a post-mortem names it, when its set belongs to
/// `environment` (flag sets belong to an environment, not to a service: a change in it may
/// explain any of its services' incidents).
fn flag_change(raw: &Value, environment: &str, at: Timestamp) -> Option<FlagChange> {
    let content = &raw["subject"]["content"];
    if content["environment"].as_str() != Some(environment) {
        return None;
    }
    let text = |key: &str| content[key].as_str().map(str::to_owned);
    Some(FlagChange {
        at,
        set: text("set")?,
        flag: text("flag"),
        action: text("action").unwrap_or_default(),
        by: text("by").unwrap_or_default(),
        reason: text("reason"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_flag_change_in_the_window_is_the_suspect_unless_the_incident_names_its_change() {
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        let change = |when: &str, reason: &str| FlagChange {
            at: at(when),
            set: "shop.production".into(),
            flag: Some("checkout".into()),
            action: "split".into(),
            by: "rollout:bob".into(),
            reason: Some(reason.into()),
        };
        let incident = |attribution| Incident {
            key: "cdevents:/mobius/slo/shop#alert-1".into(),
            service: "shop".into(),
            environment: "production".into(),
            title: "burning".into(),
            detected: at("2026-12-01T10:30:00Z"),
            acknowledged: None,
            resolved: None,
            deployment_id: None,
            attribution,
            severity: None,
        };
        let changes = || {
            vec![
                change("2026-12-01T09:59:59Z", "too early"),
                change("2026-12-01T10:00:00Z", "first"),
                change("2026-12-01T10:20:00Z", "latest"),
                change("2026-12-01T10:31:00Z", "after detection"),
            ]
        };
        let reason = |a| flag_suspect(&incident(a), changes()).and_then(|c| c.reason);
        assert_eq!(reason(Attribution::Unattributed).as_deref(), Some("latest"));
        assert_eq!(reason(Attribution::Window).as_deref(), Some("latest"), "beside a deployment found by the window");
        assert_eq!(reason(Attribution::ExplicitArtifact), None, "an explicit link wins");
        assert_eq!(reason(Attribution::ExplicitCommit), None);
        let only_early = vec![change("2026-12-01T09:59:59Z", "too early")];
        assert_eq!(flag_suspect(&incident(Attribution::Unattributed), only_early), None);
    }

    #[test]
    fn an_incident_is_named_by_its_key_or_the_part_after_the_hash() {
        let key = "cdevents:/mobius/deploy/shop#rollout-6";
        assert!(matches(key, key));
        assert!(matches(key, "rollout-6"));
        assert!(!matches(key, "6"), "a suffix must start right after the `#`");
        assert!(!matches(key, "shop#rollout-6"));
        assert!(!matches(key, "rollout-66"));
    }
}
