//! The sandbox with real processes and files, as root (as CI runs the suite).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use mobius_sandbox::{Mode, Sandbox, User};

fn nobody_sandbox() -> Sandbox {
    assert!(nix::unistd::geteuid().is_root(), "this test acts as `nobody` and must run as root, as CI does");
    Sandbox::new(Mode::Off, Some(User::lookup("nobody").expect("nobody")), &[]).expect("sandbox")
}

#[test]
fn as_user_reads_and_writes_with_the_users_permissions_then_returns_to_root() {
    let sandbox = nobody_sandbox();
    let dir = tempfile::tempdir().expect("temp dir");
    let private = dir.path().join("private");
    std::fs::write(&private, "root's").expect("write");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let read = sandbox.as_user(|| std::fs::read_to_string(&private));
    assert_eq!(read.expect_err("nobody cannot read a root-only file").kind(), std::io::ErrorKind::PermissionDenied);
    let made = open.join("made");
    sandbox.as_user(|| std::fs::write(&made, "x")).expect("nobody writes where others may");
    assert_eq!(std::fs::metadata(&made).expect("made").uid(), 65534, "created as nobody");
    assert!(sandbox.as_user(|| std::fs::write(dir.path().join("denied"), "x")).is_err());

    // Back to root, also after a panic inside.
    let caught = std::panic::catch_unwind(|| sandbox.as_user(|| panic!("inside")));
    assert!(caught.is_err());
    assert_eq!(std::fs::read_to_string(&private).expect("root reads again"), "root's");
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
    let fs_uid = status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(4));
    assert_eq!(fs_uid, Some("0"));
}
