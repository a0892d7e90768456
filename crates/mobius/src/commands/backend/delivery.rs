//! Delivery, the server's work alone (it runs the instances and the proxies): uploads,
//! deployments, rollouts and the faults injected into proxies.

use std::path::Path;

use anyhow::{Context, Result, bail};
use mobius_delivery::DeployRequest;
use mobius_deploy::rollout::Rollout;
use mobius_proxy::chaos::Fault;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Remote;

/// What `mobius rollout` does to the current rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutAction {
    /// Go on from a pause or a manual approval.
    Promote,
    /// All traffic to stable now.
    Abort,
    /// Back to the previous version.
    Undo,
}

impl RolloutAction {
    fn as_str(self) -> &'static str {
        match self {
            RolloutAction::Promote => "promote",
            RolloutAction::Abort => "abort",
            RolloutAction::Undo => "undo",
        }
    }
}

impl Remote {
    /// Packs `dir` into a tar (links kept as links; a link out of the tree, or a device file,
    /// is refused here already) and uploads it by its digest; answers the digest to deploy. The
    /// server never reads a path of the client's machine.
    pub async fn upload(&self, dir: &Path) -> Result<String> {
        if !dir.join("mobius.yaml").is_file() {
            bail!("{} has no mobius.yaml (`mobius init` writes one)", dir.display());
        }
        let (dir, tar) = (dir.to_owned(), tempfile::tempfile().context("cannot create a temporary file")?);
        let (tar, digest) = mobius_log::blocking::spawn(move || -> Result<(std::fs::File, String)> {
            let mut hashing = HashingWriter { inner: std::io::BufWriter::new(tar), hasher: Sha256::new() };
            mobius_delivery::archive::pack(&dir, &mut hashing)
                .with_context(|| format!("cannot pack {}", dir.display()))?;
            let digest = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
            let mut tar = hashing.inner.into_inner().context("cannot write the tar")?;
            std::io::Seek::rewind(&mut tar).context("cannot read the tar back")?;
            Ok((tar, digest))
        })
        .await?;
        let body = reqwest::Body::from(tokio::fs::File::from_std(tar));
        let request = self
            .client
            .request(Method::PUT, &format!("/api/v1/uploads/{digest}"))
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body);
        self.client.send(request).await.context("cannot upload the directory")?;
        Ok(digest)
    }

    /// Starts a rollout.
    pub async fn deploy(&self, request: &DeployRequest) -> Result<Rollout> {
        self.client.json(self.client.request(Method::POST, "/api/v1/deployments").json(request)).await
    }

    /// The latest rollout of `service` to `environment`.
    pub async fn rollout(&self, service: &str, environment: &str) -> Result<Rollout> {
        self.client.json(self.client.request(Method::GET, &format!("/api/v1/rollouts/{service}/{environment}"))).await
    }

    /// Acts on the current rollout of `service` to `environment`; answers it as it is then.
    pub async fn change_rollout(&self, service: &str, environment: &str, action: RolloutAction) -> Result<Rollout> {
        let path = format!("/api/v1/rollouts/{service}/{environment}/{}", action.as_str());
        self.client.json(self.client.request(Method::POST, &path)).await
    }

    /// Injects `fault` into the proxy of `service` in `environment`; `counted` keeps its
    /// failures in error budgets. Answers the environment's faults.
    pub async fn inject_fault(&self, service: &str, environment: &str, fault: &Fault, counted: bool) -> Result<Value> {
        let body = json!({ "fault": fault, "counted": counted });
        let request = self.client.request(Method::POST, &format!("/api/v1/chaos/{service}/{environment}"));
        self.client.json(request.json(&body)).await
    }

    /// The active faults of every environment: `{"service", "environment", "faults"}` each.
    pub async fn faults(&self) -> Result<Vec<Value>> {
        self.client.all(self.client.request(Method::GET, "/api/v1/chaos"), None).await
    }

    /// Removes every fault of `service` in `environment`.
    pub async fn clear_faults(&self, service: &str, environment: &str) -> Result<()> {
        self.client.send(self.client.request(Method::DELETE, &format!("/api/v1/chaos/{service}/{environment}"))).await
    }
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
