//! Users commands run as, and acting as one of them for file access on one thread.

use std::path::PathBuf;

use nix::unistd::{Gid, Uid};

use crate::SandboxError;

/// A user of this machine, as `run_as` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory: `HOME` of instances that run as this user.
    pub home: PathBuf,
}

impl User {
    /// The user named `spec`, or with that numeric uid (`65534`), from the user database.
    pub fn lookup(spec: &str) -> Result<User, SandboxError> {
        let spec = spec.trim();
        let found = match spec.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(spec),
        };
        let user = found
            .map_err(|source| SandboxError::UserLookup { user: spec.to_owned(), source })?
            .ok_or_else(|| SandboxError::UnknownUser { user: spec.to_owned() })?;
        Ok(User { name: user.name, uid: user.uid.as_raw(), gid: user.gid.as_raw(), home: user.dir })
    }

    /// Whether this is the superuser (uid 0).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// This thread acting as a user for file access until dropped: its filesystem uid and gid are
/// the user's and it has no supplementary groups. Linux keeps these per thread (glibc's
/// `setgroups` would change every thread, hence the raw system call), and a filesystem uid other
/// than 0 drops the capabilities that bypass file permissions, until it is 0 again.
pub(crate) struct FsIdentity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

impl FsIdentity {
    /// Switches this thread to `user`'s identity for file access.
    pub(crate) fn assume(user: &User) -> FsIdentity {
        // Without our own groups there is nothing to restore them to: keep none rather than
        // guess (a server running as root has none it needs for its files).
        let groups = nix::unistd::getgroups().unwrap_or_default();
        set_thread_groups(&[]);
        let gid = nix::unistd::setfsgid(Gid::from_raw(user.gid));
        let uid = nix::unistd::setfsuid(Uid::from_raw(user.uid));
        FsIdentity { uid, gid, groups }
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // The uid first: back to 0, it brings back the capability to set groups.
        nix::unistd::setfsuid(self.uid);
        nix::unistd::setfsgid(self.gid);
        set_thread_groups(&self.groups);
    }
}

/// Sets the calling thread's supplementary groups, and only its own.
fn set_thread_groups(groups: &[Gid]) {
    let raw: Vec<libc::gid_t> = groups.iter().map(|g| g.as_raw()).collect();
    // SAFETY: setgroups(2) reads `raw.len()` group ids from the pointer, which points at
    // that many initialised `gid_t`s (or is dangling with a length of 0, which it never reads).
    // The raw system call changes this thread's credentials only, which is the point.
    let result = unsafe { libc::syscall(libc::SYS_setgroups, raw.len(), raw.as_ptr()) };
    // Root may always set groups; failing here means we are not root, and then there were no
    // other groups to drop for the fsuid switch to matter (it fails as well without privilege).
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_name_and_id() {
        let root = User::lookup("root").unwrap();
        assert_eq!((root.uid, root.gid, root.is_root()), (0, 0, true));
        assert_eq!(User::lookup("0").unwrap(), root);
        let error = User::lookup("no-such-user-here").unwrap_err().to_string();
        assert_eq!(error, "unknown user `no-such-user-here` (run_as): no such user on this machine");
    }
}
