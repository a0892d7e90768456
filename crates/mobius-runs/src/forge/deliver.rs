//! The background task that drains the status outbox: one pass whenever a job's state was
//! stored (the runner wakes it) or a retry is due, each attempt's outcome recorded.
//!
//! Every replica runs it. A pass first claims what it sends ([`Store::claim_statuses`]:
//! whole contexts, for [`CLAIM_FOR`]), so two replicas never send the same status and a
//! context's states still go out in order from one of them; recording an attempt's outcome
//! ends its claim. A replica killed in the middle of a send leaves its claims to lapse, and
//! only then may another send those statuses again: delivery is at least once across such a
//! crash (as GitHub's own webhooks are), exactly once otherwise. A pass sends at most
//! [`BATCH`] statuses, a context's in order stopping at its first failure, [`CONCURRENCY`]
//! contexts at once, each request within [`REQUEST_TIMEOUT`]: well within the claim.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use mobius_log::Clock;
use mobius_secrets::Secrets;
use mobius_store::{Delivery, ForgeSettings, PendingStatus, StatusOutcome, Store};
use tokio::sync::Notify;

use super::{RetryPolicy, StatusRequest, plan, target_url};

/// The most statuses one pass claims.
pub const BATCH: u32 = 100;
/// How long a pass's claim on its statuses lasts.
pub const CLAIM_FOR: Duration = Duration::from_secs(300);
/// The longest a pass waits for the next when nothing wakes it (and nothing is due).
const IDLE: Duration = Duration::from_secs(30);
/// How long one request to a forge may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many contexts are sent to at once.
pub const CONCURRENCY: usize = 8;

/// Sends the outbox's statuses to the forges. Cheap to clone.
#[derive(Clone)]
pub struct StatusDelivery {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Who this process claims statuses as (the replica's lease holder).
    holder: String,
    secrets: Option<Secrets>,
    public_url: Option<String>,
    wake: Arc<Notify>,
    policy: RetryPolicy,
    clock: Clock,
    http: reqwest::Client,
}

/// What one attempt did.
enum Attempt {
    Delivered,
    /// Worth trying again (the forge was down, refused, or the token is missing).
    Failed(String),
    /// Never deliverable as configured (no forge any more, a name GitHub cannot take).
    Hopeless(String),
}

impl StatusDelivery {
    /// A delivery over `store`'s outbox claiming statuses as `holder` (unique to this
    /// process), opening tokens with `secrets`, linking statuses to runs under `public_url`,
    /// woken by `wake` (the runner's [`crate::Runner::status_wake`]).
    pub fn new(
        store: Arc<dyn Store>,
        holder: impl Into<String>,
        secrets: Option<Secrets>,
        public_url: Option<String>,
        wake: Arc<Notify>,
        clock: Clock,
    ) -> StatusDelivery {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot configure the status client; using the defaults");
            reqwest::Client::default()
        });
        let policy = RetryPolicy::default();
        let holder = holder.into();
        StatusDelivery { inner: Arc::new(Inner { store, holder, secrets, public_url, wake, policy, clock, http }) }
    }

    /// Delivers until `shutdown`: a pass at start (what a previous server left), then one
    /// whenever woken or a retry is due.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = self.pass().await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the outbox: what it claims, sent; returns how long until the next
    /// status is due.
    pub async fn pass(&self) -> Duration {
        let (store, holder) = (self.inner.store.clone(), self.inner.holder.clone());
        let now = self.inner.clock.now();
        let until =
            now.saturating_add(SignedDuration::try_from(CLAIM_FOR).unwrap_or(SignedDuration::MAX)).unwrap_or(now);
        let claimed = mobius_log::blocking::spawn(move || store.claim_statuses(&holder, now, until, BATCH)).await;
        let pending = match claimed {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim from the commit status outbox");
                return IDLE;
            }
        };
        let plan = plan(pending, now);
        let superseded: Vec<StatusOutcome> = plan
            .superseded
            .iter()
            .map(|&id| StatusOutcome {
                id,
                delivery: Delivery::Superseded,
                attempts: 0,
                next_attempt: now,
                error: None,
                at: now,
            })
            .collect();
        // Attempts made so far stay counted: the store keeps the larger count.
        self.record(superseded).await;
        let mut groups = plan.due.into_iter();
        loop {
            let mut set = tokio::task::JoinSet::new();
            for group in groups.by_ref().take(CONCURRENCY) {
                let this = self.clone();
                set.spawn(async move { this.send_in_order(group).await });
            }
            if set.is_empty() {
                break;
            }
            while set.join_next().await.is_some() {}
        }
        // Contexts waiting for a retry were not claimed: the next pass is due when the
        // earliest of them is.
        let store = self.inner.store.clone();
        let waiting = mobius_log::blocking::spawn(move || store.pending_statuses(BATCH)).await.unwrap_or_default();
        let next = waiting.iter().map(|s| s.next_attempt).filter(|at| *at > now).chain(plan.next).min();
        match next {
            Some(next) => {
                let until = next.duration_since(self.inner.clock.now());
                Duration::try_from(until.max(SignedDuration::ZERO)).unwrap_or(IDLE).min(IDLE)
            }
            None => IDLE,
        }
    }

    /// Sends one context's statuses in order, stopping at the first that fails.
    async fn send_in_order(&self, group: Vec<PendingStatus>) {
        for status in group {
            let attempt = self.attempt(&status).await;
            let delivered = matches!(attempt, Attempt::Delivered);
            let outcome = self.outcome(&status, attempt);
            self.record(vec![outcome]).await;
            if !delivered {
                return;
            }
        }
    }

    fn outcome(&self, status: &PendingStatus, attempt: Attempt) -> StatusOutcome {
        let now = self.inner.clock.now();
        let attempts = status.attempts + 1;
        let (delivery, next_attempt, error) = match attempt {
            Attempt::Delivered => (Delivery::Delivered, now, None),
            Attempt::Hopeless(error) => (Delivery::Failed, now, Some(error)),
            Attempt::Failed(error) => match self.inner.policy.next_wait(attempts) {
                Some(wait) => {
                    let wait = SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
                    (Delivery::Pending, now.saturating_add(wait).unwrap_or(now), Some(error))
                }
                None => (Delivery::Failed, now, Some(error)),
            },
        };
        match delivery {
            Delivery::Failed => tracing::warn!(
                run = status.run,
                context = %status.context,
                attempts,
                error = error.as_deref().unwrap_or_default(),
                "gave up delivering a commit status"
            ),
            Delivery::Pending => tracing::info!(
                run = status.run,
                context = %status.context,
                attempts,
                error = error.as_deref().unwrap_or_default(),
                "a commit status was not delivered; trying again later"
            ),
            _ => {}
        }
        StatusOutcome { id: status.id, delivery, attempts, next_attempt, error, at: now }
    }

    async fn record(&self, outcomes: Vec<StatusOutcome>) {
        if outcomes.is_empty() {
            return;
        }
        let store = self.inner.store.clone();
        if let Err(e) = mobius_log::blocking::spawn(move || store.record_status_outcomes(&outcomes)).await {
            tracing::error!(error = %e, "cannot record commit status deliveries");
        }
    }

    /// One attempt to send `status`; errors never carry the token.
    async fn attempt(&self, status: &PendingStatus) -> Attempt {
        let (forge, token) = match self.forge_and_token(&status.repository).await {
            Ok(Some(found)) => found,
            Ok(None) => return Attempt::Hopeless(format!("{} no longer reports to a forge", status.repository)),
            Err(error) => return Attempt::Failed(error),
        };
        let target = self.inner.public_url.as_deref().map(|base| target_url(base, status.run));
        let request = match StatusRequest::new(&forge, status, token.as_deref(), target.as_deref()) {
            Ok(request) => request,
            Err(error) => return Attempt::Hopeless(error.to_string()),
        };
        let hide = |text: String| match &token {
            Some(token) if !token.is_empty() => text.replace(token.as_str(), "***"),
            _ => text,
        };
        let mut builder = self.inner.http.post(&request.url).json(&request.body);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        match builder.send().await {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => {
                let code = response.status();
                let said = response.text().await.unwrap_or_default();
                Attempt::Failed(hide(format!("{} answered {code}{}", forge.kind, forge_message(&said))))
            }
            Err(error) => Attempt::Failed(hide(format!(
                "cannot reach {}: {}",
                forge.kind,
                mobius_pipelines::chain::Chain(&error.without_url())
            ))),
        }
    }

    /// The repository's forge settings and its token (opened now, never kept); `Ok(None)`
    /// when it has no forge any more; an error naming a token secret that is not stored.
    async fn forge_and_token(&self, repository: &str) -> Result<Option<(ForgeSettings, Option<String>)>, String> {
        let (store, secrets, repository) =
            (self.inner.store.clone(), self.inner.secrets.clone(), repository.to_owned());
        mobius_log::blocking::spawn(move || {
            let forge = store.forge(&repository).map_err(|e| format!("cannot read the forge settings: {e}"))?;
            let Some(forge) = forge else { return Ok(None) };
            let Some(name) = forge.token_secret.clone() else { return Ok(Some((forge, None))) };
            let missing = || format!("the token secret `{name}` is not stored for {repository}");
            let secrets = secrets.as_ref().ok_or_else(missing)?;
            let opened: HashMap<String, String> = secrets
                .for_repository(&repository)
                .map_err(|e| format!("cannot open the secrets of {repository}: {e}"))?
                .repository
                .into_iter()
                .collect();
            let token = opened.get(&name).cloned().ok_or_else(missing)?;
            Ok(Some((forge, Some(token))))
        })
        .await
    }
}

/// `: <message>` from a forge's error body (GitHub and GitLab both say `message`), short.
fn forge_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
        .unwrap_or_default();
    if message.is_empty() { String::new() } else { format!(": {}", message.chars().take(200).collect::<String>()) }
}
