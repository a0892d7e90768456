//! Workflow commands: `::name key=value,…::message` lines a step prints to talk to the runner.
//!
//! Handled as GitHub's runner handles them (`ActionCommand.TryParseV2`, `ActionCommandManager`):
//! - `::add-mask::VALUE` masks `VALUE` in everything the job prints from then on; the line
//!   itself is not logged. Values shorter than [`MIN_SECRET_CHARS`] are refused with a warning
//!   in the log (GitHub masks any length);
//! - `::debug::`, `::notice::`, `::warning::`, `::error::` become readable lines:
//!   `warning: message (file:line:col)`, with `title: ` before the message when given;
//! - `::stop-commands::TOKEN` turns command processing off until a line `::TOKEN::`; neither
//!   line is logged;
//! - the legacy `::set-output name=x::v` and `::save-state name=x::v` still work, as on GitHub:
//!   the value becomes a step output or the action's state ([`Requests`]), and the line is
//!   replaced by GitHub's deprecation warning;
//! - the legacy `::set-env name=X::v` and `::add-path::dir` are refused with GitHub's message
//!   and fail the step, unless `ACTIONS_ALLOW_UNSECURE_COMMANDS` is `true` in the step's
//!   environment: then they set a variable or prepend to `PATH` for the job's later steps;
//! - any other line, including commands not listed here (`::group::`…), is logged as it is.
//!
//! Lines arrive masked, so a command's data is what survives masking; what a command prints
//! is masked again after its `%`-escapes are decoded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use crate::mask::{MIN_SECRET_CHARS, MaskError, Masker};

/// GitHub's warning for `set-output` and `save-state`, with the command's name for `{}`.
const DEPRECATED: &str = "The `{}` command is deprecated and will be disabled soon. Please upgrade to using \
    Environment Files. For more information see: \
    https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/";

/// GitHub's error for `set-env` and `add-path` without `ACTIONS_ALLOW_UNSECURE_COMMANDS`.
const DISABLED: &str = "The `{}` command is disabled. Please upgrade to using Environment Files or opt into \
    unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. \
    For more information see: \
    https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/";

/// The variable that lets `set-env` and `add-path` through.
pub(crate) const ALLOW_UNSECURE_COMMANDS: &str = "ACTIONS_ALLOW_UNSECURE_COMMANDS";

/// Whether a value of `ACTIONS_ALLOW_UNSECURE_COMMANDS` opts in: `true` in any case, around
/// whitespace, as .NET's `bool.TryParse` in GitHub's runner reads it.
pub(crate) fn allows_unsecure_commands(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What the legacy commands of one step asked of the runner; both of its output streams add
/// to it, and the runner applies it once the step has ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Requests {
    /// `::set-output`.
    pub outputs: BTreeMap<String, String>,
    /// `::save-state`.
    pub state: BTreeMap<String, String>,
    /// `::set-env`, when allowed.
    pub env: BTreeMap<String, String>,
    /// `::add-path`, when allowed, in the order given.
    pub path: Vec<PathBuf>,
    /// A command was refused or malformed: the step fails, as on GitHub.
    pub failed: bool,
}

/// [`Requests`] shared by a step's two stream readers.
pub(crate) type SharedRequests = Arc<Mutex<Requests>>;

/// Command processing for one output stream of a step.
pub(crate) struct Commands {
    masker: Masker,
    /// Set by `::stop-commands::TOKEN`: commands are off until `::TOKEN::`.
    stopped_until: Option<String>,
    /// Where the legacy commands' requests go.
    requests: SharedRequests,
    /// `ACTIONS_ALLOW_UNSECURE_COMMANDS` is `true` for the step.
    unsecure_allowed: bool,
}

impl Commands {
    #[cfg(test)]
    pub(crate) fn new(masker: Masker) -> Commands {
        Commands::for_step(masker, SharedRequests::default(), false)
    }

    /// Commands of one stream of a step whose requests go to `requests`.
    pub(crate) fn for_step(masker: Masker, requests: SharedRequests, unsecure_allowed: bool) -> Commands {
        Commands { masker, stopped_until: None, requests, unsecure_allowed }
    }

    /// Records a request; the lock only guards maps, whole even if a holder panicked.
    fn request(&self, change: impl FnOnce(&mut Requests)) {
        change(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// A command GitHub's runner would throw on: both its lines, and the step fails.
    fn refuse(&self, text: &str, why: String) -> Vec<String> {
        self.request(|r| r.failed = true);
        vec![format!("error: Unable to process command '{text}' successfully."), format!("error: {why}")]
    }

    /// The `name` property of `set-output`, `save-state` or `set-env`, or GitHub's complaint.
    fn name_of(&self, command: &Command<'_>) -> Result<String, String> {
        command
            .properties
            .iter()
            .find(|(k, _)| *k == "name")
            .map(|(_, v)| unescape_property(v))
            .filter(|name| !name.is_empty())
            .ok_or_else(|| format!("Required field 'name' is missing in ##[{}] command.", command.name))
    }

    /// Takes one (masked) line of output and returns the lines to log in its place: itself,
    /// a readable form of a command, or nothing.
    pub(crate) fn line(&mut self, text: String) -> Vec<String> {
        if let Some(token) = &self.stopped_until {
            if text.trim() == format!("::{token}::") {
                self.stopped_until = None;
                return Vec::new();
            }
            return vec![text];
        }
        let Some(command) = parse(&text) else { return vec![text] };
        match command.name {
            "add-mask" => {
                let value = unescape_data(command.message);
                if value.trim().is_empty() {
                    return vec!["warning: ::add-mask:: was given an empty value".to_owned()];
                }
                match self.masker.add("add-mask", &value) {
                    Ok(()) => Vec::new(),
                    Err(MaskError::TooShort { .. }) => vec![format!(
                        "warning: ::add-mask:: value shorter than {MIN_SECRET_CHARS} characters is not masked"
                    )],
                }
            }
            "stop-commands" => {
                let token = unescape_data(command.message);
                if token.is_empty() {
                    return vec![text];
                }
                self.stopped_until = Some(token);
                Vec::new()
            }
            level @ ("debug" | "notice" | "warning" | "error") => {
                let rendered = readable(level, &command);
                let masked = String::from_utf8_lossy(&self.masker.mask(rendered.as_bytes())).into_owned();
                masked.lines().map(str::to_owned).collect()
            }
            legacy @ ("set-output" | "save-state") => {
                let name = match self.name_of(&command) {
                    Ok(name) => name,
                    Err(why) => return self.refuse(&text, why),
                };
                let value = unescape_data(command.message);
                self.request(|r| {
                    let into = if legacy == "set-output" { &mut r.outputs } else { &mut r.state };
                    into.insert(name, value);
                });
                vec![format!("warning: {}", DEPRECATED.replace("{}", legacy))]
            }
            unsecure @ ("set-env" | "add-path") => {
                if !self.unsecure_allowed {
                    return self.refuse(&text, DISABLED.replace("{}", unsecure));
                }
                let value = unescape_data(command.message);
                if unsecure == "add-path" {
                    self.request(|r| r.path.push(PathBuf::from(value)));
                    return Vec::new();
                }
                match self.name_of(&command) {
                    Ok(name) => {
                        self.request(|r| {
                            r.env.insert(name, value);
                        });
                        Vec::new()
                    }
                    Err(why) => self.refuse(&text, why),
                }
            }
            _ => vec![text],
        }
    }
}

/// One parsed command line.
#[derive(Debug, PartialEq)]
struct Command<'a> {
    name: &'a str,
    /// The properties, still escaped.
    properties: Vec<(&'a str, &'a str)>,
    /// The message, still escaped.
    message: &'a str,
}

/// `::name k=v,k2=v2::message`, leading whitespace allowed; `None` for any other line.
fn parse(line: &str) -> Option<Command<'_>> {
    let rest = line.trim_start().strip_prefix("::")?;
    let end = rest.find("::")?;
    let (head, message) = (&rest[..end], &rest[end + 2..]);
    let (name, props) = match head.split_once(' ') {
        Some((name, props)) => (name, props),
        None => (head, ""),
    };
    if name.is_empty() {
        return None;
    }
    let properties = props
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| !k.is_empty())
        .collect();
    Some(Command { name, properties, message })
}

/// `warning: title: message (file:line:col)`.
fn readable(level: &str, command: &Command<'_>) -> String {
    let property = |key: &str| {
        command.properties.iter().find(|(k, _)| *k == key).map(|(_, v)| unescape_property(v)).filter(|v| !v.is_empty())
    };
    let mut text = format!("{level}: ");
    if let Some(title) = property("title") {
        text.push_str(&title);
        text.push_str(": ");
    }
    text.push_str(&unescape_data(command.message));
    if let Some(file) = property("file") {
        let mut location = file;
        if let Some(line) = property("line") {
            location.push(':');
            location.push_str(&line);
            if let Some(col) = property("col") {
                location.push(':');
                location.push_str(&col);
            }
        }
        text.push_str(&format!(" ({location})"));
    }
    text
}

/// A command's message: `%25`, `%0D`, `%0A` decoded.
fn unescape_data(text: &str) -> String {
    unescape(text, &[("%0D", "\r"), ("%0A", "\n"), ("%25", "%")])
}

/// A property's value: also `%3A` and `%2C`.
fn unescape_property(text: &str) -> String {
    unescape(text, &[("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")])
}

/// Decodes in one pass, so `%250A` is `%0A` and not a newline. Case-insensitive like GitHub's.
fn unescape(text: &str, escapes: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match escapes.iter().find(|(code, _)| tail.get(..3).is_some_and(|t| t.eq_ignore_ascii_case(code))) {
            Some((_, decoded)) => {
                out.push_str(decoded);
                rest = &tail[3..];
            }
            None => {
                out.push('%');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lines: &[&str], expected: &[&str]) {
        let masker = Masker::new([("S", "pass%word")]).expect("valid secret");
        let mut commands = Commands::new(masker);
        let out: Vec<String> = lines.iter().flat_map(|l| commands.line((*l).to_owned())).collect();
        assert_eq!(out, expected, "{lines:?}");
    }

    #[test]
    fn readable_annotations() {
        check(&["::warning::careful"], &["warning: careful"]);
        check(&["  ::error file=src/a.rs,line=3,col=7::bad%0Athing"], &["error: bad", "thing (src/a.rs:3:7)"]);
        check(&["::notice file=a%2Cb.txt,line=2,title=Heads up::100%25"], &["notice: Heads up: 100% (a,b.txt:2)"]);
        check(&["::debug::x"], &["debug: x"]);
        check(&["::error file=f::no line"], &["error: no line (f)"]);
        // Decoding cannot smuggle a secret past the masker.
        check(&["::warning::pass%25word"], &["warning: ***"]);
    }

    #[test]
    fn other_lines_and_unknown_commands_pass_through() {
        check(&["plain", "::group::Build", "::::", ":: not"], &["plain", "::group::Build", "::::", ":: not"]);
    }

    #[test]
    fn add_mask_masks_later_lines() {
        let masker = Masker::new(Vec::<(String, String)>::new()).expect("no secrets");
        let mut commands = Commands::new(masker.clone());
        assert!(commands.line("::add-mask::supersecret123".into()).is_empty());
        assert_eq!(masker.mask(b"x supersecret123"), b"x ***");
        assert_eq!(
            commands.line("::add-mask::abc".into()),
            ["warning: ::add-mask:: value shorter than 4 characters is not masked"]
        );
        assert_eq!(masker.mask(b"abc"), b"abc");
    }

    #[test]
    fn stop_commands_until_token() {
        check(
            &["::stop-commands::tok42", "::warning::literal", "::add-mask::notmasked", "::tok42::", "::warning::w"],
            &["::warning::literal", "::add-mask::notmasked", "warning: w"],
        );
    }

    fn requested(allowed: bool, lines: &[&str]) -> (Vec<String>, Requests) {
        let masker = Masker::new(Vec::<(String, String)>::new()).expect("no secrets");
        let requests = SharedRequests::default();
        let mut commands = Commands::for_step(masker, requests.clone(), allowed);
        let out = lines.iter().flat_map(|l| commands.line((*l).to_owned())).collect();
        let requests = requests.lock().expect("not poisoned").clone();
        (out, requests)
    }

    #[test]
    fn set_output_and_save_state_work_with_github_s_warning() {
        let (out, requests) =
            requested(false, &["::set-output name=greeting::a%25b%0Ac", "::save-state name=pid%3A1::42"]);
        assert_eq!(
            out,
            [
                "warning: The `set-output` command is deprecated and will be disabled soon. Please upgrade to using \
                 Environment Files. For more information see: \
                 https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/",
                "warning: The `save-state` command is deprecated and will be disabled soon. Please upgrade to using \
                 Environment Files. For more information see: \
                 https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/",
            ]
        );
        assert_eq!(requests.outputs, BTreeMap::from([("greeting".to_owned(), "a%b\nc".to_owned())]));
        assert_eq!(requests.state, BTreeMap::from([("pid:1".to_owned(), "42".to_owned())]));
        assert!(!requests.failed);
        let (out, requests) = requested(false, &["::set-output::no name"]);
        assert_eq!(out[1], "error: Required field 'name' is missing in ##[set-output] command.");
        assert!(requests.failed && requests.outputs.is_empty());
    }

    #[test]
    fn set_env_and_add_path_are_refused_unless_allowed() {
        let (out, requests) = requested(false, &["::set-env name=X::1", "::add-path::/opt/bin"]);
        assert_eq!(out[0], "error: Unable to process command '::set-env name=X::1' successfully.");
        assert_eq!(
            out[1],
            "error: The `set-env` command is disabled. Please upgrade to using Environment Files or opt into \
             unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to \
             `true`. For more information see: \
             https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
        );
        assert!(out[3].starts_with("error: The `add-path` command is disabled."), "{out:?}");
        assert!(requests.failed && requests.env.is_empty() && requests.path.is_empty());

        let (out, requests) = requested(true, &["::set-env name=X::a%0Ab", "::add-path::/opt/bin", "::add-path::/x"]);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(requests.env, BTreeMap::from([("X".to_owned(), "a\nb".to_owned())]));
        assert_eq!(requests.path, [PathBuf::from("/opt/bin"), PathBuf::from("/x")]);
        assert!(!requests.failed);
        assert!(allows_unsecure_commands(Some(" True ")) && !allows_unsecure_commands(Some("1")));
    }

    #[test]
    fn unescapes_in_one_pass() {
        assert_eq!(unescape_data("%250A%0a%"), "%0A\n%");
        assert_eq!(unescape_property("a%3Ab%2cc"), "a:b,c");
        assert_eq!(unescape_data("%3A"), "%3A");
    }
}
