//! Rewriting a message's head on its way through: hop-by-hop headers out, `x-forwarded-for`
//! in, and a copy of a request's head for its one retry.

use hyper::Request;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and those the
/// `Connection` header names.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        // A value that is not visible ASCII names no header; the client's mistake, not ours.
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Appends the peer to `x-forwarded-for`. An earlier value that is not visible ASCII is
/// replaced (it cannot be extended); the peer's IP always is.
pub(super) fn append_forwarded_for(headers: &mut HeaderMap, peer_ip: &HeaderValue) {
    let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => HeaderValue::try_from(format!("{earlier}, {}", peer_ip.to_str().unwrap_or_default())),
        None => Ok(peer_ip.clone()),
    };
    // Visible ASCII joined with an IP address is always a valid value.
    if let Ok(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

pub(super) fn clone_head(parts: &hyper::http::request::Parts) -> hyper::http::request::Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.1"));
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.2"));
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 10.0.0.2");
    }
}
