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

#[test]
fn from_settings_as_root_runs_as_nobody_by_default_and_root_opts_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let mode = || std::fs::metadata(&data).expect("data dir").permissions().mode() & 0o7777;
    let _ = nobody_sandbox();

    // As root with bubblewrap: `nobody`, the data directory hidden and left as it is.
    let sandbox = Sandbox::from_settings(Mode::Bwrap, None, &data, &[]).unwrap_or_else(|e| {
        panic!("bubblewrap does not work here ({e:#}): scripts/test installs bubblewrap, and CI always has it")
    });
    assert_eq!(sandbox.isolation(), mobius_sandbox::Isolation::Bwrap);
    assert_eq!(sandbox.run_as().map(|u| u.uid), Some(65534));
    assert_eq!(sandbox.hidden(), [data.canonicalize().expect("canonical")]);
    assert_eq!(mode(), 0o700);

    // `run_as = "root"` keeps root: nothing to drop, nothing to open up.
    let root = User::lookup("root").expect("root");
    let sandbox = Sandbox::from_settings(Mode::Off, Some(&root), &data, &[]).expect("sandbox");
    assert!(sandbox.run_as().is_none() && !sandbox.is_active());
    assert_eq!(mode(), 0o700);

    // Without bubblewrap, the user reaches its directories through the data directory.
    let sandbox = Sandbox::from_settings(Mode::Off, None, &data, &[]).expect("sandbox");
    assert_eq!(sandbox.isolation(), mobius_sandbox::Isolation::Processes);
    assert_eq!(sandbox.run_as().map(|u| u.name.as_str()), Some("nobody"));
    assert_eq!(mode(), 0o711);
}

#[test]
fn bwrap_mode_names_what_is_missing() {
    // A PATH without bubblewrap is the easy way to see the error; the probe's answer is cached
    // per process, so this runs in a child: this binary, asked for `missing_bwrap_child`.
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "missing_bwrap_child", "--nocapture", "--test-threads=1"])
        .env("PATH", "/nonexistent")
        .env("MISSING_BWRAP_CHILD", "1")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("error: sandbox = \"bwrap\" but bubblewrap cannot be used here: `bwrap` is not on PATH (apt-get install bubblewrap)"), "{stdout}");
}

/// Not a test of its own: what `bwrap_mode_names_what_is_missing` runs in a child.
#[test]
fn missing_bwrap_child() {
    if std::env::var_os("MISSING_BWRAP_CHILD").is_none() {
        return;
    }
    let error = Sandbox::new(Mode::Bwrap, None, &[]).expect_err("no bwrap on PATH");
    println!("error: {error}");
    let auto = Sandbox::new(Mode::Auto, None, &[]).expect("auto falls back");
    assert_eq!(auto.isolation(), mobius_sandbox::Isolation::Processes);
}
