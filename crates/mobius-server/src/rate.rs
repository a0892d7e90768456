//! A per-key request rate limit (a token bucket per key): a client past its rate is answered
//! 429 with how long to wait (`Retry-After`), and the others are not slowed by it.
//!
//! Buckets are kept for the keys seen recently only: a key idle long enough to have refilled
//! its bucket is forgotten at the next sweep, so memory follows the number of active clients.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second and burst allowed to each key.
#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_key: HashMap<String, Bucket>,
    swept: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_second` requests a second on average, up to `burst` at once. `per_second` of zero
    /// or less means no limit.
    pub fn new(per_second: f64, burst: u32) -> RateLimit {
        RateLimit { per_second, burst: f64::from(burst.max(1)), buckets: Mutex::new(Buckets::default()) }
    }

    /// Takes one request of `key` at `now`: `Err(wait)` when its bucket is empty, with how long
    /// until it holds one again.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        self.sweep(&mut buckets, now);
        let bucket = buckets.by_key.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }

    /// Forgets, at most once a second, the keys whose buckets would be full by now anyway.
    fn sweep(&self, buckets: &mut Buckets, now: Instant) {
        if buckets.swept.is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1)) {
            return;
        }
        buckets.swept = Some(now);
        let full_after = Duration::from_secs_f64(self.burst / self.per_second);
        buckets.by_key.retain(|_, b| now.saturating_duration_since(b.at) < full_after);
    }

    /// How many keys are tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).by_key.len()
    }
}

/// Seconds for a `Retry-After` header: whole seconds, at least one.
pub fn retry_after(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_its_rate_and_others_are_not_slowed() {
        let limit = RateLimit::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limit.take("a", t0), Ok(()));
        }
        let wait = limit.take("a", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO, "{wait:?}");
        assert_eq!(retry_after(wait), 1);
        assert_eq!(limit.take("b", t0), Ok(()), "another key has its own bucket");
        assert_eq!(limit.take("a", t0 + Duration::from_millis(100)), Ok(()), "one refilled after 1/rate");
        assert!(limit.take("a", t0 + Duration::from_millis(101)).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_and_zero_means_no_limit() {
        let limit = RateLimit::new(100.0, 10);
        let t0 = Instant::now();
        for n in 0..1000 {
            limit.take(&format!("client-{n}"), t0).unwrap();
        }
        assert_eq!(limit.tracked(), 1000);
        limit.take("late", t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limit.tracked(), 1, "the idle ones were full again, so forgotten");
        let none = RateLimit::new(0.0, 1);
        for _ in 0..10_000 {
            none.take("a", t0).unwrap();
        }
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
    }
}
