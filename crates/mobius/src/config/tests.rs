use super::*;

#[test]
fn the_public_url_is_layered_trimmed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load(Some(dir.path()), Overrides::default()).unwrap().public_url, None);
    std::fs::write(dir.path().join("mobius.toml"), "public_url = \"https://ci.example.com/\"\n").unwrap();
    let s = load(Some(dir.path()), Overrides::default()).unwrap();
    assert_eq!(s.public_url.as_deref(), Some("https://ci.example.com"));
    let flag = Overrides { public_url: Some("http://10.0.0.5:7070"), ..Default::default() };
    assert_eq!(load(Some(dir.path()), flag).unwrap().public_url.as_deref(), Some("http://10.0.0.5:7070"));
    let bad = Overrides { public_url: Some("ci.example.com"), ..Default::default() };
    let error = load(Some(dir.path()), bad).unwrap_err().to_string();
    assert!(error.contains("public URL `ci.example.com` is not an http:// or https:// URL"), "{error}");
}

#[test]
fn the_database_url_is_layered_and_must_be_postgres_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = |o: Overrides<'_>| load(Some(dir.path()), o).map(|s| s.database_url.map(|u| u.expose().to_owned()));
    assert_eq!(url(Overrides::default()).unwrap(), None, "SQLite by default");
    std::fs::write(dir.path().join("mobius.toml"), "database_url = \"postgres://m:pw@db/mobius\"\n").unwrap();
    assert_eq!(url(Overrides::default()).unwrap().as_deref(), Some("postgres://m:pw@db/mobius"));
    let flag = Overrides { database_url: Some("postgresql://other/mobius"), ..Default::default() };
    assert_eq!(url(flag).unwrap().as_deref(), Some("postgresql://other/mobius"), "the flag wins");
    let bad = Overrides { database_url: Some("mysql://root:hunter2@db/x"), ..Default::default() };
    let error = url(bad).unwrap_err().to_string();
    assert!(error.contains("not a postgres:// URL") && !error.contains("hunter2"), "{error}");
}

#[test]
fn layers_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mobius.toml"), "listen = \"127.0.0.1:9000\"\nattribution_window = \"2d\"\n")
        .unwrap();
    let s = load(Some(dir.path()), Overrides::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(s.rules.attribution_window, SignedDuration::from_hours(48));
    assert_eq!(s.poll_interval, DEFAULT_POLL_INTERVAL);
    assert_eq!(parse_interval("5m").unwrap(), std::time::Duration::from_secs(300));
    assert!(parse_interval("0s").is_err() && parse_interval("5d").is_err());
    let s = load(Some(dir.path()), Overrides { listen: Some("127.0.0.1:9001"), ..Default::default() }).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:9001");
}

#[test]
fn secrets_come_from_a_variable_or_a_file_never_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, "from-a-file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let open = dir.path().join("open-token");
    std::fs::write(&open, "readable\r\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env: BTreeMap<&str, OsString> = BTreeMap::from([
        ("MOBIUS_ADMIN_TOKEN_FILE", file.clone().into()),
        ("MOBIUS_GITHUB_WEBHOOK_SECRET", "plain".into()),
        ("MOBIUS_GITHUB_WEBHOOK_SECRET_FILE", file.into()),
        ("MOBIUS_GITLAB_WEBHOOK_TOKEN_FILE", open.clone().into()),
    ]);
    let secrets = read_env_secrets(&|name| env.get(name).cloned());
    assert_eq!(secrets.get("MOBIUS_ADMIN_TOKEN").unwrap().unwrap().expose(), "from-a-file");
    let both = secrets.get("MOBIUS_GITHUB_WEBHOOK_SECRET").unwrap_err().to_string();
    assert_eq!(both, "both MOBIUS_GITHUB_WEBHOOK_SECRET and MOBIUS_GITHUB_WEBHOOK_SECRET_FILE are set: set only one");
    assert_eq!(secrets.get("MOBIUS_GITLAB_WEBHOOK_TOKEN").unwrap().unwrap().expose(), "readable");
    assert_eq!(
        secrets.warnings,
        [format!(
            "MOBIUS_GITLAB_WEBHOOK_TOKEN_FILE ({}) is readable by its group or others (mode 644): chmod 600 it",
            open.display()
        )]
    );
    let missing = BTreeMap::from([("MOBIUS_ADMIN_TOKEN_FILE", OsString::from("/nonexistent/token"))]);
    let secrets = read_env_secrets(&|name| missing.get(name).cloned());
    let error = secrets.get("MOBIUS_ADMIN_TOKEN").unwrap_err().to_string();
    assert!(error.starts_with("cannot read MOBIUS_ADMIN_TOKEN_FILE (/nonexistent/token): "), "{error}");
}

#[test]
fn limits_come_from_the_file_and_bad_ones_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let load = || load_with(Some(dir.path()), Overrides::default(), &|_| None);
    assert_eq!(load().unwrap().limits, mobius_server::limits::Limits::default());
    let toml =
        "public_metrics = true\n[limits]\nmax_connections = 100\nheader_read_timeout = \"2s\"\nmax_body_mib = 1\n";
    std::fs::write(dir.path().join("mobius.toml"), toml).unwrap();
    let s = load().unwrap();
    assert!(s.public_metrics);
    assert_eq!(s.limits.max_connections, 100);
    assert_eq!(s.limits.header_read_timeout, std::time::Duration::from_secs(2));
    assert_eq!(s.limits.max_body_bytes, 1 << 20);
    for (bad, names) in [
        ("[limits]\nmax_connections = 0\n", "max_connections"),
        ("[limits]\nidle_timeout = \"soon\"\n", "idle_timeout"),
        ("[limits]\nmax_body_mib = 100\n", "body_budget_mib"),
        ("[limits]\nmax_conections = 1\n", "max_conections"),
    ] {
        std::fs::write(dir.path().join("mobius.toml"), bad).unwrap();
        let error = format!("{:#}", load().unwrap_err());
        assert!(error.contains(names), "{bad}: {error}");
    }
}

#[test]
fn run_as_and_sandbox_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let no_env = |_: &str| None;
    let s = load_with(Some(dir.path()), Overrides::default(), &no_env).unwrap();
    assert_eq!((s.run_as, s.sandbox), (None, SandboxMode::Auto));
    std::fs::write(dir.path().join("mobius.toml"), "run_as = \"nobody\"\nsandbox = \"off\"\n").unwrap();
    let s = load_with(Some(dir.path()), Overrides::default(), &no_env).unwrap();
    assert_eq!(s.run_as.map(|u| u.uid), Some(65534));
    assert_eq!(s.sandbox, SandboxMode::Off);
    let env = |name: &str| match name {
        "MOBIUS_RUN_AS" => Some("0".to_owned()),
        "MOBIUS_SANDBOX" => Some("bwrap".to_owned()),
        _ => None,
    };
    let s = load_with(Some(dir.path()), Overrides::default(), &env).unwrap();
    assert_eq!((s.run_as.map(|u| u.name), s.sandbox), (Some("root".to_owned()), SandboxMode::Bwrap));

    std::fs::write(dir.path().join("mobius.toml"), "run_as = \"no-such-user\"\n").unwrap();
    let error = format!("{:#}", load_with(Some(dir.path()), Overrides::default(), &no_env).unwrap_err());
    assert!(
        error.ends_with("mobius.toml: run_as: unknown user `no-such-user` (run_as): no such user on this machine"),
        "{error}"
    );
    let env = |name: &str| (name == "MOBIUS_SANDBOX").then(|| "docker".to_owned());
    std::fs::remove_file(dir.path().join("mobius.toml")).unwrap();
    let error = format!("{:#}", load_with(Some(dir.path()), Overrides::default(), &env).unwrap_err());
    assert_eq!(error, "MOBIUS_SANDBOX: unknown sandbox mode `docker`: use auto, bwrap or off");
}

#[test]
fn the_original_environment_block_is_found() {
    let (start, end) = original_environment_block().expect("env_start and env_end in /proc/self/stat");
    assert!(start < end, "{start:x}..{end:x}");
    let environ = std::fs::read("/proc/self/environ").unwrap();
    assert_eq!(end - start, environ.len());
}

#[test]
fn bad_files_name_the_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mobius.toml"), "listen = \"127.0.0.1:9000\"\nlisten_port = 3\n").unwrap();
    let err = load(Some(dir.path()), Overrides::default()).unwrap_err().to_string();
    assert!(err.contains("mobius.toml:2:1"), "{err}");
    assert!(err.contains("listen_port"), "{err}");
    for bad in ["", "h", "0h", "3y", "-2d"] {
        assert!(parse_window(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_policy_dir_is_layered_and_must_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let policy_dir = |o: Overrides<'_>| load(Some(dir.path()), o).map(|s| s.policy_dir);
    assert_eq!(policy_dir(Overrides::default()).unwrap(), None, "no server policies by default");
    let (from_file, from_flag) = (dir.path().join("file-policies"), dir.path().join("flag-policies"));
    std::fs::create_dir_all(&from_file).unwrap();
    std::fs::create_dir_all(&from_flag).unwrap();
    std::fs::write(dir.path().join("mobius.toml"), format!("policy_dir = {:?}\n", from_file.display().to_string()))
        .unwrap();
    assert_eq!(policy_dir(Overrides::default()).unwrap(), Some(from_file));
    let flag = Overrides { policy_dir: Some(&from_flag), ..Default::default() };
    assert_eq!(policy_dir(flag).unwrap(), Some(from_flag.clone()), "the flag wins");
    let missing = dir.path().join("missing");
    let error = policy_dir(Overrides { policy_dir: Some(&missing), ..Default::default() }).unwrap_err().to_string();
    assert!(error.contains("is not a directory") && error.contains("missing"), "{error}");
}
