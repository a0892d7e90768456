//! `mobius flags rollout SET FLAG --variant V --to N --step S --every D` and `mobius flags
//! rollout status|pause|resume|abort`: flag rollouts (see `mobius_features::rollout`). They are
//! driven by the server's controller (it reads the proxy's per-variant SLIs and the SLO alerts),
//! so every one of these commands talks to a server (`--server`, `MOBIUS_SERVER`).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_features::names;
use mobius_features::rollout::{FlagRollout, parse_every};
use reqwest::Method;

use super::flags::encode;
use crate::cli::{FlagsCommand, Remote, RolloutAction};
use crate::client::Client;
use crate::output::{print_json, print_table};

pub async fn run(json: bool, command: FlagsCommand) -> Result<ExitCode> {
    let FlagsCommand::Rollout { action, set, flag, variant, to, step, every, service, reason, remote } = command else {
        bail!("not a rollout command");
    };
    match action {
        None => {
            let (Some(set), Some(flag), Some(variant)) = (set, flag, variant) else {
                bail!("a rollout needs SET, FLAG and --variant");
            };
            names::check_set(&set)?;
            // Checked here so a typo is refused before anything is sent.
            parse_every(&every)?;
            let service = service.unwrap_or_else(|| set.split('.').next().unwrap_or(&set).to_owned());
            let client = server(&remote)?;
            let body = serde_json::json!({
                "variant": variant, "to": to, "step": step, "every": every, "service": service, "reason": reason,
            });
            let request = client.request(Method::POST, &path(&set, &flag, "")).json(&body);
            let rollout: FlagRollout = client.json(request).await?;
            show(json, &[rollout])?;
        }
        Some(RolloutAction::Status { set, flag, remote }) => {
            let client = server(&remote)?;
            let rollouts: Vec<FlagRollout> = match (set, flag) {
                (Some(set), Some(flag)) => {
                    vec![client.json(client.request(Method::GET, &path(&set, &flag, ""))).await?]
                }
                (None, None) => client.json(client.request(Method::GET, "/api/v1/flag-rollouts")).await?,
                _ => bail!("status takes SET and FLAG, or neither for every rollout"),
            };
            show(json, &rollouts)?;
        }
        Some(RolloutAction::Pause { set, flag, remote }) => act(json, &remote, &set, &flag, "pause", None).await?,
        Some(RolloutAction::Resume { set, flag, remote }) => act(json, &remote, &set, &flag, "resume", None).await?,
        Some(RolloutAction::Abort { set, flag, reason, remote }) => {
            act(json, &remote, &set, &flag, "abort", reason).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn act(json: bool, remote: &Remote, set: &str, flag: &str, action: &str, reason: Option<String>) -> Result<()> {
    let client = server(remote)?;
    let query: Vec<(&str, String)> = reason.into_iter().map(|r| ("reason", r)).collect();
    let request = client.request(Method::POST, &path(set, flag, &format!("/{action}"))).query(&query);
    let rollout: FlagRollout = client.json(request).await?;
    show(json, &[rollout])
}

fn server(remote: &Remote) -> Result<Client> {
    Client::from(remote)?.context("flag rollouts are driven by the server: pass --server URL (or set MOBIUS_SERVER)")
}

fn path(set: &str, flag: &str, tail: &str) -> String {
    format!("/api/v1/flags/{set}/flags/{}/rollout{tail}", encode(flag))
}

fn show(json: bool, rollouts: &[FlagRollout]) -> Result<()> {
    if json {
        return print_json(&rollouts);
    }
    let rows: Vec<[String; 5]> = rollouts
        .iter()
        .map(|r| {
            [
                format!("{}/{}", r.set, r.flag),
                r.variant.clone(),
                format!("{}% → {}% (+{}% every {}s)", r.weight, r.to, r.step, r.every_s),
                format!("{:?}", r.phase).to_lowercase(),
                r.why.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(0, ["FLAG", "VARIANT", "SHARE", "PHASE", "WHY"], &rows);
    Ok(())
}
