//! Fixture helpers: synthetic secrets, scans of text, and temporary git repositories.

use std::path::Path;
use std::process::Command;

use mobius_scan::{Config, Detector, Finding, Fragment};

/// Expands `{kind:N}` placeholders into N obviously generated characters of an alphabet: the
/// alphabet walked with a stride of 7 (coprime to every alphabet's size here), so a secret is
/// format-valid and high-entropy yet plainly synthetic. Kinds: `an` (alphanumeric), `lan`
/// (lower alphanumeric), `UAN` (upper alphanumeric), `alpha`, `hex`, `HEX`, `d` (digits),
/// `b64` (base64 without padding), `url` (base64url), `B32` (RFC 4648 base32), `AGE`
/// (bech32).
pub fn synth(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut seed = 0usize;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        let Some((kind, count)) = rest[open + 1..close].split_once(':') else {
            out.push_str(&rest[..=close]);
            rest = &rest[close + 1..];
            continue;
        };
        let alphabet: &str = match kind {
            "an" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "lan" => "abcdefghijklmnopqrstuvwxyz0123456789",
            "UAN" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            "alpha" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "hex" => "0123456789abcdef",
            "HEX" => "0123456789ABCDEF",
            "d" => "0123456789",
            "b64" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "url" => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            "B32" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
            "AGE" => "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
            other => panic!("unknown fixture alphabet {other} in {template}"),
        };
        let count: usize = count.parse().unwrap_or_else(|_| panic!("bad count in {template}"));
        let chars: Vec<char> = alphabet.chars().collect();
        out.push_str(&rest[..open]);
        seed += 1;
        for i in 0..count {
            out.push(chars[(i * 7 + seed * 5) % chars.len()]);
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Findings of a config in one file's text.
pub fn detect(config: &Config, path: &str, text: &str) -> Vec<Finding> {
    Detector::new(config.clone()).detect(&Fragment {
        raw: text.as_bytes(),
        path,
        start_line: 1,
        commit: None,
        first_of_file: true,
    })
}

/// Parses a config from text, panicking with its error.
pub fn config(text: &str) -> Config {
    Config::parse(text, "test.toml", None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs git in `dir` with a fixed identity and dates; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Fixture Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.test")
        .env("GIT_COMMITTER_NAME", "Fixture Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.test")
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_string()
}

/// A new repository in a temporary directory.
pub fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    dir
}

/// Writes a file (creating directories) and commits everything; returns the commit SHA.
pub fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, content) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}
