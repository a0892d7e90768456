//! The command line as a person meets it: help, bad input, import and send.

use crate::util::Dir;

#[test]
fn help_lists_every_command() {
    let dir = Dir::new();
    let help = dir.ok(&["--help"]);
    for command in ["serve", "events", "dora", "flow", "token", "repo", "lint", "run"] {
        assert!(help.contains(command), "{help}");
    }
    let dora = dir.ok(&["dora", "--help"]);
    for flag in ["--service", "--environment", "--since", "--from", "--to", "--bands", "--explain", "--server"] {
        assert!(dora.contains(flag), "{dora}");
    }
}

#[test]
fn import_reports_bad_records_by_file_and_line_and_keeps_the_good_ones() {
    let dir = Dir::new();
    let good = crate::util::deployed("one", "shop", "production", "2024-05-01T10:00:00Z");
    let mut bad = good.clone();
    bad["context"]["id"] = serde_json::json!("two");
    bad["subject"]["content"].as_object_mut().unwrap().remove("environment");
    let file = dir.write("events.ndjson", &format!("{good}\n\n{bad}\n{{\"context\": 3\n"));
    let out = dir.run(&["events", "import", file.to_str().unwrap()]);
    assert!(!out.status.success(), "rejections make the exit code non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("events.ndjson:3:") && stderr.contains("environment"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 stored"), "{stdout}");
    let listed = dir.json(&["events", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let file = dir.write("array.json", &format!("[{good}]"));
    let report = dir.json(&["events", "import", file.to_str().unwrap()]);
    assert_eq!((report["stored"].as_u64(), report["duplicates"].as_u64()), (Some(0), Some(1)));
}

/// A file larger than a read (1 MiB) is imported as it is read: a refused record in the middle
/// is reported at its line and the records around it are kept; malformed JSON further on ends
/// the file there, reported at its line and column; text that is not UTF-8 is refused at its
/// line.
#[test]
fn a_large_file_is_imported_as_it_is_read_and_bad_records_keep_their_lines() {
    let dir = Dir::new();
    let mut text = String::new();
    for line in 1..=5_000 {
        match line {
            1_500 => text.push_str("{\"context\": {\"id\": \"no-type\"}}"),
            4_000 => text.push_str("{\"context\": [1, }"),
            _ => text.push_str(
                &crate::util::deployed(&format!("d-{line}"), "shop", "production", "2024-05-01T10:00:00Z").to_string(),
            ),
        }
        text.push('\n');
    }
    assert!(text.len() > 1 << 20, "more than one read");
    let file = dir.write("large.ndjson", &text);
    let out = dir.run(&["--json", "events", "import", file.to_str().unwrap()]);
    assert!(!out.status.success(), "rejections make the exit code non-zero");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["stored"].as_u64(), report["rejected"].as_u64()), (Some(3_998), Some(2)), "{report}");
    let rejections = report["rejections"].as_array().unwrap();
    assert_eq!(rejections[0]["line"], 1_500, "{report}");
    assert_eq!(rejections[1]["line"], 4_000, "{report}");
    let malformed = rejections[1]["error"].as_str().unwrap();
    assert!(
        malformed.starts_with("malformed JSON at column 17: ") && malformed.ends_with("at line 4000 column 17"),
        "{malformed}"
    );

    let mut bytes =
        format!("{}\n", crate::util::deployed("u-1", "shop", "production", "2024-05-01T10:00:00Z")).into_bytes();
    bytes.extend_from_slice(b"{\"context\": \"\xff\"}\n");
    bytes.extend_from_slice(
        format!("{}\n", crate::util::deployed("u-3", "shop", "production", "2024-05-01T10:00:00Z")).as_bytes(),
    );
    let file = dir.path().join("latin1.ndjson");
    std::fs::write(&file, bytes).unwrap();
    let out = dir.run(&["events", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("latin1.ndjson:2: not UTF-8 at line 2"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 stored"), "what came before is kept");
}

/// A malformed JSON array is refused whole, before any of it is stored, whether it is a file
/// or standard input; a well-formed one, or records one after another, import from either.
#[test]
fn a_malformed_array_stores_nothing_and_standard_input_imports_like_a_file() {
    let dir = Dir::new();
    let event = |id: &str| crate::util::deployed(id, "shop", "production", "2024-05-01T10:00:00Z").to_string();
    let broken = format!("[{},\n{},\n{{\"context\": ]", event("a-1"), event("a-2"));
    let file = dir.write("broken.json", &broken);
    let out = dir.run(&["events", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.json") && stderr.contains("line 3 column 13: not a JSON array of events"),
        "{stderr}"
    );
    let out = crate::util::with_stdin(&dir, &["events", "import", "-"], &broken);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a JSON array of events"));
    assert_eq!(dir.json(&["events", "list"]), serde_json::json!([]), "nothing of either was stored");

    let array = format!("  [{},\n{}]\n", event("s-1"), event("s-2"));
    let out = crate::util::with_stdin(&dir, &["--json", "events", "import", "-"], &array);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stored"], 2, "{report}");
    let stream = format!("{}\n{}\n", event("s-2"), event("s-3"));
    let out = crate::util::with_stdin(&dir, &["--json", "events", "import", "-"], &stream);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["stored"].as_u64(), report["duplicates"].as_u64()), (Some(1), Some(1)), "{report}");
}

#[test]
fn every_conformance_event_is_accepted_by_import() {
    let dir = Dir::new();
    let conformance = crate::util::corpus("cdevents-v0.5.1/conformance");
    let mut files: Vec<String> = std::fs::read_dir(&conformance)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 40);
    let mut args = vec!["events", "import"];
    args.extend(files.iter().map(String::as_str));
    let report = dir.json(&args);
    assert_eq!(report["rejected"], 0, "{report}");
    // The conformance files share one (source, id), so all but the first are duplicates.
    assert_eq!(report["stored"].as_u64().unwrap() + report["duplicates"].as_u64().unwrap(), files.len() as u64);
}

#[test]
fn send_builds_an_event_from_flags_and_reads_one_from_stdin() {
    let dir = Dir::new();
    let content = r#"{"environment":{"id":"production"},"artifactId":"pkg:generic/shop@1"}"#;
    let sent = dir.json(&[
        "events",
        "send",
        "--type",
        "dev.cdevents.service.deployed.0.3.0",
        "--subject",
        "shop",
        "--content",
        content,
        "--timestamp",
        "2024-05-01T10:00:00Z",
    ]);
    assert_eq!(sent["status"], "stored");
    let out = dir.run(&["events", "send", "--type", "dev.cdevents.service.deployed.0.3.0", "--subject", "shop"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing field"));

    use std::io::Write;
    let mut child = dir
        .cmd(&["events", "send", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let event = crate::util::deployed("stdin-1", "shop", "production", "2024-05-02T10:00:00Z");
    child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "stored stdin-1");

    let dora = dir.json(&["dora", "--service", "shop", "--from", "2024-04-26", "--to", "2024-05-06"]);
    assert_eq!(dora["deployment_frequency"]["deployments"], 2);
    let table = dir.ok(&["dora", "--service", "shop", "--from", "2024-04-26", "--to", "2024-05-06"]);
    assert!(table.contains("shop") && !table.contains('\u{1b}'), "NO_COLOR is respected:\n{table}");
}

#[test]
fn bad_flags_and_config_are_refused_clearly() {
    let dir = Dir::new();
    let out = dir.run(&["dora", "--since", "3y"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`since`"));
    let out = dir.run(&["dora", "--bands", "dora-1999"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed-2023"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::create_dir_all(dir.data()).unwrap();
    std::fs::write(dir.data().join("mobius.toml"), "listen = 7070\n").unwrap();
    let out = dir.run(&["serve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mobius.toml:1:10"), "{stderr}");
}

#[test]
fn repositories_give_changes_by_git_ancestry() {
    let dir = Dir::new();
    let repo = dir.path().join("clone");
    let git = |args: &[&str], date: &str| {
        let status = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        String::from_utf8_lossy(&status.stdout).trim().to_owned()
    };
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q", "-b", "main"], "2024-05-01T08:00:00Z");
    let mut shas = Vec::new();
    for (i, at) in ["2024-05-01T08:00:00Z", "2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z"].iter().enumerate() {
        git(&["commit", "-q", "--allow-empty", "-m", &format!("change {i}")], at);
        shas.push(git(&["rev-parse", "HEAD"], at));
    }
    dir.ok(&["repo", "add", repo.to_str().unwrap(), "--name", "acme/shop"]);
    let listed = dir.json(&["repo", "list"]);
    assert_eq!(listed[0]["name"], "acme/shop");

    // No push was ever seen: only the repository knows what the deployment shipped.
    let status = serde_json::json!({"webhook": "github", "event": "deployment_status", "payload": {
        "action": "created",
        "deployment_status": {"id": 1, "state": "success", "environment": "production", "created_at": "2024-05-01T12:00:00Z", "updated_at": "2024-05-01T12:00:00Z"},
        "deployment": {"id": 10, "sha": shas[2], "ref": "main", "environment": "production", "created_at": "2024-05-01T11:55:00Z", "updated_at": "2024-05-01T12:00:00Z"},
        "repository": {"name": "shop", "full_name": "acme/shop"}}});
    let file = dir.write("deploy.ndjson", &status.to_string());
    dir.ok(&["events", "import", file.to_str().unwrap()]);
    let dora = dir.json(&["dora", "--service", "shop", "--from", "2024-05-01", "--to", "2024-05-02", "--explain"]);
    assert_eq!(dora["lead_time"]["changes"], 3, "{dora:#}");
    assert_eq!(dora["lead_time"]["median_seconds"], 10800.0);
}

#[test]
fn import_and_dora_work_against_a_server_as_they_do_locally() {
    let history = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/rollback-and-incident-attribution/events.ndjson");
    let history = history.to_str().unwrap();
    let query = ["dora", "--service", "api", "--from", "2024-05-01", "--to", "2024-05-11", "--explain"];

    let local = Dir::new();
    local.ok(&["events", "import", history]);
    let expected = local.json(&query);

    let remote = Dir::new();
    let server = remote.serve(&[]);
    let mut args = vec!["events", "import", history, "--server", &server.base, "--token", crate::util::ADMIN];
    let report = remote.json(&args);
    assert_eq!((report["stored"].as_u64(), report["duplicates"].as_u64()), (Some(12), Some(1)), "{report}");
    args.truncate(0);
    args.extend_from_slice(&query);
    args.extend_from_slice(&["--server", &server.base, "--token", crate::util::ADMIN]);
    assert_eq!(remote.json(&args), expected);

    let wrong = remote.run(&["dora", "--server", &server.base, "--token", "nope"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("unknown token"));
}

#[test]
fn an_incident_by_hand_is_opened_acknowledged_and_resolved() {
    let dir = Dir::new();
    let out = dir.ok(&["incident", "open", "shop", "--title", "checkout is slow", "--severity", "sev1"]);
    assert!(out.starts_with("Opened incident inc-"), "{out}");
    let listed = dir.json(&["incident", "list", "--open"]);
    assert_eq!(listed[0]["severity"], "sev1", "{listed}");
    assert!(dir.ok(&["incident", "list"]).contains(" sev1 "));
    let key = listed[0]["key"].as_str().unwrap().to_owned();
    let id = key.rsplit('#').next().unwrap().to_owned();
    assert!(dir.ok(&["incident", "ack", &id]).contains("acknowledged"));
    assert!(dir.json(&["incident", "list"])[0]["acknowledged"].is_string());
    assert!(dir.ok(&["incident", "resolve", &id]).contains("resolved"));
    assert_eq!(dir.json(&["incident", "list", "--open"]), serde_json::json!([]));
    let shown = dir.ok(&["incident", "show", &id]);
    assert!(shown.contains("# Post-mortem: checkout is slow") && shown.contains("| acknowledged |"), "{shown}");
    assert!(shown.contains("| severity | sev1 |"), "{shown}");
    assert!(shown.contains("incident detected: checkout is slow") && shown.contains("incident resolved"), "{shown}");
    let dora = dir.json(&["dora", "--service", "shop"]);
    assert_eq!(dora["recovery_time"]["incidents"], 1, "{dora}");
    let unknown = dir.run(&["incident", "ack", "inc-404"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no incident `inc-404`"));
}

/// An import larger than a server takes in one request goes in requests of at most
/// `MAX_BATCH_ITEMS` records, and a list longer than a page is read page by page.
#[test]
fn a_large_import_and_a_long_list_go_through_a_server_in_pieces() {
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let remote = ["--server", server.base.as_str(), "--token", crate::util::ADMIN];
    let count = mobius_events::MAX_BATCH_ITEMS + 5;
    let mut file = String::new();
    for i in 0..count {
        file.push_str(
            &crate::util::deployed(&format!("d-{i}"), "shop", "production", "2024-05-01T10:00:00Z").to_string(),
        );
        file.push('\n');
    }
    let path = dir.write("many.ndjson", &file);
    let mut args = vec!["events", "import", path.to_str().unwrap()];
    args.extend(remote);
    let report = dir.json(&args);
    assert_eq!((report["stored"].as_u64(), report["rejected"].as_u64()), (Some(count as u64), Some(0)), "{report}");

    let limit = count.to_string();
    let mut args = vec!["events", "list", "--limit", &limit];
    args.extend(remote);
    let listed = dir.json(&args);
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), count, "every page, not the first 1000");
    assert!(listed.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()), "in order, once each");
    let mut args = vec!["events", "list", "--limit", "3", "--after", "10"];
    args.extend(remote);
    let first = dir.json(&args);
    assert_eq!(
        first.as_array().map(|a| a.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>()),
        Some(vec![11, 12, 13])
    );
}

#[test]
fn an_incident_by_hand_goes_through_a_server_as_it_does_locally() {
    /// `args` against `server`, as an admin.
    fn with<'a>(args: &[&'a str], server: &'a str) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(["--server", server, "--token", crate::util::ADMIN]);
        all
    }
    let dir = Dir::new();
    let server = dir.serve(&[]);
    let base = server.base.as_str();
    let opened = dir.json(&with(&["incident", "open", "shop", "--title", "checkout is slow"], base));
    let id = opened["incident"].as_str().expect("an id").to_owned();
    assert_eq!(opened["key"], format!("cdevents:/mobius/cli#{id}"));
    let listed = dir.json(&with(&["incident", "list", "--open"], base));
    assert_eq!(listed[0]["key"], opened["key"], "{listed}");
    assert_eq!(listed[0]["severity"], "sev2", "the default severity");
    assert!(dir.ok(&with(&["incident", "ack", &id], base)).contains("acknowledged"));
    assert!(dir.ok(&with(&["incident", "resolve", &id], base)).contains("resolved"));
    assert_eq!(dir.json(&with(&["incident", "list", "--open"], base)), serde_json::json!([]));
    let recorded = dir.ok(&with(&["postmortem", &id, "--recorded", "https://wiki/pm/1"], base));
    assert!(recorded.contains(&format!("cdevents:/mobius/cli#{id}")), "{recorded}");
    let events = dir.json(&with(&["events", "list", "--limit", "10"], base));
    let types: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "dev.cdevents.incident.detected.0.3.0",
            "dev.cdeventsx.mobius-incident.acknowledged.0.1.0",
            "dev.cdevents.incident.resolved.0.3.0",
            "dev.cdeventsx.mobius-postmortem.recorded.0.1.0"
        ]
    );
    let unknown = dir.run(&with(&["incident", "ack", "inc-404"], base));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no incident `inc-404`"));
}
