//! A PEP 440 subset: enough to order PyPI versions as OSV's `ECOSYSTEM` ranges need.
//!
//! Read: an epoch (`1!`), release segments of any length, a pre-release (`a`, `b`, `rc` and
//! the spellings `alpha`, `beta`, `c`, `pre`, `preview`), a post-release (`.post`, `rev`, `r`,
//! or the implicit `-N`), a dev release (`.dev`), and a local label (`+ubuntu.1`), with PEP
//! 440's normalisation: case, a leading `v`, optional separators (`.`, `-`, `_`) and omitted
//! numbers (`1.0rc` is `1.0rc0`).
//!
//! Ordered as PEP 440 says: epoch, release (trailing zeros ignored, `1.0 == 1.0.0`), then
//! dev-only releases before pre-releases before the final release before post-releases, a
//! dev release before its non-dev form, and a local label after the same public version.
//!
//! Not implemented: the legacy (pre-PEP 440) versions that `packaging` once accepted, and
//! version *specifiers* (`~=`, `===` matching, wildcards), which OSV ranges do not use.

use std::cmp::Ordering;

/// A parsed PEP 440 version.
#[derive(Debug, Clone)]
pub struct Pep440Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(PreKind, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalSegment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    Candidate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalSegment {
    Number(u64),
    Text(String),
}

impl Ord for LocalSegment {
    fn cmp(&self, other: &Self) -> Ordering {
        // PEP 440: numeric segments sort after alphanumeric ones.
        match (self, other) {
            (LocalSegment::Number(a), LocalSegment::Number(b)) => a.cmp(b),
            (LocalSegment::Text(a), LocalSegment::Text(b)) => a.cmp(b),
            (LocalSegment::Number(_), LocalSegment::Text(_)) => Ordering::Greater,
            (LocalSegment::Text(_), LocalSegment::Number(_)) => Ordering::Less,
        }
    }
}

impl PartialOrd for LocalSegment {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A bound that sorts below or above every number, for the parts PEP 440 orders by absence.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound<T> {
    Below,
    At(T),
    Above,
}

/// What PEP 440 orders by, in its order of precedence (fields compare top to bottom).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SortKey<'a> {
    epoch: u64,
    release: &'a [u64],
    pre: Bound<(PreKind, u64)>,
    post: Bound<u64>,
    dev: Bound<u64>,
    local: &'a [LocalSegment],
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.at += prefix.len();
            true
        } else {
            false
        }
    }

    fn eat_separator(&mut self) -> bool {
        self.eat(".") || self.eat("-") || self.eat("_")
    }

    fn number(&mut self) -> Result<Option<u64>, String> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Ok(None);
        }
        let text = &self.rest()[..digits];
        let value = text.parse().map_err(|_| format!("number {text} is too large"))?;
        self.at += digits;
        Ok(Some(value))
    }

    /// One of `words` (longest listed first), if the text continues with it.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let index = words.iter().position(|w| self.rest().starts_with(w))?;
        self.at += words[index].len();
        Some(index)
    }
}

impl Pep440Version {
    /// Parses and normalises `text`; the error says what could not be read, and where.
    pub fn parse(text: &str) -> Result<Pep440Version, String> {
        let lowered = text.trim().to_ascii_lowercase();
        let mut cursor = Cursor { text: &lowered, at: 0 };
        cursor.eat("v");

        let mut release = Vec::new();
        let first = cursor.number()?.ok_or("it does not start with a release number")?;
        let mut epoch = 0;
        if cursor.eat("!") {
            epoch = first;
            release.push(cursor.number()?.ok_or("no release number after the epoch's `!`")?);
        } else {
            release.push(first);
        }
        loop {
            let save = cursor.at;
            if cursor.eat(".")
                && let Some(n) = cursor.number()?
            {
                release.push(n);
                continue;
            }
            cursor.at = save;
            break;
        }

        let pre = parse_pre(&mut cursor)?;
        let post = parse_post(&mut cursor)?;
        let dev = parse_dev(&mut cursor)?;

        let mut local = Vec::new();
        if cursor.eat("+") {
            let label = cursor.rest().to_owned();
            for segment in label.split(['.', '-', '_']) {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("local label {label:?} has an empty or non-alphanumeric segment"));
                }
                local.push(match segment.parse() {
                    Ok(n) => LocalSegment::Number(n),
                    Err(_) => LocalSegment::Text(segment.to_owned()),
                });
            }
            cursor.at = lowered.len();
        }
        if !cursor.rest().is_empty() {
            return Err(format!("unexpected {:?} at byte {}", cursor.rest(), cursor.at));
        }
        Ok(Pep440Version { epoch, release, pre, post, dev, local })
    }

    fn key(&self) -> SortKey<'_> {
        let trimmed = match self.release.iter().rposition(|&n| n != 0) {
            Some(last) => &self.release[..=last],
            None => &[],
        };
        let pre = match (self.pre, self.post, self.dev) {
            (Some(pre), _, _) => Bound::At(pre),
            // `1.0.dev1` comes before `1.0a1`.
            (None, None, Some(_)) => Bound::Below,
            (None, _, _) => Bound::Above,
        };
        let post = self.post.map_or(Bound::Below, Bound::At);
        let dev = self.dev.map_or(Bound::Above, Bound::At);
        SortKey { epoch: self.epoch, release: trimmed, pre, post, dev, local: &self.local }
    }
}

fn parse_pre(cursor: &mut Cursor<'_>) -> Result<Option<(PreKind, u64)>, String> {
    let save = cursor.at;
    cursor.eat_separator();
    let words = ["preview", "alpha", "beta", "pre", "rc", "a", "b", "c"];
    let Some(index) = cursor.word(&words) else {
        cursor.at = save;
        return Ok(None);
    };
    let kind = match words[index] {
        "alpha" | "a" => PreKind::Alpha,
        "beta" | "b" => PreKind::Beta,
        _ => PreKind::Candidate,
    };
    Ok(Some((kind, separated_number(cursor)?)))
}

fn parse_post(cursor: &mut Cursor<'_>) -> Result<Option<u64>, String> {
    let save = cursor.at;
    // The implicit form: `1.0-1` is `1.0.post1`.
    if cursor.eat("-")
        && let Some(n) = cursor.number()?
    {
        return Ok(Some(n));
    }
    cursor.at = save;
    cursor.eat_separator();
    if cursor.word(&["post", "rev", "r"]).is_none() {
        cursor.at = save;
        return Ok(None);
    }
    Ok(Some(separated_number(cursor)?))
}

fn parse_dev(cursor: &mut Cursor<'_>) -> Result<Option<u64>, String> {
    let save = cursor.at;
    cursor.eat_separator();
    if !cursor.eat("dev") {
        cursor.at = save;
        return Ok(None);
    }
    Ok(Some(separated_number(cursor)?))
}

/// The number after a pre, post or dev marker: an optional separator, and 0 when omitted.
fn separated_number(cursor: &mut Cursor<'_>) -> Result<u64, String> {
    let save = cursor.at;
    cursor.eat_separator();
    match cursor.number()? {
        Some(n) => Ok(n),
        None => {
            cursor.at = save;
            Ok(0)
        }
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Pep440Version {
        Pep440Version::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn orders_as_pep_440_lists() {
        // Each strictly below the next.
        let ascending = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
            "2!0.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn normalises_spellings() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1.0RC1", "1.0rc1"),
            ("1.0c1", "1.0rc1"),
            ("1.0-preview_2", "1.0rc2"),
            ("1.0alpha", "1.0a0"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev2", "1.0.post2"),
            ("1.0-dev", "1.0.dev0"),
            ("v2.1", "2.1"),
            ("0!1.2", "1.2"),
        ] {
            assert_eq!(v(a), v(b), "{a} == {b}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for text in ["", "abc", "1.0foo", "1.0+", "1.0+a..b", "1!"] {
            assert!(Pep440Version::parse(text).is_err(), "{text:?} should be rejected");
        }
    }
}
