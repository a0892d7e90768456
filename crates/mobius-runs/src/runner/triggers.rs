//! The triggers besides a push: manual runs (`workflow_dispatch`) and schedules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use mobius_pipelines::workflow::Workflow;
use mobius_store::{NewRun, Repository};

use super::{RunError, Runner, default_branch};
use crate::git;

/// A manual run (`workflow_dispatch`) asked for.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// The registered repository.
    pub repository: String,
    /// The workflow: its file (`.github/workflows/ci.yml`), file name (`ci.yml`) or `name:`.
    pub workflow: String,
    /// The branch, tag or commit to run.
    pub git_ref: String,
    pub inputs: BTreeMap<String, String>,
    /// Who asked (the token's name), as `github.actor`.
    pub actor: String,
}

impl Runner {
    /// Queues a manual run (`workflow_dispatch`) of a workflow at a ref, its inputs checked
    /// and typed as GitHub checks them; returns its id.
    pub async fn dispatch(&self, request: Dispatch) -> Result<i64, RunError> {
        let this = self.clone();
        mobius_log::blocking::spawn(move || {
            let repository = this.repository(&request.repository)?;
            let path = PathBuf::from(&repository.path);
            let unknown_ref =
                || RunError::UnknownRef { repository: request.repository.clone(), git_ref: request.git_ref.clone() };
            // No ref: the default branch, as GitHub's API defaults to it.
            let asked = match request.git_ref.as_str() {
                "" | "HEAD" => default_branch(&path),
                other => other.to_owned(),
            };
            let (sha, branch) = git::resolve(&path, &asked)?.ok_or_else(unknown_ref)?;
            let files = git::workflow_files(&path, &sha)?;
            let wanted = request.workflow.as_str();
            let found = files.iter().find_map(|(file, text)| {
                let text = mobius_pipelines::workflow::with_default_branch(text, &default_branch(&path));
                let workflow = mobius_pipelines::workflow::parse(file, &text).ok();
                let named = |w: &Workflow| w.name.as_deref() == Some(wanted);
                let matches = file == wanted
                    || Path::new(file).file_name().is_some_and(|n| n == wanted)
                    || workflow.as_ref().is_some_and(named);
                matches.then(|| (file.clone(), workflow))
            });
            let unknown_workflow = || RunError::UnknownWorkflow {
                repository: request.repository.clone(),
                workflow: request.workflow.clone(),
                sha: sha.clone(),
            };
            let (file, workflow) = found.ok_or_else(unknown_workflow)?;
            let workflow = workflow.ok_or_else(|| RunError::Dispatch {
                file: file.clone(),
                source: mobius_pipelines::workflow::DispatchError::NotDispatchable,
            })?;
            let inputs = mobius_pipelines::workflow::dispatch_inputs(&workflow, &request.inputs)
                .map_err(|source| RunError::Dispatch { file: file.clone(), source })?;
            let run = this.first_run(&request.repository, &file, &workflow, "workflow_dispatch", branch.clone(), &sha);
            let git_ref = match &branch {
                Some(branch) => format!("refs/heads/{branch}"),
                None if asked.starts_with("refs/") => asked.clone(),
                None => format!("refs/tags/{asked}"),
            };
            let ref_name = git_ref.rsplit('/').next().unwrap_or_default().to_owned();
            let owner = request.repository.split('/').next().unwrap_or_default().to_owned();
            let github = serde_json::json!({
                "event_name": "workflow_dispatch",
                "ref": git_ref,
                "ref_name": ref_name,
                "ref_type": if branch.is_some() { "branch" } else { "tag" },
                "sha": sha,
                "repository": request.repository,
                "repository_owner": owner,
                "actor": request.actor,
                "triggering_actor": request.actor,
                "event": { "inputs": inputs.clone(), "ref": git_ref, "repository": { "full_name": request.repository } },
            });
            this.queue(run, github, inputs)
        })
        .await
    }

    /// Runs the `schedule` workflows of every registered repository, as GitHub does: at each
    /// minute (UTC, by the runner's clock) that one of a workflow's crons matches, the
    /// workflow at the head of the repository's default branch runs once per matching cron.
    /// Minutes that passed while the server was down are not made up for. Until `shutdown`.
    pub async fn schedule_forever(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = self.now();
            let next = Timestamp::from_second(now.as_second().div_euclid(60) * 60 + 60).unwrap_or(now);
            let wait = now.duration_until(next).unsigned_abs();
            tokio::select! {
                _ = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
            let this = self.clone();
            let queued = mobius_log::blocking::spawn(move || this.run_schedules(next)).await;
            if !queued.is_empty() {
                tracing::info!(minute = %next, runs = ?queued, "scheduled runs queued");
            }
        }
    }

    /// Queues the scheduled runs of minute `at` in every repository; their ids.
    pub fn run_schedules(&self, at: Timestamp) -> Vec<i64> {
        let repositories = match self.inner.store.repositories() {
            Ok(repositories) => repositories,
            Err(error) => {
                tracing::warn!(error = %error, "cannot list repositories for schedules");
                return Vec::new();
            }
        };
        let mut queued = Vec::new();
        for repository in repositories {
            match self.schedules_of(&repository, at) {
                Ok(ids) => queued.extend(ids),
                Err(error) => tracing::warn!(repository = %repository.name, error = %error, "schedules failed"),
            }
        }
        queued
    }

    fn schedules_of(&self, repository: &Repository, at: Timestamp) -> Result<Vec<i64>, RunError> {
        let path = PathBuf::from(&repository.path);
        let branch = default_branch(&path);
        let Some((sha, _)) = git::resolve(&path, &branch)? else { return Ok(Vec::new()) };
        let mut queued = Vec::new();
        for (file, text) in git::workflow_files(&path, &sha)? {
            if !text.contains("schedule") {
                continue;
            }
            let text = mobius_pipelines::workflow::with_default_branch(&text, &branch);
            let Ok(workflow) = mobius_pipelines::workflow::parse(&file, &text) else { continue };
            for cron in &workflow.on.schedule {
                let due = mobius_pipelines::workflow::Cron::parse(cron).is_ok_and(|c| c.matches(at));
                if !due {
                    continue;
                }
                let run = self.first_run(&repository.name, &file, &workflow, "schedule", Some(branch.clone()), &sha);
                let owner = repository.name.split('/').next().unwrap_or_default();
                let github = serde_json::json!({
                    "event_name": "schedule",
                    "ref": format!("refs/heads/{branch}"),
                    "ref_name": branch,
                    "ref_type": "branch",
                    "sha": sha,
                    "repository": repository.name,
                    "repository_owner": owner,
                    "actor": "mobius",
                    "event": { "schedule": cron, "repository": { "full_name": repository.name } },
                });
                queued.push(self.queue(run, github, serde_json::Map::new())?);
            }
        }
        Ok(queued)
    }

    /// The first attempt, of every job, of `workflow` (`file`) at `sha`, raised by `event`.
    fn first_run(
        &self,
        repository: &str,
        file: &str,
        workflow: &Workflow,
        event: &str,
        branch: Option<String>,
        sha: &str,
    ) -> NewRun {
        NewRun {
            repository: repository.to_owned(),
            workflow_file: file.to_owned(),
            workflow_name: workflow.name.clone().unwrap_or_else(|| file.to_owned()),
            event: event.to_owned(),
            branch,
            sha: sha.to_owned(),
            before_sha: None,
            concurrency_group: None,
            cancel_in_progress: false,
            only_jobs: Vec::new(),
            attempt: 1,
            rerun_of: None,
            requeue_of: None,
            queued_at: self.now(),
            fork: false,
            trigger: None,
        }
    }

    /// Stores `run` queued with its contexts (what its claimer starts it with, and its
    /// re-runs see); its id.
    pub(super) fn queue(
        &self,
        mut run: NewRun,
        github: serde_json::Value,
        inputs: serde_json::Map<String, serde_json::Value>,
    ) -> Result<i64, RunError> {
        run.trigger = Some(super::trigger_record(&github, &inputs));
        self.store_queued(&run)
    }
}
