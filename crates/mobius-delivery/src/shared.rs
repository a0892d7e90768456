//! Releases shared through the store, so a replica on another machine can run what a deploy
//! made elsewhere.
//!
//! With replicas, the replica a deploy reaches makes the release (from its artifact or upload)
//! and hands the change to the one driving the environment, which may be on another machine;
//! and when a replica dies, the next holder restarts the environment's instances from the
//! release the rollout names. So every release a replica makes is packed and kept in the
//! store (the transfer `release:<hex>`, never released: releases are as durable as the
//! rollouts naming them), and a replica that lacks a release's directory makes it from there.
//! One server (no leases) keeps its releases on its disk only, as before.

use std::path::{Path, PathBuf};

use crate::release::{self, Release, ReleaseError};
use crate::{DeployError, Deployer, archive};

/// The file a release's transfer names its tree.
const TREE: &str = "tree";

fn transfer(hex: &str) -> String {
    format!("release:{hex}")
}

/// The content digest a release directory is named by (`<data>/releases/<hex>`).
fn hex_of(dir: &Path) -> Option<&str> {
    let name = dir.file_name()?.to_str()?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then_some(name)
}

impl Deployer {
    /// With replicas, puts the release's tree into the store once (a marker beside the
    /// directory remembers it was put); nothing on one server.
    pub(crate) async fn share(&self, release: &Release) -> Result<(), DeployError> {
        if self.inner.config.leases.is_none() {
            return Ok(());
        }
        let Some(hex) = hex_of(&release.dir).map(str::to_owned) else { return Ok(()) };
        let (dir, store) = (release.dir.clone(), self.inner.store.clone());
        mobius_log::blocking::spawn(move || -> Result<(), DeployError> {
            let marker = dir.with_file_name(format!(".{hex}.shared"));
            if marker.exists() {
                return Ok(());
            }
            let mut tar = Vec::new();
            archive::pack(&dir, &mut tar).map_err(ReleaseError::from)?;
            let digest = mobius_pipelines::store_sync::digest_of(&tar);
            store.put_transfer_file(&transfer(&hex), TREE, &digest, &tar)?;
            std::fs::write(&marker, b"").map_err(|source| ReleaseError::Io {
                action: "mark as shared",
                path: marker.clone(),
                source,
            })?;
            Ok(())
        })
        .await
    }

    /// The directory of the release a rollout or a change names by `dir` (a path on the
    /// replica that made it): `dir` when it is here, else this replica's directory for the
    /// same content, made from the store when it is missing.
    pub(crate) async fn local_release(&self, dir: &Path) -> Result<PathBuf, DeployError> {
        if dir.join("mobius.yaml").is_file() {
            return Ok(dir.to_owned());
        }
        let Some(hex) = hex_of(dir).map(str::to_owned) else { return Ok(dir.to_owned()) };
        let (data_dir, store) = (self.inner.config.data_dir.clone(), self.inner.store.clone());
        let named = dir.display().to_string();
        mobius_log::blocking::spawn(move || -> Result<PathBuf, DeployError> {
            let here = data_dir.join("releases").join(&hex);
            if here.join("mobius.yaml").is_file() {
                return Ok(here);
            }
            let tar = store.transfer_file(&transfer(&hex), TREE)?.ok_or(ReleaseError::NotShared { release: named })?;
            Ok(release::from_tar(&data_dir, &hex, &tar)?)
        })
        .await
    }
}
