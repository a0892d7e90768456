//! `mobius gitops add|remove|status|diff|sync|history` and `mobius promote` (see
//! `mobius_gitops`). The reconciler runs in the server, so every one of these talks to a server
//! (`--server`, `MOBIUS_SERVER`): following a repository needs an `admin` token, syncing and
//! promoting a `deploy` token, reading any.

use std::process::ExitCode;

use anyhow::{Context, Result};
use mobius_gitops::promote::Promoted;
use mobius_gitops::{ServiceStatus, Source, SourceStatus, Sync};
use reqwest::Method;
use serde::Deserialize;

use crate::cli::{GitopsCommand, PromoteArgs, Remote};
use crate::client::Client;
use crate::output::{print_json, print_table};

/// A source as `GET /api/v1/gitops` lists it.
#[derive(Debug, Deserialize, serde::Serialize)]
struct Followed {
    #[serde(flatten)]
    source: Source,
    status: SourceStatus,
}

pub async fn run(json: bool, command: GitopsCommand) -> Result<ExitCode> {
    match command {
        GitopsCommand::Add { repository, path, revision, self_heal, prune, allow_empty, interval, review, remote } => {
            // Checked here so a typo is refused before anything is sent.
            mobius_gitops::desired::parse_duration(&interval)
                .with_context(|| format!("--interval must be a duration such as 3m, not `{interval}`"))?;
            let client = server(&remote)?;
            let body = serde_json::json!({
                "repository": repository, "path": path, "revision": revision, "self_heal": self_heal,
                "prune": prune, "allow_empty": allow_empty, "interval": interval, "review": review,
            });
            let added: Source = client.json(client.request(Method::POST, "/api/v1/gitops").json(&body)).await?;
            if json {
                print_json(&added)?;
            } else {
                println!(
                    "Following {} ({}environments/ at {}){}{}{}",
                    added.repository,
                    if added.path.is_empty() { String::new() } else { format!("{}/", added.path.trim_matches('/')) },
                    added.revision,
                    if added.self_heal { ", self-heal" } else { "" },
                    if added.prune { ", prune" } else { "" },
                    if added.review.is_empty() {
                        String::new()
                    } else {
                        format!(", promotions to {} through pull requests", added.review.join(", "))
                    },
                );
            }
        }
        GitopsCommand::Remove { repository, remote } => {
            let client = server(&remote)?;
            client.send(client.request(Method::DELETE, "/api/v1/gitops").query(&[("repository", &repository)])).await?;
            if json {
                print_json(&serde_json::json!({ "repository": repository, "removed": true }))?;
            } else {
                println!("No longer following {repository}; what runs stays as it is");
            }
        }
        GitopsCommand::Status { repository, remote } => {
            let all = followed(&remote, repository.as_deref()).await?;
            if json {
                return print_json(&all).map(|()| ExitCode::SUCCESS);
            }
            for f in &all {
                println!("{} at {}{}", f.source.repository, revision(&f.status), error_of(&f.status));
                show_services(&f.status.services.iter().collect::<Vec<_>>());
            }
        }
        GitopsCommand::Diff { repository, remote } => {
            let all = followed(&remote, repository.as_deref()).await?;
            let differing: Vec<&ServiceStatus> =
                all.iter().flat_map(|f| &f.status.services).filter(|s| s.sync != Sync::Synced).collect();
            if json {
                return print_json(&differing).map(|()| ExitCode::SUCCESS);
            }
            if differing.is_empty() {
                println!("Every declared service runs what git declares");
            }
            for s in differing {
                println!("{}/{} ({})", s.service, s.environment, s.file);
                println!("  git:  {}", s.desired.as_deref().unwrap_or("(not declared)"));
                println!("  live: {}", s.live.as_deref().unwrap_or("(nothing)"));
                if !s.message.is_empty() {
                    println!("  {}", s.message);
                }
            }
        }
        GitopsCommand::Sync { repository, force, remote } => {
            let client = server(&remote)?;
            let body = serde_json::json!({ "repository": repository, "force": force });
            let status: SourceStatus =
                client.json(client.request(Method::POST, "/api/v1/gitops/sync").json(&body)).await?;
            if json {
                return print_json(&status).map(|()| ExitCode::SUCCESS);
            }
            println!("{} at {}{}", repository, revision(&status), error_of(&status));
            show_services(&status.services.iter().collect::<Vec<_>>());
        }
        GitopsCommand::History { repository, remote } => {
            let all = followed(&remote, Some(&repository)).await?;
            let history = all.into_iter().next().map(|f| f.status.history).unwrap_or_default();
            if json {
                return print_json(&history).map(|()| ExitCode::SUCCESS);
            }
            let rows: Vec<[String; 4]> = history
                .iter()
                .map(|h| {
                    [
                        h.at.to_string(),
                        h.revision[..h.revision.len().min(12)].to_owned(),
                        h.outcome.clone(),
                        h.actions.join("; "),
                    ]
                })
                .collect();
            print_table(0, ["AT", "REVISION", "OUTCOME", "WHAT"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn promote(json: bool, args: PromoteArgs) -> Result<ExitCode> {
    let client = server(&args.remote)?;
    let body = serde_json::json!({
        "service": args.service, "from": args.from, "to": args.to, "reason": args.reason,
        "pull_request": args.pull_request,
    });
    let promoted: Promoted = client.json(client.request(Method::POST, "/api/v1/promotions").json(&body)).await?;
    let commit = &promoted.commit[..promoted.commit.len().min(12)];
    let branch = promoted.branch.trim_start_matches("refs/heads/");
    if json {
        print_json(&promoted)?;
    } else if let Some(pr) = &promoted.pull_request {
        println!(
            "Pushed {commit} to branch {branch} of {} and opened pull request #{}: {}\n\
             {} changes {} to {}; nothing syncs until it is merged into {}",
            promoted.repository, pr.number, pr.url, commit, promoted.file, promoted.digest, pr.base,
        );
    } else {
        println!(
            "{} {} to {} of {} ({} on {}); the server syncs it next",
            if promoted.remote.is_some() { "Pushed" } else { "Committed" },
            commit,
            promoted.file,
            promoted.repository,
            promoted.digest,
            branch,
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn followed(remote: &Remote, repository: Option<&str>) -> Result<Vec<Followed>> {
    let client = server(remote)?;
    let all: Vec<Followed> = client.json(client.request(Method::GET, "/api/v1/gitops")).await?;
    let all: Vec<Followed> = all.into_iter().filter(|f| repository.is_none_or(|r| r == f.source.repository)).collect();
    if let Some(repository) = repository
        && all.is_empty()
    {
        anyhow::bail!("repository `{repository}` is not followed by GitOps");
    }
    Ok(all)
}

fn show_services(services: &[&ServiceStatus]) {
    // Each service, then the flag sets its `flags:` files go into, one row each.
    let rows: Vec<[String; 5]> = services
        .iter()
        .flat_map(|s| {
            let service = [
                format!("{}/{}", s.service, s.environment),
                format!("{:?}", s.sync),
                format!("{:?}", s.health),
                s.live.as_deref().map(|d| d.get(..19).unwrap_or(d).to_owned()).unwrap_or_else(|| "-".to_owned()),
                s.message.clone(),
            ];
            let flags = s.flags.iter().map(|f| {
                [
                    format!("  flags {}", f.set),
                    format!("{:?}", f.sync),
                    String::new(),
                    f.version.map_or_else(|| "-".to_owned(), |v| format!("version {v}")),
                    f.message.clone(),
                ]
            });
            std::iter::once(service).chain(flags)
        })
        .collect();
    print_table(2, ["SERVICE", "SYNC", "HEALTH", "LIVE", "WHY"], &rows);
}

fn revision(status: &SourceStatus) -> String {
    status.revision.as_deref().map_or("(not read yet)".to_owned(), |r| r[..r.len().min(12)].to_owned())
}

fn error_of(status: &SourceStatus) -> String {
    status.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default()
}

fn server(remote: &Remote) -> Result<Client> {
    Client::from(remote)?.context("GitOps runs in the server: pass --server URL (or set MOBIUS_SERVER)")
}
