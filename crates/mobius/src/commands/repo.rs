//! `mobius repo add|list|show|remove|forge|notify`.
//!
//! `add` registers a clone, records its branch heads (so only later commits trigger runs),
//! and installs `post-commit` / `post-receive` hooks. A hook runs `mobius repo notify` in the
//! background; that only asks the server to look at the repository now (`POST /api/v1/poll`),
//! since the server reads the branches itself — a forged notification can trigger nothing the
//! periodic poll would not. The hooks authenticate with a `run`-scope token kept in the git
//! directory (mode 0600), never in the hook script.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use mobius_app::tokens;
use mobius_runs::git;
use mobius_store::{Repository, Store, TokenScope};
use serde::Serialize;

use crate::cli::{Remote, RepoCommand};
use crate::output::print_json;

mod forge;

/// The hooks installed, and the line that marks ours inside a hook file.
const HOOKS: [&str; 2] = ["post-commit", "post-receive"];
const MARKER: &str = "# mobius: notify the server of new commits";
const TOKEN_FILE: &str = "mobius-hook-token";

#[derive(Serialize)]
struct Registered {
    #[serde(flatten)]
    repository: Repository,
    /// The hook files written; empty with `--no-hooks`.
    hooks: Vec<String>,
    /// Branches recorded as already seen.
    branches: usize,
}

pub async fn run(data_dir: Option<&Path>, json: bool, command: RepoCommand) -> Result<ExitCode> {
    if let RepoCommand::Notify { name, server, token_file } = command {
        return notify(&name, &server, &token_file).await;
    }
    let settings = super::settings(data_dir, None)?;
    let store = super::open_store(&settings)?;
    match command {
        RepoCommand::Add { path, name, .. } if git::is_remote_url(&path.to_string_lossy()) => {
            let url = path.to_string_lossy().into_owned();
            let name = match name.or_else(|| name_from_url(&url)) {
                Some(name) => name,
                None => {
                    bail!("cannot tell the repository's name from {}; pass --name owner/name", git::shown_url(&url))
                }
            };
            let mirror = settings.data_dir.join("mirrors").join(format!("{name}.git"));
            if mirror.exists() {
                bail!("{name} is registered already (its mirror is {})", mirror.display());
            }
            git::mirror(&url, &mirror).with_context(|| format!("cannot mirror {}", git::shown_url(&url)))?;
            let repository = Repository { name, path: mirror.display().to_string() };
            let heads = git::heads(&mirror)?;
            store.add_repository(&repository)?;
            store.set_repository_heads(&repository.name, &heads)?;
            let registered = Registered { repository, hooks: Vec::new(), branches: branch_count(&heads) };
            if json {
                print_json(&registered)?;
            } else {
                let r = &registered.repository;
                println!(
                    "Registered {} from {} (mirrored at {}; {} branch(es) recorded)",
                    r.name,
                    git::shown_url(&url),
                    r.path,
                    registered.branches
                );
                println!("  the server fetches it on each push webhook for {} and every poll_interval", r.name);
            }
        }
        RepoCommand::Add { path, name, hook_server, no_hooks } => {
            let top = mobius_git::toplevel(&path)?;
            let name = match name {
                Some(name) => name,
                None => derive_name(&top).with_context(|| {
                    format!("cannot tell the repository's name from {}; pass --name owner/name", top.display())
                })?,
            };
            let repository = Repository { name, path: top.display().to_string() };
            let heads = git::heads(&top)?;
            store.add_repository(&repository)?;
            store.set_repository_heads(&repository.name, &heads)?;
            let hooks = if no_hooks {
                Vec::new()
            } else {
                let server = hook_server.unwrap_or_else(|| format!("http://{}", settings.listen));
                revoke_hook_token(store.as_ref(), &top)?;
                let token = tokens::issue(&format!("git hooks of {}", repository.name), TokenScope::Run);
                store.insert_token(&token.record)?;
                install_hooks(&top, &repository.name, &server, &token.secret)?
            };
            let registered = Registered { repository, hooks, branches: branch_count(&heads) };
            if json {
                print_json(&registered)?;
            } else {
                let r = &registered.repository;
                println!("Registered {} at {} ({} branch(es) recorded)", r.name, r.path, registered.branches);
                for hook in &registered.hooks {
                    println!("  hook: {hook}");
                }
            }
        }
        RepoCommand::List => {
            let repositories = store.repositories()?;
            if json {
                print_json(&repositories)?;
            } else if repositories.is_empty() {
                println!("No repositories registered. Add one with `mobius repo add PATH`.");
            } else {
                for r in repositories {
                    println!("{:<40} {}", r.name, r.path);
                }
            }
        }
        RepoCommand::Show { name } => {
            let repository = find(store.as_ref(), &name)?;
            let heads = store.repository_heads(&name)?.unwrap_or_default();
            let secrets: Vec<String> = settings
                .secrets(store.clone())?
                .list(Some(&name))?
                .into_iter()
                .map(|s| if s.environment.is_empty() { s.name } else { format!("{} ({})", s.name, s.environment) })
                .collect();
            let mirror = is_mirror(&settings.data_dir, &repository);
            let forge = store.forge(&name)?;
            if json {
                print_json(&serde_json::json!({
                    "name": repository.name,
                    "path": repository.path,
                    "mirror": mirror,
                    "branches": heads,
                    "secrets": secrets,
                    "forge": forge,
                }))?;
            } else {
                println!("{}", repository.name);
                let kind = if mirror { "mirror of a remote" } else { "clone on this machine" };
                println!("  path:     {} ({kind})", repository.path);
                for (name, sha) in heads.iter().filter(|(name, _)| name.as_str() != git::TAGS_TRACKED) {
                    let short = &sha[..sha.len().min(12)];
                    match name.strip_prefix("refs/tags/") {
                        Some(tag) => println!("  tag:      {tag} at {short}"),
                        None => println!("  branch:   {name} at {short}"),
                    }
                }
                let shown = if secrets.is_empty() { "none".to_owned() } else { secrets.join(", ") };
                println!("  secrets:  {shown}");
                println!("  forge:    {}", forge::shown(forge.as_ref()));
            }
        }
        RepoCommand::Remove { name } => {
            let repository = find(store.as_ref(), &name)?;
            if is_mirror(&settings.data_dir, &repository) {
                std::fs::remove_dir_all(&repository.path)
                    .with_context(|| format!("cannot delete the mirror {}", repository.path))?;
            } else if let Err(error) = revoke_hook_token(store.as_ref(), Path::new(&repository.path)) {
                // A clone that moved or is gone: its hooks cannot call anything anyway.
                eprintln!("warning: cannot revoke the hook token of {}: {error:#}", repository.path);
            }
            store.remove_repository(&name)?;
            if !json {
                println!("Removed {name}; its runs and logs stay.");
            }
        }
        RepoCommand::Forge { name, kind, api_url, token_secret, project, off } => {
            let request = forge::ForgeRequest { name, kind, api_url, token_secret, project, off };
            forge::run(store.as_ref(), &settings.secrets(store.clone())?, json, request)?;
        }
        RepoCommand::Notify { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The registered repository `name`, or an error listing none.
fn find(store: &dyn Store, name: &str) -> Result<Repository> {
    match store.repositories()?.into_iter().find(|r| r.name == name) {
        Some(repository) => Ok(repository),
        None => bail!("no registered repository {name} (`mobius repo list` shows them)"),
    }
}

/// How many branches recorded heads hold (tags are kept there too).
fn branch_count(heads: &mobius_store::Heads) -> usize {
    heads.keys().filter(|name| !name.starts_with("refs/")).count()
}

/// Whether the repository is a mirror this data directory keeps for a remote.
fn is_mirror(data_dir: &Path, repository: &Repository) -> bool {
    Path::new(&repository.path).starts_with(data_dir.join("mirrors"))
}

/// Where git keeps `what` for the work tree at `top` (`.git/<what>`, or a worktree's own).
fn git_path(top: &Path, what: &str) -> Result<PathBuf> {
    let out = Command::new("git").arg("-C").arg(top).args(["rev-parse", "--git-path", what]).output()?;
    if !out.status.success() {
        bail!("cannot find the git directory of {}", top.display());
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Ok(if path.is_absolute() { path } else { top.join(path) })
}

/// Revokes the token the hooks of an earlier `mobius repo add` use, if it is still valid: a
/// re-run replaces it rather than leaving it working.
fn revoke_hook_token(store: &dyn Store, top: &Path) -> Result<()> {
    let Ok(old) = std::fs::read_to_string(git_path(top, TOKEN_FILE)?) else { return Ok(()) };
    if let Some(record) = tokens::authenticate(store, old.trim())? {
        store.revoke_token(&record.id)?;
    }
    Ok(())
}

/// Writes the token file and our block into each hook, keeping whatever else a hook does.
fn install_hooks(top: &Path, name: &str, server: &str, token: &str) -> Result<Vec<String>> {
    let git_path = |what: &str| git_path(top, what);
    let token_path = git_path(TOKEN_FILE)?;
    write_private(&token_path, token)?;
    let exe = std::env::current_exe().context("cannot tell where the mobius binary is")?;
    let command = format!(
        "{} repo notify {} --server {} --token-file {} >/dev/null 2>&1 &",
        quote(&exe.display().to_string()),
        quote(name),
        quote(server),
        quote(&token_path.display().to_string()),
    );
    let hooks_dir = git_path("hooks")?;
    std::fs::create_dir_all(&hooks_dir).with_context(|| format!("cannot create {}", hooks_dir.display()))?;
    let mut written = Vec::new();
    for hook in HOOKS {
        let path = hooks_dir.join(hook);
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "#!/bin/sh\n".to_owned(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        std::fs::write(&path, with_block(&existing, &command))
            .with_context(|| format!("cannot write {}", path.display()))?;
        make_executable(&path)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// `hook` with our block (marker + command) replacing any earlier one, at the end.
fn with_block(hook: &str, command: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut lines = hook.lines();
    while let Some(line) = lines.next() {
        if line == MARKER {
            lines.next();
            continue;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    format!("{}\n{MARKER}\n{command}\n", kept.join("\n"))
}

/// `'text'` for sh, with embedded single quotes closed, escaped and reopened.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn make_executable(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut permissions = std::fs::metadata(path)?.permissions();
        permissions.set_mode(permissions.mode() | 0o755);
        std::fs::set_permissions(path, permissions)
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    Ok(())
}

/// `POST /api/v1/poll?repository=NAME` with the hook's token.
async fn notify(name: &str, server: &str, token_file: &Path) -> Result<ExitCode> {
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("cannot read the hook token {}", token_file.display()))?;
    let remote = Remote { server: Some(server.to_owned()), token: Some(token.trim().to_owned()) };
    let answer = super::backend::Remote::connect(&remote)?.poll(name).await?;
    println!("{answer}");
    Ok(ExitCode::SUCCESS)
}

/// `owner/name` from the `origin` remote URL (https or scp-like), else the directory's name.
fn derive_name(top: &Path) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(top).args(["remote", "get-url", "origin"]).output().ok();
    let url = out.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(url) = url {
        let path = url.rsplit_once(':').map_or(url.as_str(), |(_, p)| p);
        let path = path.trim_end_matches(".git").trim_end_matches('/');
        let parts: Vec<&str> = path.rsplitn(3, '/').collect();
        if parts.len() >= 2 {
            return Some(format!("{}/{}", parts[1], parts[0]));
        }
    }
    top.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// `owner/name` from a remote's URL: its last two path segments, without `.git`.
fn name_from_url(url: &str) -> Option<String> {
    let path = url.split_once("://").map_or_else(
        || url.split_once(':').map_or(url, |(_, p)| p),
        |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p),
    );
    let mut parts: Vec<&str> = path.trim_end_matches('/').rsplit('/').take(2).collect();
    parts.reverse();
    match parts.as_slice() {
        [owner, name] if !owner.is_empty() && !name.is_empty() => {
            Some(format!("{owner}/{}", name.strip_suffix(".git").unwrap_or(name)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_block_replaces_itself_and_keeps_the_rest() {
        let first = with_block("#!/bin/sh\necho existing\n", "notify one &");
        assert_eq!(first, format!("#!/bin/sh\necho existing\n{MARKER}\nnotify one &\n"));
        let second = with_block(&first, "notify two &");
        assert_eq!(second, format!("#!/bin/sh\necho existing\n{MARKER}\nnotify two &\n"));
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn names_from_remote_urls() {
        for (url, name) in [
            ("https://github.com/acme/shop.git", Some("acme/shop")),
            ("git@github.com:acme/shop.git", Some("acme/shop")),
            ("ssh://git@host:22/group/sub/app", Some("sub/app")),
            ("git://127.0.0.1:9418/acme/app.git", Some("acme/app")),
            ("https://host/only", None),
        ] {
            assert_eq!(name_from_url(url).as_deref(), name, "{url}");
        }
        assert!(git::is_remote_url("git@github.com:acme/shop.git") && git::is_remote_url("file:///srv/x.git"));
        assert!(!git::is_remote_url("/home/me/src/shop") && !git::is_remote_url("./shop"));
        assert_eq!(git::shown_url("https://ci:tok@github.com/a/b.git"), "https://github.com/a/b.git");
    }
}
