//! Converting OpenSLO documents to the SLOs Mobius evaluates (see the parent module's docs
//! for what converts).

use super::*;
use crate::spec::Invalid;

/// Why an OpenSLO SLO cannot be a Mobius SLO: every reason found, in the order of the SLO's
/// fields, shown joined with `; `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Unconvertible {
    /// At least one.
    pub reasons: Vec<Unsupported>,
}

/// One reason an OpenSLO SLO cannot be evaluated by Mobius.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unsupported {
    /// An indicator per objective.
    #[error("composite SLOs (an indicator per objective) are not supported")]
    Composite,
    /// More than one objective (or none).
    #[error("{count} objectives: a Mobius SLO has one (write one SLO per objective)")]
    ObjectiveCount { count: usize },
    /// A calendar-aligned window.
    #[error("calendar window of {duration}: Mobius windows are rolling")]
    CalendarWindow { duration: String },
    /// A window in months, quarters or years.
    #[error("timeWindow {duration}: months, quarters and years are calendar lengths, not a rolling window")]
    CalendarLength { duration: String },
    /// A window that is not a duration.
    #[error("timeWindow `{duration}` is not a duration like 28d, 2w or 12h")]
    NotADuration { duration: String },
    /// Time slices rather than events.
    #[error("budgetingMethod {method:?}: Mobius budgets are request-weighted (Occurrences)")]
    BudgetingMethod { method: BudgetingMethod },
    /// `indicatorRef` names no SLI of the set.
    #[error("indicatorRef `{name}`: no SLI of that name in the same set")]
    UnknownSli { name: String },
    /// A threshold on a metric's value.
    #[error(
        "thresholdMetric SLIs (a bound on a metric's value) are not supported: use a ratioMetric of good or bad and total events"
    )]
    ThresholdMetric,
    /// A precomputed ratio.
    #[error("raw ratioMetric (a precomputed ratio) is not supported: Mobius needs good or bad and total event counts")]
    RawRatio,
    /// A ratio without its parts.
    #[error("ratioMetric needs good or bad, and total")]
    IncompleteRatio,
    /// The parts of the ratio are asked of two servers.
    #[error("the ratio's queries go to two Prometheus servers ({first} and {second})")]
    TwoServers { first: String, second: String },
    /// `metricSourceRef` names no data source of the set.
    #[error("metricSourceRef `{name}`: no DataSource of that name in the same set")]
    UnknownDataSource { name: String },
    /// A source Mobius does not query.
    #[error("metricSource type `{source_type}`: Mobius queries Prometheus only")]
    NotPrometheus { source_type: String },
    /// A Prometheus source without its server.
    #[error("a Prometheus metricSource needs metricSourceRef to a DataSource with `connectionDetails.url`")]
    NoUrl,
    /// A Prometheus source without its query.
    #[error("a Prometheus metricSource needs `spec.query`")]
    NoQuery,
    /// A query Mobius cannot put a window in.
    #[error(
        "query `{query}` has no `{{{{window}}}}` placeholder and is not a plain counter selector (`counter: true`)"
    )]
    Unwindowed { query: String },
    /// Nothing says what to count, or against which objective or window.
    #[error("the SLO has no objective, window or indicator")]
    Incomplete,
    /// The converted SLO breaks a rule of Mobius SLOs.
    #[error(transparent)]
    Invalid(Invalid),
}

impl From<Unsupported> for Unconvertible {
    fn from(reason: Unsupported) -> Unconvertible {
        Unconvertible { reasons: vec![reason] }
    }
}

/// Each `SLO` of `docs`, in order, as a Mobius SLO or the reasons it cannot be one. The service
/// an SLO belongs to is its `spec.service`: zip the result with the `Document::Slo`s of `docs`.
pub fn to_slos(docs: &[Document]) -> Vec<Result<SloSpec, Unconvertible>> {
    docs.iter()
        .filter_map(|d| match d {
            Document::Slo(slo) => Some(convert(slo, docs)),
            _ => None,
        })
        .collect()
}

fn convert(slo: &Object<SloBody>, docs: &[Document]) -> Result<SloSpec, Unconvertible> {
    let spec = &slo.spec;
    let mut reasons: Vec<Unsupported> = Vec::new();

    let objective = match spec.objectives.value.as_slice() {
        [one] if one.indicator.is_some() || one.indicator_ref.is_some() => {
            reasons.push(Unsupported::Composite);
            None
        }
        [one] => one
            .target_percent
            .as_ref()
            .map(|p| p.value)
            .or_else(|| one.target.as_ref().map(|t| t.value * 100.0))
            // 0.999 * 100 is 99.89999999999999 in binary floating point.
            .map(|p| (p * 1e9).round() / 1e9),
        many => {
            reasons.push(Unsupported::ObjectiveCount { count: many.len() });
            None
        }
    };

    let window = match spec.time_window.value.as_slice() {
        [w] if w.calendar.is_some() || w.is_rolling == Some(false) => {
            reasons.push(Unsupported::CalendarWindow { duration: w.duration.value.clone() });
            None
        }
        [w] => match duration(&w.duration.value) {
            Ok(window) => Some(window),
            Err(reason) => {
                reasons.push(reason);
                None
            }
        },
        _ => None,
    };

    match spec.budgeting_method {
        BudgetingMethod::Occurrences => {}
        method => reasons.push(Unsupported::BudgetingMethod { method }),
    }

    let indicator = match (&spec.indicator, &spec.indicator_ref) {
        (Some(inline), _) => Some(&inline.spec),
        (None, Some(name)) => {
            let found = docs.iter().find_map(|d| match d {
                Document::Sli(sli) if sli.metadata.name.value == *name => Some(&sli.spec),
                _ => None,
            });
            if found.is_none() {
                reasons.push(Unsupported::UnknownSli { name: name.clone() });
            }
            found
        }
        (None, None) => None,
    };
    let sli = indicator.and_then(|indicator| match prometheus_sli(indicator, docs) {
        Ok(sli) => Some(sli),
        Err(reason) => {
            reasons.push(reason);
            None
        }
    });

    if !reasons.is_empty() {
        return Err(Unconvertible { reasons });
    }
    let (Some(objective), Some(window), Some(sli)) = (objective, window, sli) else {
        return Err(Unsupported::Incomplete.into());
    };
    let converted = SloSpec {
        name: unspanned(slo.metadata.name.value.clone()),
        description: spec.description.clone().or_else(|| slo.metadata.display_name.clone()),
        objective: unspanned(objective),
        window: unspanned(window),
        sli: Sli::Prometheus(sli),
        environment: None,
        policy: spec::Policy::default(),
        alerting: None,
    };
    converted.check().map_err(Unsupported::Invalid)?;
    Ok(converted)
}

/// An OpenSLO duration-shorthand as a rolling window; months, quarters and years are not a
/// fixed length.
fn duration(text: &str) -> Result<Window, Unsupported> {
    let unit_ok = text.ends_with(['m', 'h', 'd', 'w']);
    match Window::parse(text) {
        Some(window) if unit_ok => Ok(window),
        _ if text.ends_with(['M', 'Q', 'Y']) => Err(Unsupported::CalendarLength { duration: text.to_owned() }),
        _ => Err(Unsupported::NotADuration { duration: text.to_owned() }),
    }
}

fn prometheus_sli(sli: &SliBody, docs: &[Document]) -> Result<PrometheusSli, Unsupported> {
    let Some(ratio) = &sli.ratio_metric else {
        return Err(Unsupported::ThresholdMetric);
    };
    if ratio.raw.is_some() {
        return Err(Unsupported::RawRatio);
    }
    // `counter` is optional in OpenSLO; absent means the metric is not a counter.
    let counter = ratio.counter.unwrap_or(false);
    let (Some(total), Some(part)) = (&ratio.total, ratio.good.as_ref().or(ratio.bad.as_ref())) else {
        return Err(Unsupported::IncompleteRatio);
    };
    let (part_url, part_query) = prometheus_query(&part.metric_source, counter, docs)?;
    let (url, total_query) = prometheus_query(&total.metric_source, counter, docs)?;
    if part_url != url {
        return Err(Unsupported::TwoServers { first: part_url, second: url });
    }
    let part_query = Some(unspanned(part_query));
    let (good_query, error_query) = if ratio.good.is_some() { (part_query, None) } else { (None, part_query) };
    Ok(PrometheusSli { url: unspanned(url), good_query, error_query, total_query: unspanned(total_query) })
}

/// The Prometheus URL and windowed query of a metric source.
fn prometheus_query(source: &MetricSource, counter: bool, docs: &[Document]) -> Result<(String, String), Unsupported> {
    let data_source = match &source.metric_source_ref {
        Some(name) => Some(
            docs.iter()
                .find_map(|d| match d {
                    Document::DataSource(ds) if ds.metadata.name.value == *name => Some(&ds.spec),
                    _ => None,
                })
                .ok_or_else(|| Unsupported::UnknownDataSource { name: name.clone() })?,
        ),
        None => None,
    };
    let source_type = source.source_type.as_deref().or(data_source.map(|d| d.source_type.as_str())).unwrap_or("none");
    if !source_type.eq_ignore_ascii_case("prometheus") {
        return Err(Unsupported::NotPrometheus { source_type: source_type.to_owned() });
    }
    let url = data_source
        .and_then(|d| ["url", "address"].iter().find_map(|k| d.connection_details.get(k)?.as_str()))
        .ok_or(Unsupported::NoUrl)?;
    let query = source.spec.get("query").and_then(|q| q.as_str()).ok_or(Unsupported::NoQuery)?;
    let query = query.trim();
    if spec::has_window_placeholder(query) {
        Ok((url.to_owned(), query.to_owned()))
    } else if counter && plain_selector(query) {
        Ok((url.to_owned(), format!("sum(increase({query}[{{{{window}}}}]))")))
    } else {
        Err(Unsupported::Unwindowed { query: query.to_owned() })
    }
}

/// `metric` or `metric{label matchers}`: something a range can follow.
fn plain_selector(query: &str) -> bool {
    let name_end = query.find('{').unwrap_or(query.len());
    let (name, matchers) = query.split_at(name_end);
    let name_ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    name_ok && (matchers.is_empty() || (matchers.ends_with('}') && matchers.matches('{').count() == 1))
}
