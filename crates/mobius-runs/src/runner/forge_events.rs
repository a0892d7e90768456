//! The triggers only a forge's webhook raises: pull requests (GitLab merge requests) and
//! releases. Both read their commit from the repository's mirror, fetched first.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{RunError, Runner, default_branch};
use crate::git;
use crate::trigger::{self, Event, PullRequest, Release};

impl Runner {
    /// Runs the `pull_request` workflows of a pull request's activity, on its merge commit (or
    /// its head when the forge offers none that merges it), with the workflow files of that
    /// commit. A pull request from a fork gets no secrets, a read-only token and no
    /// deployments. Returns the ids of the runs queued.
    pub async fn pull_request(&self, pr: PullRequest) -> Result<Vec<i64>, RunError> {
        let _one_at_a_time = self.inner.polling.lock().await;
        let this = self.clone();
        mobius_log::blocking::spawn(move || this.pull_request_blocking(pr)).await
    }

    fn pull_request_blocking(&self, mut pr: PullRequest) -> Result<Vec<i64>, RunError> {
        let repository = self.repository(&pr.repository)?;
        let path = PathBuf::from(&repository.path);
        // A mirror fetches every ref, the forge's `refs/pull/*` among them.
        self.fetch(&repository)?;
        let Some((sha, git_ref)) = git::pull_request_commit(&path, &pr.refs_prefix, &pr.head_sha) else {
            tracing::warn!(
                repository = %pr.repository,
                number = pr.number,
                head = %pr.head_sha,
                "the pull request's commit is not in the repository: nothing runs"
            );
            return Ok(Vec::new());
        };
        let base = pr.base_sha.clone().filter(|b| git::resolve(&path, b).ok().flatten().is_some());
        let base = base.unwrap_or_else(|| pr.base_ref.clone());
        pr.changed = git::pull_request_files(&path, &base, &pr.head_sha).unwrap_or_else(|error| {
            // Unknown changes pass every `paths` filter rather than silently skipping a run.
            tracing::warn!(repository = %pr.repository, error = %error, "cannot diff the pull request");
            Vec::new()
        });
        pr.default_branch = default_branch(&path);
        pr.sha = sha;
        pr.git_ref = git_ref;
        let files = git::workflow_files(&path, &pr.sha)?;
        let stored = if pr.fork { BTreeSet::new() } else { self.stored_secret_names(&pr.repository) };
        let event = Event::PullRequest(&pr);
        let mut queued = Vec::new();
        for planned in trigger::plan(event, &files, &stored) {
            queued.push(self.queue_planned(event, planned)?);
        }
        Ok(queued)
    }

    /// Runs the `release` workflows of a release's activity, on its tag's commit. Returns the
    /// ids of the runs queued; none when the tag is not in the repository.
    pub async fn release(&self, release: Release) -> Result<Vec<i64>, RunError> {
        let _one_at_a_time = self.inner.polling.lock().await;
        let this = self.clone();
        mobius_log::blocking::spawn(move || this.release_blocking(release)).await
    }

    fn release_blocking(&self, mut release: Release) -> Result<Vec<i64>, RunError> {
        let repository = self.repository(&release.repository)?;
        let path = PathBuf::from(&repository.path);
        self.fetch(&repository)?;
        let Some((sha, _)) = git::resolve(&path, &format!("refs/tags/{}", release.tag))? else {
            tracing::warn!(repository = %release.repository, tag = %release.tag, "the release's tag is not in the repository");
            return Ok(Vec::new());
        };
        release.sha = sha;
        release.default_branch = default_branch(&path);
        let files = git::workflow_files(&path, &release.sha)?;
        let stored = self.stored_secret_names(&release.repository);
        let event = Event::Release(&release);
        let mut queued = Vec::new();
        for planned in trigger::plan(event, &files, &stored) {
            queued.push(self.queue_planned(event, planned)?);
        }
        Ok(queued)
    }
}
