//! regorus's errors, read back into file, position and message.
//!
//! regorus renders an error as a compiler would, with the source line and a caret:
//!
//! ```text
//!
//! --> policies/production.rego:8:12
//!   |
//! 8 |     y := 1 / input.zero
//!   |            ^
//! error: divide by zero
//! ```
//!
//! Decisions and test reports carry one line instead, `policies/production.rego:8:12: divide
//! by zero`, so that a deny message or a log line says where without the drawing.
//!
//! regorus counts a tab as four columns; editors, and [`Position`], count characters. Rego is
//! indented with tabs (`opa fmt` writes them), so columns are recounted from the source line.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::Position;

/// An error regorus located in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub file: String,
    pub at: Position,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.at.line, self.at.column, self.message)
    }
}

/// The located form of one of regorus's error messages, if it has a `--> file:line:col`.
pub(crate) fn locate(rendered: &str) -> Option<Located> {
    let arrow = rendered.find("--> ")?;
    let header_end = rendered[arrow..].find('\n').map_or(rendered.len(), |i| arrow + i);
    let header = &rendered[arrow + 4..header_end];
    // The file may itself hold colons: the position is the last two fields.
    let mut fields = header.rsplitn(3, ':');
    let column = fields.next()?.trim().parse().ok()?;
    let line = fields.next()?.trim().parse().ok()?;
    let file = fields.next()?.to_owned();
    // After the header: a gutter line, the source line, the caret line, then `kind: message`.
    let after = rendered.get(header_end + 1..).unwrap_or("");
    let message = after.splitn(4, '\n').nth(3).unwrap_or("").trim();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let prefix = rendered[..arrow].trim().trim_end_matches(':').trim();
    let message = match (prefix.is_empty(), message.is_empty()) {
        (true, false) => message.to_owned(),
        (false, false) => format!("{prefix}: {message}"),
        (true, true) => "error".to_owned(),
        (false, true) => prefix.to_owned(),
    };
    Some(Located { file, at: Position { line, column }, message })
}

/// The policy files' text by the name regorus knows them by, to recount columns.
pub(crate) type Sources = Arc<BTreeMap<String, String>>;

/// [`locate`], with the column counted in characters of the source line when the file is one
/// of `sources`.
pub(crate) fn locate_in(rendered: &str, sources: &BTreeMap<String, String>) -> Option<Located> {
    let mut located = locate(rendered)?;
    let line = sources.get(&located.file).and_then(|text| text.lines().nth(located.at.line.checked_sub(1)? as usize));
    if let Some(line) = line {
        located.at.column = char_column(line, located.at.column);
    }
    Some(located)
}

/// The 1-based character column of regorus's column `col` on `line`, where a tab is four.
fn char_column(line: &str, col: u32) -> u32 {
    let mut counted = 1u32;
    let mut chars = 0u32;
    for ch in line.chars() {
        if counted >= col {
            return chars + 1;
        }
        counted = counted.saturating_add(if ch == '\t' { 4 } else { 1 });
        chars += 1;
    }
    // Past the end of the line (an error at its end): keep the distance.
    chars + 1 + col.saturating_sub(counted)
}

/// One line for any of regorus's errors (anyhow's, printed with its chain): located when it
/// can be, else its message with the drawing's line breaks folded.
pub(crate) fn one_line(error: &impl fmt::Display, sources: &BTreeMap<String, String>) -> String {
    let rendered = format!("{error:#}");
    match locate_in(&rendered, sources) {
        Some(located) => located.to_string(),
        None => rendered.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rendered: &str, expected: Option<&str>) {
        assert_eq!(locate(rendered).map(|l| l.to_string()).as_deref(), expected, "{rendered:?}");
    }

    #[test]
    fn reads_regorus_renderings() {
        check(
            "\n--> p/a.rego:8:12\n  |\n8 |     y := 1 / input.zero\n  |            ^\nerror: divide by zero",
            Some("p/a.rego:8:12: divide by zero"),
        );
        check(
            "\n--> C:/odd:name.rego:12:21\n   |\n12 |     startswith(input.n, 3)\n   |                     ^\n\
             error: `startswith` expects string argument. Got `5` instead",
            Some("C:/odd:name.rego:12:21: `startswith` expects string argument. Got `5` instead"),
        );
        check(
            "while loading: \n--> x.rego:1:1\n  |\n1 | pkg\n  | ^\nerror: expecting package",
            Some("x.rego:1:1: while loading: expecting package"),
        );
        check("not a valid rule path", None);
        check("--> x.rego:one:1\n", None);
    }

    #[test]
    fn columns_are_characters_not_regorus_tab_stops() {
        assert_eq!(char_column("\tratio := a / b", 13), 10);
        assert_eq!(char_column("\t\tx", 9), 3);
        assert_eq!(char_column("    y := 1 / z", 12), 12);
        assert_eq!(char_column("é := 1 / 0", 8), 8);
        assert_eq!(char_column("\tx", 7), 4);
        let sources = BTreeMap::from([("p.rego".to_owned(), "package p\n\n\tx := 1 / 0\n".to_owned())]);
        let rendered = "\n--> p.rego:3:10\n  |\n3 | \tx := 1 / 0\n  |         ^\nerror: divide by zero";
        assert_eq!(locate_in(rendered, &sources).unwrap().to_string(), "p.rego:3:7: divide by zero");
        assert_eq!(one_line(&rendered, &BTreeMap::new()), "p.rego:3:10: divide by zero");
    }
}
