//! Commit statuses back to the forge (GitHub, GitLab): every job of a run reports its state on
//! the run's commit, with context `mobius/<workflow>/<job>`, so the feedback lands where
//! developers look.
//!
//! The store writes each job state to an outbox in the transaction that records it (see
//! `mobius_store::forge`); [`StatusDelivery`] drains that outbox in the background. The rules
//! are here, as plain functions the tests check without a network:
//!
//! - [`RetryPolicy`]: 1 s doubling to 5 min between attempts, giving up after 20 (about an
//!   hour); a forge that is down never blocks or fails a run.
//! - [`plan`]: the states of one context go out in order; once a context's delivery has
//!   failed, only its newest state is still worth sending (the older ones are superseded), so
//!   after an outage the forge sees the final state at once.
//! - [`forge_state`], [`StatusRequest::new`]: each forge's words, path and headers.

mod deliver;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use mobius_store::{ForgeKind, ForgeSettings, PendingStatus, RunState};
use serde_json::json;

pub use deliver::StatusDelivery;

/// How often and for how long a status is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; each later wait doubles it.
    pub first: Duration,
    /// The longest wait between two attempts.
    pub longest: Duration,
    /// Attempts in all before a status is recorded as failed.
    pub attempts: u32,
}

impl Default for RetryPolicy {
    /// 1 s, 2 s, 4 s … 256 s, then every 5 min: 20 attempts span about an hour.
    fn default() -> Self {
        RetryPolicy { first: Duration::from_secs(1), longest: Duration::from_secs(300), attempts: 20 }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt once `failed` attempts have failed (`failed` ≥ 1);
    /// `None` when that was the last attempt.
    pub fn next_wait(&self, failed: u32) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let doublings = failed.saturating_sub(1).min(31);
        let wait = self.first.saturating_mul(1u32 << doublings);
        Some(wait.min(self.longest))
    }
}

/// The word the forge uses for a job's state.
pub fn forge_state(kind: ForgeKind, state: RunState) -> &'static str {
    match (kind, state) {
        (ForgeKind::Github, RunState::Queued | RunState::Waiting | RunState::Running) => "pending",
        // GitHub has no word for skipped; a skipped job blocks nothing (as GitHub Actions).
        (ForgeKind::Github, RunState::Success | RunState::Skipped) => "success",
        (ForgeKind::Github, RunState::Failure) => "failure",
        (ForgeKind::Github, RunState::Cancelled | RunState::Interrupted) => "error",
        // A job waiting for a review is not running yet; GitLab's statuses have no `manual`.
        (ForgeKind::Gitlab, RunState::Queued | RunState::Waiting) => "pending",
        (ForgeKind::Gitlab, RunState::Running) => "running",
        (ForgeKind::Gitlab, RunState::Success) => "success",
        (ForgeKind::Gitlab, RunState::Failure) => "failed",
        (ForgeKind::Gitlab, RunState::Cancelled | RunState::Interrupted) => "canceled",
        (ForgeKind::Gitlab, RunState::Skipped) => "skipped",
    }
}

/// The status's description (GitHub shows at most 140 characters).
pub fn description(state: RunState) -> &'static str {
    match state {
        RunState::Queued => "Queued",
        RunState::Waiting => "Waiting for a review before it deploys",
        RunState::Running => "Running",
        RunState::Success => "Succeeded",
        RunState::Failure => "Failed",
        RunState::Cancelled => "Cancelled",
        RunState::Skipped => "Skipped",
        RunState::Interrupted => "Interrupted: the server stopped during the run",
    }
}

/// What one pass over the outbox does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Older states of contexts whose delivery failed, replaced by their newest state.
    pub superseded: Vec<i64>,
    /// Per context, the statuses to send now, in order (stop at the first that fails).
    pub due: Vec<Vec<PendingStatus>>,
    /// When the earliest status not due yet is.
    pub next: Option<Timestamp>,
}

/// Groups pending statuses (oldest first) by context and decides what to send at `now`.
pub fn plan(pending: Vec<PendingStatus>, now: Timestamp) -> Plan {
    let mut contexts: BTreeMap<(i64, String), Vec<PendingStatus>> = BTreeMap::new();
    let mut order = Vec::new();
    for status in pending {
        let key = (status.run, status.context.clone());
        if !contexts.contains_key(&key) {
            order.push(key.clone());
        }
        contexts.entry(key).or_default().push(status);
    }
    let mut plan = Plan::default();
    for key in order {
        let Some(mut group) = contexts.remove(&key) else { continue };
        if group.len() > 1 && group.iter().any(|s| s.attempts > 0) {
            let newest = group.split_off(group.len() - 1);
            plan.superseded.extend(group.iter().map(|s| s.id));
            group = newest;
        }
        let head = &group[0];
        if head.next_attempt <= now {
            plan.due.push(group);
        } else {
            plan.next = Some(plan.next.map_or(head.next_attempt, |next| next.min(head.next_attempt)));
        }
    }
    plan
}

/// One status as an HTTP request to its forge. Not `Debug`: its headers carry the token.
pub struct StatusRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: serde_json::Value,
}

/// Why a status cannot be put into a request at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the repository name `{0}` is not owner/name, as GitHub needs it")]
    NotOwnerName(String),
}

impl StatusRequest {
    /// The request for `status` to the forge of `forge`, authenticated with `token` when
    /// there is one; `target_url` links the status to the run.
    pub fn new(
        forge: &ForgeSettings,
        status: &PendingStatus,
        token: Option<&str>,
        target_url: Option<&str>,
    ) -> Result<StatusRequest, RequestError> {
        let api = forge.api_url.trim_end_matches('/');
        let sha = encode(&status.sha);
        let mut headers = vec![("User-Agent", format!("mobius/{}", env!("CARGO_PKG_VERSION")))];
        let description = truncate(description(status.state), 140);
        let state = forge_state(forge.kind, status.state);
        let mut body = match forge.kind {
            ForgeKind::Github => {
                let (owner, repo) = status
                    .repository
                    .split_once('/')
                    .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
                    .ok_or_else(|| RequestError::NotOwnerName(status.repository.clone()))?;
                headers.push(("Accept", "application/vnd.github+json".to_owned()));
                headers.push(("X-GitHub-Api-Version", "2022-11-28".to_owned()));
                if let Some(token) = token {
                    headers.push(("Authorization", format!("Bearer {token}")));
                }
                let url = format!("{api}/repos/{}/{}/statuses/{sha}", encode(owner), encode(repo));
                let body = json!({ "state": state, "description": description, "context": status.context });
                (url, body)
            }
            ForgeKind::Gitlab => {
                let project = forge.project.as_deref().unwrap_or(&status.repository);
                if let Some(token) = token {
                    headers.push(("PRIVATE-TOKEN", token.to_owned()));
                }
                let url = format!("{api}/projects/{}/statuses/{sha}", encode(project));
                let mut body = json!({ "state": state, "description": description, "name": status.context });
                if let Some(branch) = &status.branch {
                    body["ref"] = json!(branch);
                }
                (url, body)
            }
        };
        if let Some(target) = target_url {
            body.1["target_url"] = json!(target);
        }
        let (url, body) = body;
        Ok(StatusRequest { url, headers, body })
    }
}

/// A path segment percent-encoded (so GitLab's `group/project` becomes `group%2Fproject`).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// The run's page, as the status links it: the API's run under the public base URL.
pub fn target_url(public_url: &str, run: i64) -> String {
    format!("{}/api/v1/runs/{run}", public_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_a_second_to_five_minutes_and_gives_up_after_about_an_hour() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|n| policy.next_wait(n).unwrap().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(policy.next_wait(19), Some(Duration::from_secs(300)));
        assert_eq!(policy.next_wait(20), None, "the 20th failure is the last");
        let total: u64 = (1..20).map(|n| policy.next_wait(n).unwrap().as_secs()).sum();
        assert!((3000..=4200).contains(&total), "about an hour in all: {total} s");
        let tiny = RetryPolicy { first: Duration::from_millis(10), longest: Duration::from_millis(15), attempts: 3 };
        assert_eq!(
            (tiny.next_wait(1), tiny.next_wait(2), tiny.next_wait(3)),
            (Some(Duration::from_millis(10)), Some(Duration::from_millis(15)), None)
        );
    }

    #[test]
    fn job_states_map_to_each_forges_words() {
        let check = |state, github, gitlab| {
            assert_eq!(forge_state(ForgeKind::Github, state), github, "{state:?} on GitHub");
            assert_eq!(forge_state(ForgeKind::Gitlab, state), gitlab, "{state:?} on GitLab");
        };
        check(RunState::Queued, "pending", "pending");
        check(RunState::Running, "pending", "running");
        check(RunState::Success, "success", "success");
        check(RunState::Failure, "failure", "failed");
        check(RunState::Cancelled, "error", "canceled");
        check(RunState::Skipped, "success", "skipped");
        check(RunState::Interrupted, "error", "canceled");
        for state in [RunState::Queued, RunState::Interrupted] {
            assert!(description(state).chars().count() <= 140);
        }
    }

    fn pending(id: i64, context: &str, state: RunState, attempts: u32, next_attempt: i64) -> PendingStatus {
        PendingStatus {
            id,
            run: 7,
            repository: "acme/app".into(),
            sha: "0123abcd".into(),
            branch: Some("main".into()),
            context: context.into(),
            state,
            attempts,
            next_attempt: Timestamp::from_second(next_attempt).unwrap(),
        }
    }

    #[test]
    fn a_context_goes_out_in_order_until_it_fails_then_only_its_newest_state() {
        let now = Timestamp::from_second(100).unwrap();
        let ids = |groups: &[Vec<PendingStatus>]| -> Vec<Vec<i64>> {
            groups.iter().map(|g| g.iter().map(|s| s.id).collect()).collect()
        };
        // Never failed: every state, in order.
        let fresh = plan(
            vec![
                pending(1, "mobius/CI/a", RunState::Queued, 0, 0),
                pending(2, "mobius/CI/b", RunState::Queued, 0, 0),
                pending(3, "mobius/CI/a", RunState::Running, 0, 0),
                pending(4, "mobius/CI/a", RunState::Success, 0, 0),
            ],
            now,
        );
        assert_eq!(ids(&fresh.due), [vec![1, 3, 4], vec![2]]);
        assert!(fresh.superseded.is_empty() && fresh.next.is_none());

        // `a` failed once (and waits), newer states came: only the newest goes, now. `b` waits.
        let after_failure = plan(
            vec![
                pending(1, "mobius/CI/a", RunState::Queued, 1, 150),
                pending(2, "mobius/CI/b", RunState::Queued, 2, 130),
                pending(3, "mobius/CI/a", RunState::Running, 0, 0),
                pending(4, "mobius/CI/a", RunState::Failure, 0, 0),
            ],
            now,
        );
        assert_eq!(after_failure.superseded, [1, 3]);
        assert_eq!(ids(&after_failure.due), [vec![4]]);
        assert_eq!(after_failure.next, Some(Timestamp::from_second(130).unwrap()));
    }

    #[test]
    fn requests_follow_each_forges_rest_description() {
        let status = pending(1, "mobius/CI/test (linux)", RunState::Running, 0, 0);
        let github = ForgeSettings {
            repository: "acme/app".into(),
            kind: ForgeKind::Github,
            api_url: "https://ghe.example/api/v3/".into(),
            token_secret: Some("GH".into()),
            project: None,
        };
        let r = StatusRequest::new(&github, &status, Some("tok"), Some("http://ci:7070/api/v1/runs/7")).unwrap();
        assert_eq!(r.url, "https://ghe.example/api/v3/repos/acme/app/statuses/0123abcd");
        let header = |r: &StatusRequest, name: &str| r.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header(&r, "Authorization").as_deref(), Some("Bearer tok"));
        assert_eq!(header(&r, "Accept").as_deref(), Some("application/vnd.github+json"));
        assert_eq!(header(&r, "X-GitHub-Api-Version").as_deref(), Some("2022-11-28"));
        assert!(header(&r, "User-Agent").is_some_and(|ua| ua.starts_with("mobius/")));
        assert_eq!(
            r.body,
            json!({ "state": "pending", "description": "Running", "context": "mobius/CI/test (linux)",
                    "target_url": "http://ci:7070/api/v1/runs/7" })
        );

        let gitlab = ForgeSettings { kind: ForgeKind::Gitlab, api_url: "https://gl.example/api/v4".into(), ..github };
        let r = StatusRequest::new(&gitlab, &status, Some("tok"), None).unwrap();
        assert_eq!(r.url, "https://gl.example/api/v4/projects/acme%2Fapp/statuses/0123abcd");
        assert_eq!(header(&r, "PRIVATE-TOKEN").as_deref(), Some("tok"));
        assert_eq!(header(&r, "Authorization"), None);
        assert_eq!(
            r.body,
            json!({ "state": "running", "description": "Running", "name": "mobius/CI/test (linux)", "ref": "main" })
        );
        let numbered = ForgeSettings { project: Some("42".into()), ..gitlab };
        assert!(
            StatusRequest::new(&numbered, &status, None, None).unwrap().url.ends_with("/projects/42/statuses/0123abcd")
        );

        let mut flat = status.clone();
        flat.repository = "app".into();
        let github = ForgeSettings { kind: ForgeKind::Github, ..numbered };
        assert_eq!(
            StatusRequest::new(&github, &flat, None, None).err(),
            Some(RequestError::NotOwnerName("app".into()))
        );
        assert_eq!(target_url("http://ci.example/", 9), "http://ci.example/api/v1/runs/9");
    }
}
