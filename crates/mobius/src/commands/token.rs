//! `mobius token create | list | revoke`: scoped API tokens, in the local data directory or
//! through `--server` (with an admin token).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::backend::Backend;
use crate::cli::TokenCommand;
use crate::output::print_json;

pub async fn run(data_dir: Option<&Path>, json: bool, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create { scope, name, set, remote } => {
            let created =
                Backend::choose(data_dir, &remote, None)?.tokens().create(&scope, &name, set.as_deref()).await?;
            if json {
                print_json(&created)?;
            } else {
                let of_set = created.set.as_deref().map(|set| format!(" for flag set {set}")).unwrap_or_default();
                println!(
                    "Created a {} token{of_set} (id {}). It is shown only now:\n\n    {}\n",
                    created.scope.as_str(),
                    created.id,
                    created.token
                );
            }
        }
        TokenCommand::List { remote } => {
            let tokens = Backend::choose(data_dir, &remote, None)?.tokens().list().await?;
            if json {
                print_json(&tokens)?;
            } else if tokens.is_empty() {
                println!("No tokens.");
            } else {
                println!("{:<26}  {:<7}  {:<20}  NAME", "ID", "SCOPE", "CREATED (UTC)");
                for token in &tokens {
                    let created = token.created.strftime("%Y-%m-%d %H:%M:%S");
                    let set = token.flag_set.as_deref().map(|set| format!(" (flag set {set})")).unwrap_or_default();
                    println!("{:<26}  {:<7}  {:<20}  {}{set}", token.id, token.scope.as_str(), created, token.name);
                }
            }
        }
        TokenCommand::Revoke { id, remote } => {
            Backend::choose(data_dir, &remote, None)?.tokens().revoke(&id).await?;
            println!("Revoked token {id}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
