//! `mobius environment protect|list|unprotect`: the protection rules of deployment
//! environments (see `mobius_app::environments`), in the local data directory's store or, with
//! `--server`, through the API (an `admin` token). Every change is an event.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_app::environments::Rules;
use mobius_store::EnvironmentRecord;
use reqwest::Method;

use super::{off_runtime, open_store, settings};
use crate::cli::EnvironmentCommand;
use crate::client::Client;
use crate::output::{print_json, print_table};

/// Who a change made from this command is recorded as.
const WHO: &str = "cli";

pub async fn run(data_dir: Option<&Path>, json: bool, command: EnvironmentCommand) -> Result<ExitCode> {
    let remote = match &command {
        EnvironmentCommand::Protect { remote, .. }
        | EnvironmentCommand::List { remote, .. }
        | EnvironmentCommand::Unprotect { remote, .. } => Client::from(remote)?,
    };
    if let Some(client) = remote {
        return over_http(&client, json, command).await;
    }
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let log = mobius_log::ingest::Ingestor::new(store.clone(), settings.rules);
    match command {
        EnvironmentCommand::Protect { repo, environment, reviewers, require_review, branches, .. } => {
            let rules = Rules { require_review, reviewers, branches };
            let (record, event) = mobius_app::environments::protect(store.as_ref(), &repo, &environment, rules, WHO)?;
            let events: Vec<_> = event.into_iter().collect();
            off_runtime(|| log.append(&events)).context("cannot record the change")?;
            said_protected(json, &record)?;
        }
        EnvironmentCommand::List { repo, .. } => show_list(json, &store.environments(repo.as_deref())?)?,
        EnvironmentCommand::Unprotect { repo, environment, .. } => {
            let Some(event) = mobius_app::environments::unprotect(store.as_ref(), &repo, &environment, WHO)? else {
                bail!("environment {environment} of {repo} has no protection rules");
            };
            let events: Vec<_> = event.into_iter().collect();
            off_runtime(|| log.append(&events)).context("cannot record the change")?;
            if !json {
                println!("Environment {environment} of {repo} is no longer protected");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same commands through `--server`.
async fn over_http(client: &Client, json: bool, command: EnvironmentCommand) -> Result<ExitCode> {
    match command {
        EnvironmentCommand::Protect { repo, environment, reviewers, require_review, branches, .. } => {
            let rules = Rules { require_review, reviewers, branches };
            let request = client.request(Method::PUT, &environment_path(&repo, &environment)?).json(&rules);
            let record: EnvironmentRecord = client.json(request).await?;
            said_protected(json, &record)?;
        }
        EnvironmentCommand::List { repo, .. } => {
            let mut request = client.request(Method::GET, "/api/v1/environments");
            if let Some(repo) = &repo {
                request = request.query(&[("repository", repo.as_str())]);
            }
            let rows: Vec<EnvironmentRecord> = client.json(request).await?;
            show_list(json, &rows)?;
        }
        EnvironmentCommand::Unprotect { repo, environment, .. } => {
            client.send(client.request(Method::DELETE, &environment_path(&repo, &environment)?)).await?;
            if !json {
                println!("Environment {environment} of {repo} is no longer protected");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `/api/v1/environments/{owner}/{repo}/{env}`.
fn environment_path(repo: &str, environment: &str) -> Result<String> {
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match repo.split_once('/') {
        Some((owner, name)) if plain(owner) && plain(name) => {}
        _ => bail!("the repository must be OWNER/NAME, got `{repo}`"),
    }
    if !plain(environment) {
        bail!("through --server, an environment's name is letters, digits, `-`, `_` and `.`; got `{environment}`");
    }
    Ok(format!("/api/v1/environments/{repo}/{environment}"))
}

fn said_protected(json: bool, record: &EnvironmentRecord) -> Result<()> {
    if json {
        return print_json(record);
    }
    println!("Environment {} of {} is protected: {}", record.name, record.repository, describe(record));
    Ok(())
}

/// `review by alice, bob; branches main, release/*`.
fn describe(record: &EnvironmentRecord) -> String {
    let review = match (record.require_review, record.reviewers.is_empty()) {
        (false, _) => "no review".to_owned(),
        (true, true) => "review by any deploy token".to_owned(),
        (true, false) => format!("review by {}", record.reviewers.join(", ")),
    };
    let branches = match record.branches.is_empty() {
        true => "every branch".to_owned(),
        false => format!("branches {}", record.branches.join(", ")),
    };
    format!("{review}; {branches}")
}

fn show_list(json: bool, rows: &[EnvironmentRecord]) -> Result<()> {
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!(
            "No protected environments. Protect one with `mobius environment protect OWNER/NAME ENV --reviewer NAME`."
        );
        return Ok(());
    }
    let none = |list: &[String], empty: &str| if list.is_empty() { empty.to_owned() } else { list.join(", ") };
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            let reviewers = match r.require_review {
                true => none(&r.reviewers, "any deploy token"),
                false => "-".to_owned(),
            };
            let when = r.updated.to_string().chars().take(19).collect::<String>().replace('T', " ");
            [r.repository.clone(), r.name.clone(), reviewers, none(&r.branches, "all"), when]
        })
        .collect();
    print_table(0, ["REPOSITORY", "ENVIRONMENT", "REVIEWERS", "BRANCHES", "UPDATED (UTC)"], &table);
    Ok(())
}
