//! GitOps (issue 16): Mobius's own events for what the reconciler of a deploy repository did —
//! each sync it started (the link from a deployment to the git revision that asked for it),
//! each drift it saw between what runs and what git says, and each promotion it committed (the
//! commit, the branch and, when the change waits for review, the pull request).

use jiff::Timestamp;
use serde::Serialize;

use super::{EmitError, Parts, build, random_id};
use crate::envelope::{NewEvent, Origin};

/// A service in an environment was synced to what a deploy repository's revision declares.
pub const SYNCED: &str = "dev.cdeventsx.mobius-gitops.synced.0.1.0";
/// What runs in an environment differs from what git declares, through no change in git.
pub const DRIFTED: &str = "dev.cdeventsx.mobius-gitops.drifted.0.1.0";

/// A promotion was committed to a deploy repository: pushed to the followed branch, or to a
/// branch of its own with a pull request opened for review.
pub const PROMOTED: &str = "dev.cdeventsx.mobius-gitops.promoted.0.1.0";

/// The source of every GitOps event.
pub const SOURCE: &str = "/mobius/gitops";

/// Where the desired state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared<'a> {
    /// The registered repository (`acme/deploy`).
    pub repository: &'a str,
    /// The commit whose `environments/<env>.yaml` was read.
    pub revision: &'a str,
    /// The file, relative to the repository (`deploy/environments/production.yaml`).
    pub file: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncedContent<'a> {
    repository: &'a str,
    revision: &'a str,
    file: &'a str,
    environment: &'a str,
    service: &'a str,
    artifact: &'a str,
    /// What ran before (`None`: nothing).
    previous: Option<&'a str>,
    /// The rollout the sync started.
    rollout: i64,
    /// `sync` (git changed), `self-heal` (git did not: live was put back), `manual`
    /// (`mobius gitops sync`).
    trigger: &'a str,
}

/// A sync that started rollout `rollout` of `service` in `environment` to `artifact`.
#[allow(clippy::too_many_arguments)]
pub fn synced(
    declared: Declared<'_>,
    environment: &str,
    service: &str,
    artifact: &str,
    previous: Option<&str>,
    rollout: i64,
    trigger: &str,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let content = SyncedContent {
        repository: declared.repository,
        revision: declared.revision,
        file: declared.file,
        environment,
        service,
        artifact,
        previous,
        rollout,
        trigger,
    };
    let subject = format!("{service}/{environment}");
    build(Parts::new(SYNCED, random_id(), SOURCE, at, &subject, &content), Origin::Internal)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DriftedContent<'a> {
    repository: &'a str,
    revision: &'a str,
    file: &'a str,
    environment: &'a str,
    service: &'a str,
    /// What git declares.
    desired: &'a str,
    /// What runs (`None`: nothing serves).
    live: Option<&'a str>,
    /// `reverted` (self-heal is on: the desired artifact is deployed again) or `shown`.
    action: &'a str,
}

/// `service` in `environment` runs `live` where git declares `desired`.
#[allow(clippy::too_many_arguments)]
pub fn drifted(
    declared: Declared<'_>,
    environment: &str,
    service: &str,
    desired: &str,
    live: Option<&str>,
    action: &str,
    at: Timestamp,
) -> Result<NewEvent, EmitError> {
    let content = DriftedContent {
        repository: declared.repository,
        revision: declared.revision,
        file: declared.file,
        environment,
        service,
        desired,
        live,
        action,
    };
    let subject = format!("{service}/{environment}");
    build(Parts::new(DRIFTED, random_id(), SOURCE, at, &subject, &content), Origin::Internal)
}

/// What a promotion committed, as its event carries it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Promoted<'a> {
    /// The registered repository.
    pub repository: &'a str,
    /// The remote pushed to, without credentials; `None`: a repository on this machine.
    pub remote: Option<&'a str>,
    /// The full ref the commit is on (the followed branch, or the review branch).
    pub branch: &'a str,
    pub commit: &'a str,
    pub file: &'a str,
    pub service: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub artifact: &'a str,
    /// What the file declared before (`None`: the service was not in it).
    pub previous: Option<&'a str>,
    /// The token that asked.
    pub by: &'a str,
    pub reason: Option<&'a str>,
    /// The pull (or merge) request opened for review; `None`: committed to the followed branch.
    pub pull_request: Option<&'a str>,
}

/// `promotion` was committed (and pushed, or opened for review).
pub fn promoted(promotion: &Promoted<'_>, at: Timestamp) -> Result<NewEvent, EmitError> {
    let subject = format!("{}/{}", promotion.service, promotion.to);
    build(Parts::new(PROMOTED, random_id(), SOURCE, at, &subject, promotion), Origin::Internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitops_events_are_valid_and_carry_the_revision() {
        let declared =
            Declared { repository: "acme/deploy", revision: "0123abcd", file: "environments/production.yaml" };
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let event = synced(declared, "production", "shop", &digest, None, 7, "sync", at).unwrap();
        assert_eq!(event.ty, SYNCED);
        let raw: serde_json::Value = serde_json::from_str(&event.raw).unwrap();
        assert_eq!(raw["subject"]["content"]["revision"], "0123abcd");
        assert_eq!(raw["subject"]["content"]["rollout"], 7);
        let event = drifted(declared, "production", "shop", &digest, Some("sha256:b"), "reverted", at).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&event.raw).unwrap();
        assert_eq!(
            (raw["subject"]["id"].as_str(), raw["subject"]["content"]["action"].as_str()),
            (Some("shop/production"), Some("reverted"))
        );
        let promotion = Promoted {
            repository: "acme/deploy",
            remote: Some("http://127.0.0.1:9/acme/deploy.git"),
            branch: "refs/heads/mobius/promote/shop-production-aaaaaaaaaaaa",
            commit: "89abcdef",
            file: "environments/production.yaml",
            service: "shop",
            from: "staging",
            to: "production",
            artifact: &digest,
            previous: None,
            by: "ci",
            reason: Some("release 42"),
            pull_request: Some("https://github.com/acme/deploy/pull/7"),
        };
        let event = promoted(&promotion, at).unwrap();
        assert_eq!(event.ty, PROMOTED);
        let raw: serde_json::Value = serde_json::from_str(&event.raw).unwrap();
        let content = &raw["subject"]["content"];
        assert_eq!(raw["subject"]["id"], "shop/production");
        assert_eq!(
            (content["commit"].as_str(), content["pullRequest"].as_str(), content["branch"].as_str()),
            (Some("89abcdef"), Some("https://github.com/acme/deploy/pull/7"), Some(promotion.branch))
        );
    }
}
