//! Promotion as a commit: `mobius promote SERVICE --from staging --to production` writes the
//! digest serving in staging into the deploy repository's `environments/production.yaml`, as a
//! commit whose author and message say who and why, on the branch the source follows. The
//! reconciler then syncs it like any change to git, so the audit trail of every production
//! change is the repository's history, linked from a `mobius-gitops.promoted` event (repository,
//! branch, commit, pull request) and the `mobius-gitops.synced` event of the sync it leads to.
//!
//! The gate policies decide a promotion (`input.action: promotion`) before anything is
//! committed. The commit is written without a work tree (a throwaway index, `commit-tree`), and
//! the file's other lines, comments included, are kept as written: only the digest's text is
//! replaced (or the service's entry added under `services:`). Where it lands (the `land` module):
//! - a repository on this machine: its branch moves by a compare-and-swap (`update-ref` with the
//!   old value), so a commit that lands in between makes the promotion fail;
//! - a repository registered by URL (a mirror here): the mirror is fetched, the commit made on
//!   the remote branch's head and pushed with the repository's credentials and
//!   `--force-with-lease=<branch>:<head>`, so a push in between makes it fail; then fetched
//!   again, so the reconciler sees it at once;
//! - when the target environment requires review (`mobius gitops add … --review production`,
//!   or `mobius promote --pull-request`): pushed to `mobius/promote/<service>-<env>-<digest>`
//!   with a pull request through the repository's forge ([`crate::review`]); nothing syncs
//!   until it is merged. A push to the followed branch the remote refuses (a protected branch)
//!   becomes such a pull request when the repository has a forge.

use std::path::PathBuf;

use mobius_delivery::policy::{GateAction, GateChange};
use mobius_deploy::rollout::Phase;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

use crate::desired::{self, is_digest};
use crate::reconcile::short_digest;
use crate::repo::Author;
use crate::review::PullRequest;
use crate::{GitOps, GitOpsError, digest_of, read_sources, read_status};

/// What to promote, and who asks.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub service: String,
    pub from: String,
    pub to: String,
    /// A token's name, or `cli`.
    pub by: String,
    pub reason: Option<String>,
    /// A branch and pull request even when the environment does not require review.
    pub pull_request: bool,
}

/// The commit a promotion made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promoted {
    pub repository: String,
    pub file: String,
    /// The full ref the commit is on: the followed branch (`refs/heads/main`), or the review
    /// branch (`refs/heads/mobius/promote/…`) when a pull request was opened.
    pub branch: String,
    pub commit: String,
    pub digest: String,
    /// What the file declared before (`None`: the service was not in it).
    pub previous: Option<String>,
    /// The remote the commit was pushed to, without credentials (`None`: a repository on
    /// this machine).
    #[serde(default)]
    pub remote: Option<String>,
    /// The pull request that asks to merge it (`None`: committed to the followed branch, which
    /// the reconciler syncs next).
    #[serde(default)]
    pub pull_request: Option<PullRequest>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("no followed deploy repository declares environment `{environment}`: `mobius gitops add` one first")]
    NoSource { environment: String },
    #[error("{service} serves nothing in {environment} to promote")]
    NothingServing { service: String, environment: String },
    #[error("rollout {id} of {service} in {environment} is still {phase}: promote what serves once it is done")]
    InProgress { id: i64, service: String, environment: String, phase: &'static str },
    #[error("{file} declares {digest} for {service} already")]
    AlreadyDeclared { file: String, service: String, digest: String },
    #[error("repository `{repository}` follows `{revision}`, which is not a branch: a promotion cannot commit to it")]
    NotABranch { repository: String, revision: String },
    #[error("{file}: {message}")]
    CannotEdit { file: String, message: String },
    #[error(
        "{branch} of {remote} moved while the promotion was made ({why}): nothing was pushed; promote again to \
         commit on top of it"
    )]
    BranchMoved { remote: String, branch: String, why: String },
    #[error("{remote} refused the push to {branch} ({why}), and {repository} has no forge to open a pull request on")]
    PushRefused { repository: String, remote: String, branch: String, why: String },
    #[error("{remote} refused the push of the review branch {branch} ({why})")]
    BranchRefused { remote: String, branch: String, why: String },
    #[error(
        "{environment} requires review, but {repository} has no forge to open a pull request on: configure one with \
         `mobius repo forge {repository} --kind github|gitlab …`"
    )]
    NoForge { repository: String, environment: String },
    #[error(
        "{environment} requires review, which needs a deploy repository registered by URL (`mobius repo add URL`): \
         {repository} is a repository on this machine"
    )]
    ReviewNeedsRemote { repository: String, environment: String },
    #[error("the review branch {branch} exists on {remote} already: merge or delete it first")]
    ReviewBranchExists { remote: String, branch: String },
    #[error(
        "the forge token secret `{name}` of {repository} is not stored: `mobius secret set {name} --repo {repository}`"
    )]
    MissingToken { repository: String, name: String },
    /// The forge's refusal is the message itself (what the API answers), so it is a field,
    /// not a source a chain would print twice.
    #[error("{error}; the branch {branch} {left}")]
    Forge { branch: String, left: &'static str, error: crate::review::ForgeError },
    #[error(transparent)]
    Access(#[from] mobius_runs::remote::AccessError),
    #[error("cannot read the secrets of {repository}")]
    Secrets { repository: String, source: mobius_secrets::SecretError },
}

/// How promotions reach a deploy repository's remote and forge: the secrets holding their
/// credentials and tokens, and the data directory (where SSH records host keys).
#[derive(Clone)]
pub struct Remotes {
    pub secrets: Option<mobius_secrets::Secrets>,
    pub data_dir: PathBuf,
}

/// A promotion's commit as it is to be written (see [`crate::land`]).
#[derive(Clone)]
pub(crate) struct Change {
    pub promotion: Promotion,
    pub repository: String,
    pub revision: String,
    pub file: String,
    pub digest: String,
    pub review: bool,
}

impl GitOps {
    /// Tells promotions how to reach remotes (set once, by the application).
    pub fn set_remotes(&self, remotes: Remotes) {
        let _ = self.inner.remotes.set(remotes);
    }

    pub(crate) fn remotes(&self) -> Option<Remotes> {
        self.inner.remotes.get().cloned()
    }

    /// Commits the digest serving `promotion.from` into the file declaring `promotion.to`:
    /// to the followed branch, or to a branch of its own with a pull request when `to`
    /// requires review.
    pub async fn promote(&self, promotion: Promotion) -> Result<Promoted, GitOpsError> {
        let store = self.inner.store.clone();
        let to = promotion.to.clone();
        let (source, file) = mobius_log::blocking::spawn(move || -> Result<_, GitOpsError> {
            let (sources, _) = read_sources(store.as_ref())?;
            for source in sources {
                let (status, _) = read_status(store.as_ref(), &source.repository)?;
                if let Some(file) = status.environments.get(&to) {
                    return Ok((source, file.clone()));
                }
            }
            Err(PromoteError::NoSource { environment: to }.into())
        })
        .await?;

        let deployer = self.inner.deployer.clone();
        let (service, from) = (promotion.service.clone(), promotion.from.clone());
        let latest = mobius_log::blocking::spawn(move || deployer.status(&service, &from)).await?;
        let nothing =
            || PromoteError::NothingServing { service: promotion.service.clone(), environment: promotion.from.clone() };
        let latest = latest.ok_or_else(nothing)?;
        let r = &latest.rollout;
        if !r.phase.is_final() {
            return Err(PromoteError::InProgress {
                id: r.id,
                service: promotion.service.clone(),
                environment: promotion.from.clone(),
                phase: r.phase.as_str(),
            }
            .into());
        }
        let serving = match r.phase {
            Phase::Succeeded => Some(&r.new),
            _ => r.stable.as_ref(),
        };
        let serving = serving.ok_or_else(nothing)?;
        let digest = serving.artifact.as_deref().and_then(digest_of).ok_or_else(nothing)?;
        // The gate policies decide the promotion before anything is committed (and the sync it
        // leads to is a deploy they decide again).
        let change = GateChange {
            action: GateAction::Promotion,
            service: promotion.service.clone(),
            environment: promotion.to.clone(),
            release: PathBuf::from(&serving.release),
            artifact: serving.artifact.clone().unwrap_or_default(),
            revision: serving.revision.clone(),
            by: Some(promotion.by.clone()),
            reason: promotion.reason.clone(),
            at: self.inner.clock.now(),
        };
        self.inner.deployer.ask_gate(change).await?;

        let review = promotion.pull_request || source.review.iter().any(|e| e == &promotion.to);
        let change = Change {
            promotion,
            repository: source.repository.clone(),
            revision: source.revision.clone(),
            file,
            digest,
            review,
        };
        self.land(change).await
    }
}

/// The commit's author: the token that asked, as git takes it.
pub(crate) fn author_of(by: &str) -> Author {
    Author { name: author_safe(by), email: format!("{}@mobius.invalid", email_safe(by)) }
}

/// The commit message: what, from where, by whom and why.
pub(crate) fn message_of(promotion: &Promotion, digest: &str) -> String {
    format!(
        "Promote {service} to {to}: {short}\n\n{service} serves {digest} in {from}; {by} promoted it to {to}{why}.\n\nMobius-Promotion: {from} -> {to}\n",
        service = promotion.service,
        to = promotion.to,
        from = promotion.from,
        short = short_digest(digest),
        by = promotion.by,
        why = promotion.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
    )
}

#[derive(Deserialize)]
struct Located {
    #[serde(default)]
    services: BTreeMap<String, Spanned<LocatedService>>,
}

#[derive(Deserialize)]
struct LocatedService {
    artifact: Spanned<String>,
}

/// `text` with `service`'s artifact set to `digest`, and the digest it had.
pub fn set_artifact(
    file: &str,
    text: &str,
    service: &str,
    digest: &str,
) -> Result<(String, Option<String>), PromoteError> {
    let cannot = |message: String| PromoteError::CannotEdit { file: file.to_owned(), message };
    if !is_digest(digest) {
        return Err(cannot(format!("`{digest}` is not a digest")));
    }
    desired::parse(file, text).map_err(|e| cannot(e.to_string()))?;
    let located: Option<Located> = serde_saphyr::from_str(text).map_err(|e| cannot(e.to_string()))?;
    let entry = located.and_then(|l| l.services.into_iter().find(|(name, _)| name == service).map(|(_, e)| e));
    let edited = match entry {
        Some(entry) => {
            let artifact = entry.value.artifact;
            if artifact.value == digest {
                return Err(PromoteError::AlreadyDeclared {
                    file: file.to_owned(),
                    service: service.to_owned(),
                    digest: digest.to_owned(),
                });
            }
            let start = offset_of(text, artifact.referenced.line(), artifact.referenced.column())
                .and_then(|at| text[at..].find(&artifact.value).map(|i| at + i))
                .ok_or_else(|| cannot(format!("cannot find {service}'s artifact in the text")))?;
            let previous = artifact.value.clone();
            let edited = format!("{}{digest}{}", &text[..start], &text[start + previous.len()..]);
            (edited, Some(previous))
        }
        None => (
            add_service(text, service, digest)
                .ok_or_else(|| cannot("`services:` is not a block mapping I can add to".into()))?,
            None,
        ),
    };
    let checked = desired::parse(file, &edited.0).map_err(|e| cannot(format!("the edit would break the file: {e}")))?;
    if checked.services.get(service).map(String::as_str) != Some(digest) {
        return Err(cannot("the edit did not declare the digest".into()));
    }
    Ok(edited)
}

/// The byte offset of a 1-based line and column.
fn offset_of(text: &str, line: u64, column: u64) -> Option<usize> {
    let mut offset = 0;
    for (n, content) in text.split_inclusive('\n').enumerate() {
        if n as u64 + 1 == line {
            let within: usize = content.chars().take(column.saturating_sub(1) as usize).map(char::len_utf8).sum();
            return Some(offset + within);
        }
        offset += content.len();
    }
    None
}

/// `text` with `service` added under its top-level `services:` block (or the block added).
fn add_service(text: &str, service: &str, digest: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // An empty flow mapping (`services: {}`, a file that declares nothing yet) becomes a block.
    if let Some(at) = lines.iter().position(|l| l.trim_end() == "services: {}") {
        let (before, after) = (lines[..at].concat(), lines[at + 1..].concat());
        return Some(format!("{before}services:\n  {service}:\n    artifact: {digest}\n{after}"));
    }
    let Some(at) = lines.iter().position(|l| l.trim_end() == "services:") else {
        if lines.iter().any(|l| l.starts_with("services:")) {
            return None;
        }
        let newline = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
        return Some(format!("{text}{newline}services:\n  {service}:\n    artifact: {digest}\n"));
    };
    let indent = lines[at + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.len() - l.trim_start().len())
        .filter(|n| *n > 0)
        .unwrap_or(2);
    let pad = " ".repeat(indent);
    let mut out: String = lines[..=at].concat();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{pad}{service}:\n{pad}{pad}artifact: {digest}\n"));
    out.push_str(&lines[at + 1..].concat());
    Some(out)
}

/// A token's name as git takes an author's: no `<`, `>` or control characters.
fn author_safe(name: &str) -> String {
    let safe: String = name.chars().filter(|c| !matches!(c, '<' | '>') && !c.is_control()).collect();
    if safe.trim().is_empty() { "mobius".to_owned() } else { safe.trim().to_owned() }
}

fn email_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    if safe.is_empty() { "mobius".to_owned() } else { safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn a_digest_is_replaced_in_place_and_the_rest_of_the_file_kept() {
        let text = format!(
            "# production\nservices:\n  shop:\n    artifact: {}   # v1\n  billing:\n    artifact: \"{}\"\n",
            digest('a'),
            digest('b')
        );
        let (edited, previous) = set_artifact("environments/production.yaml", &text, "billing", &digest('c')).unwrap();
        assert_eq!(previous, Some(digest('b')));
        assert_eq!(edited, text.replace(&digest('b'), &digest('c')));
        let (edited, _) = set_artifact("f.yaml", &text, "shop", &digest('c')).unwrap();
        assert!(edited.contains(&format!("artifact: {}   # v1", digest('c'))), "{edited}");
        let same = set_artifact("f.yaml", &text, "shop", &digest('a')).unwrap_err();
        assert!(matches!(same, PromoteError::AlreadyDeclared { .. }), "{same}");
    }

    #[test]
    fn an_author_is_what_git_takes() {
        assert_eq!(author_safe("bootstrap (MOBIUS_ADMIN_TOKEN)"), "bootstrap (MOBIUS_ADMIN_TOKEN)");
        assert_eq!(author_safe("eve <root@x>\nX"), "eve root@xX");
        assert_eq!(author_safe("<>"), "mobius");
        assert_eq!(email_safe("ci bot/1"), "ci-bot-1");
    }

    #[test]
    fn a_service_not_declared_yet_is_added_under_services() {
        let text = format!("services:\n    shop:\n        artifact: {}\n", digest('a'));
        let (edited, previous) = set_artifact("f.yaml", &text, "billing", &digest('b')).unwrap();
        assert_eq!(previous, None);
        assert_eq!(
            edited,
            format!(
                "services:\n    billing:\n        artifact: {}\n    shop:\n        artifact: {}\n",
                digest('b'),
                digest('a')
            )
        );
        let (edited, _) = set_artifact("f.yaml", "", "shop", &digest('a')).unwrap();
        assert_eq!(edited, format!("services:\n  shop:\n    artifact: {}\n", digest('a')));
        let (edited, _) = set_artifact("f.yaml", "# none yet\nservices: {}\n", "shop", &digest('a')).unwrap();
        assert_eq!(edited, format!("# none yet\nservices:\n  shop:\n    artifact: {}\n", digest('a')));
        let broken = set_artifact("f.yaml", "services: [", "shop", &digest('a')).unwrap_err();
        assert!(broken.to_string().starts_with("f.yaml: f.yaml:1:"), "{broken}");
    }
}
