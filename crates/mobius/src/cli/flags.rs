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
}

/// A flag's state as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// ENABLED
    On,
    /// DISABLED
    Off,
}
