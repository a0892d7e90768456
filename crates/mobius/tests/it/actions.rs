//! `mobius run` with actions from repositories (`--actions-url` to bare repositories on this
//! machine) and `mobius actions cache list|prune`.

use std::path::Path;
use std::process::Command;

use crate::runs::{commit, finished, get, repository, start, wait_for};
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

/// `git daemon` serving `root` on a free loopback port, stopped when dropped.
pub(crate) struct GitDaemon {
    child: std::process::Child,
    pub(crate) url: String,
}

impl GitDaemon {
    pub(crate) fn start(root: &Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `git daemon` would run `git-daemon` as a child of its own, which killing `git` leaves
        // behind: start the daemon itself.
        let exec_path = Command::new("git").arg("--exec-path").output().expect("git runs").stdout;
        let daemon = Path::new(String::from_utf8_lossy(&exec_path).trim()).join("git-daemon");
        let child = Command::new(daemon)
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        wait_for("git daemon to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        GitDaemon { child, url: format!("git://127.0.0.1:{port}") }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Under `mobius serve` (as root in CI: steps run as `nobody` in bubblewrap, where the data
/// directory is hidden but the action cache is bound read-only), a commit runs a workflow
/// whose action comes over `git://` on loopback (`actions_url` in `mobius.toml`) and whose
/// composite action comes from the repository itself.
#[test]
fn the_server_runs_actions_from_a_git_daemon_and_from_the_repository() {
    let dir = Dir::new();
    let forge = dir.path().join("forge");
    publish_action(&forge);
    let daemon = GitDaemon::start(&forge);
    std::fs::create_dir_all(dir.data()).unwrap();
    std::fs::write(dir.data().join("mobius.toml"), format!("actions_url = \"{}\"\n", daemon.url)).unwrap();
    let workflow = "on: push\njobs:\n  hi:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      \
                    - id: g\n        uses: acme/greet@v1\n        with:\n          who: server\n      \
                    - id: l\n        uses: ./.github/actions/shout\n        with:\n          text: ${{ steps.g.outputs.said }}\n      \
                    - run: test '${{ steps.l.outputs.loud }}' = 'HELLO SERVER' && echo all good\n";
    let shout = "inputs:\n  text:\n    required: true\noutputs:\n  loud:\n    value: ${{ steps.up.outputs.loud }}\nruns:\n  \
                 using: composite\n  steps:\n    - id: up\n      shell: bash\n      \
                 run: echo \"loud=$(echo '${{ inputs.text }}' | tr a-z A-Z)\" >> \"$GITHUB_OUTPUT\"\n";
    let repo = repository(&dir, &[("README.md", "app\n")]);
    let server = start(&dir, &repo);
    commit(&repo, &[(".github/workflows/ci.yml", workflow), (".github/actions/shout/action.yml", shout)], "CI");
    let runs = wait_for("the hook to trigger a run", || {
        let runs = get(&server, "/api/v1/runs");
        (!runs.as_array().unwrap().is_empty()).then_some(runs)
    });
    let id = runs[0]["id"].as_i64().unwrap();
    let run = finished(&server, id);
    let logs = dir.ok(&["runs", "logs", &id.to_string()]);
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(logs.contains("fetched acme/greet at") && logs.contains("all good"), "{logs}");
    let listed = dir.ok(&["actions", "cache", "list"]);
    assert!(listed.contains("acme/greet"), "{listed}");
}
