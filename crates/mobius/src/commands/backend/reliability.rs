//! Reliability: SLO statuses, where a budget went, the error-budget policy, incidents and their
//! post-mortems; and the alerts a server evaluates.

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use mobius_events::emit::reliability::{self as emit, CLI_SOURCE, IncidentRef};
use mobius_events::facts::Incident;
use mobius_events::{NewEvent, Origin};
use mobius_log::ingest::Status;
use mobius_reliability::alerting::AlertView;
use mobius_reliability::incidents::{self, Listed};
use mobius_reliability::slo::{self, Explanation, PolicyCheck, SloStatus};
use mobius_slo::policy::Reason;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Answer, Local, Log, Remote};

/// Reliability.
pub trait Reliability: Send + Sync {
    /// Every SLO's budget, burn rates and alert state now.
    fn slos(&self) -> Answer<'_, Vec<SloStatus>>;

    /// Where the budget of `service`'s SLO `slo` went.
    fn explain<'a>(&'a self, service: &'a str, slo: &'a str) -> Answer<'a, Explanation>;

    /// What the error-budget policy would say to a deploy now (asking records nothing).
    fn check<'a>(&'a self, service: &'a str, environment: &'a str, reason: Option<Reason>) -> Answer<'a, PolicyCheck>;

    /// Every incident, newest first (only the unresolved ones with `open_only`).
    fn incidents(&self, open_only: bool) -> Answer<'_, Vec<Listed>>;

    /// The incident whose key is `wanted` or ends with `#wanted`.
    fn incident<'a>(&'a self, wanted: &'a str) -> Answer<'a, Option<Incident>>;

    /// Records a change to `incident` made by hand at `at`.
    fn change<'a>(&'a self, incident: IncidentRef<'a>, change: Change<'a>, at: Timestamp) -> Answer<'a, ()>;

    /// The post-mortem draft of the incident `wanted` names, in Markdown.
    fn postmortem_draft<'a>(&'a self, wanted: &'a str) -> Answer<'a, String>;

    /// Records that the post-mortem of the incident `wanted` names was written, at `location`;
    /// answers the incident's key.
    fn record_postmortem<'a>(&'a self, wanted: &'a str, location: &'a str) -> Answer<'a, String>;
}

/// A change to an incident by hand (`mobius incident open|ack|resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    Opened { title: &'a str, severity: &'a str },
    Acknowledged,
    Resolved,
}

/// The event that records `change`, built by its typed constructor.
fn event(incident: &IncidentRef<'_>, change: Change<'_>, at: Timestamp) -> Result<NewEvent> {
    Ok(match change {
        Change::Opened { title, severity } => emit::opened_by_hand(incident, title, severity, at, Origin::Api)?,
        Change::Acknowledged => emit::acknowledged_by_hand(incident, at, Origin::Api)?,
        Change::Resolved => emit::resolved_by_hand(incident, at, Origin::Api)?,
    })
}

/// Appends the event of `change` to `log`; a refusal is an error.
async fn append_change(log: &dyn Log, incident: &IncidentRef<'_>, change: Change<'_>, at: Timestamp) -> Result<()> {
    let result = log.append(event(incident, change, at)?).await?;
    if result.status == Status::Rejected {
        bail!("the event was refused: {}", result.error.unwrap_or_default());
    }
    Ok(())
}

fn missing(incident: &str) -> String {
    format!("no incident `{incident}`: give its key or the part after `#` (see `mobius incident list`)")
}

impl Reliability for Local {
    fn slos(&self) -> Answer<'_, Vec<SloStatus>> {
        // A Prometheus SLI is queried with blocking HTTP: off the workers too.
        Box::pin(self.with_store(|store| Ok(slo::statuses(store, Timestamp::now())?)))
    }

    fn explain<'a>(&'a self, service: &'a str, name: &'a str) -> Answer<'a, Explanation> {
        let (service, name) = (service.to_owned(), name.to_owned());
        Box::pin(self.with_store(move |store| {
            let definitions = slo::definitions(store)?;
            let (_, spec) = definitions
                .iter()
                .find(|(s, slo)| *s == service && slo.name() == name)
                .with_context(|| format!("{service} has no SLO `{name}` (see `mobius slo status`)"))?;
            slo::explain(store, &service, spec, Timestamp::now())?
                .with_context(|| format!("SLO `{name}` reads Prometheus: its requests are not in Mobius's store"))
        }))
    }

    fn check<'a>(&'a self, service: &'a str, environment: &'a str, reason: Option<Reason>) -> Answer<'a, PolicyCheck> {
        let (service, environment) = (service.to_owned(), environment.to_owned());
        Box::pin(self.with_store(move |store| Ok(slo::check(store, &service, &environment, reason, Timestamp::now())?)))
    }

    fn incidents(&self, open_only: bool) -> Answer<'_, Vec<Listed>> {
        Box::pin(self.with_store(move |store| Ok(incidents::list(store, open_only)?)))
    }

    fn incident<'a>(&'a self, wanted: &'a str) -> Answer<'a, Option<Incident>> {
        let wanted = wanted.to_owned();
        Box::pin(self.with_store(move |store| Ok(incidents::find(store, &wanted)?)))
    }

    fn change<'a>(&'a self, incident: IncidentRef<'a>, what: Change<'a>, at: Timestamp) -> Answer<'a, ()> {
        Box::pin(async move { append_change(self, &incident, what, at).await })
    }

    fn postmortem_draft<'a>(&'a self, wanted: &'a str) -> Answer<'a, String> {
        let wanted = wanted.to_owned();
        Box::pin(self.with_store(move |store| incidents::draft(store, &wanted)?.with_context(|| missing(&wanted))))
    }

    fn record_postmortem<'a>(&'a self, wanted: &'a str, location: &'a str) -> Answer<'a, String> {
        Box::pin(async move {
            let incident = self.incident(wanted).await?.with_context(|| missing(wanted))?;
            let event = emit::postmortem_recorded(&incident.key, location, CLI_SOURCE, Timestamp::now(), Origin::Api)?;
            let log = self.app().await?.log.clone();
            mobius_log::blocking::spawn(move || log.append(&[event])).await?;
            Ok(incident.key)
        })
    }
}

impl Reliability for Remote {
    fn slos(&self) -> Answer<'_, Vec<SloStatus>> {
        Box::pin(self.client.all(self.client.request(Method::GET, "/api/v1/slos"), None))
    }

    fn explain<'a>(&'a self, service: &'a str, slo: &'a str) -> Answer<'a, Explanation> {
        let request =
            self.client.request(Method::GET, "/api/v1/slos/explain").query(&[("service", service), ("slo", slo)]);
        Box::pin(self.client.json(request))
    }

    fn check<'a>(&'a self, service: &'a str, environment: &'a str, reason: Option<Reason>) -> Answer<'a, PolicyCheck> {
        let path = format!("/api/v1/policy/{service}/{environment}");
        let reason: Vec<(&str, String)> = reason.iter().map(|r| ("reason", r.to_string())).collect();
        Box::pin(self.client.json(self.client.request(Method::GET, &path).query(&reason)))
    }

    fn incidents(&self, open_only: bool) -> Answer<'_, Vec<Listed>> {
        let path = if open_only { "/api/v1/incidents?open=true" } else { "/api/v1/incidents" };
        Box::pin(self.client.all(self.client.request(Method::GET, path), None))
    }

    fn incident<'a>(&'a self, wanted: &'a str) -> Answer<'a, Option<Incident>> {
        Box::pin(async move {
            let listed = self.incidents(false).await?;
            Ok(listed.into_iter().map(|l| l.incident).find(|i| incidents::matches(&i.key, wanted)))
        })
    }

    fn change<'a>(&'a self, incident: IncidentRef<'a>, what: Change<'a>, at: Timestamp) -> Answer<'a, ()> {
        Box::pin(async move { append_change(self, &incident, what, at).await })
    }

    fn postmortem_draft<'a>(&'a self, wanted: &'a str) -> Answer<'a, String> {
        let request = self.client.request(Method::GET, "/api/v1/postmortems").query(&[("incident", wanted)]);
        Box::pin(self.client.text(request))
    }

    fn record_postmortem<'a>(&'a self, wanted: &'a str, location: &'a str) -> Answer<'a, String> {
        Box::pin(async move {
            let body = json!({ "incident": wanted, "location": location });
            let answer: Value =
                self.client.json(self.client.request(Method::POST, "/api/v1/postmortems").json(&body)).await?;
            Ok(answer["incident"].as_str().unwrap_or(wanted).to_owned())
        })
    }
}

impl Remote {
    /// Each SLO's alert state at the server's last evaluation (alerts live in the server).
    pub async fn alerts(&self) -> Result<Vec<AlertView>> {
        self.client.all(self.client.request(Method::GET, "/api/v1/alerts"), None).await
    }
}
