//! Configuration, layered: defaults < `mobius.toml` in the data directory < `MOBIUS_*`
//! environment < flags. Parsed, then validated once; errors name the file and position or the
//! variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use jiff::SignedDuration;
use mobius_events::materialise::Rules;
use mobius_server::Secret;
use serde::Deserialize;

/// `mobius.toml`. Every field is optional; absent fields fall through to the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address the server listens on, e.g. `127.0.0.1:7070`.
    pub listen: Option<String>,
    /// Serve read endpoints without a token.
    pub public_read: Option<bool>,
    /// How long after a deployment an incident is attributed to it, e.g. `24h`, `2d`.
    pub attribution_window: Option<String>,
    /// HMAC secret GitHub signs webhooks with (`X-Hub-Signature-256`).
    pub github_webhook_secret: Option<String>,
    /// Token GitLab sends in `X-Gitlab-Token`.
    pub gitlab_webhook_token: Option<String>,
    /// How often the server polls registered repositories for new commits when no git hook
    /// tells it, e.g. `30s`, `5m`.
    pub poll_interval: Option<String>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub public_read: bool,
    pub rules: Rules,
    pub github_webhook_secret: Option<Secret>,
    pub gitlab_webhook_token: Option<Secret>,
    pub admin_token: Option<Secret>,
    pub poll_interval: std::time::Duration,
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
}

pub fn load(data_dir: Option<&Path>, overrides: Overrides<'_>) -> Result<Settings> {
    let data_dir = match data_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_data_dir()?,
    };
    let file = read_file(&data_dir.join("mobius.toml"))?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());

    let listen_text = overrides.listen.map(str::to_owned).or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text
        .parse()
        .with_context(|| format!("listen address `{listen_text}` is not HOST:PORT (e.g. {DEFAULT_LISTEN})"))?;

    let window_text = overrides.attribution_window.map(str::to_owned).or(file.attribution_window);
    let mut rules = Rules::default();
    if let Some(text) = window_text {
        rules.attribution_window = parse_window(&text)?;
    }

    Ok(Settings {
        data_dir,
        listen,
        public_read: overrides.public_read || file.public_read.unwrap_or(false),
        rules,
        github_webhook_secret: env("MOBIUS_GITHUB_WEBHOOK_SECRET").or(file.github_webhook_secret).map(Secret::new),
        gitlab_webhook_token: env("MOBIUS_GITLAB_WEBHOOK_TOKEN").or(file.gitlab_webhook_token).map(Secret::new),
        admin_token: env("MOBIUS_ADMIN_TOKEN").map(Secret::new),
        poll_interval: match env("MOBIUS_POLL_INTERVAL").or(file.poll_interval) {
            Some(text) => parse_interval(&text)?,
            None => DEFAULT_POLL_INTERVAL,
        },
    })
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
mod tests {
    use super::*;

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
}
