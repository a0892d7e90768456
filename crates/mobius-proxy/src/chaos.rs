//! Fault injection for game days: faults travel in the [`RoutingTable`](crate::RoutingTable)
//! (`faults`), so the embedded proxy and a separate `mobius proxy` apply the same ones.
//!
//! After the version is chosen, the first fault (in table order) that matches the request —
//! unexpired, for that version or any, carrying the header if it names one, then a draw under
//! its percentage — applies: an abort answers with its status without calling the upstream
//! (body `injected fault <id>`), a delay waits and then forwards. Either way the response carries
//! [`FAULT_HEADER`] and the version's SLIs count it (`injected`, and `injected_errors` for a 5xx
//! abort), so the SLI consumer can leave a game day out of the error budget or count it.
//!
//! A fault that fails [`Fault::check`] is ignored by the proxy (with a warning when the table is
//! swapped in), never applied half-way.

use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

/// Response header naming the fault that touched the request.
pub const FAULT_HEADER: &str = "x-mobius-fault";
/// The longest delay a fault may add (`ms + jitter_ms`), in ms.
pub const MAX_DELAY_MS: u64 = 60_000;

/// One fault to inject.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Fault {
    /// Names the fault in the abort body, [`FAULT_HEADER`] and logs; non-empty.
    pub id: String,
    pub kind: FaultKind,
    /// Share of the matching requests it applies to, 0..=100.
    pub percent: f64,
    /// Only requests routed to this version; `None`: every version.
    #[serde(default)]
    pub version: Option<String>,
    /// Only requests carrying this header (name case-insensitive) with exactly this value.
    #[serde(default)]
    pub header: Option<(String, String)>,
    /// Unix time in ms from which the fault does nothing.
    pub expires_at_ms: u64,
}

/// What a fault does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with `status` (200..=599) without calling the upstream. Not 1xx: an informational
    /// status is no final answer (hyper would send 500 instead).
    Abort { status: u16 },
    /// Wait `ms` plus a uniform 0..=`jitter_ms`, then forward.
    Delay { ms: u64, jitter_ms: u64 },
}

impl Fault {
    /// Whether the fault is well-formed: non-empty id usable as a header value, percent in
    /// 0..=100, abort status in 200..=599, delay (`ms + jitter_ms`) at most 60 s, a valid header
    /// name.
    pub fn check(&self) -> Result<(), FaultError> {
        let id = || self.id.clone();
        if self.id.is_empty() {
            return Err(FaultError::EmptyId);
        }
        if HeaderValue::from_str(&self.id).is_err() {
            return Err(FaultError::IdNotAHeaderValue { id: id() });
        }
        if !(0.0..=100.0).contains(&self.percent) {
            return Err(FaultError::Percent { id: id(), percent: self.percent });
        }
        match self.kind {
            FaultKind::Abort { status } if !(200..=599).contains(&status) => {
                return Err(FaultError::AbortStatus { id: id(), status });
            }
            FaultKind::Delay { ms, jitter_ms } if ms.checked_add(jitter_ms).is_none_or(|d| d > MAX_DELAY_MS) => {
                return Err(FaultError::DelayTooLong { id: id(), ms, jitter_ms });
            }
            _ => {}
        }
        if let Some((name, value)) = &self.header {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(FaultError::HeaderName { id: id(), name: name.clone() });
            }
            if HeaderValue::from_str(value).is_err() {
                return Err(FaultError::HeaderValue { id: id(), value: value.clone() });
            }
        }
        Ok(())
    }

    /// Whether the fault has expired at `now_ms` (unix ms).
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}

/// Checks every fault of a table, and that no two share an id.
pub fn check_all(faults: &[Fault]) -> Result<(), FaultError> {
    for (i, fault) in faults.iter().enumerate() {
        fault.check()?;
        if faults[..i].iter().any(|f| f.id == fault.id) {
            return Err(FaultError::DuplicateId { id: fault.id.clone() });
        }
    }
    Ok(())
}

/// Why a fault is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("fault id is empty")]
    EmptyId,
    #[error("fault id {id:?} has characters a header cannot carry")]
    IdNotAHeaderValue { id: String },
    #[error("fault {id}: percent {percent} is not in 0..=100")]
    Percent { id: String, percent: f64 },
    #[error("fault {id}: abort status {status} is not in 200..=599")]
    AbortStatus { id: String, status: u16 },
    #[error("fault {id}: delay {ms} ms + jitter {jitter_ms} ms is more than {MAX_DELAY_MS} ms")]
    DelayTooLong { id: String, ms: u64, jitter_ms: u64 },
    #[error("fault {id}: {name:?} is not a header name")]
    HeaderName { id: String, name: String },
    #[error("fault {id}: {value:?} is not a header value")]
    HeaderValue { id: String, value: String },
    #[error("fault id {id} is used twice")]
    DuplicateId { id: String },
}

/// A fault as the request path uses it: parsed once per table.
#[derive(Debug)]
pub(crate) struct LiveFault {
    pub id: HeaderValue,
    header: Option<(HeaderName, HeaderValue)>,
    percent: f64,
    expires_at_ms: u64,
    pub action: Action,
}

#[derive(Debug)]
pub(crate) enum Action {
    /// The status and the body `injected fault <id>`.
    Abort(StatusCode, bytes::Bytes),
    Delay {
        ms: u64,
        jitter_ms: u64,
    },
}

impl LiveFault {
    /// The faults of `faults` that apply to `version`, in order; invalid ones are left out.
    pub fn for_version(faults: &[Fault], version: &str) -> Vec<LiveFault> {
        faults
            .iter()
            .filter(|f| f.version.as_deref().is_none_or(|v| v == version))
            .filter_map(|f| match LiveFault::new(f) {
                Ok(live) => Some(live),
                Err(error) => {
                    tracing::warn!(%error, "ignoring an invalid fault");
                    None
                }
            })
            .collect()
    }

    fn new(fault: &Fault) -> Result<LiveFault, FaultError> {
        fault.check()?;
        // `check` has parsed every one of these; the conversions below repeat it typed.
        let id = || fault.id.clone();
        let header = match &fault.header {
            Some((name, value)) => Some((
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| FaultError::HeaderName { id: id(), name: name.clone() })?,
                HeaderValue::from_str(value).map_err(|_| FaultError::HeaderValue { id: id(), value: value.clone() })?,
            )),
            None => None,
        };
        let action = match fault.kind {
            FaultKind::Abort { status } => Action::Abort(
                StatusCode::from_u16(status).map_err(|_| FaultError::AbortStatus { id: id(), status })?,
                bytes::Bytes::from(format!("injected fault {}", fault.id)),
            ),
            FaultKind::Delay { ms, jitter_ms } => Action::Delay { ms, jitter_ms },
        };
        Ok(LiveFault {
            id: HeaderValue::from_str(&fault.id).map_err(|_| FaultError::IdNotAHeaderValue { id: id() })?,
            header,
            percent: fault.percent,
            expires_at_ms: fault.expires_at_ms,
            action,
        })
    }

    /// Whether it may apply to a request with `headers` at `now_ms` (before the draw).
    fn matches(&self, headers: &HeaderMap, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
            && self.header.as_ref().is_none_or(|(name, value)| headers.get_all(name).iter().any(|v| v == value))
    }

    /// Whether a uniform `draw` in 0..100 falls under its percentage.
    fn drawn(&self, draw: f64) -> bool {
        draw < self.percent
    }

    /// The delay to add, jitter drawn.
    pub fn delay(&self) -> Option<std::time::Duration> {
        match self.action {
            Action::Delay { ms, jitter_ms } => {
                let jitter = if jitter_ms == 0 { 0 } else { crate::routing::next_random() % (jitter_ms + 1) };
                Some(std::time::Duration::from_millis(ms + jitter))
            }
            Action::Abort(..) => None,
        }
    }
}

/// The first of `faults` that applies to a request with `headers` now (one draw per matching
/// fault, so each fault's percentage is its own).
pub(crate) fn pick<'a>(faults: &'a [LiveFault], headers: &HeaderMap) -> Option<&'a LiveFault> {
    let now_ms = now_ms();
    // Expiry and header first: no draw for a fault that cannot apply.
    faults.iter().find(|f| f.matches(headers, now_ms) && f.drawn(draw_percent_f64()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A uniform number in 0..100 with 53 bits of precision.
fn draw_percent_f64() -> f64 {
    (crate::routing::next_random() >> 11) as f64 / (1u64 << 53) as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, percent: f64) -> Fault {
        Fault { id: "f1".into(), kind, percent, version: None, header: None, expires_at_ms: u64::MAX }
    }

    #[test]
    fn check_rejects_out_of_range_values() {
        assert!(fault(FaultKind::Abort { status: 503 }, 100.0).check().is_ok());
        assert!(fault(FaultKind::Delay { ms: 59_000, jitter_ms: 1_000 }, 0.0).check().is_ok());
        assert!(fault(FaultKind::Abort { status: 200 }, 10.0).check().is_ok());
        assert!(fault(FaultKind::Abort { status: 199 }, 10.0).check().is_err(), "1xx is no final answer");
        assert!(fault(FaultKind::Abort { status: 600 }, 10.0).check().is_err());
        assert!(fault(FaultKind::Abort { status: 500 }, 100.1).check().is_err());
        assert!(fault(FaultKind::Abort { status: 500 }, -1.0).check().is_err());
        assert!(fault(FaultKind::Abort { status: 500 }, f64::NAN).check().is_err());
        assert!(fault(FaultKind::Delay { ms: 60_000, jitter_ms: 1 }, 10.0).check().is_err());
        assert!(fault(FaultKind::Delay { ms: u64::MAX, jitter_ms: 1 }, 10.0).check().is_err());
        let mut f = fault(FaultKind::Abort { status: 500 }, 10.0);
        f.id = String::new();
        assert!(f.check().is_err());
        f.id = "a\nb".into();
        assert!(f.check().is_err());
        let mut f = fault(FaultKind::Abort { status: 500 }, 10.0);
        f.header = Some(("bad header".into(), "x".into()));
        assert!(f.check().is_err());
        let twice = [f.clone(), f.clone()];
        f.header = None;
        assert!(check_all(&[f.clone()]).is_ok());
        assert!(check_all(&twice).is_err());
    }

    #[test]
    fn json_shape() {
        let mut f = fault(FaultKind::Delay { ms: 100, jitter_ms: 20 }, 50.0);
        f.version = Some("v2".into());
        f.header = Some(("x-chaos".into(), "on".into()));
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "f1", "kind": {"type": "delay", "ms": 100, "jitter_ms": 20}, "percent": 50.0,
                "version": "v2", "header": ["x-chaos", "on"], "expires_at_ms": u64::MAX
            })
        );
        assert_eq!(serde_json::from_value::<Fault>(json).unwrap(), f);
        let abort: Fault =
            serde_json::from_str(r#"{"id":"a","kind":{"type":"abort","status":503},"percent":100,"expires_at_ms":1}"#)
                .unwrap();
        assert_eq!((abort.kind, abort.version, abort.header), (FaultKind::Abort { status: 503 }, None, None));
    }

    #[test]
    fn applies_by_expiry_header_and_draw() {
        let mut f = fault(FaultKind::Abort { status: 503 }, 50.0);
        f.header = Some(("X-Chaos".into(), "on".into()));
        f.expires_at_ms = 1_000;
        let live = LiveFault::new(&f).unwrap();
        let mut with = HeaderMap::new();
        with.append("x-chaos", HeaderValue::from_static("off"));
        with.append("x-chaos", HeaderValue::from_static("on"));
        assert!(live.matches(&with, 999));
        assert!(live.drawn(49.9) && !live.drawn(50.0), "draw under the percentage only");
        assert!(!live.matches(&with, 1_000), "expired");
        assert!(!live.matches(&HeaderMap::new(), 999), "no header");
        assert!(f.expired(1_000) && !f.expired(999));
    }

    #[test]
    fn for_version_filters_and_drops_invalid_faults() {
        let mut a = fault(FaultKind::Abort { status: 503 }, 100.0);
        a.version = Some("v2".into());
        let bad = fault(FaultKind::Abort { status: 700 }, 100.0);
        let any = fault(FaultKind::Delay { ms: 1, jitter_ms: 0 }, 100.0);
        let faults = [a, bad, any];
        assert_eq!(LiveFault::for_version(&faults, "v1").len(), 1);
        assert_eq!(LiveFault::for_version(&faults, "v2").len(), 2);
    }

    #[test]
    fn jitter_stays_in_range() {
        let live = LiveFault::new(&fault(FaultKind::Delay { ms: 10, jitter_ms: 5 }, 100.0)).unwrap();
        let delays: Vec<u128> = (0..1000).map(|_| live.delay().unwrap().as_millis()).collect();
        assert!(delays.iter().all(|d| (10..=15).contains(d)));
        assert!(delays.contains(&10) && delays.contains(&15));
    }
}
