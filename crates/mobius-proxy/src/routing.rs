//! The routing table and the rule that picks a version for one request.
//!
//! The rule, in order:
//! 1. header `x-mobius-canary: always` → the canary, if the table has one; `never` → the stable;
//! 2. cookie `mobius-version=<v>` naming the stable or the canary version of the table, while
//!    that version still takes traffic (a weight of 0 sends nobody to the canary, a weight of 100
//!    nobody to the stable, sticky or not: that is what an abort or a promotion means);
//! 3. otherwise a weighted draw (canary with probability `canary_weight / 100`). When the draw
//!    was a real choice between two versions, the response sets the cookie so the user stays
//!    on the version they got (Flagger's `sessionAffinity`, with the version as the value).

use std::net::SocketAddr;

use hyper::header::{COOKIE, HeaderMap};
use serde::{Deserialize, Serialize};

use crate::chaos::Fault;

/// Request header that forces a version: `always` (canary) or `never` (stable).
pub const FORCE_HEADER: &str = "x-mobius-canary";
/// Cookie that keeps a user on one version.
pub const VERSION_COOKIE: &str = "mobius-version";
/// How long the version cookie lives, in seconds.
pub const COOKIE_MAX_AGE_S: u32 = 86_400;

/// Where one service's traffic goes in one environment. The control plane writes it; the proxy
/// swaps it in whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingTable {
    pub service: String,
    pub environment: String,
    /// Increases with every change; a follower only swaps in a higher generation.
    pub generation: u64,
    pub stable: Option<Backend>,
    pub canary: Option<Backend>,
    /// Percentage of unpinned traffic sent to the canary, 0..=100 (values above 100 count as 100).
    pub canary_weight: u8,
    /// Faults to inject for a game day ([`crate::chaos`]); the first that matches applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
}

/// One version of the service and the instances that serve it (used round-robin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    pub version: String,
    pub addrs: Vec<SocketAddr>,
}

impl RoutingTable {
    /// A table with no backend: every request gets 503.
    pub fn empty(service: impl Into<String>, environment: impl Into<String>) -> Self {
        RoutingTable {
            service: service.into(),
            environment: environment.into(),
            generation: 0,
            stable: None,
            canary: None,
            canary_weight: 0,
            faults: Vec::new(),
        }
    }
}

/// Which side of the table a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Stable,
    Canary,
}

/// The outcome of the rule for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub side: Side,
    /// The version was drawn by weight; the response should pin it with the cookie.
    pub set_cookie: bool,
}

/// Applies the rule. `draw` is a uniformly random number in 0..100. `None`: no backend at all.
pub fn decide(table: &RoutingTable, headers: &HeaderMap, draw: u8) -> Option<Decision> {
    let has_stable = table.stable.as_ref().is_some_and(|b| !b.addrs.is_empty());
    let has_canary = table.canary.as_ref().is_some_and(|b| !b.addrs.is_empty());
    let weight = table.canary_weight.min(100);
    let fixed = |side| Some(Decision { side, set_cookie: false });

    match headers.get(FORCE_HEADER).map(|v| v.as_bytes()) {
        Some(v) if v.eq_ignore_ascii_case(b"always") && has_canary => return fixed(Side::Canary),
        Some(v) if v.eq_ignore_ascii_case(b"never") => return if has_stable { fixed(Side::Stable) } else { None },
        _ => {}
    }

    match (has_stable, has_canary) {
        (false, false) => return None,
        (true, false) => return fixed(Side::Stable),
        (false, true) => return fixed(Side::Canary),
        (true, true) => {}
    }
    // Both sides exist from here on.
    if weight == 0 {
        return fixed(Side::Stable);
    }
    if weight == 100 {
        return fixed(Side::Canary);
    }
    if let Some(pinned) = version_cookie(headers) {
        if table.stable.as_ref().is_some_and(|b| b.version == pinned) {
            return fixed(Side::Stable);
        }
        if table.canary.as_ref().is_some_and(|b| b.version == pinned) {
            return fixed(Side::Canary);
        }
    }
    let side = if draw < weight { Side::Canary } else { Side::Stable };
    Some(Decision { side, set_cookie: true })
}

/// The value of the `mobius-version` cookie, if the request has one.
pub fn version_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        // A cookie header that is not visible ASCII holds no version cookie Mobius set.
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VERSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The `Set-Cookie` value that pins `version`.
pub fn set_cookie_value(version: &str) -> String {
    format!("{VERSION_COOKIE}={version}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE_S}")
}

/// A cheap per-thread random number in 0..100 (xorshift64*, seeded per thread from the clock
/// and the thread's stack address). Good enough to split traffic; not for anything secret.
pub fn draw_percent() -> u8 {
    let r = next_random();
    // Multiply-shift maps the high 32 bits onto 0..100 without modulo bias worth mentioning.
    (((r >> 32) * 100) >> 32) as u8
}

/// The next number of the per-thread generator behind [`draw_percent`] (all 64 bits).
pub(crate) fn next_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as u64;
    // splitmix64 of the mix, never zero (xorshift would stay at zero).
    let mut z = nanos ^ addr.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn table(weight: u8) -> RoutingTable {
        RoutingTable {
            service: "web".into(),
            environment: "production".into(),
            generation: 1,
            stable: Some(Backend { version: "v1".into(), addrs: vec!["127.0.0.1:1".parse().unwrap()] }),
            canary: Some(Backend { version: "v2".into(), addrs: vec!["127.0.0.1:2".parse().unwrap()] }),
            canary_weight: weight,
            faults: Vec::new(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn draw_decides_and_asks_for_a_cookie() {
        let t = table(10);
        assert_eq!(decide(&t, &HeaderMap::new(), 9), Some(Decision { side: Side::Canary, set_cookie: true }));
        assert_eq!(decide(&t, &HeaderMap::new(), 10), Some(Decision { side: Side::Stable, set_cookie: true }));
    }

    #[test]
    fn header_beats_cookie_and_cookie_beats_draw() {
        let t = table(50);
        let h = headers(&[("x-mobius-canary", "always"), ("cookie", "mobius-version=v1")]);
        assert_eq!(decide(&t, &h, 99).unwrap().side, Side::Canary);
        let h = headers(&[("x-mobius-canary", "never")]);
        assert_eq!(decide(&t, &h, 0).unwrap().side, Side::Stable);
        let h = headers(&[("cookie", "a=b; mobius-version=v2; c=d")]);
        assert_eq!(decide(&t, &h, 99), Some(Decision { side: Side::Canary, set_cookie: false }));
    }

    #[test]
    fn unknown_cookie_redraws_and_zero_weight_ignores_canary_cookie() {
        let h = headers(&[("cookie", "mobius-version=v0")]);
        assert!(decide(&table(50), &h, 0).unwrap().set_cookie);
        let h = headers(&[("cookie", "mobius-version=v2")]);
        assert_eq!(decide(&table(0), &h, 0), Some(Decision { side: Side::Stable, set_cookie: false }));
    }

    #[test]
    fn empty_table_has_no_decision() {
        let mut t = table(50);
        t.stable = None;
        t.canary = None;
        assert_eq!(decide(&t, &HeaderMap::new(), 0), None);
        t.canary = Some(Backend { version: "v2".into(), addrs: vec![] });
        assert_eq!(decide(&t, &HeaderMap::new(), 0), None);
    }

    #[test]
    fn draws_are_roughly_uniform() {
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[draw_percent() as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (700..1300).contains(&c)), "{counts:?}");
    }
}
