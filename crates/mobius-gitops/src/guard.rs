//! The deployer's guard: a deploy by hand (the API, `mobius deploy`, a pipeline's
//! `mobius/deploy` step) to an environment a followed deploy repository declares is refused,
//! naming the repository and the file — unless the source self-heals, when it goes through and
//! the next pass puts git's digest back.

use std::sync::Arc;

use mobius_delivery::DeployGuard;
use mobius_store::Store;

use crate::{read_sources, read_status};

/// [`DeployGuard`] over the stored sources and their last-read environments. Reads the store
/// on each check, so every replica refuses alike.
pub struct Guard {
    store: Arc<dyn Store>,
}

impl Guard {
    pub fn new(store: Arc<dyn Store>) -> Guard {
        Guard { store }
    }

    #[cfg(test)]
    pub(crate) fn store_for_tests(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

impl DeployGuard for Guard {
    fn check(&self, service: &str, environment: &str) -> Result<(), String> {
        let sources = match read_sources(self.store.as_ref()) {
            Ok((sources, _)) => sources,
            // Fail closed: a store that cannot be read cannot say the environment is free.
            Err(error) => return Err(format!("cannot read the GitOps sources to check {environment}: {error}")),
        };
        for source in sources {
            let status = match read_status(self.store.as_ref(), &source.repository) {
                Ok((status, _)) => status,
                Err(error) => return Err(format!("cannot read the GitOps status of {}: {error}", source.repository)),
            };
            let Some(file) = status.environments.get(environment) else { continue };
            if source.self_heal {
                tracing::warn!(%service, %environment, repository = %source.repository,
                    "a deploy by hand to an environment GitOps self-heals: it will be put back to what git declares");
                continue;
            }
            let at = status.revision.as_deref().map(|r| format!(" at {}", &r[..r.len().min(12)])).unwrap_or_default();
            return Err(format!(
                "{environment} is managed by GitOps from repository `{}` ({file}{at}): change the file there, \
                 or `mobius promote {service} --from <environment> --to {environment}`",
                source.repository
            ));
        }
        Ok(())
    }
}
