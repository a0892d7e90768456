//! `mobius repo add|list`.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use mobius_store::Repository;

use crate::cli::RepoCommand;
use crate::output::print_json;

pub fn run(data_dir: Option<&Path>, json: bool, command: RepoCommand) -> Result<ExitCode> {
    let store = super::open_store(&super::settings(data_dir, None)?)?;
    match command {
        RepoCommand::Add { path, name } => {
            let top = mobius_git::toplevel(&path)?;
            let name = match name {
                Some(name) => name,
                None => derive_name(&top).with_context(|| {
                    format!("cannot tell the repository's name from {}; pass --name owner/name", top.display())
                })?,
            };
            let repository = Repository { name, path: top.display().to_string() };
            store.add_repository(&repository)?;
            if json {
                print_json(&repository)?;
            } else {
                println!("Registered {} at {}", repository.name, repository.path);
            }
        }
        RepoCommand::List => {
            let repositories = store.repositories()?;
            if json {
                print_json(&repositories)?;
            } else if repositories.is_empty() {
                println!("No repositories registered. Add one with `mobius repo add PATH`.");
            } else {
                for r in repositories {
                    println!("{:<40} {}", r.name, r.path);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `owner/name` from the `origin` remote URL (https or scp-like), else the directory's name.
fn derive_name(top: &Path) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(top).args(["remote", "get-url", "origin"]).output().ok();
    let url = out.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(url) = url {
        let path = url.rsplit_once(':').map_or(url.as_str(), |(_, p)| p);
        let path = path.trim_end_matches(".git").trim_end_matches('/');
        let parts: Vec<&str> = path.rsplitn(3, '/').collect();
        if parts.len() >= 2 {
            return Some(format!("{}/{}", parts[1], parts[0]));
        }
    }
    top.file_name().map(|n| n.to_string_lossy().into_owned())
}
