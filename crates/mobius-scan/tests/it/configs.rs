//! gitleaks-format configs: allowlists, `[extend]`, and bad configs with their positions.

use mobius_scan::config::ConfigError;
use mobius_scan::{CommitInfo, Config, Detector, Fragment};

use crate::util::{config, detect, synth};

const RULE: &str = r#"
[[rules]]
id = "fixture-token"
description = "Fixture token"
regex = '''\b(fxt_[a-z0-9]{16})\b'''
keywords = ["fxt_"]
"#;

fn check_allowed(allowlist: &str, path: &str, text: &str, expected_findings: usize) {
    let config = config(&format!("{RULE}{allowlist}"));
    let findings = detect(&config, path, text);
    assert_eq!(findings.len(), expected_findings, "{allowlist}\non {path}: {text:?} gave {findings:?}");
}

#[test]
fn rule_without_allowlist_finds_the_token() {
    check_allowed("", "src/a.rs", "let t = \"fxt_0123456789abcdef\";", 1);
}

#[test]
fn path_allowlist() {
    let allowlist = "[[rules.allowlists]]\npaths = ['''^tests/''']\n";
    check_allowed(allowlist, "tests/a.rs", "fxt_0123456789abcdef", 0);
    check_allowed(allowlist, "src/a.rs", "fxt_0123456789abcdef", 1);
}

#[test]
fn regex_allowlist_on_the_secret_by_default() {
    let allowlist = "[[rules.allowlists]]\nregexes = ['''^fxt_0123''']\n";
    check_allowed(allowlist, "a", "fxt_0123456789abcdef", 0);
    check_allowed(allowlist, "a", "fxt_9123456789abcdef", 1);
    // The secret does not contain the line's other text.
    let on_line = "[[rules.allowlists]]\nregexes = ['''fixture-only''']\n";
    check_allowed(on_line, "a", "fxt_0123456789abcdef # fixture-only", 1);
}

#[test]
fn regex_allowlist_on_the_match() {
    let config_text = r#"
[[rules]]
id = "fixture-assignment"
regex = '''token\s*=\s*(fxt_[a-z0-9]{16})'''
[[rules.allowlists]]
regexTarget = "match"
regexes = ['''^token = ''']
"#;
    let config = config(config_text);
    assert_eq!(detect(&config, "a", "token = fxt_0123456789abcdef").len(), 0);
    assert_eq!(detect(&config, "a", "token=fxt_0123456789abcdef").len(), 1);
}

#[test]
fn regex_allowlist_on_the_line() {
    let allowlist = "[[rules.allowlists]]\nregexTarget = \"line\"\nregexes = ['''# fixture-only$''']\n";
    check_allowed(allowlist, "a", "x\nfxt_0123456789abcdef # fixture-only\ny", 0);
    check_allowed(allowlist, "a", "# fixture-only\nfxt_0123456789abcdef\n", 1);
}

#[test]
fn stopword_allowlist_checks_the_secret_case_insensitively() {
    let allowlist = "[[rules.allowlists]]\nstopwords = [\"ABCDEF\"]\n";
    check_allowed(allowlist, "a", "fxt_0123456789abcdef", 0);
    check_allowed(allowlist, "a", "fxt_0123456789abcdex", 1);
}

#[test]
fn and_condition_needs_every_criterion() {
    let allowlist = "[[rules.allowlists]]\ncondition = \"AND\"\npaths = ['''^tests/''']\nstopwords = [\"abcdef\"]\n";
    check_allowed(allowlist, "tests/a", "fxt_0123456789abcdef", 0);
    check_allowed(allowlist, "src/a", "fxt_0123456789abcdef", 1);
    check_allowed(allowlist, "tests/a", "fxt_0123456789abcdex", 1);
}

#[test]
fn global_allowlists_and_target_rules() {
    let global = "[allowlist]\npaths = ['''\\.lock$''']\n";
    check_allowed(global, "Cargo.lock", "fxt_0123456789abcdef", 0);
    let targeted = "[[rules]]\nid = \"other-rule\"\nregex = 'zzz'\n\
                    [[allowlists]]\ntargetRules = [\"other-rule\"]\nstopwords = [\"abcdef\"]\n";
    check_allowed(targeted, "a", "fxt_0123456789abcdef", 1);
    let targeted = "[[allowlists]]\ntargetRules = [\"fixture-token\"]\nstopwords = [\"abcdef\"]\n";
    check_allowed(targeted, "a", "fxt_0123456789abcdef", 0);
}

#[test]
fn commit_allowlist_applies_to_that_commit_only() {
    let config = config(&format!("{RULE}[[rules.allowlists]]\ncommits = [\"{}\"]\n", "a".repeat(40)));
    let detector = Detector::new(config);
    let scan = |sha: &str| {
        let commit = CommitInfo { sha: sha.to_string(), ..CommitInfo::default() };
        detector
            .detect(&Fragment {
                raw: b"fxt_0123456789abcdef",
                path: "a",
                start_line: 1,
                commit: Some(&commit),
                first_of_file: true,
            })
            .len()
    };
    assert_eq!(scan(&"a".repeat(40)), 0);
    assert_eq!(scan(&"b".repeat(40)), 1);
}

#[test]
fn inline_gitleaks_allow_suppresses_its_line_only() {
    let config = config(RULE);
    let text = "a = fxt_0123456789abcdef # gitleaks:allow\nb = fxt_0123456789abcdeg\n";
    let findings = detect(&config, "a", text);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].start_line, 2);
}

#[test]
fn path_only_rule_reports_the_file() {
    let config = config("[[rules]]\nid = \"pkcs12-file\"\npath = '''\\.p12$'''\n");
    let findings = detect(&config, "certs/client.p12", "anything");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].matched, "file detected: certs/client.p12");
    assert!(detect(&config, "certs/client.pem", "anything").is_empty());
}

#[test]
fn extend_default_with_disabled_rules_and_an_override() {
    let config = config(
        r#"
title = "mine"
[extend]
useDefault = true
disabledRules = ["jwt", "generic-api-key"]

[[rules]]
id = "github-pat"
[[rules.allowlists]]
paths = ['''^docs/''']

[[rules]]
id = "fixture-token"
regex = '''fxt_[a-z0-9]{16}'''
"#,
    );
    let defaults = Config::default_rules();
    assert_eq!(config.rules.len(), defaults.rules.len() - 2 + 1);
    assert!(config.rule("jwt").is_none() && config.rule("generic-api-key").is_none());
    assert!(config.rule("fixture-token").is_some());
    assert_eq!(config.title.as_deref(), Some("mine"));
    let token = synth("ghp_{an:36}");
    assert_eq!(detect(&config, "src/a", &token).len(), 1, "the default regex is kept");
    assert_eq!(detect(&config, "docs/a", &token).len(), 0, "the added allowlist applies");
}

#[test]
fn a_rule_extending_without_regex_needs_a_base_rule() {
    let err = Config::parse("[[rules]]\nid = \"github-pat\"\n", "x.toml", None).expect_err("no regex, no base");
    assert_eq!(err.to_string(), "x.toml:1:1: rule `github-pat` needs a `regex` or a `path`");
}

#[test]
fn extend_path_is_relative_to_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("base")).expect("mkdir");
    std::fs::write(dir.path().join("base/org.toml"), RULE).expect("write");
    std::fs::write(
        dir.path().join(".gitleaks.toml"),
        "[extend]\npath = \"base/org.toml\"\n[[rules]]\nid = \"other\"\nregex = '''oth_[0-9]{4}'''\n",
    )
    .expect("write");
    let config = Config::load(&dir.path().join(".gitleaks.toml")).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = config.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["fixture-token", "other"]);
}

#[test]
fn a_missing_extended_config_is_reported_at_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join(".gitleaks.toml");
    std::fs::write(&config, "title = \"t\"\n[extend]\npath = \"nope.toml\"\n").expect("write");
    let err = Config::load(&config).expect_err("missing base");
    let expected = format!(
        "{}:3:8: cannot read the extended config {}: No such file or directory (os error 2)",
        config.display(),
        dir.path().join("nope.toml").display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn extend_chains_stop_at_depth_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("a.toml", "[extend]\npath = \"b.toml\"\n");
    write("b.toml", "[extend]\npath = \"c.toml\"\n");
    write("c.toml", "[extend]\npath = \"d.toml\"\n");
    write("d.toml", RULE);
    let err = Config::load(&dir.path().join("a.toml")).expect_err("too deep");
    assert!(err.to_string().ends_with("c.toml:1:1: [extend] chains stop at depth 2; this one goes deeper"), "{err}");
}

fn check_error(text: &str, expected: &str) {
    match Config::parse(text, "bad.toml", None) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(err @ ConfigError::Invalid { .. }) => assert_eq!(err.to_string(), expected, "for:\n{text}"),
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn bad_configs_say_what_and_where() {
    check_error(
        "[[rules]]\nid = \"x\"\nregx = '''a'''\n",
        "bad.toml:3:1: unknown field `regx`, expected one of `id`, `description`, `regex`, `secretGroup`, `entropy`, `keywords`, `path`, `tags`, `allowlist`, `allowlists`",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n",
        "bad.toml:3:9: regex does not compile: error: unclosed group",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = '''a(?=b)'''\n",
        "bad.toml:3:9: regex does not compile: error: look-around, including look-ahead and look-behind, is not supported",
    );
    check_error("[[rules]]\ndescription = \"no id\"\nregex = 'a'\n", "bad.toml:1:1: rule has no `id`");
    check_error(
        "[[rules]]\nid = \"x\"\nregex = '(a)'\nsecretGroup = 2\n",
        "bad.toml:4:15: rule `x`: secretGroup 2 is not one of the regex's 1 capture group(s)",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = 'a'\n[[rules.allowlists]]\nregexTarget = \"file\"\nregexes = ['b']\n",
        "bad.toml:5:15: regexTarget `file` is not `secret`, `match` or `line`",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = 'a'\n[[rules.allowlists]]\ndescription = \"empty\"\n",
        "bad.toml:4:1: allowlist has no `commits`, `paths`, `regexes` or `stopwords`",
    );
    check_error("[allowlist]\npaths = ['''(''']\n", "bad.toml:2:10: path does not compile: error: unclosed group");
    check_error(
        "[extend]\nuseDefault = true\npath = \"x.toml\"\n",
        "bad.toml:1:1: [extend] takes `useDefault` or `path`, not both",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = 'a'\n[[rules]]\nid = \"x\"\nregex = 'b'\n",
        "bad.toml:4:1: rule `x` is defined twice",
    );
    check_error(
        "[allowlist]\npathz = ['a']\n",
        "bad.toml:2:1: unknown field `pathz`, expected one of `description`, `condition`, `commits`, `paths`, `regexes`, `regexTarget`, `stopwords`, `targetRules`",
    );
    check_error(
        "[extend]\nuseDefaults = true\n",
        "bad.toml:2:1: unknown field `useDefaults`, expected one of `useDefault`, `path`, `disabledRules`",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = 'a'\n[rules.allowlist]\nregexes = ['1']\n[[rules.allowlists]]\nregexes = ['2']\n",
        "bad.toml:6:1: use `[rules.allowlist]` or `[[rules.allowlists]]`, not both",
    );
    check_error(
        "[allowlist]\nstopwords = ['a']\n[[allowlists]]\nstopwords = ['b']\n",
        "bad.toml:3:1: use `[allowlist]` or `[[allowlists]]`, not both",
    );
    check_error(
        "[[rules]]\nid = \"x\"\nregex = 'a'\n[[allowlists]]\ntargetRules = [\"x\", \"y\"]\nstopwords = ['s']\n",
        "bad.toml:5:15: targetRules names `y`, which is not a rule",
    );
    check_error("title = \"unterminated\n", "bad.toml:1:22: invalid basic string, expected `\"`");
}

#[test]
fn an_empty_rules_table_is_nothing_as_in_gitleaks() {
    let config = config("title = \"t\"\n[[rules]]\n");
    assert!(config.rules.is_empty());
}

#[test]
fn go_only_syntax_is_translated() {
    let config = config("[[rules]]\nid = \"q\"\nregex = '''\\Qa.b\\E[0-9]{2}'''\n");
    assert_eq!(detect(&config, "f", "a.b12").len(), 1);
    assert_eq!(detect(&config, "f", "axb12").len(), 0);
}
