//! The one error type of the HTTP API, and the one place where domain errors become statuses.
//!
//! An [`ApiError`] has a stable `code` and a `message` for the client, and, for failures that
//! are the server's own, the full error chain for the log — never sent (dropshot's split:
//! the client learns what it can act on, the operator learns why).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mobius_app::repositories::RepositoryError;
use mobius_delivery::flags::FlagFilesError;
use mobius_delivery::upload::UploadError;
use mobius_delivery::{DeployError, Refusal, ReleaseError};
use mobius_log::query::QueryError;
use mobius_runs::RunError;
use mobius_runs::environments::ReviewError;
use mobius_runs::remote::AccessError;
use mobius_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: clients match on it.
    pub code: &'static str,
    /// For people; never contains secrets or bodies.
    pub message: String,
    /// Logged, never sent.
    pub internal: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), internal: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }

    /// A failure of the server's own: the client gets a generic message, the log the chain.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the server log".into(),
            internal: Some(Box::new(error)),
        }
    }

    /// A store failure: 503 with a clear word when the database cannot serve the call for now
    /// (busy, locked, out of disk, or not answering: PostgreSQL stopped, restarting or out of
    /// reach; the client may retry), else internal. The driver's message is for the log, never
    /// the client. A write refused so was not acknowledged; one cut off at its commit may have
    /// been stored all the same, which a retry of an idempotent write (an event, by source and
    /// id) finds as a duplicate.
    pub fn store(error: StoreError) -> ApiError {
        if error.is_unavailable() {
            let message = "the store is unavailable (the database is busy, out of space or not answering); try again";
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message: message.into(),
                internal: Some(Box::new(error)),
            }
        } else {
            ApiError::internal(error)
        }
    }

    /// The client's mistake, said in the domain's words (the error's message, without its
    /// sources, which are for the log).
    fn client(status: StatusCode, code: &'static str, error: &dyn std::error::Error) -> ApiError {
        ApiError::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(error) = &self.internal {
            tracing::error!(code = self.code, error = %Chain(error.as_ref()), "request failed");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            return (self.status, [(axum::http::header::RETRY_AFTER, "5")], Json(body)).into_response();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        match e {
            QueryError::Invalid { .. } => ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e),
            QueryError::Store(store) => ApiError::store(store),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::store(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> ApiError {
        match e {
            RunError::NotFound(_)
            | RunError::UnknownRepository(_)
            | RunError::UnknownRef { .. }
            | RunError::UnknownWorkflow { .. } => ApiError::client(StatusCode::NOT_FOUND, "not_found", &e),
            RunError::Dispatch { .. } => ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e),
            RunError::Ended { .. } | RunError::NotEnded { .. } | RunError::NothingFailed(_) => {
                ApiError::client(StatusCode::CONFLICT, "conflict", &e)
            }
            RunError::Store(store) => ApiError::store(store),
            RunError::Git(_) | RunError::Access(_) => ApiError::internal(e),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> ApiError {
        match e {
            RepositoryError::CredentialsInUrl { .. }
            | RepositoryError::NoName { .. }
            | RepositoryError::BadName(_)
            | RepositoryError::Access(AccessError::MissingSecret { .. }) => {
                ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e)
            }
            // The remote's answer is the client's to act on (a wrong URL or token): git's first
            // line goes with it, the URL already without credentials.
            RepositoryError::Mirror { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", Chain(&e).to_string())
            }
            RepositoryError::AlreadyRegistered { .. } => ApiError::client(StatusCode::CONFLICT, "conflict", &e),
            RepositoryError::Unknown(_) => ApiError::client(StatusCode::NOT_FOUND, "not_found", &e),
            RepositoryError::Access(_)
            | RepositoryError::Heads { .. }
            | RepositoryError::Delete { .. }
            | RepositoryError::Secrets(_) => ApiError::internal(e),
            RepositoryError::Store(store) => ApiError::store(store),
        }
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> ApiError {
        match e {
            ReviewError::NotWaiting { .. } => ApiError::client(StatusCode::CONFLICT, "conflict", &e),
            ReviewError::NotAReviewer { .. } => ApiError::client(StatusCode::FORBIDDEN, "forbidden", &e),
            ReviewError::Store(store) => ApiError::store(store),
        }
    }
}

impl From<ReleaseError> for ApiError {
    fn from(e: ReleaseError) -> ApiError {
        use ReleaseError as R;
        match e {
            R::NoSpecInDir { .. }
            | R::NoSpec { .. }
            | R::Spec(_)
            | R::BadDigest { .. }
            | R::BadVersion { .. }
            | R::FlagFile(_) => ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e),
            R::Tree(_) => ApiError::client(StatusCode::BAD_REQUEST, "bad_tree", &e),
            R::NoArtifactForCommit { .. }
            | R::ArtifactWithoutDigest { .. }
            | R::UnknownArtifact { .. }
            | R::UnknownUpload { .. } => ApiError::client(StatusCode::NOT_FOUND, "not_found", &e),
            R::Artifacts(_) | R::Io { .. } | R::NotShared { .. } | R::StoredMismatch { .. } => ApiError::internal(e),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> ApiError {
        use DeployError as D;
        match e {
            D::Release(release) => release.into(),
            D::WrongService { .. }
            | D::UnknownEnvironment { .. }
            | D::NoListenAddress { .. }
            | D::AnalysisStep(_)
            | D::SloSource(_)
            | D::MissingSecret(_)
            | D::FlagFiles(FlagFilesError::Invalid { .. })
            | D::Fault(_) => ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e),
            D::FlagFiles(FlagFilesError::Conflict { .. }) => ApiError::client(StatusCode::CONFLICT, "conflict", &e),
            D::FlagFiles(FlagFilesError::Failed { .. }) => ApiError::internal(e),
            D::NeverDeployed { .. } | D::NotRunningHere { .. } => {
                ApiError::client(StatusCode::NOT_FOUND, "not_found", &e)
            }
            D::BudgetExhausted { .. } => ApiError::client(StatusCode::CONFLICT, "budget_exhausted", &e),
            D::PolicyDenied { .. } => ApiError::client(StatusCode::FORBIDDEN, "policy_denied", &e),
            D::RolloutUnfinished { .. }
            | D::AlreadyServing { .. }
            | D::NothingToUndo { .. }
            | D::ChangeRefused(_)
            | D::RolloutOver { .. } => ApiError::client(StatusCode::CONFLICT, "conflict", &e),
            // Declared in a deploy repository: git is where it changes.
            D::Managed { .. } => ApiError::client(StatusCode::CONFLICT, "managed_by_gitops", &e),
            // The address is taken: another process, or another environment's proxy.
            D::Listen { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", Chain(&e).to_string()),
            D::Store(store) => ApiError::store(store),
            D::Encode(_) | D::Secrets { .. } | D::Answer(_) => ApiError::internal(e),
            // Another replica's answer: the status it would have given.
            D::RefusedByHolder { refusal, .. } => match refusal {
                Refusal::Invalid => ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e),
                Refusal::NotFound => ApiError::client(StatusCode::NOT_FOUND, "not_found", &e),
                Refusal::Conflict => ApiError::client(StatusCode::CONFLICT, "conflict", &e),
                Refusal::BudgetExhausted => ApiError::client(StatusCode::CONFLICT, "budget_exhausted", &e),
                Refusal::PolicyDenied => ApiError::client(StatusCode::FORBIDDEN, "policy_denied", &e),
                Refusal::Unavailable => ApiError::client(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e),
                Refusal::Failed => ApiError::internal(e),
            },
            // Nobody drives the environment now (a failover), or it did not answer in time.
            D::NoHolder { .. } | D::Unanswered { .. } => {
                ApiError::client(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &e)
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> ApiError {
        match e {
            UploadError::BadDigest { .. } | UploadError::DigestMismatch { .. } => {
                ApiError::client(StatusCode::BAD_REQUEST, "bad_request", &e)
            }
            UploadError::TooLarge => ApiError::client(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &e),
            UploadError::Io { .. } => ApiError::internal(e),
        }
    }
}

/// Formats an error with its sources: `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
