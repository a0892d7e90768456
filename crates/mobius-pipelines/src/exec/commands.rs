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
//! - any other line, including commands not listed here (`::group::`…), is logged as it is.
//!
//! Lines arrive masked, so a command's data is what survives masking; what a command prints
//! is masked again after its `%`-escapes are decoded.

use crate::mask::{MIN_SECRET_CHARS, MaskError, Masker};

/// Command processing for one output stream of a step.
pub(crate) struct Commands {
    masker: Masker,
    /// Set by `::stop-commands::TOKEN`: commands are off until `::TOKEN::`.
    stopped_until: Option<String>,
}

impl Commands {
    pub(crate) fn new(masker: Masker) -> Commands {
        Commands { masker, stopped_until: None }
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
        check(
            &["plain", "::group::Build", "::::", ":: not", "::set-output name=a::b"],
            &["plain", "::group::Build", "::::", ":: not", "::set-output name=a::b"],
        );
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

    #[test]
    fn unescapes_in_one_pass() {
        assert_eq!(unescape_data("%250A%0a%"), "%0A\n%");
        assert_eq!(unescape_property("a%3Ab%2cc"), "a:b,c");
        assert_eq!(unescape_data("%3A"), "%3A");
    }
}
