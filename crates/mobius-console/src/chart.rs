//! Charts drawn on the server as inline SVG: no script, no library, readable without
//! JavaScript, and styled by the console's stylesheet (`.chart …`), so light and dark themes
//! apply. Every mark carries a `<title>` with its label and value (a tooltip, and what a
//! screen reader says); a missing value is a gap labelled "no data", never a zero.
//!
//! Templates insert the result with `|safe`: everything here that came from outside (labels,
//! links) is escaped by [`escape`] first.

use std::fmt::Write as _;

/// One point of a series: its label (a week, a day), its value (`None`: no sample), and where
/// it leads (the items behind it), if anywhere.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub(crate) label: String,
    pub(crate) value: Option<f64>,
    pub(crate) href: Option<String>,
}

impl Point {
    pub(crate) fn new(label: impl Into<String>, value: Option<f64>) -> Point {
        Point { label: label.into(), value, href: None }
    }

    pub(crate) fn linked(mut self, href: impl Into<String>) -> Point {
        self.href = Some(href.into());
        self
    }
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 160.0;
/// Room for the axis labels: left for the top value, bottom for the first and last labels.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// Text for SVG (and HTML): `&`, `<`, `>`, `"` and `'` as entities.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The top of the value axis: the largest value (or `floor`, whichever is larger), so a
/// series of small values is not drawn as if it filled the chart.
fn top(points: &[Point], floor: f64) -> f64 {
    points.iter().filter_map(|p| p.value).filter(|v| v.is_finite()).fold(floor, f64::max).max(f64::MIN_POSITIVE)
}

fn y(value: f64, top: f64) -> f64 {
    TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (value / top).clamp(0.0, 1.0))
}

/// The frame every chart shares: the title, the axis with its top and zero, the first and
/// last labels.
fn frame(out: &mut String, title: &str, points: &[Point], top: f64, format: &dyn Fn(f64) -> String) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}"><title>{title}</title>"#,
        title = escape(title)
    );
    let base = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/><text class="tick" x="{x}" y="{ty}" text-anchor="end">{top}</text><text class="tick" x="{x}" y="{base}" text-anchor="end">{zero}</text>"#,
        x = LEFT - 4.0,
        ty = TOP + 8.0,
        top = escape(&format(top)),
        zero = escape(&format(0.0)),
    );
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            out,
            r#"<text class="tick" x="{LEFT}" y="{HEIGHT}">{}</text><text class="tick" x="{WIDTH}" y="{HEIGHT}" text-anchor="end">{}</text>"#,
            escape(&first.label),
            escape(&last.label)
        );
    }
}

/// A mark's tooltip: `label: value`, or `label: no data`.
fn tip(point: &Point, format: &dyn Fn(f64) -> String) -> String {
    match point.value {
        Some(v) => format!("{}: {}", escape(&point.label), escape(&format(v))),
        None => format!("{}: no data", escape(&point.label)),
    }
}

/// A bar per point (deployments per week, say), each a link to what it counts when it has
/// one. `floor` is the least the axis shows (1 for counts).
pub(crate) fn bars(title: &str, points: &[Point], floor: f64, format: &dyn Fn(f64) -> String) -> String {
    let mut out = String::new();
    let top = top(points, floor);
    frame(&mut out, title, points, top, format);
    let slot = (WIDTH - LEFT) / points.len().max(1) as f64;
    for (i, point) in points.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let width = slot * 0.7;
        let mark = match point.value {
            Some(v) => {
                let top_y = y(v, top);
                let height = (HEIGHT - BOTTOM - top_y).max(if v > 0.0 { 1.0 } else { 0.0 });
                format!(
                    r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{width:.1}" height="{height:.1}"><title>{}</title></rect>"#,
                    HEIGHT - BOTTOM - height,
                    tip(point, format)
                )
            }
            None => format!(
                r#"<rect class="gap" x="{x:.1}" y="{TOP}" width="{width:.1}" height="{:.1}"><title>{}</title></rect>"#,
                HEIGHT - BOTTOM - TOP,
                tip(point, format)
            ),
        };
        match &point.href {
            Some(href) => {
                let _ = write!(out, r#"<a href="{}">{mark}</a>"#, escape(href));
            }
            None => out.push_str(&mark),
        }
    }
    out.push_str("</svg>");
    out
}

/// A line through the points (a gap where a value is missing), with a dot on each that
/// carries its tooltip. With `floor_line`, a dashed reference at that value (a target, zero
/// budget).
pub(crate) fn line(
    title: &str,
    points: &[Point],
    floor: f64,
    reference: Option<f64>,
    format: &dyn Fn(f64) -> String,
) -> String {
    let mut out = String::new();
    let top = top(points, floor.max(reference.unwrap_or(0.0)));
    frame(&mut out, title, points, top, format);
    let step = if points.len() > 1 { (WIDTH - LEFT) / (points.len() - 1) as f64 } else { 0.0 };
    let x = |i: usize| LEFT + step * i as f64;
    if let Some(reference) = reference {
        let ry = y(reference, top);
        let _ = write!(out, r#"<line class="reference" x1="{LEFT}" y1="{ry:.1}" x2="{WIDTH}" y2="{ry:.1}"/>"#);
    }
    // One path per run of points with values: a missing value breaks the line.
    let mut path = String::new();
    let mut pen_down = false;
    for (i, point) in points.iter().enumerate() {
        match point.value {
            Some(v) => {
                let _ = write!(path, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(i), y(v, top));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(out, r#"<path class="line" d="{}"/>"#, path.trim_end());
    }
    for (i, point) in points.iter().enumerate() {
        let Some(v) = point.value else { continue };
        let dot = format!(
            r#"<circle class="dot" cx="{:.1}" cy="{:.1}" r="3"><title>{}</title></circle>"#,
            x(i),
            y(v, top),
            tip(point, format)
        );
        match &point.href {
            Some(href) => {
                let _ = write!(out, r#"<a href="{}">{dot}</a>"#, escape(href));
            }
            None => out.push_str(&dot),
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: f64) -> String {
        format!("{v:.0}")
    }

    #[test]
    fn bars_escape_labels_and_links_and_show_gaps_as_no_data() {
        let points = vec![
            Point::new("<b>w1</b>", Some(3.0)).linked("/x?a=1&b=\"2\""),
            Point::new("w2", None),
            Point::new("w3", Some(0.0)),
        ];
        let svg = bars("Deploys <per> week", &points, 1.0, &count);
        assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
        assert!(svg.contains("&lt;b&gt;w1&lt;/b&gt;: 3"), "{svg}");
        assert!(svg.contains(r#"href="/x?a=1&amp;b=&quot;2&quot;""#), "{svg}");
        assert!(svg.contains("w2: no data"), "{svg}");
        assert!(svg.contains("Deploys &lt;per&gt; week"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("<rect class=\"gap\"").count(), 1, "{svg}");
    }

    #[test]
    fn a_line_breaks_where_values_are_missing() {
        let points = vec![
            Point::new("a", Some(1.0)),
            Point::new("b", Some(0.5)),
            Point::new("c", None),
            Point::new("d", Some(0.2)),
        ];
        let svg = line("Budget", &points, 1.0, Some(0.0), &|v| format!("{:.0}%", v * 100.0));
        let path = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 1, "{path}");
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("class=\"reference\""));
        // The top of the axis is the largest value (100%), the bottom zero.
        assert!(svg.contains(">100%<") && svg.contains(">0%<"), "{svg}");
    }
}
