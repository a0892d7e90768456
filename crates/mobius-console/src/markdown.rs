//! Markdown shown as HTML: the post-mortem draft. The draft quotes what events said (an
//! incident's title, a commit's message), so nothing in it may become markup: raw HTML is
//! shown as text, images as their alt text (the Content-Security-Policy would block them
//! anyway), and a link keeps its destination only when it is relative or `http`, `https` or
//! `mailto` — `javascript:` and every other scheme lose the link and keep its words.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// `markdown` as HTML that carries no markup but Markdown's own.
pub(crate) fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    // Links cannot nest in Markdown: one flag says whether the open one was dropped.
    let mut dropped_link = false;
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            if safe_destination(&dest_url) {
                Some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
            } else {
                dropped_link = true;
                None
            }
        }
        Event::End(TagEnd::Link) if dropped_link => {
            dropped_link = false;
            None
        }
        other => Some(other),
    });
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// Whether a link may lead to `url`: relative, or `http`, `https` or `mailto`. Browsers skip
/// tabs, newlines and leading spaces or controls in a scheme, so they are skipped here too.
fn safe_destination(url: &CowStr<'_>) -> bool {
    let cleaned: String = url.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()).collect();
    let scheme_end = cleaned.find([':', '/', '?', '#']);
    match scheme_end {
        Some(at) if cleaned[at..].starts_with(':') => {
            let scheme = cleaned[..at].to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(markdown: &str, wanted: &[&str], unwanted: &[&str]) {
        let html = to_html(markdown);
        for w in wanted {
            assert!(html.contains(w), "{w:?} in {html}");
        }
        for u in unwanted {
            assert!(!html.contains(u), "no {u:?} in {html}");
        }
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        check(
            "# Post-mortem: <script>alert(1)</script>\n\nA title <img src=x onerror=alert(2)> inline.\n\n<div onclick=\"x()\">block</div>\n",
            &["&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "&lt;div onclick="],
            &["<script", "<img", "<div"],
        );
        check(
            "| a | b |\n|---|---|\n| `<b>` | <i>x</i> |\n",
            &["<table>", "&lt;b&gt;", "&lt;i&gt;x&lt;/i&gt;"],
            &["<i>"],
        );
    }

    #[test]
    fn only_safe_links_keep_their_destination() {
        check(
            "[run](javascript:alert(1)) [up](JaVaScRiPt:alert(2)) [tab](java\tscript:alert(3)) [data](data:text/html,x)",
            &["run", "up", "data"],
            &["href", "javascript", "JaVaScRiPt"],
        );
        check(
            "[wiki](https://wiki.example/pm?a=1&b=\"2\") [local](/incidents/x) [mail](mailto:sre@example.com)",
            &[
                r#"<a href="https://wiki.example/pm?a=1&amp;b=%222%22">wiki</a>"#,
                r#"<a href="/incidents/x">local</a>"#,
                r#"<a href="mailto:sre@example.com">mail</a>"#,
            ],
            &[],
        );
        check(
            "![x](https://evil.example/t.png) <https://ok.example/>",
            &["x", "href=\"https://ok.example/\""],
            &["<img"],
        );
    }
}
