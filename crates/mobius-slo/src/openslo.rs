//! OpenSLO v1 files (`apiVersion: openslo/v1`): every kind read into a typed [`Document`], and
//! the SLOs Mobius can evaluate converted to [`SloSpec`].
//!
//! A file is a stream of YAML documents separated by `---`; each document is one object or a
//! list of objects. Unknown keys are errors at their position, except where OpenSLO leaves the
//! content open: `metricSource.spec` (the query fields of a data source) and
//! `DataSource.connectionDetails`.
//!
//! What converts: an `SLO` with a `ratioMetric` SLI (inline `indicator`, or `indicatorRef` to an
//! `SLI` of the same set) whose `good` or `bad` and `total` sources are Prometheus queries
//! (`metricSourceRef` to a `DataSource` of type Prometheus with `connectionDetails.url`), one
//! objective (`target` 0.999 → 99.9, or `targetPercent`), a rolling `timeWindow` of minutes,
//! hours, days or weeks, and the `Occurrences` budgeting method (Mobius budgets are
//! request-weighted). A query is used as written when it holds `{{window}}`; a `counter: true`
//! metric that is a plain selector becomes `sum(increase(SELECTOR[{{window}}]))`. Anything else
//! is refused with the reason.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::spec::{self, PrometheusSli, Sli, SloSpec, Window, unspanned};

/// Why an OpenSLO file was refused: `file:line:col: message`.
pub use crate::spec::SpecError as Error;
pub use convert::{Unconvertible, Unsupported, to_slos};

mod convert;

/// The only version read.
pub const API_VERSION: &str = "openslo/v1";

/// The kinds of OpenSLO v1.
pub const KINDS: &[&str] =
    &["SLO", "SLI", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget", "Service"];

/// One OpenSLO object.
// Objects are parsed once per file and kept few; boxing the SLO variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Slo(Object<SloBody>),
    Sli(Object<SliBody>),
    DataSource(Object<DataSourceBody>),
    AlertPolicy(Object<AlertPolicyBody>),
    AlertCondition(Object<AlertConditionBody>),
    AlertNotificationTarget(Object<AlertNotificationTargetBody>),
    Service(Object<ServiceBody>),
}

impl Document {
    /// The object's `kind`, as written in OpenSLO.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Slo(_) => "SLO",
            Document::Sli(_) => "SLI",
            Document::DataSource(_) => "DataSource",
            Document::AlertPolicy(_) => "AlertPolicy",
            Document::AlertCondition(_) => "AlertCondition",
            Document::AlertNotificationTarget(_) => "AlertNotificationTarget",
            Document::Service(_) => "Service",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Document::Slo(o) => &o.metadata,
            Document::Sli(o) => &o.metadata,
            Document::DataSource(o) => &o.metadata,
            Document::AlertPolicy(o) => &o.metadata,
            Document::AlertCondition(o) => &o.metadata,
            Document::AlertNotificationTarget(o) => &o.metadata,
            Document::Service(o) => &o.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        &self.metadata().name.value
    }
}

/// An object: its metadata and its kind's `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<S> {
    pub metadata: Metadata,
    pub spec: S,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: Spanned<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, LabelValue>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A label's value: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LabelValue {
    One(String),
    Many(Vec<String>),
}

/// `kind: Service`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceBody {
    #[serde(default)]
    pub description: Option<String>,
}

/// `kind: DataSource`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSourceBody {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub source_type: String,
    /// Whatever the data source needs (free-form in OpenSLO).
    #[serde(default)]
    pub connection_details: serde_json::Value,
}

/// `kind: SLO`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SloBody {
    #[serde(default)]
    pub description: Option<String>,
    pub service: String,
    #[serde(default)]
    pub indicator: Option<InlineSli>,
    #[serde(default)]
    pub indicator_ref: Option<String>,
    pub time_window: Spanned<Vec<TimeWindow>>,
    pub budgeting_method: BudgetingMethod,
    pub objectives: Spanned<Vec<Objective>>,
    /// `alertPolicies:` with nothing after it reads as none.
    #[serde(default)]
    pub alert_policies: Option<Vec<AlertPolicyEntry>>,
}

/// An SLI written inside an SLO (or an objective of a composite SLO).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InlineSli {
    pub metadata: Metadata,
    pub spec: SliBody,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeWindow {
    /// `<int><m|h|d|w|M|Q|Y>`.
    pub duration: Spanned<String>,
    #[serde(default)]
    pub is_rolling: Option<bool>,
    #[serde(default)]
    pub calendar: Option<Calendar>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Calendar {
    pub start_time: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum BudgetingMethod {
    /// Good events ÷ all events: what Mobius computes.
    Occurrences,
    /// Good time slices ÷ all time slices.
    Timeslices,
    /// The average of the time slices' ratios.
    RatioTimeslices,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objective {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub op: Option<Operator>,
    #[serde(default)]
    pub value: Option<f64>,
    /// A fraction in [0, 1).
    #[serde(default)]
    pub target: Option<Spanned<f64>>,
    /// A percentage in [0, 100).
    #[serde(default)]
    pub target_percent: Option<Spanned<f64>>,
    #[serde(default)]
    pub time_slice_target: Option<f64>,
    /// A duration, or a number of minutes.
    #[serde(default)]
    pub time_slice_window: Option<serde_json::Value>,
    #[serde(default)]
    pub indicator: Option<InlineSli>,
    #[serde(default)]
    pub indicator_ref: Option<String>,
    #[serde(default)]
    pub composite_weight: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Lte,
    Gte,
    Lt,
    Gt,
}

/// `kind: SLI`: a threshold metric or a ratio metric.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SliBody {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub threshold_metric: Option<MetricSpec>,
    #[serde(default)]
    pub ratio_metric: Option<RatioMetric>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatioMetric {
    #[serde(default)]
    pub counter: Option<bool>,
    #[serde(default)]
    pub good: Option<MetricSpec>,
    #[serde(default)]
    pub bad: Option<MetricSpec>,
    #[serde(default)]
    pub total: Option<MetricSpec>,
    #[serde(default)]
    pub raw: Option<MetricSpec>,
    #[serde(default)]
    pub raw_type: Option<RawType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawType {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    pub metric_source: MetricSource,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSource {
    /// The name of a `DataSource` object.
    #[serde(default)]
    pub metric_source_ref: Option<String>,
    #[serde(default, rename = "type")]
    pub source_type: Option<String>,
    /// The query fields of the source (free-form in OpenSLO; Prometheus uses `query`).
    #[serde(default)]
    pub spec: serde_json::Value,
}

/// `kind: AlertPolicy`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertPolicyBody {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub alert_when_no_data: Option<bool>,
    #[serde(default)]
    pub alert_when_resolved: Option<bool>,
    #[serde(default)]
    pub alert_when_breaching: Option<bool>,
    #[serde(default = "no_conditions")]
    pub conditions: Spanned<Vec<ConditionEntry>>,
    #[serde(default)]
    pub notification_targets: Vec<TargetEntry>,
}

fn no_conditions() -> Spanned<Vec<ConditionEntry>> {
    unspanned(Vec::new())
}

/// An alert policy in an SLO: a reference, or written inline (`kind: AlertPolicy`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertPolicyEntry {
    #[serde(default)]
    pub alert_policy_ref: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub spec: Option<AlertPolicyBody>,
}

/// A condition in an alert policy: a reference, or written inline (`kind: AlertCondition`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionEntry {
    #[serde(default)]
    pub condition_ref: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub spec: Option<AlertConditionBody>,
}

/// A notification target in an alert policy: a reference, or inline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetEntry {
    #[serde(default)]
    pub target_ref: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub spec: Option<AlertNotificationTargetBody>,
}

/// `kind: AlertCondition`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertConditionBody {
    #[serde(default)]
    pub description: Option<String>,
    /// Free text, e.g. `page`.
    pub severity: String,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// `burnrate`.
    pub kind: String,
    pub op: Operator,
    pub threshold: f64,
    pub lookback_window: String,
    #[serde(default)]
    pub alert_after: Option<String>,
}

/// `kind: AlertNotificationTarget`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertNotificationTargetBody {
    #[serde(default)]
    pub description: Option<String>,
    /// e.g. `slack`, `email`.
    pub target: String,
}

/// One YAML document: an object, a list of objects, or nothing.
struct Entry(Vec<Document>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Entry, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OpenSLO object or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                Ok(Entry(vec![read_object(map)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                let mut documents = Vec::new();
                while let Some(document) = seq.next_element::<Document>()? {
                    documents.push(document);
                }
                Ok(Entry(documents))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry(Vec::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry(Vec::new()))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Document, D::Error> {
        struct DocumentVisitor;
        impl<'de> Visitor<'de> for DocumentVisitor {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OpenSLO object (apiVersion, kind, metadata, spec)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Document, A::Error> {
                read_object(map)
            }
        }
        deserializer.deserialize_map(DocumentVisitor)
    }
}

/// The spec of one of the kinds, read once `kind` is known.
#[allow(clippy::large_enum_variant)]
enum Body {
    Slo(SloBody),
    Sli(SliBody),
    DataSource(DataSourceBody),
    AlertPolicy(AlertPolicyBody),
    AlertCondition(AlertConditionBody),
    AlertNotificationTarget(AlertNotificationTargetBody),
    Service(ServiceBody),
}

/// `apiVersion`, checked where it is read so that its error points at the value.
struct ApiVersion;

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ApiVersion, D::Error> {
        let version = String::deserialize(deserializer)?;
        if version != API_VERSION {
            return Err(de::Error::custom(format!(
                "`apiVersion`: `{version}` is not `{API_VERSION}` (the only version Mobius reads)"
            )));
        }
        Ok(ApiVersion)
    }
}

/// `kind`, checked where it is read.
struct Kind(String);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kind, D::Error> {
        let kind = String::deserialize(deserializer)?;
        if !KINDS.contains(&kind.as_str()) {
            // A custom error, not `unknown_variant`, so that the YAML library places it at
            // the value rather than at the key.
            return Err(de::Error::custom(format!("unknown kind `{kind}`, expected one of {}", KINDS.join(", "))));
        }
        Ok(Kind(kind))
    }
}

/// Reads `apiVersion`, `kind`, `metadata` and `spec`, typing `spec` by `kind` (which must come
/// before it, as it does in every OpenSLO file).
fn read_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Document, A::Error> {
    const FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
    let (mut api_version, mut kind, mut metadata, mut body) = (false, None::<String>, None, None);
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            "apiVersion" => {
                map.next_value::<ApiVersion>()?;
                api_version = true;
            }
            "kind" => {
                kind = Some(map.next_value::<Kind>()?.0);
            }
            "metadata" => metadata = Some(map.next_value::<Metadata>()?),
            "spec" => {
                let Some(kind) = &kind else {
                    return Err(de::Error::custom("`kind` must come before `spec`"));
                };
                body = Some(match kind.as_str() {
                    "SLO" => Body::Slo(map.next_value()?),
                    "SLI" => Body::Sli(map.next_value()?),
                    "DataSource" => Body::DataSource(map.next_value()?),
                    "AlertPolicy" => Body::AlertPolicy(map.next_value()?),
                    "AlertCondition" => Body::AlertCondition(map.next_value()?),
                    "AlertNotificationTarget" => Body::AlertNotificationTarget(map.next_value()?),
                    _ => Body::Service(map.next_value()?),
                });
            }
            other => return Err(de::Error::unknown_field(other, FIELDS)),
        }
    }
    if !api_version {
        return Err(de::Error::missing_field("apiVersion"));
    }
    let metadata = metadata.ok_or_else(|| de::Error::missing_field("metadata"))?;
    let body = body.ok_or_else(|| de::Error::missing_field("spec"))?;
    Ok(match body {
        Body::Slo(spec) => Document::Slo(Object { metadata, spec }),
        Body::Sli(spec) => Document::Sli(Object { metadata, spec }),
        Body::DataSource(spec) => Document::DataSource(Object { metadata, spec }),
        Body::AlertPolicy(spec) => Document::AlertPolicy(Object { metadata, spec }),
        Body::AlertCondition(spec) => Document::AlertCondition(Object { metadata, spec }),
        Body::AlertNotificationTarget(spec) => Document::AlertNotificationTarget(Object { metadata, spec }),
        Body::Service(spec) => Document::Service(Object { metadata, spec }),
    })
}

/// Reads every object of an OpenSLO v1 file (`file` names it in errors) and checks what serde
/// cannot: names, objective ranges, one time window, one indicator, good or bad.
pub fn parse_documents(file: &str, text: &str) -> Result<Vec<Document>, Error> {
    let entries: Vec<Entry> =
        serde_saphyr::from_multiple_with_options(text, spec::yaml_options()).map_err(|e| Error::from_yaml(file, &e))?;
    let documents: Vec<Document> = entries.into_iter().flat_map(|e| e.0).collect();
    for document in &documents {
        check(document).map_err(|e| Error::at(file, e.at, e.message))?;
    }
    Ok(documents)
}

fn check(document: &Document) -> Result<(), spec::Invalid> {
    let name = &document.metadata().name;
    let invalid = |at, message: String| spec::Invalid { at, message };
    if !rfc1123(&name.value) {
        return Err(invalid(
            name.referenced,
            format!("`metadata.name`: `{}` must be 1 to 63 lowercase letters, digits or `-`", name.value),
        ));
    }
    match document {
        Document::Slo(slo) => {
            let spec = &slo.spec;
            if spec.indicator.is_some() == spec.indicator_ref.is_some() {
                let composite =
                    spec.objectives.value.iter().any(|o| o.indicator.is_some() || o.indicator_ref.is_some());
                if !(composite && spec.indicator.is_none()) {
                    return Err(invalid(
                        name.referenced,
                        "an SLO has `indicator` or `indicatorRef`, not both nor neither".into(),
                    ));
                }
            }
            if spec.time_window.value.len() != 1 {
                return Err(invalid(
                    spec.time_window.referenced,
                    format!("`timeWindow` has {} items: OpenSLO v1 takes exactly one", spec.time_window.value.len()),
                ));
            }
            if spec.objectives.value.is_empty() {
                return Err(invalid(spec.objectives.referenced, "`objectives` is empty".into()));
            }
            for objective in &spec.objectives.value {
                if let Some(target) = &objective.target
                    && !(0.0..1.0).contains(&target.value)
                {
                    return Err(invalid(target.referenced, format!("`target`: {} is not in [0, 1)", target.value)));
                }
                if let Some(percent) = &objective.target_percent
                    && !(0.0..100.0).contains(&percent.value)
                {
                    return Err(invalid(
                        percent.referenced,
                        format!("`targetPercent`: {} is not in [0, 100)", percent.value),
                    ));
                }
                if objective.target.is_none() && objective.target_percent.is_none() {
                    return Err(invalid(
                        spec.objectives.referenced,
                        "an objective needs `target` or `targetPercent`".into(),
                    ));
                }
            }
            if let Some(indicator) = &spec.indicator {
                check_sli(&indicator.metadata.name, &indicator.spec)?;
            }
        }
        Document::Sli(sli) => check_sli(name, &sli.spec)?,
        Document::AlertPolicy(policy) if policy.spec.conditions.value.len() > 1 => {
            return Err(invalid(
                policy.spec.conditions.referenced,
                "`conditions` has more than one item: OpenSLO v1 takes at most one".into(),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn check_sli(name: &Spanned<String>, sli: &SliBody) -> Result<(), spec::Invalid> {
    let invalid =
        |message: &str| Err(spec::Invalid { at: name.referenced, message: format!("SLI `{}`: {message}", name.value) });
    match (&sli.threshold_metric, &sli.ratio_metric) {
        (Some(_), Some(_)) | (None, None) => invalid("has `thresholdMetric` or `ratioMetric`, not both nor neither"),
        (_, Some(ratio)) => match (&ratio.good, &ratio.bad, &ratio.total, &ratio.raw) {
            (Some(_), Some(_), _, _) => invalid("`ratioMetric` has `good` or `bad`, not both"),
            (None, None, _, None) => invalid("`ratioMetric` needs `good` or `bad` with `total`, or `raw`"),
            (Some(_), _, None, _) | (_, Some(_), None, _) => {
                invalid("`ratioMetric` needs `total` beside `good` or `bad`")
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn rfc1123(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
