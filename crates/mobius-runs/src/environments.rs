//! Environments in server runs: their protection rules enforced before a job that deploys to
//! one starts, the reviews that hold such a job, and each job's short-lived run token.
//!
//! A run loads its repository's protection rules when it starts ([`ProtectionGate`]); the
//! engine asks the gate once a job's `needs` and `if:` are satisfied. A branch the rules do not
//! allow fails the job without running a step; a required review registers the job in
//! [`Reviews`], where `mobius runs approve|reject` (the API) finds it, and the job's state is
//! `waiting` meanwhile. Reviews live in memory: a restart interrupts the run (see
//! `Runner::recover`), whose re-queued run asks again.
//!
//! The run token ([`RunCredentials`]): each job gets `MOBIUS_TOKEN`, a token limited to its
//! run's repository (see `mobius_app::tokens`), revoked when the job ends and expiring on its
//! own after [`RUN_TOKEN_LIFETIME`], plus `MOBIUS_SERVER`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use mobius_events::emit::{self, AnyEvent, EmitError};
use mobius_events::{NewEvent, Origin};
use mobius_pipelines::chain::Chain;
use mobius_pipelines::engine::{Admission, BoxFuture, EnvironmentGate, JobCredential, JobCredentials};
use mobius_pipelines::workflow::glob;
use mobius_store::{EnvironmentRecord, StoreError};
use serde_json::json;
use tokio::sync::oneshot;

/// The event type of an approved review.
pub const APPROVED: &str = "dev.cdeventsx.mobius-environment.approved.0.1.0";
/// The event type of a rejected review.
pub const REJECTED: &str = "dev.cdeventsx.mobius-environment.rejected.0.1.0";

/// How long a run token is valid at most, whatever becomes of its job: GitHub's longest job
/// (360 minutes). A job that runs longer loses its token's use then.
pub const RUN_TOKEN_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);

/// Whether a run of `git_ref` may deploy to an environment whose allowed branches are
/// `patterns` (GitHub's deployment branch policies): none means every ref; a branch
/// (`refs/heads/x`) must match a pattern written without `refs/`, a tag (`refs/tags/v1`) a
/// pattern written `refs/tags/…`. `*` stays within a `/` segment, `**` does not. Anything
/// else (a commit) matches no pattern.
pub fn ref_allowed(patterns: &[String], git_ref: &str) -> bool {
    if patterns.is_empty() {
        return true;
    }
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        return patterns.iter().filter(|p| !p.starts_with("refs/")).any(|p| glob(p, branch));
    }
    if git_ref.starts_with("refs/tags/") {
        return patterns.iter().filter(|p| p.starts_with("refs/tags/")).any(|p| glob(p, git_ref));
    }
    false
}

/// What a job's refusal says: GitHub's words, with the patterns that would have done.
fn not_allowed(git_ref: &str, environment: &str, patterns: &[String]) -> String {
    let what = match (git_ref.strip_prefix("refs/heads/"), git_ref.strip_prefix("refs/tags/")) {
        (Some(branch), _) => format!("branch `{branch}`"),
        (_, Some(tag)) => format!("tag `{tag}`"),
        _ => format!("ref `{git_ref}`"),
    };
    format!(
        "{what} is not allowed to deploy to `{environment}` by its protection rules (allowed: {})",
        patterns.join(", ")
    )
}

/// Why a review was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("job `{job}` of run {run} is not waiting for a review")]
    NotWaiting { run: i64, job: String },
    #[error("`{name}` may not review deployments to `{environment}` (reviewers: {})", reviewers.join(", "))]
    NotAReviewer { name: String, environment: String, reviewers: Vec<String> },
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// A reviewer's decision on a waiting job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub run: i64,
    /// The job instance's display name, as `mobius runs show` lists it.
    pub job: String,
    pub approve: bool,
    /// The reviewing token's name.
    pub by: String,
    pub comment: Option<String>,
}

/// What a review decided, for the answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reviewed {
    pub run: i64,
    pub job: String,
    pub environment: String,
    /// `approved` or `rejected`.
    pub decision: &'static str,
    pub by: String,
}

/// A job waiting for a review.
struct Pending {
    environment: String,
    repository: String,
    reviewers: Vec<String>,
    decide: oneshot::Sender<Result<(), String>>,
}

/// The jobs of every run that wait for a review, by run and job.
#[derive(Default)]
pub(crate) struct Reviews {
    pending: Mutex<HashMap<(i64, String), Pending>>,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews").field("pending", &self.lock().len()).finish()
    }
}

impl Reviews {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the waiting job the review is about, if its author may review it; the event to
    /// record and the decision to hand over come with it.
    pub(crate) fn decide(&self, review: &Review) -> Result<Decided, ReviewError> {
        let mut pending = self.lock();
        let key = (review.run, review.job.clone());
        let Some(waiting) = pending.get(&key) else {
            return Err(ReviewError::NotWaiting { run: review.run, job: review.job.clone() });
        };
        if !waiting.reviewers.is_empty() && !waiting.reviewers.contains(&review.by) {
            return Err(ReviewError::NotAReviewer {
                name: review.by.clone(),
                environment: waiting.environment.clone(),
                reviewers: waiting.reviewers.clone(),
            });
        }
        let Some(waiting) = pending.remove(&key) else {
            return Err(ReviewError::NotWaiting { run: review.run, job: review.job.clone() });
        };
        let reviewed = Reviewed {
            run: review.run,
            job: review.job.clone(),
            environment: waiting.environment.clone(),
            decision: if review.approve { "approved" } else { "rejected" },
            by: review.by.clone(),
        };
        let event = review_event(review, &waiting.repository, &waiting.environment);
        Ok(Decided { reviewed, event, waiting })
    }
}

/// A review taken: record `event`, then [`Decided::hand_over`].
pub(crate) struct Decided {
    pub reviewed: Reviewed,
    pub event: Result<NewEvent, EmitError>,
    waiting: Pending,
}

impl Decided {
    /// Lets the job go on (approved) or fail (rejected).
    pub(crate) fn hand_over(self, comment: Option<&str>) {
        let decision = match self.reviewed.decision {
            "approved" => Ok(()),
            _ => Err(match comment {
                Some(comment) => format!(
                    "the deployment to `{}` was rejected by {}: {comment}",
                    self.reviewed.environment, self.reviewed.by
                ),
                None => {
                    format!("the deployment to `{}` was rejected by {}", self.reviewed.environment, self.reviewed.by)
                }
            }),
        };
        // The job's gate dropped its receiver only if the run was cancelled meanwhile.
        let _ = self.waiting.decide.send(decision);
    }
}

/// The audit event of a review: who decided what, when, about which run, job and environment.
fn review_event(review: &Review, repository: &str, environment: &str) -> Result<NewEvent, EmitError> {
    let content = json!({
        "repository": repository,
        "environment": environment,
        "run": review.run,
        "job": review.job,
        "by": review.by,
        "comment": review.comment,
    });
    let timestamp = Timestamp::now().to_string();
    let subject = format!("{repository}/{environment}");
    let any = AnyEvent {
        ty: if review.approve { APPROVED } else { REJECTED },
        id: None,
        source: "/mobius/environments",
        timestamp: &timestamp,
        subject: &subject,
        content: &content,
    };
    emit::any(&any, Origin::Internal)
}

/// A run's view of its repository's protection rules, loaded when it starts.
#[derive(Debug)]
pub(crate) struct ProtectionGate {
    pub run: i64,
    pub repository: String,
    /// `refs/heads/x`, `refs/tags/v1`, or a commit.
    pub git_ref: String,
    pub rules: BTreeMap<String, EnvironmentRecord>,
    pub reviews: Arc<Reviews>,
}

impl ProtectionGate {
    fn decide(&self, job: &str, environment: &str) -> Admission {
        let Some(rules) = self.rules.get(environment) else { return Admission::Admitted };
        if !ref_allowed(&rules.branches, &self.git_ref) {
            return Admission::Refused(not_allowed(&self.git_ref, environment, &rules.branches));
        }
        if !rules.require_review {
            return Admission::Admitted;
        }
        let (decide, decision) = oneshot::channel();
        let key = (self.run, job.to_owned());
        let pending = Pending {
            environment: environment.to_owned(),
            repository: self.repository.clone(),
            reviewers: rules.reviewers.clone(),
            decide,
        };
        self.reviews.lock().insert(key.clone(), pending);
        let withdraw = Withdraw { reviews: self.reviews.clone(), key };
        Admission::Review(Box::pin(async move {
            let _withdraw = withdraw;
            decision.await.unwrap_or_else(|_| Err("the review was withdrawn".to_owned()))
        }))
    }
}

impl EnvironmentGate for ProtectionGate {
    fn admit(&self, job: &str, environment: &str) -> BoxFuture<Admission> {
        let admission = self.decide(job, environment);
        Box::pin(async move { admission })
    }
}

/// Removes a job's review request when its wait ends, whichever way (a cancelled run drops it).
struct Withdraw {
    reviews: Arc<Reviews>,
    key: (i64, String),
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.reviews.lock().remove(&self.key);
    }
}

/// Issues and revokes run tokens; the application implements it over its token store (this
/// crate knows no token format).
pub trait RunTokens: Send + Sync + std::fmt::Debug {
    /// A `run`-scope token (`read` when `read_only`) limited to `repository`'s runs, for run
    /// `run`'s job `job`, valid until `expires`: its id and its secret.
    fn mint(
        &self,
        repository: &str,
        run: i64,
        job: &str,
        expires: Timestamp,
        read_only: bool,
    ) -> Result<(String, String), StoreError>;
    /// Revokes a token minted here.
    fn revoke(&self, id: &str) -> Result<(), StoreError>;
}

/// The credentials of one run's jobs.
#[derive(Debug)]
pub(crate) struct RunCredentials {
    pub tokens: Arc<dyn RunTokens>,
    pub repository: String,
    pub run: i64,
    /// `MOBIUS_SERVER`; `None` until the server said where it listens.
    pub server: Option<String>,
    pub read_only: bool,
}

impl JobCredentials for RunCredentials {
    fn issue(&self, job: &str) -> BoxFuture<Result<JobCredential, String>> {
        let (tokens, repository, run, job) = (self.tokens.clone(), self.repository.clone(), self.run, job.to_owned());
        let (server, read_only) = (self.server.clone(), self.read_only);
        Box::pin(async move {
            let expires = Timestamp::now()
                .checked_add(jiff::SignedDuration::try_from(RUN_TOKEN_LIFETIME).unwrap_or_default())
                .unwrap_or_else(|_| Timestamp::now());
            let minting = tokens.clone();
            let (id, secret) =
                mobius_log::blocking::spawn(move || minting.mint(&repository, run, &job, expires, read_only))
                    .await
                    .map_err(|e| format!("cannot issue the job's MOBIUS_TOKEN: {}", Chain(&e)))?;
            let env: BTreeMap<String, String> =
                server.into_iter().map(|url| ("MOBIUS_SERVER".to_owned(), url)).collect();
            let secret_env = BTreeMap::from([("MOBIUS_TOKEN".to_owned(), secret)]);
            let revoke: BoxFuture<()> = Box::pin(async move {
                let revoked = mobius_log::blocking::spawn(move || tokens.revoke(&id)).await;
                if let Err(e) = revoked {
                    // It still expires on its own.
                    tracing::warn!(run, error = %Chain(&e), "cannot revoke a job's run token");
                }
            });
            Ok(JobCredential { env, secret_env, revoke })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(patterns: &[&str], git_ref: &str, expected: bool) {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(ref_allowed(&patterns, git_ref), expected, "{patterns:?} on {git_ref}");
    }

    #[test]
    fn branch_patterns_match_as_deployment_branch_policies() {
        check(&[], "refs/heads/anything", true);
        check(&[], "0123abcd", true);
        check(&["main"], "refs/heads/main", true);
        check(&["main"], "refs/heads/mainline", false);
        check(&["main", "release/*"], "refs/heads/release/1.2", true);
        check(&["release/*"], "refs/heads/release/1/hotfix", false);
        check(&["release/**"], "refs/heads/release/1/hotfix", true);
        check(&["feature-?"], "refs/heads/feature-a", true);
        // Tags only through `refs/tags/` patterns; branches never through them.
        check(&["v*"], "refs/tags/v1.0", false);
        check(&["refs/tags/v*"], "refs/tags/v1.0", true);
        check(&["refs/tags/v*"], "refs/heads/v1.0", false);
        check(&["main"], "0123abcd", false);
    }

    #[test]
    fn a_refusal_names_the_ref_the_environment_and_what_is_allowed() {
        let patterns = vec!["main".to_owned(), "release/*".to_owned()];
        assert_eq!(
            not_allowed("refs/heads/x", "production", &patterns),
            "branch `x` is not allowed to deploy to `production` by its protection rules (allowed: main, release/*)"
        );
        assert!(not_allowed("refs/tags/v1", "production", &patterns).starts_with("tag `v1`"));
    }

    #[test]
    fn only_listed_reviewers_decide_and_a_decision_is_taken_once() {
        let reviews = Arc::new(Reviews::default());
        let rules = EnvironmentRecord {
            repository: "o/r".into(),
            name: "production".into(),
            require_review: true,
            reviewers: vec!["alice".into()],
            branches: Vec::new(),
            updated: Timestamp::UNIX_EPOCH,
            updated_by: "cli".into(),
        };
        let gate = ProtectionGate {
            run: 7,
            repository: "o/r".into(),
            git_ref: "refs/heads/main".into(),
            rules: BTreeMap::from([("production".to_owned(), rules)]),
            reviews: reviews.clone(),
        };
        assert!(matches!(gate.decide("build", "staging"), Admission::Admitted), "unprotected");
        let Admission::Review(waiting) = gate.decide("deploy", "production") else { panic!("a review") };
        let review = |by: &str| Review { run: 7, job: "deploy".into(), approve: true, by: by.into(), comment: None };
        assert!(matches!(reviews.decide(&review("mallory")), Err(ReviewError::NotAReviewer { .. })));
        let decided = reviews.decide(&review("alice")).expect("alice reviews");
        assert_eq!(decided.reviewed.environment, "production");
        assert!(decided.event.is_ok());
        assert!(matches!(reviews.decide(&review("alice")), Err(ReviewError::NotWaiting { .. })), "taken once");
        decided.hand_over(None);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(waiting), Ok(()));
        // A withdrawn wait (a cancelled run) leaves nothing to review.
        let Admission::Review(waiting) = gate.decide("deploy", "production") else { panic!("a review") };
        drop(waiting);
        assert!(matches!(reviews.decide(&review("alice")), Err(ReviewError::NotWaiting { .. })));
    }
}
