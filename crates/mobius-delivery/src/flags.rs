//! A release's feature flag files: `flags/*.flagd.json` beside `mobius.yaml`.
//!
//! Each file is a flagd document, checked when the release is made (a bad file refuses the
//! release, and so the deploy, at `flags/<file>:line:col` before anything starts) and loaded
//! when a rollout of the release starts in an environment, as a change by the deployer, into
//! the set named by `mobius_features::names::release_set_name`: the file's `metadata.flagSetId`
//! or its name without `.flagd.json`, then `.<environment>`. The file in the release is the
//! source of truth: a deploy puts it back even over a flag flipped by hand since (GitOps'
//! rule; an unchanged set is no change). The files are loaded one by one, each a change with
//! its own event: should one fail after the check passed (its set moved to another environment
//! meanwhile), the deploy is refused and the files before it stay loaded.
//!
//! Flag sets belong to another bounded context (`mobius-features`): the deployer reaches them
//! through the [`ReleaseFlags`] port, which the application wires, so this crate knows flagd
//! documents (the `mobius-flags` domain crate) but not how sets are stored or announced.

use std::fs;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use mobius_flags::{FlagSet, LoadOptions};

use crate::release::{Release, ReleaseError};
use crate::{DeployError, DeployRequest};

/// Where a release keeps its flag files, and how their names end.
pub const DIR: &str = "flags";
pub const SUFFIX: &str = ".flagd.json";

/// One flag file of a release, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagFile {
    /// Its path in the release (`flags/shop.flagd.json`): what errors name.
    pub path: String,
    /// The name of its set before the environment: `metadata.flagSetId`, else the file name
    /// without [`SUFFIX`].
    pub base: String,
    pub text: String,
}

/// Why a release's flag files could not go into their sets.
#[derive(Debug, thiserror::Error)]
pub enum FlagFilesError {
    /// The file cannot be a set there (its set's name is not valid).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Its set is another's (it belongs to another environment, or changed meanwhile).
    #[error("{path}: {message}")]
    Conflict { path: String, message: String },
    #[error("cannot load {path} into its flag set")]
    Failed {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The future a [`ReleaseFlags`] call returns.
pub type FlagsFuture<'a> = Pin<Box<dyn Future<Output = Result<(), FlagFilesError>> + Send + 'a>>;

/// Where a release's flag files go: the application's flag sets.
pub trait ReleaseFlags: Send + Sync {
    /// Whether every file can be loaded into its set in `environment`; writes nothing.
    fn check<'a>(&'a self, files: &'a [FlagFile], environment: &'a str) -> FlagsFuture<'a>;
    /// Loads each file into its set, as the deploy `to` says.
    fn load<'a>(&'a self, files: &'a [FlagFile], to: Loading<'a>) -> FlagsFuture<'a>;
    /// The set `file` goes into in `environment`, and that set now: what GitOps compares with
    /// what it last loaded.
    fn current(&self, file: &FlagFile, environment: &str) -> SetNow;
}

/// A flag set as it stands, for [`ReleaseFlags::current`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNow {
    /// The set's name (`checkout.production`).
    pub set: String,
    /// Its version; `None` when it has no document (never loaded, or deleted).
    pub version: Option<u64>,
    /// Who made that version (a token's name, `gitops:<repository>`, `rollout:<by>` for a step
    /// of a flag rollout).
    pub updated_by: Option<String>,
}

/// The deploy a release's flag files are loaded for.
#[derive(Debug, Clone, Copy)]
pub struct Loading<'a> {
    pub environment: &'a str,
    /// The deployed service: what judges the files' `rollout` blocks that name no service.
    pub service: &'a str,
    /// Who deploys, and why: what the sets' changes record.
    pub by: &'a str,
    pub reason: &'a str,
    /// The deploy's policy exception (`hotfix`, `security`), which the rollouts it starts share.
    pub exception: Option<&'a str>,
    /// The gate policies decided this change already (a release's flag files: the deploy's
    /// decision covers them); `false` asks them for each file (GitOps loading a deploy
    /// repository's files).
    pub decided: bool,
}

impl crate::Deployer {
    /// Refuses the deploy unless every flag file of the release can go into its set here.
    pub(crate) async fn check_flags(&self, release: &Release, environment: &str) -> Result<(), DeployError> {
        if release.flags.is_empty() {
            return Ok(());
        }
        let port = self.flags_port(release)?;
        Ok(port.check(&release.flags, environment).await?)
    }

    /// Loads the release's flag files into their sets, as a change by the deployer.
    pub(crate) async fn load_flags(&self, release: &Release, request: &DeployRequest) -> Result<(), DeployError> {
        if release.flags.is_empty() {
            return Ok(());
        }
        let port = self.flags_port(release)?;
        let by = request.by.as_deref().unwrap_or("deployer");
        let reason = format!("deploy of {} {} to {}", request.service, release.version, request.environment);
        let exception = request.reason.map(|r| r.to_string());
        let to = Loading {
            environment: &request.environment,
            service: &request.service,
            by,
            reason: &reason,
            exception: exception.as_deref(),
            decided: true,
        };
        Ok(port.load(&release.flags, to).await?)
    }

    /// Where flag files are loaded on this server, if anywhere: GitOps loads a deploy
    /// repository's flag files through the same port as a release's.
    pub fn release_flags(&self) -> Option<Arc<dyn ReleaseFlags>> {
        self.inner.config.flags.clone()
    }

    fn flags_port(&self, release: &Release) -> Result<Arc<dyn ReleaseFlags>, DeployError> {
        self.inner.config.flags.clone().ok_or_else(|| {
            let path = release.flags[0].path.clone();
            FlagFilesError::Invalid { path, message: "this server does not load flag files".into() }.into()
        })
    }
}

impl std::fmt::Debug for dyn ReleaseFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReleaseFlags")
    }
}

/// The release's flag files in name order, each loaded as Mobius loads any flag set; none when
/// it has no `flags/` directory.
pub fn read(release: &Path) -> Result<Vec<FlagFile>, ReleaseError> {
    let dir = release.join(DIR);
    let Ok(entries) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ReleaseError::Io { action: "list", path: dir.clone(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(SUFFIX) && name.len() > SUFFIX.len() && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let text = fs::read_to_string(&path).map_err(|source| ReleaseError::Io { action: "read", path, source })?;
        files.push(parse_file(&format!("{DIR}/{name}"), text)?);
    }
    Ok(files)
}

/// One flag file from its text, checked as Mobius loads any flag set; `path` (which must end
/// in [`SUFFIX`]) is what errors name, and its name gives the set's when the document's
/// `metadata.flagSetId` does not.
pub fn parse_file(path: &str, text: String) -> Result<FlagFile, mobius_flags::LoadError> {
    let set = FlagSet::from_json(path, &text, &LoadOptions::default())?;
    let base = match set.metadata().get("flagSetId").and_then(|id| id.as_str()) {
        Some(id) => id.to_owned(),
        None => {
            let name = path.rsplit('/').next().unwrap_or(path);
            name.strip_suffix(SUFFIX).unwrap_or(name).to_owned()
        }
    };
    Ok(FlagFile { path: path.to_owned(), base, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_files_are_read_in_order_named_by_their_set_id_and_refused_at_their_position() {
        let release = tempfile::tempdir().unwrap();
        assert_eq!(read(release.path()).unwrap(), vec![], "no flags directory: no files");
        let flags = release.path().join(DIR);
        fs::create_dir(&flags).unwrap();
        let flag = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}"#;
        fs::write(flags.join("shop.flagd.json"), format!("{flag}}}")).unwrap();
        fs::write(flags.join("b.flagd.json"), format!("{flag}, \"metadata\": {{\"flagSetId\": \"banner\"}}}}"))
            .unwrap();
        fs::write(flags.join("notes.json"), "not a flag file").unwrap();
        let read = read(release.path()).unwrap();
        let named: Vec<(&str, &str)> = read.iter().map(|f| (f.path.as_str(), f.base.as_str())).collect();
        assert_eq!(named, [("flags/b.flagd.json", "banner"), ("flags/shop.flagd.json", "shop")]);
        fs::write(flags.join("shop.flagd.json"), flag.replace("\"a\"}", "\"z\"}") + "}").unwrap();
        let error = super::read(release.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            "flags/shop.flagd.json:1:78: at /flags/f/defaultVariant: defaultVariant \"z\" is not one of the flag's variants"
        );
    }
}
