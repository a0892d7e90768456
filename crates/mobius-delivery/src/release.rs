//! What gets deployed: a release directory made once, read-only, from an artifact by digest,
//! an uploaded tree, or (in-process only) a local directory, and the `mobius.yaml` in it.
//!
//! A release is keyed by its content digest (the same digest an artifact of those files has):
//! it is made in a temporary directory and renamed into place, so a half-made release never
//! exists, and the same content deployed twice is unpacked once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mobius_deploy::spec::{ServiceSpec, SpecError};
use mobius_pipelines::artifacts;

use crate::archive::{self, ArchiveError};

/// Where a deployment comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An artifact uploaded by a pipeline (`sha256:<hex>`).
    Artifact(String),
    /// The artifact a pipeline built from this commit.
    Commit(String),
    /// A tree `mobius deploy --dir` packed and uploaded (`PUT /api/v1/uploads/{digest}`), by
    /// the digest of its tar.
    Upload(String),
    /// A directory on this machine, copied as it is now. Only for callers in this process
    /// (`undo` redeploys an earlier release this way): it is never read from a request, since
    /// a path on the server is not something a client should name.
    #[serde(skip_deserializing)]
    Dir(PathBuf),
}

/// Why a release cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{} has no mobius.yaml", dir.display())]
    NoSpecInDir { dir: PathBuf },
    #[error("the release ({digest}) has no mobius.yaml")]
    NoSpec { digest: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("`{digest}` is not an artifact digest (sha256:<64 hex>)")]
    BadDigest { digest: String },
    #[error(
        "no artifact was built from commit {commit}: push it to a registered repository (its workflow's \
         upload-artifact makes one) or deploy --dir"
    )]
    NoArtifactForCommit { commit: String },
    #[error("the artifact built from {commit} ({artifact}) has no digest")]
    ArtifactWithoutDigest { commit: String, artifact: String },
    #[error("no artifact with digest {digest}")]
    UnknownArtifact { digest: String },
    #[error("no upload with digest {digest}: upload the tree first (PUT /api/v1/uploads/{digest})")]
    UnknownUpload { digest: String },
    #[error("version `{version}` must be letters, digits, `-`, `_` or `.`")]
    BadVersion { version: String },
    /// The tree breaks a rule (a link out of it, a device file, a crafted archive).
    #[error(transparent)]
    Tree(ArchiveError),
    /// A release made on another replica that is neither here nor in the store.
    #[error("release {release} is not on this replica and not in the store (made by an older replica?)")]
    NotShared { release: String },
    /// A release tree from the store whose content is another release's.
    #[error("the stored release {expected} unpacks as {found}")]
    StoredMismatch { expected: String, found: String },
    #[error("cannot read the artifact store")]
    Artifacts(#[from] artifacts::StoreError),
    /// A flag file (`flags/*.flagd.json`) that is not a valid flag set; the message is its
    /// `path:line:col: at /pointer: what`.
    #[error(transparent)]
    FlagFile(#[from] mobius_flags::LoadError),
    #[error("cannot {action} {}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

impl From<ArchiveError> for ReleaseError {
    fn from(e: ArchiveError) -> ReleaseError {
        match e {
            ArchiveError::Io { action, path, source } => ReleaseError::Io { action, path, source },
            other => ReleaseError::Tree(other),
        }
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ReleaseError {
    let path = path.to_owned();
    move |source| ReleaseError::Io { action, path, source }
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
    /// Its flag files (see [`crate::flags`]), checked.
    pub flags: Vec<crate::flags::FlagFile>,
}

/// Finds an artifact by id or commit: `(artifact id, revision)`.
pub type ArtifactLookup<'a> = dyn Fn(&str) -> Option<(String, Option<String>)> + 'a;

/// Writes a release's files into a directory.
type Filler<'a> = Box<dyn Fn(&Path) -> Result<(), ReleaseError> + 'a>;

/// Makes the release directory for `source` under `<data>/releases/` (once per content) and
/// reads its `mobius.yaml`. `version` labels it (default: from the content digest).
pub fn prepare(
    data_dir: &Path,
    source: &Source,
    version: Option<&str>,
    revision_of: &ArtifactLookup<'_>,
) -> Result<Release, ReleaseError> {
    let store = data_dir.join("pipelines");
    let (digest, name, revision, fill): (String, String, Option<String>, Filler<'_>) = match source {
        Source::Dir(path) => {
            if !path.join("mobius.yaml").is_file() {
                return Err(ReleaseError::NoSpecInDir { dir: path.clone() });
            }
            let entries = archive::walk(path)?;
            let digest = archive::digest(path, &entries)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dir".into());
            (digest, name, None, Box::new(move |dest: &Path| Ok(archive::copy(path, &entries, dest)?)))
        }
        Source::Upload(digest) => {
            check_digest(digest)?;
            let tar = upload_path(data_dir, digest);
            if !tar.is_file() {
                return Err(ReleaseError::UnknownUpload { digest: digest.clone() });
            }
            // Unpacked once to learn the tree's own digest, which names the release.
            let staging = tempfile::Builder::new()
                .prefix(".upload-")
                .tempdir_in(releases_dir(data_dir)?)
                .map_err(io("create a directory in", &releases_dir(data_dir)?))?;
            let file = fs::File::open(&tar).map_err(io("read", &tar))?;
            let entries = archive::unpack(std::io::BufReader::new(file), staging.path())?;
            let tree = archive::digest(staging.path(), &entries)?;
            let fill = move |dest: &Path| Ok(archive::copy(staging.path(), &entries, dest)?);
            (tree, "upload".to_owned(), None, Box::new(fill))
        }
        Source::Artifact(digest) | Source::Commit(digest) => {
            let digest = match source {
                Source::Commit(sha) => {
                    let (artifact, _) =
                        revision_of(sha).ok_or_else(|| ReleaseError::NoArtifactForCommit { commit: sha.clone() })?;
                    artifact_digest(&artifact)
                        .ok_or_else(|| ReleaseError::ArtifactWithoutDigest { commit: sha.clone(), artifact })?
                }
                _ => digest.clone(),
            };
            check_digest(&digest)?;
            let record = artifacts::find_by_digest(&store, &digest)?
                .ok_or_else(|| ReleaseError::UnknownArtifact { digest: digest.clone() })?;
            let revision = revision_of(&format!("pkg:generic/{}@{}", record.name, digest.replace(':', "%3A")))
                .and_then(|(_, revision)| revision);
            let name = record.name.clone();
            let store = store.clone();
            (digest, name, revision, Box::new(move |dest: &Path| Ok(artifacts::restore(&store, &record, dest)?)))
        }
    };
    let hex = digest.trim_start_matches("sha256:");
    let version = version.map(str::to_owned).unwrap_or_else(|| hex[..12].to_owned());
    if !version.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || version.is_empty() {
        return Err(ReleaseError::BadVersion { version });
    }
    let releases = releases_dir(data_dir)?;
    let dir = releases.join(hex);
    if !dir.join("mobius.yaml").is_file() {
        // Made in a temporary directory, checked, then renamed: a half-made or refused release
        // never exists.
        let partial = releases.join(format!(".{hex}.partial"));
        let remove = |partial: &Path| -> Result<(), ReleaseError> {
            if partial.exists() {
                make_writable(partial).map_err(io("clean up", partial))?;
                fs::remove_dir_all(partial).map_err(io("clean up", partial))?;
            }
            Ok(())
        };
        remove(&partial)?;
        fs::create_dir_all(&partial).map_err(io("create", &partial))?;
        let checked = fill(&partial).and_then(|()| read_spec(&partial, &digest)).and_then(|made| {
            crate::flags::read(&partial)?;
            Ok(made)
        });
        if let Err(e) = checked {
            remove(&partial)?;
            return Err(e);
        }
        make_read_only(&partial).map_err(io("make read-only", &partial))?;
        fs::rename(&partial, &dir).map_err(io("place the release at", &dir))?;
    }
    let (spec, spec_text) = read_spec(&dir, &digest)?;
    let flags = crate::flags::read(&dir)?;
    let artifact = format!("pkg:generic/{name}@{}", digest.replace(':', "%3A"));
    Ok(Release { dir, version, spec, spec_text, artifact, revision, flags })
}

fn check_digest(digest: &str) -> Result<(), ReleaseError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReleaseError::BadDigest { digest: digest.to_owned() });
    }
    Ok(())
}

fn releases_dir(data_dir: &Path) -> Result<PathBuf, ReleaseError> {
    let dir = data_dir.join("releases");
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    Ok(dir)
}

/// Makes the release directory `<data>/releases/<hex>` from the tar another replica packed
/// of it ([`crate::archive::pack`]), unless it is here already: unpacked, checked by the same
/// rules as any release, and refused unless the tree's digest is `hex`.
pub fn from_tar(data_dir: &Path, hex: &str, tar: &[u8]) -> Result<PathBuf, ReleaseError> {
    let releases = releases_dir(data_dir)?;
    let dir = releases.join(hex);
    if dir.join("mobius.yaml").is_file() {
        return Ok(dir);
    }
    let staging = tempfile::Builder::new()
        .prefix(".stored-")
        .tempdir_in(&releases)
        .map_err(io("create a directory in", &releases))?;
    archive::unpack(tar, staging.path())?;
    let none = |_: &str| None;
    let made = prepare(data_dir, &Source::Dir(staging.path().to_owned()), None, &none)?;
    if made.dir != dir {
        return Err(ReleaseError::StoredMismatch { expected: hex.to_owned(), found: made.dir.display().to_string() });
    }
    Ok(dir)
}

/// Where an uploaded tree's tar is kept, by the tar's digest.
pub fn upload_path(data_dir: &Path, digest: &str) -> PathBuf {
    data_dir.join("uploads").join(format!("{}.tar", digest.trim_start_matches("sha256:")))
}

/// The release's `mobius.yaml`, parsed, and refused when it holds a credential.
fn read_spec(dir: &Path, digest: &str) -> Result<(ServiceSpec, String), ReleaseError> {
    let text =
        fs::read_to_string(dir.join("mobius.yaml")).map_err(|_| ReleaseError::NoSpec { digest: digest.to_owned() })?;
    let spec = ServiceSpec::parse("mobius.yaml", &text)?;
    mobius_deploy::credentials::check("mobius.yaml", &text, &spec.run.env)?;
    Ok((spec, text))
}

/// `sha256:<hex>` from an artifact id `pkg:generic/NAME@sha256%3A<hex>`.
pub fn artifact_digest(artifact: &str) -> Option<String> {
    let version = artifact.rsplit_once('@')?.1.replace("%3A", ":").replace("%3a", ":");
    version.starts_with("sha256:").then_some(version)
}

/// Files 0444 (0555 if executable), directories 0555: nothing at run time changes a release.
/// Links are left as they are (their mode means nothing, and changing it would follow them).
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_read_only(&path)?;
        } else if kind.is_file() {
            let mode = entry.metadata()?.permissions().mode();
            fs::set_permissions(&path, fs::Permissions::from_mode(if mode & 0o111 != 0 { 0o555 } else { 0o444 }))?;
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555))
}

fn make_writable(dir: &Path) -> std::io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
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
        assert!(matches!(missing, Err(ReleaseError::UnknownArtifact { .. })));
        let bad = prepare(data.path(), &Source::Artifact("sha256:xyz".into()), None, &none);
        assert!(matches!(bad, Err(ReleaseError::BadDigest { .. })));
        let commit = prepare(data.path(), &Source::Commit("abc".into()), None, &none);
        assert!(matches!(commit, Err(ReleaseError::NoArtifactForCommit { commit }) if commit == "abc"));
        fs::write(src.path().join("mobius.yaml"), "service: shop\n").unwrap();
        let invalid = prepare(data.path(), &Source::Dir(src.path().to_owned()), None, &none);
        assert!(matches!(&invalid, Err(ReleaseError::Spec(_))), "{invalid:?}");
        assert!(invalid.unwrap_err().to_string().starts_with("mobius.yaml:"), "precise error");
        assert_eq!(artifact_digest("pkg:generic/dist@sha256%3Aab"), Some("sha256:ab".into()));

        // A credential in run.env would be stored in clear: the release is refused, at its line.
        let secret = "service: shop\nrun:\n  command: ./shop\n  env:\n    DB_PASSWORD: hunter2\nenvironments:\n  - name: production\n    listen: 127.0.0.1:18080\n";
        fs::write(src.path().join("mobius.yaml"), secret).unwrap();
        let before = fs::read_dir(data.path().join("releases")).unwrap().count();
        let refused = prepare(data.path(), &Source::Dir(src.path().to_owned()), None, &none);
        let after = fs::read_dir(data.path().join("releases")).unwrap().count();
        assert_eq!(before, after, "a refused release leaves nothing behind");
        let shown = refused.unwrap_err().to_string();
        assert!(shown.starts_with("mobius.yaml:5:5: `run.env.DB_PASSWORD` looks like a credential"), "{shown}");
    }
}
