//! `mobius flags load|list|show|set-state|set-default|delete`: feature flag sets (see
//! `mobius_features`), in the local data directory's store or, with `--server`, through the
//! API (reading with any token, changing with a `deploy` token). A file is checked here first,
//! so a bad one is refused at `FILE:line:col` before anything is sent. `mobius flags rollout`
//! is [`super::flag_rollouts`]'s.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_features::{Actor, FlagSets, Loaded, Outcome, Put, names};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{open_store, settings};
use crate::cli::{FlagsCommand, OnOff};
use crate::client::Client;
use crate::output::{print_json, print_table};

/// Who a change made from this command on the local store is recorded as.
const WHO: &str = "cli";

/// A set as listed, and as a change answers (the API's shape).
#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    set: String,
    version: u64,
    environment: Option<String>,
    flags: usize,
    updated: jiff::Timestamp,
    updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    /// What the gate policies warned about while allowing the change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl Summary {
    fn of(loaded: &Loaded, changed: Option<bool>) -> Summary {
        Summary {
            set: loaded.name.clone(),
            version: loaded.version,
            environment: loaded.environment.clone(),
            flags: loaded.set.len(),
            updated: loaded.updated,
            updated_by: loaded.updated_by.clone(),
            changed,
            warnings: Vec::new(),
        }
    }
}

pub async fn run(data_dir: Option<&Path>, json: bool, command: FlagsCommand) -> Result<ExitCode> {
    let remote = match &command {
        FlagsCommand::Load { remote, .. }
        | FlagsCommand::List { remote }
        | FlagsCommand::Show { remote, .. }
        | FlagsCommand::SetState { remote, .. }
        | FlagsCommand::SetDefault { remote, .. }
        | FlagsCommand::Delete { remote, .. } => Client::from(remote)?,
        FlagsCommand::Rollout { .. } => return super::flag_rollouts::run(json, command).await,
    };
    if let FlagsCommand::Load { set, .. }
    | FlagsCommand::Show { set, .. }
    | FlagsCommand::SetState { set, .. }
    | FlagsCommand::SetDefault { set, .. }
    | FlagsCommand::Delete { set, .. } = &command
    {
        names::check_set(set)?;
    }
    if let Some(client) = remote {
        return over_http(&client, json, command).await;
    }
    let settings = settings(data_dir, None)?;
    let store = open_store(&settings)?;
    let log = mobius_log::ingest::Ingestor::new(store.clone(), settings.rules);
    let flags = FlagSets::new(store.clone(), log, mobius_log::Clock::System);
    // The same gate policies a server on this data directory applies (`policy_dir`).
    let policies = std::sync::Arc::new(mobius_app::gate::PolicyGate::new(store, settings.policy_dir.clone()));
    flags.set_gate(std::sync::Arc::new(mobius_app::flag_gate::FlagPolicies::new(policies)));
    flags.refresh().await.context("cannot read the flag sets")?;
    let actor = |reason: Option<String>| Actor { by: WHO.to_owned(), reason };
    match command {
        FlagsCommand::Load { file, set, environment, reason, if_version, .. } => {
            let document = read(&file)?;
            let source_name = Some(file.display().to_string());
            let blocks = !mobius_features::plan::blocks(
                &file.display().to_string(),
                &document,
                &mobius_features::validate(&file.display().to_string(), &document)?,
            )?
            .is_empty();
            let put = Put { set, document, environment, expected: if_version, source_name };
            said_changed(json, &changed(flags.put(put, actor(reason)).await?)?)?;
            if blocks {
                // The controller is the server's: only a load through it starts them.
                eprintln!(
                    "note: the file's `rollout` blocks start when it is loaded through a server (--server) or shipped in a release"
                );
            }
        }
        FlagsCommand::List { .. } => {
            show_list(json, &flags.list().iter().map(|l| Summary::of(l, None)).collect::<Vec<_>>())?;
        }
        FlagsCommand::Show { set, flag, .. } => {
            let loaded = flags.current(&set).with_context(|| format!("there is no flag set `{set}`"))?;
            show(json, &set, &loaded.document, flag.as_deref())?;
        }
        FlagsCommand::SetState { set, flag, state, reason, .. } => {
            let outcome = flags.set_state(&set, &flag, state == OnOff::On, None, actor(reason)).await?;
            said_changed(json, &changed(outcome)?)?;
        }
        FlagsCommand::SetDefault { set, flag, variant, reason, .. } => {
            let outcome = flags.set_default(&set, &flag, &variant, None, actor(reason)).await?;
            said_changed(json, &changed(outcome)?)?;
        }
        FlagsCommand::Delete { set, reason, .. } => {
            flags.delete(&set, None, actor(reason)).await?;
            said_deleted(json, &set)?;
        }
        FlagsCommand::Rollout { .. } => unreachable!("answered above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The same commands through `--server`.
async fn over_http(client: &Client, json: bool, command: FlagsCommand) -> Result<ExitCode> {
    let reason_of = |reason: &Option<String>| reason.iter().map(|r| ("reason", r.clone())).collect::<Vec<_>>();
    match command {
        FlagsCommand::Load { file, set, environment, reason, if_version, .. } => {
            let document = read(&file)?;
            // Refused here at the file's own position, before anything is sent.
            mobius_features::validate(&file.display().to_string(), &document)?;
            let mut query = reason_of(&reason);
            query.extend(environment.map(|e| ("environment", e)));
            let mut request = client.request(Method::PUT, &format!("/api/v1/flags/{set}")).query(&query);
            if let Some(version) = if_version {
                request = request.header(reqwest::header::IF_MATCH, format!("\"{version}\""));
            }
            let request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(document);
            let answer: Value = client.json(request).await?;
            if json {
                return print_json(&answer).map(|()| ExitCode::SUCCESS);
            }
            said_changed(false, &serde_json::from_value(answer.clone()).context("an unexpected answer")?)?;
            said_rollouts(&answer);
        }
        FlagsCommand::List { .. } => {
            let rows: Vec<Summary> = client.all(client.request(Method::GET, "/api/v1/flags"), None).await?;
            show_list(json, &rows)?;
        }
        FlagsCommand::Show { set, flag, .. } => {
            let document = client.text(client.request(Method::GET, &format!("/api/v1/flags/{set}"))).await?;
            show(json, &set, &document, flag.as_deref())?;
        }
        FlagsCommand::SetState { set, flag, state, reason, .. } => {
            let state = if state == OnOff::On { "ENABLED" } else { "DISABLED" };
            let path = format!("/api/v1/flags/{set}/flags/{}/state", encode(&flag));
            let request = client.request(Method::PUT, &path).query(&reason_of(&reason));
            said_changed(json, &client.json(request.json(&serde_json::json!({ "state": state }))).await?)?;
        }
        FlagsCommand::SetDefault { set, flag, variant, reason, .. } => {
            let path = format!("/api/v1/flags/{set}/flags/{}/default", encode(&flag));
            let request = client.request(Method::PUT, &path).query(&reason_of(&reason));
            said_changed(json, &client.json(request.json(&serde_json::json!({ "variant": variant }))).await?)?;
        }
        FlagsCommand::Rollout { .. } => unreachable!("answered by `flag_rollouts`"),
        FlagsCommand::Delete { set, reason, .. } => {
            let path = format!("/api/v1/flags/{set}");
            client.send(client.request(Method::DELETE, &path).query(&reason_of(&reason))).await?;
            said_deleted(json, &set)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A flag key as one path segment: flagd's keys may hold any character.
pub(super) fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn changed(outcome: Outcome) -> Result<Summary> {
    let loaded = outcome.loaded.context("the set is gone")?;
    Ok(Summary { warnings: outcome.warnings, ..Summary::of(&loaded, Some(outcome.changed)) })
}

fn said_changed(json: bool, summary: &Summary) -> Result<()> {
    if json {
        return print_json(summary);
    }
    for warning in &summary.warnings {
        eprintln!("warning: gate policy: {warning}");
    }
    match summary.changed {
        Some(false) => println!("Flag set {} is unchanged (version {})", summary.set, summary.version),
        _ => println!(
            "Flag set {} is now version {} ({} flag{})",
            summary.set,
            summary.version,
            summary.flags,
            if summary.flags == 1 { "" } else { "s" }
        ),
    }
    Ok(())
}

/// What the `rollout` blocks of a loaded document did, as the server answered.
fn said_rollouts(answer: &Value) {
    for block in answer["rollouts"].as_array().into_iter().flatten() {
        let flag = block["flag"].as_str().unwrap_or_default();
        match (block["rollout"].as_str().unwrap_or_default(), block["weight"].as_u64()) {
            ("started", Some(weight)) => println!("Rollout of {flag} started at {weight}%"),
            ("running", Some(weight)) => println!("Rollout of {flag} goes on at {weight}%"),
            ("released", _) => println!("Rollout of {flag} is complete"),
            (_, _) => println!("Rollout of {flag} not started: {}", block["message"].as_str().unwrap_or_default()),
        }
    }
}

fn said_deleted(json: bool, set: &str) -> Result<()> {
    if json {
        return print_json(&serde_json::json!({ "set": set, "deleted": true }));
    }
    println!("Flag set {set} is deleted");
    Ok(())
}

fn show_list(json: bool, rows: &[Summary]) -> Result<()> {
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        println!("No flag sets. Load one with `mobius flags load FILE --set NAME`.");
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let when = r.updated.to_string().chars().take(19).collect::<String>().replace('T', " ");
            let environment = r.environment.clone().unwrap_or_else(|| "-".into());
            [r.set.clone(), r.version.to_string(), environment, r.flags.to_string(), when, r.updated_by.clone()]
        })
        .collect();
    print_table(0, ["SET", "VERSION", "ENVIRONMENT", "FLAGS", "UPDATED (UTC)", "BY"], &table);
    Ok(())
}

/// The whole document as stored, or one flag of it.
fn show(json: bool, set: &str, document: &str, flag: Option<&str>) -> Result<()> {
    let Some(key) = flag else {
        println!("{}", document.trim_end());
        return Ok(());
    };
    let parsed: Value = serde_json::from_str(document).context("the stored document is not JSON")?;
    let Some(definition) = parsed.get("flags").and_then(|f| f.get(key)) else {
        bail!("flag set `{set}` has no flag `{key}`");
    };
    if json {
        return print_json(definition);
    }
    let text = |field: &str| definition.get(field).and_then(Value::as_str).unwrap_or("-").to_owned();
    println!("{key} in {set}: {}", text("state"));
    println!("  default variant: {}", text("defaultVariant"));
    if let Some(variants) = definition.get("variants").and_then(Value::as_object) {
        for (name, value) in variants {
            println!("  variant {name} = {value}");
        }
    }
    let targeting = definition.get("targeting").is_some_and(|t| t.as_object().is_none_or(|o| !o.is_empty()));
    println!("  targeting: {}", if targeting { "yes" } else { "none" });
    Ok(())
}
