//! Flag files declared in a deploy repository: `flags:` under a service in
//! `environments/<env>.yaml` names flagd files of the repository, which the reconciler loads
//! into their sets in that environment as a release's flag files are loaded — through the same
//! port (`mobius_delivery::flags::ReleaseFlags`), so the set is named the same way
//! (`metadata.flagSetId` or the file's name, then `.<environment>`), a `rollout` block starts
//! its gated rollout, and every load is a `mobius-flag.changed` event by
//! `gitops:<repository>` whose reason names the revision and file.
//!
//! A set's **version** in an environment is what git holds for it at the revision followed:
//! the reconciler records, per set, a digest of the file it loaded and the set's version right
//! after. Each pass then compares:
//!
//! - git's file differs from the one loaded → load it (a sync; held by a sync window);
//! - same file, and the set is still at the recorded version, or moved only by the steps of a
//!   flag rollout (made by `rollout:…`: the gradual change a file's `rollout` block or an
//!   operator asked for, not drift) → `Synced`;
//! - same file, and the set was changed since by someone else (a flag flipped by hand, another
//!   document put) → drift: reloaded from git when the source self-heals, else shown as
//!   `OutOfSync` with who changed it, until `mobius gitops sync`.
//!
//! Each load is put to the gate policies (`input.action: flag-change`, by
//! `gitops:<repository>`), unlike a release's files, which their deploy's decision covers. A
//! load that fails — denied, or the set another environment's — is not tried again on the
//! timer until git holds another file for the set (or `mobius gitops sync` asks), as a failed
//! digest is not.
//!
//! A flag file that is missing at the revision or is not a valid flagd document refuses the
//! whole revision, as a bad environment file does: nothing acts on it.

use std::collections::BTreeMap;

use mobius_delivery::flags::{FlagFile, Loading};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::{DesiredError, Environment};
use crate::reconcile::Trigger;
use crate::{GitOps, GitOpsError, Source, SourceStatus, Sync, repo};

/// One declared flag set of a service in an environment, as `mobius gitops status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSetStatus {
    /// The set's name (`checkout.production`).
    pub set: String,
    /// The file in the repository.
    pub file: String,
    /// The set's version now (`None`: not loaded).
    pub version: Option<u64>,
    pub sync: Sync,
    /// What the pass did, or why the set is out of sync.
    pub message: String,
}

/// What the reconciler last loaded into a set: a digest of the file, and the set's version
/// right after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub content: String,
    pub version: u64,
}

/// A file whose load failed (denied by a gate policy, its set another environment's): not
/// tried again on the timer until git holds another file for the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub content: String,
    pub message: String,
}

/// The flag files every service of `environment` declares, read at `sha` and checked:
/// service → its files. A file git lacks, or one that is not a flagd document, is an error at
/// its place (the environment file's `flags:` entry, or the flag file's own line and column).
pub(crate) fn read(
    repository: &std::path::Path,
    sha: &str,
    source_path: &str,
    environment: &Environment,
) -> Result<BTreeMap<String, Vec<FlagFile>>, GitOpsError> {
    let mut out = BTreeMap::new();
    for (service, refs) in &environment.flags {
        let mut files = Vec::new();
        for flag in refs {
            let path = match source_path.trim_matches('/') {
                "" => flag.path.clone(),
                dir => format!("{dir}/{}", flag.path),
            };
            let text = repo::file_at(repository, sha, &path).map_err(|_| DesiredError {
                file: environment.file.clone(),
                line: flag.line,
                column: flag.column,
                message: format!("`flags`: `{path}` does not exist at {}", &sha[..sha.len().min(12)]),
            })?;
            let file = mobius_delivery::flags::parse_file(&path, text)?;
            files.push(file);
        }
        out.insert(service.clone(), files);
    }
    Ok(out)
}

/// A digest of a flag file's text: what "the file loaded" is remembered by.
fn content(file: &FlagFile) -> String {
    let digest = Sha256::digest(file.text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one pass does about a service's flag files.
pub(crate) struct FlagPass<'a> {
    pub source: &'a Source,
    pub revision: &'a str,
    pub environment: &'a Environment,
    pub service: &'a str,
    pub held: Option<&'a str>,
    pub trigger: Trigger,
}

impl GitOps {
    /// Compares each of the service's flag files with its set, loads what git changed (and
    /// what drifted, when the source self-heals), and says where each stands; the actions
    /// taken, for the source's history.
    pub(crate) async fn flag_files(
        &self,
        pass: FlagPass<'_>,
        files: &[FlagFile],
        status: &mut SourceStatus,
    ) -> (Vec<FlagSetStatus>, Vec<String>) {
        let mut rows = Vec::new();
        let mut actions = Vec::new();
        let env = pass.environment.name.as_str();
        let Some(port) = self.inner.deployer.release_flags() else {
            for file in files {
                let message = "this server does not load flag files".to_owned();
                let set = String::new();
                rows.push(FlagSetStatus { set, file: file.path.clone(), version: None, sync: Sync::Unknown, message });
            }
            return (rows, actions);
        };
        for file in files {
            let now = port.current(file, env);
            let key = format!("{env}/{}", now.set);
            let wanted = content(file);
            let mut row = FlagSetStatus {
                set: now.set.clone(),
                file: file.path.clone(),
                version: now.version,
                sync: Sync::OutOfSync,
                message: String::new(),
            };
            let applied = status.flags_applied.get(&key).filter(|a| a.content == wanted).cloned();
            let drifted_by = match (&applied, now.version) {
                (Some(a), Some(v)) if v == a.version => None,
                // Steps of a flag rollout are the change the file (or an operator) asked for.
                (Some(_), Some(_)) if now.updated_by.as_deref().is_some_and(|by| by.starts_with("rollout:")) => None,
                (Some(_), v) => Some((v, now.updated_by.clone().unwrap_or_else(|| "someone".to_owned()))),
                (None, _) => {
                    // Git's file is new to this set.
                    Some((now.version, String::new()))
                }
            };
            let Some((live_version, by)) = drifted_by else {
                row.sync = Sync::Synced;
                rows.push(row);
                continue;
            };
            let drift = applied.is_some();
            if drift && !pass.source.self_heal && pass.trigger == Trigger::Timer {
                row.message = match live_version {
                    Some(v) => format!(
                        "drift: changed outside git by {by} (version {v}; git's file was loaded as version {}); \
                         self-heal is off: `mobius gitops sync` puts it back",
                        applied.as_ref().map_or(0, |a| a.version)
                    ),
                    None => format!("drift: deleted outside git by {by}; `mobius gitops sync` loads it again"),
                };
                rows.push(row);
                continue;
            }
            if let Some(held) = pass.held {
                row.message = held.to_owned();
                rows.push(row);
                continue;
            }
            if pass.trigger == Trigger::Timer
                && let Some(failed) = status.flags_failed.get(&key).filter(|f| f.content == wanted)
            {
                row.message = format!("{} (change the file, or `mobius gitops sync`, to try again)", failed.message);
                rows.push(row);
                continue;
            }
            let reason = format!(
                "gitops {}@{} {}",
                pass.source.repository,
                &pass.revision[..pass.revision.len().min(12)],
                pass.environment.file
            );
            let by = format!("gitops:{}", pass.source.repository);
            let to = Loading {
                environment: env,
                service: pass.service,
                by: &by,
                reason: &reason,
                exception: None,
                decided: false,
            };
            let why = if drift { "drift reverted" } else { "loaded" };
            match port.load(std::slice::from_ref(file), to).await {
                Ok(()) => {
                    let after = port.current(file, env);
                    let version = after.version.unwrap_or_default();
                    status.flags_failed.remove(&key);
                    status.flags_applied.insert(key, Applied { content: wanted, version });
                    row.version = after.version;
                    row.sync = Sync::Synced;
                    row.message = format!("{why} from {} (version {version})", file.path);
                    actions.push(format!("flags {}: {why} from {} (version {version})", now.set, file.path));
                }
                Err(error) => {
                    // Not tried again for the same file until git changes or a sync is asked:
                    // a policy that denies it would deny it every second.
                    row.message = format!("loading {} failed: {error}", file.path);
                    actions.push(format!("flags {}: loading {} failed: {error}", now.set, file.path));
                    status.flags_failed.insert(key, Failed { content: wanted, message: row.message.clone() });
                }
            }
            rows.push(row);
        }
        (rows, actions)
    }
}

/// Forgets what was loaded into sets no file declares any more (`environment/set` keys), so a
/// file declared again later is loaded again rather than taken for drift.
pub(crate) fn forget_undeclared(status: &mut SourceStatus, declared: &[String]) {
    status.flags_applied.retain(|key, _| declared.iter().any(|d| d == key));
    status.flags_failed.retain(|key, _| declared.iter().any(|d| d == key));
}
