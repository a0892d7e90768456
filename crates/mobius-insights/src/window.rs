//! The period a measurement covers.

use jiff::{SignedDuration, Timestamp};

const SECONDS_PER_DAY: i64 = 86_400;

/// A half-open period `[from, to)`: facts at `from` are in, facts at `to` are not, so
/// consecutive windows never count a fact twice.
///
/// The fields are public for reading; build windows with [`Window::new`] or [`Window::last`],
/// which check that `from < to`. Measurements over a window that fails that check find no
/// facts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Window {
    /// The window `[from, to)`.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Window, InvalidWindow> {
        let window = Window { from, to };
        window.validate()?;
        Ok(window)
    }

    /// The `days` days (of 24 hours) that end at `now`, `now` excluded.
    pub fn last(days: i64, now: Timestamp) -> Result<Window, InvalidWindow> {
        let from = (days > 0)
            .then(|| days.checked_mul(SECONDS_PER_DAY))
            .flatten()
            .map(SignedDuration::from_secs)
            // Reaching before the earliest timestamp is a window of too many days.
            .and_then(|length| now.checked_sub(length).ok())
            .ok_or(InvalidWindow::Days { days })?;
        Window::new(from, now)
    }

    /// Checks that the window starts before it ends.
    pub fn validate(&self) -> Result<(), InvalidWindow> {
        if self.from < self.to { Ok(()) } else { Err(InvalidWindow::Empty { from: self.from, to: self.to }) }
    }

    /// Whether `at` falls in the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && at < self.to
    }

    /// The window's length (negative or zero for an invalid window).
    pub fn duration(&self) -> SignedDuration {
        self.to.duration_since(self.from)
    }

    /// The window's length in days of 86 400 seconds, fractional; zero for an invalid window.
    pub fn days(&self) -> f64 {
        (self.duration().as_secs_f64() / SECONDS_PER_DAY as f64).max(0.0)
    }
}

/// A window that cannot be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWindow {
    #[error("the window must start before it ends (from {from}, to {to})")]
    Empty { from: Timestamp, to: Timestamp },
    #[error("cannot measure the last {days} days: give a positive number of days within the calendar")]
    Days { days: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn last_days_end_at_now() {
        let w = Window::last(30, ts("2024-03-31T12:00:00Z")).unwrap();
        assert_eq!(w.from, ts("2024-03-01T12:00:00Z"));
        assert_eq!(w.to, ts("2024-03-31T12:00:00Z"));
        assert_eq!(w.days(), 30.0);
    }

    #[test]
    fn bad_windows_are_refused() {
        let now = ts("2024-03-31T12:00:00Z");
        assert_eq!(Window::last(0, now), Err(InvalidWindow::Days { days: 0 }));
        assert_eq!(Window::last(-3, now), Err(InvalidWindow::Days { days: -3 }));
        assert_eq!(Window::last(i64::MAX, now), Err(InvalidWindow::Days { days: i64::MAX }));
        let err = Window::new(now, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the window must start before it ends (from 2024-03-31T12:00:00Z, to 2024-03-31T12:00:00Z)"
        );
    }

    #[test]
    fn window_is_half_open() {
        let w = Window::new(ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:00Z")).unwrap();
        assert!(w.contains(w.from));
        assert!(!w.contains(w.to));
        assert!(w.contains(ts("2024-01-01T23:59:59.999999999Z")));
        assert_eq!(w.days(), 1.0);
    }
}
