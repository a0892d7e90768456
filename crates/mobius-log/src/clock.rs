//! Where the application reads the time.
//!
//! Every service takes a [`Clock`] instead of calling `Timestamp::now()`, and waits with
//! tokio's timers, so a test can run hours of alerts, pauses and schedules in milliseconds:
//! [`Clock::tokio`] reads tokio's clock, which `#[tokio::test(start_paused = true)]` stops
//! and moves forward only when every task is waiting — timestamps and timers then agree.

use jiff::{SignedDuration, Timestamp};

/// The application's clock. Cheap to copy.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The machine's clock (UTC).
    #[default]
    System,
    /// `base` plus the time tokio's clock has moved since `since`: with tokio's time paused,
    /// time passes only as the runtime advances it.
    Tokio { base: Timestamp, since: tokio::time::Instant },
}

impl Clock {
    /// A clock that starts at `base` now and moves with tokio's clock.
    pub fn tokio(base: Timestamp) -> Clock {
        Clock::Tokio { base, since: tokio::time::Instant::now() }
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Tokio { base, since } => {
                let elapsed = SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::MAX);
                base.saturating_add(elapsed).unwrap_or(*base)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_paused_time() {
        let base = Timestamp::from_second(1_700_000_000).unwrap();
        let clock = Clock::tokio(base);
        assert_eq!(clock.now(), base);
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), base + SignedDuration::from_hours(1), "an hour passed in no time");
    }
}
