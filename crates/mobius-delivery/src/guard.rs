//! The deployer's guard port: asked before a deploy by hand (see [`crate::DeployConfig::guard`]).

/// Whether a deploy of a service to an environment may be asked for by hand. Called on the
/// blocking pool: it may read the store.
pub trait DeployGuard: Send + Sync {
    /// `Err` with the message the caller sees when the environment is not theirs to deploy to.
    fn check(&self, service: &str, environment: &str) -> Result<(), String>;
}

impl std::fmt::Debug for dyn DeployGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeployGuard")
    }
}
