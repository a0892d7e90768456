//! The flag rollouts' [`RolloutHealth`] port over what Mobius measures, wired here so that
//! `mobius-features` depends on neither delivery nor reliability:
//! - the variant's own SLIs: what the service's proxy counted for `<flag>=<variant>` since the
//!   step began (responses carrying `x-mobius-flag`), judged by the service's `analysis:`
//!   thresholds for the environment with the canary's `measure` — the default variant in the
//!   same window is the baseline a latency comparison uses;
//! - the service's SLOs: any SLO of the service that pages stops the rollout;
//! - the error-budget gate: `mobius_reliability::slo::gate`, the one a deploy goes through; a
//!   step let through a frozen budget as a `hotfix` or `security` exception is recorded as the
//!   same policy-exception event a deploy records.
//!
//! The proxy's counters are cumulative, so the reading at a step's start is kept here (in
//! memory: after a restart the first reading of the step is the baseline, and the window
//! starts again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use mobius_delivery::Deployer;
use mobius_deploy::analysis::{AnalysisSpec, Sample, Verdict as Measured, measure};
use mobius_deploy::rollout::Stored;
use mobius_deploy::spec::ServiceSpec;
use mobius_events::emit::delivery as emit;
use mobius_features::rollout::{FlagRollout, Gate, HealthError, RolloutHealth, Verdict};
use mobius_log::Ingestor;
use mobius_proxy::sli::VersionSli;
use mobius_reliability::alerting::Alerter;
use mobius_slo::alerts::Severity;
use mobius_slo::policy::Decision;
use mobius_store::{RolloutQuery, Store};

/// The environment a set that belongs to none is judged in.
const DEFAULT_ENVIRONMENT: &str = mobius_slo::spec::DEFAULT_ENVIRONMENT;

/// The port, over the store, the control plane's proxies and the SLO alerts.
pub struct MeasuredHealth {
    pub store: Arc<dyn Store>,
    /// Where a policy exception is recorded.
    pub log: Ingestor,
    pub delivery: Deployer,
    pub alerts: Alerter,
    /// The variant's and the default variant's counters at each step's start.
    baselines: Mutex<HashMap<Step, (VersionSli, VersionSli)>>,
}

/// A step of a rollout: its set, its flag and when the step began.
type Step = (String, String, Timestamp);

impl MeasuredHealth {
    pub fn new(store: Arc<dyn Store>, log: Ingestor, delivery: Deployer, alerts: Alerter) -> MeasuredHealth {
        MeasuredHealth { store, log, delivery, alerts, baselines: Mutex::new(HashMap::new()) }
    }

    /// The service's analysis settings for the environment, from its latest deployed
    /// `mobius.yaml`; the defaults when it has none there.
    fn analysis(&self, service: &str, environment: &str) -> Result<AnalysisSpec, HealthError> {
        let query = RolloutQuery {
            service: Some(service.to_owned()),
            environment: Some(environment.to_owned()),
            limit: 1,
            ..RolloutQuery::default()
        };
        let rows = self.store.rollouts(&query).map_err(|e| HealthError(Box::new(e)))?;
        let Some(row) = rows.first() else { return Ok(AnalysisSpec::default()) };
        let stored: Stored = serde_json::from_str(&row.body).map_err(|e| HealthError(Box::new(e)))?;
        let spec = ServiceSpec::parse("mobius.yaml", &stored.spec).map_err(|e| HealthError(Box::new(e)))?;
        Ok(match spec.environment(environment) {
            Some(env) => spec.analysis_for(env),
            None => spec.analysis.clone().unwrap_or_default(),
        })
    }
}

impl RolloutHealth for MeasuredHealth {
    fn verdict(&self, rollout: &FlagRollout, since: Timestamp, _now: Timestamp) -> Result<Verdict, HealthError> {
        let paging = self
            .alerts
            .views()
            .into_iter()
            .find(|view| view.service == rollout.service && view.firing == Some(Severity::Page));
        if let Some(view) = paging {
            return Ok(Verdict::Unhealthy(format!("SLO {} of {} pages", view.slo, view.service)));
        }
        let environment = rollout.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT);
        let live = tokio::runtime::Handle::current().block_on(self.delivery.live_slis(&rollout.service, environment));
        let Some(live) = live else { return Ok(Verdict::Healthy) };
        let of = |variant: &str| live.variants.get(&format!("{}={variant}", rollout.flag)).cloned().unwrap_or_default();
        let (variant, default) = (of(&rollout.variant), of(&rollout.default_variant));
        let key = (rollout.set.clone(), rollout.flag.clone(), since);
        let (base_variant, base_default) = {
            let mut baselines = self.baselines.lock().unwrap_or_else(|e| e.into_inner());
            // Only the current step of each rollout is kept.
            baselines.retain(|(set, flag, at), _| !(set == &rollout.set && flag == &rollout.flag && *at != since));
            baselines.entry(key).or_insert_with(|| (variant.clone(), default.clone())).clone()
        };
        let spec = self.analysis(&rollout.service, environment)?;
        let measured =
            measure(&spec, &sample(&variant.since(&base_variant)), Some(&sample(&default.since(&base_default))));
        if measured.verdict != Measured::Fail {
            return Ok(Verdict::Healthy);
        }
        let failed: Vec<String> = measured
            .checks
            .iter()
            .filter(|c| !c.passed && c.value.is_some())
            .map(|c| format!("{} {:.4} against {}", c.name, c.value.unwrap_or_default(), c.threshold))
            .collect();
        Ok(Verdict::Unhealthy(format!("variant {}={}: {}", rollout.flag, rollout.variant, failed.join(", "))))
    }

    fn gate(&self, rollout: &FlagRollout, weight: u32, now: Timestamp) -> Result<Gate, HealthError> {
        let (service, reason) = (rollout.service.as_str(), rollout.reason);
        let environment = rollout.environment.as_deref().unwrap_or(DEFAULT_ENVIRONMENT);
        let decision = mobius_reliability::slo::gate(self.store.as_ref(), service, environment, reason, now)
            .map_err(|e| HealthError(Box::new(e)))?;
        Ok(match decision {
            Decision::Refuse(message) => Gate::Refuse(message),
            Decision::AllowWithWarning(message) => {
                tracing::warn!(%service, %environment, "flag rollout step: {message}");
                Gate::Allow
            }
            Decision::AllowAsException { reason, message } => {
                // The deploy's own event, naming the step: the exception is audited alike.
                let what = format!(
                    "flag rollout of {}={} in set {} to {weight}%: {message}",
                    rollout.flag, rollout.variant, rollout.set
                );
                let event = emit::policy_exception(service, environment, &reason.to_string(), &what, now)
                    .map_err(|e| HealthError(Box::new(e)))?;
                self.log.append(&[event]).map_err(|e| HealthError(Box::new(e)))?;
                Gate::Allow
            }
            Decision::Allow => Gate::Allow,
        })
    }
}

/// A window of a variant's SLIs as the canary analysis reads one.
fn sample(sli: &VersionSli) -> Sample {
    Sample {
        requests: sli.requests,
        errors: sli.errors,
        latencies_ms: sli.recent_latencies_ms.clone(),
        p50_ms: sli.quantile_ms(0.5),
        p99_ms: sli.quantile_ms(0.99),
    }
}
