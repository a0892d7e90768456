//! The files a step writes to talk back to the runner: `GITHUB_ENV`, `GITHUB_OUTPUT` and
//! `GITHUB_PATH`, in the format GitHub's runner reads (`SetEnvFileCommand`,
//! `SetOutputFileCommand`, `AddPathFileCommand` in `actions/runner`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why an environment file written by a step cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// A line has neither `NAME=value` nor `NAME<<DELIMITER`.
    #[error("line {line}: expected `NAME=value` or `NAME<<DELIMITER`")]
    Malformed {
        /// 1-based line number in the file.
        line: usize,
    },
    /// The name before `=` or `<<` is empty.
    #[error("line {line}: empty name")]
    EmptyName {
        /// 1-based line number in the file.
        line: usize,
    },
    /// A heredoc value never reached its closing delimiter.
    #[error("line {line}: no closing delimiter `{delimiter}` for `{name}`")]
    Unterminated {
        /// 1-based line number of the `NAME<<DELIMITER` line.
        line: usize,
        /// The variable being assigned.
        name: String,
        /// The delimiter that was expected on a line of its own.
        delimiter: String,
    },
}

/// Parses the `GITHUB_ENV` / `GITHUB_OUTPUT` format: `NAME=value` lines and the heredoc form
/// `NAME<<DELIMITER`, value lines, `DELIMITER`. Later assignments of a name win.
///
/// As on GitHub, a line with both `=` and `<<` is an assignment when `=` comes first, so
/// `A=x<<y` sets `A` to `x<<y`; blank lines between entries are skipped.
pub fn parse_assignments(text: &str) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut values = BTreeMap::new();
    // Steps on Windows-minded tools may write CRLF; the runner accepts both.
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        if line.is_empty() {
            continue;
        }
        let eq = line.find('=');
        let heredoc = line.find("<<");
        match (eq, heredoc) {
            (Some(eq), h) if h.is_none_or(|h| eq < h) => {
                let name = &line[..eq];
                if name.is_empty() {
                    return Err(EnvFileError::EmptyName { line: number });
                }
                values.insert(name.to_owned(), line[eq + 1..].to_owned());
            }
            (_, Some(h)) => {
                let name = &line[..h];
                let delimiter = &line[h + 2..];
                if name.is_empty() {
                    return Err(EnvFileError::EmptyName { line: number });
                }
                if delimiter.is_empty() {
                    return Err(EnvFileError::Malformed { line: number });
                }
                let mut body: Vec<&str> = Vec::new();
                let mut closed = false;
                for (_, next) in lines.by_ref() {
                    if next == delimiter {
                        closed = true;
                        break;
                    }
                    body.push(next);
                }
                if !closed {
                    return Err(EnvFileError::Unterminated {
                        line: number,
                        name: name.to_owned(),
                        delimiter: delimiter.to_owned(),
                    });
                }
                values.insert(name.to_owned(), body.join("\n"));
            }
            _ => return Err(EnvFileError::Malformed { line: number }),
        }
    }
    Ok(values)
}

/// Parses `GITHUB_PATH`: one directory per non-blank line, in the order written. Each is
/// prepended in turn, so the caller puts the last one first.
pub fn parse_path(text: &str) -> Vec<PathBuf> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(PathBuf::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[(&str, &str)]) {
        let parsed = parse_assignments(input).expect("parses");
        let expected: BTreeMap<String, String> =
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(parsed, expected, "input: {input:?}");
    }

    #[test]
    fn assignments() {
        check("", &[]);
        check("A=1\n", &[("A", "1")]);
        check("A=1\r\nB=\n", &[("A", "1"), ("B", "")]);
        check("A=x=y\n\nA=2\n", &[("A", "2")]);
        check("A=x<<y\n", &[("A", "x<<y")]);
        check("A<<EOF\nline 1\nline=2\nEOF\n", &[("A", "line 1\nline=2")]);
        check("A<<ghadelim_1\n\nghadelim_1\nB=c\n", &[("A", ""), ("B", "c")]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_assignments("=1"), Err(EnvFileError::EmptyName { line: 1 }));
        assert_eq!(parse_assignments("A=1\nnothing"), Err(EnvFileError::Malformed { line: 2 }));
        assert_eq!(
            parse_assignments("A<<EOF\nx\n"),
            Err(EnvFileError::Unterminated { line: 1, name: "A".into(), delimiter: "EOF".into() })
        );
    }

    #[test]
    fn path_lines() {
        assert_eq!(parse_path("/a\n\n /b \n"), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }
}
