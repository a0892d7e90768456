//! flagd's `sem_ver` operator: `[version, operator, version]`.
//!
//! flagd parses versions with Go's `golang.org/x/mod/semver` after prefixing a `v` when there
//! is none, so its rules are the ones here: `1`, `1.2` and `v1.2.3` are versions (the short
//! forms mean `.0`), numbers have no leading zeros, a pre-release sorts before its release,
//! build metadata is ignored, and a short form cannot carry a pre-release or build. `~` asks for
//! the same major and minor, `^` for the same major.

use std::cmp::Ordering;

/// A parsed version; fields borrow the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'s> {
    major: &'s str,
    minor: &'s str,
    patch: &'s str,
    prerelease: &'s str,
}

/// The comparison a `sem_ver` rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `~`: same major and minor.
    SameMinor,
    /// `^`: same major.
    SameMajor,
}

impl Operator {
    /// One of the eight operators flagd's schema lists.
    pub fn parse(s: &str) -> Option<Operator> {
        Some(match s {
            "=" => Operator::Equal,
            "!=" => Operator::NotEqual,
            "<" => Operator::Less,
            "<=" => Operator::LessOrEqual,
            ">" => Operator::Greater,
            ">=" => Operator::GreaterOrEqual,
            "~" => Operator::SameMinor,
            "^" => Operator::SameMajor,
            _ => return None,
        })
    }

    /// Whether `left <op> right`.
    pub fn holds(self, left: &Version<'_>, right: &Version<'_>) -> bool {
        let order = left.cmp(right);
        match self {
            Operator::Equal => order == Ordering::Equal,
            Operator::NotEqual => order != Ordering::Equal,
            Operator::Less => order == Ordering::Less,
            Operator::LessOrEqual => order != Ordering::Greater,
            Operator::Greater => order == Ordering::Greater,
            Operator::GreaterOrEqual => order != Ordering::Less,
            Operator::SameMinor => {
                numeric_cmp(left.major, right.major).is_eq() && numeric_cmp(left.minor, right.minor).is_eq()
            }
            Operator::SameMajor => numeric_cmp(left.major, right.major).is_eq(),
        }
    }
}

/// Parses a version the way flagd does (`v` optional); `None` if it is not one.
pub fn parse(input: &str) -> Option<Version<'_>> {
    let rest = input.strip_prefix('v').unwrap_or(input);
    let (major, rest) = number(rest)?;
    if rest.is_empty() {
        return Some(Version { major, minor: "0", patch: "0", prerelease: "" });
    }
    let (minor, rest) = number(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some(Version { major, minor, patch: "0", prerelease: "" });
    }
    let (patch, mut rest) = number(rest.strip_prefix('.')?)?;
    let mut prerelease = "";
    if let Some(after) = rest.strip_prefix('-') {
        let end = after.find('+').unwrap_or(after.len());
        prerelease = &after[..end];
        if !identifiers(prerelease, true) {
            return None;
        }
        rest = &after[end..];
    }
    if let Some(build) = rest.strip_prefix('+') {
        if !identifiers(build, false) {
            return None;
        }
        rest = "";
    }
    rest.is_empty().then_some(Version { major, minor, patch, prerelease })
}

/// A decimal number without leading zeros, and what follows it.
fn number(s: &str) -> Option<(&str, &str)> {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let digits = &s[..end];
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits, &s[end..]))
}

/// Dot-separated non-empty `[0-9A-Za-z-]` identifiers; pre-release numbers have no leading zero.
fn identifiers(s: &str, prerelease: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease && id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Compares decimal strings of any length without parsing them.
fn numeric_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        numeric_cmp(self.major, other.major)
            .then_with(|| numeric_cmp(self.minor, other.minor))
            .then_with(|| numeric_cmp(self.patch, other.patch))
            .then_with(|| compare_prerelease(self.prerelease, other.prerelease))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// semver §11: no pre-release beats any; identifiers compare numerically when both are
/// numbers, numbers sort before words, and a longer list wins a tie.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let x_num = x.bytes().all(|c| c.is_ascii_digit());
                let y_num = y.bytes().all(|c| c.is_ascii_digit());
                let order = match (x_num, y_num) {
                    (true, true) => numeric_cmp(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(left: &str, op: &str, right: &str, expected: bool) {
        let (l, r) = (parse(left).unwrap(), parse(right).unwrap());
        assert_eq!(Operator::parse(op).unwrap().holds(&l, &r), expected, "{left} {op} {right}");
    }

    #[test]
    fn versions_parse_as_go_semver_with_an_optional_v() {
        for ok in [
            "1.0.0",
            "v1.0.0",
            "1",
            "v1.2",
            "0.0.0",
            "1.2.3-alpha.1",
            "1.2.3-0.a-b",
            "1.2.3+build.01",
            "1.2.3-rc.1+b",
            "99999999999999999999.0.0",
        ] {
            assert!(parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "v",
            "vv1.0.0",
            "V1.0.0",
            "1.0.0.0",
            "01.0.0",
            "1.02.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0-a..b",
            "1-alpha",
            "1.2+build",
            "1.0.0+",
            "1.0.0_x",
            " 1.0.0",
            "a.b.c",
            "1.0.0-é",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_operators_compare_as_flagd_does() {
        for (left, op, right, expected) in [
            ("2.0.0", "=", "2.0.0", true),
            ("v2.0.0", "=", "2.0.0", true),
            ("2", "=", "2.0.0", true),
            ("1.0.0+other", "=", "1.0.0+build", true),
            ("2.0.0", "!=", "2.0.1", true),
            ("2.0.0", "!=", "2.0.0", false),
            ("2.0.0-alpha", "<", "2.0.0", true),
            ("1.9.0", "<", "2.0.0", true),
            ("1.10.0", ">", "1.9.0", true),
            ("2.1.0", ">", "2.0.0", true),
            ("2.0.0", ">=", "2.0.0", true),
            ("2.0.0", "<=", "2.0.0", true),
            ("2.0.1", "<=", "2.0.0", false),
            ("1.0.0-alpha", "<", "1.0.0-alpha.1", true),
            ("1.0.0-alpha.1", "<", "1.0.0-alpha.beta", true),
            ("1.0.0-alpha.beta", "<", "1.0.0-beta", true),
            ("1.0.0-beta.2", "<", "1.0.0-beta.11", true),
            ("1.0.0-beta.11", "<", "1.0.0-rc.1", true),
            ("3.0.1", "~", "3.0.0", true),
            ("3.0.1-rc.1", "~", "3.0.0", true),
            ("3.1.0", "~", "3.0.0", false),
            ("3.1.0", "^", "3.0.0", true),
            ("4.0.0", "^", "3.0.0", false),
            ("1.5.0", "^", "1", true),
            ("2.0.0", "^", "1", false),
        ] {
            check(left, op, right, expected);
        }
    }

    #[test]
    fn only_the_eight_operators_exist() {
        for bad in ["==", "===", "", "<>", "~>", "=>"] {
            assert_eq!(Operator::parse(bad), None, "{bad}");
        }
    }
}
