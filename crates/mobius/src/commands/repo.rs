//! `mobius repo add|list|show|remove|forge|notify`.
//!
//! `add URL` mirrors a remote through [`mobius_app::repositories`] (locally, or on a server with
//! `--server`: `POST /api/v1/repositories`), with `--credentials` naming the repository's
//! secret that holds its token or key. `add PATH` registers a clone, records its branch heads (so only later commits trigger runs),
//! and installs `post-commit` / `post-receive` hooks. A hook runs `mobius repo notify` in the
//! background; that only asks the server to look at the repository now (`POST /api/v1/poll`),
//! since the server reads the branches itself — a forged notification can trigger nothing the
//! periodic poll would not. The hooks authenticate with a `run`-scope token kept in the git
//! directory (mode 0600), never in the hook script.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use mobius_app::repositories::{self, NewRemote};
use mobius_app::tokens;
use mobius_runs::git;
use mobius_store::{Repository, Store, TokenScope};
use reqwest::Method;
use serde::Serialize;

use crate::cli::{Remote, RepoCommand};
use crate::client::Client;
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
    let remote = match &command {
        RepoCommand::Add { remote, .. }
        | RepoCommand::List { remote }
        | RepoCommand::Show { remote, .. }
        | RepoCommand::Remove { remote, .. } => Client::from(remote)?,
        RepoCommand::Notify { .. } | RepoCommand::Forge { .. } => None,
    };
    if let Some(client) = remote {
        return over_http(&client, json, command).await;
    }
    let settings = super::settings(data_dir, None)?;
    let store = super::open_store(&settings)?;
    match command {
        RepoCommand::Add { path, name, credentials, .. } if git::is_remote_url(&path.to_string_lossy()) => {
            let secrets = settings.secrets(store.clone())?;
            let new = NewRemote { url: path.to_string_lossy().into_owned(), name, credentials };
            let registered = repositories::add_remote(store.as_ref(), Some(&secrets), &settings.data_dir, new)?;
            said_registered(json, &registered)?;
        }
        RepoCommand::Add { credentials: Some(_), .. } => {
            bail!("--credentials is for a remote's URL; a clone on this machine fetches with git's own credentials")
        }
        RepoCommand::Add { path, name, hook_server, no_hooks, .. } => {
            let top = mobius_git::toplevel(&path)?;
            let name = match name {
                Some(name) => name,
                None => derive_name(&top).with_context(|| {
                    format!("cannot tell the repository's name from {}; pass --name owner/name", top.display())
                })?,
            };
            let repository = Repository { name, path: top.display().to_string(), credentials: None };
            let heads = git::heads(&top)?;
            store.add_repository(&repository)?;
            store.set_repository_heads(&repository.name, &heads)?;
            let hooks = if no_hooks {
                Vec::new()
            } else {
                let server = hook_server.unwrap_or_else(|| format!("http://{}", settings.listen));
                revoke_hook_token(store.as_ref(), &top)?;
                let token = tokens::issue(&repositories::hook_token_name(&repository.name), TokenScope::Run);
                store.insert_token(&token.record)?;
                install_hooks(&top, &repository.name, &server, &token.secret)?
            };
            let registered = Registered { repository, hooks, branches: repositories::branch_count(&heads) };
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
        RepoCommand::List { .. } => show_list(json, &store.repositories()?)?,
        RepoCommand::Show { name, .. } => {
            let secrets = settings.secrets(store.clone())?;
            show_one(json, &repositories::show(store.as_ref(), Some(&secrets), &settings.data_dir, &name)?)?;
        }
        RepoCommand::Remove { name, .. } => {
            // Its hooks' tokens go with it.
            repositories::remove(store.as_ref(), &settings.data_dir, &name)?;
            said_removed(json, &name);
        }
        RepoCommand::Forge { name, kind, api_url, token_secret, project, off } => {
            let request = forge::ForgeRequest { name, kind, api_url, token_secret, project, off };
            forge::run(store.as_ref(), &settings.secrets(store.clone())?, json, request)?;
        }
        RepoCommand::Notify { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The same commands through `--server` (an `admin` token): remotes only, since a clone is a
/// directory on the machine that registers it.
async fn over_http(client: &Client, json: bool, command: RepoCommand) -> Result<ExitCode> {
    match command {
        RepoCommand::Add { path, name, credentials, hook_server, no_hooks, .. } => {
            let url = path.to_string_lossy().into_owned();
            if !git::is_remote_url(&url) {
                bail!(
                    "with --server, `repo add` takes a remote's URL; register a clone on the server's machine with \
                     `mobius repo add PATH` there"
                );
            }
            if hook_server.is_some() || no_hooks {
                bail!("--hook-server and --no-hooks are for a clone on this machine; a remote has no hooks of ours");
            }
            let body = serde_json::json!({ "url": url, "name": name, "credentials": credentials });
            let request = client.request(Method::POST, "/api/v1/repositories").json(&body);
            let registered: repositories::Registered = client.json(request).await?;
            said_registered(json, &registered)?;
        }
        RepoCommand::List { .. } => {
            let listed: Vec<Repository> = client.json(client.request(Method::GET, "/api/v1/repositories")).await?;
            show_list(json, &listed)?;
        }
        RepoCommand::Show { name, .. } => {
            let request = client.request(Method::GET, &repository_path(&name)?);
            show_one(json, &client.json(request).await?)?;
        }
        RepoCommand::Remove { name, .. } => {
            client.send(client.request(Method::DELETE, &repository_path(&name)?)).await?;
            said_removed(json, &name);
        }
        RepoCommand::Notify { .. } | RepoCommand::Forge { .. } => unreachable!("handled before"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `/api/v1/repositories/{name}`, the name's parts kept as path segments.
fn repository_path(name: &str) -> Result<String> {
    if name.is_empty() || name.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        bail!("`{name}` is not a repository name (owner/name)");
    }
    Ok(format!("/api/v1/repositories/{name}"))
}

fn said_registered(json: bool, registered: &repositories::Registered) -> Result<()> {
    if json {
        return print_json(registered);
    }
    let r = &registered.repository;
    let with = r.credentials.as_deref().map(|c| format!(", with the credentials in secret {c}")).unwrap_or_default();
    println!(
        "Registered {} from {} (mirrored at {}{with}; {} branch(es) recorded)",
        r.name, registered.url, r.path, registered.branches
    );
    println!("  the server fetches it on each push webhook for {} and every poll_interval", r.name);
    Ok(())
}

fn said_removed(json: bool, name: &str) {
    if !json {
        println!("Removed {name}; its runs and logs stay.");
    }
}

fn show_list(json: bool, repositories: &[Repository]) -> Result<()> {
    if json {
        print_json(&repositories)?;
    } else if repositories.is_empty() {
        println!("No repositories registered. Add one with `mobius repo add URL` (or a clone's PATH).");
    } else {
        for r in repositories {
            println!("{:<40} {}", r.name, r.path);
        }
    }
    Ok(())
}

fn show_one(json: bool, shown: &repositories::Shown) -> Result<()> {
    if json {
        return print_json(shown);
    }
    println!("{}", shown.name);
    let kind = if shown.mirror { "mirror of a remote" } else { "clone on this machine" };
    println!("  path:     {} ({kind})", shown.path);
    if let Some(credentials) = &shown.credentials {
        println!("  credentials: secret {credentials}");
    }
    for (name, sha) in shown.branches.iter().filter(|(name, _)| name.as_str() != git::TAGS_TRACKED) {
        let short = &sha[..sha.len().min(12)];
        match name.strip_prefix("refs/tags/") {
            Some(tag) => println!("  tag:      {tag} at {short}"),
            None => println!("  branch:   {name} at {short}"),
        }
    }
    let secrets = if shown.secrets.is_empty() { "none".to_owned() } else { shown.secrets.join(", ") };
    println!("  secrets:  {secrets}");
    println!("  forge:    {}", forge::shown(shown.forge.as_ref()));
    Ok(())
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
    fn remote_urls_and_local_paths() {
        assert!(git::is_remote_url("git@github.com:acme/shop.git") && git::is_remote_url("file:///srv/x.git"));
        assert!(!git::is_remote_url("/home/me/src/shop") && !git::is_remote_url("./shop"));
        assert_eq!(git::shown_url("https://ci:tok@github.com/a/b.git"), "https://github.com/a/b.git");
    }
}
