//! `mobius actions cache list|prune`: the action repositories fetched for
//! `uses: owner/repo@ref`, kept by commit in `<data-dir>/actions`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{ActionsCacheCommand, ActionsCommand};
use crate::config;
use crate::output::{print_json, print_table};

pub fn run(data_dir: Option<&Path>, json: bool, command: ActionsCommand) -> Result<ExitCode> {
    let settings = super::settings(data_dir, None)?;
    let cache = settings.action_cache();
    let ActionsCommand::Cache(command) = command;
    let (shown, removed) = match command {
        ActionsCacheCommand::List => (
            cache.list().with_context(|| format!("cannot read {}", settings.data_dir.join("actions").display()))?,
            false,
        ),
        ActionsCacheCommand::Prune { unused_for, all } => {
            let unused_for = if all { Duration::ZERO } else { config::parse_age(&unused_for, "--unused-for")? };
            let removed = cache.prune(unused_for).context("cannot prune the action cache")?;
            (removed, true)
        }
    };
    if json {
        let rows: Vec<_> = shown
            .iter()
            .map(|a| {
                json!({
                    "repository": a.repo,
                    "sha": a.sha,
                    "bytes": a.bytes,
                    "last_used": jiff::Timestamp::try_from(a.last_used).map(|t| t.to_string()).ok(),
                })
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        println!("{}", if removed { "Nothing to prune." } else { "No actions cached yet." });
        return Ok(ExitCode::SUCCESS);
    }
    if removed {
        println!("Removed:");
    }
    let now = SystemTime::now();
    let rows: Vec<[String; 4]> = shown
        .iter()
        .map(|a| {
            let age = now.duration_since(a.last_used).unwrap_or_default();
            [a.repo.clone(), a.sha.clone(), kib(a.bytes), format!("{} ago", ago(age))]
        })
        .collect();
    print_table(0, ["REPOSITORY", "COMMIT", "SIZE", "LAST USED"], &rows);
    Ok(ExitCode::SUCCESS)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
