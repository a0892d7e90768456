//! `mobius token create`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mobius_server::auth;
use mobius_store::TokenScope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::TokenCommand;
use crate::client::Client;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: TokenCommand) -> Result<ExitCode> {
    let TokenCommand::Create { scope, name, remote } = command;
    let created: Value = match Client::from(&remote)? {
        Some(client) => {
            let request = client.request(Method::POST, "/api/v1/tokens").json(&json!({ "scope": scope, "name": name }));
            client.json(request).await?
        }
        None => {
            let scope = TokenScope::parse(&scope).context("unknown scope")?;
            let store = super::open_store(&super::settings(data_dir, None)?)?;
            let token = auth::issue(&name, scope);
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
