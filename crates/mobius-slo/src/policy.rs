//! The error-budget policy: what an exhausted budget means for a deploy.
//!
//! Per service, one of three modes. Under `freeze` (the default, the workbook's "feature
//! freeze"), a deploy or rollout promotion to production is refused while the budget is
//! exhausted, unless it is a hotfix or a security fix, which goes through as a recorded
//! exception. Under `warn` it goes through with a warning; `off` ignores the budget. Only
//! production is gated: other environments are where the fix gets tested.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::budget::Budget;

/// What an exhausted error budget does to deploys to production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse them, except hotfixes and security fixes.
    #[default]
    Freeze,
    /// Allow them with a warning.
    Warn,
    /// Ignore the budget.
    Off,
}

/// Why a deploy may go through a freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Hotfix,
    Security,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Freeze => "freeze",
            Mode::Warn => "warn",
            Mode::Off => "off",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Hotfix => "hotfix",
            Reason::Security => "security",
        })
    }
}

/// A `--reason` that is neither `hotfix` nor `security`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown reason {0:?}: expected `hotfix` or `security`")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Reason, UnknownReason> {
        match s {
            "hotfix" => Ok(Reason::Hotfix),
            "security" => Ok(Reason::Security),
            other => Err(UnknownReason(other.to_owned())),
        }
    }
}

/// The policy's answer for one deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Goes through; show the message.
    AllowWithWarning(String),
    /// Goes through a freeze; the caller records a policy exception event.
    AllowAsException {
        reason: Reason,
        message: String,
    },
    /// Refused; the message says why and how to override.
    Refuse(String),
}

impl Decision {
    /// Whether the deploy goes ahead.
    pub fn allowed(&self) -> bool {
        !matches!(self, Decision::Refuse(_))
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Decision::Allow => None,
            Decision::AllowWithWarning(m) | Decision::AllowAsException { message: m, .. } | Decision::Refuse(m) => {
                Some(m)
            }
        }
    }
}

/// Applies the policy. `recovers_at` is when the budget stops being exhausted if no new
/// errors arrive (see [`crate::budget::recovers_at`]), if known.
pub fn decide(
    mode: Mode,
    budget: &Budget,
    environment_is_production: bool,
    reason: Option<Reason>,
    recovers_at: Option<Timestamp>,
) -> Decision {
    if mode == Mode::Off || !environment_is_production || !budget.exhausted() {
        return Decision::Allow;
    }
    let state = format!("error budget exhausted: {}", describe(budget));
    let until = match recovers_at {
        Some(at) => format!("until about {}", format_time(at)),
        None => "until the budget recovers".to_owned(),
    };
    match (mode, reason) {
        (Mode::Warn, _) => Decision::AllowWithWarning(format!(
            "{state}; the policy only warns, so this deploy to production goes ahead \
             (the budget recovers {until})",
            until = until.trim_start_matches("until ")
        )),
        (_, Some(reason)) => Decision::AllowAsException {
            reason,
            message: format!(
                "{state}; deploys to production are frozen {until} — this one goes ahead \
                 as a {reason} exception, recorded against the policy"
            ),
        },
        (_, None) => Decision::Refuse(format!(
            "{state}; deploys to production are frozen {until} — deploy with --reason hotfix \
             or --reason security to override"
        )),
    }
}

/// The budget in a phrase: `−12% left (99.9% over 30d, 58 of 41,203 requests failed)`.
pub fn describe(budget: &Budget) -> String {
    format!(
        "{} left ({}% over {}, {} of {} requests failed)",
        format_percent(budget.remaining * 100.0),
        budget.objective,
        format_window(budget.window_s),
        group_thousands(budget.bad),
        group_thousands(budget.total),
    )
}

/// Whole percents from 10 up, one decimal below; a real minus sign; never "−0".
fn format_percent(p: f64) -> String {
    let text = if p.abs() >= 9.95 { format!("{p:.0}") } else { format!("{p:.1}") };
    let text = match text.strip_prefix('-') {
        Some(digits) if digits.chars().all(|c| c == '0' || c == '.') => digits.to_owned(),
        Some(digits) => format!("\u{2212}{digits}"),
        None => text,
    };
    format!("{text}%")
}

/// `30d`, `12h`, `90m`, `45s`: the largest unit that divides the window.
pub fn format_window(window_s: i64) -> String {
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if window_s != 0 && window_s % len == 0 {
            return format!("{}{unit}", window_s / len);
        }
    }
    format!("{window_s}s")
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2026-11-28 14:05 UTC`, rounded up to the minute (a recovery "about" then is not early).
fn format_time(at: Timestamp) -> String {
    let s = at.as_second() + i64::from(at.subsec_nanosecond() > 0);
    let up = Timestamp::from_second(s + (60 - s.rem_euclid(60)) % 60).unwrap_or(at);
    up.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Objective;
    use crate::series::Counts;

    const DAY_S: i64 = 86_400;

    fn budget(percent: f64, window_s: i64, total: u64, bad: u64) -> Budget {
        Budget::from_counts(Objective::new(percent, window_s), Counts::new(total, bad))
    }

    fn exhausted() -> Budget {
        // 58 of 41,203 failed against 99.9%: 0.1408% of 0.1% — 41% overspent.
        budget(99.9, 30 * DAY_S, 41_203, 58)
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn refusal_shows_the_budget_and_when_it_recovers() {
        let d = decide(Mode::Freeze, &exhausted(), true, None, Some(at("2026-11-28T14:04:10Z")));
        assert_eq!(
            d,
            Decision::Refuse(
                "error budget exhausted: \u{2212}41% left (99.9% over 30d, 58 of 41,203 \
                 requests failed); deploys to production are frozen until about \
                 2026-11-28 14:05 UTC — deploy with --reason hotfix or --reason security to \
                 override"
                    .into()
            )
        );
        assert!(!d.allowed());
        let d = decide(Mode::Freeze, &exhausted(), true, None, None);
        assert!(d.message().unwrap().contains("frozen until the budget recovers — deploy"));
    }

    #[test]
    fn hotfix_and_security_go_through_as_exceptions() {
        for reason in [Reason::Hotfix, Reason::Security] {
            let d = decide(Mode::Freeze, &exhausted(), true, Some(reason), None);
            let Decision::AllowAsException { reason: r, message } = &d else {
                panic!("{d:?}");
            };
            assert_eq!(*r, reason);
            assert!(message.contains(&format!("as a {reason} exception")), "{message}");
            assert!(d.allowed());
        }
    }

    #[test]
    fn decisions_by_mode_environment_and_budget() {
        // (mode, production, exhausted, reason, expected kind)
        fn check(mode: Mode, production: bool, is_exhausted: bool, reason: Option<Reason>, kind: &str) {
            let b = if is_exhausted { exhausted() } else { budget(99.9, 30 * DAY_S, 41_203, 20) };
            let d = decide(mode, &b, production, reason, None);
            let actual = match d {
                Decision::Allow => "allow",
                Decision::AllowWithWarning(_) => "warn",
                Decision::AllowAsException { .. } => "exception",
                Decision::Refuse(_) => "refuse",
            };
            assert_eq!(actual, kind, "{mode:?} production={production} exhausted={is_exhausted} {reason:?}");
        }
        let hotfix = Some(Reason::Hotfix);
        check(Mode::Freeze, true, true, None, "refuse");
        check(Mode::Freeze, true, true, hotfix, "exception");
        check(Mode::Freeze, true, false, None, "allow");
        check(Mode::Freeze, true, false, hotfix, "allow");
        check(Mode::Freeze, false, true, None, "allow");
        check(Mode::Warn, true, true, None, "warn");
        check(Mode::Warn, true, true, hotfix, "warn");
        check(Mode::Warn, false, true, None, "allow");
        check(Mode::Off, true, true, None, "allow");
        // Exactly spent counts as exhausted.
        let spent = budget(99.0, 30 * DAY_S, 1000, 10);
        assert!(spent.remaining.abs() < 1e-9);
        assert!(!decide(Mode::Freeze, &spent, true, None, None).allowed());
    }

    #[test]
    fn warning_message() {
        let d = decide(Mode::Warn, &exhausted(), true, None, Some(at("2026-11-28T14:05:00Z")));
        assert_eq!(
            d.message().unwrap(),
            "error budget exhausted: \u{2212}41% left (99.9% over 30d, 58 of 41,203 requests \
             failed); the policy only warns, so this deploy to production goes ahead (the \
             budget recovers about 2026-11-28 14:05 UTC)"
        );
    }

    #[test]
    fn phrases() {
        assert_eq!(
            describe(&budget(99.5, 28 * DAY_S, 1_234_567, 9_000)),
            "\u{2212}46% left (99.5% over 28d, 9,000 of 1,234,567 requests failed)"
        );
        assert_eq!(format_percent(-12.4), "\u{2212}12%");
        assert_eq!(format_percent(-0.04), "0.0%");
        assert_eq!(format_percent(3.25), "3.2%");
        assert_eq!(format_percent(100.0), "100%");
        assert_eq!(format_window(30 * DAY_S), "30d");
        assert_eq!(format_window(36 * 3600), "36h");
        assert_eq!(format_window(90 * 60), "90m");
        assert_eq!(format_window(45), "45s");
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(41_203), "41,203");
        assert_eq!("security".parse::<Reason>(), Ok(Reason::Security));
        assert!("urgent".parse::<Reason>().is_err());
        assert_eq!(format_time(at("2026-11-28T14:05:00Z")), "2026-11-28 14:05 UTC");
        assert_eq!(format_time(at("2026-11-28T14:05:00.5Z")), "2026-11-28 14:06 UTC");
    }
}
