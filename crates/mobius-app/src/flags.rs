//! The deployer's [`ReleaseFlags`] port over the flag sets: a release's flag files go into
//! their sets (`<file's set>.<environment>`, see `mobius_features::names`) when its rollout
//! starts, as changes by whoever deployed. Wired here, in the composition root, so neither
//! `mobius-delivery` nor `mobius-features` depends on the other.

use std::collections::BTreeSet;

use mobius_delivery::flags::{FlagFile, FlagFilesError, FlagsFuture, ReleaseFlags};
use mobius_features::{Actor, FlagError, FlagSets, Put, names};

/// [`FlagSets`] as the deployer sees them.
pub struct ReleaseFlagSets(pub FlagSets);

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
                if let Some(owner) = self.0.current(&set).and_then(|loaded| loaded.environment.clone())
                    && owner != environment
                {
                    let error = FlagError::OtherEnvironment { set, stored: owner, asked: environment.to_owned() };
                    return Err(refused(file, error));
                }
            }
            Ok(())
        })
    }

    fn load<'a>(
        &'a self,
        files: &'a [FlagFile],
        environment: &'a str,
        by: &'a str,
        reason: &'a str,
    ) -> FlagsFuture<'a> {
        Box::pin(async move {
            for file in files {
                let put = Put {
                    set: names::release_set_name(&file.base, environment),
                    document: file.text.clone(),
                    environment: Some(environment.to_owned()),
                    expected: None,
                    source_name: Some(file.path.clone()),
                };
                let actor = Actor { by: by.to_owned(), reason: Some(reason.to_owned()) };
                self.0.put(put, actor).await.map_err(|e| refused(file, e))?;
            }
            Ok(())
        })
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
        | FlagError::NoVariant { .. } => FlagFilesError::Invalid { path, message: error.to_string() },
        FlagError::VersionConflict { .. } | FlagError::OtherEnvironment { .. } | FlagError::Contended { .. } => {
            FlagFilesError::Conflict { path, message: error.to_string() }
        }
        FlagError::Event(_) | FlagError::Store(_) => FlagFilesError::Failed { path, source: Box::new(error) },
    }
}
