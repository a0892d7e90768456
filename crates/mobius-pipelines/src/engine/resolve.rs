//! Finding the actions a job uses: `owner/repo[/path]@ref` through the run's [`ActionCache`],
//! `./path` in the job's workspace, and the `action.yml` of each.
//!
//! A job's remote actions, and those its composite actions use in turn, are loaded before its
//! first step ([`ActionSet::preload`]), so a repository that cannot be fetched, a ref that does
//! not exist or a malformed `action.yml` fails the job before anything ran. A local action is
//! loaded when its step runs: it usually comes with the checkout, or an earlier step made it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::chain::Chain;
use crate::remote::{ActionCache, ActionRef, FetchError};
use crate::workflow::{self, ActionManifest, ActionRuns, Diagnostic, Pos, Step, StepAction};

/// How deep composite actions may nest (GitHub's limit).
pub(super) const MAX_COMPOSITE_DEPTH: usize = 10;

/// The largest `action.yml` read; real ones are a few KiB.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// An action ready to run.
#[derive(Debug)]
pub(super) struct Loaded {
    /// The `uses:` value.
    pub uses: String,
    /// The action's directory (`GITHUB_ACTION_PATH`, `github.action_path`).
    pub dir: PathBuf,
    /// Its `action.yml`.
    pub manifest: ActionManifest,
    /// The repository and commit it came from; `None` for a local action.
    pub origin: Option<(String, String)>,
}

/// Why an action cannot be run.
#[derive(Debug, thiserror::Error)]
pub(super) enum ActionError {
    /// The run has no action cache to fetch from.
    #[error("`{uses}` comes from a repository, and this run has no action source configured")]
    NoSource { uses: String },
    /// Not a reference Mobius can resolve.
    #[error("`{uses}` is not an action reference (`owner/repo[/path]@ref` or `./path`)")]
    BadReference { uses: String },
    /// The repository or ref could not be had.
    #[error("cannot fetch `{uses}`")]
    Fetch {
        uses: String,
        #[source]
        source: FetchError,
    },
    /// A local action's path leaves the workspace.
    #[error("local action `{uses}` is outside the workspace")]
    OutsideWorkspace { uses: String },
    /// No `action.yml`/`action.yaml` where the action should be.
    #[error("`{uses}` has no action.yml or action.yaml in {}", dir.display())]
    NoManifest { uses: String, dir: PathBuf },
    /// The `action.yml` could not be read.
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The `action.yml` is larger than [`MAX_MANIFEST_BYTES`].
    #[error("{} is larger than 1 MiB", path.display())]
    TooBig { path: PathBuf },
    /// The `action.yml` is malformed.
    #[error("{}", .0.iter().map(Diagnostic::to_string).collect::<Vec<_>>().join("; "))]
    Manifest(Vec<Diagnostic>),
    /// `runs.using: docker`.
    #[error("`{uses}` is a Docker action, and Docker actions are not supported: jobs run as host processes")]
    Docker { uses: String },
    /// Composite actions nested past [`MAX_COMPOSITE_DEPTH`].
    #[error("`{uses}`: composite actions nest more than {MAX_COMPOSITE_DEPTH} levels deep")]
    TooDeep { uses: String },
    /// No Node.js on the machine fits what the action asks for.
    #[error("`{uses}` runs on {using}: {found}")]
    Node { uses: String, using: String, found: String },
}

/// The actions of one job, loaded once each.
#[derive(Debug, Default)]
pub(super) struct ActionSet {
    cache: Option<ActionCache>,
    loaded: HashMap<String, Arc<Loaded>>,
}

impl ActionSet {
    pub fn new(cache: Option<ActionCache>) -> ActionSet {
        ActionSet { cache, loaded: HashMap::new() }
    }

    /// Loads every remote action of `steps`, and of the composite actions among them, to the
    /// depth limit. The error names the top-level step's position. Returns what was said about
    /// fetching (for the job's log).
    pub async fn preload(&mut self, steps: &[Step]) -> Result<Vec<String>, (Pos, ActionError)> {
        let mut said = Vec::new();
        let mut pending: Vec<(Pos, Arc<Loaded>, usize)> = Vec::new();
        for step in steps {
            let StepAction::Uses { action, pos, .. } = &step.action else { continue };
            if !is_remote(action) {
                continue;
            }
            let loaded = self.load(action, Path::new("/"), &mut said).await.map_err(|e| (*pos, e))?;
            pending.push((*pos, loaded, 1));
        }
        while let Some((pos, loaded, depth)) = pending.pop() {
            let ActionRuns::Composite(inner) = &loaded.manifest.runs else { continue };
            for step in inner {
                let StepAction::Uses { action, .. } = &step.action else { continue };
                if !is_remote(action) {
                    continue;
                }
                if depth >= MAX_COMPOSITE_DEPTH {
                    return Err((pos, ActionError::TooDeep { uses: loaded.uses.clone() }));
                }
                let nested = self.load(action, Path::new("/"), &mut said).await.map_err(|e| (pos, e))?;
                pending.push((pos, nested, depth + 1));
            }
        }
        Ok(said)
    }

    /// The action `uses` names: from the cache (fetched if needed) or from `workspace`.
    pub async fn load(
        &mut self,
        uses: &str,
        workspace: &Path,
        said: &mut Vec<String>,
    ) -> Result<Arc<Loaded>, ActionError> {
        if let Some(local) = uses.strip_prefix("./") {
            // Local actions are read again each time: a step may have changed them.
            return load_local(uses, local, workspace).map(Arc::new);
        }
        let Some(reference) = ActionRef::parse(uses) else {
            return Err(ActionError::BadReference { uses: uses.to_owned() });
        };
        // Owners and repositories compare without regard to case, as on GitHub.
        let key = format!("{}/{}@{}", reference.repo.to_ascii_lowercase(), reference.path, reference.git_ref);
        if let Some(found) = self.loaded.get(&key) {
            return Ok(found.clone());
        }
        let Some(cache) = &self.cache else { return Err(ActionError::NoSource { uses: uses.to_owned() }) };
        let fetched = cache
            .fetch(&reference.repo, &reference.git_ref)
            .await
            .map_err(|source| ActionError::Fetch { uses: uses.to_owned(), source })?;
        said.push(match fetched.fetched {
            true => format!("fetched {} at {} for {uses}", reference.repo, fetched.sha),
            false => format!("using cached {} at {} for {uses}", reference.repo, fetched.sha),
        });
        let dir = if reference.path.is_empty() { fetched.dir.clone() } else { fetched.dir.join(&reference.path) };
        let label = format!("{}{}@{}", reference.repo, slash(&reference.path), reference.git_ref);
        let manifest = read_manifest(uses, &dir, &label)?;
        let loaded =
            Arc::new(Loaded { uses: uses.to_owned(), dir, manifest, origin: Some((reference.repo, fetched.sha)) });
        self.loaded.insert(key, loaded.clone());
        Ok(loaded)
    }
}

/// Whether `uses` names an action in a repository that the engine does not run itself.
pub(super) fn is_remote(uses: &str) -> bool {
    !uses.starts_with("./")
        && !uses.starts_with("docker://")
        && super::actions::native(uses) == super::actions::Native::Other
}

fn slash(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!("/{path}") }
}

fn load_local(uses: &str, local: &str, workspace: &Path) -> Result<Loaded, ActionError> {
    let outside = || ActionError::OutsideWorkspace { uses: uses.to_owned() };
    let root = workspace.canonicalize().map_err(|_| outside())?;
    let dir = root.join(local);
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(_) => return Err(ActionError::NoManifest { uses: uses.to_owned(), dir }),
    };
    if !dir.starts_with(&root) {
        return Err(outside());
    }
    let manifest = read_manifest(uses, &dir, uses.trim_end_matches('/'))?;
    Ok(Loaded { uses: uses.to_owned(), dir, manifest, origin: None })
}

/// Reads and parses `action.yml` (or `action.yaml`) in `dir`; `label` names the action in
/// diagnostics (`owner/repo@v1/action.yml:3:5`).
fn read_manifest(uses: &str, dir: &Path, label: &str) -> Result<ActionManifest, ActionError> {
    for file in ["action.yml", "action.yaml"] {
        let path = dir.join(file);
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ActionError::Read { path, source }),
        };
        if size > MAX_MANIFEST_BYTES {
            return Err(ActionError::TooBig { path });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ActionError::Read { path: path.clone(), source })?;
        let manifest = workflow::parse_action(&format!("{label}/{file}"), &text).map_err(ActionError::Manifest)?;
        if manifest.runs == ActionRuns::Docker {
            return Err(ActionError::Docker { uses: uses.to_owned() });
        }
        return Ok(manifest);
    }
    Err(ActionError::NoManifest { uses: uses.to_owned(), dir: dir.to_path_buf() })
}

/// The Node.js to run an action that asks for `major` (`node20`): the first `node` (or
/// `nodejs`) on `path` whose major version is at least that. GitHub runs `node16` actions on
/// Node 20 today, so a newer Node is taken; an older one is not.
pub(super) fn find_node(uses: &str, using: &str, major: u32, path: &[PathBuf]) -> Result<PathBuf, ActionError> {
    let mut seen = Vec::new();
    for dir in path {
        for name in ["node", "nodejs"] {
            let candidate = dir.join(name);
            if !candidate.is_file() {
                continue;
            }
            let Some(version) = node_version(&candidate) else { continue };
            if version.0 >= major {
                return Ok(candidate);
            }
            seen.push(format!("v{}.{} at {}", version.0, version.1, candidate.display()));
        }
    }
    let found = match seen.is_empty() {
        true => format!("no Node.js {major} or newer: no `node` on PATH"),
        false => format!("no Node.js {major} or newer on PATH (found {})", seen.join(", ")),
    };
    Err(ActionError::Node { uses: uses.to_owned(), using: using.to_owned(), found })
}

/// `node --version` as (major, minor), asked once per program per process.
fn node_version(program: &Path) -> Option<(u32, u32)> {
    type Versions = HashMap<PathBuf, Option<(u32, u32)>>;
    static KNOWN: OnceLock<Mutex<Versions>> = OnceLock::new();
    let known = KNOWN.get_or_init(Mutex::default);
    if let Some(version) = known.lock().ok()?.get(program) {
        return *version;
    }
    let output = std::process::Command::new(program).arg("--version").env_clear().output().ok();
    let version = output.filter(|o| o.status.success()).and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout);
        let mut parts = text.trim().trim_start_matches('v').split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    });
    if let Ok(mut known) = known.lock() {
        known.insert(program.to_path_buf(), version);
    }
    version
}

/// An error as one line for the log: the chain of causes.
pub(super) fn describe(error: &ActionError) -> String {
    Chain(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_too_old_is_named_with_the_version_asked_for() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node");
        std::fs::write(&node, "#!/bin/sh\necho v18.19.0\n").unwrap();
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = [dir.path().to_path_buf()];
        let why = find_node("acme/x@v1", "node20", 20, &path).unwrap_err().to_string();
        let want =
            format!("`acme/x@v1` runs on node20: no Node.js 20 or newer on PATH (found v18.19 at {})", node.display());
        assert_eq!(why, want);
        assert_eq!(find_node("acme/x@v1", "node16", 16, &path).unwrap(), node);
        let none = find_node("a/b@v1", "node24", 24, &[]).unwrap_err().to_string();
        assert_eq!(none, "`a/b@v1` runs on node24: no Node.js 24 or newer: no `node` on PATH");
    }
}
