//! `mobius flags …`: feature flag sets (see `mobius_features`).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::Remote;

#[derive(Debug, Subcommand)]
pub enum FlagsCommand {
    /// Load a flagd document (a flag file) into a flag set, replacing the set's document
    ///
    /// The file is checked first (flagd's schema, enforced; every problem at FILE:line:col
    /// with its JSON pointer); a refused file changes nothing and the set in force stays. A
    /// file equal to the set's document is no change. Every change is a
    /// `mobius-flag.changed` event naming who and why.
    Load {
        /// The flagd JSON document (`flags`, `$evaluators`, `metadata`)
        file: PathBuf,
        /// The flag set to load it into (letters, digits, `.`, `_`, `-`)
        #[arg(long)]
        set: String,
        /// The deployment environment the set belongs to; a set keeps the one it was given
        #[arg(long)]
        environment: Option<String>,
        /// Why: recorded in the change's event
        #[arg(long)]
        reason: Option<String>,
        /// Refuse unless the set is at this version now (what `flags list` shows)
        #[arg(long, value_name = "VERSION")]
        if_version: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// The flag sets, with their versions and environments
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// A flag set's document, or one flag of it
    Show {
        set: String,
        /// Only this flag: its state, default variant, variants and whether it has targeting
        flag: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a flag on (ENABLED) or off (DISABLED)
    SetState {
        set: String,
        flag: String,
        state: OnOff,
        /// Why: recorded in the change's event
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Make one of a flag's variants its default
    SetDefault {
        set: String,
        flag: String,
        variant: String,
        /// Why: recorded in the change's event
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a flag set (its change events stay in the log)
    Delete {
        set: String,
        /// Why: recorded in the change's event
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Roll a variant out to a share of a flag's evaluations, step by step, gated by health
    ///
    /// `mobius flags rollout SET FLAG --variant on --to 50 --step 10 --every 10m --service S`
    /// moves the flag's fractional split (the variant against the flag's default variant) by
    /// --step every --every until --to. It stops and returns to 0% when the service's SLO
    /// pages or when the variant's own error ratio (responses carrying
    /// `x-mobius-flag: FLAG=VARIANT` through Mobius's proxy) exceeds the service's analysis
    /// thresholds. A step in a set of an environment is refused under a frozen error budget,
    /// as a deploy is, unless --reason hotfix|security. Driven by the server: needs --server.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Rollout {
        #[command(subcommand)]
        action: Option<RolloutAction>,
        #[arg(required = true)]
        set: Option<String>,
        #[arg(required = true)]
        flag: Option<String>,
        /// The variant whose share grows (the rest stays with the flag's default variant)
        #[arg(long, required = true)]
        variant: Option<String>,
        /// The share to end at, in percent
        #[arg(long, default_value_t = 100)]
        to: u32,
        /// The share added at each step, in percent
        #[arg(long, default_value_t = 10)]
        step: u32,
        /// The time between steps: 30s, 10m, 1h
        #[arg(long, default_value = "10m")]
        every: String,
        /// The service whose SLOs, analysis thresholds and proxy judge the rollout
        /// (default: the set's name up to its first `.`)
        #[arg(long)]
        service: Option<String>,
        /// `hotfix` or `security`: steps go through a frozen error budget
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// What to do with a flag's rollout once started.
#[derive(Debug, Subcommand)]
pub enum RolloutAction {
    /// Where a flag's rollout stands (every rollout without SET FLAG)
    Status {
        set: Option<String>,
        flag: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Hold a running rollout at its share
    Pause {
        set: String,
        flag: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Let a paused rollout step again
    Resume {
        set: String,
        flag: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop a rollout and send its flag back to 0%
    Abort {
        set: String,
        flag: String,
        /// Why: recorded in the change's event
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// A flag's state as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// ENABLED
    On,
    /// DISABLED
    Off,
}
