//! `mobius token create | list | revoke`: scoped API tokens, in the local data directory or
//! through `--server` (with an admin token).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_app::tokens;
use mobius_store::{TokenRecord, TokenScope};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Remote, TokenCommand};
use crate::client::Client;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: TokenCommand) -> Result<ExitCode> {
    let (scope, name, remote) = match command {
        TokenCommand::Create { scope, name, remote } => (scope, name, remote),
        TokenCommand::List { remote } => return list(data_dir, json, &remote).await,
        TokenCommand::Revoke { id, remote } => return revoke(data_dir, &id, &remote).await,
    };
    let created: Value = match Client::from(&remote)? {
        Some(client) => {
            let request = client.request(Method::POST, "/api/v1/tokens").json(&json!({ "scope": scope, "name": name }));
            client.json(request).await?
        }
        None => {
            let scope = TokenScope::parse(&scope).context("unknown scope")?;
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            let token = tokens::issue(&name, scope);
            store.insert_token(&token.record)?;
            json!({ "id": token.record.id, "name": name, "scope": scope, "token": token.secret })
        }
    };
    if json {
        print_json(&created)?;
    } else {
        let scope = created["scope"].as_str().unwrap_or_default();
        let id = created["id"].as_str().unwrap_or_default();
        println!(
            "Created a {scope} token (id {id}). It is shown only now:\n\n    {}\n",
            created["token"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(data_dir: Option<&Path>, json: bool, remote: &Remote) -> Result<ExitCode> {
    let tokens: Vec<TokenRecord> = match Client::from(remote)? {
        Some(client) => client.json(client.request(Method::GET, "/api/v1/tokens")).await?,
        None => super::open_store(&super::settings(data_dir, None)?)?.tokens()?,
    };
    if json {
        print_json(&tokens)?;
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        println!("No tokens.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<26}  {:<7}  {:<20}  NAME", "ID", "SCOPE", "CREATED (UTC)");
    for token in &tokens {
        let created = token.created.strftime("%Y-%m-%d %H:%M:%S");
        println!("{:<26}  {:<7}  {:<20}  {}", token.id, token.scope.as_str(), created, token.name);
    }
    Ok(ExitCode::SUCCESS)
}

async fn revoke(data_dir: Option<&Path>, id: &str, remote: &Remote) -> Result<ExitCode> {
    match Client::from(remote)? {
        Some(client) => {
            client.send(client.request(Method::DELETE, &format!("/api/v1/tokens/{id}"))).await?;
        }
        None => {
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            if !store.revoke_token(id)? {
                bail!("no token has id `{id}` (`mobius token list` shows them)");
            }
        }
    }
    println!("Revoked token {id}.");
    Ok(ExitCode::SUCCESS)
}
