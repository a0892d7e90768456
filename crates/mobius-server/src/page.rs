//! Pages of lists. Every list endpoint answers a JSON array of at most `limit` items (capped at
//! [`MAX_PAGE_ITEMS`]) and at most [`MAX_PAGE_BYTES`] of JSON; when more remain, a
//! `Link: <…>; rel="next"` header (RFC 8288, as GitHub pages its API) gives the URL of the next
//! page, so existing clients that read the array keep working.

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The most items a page holds, whatever `limit` asks.
pub const MAX_PAGE_ITEMS: u32 = 1000;

/// The most JSON a page holds (4 MiB): a page of large events stops early.
pub const MAX_PAGE_BYTES: usize = 4 << 20;

/// The page size to use for a `limit` parameter: `default` when absent, never over the cap.
pub fn limit(asked: Option<u32>, default: u32) -> u32 {
    asked.unwrap_or(default).clamp(1, MAX_PAGE_ITEMS)
}

/// One page of `items` as JSON. `more` says whether items beyond these exist (the caller asked
/// for one more than it shows); `next(i, last)` names the query parameter and value that start
/// the page after `last`, the `i`-th item. Items past the byte budget are left for the next
/// page.
pub fn page<T: Serialize>(
    uri: &Uri,
    items: &[T],
    more: bool,
    next: impl Fn(usize, &T) -> (&'static str, String),
) -> Result<Response, serde_json::Error> {
    let mut body = Vec::with_capacity(1024);
    body.push(b'[');
    let mut shown = 0;
    for item in items {
        let encoded = serde_json::to_vec(item)?;
        // The first item is always shown: one event is at most 1 MiB.
        if shown > 0 && body.len() + encoded.len() + 2 > MAX_PAGE_BYTES {
            break;
        }
        if shown > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&encoded);
        shown += 1;
    }
    body.push(b']');
    let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let cut = shown < items.len();
    if (more || cut)
        && let Some((i, last)) = shown.checked_sub(1).and_then(|i| items.get(i).map(|last| (i, last)))
    {
        let (param, value) = next(i, last);
        if let Some(link) = next_link(uri, param, &value) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

/// The `Link` header naming the next page: `uri` with `param` set to `value`.
pub fn next_link(uri: &Uri, param: &str, value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("<{}>; rel=\"next\"", with_param(uri, param, value))).ok()
}

/// A page of a list read with a cursor: `items` is what the store gave when asked for
/// `limit + 1`, so one more than `limit` means there is a next page, which `next(last)` names.
pub fn of_cursor<T: Serialize>(
    uri: &Uri,
    mut items: Vec<T>,
    limit: u32,
    next: impl Fn(&T) -> (&'static str, String),
) -> Result<Response, crate::error::ApiError> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    page(uri, &items, more, |_, last| next(last)).map_err(crate::error::ApiError::internal)
}

/// The position and size of a page of a list computed whole.
#[derive(Debug, Default, serde::Deserialize)]
pub struct OffsetParams {
    pub offset: Option<usize>,
    pub limit: Option<u32>,
}

/// A page of a list computed whole (few items: services, SLOs, tokens), by position: the
/// items from `offset`, at most `limit` (default: the cap).
pub fn of_whole<T: Serialize>(
    uri: &Uri,
    items: Vec<T>,
    offset: Option<usize>,
    limit: Option<u32>,
) -> Result<Response, crate::error::ApiError> {
    let offset = offset.unwrap_or(0);
    let limit = self::limit(limit, MAX_PAGE_ITEMS) as usize;
    let more = items.len() > offset.saturating_add(limit);
    let shown: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    page(uri, &shown, more, |i, _| ("offset", (offset + i + 1).to_string())).map_err(crate::error::ApiError::internal)
}

/// `uri`'s path and query with `param` set to `value` (replacing it if present).
fn with_param(uri: &Uri, param: &str, value: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        if k != param {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair(param, value);
    format!("{}?{}", uri.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(response: &Response) -> Option<String> {
        response.headers().get(header::LINK).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_whole_list_is_paged_by_offset_and_its_link_moves_on() {
        let uri: Uri = "/api/v1/tokens?limit=2".parse().unwrap();
        let page = |offset| of_whole(&uri, (0..5).collect::<Vec<u32>>(), offset, Some(2)).unwrap();
        assert_eq!(link(&page(None)).as_deref(), Some("</api/v1/tokens?limit=2&offset=2>; rel=\"next\""));
        assert_eq!(link(&page(Some(2))).as_deref(), Some("</api/v1/tokens?limit=2&offset=4>; rel=\"next\""));
        assert_eq!(link(&page(Some(4))), None, "the last page");
    }

    #[test]
    fn a_page_links_to_the_next_one_by_count_and_by_bytes() {
        let uri: Uri = "/api/v1/events?type=a%20b&after=3&limit=2".parse().unwrap();
        let items = vec![(4, "x"), (5, "y")];
        let response = page(&uri, &items, true, |_, (seq, _)| ("after", seq.to_string())).unwrap();
        assert_eq!(
            link(&response).as_deref(),
            Some("</api/v1/events?type=a+b&limit=2&after=5>; rel=\"next\""),
            "the cursor replaces the old one, the rest is kept"
        );
        let last = page(&uri, &items, false, |_, (seq, _)| ("after", seq.to_string())).unwrap();
        assert_eq!(link(&last), None, "no more: no link");

        let big = "x".repeat(MAX_PAGE_BYTES / 3);
        let items: Vec<(u32, &str)> = (0..5).map(|i| (i, big.as_str())).collect();
        let response = page(&uri, &items, false, |_, (seq, _)| ("after", seq.to_string())).unwrap();
        assert!(link(&response).unwrap().contains("after=1>"), "two fit in the byte budget");
    }
}
