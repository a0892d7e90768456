//! Changes to environments' protection rules, as the same operation for every door (the CLI
//! and the API): the rules checked, stored, then an event saying what changed and by whom.
//! The rules are enforced by the runner (`mobius_runs::environments`).

use jiff::Timestamp;
use mobius_events::emit::{self, AnyEvent};
use mobius_events::{NewEvent, Origin};
use mobius_store::{EnvironmentRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The event type of a change to an environment's protection rules.
pub const CHANGED: &str = "dev.cdeventsx.mobius-environment.changed.0.1.0";

/// The longest environment name, reviewer name or branch pattern accepted.
const MAX_NAME: usize = 255;

/// The rules to give an environment (the body of `PUT /api/v1/environments/…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Whether a job waits for a review; implied by `reviewers`.
    #[serde(default)]
    pub require_review: bool,
    /// Token names that may review; empty: any `deploy` or `admin` token.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Branch patterns (and `refs/tags/…` tag patterns) allowed to deploy; empty: all.
    #[serde(default)]
    pub branches: Vec<String>,
}

/// Why protection rules were refused or could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("{what} `{value}` is not valid: {why}")]
    Invalid { what: &'static str, value: String, why: &'static str },
    #[error("storage failed")]
    Store(#[from] StoreError),
}

/// Checks a name-like value: not empty, not too long, no whitespace or control characters.
fn check(what: &'static str, value: &str) -> Result<(), EnvironmentError> {
    let invalid = |why| Err(EnvironmentError::Invalid { what, value: value.to_owned(), why });
    if value.is_empty() {
        return invalid("it is empty");
    }
    if value.chars().count() > MAX_NAME {
        return invalid("it is longer than 255 characters");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("it contains whitespace or control characters");
    }
    Ok(())
}

/// Gives `environment` of `repository` these rules (replacing any it had); returns the stored
/// record and its event. Nothing is stored when a value is invalid.
pub fn protect(
    store: &dyn Store,
    repository: &str,
    environment: &str,
    rules: Rules,
    who: &str,
) -> Result<(EnvironmentRecord, Option<NewEvent>), EnvironmentError> {
    check("the repository", repository)?;
    if !repository.contains('/') {
        return Err(EnvironmentError::Invalid {
            what: "the repository",
            value: repository.to_owned(),
            why: "it must be OWNER/NAME",
        });
    }
    check("the environment", environment)?;
    for reviewer in &rules.reviewers {
        if reviewer.is_empty() || reviewer.chars().count() > MAX_NAME {
            return Err(EnvironmentError::Invalid {
                what: "the reviewer",
                value: reviewer.clone(),
                why: "a token name of 1 to 255 characters",
            });
        }
    }
    for pattern in &rules.branches {
        check("the branch pattern", pattern)?;
    }
    let record = EnvironmentRecord {
        repository: repository.to_owned(),
        name: environment.to_owned(),
        require_review: rules.require_review || !rules.reviewers.is_empty(),
        reviewers: rules.reviewers,
        branches: rules.branches,
        updated: Timestamp::now(),
        updated_by: who.to_owned(),
    };
    store.put_environment(&record)?;
    let event = event(&record, "protected", who);
    Ok((record, event))
}

/// Removes an environment's rules; `None` when it had none, else the event.
pub fn unprotect(
    store: &dyn Store,
    repository: &str,
    environment: &str,
    who: &str,
) -> Result<Option<Option<NewEvent>>, EnvironmentError> {
    if !store.delete_environment(repository, environment)? {
        return Ok(None);
    }
    let record = EnvironmentRecord {
        repository: repository.to_owned(),
        name: environment.to_owned(),
        require_review: false,
        reviewers: Vec::new(),
        branches: Vec::new(),
        updated: Timestamp::now(),
        updated_by: who.to_owned(),
    };
    Ok(Some(event(&record, "unprotected", who)))
}

/// The audit event of a change: the environment, its rules now, what and who.
fn event(record: &EnvironmentRecord, action: &str, who: &str) -> Option<NewEvent> {
    let content = json!({
        "repository": record.repository,
        "environment": record.name,
        "action": action,
        "require_review": record.require_review,
        "reviewers": record.reviewers,
        "branches": record.branches,
        "by": who,
    });
    let subject = format!("{}/{}", record.repository, record.name);
    let timestamp = record.updated.to_string();
    let any = AnyEvent {
        ty: CHANGED,
        id: None,
        source: "/mobius/environments",
        timestamp: &timestamp,
        subject: &subject,
        content: &content,
    };
    emit::any(&any, Origin::Internal).ok()
}

#[cfg(test)]
mod tests {
    use mobius_store::SqliteStore;

    use super::*;

    #[test]
    fn bad_rules_are_refused_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let rules = |branches: &[&str]| Rules {
            require_review: false,
            reviewers: vec!["alice".into()],
            branches: branches.iter().map(|b| (*b).to_owned()).collect(),
        };
        assert!(protect(&store, "o/r", "", rules(&[]), "cli").is_err());
        assert!(protect(&store, "nobody", "production", rules(&[]), "cli").is_err());
        assert!(protect(&store, "o/r", "production", rules(&["main", "bad pattern"]), "cli").is_err());
        assert_eq!(store.environments(None).unwrap(), vec![]);
        let (record, event) = protect(&store, "o/r", "production", rules(&["main"]), "cli").unwrap();
        assert!(record.require_review, "reviewers imply a review");
        assert_eq!(event.map(|e| e.ty), Some(CHANGED.to_owned()));
        assert!(unprotect(&store, "o/r", "production", "cli").unwrap().is_some());
        assert!(unprotect(&store, "o/r", "production", "cli").unwrap().is_none());
    }
}
