//! The deployer's [`ReleaseFlags`] port over the flag sets: a release's flag files go into
//! their sets (`<file's set>.<environment>`, see `mobius_features::names`) when its rollout
//! starts, as changes by whoever deployed, through the flag rollouts (`Rollouts::load`), so a
//! file's `rollout` blocks start, judged by the deployed service. The deploy's gate decided
//! them: they go through handles that ask no gate policy again (`decided`). Wired here, in the
//! composition root, so neither `mobius-delivery` nor `mobius-features` depends on the other.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use mobius_delivery::flags::{FlagFile, FlagFilesError, FlagsFuture, Loading, ReleaseFlags, SetNow};
use mobius_features::plan::BlockOutcome;
use mobius_features::rollout::{RolloutError, Rollouts};
use mobius_features::{Actor, FlagError, FlagSets, Put, names};

/// [`FlagSets`] as the deployer sees them.
pub struct ReleaseFlagSets {
    sets: FlagSets,
    /// Set once the rollouts exist: they are built over the deployer this port is part of.
    rollouts: Arc<OnceLock<Rollouts>>,
}

impl ReleaseFlagSets {
    pub fn new(sets: FlagSets, rollouts: Arc<OnceLock<Rollouts>>) -> ReleaseFlagSets {
        ReleaseFlagSets { sets, rollouts }
    }
}

impl ReleaseFlags for ReleaseFlagSets {
    fn check<'a>(&'a self, files: &'a [FlagFile], environment: &'a str) -> FlagsFuture<'a> {
        Box::pin(async move {
            let mut sets = BTreeSet::new();
            for file in files {
                let set = names::release_set_name(&file.base, environment);
                names::check_set(&set).map_err(|e| refused(file, e))?;
                if !sets.insert(set.clone()) {
                    let message = format!("another flag file of the release is loaded into the set `{set}` too");
                    return Err(FlagFilesError::Invalid { path: file.path.clone(), message });
                }
                if let Some(owner) = self.sets.current(&set).and_then(|loaded| loaded.environment.clone())
                    && owner != environment
                {
                    let error = FlagError::OtherEnvironment { set, stored: owner, asked: environment.to_owned() };
                    return Err(refused(file, error));
                }
            }
            Ok(())
        })
    }

    fn load<'a>(&'a self, files: &'a [FlagFile], to: Loading<'a>) -> FlagsFuture<'a> {
        Box::pin(async move {
            for file in files {
                let put = Put {
                    set: names::release_set_name(&file.base, to.environment),
                    document: file.text.clone(),
                    environment: Some(to.environment.to_owned()),
                    expected: None,
                    source_name: Some(file.path.clone()),
                };
                let actor = Actor { by: to.by.to_owned(), reason: Some(to.reason.to_owned()) };
                // A release's files were decided with its deploy; GitOps's are asked here.
                let rollouts = self.rollouts.get().map(|r| if to.decided { r.decided() } else { r.clone() });
                let Some(rollouts) = rollouts else {
                    let sets = if to.decided { self.sets.decided() } else { self.sets.clone() };
                    sets.put(put, actor).await.map_err(|e| refused(file, e))?;
                    continue;
                };
                let set = put.set.clone();
                let loading = rollouts.load(put, actor, Some(to.service), to.exception).await.map_err(|e| match e {
                    RolloutError::Flag(flag) => refused(file, flag),
                    other => FlagFilesError::Failed { path: file.path.clone(), source: Box::new(other) },
                })?;
                for (flag, outcome) in &loading.rollouts {
                    if let BlockOutcome::Started(r) = outcome {
                        tracing::info!(%set, %flag, weight = r.weight, to = r.to, "the release's flag file started a rollout");
                    }
                }
            }
            Ok(())
        })
    }

    fn current(&self, file: &FlagFile, environment: &str) -> SetNow {
        let set = names::release_set_name(&file.base, environment);
        let loaded = self.sets.current(&set);
        SetNow { version: loaded.as_ref().map(|l| l.version), updated_by: loaded.map(|l| l.updated_by.clone()), set }
    }
}

/// A flag set's refusal as the deployer's, naming the file.
fn refused(file: &FlagFile, error: FlagError) -> FlagFilesError {
    let path = file.path.clone();
    match error {
        FlagError::BadName { .. }
        | FlagError::BadEnvironment { .. }
        | FlagError::Invalid(_)
        | FlagError::TooLarge { .. }
        | FlagError::NoSet { .. }
        | FlagError::NoFlag { .. }
        | FlagError::NoVariant { .. }
        | FlagError::NoDefault { .. }
        | FlagError::VariantIsDefault { .. }
        | FlagError::BadWeight { .. }
        | FlagError::BadRollout { .. } => FlagFilesError::Invalid { path, message: error.to_string() },
        FlagError::VersionConflict { .. }
        | FlagError::OtherEnvironment { .. }
        | FlagError::Contended { .. }
        | FlagError::TargetingInUse { .. }
        | FlagError::PolicyDenied { .. } => FlagFilesError::Conflict { path, message: error.to_string() },
        FlagError::Event(_) | FlagError::Store(_) => FlagFilesError::Failed { path, source: Box::new(error) },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mobius_events::materialise::Rules;
    use mobius_log::blocking::Guarded;
    use mobius_log::{Clock, Ingestor};
    use mobius_store::{SqliteStore, Store};

    use super::*;

    const DOCUMENT: &str = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}"#;

    fn file(base: &str) -> FlagFile {
        FlagFile { path: format!("flags/{base}.flagd.json"), base: base.into(), text: DOCUMENT.into() }
    }

    #[tokio::test]
    async fn a_release_cannot_take_another_environments_set_or_load_two_files_into_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(Guarded(Arc::new(SqliteStore::open(dir.path()).unwrap())));
        let sets = FlagSets::new(store.clone(), Ingestor::new(store, Rules::default()), Clock::System);
        let port = ReleaseFlagSets::new(sets.clone(), Arc::default());
        // A set named as production's would be, made by hand for staging.
        let by_hand = Put {
            set: "shop.production".into(),
            document: DOCUMENT.into(),
            environment: Some("staging".into()),
            expected: None,
            source_name: None,
        };
        sets.put(by_hand, Actor { by: "alice".into(), reason: None }).await.unwrap();
        let refused = port.check(&[file("shop")], "production").await.unwrap_err();
        assert!(matches!(refused, FlagFilesError::Conflict { .. }), "{refused}");
        assert_eq!(
            refused.to_string(),
            "flags/shop.flagd.json: flag set `shop.production` belongs to environment `staging`, not `production`"
        );
        let twice = port.check(&[file("banner"), file("banner")], "production").await.unwrap_err();
        assert!(matches!(twice, FlagFilesError::Invalid { .. }), "{twice}");
        let bad_name = port.check(&[file("sh op")], "production").await.unwrap_err();
        assert!(matches!(bad_name, FlagFilesError::Invalid { .. }), "{bad_name}");

        port.check(&[file("banner")], "production").await.unwrap();
        let to = |reason| Loading {
            environment: "production",
            service: "shop",
            by: "bot",
            reason,
            exception: None,
            decided: true,
        };
        port.load(&[file("banner")], to("deploy of shop v1 to production")).await.unwrap();
        let loaded = sets.current("banner.production").unwrap();
        assert_eq!((loaded.environment.as_deref(), loaded.updated_by.as_str()), (Some("production"), "bot"));
        let refused = port.load(&[file("shop")], to("deploy")).await.unwrap_err();
        assert!(matches!(refused, FlagFilesError::Conflict { .. }), "the load refuses what the check would");
    }
}
