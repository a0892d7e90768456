//! What a deploy repository declares: `environments/<env>.yaml`, one file per environment.
//!
//! ```yaml
//! services:
//!   shop:
//!     artifact: sha256:3f5a…   # the artifact digest the service runs here (built by Mobius)
//!     flags:                   # optional: flagd files in this repository, relative to the
//!       - flags/checkout.flagd.json  # folder `environments/` is in; loaded as a release's
//! sync_windows:
//!   - kind: deny               # allow | deny
//!     schedule: "0 16 * * 5"   # cron, UTC: when the window opens
//!     duration: 64h            # how long it stays open (s, m, h, d)
//! ```
//!
//! A file is read whole and checked before anything acts on it: unknown keys, a digest that is
//! not `sha256:` and 64 hex digits, a service or environment name a deploy would refuse, a cron
//! that does not parse, a duration that is not one, a flag file path that leaves the repository
//! or does not end in `.flagd.json` — each an error at `file:line:col`, and a repository with
//! one bad file changes nothing. (The flag files themselves are read and checked by the
//! reconciler, at the same revision: see `reconcile`.)

use std::collections::BTreeMap;
use std::time::Duration;

use mobius_pipelines::workflow::Cron;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// One environment as git declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// From the file's name.
    pub name: String,
    /// The file, relative to the repository.
    pub file: String,
    /// Service → the artifact digest it should run.
    pub services: BTreeMap<String, String>,
    /// Service → the flag files declared for it (services without any are absent).
    pub flags: BTreeMap<String, Vec<FlagRef>>,
    pub windows: Vec<Window>,
}

/// A flag file an environment file names: its path relative to the folder `environments/` is
/// in, and where the environment file names it (what an error about it points at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRef {
    pub path: String,
    pub line: u64,
    pub column: u64,
}

/// A sync window: while an `allow` window is defined, syncs happen only inside one; inside a
/// `deny` window they never do (deny wins) — Argo CD's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub kind: WindowKind,
    /// The cron text, as written.
    pub schedule: String,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Allow,
    Deny,
}

/// Why a file was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct DesiredError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    services: BTreeMap<String, Spanned<ServiceEntry>>,
    #[serde(default)]
    sync_windows: Vec<Spanned<WindowEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    artifact: Spanned<String>,
    #[serde(default)]
    flags: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowEntry {
    kind: WindowKind,
    schedule: Spanned<String>,
    duration: Spanned<String>,
}

/// Reads `text`, the file `file` (a path ending in `environments/<env>.yaml`).
pub fn parse(file: &str, text: &str) -> Result<Environment, DesiredError> {
    let at = |location: Location, message: String| DesiredError {
        file: file.to_owned(),
        line: location.line().max(1),
        column: location.column().max(1),
        message,
    };
    let name = file
        .rsplit('/')
        .next()
        .and_then(|base| base.strip_suffix(".yaml").or_else(|| base.strip_suffix(".yml")))
        .unwrap_or_default()
        .to_owned();
    if !valid_name(&name) {
        return Err(at(Location::UNKNOWN, format!("`{name}` is not an environment name (letters, digits, `-`, `_`)")));
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // An empty file declares nothing (and is valid).
    let parsed: Option<File> = serde_saphyr::from_str_with_options(text, options).map_err(|err| {
        let location = err.location().unwrap_or(Location::UNKNOWN);
        let rendered = err.without_snippet().to_string();
        let mut message = rendered.lines().next().unwrap_or("invalid YAML").to_owned();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        at(location, message)
    })?;
    let parsed = parsed.unwrap_or(File { services: BTreeMap::new(), sync_windows: Vec::new() });
    let mut services = BTreeMap::new();
    let mut flags = BTreeMap::new();
    for (service, entry) in parsed.services {
        if !valid_name(&service) {
            return Err(at(entry.referenced, format!("`{service}` is not a service name (letters, digits, `-`, `_`)")));
        }
        let artifact = &entry.value.artifact;
        if !is_digest(&artifact.value) {
            return Err(at(
                artifact.referenced,
                format!("`artifact` must be a digest `sha256:` and 64 hex digits, not `{}`", artifact.value),
            ));
        }
        let mut refs = Vec::new();
        for flag in &entry.value.flags {
            if let Err(message) = check_flag_path(&flag.value) {
                return Err(at(flag.referenced, message));
            }
            if refs.iter().any(|r: &FlagRef| r.path == flag.value) {
                return Err(at(flag.referenced, format!("`{}` is listed twice", flag.value)));
            }
            let location = flag.referenced;
            refs.push(FlagRef {
                path: flag.value.clone(),
                line: location.line().max(1),
                column: location.column().max(1),
            });
        }
        if !refs.is_empty() {
            flags.insert(service.clone(), refs);
        }
        services.insert(service, artifact.value.clone());
    }
    let mut windows = Vec::new();
    for window in parsed.sync_windows {
        let entry = window.value;
        if let Err(e) = Cron::parse(&entry.schedule.value) {
            return Err(at(entry.schedule.referenced, format!("`schedule`: {e}")));
        }
        let duration = parse_duration(&entry.duration.value).ok_or_else(|| {
            at(
                entry.duration.referenced,
                format!(
                    "`duration` must be a whole number of s, m, h or d (such as 2h), not `{}`",
                    entry.duration.value
                ),
            )
        })?;
        windows.push(Window { kind: entry.kind, schedule: entry.schedule.value, duration });
    }
    Ok(Environment { name, file: file.to_owned(), services, flags, windows })
}

/// A flag file's path as an environment file may name it: relative, inside the repository, a
/// `.flagd.json` file, nothing `git` could read as an option.
fn check_flag_path(path: &str) -> Result<(), String> {
    let inside = !path.is_empty()
        && !path.starts_with('/')
        && !path.starts_with('-')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if !inside {
        return Err(format!("`flags`: `{path}` must be a relative path inside the repository"));
    }
    if !path.ends_with(mobius_delivery::flags::SUFFIX)
        || path.rsplit('/').next() == Some(mobius_delivery::flags::SUFFIX)
    {
        return Err(format!("`flags`: `{path}` must name a flagd file ending in `{}`", mobius_delivery::flags::SUFFIX));
    }
    Ok(())
}

/// Whether `text` is `sha256:` and 64 lowercase hex digits.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 63 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `30s`, `10m`, `2h`, `3d`: a positive whole number and a unit.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }?;
    Some(Duration::from_secs(seconds))
}

impl Window {
    /// Whether the window is open at `now`: some minute of the last `duration` matches its
    /// cron (windows open on a cron minute and stay open for their duration).
    pub fn is_open(&self, now: jiff::Timestamp) -> bool {
        let Ok(cron) = Cron::parse(&self.schedule) else { return false };
        let minutes = self.duration.as_secs().div_ceil(60).min(366 * 24 * 60) as i64;
        let start = now.as_second() - now.as_second().rem_euclid(60);
        (0..minutes).any(|back| {
            let at = start - back * 60;
            // The window opened at `at` and is open until `at + duration`.
            jiff::Timestamp::from_second(at)
                .is_ok_and(|t| cron.matches(t) && now.as_second() < at + self.duration.as_secs() as i64)
        })
    }
}

/// Why syncs are held now, if they are: a deny window open, or allow windows defined and none
/// open.
pub fn held_by(windows: &[Window], now: jiff::Timestamp) -> Option<String> {
    if let Some(deny) = windows.iter().find(|w| w.kind == WindowKind::Deny && w.is_open(now)) {
        return Some(format!("held by the deny window `{}` for {}", deny.schedule, humanise(deny.duration)));
    }
    let allows: Vec<&Window> = windows.iter().filter(|w| w.kind == WindowKind::Allow).collect();
    if !allows.is_empty() && !allows.iter().any(|w| w.is_open(now)) {
        let listed: Vec<String> =
            allows.iter().map(|w| format!("`{}` for {}", w.schedule, humanise(w.duration))).collect();
        return Some(format!("held: outside every allow window ({})", listed.join(", ")));
    }
    None
}

fn humanise(duration: Duration) -> String {
    let s = duration.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn a_file_declares_services_and_windows() {
        let text = format!(
            "services:\n  shop:\n    artifact: {DIGEST}\nsync_windows:\n  - kind: deny\n    schedule: \"0 16 * * 5\"\n    duration: 64h\n"
        );
        let env = parse("deploy/environments/production.yaml", &text).unwrap();
        assert_eq!(env.name, "production");
        assert_eq!(env.services.get("shop").map(String::as_str), Some(DIGEST));
        assert_eq!(env.windows[0].duration, Duration::from_secs(64 * 3600));
        assert_eq!(parse("environments/empty.yaml", "").unwrap().services.len(), 0);
    }

    #[test]
    fn bad_files_are_refused_at_their_position() {
        let refused = |text: &str| parse("environments/production.yaml", text).unwrap_err().to_string();
        assert_eq!(
            refused("services:\n  shop:\n    artifact: sha256:abc\n"),
            "environments/production.yaml:3:15: `artifact` must be a digest `sha256:` and 64 hex digits, not `sha256:abc`"
        );
        let unknown = refused(&format!("services:\n  shop:\n    artifact: {DIGEST}\n    replicas: 3\n"));
        assert!(unknown.starts_with("environments/production.yaml:4:5: unknown field `replicas`"), "{unknown}");
        let cron = refused("sync_windows:\n  - kind: deny\n    schedule: \"61 * * * *\"\n    duration: 1h\n");
        assert!(cron.starts_with("environments/production.yaml:3:15: `schedule`: "), "{cron}");
        assert_eq!(
            refused("sync_windows:\n  - kind: allow\n    schedule: \"* * * * *\"\n    duration: soon\n"),
            "environments/production.yaml:4:15: `duration` must be a whole number of s, m, h or d (such as 2h), not `soon`"
        );
        let kind = refused("sync_windows:\n  - kind: maybe\n    schedule: \"* * * * *\"\n    duration: 1h\n");
        assert!(kind.starts_with("environments/production.yaml:2:11: "), "{kind}");
        let name = parse("environments/pro duction.yaml", "").unwrap_err().to_string();
        assert!(name.contains("`pro duction` is not an environment name"), "{name}");
        let service = refused(&format!("services:\n  \"sh op\":\n    artifact: {DIGEST}\n"));
        assert!(service.contains("`sh op` is not a service name"), "{service}");
    }

    #[test]
    fn a_service_names_its_flag_files_and_bad_paths_are_refused_where_written() {
        let text =
            format!("services:\n  shop:\n    artifact: {DIGEST}\n    flags:\n      - flags/checkout.flagd.json\n");
        let env = parse("environments/staging.yaml", &text).unwrap();
        let refs = &env.flags["shop"];
        assert_eq!((refs[0].path.as_str(), refs[0].line, refs[0].column), ("flags/checkout.flagd.json", 5, 9));
        let bare = parse("environments/staging.yaml", &format!("services:\n  shop:\n    artifact: {DIGEST}\n"));
        assert!(bare.unwrap().flags.is_empty(), "no flags: nothing declared");
        let refused = |path: &str| {
            let text = format!("services:\n  shop:\n    artifact: {DIGEST}\n    flags: [\"{path}\"]\n");
            parse("environments/staging.yaml", &text).unwrap_err().to_string()
        };
        for outside in
            ["../secrets/x.flagd.json", "/etc/x.flagd.json", "flags//x.flagd.json", "-x.flagd.json", "./x.flagd.json"]
        {
            let said = refused(outside);
            assert!(
                said.starts_with("environments/staging.yaml:4:13: `flags`: ") && said.contains("relative path"),
                "{said}"
            );
        }
        assert!(refused("flags/checkout.json").contains("must name a flagd file ending in `.flagd.json`"));
        assert!(refused("flags/.flagd.json").contains("must name a flagd file"));
        let twice = format!("services:\n  shop:\n    artifact: {DIGEST}\n    flags: [a.flagd.json, a.flagd.json]\n");
        let said = parse("environments/staging.yaml", &twice).unwrap_err().to_string();
        assert!(said.contains("`a.flagd.json` is listed twice"), "{said}");
    }

    #[test]
    fn windows_open_on_their_cron_for_their_duration_and_deny_wins() {
        let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
        let deny =
            Window { kind: WindowKind::Deny, schedule: "0 16 * * 5".into(), duration: Duration::from_secs(3600) };
        // 2026-12-04 is a Friday.
        assert!(!deny.is_open(at("2026-12-04T15:59:59Z")));
        assert!(deny.is_open(at("2026-12-04T16:00:00Z")));
        assert!(deny.is_open(at("2026-12-04T16:59:59Z")));
        assert!(!deny.is_open(at("2026-12-04T17:00:00Z")));
        let allow =
            Window { kind: WindowKind::Allow, schedule: "0 9 * * 1-5".into(), duration: Duration::from_secs(8 * 3600) };
        assert_eq!(held_by(std::slice::from_ref(&allow), at("2026-12-04T10:00:00Z")), None);
        let outside = held_by(std::slice::from_ref(&allow), at("2026-12-05T10:00:00Z")).unwrap();
        assert_eq!(outside, "held: outside every allow window (`0 9 * * 1-5` for 8h)");
        let both = [allow, deny];
        assert_eq!(held_by(&both, at("2026-12-04T16:30:00Z")).unwrap(), "held by the deny window `0 16 * * 5` for 1h");
        assert_eq!(held_by(&[], at("2026-12-04T16:30:00Z")), None);
    }
}
