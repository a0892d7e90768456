//! Performance bands: which of DORA's four levels a measured value falls in.
//!
//! Band tables are versioned data, not code: each is a JSON file under `bands/` embedded in
//! the binary and parsed once. The reports' own tables are cluster summaries with gaps,
//! overlaps and non-monotonic values, so every table here is made contiguous and its notes say
//! how. A row names the metric, the band, the comparison and the value, so the edges (is
//! exactly one deployment a day elite or high?) are read from the file, not from an `if`.
//!
//! Rows of a metric are tried in file order; the first whose comparison holds gives the band,
//! and a value no row matches is [`Band::Low`]. [`BandTable::from_json`] checks that a table
//! is well formed: every metric has rows, better bands come first, comparisons point the way
//! the metric improves, and edges never go backwards.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize};

/// The table used when none is named.
pub const DEFAULT: &str = "seed-2023";

/// The embedded tables, in the order [`names`] lists them.
const EMBEDDED: [(&str, &str); 2] =
    [("seed-2023", include_str!("../bands/seed-2023.json")), ("dora-2024", include_str!("../bands/dora-2024.json"))];

static TABLES: LazyLock<Vec<BandTable>> = LazyLock::new(|| {
    EMBEDDED
        .iter()
        .map(|(file, json)| {
            // Embedded data is checked by the tests; a broken file is a build defect.
            let table = BandTable::from_json(json).unwrap_or_else(|e| panic!("embedded band table {file}: {e}"));
            assert_eq!(table.name, *file, "band table name differs from its file name");
            table
        })
        .collect()
});

/// One of DORA's four performance levels, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

impl Band {
    /// The lowercase name used in JSON and band files.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A measured value a band table classifies, with the unit its thresholds use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Successful deployments per day.
    DeploymentFrequency,
    /// Median lead time for changes, in seconds.
    LeadTime,
    /// Failed deployments over deployments, from 0 to 1.
    ChangeFailureRate,
    /// Median failed deployment recovery time, in seconds.
    RecoveryTime,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 4] =
        [Metric::DeploymentFrequency, Metric::LeadTime, Metric::ChangeFailureRate, Metric::RecoveryTime];

    /// Whether a larger value is better (only deployment frequency).
    pub fn higher_is_better(self) -> bool {
        self == Metric::DeploymentFrequency
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::DeploymentFrequency => "deployment_frequency",
            Metric::LeadTime => "lead_time",
            Metric::ChangeFailureRate => "change_failure_rate",
            Metric::RecoveryTime => "recovery_time",
        })
    }
}

/// How a threshold row compares a measured value with its edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Greater,
    #[serde(rename = ">=")]
    GreaterOrEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = "<=")]
    LessOrEqual,
}

impl Comparison {
    /// Whether `value` is on the row's side of `edge`.
    pub fn holds(self, value: f64, edge: f64) -> bool {
        match self {
            Comparison::Greater => value > edge,
            Comparison::GreaterOrEqual => value >= edge,
            Comparison::Less => value < edge,
            Comparison::LessOrEqual => value <= edge,
        }
    }

    fn is_lower_bound(self) -> bool {
        matches!(self, Comparison::Greater | Comparison::GreaterOrEqual)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        })
    }
}

/// One row of a band table: values of `metric` for which `value comparison edge` holds are
/// in `band` (unless an earlier row matched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub metric: Metric,
    pub band: Band,
    pub comparison: Comparison,
    /// The edge in the metric's unit. Files may write a fraction as a string (`"1/7"`), so
    /// "once a week" is exactly one seventh rather than a rounded decimal.
    #[serde(rename = "value", deserialize_with = "number_or_fraction")]
    pub edge: f64,
    /// The row in words, e.g. "up to a week".
    #[serde(default)]
    pub meaning: Option<String>,
}

/// A named, versioned set of thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandTable {
    name: String,
    title: String,
    source: String,
    #[serde(default)]
    notes: Vec<String>,
    thresholds: Vec<Threshold>,
}

impl BandTable {
    /// Parses and checks a table in the format of the files under `bands/`.
    pub fn from_json(json: &str) -> Result<BandTable, InvalidBandTable> {
        let table: BandTable = serde_json::from_str(json).map_err(InvalidBandTable::Syntax)?;
        table.check()?;
        Ok(table)
    }

    /// The table's name, e.g. `seed-2023`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A human title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Where the edges come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How the table departs from its source, and why.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// All rows, in file order.
    pub fn thresholds(&self) -> &[Threshold] {
        &self.thresholds
    }

    /// The band of `value`, a measurement of `metric` in the metric's unit.
    pub fn classify(&self, metric: Metric, value: f64) -> Band {
        self.rows(metric).find(|row| row.comparison.holds(value, row.edge)).map_or(Band::Low, |row| row.band)
    }

    fn rows(&self, metric: Metric) -> impl Iterator<Item = &Threshold> {
        self.thresholds.iter().filter(move |row| row.metric == metric)
    }

    fn check(&self) -> Result<(), InvalidBandTable> {
        for metric in Metric::ALL {
            let mut previous: Option<&Threshold> = None;
            for row in self.rows(metric) {
                let problem = if !row.edge.is_finite() {
                    Some("its value is not a finite number")
                } else if row.band == Band::Low {
                    Some("low is what matches no row and takes no row of its own")
                } else if row.comparison.is_lower_bound() != metric.higher_is_better() {
                    Some("its comparison points the way the metric gets worse")
                } else if previous.is_some_and(|p| p.band >= row.band) {
                    Some("it does not come after the rows of better bands")
                } else if previous.is_some_and(|p| backwards(metric, p.edge, row.edge)) {
                    Some("its edge is better than the edge of a better band")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(InvalidBandTable::Row { metric, band: row.band, problem });
                }
                previous = Some(row);
            }
            if previous.is_none() {
                return Err(InvalidBandTable::MissingMetric(metric));
            }
        }
        Ok(())
    }
}

/// Whether a worse band's edge lies beyond a better band's edge, which would leave the worse
/// band unreachable for some values it claims.
fn backwards(metric: Metric, better: f64, worse: f64) -> bool {
    if metric.higher_is_better() { worse > better } else { worse < better }
}

/// A band table file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBandTable {
    #[error("not a band table")]
    Syntax(#[source] serde_json::Error),
    #[error("no thresholds for {0}")]
    MissingMetric(Metric),
    #[error("the {metric} row for {band}: {problem}")]
    Row { metric: Metric, band: Band, problem: &'static str },
}

/// A band table name that is not embedded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown band table `{name}` (known: {})", known.join(", "))]
pub struct UnknownBands {
    pub name: String,
    pub known: Vec<String>,
}

/// The embedded table called `name`.
pub fn table(name: &str) -> Result<&'static BandTable, UnknownBands> {
    TABLES
        .iter()
        .find(|table| table.name == name)
        .ok_or_else(|| UnknownBands { name: name.to_owned(), known: names().map(str::to_owned).collect() })
}

/// The table used when none is named ([`DEFAULT`]).
pub fn default_table() -> &'static BandTable {
    table(DEFAULT).expect("the default band table is embedded")
}

/// The names of the embedded tables.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(name, _)| *name)
}

fn number_or_fraction<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Edge {
        Number(f64),
        Fraction(String),
    }
    match Edge::deserialize(deserializer)? {
        Edge::Number(n) => Ok(n),
        Edge::Fraction(s) => parse_fraction(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is neither a number nor a fraction like 1/7"))),
    }
}

fn parse_fraction(s: &str) -> Option<f64> {
    let (numerator, denominator) = s.split_once('/')?;
    let numerator: f64 = numerator.trim().parse().ok()?;
    let denominator: f64 = denominator.trim().parse().ok()?;
    (denominator != 0.0).then(|| numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_parse_and_are_well_formed() {
        for name in names() {
            assert_eq!(table(name).unwrap().name(), name);
        }
        assert_eq!(default_table().name(), DEFAULT);
    }

    #[test]
    fn unknown_table_lists_the_known_ones() {
        let err = table("dora-1999").unwrap_err();
        assert_eq!(err.to_string(), "unknown band table `dora-1999` (known: seed-2023, dora-2024)");
    }

    #[test]
    fn fractions_are_exact_quotients() {
        assert_eq!(parse_fraction("1/7"), Some(1.0 / 7.0));
        assert_eq!(parse_fraction(" 1 / 30 "), Some(1.0 / 30.0));
        assert_eq!(parse_fraction("1/0"), None);
        assert_eq!(parse_fraction("7"), None);
    }

    fn check_invalid(rows: &str, expected: &str) {
        let all = r#"
            { "metric": "deployment_frequency", "band": "elite", "comparison": ">", "value": 1 },
            { "metric": "lead_time", "band": "elite", "comparison": "<", "value": 1 },
            { "metric": "change_failure_rate", "band": "elite", "comparison": "<", "value": 1 },
            { "metric": "recovery_time", "band": "elite", "comparison": "<", "value": 1 }"#;
        let json = format!(r#"{{ "name": "t", "title": "t", "source": "t", "thresholds": [{all}{rows}] }}"#);
        let err = BandTable::from_json(&json).map(|_| ()).unwrap_err();
        assert_eq!(err.to_string(), expected, "rows: {rows}");
    }

    #[test]
    fn malformed_tables_are_refused() {
        check_invalid(
            r#", { "metric": "lead_time", "band": "low", "comparison": "<", "value": 9 }"#,
            "the lead_time row for low: low is what matches no row and takes no row of its own",
        );
        check_invalid(
            r#", { "metric": "lead_time", "band": "high", "comparison": ">", "value": 9 }"#,
            "the lead_time row for high: its comparison points the way the metric gets worse",
        );
        check_invalid(
            r#", { "metric": "lead_time", "band": "elite", "comparison": "<", "value": 9 }"#,
            "the lead_time row for elite: it does not come after the rows of better bands",
        );
        check_invalid(
            r#", { "metric": "lead_time", "band": "high", "comparison": "<", "value": 0.5 }"#,
            "the lead_time row for high: its edge is better than the edge of a better band",
        );
        check_invalid(
            r#", { "metric": "deployment_frequency", "band": "high", "comparison": ">=", "value": "2/1" }"#,
            "the deployment_frequency row for high: its edge is better than the edge of a better band",
        );
        let missing = r#"{ "name": "t", "title": "t", "source": "t", "thresholds": [] }"#;
        assert_eq!(BandTable::from_json(missing).unwrap_err().to_string(), "no thresholds for deployment_frequency");
    }
}
