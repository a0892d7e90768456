//! `mobius init`, `mobius deploy`, `mobius rollout status|promote|abort|undo`.
//!
//! Deployments are the server's work (it runs the instances and the proxies), so `deploy` and
//! `rollout` always go through the API: `--server`, else the configured listen address.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use mobius_delivery::{DeployRequest, Source};
use mobius_deploy::rollout::{Plan, PlanStep, Rollout};
use reqwest::Method;
use sha2::{Digest, Sha256};

use crate::cli::{DeployArgs, InitArgs, RolloutCommand};
use crate::output::print_json;

pub fn init(args: InitArgs) -> Result<ExitCode> {
    if args.schema {
        print!("{}", mobius_deploy::spec::json_schema());
        return Ok(ExitCode::SUCCESS);
    }
    let path = Path::new("mobius.yaml");
    if path.exists() && !args.force {
        bail!("mobius.yaml already exists; --force overwrites it");
    }
    std::fs::write(path, mobius_deploy::spec::STARTER).context("cannot write mobius.yaml")?;
    println!("Wrote mobius.yaml: edit `service`, `run` and `environments`, then `mobius deploy SERVICE ENV --dir .`");
    Ok(ExitCode::SUCCESS)
}

pub async fn deploy(data_dir: Option<&Path>, json: bool, args: DeployArgs) -> Result<ExitCode> {
    let source = match (args.artifact, args.commit, args.dir) {
        (Some(digest), None, None) => Source::Artifact(digest),
        (None, Some(sha), None) => Source::Commit(sha),
        (None, None, Some(dir)) => Source::Upload(upload(data_dir, &args.remote, &dir).await?),
        _ => bail!("say what to deploy: --artifact DIGEST, --commit SHA or --dir PATH"),
    };
    let request = DeployRequest {
        service: args.service,
        environment: args.environment,
        source,
        version: args.label,
        reason: args.reason,
    };
    let client = super::server_client(data_dir, &args.remote)?;
    let rollout: Rollout = client.json(client.request(Method::POST, "/api/v1/deployments").json(&request)).await?;
    if json {
        print_json(&rollout)?;
    } else {
        println!(
            "Rollout {} of {} {} to {} started ({}); follow it with `mobius rollout status {} {}`",
            rollout.id,
            rollout.service,
            rollout.new.version,
            rollout.environment,
            rollout.plan.name(),
            rollout.service,
            rollout.environment
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Packs `dir` into a tar (links kept as links; a link out of the tree, or a device file, is
/// refused here already) and uploads it by its digest; returns the digest to deploy. The server
/// never reads a path of the client's machine.
async fn upload(data_dir: Option<&Path>, remote: &crate::cli::Remote, dir: &Path) -> Result<String> {
    if !dir.join("mobius.yaml").is_file() {
        bail!("{} has no mobius.yaml (`mobius init` writes one)", dir.display());
    }
    let (dir, tar) = (dir.to_owned(), tempfile::tempfile().context("cannot create a temporary file")?);
    let (tar, digest) = mobius_log::blocking::spawn(move || -> Result<(std::fs::File, String)> {
        let mut hashing = HashingWriter { inner: std::io::BufWriter::new(tar), hasher: Sha256::new() };
        mobius_delivery::archive::pack(&dir, &mut hashing).with_context(|| format!("cannot pack {}", dir.display()))?;
        let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
        let mut tar = hashing.inner.into_inner().context("cannot write the tar")?;
        std::io::Seek::rewind(&mut tar).context("cannot read the tar back")?;
        Ok((tar, digest))
    })
    .await?;
    let client = super::server_client(data_dir, remote)?;
    let body = reqwest::Body::from(tokio::fs::File::from_std(tar));
    let request = client
        .request(Method::PUT, &format!("/api/v1/uploads/{digest}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
        .body(body);
    client.send(request).await.context("cannot upload the directory")?;
    Ok(digest)
}

/// A writer that hashes what goes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub async fn rollout(data_dir: Option<&Path>, json: bool, command: RolloutCommand) -> Result<ExitCode> {
    let (method, service, environment, action, remote) = match command {
        RolloutCommand::Status { service, environment, remote } => (Method::GET, service, environment, None, remote),
        RolloutCommand::Promote { service, environment, remote } => {
            (Method::POST, service, environment, Some("promote"), remote)
        }
        RolloutCommand::Abort { service, environment, remote } => {
            (Method::POST, service, environment, Some("abort"), remote)
        }
        RolloutCommand::Undo { service, environment, remote } => {
            (Method::POST, service, environment, Some("undo"), remote)
        }
    };
    let client = super::server_client(data_dir, &remote)?;
    let mut path = format!("/api/v1/rollouts/{service}/{environment}");
    if let Some(action) = action {
        path.push('/');
        path.push_str(action);
    }
    let rollout: Rollout = client.json(client.request(method, &path)).await?;
    if json {
        print_json(&rollout)?;
    } else {
        print_status(&rollout);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(r: &Rollout) {
    let from = r.stable.as_ref().map(|s| format!("{} → ", s.version)).unwrap_or_default();
    println!(
        "rollout {}: {} {from}{} in {} ({}) — {}",
        r.id,
        r.service,
        r.new.version,
        r.environment,
        r.plan.name(),
        r.phase.as_str()
    );
    println!("  traffic to {}: {}%", r.new.version, r.weight);
    if let Plan::Canary { steps } = &r.plan {
        let marks: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let text = match step {
                    PlanStep::SetWeight(w) => format!("weight {w}%"),
                    PlanStep::Pause(Some(ms)) => format!("pause {}s", ms / 1000),
                    PlanStep::Pause(None) => "pause".to_owned(),
                    PlanStep::Analysis(_) => "analysis".to_owned(),
                };
                let mark = if i < r.step {
                    "✓"
                } else if i == r.step && !r.phase.is_final() {
                    "▶"
                } else {
                    " "
                };
                format!("{mark} {text}")
            })
            .collect();
        println!("  steps: {}", marks.join("  "));
    }
    if !r.message.is_empty() {
        println!("  {}", r.message);
    }
    if let Some(m) = r.measurements.last() {
        let checks: Vec<String> = m
            .checks
            .iter()
            .map(|c| {
                let value = c.value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
                format!("{} {value}{}", c.name, if c.passed { "" } else { " ✗" })
            })
            .collect();
        println!("  last measurement ({:?}): {}", m.verdict, checks.join(", "));
    }
    for entry in r.history.iter().rev().take(5).collect::<Vec<_>>().into_iter().rev() {
        println!("  {}  {}", entry.at.strftime("%H:%M:%S"), entry.message);
    }
}
