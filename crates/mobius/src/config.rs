//! Configuration, layered: defaults < `mobius.toml` in the data directory < `MOBIUS_*`
//! environment < flags. Parsed, then validated once; errors name the file and position or the
//! variable.
//!
//! The server's secrets in the environment ([`SECRET_VARIABLES`], or `<NAME>_FILE` naming a
//! file that holds one) are read once, first thing in `main`, and taken out of the process's
//! environment ([`take_secrets_from_environment`]): no child inherits them, and
//! `/proc/<pid>/environ` no longer shows them.

mod limits;

use std::collections::BTreeMap;
use std::ffi::{CStr, OsString, c_char};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use jiff::SignedDuration;
use mobius_events::materialise::Rules;
use mobius_sandbox::{Mode as SandboxMode, User};

pub use self::limits::FileLimits;
use self::limits::limits;
use mobius_server::Secret;
use serde::Deserialize;

/// `mobius.toml`. Every field is optional; absent fields fall through to the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address the server listens on, e.g. `127.0.0.1:7070`.
    pub listen: Option<String>,
    /// Serve every `read` endpoint without a token: the event log with its raw bodies, DORA
    /// and flow, runs and their logs, rollouts, SLOs, alerts, incidents and post-mortems,
    /// policy checks, chaos faults, and `/metrics`.
    pub public_read: Option<bool>,
    /// Serve `/metrics` without a token (for a Prometheus without `authorization`).
    pub public_metrics: Option<bool>,
    /// How long after a deployment an incident is attributed to it, e.g. `24h`, `2d`.
    pub attribution_window: Option<String>,
    /// HMAC secret GitHub signs webhooks with (`X-Hub-Signature-256`).
    pub github_webhook_secret: Option<String>,
    /// Token GitLab sends in `X-Gitlab-Token`.
    pub gitlab_webhook_token: Option<String>,
    /// How often the server polls registered repositories for new commits when no git hook
    /// tells it, e.g. `30s`, `5m`.
    pub poll_interval: Option<String>,
    /// The user workflow steps and deployed services run as when the server runs as root: a
    /// name or a numeric uid (`nobody` when not given; `root` keeps root).
    pub run_as: Option<String>,
    /// How steps and services are isolated: `auto` (bubblewrap when it works), `bwrap`
    /// (required) or `off`.
    pub sandbox: Option<String>,
    /// Limits on connections and request bodies (`[limits]`).
    pub limits: Option<FileLimits>,
    /// Where `uses: owner/repo@ref` actions are fetched from: `URL/owner/repo` over any
    /// transport git speaks (default `https://github.com`; a mirror or GitHub Enterprise).
    pub actions_url: Option<String>,
    /// Refuse actions pinned to a tag or branch: only full-length commit SHAs.
    pub require_pinned_actions: Option<bool>,
    /// The server's address as others reach it (behind a proxy, a DNS name), e.g.
    /// `https://ci.example.com`: commit statuses link runs under it. Default: `http://` and
    /// the listen address.
    pub public_url: Option<String>,
    /// The PostgreSQL database to keep everything in instead of the data directory's SQLite
    /// file, e.g. `postgres://mobius@db.internal/mobius` (prefer `MOBIUS_DATABASE_URL` or
    /// `MOBIUS_DATABASE_URL_FILE` for a URL with a password).
    pub database_url: Option<String>,
    /// The `runs-on` labels the server's own executor serves, e.g. `["ubuntu-latest",
    /// "linux"]`: a job with another label, or `self-hosted`, goes to a `mobius agent`. Default:
    /// every label but `self-hosted` runs on the server.
    pub local_labels: Option<Vec<String>>,
    /// The origins browsers may call OFREP from, e.g. `["https://shop.example.com"]` (`"*"`
    /// for any). Default: none (no CORS headers).
    pub ofrep_cors_origins: Option<Vec<String>>,
    /// OFREP evaluations per second one key may make (bursts of twice that); 0: no limit.
    /// Default 1000.
    pub ofrep_rate: Option<f64>,
    /// A directory of gate policies (`*.rego`, `package mobius.gate`) every deploy is decided
    /// by, besides the `policies/` a release ships. Default: none.
    pub policy_dir: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the store, runs, releases and `mobius.toml` live.
    pub data_dir: PathBuf,
    /// The server's address.
    pub listen: SocketAddr,
    /// Whether read endpoints answer without a token.
    pub public_read: bool,
    /// Whether `/metrics` answers without a token (`public_metrics`, `MOBIUS_PUBLIC_METRICS`).
    pub public_metrics: bool,
    /// Limits on connections and bodies (`[limits]`).
    pub limits: mobius_server::limits::Limits,
    /// How events become facts (the attribution window).
    pub rules: Rules,
    /// `MOBIUS_GITHUB_WEBHOOK_SECRET` (or `_FILE`), else `github_webhook_secret` in the file.
    pub github_webhook_secret: Option<Secret>,
    /// `MOBIUS_GITLAB_WEBHOOK_TOKEN` (or `_FILE`), else `gitlab_webhook_token` in the file.
    pub gitlab_webhook_token: Option<Secret>,
    /// `MOBIUS_ADMIN_TOKEN` (or `_FILE`): made valid at start.
    pub admin_token: Option<Secret>,
    /// `MOBIUS_SECRET_KEY` (or `_FILE`): the key stored secrets are sealed with, 64 hex
    /// digits; else `secret.key` in the data directory.
    pub secret_key: Option<Secret>,
    /// How often registered repositories are polled.
    pub poll_interval: std::time::Duration,
    /// The user steps and instances run as when the server runs as root (`run_as` in
    /// `mobius.toml`, `MOBIUS_RUN_AS`), looked up at load: an unknown user is an error. `None`
    /// when not given, and `mobius_sandbox::Sandbox::from_settings` then uses `nobody` (with a
    /// warning) if the server runs as root.
    pub run_as: Option<User>,
    /// How steps and instances are isolated (`sandbox` in `mobius.toml`, `MOBIUS_SANDBOX`):
    /// `auto` (the default: bubblewrap when it works, else plain processes), `bwrap`, `off`.
    pub sandbox: SandboxMode,
    /// Where actions come from (`actions_url`, `MOBIUS_ACTIONS_URL`; GitHub by default).
    pub actions_url: String,
    /// Whether only SHA-pinned actions run (`require_pinned_actions`,
    /// `MOBIUS_REQUIRE_PINNED_ACTIONS`).
    pub require_pinned_actions: bool,
    /// The base URL commit statuses link runs under (`--public-url`, `MOBIUS_PUBLIC_URL`,
    /// `public_url`); `None`: the listen address, known once the server listens.
    pub public_url: Option<String>,
    /// Where the store is when it is not the data directory's SQLite file: a PostgreSQL URL
    /// (`--database-url`, `MOBIUS_DATABASE_URL` or `_FILE`, `database_url`). A secret: it may
    /// hold a password.
    pub database_url: Option<Secret>,
    /// The labels the server's own executor serves (`local_labels`, `MOBIUS_LOCAL_LABELS`
    /// comma-separated), lowercase; `None`: all but `self-hosted`.
    pub local_labels: Option<Vec<String>>,
    /// OFREP's CORS origins (`ofrep_cors_origins`, `MOBIUS_OFREP_CORS_ORIGINS` comma-separated).
    pub ofrep_cors_origins: Vec<String>,
    /// OFREP's rate per key (`ofrep_rate`, `MOBIUS_OFREP_RATE`): per second, and the burst.
    pub ofrep_rate: (f64, u32),
    /// The server's gate policies (`--policy-dir`, `MOBIUS_POLICY_DIR`, `policy_dir`): a
    /// directory that must exist; `None`: only the policies releases ship.
    pub policy_dir: Option<PathBuf>,
}

impl Settings {
    /// The stored secrets of the data directory, opened with [`Settings::secret_key`] or the
    /// key file (created on first use).
    pub fn secrets(&self, store: std::sync::Arc<dyn mobius_store::Store>) -> Result<mobius_secrets::Secrets> {
        let given = self.secret_key.as_ref().map(|s| s.expose());
        let key = mobius_secrets::SecretKey::load(&self.data_dir, given)?;
        Ok(mobius_secrets::Secrets::open(store, &key)?)
    }

    /// The action cache of the data directory, fetching from [`Settings::actions_url`].
    pub fn action_cache(&self) -> mobius_pipelines::remote::ActionCache {
        mobius_pipelines::remote::ActionCache::new(self.data_dir.join("actions"), &self.actions_url)
            .require_pinned(self.require_pinned_actions)
    }

    /// How the server starts steps and service instances: `run_as` and `sandbox` with the
    /// policy of [`mobius_sandbox::Sandbox::from_settings`] (as root, `nobody` by default), the
    /// data directory hidden. Give it to `RunOptions::sandbox` for runs and to
    /// `Supervisor::with_sandbox` for instances.
    pub fn sandbox(&self) -> Result<mobius_sandbox::Sandbox> {
        mobius_sandbox::Sandbox::from_settings(self.sandbox, self.run_as.as_ref(), &self.data_dir, &self.secret_dirs()?)
            .context("cannot set up the sandbox for steps and services")
    }

    /// The directories of the files the server's secrets were read from (`<NAME>_FILE`): hidden
    /// from steps and services like the data directory, since with the server's own user they
    /// could read them. A secret file must be in a directory of its own for that (`/etc/mobius`,
    /// not `/etc`), or the server refuses to start.
    pub fn secret_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for file in &env_secrets().files {
            let dir = std::path::absolute(file)
                .ok()
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .with_context(|| format!("the secret file {} has no directory", file.display()))?;
            let shared = ["/", "/etc", "/root", "/home", "/tmp", "/var", "/run", "/usr", "/opt", "/srv"];
            if shared.iter().any(|d| dir == Path::new(d)) {
                bail!(
                    "the secret file {} must be in a directory of its own (e.g. /etc/mobius/): its directory, {}, \
                     is hidden from steps and services, and hiding {} would hide the system from them",
                    file.display(),
                    dir.display(),
                    dir.display()
                );
            }
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(dirs)
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

/// `$XDG_DATA_HOME/mobius`, else `~/.local/share/mobius`.
pub fn default_data_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("mobius"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/mobius"))
}

/// Flag (or environment, which clap has already folded into the flag) values.
#[derive(Debug, Default)]
pub struct Overrides<'a> {
    pub listen: Option<&'a str>,
    pub public_read: bool,
    pub attribution_window: Option<&'a str>,
    /// `--public-url` (or `MOBIUS_PUBLIC_URL`).
    pub public_url: Option<&'a str>,
    /// `--database-url`.
    pub database_url: Option<&'a str>,
    /// `--policy-dir` (or `MOBIUS_POLICY_DIR`).
    pub policy_dir: Option<&'a Path>,
}

pub fn load(data_dir: Option<&Path>, overrides: Overrides<'_>) -> Result<Settings> {
    load_with(data_dir, overrides, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment's (non-secret) variables from `env`.
fn load_with(
    data_dir: Option<&Path>,
    overrides: Overrides<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings> {
    let data_dir = match data_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_data_dir()?,
    };
    let path = data_dir.join("mobius.toml");
    let file = read_file(&path)?;
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let secrets = env_secrets();
    for warning in &secrets.warnings {
        tracing::warn!("{warning}");
    }
    let secret = |name: &str| secrets.get(name);

    let listen_text = overrides.listen.map(str::to_owned).or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text
        .parse()
        .with_context(|| format!("listen address `{listen_text}` is not HOST:PORT (e.g. {DEFAULT_LISTEN})"))?;

    let window_text = overrides.attribution_window.map(str::to_owned).or(file.attribution_window);
    let mut rules = Rules::default();
    if let Some(text) = window_text {
        rules.attribution_window = parse_window(&text)?;
    }

    let run_as = match (env("MOBIUS_RUN_AS"), file.run_as) {
        (Some(name), _) => Some(User::lookup(&name).context("MOBIUS_RUN_AS")?),
        (None, Some(name)) => Some(User::lookup(&name).with_context(|| format!("{}: run_as", path.display()))?),
        (None, None) => None,
    };
    let sandbox = match (env("MOBIUS_SANDBOX"), file.sandbox) {
        (Some(mode), _) => mode.parse().context("MOBIUS_SANDBOX")?,
        (None, Some(mode)) => mode.parse().with_context(|| format!("{}: sandbox", path.display()))?,
        (None, None) => SandboxMode::default(),
    };

    let public_url = overrides.public_url.map(str::to_owned).or(file.public_url);
    if let Some(url) = &public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        bail!("public URL `{url}` is not an http:// or https:// URL (e.g. https://ci.example.com)");
    }

    let database_url = match overrides.database_url {
        Some(url) => Some(Secret::new(url.to_owned())),
        None => secret("MOBIUS_DATABASE_URL")?.or_else(|| file.database_url.map(Secret::new)),
    };
    if let Some(url) = &database_url
        && !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://"))
    {
        // Only the scheme is shown: the rest may hold a password.
        let scheme = url.expose().split_once("://").map_or("no scheme", |(scheme, _)| scheme);
        bail!(
            "the database URL is not a postgres:// URL (SQLite needs none: it is the data directory's mobius.db); \
             its scheme is `{scheme}`"
        );
    }

    let policy_dir = overrides.policy_dir.map(Path::to_path_buf).or(file.policy_dir);
    if let Some(dir) = &policy_dir
        && !dir.is_dir()
    {
        bail!(
            "the policy directory {} is not a directory (policy_dir, --policy-dir, MOBIUS_POLICY_DIR)",
            dir.display()
        );
    }

    let limits = limits(file.limits.unwrap_or_default()).with_context(|| format!("{}: [limits]", path.display()))?;
    let public_metrics = match env("MOBIUS_PUBLIC_METRICS") {
        Some(text) => parse_bool(&text).context("MOBIUS_PUBLIC_METRICS")?,
        None => file.public_metrics.unwrap_or(false),
    };

    Ok(Settings {
        data_dir,
        listen,
        public_read: overrides.public_read || file.public_read.unwrap_or(false),
        public_metrics,
        limits,
        rules,
        github_webhook_secret: secret("MOBIUS_GITHUB_WEBHOOK_SECRET")?
            .or_else(|| file.github_webhook_secret.map(Secret::new)),
        gitlab_webhook_token: secret("MOBIUS_GITLAB_WEBHOOK_TOKEN")?
            .or_else(|| file.gitlab_webhook_token.map(Secret::new)),
        admin_token: secret("MOBIUS_ADMIN_TOKEN")?,
        secret_key: secret("MOBIUS_SECRET_KEY")?,
        poll_interval: match env("MOBIUS_POLL_INTERVAL").or(file.poll_interval) {
            Some(text) => parse_interval(&text)?,
            None => DEFAULT_POLL_INTERVAL,
        },
        run_as,
        sandbox,
        actions_url: env("MOBIUS_ACTIONS_URL")
            .or(file.actions_url)
            .unwrap_or_else(|| mobius_pipelines::remote::DEFAULT_ACTIONS_URL.to_owned()),
        require_pinned_actions: match env("MOBIUS_REQUIRE_PINNED_ACTIONS") {
            Some(text) => parse_bool(&text).context("MOBIUS_REQUIRE_PINNED_ACTIONS")?,
            None => file.require_pinned_actions.unwrap_or(false),
        },
        public_url: public_url.map(|url| url.trim_end_matches('/').to_owned()),
        database_url,
        policy_dir,
        local_labels: env("MOBIUS_LOCAL_LABELS")
            .map(|text| text.split(',').map(str::to_owned).collect::<Vec<_>>())
            .or(file.local_labels)
            .map(|labels| labels.iter().map(|l| l.trim().to_ascii_lowercase()).filter(|l| !l.is_empty()).collect()),
        ofrep_cors_origins: env("MOBIUS_OFREP_CORS_ORIGINS")
            .map(|text| text.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
            .or(file.ofrep_cors_origins)
            .unwrap_or_default(),
        ofrep_rate: match env("MOBIUS_OFREP_RATE").map(|t| t.trim().parse::<f64>()) {
            Some(Ok(rate)) if rate >= 0.0 && rate.is_finite() => (rate, (rate * 2.0).clamp(1.0, 1e9) as u32),
            Some(_) => bail!("MOBIUS_OFREP_RATE must be a number of evaluations per second (0: no limit)"),
            None => match file.ofrep_rate {
                Some(rate) if rate >= 0.0 && rate.is_finite() => (rate, (rate * 2.0).clamp(1.0, 1e9) as u32),
                Some(_) => bail!("{}: `ofrep_rate` must be a number of evaluations per second", path.display()),
                None => mobius_server::OFREP_RATE,
            },
        },
    })
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
fn parse_bool(text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => bail!("`{other}` is not true or false"),
    }
}

/// The variables that hold the server's secrets. Each may instead be given as `<NAME>_FILE`,
/// the path of a file holding the value (its trailing newline trimmed); setting both is an
/// error, and a file that its group or others may read gets a warning.
pub const SECRET_VARIABLES: [&str; 5] = [
    "MOBIUS_ADMIN_TOKEN",
    "MOBIUS_GITHUB_WEBHOOK_SECRET",
    "MOBIUS_GITLAB_WEBHOOK_TOKEN",
    "MOBIUS_SECRET_KEY",
    "MOBIUS_DATABASE_URL",
];

/// What the environment held of the secrets, read once.
#[derive(Debug, Default)]
struct EnvSecrets {
    /// By variable: the value, or why it cannot be had (reported by [`load`], so only the
    /// commands that read settings fail on it).
    values: BTreeMap<&'static str, Result<Option<Secret>, String>>,
    /// Files holding a secret that others may read.
    warnings: Vec<String>,
    /// The files the secrets were read from (`<NAME>_FILE`).
    files: Vec<PathBuf>,
}

impl EnvSecrets {
    fn get(&self, name: &str) -> Result<Option<Secret>> {
        match self.values.get(name) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(why)) => Err(anyhow!("{why}")),
            None => Ok(None),
        }
    }
}

static ENV_SECRETS: OnceLock<EnvSecrets> = OnceLock::new();

/// The secrets as taken at start, or read now from the environment if they were not (tests).
fn env_secrets() -> &'static EnvSecrets {
    ENV_SECRETS.get_or_init(|| read_env_secrets(&|name| std::env::var_os(name)))
}

/// Reads the secret variables and their `_FILE` forms through `get`.
fn read_env_secrets(get: &dyn Fn(&str) -> Option<OsString>) -> EnvSecrets {
    let mut secrets = EnvSecrets::default();
    for name in SECRET_VARIABLES {
        let file_name = format!("{name}_FILE");
        let given = |name: &str| get(name).filter(|v| !v.is_empty());
        let value = match (given(name), given(&file_name)) {
            (Some(_), Some(_)) => Err(format!("both {name} and {file_name} are set: set only one")),
            (Some(value), None) => {
                value.into_string().map(|v| Some(Secret::new(v))).map_err(|_| format!("{name} is not UTF-8"))
            }
            (None, Some(path)) => {
                secrets.files.push(PathBuf::from(&path));
                read_secret_file(&file_name, Path::new(&path), &mut secrets.warnings).map(Some)
            }
            (None, None) => Ok(None),
        };
        secrets.values.insert(name, value);
    }
    secrets
}

/// The secret in the file `path` (named by `variable`), without its trailing newline.
fn read_secret_file(variable: &str, path: &Path, warnings: &mut Vec<String>) -> Result<Secret, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {variable} ({shown}): {e}"))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("{variable} ({shown}) is empty"));
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o044 != 0
    {
        let mode = meta.permissions().mode() & 0o7777;
        warnings.push(format!("{variable} ({shown}) is readable by its group or others (mode {mode:o}): chmod 600 it"));
    }
    Ok(Secret::new(value))
}

/// Reads the server's secrets from the environment ([`SECRET_VARIABLES`] and their `_FILE`
/// forms, kept for [`load`]), then takes all eight variables out of this process's environment,
/// so that no child process inherits them. The values are first overwritten in the memory the
/// kernel placed the environment in at exec: `/proc/<pid>/environ` reads that memory, not the
/// C library's current list, and would still show them after the variables are removed.
///
/// Refuses (and changes nothing) when the process has more than one thread.
///
/// # Safety
///
/// No other thread may exist or be started while it runs: call it first thing in `main`,
/// before any runtime or thread. Changing the environment while another thread may read it is
/// undefined behaviour (hence `std::env::remove_var` being unsafe).
pub unsafe fn take_secrets_from_environment() -> Result<(), String> {
    let secrets = read_env_secrets(&|name| std::env::var_os(name));
    let _ = ENV_SECRETS.set(secrets);
    let threads = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status.lines().find_map(|line| line.strip_prefix("Threads:").and_then(|n| n.trim().parse::<usize>().ok()))
    });
    if let Some(threads) = threads.filter(|n| *n > 1) {
        return Err(format!("{threads} threads are running: the secret variables were left in the environment"));
    }
    let block = original_environment_block();
    unsafe extern "C" {
        /// The C library's list of the environment's `NAME=value` strings, null-terminated.
        static mut environ: *mut *mut c_char;
    }
    // SAFETY: the caller guarantees that this thread is the only one (and the count above
    // agrees), so nothing reads or changes the environment while it is changed here, which is
    // what makes `remove_var` unsafe. `environ` is read, not resized: a null-terminated array
    // of pointers to NUL-terminated strings. Bytes are written only inside strings lying wholly
    // in `block`, the area the kernel wrote the environment into at exec: memory of this
    // process, writable, that the C library never allocated (strings from `setenv` are
    // elsewhere) and nothing else refers to (std copies values out). Writing NULs after `=`
    // leaves each a valid, shorter C string; its entry is removed right after.
    unsafe {
        if let Some((start, end)) = block {
            let mut entry = environ;
            while !entry.is_null() && !(*entry).is_null() {
                let text = *entry;
                let length = CStr::from_ptr(text).to_bytes().len();
                let prefix = |name: &str| {
                    let bytes = std::slice::from_raw_parts(text.cast::<u8>(), length);
                    length > name.len() && bytes.starts_with(name.as_bytes()) && bytes[name.len()] == b'='
                };
                let inside = (text as usize) >= start && (text as usize).saturating_add(length) < end;
                if inside && let Some(name) = SECRET_VARIABLES.into_iter().find(|name| prefix(name)) {
                    std::ptr::write_bytes(text.add(name.len() + 1), 0, length - name.len() - 1);
                }
                entry = entry.add(1);
            }
        }
        for name in SECRET_VARIABLES {
            std::env::remove_var(name);
            std::env::remove_var(format!("{name}_FILE"));
        }
    }
    Ok(())
}

/// Where the kernel put the environment at exec (`env_start`, `env_end`: the 50th and 51st
/// fields of `/proc/self/stat`), the memory `/proc/<pid>/environ` shows.
fn original_environment_block() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields are counted from 1 and the command's name (2nd) may hold spaces: the 3rd field is
    // the first after the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(47)?.parse().ok()?, fields.get(48)?.parse().ok()?))
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{at}: {}", path.display(), e.message())
    })
}

/// How often repositories are polled by default: the hooks make polling a fallback.
pub const DEFAULT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// `30s`, `5m`, `1h`: at least a second.
pub fn parse_interval(text: &str) -> Result<std::time::Duration> {
    let seconds = parse_span(text, "poll interval", &[("s", 1), ("m", 60), ("h", 3600)])?;
    Ok(std::time::Duration::from_secs(seconds))
}

/// `7d`, `12h`, `30m`: how long something went unused.
pub fn parse_age(text: &str, what: &str) -> Result<std::time::Duration> {
    let seconds = parse_span(text, what, &[("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)])?;
    Ok(std::time::Duration::from_secs(seconds))
}

/// `24h`, `2d`, `90m`.
pub fn parse_window(text: &str) -> Result<SignedDuration> {
    let seconds = parse_span(text, "attribution window", &[("m", 60), ("h", 3600), ("d", 86_400)])?;
    Ok(SignedDuration::from_secs(i64::try_from(seconds).context("attribution window is too long")?))
}

/// A positive whole number followed by one of `units` (suffix, seconds each), in seconds;
/// errors name `what` and show the examples the units allow.
fn parse_span(text: &str, what: &str, units: &[(&str, u64)]) -> Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let names: Vec<&str> = units.iter().map(|(u, _)| *u).collect();
    let n: u64 = number.parse().ok().filter(|n| *n > 0).with_context(|| {
        let examples: Vec<String> = names.iter().map(|u| format!("30{u}")).collect();
        format!("{what} `{text}` is not a positive span like {}", examples.join(", "))
    })?;
    match units.iter().find(|(u, _)| *u == unit) {
        Some((_, seconds)) => n.checked_mul(*seconds).with_context(|| format!("{what} `{text}` is too long")),
        None => bail!("{what} `{text}`: unit must be {}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests;
