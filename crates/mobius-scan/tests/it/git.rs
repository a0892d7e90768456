//! History and staged scans on real repositories made with the git CLI.

use mobius_scan::{Finding, ScanArgs, ScanTarget};

use crate::util::{commit, git, repo, synth};

fn scan(target: ScanTarget) -> Vec<Finding> {
    mobius_scan::scan(&ScanArgs::new(target)).unwrap_or_else(|e| panic!("{e:#?}")).findings
}

fn history(dir: &std::path::Path, range: Option<&str>) -> Vec<Finding> {
    scan(ScanTarget::GitRange { repo: dir.to_path_buf(), range: range.map(str::to_string) })
}

#[test]
fn a_secret_removed_later_is_still_found_in_the_commit_that_added_it() {
    let dir = repo();
    let token = synth("ghp_{an:36}");
    let first = commit(dir.path(), &[("README.md", "# fixture\n")], "start");
    let added = commit(
        dir.path(),
        &[("config/app.env", &format!("NAME=fixture\nGITHUB_TOKEN={token}\nPORT=8080\n"))],
        "add ci token",
    );
    let removed = commit(dir.path(), &[("config/app.env", "NAME=fixture\nPORT=8080\n")], "remove the token");

    let findings = history(dir.path(), None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let finding = &findings[0];
    assert_eq!(finding.rule_id, "github-pat");
    assert_eq!(finding.commit, added);
    assert_ne!(finding.commit, removed, "the deleted line is not reported for the commit that removed it");
    assert_eq!(finding.file, "config/app.env");
    assert_eq!((finding.start_line, finding.start_column), (2, 14));
    assert_eq!(finding.author, "Fixture Author");
    assert_eq!(finding.email, "author@example.test");
    assert_eq!(finding.date, "2026-01-02T03:04:05Z");
    assert_eq!(finding.message, "add ci token");
    assert_eq!(finding.fingerprint, format!("{added}:config/app.env:github-pat:2"));

    // A range after the secret's commit has only its removal: nothing to report.
    assert!(history(dir.path(), Some(&format!("{added}..HEAD"))).is_empty());
    assert_eq!(history(dir.path(), Some(&format!("{first}..{added}"))).len(), 1);
}

#[test]
fn only_added_lines_are_scanned_and_line_numbers_are_the_new_files() {
    let dir = repo();
    let old = synth("glpat-{url:20}");
    let new = synth("npm_{an:36}");
    let lines: Vec<String> = (1..=20).map(|i| format!("line {i}")).collect();
    let mut with_old = lines.clone();
    with_old[4] = format!("token: {old}");
    commit(dir.path(), &[("a.yml", &with_old.join("\n"))], "old token");
    let mut edited = with_old.clone();
    edited[14] = format!("npm: {new}");
    edited[2] = "line three, edited".to_string();
    let second = commit(dir.path(), &[("a.yml", &edited.join("\n"))], "new token");

    let findings = history(dir.path(), Some("HEAD~1..HEAD"));
    assert_eq!(findings.len(), 1, "the old token is only context in the second commit: {findings:#?}");
    assert_eq!(findings[0].rule_id, "npm-access-token");
    assert_eq!(findings[0].commit, second);
    assert_eq!(findings[0].start_line, 15);
}

#[test]
fn a_renamed_file_is_not_reported_again() {
    let dir = repo();
    let token = synth("dckr_pat_{url:27}");
    let body = format!("{}\nDOCKER_TOKEN={token}\n", "# registry login\n".repeat(20));
    let added = commit(dir.path(), &[("ci/docker.env", &body)], "add");
    std::fs::create_dir(dir.path().join("deploy")).expect("mkdir");
    git(dir.path(), &["mv", "ci/docker.env", "deploy/docker.env"]);
    git(dir.path(), &["commit", "-q", "-m", "move"]);
    let findings = history(dir.path(), None);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!((findings[0].commit.as_str(), findings[0].file.as_str()), (added.as_str(), "ci/docker.env"));
}

#[test]
fn multi_line_keys_are_found_whole_in_a_hunk() {
    let dir = repo();
    let key = synth("-----BEGIN OPENSSH PRIVATE KEY-----\n{b64:70}\n{b64:70}\n-----END OPENSSH PRIVATE KEY-----\n");
    commit(dir.path(), &[("deploy/id_ed25519", &format!("\n{key}"))], "key");
    let findings = history(dir.path(), None);
    assert_eq!(findings.len(), 1);
    assert_eq!((findings[0].start_line, findings[0].end_line), (2, 5));
}

#[test]
fn gitleaksignore_takes_a_fingerprint_with_or_without_its_commit() {
    let dir = repo();
    let a = synth("lin_api_{an:40}");
    let first = commit(dir.path(), &[("a.txt", &format!("{a}\n")), ("b.txt", &format!("x\n{a}\n"))], "two");
    assert_eq!(history(dir.path(), None).len(), 2);
    std::fs::write(
        dir.path().join(".gitleaksignore"),
        format!("# reviewed: fixtures\n{first}:a.txt:linear-api-key:1\nb.txt:linear-api-key:2 # any commit\n"),
    )
    .expect("write");
    let outcome =
        mobius_scan::scan(&ScanArgs::new(ScanTarget::GitRange { repo: dir.path().to_path_buf(), range: None }))
            .expect("scan");
    assert_eq!((outcome.findings.len(), outcome.ignored), (0, 2));
}

#[test]
fn commit_allowlist_in_the_repository_config() {
    let dir = repo();
    let token = synth("dop_v1_{hex:64}");
    let allowed = commit(dir.path(), &[("a.txt", &format!("t={token}\n"))], "known test token");
    commit(
        dir.path(),
        &[(".gitleaks.toml", &format!("[extend]\nuseDefault = true\n[allowlist]\ncommits = [\"{allowed}\"]\n"))],
        "allow it",
    );
    assert!(history(dir.path(), None).is_empty());
    commit(dir.path(), &[("b.txt", &format!("t={token}\n"))], "again");
    let findings = history(dir.path(), None);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].file, "b.txt");
}

#[test]
fn staged_mode_scans_the_index_not_the_work_tree() {
    let dir = repo();
    commit(dir.path(), &[("README.md", "# fixture\n")], "start");
    let staged = synth("xoxb-{d:11}-{d:12}-{an:24}");
    let unstaged = synth("sk_live_{an:24}");
    std::fs::write(dir.path().join("slack.env"), format!("SLACK={staged}\n")).expect("write");
    git(dir.path(), &["add", "slack.env"]);
    std::fs::write(dir.path().join("stripe.env"), format!("STRIPE={unstaged}\n")).expect("write");

    let findings = scan(ScanTarget::Staged { repo: dir.path().to_path_buf() });
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule_id, "slack-bot-token");
    assert_eq!(findings[0].file, "slack.env");
    assert_eq!(findings[0].commit, "");
    assert_eq!(findings[0].fingerprint, "slack.env:slack-bot-token:1");
}

#[test]
fn staged_mode_works_before_the_first_commit() {
    let dir = repo();
    let token = synth("shpat_{hex:32}");
    std::fs::write(dir.path().join("shop.env"), format!("SHOPIFY={token}\n")).expect("write");
    git(dir.path(), &["add", "shop.env"]);
    let findings = scan(ScanTarget::Staged { repo: dir.path().to_path_buf() });
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].secret, token);
}

#[test]
fn the_pre_commit_hook_runs_a_staged_scan() {
    let script = mobius_scan::pre_commit_hook_script();
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains("mobius scan secrets --staged"));
    let status = std::process::Command::new("sh").arg("-n").arg("-c").arg(script).status().expect("sh runs");
    assert!(status.success(), "the hook is not valid sh");
}

#[test]
fn a_bad_range_is_an_error_with_gits_message() {
    let dir = repo();
    commit(dir.path(), &[("a", "a\n")], "a");
    let err = mobius_scan::scan(&ScanArgs::new(ScanTarget::GitRange {
        repo: dir.path().to_path_buf(),
        range: Some("no-such-ref..HEAD".into()),
    }))
    .expect_err("unknown ref");
    assert_eq!(err.exit_code(), mobius_scan::EXIT_ERROR);
    let chain = format!("{}", std::error::Error::source(&err).expect("has a cause"));
    assert!(chain.contains("`git log` failed") && chain.contains("no-such-ref"), "{chain}");
}
