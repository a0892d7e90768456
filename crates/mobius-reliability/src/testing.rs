//! Helpers shared by the unit tests of several modules.

use jiff::Timestamp;
use mobius_deploy::rollout::{Deployed, Plan, Rollout};
use mobius_deploy::spec::ServiceSpec;
use mobius_store::{RolloutRow, Store};

use mobius_deploy::rollout::Stored;

/// Records that `yaml`'s service was deployed (as `v1`, to its first environment, finished
/// at `now`), so its SLOs are defined.
pub(crate) fn deployed(store: &dyn Store, yaml: &str, now: Timestamp) {
    let spec = ServiceSpec::parse("mobius.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
    let environment = &spec.environments.value[0];
    let new = Deployed {
        version: "v1".into(),
        release: "/nowhere".into(),
        artifact: None,
        revision: None,
        instances: Vec::new(),
    };
    let rollout = Rollout::new(spec.name(), environment, Plan::Rolling, 1, None, new, now);
    let body =
        serde_json::to_string(&Stored { rollout, spec: yaml.to_owned(), stable_spec: None, host: None }).unwrap();
    store
        .save_rollout(&RolloutRow {
            id: 0,
            service: spec.name().to_owned(),
            environment: environment.name.value.clone(),
            phase: "succeeded".into(),
            active: false,
            body,
            created: now,
            updated: now,
        })
        .unwrap();
}
