//! `mobius run` with actions from repositories (`--actions-url` to bare repositories on this
//! machine) and `mobius actions cache list|prune`.

use std::path::Path;
use std::process::Command;

use crate::util::Dir;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git").arg("-C").arg(dir).args(args).env("GIT_TERMINAL_PROMPT", "0").status().unwrap();
    assert!(status.success(), "git {args:?}");
}

/// Publishes a JavaScript action as `<root>/acme/greet`, tagged `v1`; returns the commit SHA.
fn publish_action(root: &Path) -> String {
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("action.yml"),
        "name: greet\ninputs:\n  who:\n    default: world\nruns:\n  using: node20\n  main: index.js\n",
    )
    .unwrap();
    std::fs::write(
        work.join("index.js"),
        "require('fs').appendFileSync(process.env.GITHUB_OUTPUT, 'said=hello ' + process.env.INPUT_WHO + '\\n');\n",
    )
    .unwrap();
    git(&work, &["init", "--quiet"]);
    git(&work, &["add", "."]);
    git(&work, &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "v1"]);
    git(&work, &["tag", "v1"]);
    let bare = root.join("acme/greet");
    git(root, &["init", "--quiet", "--bare", bare.to_str().unwrap()]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "HEAD:refs/heads/main", "v1"]);
    let out = Command::new("git").arg("-C").arg(&work).args(["rev-parse", "HEAD"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

const WORKFLOW: &str = "on: push\njobs:\n  hi:\n    runs-on: ubuntu-latest\n    steps:\n      - id: g\n        \
                        uses: acme/greet@v1\n        with:\n          who: mobius\n      \
                        - run: test \"${{ steps.g.outputs.said }}\" = 'hello mobius' && echo checked\n";

#[test]
fn mobius_run_fetches_an_action_once_and_the_cache_commands_show_and_prune_it() {
    let dir = Dir::new();
    let forge = dir.path().join("forge");
    let sha = publish_action(&forge);
    std::fs::create_dir_all(dir.path().join(".git")).unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    dir.write(".github/workflows/ci.yml", WORKFLOW);
    let url = format!("file://{}", forge.display());

    let first = dir.ok(&["run", "--actions-url", &url]);
    assert!(first.contains("checked"), "{first}");
    let second = dir.cmd(&["run"]).env("MOBIUS_ACTIONS_URL", &url).output().unwrap();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}");
    assert!(text.contains(&format!("using cached acme/greet at {sha}")), "{text}");

    let listed = dir.ok(&["actions", "cache", "list"]);
    assert!(listed.contains("acme/greet") && listed.contains(&sha), "{listed}");
    let kept = dir.ok(&["actions", "cache", "prune"]);
    assert_eq!(kept, "Nothing to prune.\n");
    let json = dir.json(&["actions", "cache", "prune", "--all"]);
    assert_eq!(json[0]["sha"], sha.as_str());
    assert_eq!(dir.ok(&["actions", "cache", "list"]), "No actions cached yet.\n");

    // Pinned actions required: the tag is refused, at the step's position.
    let out = dir.run(&["run", "--actions-url", &url, "--require-pinned-actions"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(".github/workflows/ci.yml:7:15: cannot fetch `acme/greet@v1`"), "{text}");
    assert!(text.contains("is not pinned"), "{text}");
    let pinned = WORKFLOW.replace("acme/greet@v1", &format!("acme/greet@{sha}"));
    dir.write(".github/workflows/ci.yml", &pinned);
    let out = dir.ok(&["run", "--actions-url", &url, "--require-pinned-actions"]);
    assert!(out.contains("checked"), "{out}");

    let bad = dir.run(&["actions", "cache", "prune", "--unused-for", "soon"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--unused-for"), "{bad:?}");
}
