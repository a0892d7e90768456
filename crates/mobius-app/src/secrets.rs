//! Changes to stored secrets, as the same operation for every door (the CLI and the API): the
//! change itself, then an event saying what changed, where and by whom (never the value).

use mobius_events::emit::{self, AnyEvent};
use mobius_events::{NewEvent, Origin};
use mobius_secrets::{SecretError, Secrets};
use serde_json::json;

/// The event type of a secret's change.
pub const CHANGED: &str = "dev.cdeventsx.mobius-secret.changed.0.1.0";

/// What happened to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Set,
    Removed,
}

/// Sets `name` (in `repository`, and `environment` unless empty) to `value`; returns the event.
pub fn set(
    secrets: &Secrets,
    repository: &str,
    environment: &str,
    name: &str,
    value: &str,
    who: &str,
) -> Result<Option<NewEvent>, SecretError> {
    secrets.set(repository, environment, name, value, who)?;
    Ok(event(repository, environment, name, Change::Set, who))
}

/// Removes `name`; `None` when there was no such secret, else the event (itself `None` only if
/// the values make no valid event).
pub fn remove(
    secrets: &Secrets,
    repository: &str,
    environment: &str,
    name: &str,
    who: &str,
) -> Result<Option<Option<NewEvent>>, SecretError> {
    if !secrets.remove(repository, environment, name)? {
        return Ok(None);
    }
    Ok(Some(event(repository, environment, name, Change::Removed, who)))
}

/// The audit event of a change: scope, name, what and who.
fn event(repository: &str, environment: &str, name: &str, change: Change, who: &str) -> Option<NewEvent> {
    let action = match change {
        Change::Set => "set",
        Change::Removed => "removed",
    };
    let content =
        json!({ "repository": repository, "environment": environment, "name": name, "action": action, "by": who });
    let subject = match environment {
        "" => format!("{repository}/{name}"),
        environment => format!("{repository}/{environment}/{name}"),
    };
    let timestamp = jiff::Timestamp::now().to_string();
    let any = AnyEvent {
        ty: CHANGED,
        id: None,
        source: "/mobius/secrets",
        timestamp: &timestamp,
        subject: &subject,
        content: &content,
    };
    emit::any(&any, Origin::Internal).ok()
}
