//! The pipeline commands' arguments: `lint`, `run`, `repo`, `runs`, `actions`, `secret` and
//! `environment`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Remote, key_value};

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Workflow files, or directories of them [default: the repository's workflow directories]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflows (by file path, file name or `name:`) or job ids to run [default: every
    /// workflow the event triggers]
    #[arg(value_name = "WORKFLOW|JOB")]
    pub targets: Vec<String>,
    /// The event to simulate
    #[arg(long, default_value = "push", value_parser = ["push", "pull_request", "workflow_dispatch", "workflow_call"])]
    pub event: String,
    /// A `workflow_dispatch` input, or a `workflow_call` input of a reusable workflow named
    /// to run (repeatable)
    #[arg(long = "input", value_name = "KEY=VALUE", value_parser = key_value)]
    pub inputs: Vec<(String, String)>,
    /// A secret for `${{ secrets.NAME }}` (repeatable); prefer --secrets-file, which keeps
    /// secrets out of the shell history and the process list
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = key_value)]
    pub secrets: Vec<(String, String)>,
    /// Read secrets from a dotenv file (NAME=VALUE lines, `export`, `#` comments, quoted values)
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Run only the matrix combinations with this value (repeatable; all must match)
    #[arg(long = "matrix", value_name = "KEY=VALUE", value_parser = key_value)]
    pub matrix: Vec<(String, String)>,
    /// How many jobs run at once [default: the number of CPU cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// List the workflows and their jobs instead of running them
    #[arg(long)]
    pub list: bool,
    /// Do not record the run's CDEvents (pipelinerun, taskrun) in the local event log,
    /// which `mobius dora` and `mobius flow` read
    #[arg(long)]
    pub no_events: bool,
    /// Run even when a secret the workflow names is not given (it is then empty, as on GitHub)
    #[arg(long)]
    pub allow_missing_secrets: bool,
    /// Where `uses: owner/repo@ref` actions are fetched from, as URL/owner/repo over any
    /// transport git speaks (a mirror, GitHub Enterprise, file:///srv/actions) [default:
    /// `actions_url` in mobius.toml, else https://github.com]
    #[arg(long, env = "MOBIUS_ACTIONS_URL", value_name = "URL")]
    pub actions_url: Option<String>,
    /// Refuse actions pinned to a tag or branch: only full-length commit SHAs run
    #[arg(long)]
    pub require_pinned_actions: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add or replace a secret; its value is read from standard input, never the command line
    Set {
        /// `[A-Z_][A-Z0-9_]*`, not starting with GITHUB_
        name: String,
        /// The repository (`owner/name`, as registered) whose runs see it
        #[arg(long)]
        repo: String,
        /// Only jobs whose `environment:` names this environment see it
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Names, scopes and when they changed (never values)
    List {
        /// Only this repository's
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a secret
    Rm {
        name: String,
        #[arg(long)]
        repo: String,
        #[arg(long)]
        environment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reseal every secret under a new key and replace the key file (restart the server after)
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// Give an environment protection rules (replacing those it had)
    Protect {
        /// The repository (`owner/name`, as registered)
        repo: String,
        /// The environment, as jobs name it in `environment:`
        environment: String,
        /// A token name that may approve or reject its jobs (repeatable; implies
        /// --require-review)
        #[arg(long = "reviewer", value_name = "NAME")]
        reviewers: Vec<String>,
        /// Jobs wait for a review; without --reviewer, any `deploy` or `admin` token may give it
        #[arg(long)]
        require_review: bool,
        /// A branch pattern allowed to deploy (`main`, `release/*`; `refs/tags/v*` for tags;
        /// repeatable) [default: every branch and tag]
        #[arg(long = "branch", value_name = "PATTERN")]
        branches: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// The protected environments and their rules
    List {
        /// Only this repository's
        #[arg(long)]
        repo: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove an environment's protection rules
    Unprotect {
        repo: String,
        environment: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// The cached action repositories
    #[command(subcommand)]
    Cache(ActionsCacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum ActionsCacheCommand {
    /// Each cached repository at each commit, with its size and when a run last used it
    List,
    /// Remove what no run used lately (and the mirrors left without a commit)
    Prune {
        /// Remove what was not used for this long, e.g. `7d`, `12h`
        #[arg(long, value_name = "DURATION", default_value = "7d", conflicts_with = "all")]
        unused_for: String,
        /// Remove everything
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Register a repository: a remote's URL (mirrored in the data directory), or a local clone
    ///
    /// A URL (`https://`, `ssh://`, `user@host:path`, `git://`, `file://`) is mirrored into
    /// `<data>/mirrors/<name>.git`; the server fetches it on each push webhook for that name
    /// and every `poll_interval`. A private remote needs `--credentials SECRET`, a secret of the
    /// repository (`mobius secret set SECRET --repo owner/name` first) holding an HTTPS token
    /// (or `USER:TOKEN`) or an SSH private key; never put credentials in the URL.
    ///
    /// A path registers a clone on this machine and installs `post-commit` and `post-receive`
    /// hooks that tell the server about new commits at once, with a `run`-scope token kept in
    /// the repository's git directory. Either way the branches are recorded as they are now, so
    /// only later commits trigger runs.
    Add {
        /// The remote's URL, or the path to a clone
        #[arg(value_name = "URL|PATH")]
        path: PathBuf,
        /// The repository's name in events: `owner/name` for GitHub, the project path for
        /// GitLab [default: from the URL, or the clone's `origin` remote, else the directory name]
        #[arg(long)]
        name: Option<String>,
        /// The repository's secret holding the remote's HTTPS token or SSH private key
        #[arg(long, value_name = "SECRET")]
        credentials: Option<String>,
        /// The server the hooks notify [default: http://<listen address from the config>]
        #[arg(long, value_name = "URL")]
        hook_server: Option<String>,
        /// Register without installing hooks (the server still polls)
        #[arg(long)]
        no_hooks: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// List registered repositories
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// One registered repository: where it is, its branches as last seen, its secrets' names
    Show {
        /// The registered name (`owner/name`)
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Unregister a repository: its mirror (for a remote) is deleted and its hook token
    /// revoked; its runs and their logs stay
    Remove {
        /// The registered name (`owner/name`)
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Report each job's state back to the forge as a commit status (GitHub, GitLab)
    ///
    /// Every run of the repository then posts a status per job, context
    /// `mobius/<workflow>/<job>`, on the run's commit: when the job is queued, starts and ends.
    /// The token is read from the repository's secret SECRET when a status is sent (set it with
    /// `mobius secret set SECRET --repo NAME`); it is never stored here or printed.
    Forge {
        /// The registered name (`owner/name`)
        name: String,
        /// `github` or `gitlab`
        #[arg(long, required_unless_present = "off")]
        kind: Option<String>,
        /// The API's base URL (GitHub Enterprise: `https://HOST/api/v3`; self-managed GitLab:
        /// `https://HOST/api/v4`) [default: https://api.github.com or https://gitlab.com/api/v4]
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// The repository secret holding the API token
        #[arg(long, value_name = "SECRET")]
        token_secret: Option<String>,
        /// GitLab's project id or path [default: the repository's name]
        #[arg(long, value_name = "ID")]
        project: Option<String>,
        /// Stop reporting statuses for this repository
        #[arg(long, conflicts_with_all = ["kind", "api_url", "token_secret", "project"])]
        off: bool,
    },
    /// Tell the server a repository changed (what the installed git hooks run)
    #[command(hide = true)]
    Notify {
        /// The registered repository's name
        name: String,
        #[arg(long, value_name = "URL")]
        server: String,
        /// File holding a `run`-scope token
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first
    List {
        /// Only runs of this repository
        #[arg(long)]
        repository: Option<String>,
        /// Only runs in this state
        #[arg(long, value_parser = ["queued", "running", "success", "failure", "cancelled", "interrupted"])]
        state: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// One run with its jobs and steps
    Show {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// A run's log lines (`JOB › STEP | line`)
    Logs {
        id: i64,
        /// Keep printing lines as they are written until the run ends
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start a workflow by hand (`workflow_dispatch`) on the server, with typed inputs
    Start {
        /// The workflow: its file, file name or `name:`
        workflow: String,
        /// The registered repository
        #[arg(long)]
        repo: String,
        /// The branch, tag or commit [default: the default branch]
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// An input (repeatable), checked against the workflow's `workflow_dispatch.inputs`
        #[arg(long = "input", value_name = "KEY=VALUE", value_parser = key_value)]
        inputs: Vec<(String, String)>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Cancel a queued or running run (needs the server and a `run` token)
    Cancel {
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a job waiting for its environment's review go on (needs the server and a `deploy`
    /// token whose name is among the environment's reviewers, when it lists them)
    Approve {
        /// The run's id
        id: i64,
        /// The job as `mobius runs show` lists it, e.g. `deploy` or `deploy (eu)`
        job: String,
        /// Why, for the record (in the approval's event)
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Fail a job waiting for its environment's review, and so its run (as `approve`)
    Reject {
        /// The run's id
        id: i64,
        /// The job as `mobius runs show` lists it
        job: String,
        /// Why, for the record (in the rejection's event)
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a finished run again as a new attempt (needs the server and a `run` token)
    Rerun {
        id: i64,
        /// Only the jobs that failed or were cancelled (and the jobs that need them)
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        remote: Remote,
    },
}
