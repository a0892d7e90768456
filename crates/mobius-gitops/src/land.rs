//! Where a promotion's commit lands: the followed branch of a repository on this machine (a
//! compare-and-swap of the ref), the followed branch of a remote (a push with a lease on the
//! head the commit was made on), or a review branch on the remote with a pull request (see
//! the module documentation of [`crate::promote`]). Credentials and tokens are opened for the
//! one call and never reach an argv, a log or an error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mobius_events::emit::gitops as emit;
use mobius_runs::git::{fetch_mirror, shown_url};
use mobius_runs::remote::{self, Access};
use mobius_store::{ForgeSettings, Store};

use crate::promote::{Change, PromoteError, Promoted, author_of, message_of, set_artifact};
use crate::repo::{self, Pushed};
use crate::review::{self, Opening};
use crate::{GitOps, GitOpsError};

/// How often a fetch of the mirror is tried (the poller may be fetching it at the same time,
/// and git then refuses to lock a ref both move).
const FETCH_ATTEMPTS: u32 = 3;

/// The remote side of a repository registered by URL.
struct Remote {
    url: String,
    access: Access,
}

/// A commit written, not yet on any branch of the remote.
struct Written {
    path: PathBuf,
    remote: Option<Remote>,
    /// The followed branch, as a full ref.
    branch: String,
    parent: String,
    commit: String,
    previous: Option<String>,
    message: String,
    /// The forge and its token, read before anything is pushed.
    forge: Option<(ForgeSettings, Option<String>)>,
}

impl GitOps {
    pub(crate) async fn land(&self, change: Change) -> Result<Promoted, GitOpsError> {
        let (store, remotes) = (self.inner.store.clone(), self.remotes());
        let asked = change.clone();
        let written = mobius_log::blocking::spawn(move || write(store.as_ref(), remotes, &asked)).await?;
        let promoted = self.publish(&change, written).await?;
        self.record_promotion(&change, &promoted).await;
        if promoted.pull_request.is_none() {
            self.wake();
        }
        Ok(promoted)
    }

    /// Pushes a written commit where it goes, opening the pull request when it waits for review.
    async fn publish(&self, change: &Change, written: Written) -> Result<Promoted, GitOpsError> {
        let promoted = |branch: &str, commit: &str, written: &Written| Promoted {
            repository: change.repository.clone(),
            file: change.file.clone(),
            branch: branch.to_owned(),
            commit: commit.to_owned(),
            digest: change.digest.clone(),
            previous: written.previous.clone(),
            remote: written.remote.as_ref().map(|r| shown_url(&r.url)),
            pull_request: None,
        };
        let Some(remote) = &written.remote else {
            // On this machine: committed and moved already.
            return Ok(promoted(&written.branch, &written.commit, &written));
        };
        let shown = shown_url(&remote.url);
        // Straight to the followed branch unless review was asked for.
        if !change.review {
            let (path, url, access) = (written.path.clone(), remote.url.clone(), remote.access.clone());
            let (branch, commit, parent) = (written.branch.clone(), written.commit.clone(), written.parent.clone());
            let pushed = mobius_log::blocking::spawn(move || {
                repo::push(&path, &url, &branch, Some(&commit), Some(&parent), &access)
            })
            .await?;
            match pushed {
                Pushed::Done => {
                    self.refetch(&written.path, &remote.access).await;
                    return Ok(promoted(&written.branch, &written.commit, &written));
                }
                Pushed::Moved(why) => {
                    return Err(PromoteError::BranchMoved { remote: shown, branch: written.branch.clone(), why }.into());
                }
                // A protected branch: with a forge, the change goes through review instead.
                Pushed::Refused(why) if written.forge.is_some() => {
                    tracing::info!(
                        repository = %change.repository, branch = %written.branch, why = %why,
                        "gitops: the remote refused the promotion's push; opening a pull request instead"
                    );
                }
                Pushed::Refused(why) => {
                    return Err(PromoteError::PushRefused {
                        repository: change.repository.clone(),
                        remote: shown,
                        branch: written.branch.clone(),
                        why,
                    }
                    .into());
                }
            }
        }
        let Some((forge, token)) = written.forge.clone() else {
            let environment = change.promotion.to.clone();
            return Err(PromoteError::NoForge { repository: change.repository.clone(), environment }.into());
        };
        let head = review::branch_name(&change.promotion.service, &change.promotion.to, &change.digest);
        let head_ref = format!("refs/heads/{head}");
        let (path, url, access) = (written.path.clone(), remote.url.clone(), remote.access.clone());
        let (branch, commit) = (head_ref.clone(), written.commit.clone());
        let pushed =
            mobius_log::blocking::spawn(move || repo::push(&path, &url, &branch, Some(&commit), None, &access)).await?;
        match pushed {
            Pushed::Done => {}
            Pushed::Moved(_) => return Err(PromoteError::ReviewBranchExists { remote: shown, branch: head }.into()),
            Pushed::Refused(why) => return Err(PromoteError::BranchRefused { remote: shown, branch: head, why }.into()),
        }
        let (title, body) = pull_request_text(change, &written.message);
        let base = written.branch.trim_start_matches("refs/heads/").to_owned();
        let opening = Opening { title, body, head: head.clone(), base };
        match review::open(&forge, &change.repository, token.as_deref(), &opening).await {
            Ok(pull_request) => {
                self.refetch(&written.path, &remote.access).await;
                let mut done = promoted(&head_ref, &written.commit, &written);
                done.pull_request = Some(pull_request);
                Ok(done)
            }
            Err(error) => {
                // The branch alone asks nobody to review it: it goes again, unless someone
                // pushed to it meanwhile.
                let (path, url, access) = (written.path.clone(), remote.url.clone(), remote.access.clone());
                let (branch, commit) = (head_ref.clone(), written.commit.clone());
                let deleted =
                    mobius_log::blocking::spawn(move || repo::push(&path, &url, &branch, None, Some(&commit), &access))
                        .await;
                let left = match deleted {
                    Ok(Pushed::Done) => "was deleted again",
                    Ok(other) => {
                        tracing::warn!(branch = %head, outcome = ?other, "gitops: the review branch could not be deleted");
                        "is left on the remote"
                    }
                    Err(failed) => {
                        tracing::warn!(branch = %head, error = %failed, "gitops: the review branch could not be deleted");
                        "is left on the remote"
                    }
                };
                Err(PromoteError::Forge { branch: head, left, error }.into())
            }
        }
    }

    /// Fetches the mirror after a push, so the reconciler (and the poller) see it at once; a
    /// failure only delays that until the next poll.
    async fn refetch(&self, path: &Path, access: &Access) {
        let (path, access) = (path.to_owned(), access.clone());
        if let Err(error) = mobius_log::blocking::spawn(move || fetch(&path, &access)).await {
            tracing::warn!(error = %error, "gitops: cannot fetch the deploy repository after the promotion's push");
        }
    }

    async fn record_promotion(&self, change: &Change, promoted: &Promoted) {
        let p = &change.promotion;
        let event = emit::promoted(
            &emit::Promoted {
                repository: &promoted.repository,
                remote: promoted.remote.as_deref(),
                branch: &promoted.branch,
                commit: &promoted.commit,
                file: &promoted.file,
                service: &p.service,
                from: &p.from,
                to: &p.to,
                artifact: &promoted.digest,
                previous: promoted.previous.as_deref(),
                by: &p.by,
                reason: p.reason.as_deref(),
                pull_request: promoted.pull_request.as_ref().map(|pr| pr.url.as_str()),
            },
            self.inner.clock.now(),
        );
        match event {
            Ok(event) => {
                let log = self.inner.log.clone();
                if let Err(error) = mobius_log::blocking::spawn(move || log.append(&[event])).await {
                    tracing::error!(error = %error, "gitops: cannot record the promotion's event");
                }
            }
            Err(error) => tracing::error!(error = %error, "gitops: cannot build the promotion's event"),
        }
    }
}

/// The commit, written (and for a repository on this machine, its branch moved). Reads the
/// forge and its token first, so a review that cannot be opened pushes nothing.
fn write(store: &dyn Store, remotes: Option<crate::promote::Remotes>, change: &Change) -> Result<Written, GitOpsError> {
    let name = &change.repository;
    let registered = store
        .repositories()?
        .into_iter()
        .find(|r| &r.name == name)
        .ok_or_else(|| GitOpsError::UnknownRepository { repository: name.clone() })?;
    let path = PathBuf::from(&registered.path);
    let url = repo::mirror_url(&path);
    let remotes = remotes.unwrap_or_else(|| crate::promote::Remotes {
        secrets: None,
        data_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
    });
    let environment = change.promotion.to.clone();
    if change.review && url.is_none() {
        return Err(PromoteError::ReviewNeedsRemote { repository: name.clone(), environment }.into());
    }
    let forge = match store.forge(name)? {
        Some(forge) => {
            let token = match &forge.token_secret {
                Some(secret) => Some(token(remotes.secrets.as_ref(), name, secret)?),
                None => None,
            };
            Some((forge, token))
        }
        None if change.review => return Err(PromoteError::NoForge { repository: name.clone(), environment }.into()),
        None => None,
    };
    let remote = match url {
        Some(url) => {
            let access =
                remote::access(remotes.secrets.as_ref(), &remotes.data_dir, name, registered.credentials.as_deref())
                    .map_err(PromoteError::from)?;
            // On top of the remote branch's head as it is now, not as the last poll saw it.
            fetch(&path, &access)?;
            Some(Remote { url, access })
        }
        None => None,
    };
    let branch = repo::branch_of(&path, &change.revision)
        .ok_or_else(|| PromoteError::NotABranch { repository: name.clone(), revision: change.revision.clone() })?;
    let parent = repo::resolve(&path, &branch)?;
    let text = repo::file_at(&path, &parent, &change.file).unwrap_or_default();
    let (edited, previous) = set_artifact(&change.file, &text, &change.promotion.service, &change.digest)?;
    let author = author_of(&change.promotion.by);
    let message = message_of(&change.promotion, &change.digest);
    let commit = match &remote {
        None => repo::commit_file(&path, &branch, &parent, &change.file, &edited, &author, &message)?,
        Some(_) => repo::write_commit(&path, &parent, &change.file, &edited, &author, &message)?,
    };
    Ok(Written { path, remote, branch, parent, commit, previous, message, forge })
}

/// The forge token `secret` of `repository`, opened now.
fn token(secrets: Option<&mobius_secrets::Secrets>, repository: &str, secret: &str) -> Result<String, PromoteError> {
    let missing = || PromoteError::MissingToken { repository: repository.to_owned(), name: secret.to_owned() };
    let secrets = secrets.ok_or_else(missing)?;
    let opened = secrets
        .for_repository(repository)
        .map_err(|source| PromoteError::Secrets { repository: repository.to_owned(), source })?;
    opened.repository.get(secret).cloned().ok_or_else(missing)
}

/// Fetches the mirror, trying again when a concurrent fetch held a ref's lock.
fn fetch(path: &Path, access: &Access) -> Result<(), GitOpsError> {
    let mut attempt = 1;
    loop {
        match fetch_mirror(path, access) {
            Ok(()) => return Ok(()),
            Err(error) if attempt < FETCH_ATTEMPTS => {
                tracing::debug!(error = %error, attempt, "gitops: fetching the deploy repository again");
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                attempt += 1;
            }
            Err(error) => {
                return Err(repo::GitError {
                    repository: path.display().to_string(),
                    command: "fetch".to_owned(),
                    message: error.message,
                }
                .into());
            }
        }
    }
}

/// The pull request's title (the commit's subject) and body (the rest, and how it syncs).
fn pull_request_text(change: &Change, message: &str) -> (String, String) {
    let (title, rest) = message.split_once('\n').unwrap_or((message, ""));
    let body = format!(
        "{}\n\nMerging this pull request syncs `{}` in `{}` to `{}` (Mobius follows this repository's `{}`).\n",
        rest.trim(),
        change.promotion.service,
        change.promotion.to,
        change.digest,
        change.revision,
    );
    (title.to_owned(), body)
}
