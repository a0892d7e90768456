//! Alerts on SLOs, run by the server: every evaluation reads each SLO's multi-window
//! multi-burn-rate rules ([`crate::slo`]), steps its deduplicated page/ticket alerts
//! (`mobius_slo::alerts::SloAlerts`), and for each transition
//! - notifies the SLO's webhooks (generic JSON) and Slack URLs (`{"text": …}`), with retries;
//! - records an event (`dev.cdeventsx.mobius-alert.firing|resolved.0.1.0`), so alerts appear
//!   in the log and in post-mortem timelines;
//! - opens an incident when a page fires (`incident.detected`), naming the version whose error
//!   ratio is highest over the page's short window and its artifact — the evidence is in the
//!   description — and resolves it once the page has stayed resolved for a quiet period.
//!
//! The state is kept in the store after each evaluation that changes it, and restored when the
//! alerter starts, so a restarted server neither announces a firing alert again nor opens a
//! second incident for it. Each notification is claimed in the store before it is sent
//! ([`claims`]): a replica that takes the alerts over from states stored before a transition
//! its predecessor announced (it died in between) finds the claim and does not announce it
//! again — at most once across replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use mobius_events::NewEvent;
use mobius_events::emit::EmitError;
use mobius_events::emit::reliability as emit;
use mobius_slo::alerts::{Notification, RuleState, Severity, SloAlerts, State};

use self::claims::{Claim, Episodes};
use mobius_slo::spec::{Alerting, SloSpec};
use mobius_store::{RolloutQuery, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::slo::{self, SloStatus};
use mobius_deploy::rollout::Stored;
use mobius_log::Ingestor;

/// How long an SLO may stay unknown (its Prometheus unreachable) before a ticket says so.
pub const UNKNOWN_GRACE_S: i64 = 300;

/// One SLO's alert state as `GET /api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub service: String,
    pub slo: String,
    /// `page`, `ticket`, or `None` when nothing fires.
    pub firing: Option<Severity>,
    /// `page` or `ticket` whose rules fire but whose `alerting.for` has not passed yet.
    #[serde(default)]
    pub pending: Option<Severity>,
    /// Since when the current state holds.
    pub since: Option<Timestamp>,
    /// The rules at the last evaluation.
    pub rules: Vec<RuleState>,
    /// The incident the page opened, while it is open.
    pub incident: Option<String>,
}

/// How long the SLO's resolved page must stay resolved before its incident is resolved:
/// `alerting.quiet_period`, 5 minutes by default.
fn quiet_period_s(definitions: &[(String, SloSpec)], status: &SloStatus) -> i64 {
    let quiet = alerting_of(definitions, status).map_or(mobius_slo::spec::DEFAULT_QUIET_PERIOD, Alerting::quiet_period);
    i64::try_from(quiet.seconds).unwrap_or(i64::MAX)
}

/// The SLO's `alerting:` block, if it has one.
fn alerting_of<'a>(definitions: &'a [(String, SloSpec)], status: &SloStatus) -> Option<&'a Alerting> {
    let spec = definitions.iter().find(|(service, s)| *service == status.service && s.name() == status.slo);
    spec.and_then(|(_, s)| s.alerting.as_ref())
}

/// The SLO's `alerting.for`, in seconds (0 by default).
fn pending_for_s(definitions: &[(String, SloSpec)], status: &SloStatus) -> i64 {
    alerting_of(definitions, status).map_or(0, |a| i64::try_from(a.pending_for().seconds).unwrap_or(i64::MAX))
}

/// The most urgent of the alerts in `state`.
fn in_state(alerts: &SloAlerts, state: State) -> Option<Severity> {
    [(Severity::Page, alerts.page.state), (Severity::Ticket, alerts.ticket.state)]
        .into_iter()
        .find(|(_, s)| *s == state)
        .map(|(severity, _)| severity)
}

/// The store's key for the alert states.
const STATE_KEY: &str = "alerter";

#[derive(Default, Serialize, Deserialize)]
struct Tracked {
    alerts: SloAlerts,
    view: Option<AlertView>,
    /// The open incident's subject id, and when the page resolved (for the quiet period).
    incident: Option<(String, Option<i64>)>,
    /// Since when the SLO cannot be evaluated, and whether its ticket went out.
    unknown: Option<(i64, bool)>,
    /// The SLO's environment, to close its incident should the SLO go away.
    #[serde(default)]
    environment: String,
    /// How many times each severity fired: what notifications are claimed under.
    #[serde(default)]
    episodes: Episodes,
}

/// The server's alert evaluator. Cheap to clone.
#[derive(Clone)]
pub struct Alerter {
    store: Arc<dyn Store>,
    clock: mobius_log::Clock,
    ingestor: Ingestor,
    state: Arc<Mutex<HashMap<(String, String), Tracked>>>,
    /// The state as last stored, to store it only when it changed.
    saved: Arc<Mutex<String>>,
    /// SLI series kept between evaluations (shared with the API's SLO reads).
    series: Arc<slo::SeriesCache>,
    http: reqwest::Client,
    /// Who claims notifications (see [`claims`]): unique among the replicas.
    replica: Arc<str>,
}

impl Alerter {
    pub fn new(store: Arc<dyn Store>, ingestor: Ingestor, clock: mobius_log::Clock) -> Alerter {
        crate::install_tls_provider();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot build the alert notifier's client; using defaults");
            reqwest::Client::default()
        });
        let replica = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        Alerter {
            store,
            clock,
            ingestor,
            state: Arc::default(),
            saved: Arc::default(),
            series: Arc::default(),
            http,
            replica,
        }
    }

    /// Claims notifications as `replica` (the id its leases are held under; a random one
    /// otherwise).
    pub fn with_replica(mut self, replica: &str) -> Alerter {
        self.replica = Arc::from(replica);
        self
    }

    /// Takes up the alert states stored by an earlier run of the server.
    pub async fn restore(&self) {
        let store = self.store.clone();
        let stored = match mobius_log::blocking::spawn(move || store.state(STATE_KEY)).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return,
            Err(e) => return tracing::error!(error = %e, "cannot read the stored alert states"),
        };
        match serde_json::from_str::<Vec<((String, String), Tracked)>>(&stored) {
            Ok(tracked) => {
                *self.state.lock().unwrap_or_else(|e| e.into_inner()) = tracked.into_iter().collect();
                *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = stored;
            }
            Err(e) => tracing::error!(error = %e, "the stored alert states do not parse; starting afresh"),
        }
    }

    /// Stores the alert states if they changed since they were last stored.
    async fn persist(&self) {
        let text = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut tracked: Vec<(&(String, String), &Tracked)> = state.iter().collect();
            tracked.sort_by(|a, b| a.0.cmp(b.0));
            match serde_json::to_string(&tracked) {
                Ok(text) => text,
                Err(e) => return tracing::error!(error = %e, "cannot serialise the alert states"),
            }
        };
        if *self.saved.lock().unwrap_or_else(|e| e.into_inner()) == text {
            return;
        }
        let store = self.store.clone();
        let value = text.clone();
        match mobius_log::blocking::spawn(move || store.put_state(STATE_KEY, &value)).await {
            Ok(()) => *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = text,
            Err(e) => tracing::error!(error = %e, "cannot store the alert states"),
        }
    }

    /// Restores the stored states, then evaluates every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: impl Future<Output = ()>) {
        self.restore().await;
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = timer.tick() => self.evaluate(self.clock.now()).await,
            }
        }
    }

    /// The SLI series this alerter keeps between evaluations, for others that evaluate every
    /// SLO too.
    pub fn series_cache(&self) -> Arc<slo::SeriesCache> {
        self.series.clone()
    }

    /// The alert state of every SLO evaluated so far.
    pub fn views(&self) -> Vec<AlertView> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut views: Vec<AlertView> = state.values().filter_map(|t| t.view.clone()).collect();
        views.sort_by(|a, b| (&a.service, &a.slo).cmp(&(&b.service, &b.slo)));
        views
    }

    /// One evaluation at `now`.
    pub async fn evaluate(&self, now: Timestamp) {
        let (store, series) = (self.store.clone(), self.series.clone());
        // The definitions are read once: the statuses and the notifications both need them.
        let evaluated = mobius_log::blocking::spawn(move || {
            let definitions = slo::definitions(store.as_ref())?;
            let statuses = slo::statuses_of(store.as_ref(), &series, &definitions, now)?;
            Ok::<_, mobius_store::StoreError>((definitions, statuses))
        })
        .await;
        let (definitions, statuses) = match evaluated {
            Ok(evaluated) => evaluated,
            // Nothing can be alerted on without the SLIs; say so rather than go quiet.
            Err(e) => return tracing::error!(error = %e, "cannot evaluate the SLOs: no alerts this round"),
        };
        let now_s = now.as_second();
        self.forget_removed(&statuses, now).await;
        for status in statuses.iter().filter(|s| s.budget.is_none()) {
            if self.unknown(status, now).await {
                let n = Notification { severity: Severity::Ticket, firing: true, at_s: now.as_second() };
                self.notify(&definitions, status, &n, now).await;
            }
        }
        for status in statuses.iter().filter(|s| s.budget.is_some()) {
            let key = (status.service.clone(), status.slo.clone());
            let quiet_s = quiet_period_s(&definitions, status);
            // A copy is stepped, and kept once its transitions are claimed: one the store could
            // not take is stepped to again at the next evaluation, not lost.
            let (mut alerts, episodes) = {
                let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.get(&key).map_or_else(Default::default, |t| (t.alerts, t.episodes))
            };
            let pending_for = pending_for_s(&definitions, status);
            alerts.page.pending_for_s = pending_for;
            alerts.ticket.pending_for_s = pending_for;
            let notifications = alerts.step(&status.rules, now_s);
            let Some(claims) = self.claim_transitions(status, &notifications, episodes, now).await else { continue };
            let to_resolve = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let tracked = state.entry(key.clone()).or_default();
                tracked.unknown = None;
                tracked.environment.clone_from(&status.environment);
                tracked.alerts = alerts;
                notifications.iter().for_each(|n| tracked.episodes.record(n));
                let firing = in_state(&tracked.alerts, State::Firing);
                let pending = in_state(&tracked.alerts, State::Pending);
                let since = match &tracked.view {
                    Some(v) if v.firing == firing && v.pending == pending => v.since,
                    _ => Some(now),
                };
                // A resolved page starts the quiet period; a page firing again cancels it.
                if let Some((_, resolved_at)) = &mut tracked.incident {
                    if firing == Some(Severity::Page) {
                        *resolved_at = None;
                    } else if resolved_at.is_none() {
                        *resolved_at = Some(now_s);
                    }
                }
                let to_resolve = match &tracked.incident {
                    Some((id, Some(at))) if now_s - at >= quiet_s => Some(id.clone()),
                    _ => None,
                };
                if to_resolve.is_some() {
                    tracked.incident = None;
                }
                tracked.view = Some(AlertView {
                    service: status.service.clone(),
                    slo: status.slo.clone(),
                    firing,
                    pending,
                    since,
                    rules: status.rules.clone(),
                    incident: tracked.incident.as_ref().map(|(id, _)| id.clone()),
                });
                to_resolve
            };
            for (n, claim) in notifications.iter().zip(claims) {
                if claim.ours {
                    // The webhook first: the window between the claim and the page is the one
                    // in which a dying replica loses it.
                    self.notify(&definitions, status, n, now).await;
                } else {
                    tracing::info!(service = %status.service, slo = %status.slo, severity = %n.severity, firing = n.firing,
                        "announced already by another replica: not again");
                }
                // Recorded by every replica stepping to it, under the claim's id and instant:
                // the log keeps it once, even when its claimer died right after the webhook.
                self.record(status, n, claim.at).await;
                if n.severity == Severity::Page && n.firing {
                    // Under the claim's instant: a replica adopting the page opens the same
                    // incident (recorded once) in case its claimer died before it could.
                    let id = self.open_incident(status, claim.at).await;
                    let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(tracked) = state.get_mut(&key) {
                        tracked.incident = Some((id.clone(), None));
                        if let Some(view) = &mut tracked.view {
                            view.incident = Some(id);
                        }
                    }
                }
            }
            if let Some(id) = to_resolve {
                let description = "the page alert resolved and stayed quiet";
                self.resolve_incident(&id, &status.service, &status.environment, description, now).await;
            }
        }
        self.persist().await;
    }

    /// Drops the state of SLOs no longer defined (a release without them was deployed),
    /// resolving the incident a page of theirs left open: nothing would resolve it otherwise.
    async fn forget_removed(&self, statuses: &[SloStatus], now: Timestamp) {
        let defined: std::collections::HashSet<(&str, &str)> =
            statuses.iter().map(|s| (s.service.as_str(), s.slo.as_str())).collect();
        let removed: Vec<((String, String), Tracked)> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<(String, String)> = state
                .keys()
                .filter(|(service, slo)| !defined.contains(&(service.as_str(), slo.as_str())))
                .cloned()
                .collect();
            gone.into_iter().filter_map(|key| state.remove_entry(&key)).collect()
        };
        for ((service, slo), tracked) in removed {
            tracing::info!(%service, %slo, "SLO no longer defined: its alerts are dropped");
            if let Some((id, _)) = tracked.incident {
                let why = "the SLO is no longer defined";
                self.resolve_incident(&id, &service, &tracked.environment, why, now).await;
            }
        }
    }

    /// Claims the notifications of one SLO's step (see [`claims`]); `None`, logged, when the
    /// store cannot take the claims (nothing is sent, and the step is made again next time).
    async fn claim_transitions(
        &self,
        status: &SloStatus,
        notifications: &[Notification],
        mut episodes: Episodes,
        now: Timestamp,
    ) -> Option<Vec<Claim>> {
        if notifications.is_empty() {
            return Some(Vec::new());
        }
        let keys: Vec<String> = notifications
            .iter()
            .map(|n| {
                let key = claims::transition_key(&status.service, &status.slo, n, episodes);
                episodes.record(n);
                key
            })
            .collect();
        let (store, replica) = (self.store.clone(), self.replica.clone());
        let claimed = mobius_log::blocking::spawn(move || {
            keys.iter().map(|key| claims::claim(store.as_ref(), key, &replica, now)).collect::<Result<Vec<_>, _>>()
        })
        .await;
        claimed
            .map_err(|e| {
                tracing::error!(service = %status.service, slo = %status.slo, error = %e,
                    "cannot claim the SLO's alert notifications: they wait for the next evaluation");
            })
            .ok()
    }

    /// An SLO that cannot be evaluated is never healthy: after [`UNKNOWN_GRACE_S`] a ticket
    /// says so (once, across replicas: claimed as any notification), and it resolves when the
    /// SLO can be evaluated again. Whether this replica is to send that ticket now.
    async fn unknown(&self, status: &SloStatus, now: Timestamp) -> bool {
        let key = (status.service.clone(), status.slo.clone());
        let now_s = now.as_second();
        let view = |since: i64, sent: bool| AlertView {
            service: status.service.clone(),
            slo: status.slo.clone(),
            firing: sent.then_some(Severity::Ticket),
            pending: None,
            since: Timestamp::from_second(since).ok(),
            rules: Vec::new(),
            incident: None,
        };
        let due = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let tracked = state.entry(key.clone()).or_default();
            let (since, sent) = *tracked.unknown.get_or_insert((now_s, false));
            tracked.view = Some(view(since, sent));
            (!sent && now_s - since >= UNKNOWN_GRACE_S).then_some(since)
        };
        let Some(since) = due else { return false };
        let (store, replica) = (self.store.clone(), self.replica.clone());
        let claim_key = claims::unknown_key(&status.service, &status.slo, since);
        let claim =
            match mobius_log::blocking::spawn(move || claims::claim(store.as_ref(), &claim_key, &replica, now)).await {
                Ok(claim) => claim,
                Err(e) => {
                    tracing::error!(service = %status.service, slo = %status.slo, error = %e,
                    "cannot claim the unknown SLO's ticket: it waits for the next evaluation");
                    return false;
                }
            };
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(tracked) = state.get_mut(&key) {
                tracked.unknown = Some((since, true));
                tracked.view = Some(view(since, true));
            }
        }
        if claim.ours {
            let n = Notification { severity: Severity::Ticket, firing: true, at_s: now_s };
            self.record(status, &n, now).await;
            tracing::warn!(service = %status.service, slo = %status.slo, reason = ?status.unknown, "SLO unknown past its grace period");
        }
        claim.ours
    }

    /// Opens the incident of a firing page, naming the version that burns the most.
    async fn open_incident(&self, status: &SloStatus, now: Timestamp) -> String {
        let id = emit::slo_incident_id(&status.service, &status.slo, now);
        let store = self.store.clone();
        let (service, environment) = (status.service.clone(), status.environment.clone());
        let culprit = mobius_log::blocking::spawn(move || culprit(store.as_ref(), &service, &environment, now)).await;
        let description = match &culprit {
            Some(c) => format!(
                "{} {} SLO burning: page alert; version {} has the highest error ratio over the last 5 min ({:.2}% of {} requests{})",
                status.service,
                status.slo,
                c.version,
                c.ratio * 100.0,
                c.requests,
                c.others
            ),
            None => format!("{} {} SLO burning: page alert", status.service, status.slo),
        };
        let incident = emit::SloIncident { id: &id, service: &status.service, environment: &status.environment };
        let artifact = culprit.as_ref().and_then(|c| c.artifact.as_deref());
        self.emit(emit::slo_incident_detected(&incident, &description, artifact, now)).await;
        id
    }

    /// Resolves an incident a page opened.
    async fn resolve_incident(&self, id: &str, service: &str, environment: &str, why: &str, now: Timestamp) {
        let incident = emit::SloIncident { id, service, environment };
        self.emit(emit::slo_incident_resolved(&incident, why, now)).await;
    }

    /// Records an alert's transition in the log.
    async fn record(&self, status: &SloStatus, n: &Notification, claimed: Timestamp) {
        let state = if n.firing { emit::AlertState::Firing } else { emit::AlertState::Resolved };
        let body = alert_body(status, n, &slo::Contacts::default(), claimed);
        let transition = if n.firing { "firing" } else { "resolved" };
        let id =
            format!("alert-{}-{}-{}-{transition}-{}", status.service, status.slo, n.severity, claimed.as_microsecond());
        self.emit(emit::alert_as(&id, state, &status.service, &status.slo, &body, claimed)).await;
    }

    async fn notify(&self, definitions: &[(String, SloSpec)], status: &SloStatus, n: &Notification, now: Timestamp) {
        let spec = definitions.iter().find(|(service, s)| *service == status.service && s.name() == status.slo);
        let Some(alerting) = spec.and_then(|(_, spec)| spec.alerting.as_ref()) else { return };
        let (store, service) = (self.store.clone(), status.service.clone());
        let contacts = match mobius_log::blocking::spawn(move || slo::contacts(store.as_ref(), &service)).await {
            Ok(contacts) => contacts,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the service's owner and runbook: notifying without them");
                slo::Contacts::default()
            }
        };
        let body = alert_body(status, n, &contacts, now);
        let slack = json!({ "text": slack_text(status, n, &contacts) });
        for url in &alerting.webhooks {
            self.deliver(url.value.clone(), body.clone());
        }
        for url in &alerting.slack {
            self.deliver(url.value.clone(), slack.clone());
        }
    }

    /// POSTs `body` to `url` in the background: three attempts, 1 s then 2 s apart.
    fn deliver(&self, url: String, body: Value) {
        let http = self.http.clone();
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                }
                // The URL of a webhook is often its secret (Slack's is): only its host is logged.
                let shown = crate::redact::webhook_url(&url);
                match http.post(&url).json(&body).send().await {
                    Ok(response) if response.status().is_success() => return,
                    Ok(response) => {
                        tracing::warn!(url = %shown, status = %response.status(), attempt, "alert notification refused")
                    }
                    Err(e) => {
                        let error = crate::redact::http_error(e);
                        tracing::warn!(url = %shown, %error, attempt, "alert notification failed");
                    }
                }
            }
        });
    }

    /// Appends an event of the alerter's (durably, off the async workers). They are Mobius's
    /// own: one that does not build is a bug, logged.
    async fn emit(&self, event: Result<NewEvent, EmitError>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => return tracing::error!(error = %e, "an alert produced an invalid event"),
        };
        let ingestor = self.ingestor.clone();
        if let Err(e) = mobius_log::blocking::spawn(move || ingestor.append(&[event])).await {
            tracing::error!(error = %e, "cannot append alert events");
        }
    }
}

/// The generic JSON body of a notification.
fn alert_body(status: &SloStatus, n: &Notification, contacts: &slo::Contacts, now: Timestamp) -> Value {
    json!({
        "owner": contacts.owner,
        "runbook": contacts.runbook,
        "service": status.service,
        "slo": status.slo,
        "environment": status.environment,
        "severity": n.severity,
        "state": if n.firing { "firing" } else { "resolved" },
        "at": now.to_string(),
        "objective": status.objective,
        "budget_remaining": status.budget.as_ref().map(|b| b.remaining),
        "burn_rates": status.burn_rates,
        "unknown": status.unknown,
    })
}

fn slack_text(status: &SloStatus, n: &Notification, contacts: &slo::Contacts) -> String {
    let what = if n.firing { "FIRING" } else { "resolved" };
    let burn = status.burn_rates.iter().find(|(w, _)| w == "1h").map_or(0.0, |(_, b)| *b);
    let left = status.budget.as_ref().map_or(0.0, |b| b.remaining * 100.0);
    let mut text = format!(
        "[{what}] {:?}: {} {} error budget burn rate {burn:.1}× over 1 h; {left:.0}% of the budget left",
        n.severity, status.service, status.slo
    );
    if let Some(owner) = &contacts.owner {
        text.push_str(&format!("; owner {owner}"));
    }
    if let Some(runbook) = &contacts.runbook {
        text.push_str(&format!("; runbook {runbook}"));
    }
    text
}

/// The version with the highest error ratio over the last five minutes.
struct Culprit {
    version: String,
    ratio: f64,
    requests: u64,
    artifact: Option<String>,
    /// `; v2 0.10%` for the other versions, as evidence.
    others: String,
}

fn culprit(store: &dyn Store, service: &str, environment: &str, now: Timestamp) -> Option<Culprit> {
    let now_s = now.as_second();
    let minutes = match store.sli(service, environment, now_s - 300 - now_s.rem_euclid(60), now_s + 60) {
        Ok(minutes) => minutes,
        Err(e) => {
            tracing::warn!(error = %e, %service, "cannot read the SLIs to name the burning version");
            return None;
        }
    };
    let mut by_version: HashMap<String, (u64, u64)> = HashMap::new();
    for m in minutes {
        let entry = by_version.entry(m.version).or_default();
        entry.0 += m.requests;
        entry.1 += m.errors;
    }
    let ratio = |(requests, errors): (u64, u64)| if requests == 0 { 0.0 } else { errors as f64 / requests as f64 };
    let (version, counts) = by_version.iter().max_by(|a, b| ratio(*a.1).total_cmp(&ratio(*b.1)))?;
    let others: Vec<String> = by_version
        .iter()
        .filter(|(v, _)| *v != version)
        .map(|(v, c)| format!("; {v} {:.2}%", ratio(*c) * 100.0))
        .collect();
    Some(Culprit {
        version: version.clone(),
        ratio: ratio(*counts),
        requests: counts.0,
        artifact: artifact_of(store, service, environment, version),
        others: others.concat(),
    })
}

/// The artifact of a version of a service in an environment, from its rollouts.
fn artifact_of(store: &dyn Store, service: &str, environment: &str, version: &str) -> Option<String> {
    let rows = store
        .rollouts(&RolloutQuery {
            service: Some(service.to_owned()),
            environment: Some(environment.to_owned()),
            limit: 50,
            ..RolloutQuery::default()
        })
        .map_err(|e| tracing::warn!(error = %e, %service, "cannot read the rollouts to find the burning artifact"))
        .ok()?;
    rows.iter().filter_map(|row| serde_json::from_str::<Stored>(&row.body).ok()).find_map(|stored| {
        let r = stored.rollout;
        std::iter::once(r.new).chain(r.stable).find(|d| d.version == version).and_then(|d| d.artifact)
    })
}

mod claims;
#[cfg(test)]
mod tests;
