//! `mobius secret set|list|rm|rotate-key`: the encrypted secrets in the data directory's
//! store, which the server's runs see (see `mobius_secrets`).
//!
//! Values come from standard input only (a command line is visible to every user of the
//! machine and lands in shell histories) and are never printed. Local only for now: the
//! commands write the store a server on the same data directory reads at each run.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{open_store, settings};
use crate::cli::SecretCommand;
use crate::output::{print_json, print_table};

/// Who a change made from this command is recorded as.
const WHO: &str = "cli";

pub fn run(data_dir: Option<&Path>, json: bool, command: SecretCommand) -> Result<ExitCode> {
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let secrets = settings.secrets(store)?;
    match command {
        SecretCommand::Set { name, repo, environment } => {
            mobius_secrets::check_name(&name)?;
            let value = read_value()?;
            let environment = environment.unwrap_or_default();
            secrets.set(&repo, &environment, &name, &value, WHO)?;
            if json {
                print_json(&json!({ "name": name, "repository": repo, "environment": environment }))?;
            } else {
                println!("Secret {name} set for {}", scope(&repo, &environment));
            }
        }
        SecretCommand::List { repo } => {
            let listed = secrets.list(repo.as_deref())?;
            if json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|s| {
                        json!({
                            "name": s.name,
                            "repository": s.repository,
                            "environment": s.environment,
                            "updated": s.updated.to_string(),
                            "updated_by": s.updated_by,
                        })
                    })
                    .collect();
                print_json(&rows)?;
            } else if listed.is_empty() {
                println!("No secrets. Add one with `mobius secret set NAME --repo OWNER/NAME < value-file`.");
            } else {
                let rows: Vec<[String; 5]> = listed
                    .iter()
                    .map(|s| {
                        let environment = if s.environment.is_empty() { "-".to_owned() } else { s.environment.clone() };
                        let when = s.updated.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
                        [s.name.clone(), s.repository.clone(), environment, when, s.updated_by.clone()]
                    })
                    .collect();
                print_table(0, ["NAME", "REPOSITORY", "ENVIRONMENT", "UPDATED (UTC)", "BY"], &rows);
            }
        }
        SecretCommand::Rm { name, repo, environment } => {
            let environment = environment.unwrap_or_default();
            if !secrets.remove(&repo, &environment, &name)? {
                bail!("no secret {name} for {}", scope(&repo, &environment));
            }
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
