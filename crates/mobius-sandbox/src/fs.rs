//! The files around a sandbox: handing a job's directories over to the user, and the data
//! directory the user must be able to pass through.

use std::ffi::CStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use crate::User;

/// Opening a directory without following a link in its last component: a link put where a
/// directory was fails (`ELOOP`, `ENOTDIR`) rather than leading the walk elsewhere.
const DIRECTORY: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// Gives `root` and everything under it to `user`, through file descriptors: each entry is
/// changed relative to its directory's descriptor without following links, and a directory
/// after its contents (until then it is still root's, so nothing of the user's can change it
/// under the walk).
pub(crate) fn chown_tree(root: &Path, user: &User) -> io::Result<()> {
    let (uid, gid) = (Some(Uid::from_raw(user.uid)), Some(Gid::from_raw(user.gid)));
    let mut dir = Dir::open(root, DIRECTORY, Mode::empty())?;
    chown_entries(&mut dir, uid, gid)?;
    nix::unistd::fchown(dir.as_fd(), uid, gid)?;
    Ok(())
}

fn chown_entries(dir: &mut Dir, uid: Option<Uid>, gid: Option<Gid>) -> io::Result<()> {
    let mut entries: Vec<(std::ffi::CString, Option<Type>)> = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            entries.push((name.to_owned(), entry.file_type()));
        }
    }
    for (name, kind) in entries {
        let name: &CStr = &name;
        let is_dir = match kind {
            Some(kind) => kind == Type::Directory,
            None => nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFDIR),
        };
        if is_dir {
            match Dir::openat(dir.as_fd(), name, DIRECTORY, Mode::empty()) {
                Ok(mut sub) => {
                    chown_entries(&mut sub, uid, gid)?;
                    nix::unistd::fchown(sub.as_fd(), uid, gid)?;
                    continue;
                }
                // Replaced by something else since it was listed: change that, unfollowed.
                Err(Errno::ELOOP | Errno::ENOTDIR) => {}
                Err(Errno::ENOENT) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        match nix::unistd::fchownat(dir.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Without bubblewrap the user reaches a job's directories through the data directory: it must
/// be traversable by others. `0711` lets the user pass without listing it; a warning says what
/// that exposes.
pub(crate) fn open_data_dir(data_dir: &Path, user: &User) -> io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let mode = std::fs::metadata(data_dir)?.permissions().mode() & 0o7777;
    if mode != 0o711 {
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))?;
    }
    let exposed: Vec<String> = std::fs::read_dir(data_dir)?
        .filter_map(Result::ok)
        .filter(|entry| entry.metadata().is_ok_and(|m| m.is_file() && m.mode() & 0o004 != 0))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    tracing::warn!(
        data_dir = %data_dir.display(), user = %user.name, was = format!("{mode:o}"),
        exposed = %exposed.join(", "),
        "without bubblewrap the data directory is made traversable (0711) for the run_as user: its files \
         that others may read (listed as exposed) are readable by every step; install bubblewrap"
    );
    Ok(())
}

/// Warns when `user` cannot pass through a directory above `data_dir`: sandboxed paths keep
/// their host paths, so every step would fail to start.
pub(crate) fn warn_untraversable(data_dir: &Path, user: &User) {
    let data_dir = crate::canonical(data_dir);
    for dir in data_dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else { continue };
        let mode = meta.mode();
        let passes = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !passes {
            tracing::warn!(
                dir = %dir.display(), user = %user.name, mode = format!("{:o}", mode & 0o7777),
                "the run_as user cannot traverse this directory above the data directory: steps and instances \
                 cannot reach their directories; put the data directory under a traversable one such as /var/lib"
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_tree_changes_everything_and_follows_no_link() {
        if !nix::unistd::geteuid().is_root() {
            panic!("this test changes file owners and needs root (CI runs the suite as root)");
        }
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "root's").unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        let nobody = User { name: "nobody".into(), uid: 65534, gid: 65534, home: "/nonexistent".into() };
        chown_tree(&root, &nobody).unwrap();
        for path in ["", "a", "a/b", "a/b/file"] {
            let meta = std::fs::metadata(root.join(path)).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{path}");
        }
        assert_eq!(std::fs::symlink_metadata(root.join("a/link")).unwrap().uid(), 65534);
        assert_eq!(std::fs::metadata(&outside).unwrap().uid(), 0, "the link was followed");
    }
}
