//! What a run's host decides about a job before it starts: whether its environment admits it
//! ([`EnvironmentGate`]: protection rules, reviews) and the credentials it runs with
//! ([`JobCredentials`]: a short-lived token for the API). The engine knows neither rules nor
//! tokens; the server's runner implements both, `mobius run` neither.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// A future the engine awaits on a job task (so `Send`).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Whether a job may deploy to its environment.
pub enum Admission {
    /// It starts now.
    Admitted,
    /// It fails without running a step, for this reason (shown in its log).
    Refused(String),
    /// It waits (its state is `waiting`) until the review ends: `Ok` once approved, `Err`
    /// with the reason once rejected. Dropping the future withdraws the request (the run was
    /// cancelled).
    Review(BoxFuture<Result<(), String>>),
}

/// Decides, before a job whose `environment:` names an environment starts (after its `needs`
/// and `if:`), whether it may: GitHub's environment protection rules. Asked once per job
/// instance, while other jobs of the run go on.
pub trait EnvironmentGate: Send + Sync + std::fmt::Debug {
    /// Whether the job instance named `job` (its display name) may run in `environment`.
    fn admit(&self, job: &str, environment: &str) -> BoxFuture<Admission>;
}

/// What a job gets to call its host's API with: variables for its steps' environment (some of
/// them secret, so masked in its log), and what withdraws them once it ends.
pub struct JobCredential {
    /// Variables every step sees, in clear in its environment.
    pub env: BTreeMap<String, String>,
    /// Variables every step sees whose values are masked in the log, as secrets are.
    pub secret_env: BTreeMap<String, String>,
    /// Withdraws the credential; awaited when the job ends, whatever its result.
    pub revoke: BoxFuture<()>,
}

/// Gives each job instance its own credential when it starts (after its environment admitted
/// it) and withdraws it when it ends.
pub trait JobCredentials: Send + Sync + std::fmt::Debug {
    /// The credential of the job instance named `job`; `Err` (a reason) fails the job before
    /// its first step.
    fn issue(&self, job: &str) -> BoxFuture<Result<JobCredential, String>>;
}
