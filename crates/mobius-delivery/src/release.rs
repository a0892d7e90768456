//! What gets deployed: a release directory made once, read-only, from a local directory or
//! from an artifact by digest, and the `mobius.yaml` in it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mobius_deploy::spec::ServiceSpec;
use mobius_pipelines::artifacts;
use sha2::{Digest, Sha256};

use super::DeployError;

/// Where a deployment comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A directory on the server's machine, copied as it is now.
    Dir(PathBuf),
    /// An artifact uploaded by a pipeline (`sha256:<hex>`).
    Artifact(String),
    /// The artifact a pipeline built from this commit.
    Commit(String),
}

/// A release ready to run.
#[derive(Debug, Clone)]
pub struct Release {
    pub dir: PathBuf,
    pub version: String,
    pub spec: ServiceSpec,
    pub spec_text: String,
    /// The artifact id events name (`pkg:generic/NAME@sha256%3A…`).
    pub artifact: String,
    pub revision: Option<String>,
}

/// Finds an artifact by id or commit: `(artifact id, revision)`.
pub type ArtifactLookup<'a> = dyn Fn(&str) -> Option<(String, Option<String>)> + 'a;

/// Writes a release's files into a directory.
type Filler = Box<dyn Fn(&Path) -> Result<(), DeployError>>;

/// Makes the release directory for `source` under `<data>/releases/` (once per content) and
/// reads its `mobius.yaml`. `version` labels it (default: from the content digest).
pub fn prepare(
    data_dir: &Path,
    source: &Source,
    version: Option<&str>,
    revision_of: &ArtifactLookup<'_>,
) -> Result<Release, DeployError> {
    let store = data_dir.join("pipelines");
    let (digest, name, revision, fill): (String, String, Option<String>, Filler) = match source {
        Source::Dir(path) => {
            let path = path.clone();
            if !path.join("mobius.yaml").is_file() {
                return Err(DeployError::BadRequest(format!("{} has no mobius.yaml", path.display())));
            }
            let digest = dir_digest(&path)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dir".into());
            (digest, name, None, Box::new(move |dest: &Path| copy_tree(&path, dest)))
        }
        Source::Artifact(digest) | Source::Commit(digest) => {
            let digest = match source {
                Source::Commit(sha) => {
                    let (artifact, _) = revision_of(sha).ok_or_else(|| {
                        DeployError::NotFound(format!(
                            "no artifact was built from commit {sha}: push it to a registered repository \
                                 (its workflow's upload-artifact makes one) or deploy --dir"
                        ))
                    })?;
                    artifact_digest(&artifact).ok_or_else(|| {
                        DeployError::NotFound(format!("the artifact built from {sha} ({artifact}) has no digest"))
                    })?
                }
                _ => digest.clone(),
            };
            if !digest.starts_with("sha256:") || digest.len() != 71 {
                return Err(DeployError::BadRequest(format!("`{digest}` is not an artifact digest (sha256:<64 hex>)")));
            }
            let record = artifacts::find_by_digest(&store, &digest)
                .map_err(|e| DeployError::Internal(e.to_string()))?
                .ok_or_else(|| DeployError::NotFound(format!("no artifact with digest {digest}")))?;
            let revision = revision_of(&format!("pkg:generic/{}@{}", record.name, digest.replace(':', "%3A")))
                .and_then(|(_, revision)| revision);
            let store = store.clone();
            let name = record.name.clone();
            (
                digest,
                name,
                revision,
                Box::new(move |dest: &Path| {
                    artifacts::restore(&store, &record, dest).map_err(|e| DeployError::Internal(e.to_string()))
                }),
            )
        }
    };
    let hex = digest.trim_start_matches("sha256:");
    let version = version.map(str::to_owned).unwrap_or_else(|| hex[..12].to_owned());
    if !version.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || version.is_empty() {
        return Err(DeployError::BadRequest(format!("version `{version}` must be letters, digits, `-`, `_` or `.`")));
    }
    let dir = data_dir.join("releases").join(hex);
    if !dir.join("mobius.yaml").is_file() {
        // Made in a temporary directory and renamed, so a half-made release never exists.
        let partial = data_dir.join("releases").join(format!(".{hex}.partial"));
        let _ = make_writable(&partial).and_then(|()| fs::remove_dir_all(&partial));
        fs::create_dir_all(&partial)
            .map_err(|e| DeployError::Internal(format!("cannot create {}: {e}", partial.display())))?;
        fill(&partial)?;
        make_read_only(&partial).map_err(|e| DeployError::Internal(e.to_string()))?;
        fs::rename(&partial, &dir).map_err(|e| DeployError::Internal(format!("cannot place the release: {e}")))?;
    }
    let spec_path = dir.join("mobius.yaml");
    let spec_text = fs::read_to_string(&spec_path)
        .map_err(|_| DeployError::BadRequest(format!("the release ({digest}) has no mobius.yaml")))?;
    let spec = ServiceSpec::parse("mobius.yaml", &spec_text).map_err(|e| DeployError::BadRequest(e.to_string()))?;
    let artifact = format!("pkg:generic/{name}@{}", digest.replace(':', "%3A"));
    Ok(Release { dir, version, spec, spec_text, artifact, revision })
}

/// `sha256:<hex>` from an artifact id `pkg:generic/NAME@sha256%3A<hex>`.
pub fn artifact_digest(artifact: &str) -> Option<String> {
    let version = artifact.rsplit_once('@')?.1.replace("%3A", ":").replace("%3a", ":");
    version.starts_with("sha256:").then_some(version)
}

/// The same digest an artifact of these files would have (paths and contents only).
fn dir_digest(root: &Path) -> Result<String, DeployError> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort();
    let mut manifest = Sha256::new();
    for (rel, path) in files {
        let bytes =
            fs::read(&path).map_err(|e| DeployError::Internal(format!("cannot read {}: {e}", path.display())))?;
        manifest.update(rel.as_bytes());
        manifest.update([0]);
        manifest.update(hex::encode(Sha256::digest(&bytes)).as_bytes());
        manifest.update([0]);
        manifest.update(bytes.len().to_string().as_bytes());
        manifest.update(b"\n");
    }
    Ok(format!("sha256:{}", hex::encode(manifest.finalize())))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), DeployError> {
    let entries =
        fs::read_dir(dir).map_err(|e| DeployError::BadRequest(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        if name == ".git" || name == "target" {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if path.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), DeployError> {
    let mut files = Vec::new();
    walk(from, from, &mut files)?;
    for (rel, path) in files {
        let dest = to.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| DeployError::Internal(e.to_string()))?;
        }
        fs::copy(&path, &dest).map_err(|e| DeployError::Internal(format!("cannot copy {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Files 0444 (0555 if executable), directories 0555: nothing at run time changes a release.
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            make_read_only(&path)?;
        } else {
            let mode = fs::metadata(&path)?.permissions().mode();
            fs::set_permissions(&path, fs::Permissions::from_mode(if mode & 0o111 != 0 { 0o555 } else { 0o444 }))?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555))
}

fn make_writable(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
        if entry.path().is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

/// Where a release's instance logs go.
pub fn log_dir(data_dir: &Path, service: &str, environment: &str) -> PathBuf {
    data_dir.join("deploy").join(service).join(environment).join("logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_release_is_made_once_read_only_with_a_stable_digest() {
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let spec = "service: shop\nrun:\n  command: ./shop\nenvironments:\n  - name: production\n    listen: 127.0.0.1:18080\n";
        fs::write(src.path().join("mobius.yaml"), spec).unwrap();
        fs::write(src.path().join("shop"), "#!/bin/sh\n").unwrap();
        let none = |_: &str| None;
        let release = prepare(data.path(), &Source::Dir(src.path().to_owned()), None, &none).unwrap();
        assert_eq!(release.spec.name(), "shop");
        // Mode bits, not a write attempt: root (CI containers) writes through them.
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&release.dir.join("shop")), mode(&release.dir)), (0o444, 0o555), "read-only");
        let again = prepare(data.path(), &Source::Dir(src.path().to_owned()), Some("v1"), &none).unwrap();
        assert_eq!((again.dir.clone(), again.version.as_str()), (release.dir.clone(), "v1"));
        assert!(release.artifact.starts_with("pkg:generic/") && release.artifact.contains("@sha256%3A"));

        let missing = prepare(data.path(), &Source::Artifact(format!("sha256:{}", "0".repeat(64))), None, &none);
        assert!(matches!(missing, Err(DeployError::NotFound(m)) if m.contains("no artifact with digest")));
        let bad = prepare(data.path(), &Source::Artifact("sha256:xyz".into()), None, &none);
        assert!(matches!(bad, Err(DeployError::BadRequest(_))));
        let commit = prepare(data.path(), &Source::Commit("abc".into()), None, &none);
        assert!(matches!(commit, Err(DeployError::NotFound(m)) if m.contains("no artifact was built from commit abc")));
        fs::write(src.path().join("mobius.yaml"), "service: shop\n").unwrap();
        let invalid = prepare(data.path(), &Source::Dir(src.path().to_owned()), None, &none);
        assert!(matches!(invalid, Err(DeployError::BadRequest(m)) if m.starts_with("mobius.yaml:")), "precise error");
        assert_eq!(artifact_digest("pkg:generic/dist@sha256%3Aab"), Some("sha256:ab".into()));
    }
}
