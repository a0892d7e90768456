//! Multi-window, multi-burn-rate alerts (the SRE Workbook's approach 6, as Sloth generates it)
//! and the state machine that turns their evaluations into notifications.
//!
//! Four rules, each a long window ANDed with a short one (1/12 of it, the "still burning"
//! test, which makes an alert reset minutes after the errors stop):
//!
//! | severity | long | short | budget spent in the long window | burn, 30-day window |
//! |---|---|---|---|---|
//! | page   | 1 h | 5 m  | 2%  | 14.4 |
//! | page   | 6 h | 30 m | 5%  | 6    |
//! | ticket | 1 d | 2 h  | 10% | 3    |
//! | ticket | 3 d | 6 h  | 10% | 1    |
//!
//! For other SLO windows the windows stay and the burn factors scale as Sloth scales them,
//! keeping the budget fractions: `fraction × W / long` (28 days: 13.44, 5.6, 2.8, 0.933).
//! A rule fires when the burn over both windows is strictly above the factor (PromQL's `>`)
//! and the short window holds at least a minimum number of requests, so a single failure on
//! a service with a handful of requests an hour does not page anyone (the workbook's
//! low-traffic problem: at 10 requests an hour one failure is a 1,000× burn).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::budget::Objective;
use crate::series::{Counts, HOUR_S, MINUTE_S, Series};

/// How urgent an alert is: a page wakes someone, a ticket waits for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Page,
    Ticket,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        })
    }
}

/// The default minimum of requests in a rule's short window before it may fire.
pub const DEFAULT_MIN_REQUESTS: u64 = 10;

/// One multi-window burn-rate rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub severity: Severity,
    pub long_window_s: i64,
    pub short_window_s: i64,
    /// Fraction of the whole budget that burning at `burn_factor` spends in the long window.
    pub budget_fraction: f64,
    /// The burn-rate threshold: `budget_fraction × W / long_window`.
    pub burn_factor: f64,
}

/// The workbook's tiers: (severity, budget fraction, long window, short window).
pub const TIERS: [(Severity, f64, i64, i64); 4] = [
    (Severity::Page, 0.02, HOUR_S, 5 * MINUTE_S),
    (Severity::Page, 0.05, 6 * HOUR_S, 30 * MINUTE_S),
    (Severity::Ticket, 0.10, 24 * HOUR_S, 2 * HOUR_S),
    (Severity::Ticket, 0.10, 72 * HOUR_S, 6 * HOUR_S),
];

/// The four rules for an SLO, with burn factors scaled to its window.
pub fn rules(objective: Objective) -> [Rule; 4] {
    TIERS.map(|(severity, fraction, long, short)| Rule {
        severity,
        long_window_s: long,
        short_window_s: short,
        budget_fraction: fraction,
        burn_factor: objective.burn_factor(fraction, long),
    })
}

/// A rule evaluated at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub severity: Severity,
    pub long_window_s: i64,
    pub short_window_s: i64,
    /// Requests over the long and short windows.
    pub long: Counts,
    pub short: Counts,
    /// Burn rate over the long and short windows.
    pub long_burn: f64,
    pub short_burn: f64,
    /// The burn factor both must exceed.
    pub threshold: f64,
    /// Both burns above the threshold, but too few requests in the short window.
    pub held_by_min_requests: bool,
    /// Both burns above the threshold, with enough requests.
    pub firing: bool,
}

/// Evaluates the four rules at `now_s` with [`DEFAULT_MIN_REQUESTS`].
pub fn evaluate(series: &Series, objective: Objective, now_s: i64) -> Vec<RuleState> {
    evaluate_with(series, objective, now_s, DEFAULT_MIN_REQUESTS)
}

/// Evaluates the four rules at `now_s`; a rule fires only with at least `min_requests`
/// requests in its short window. Windows end at `now_s` (see [`Series::sum`] for the edges).
pub fn evaluate_with(series: &Series, objective: Objective, now_s: i64, min_requests: u64) -> Vec<RuleState> {
    evaluate_counts(objective, min_requests, |len| series.sum(now_s - len, now_s))
}

/// Evaluates the four rules from the counts of each window ending now, as `window(length_s)`
/// gives them (from a [`Series`], or from an external source such as Prometheus); a rule fires
/// only with at least `min_requests` requests in its short window. Each length is asked once.
pub fn evaluate_counts(
    objective: Objective,
    min_requests: u64,
    mut counts: impl FnMut(i64) -> Counts,
) -> Vec<RuleState> {
    // The 6-hour window is both a long and a short window: sum each length once.
    let mut sums: [(i64, Counts); 8] = [(0, Counts::ZERO); 8];
    let mut summed = 0;
    let mut window = |len: i64| -> Counts {
        if let Some((_, c)) = sums[..summed].iter().find(|(l, _)| *l == len) {
            return *c;
        }
        let c = counts(len);
        sums[summed] = (len, c);
        summed += 1;
        c
    };
    rules(objective)
        .iter()
        .map(|rule| {
            let long = window(rule.long_window_s);
            let short = window(rule.short_window_s);
            let long_burn = objective.burn_rate(long.error_ratio());
            let short_burn = objective.burn_rate(short.error_ratio());
            let burning = long_burn > rule.burn_factor && short_burn > rule.burn_factor;
            let enough = short.total >= min_requests;
            RuleState {
                severity: rule.severity,
                long_window_s: rule.long_window_s,
                short_window_s: rule.short_window_s,
                long,
                short,
                long_burn,
                short_burn,
                threshold: rule.burn_factor,
                held_by_min_requests: burning && !enough,
                firing: burning && enough,
            }
        })
        .collect()
}

/// Whether any rule of `severity` fires.
pub fn firing(states: &[RuleState], severity: Severity) -> bool {
    states.iter().any(|s| s.severity == severity && s.firing)
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Never fired (or a pending spell ended before its `for`).
    Inactive,
    /// Rules fire, waiting out the alert's `for`.
    Pending,
    Firing,
    /// Fired, then stopped firing; stays here until it fires again.
    Resolved,
}

/// A change of an [`Alert`]'s state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub severity: Severity,
    pub from: State,
    pub to: State,
    pub at_s: i64,
}

impl Transition {
    /// Whether someone is told: on firing and on resolving, not on pending or its cancelling.
    pub fn notifies(&self) -> bool {
        self.to == State::Firing || (self.from == State::Firing && self.to == State::Resolved)
    }
}

/// One alert (one SLO, one severity) over time.
///
/// `pending_for_s` is Prometheus's `for`: how long the rules must keep firing before the
/// alert does. It defaults to 0, as Sloth generates its page alert: the short window already
/// is the "still burning" check, and a `for` only delays detection (the workbook advises
/// against durations). With 0 the alert goes straight from inactive to firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub severity: Severity,
    pub state: State,
    /// When the alert entered its current state (unix seconds); 0 while never active.
    pub since_s: i64,
    pub pending_for_s: i64,
}

impl Alert {
    pub fn new(severity: Severity) -> Alert {
        Alert::with_pending_for(severity, 0)
    }

    pub fn with_pending_for(severity: Severity, pending_for_s: i64) -> Alert {
        Alert { severity, state: State::Inactive, since_s: 0, pending_for_s }
    }

    /// Advances the alert given whether its rules fire at `now_s`; returns the transition,
    /// if the state changed. Call it at every evaluation, with a non-decreasing `now_s`.
    pub fn step(&mut self, firing_now: bool, now_s: i64) -> Option<Transition> {
        let to = match (self.state, firing_now) {
            (State::Inactive | State::Resolved, true) if self.pending_for_s <= 0 => State::Firing,
            (State::Inactive | State::Resolved, true) => State::Pending,
            (State::Pending, true) if now_s - self.since_s >= self.pending_for_s => State::Firing,
            (State::Pending, false) => State::Inactive,
            (State::Firing, false) => State::Resolved,
            _ => return None,
        };
        let transition = Transition { severity: self.severity, from: self.state, to, at_s: now_s };
        self.state = to;
        self.since_s = now_s;
        Some(transition)
    }
}

/// A notification to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub severity: Severity,
    /// `true`: the alert fires; `false`: it resolved.
    pub firing: bool,
    pub at_s: i64,
}

/// The page and ticket alerts of one SLO, deduplicated: one notification per transition, and
/// a firing page suppresses ticket notifications (the workbook's "needs alert suppression":
/// a fast burn also satisfies the slower rules). A ticket that starts firing while the page
/// fires is announced when the page resolves, if it still fires then; a ticket never
/// announced is never announced as resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SloAlerts {
    pub page: Alert,
    pub ticket: Alert,
    /// Whether the ticket's current firing was announced.
    pub ticket_announced: bool,
}

impl Default for SloAlerts {
    fn default() -> SloAlerts {
        SloAlerts::new()
    }
}

impl SloAlerts {
    /// Both alerts with a `for` of 0.
    pub fn new() -> SloAlerts {
        SloAlerts::with_pending_for(0, 0)
    }

    pub fn with_pending_for(page_for_s: i64, ticket_for_s: i64) -> SloAlerts {
        SloAlerts {
            page: Alert::with_pending_for(Severity::Page, page_for_s),
            ticket: Alert::with_pending_for(Severity::Ticket, ticket_for_s),
            ticket_announced: false,
        }
    }

    /// Advances both alerts from one evaluation; returns what to notify.
    pub fn step(&mut self, states: &[RuleState], now_s: i64) -> Vec<Notification> {
        let mut out = Vec::new();
        if let Some(t) = self.page.step(firing(states, Severity::Page), now_s).filter(Transition::notifies) {
            out.push(Notification { severity: Severity::Page, firing: t.to == State::Firing, at_s: now_s });
        }
        self.ticket.step(firing(states, Severity::Ticket), now_s);
        let ticket_firing = self.ticket.state == State::Firing;
        let page_firing = self.page.state == State::Firing;
        if ticket_firing && !self.ticket_announced && !page_firing {
            self.ticket_announced = true;
            out.push(Notification { severity: Severity::Ticket, firing: true, at_s: now_s });
        } else if !ticket_firing && self.ticket_announced {
            self.ticket_announced = false;
            out.push(Notification { severity: Severity::Ticket, firing: false, at_s: now_s });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_S: i64 = 24 * HOUR_S;
    const T0: i64 = 1_795_651_200;

    fn slo() -> Objective {
        Objective::new(99.9, 30 * DAY_S)
    }

    /// A service on an injected clock: one `Series`, fed one minute of counts at a time and
    /// evaluated at the end of each minute, as a server's evaluation loop would.
    struct Scenario {
        series: Series,
        alerts: SloAlerts,
        /// Start of the next minute to feed.
        now: i64,
        notifications: Vec<Notification>,
    }

    impl Scenario {
        /// `history_days` of clean traffic at `per_minute` requests a minute (not evaluated).
        fn new(history_days: i64, per_minute: u64) -> Scenario {
            let mut series = Series::default();
            let start = T0 - history_days * DAY_S;
            for m in 0..history_days * 24 * 60 {
                series.add(start + m * MINUTE_S, Counts::new(per_minute, 0));
            }
            Scenario { series, alerts: SloAlerts::new(), now: T0, notifications: Vec::new() }
        }

        /// Feeds one minute and evaluates at its end; returns whether the page fires.
        fn minute(&mut self, total: u64, bad: u64) -> Vec<RuleState> {
            self.series.add(self.now, Counts::new(total, bad));
            self.now += MINUTE_S;
            let states = evaluate(&self.series, slo(), self.now);
            let notes = self.alerts.step(&states, self.now);
            self.notifications.extend(notes);
            states
        }

        /// Feeds `minutes` minutes; returns the minutes (1-based) after which the page fired.
        fn run(&mut self, minutes: i64, total: u64, bad: u64) -> Option<i64> {
            let mut first = None;
            for m in 1..=minutes {
                let states = self.minute(total, bad);
                if first.is_none() && firing(&states, Severity::Page) {
                    first = Some(m);
                }
            }
            first
        }

        fn paged(&self) -> bool {
            self.alerts.page.state == State::Firing
        }
    }

    #[test]
    fn rules_for_30_and_28_days() {
        let factors = |days: i64| rules(Objective::new(99.9, days * DAY_S)).map(|r| r.burn_factor);
        let thirty = factors(30);
        for (a, e) in thirty.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!((a - e).abs() < 1e-9, "{a} != {e}");
        }
        let twenty_eight = factors(28);
        for (a, e) in twenty_eight.iter().zip([13.44, 5.6, 2.8, 0.9333]) {
            assert!((a - e).abs() < 1e-4, "{a} != {e}");
        }
        // The short window is 1/12 of the long one.
        for rule in rules(slo()) {
            assert_eq!(rule.long_window_s, 12 * rule.short_window_s);
        }
        // Error-ratio thresholds for 99.9%: 1.44%, 0.6%, 0.3%, 0.1%.
        let ratios = rules(slo()).map(|r| r.burn_factor * slo().budget_ratio());
        for (a, e) in ratios.iter().zip([0.0144, 0.006, 0.003, 0.001]) {
            assert!((a - e).abs() < 1e-12);
        }
    }

    #[test]
    fn a_total_outage_pages_within_two_minutes() {
        let mut s = Scenario::new(3, 1000);
        assert_eq!(s.run(30, 1000, 0), None);
        // The workbook: about 52 s at 100%. With minute buckets, after the first minute.
        let fired = s.run(10, 1000, 1000).expect("a total outage pages");
        assert!(fired <= 2, "paged after {fired} minutes");
        assert_eq!(
            s.notifications,
            vec![Notification { severity: Severity::Page, firing: true, at_s: T0 + (30 + fired) * MINUTE_S }]
        );
    }

    #[test]
    fn two_percent_errors_page_after_the_workbooks_detection_time() {
        let mut s = Scenario::new(3, 1000);
        let expected = slo().detection_time_s(0.02, HOUR_S, 14.4) / 60.0;
        assert!((expected - 43.2).abs() < 1e-9);
        let fired = s.run(120, 1000, 20).expect("2% errors page") as f64;
        // Minute buckets: fires once 44 whole minutes of errors are in the hour.
        assert!((expected..=expected + 2.0).contains(&fired), "paged after {fired} minutes");
    }

    #[test]
    fn the_page_resolves_within_five_minutes_after_errors_stop() {
        // The workbook's example: 15% errors for 10 minutes.
        let mut s = Scenario::new(3, 1000);
        let fired = s.run(10, 1000, 150).expect("15% for 10 minutes pages");
        // 5.76 minutes by the workbook.
        assert!((6..=7).contains(&fired), "paged after {fired} minutes");
        let mut resolved_after = None;
        for m in 1..=60 {
            s.minute(1000, 0);
            if resolved_after.is_none() && !s.paged() {
                resolved_after = Some(m);
            }
        }
        let resolved_after = resolved_after.expect("the page resolves");
        assert!(resolved_after <= 5, "resolved after {resolved_after} minutes");
        assert_eq!(s.alerts.page.state, State::Resolved);
        let pages: Vec<bool> = s.notifications.iter().map(|n| n.firing).collect();
        assert_eq!(pages, vec![true, false], "{:?}", s.notifications);
    }

    #[test]
    fn a_steady_error_ratio_under_the_objective_never_alerts() {
        // 0.05% errors on 99.9%: burn 0.5, for three days, evaluated every minute.
        let mut s = Scenario::new(3, 2000);
        for _ in 0..3 * 24 * 60 {
            let states = s.minute(2000, 1);
            assert!(states.iter().all(|r| !r.firing), "{states:?}");
        }
        assert!(s.notifications.is_empty());
        assert_eq!(s.alerts.page.state, State::Inactive);
    }

    #[test]
    fn a_single_failure_on_a_tiny_service_does_not_page() {
        // 10 requests an hour, one a few minutes apart; one fails.
        let mut series = Series::default();
        for i in 0..10 * 24 * 3 {
            series.add(T0 - 3 * DAY_S + i * 6 * MINUTE_S, Counts::new(1, 0));
        }
        series.add(T0, Counts::new(1, 1));
        let states = evaluate(&series, slo(), T0 + MINUTE_S);
        let quick = states[0];
        assert!(quick.long_burn > 14.4 && quick.short_burn > 14.4);
        assert!(quick.held_by_min_requests && !quick.firing);
        assert!(!firing(&states, Severity::Page));
        // Without the guard it would page.
        assert!(firing(&evaluate_with(&series, slo(), T0 + MINUTE_S, 1), Severity::Page));
    }

    #[test]
    fn a_firing_page_suppresses_the_ticket() {
        let mut s = Scenario::new(3, 1000);
        // 100% for 20 minutes: both pages and the 1d/2h ticket fire.
        s.run(20, 1000, 1000).expect("pages");
        assert_eq!(s.alerts.ticket.state, State::Firing);
        assert_eq!(s.notifications.len(), 1);
        assert_eq!(s.notifications[0].severity, Severity::Page);
        // Errors stop: the page resolves when its slower rule's 30-minute short window is
        // clean; the ticket still fires (2 h and 6 h short windows) and is announced then.
        for _ in 0..60 {
            s.minute(1000, 0);
        }
        assert_eq!(s.alerts.page.state, State::Resolved);
        let kinds: Vec<(Severity, bool)> = s.notifications.iter().map(|n| (n.severity, n.firing)).collect();
        assert_eq!(kinds, vec![(Severity::Page, true), (Severity::Page, false), (Severity::Ticket, true)]);
        // And resolved once, when its last rule's short window (3d/6h at burn 1) is clean:
        // six hours after the errors stopped.
        for _ in 0..6 * 60 {
            s.minute(1000, 0);
        }
        assert_eq!(s.notifications.len(), 4);
        assert_eq!((s.notifications[3].severity, s.notifications[3].firing), (Severity::Ticket, false));
    }

    #[test]
    fn alert_state_machine() {
        // (for, [(firing, now)], expected states after each step, notifying steps)
        fn check(pending_for: i64, steps: &[(bool, i64)], expected: &[(State, bool)]) {
            let mut alert = Alert::with_pending_for(Severity::Page, pending_for);
            for (i, ((firing, now), (state, notifies))) in steps.iter().zip(expected).enumerate() {
                let t = alert.step(*firing, *now);
                assert_eq!(alert.state, *state, "step {i}");
                assert_eq!(t.is_some_and(|t| t.notifies()), *notifies, "step {i}");
            }
        }
        use State::*;
        // for = 0: straight to firing; one notification per transition, none while steady.
        check(
            0,
            &[(false, 0), (true, 60), (true, 120), (false, 180), (false, 240), (true, 300)],
            &[(Inactive, false), (Firing, true), (Firing, false), (Resolved, true), (Resolved, false), (Firing, true)],
        );
        // for = 120 s: pending first; a dip before the `for` cancels silently.
        check(
            120,
            &[(true, 0), (false, 60), (true, 120), (true, 180), (true, 240), (false, 300)],
            &[
                (Pending, false),
                (Inactive, false),
                (Pending, false),
                (Pending, false),
                (Firing, true),
                (Resolved, true),
            ],
        );
        let mut alert = Alert::new(Severity::Ticket);
        let t = alert.step(true, 42).unwrap();
        assert_eq!((t.from, t.to, t.at_s, alert.since_s), (Inactive, Firing, 42, 42));
    }
}
