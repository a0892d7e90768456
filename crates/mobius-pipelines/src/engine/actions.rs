//! What the engine does natively for `uses:` steps, and the workspace copy.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::artifacts::{self, IfNoFilesFound, JobFiles, StoreError};
use crate::cache;

/// What a `uses:` step amounts to here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Native {
    /// `actions/checkout`: the workspace was already copied when the job started.
    Checkout,
    /// A setup action: succeeds when the tool is on `PATH`, since nothing is installed.
    RequireTool(&'static str),
    /// `actions/upload-artifact`.
    Upload,
    /// `actions/download-artifact`.
    Download,
    /// `actions/cache`: restore now, save after the job.
    Cache,
    /// `mobius/deploy`: a deployment through [`super::Deployments`], waited for.
    Deploy,
    /// `mobius/policy-check`: fails when the error-budget policy would refuse a deploy.
    PolicyCheck,
    /// `mobius/secret-scan`: the workspace, or a push's added lines, for secrets.
    SecretScan,
    /// `mobius/dependency-audit`: the workspace's lockfiles against an OSV database.
    DependencyAudit,
    /// Cannot run here; the message says why (a Docker action).
    NotImplemented(String),
    /// Not built in: an action from a repository or the workspace, run from its `action.yml`.
    Other,
}

/// The action's name without its `@ref`.
pub(super) fn action_name(reference: &str) -> &str {
    reference.split('@').next().unwrap_or(reference)
}

/// How the engine handles `uses: reference`. Owners and repositories are matched without
/// regard to case, as GitHub (and `mobius lint`) do: `Actions/Checkout@v4` is the checkout.
pub(super) fn native(reference: &str) -> Native {
    let name = action_name(reference);
    match name.to_ascii_lowercase().as_str() {
        "actions/checkout" => Native::Checkout,
        "actions/upload-artifact" => Native::Upload,
        "actions/download-artifact" => Native::Download,
        "actions/cache" => Native::Cache,
        "mobius/deploy" => Native::Deploy,
        "mobius/policy-check" => Native::PolicyCheck,
        "mobius/secret-scan" => Native::SecretScan,
        "mobius/dependency-audit" => Native::DependencyAudit,
        "actions/setup-python" => Native::RequireTool("python3"),
        "dtolnay/rust-toolchain" => Native::RequireTool("cargo"),
        "actions/setup-node" => Native::RequireTool("node"),
        "actions/setup-go" => Native::RequireTool("go"),
        "actions/setup-java" => Native::RequireTool("java"),
        _ => match crate::workflow::unsupported(reference) {
            Some(why) => Native::NotImplemented(why),
            None => Native::Other,
        },
    }
}

/// Host variables a tool needs once `HOME` is the job's own: rustup and cargo find their
/// toolchains through `RUSTUP_HOME` and `CARGO_HOME`, which default to the real home. A setup
/// action exports them, as GitHub's setup actions export their tool's variables.
pub(super) fn tool_env(tool: &str) -> Vec<(String, String)> {
    let homes: &[(&str, &str)] = match tool {
        "cargo" => &[("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")],
        _ => &[],
    };
    let real_home = std::env::var_os("HOME").map(PathBuf::from);
    homes
        .iter()
        .filter_map(|(name, default)| {
            let value = std::env::var_os(name)
                .map(PathBuf::from)
                .or_else(|| real_home.as_ref().map(|h| h.join(default)))
                .filter(|p| p.is_dir())?;
            Some(((*name).to_owned(), value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Why the rendered `with:` inputs of a native action (`mobius/deploy`, `mobius/policy-check`,
/// the artifact and cache actions) do not say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum InputError {
    /// An input the action does not take.
    #[error("unknown input `{input}` (inputs: {})", known.join(", "))]
    Unknown { input: String, known: &'static [&'static str] },
    /// A required input is missing or blank.
    #[error("input `{input}` is required")]
    Missing { input: &'static str },
    /// Two inputs that are both required are not both given.
    #[error("inputs `{first}` and `{second}` are required")]
    MissingPair { first: &'static str, second: &'static str },
    /// `artifact` is blank: usually an output that a needed job did not pass on.
    #[error(
        "input `artifact` is empty: give the digest of an uploaded artifact, e.g. \
         `${{{{ steps.<upload step id>.outputs.artifact-digest }}}}` (through the build job's outputs)"
    )]
    EmptyArtifact,
    /// `artifact` is not a digest.
    #[error("input `artifact` must be an artifact digest `sha256:<64 hex digits>`, not `{artifact}`")]
    NotADigest { artifact: String },
    /// `reason` is not one of the policy's exceptions.
    #[error("input `reason` must be `hotfix` or `security`, not `{reason}`")]
    UnknownReason { reason: String },
}

/// What the store actions of one job instance need, and the caches to save after it.
pub(super) struct StoreCtx {
    pub store: PathBuf,
    pub run_id: u64,
    /// The job's workspace and home, as the actions may reach them.
    pub files: JobFiles,
    pub scope: cache::Scope,
    /// `(key, paths)` of each `actions/cache` step without an exact hit: GitHub's post step
    /// saves them once the job has succeeded.
    pub pending_saves: Vec<(String, String)>,
}

/// Step outputs and log lines of a store action, or why it failed.
pub(super) type ActionResult = Result<(BTreeMap<String, String>, Vec<String>), ActionError>;

/// Why an artifact or cache action failed; the step's log shows it after `<action> failed: `.
#[derive(Debug, thiserror::Error)]
pub(super) enum ActionError {
    /// Its inputs do not say what to store or restore.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The artifact or cache store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `uses:` step that is not an artifact or cache action was routed here: a bug.
    #[error("{action:?} is not a store action")]
    NotAStoreAction { action: Native },
}

fn input<'a>(with: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    with.get(name).map(|v| v.trim()).unwrap_or("")
}

/// Runs an artifact or cache action with its rendered `with:` inputs.
pub(super) fn run_store_action(kind: &Native, with: &BTreeMap<String, String>, ctx: &mut StoreCtx) -> ActionResult {
    let mut outputs = BTreeMap::new();
    let mut log = Vec::new();
    match kind {
        Native::Upload => {
            let name = match input(with, "name") {
                "" => "artifact",
                name => name,
            };
            let paths = input(with, "path");
            if paths.is_empty() {
                return Err(InputError::Missing { input: "path" }.into());
            }
            let policy = IfNoFilesFound::parse(input(with, "if-no-files-found"))?;
            match artifacts::upload(&ctx.store, name, paths, &ctx.files, ctx.run_id, policy) {
                Ok(Some(record)) => {
                    log.push(format!(
                        "uploaded artifact `{name}`: {} file(s), digest {}",
                        record.files.len(),
                        record.digest
                    ));
                    outputs.insert("artifact-id".into(), record.digest.clone());
                    outputs.insert("artifact-digest".into(), record.digest);
                }
                Ok(None) => {
                    if policy == IfNoFilesFound::Warn {
                        log.push(format!(
                            "warning: no files were found with the provided path: {paths}; no artifact uploaded"
                        ));
                    }
                }
                Err(why) => return Err(why.into()),
            }
        }
        Native::Download => {
            let name = Some(input(with, "name")).filter(|n| !n.is_empty());
            let dest = match input(with, "path") {
                "" => ctx.files.workspace.clone(),
                path => artifacts::absolute_pattern(path, &ctx.files.workspace, &ctx.files.home),
            };
            let records = artifacts::download(&ctx.store, name, &dest, ctx.run_id, &ctx.files)?;
            for record in &records {
                log.push(format!("downloaded artifact `{}` ({}) to {}", record.name, record.digest, dest.display()));
            }
            outputs.insert("download-path".into(), dest.display().to_string());
        }
        Native::Cache => {
            let key = input(with, "key");
            let paths = input(with, "path");
            if key.is_empty() || paths.is_empty() {
                return Err(InputError::MissingPair { first: "key", second: "path" }.into());
            }
            let restore_keys: Vec<String> = input(with, "restore-keys")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let restored = cache::restore(&ctx.store, &ctx.scope, key, &restore_keys, &ctx.files)?;
            let exact = restored.as_ref().is_some_and(|r| r.exact);
            match &restored {
                Some(r) => {
                    log.push(format!("cache restored from key: {}", r.key));
                    outputs.insert("cache-matched-key".into(), r.key.clone());
                }
                None => log.push(format!("cache not found for input keys: {key}")),
            }
            outputs.insert("cache-hit".into(), exact.to_string());
            if !exact {
                ctx.pending_saves.push((key.to_owned(), paths.to_owned()));
            }
        }
        other => return Err(ActionError::NotAStoreAction { action: other.clone() }),
    }
    Ok((outputs, log))
}

/// Whether an executable file named `tool` is in one of `dirs`.
pub(super) fn on_path(tool: &str, dirs: &[PathBuf]) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter()
        .any(|dir| fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Copies `from` into `to` recursively, leaving out `.git` (the job must not push with the
/// user's credentials or see other branches) and `target/` (build output, often huge). Symbolic
/// links are recreated as links, not followed, so a link cannot pull in files from outside.
pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" || name == "target" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
        } else if kind.is_dir() {
            copy_tree(&source, &dest)?;
        } else if kind.is_file() {
            fs::copy(&source, &dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_actions_export_only_existing_tool_homes() {
        assert!(tool_env("node").is_empty());
        for (name, value) in tool_env("cargo") {
            assert!(["RUSTUP_HOME", "CARGO_HOME"].contains(&name.as_str()), "{name}");
            assert!(Path::new(&value).is_dir(), "{value}");
        }
    }

    #[test]
    fn maps_actions() {
        assert_eq!(native("actions/checkout@v4"), Native::Checkout);
        assert_eq!(native("dtolnay/rust-toolchain@stable"), Native::RequireTool("cargo"));
        assert_eq!(native("actions/cache@v4"), Native::Cache);
        assert_eq!(native("Mobius/Deploy@v1"), Native::Deploy);
        assert_eq!(native("mobius/policy-check@v1"), Native::PolicyCheck);
        assert_eq!(native("mobius/secret-scan@v1"), Native::SecretScan);
        assert_eq!(native("Mobius/Dependency-Audit@v1"), Native::DependencyAudit);
        assert_eq!(native("acme/other@v1"), Native::Other);
        assert_eq!(native("./local"), Native::Other);
        assert!(matches!(native("docker://alpine:3"), Native::NotImplemented(_)));
    }
}
