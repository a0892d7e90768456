//! `mobius gitops …` and `mobius promote …`: environments declared in deploy repositories.

use clap::{Args, Subcommand};

use super::Remote;

#[derive(Debug, Subcommand)]
pub enum GitopsCommand {
    /// Follow a registered repository's environments/<env>.yaml files
    ///
    /// Each file declares, per service, the artifact digest it runs in that environment.
    /// The server reconciles them on every push and every --interval (with jitter): a digest
    /// change is deployed through the environment's own strategy. A deploy by hand to a
    /// declared environment is refused, or with --self-heal let through and put back within
    /// seconds (a `mobius-gitops.drifted` event records it).
    Add {
        /// The registered repository (`mobius repo add`)
        repository: String,
        /// Where `environments/` is inside the repository (default: its root)
        #[arg(long, default_value = "")]
        path: String,
        /// The revision followed: a branch, a tag or HEAD (the default branch)
        #[arg(long, default_value = "HEAD")]
        revision: String,
        /// Let manual deploys through and put git's digest back on the next pass
        #[arg(long)]
        self_heal: bool,
        /// Retire services that run in a declared environment but are not declared
        #[arg(long)]
        prune: bool,
        /// With --prune: an environment whose file declares no service may lose them all
        #[arg(long)]
        allow_empty: bool,
        /// How often the files are read when no push is seen: 90s, 3m, 1h
        #[arg(long, default_value = "3m")]
        interval: String,
        /// Environments whose promotions wait for review (comma-separated): pushed to a branch
        /// of their own with a pull request through the repository's forge (`mobius repo
        /// forge`), synced once it is merged
        #[arg(long, value_delimiter = ',')]
        review: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop following a repository (what runs stays as it is)
    Remove {
        repository: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Each followed repository: its revision, and per service and environment the sync and
    /// health axes and why
    Status {
        /// Only this repository
        repository: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// What differs between git and what runs: the services out of sync, with both digests
    Diff {
        repository: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reconcile a repository now (reading its files again)
    ///
    /// With --force, digests whose sync failed are tried again and sync windows are gone
    /// through (Argo CD's manual sync).
    Sync {
        repository: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The last reconciliations of a repository: when, at which revision, what they did
    History {
        repository: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `mobius promote SERVICE --from staging --to production`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The service whose serving digest is promoted
    pub service: String,
    /// The environment whose serving digest is promoted
    #[arg(long)]
    pub from: String,
    /// The environment whose file in the deploy repository gets the digest (as a commit)
    #[arg(long)]
    pub to: String,
    /// Why: in the commit message
    #[arg(long)]
    pub reason: Option<String>,
    /// Push to a branch of its own and open a pull request, even when --to does not require
    /// review (the repository needs a forge: `mobius repo forge`)
    #[arg(long)]
    pub pull_request: bool,
    #[command(flatten)]
    pub remote: Remote,
}
