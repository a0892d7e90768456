//! How the artifact and cache actions reach a job's files: they run in the runner, outside any
//! sandbox and with the runner's privileges, on paths a workflow names.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use mobius_sandbox::Sandbox;

use super::StoreError;

/// A job's directories, as the artifact and cache actions reach them.
///
/// [`JobFiles::open`] reaches anything the runner can, as the runner: right for `mobius run`,
/// whose steps run as the same user and see the same files. [`JobFiles::confined`] is for a
/// job whose steps are sandboxed: a path must lie in the job's own directories (the workspace,
/// its home, its temp dir) once `..` and symbolic links are resolved, and every file is read,
/// written and created with the steps' user's permissions. So a workflow cannot make the runner
/// read the server's files (`path: /var/lib/mobius/mobius.db`, or a link to it) or write where
/// its steps could not (`path: /etc/cron.d`), and what it restores belongs to its user.
#[derive(Debug, Clone)]
pub struct JobFiles {
    /// The workspace: relative paths are resolved against it.
    pub workspace: PathBuf,
    /// The job's home: what `~` in a path stands for.
    pub home: PathBuf,
    confined: Option<Confined>,
}

#[derive(Debug, Clone)]
struct Confined {
    sandbox: Sandbox,
    /// The directories a path must lie in: as given, and with links resolved.
    roots: Vec<PathBuf>,
}

impl JobFiles {
    /// Reached anywhere, with the runner's permissions.
    pub fn open(workspace: impl Into<PathBuf>, home: impl Into<PathBuf>) -> JobFiles {
        JobFiles { workspace: workspace.into(), home: home.into(), confined: None }
    }

    /// Reached only inside the workspace, home and `others` (the temp dir), as `sandbox`'s user.
    pub fn confined(
        workspace: impl Into<PathBuf>,
        home: impl Into<PathBuf>,
        others: &[PathBuf],
        sandbox: Sandbox,
    ) -> JobFiles {
        let (workspace, home) = (workspace.into(), home.into());
        let mut roots = Vec::new();
        for dir in [&workspace, &home].into_iter().chain(others) {
            roots.push(lexical(dir));
            // A directory that does not exist (yet) is reached by its lexical path only.
            if let Ok(real) = dir.canonicalize() {
                roots.push(real);
            }
        }
        JobFiles { workspace, home, confined: Some(Confined { sandbox, roots }) }
    }

    /// Runs `f` as the job's user when confined.
    pub(crate) fn as_user<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.confined {
            Some(confined) => confined.sandbox.as_user(f),
            None => f(),
        }
    }

    /// Refuses a path that names a place outside the job's directories, before anything is
    /// listed there: `..` is resolved by hand, links are not (the reads and writes check them).
    pub(super) fn check_named(&self, path: &Path) -> Result<(), StoreError> {
        match &self.confined {
            Some(confined) if !inside(&lexical(path), &confined.roots) => {
                Err(StoreError::Outside { path: path.to_path_buf() })
            }
            _ => Ok(()),
        }
    }

    /// A file's bytes; when confined, the file must resolve inside the job's directories and be
    /// readable by its user.
    pub(super) fn read(&self, path: &Path) -> Result<Vec<u8>, StoreError> {
        let cannot = |source| StoreError::Io { what: "cannot read", path: path.to_path_buf(), source };
        match &self.confined {
            None => fs::read(path).map_err(cannot),
            Some(confined) => confined.sandbox.as_user(|| {
                let real = path.canonicalize().map_err(cannot)?;
                if !inside(&real, &confined.roots) {
                    return Err(StoreError::Outside { path: path.to_path_buf() });
                }
                fs::read(&real).map_err(cannot)
            }),
        }
    }

    /// Writes a file, creating its directories; when confined, as the job's user, only inside
    /// its directories, and never through a link at the file's own name.
    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let err = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { what, path, source }
        };
        let Some(confined) = &self.confined else {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(err("cannot create", parent))?;
            }
            return fs::write(path, bytes).map_err(err("cannot write", path));
        };
        self.check_named(path)?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(StoreError::Outside { path: path.to_path_buf() });
        };
        confined.sandbox.as_user(|| {
            fs::create_dir_all(parent).map_err(err("cannot create", parent))?;
            let real = parent.canonicalize().map_err(err("cannot create", parent))?;
            if !inside(&real, &confined.roots) {
                return Err(StoreError::Outside { path: path.to_path_buf() });
            }
            write_unfollowed(&real.join(name), bytes).map_err(err("cannot write", path))
        })
    }
}

/// Writes `bytes` to `path`, replacing a file there; a link at `path` fails (`ELOOP`).
fn write_unfollowed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    file.write_all(bytes)
}

/// Whether `path` is one of `roots` or inside one.
fn inside(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

/// `path` made absolute with `.` and `..` resolved by their names, links left alone.
fn lexical(path: &Path) -> PathBuf {
    // Fails only without a current directory (for a relative path); then the path is checked
    // as given, which matches no root and is refused.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_job_are_refused_before_anything_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, home, temp) = (dir.path().join("ws"), dir.path().join("home"), dir.path().join("temp"));
        let files = JobFiles::confined(&ws, &home, std::slice::from_ref(&temp), Sandbox::none());
        for ok in [ws.join("dist"), home.join(".cache/x"), temp.join("out"), ws.join("a/../b")] {
            assert!(files.check_named(&ok).is_ok(), "{}", ok.display());
        }
        for outside in [PathBuf::from("/etc/cron.d"), ws.join("../data/mobius.db"), dir.path().join("wsx")] {
            let error = files.check_named(&outside).unwrap_err().to_string();
            assert!(error.contains("outside the job's workspace"), "{error}");
        }
        assert!(JobFiles::open(&ws, &home).check_named(Path::new("/etc")).is_ok());
    }

    #[test]
    fn a_link_out_of_the_job_is_neither_read_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, home) = (dir.path().join("ws"), dir.path().join("home"));
        let secret = dir.path().join("secret");
        fs::create_dir_all(&ws).unwrap();
        fs::write(&secret, "the server's").unwrap();
        std::os::unix::fs::symlink(&secret, ws.join("file-link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("dir-link")).unwrap();
        let files = JobFiles::confined(&ws, &home, &[], Sandbox::none());
        assert!(matches!(files.read(&ws.join("file-link")), Err(StoreError::Outside { .. })));
        assert!(matches!(files.read(&ws.join("dir-link/secret")), Err(StoreError::Outside { .. })));
        assert!(matches!(files.write(&ws.join("dir-link/secret"), b"x"), Err(StoreError::Outside { .. })));
        assert!(files.write(&ws.join("file-link"), b"x").is_err());
        assert_eq!(fs::read_to_string(&secret).unwrap(), "the server's");
        files.write(&ws.join("new/dir/file"), b"restored").unwrap();
        assert_eq!(files.read(&ws.join("new/dir/file")).unwrap(), b"restored");
    }
}
