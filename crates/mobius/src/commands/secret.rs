//! `mobius secret set|list|rm|rotate-key`: the encrypted secrets a server's runs see (see
//! `mobius_secrets`), in the local data directory's store or, with `--server`, through the
//! API (an `admin` token).
//!
//! Values come from standard input only (a command line is visible to every user of the
//! machine and lands in shell histories) and are never printed. Every change is an event.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::{off_runtime, open_store, settings};
use crate::cli::SecretCommand;
use crate::client::Client;
use crate::output::{print_json, print_table};

/// Who a change made from this command is recorded as.
const WHO: &str = "cli";

pub async fn run(data_dir: Option<&Path>, json: bool, command: SecretCommand) -> Result<ExitCode> {
    let remote = match &command {
        SecretCommand::Set { remote, .. } | SecretCommand::List { remote, .. } | SecretCommand::Rm { remote, .. } => {
            Client::from(remote)?
        }
        SecretCommand::RotateKey => None,
    };
    if let Some(client) = remote {
        return over_http(&client, json, command).await;
    }
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let secrets = settings.secrets(store.clone())?;
    let log = mobius_log::ingest::Ingestor::new(store, settings.rules);
    match command {
        SecretCommand::Set { name, repo, environment, .. } => {
            mobius_secrets::check_name(&name)?;
            let value = read_value()?;
            let environment = environment.unwrap_or_default();
            let event = mobius_app::secrets::set(&secrets, &repo, &environment, &name, &value, WHO)?;
            let events: Vec<_> = event.into_iter().collect();
            off_runtime(|| log.append(&events)).context("cannot record the change")?;
            said_set(json, &name, &repo, &environment)?;
        }
        SecretCommand::List { repo, .. } => {
            let rows = serde_json::to_value(secrets.list(repo.as_deref())?)?;
            show_list(json, rows.as_array().map_or(&[][..], Vec::as_slice))?;
        }
        SecretCommand::Rm { name, repo, environment, .. } => {
            let environment = environment.unwrap_or_default();
            let Some(event) = mobius_app::secrets::remove(&secrets, &repo, &environment, &name, WHO)? else {
                bail!("no secret {name} for {}", scope(&repo, &environment));
            };
            let events: Vec<_> = event.into_iter().collect();
            off_runtime(|| log.append(&events)).context("cannot record the change")?;
            if !json {
                println!("Secret {name} removed from {}", scope(&repo, &environment));
            }
        }
        SecretCommand::RotateKey => {
            if settings.secret_key.is_some() {
                bail!(
                    "the key comes from MOBIUS_SECRET_KEY: rotate-key replaces the key file, so unset it (the \
                     secrets stay sealed with it) or rotate by hand"
                );
            }
            let count = rotate(&settings.data_dir, &secrets)?;
            if json {
                print_json(&json!({ "resealed": count }))?;
            } else {
                println!("Resealed {count} secrets under a new key; restart a running server to use it.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The same commands through `--server`.
async fn over_http(client: &Client, json: bool, command: SecretCommand) -> Result<ExitCode> {
    match command {
        SecretCommand::Set { name, repo, environment, .. } => {
            mobius_secrets::check_name(&name)?;
            let value = read_value()?;
            let environment = environment.unwrap_or_default();
            let request = client
                .request(Method::PUT, &secret_path(&repo, &name)?)
                .query(&[("environment", environment.as_str())])
                .json(&json!({ "value": value }));
            client.send(request).await?;
            said_set(json, &name, &repo, &environment)?;
        }
        SecretCommand::List { repo, .. } => {
            let mut request = client.request(Method::GET, "/api/v1/secrets");
            if let Some(repo) = &repo {
                request = request.query(&[("repository", repo.as_str())]);
            }
            let rows: Vec<Value> = client.json(request).await?;
            show_list(json, &rows)?;
        }
        SecretCommand::Rm { name, repo, environment, .. } => {
            let environment = environment.unwrap_or_default();
            let request = client
                .request(Method::DELETE, &secret_path(&repo, &name)?)
                .query(&[("environment", environment.as_str())]);
            client.send(request).await?;
            if !json {
                println!("Secret {name} removed from {}", scope(&repo, &environment));
            }
        }
        SecretCommand::RotateKey => bail!("rotate-key works on the local data directory only"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `/api/v1/secrets/{owner}/{repo}/{name}`.
fn secret_path(repo: &str, name: &str) -> Result<String> {
    match repo.split_once('/') {
        Some((owner, repo)) if !owner.is_empty() && !repo.is_empty() && !repo.contains('/') => {
            Ok(format!("/api/v1/secrets/{owner}/{repo}/{name}"))
        }
        _ => bail!("--repo must be OWNER/NAME, got `{repo}`"),
    }
}

fn said_set(json: bool, name: &str, repo: &str, environment: &str) -> Result<()> {
    if json {
        print_json(&json!({ "name": name, "repository": repo, "environment": environment }))?;
    } else {
        println!("Secret {name} set for {}", scope(repo, environment));
    }
    Ok(())
}

fn show_list(json: bool, rows: &[Value]) -> Result<()> {
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No secrets. Add one with `mobius secret set NAME --repo OWNER/NAME < value-file`.");
        return Ok(());
    }
    let field = |row: &Value, key: &str| row[key].as_str().unwrap_or_default().to_owned();
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let environment = Some(field(row, "environment")).filter(|e| !e.is_empty()).unwrap_or_else(|| "-".into());
            let when = field(row, "updated").chars().take(19).collect::<String>().replace('T', " ");
            [field(row, "name"), field(row, "repository"), environment, when, field(row, "updated_by")]
        })
        .collect();
    print_table(0, ["NAME", "REPOSITORY", "ENVIRONMENT", "UPDATED (UTC)", "BY"], &table);
    Ok(())
}

/// The value on standard input, without its trailing newline; refused when empty.
fn read_value() -> Result<String> {
    let mut value = String::new();
    std::io::stdin().read_to_string(&mut value).context("cannot read the secret's value from standard input")?;
    let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value).to_owned();
    if value.is_empty() {
        bail!("the secret's value is empty: give it on standard input (`mobius secret set NAME --repo R < file`)");
    }
    Ok(value)
}

/// A new key written beside the old one, the secrets resealed under it in one transaction,
/// then the new key file put in place. A crash before the rename leaves the old key valid (the
/// transaction did not commit) or `secret.key.new` holding the key that opens the store.
fn rotate(data_dir: &Path, secrets: &mobius_secrets::Secrets) -> Result<usize> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = mobius_secrets::SecretKey::generate();
    let path = data_dir.join(mobius_secrets::KEY_FILE);
    let next = data_dir.join(format!("{}.new", mobius_secrets::KEY_FILE));
    let _ = std::fs::remove_file(&next);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&next)
        .with_context(|| format!("cannot write {}", next.display()))?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
    file.sync_all()?;
    let (_, count) = secrets.rotate(&key)?;
    std::fs::rename(&next, &path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(count)
}

fn scope(repository: &str, environment: &str) -> String {
    match environment {
        "" => format!("repository {repository}"),
        environment => format!("environment {environment} of {repository}"),
    }
}
